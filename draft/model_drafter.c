/* The draft-model drafter: grows the tree level by level with the same tree forward the target uses,
 * from the draft model's own committed state (kept in step with the target's). Static shapes take
 * the rank-r best token for a child of rank r; dynamic shapes follow EAGLE-2 (top-k frontier by
 * cumulative log-prob, top-k children each, prune to the budget). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draft/drafter.h"
#include "runtime/error.h"
#include "verify/accept.h"

typedef struct model_drafter {
    stree_drafter base;
    const stree_engine *engine;
    stree_state *st;
    int32_t idx[STREE_TREE_MAX_NODES * 16]; /* top-k tokens per node of the last forward */
    float logp[STREE_TREE_MAX_NODES * 16];
    stree_tree grow; /* dynamic: the full grown tree before pruning */
    /* sampled static trees: q of every parent stays in sb.probs (backend memory) */
    stree_sample_bufs sb;
    uint8_t has_q[STREE_TREE_MAX_NODES];
    int sampled;        /* the last build sampled its children */
    /* static shapes: the tree's nodes [0, fwd_n) (every level but the last) are in the draft state's
     * verify cache after build, so the commit takes the accepted ones in closed form */
    int32_t fwd_n;
} model_drafter;

/* Forward the tree so far; the k best tokens (and log-probs) of every node land in d->idx / d->logp
 * (rows [i * k, (i + 1) * k)). */
static stree_status forward(model_drafter *d, const stree_tree *t, int32_t k) {
    stree_fwd_tree ft = {.n = t->n, .tokens = t->token, .parent = t->parent};
    STREE_TRY(stree_forward_tree(d->st, &ft, 1, NULL));
    stree_state_topk(d->st, t->n, k, d->idx, d->logp);
    return STREE_OK;
}

/* The k largest of x [n] (descending; ties: lower index first) into idx. */
static void best_k(const float *x, int32_t n, int32_t k, int32_t *idx) {
    for (int32_t j = 0; j < k; j++) idx[j] = -1;
    for (int32_t i = 0; i < n; i++) {
        int32_t pos = k;
        while (pos > 0 && (idx[pos - 1] < 0 || x[i] > x[idx[pos - 1]])) pos--;
        if (pos >= k) continue;
        memmove(idx + pos + 1, idx + pos, (size_t)(k - pos - 1) * sizeof *idx);
        idx[pos] = i;
    }
}

static stree_status build_static(model_drafter *d, stree_tree *t) {
    const stree_static_shape *sh = &d->engine->policy.shape;
    int32_t k = 1;
    for (int32_t i = 1; i < sh->n; i++)
        if (sh->rank[i] + 1 > k) k = sh->rank[i] + 1;
    if (k > 16) return stree_fail(STREE_ERR_INVALID_ARG, "static tree shapes use child ranks below 16, got %d", k - 1);
    for (int32_t level = 0; level < sh->max_depth; level++) {
        int32_t any = 0;
        for (int32_t i = 1; i < sh->n && !any; i++) any = sh->depth[i] == level + 1;
        if (!any) break;
        d->fwd_n = t->n;
        STREE_TRY(forward(d, t, k));
        for (int32_t i = 1; i < sh->n; i++) {
            if (sh->depth[i] != level + 1) continue;
            int32_t p = sh->parent[i], node;
            STREE_TRY(stree_tree_add(t, p, d->idx[p * k + sh->rank[i]], sh->rank[i], 0.0f, &node, NULL));
            if (node != i) return stree_fail(STREE_ERR_INTERNAL, "static shape node %d landed at %d", i, node);
        }
    }
    return STREE_OK;
}

