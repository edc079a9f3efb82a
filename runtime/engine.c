/* Engines (target + drafter + tree policy) and sequences: prefill, the draft -> verify -> commit
 * step, generation and statistics. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "draft/drafter.h"
#include "runtime/config_json.h"
#include "runtime/engine.h"
#include "runtime/error.h"
#include "verify/accept.h"

double stree_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

stree_engine_params stree_engine_default_params(void) {
    stree_engine_params p;
    memset(&p, 0, sizeof p);
    p.drafter = STREE_DRAFTER_NONE;
    p.ngram_max = 3;
    p.tree = STREE_TREE_CHAIN;
    p.chain_length = 4;
    p.top_k = 4;
    p.depth = 5;
    p.budget = 32;
    p.n_ctx = 4096;
    p.chunk_size = 64;
    p.sampling.temperature = 0.0f;
    p.sampling.top_p = 1.0f;
    p.sampling.repetition_penalty = 1.0f;
    return p;
}

static stree_status check_sampling(const stree_sampling_params *sp) {
    if (!(sp->temperature >= 0.0f) || sp->top_k < 0 || !(sp->top_p > 0.0f && sp->top_p <= 1.0f) ||
        !(sp->min_p >= 0.0f && sp->min_p < 1.0f) || !(sp->repetition_penalty > 0.0f))
        return stree_fail(STREE_ERR_INVALID_ARG,
                          "sampling: temperature %g (>= 0), top_k %d (>= 0), top_p %g (0, 1], min_p %g [0, 1), "
                          "repetition_penalty %g (> 0): a value is out of range",
                          sp->temperature, sp->top_k, sp->top_p, sp->min_p, sp->repetition_penalty);
    return STREE_OK;
}

static stree_status resolve_policy(const stree_engine_params *p, stree_tree_policy *pol) {
    switch (p->tree) {
    case STREE_TREE_CHAIN: return stree_shape_chain(p->chain_length, pol);
    case STREE_TREE_BRANCHING: {
        int32_t n = 0;
        while (n < STREE_MAX_BRANCHING_DEPTH && p->branching[n] > 0) n++;
        return stree_shape_branching(p->branching, n, pol);
    }
    case STREE_TREE_DYNAMIC: return stree_shape_dynamic(p->top_k, p->depth, p->budget, pol);
    case STREE_TREE_FILE:
        if (!p->tree_file) return stree_fail(STREE_ERR_INVALID_ARG, "tree kind FILE needs tree_file");
        return stree_tree_policy_load(p->tree_file, pol);
    }
    return stree_fail(STREE_ERR_INVALID_ARG, "unknown tree kind %d", (int)p->tree);
}

stree_status stree_engine_create(stree_model *target, stree_engine_params params, stree_engine **out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_engine_create: out is NULL");
    *out = NULL;
    if (!target) return stree_fail(STREE_ERR_INVALID_ARG, "stree_engine_create: target is NULL");
    STREE_TRY(check_sampling(&params.sampling));
    if (params.n_ctx <= 0 || params.chunk_size <= 0 || params.chunk_size > 4096)
        return stree_fail(STREE_ERR_INVALID_ARG, "n_ctx %d / chunk_size %d out of range", params.n_ctx,
                          params.chunk_size);
    stree_engine *e = calloc(1, sizeof *e);
    if (!e) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    e->target = target;
    e->params = params;
    e->params.tree_file = NULL;
    stree_status s = STREE_OK;
    if (params.drafter != STREE_DRAFTER_NONE) s = resolve_policy(&params, &e->policy);
    if (s == STREE_OK) {
        e->max_depth = e->policy.kind == STREE_SHAPE_DYNAMIC ? e->policy.depth : e->policy.shape.max_depth;
        e->max_nodes = e->policy.kind == STREE_SHAPE_DYNAMIC ? e->policy.budget : e->policy.shape.n;
        if (params.drafter == STREE_DRAFTER_MODEL) {
            e->draft = params.draft_model;
            if (!e->draft) s = stree_fail(STREE_ERR_INVALID_ARG, "drafter MODEL needs a draft_model");
            else if (e->draft->desc.vocab_size != target->desc.vocab_size)
                s = stree_fail(STREE_ERR_INVALID_ARG,
                               "draft model '%s' has a vocabulary of %d tokens but the target '%s' has %d",
                               e->draft->dir, e->draft->desc.vocab_size, target->dir, target->desc.vocab_size);
        } else if (params.drafter == STREE_DRAFTER_SELF) {
            e->draft = target;
        } else if (params.drafter == STREE_DRAFTER_NGRAM && params.ngram_max <= 0) {
            s = stree_fail(STREE_ERR_INVALID_ARG, "ngram_max must be >= 1, got %d", params.ngram_max);
        } else if (params.drafter < STREE_DRAFTER_NONE || params.drafter > STREE_DRAFTER_SELF) {
            s = stree_fail(STREE_ERR_INVALID_ARG, "unknown drafter kind %d", (int)params.drafter);
        }
    }
    if (s != STREE_OK) {
        free(e);
        return s;
    }
    *out = e;
    return STREE_OK;
}

void stree_engine_free(stree_engine *e) {
    if (!e) return;
    stree_model_free(e->owned[0]);
    stree_model_free(e->owned[1]);
    free(e);
}

stree_model *stree_engine_target(const stree_engine *e) { return e ? e->target : NULL; }

int32_t stree_engine_n_ctx(const stree_engine *e) { return e ? e->params.n_ctx : 0; }

int32_t stree_engine_tree_nodes(const stree_engine *e) {
    return !e || e->params.drafter == STREE_DRAFTER_NONE ? 1 : e->max_nodes;
}

/* ---------------------------------------------------------------- sequences */
stree_status stree_seq_create(stree_engine *e, stree_seq **out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_create: out is NULL");
    *out = NULL;
    if (!e) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_create: engine is NULL");
    stree_seq *s = calloc(1, sizeof *s);
    if (!s) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    s->engine = e;
    s->pending = -1;
    stree_status st = stree_state_create(e->target, e->params.n_ctx, e->params.chunk_size, &s->target);
    if (st == STREE_OK) {
        s->history = malloc(((size_t)e->params.n_ctx + 1) * sizeof *s->history);
        if (!s->history) st = stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for a sequence");
    }
    if (st == STREE_OK && e->draft) st = stree_model_drafter_create(e, &s->drafter);
    if (st == STREE_OK && e->params.drafter == STREE_DRAFTER_NGRAM) st = stree_ngram_drafter_create(e, &s->drafter);
    s->sampling = e->params.sampling;
    if (s->drafter) {
        s->drafter->stream = &s->stream;
        s->drafter->sampling = &s->sampling;
    }
    stree_rand_stream_seed(&s->stream, s->sampling.seed);
    if (st != STREE_OK) {
        stree_seq_free(s);
        return st;
    }
    *out = s;
    return STREE_OK;
}

