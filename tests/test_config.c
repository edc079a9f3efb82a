/* config.json and checkpoint-binding errors: each malformed input gives its own status and a
 * message naming the file, key or tensor; nothing crashes or leaks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/config_json.h"
#include "stree.h"
#include "tests/helpers/golden.h"
#include "tests/helpers/tiny_ckpt.h"

static stree_status try_load(const char *dir, stree_model **m) {
    stree_model_params mp = stree_model_default_params();
    mp.backend = STREE_BACKEND_CPU;
    return stree_model_load(dir, mp, m);
}

static void expect_load_error(const char *config, const char *skip, const char *reshape, stree_status want,
                              const char *needle1, const char *needle2) {
    const char *dir = temp_dir();
    cr_assert_not_null(dir);
    cr_assert_eq(write_text(dir, "config.json", config), 0);
    tiny_llama_write(dir, skip, reshape);
    stree_model *m = (stree_model *)0x1;
    stree_status s = try_load(dir, &m);
    cr_expect_eq(s, want, "status %s, want %s: %s", stree_status_str(s), stree_status_str(want), stree_last_error());
    cr_expect_null(m);
    cr_expect(strstr(stree_last_error(), needle1) != NULL, "'%s' not in: %s", needle1, stree_last_error());
    if (needle2) cr_expect(strstr(stree_last_error(), needle2) != NULL, "'%s' not in: %s", needle2, stree_last_error());
    temp_dir_remove(dir);
}

Test(config, valid_checkpoint_loads_and_runs) {
    const char *dir = temp_dir();
    cr_assert_eq(write_text(dir, "config.json", tiny_llama_config(8)), 0);
    tiny_llama_write(dir, NULL, NULL);
    stree_model *m = NULL;
    cr_assert_eq(try_load(dir, &m), STREE_OK, "%s", stree_last_error());
    cr_expect_eq(stree_model_vocab_size(m), 8);
    cr_expect_str_eq(stree_model_architecture(m), "LlamaForCausalLM");
    stree_engine *e = NULL;
    cr_assert_eq(stree_engine_create(m, stree_engine_default_params(), &e), STREE_OK);
    stree_seq *seq = NULL;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    int32_t toks[3] = {1, 2, 3};
    float logits[3 * 8];
    cr_expect_eq(stree_seq_append(seq, toks, 3, logits), STREE_OK);
    stree_seq_free(seq);
    stree_engine_free(e);
    stree_model_free(m);
    temp_dir_remove(dir);
}

Test(config, unknown_architecture) {
    expect_load_error("{\"architectures\": [\"GPT5ForCausalLM\"], \"vocab_size\": 8, \"hidden_size\": 4}", NULL,
                      NULL, STREE_ERR_UNSUPPORTED, "GPT5ForCausalLM", "config.json");
}

Test(config, missing_key) {
    expect_load_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 8, \"hidden_size\": 4,"
                      " \"num_hidden_layers\": 1, \"num_attention_heads\": 2}",
                      NULL, NULL, STREE_ERR_CONFIG, "intermediate_size", "config.json");
}

Test(config, missing_architectures) {
    expect_load_error("{\"vocab_size\": 8}", NULL, NULL, STREE_ERR_CONFIG, "architectures", "config.json");
}

Test(config, bad_json) {
    expect_load_error("{\"architectures\": [\"LlamaForCausalLM\", }", NULL, NULL, STREE_ERR_FORMAT, "invalid JSON",
                      "config.json");
}

Test(config, wrong_type) {
    expect_load_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": \"eight\", \"hidden_size\": 4}",
                      NULL, NULL, STREE_ERR_CONFIG, "vocab_size", "number");
}

Test(config, heads_not_divisible) {
    expect_load_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 8, \"hidden_size\": 4,"
                      " \"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 3,"
                      " \"num_key_value_heads\": 2}",
                      NULL, NULL, STREE_ERR_CONFIG, "num_key_value_heads", NULL);
}

Test(config, unsupported_rope_type) {
    expect_load_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 8, \"hidden_size\": 4,"
                      " \"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
                      " \"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 1e4}}",
                      NULL, NULL, STREE_ERR_UNSUPPORTED, "yarn", NULL);
}

Test(config, bad_layer_type) {
    expect_load_error("{\"architectures\": [\"NemotronHForCausalLM\"], \"vocab_size\": 8, \"hidden_size\": 4,"
                      " \"hybrid_override_pattern\": \"M*X\"}",
                      NULL, NULL, STREE_ERR_CONFIG, "hybrid_override_pattern[2]", "'X'");
}

Test(config, missing_tensor) {
    expect_load_error(tiny_llama_config(8), "model.layers.0.self_attn.k_proj.weight", NULL, STREE_ERR_MISSING_TENSOR,
                      "model.layers.0.self_attn.k_proj.weight", "missing tensor");
}

Test(config, wrong_tensor_shape) {
    expect_load_error(tiny_llama_config(8), NULL, "model.layers.0.mlp.up_proj.weight", STREE_ERR_MISSING_TENSOR,
                      "model.layers.0.mlp.up_proj.weight", "[5, 4]");
}

Test(config, missing_directory) {
    stree_model *m = NULL;
    cr_expect_eq(try_load("/nonexistent/stree-model", &m), STREE_ERR_IO);
    cr_expect(strstr(stree_last_error(), "/nonexistent/stree-model") != NULL, "%s", stree_last_error());
    cr_expect_null(m);
}

Test(config, nonfinite_values) {
    /* both spellings of infinity that Python writes */
    const char *text = "{\"a\": [0.0, {\"__float__\": \"Infinity\"}], \"b\": [0.0, \"Infinity\"]}";
    cJSON *root = cJSON_Parse(text);
    stree_cfg cfg = {.root = root, .path = "config.json"};
    float v[2], def[2] = {0, 0};
    cr_assert_eq(stree_cfg_floats_or(&cfg, "a", 2, def, v), STREE_OK, "%s", stree_last_error());
    cr_expect(isinf(v[1]));
    cr_assert_eq(stree_cfg_floats_or(&cfg, "b", 2, def, v), STREE_OK);
    cr_expect(isinf(v[1]));
    cJSON_Delete(root);
}

Test(seq, failed_append_leaves_state) {
    const char *dir = temp_dir();
    cr_assert_eq(write_text(dir, "config.json", tiny_llama_config(8)), 0);
    tiny_llama_write(dir, NULL, NULL);
    stree_model *m = NULL;
    cr_assert_eq(try_load(dir, &m), STREE_OK);
    stree_engine *e = NULL;
    cr_assert_eq(stree_engine_create(m, stree_engine_default_params(), &e), STREE_OK);
    stree_seq *seq = NULL;
    cr_assert_eq(stree_seq_create(e, &seq), STREE_OK);
    int32_t good[2] = {1, 2}, bad[3] = {3, 99, 4};
    cr_assert_eq(stree_seq_append(seq, good, 2, NULL), STREE_OK);
    cr_expect_eq(stree_seq_append(seq, bad, 3, NULL), STREE_ERR_INVALID_ARG);
    cr_expect(strstr(stree_last_error(), "99") != NULL, "%s", stree_last_error());
    cr_expect_eq(stree_seq_n_committed(seq), 2);
    stree_seq_free(seq);
    stree_engine_free(e);
    stree_model_free(m);
    temp_dir_remove(dir);
}