static stree_status build_dynamic(model_drafter *d, stree_tree *t) {
    const stree_tree_policy *pol = &d->engine->policy;
    int32_t k = pol->top_k;
    stree_tree *g = &d->grow;
    *g = *t;
    int32_t frontier[16], n_frontier = 1, idx[16];
    frontier[0] = 0;
    for (int32_t level = 0; level < pol->depth && n_frontier > 0; level++) {
        if (g->n + n_frontier * k > STREE_TREE_MAX_NODES) break;
        STREE_TRY(forward(d, g, k));
        int32_t level_start = g->n;
        for (int32_t f = 0; f < n_frontier; f++) {
            int32_t p = frontier[f];
            for (int32_t r = 0; r < k; r++)
                STREE_TRY(stree_tree_add(g, p, d->idx[p * k + r], r, g->score[p] + d->logp[p * k + r], NULL, NULL));
        }
        /* next frontier: the k best new nodes by cumulative log-prob */
        float sc[STREE_TREE_MAX_NODES];
        int32_t n_new = g->n - level_start;
        for (int32_t j = 0; j < n_new; j++) sc[j] = g->score[level_start + j];
        best_k(sc, n_new, k < n_new ? k : n_new, idx);
        n_frontier = n_new < k ? n_new : k;
        for (int32_t f = 0; f < n_frontier; f++) frontier[f] = level_start + idx[f];
    }
    return stree_tree_prune(g, pol->budget, t);
}

/* backend buffers of sampled drafting, on first use */
static stree_status sampling_buffers(model_drafter *d) {
    if (d->sb.ops) return STREE_OK;
    int32_t rows = d->engine->max_nodes < d->st->max_nodes ? d->engine->max_nodes : d->st->max_nodes;
    return stree_sample_bufs_init(&d->sb, d->st->model->ops, d->st->model->desc.vocab_size, rows, d->st->n_ctx);
}

/* Static shape with children sampled without replacement from the transformed draft distribution q
 * (for multi-step speculative sampling); q of each parent stays in d->sb.probs for the acceptance.
 * Level by level: forward, q of the level's nodes (a contiguous range: nodes are added level by
 * level), m draws per node on the backend; the host gets only the drawn tokens. */
static stree_status build_static_sampled(model_drafter *d, const int32_t *history, int32_t n_hist, stree_tree *t) {
    const stree_static_shape *sh = &d->engine->policy.shape;
    int32_t V = d->st->model->desc.vocab_size;
    STREE_TRY(sampling_buffers(d));
    memset(d->has_q, 0, sizeof d->has_q);
    STREE_TRY(stree_sample_bufs_history(&d->sb, history, n_hist - 1)); /* history ends with the root */
    int32_t map[STREE_TREE_MAX_NODES]; /* shape node -> tree node (-1: not drawn) */
    int32_t drawn[STREE_TREE_MAX_NODES * STREE_SAMPLE_MAX_DRAWS], used[STREE_TREE_MAX_NODES];
    map[0] = 0;
    int32_t lo = 0; /* the first tree node of the current level */
    for (int32_t level = 0; level < sh->max_depth && lo < t->n; level++) {
        int32_t m = 0; /* draws per node: the most children a shape node of this level has */
        for (int32_t i = 1; i < sh->n; i++) {
            if (sh->depth[i] != level + 1) continue;
            int32_t c = 0;
            for (int32_t j = 1; j < i; j++) c += sh->parent[j] == sh->parent[i];
            if (c + 1 > m) m = c + 1;
        }
        if (!m) break;
        d->fwd_n = t->n;
        stree_fwd_tree ft = {.n = t->n, .tokens = t->token, .parent = t->parent};
        STREE_TRY(stree_forward_tree(d->st, &ft, 1, NULL));
        int32_t rows = t->n - lo;
        STREE_TRY(stree_sample_bufs_tree(&d->sb, t, NULL));
        stree_sample_probs_rows(&d->sb, d->base.sampling, d->st->ws.logits + (size_t)lo * (size_t)V, lo, rows);
        STREE_TRY(stree_sample_draw_rows(&d->sb, lo, rows, m, d->base.stream, drawn));
        for (int32_t r = 0; r < rows; r++) d->has_q[lo + r] = 1, used[lo + r] = 0;
        int32_t next_lo = t->n;
        for (int32_t i = 1; i < sh->n; i++) {
            if (sh->depth[i] != level + 1) continue;
            int32_t p = map[sh->parent[i]], node;
            map[i] = -1;
            if (p < 0) continue; /* its parent was not drawn */
            int32_t tok = drawn[(p - lo) * m + used[p]++];
            if (tok < 0) continue; /* q has fewer tokens than the shape has children */
            STREE_TRY(stree_tree_add(t, p, tok, sh->rank[i], 0.0f, &node, NULL));
            map[i] = node;
        }
        lo = next_lo;
    }
    d->sampled = 1;
    return STREE_OK;
}

