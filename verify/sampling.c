#include "verify/sampling.h"

#include <string.h>

#include "kernels/cpu/cpu.h"
#include "runtime/error.h"

void stree_rand_stream_seed(stree_rand_stream *r, uint64_t seed) {
    r->seed = seed;
    r->counter = 0;
}

static stree_status backend_status(const stree_ops *ops) {
    const char *err = ops->take_error ? ops->take_error() : NULL;
    return err ? stree_fail(STREE_ERR_BACKEND, "%s backend (sampling): %s", ops->name, err) : STREE_OK;
}

stree_status stree_sample_bufs_init(stree_sample_bufs *b, const stree_ops *ops, int32_t vocab, int32_t max_rows,
                                    int32_t cap_history) {
    memset(b, 0, sizeof *b);
    size_t V = (size_t)vocab, R = (size_t)max_rows;
    b->probs = ops->alloc(R * V * sizeof(float));
    b->work = ops->alloc(2 * V * sizeof(float));
    b->scratch = ops->alloc(V * sizeof(uint64_t));
    b->tree = ops->alloc(4 * R * sizeof(int32_t));
    b->out = ops->alloc((R * STREE_SAMPLE_MAX_DRAWS + 2) * sizeof(int32_t));
    b->history = ops->alloc(((size_t)cap_history + 1) * sizeof(int32_t));
    b->ops = ops;
    b->vocab = vocab, b->max_rows = max_rows, b->cap_history = cap_history;
    if (b->probs && b->work && b->scratch && b->tree && b->out && b->history) return STREE_OK;
    stree_sample_bufs_free(b);
    return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of %s memory for sampling buffers (%d rows of %d)", ops->name,
                      max_rows, vocab);
}

void stree_sample_bufs_free(stree_sample_bufs *b) {
    if (!b->ops) return;
    void *bufs[] = {b->probs, b->work, b->scratch, b->tree, b->out, b->history};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (bufs[i]) b->ops->free(bufs[i]);
    memset(b, 0, sizeof *b);
}

void stree_sample_bufs_forget(stree_sample_bufs *b) { b->n_history = 0; }

stree_status stree_sample_bufs_history(stree_sample_bufs *b, const int32_t *history, int32_t n) {
    if (n > b->cap_history)
        return stree_fail(STREE_ERR_INTERNAL, "sampling history of %d tokens exceeds %d", n, b->cap_history);
    if (n < b->n_history) b->n_history = 0;
    if (n > b->n_history)
        b->ops->upload(b->history + b->n_history, history + b->n_history, (size_t)(n - b->n_history) * sizeof *history);
    b->n_history = n;
    return STREE_OK;
}

stree_status stree_sample_bufs_tree(stree_sample_bufs *b, const stree_tree *t, const uint8_t *maybe_has_q) {
    int32_t n = t->n, h[4 * STREE_TREE_MAX_NODES];
    if (n > b->max_rows) return stree_fail(STREE_ERR_INTERNAL, "a tree of %d nodes exceeds %d sampling rows", n, b->max_rows);
    memcpy(h, t->token, (size_t)n * sizeof *h);
    memcpy(h + n, t->parent, (size_t)n * sizeof *h);
    memcpy(h + 2 * n, t->rank, (size_t)n * sizeof *h);
    for (int32_t i = 0; i < n; i++) h[3 * n + i] = maybe_has_q ? maybe_has_q[i] : 0;
    b->ops->upload(b->tree, h, (size_t)(4 * n) * sizeof *h);
    b->tree_n = n;
    return STREE_OK;
}

static void probs_params(stree_sample_bufs *b, const stree_sampling_params *sp, stree_sample_probs_params *pp) {
    memset(pp, 0, sizeof *pp);
    pp->history = b->history;
    pp->n_history = b->n_history;
    pp->tokens = b->tree;
    pp->parent = b->tree + b->tree_n;
    pp->scratch = b->scratch;
    pp->vocab = b->vocab;
    pp->ld = b->vocab;
    pp->temperature = sp->temperature;
    pp->top_k = sp->top_k;
    pp->top_p = sp->top_p;
    pp->min_p = sp->min_p;
    pp->repetition_penalty = sp->repetition_penalty;
}

void stree_sample_probs_rows(stree_sample_bufs *b, const stree_sampling_params *sp, const float *logits,
                             int32_t first, int32_t n) {
    stree_sample_probs_params pp;
    probs_params(b, sp, &pp);
    pp.logits = logits;
    pp.probs = b->probs + (size_t)first * (size_t)b->vocab;
    pp.first = first;
    pp.n = n;
    b->ops->sample_probs(&pp);
}

stree_status stree_sample_draw_rows(stree_sample_bufs *b, int32_t first, int32_t n, int32_t m, stree_rand_stream *r,
                                    int32_t *out) {
    if (m > STREE_SAMPLE_MAX_DRAWS)
        return stree_fail(STREE_ERR_INVALID_ARG, "sampled trees draw at most %d children per node, the shape has %d",
                          STREE_SAMPLE_MAX_DRAWS, m);
    stree_sample_draw_params dp = {.probs = b->probs + (size_t)first * (size_t)b->vocab, .out = b->out, .n = n,
                                   .vocab = b->vocab, .m = m, .ld = b->vocab, .seed = r->seed, .counter = r->counter};
    b->ops->sample_draw(&dp);
    r->counter += (uint64_t)n * (uint64_t)m;
    b->ops->download(out, b->out, (size_t)n * (size_t)m * sizeof *out);
    return backend_status(b->ops);
}

stree_status stree_sample_accept_tree(stree_sample_bufs *b, const float *maybe_q, int break_residual,
                                      stree_rand_stream *r, int32_t *path, int32_t *len, int32_t *bonus) {
    int32_t n = b->tree_n;
    stree_sample_accept_params ap = {.p = b->probs, .maybe_q = maybe_q, .tokens = b->tree, .parent = b->tree + n,
                                     .rank = b->tree + 2 * n, .has_q = b->tree + 3 * n, .work = b->work, .out = b->out,
                                     .n = n, .vocab = b->vocab, .break_residual = break_residual, .seed = r->seed,
                                     .counter = r->counter};
    b->ops->sample_accept(&ap);
    r->counter += 2 * (uint64_t)n + 1;
    int32_t h[STREE_TREE_MAX_NODES + 2];
    b->ops->download(h, b->out, (size_t)(n + 2) * sizeof *h);
    STREE_TRY(backend_status(b->ops));
    if (h[0] < 1 || h[0] > n || h[1] < 0 || h[1] >= b->vocab)
        return stree_fail(STREE_ERR_BACKEND, "sampling drew no valid token (path length %d, token %d): are the logits "
                          "finite?", h[0], h[1]);
    memcpy(path, h + 2, (size_t)h[0] * sizeof *path);
    *len = h[0];
    *bonus = h[1];
    return STREE_OK;
}

void stree_sampling_probs(const stree_sampling_params *sp, const float *logits, int32_t vocab, const int32_t *ctx,
                          int32_t n_ctx, float *probs, uint64_t *scratch) {
    stree_sample_probs_params pp = {.logits = logits, .probs = probs, .history = ctx, .scratch = scratch, .n = 1,
                                    .vocab = vocab, .n_history = n_ctx, .ld = vocab, .temperature = sp->temperature,
                                    .top_k = sp->top_k, .top_p = sp->top_p, .min_p = sp->min_p,
                                    .repetition_penalty = sp->repetition_penalty};
    stree_cpu_sample_probs(&pp);
}
