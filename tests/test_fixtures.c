/* Every HF golden fixture: the engine's logits match transformers (fp32, <= 1e-4 x max|golden|),
 * greedy generation matches token for token — through the library and through the stree CLI —
 * and the result does not depend on how the prompt is chunked (tree forward + closed-form commit). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "runtime/config_json.h"

#include "stree.h"
#include "tests/helpers/fixture_list.h"
#include "tests/helpers/golden.h"

STREE_FIXTURE_PARAMS(fixtures, logits)

static stree_model *load(const char *name) { return test_load_fixture(name); }

static stree_seq *ar_seq(stree_model *m, int32_t chunk, stree_engine **e) {
    stree_engine_params ep = stree_engine_default_params();
    ep.chunk_size = chunk;
    cr_assert_eq(stree_engine_create(m, ep, e), STREE_OK, "%s", stree_last_error());
    stree_seq *seq = NULL;
    cr_assert_eq(stree_seq_create(*e, &seq), STREE_OK, "%s", stree_last_error());
    return seq;
}

static float *run_logits(stree_model *m, const golden *g, int32_t chunk) {
    stree_engine *e;
    stree_seq *seq = ar_seq(m, chunk, &e);
    float *lg = malloc((size_t)g->n_input * (size_t)g->vocab * sizeof *lg);
    cr_assert_not_null(lg);
    cr_assert_eq(stree_seq_append(seq, g->input_ids, g->n_input, lg), STREE_OK, "%s", stree_last_error());
    cr_assert_eq(stree_seq_n_committed(seq), g->n_input);
    stree_seq_free(seq);
    stree_engine_free(e);
    return lg;
}

static void max_err(const float *a, const float *b, size_t n, double *err, double *scale) {
    *err = 0.0;
    *scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > *err) *err = d;
        if (fabs((double)b[i]) > *scale) *scale = fabs((double)b[i]);
    }
}

ParameterizedTest(fixture_param *p, fixtures, logits) {
    golden g;
    cr_assert_eq(golden_load(fixture_dir(p->name), &g), 0, "%s: no golden", p->name);
    stree_model *m = load(p->name);
    cr_assert_eq(stree_model_vocab_size(m), g.vocab);
    float *lg = run_logits(m, &g, 64);
    double err, scale;
    max_err(lg, g.logits, (size_t)g.n_input * (size_t)g.vocab, &err, &scale);
    cr_log_info("%s: max |err| %.3g, max |golden| %.3g", p->name, err, scale);
    cr_expect_leq(err, test_golden_tol() * scale, "%s: max |err| %g > %g x %g", p->name, err, test_golden_tol(), scale);
    free(lg);
    golden_free(&g);
    stree_model_free(m);
}

STREE_FIXTURE_PARAMS(fixtures, greedy)

ParameterizedTest(fixture_param *p, fixtures, greedy) {
    if (test_backend() == STREE_BACKEND_CUDA)
        cr_skip_test("greedy ids vs the fp32 golden: bf16 rounding can flip near-ties; CUDA checks logits only");
    golden g;
    cr_assert_eq(golden_load(fixture_dir(p->name), &g), 0);
    stree_model *m = load(p->name);
    stree_engine *e;
    stree_seq *seq = ar_seq(m, 64, &e);
    int32_t *out = calloc((size_t)g.n_greedy, sizeof *out), n_out = 0;
    cr_assert_eq(stree_seq_generate(seq, g.input_ids, g.n_input, g.n_greedy, 0, out, &n_out, NULL, NULL), STREE_OK,
                 "%s", stree_last_error());
    cr_assert_eq(n_out, g.n_greedy);
    for (int32_t i = 0; i < n_out; i++)
        cr_expect_eq(out[i], g.greedy_ids[i], "%s: token %d: got %d, golden %d", p->name, i, out[i], g.greedy_ids[i]);
    free(out);
    stree_seq_free(seq);
    stree_engine_free(e);
    golden_free(&g);
    stree_model_free(m);
}

STREE_FIXTURE_PARAMS(fixtures, chunking)

/* Prefill in one chunk == chunks of 5 == token by token: each chunk is a chain forward followed by
 * the closed-form commit, so this checks the commit against the in-chunk scan. */
