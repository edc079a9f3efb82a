/* Same seed -> same sampled output, through the public API, on the backend STREE_TEST_BACKEND picks
 * (CPU here, CUDA on the GPU machine): AR, a draft model with speculative sampling over a sampled
 * static tree (also with the draft on the CPU), a draft model's top-k tree and n-gram drafts
 * (target-only rule). A fresh sequence, a reset one and a reseeded one repeat the output; another
 * seed changes it. */
#include <criterion/criterion.h>
#include <string.h>

#include "stree.h"
#include "tests/helpers/golden.h"

#define N_NEW 40

static const int32_t prompt[] = {11, 42, 7, 42, 7, 42, 3, 99};
#define N_PROMPT 8

static void generate(stree_seq *seq, int32_t *out) {
    int32_t n = 0;
    cr_assert_eq(stree_seq_generate(seq, prompt, N_PROMPT, N_NEW, 0, out, &n, NULL, NULL), STREE_OK, "%s",
                 stree_last_error());
    cr_assert_eq(n, N_NEW);
}

static void check(stree_drafter_kind drafter, stree_tree_kind tree, int draft_on_cpu, const char *what) {
    stree_model *target = test_load_fixture("granite_dense"), *draft = NULL;
    if (draft_on_cpu) { /* with a CUDA target: q crosses backends through the host */
        stree_model_params mp = stree_model_default_params();
        mp.backend = STREE_BACKEND_CPU;
        cr_assert_eq(stree_model_load(fixture_dir("llama"), mp, &draft), STREE_OK, "%s", stree_last_error());
    } else {
        draft = test_load_fixture("llama");
    }
    stree_engine_params ep = stree_engine_default_params();
    ep.sampling.temperature = 1.2f;
    ep.sampling.top_k = 40;
    ep.sampling.top_p = 0.95f;
    ep.sampling.min_p = 0.01f;
    ep.sampling.repetition_penalty = 1.1f;
    ep.sampling.seed = 5;
    ep.drafter = drafter;
    ep.draft_model = draft;
    ep.tree = tree;
    ep.branching[0] = 3, ep.branching[1] = 2, ep.branching[2] = 0;
    ep.top_k = 3, ep.depth = 3, ep.budget = 10;
    stree_engine *e;
    cr_assert_eq(stree_engine_create(target, ep, &e), STREE_OK, "%s", stree_last_error());
    int32_t a[N_NEW], b[N_NEW], c[N_NEW], d[N_NEW], other[N_NEW];
    stree_seq *s1, *s2;
    cr_assert_eq(stree_seq_create(e, &s1), STREE_OK, "%s", stree_last_error());
    cr_assert_eq(stree_seq_create(e, &s2), STREE_OK, "%s", stree_last_error());
    generate(s1, a);
    generate(s2, b); /* a fresh sequence */
    stree_seq_reset(s1);
    generate(s1, c); /* a reset one */
    stree_seq_reset(s1);
    stree_seq_seed(s1, 6);
    generate(s1, other);
    stree_seq_reset(s1);
    stree_seq_seed(s1, 5);
    generate(s1, d); /* reseeded */
    int same_other = 1;
    for (int i = 0; i < N_NEW; i++) {
        cr_expect_eq(b[i], a[i], "%s: fresh sequence, token %d: %d vs %d", what, i, b[i], a[i]);
        cr_expect_eq(c[i], a[i], "%s: reset sequence, token %d: %d vs %d", what, i, c[i], a[i]);
        cr_expect_eq(d[i], a[i], "%s: reseeded sequence, token %d: %d vs %d", what, i, d[i], a[i]);
        same_other &= other[i] == a[i];
    }
    cr_expect(!same_other, "%s: seeds 5 and 6 gave the same %d tokens", what, N_NEW);
    stree_seq_free(s1);
    stree_seq_free(s2);
    stree_engine_free(e);
    stree_model_free(draft);
    stree_model_free(target);
}

Test(sampling_seed, ar) { check(STREE_DRAFTER_NONE, STREE_TREE_CHAIN, 0, "ar"); }
Test(sampling_seed, draft_model_speculative_sampling) {
    check(STREE_DRAFTER_MODEL, STREE_TREE_BRANCHING, 0, "draft model, sampled static tree");
}
Test(sampling_seed, cpu_draft_model_speculative_sampling) {
    check(STREE_DRAFTER_MODEL, STREE_TREE_BRANCHING, 1, "CPU draft model, sampled static tree");
}
Test(sampling_seed, draft_model_dynamic_target_only) {
    check(STREE_DRAFTER_MODEL, STREE_TREE_DYNAMIC, 0, "draft model, dynamic tree");
}
Test(sampling_seed, ngram_target_only) { check(STREE_DRAFTER_NGRAM, STREE_TREE_BRANCHING, 0, "n-gram"); }
