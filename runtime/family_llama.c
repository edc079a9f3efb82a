/* LlamaForCausalLM and Qwen3ForCausalLM (drafters): attention + SwiGLU MLP in every layer.
 * Qwen3 adds per-head RMSNorm of q and k. */
#include <stdio.h>

#include "runtime/error.h"
#include "runtime/family.h"

static stree_status parse_common(const stree_cfg *cfg, stree_model_desc *d, int32_t qk_norm, int32_t tie_default) {
    STREE_TRY(stree_parse_common(cfg, d, tie_default));
    int32_t n_layers = 0, d_ff = 0, mlp_bias = 0;
    STREE_TRY(stree_cfg_int(cfg, "num_hidden_layers", &n_layers));
    STREE_TRY(stree_cfg_int(cfg, "intermediate_size", &d_ff));
    STREE_TRY(stree_cfg_float_or(cfg, "rms_norm_eps", 1e-6f, &d->norm_eps));
    STREE_TRY(stree_cfg_bool_or(cfg, "mlp_bias", 0, &mlp_bias));
    if (mlp_bias) return stree_fail(STREE_ERR_UNSUPPORTED, "%s: mlp_bias=true is not supported", cfg->path);
    int32_t sliding = 0;
    STREE_TRY(stree_cfg_bool_or(cfg, "use_sliding_window", 0, &sliding));
    if (sliding) return stree_fail(STREE_ERR_UNSUPPORTED, "%s: use_sliding_window=true is not supported", cfg->path);
    STREE_TRY(stree_desc_alloc_layers(d, n_layers));
    stree_attn_desc a = {0};
    STREE_TRY(stree_parse_attention(cfg, d->d_model, 1, &a));
    a.qk_norm = qk_norm;
    for (int32_t i = 0; i < n_layers; i++) {
        stree_layer_desc *l = &d->layers[i];
        l->has_attention = 1;
        l->attn = a;
        l->has_mlp = 1;
        l->mlp.has_dense = 1;
        l->mlp.dense_act = STREE_ACT_SILU;
        l->mlp.d_ff = d_ff;
    }
    stree_desc_index_states(d);
    return STREE_OK;
}

static stree_status parse_llama(const stree_cfg *cfg, stree_model_desc *d) { return parse_common(cfg, d, 0, 0); }
static stree_status parse_qwen3(const stree_cfg *cfg, stree_model_desc *d) { return parse_common(cfg, d, 1, 0); }

static stree_status bind(stree_wbinder *b, const stree_model_desc *d, stree_weights *w) {
    STREE_TRY(stree_bind_io(b, d, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", w));
    static const stree_layer_names names = {"input_layernorm.weight", "post_attention_layernorm.weight", NULL, "self_attn.", "mlp."};
    for (int32_t i = 0; i < d->n_layers; i++) STREE_TRY(stree_bind_decoder_layer(b, d, i, &names, &w->layers[i]));
    return STREE_OK;
}

const stree_family stree_family_llama = {"LlamaForCausalLM", parse_llama, bind};
const stree_family stree_family_qwen3 = {"Qwen3ForCausalLM", parse_qwen3, bind};