ParameterizedTest(fixture_param *p, fixtures, chunking) {
    golden g;
    cr_assert_eq(golden_load(fixture_dir(p->name), &g), 0);
    stree_model *m = load(p->name);
    float *whole = run_logits(m, &g, 64), *by5 = run_logits(m, &g, 5), *by1 = run_logits(m, &g, 1);
    size_t n = (size_t)g.n_input * (size_t)g.vocab;
    double e5, e1, scale;
    max_err(by5, whole, n, &e5, &scale);
    max_err(by1, whole, n, &e1, &scale);
    cr_expect_leq(e5, test_equiv_tol() * scale, "%s: chunk 5 vs whole: %g (scale %g)", p->name, e5, scale);
    cr_expect_leq(e1, test_equiv_tol() * scale, "%s: chunk 1 vs whole: %g (scale %g)", p->name, e1, scale);
    free(whole), free(by5), free(by1);
    golden_free(&g);
    stree_model_free(m);
}

/* ---- the CLI: stree logits / stree generate ---- */
static char *join_ids(const int32_t *ids, int32_t n) {
    char *s = malloc((size_t)n * 12 + 1);
    size_t len = 0;
    s[0] = '\0';
    for (int32_t i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s%d", i ? "," : "", ids[i]);
    return s;
}

STREE_FIXTURE_PARAMS(fixtures, cli)

ParameterizedTest(fixture_param *p, fixtures, cli) {
    if (test_backend() == STREE_BACKEND_CUDA) cr_skip_test("the CLI suite runs on the CPU backend");
    golden g;
    cr_assert_eq(golden_load(fixture_dir(p->name), &g), 0);
    const char *tmp = temp_dir();
    cr_assert_not_null(tmp);
    char *ids = join_ids(g.input_ids, g.n_input), cmd[8192], out_path[256];
    snprintf(out_path, sizeof out_path, "%s/logits.f32", tmp);
    snprintf(cmd, sizeof cmd, "'%s' logits --backend cpu --model '%s' --tokens %s --out '%s' 2>/dev/null", STREE_CLI_PATH,
             fixture_dir(p->name), ids, out_path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    size_t n = (size_t)g.n_input * (size_t)g.vocab;
    float *lg = malloc(n * sizeof *lg);
    FILE *f = fopen(out_path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(lg, sizeof *lg, n, f), n);
    cr_assert_eq(fgetc(f), EOF, "logits file longer than [n_tokens x vocab]");
    fclose(f);
    double err, scale;
    max_err(lg, g.logits, n, &err, &scale);
    cr_expect_leq(err, 1e-4 * scale, "%s: CLI logits max |err| %g", p->name, err);

    snprintf(cmd, sizeof cmd, "'%s' generate --backend cpu --model '%s' --tokens %s --max-new %d --greedy --ids --no-eos 2>/dev/null",
             STREE_CLI_PATH, fixture_dir(p->name), ids, g.n_greedy);
    FILE *pipe = popen(cmd, "r");
    cr_assert_not_null(pipe);
    for (int32_t i = 0; i < g.n_greedy; i++) {
        int tok = -1;
        cr_assert_eq(fscanf(pipe, "%d", &tok), 1, "%s: CLI printed fewer than %d ids", p->name, g.n_greedy);
        cr_expect_eq(tok, g.greedy_ids[i], "%s: CLI token %d: got %d, golden %d", p->name, i, tok, g.greedy_ids[i]);
    }
    cr_expect_eq(pclose(pipe), 0);
    free(lg);
    free(ids);
    temp_dir_remove(tmp);
    golden_free(&g);
}

/* ---- config spellings found in the wild, rewritten from a fixture's config.json ---- */
/* Copies fixture `name` into a temp dir with config.json edited by `edit`; returns the dir. */
static const char *rewritten_fixture(const char *name, void (*edit)(cJSON *cfg)) {
    const char *dir = temp_dir();
    cr_assert_not_null(dir);
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/config.json", fixture_dir(name));
    cJSON *cfg = NULL; /* the loader's reader: hub configs carry bare Infinity */
    cr_assert_eq(stree_json_load(src, &cfg), STREE_OK, "%s", stree_last_error());
    edit(cfg);
    char *out = cJSON_Print(cfg);
    cr_assert_eq(write_text(dir, "config.json", out), 0);
    free(out);
    cJSON_Delete(cfg);
    const char *files[2] = {"model.safetensors", "golden.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s", fixture_dir(name), files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        cr_assert_eq(symlink(src, dst), 0);
    }
    return dir;
}

static void expect_golden_logits(const char *dir, const char *what) {
    golden g;
    cr_assert_eq(golden_load(dir, &g), 0);
    stree_model *m = NULL;
    stree_model_params mp = stree_model_default_params();
    mp.backend = test_backend();
    cr_assert_eq(stree_model_load(dir, mp, &m), STREE_OK, "%s: %s", what, stree_last_error());
    float *lg = run_logits(m, &g, 64);
    double err, scale;
    max_err(lg, g.logits, (size_t)g.n_input * (size_t)g.vocab, &err, &scale);
    cr_expect_leq(err, test_golden_tol() * scale, "%s: max |err| %g (scale %g)", what, err, scale);
    free(lg);
    golden_free(&g);
    stree_model_free(m);
}

/* Hub-style Bamba: only a top-level rope_theta and a top-level partial_rotary_factor, which
 * transformers ignores (it keeps 0.5). */
static void bamba_hub_rope(cJSON *cfg) {
    cJSON *rp = cJSON_GetObjectItemCaseSensitive(cfg, "rope_parameters");
    double theta = cJSON_GetObjectItemCaseSensitive(rp, "rope_theta")->valuedouble;
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "rope_parameters");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "partial_rotary_factor");
    cJSON_AddNumberToObject(cfg, "rope_theta", theta);
    cJSON_AddNumberToObject(cfg, "partial_rotary_factor", 1.0);
}

