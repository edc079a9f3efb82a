/* The tree equivalences every family must pass (DESIGN.md §8), on the CPU reference:
 *   a chain tree's node logits == the sequential forward's;
 *   every node of a random tree has the logits of its root-to-node path run alone;
 *   committing a random accepted path == recomputing the whole sequence from scratch. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model.h"
#include "spec/tree.h"
#include "stree.h"
#include "tests/helpers/fixture_list.h"
#include "tests/helpers/golden.h"

static stree_model *load(const char *name) { return test_load_fixture(name); }

static stree_state *new_state(stree_model *m, int32_t chunk) {
    stree_state *st = NULL;
    cr_assert_eq(stree_state_create(m, 1024, chunk, &st), STREE_OK, "%s", stree_last_error());
    return st;
}

/* max |a - b| / max(max |b|, 1e-6) */
static double rel_err(const float *a, const float *b, size_t n) {
    double err = 0.0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > err) err = d;
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    return err / scale;
}

static const int32_t prompt[] = {3, 17, 5, 42, 8, 1, 99, 23, 7, 64, 12};
#define N_PROMPT ((int32_t)(sizeof prompt / sizeof prompt[0]))

static int32_t vocab_of(stree_model *m) { return m->desc.vocab_size; }

/* Forward a chain of tokens from the state's committed point without committing. */
static void chain_logits(stree_state *st, const int32_t *tokens, int32_t n, float *logits) {
    int32_t parent[STREE_TREE_MAX_NODES];
    for (int32_t i = 0; i < n; i++) parent[i] = i - 1;
    stree_fwd_tree ft = {.n = n, .tokens = tokens, .parent = parent};
    cr_assert_eq(stree_forward_tree_host(st, &ft, logits, NULL), STREE_OK, "%s", stree_last_error());
}

/* A random tree: n nodes, depth <= max_depth, random tokens below vocab (duplicates merged). */
static void random_tree(stree_tree *t, int32_t n, int32_t max_depth, int32_t vocab, unsigned *seed) {
    stree_tree_init(t, (int32_t)(rand_r(seed) % (unsigned)vocab));
    for (int32_t tries = 0; t->n < n && tries < 10 * n; tries++) {
        int32_t p = (int32_t)(rand_r(seed) % (unsigned)t->n);
        if (t->depth[p] >= max_depth) continue;
        int32_t tok = (int32_t)(rand_r(seed) % (unsigned)vocab);
        cr_assert_eq(stree_tree_add(t, p, tok, 0, 0.0f, NULL, NULL), STREE_OK);
    }
}

STREE_FIXTURE_PARAMS(tree, chain_equals_sequential)

ParameterizedTest(fixture_param *p, tree, chain_equals_sequential) {
    stree_model *m = load(p->name);
    int32_t V = vocab_of(m);
    stree_state *a = new_state(m, 64), *b = new_state(m, 1);
    float *la = malloc((size_t)N_PROMPT * V * sizeof(float)), *lb = malloc((size_t)N_PROMPT * V * sizeof(float));
    chain_logits(a, prompt, N_PROMPT, la);
    cr_assert_eq(stree_state_append(b, prompt, N_PROMPT, lb), STREE_OK);
    double e = rel_err(la, lb, (size_t)N_PROMPT * V);
    cr_expect_leq(e, test_equiv_tol(), "%s: chain tree vs sequential: relative error %g", p->name, e);
    free(la), free(lb);
    stree_state_free(a), stree_state_free(b);
    stree_model_free(m);
}

STREE_FIXTURE_PARAMS(tree, nodes_equal_their_paths)

ParameterizedTest(fixture_param *p, tree, nodes_equal_their_paths) {
    stree_model *m = load(p->name);
    int32_t V = vocab_of(m);
    stree_state *st = new_state(m, 64);
    cr_assert_eq(stree_state_append(st, prompt, N_PROMPT, NULL), STREE_OK);
    float *tree_logits = malloc((size_t)64 * V * sizeof(float)), *path_logits = malloc((size_t)9 * V * sizeof(float));
    unsigned seed = 1234;
    stree_tree t;
    double worst = 0.0;
    for (int32_t shape = 0; shape < 24; shape++) {
        int32_t n = 2 + (int32_t)(rand_r(&seed) % 63), depth = 1 + (int32_t)(rand_r(&seed) % 8);
        random_tree(&t, n, depth, V, &seed);
        cr_assert_eq(stree_tree_validate(&t), STREE_OK, "%s", stree_last_error());
        stree_fwd_tree ft = {.n = t.n, .tokens = t.token, .parent = t.parent};
        cr_assert_eq(stree_forward_tree_host(st, &ft, tree_logits, NULL), STREE_OK, "%s", stree_last_error());
        for (int32_t i = 0; i < t.n; i++) {
            int32_t path[STREE_TREE_MAX_NODES], toks[STREE_TREE_MAX_NODES];
            int32_t len = stree_tree_path(&t, i, path);
            for (int32_t k = 0; k < len; k++) toks[k] = t.token[path[k]];
            chain_logits(st, toks, len, path_logits);
            double e = rel_err(tree_logits + (int64_t)i * V, path_logits + (int64_t)(len - 1) * V, (size_t)V);
            if (e > worst) worst = e;
            cr_expect_leq(e, test_equiv_tol(), "%s: tree %d (n %d), node %d (depth %d): relative error %g", p->name, shape, t.n,
                          i, t.depth[i], e);
        }
    }
    cr_log_info("%s: worst node-vs-path relative error %.3g", p->name, worst);
    cr_expect_eq(st->n_committed, N_PROMPT, "verification must not commit");
    free(tree_logits), free(path_logits);
    stree_state_free(st);
    stree_model_free(m);
}