static stree_status build(stree_drafter *base, const int32_t *history, int32_t n, stree_tree *t) {
    model_drafter *d = (model_drafter *)base;
    d->sampled = 0;
    d->fwd_n = 0;
    int sample = d->base.sampling->temperature > 0.0f && d->engine->params.accept_rule == STREE_ACCEPT_AUTO &&
                 d->engine->policy.kind == STREE_SHAPE_STATIC;
    stree_status s = sample ? build_static_sampled(d, history, n, t)
                   : d->engine->policy.kind == STREE_SHAPE_DYNAMIC ? build_dynamic(d, t)
                                                                   : build_static(d, t);
    if (s != STREE_OK || d->engine->policy.kind == STREE_SHAPE_DYNAMIC) { /* the grown tree's ids differ */
        d->st->vc.n_nodes = 0;
        d->fwd_n = 0;
    }
    return s;
}

static stree_status can_commit(stree_drafter *base, int32_t n) {
    model_drafter *d = (model_drafter *)base;
    if (d->st->n_committed + n > d->st->n_ctx)
        return stree_fail(STREE_ERR_CONTEXT_FULL, "draft model context of %d tokens is full", d->st->n_ctx);
    return STREE_OK;
}

static stree_status commit(stree_drafter *base, const int32_t *tokens, int32_t n, const int32_t *maybe_path) {
    model_drafter *d = (model_drafter *)base;
    /* The accepted nodes the last drafting forward held form a prefix of the path (levels are added
     * in order): commit them from the verify cache; only the rest (at most the deepest) is forwarded. */
    int32_t k = 0;
    if (maybe_path && d->fwd_n > 0)
        while (k < n && maybe_path[k] < d->fwd_n) k++;
    d->fwd_n = 0;
    if (k > 0) STREE_TRY(stree_commit_path(d->st, maybe_path, k, tokens[k - 1]));
    return k < n ? stree_state_append(d->st, tokens + k, n - k, NULL) : STREE_OK;
}

static void reset(stree_drafter *base) {
    model_drafter *d = (model_drafter *)base;
    d->fwd_n = 0;
    stree_state_reset(d->st);
    stree_sample_bufs_forget(&d->sb);
}

static const float *draft_q(stree_drafter *base, const uint8_t **has_q, const stree_ops **ops) {
    model_drafter *d = (model_drafter *)base;
    *has_q = d->has_q;
    *ops = d->sb.ops;
    return d->sampled ? d->sb.probs : NULL;
}

static void destroy(stree_drafter *base) {
    model_drafter *d = (model_drafter *)base;
    if (!d) return;
    stree_state_free(d->st);
    stree_sample_bufs_free(&d->sb);
    free(d);
}

stree_status stree_model_drafter_create(const stree_engine *e, stree_drafter **out) {
    *out = NULL;
    model_drafter *d = calloc(1, sizeof *d);
    if (!d) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    d->base = (stree_drafter){build, commit, can_commit, reset, destroy, draft_q, NULL, NULL};
    d->engine = e;
    stree_status s = stree_state_create(e->draft, e->params.n_ctx, e->params.chunk_size, &d->st);
    if (s != STREE_OK) {
        destroy(&d->base);
        return s;
    }
    *out = &d->base;
    return STREE_OK;
}
