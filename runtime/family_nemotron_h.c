/* NemotronHForCausalLM: one mixer per layer — M (Mamba-2), * (attention, NoPE), - (relu^2 MLP),
 * E (sigmoid-routed relu^2 experts + shared experts) — each as x += mixer(norm(x)). */
#include <stdio.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/family.h"

#define MAX_LAYERS 4096

static char pattern_kind(const char *name) { return stree_layer_kind_standard(name); }

/* Layer kinds from layers_block_type (transformers 5) or hybrid_override_pattern (hub). */
static stree_status parse_pattern(const stree_cfg *cfg, char *kinds, int32_t *n) {
    if (stree_cfg_get(cfg, "layers_block_type"))
        return stree_parse_layer_kinds(cfg, "layers_block_type", pattern_kind, kinds, MAX_LAYERS, n);
    const cJSON *p = stree_cfg_get(cfg, "hybrid_override_pattern");
    if (!p) return stree_fail(STREE_ERR_CONFIG, "%s: missing required key 'layers_block_type' (or 'hybrid_override_pattern')", cfg->path);
    if (!cJSON_IsString(p)) return stree_fail(STREE_ERR_CONFIG, "%s: 'hybrid_override_pattern' must be a string", cfg->path);
    int32_t len = (int32_t)strlen(p->valuestring);
    if (len == 0 || len > MAX_LAYERS)
        return stree_fail(STREE_ERR_CONFIG, "%s: 'hybrid_override_pattern' has %d layers", cfg->path, len);
    for (int32_t i = 0; i < len; i++) {
        char c = p->valuestring[i];
        if (c != 'M' && c != '*' && c != '-' && c != 'E')
            return stree_fail(STREE_ERR_CONFIG, "%s: hybrid_override_pattern[%d] = '%c' (expected M, *, - or E)",
                              cfg->path, i, c);
        kinds[i] = c;
    }
    *n = len;
    return STREE_OK;
}

static stree_status int_alias(const stree_cfg *cfg, const char *key, const char *legacy, int32_t def, int32_t *out) {
    if (!stree_cfg_get(cfg, key) && stree_cfg_get(cfg, legacy)) return stree_cfg_int(cfg, legacy, out);
    return stree_cfg_int_or(cfg, key, def, out);
}

