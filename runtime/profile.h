/* Per-op timing (see profile.c). */
#ifndef STREE_RUNTIME_PROFILE_H
#define STREE_RUNTIME_PROFILE_H

#include <stdio.h>

#include "kernels/ops.h"

#define STREE_PROF_N 17
/* A table timing every op of `wrapped`; one profiled backend at a time. */
const stree_ops *stree_profile_ops(const stree_ops *wrapped);
void stree_profile_reset(void);
/* Per-op totals divided by `per` (the number of steps measured). */
void stree_profile_print(FILE *f, const char *title, int per);

#endif
