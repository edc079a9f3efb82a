/* Engine and sequence API: config files, bad tree configs, vocabulary checks, and failed steps
 * leaving the committed state unchanged. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stree.h"
#include "tests/helpers/golden.h"
#include "tests/helpers/tiny_ckpt.h"

static stree_model_params test_params(void) {
    stree_model_params mp = stree_model_default_params();
    mp.backend = test_backend();
    return mp;
}

static stree_model *load_dir(const char *dir) {
    stree_model *m = NULL;
    stree_model_params mp = stree_model_default_params();
    mp.backend = test_backend();
    cr_assert_eq(stree_model_load(dir, mp, &m), STREE_OK, "%s: %s", dir, stree_last_error());
    return m;
}

static void expect_engine_error(stree_model *target, stree_engine_params ep, stree_status want, const char *needle) {
    stree_engine *e = (stree_engine *)0x1;
    stree_status s = stree_engine_create(target, ep, &e);
    cr_expect_eq(s, want, "got %s: %s", stree_status_str(s), stree_last_error());
    cr_expect_null(e);
    cr_expect(strstr(stree_last_error(), needle) != NULL, "'%s' not in: %s", needle, stree_last_error());
}

Test(engine, draft_vocabulary_mismatch) {
    stree_model *target = load_dir(fixture_dir("llama"));
    const char *dir = temp_dir();
    cr_assert_eq(write_text(dir, "config.json", tiny_llama_config(8)), 0);
    cr_assert_eq(tiny_llama_write(dir, NULL, NULL), 0);
    stree_model *draft = load_dir(dir);
    stree_engine_params ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_MODEL;
    ep.draft_model = draft;
    expect_engine_error(target, ep, STREE_ERR_INVALID_ARG, "vocabulary of 8 tokens");
    stree_model_free(draft);
    stree_model_free(target);
    temp_dir_remove(dir);
}

Test(engine, bad_tree_params) {
    stree_model *target = load_dir(fixture_dir("llama"));
    stree_engine_params ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_SELF;
    ep.chain_length = 0;
    expect_engine_error(target, ep, STREE_ERR_INVALID_ARG, "");
    ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_SELF;
    ep.tree = STREE_TREE_DYNAMIC;
    ep.budget = 0;
    expect_engine_error(target, ep, STREE_ERR_INVALID_ARG, "budget");
    ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_NGRAM;
    ep.tree = STREE_TREE_BRANCHING;
    ep.branching[0] = 8, ep.branching[1] = 8, ep.branching[2] = 8, ep.branching[3] = 0; /* 585 nodes */
    expect_engine_error(target, ep, STREE_ERR_INVALID_ARG, "256");
    ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_MODEL; /* no draft model given */
    expect_engine_error(target, ep, STREE_ERR_INVALID_ARG, "draft_model");
    stree_model_free(target);
}

