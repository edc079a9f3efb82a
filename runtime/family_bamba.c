/* BambaForCausalLM: attention at attn_layer_indices, Mamba-2 elsewhere; SwiGLU MLP in every layer. */
#include <stdio.h>

#include "runtime/error.h"
#include "runtime/family.h"

static stree_status parse(const stree_cfg *cfg, stree_model_desc *d) {
    STREE_TRY(stree_parse_common(cfg, d, 0));
    int32_t n_layers = 0, d_ff = 0, expand = 0;
    STREE_TRY(stree_cfg_int(cfg, "num_hidden_layers", &n_layers));
    STREE_TRY(stree_cfg_int(cfg, "intermediate_size", &d_ff));
    STREE_TRY(stree_cfg_float_or(cfg, "rms_norm_eps", 1e-5f, &d->norm_eps));
    STREE_TRY(stree_cfg_int_or(cfg, "mamba_expand", 2, &expand));
    STREE_TRY(stree_desc_alloc_layers(d, n_layers));
    stree_attn_desc a = {0};
    STREE_TRY(stree_parse_attention(cfg, d->d_model, 1, &a));
    /* transformers' BambaConfig: partial_rotary_factor from rope_parameters, else 0.5; a top-level
     * key is ignored (tests/fixtures/FACTS.md) */
    float partial = 0.5f;
    STREE_TRY(stree_cfg_rope_parameter(cfg, "partial_rotary_factor", 0.5f, &partial));
    if (!(partial > 0.0f && partial <= 1.0f))
        return stree_fail(STREE_ERR_CONFIG, "%s: partial_rotary_factor %g must be in (0, 1]", cfg->path, partial);
    a.rope_dims = ((int32_t)((float)a.head_dim * partial)) & ~1;
    stree_mamba2_desc m = d->layers[0].mamba2;
    STREE_TRY(stree_parse_mamba_prefixed(cfg, expand * d->d_model, d->norm_eps, &m));
    STREE_TRY(stree_mamba2_finish(cfg, &m));
    const cJSON *idx = stree_cfg_get(cfg, "attn_layer_indices");
    if (idx && !cJSON_IsArray(idx))
        return stree_fail(STREE_ERR_CONFIG, "%s: 'attn_layer_indices' must be a list of layer indices", cfg->path);
    for (int32_t i = 0; i < n_layers; i++) {
        d->layers[i].has_mamba2 = 1;
        d->layers[i].mamba2 = m;
    }
    for (int32_t k = 0; idx && k < cJSON_GetArraySize(idx); k++) {
        const cJSON *e = cJSON_GetArrayItem(idx, k);
        if (!cJSON_IsNumber(e) || e->valueint < 0 || e->valueint >= n_layers)
            return stree_fail(STREE_ERR_CONFIG, "%s: attn_layer_indices[%d] is not a layer index below %d", cfg->path,
                              k, n_layers);
        stree_layer_desc *l = &d->layers[e->valueint];
        l->has_mamba2 = 0;
        l->has_attention = 1;
        l->attn = a;
    }
    for (int32_t i = 0; i < n_layers; i++) {
        stree_layer_desc *l = &d->layers[i];
        l->has_mlp = 1;
        l->mlp.has_dense = 1;
        l->mlp.dense_act = STREE_ACT_SILU;
        l->mlp.d_ff = d_ff;
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

const stree_family stree_family_bamba = {"BambaForCausalLM", parse, bind};
