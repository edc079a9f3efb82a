/* Acceptance rules over a verified tree (DESIGN.md §4). */
#ifndef STREE_VERIFY_ACCEPT_H
#define STREE_VERIFY_ACCEPT_H

#include <stdint.h>

#include "spec/tree.h"

/* Greedy: from the root follow the child carrying the target's argmax; stop when none does.
 * argmax [t->n]: the target's argmax token at each node. path [STREE_TREE_MAX_NODES] receives
 * root..last accepted node; returns its length (>= 1); *bonus = the argmax at the last accepted node. */
int32_t stree_accept_greedy(const stree_tree *t, const int32_t *argmax, int32_t *path, int32_t *bonus);

/* argmax with ties to the lower index (what torch.argmax does on CPU). */
int32_t stree_argmax(const float *x, int32_t n);

#endif