static void expect_tree_file_error(const char *json, stree_status want, const char *needle) {
    stree_model *target = load_dir(fixture_dir("llama"));
    const char *dir = temp_dir();
    cr_assert_eq(write_text(dir, "tree.json", json), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/tree.json", dir);
    stree_engine_params ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_SELF;
    ep.tree = STREE_TREE_FILE;
    ep.tree_file = path;
    expect_engine_error(target, ep, want, needle);
    cr_expect(strstr(stree_last_error(), "tree.json") != NULL, "file not named: %s", stree_last_error());
    stree_model_free(target);
    temp_dir_remove(dir);
}

Test(engine, tree_file_malformed_json) { expect_tree_file_error("{\"type\": \"chain\", ", STREE_ERR_FORMAT, "JSON"); }
Test(engine, tree_file_missing_prefix) {
    expect_tree_file_error("{\"tree\": {\"type\": \"static\", \"paths\": [[0], [1, 0]]}}", STREE_ERR_CONFIG, "prefix");
}
Test(engine, tree_file_dynamic_budget_zero) {
    expect_tree_file_error("{\"type\": \"dynamic\", \"top_k\": 2, \"depth\": 3, \"budget\": 0}", STREE_ERR_CONFIG,
                           "budget");
}
Test(engine, tree_file_unknown_key) {
    expect_tree_file_error("{\"type\": \"chain\", \"lenght\": 3}", STREE_ERR_CONFIG, "lenght");
}

/* AR reference tokens for a fixture. */
static void ar_tokens(stree_model *m, const golden *g, int32_t n_new, int32_t *out) {
    stree_engine *e = NULL;
    cr_assert_eq(stree_engine_create(m, stree_engine_default_params(), &e), STREE_OK);
    stree_seq *seq = NULL;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    int32_t n = 0;
    cr_assert_eq(stree_seq_generate(seq, g->input_ids, g->n_input, n_new, 0, out, &n, NULL, NULL), STREE_OK);
    stree_seq_free(seq);
    stree_engine_free(e);
}

Test(engine, config_file_engine_matches_ar) {
    golden g;
    cr_assert_eq(golden_load(fixture_dir("nemotron_h"), &g), 0);
    stree_model *m = load_dir(fixture_dir("nemotron_h"));
    int32_t ar[40], sp[40], n = 0;
    ar_tokens(m, &g, 40, ar);
    const char *dir = temp_dir();
    char cfg[2048], path[256];
    snprintf(cfg, sizeof cfg,
             "{\"target\": \"%s\", \"draft\": \"%s\", \"drafter\": \"model\", \"n_ctx\": 512,\n"
             " \"tree\": {\"type\": \"static\", \"paths\": [[0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 0]]}}",
             fixture_dir("nemotron_h"), fixture_dir("llama"));
    cr_assert_eq(write_text(dir, "engine.json", cfg), 0);
    snprintf(path, sizeof path, "%s/engine.json", dir);
    stree_engine *e = NULL;
    cr_assert_eq(stree_engine_create_from_config(path, test_params(), &e), STREE_OK, "%s",
                 stree_last_error());
    stree_seq *seq = NULL;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    cr_assert_eq(stree_seq_generate(seq, g.input_ids, g.n_input, 40, 0, sp, &n, NULL, NULL), STREE_OK, "%s",
                 stree_last_error());
    cr_assert_eq(n, 40);
    for (int i = 0; i < 40; i++) cr_expect_eq(sp[i], ar[i], "token %d", i);
    stree_seq_free(seq);
    stree_engine_free(e);
    stree_model_free(m);
    golden_free(&g);
    temp_dir_remove(dir);
}

Test(engine, config_file_errors) {
    const char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/engine.json", dir);
    stree_engine *e = NULL;
    cr_assert_eq(write_text(dir, "engine.json", "{\"target\": \"x\", \"drafter\": \"magic\"}"), 0);
    cr_expect_eq(stree_engine_create_from_config(path, test_params(), &e), STREE_ERR_CONFIG);
    cr_expect(strstr(stree_last_error(), "drafter") != NULL, "%s", stree_last_error());
    cr_assert_eq(write_text(dir, "engine.json", "{\"target\": \"x\", \"tree_shape\": 3}"), 0);
    cr_expect_eq(stree_engine_create_from_config(path, test_params(), &e), STREE_ERR_CONFIG);
    cr_expect(strstr(stree_last_error(), "tree_shape") != NULL, "%s", stree_last_error());
    cr_assert_eq(write_text(dir, "engine.json", "{\"target\": \"no-such-model\"}"), 0);
    cr_expect_eq(stree_engine_create_from_config(path, test_params(), &e), STREE_ERR_IO);
    cr_expect(strstr(stree_last_error(), "no-such-model") != NULL, "%s", stree_last_error());
    cr_expect_null(e);
    temp_dir_remove(dir);
}

Test(engine, failed_step_leaves_state_unchanged) {
    golden g;
    cr_assert_eq(golden_load(fixture_dir("falcon_h1"), &g), 0);
    stree_model *m = load_dir(fixture_dir("falcon_h1"));
    int32_t ar[30];
    ar_tokens(m, &g, 30, ar);
    stree_engine_params ep = stree_engine_default_params();
    ep.drafter = STREE_DRAFTER_SELF;
    stree_engine *e = NULL;
    cr_assert_eq(stree_engine_create(m, ep, &e), STREE_OK);
    stree_seq *seq = NULL;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    cr_assert_eq(stree_seq_prefill(seq, g.input_ids, g.n_input), STREE_OK);
    int32_t before = stree_seq_n_committed(seq), out[STREE_MAX_STEP_TOKENS], n = 0, got = 0, all[64];
    /* fails after the verify pass (no room for the output), before any commit */
    cr_expect_eq(stree_seq_step(seq, out, 0, &n), STREE_ERR_INVALID_ARG);
    cr_expect_eq(n, 0);
    cr_expect_eq(stree_seq_n_committed(seq), before);
    /* the sequence carries on exactly as if the failed call never happened */
    while (got < 30) {
        cr_assert_eq(stree_seq_step(seq, out, STREE_MAX_STEP_TOKENS, &n), STREE_OK, "%s", stree_last_error());
        for (int32_t k = 0; k < n; k++) all[got++] = out[k];
    }
    for (int i = 0; i < 30; i++) cr_expect_eq(all[i], ar[i], "token %d after a failed step", i);
    stree_seq_free(seq);
    stree_engine_free(e);

    /* a context too small for the tree: the step fails, nothing is committed */
    ep.n_ctx = g.n_input + 2;
    cr_assert_eq(stree_engine_create(m, ep, &e), STREE_OK);
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    cr_assert_eq(stree_seq_prefill(seq, g.input_ids, g.n_input), STREE_OK);
    before = stree_seq_n_committed(seq);
    cr_expect_eq(stree_seq_step(seq, out, STREE_MAX_STEP_TOKENS, &n), STREE_ERR_CONTEXT_FULL, "%s", stree_last_error());
    cr_expect_eq(stree_seq_n_committed(seq), before);
    stree_seq_free(seq);
    stree_engine_free(e);
    stree_model_free(m);
    golden_free(&g);
}