void stree_seq_free(stree_seq *s) {
    if (!s) return;
    if (s->drafter) s->drafter->destroy(s->drafter);
    stree_state_free(s->target);
    free(s->history);
    if (s->q_copy) s->engine->target->ops->free(s->q_copy);
    free(s->h_q);
    stree_sample_bufs_free(&s->sb);
    free(s);
}

void stree_seq_reset(stree_seq *s) {
    if (!s) return;
    stree_state_reset(s->target);
    if (s->drafter) s->drafter->reset(s->drafter);
    s->n_history = 0;
    s->pending = -1;
    memset(&s->stats, 0, sizeof s->stats);
    stree_rand_stream_seed(&s->stream, s->sampling.seed);
    stree_sample_bufs_forget(&s->sb);
}

void stree_seq_seed(stree_seq *s, uint64_t seed) {
    if (s) stree_rand_stream_seed(&s->stream, seed);
}

int32_t stree_seq_n_committed(const stree_seq *s) { return s ? s->target->n_committed : 0; }

/* Commits tokens to the target and the drafter; checks capacity of both first. */
static stree_status commit_tokens(stree_seq *s, const int32_t *tokens, int32_t n, float *maybe_logits) {
    if (s->drafter) STREE_TRY(s->drafter->can_commit(s->drafter, n));
    STREE_TRY(stree_state_append(s->target, tokens, n, maybe_logits));
    if (s->drafter) STREE_TRY(s->drafter->commit(s->drafter, tokens, n, NULL));
    memcpy(s->history + s->n_history, tokens, (size_t)n * sizeof *tokens);
    s->n_history += n;
    return STREE_OK;
}

