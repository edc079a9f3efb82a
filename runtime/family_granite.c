/* GraniteMoeHybridForCausalLM (Granite 4.0 H): Mamba-2 or attention per layer_types; every layer has
 * a shared SwiGLU MLP, plus routed experts when num_local_experts > 0; Granite multipliers. */
#include <stdio.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/family.h"

#define MAX_LAYERS 4096

static stree_status parse(const stree_cfg *cfg, stree_model_desc *d) {
    STREE_TRY(stree_parse_common(cfg, d, 0));
    char kinds[MAX_LAYERS];
    int32_t n_layers = 0, expand = 0, d_shared = 0, n_experts = 0, top_k = 0, d_expert = 0;
    STREE_TRY(stree_cfg_int(cfg, "num_hidden_layers", &n_layers));
    if (stree_cfg_get(cfg, "layer_types")) {
        int32_t n_types = 0;
        STREE_TRY(stree_parse_layer_kinds(cfg, "layer_types", stree_layer_kind_standard, kinds, MAX_LAYERS, &n_types));
        if (n_types != n_layers)
            return stree_fail(STREE_ERR_CONFIG, "%s: layer_types has %d entries but num_hidden_layers is %d", cfg->path,
                              n_types, n_layers);
    } else {
        if (n_layers > MAX_LAYERS) return stree_fail(STREE_ERR_CONFIG, "%s: too many layers (%d)", cfg->path, n_layers);
        memset(kinds, 'M', (size_t)n_layers); /* the class default: all Mamba-2 */
    }
    STREE_TRY(stree_cfg_float_or(cfg, "rms_norm_eps", 1e-6f, &d->norm_eps));
    STREE_TRY(stree_cfg_float_or(cfg, "embedding_multiplier", 1.0f, &d->embedding_mult));
    STREE_TRY(stree_cfg_float_or(cfg, "residual_multiplier", 1.0f, &d->residual_mult));
    float logits_scaling = 1.0f, attn_mult = 1.0f;
    STREE_TRY(stree_cfg_float_or(cfg, "logits_scaling", 1.0f, &logits_scaling));
    if (logits_scaling == 0.0f) return stree_fail(STREE_ERR_CONFIG, "%s: logits_scaling must not be 0", cfg->path);
    d->logits_mult = 1.0f / logits_scaling;
    STREE_TRY(stree_cfg_float_or(cfg, "attention_multiplier", 1.0f, &attn_mult));
    STREE_TRY(stree_cfg_int_or(cfg, "mamba_expand", 2, &expand));
    STREE_TRY(stree_cfg_int_or(cfg, "shared_intermediate_size", 1024, &d_shared));
    STREE_TRY(stree_cfg_int_or(cfg, "num_local_experts", 0, &n_experts));
    STREE_TRY(stree_cfg_int_or(cfg, "num_experts_per_tok", 2, &top_k));
    STREE_TRY(stree_cfg_int_or(cfg, "intermediate_size", 0, &d_expert));
    if (n_experts > 0 && (top_k <= 0 || top_k > n_experts || d_expert <= 0))
        return stree_fail(STREE_ERR_CONFIG, "%s: num_experts_per_tok %d / intermediate_size %d invalid for %d experts",
                          cfg->path, top_k, d_expert, n_experts);
    const cJSON *pe = stree_cfg_get(cfg, "position_embedding_type");
    int32_t rope = pe && cJSON_IsString(pe) && !strcmp(pe->valuestring, "rope");
    if (pe && !rope && !(cJSON_IsString(pe) && !strcmp(pe->valuestring, "nope")))
        return stree_fail(STREE_ERR_CONFIG, "%s: position_embedding_type must be \"rope\", \"nope\" or null", cfg->path);

    STREE_TRY(stree_desc_alloc_layers(d, n_layers));
    stree_attn_desc a = {0};
    STREE_TRY(stree_parse_attention(cfg, d->d_model, rope, &a));
    a.scale = attn_mult;
    stree_mamba2_desc m = d->layers[0].mamba2;
    int32_t any_mamba = memchr(kinds, 'M', (size_t)n_layers) != NULL;
    if (any_mamba) {
        STREE_TRY(stree_parse_mamba_prefixed(cfg, expand * d->d_model, d->norm_eps, &m));
        STREE_TRY(stree_mamba2_finish(cfg, &m));
    }
    for (int32_t i = 0; i < n_layers; i++) {
        stree_layer_desc *l = &d->layers[i];
        if (kinds[i] == 'M') {
            l->has_mamba2 = 1;
            l->mamba2 = m;
        } else if (kinds[i] == '*') {
            l->has_attention = 1;
            l->attn = a;
        } else {
            return stree_fail(STREE_ERR_CONFIG, "%s: layer_types[%d] must be a mamba or attention layer", cfg->path, i);
        }
        l->has_mlp = 1;
        l->mlp.has_dense = 1;
        l->mlp.dense_act = STREE_ACT_SILU;
        l->mlp.d_ff = d_shared;
        if (n_experts > 0) {
            l->mlp.has_moe = 1;
            l->mlp.expert_act = STREE_ACT_SILU;
            l->mlp.n_experts = n_experts;
            l->mlp.top_k = top_k;
            l->mlp.d_expert = d_expert;
            l->mlp.router = STREE_ROUTER_TOPK_SOFTMAX;
        }
    }
    stree_desc_index_states(d);
    return STREE_OK;
}

