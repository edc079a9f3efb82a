/* Lossless stochastic speculation: the empirical joint distribution of the first two generated
 * tokens under tree speculation (draft model with multi-step speculative sampling, draft model with a
 * top-k tree and the target-only rule, n-gram) matches the exact AR sampling distribution
 * (chi-square, 20k samples each on the CPU, 5k on CUDA); with the residual update broken on purpose
 * it does not. */
#define _POSIX_C_SOURCE 200809L /* rand_r */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model.h"
#include "runtime/safetensors.h"
#include "stree.h"
#include "tests/helpers/golden.h"
#include "verify/sampling.h"

/* Generations per chi-square test: 20k on the CPU reference (the acceptance test). On CUDA, whose
 * sampling ops equal the CPU's bitwise (test_cuda_ops), 5k: a check of the whole sampled path that
 * fits the GPU machine's time (a sampled generation there is launch-bound, ~3 ms). */
static int n_samples(void) { return test_backend() == STREE_BACKEND_CUDA ? 5000 : 20000; }

static const int32_t prompt[] = {11, 42, 7, 42, 7, 42};
#define N_PROMPT 6

static stree_sampling_params sampling(void) {
    stree_sampling_params sp = stree_engine_default_params().sampling;
    sp.temperature = 1.5f;
    sp.top_k = 4;
    return sp;
}

/* regularised upper incomplete gamma Q(a, x) (Numerical Recipes' gammq) */
static double gamma_q(double a, double x) {
    if (x <= 0.0) return 1.0;
    double gln = lgamma(a);
    if (x < a + 1.0) {
        double sum = 1.0 / a, del = sum, ap = a;
        for (int n = 0; n < 1000; n++) {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-14) break;
        }
        return 1.0 - sum * exp(-x + a * log(x) - gln);
    }
    double b = x + 1.0 - a, c = 1.0 / 1e-300, d = 1.0 / b, h = d;
    for (int i = 1; i < 1000; i++) {
        double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < 1e-300) d = 1e-300;
        c = b + an / c;
        if (fabs(c) < 1e-300) c = 1e-300;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-14) break;
    }
    return exp(-x + a * log(x) - gln) * h;
}

/* exact P(t1, t2) of AR sampling: [V * V] */
static double *exact_joint(stree_model *m) {
    int32_t V = m->desc.vocab_size;
    stree_sampling_params sp = sampling();
    double *joint = calloc((size_t)V * V, sizeof *joint);
    float *logits = malloc((size_t)(N_PROMPT + 1) * V * sizeof(float)), *p1 = malloc((size_t)V * 4),
          *p2 = malloc((size_t)V * 4);
    uint64_t *scratch = malloc((size_t)V * sizeof *scratch);
    int32_t ctx[N_PROMPT + 1];
    stree_state *st;
    cr_assert_eq(stree_state_create(m, 64, 64, &st), STREE_OK);
    cr_assert_eq(stree_state_append(st, prompt, N_PROMPT, logits), STREE_OK);
    memcpy(ctx, prompt, sizeof prompt);
    stree_sampling_probs(&sp, logits + (size_t)(N_PROMPT - 1) * V, V, ctx, N_PROMPT, p1, scratch);
    for (int32_t t1 = 0; t1 < V; t1++) {
        if (p1[t1] <= 0.0f) continue;
        stree_state_reset(st);
        ctx[N_PROMPT] = t1;
        cr_assert_eq(stree_state_append(st, ctx, N_PROMPT + 1, logits), STREE_OK);
        stree_sampling_probs(&sp, logits + (size_t)N_PROMPT * V, V, ctx, N_PROMPT + 1, p2, scratch);
        for (int32_t t2 = 0; t2 < V; t2++) joint[(size_t)t1 * V + t2] = (double)p1[t1] * p2[t2];
    }
    stree_state_free(st);
    free(logits), free(p1), free(p2), free(scratch);
    return joint;
}

