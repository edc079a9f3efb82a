/* Option values shared by the stree commands: checked numbers, the backend, sampling flags. */
#ifndef STREE_CLI_ARGS_H
#define STREE_CLI_ARGS_H

#include <stdint.h>

#include "stree.h"

/* 0 ok; -1 with a message naming the flag */
int cli_int(const char *flag, const char *v, int32_t lo, int32_t *out);
int cli_float(const char *flag, const char *v, float *out);
int cli_backend(const char *v, stree_backend *out);
/* --temperature --top-k --top-p --min-p --repetition-penalty --seed: 1 handled, 0 not one of them,
 * -1 bad value (message printed) */
int cli_sampling_flag(const char *flag, const char *v, stree_sampling_params *sp);

#endif