static stree_status parse(const stree_cfg *cfg, stree_model_desc *d) {
    STREE_TRY(stree_parse_common(cfg, d, 0));
    char kinds[MAX_LAYERS];
    int32_t n_layers = 0;
    STREE_TRY(parse_pattern(cfg, kinds, &n_layers));
    STREE_TRY(stree_cfg_float_or(cfg, "layer_norm_epsilon", 1e-5f, &d->norm_eps));
    STREE_TRY(stree_desc_alloc_layers(d, n_layers));

    stree_attn_desc a = {0};
    if (memchr(kinds, '*', (size_t)n_layers)) STREE_TRY(stree_parse_attention(cfg, d->d_model, 0, &a));

    stree_mamba2_desc m = d->layers[0].mamba2;
    if (memchr(kinds, 'M', (size_t)n_layers)) {
        STREE_TRY(stree_cfg_int(cfg, "mamba_num_heads", &m.n_heads));
        STREE_TRY(stree_cfg_int(cfg, "mamba_head_dim", &m.head_dim));
        STREE_TRY(stree_cfg_int(cfg, "ssm_state_size", &m.d_state));
        STREE_TRY(int_alias(cfg, "n_groups", "mamba_n_groups", 1, &m.n_groups));
        STREE_TRY(int_alias(cfg, "conv_kernel", "mamba_d_conv", 4, &m.d_conv));
        if (stree_cfg_get(cfg, "use_conv_bias") || !stree_cfg_get(cfg, "mamba_conv_bias"))
            STREE_TRY(stree_cfg_bool_or(cfg, "use_conv_bias", 1, &m.conv_bias));
        else
            STREE_TRY(stree_cfg_bool_or(cfg, "mamba_conv_bias", 1, &m.conv_bias));
        STREE_TRY(stree_cfg_bool_or(cfg, "use_bias", 0, &m.in_proj_bias));
        m.out_proj_bias = m.in_proj_bias;
        float dt_min = 0.0f;
        if (!stree_cfg_get(cfg, "time_step_min") && stree_cfg_get(cfg, "mamba_dt_min"))
            STREE_TRY(stree_cfg_float(cfg, "mamba_dt_min", &dt_min));
        else
            STREE_TRY(stree_cfg_float_or(cfg, "time_step_min", 0.001f, &dt_min));
        m.dt_min = dt_min; /* the torch path clamps dt >= time_step_min, no upper bound */
        m.d_inner = m.n_heads * m.head_dim;
        m.gnorm_weight = 1;
        m.gnorm_groups = m.n_groups; /* grouped gate-then-norm */
        m.gnorm_before_gate = 0;
        m.gnorm_eps = d->norm_eps;
        STREE_TRY(stree_mamba2_finish(cfg, &m));
    }

    stree_mlp_desc dense = {0}, moe = {0};
    dense.gate_mult = dense.down_mult = moe.gate_mult = moe.down_mult = 1.0f;
    dense.routed_scale = moe.routed_scale = 1.0f;
    dense.has_dense = 1;
    dense.dense_act = STREE_ACT_RELU2;
    if (memchr(kinds, '-', (size_t)n_layers)) {
        const cJSON *act = stree_cfg_get(cfg, "mlp_hidden_act");
        if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "relu2")))
            return stree_fail(STREE_ERR_UNSUPPORTED, "%s: mlp_hidden_act must be \"relu2\"", cfg->path);
        STREE_TRY(stree_cfg_int(cfg, "intermediate_size", &dense.d_ff));
    }
    if (memchr(kinds, 'E', (size_t)n_layers)) {
        int32_t n_group = 1, topk_group = 1, n_shared = 0;
        STREE_TRY(stree_cfg_int(cfg, "n_routed_experts", &moe.n_experts));
        STREE_TRY(stree_cfg_int(cfg, "num_experts_per_tok", &moe.top_k));
        STREE_TRY(stree_cfg_int(cfg, "moe_intermediate_size", &moe.d_expert));
        STREE_TRY(stree_cfg_int_or(cfg, "n_shared_experts", 1, &n_shared));
        STREE_TRY(stree_cfg_int_or(cfg, "moe_shared_expert_intermediate_size", moe.d_expert, &moe.d_ff));
        STREE_TRY(stree_cfg_float_or(cfg, "routed_scaling_factor", 1.0f, &moe.routed_scale));
        STREE_TRY(stree_cfg_bool_or(cfg, "norm_topk_prob", 1, &moe.norm_topk));
        STREE_TRY(stree_cfg_int_or(cfg, "n_group", 1, &n_group));
        STREE_TRY(stree_cfg_int_or(cfg, "topk_group", 1, &topk_group));
        if (n_group != 1 || topk_group != 1)
            return stree_fail(STREE_ERR_UNSUPPORTED, "%s: group-limited routing (n_group %d, topk_group %d) is not supported",
                              cfg->path, n_group, topk_group);
        if (stree_cfg_get(cfg, "moe_latent_size"))
            return stree_fail(STREE_ERR_UNSUPPORTED, "%s: moe_latent_size is not supported", cfg->path);
        if (moe.top_k <= 0 || moe.top_k > moe.n_experts)
            return stree_fail(STREE_ERR_CONFIG, "%s: num_experts_per_tok %d invalid for %d experts", cfg->path,
                              moe.top_k, moe.n_experts);
        moe.has_moe = 1;
        moe.expert_act = STREE_ACT_RELU2;
        moe.router = STREE_ROUTER_SIGMOID_BIAS;
        moe.has_dense = n_shared > 0;
        moe.dense_act = STREE_ACT_RELU2;
    }
    for (int32_t i = 0; i < n_layers; i++) {
        stree_layer_desc *l = &d->layers[i];
        switch (kinds[i]) {
        case 'M': l->has_mamba2 = 1; l->mamba2 = m; break;
        case '*': l->has_attention = 1; l->attn = a; break;
        case '-': l->has_mlp = 1; l->mlp = dense; break;
        default: l->has_mlp = 1; l->mlp = moe; break;
        }
    }
    stree_desc_index_states(d);
    return STREE_OK;
}