Test(spellings, bamba_top_level_rope) {
    const char *dir = rewritten_fixture("bamba", bamba_hub_rope);
    expect_golden_logits(dir, "bamba with hub-style rope keys");
    temp_dir_remove(dir);
}

/* Nemotron-H-8B-style hub configs say attention_head_dim. */
static void nemotron_attention_head_dim(cJSON *cfg) {
    cJSON *hd = cJSON_DetachItemFromObjectCaseSensitive(cfg, "head_dim");
    cr_assert_not_null(hd);
    cJSON_AddItemToObject(cfg, "attention_head_dim", hd);
}

Test(spellings, nemotron_attention_head_dim) {
    const char *dir = rewritten_fixture("nemotron_h_hub", nemotron_attention_head_dim);
    expect_golden_logits(dir, "nemotron_h_hub with attention_head_dim");
    temp_dir_remove(dir);
}

/* The shipped demo pair (models/): the engine's logits on the checkpoints users run against
 * transformers' (tests/fixtures/shipped, tools/fixtures/make_shipped_goldens.py), and greedy
 * generation token for token on the fp32 CPU backend. */
Test(fixtures, shipped_models) {
    static const char *names[] = {"demo-hybrid-13m", "demo-llama-2m"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char model_dir[1024], golden_dir[1024];
        snprintf(model_dir, sizeof model_dir, "%s/models/%s", STREE_SOURCE_DIR, names[k]);
        snprintf(golden_dir, sizeof golden_dir, "%s/tests/fixtures/shipped/%s", STREE_SOURCE_DIR, names[k]);
        golden g;
        cr_assert_eq(golden_load(golden_dir, &g), 0, "%s: no golden", names[k]);
        stree_model *m = NULL;
        stree_model_params mp = stree_model_default_params();
        mp.backend = test_backend();
        cr_assert_eq(stree_model_load(model_dir, mp, &m), STREE_OK, "%s: %s", names[k], stree_last_error());
        float *lg = run_logits(m, &g, 64);
        double err, scale;
        max_err(lg, g.logits, (size_t)g.n_input * (size_t)g.vocab, &err, &scale);
        cr_log_info("%s: max |err| %.3g, max |golden| %.3g", names[k], err, scale);
        cr_expect_leq(err, test_golden_tol() * scale, "%s: max |err| %g > %g x %g", names[k], err, test_golden_tol(),
                      scale);
        if (test_backend() == STREE_BACKEND_CPU) {
            stree_engine *e = NULL;
            stree_seq *seq = NULL;
            cr_assert_eq(stree_engine_create(m, stree_engine_default_params(), &e), STREE_OK);
            cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
            int32_t out[64], n_out = 0;
            cr_assert_eq(stree_seq_generate(seq, g.input_ids, g.n_input, g.n_greedy, 0, out, &n_out, NULL, NULL),
                         STREE_OK);
            for (int32_t i = 0; i < n_out; i++)
                cr_expect_eq(out[i], g.greedy_ids[i], "%s: token %d: got %d, golden %d", names[k], i, out[i],
                             g.greedy_ids[i]);
            stree_seq_free(seq);
            stree_engine_free(e);
        }
        free(lg);
        golden_free(&g);
        stree_model_free(m);
    }
}