/* Relative difference of two backend buffers of n floats. */
static double buf_diff(const stree_ops *ops, const float *a, const float *b, size_t n) {
    float *ha = malloc(n * sizeof *ha + 1), *hb = malloc(n * sizeof *hb + 1);
    ops->download(ha, a, n * sizeof *ha);
    ops->download(hb, b, n * sizeof *hb);
    double e = rel_err(ha, hb, n);
    free(ha), free(hb);
    return e;
}

/* Relative difference of every committed buffer of two states. */
static double state_diff(const stree_state *a, const stree_state *b) {
    const stree_model_desc *d = &a->model->desc;
    const stree_ops *ops = a->model->ops;
    double worst = 0.0, e;
    for (int32_t i = 0; i < d->n_layers; i++) {
        const stree_layer_desc *l = &d->layers[i];
        if (l->has_attention) {
            size_t n = (size_t)a->n_committed * (size_t)(l->attn.n_kv_heads * l->attn.head_dim);
            e = buf_diff(ops, a->k_cache[l->attn_index], b->k_cache[l->attn_index], n);
            worst = e > worst ? e : worst;
            e = buf_diff(ops, a->v_cache[l->attn_index], b->v_cache[l->attn_index], n);
            worst = e > worst ? e : worst;
        }
        if (l->has_mamba2) {
            const stree_mamba2_desc *md = &l->mamba2;
            e = buf_diff(ops, a->ssm_state[l->mamba_index], b->ssm_state[l->mamba_index],
                         (size_t)md->n_heads * md->head_dim * md->d_state);
            worst = e > worst ? e : worst;
            e = buf_diff(ops, a->conv_state[l->mamba_index], b->conv_state[l->mamba_index],
                         (size_t)(md->d_conv - 1) * md->conv_dim);
            worst = e > worst ? e : worst;
        }
    }
    return worst;
}

STREE_FIXTURE_PARAMS(tree, commit_equals_recompute)

ParameterizedTest(fixture_param *p, tree, commit_equals_recompute) {
    stree_model *m = load(p->name);
    int32_t V = vocab_of(m);
    unsigned seed = 99;
    float *la = malloc((size_t)64 * V * sizeof(float)), *lb = malloc((size_t)64 * V * sizeof(float));
    for (int32_t round = 0; round < 6; round++) {
        stree_state *st = new_state(m, 64), *ref = new_state(m, 64);
        cr_assert_eq(stree_state_append(st, prompt, N_PROMPT, NULL), STREE_OK);
        stree_tree t;
        random_tree(&t, 40, 8, V, &seed);
        stree_fwd_tree ft = {.n = t.n, .tokens = t.token, .parent = t.parent};
        cr_assert_eq(stree_forward_tree_host(st, &ft, la, NULL), STREE_OK);
        int32_t node = (int32_t)(rand_r(&seed) % (unsigned)t.n), path[STREE_TREE_MAX_NODES];
        int32_t len = stree_tree_path(&t, node, path), all[N_PROMPT + STREE_TREE_MAX_NODES];
        memcpy(all, prompt, sizeof prompt);
        for (int32_t k = 0; k < len; k++) all[N_PROMPT + k] = t.token[path[k]];
        cr_assert_eq(stree_commit_path(st, path, len, all[N_PROMPT + len - 1]), STREE_OK, "%s", stree_last_error());
        cr_assert_eq(stree_state_append(ref, all, N_PROMPT + len, NULL), STREE_OK);
        cr_assert_eq(st->n_committed, ref->n_committed);
        double e = state_diff(st, ref);
        cr_expect_leq(e, test_equiv_tol(), "%s: round %d: committed state vs recompute: relative error %g", p->name, round, e);
        /* the next step agrees too */
        int32_t next[3] = {(int32_t)(rand_r(&seed) % (unsigned)V), 5 % V, 11 % V};
        chain_logits(st, next, 3, la);
        chain_logits(ref, next, 3, lb);
        e = rel_err(la, lb, (size_t)3 * V);
        cr_expect_leq(e, test_equiv_tol(), "%s: round %d: next-step logits: relative error %g", p->name, round, e);
        stree_state_free(st);
        stree_state_free(ref);
    }
    free(la), free(lb);
    stree_model_free(m);
}