/* p-value of the chi-square test of n_samples() generations against the exact joint */
static double chi_square_p(stree_engine *e, const double *joint, int32_t V) {
    int64_t *counts = calloc((size_t)V * V, sizeof *counts);
    stree_seq *seq;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK, "%s", stree_last_error());
    int N = n_samples();
    for (int i = 0; i < N; i++) {
        int32_t out[2], n = 0;
        stree_seq_reset(seq);
        stree_seq_seed(seq, 1000003u * (uint64_t)i + 17u);
        cr_assert_eq(stree_seq_generate(seq, prompt, N_PROMPT, 2, 0, out, &n, NULL, NULL), STREE_OK, "%s",
                     stree_last_error());
        cr_assert_eq(n, 2);
        counts[(size_t)out[0] * V + out[1]]++;
    }
    stree_seq_free(seq);
    /* cells with expected count >= 5, the rest pooled into one cell */
    double chi = 0.0, pooled_e = 0.0, pooled_o = 0.0;
    int cells = 0;
    for (size_t c = 0; c < (size_t)V * V; c++) {
        double ex = joint[c] * N;
        if (ex >= 5.0) {
            double d = (double)counts[c] - ex;
            chi += d * d / ex;
            cells++;
        } else {
            pooled_e += ex;
            pooled_o += (double)counts[c];
            cr_expect(joint[c] > 0.0 || counts[c] == 0, "a token pair of probability 0 was generated");
        }
    }
    if (pooled_e > 0.0) {
        double d = pooled_o - pooled_e;
        chi += d * d / (pooled_e > 1e-9 ? pooled_e : 1e-9);
        cells++;
    }
    free(counts);
    double p = gamma_q(0.5 * (cells - 1), 0.5 * chi);
    cr_log_info("chi-square %.2f over %d cells: p = %.4f", chi, cells, p);
    return p;
}

typedef struct setup {
    stree_model *target, *draft;
    double *joint;
    char dir[256];
} setup;

/* The draft: a copy of the target with its final norm scaled, so its logits are the target's x 0.6:
 * the same top-k set with other probabilities, which makes speculative sampling reject, and so
 * exercises the residual update (a draft with disjoint support would never need it). */
static stree_model *perturbed_copy(const char *name, const char *tensor, float scale, char *dir) {
    snprintf(dir, 256, "%s", temp_dir());
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/config.json", fixture_dir(name));
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    cr_assert(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in), fclose(out);
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_dir(name));
    in = fopen(src, "rb");
    cr_assert_not_null(in);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    cr_assert_eq(fread(bytes, 1, (size_t)size, in), (size_t)size);
    fclose(in);
    stree_checkpoint *ck;
    cr_assert_eq(stree_checkpoint_open(src, &ck), STREE_OK);
    const stree_st_tensor *t = stree_checkpoint_find(ck, tensor);
    cr_assert(t && t->dtype == STREE_DTYPE_F32);
    char *at = NULL; /* the tensor's bytes in the copy: the mapping mirrors the file */
    for (long off = 0; off + (long)t->n_bytes <= size && !at; off += 4)
        if (!memcmp(bytes + off, t->data, t->n_bytes)) at = bytes + off;
    cr_assert_not_null(at);
    for (int64_t i = 0; i < t->n_elements; i++) {
        float v;
        memcpy(&v, at + 4 * i, 4);
        v *= scale;
        memcpy(at + 4 * i, &v, 4);
    }
    stree_checkpoint_close(ck);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    out = fopen(dst, "wb");
    cr_assert_eq(fwrite(bytes, 1, (size_t)size, out), (size_t)size);
    fclose(out);
    free(bytes);
    stree_model *m = NULL;
    stree_model_params mp = stree_model_default_params();
    mp.backend = test_backend();
    cr_assert_eq(stree_model_load(dir, mp, &m), STREE_OK, "%s", stree_last_error());
    return m;
}

static setup load(void) {
    setup s;
    s.target = test_load_fixture("granite_dense");
    s.draft = perturbed_copy("granite_dense", "model.norm.weight", 0.6f, s.dir);
    s.joint = exact_joint(s.target);
    return s;
}

static void unload(setup *s) {
    free(s->joint);
    stree_model_free(s->draft);
    stree_model_free(s->target);
    temp_dir_remove(s->dir);
}

