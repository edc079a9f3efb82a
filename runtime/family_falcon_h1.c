/* FalconH1ForCausalLM: every layer runs Mamba-2 and attention in parallel on the same normed input,
 * then a SwiGLU MLP; muP multipliers everywhere (embedding, key, ssm in/out, per-segment in_proj,
 * attention in/out, MLP gate/down, lm_head). */
#include <stdio.h>

#include "runtime/error.h"
#include "runtime/family.h"

static stree_status parse(const stree_cfg *cfg, stree_model_desc *d) {
    STREE_TRY(stree_parse_common(cfg, d, 0));
    int32_t n_layers = 0, d_ff = 0, expand = 0, d_ssm = 0, mlp_bias = 0;
    STREE_TRY(stree_cfg_int(cfg, "num_hidden_layers", &n_layers));
    STREE_TRY(stree_cfg_int(cfg, "intermediate_size", &d_ff));
    STREE_TRY(stree_cfg_float_or(cfg, "rms_norm_eps", 1e-5f, &d->norm_eps));
    STREE_TRY(stree_cfg_int_or(cfg, "mamba_expand", 2, &expand));
    STREE_TRY(stree_cfg_int_or(cfg, "mamba_d_ssm", expand * d->d_model, &d_ssm));
    STREE_TRY(stree_cfg_bool_or(cfg, "mlp_bias", 0, &mlp_bias));
    if (mlp_bias) return stree_fail(STREE_ERR_UNSUPPORTED, "%s: mlp_bias=true is not supported", cfg->path);
    STREE_TRY(stree_cfg_float_or(cfg, "embedding_multiplier", 1.0f, &d->embedding_mult));
    STREE_TRY(stree_cfg_float_or(cfg, "lm_head_multiplier", 1.0f, &d->logits_mult));
    STREE_TRY(stree_desc_alloc_layers(d, n_layers));

    stree_attn_desc a = {0};
    STREE_TRY(stree_parse_attention(cfg, d->d_model, 1, &a));
    STREE_TRY(stree_cfg_float_or(cfg, "key_multiplier", 1.0f, &a.key_mult));

    stree_mamba2_desc m = d->layers[0].mamba2;
    STREE_TRY(stree_parse_mamba_prefixed(cfg, d_ssm, d->norm_eps, &m));
    STREE_TRY(stree_cfg_bool_or(cfg, "projectors_bias", 0, &m.out_proj_bias));
    STREE_TRY(stree_cfg_bool_or(cfg, "mamba_rms_norm", 0, &m.gnorm_weight));
    STREE_TRY(stree_cfg_bool_or(cfg, "mamba_norm_before_gate", 1, &m.gnorm_before_gate));
    m.gnorm_groups = m.n_groups;
    static const float ones[5] = {1, 1, 1, 1, 1};
    STREE_TRY(stree_cfg_floats_or(cfg, "ssm_multipliers", 5, ones, m.seg_mult));
    STREE_TRY(stree_cfg_float_or(cfg, "ssm_in_multiplier", 1.0f, &m.in_mult));
    STREE_TRY(stree_cfg_float_or(cfg, "ssm_out_multiplier", 1.0f, &m.out_mult));
    STREE_TRY(stree_mamba2_finish(cfg, &m));

    float attn_in = 1.0f, attn_out = 1.0f, mlp_mults[2] = {1.0f, 1.0f};
    STREE_TRY(stree_cfg_float_or(cfg, "attention_in_multiplier", 1.0f, &attn_in));
    STREE_TRY(stree_cfg_float_or(cfg, "attention_out_multiplier", 1.0f, &attn_out));
    STREE_TRY(stree_cfg_floats_or(cfg, "mlp_multipliers", 2, ones, mlp_mults));
    for (int32_t i = 0; i < n_layers; i++) {
        stree_layer_desc *l = &d->layers[i];
        l->has_mamba2 = l->has_attention = 1;
        l->mamba2 = m;
        l->attn = a;
        l->attn_in_mult = attn_in;
        l->attn_out_mult = attn_out;
        l->has_mlp = 1;
        l->mlp.has_dense = 1;
        l->mlp.dense_act = STREE_ACT_SILU;
        l->mlp.d_ff = d_ff;
        l->mlp.gate_mult = mlp_mults[0];
        l->mlp.down_mult = mlp_mults[1];
    }
    stree_desc_index_states(d);
    return STREE_OK;
}

static stree_status bind(stree_wbinder *b, const stree_model_desc *d, stree_weights *w) {
    STREE_TRY(stree_bind_io(b, d, "model.embed_tokens.weight", "model.final_layernorm.weight", "lm_head.weight", w));
    static const stree_layer_names names = {"input_layernorm.weight", "pre_ff_layernorm.weight", "mamba.", "self_attn.", "feed_forward."};
    for (int32_t i = 0; i < d->n_layers; i++) STREE_TRY(stree_bind_decoder_layer(b, d, i, &names, &w->layers[i]));
    return STREE_OK;
}

const stree_family stree_family_falcon_h1 = {"FalconH1ForCausalLM", parse, bind};
