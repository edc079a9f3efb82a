/* Mamba2ForCausalLM: every layer x += mixer(norm(x)); full-width gate-then-norm; no MLP. */
#include <math.h>
#include <stdio.h>

#include "runtime/error.h"
#include "runtime/family.h"

/* time_step_limit [min, max] -> clamp (absent: none). */
stree_status stree_parse_dt_limit(const stree_cfg *cfg, stree_mamba2_desc *m) {
    float lim[2], def[2] = {0.0f, INFINITY};
    STREE_TRY(stree_cfg_floats_or(cfg, "time_step_limit", 2, def, lim));
    m->dt_min = lim[0];
    m->dt_max = lim[1];
    return STREE_OK;
}


static stree_status parse(const stree_cfg *cfg, stree_model_desc *d) {
    STREE_TRY(stree_parse_common(cfg, d, 0));
    int32_t n_layers = 0, expand = 0;
    float eps = 0.0f;
    STREE_TRY(stree_cfg_int(cfg, "num_hidden_layers", &n_layers));
    STREE_TRY(stree_cfg_float_or(cfg, "layer_norm_epsilon", 1e-5f, &eps));
    STREE_TRY(stree_cfg_int_or(cfg, "expand", 2, &expand));
    d->norm_eps = eps;
    STREE_TRY(stree_desc_alloc_layers(d, n_layers));
    stree_mamba2_desc m = d->layers[0].mamba2;
    STREE_TRY(stree_cfg_int(cfg, "num_heads", &m.n_heads));
    STREE_TRY(stree_cfg_int(cfg, "head_dim", &m.head_dim));
    STREE_TRY(stree_cfg_int(cfg, "state_size", &m.d_state));
    STREE_TRY(stree_cfg_int_or(cfg, "n_groups", 1, &m.n_groups));
    STREE_TRY(stree_cfg_int_or(cfg, "conv_kernel", 4, &m.d_conv));
    STREE_TRY(stree_cfg_bool_or(cfg, "use_bias", 0, &m.in_proj_bias));
    m.out_proj_bias = m.in_proj_bias;
    STREE_TRY(stree_cfg_bool_or(cfg, "use_conv_bias", 1, &m.conv_bias));
    STREE_TRY(stree_parse_dt_limit(cfg, &m));
    m.d_inner = expand * d->d_model;
    m.gnorm_weight = 1;
    m.gnorm_groups = 1; /* transformers normalises over the whole d_inner even when n_groups > 1 */
    m.gnorm_before_gate = 0;
    m.gnorm_eps = eps;
    STREE_TRY(stree_mamba2_finish(cfg, &m));
    for (int32_t i = 0; i < n_layers; i++) {
        d->layers[i].has_mamba2 = 1;
        d->layers[i].mamba2 = m;
    }
    stree_desc_index_states(d);
    return STREE_OK;
}

static stree_status bind(stree_wbinder *b, const stree_model_desc *d, stree_weights *w) {
    stree_status s;
    const char *p = stree_bind_backbone_io(b, d, "layers.0.mixer.A_log", w, &s);
    STREE_TRY(s);
    char name[128];
    for (int32_t i = 0; i < d->n_layers; i++) {
        stree_layer_weights *lw = &w->layers[i];
        snprintf(name, sizeof name, "%slayers.%d.norm.weight", p, i);
        STREE_TRY(stree_bind_vector(b, &lw->norm1, name, d->d_model));
        snprintf(name, sizeof name, "%slayers.%d.mixer.", p, i);
        STREE_TRY(stree_bind_mamba2(b, name, d->d_model, &d->layers[i].mamba2, &lw->mamba2));
    }
    return STREE_OK;
}

const stree_family stree_family_mamba2 = {"Mamba2ForCausalLM", parse, bind};