stree_status stree_seq_append(stree_seq *s, const int32_t *tokens, int32_t n, float *maybe_logits) {
    if (!s || n < 0 || (n > 0 && !tokens)) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_append: bad arguments");
    if (s->pending >= 0)
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_append: the sequence has a pending token (use stree_seq_step)");
    return commit_tokens(s, tokens, n, maybe_logits);
}

stree_status stree_seq_prefill(stree_seq *s, const int32_t *prompt, int32_t n) {
    if (!s || n <= 0 || !prompt) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_prefill: need a prompt of >= 1 token");
    int32_t V = s->engine->target->desc.vocab_size;
    for (int32_t i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return stree_fail(STREE_ERR_INVALID_ARG, "prompt token %d at position %d is outside the vocabulary [0, %d)",
                              prompt[i], i, V);
    if (s->pending >= 0) { /* the pending token goes in first */
        if (s->n_history + 1 + n > s->engine->params.n_ctx)
            return stree_fail(STREE_ERR_CONTEXT_FULL, "prompt of %d tokens does not fit the context of %d", n,
                              s->engine->params.n_ctx);
        STREE_TRY(commit_tokens(s, &s->pending, 1, NULL));
        s->pending = -1;
    }
    STREE_TRY(commit_tokens(s, prompt, n - 1, NULL));
    s->pending = prompt[n - 1];
    return STREE_OK;
}

/* backend buffers of sampled steps, on first use */
static stree_status sampling_buffers(stree_seq *s) {
    if (s->sb.ops) return STREE_OK;
    const stree_model *m = s->engine->target;
    int32_t rows = stree_engine_tree_nodes(s->engine);
    if (rows > s->target->max_nodes) rows = s->target->max_nodes;
    return stree_sample_bufs_init(&s->sb, m->ops, m->desc.vocab_size, rows, s->engine->params.n_ctx);
}

/* The draft's q rows [n, V] on the target's backend: as they are, or copied through the host when the
 * draft model runs on another backend (the one configuration with vocabulary-sized host copies). */
static stree_status target_q(stree_seq *s, const float *q, const stree_ops *qops, int32_t n, const float **out) {
    const stree_ops *ops = s->engine->target->ops;
    *out = q;
    if (!q || qops == ops) return STREE_OK;
    size_t bytes = (size_t)s->sb.max_rows * (size_t)s->sb.vocab * sizeof(float);
    if (!s->q_copy) s->q_copy = ops->alloc(bytes);
    if (!s->h_q) s->h_q = malloc(bytes);
    if (!s->q_copy || !s->h_q) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for the draft q copy");
    size_t used = (size_t)n * (size_t)s->sb.vocab * sizeof(float);
    qops->download(s->h_q, q, used);
    ops->upload(s->q_copy, s->h_q, used);
    *out = s->q_copy;
    return STREE_OK;
}

/* Target-only or speculative-sampling acceptance of the verified tree, on the target's backend. */
static stree_status accept_sampled(stree_seq *s, int32_t *path, int32_t *len, int32_t *bonus) {
    STREE_TRY(sampling_buffers(s));
    const uint8_t *has_q = NULL;
    const stree_ops *qops = NULL;
    const float *q = s->drafter && s->drafter->draft_q ? s->drafter->draft_q(s->drafter, &has_q, &qops) : NULL;
    STREE_TRY(stree_sample_bufs_tree(&s->sb, &s->tree, q ? has_q : NULL)); /* checks n against the rows */
    STREE_TRY(target_q(s, q, qops, s->tree.n, &q));
    STREE_TRY(stree_sample_bufs_history(&s->sb, s->history, s->n_history));
    stree_sample_probs_rows(&s->sb, &s->sampling, s->target->ws.logits, 0, s->tree.n);
    return stree_sample_accept_tree(&s->sb, q, s->engine->params.test_break_residual, &s->stream, path, len, bonus);
}

stree_status stree_seq_set_sampling(stree_seq *s, stree_sampling_params params) {
    if (!s) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_set_sampling: seq is NULL");
    STREE_TRY(check_sampling(&params));
    s->sampling = params;
    stree_rand_stream_seed(&s->stream, params.seed);
    return STREE_OK;
}

/* offered / accepted per (depth, sibling rank) along the accepted path */
static void record_positions(stree_stats *st, const stree_tree *t, const int32_t *path, int32_t len) {
    for (int32_t k = 0; k < len; k++) {
        int32_t u = path[k], d = t->depth[u] + 1;
        if (d >= STREE_STATS_DEPTHS) break;
        int32_t next = k + 1 < len ? path[k + 1] : -1, any = 0;
        for (int32_t c = u + 1; c < t->n; c++) {
            if (t->parent[c] != u) continue;
            any = 1;
            int32_t r = t->rank[c] < STREE_STATS_RANKS ? t->rank[c] : STREE_STATS_RANKS - 1;
            st->offered[d][r]++;
            if (c == next) st->accepted[d][r]++;
        }
        st->positions[d] += any;
    }
}

stree_status stree_seq_step(stree_seq *s, int32_t *out, int32_t cap, int32_t *n_out) {
    if (!s || !out || !n_out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_step: bad arguments");
    *n_out = 0;
    if (s->pending < 0) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_step: no prompt (call stree_seq_prefill)");
    double t0 = stree_now();
    stree_tree_init(&s->tree, s->pending);
    if (s->drafter) {
        s->history[s->n_history] = s->pending;
        STREE_TRY(s->drafter->build(s->drafter, s->history, s->n_history + 1, &s->tree));
    }
    double t1 = stree_now();
    stree_fwd_tree ft = {.n = s->tree.n, .tokens = s->tree.token, .parent = s->tree.parent};
    int32_t path[STREE_TREE_MAX_NODES], bonus, len;
    STREE_TRY(stree_forward_tree(s->target, &ft, 1, NULL));
    if (s->sampling.temperature > 0.0f) {
        STREE_TRY(accept_sampled(s, path, &len, &bonus));
    } else {
        int32_t argmax[STREE_TREE_MAX_NODES]; /* the only verify output the host needs */
        stree_state_topk(s->target, s->tree.n, 1, argmax, NULL);
        len = stree_accept_greedy(&s->tree, argmax, path, &bonus);
    }
    double t2 = stree_now();
    if (cap < len) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_step: out has room for %d tokens, need %d", cap, len);
    int32_t tokens[STREE_TREE_MAX_NODES];
    for (int32_t k = 0; k < len; k++) tokens[k] = s->tree.token[path[k]];
    if (s->drafter) STREE_TRY(s->drafter->can_commit(s->drafter, len));
    STREE_TRY(stree_commit_path(s->target, path, len, tokens[len - 1]));
    if (s->drafter) STREE_TRY(s->drafter->commit(s->drafter, tokens, len, path));
    memcpy(s->history + s->n_history, tokens, (size_t)len * sizeof *tokens);
    s->n_history += len;
    s->pending = bonus;
    for (int32_t k = 1; k < len; k++) out[k - 1] = tokens[k];
    out[len - 1] = bonus;
    *n_out = len;
    double t3 = stree_now();
    s->stats.n_steps++;
    s->stats.n_emitted += len;
    s->stats.n_drafted += s->tree.n - 1;
    s->stats.n_accepted += len - 1;
    s->stats.t_draft += t1 - t0;
    s->stats.t_verify += t2 - t1;
    s->stats.t_commit += t3 - t2;
    record_positions(&s->stats, &s->tree, path, len);
    return STREE_OK;
}

stree_status stree_seq_generate(stree_seq *s, const int32_t *prompt, int32_t n_prompt, int32_t max_new,
                                int stop_at_eos, int32_t *out_tokens, int32_t *n_out, stree_token_fn maybe_on_token,
                                void *user) {
    if (!s || max_new < 0 || (max_new > 0 && !out_tokens) || !n_out)
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_generate: bad arguments");
    *n_out = 0;
    STREE_TRY(stree_seq_prefill(s, prompt, n_prompt));
    int32_t eos = s->engine->target->desc.eos_token, step[STREE_MAX_STEP_TOKENS], n_step;
    while (*n_out < max_new) {
        STREE_TRY(stree_seq_step(s, step, STREE_MAX_STEP_TOKENS, &n_step));
        for (int32_t k = 0; k < n_step && *n_out < max_new; k++) {
            out_tokens[(*n_out)++] = step[k];
            if (maybe_on_token && maybe_on_token(step[k], user)) return STREE_OK;
            if (stop_at_eos && step[k] == eos) return STREE_OK;
        }
    }
    return STREE_OK;
}

stree_status stree_seq_stats(const stree_seq *s, stree_stats *out) {
    if (!s || !out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_seq_stats: bad arguments");
    *out = s->stats;
    return STREE_OK;
}
