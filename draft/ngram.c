/* The n-gram (prompt lookup) drafter: continuations that followed earlier occurrences of the current
 * suffix, longest suffix first and most recent occurrence first, merged into one tree within the
 * policy's depth and node budget. Deterministic, stateless between steps. */
#include <stdlib.h>

#include "draft/drafter.h"
#include "runtime/error.h"

typedef struct ngram_drafter {
    stree_drafter base;
    int32_t max_n, max_depth, max_nodes;
} ngram_drafter;

/* Adds history[from .. from+len) under the root, merging shared prefixes; stops at the budget. */
static stree_status add_continuation(ngram_drafter *d, const int32_t *cont, int32_t len, stree_tree *t) {
    int32_t node = 0;
    for (int32_t j = 0; j < len && j < d->max_depth; j++) {
        int32_t child = stree_tree_find_child(t, node, cont[j]);
        if (child < 0) {
            if (t->n >= d->max_nodes) break;
            int32_t rank = 0;
            for (int32_t i = 1; i < t->n; i++) rank += t->parent[i] == node;
            STREE_TRY(stree_tree_add(t, node, cont[j], rank, -(float)(j + 1), &child, NULL));
        }
        node = child;
    }
    return STREE_OK;
}

static stree_status build(stree_drafter *base, const int32_t *h, int32_t n, stree_tree *t) {
    ngram_drafter *d = (ngram_drafter *)base;
    for (int32_t m = d->max_n; m >= 1 && t->n < d->max_nodes; m--) {
        if (m >= n) continue;
        const int32_t *suffix = h + n - m;
        for (int32_t p = n - m - 1; p >= 0 && t->n < d->max_nodes; p--) {
            int32_t same = 1;
            for (int32_t j = 0; j < m && same; j++) same = h[p + j] == suffix[j];
            if (!same) continue;
            int32_t start = p + m, len = n - start;
            if (len > d->max_depth) len = d->max_depth;
            STREE_TRY(add_continuation(d, h + start, len, t));
        }
    }
    return STREE_OK;
}

static stree_status commit(stree_drafter *base, const int32_t *tokens, int32_t n, const int32_t *maybe_path) {
    (void)maybe_path;
    (void)base, (void)tokens, (void)n;
    return STREE_OK;
}

static stree_status can_commit(stree_drafter *base, int32_t n) {
    (void)base, (void)n;
    return STREE_OK;
}

static void reset(stree_drafter *base) { (void)base; }
static void destroy(stree_drafter *base) { free(base); }

stree_status stree_ngram_drafter_create(const stree_engine *e, stree_drafter **out) {
    ngram_drafter *d = calloc(1, sizeof *d);
    if (!d) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    d->base = (stree_drafter){build, commit, can_commit, reset, destroy, NULL, NULL, NULL};
    d->max_n = e->params.ngram_max;
    d->max_depth = e->max_depth;
    d->max_nodes = e->max_nodes;
    *out = &d->base;
    return STREE_OK;
}