/* Experts stacked as [E, 2*I, D] (gate rows first) and [E, D, I]: point into the slices. */
static stree_status bind_moe(stree_wbinder *b, stree_weights *w, const char *p, int32_t D, const stree_mlp_desc *m,
                             stree_mlp_weights *mw) {
    char gate_up[160], down[160], router[160];
    snprintf(gate_up, sizeof gate_up, "%sexperts.gate_up_proj", p);
    if (stree_bind_has(b, gate_up)) { /* transformers 5 layout */
        snprintf(down, sizeof down, "%sexperts.down_proj", p);
        snprintf(router, sizeof router, "%srouter.weight", p);
    } else { /* hub layout */
        snprintf(gate_up, sizeof gate_up, "%sinput_linear.weight", p);
        snprintf(down, sizeof down, "%soutput_linear.weight", p);
        snprintf(router, sizeof router, "%srouter.layer.weight", p);
    }
    const float *gu, *dn;
    int64_t gu_shape[3] = {m->n_experts, 2 * (int64_t)m->d_expert, D}, dn_shape[3] = {m->n_experts, D, m->d_expert};
    STREE_TRY(stree_bind(b, &gu, gate_up, 3, gu_shape));
    STREE_TRY(stree_bind(b, &dn, down, 3, dn_shape));
    STREE_TRY(stree_bind_matrix(b, &mw->router, router, m->n_experts, D));
    STREE_TRY(stree_alloc_experts(w, m->n_experts, mw));
    size_t expert_in = (size_t)2 * (size_t)m->d_expert * (size_t)D, expert_out = (size_t)D * (size_t)m->d_expert;
    for (int32_t e = 0; e < m->n_experts; e++) {
        mw->expert_gate[e] = gu + (size_t)e * expert_in;
        mw->expert_up[e] = gu + (size_t)e * expert_in + (size_t)m->d_expert * (size_t)D;
        mw->expert_down[e] = dn + (size_t)e * expert_out;
    }
    return STREE_OK;
}

static stree_status bind(stree_wbinder *b, const stree_model_desc *d, stree_weights *w) {
    STREE_TRY(stree_bind_io(b, d, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", w));
    char name[160];
    for (int32_t i = 0; i < d->n_layers; i++) {
        const stree_layer_desc *l = &d->layers[i];
        stree_layer_weights *lw = &w->layers[i];
        static const stree_layer_names names = {"input_layernorm.weight", "post_attention_layernorm.weight", "mamba.",
                                                "self_attn.", NULL};
        STREE_TRY(stree_bind_decoder_layer(b, d, i, &names, lw));
        /* shared_mlp.input_linear [2*I, D]: gate rows, then up rows */
        const float *in_lin;
        snprintf(name, sizeof name, "model.layers.%d.shared_mlp.input_linear.weight", i);
        STREE_TRY(stree_bind_matrix(b, &in_lin, name, 2 * (int64_t)l->mlp.d_ff, d->d_model));
        lw->mlp.gate = in_lin;
        lw->mlp.up = in_lin + (size_t)l->mlp.d_ff * (size_t)d->d_model;
        snprintf(name, sizeof name, "model.layers.%d.shared_mlp.output_linear.weight", i);
        STREE_TRY(stree_bind_matrix(b, &lw->mlp.down, name, d->d_model, l->mlp.d_ff));
        if (l->mlp.has_moe) {
            snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.", i);
            STREE_TRY(bind_moe(b, w, name, d->d_model, &l->mlp, &lw->mlp));
        }
    }
    return STREE_OK;
}

const stree_family stree_family_granite_hybrid = {"GraniteMoeHybridForCausalLM", parse, bind};