static double run(setup *s, stree_drafter_kind drafter, stree_tree_kind tree, int break_residual) {
    stree_engine_params ep = stree_engine_default_params();
    ep.sampling = sampling();
    ep.drafter = drafter;
    ep.draft_model = s->draft;
    ep.tree = tree;
    ep.branching[0] = 3, ep.branching[1] = 2, ep.branching[2] = 0;
    ep.top_k = 3, ep.depth = 2, ep.budget = 8;
    ep.test_break_residual = break_residual;
    stree_engine *e;
    cr_assert_eq(stree_engine_create(s->target, ep, &e), STREE_OK, "%s", stree_last_error());
    double p = chi_square_p(e, s->joint, s->target->desc.vocab_size);
    stree_engine_free(e);
    return p;
}

Test(sampling, ar_matches_exact) {
    setup s = load();
    cr_expect_gt(run(&s, STREE_DRAFTER_NONE, STREE_TREE_CHAIN, 0), 0.01);
    unload(&s);
}

Test(sampling, draft_model_speculative_sampling) {
    setup s = load();
    cr_expect_gt(run(&s, STREE_DRAFTER_MODEL, STREE_TREE_BRANCHING, 0), 0.01);
    unload(&s);
}

Test(sampling, draft_model_topk_tree_target_only) {
    setup s = load();
    cr_expect_gt(run(&s, STREE_DRAFTER_MODEL, STREE_TREE_DYNAMIC, 0), 0.01);
    unload(&s);
}

Test(sampling, ngram_target_only) {
    setup s = load();
    cr_expect_gt(run(&s, STREE_DRAFTER_NGRAM, STREE_TREE_BRANCHING, 0), 0.01);
    unload(&s);
}

Test(sampling, broken_residual_is_detected) {
    setup s = load();
    cr_expect_lt(run(&s, STREE_DRAFTER_MODEL, STREE_TREE_BRANCHING, 1), 0.01,
                 "the test must catch a speculative-sampling rule without the residual update");
    unload(&s);
}

Test(sampling, same_seed_same_output) {
    setup s = load();
    stree_engine_params ep = stree_engine_default_params();
    ep.sampling = sampling();
    ep.sampling.seed = 99;
    ep.drafter = STREE_DRAFTER_MODEL;
    ep.draft_model = s.draft;
    ep.tree = STREE_TREE_BRANCHING;
    ep.branching[0] = 2, ep.branching[1] = 2, ep.branching[2] = 0;
    stree_engine *e;
    cr_assert_eq(stree_engine_create(s.target, ep, &e), STREE_OK);
    int32_t a[32], b[32], na = 0, nb = 0;
    stree_seq *seq;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    cr_assert_eq(stree_seq_generate(seq, prompt, N_PROMPT, 32, 0, a, &na, NULL, NULL), STREE_OK);
    stree_seq_reset(seq);
    cr_assert_eq(stree_seq_generate(seq, prompt, N_PROMPT, 32, 0, b, &nb, NULL, NULL), STREE_OK);
    cr_assert_eq(na, nb);
    for (int i = 0; i < na; i++) cr_expect_eq(a[i], b[i], "token %d", i);
    stree_seq_free(seq);
    stree_engine_free(e);
    unload(&s);
}

/* ---- the sampling transform op against the sort-based implementation it replaced (double sums,
 * ranking by probability): same kept sets, same probabilities to float rounding */