static stree_status bind_moe(stree_wbinder *b, stree_weights *w, const char *p, int32_t D, const stree_mlp_desc *m,
                             stree_mlp_weights *mw) {
    char name[192];
    snprintf(name, sizeof name, "%sgate.weight", p);
    STREE_TRY(stree_bind_matrix(b, &mw->router, name, m->n_experts, D));
    snprintf(name, sizeof name, "%sgate.e_score_correction_bias", p);
    STREE_TRY(stree_bind_vector(b, &mw->maybe_router_bias, name, m->n_experts));
    STREE_TRY(stree_alloc_experts(w, m->n_experts, mw));
    snprintf(name, sizeof name, "%sexperts.up_proj", p);
    if (stree_bind_has(b, name)) { /* transformers 5: stacked [E, I, D] and [E, D, I] */
        const float *up, *down;
        int64_t up_shape[3] = {m->n_experts, m->d_expert, D}, down_shape[3] = {m->n_experts, D, m->d_expert};
        STREE_TRY(stree_bind(b, &up, name, 3, up_shape));
        snprintf(name, sizeof name, "%sexperts.down_proj", p);
        STREE_TRY(stree_bind(b, &down, name, 3, down_shape));
        for (int32_t e = 0; e < m->n_experts; e++) {
            mw->expert_up[e] = up + (size_t)e * (size_t)m->d_expert * (size_t)D;
            mw->expert_down[e] = down + (size_t)e * (size_t)m->d_expert * (size_t)D;
        }
    } else { /* hub: one tensor per expert */
        for (int32_t e = 0; e < m->n_experts; e++) {
            snprintf(name, sizeof name, "%sexperts.%d.up_proj.weight", p, e);
            STREE_TRY(stree_bind_matrix(b, &mw->expert_up[e], name, m->d_expert, D));
            snprintf(name, sizeof name, "%sexperts.%d.down_proj.weight", p, e);
            STREE_TRY(stree_bind_matrix(b, &mw->expert_down[e], name, D, m->d_expert));
        }
    }
    if (m->has_dense) {
        snprintf(name, sizeof name, "%sshared_experts.", p);
        STREE_TRY(stree_bind_gated_mlp(b, name, NULL, "up_proj.weight", "down_proj.weight", D, m->d_ff, mw));
    }
    return STREE_OK;
}

static stree_status bind(stree_wbinder *b, const stree_model_desc *d, stree_weights *w) {
    stree_status s;
    const char *p = stree_bind_backbone_io(b, d, "norm_f.weight", w, &s);
    STREE_TRY(s);
    char name[192];
    for (int32_t i = 0; i < d->n_layers; i++) {
        const stree_layer_desc *l = &d->layers[i];
        stree_layer_weights *lw = &w->layers[i];
        snprintf(name, sizeof name, "%slayers.%d.norm.weight", p, i);
        STREE_TRY(stree_bind_vector(b, l->has_mlp ? &lw->norm2 : &lw->norm1, name, d->d_model));
        snprintf(name, sizeof name, "%slayers.%d.mixer.", p, i);
        if (l->has_mamba2) STREE_TRY(stree_bind_mamba2(b, name, d->d_model, &l->mamba2, &lw->mamba2));
        else if (l->has_attention) STREE_TRY(stree_bind_attention(b, name, d->d_model, &l->attn, &lw->attn));
        else if (l->mlp.has_moe) STREE_TRY(bind_moe(b, w, name, d->d_model, &l->mlp, &lw->mlp));
        else STREE_TRY(stree_bind_gated_mlp(b, name, NULL, "up_proj.weight", "down_proj.weight", d->d_model,
                                            l->mlp.d_ff, &lw->mlp));
    }
    return STREE_OK;
}

const stree_family stree_family_nemotron_h = {"NemotronHForCausalLM", parse, bind};
