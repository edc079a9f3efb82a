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
    /* sampled static trees: host logits of the last forward, q per node, scratch */
    float *logits;      /* [max_nodes, V] */
    float *q_store;     /* [max_nodes, V] */
    const float *q[STREE_TREE_MAX_NODES];
    float *work;        /* [V] */
    int32_t *scratch;   /* [V] */
    int32_t *ctx;       /* [n_ctx + max_nodes] */
    int sampled;        /* the last build sampled its children */
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

static stree_rng *base_rng(model_drafter *d) { return d->base.rng; }

/* host buffers of sampled drafting, on first use */
static stree_status sampling_buffers(model_drafter *d) {
    if (d->logits) return STREE_OK;
    size_t V = (size_t)d->st->model->desc.vocab_size, mn = STREE_TREE_MAX_NODES;
    d->logits = malloc(mn * V * sizeof(float));
    d->q_store = malloc(mn * V * sizeof(float));
    d->work = malloc(V * sizeof(float));
    d->scratch = malloc(V * sizeof(int32_t));
    d->ctx = malloc(((size_t)d->engine->params.n_ctx + mn + 1) * sizeof(int32_t));
    if (d->logits && d->q_store && d->work && d->scratch && d->ctx) return STREE_OK;
    free(d->logits), free(d->q_store), free(d->work), free(d->scratch), free(d->ctx);
    d->logits = NULL;
    return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for draft sampling buffers");
}

/* Static shape with children sampled without replacement from the transformed draft distribution q
 * (for multi-step speculative sampling); q of each parent is kept for the acceptance. */
static stree_status build_static_sampled(model_drafter *d, const int32_t *history, int32_t n_hist, stree_tree *t) {
    const stree_static_shape *sh = &d->engine->policy.shape;
    const stree_sampling_params *sp = d->base.sampling;
    int32_t V = d->st->model->desc.vocab_size;
    STREE_TRY(sampling_buffers(d));
    memset(d->q, 0, sizeof d->q);
    int32_t map[STREE_TREE_MAX_NODES]; /* shape node -> tree node (-1: not drawn) */
    map[0] = 0;
    for (int32_t level = 0; level < sh->max_depth; level++) {
        int32_t any = 0;
        for (int32_t i = 1; i < sh->n && !any; i++) any = sh->depth[i] == level + 1;
        if (!any) break;
        stree_fwd_tree ft = {.n = t->n, .tokens = t->token, .parent = t->parent};
        STREE_TRY(stree_forward_tree_host(d->st, &ft, d->logits, NULL));
        for (int32_t i = 1; i < sh->n; i++) {
            if (sh->depth[i] != level + 1) continue;
            int32_t p = map[sh->parent[i]], node;
            map[i] = -1;
            if (p < 0) continue; /* its parent was not drawn */
            if (!d->q[p]) { /* first child of p: its q, and a fresh without-replacement pool */
                int32_t path[STREE_TREE_MAX_NODES], len = stree_tree_path(t, p, path);
                memcpy(d->ctx, history, (size_t)(n_hist - 1) * sizeof *d->ctx); /* history ends with the root */
                for (int32_t k = 0; k < len; k++) d->ctx[n_hist - 1 + k] = t->token[path[k]];
                float *q = d->q_store + (size_t)p * (size_t)V;
                stree_sampling_probs(sp, d->logits + (size_t)p * (size_t)V, V, d->ctx, n_hist - 1 + len, q, d->scratch);
                d->q[p] = q;
            }
            /* the pool of p = q minus the children already drawn */
            memcpy(d->work, d->q[p], (size_t)V * sizeof *d->work);
            for (int32_t c = 1; c < t->n; c++)
                if (t->parent[c] == p) d->work[t->token[c]] = 0.0f;
            double left = 0.0;
            for (int32_t v = 0; v < V; v++) left += d->work[v];
            if (left <= 0.0) continue; /* q has fewer tokens than the shape has children */
            int32_t tok = stree_sample(d->work, V, base_rng(d));
            STREE_TRY(stree_tree_add(t, p, tok, sh->rank[i], 0.0f, &node, NULL));
            map[i] = node;
        }
    }
    d->sampled = 1;
    return STREE_OK;
}

static stree_status build(stree_drafter *base, const int32_t *history, int32_t n, stree_tree *t) {
    model_drafter *d = (model_drafter *)base;
    d->sampled = 0;
    int sample = d->base.sampling->temperature > 0.0f && d->engine->params.accept_rule == STREE_ACCEPT_AUTO &&
                 d->engine->policy.kind == STREE_SHAPE_STATIC;
    stree_status s = sample ? build_static_sampled(d, history, n, t)
                   : d->engine->policy.kind == STREE_SHAPE_DYNAMIC ? build_dynamic(d, t)
                                                                   : build_static(d, t);
    d->st->vc.n_nodes = 0; /* nothing of the drafting forward is ever committed */
    return s;
}

static stree_status can_commit(stree_drafter *base, int32_t n) {
    model_drafter *d = (model_drafter *)base;
    if (d->st->n_committed + n > d->st->n_ctx)
        return stree_fail(STREE_ERR_CONTEXT_FULL, "draft model context of %d tokens is full", d->st->n_ctx);
    return STREE_OK;
}

static stree_status commit(stree_drafter *base, const int32_t *tokens, int32_t n) {
    model_drafter *d = (model_drafter *)base;
    return stree_state_append(d->st, tokens, n, NULL);
}

static void reset(stree_drafter *base) { stree_state_reset(((model_drafter *)base)->st); }

static const float *const *draft_q(stree_drafter *base) {
    model_drafter *d = (model_drafter *)base;
    return d->sampled ? d->q : NULL;
}

static void destroy(stree_drafter *base) {
    model_drafter *d = (model_drafter *)base;
    if (!d) return;
    stree_state_free(d->st);
    free(d->logits), free(d->q_store), free(d->work), free(d->scratch), free(d->ctx);
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