static void sorted_reference(const stree_sampling_params *sp, const float *logits, int32_t V, const int32_t *ctx,
                             int32_t n_ctx, float *probs, int32_t *idx) {
    memcpy(probs, logits, (size_t)V * sizeof *probs);
    if (sp->repetition_penalty != 1.0f)
        for (int32_t i = 0; i < n_ctx; i++) {
            float l = logits[ctx[i]];
            probs[ctx[i]] = l > 0.0f ? l / sp->repetition_penalty : l * sp->repetition_penalty;
        }
    float mx = -INFINITY;
    for (int32_t i = 0; i < V; i++) mx = fmaxf(mx, probs[i] /= sp->temperature);
    double sum = 0.0;
    for (int32_t i = 0; i < V; i++) sum += (probs[i] = expf(probs[i] - mx));
    for (int32_t i = 0; i < V; i++) probs[i] = (float)(probs[i] / sum);
    for (int32_t i = 0; i < V; i++) idx[i] = i;
    for (int32_t i = 1; i < V; i++) { /* by probability, ties by index */
        int32_t v = idx[i], j = i;
        for (; j > 0 && (probs[idx[j - 1]] < probs[v] || (probs[idx[j - 1]] == probs[v] && idx[j - 1] > v)); j--)
            idx[j] = idx[j - 1];
        idx[j] = v;
    }
    int32_t keep = sp->top_k > 0 && sp->top_k < V ? sp->top_k : V;
    if (sp->top_p < 1.0f) {
        double mass = 0.0, kept = 0.0;
        for (int32_t i = 0; i < keep; i++) mass += probs[idx[i]];
        int32_t j = 0;
        while (j < keep && kept < sp->top_p) kept += probs[idx[j++]] / mass;
        keep = j;
    }
    for (int32_t i = keep; i < V; i++) probs[idx[i]] = 0.0f;
    float top = probs[idx[0]];
    for (int32_t i = 0; i < V; i++)
        if (probs[i] < sp->min_p * top) probs[i] = 0.0f;
    sum = 0.0;
    for (int32_t i = 0; i < V; i++) sum += probs[i];
    for (int32_t i = 0; i < V; i++) probs[i] = (float)(probs[i] / sum);
}

Test(sampling, transform_matches_sorted_reference) {
    /* temperature, top_k, top_p, min_p, repetition penalty */
    static const float cfg[][5] = {{1.0f, 0, 1.0f, 0, 1.0f},      {0.7f, 40, 1.0f, 0, 1.0f},  {1.3f, 0, 0.9f, 0, 1.0f},
                                   {0.8f, 50, 0.8f, 0.05f, 1.3f}, {1.0f, 1, 1.0f, 0, 1.0f},   {2.0f, 0, 0.3f, 0, 0.7f},
                                   {1.0f, 0, 1.0f, 0.2f, 1.1f},   {0.5f, 900, 0.95f, 0, 1.0f}};
    int32_t V = 3000, ctx[20];
    float *logits = malloc((size_t)V * 4), *a = malloc((size_t)V * 4), *b = malloc((size_t)V * 4);
    uint64_t *scratch = malloc((size_t)V * 8);
    int32_t *idx = malloc((size_t)V * 4);
    unsigned rs = 4242;
    for (int rep = 0; rep < 4; rep++)
        for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
            for (int32_t v = 0; v < V; v++) logits[v] = ((float)rand_r(&rs) / (float)RAND_MAX - 0.5f) * 12.0f;
            logits[5] = logits[17] = logits[400] = 6.5f; /* ties at the top */
            for (int i = 0; i < 20; i++) ctx[i] = i < 10 ? (int32_t)(rand_r(&rs) % (unsigned)V) : ctx[i - 10];
            stree_sampling_params sp = stree_engine_default_params().sampling;
            sp.temperature = cfg[c][0], sp.top_k = (int32_t)cfg[c][1], sp.top_p = cfg[c][2], sp.min_p = cfg[c][3];
            sp.repetition_penalty = cfg[c][4];
            stree_sampling_probs(&sp, logits, V, ctx, 20, a, scratch);
            sorted_reference(&sp, logits, V, ctx, 20, b, idx);
            int32_t diff_set = 0;
            double err = 0.0, total = 0.0;
            for (int32_t v = 0; v < V; v++) {
                diff_set += (a[v] > 0.0f) != (b[v] > 0.0f);
                err = fmax(err, fabs((double)a[v] - b[v]) / fmax((double)b[v], 1e-30));
                total += a[v];
            }
            cr_expect_eq(diff_set, 0, "rep %d config %zu: %d tokens kept by one implementation only", rep, c, diff_set);
            cr_expect_lt(err, 2e-6, "rep %d config %zu: max relative difference %g", rep, c, err);
            cr_expect_lt(fabs(total - 1.0), 1e-5, "rep %d config %zu: sums to %.8f", rep, c, total);
        }
    free(logits), free(a), free(b), free(scratch), free(idx);
}
