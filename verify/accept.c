#include "verify/accept.h"

int32_t stree_argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int32_t stree_accept_greedy(const stree_tree *t, const int32_t *argmax, int32_t *path, int32_t *bonus) {
    int32_t len = 0, node = 0;
    path[len++] = 0;
    for (;;) {
        int32_t want = argmax[node];
        int32_t child = stree_tree_find_child(t, node, want);
        if (child < 0) {
            *bonus = want;
            return len;
        }
        node = child;
        path[len++] = node;
    }
}
