#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/family.h"

static const stree_family *const families[] = {
    &stree_family_mamba2, &stree_family_bamba,     &stree_family_granite_hybrid, &stree_family_nemotron_h,
    &stree_family_falcon_h1, &stree_family_llama, &stree_family_qwen3,
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

const stree_family *stree_family_find(const char *architecture) {
    for (int i = 0; i < N_FAMILIES; i++)
        if (!strcmp(families[i]->architecture, architecture)) return families[i];
    return NULL;
}

const char *stree_family_names(void) {
    static char names[512];
    if (!names[0]) {
        size_t len = 0;
        for (int i = 0; i < N_FAMILIES; i++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", families[i]->architecture);
    }
    return names;
}

stree_status stree_desc_alloc_layers(stree_model_desc *desc, int32_t n_layers) {
    if (n_layers <= 0 || n_layers > 100000)
        return stree_fail(STREE_ERR_CONFIG, "number of layers %d is out of range", n_layers);
    desc->layers = calloc((size_t)n_layers, sizeof *desc->layers);
    if (!desc->layers) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for %d layers", n_layers);
    desc->n_layers = n_layers;
    for (int32_t i = 0; i < n_layers; i++) stree_layer_defaults(&desc->layers[i]);
    return STREE_OK;
}

void stree_layer_defaults(stree_layer_desc *l) {
    l->attn_in_mult = l->attn_out_mult = 1.0f;
    l->attn.key_mult = 1.0f;
    l->mamba2.in_mult = l->mamba2.out_mult = 1.0f;
    for (int i = 0; i < 5; i++) l->mamba2.seg_mult[i] = 1.0f;
    l->mamba2.dt_max = INFINITY;
    l->mlp.gate_mult = l->mlp.down_mult = 1.0f;
    l->mlp.routed_scale = 1.0f;
    l->attn_index = l->mamba_index = -1;
}

static stree_status positive(const stree_cfg *cfg, const char *key, int32_t v) {
    if (v <= 0) return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be positive, got %d", cfg->path, key, v);
    return STREE_OK;
}

stree_status stree_parse_common(const stree_cfg *cfg, stree_model_desc *desc, int32_t tie_default) {
    STREE_TRY(stree_cfg_int(cfg, "vocab_size", &desc->vocab_size));
    STREE_TRY(positive(cfg, "vocab_size", desc->vocab_size));
    STREE_TRY(stree_cfg_int(cfg, "hidden_size", &desc->d_model));
    STREE_TRY(positive(cfg, "hidden_size", desc->d_model));
    STREE_TRY(stree_cfg_bool_or(cfg, "tie_word_embeddings", tie_default, &desc->tie_embeddings));
    STREE_TRY(stree_cfg_int_or(cfg, "max_position_embeddings", 0, &desc->max_positions));
    desc->eos_token = stree_cfg_token_id(cfg, "eos_token_id");
    desc->bos_token = stree_cfg_token_id(cfg, "bos_token_id");
    desc->embedding_mult = desc->residual_mult = desc->logits_mult = 1.0f;
    desc->norm_kind = STREE_NORM_RMS;
    return STREE_OK;
}

stree_status stree_parse_attention(const stree_cfg *cfg, int32_t d_model, int32_t rope, stree_attn_desc *a) {
    STREE_TRY(stree_cfg_int(cfg, "num_attention_heads", &a->n_heads));
    STREE_TRY(positive(cfg, "num_attention_heads", a->n_heads));
    STREE_TRY(stree_cfg_int_or(cfg, "num_key_value_heads", a->n_heads, &a->n_kv_heads));
    STREE_TRY(positive(cfg, "num_key_value_heads", a->n_kv_heads));
    if (a->n_heads % a->n_kv_heads)
        return stree_fail(STREE_ERR_CONFIG, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                          cfg->path, a->n_heads, a->n_kv_heads);
    /* older Nemotron-H hub configs spell it attention_head_dim */
    int32_t head_dim_default = d_model / a->n_heads;
    STREE_TRY(stree_cfg_int_or(cfg, "attention_head_dim", head_dim_default, &head_dim_default));
    STREE_TRY(stree_cfg_int_or(cfg, "head_dim", head_dim_default, &a->head_dim));
    STREE_TRY(positive(cfg, "head_dim", a->head_dim));
    a->scale = 1.0f / sqrtf((float)a->head_dim);
    a->key_mult = 1.0f;
    int32_t bias = 0;
    STREE_TRY(stree_cfg_bool_or(cfg, "attention_bias", 0, &bias));
    a->qkv_bias = a->o_bias = bias;
    a->rope_dims = 0;
    if (rope) {
        STREE_TRY(stree_cfg_check_rope_type(cfg));
        STREE_TRY(stree_cfg_rope_theta(cfg, 10000.0f, &a->rope_theta));
        float partial = 0.0f;
        STREE_TRY(stree_cfg_partial_rotary(cfg, 1.0f, &partial));
        if (!(partial > 0.0f && partial <= 1.0f))
            return stree_fail(STREE_ERR_CONFIG, "%s: partial_rotary_factor %g must be in (0, 1]", cfg->path, partial);
        a->rope_dims = (int32_t)((float)a->head_dim * partial);
        a->rope_dims &= ~1;
    }
    return STREE_OK;
}

stree_status stree_mamba2_finish(const stree_cfg *cfg, stree_mamba2_desc *m) {
    if (m->n_heads <= 0 || m->head_dim <= 0 || m->d_state <= 0 || m->n_groups <= 0 || m->d_conv <= 1)
        return stree_fail(STREE_ERR_CONFIG, "%s: Mamba-2 sizes must be positive (heads %d, head dim %d, state %d, "
                          "groups %d, conv %d)", cfg->path, m->n_heads, m->head_dim, m->d_state, m->n_groups, m->d_conv);
    if (m->d_inner != m->n_heads * m->head_dim)
        return stree_fail(STREE_ERR_CONFIG, "%s: Mamba-2 inner size %d != heads %d x head dim %d", cfg->path,
                          m->d_inner, m->n_heads, m->head_dim);
    if (m->n_heads % m->n_groups)
        return stree_fail(STREE_ERR_CONFIG, "%s: Mamba-2 heads %d not divisible by groups %d", cfg->path, m->n_heads,
                          m->n_groups);
    if (m->gnorm_groups <= 0 || m->d_inner % m->gnorm_groups)
        return stree_fail(STREE_ERR_CONFIG, "%s: gated norm groups %d do not divide inner size %d", cfg->path,
                          m->gnorm_groups, m->d_inner);
    m->conv_dim = m->d_inner + 2 * m->n_groups * m->d_state;
    m->in_proj_dim = 2 * m->d_inner + 2 * m->n_groups * m->d_state + m->n_heads;
    return STREE_OK;
}

void stree_desc_index_states(stree_model_desc *desc) {
    desc->n_attn_layers = desc->n_mamba_layers = 0;
    for (int32_t i = 0; i < desc->n_layers; i++) {
        stree_layer_desc *l = &desc->layers[i];
        l->attn_index = l->has_attention ? desc->n_attn_layers++ : -1;
        l->mamba_index = l->has_mamba2 ? desc->n_mamba_layers++ : -1;
    }
}

/* ---------------------------------------------------------------- binders */
#define NAME_CAP 256

stree_status stree_bind_vector(stree_wbinder *b, const float **dst, const char *name, int64_t n) {
    int64_t shape[1] = {n};
    return stree_bind(b, dst, name, 1, shape);
}

stree_status stree_bind_matrix(stree_wbinder *b, const float **dst, const char *name, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    return stree_bind(b, dst, name, 2, shape);
}

static const char *cat(char *buf, const char *prefix, const char *suffix) {
    snprintf(buf, NAME_CAP, "%s%s", prefix, suffix);
    return buf;
}

stree_status stree_bind_mamba2(stree_wbinder *b, const char *prefix, int32_t d_model, const stree_mamba2_desc *m,
                               stree_mamba2_weights *w) {
    char n[NAME_CAP];
    STREE_TRY(stree_bind_matrix(b, &w->in_proj, cat(n, prefix, "in_proj.weight"), m->in_proj_dim, d_model));
    if (m->in_proj_bias) STREE_TRY(stree_bind_vector(b, &w->maybe_in_bias, cat(n, prefix, "in_proj.bias"), m->in_proj_dim));
    int64_t conv_shape[3] = {m->conv_dim, 1, m->d_conv};
    STREE_TRY(stree_bind(b, &w->conv_w, cat(n, prefix, "conv1d.weight"), 3, conv_shape));
    if (m->conv_bias) STREE_TRY(stree_bind_vector(b, &w->maybe_conv_b, cat(n, prefix, "conv1d.bias"), m->conv_dim));
    STREE_TRY(stree_bind_vector(b, &w->dt_bias, cat(n, prefix, "dt_bias"), m->n_heads));
    STREE_TRY(stree_bind_vector(b, &w->A_log, cat(n, prefix, "A_log"), m->n_heads));
    STREE_TRY(stree_bind_vector(b, &w->D, cat(n, prefix, "D"), m->n_heads));
    if (m->gnorm_weight) STREE_TRY(stree_bind_vector(b, &w->maybe_norm, cat(n, prefix, "norm.weight"), m->d_inner));
    STREE_TRY(stree_bind_matrix(b, &w->out_proj, cat(n, prefix, "out_proj.weight"), d_model, m->d_inner));
    if (m->out_proj_bias) STREE_TRY(stree_bind_vector(b, &w->maybe_out_bias, cat(n, prefix, "out_proj.bias"), d_model));
    return STREE_OK;
}

stree_status stree_bind_attention(stree_wbinder *b, const char *prefix, int32_t d_model, const stree_attn_desc *a,
                                  stree_attn_weights *w) {
    char n[NAME_CAP];
    int64_t q_rows = (int64_t)a->n_heads * a->head_dim, kv_rows = (int64_t)a->n_kv_heads * a->head_dim;
    STREE_TRY(stree_bind_matrix(b, &w->q, cat(n, prefix, "q_proj.weight"), q_rows, d_model));
    STREE_TRY(stree_bind_matrix(b, &w->k, cat(n, prefix, "k_proj.weight"), kv_rows, d_model));
    STREE_TRY(stree_bind_matrix(b, &w->v, cat(n, prefix, "v_proj.weight"), kv_rows, d_model));
    STREE_TRY(stree_bind_matrix(b, &w->o, cat(n, prefix, "o_proj.weight"), d_model, q_rows));
    if (a->qkv_bias) {
        STREE_TRY(stree_bind_vector(b, &w->maybe_q_bias, cat(n, prefix, "q_proj.bias"), q_rows));
        STREE_TRY(stree_bind_vector(b, &w->maybe_k_bias, cat(n, prefix, "k_proj.bias"), kv_rows));
        STREE_TRY(stree_bind_vector(b, &w->maybe_v_bias, cat(n, prefix, "v_proj.bias"), kv_rows));
    }
    if (a->o_bias) STREE_TRY(stree_bind_vector(b, &w->maybe_o_bias, cat(n, prefix, "o_proj.bias"), d_model));
    if (a->qk_norm) {
        STREE_TRY(stree_bind_vector(b, &w->maybe_q_norm, cat(n, prefix, "q_norm.weight"), a->head_dim));
        STREE_TRY(stree_bind_vector(b, &w->maybe_k_norm, cat(n, prefix, "k_norm.weight"), a->head_dim));
    }
    return STREE_OK;
}

stree_status stree_bind_gated_mlp(stree_wbinder *b, const char *prefix, const char *gate, const char *up,
                                  const char *down, int32_t d_model, int32_t d_ff, stree_mlp_weights *w) {
    char n[NAME_CAP];
    if (gate) STREE_TRY(stree_bind_matrix(b, &w->gate, cat(n, prefix, gate), d_ff, d_model));
    STREE_TRY(stree_bind_matrix(b, &w->up, cat(n, prefix, up), d_ff, d_model));
    STREE_TRY(stree_bind_matrix(b, &w->down, cat(n, prefix, down), d_model, d_ff));
    return STREE_OK;
}

stree_status stree_bind_io(stree_wbinder *b, const stree_model_desc *desc, const char *embed, const char *final_norm,
                           const char *lm_head, stree_weights *w) {
    STREE_TRY(stree_bind_matrix(b, &w->embed, embed, desc->vocab_size, desc->d_model));
    STREE_TRY(stree_bind_vector(b, &w->final_norm, final_norm, desc->d_model));
    if (desc->tie_embeddings) {
        w->lm_head = w->embed; /* a saved copy of the tied head, if any, is ignored */
    } else {
        STREE_TRY(stree_bind_matrix(b, &w->lm_head, lm_head, desc->vocab_size, desc->d_model));
    }
    return STREE_OK;
}

stree_status stree_bind_decoder_layer(stree_wbinder *b, const stree_model_desc *d, int32_t i,
                                      const stree_layer_names *names, stree_layer_weights *lw) {
    const stree_layer_desc *l = &d->layers[i];
    char n[NAME_CAP];
    snprintf(n, sizeof n, "model.layers.%d.%s", i, names->norm1);
    STREE_TRY(stree_bind_vector(b, &lw->norm1, n, d->d_model));
    snprintf(n, sizeof n, "model.layers.%d.%s", i, names->norm2);
    STREE_TRY(stree_bind_vector(b, &lw->norm2, n, d->d_model));
    if (l->has_mamba2) {
        snprintf(n, sizeof n, "model.layers.%d.%s", i, names->mamba);
        STREE_TRY(stree_bind_mamba2(b, n, d->d_model, &l->mamba2, &lw->mamba2));
    }
    if (l->has_attention) {
        snprintf(n, sizeof n, "model.layers.%d.%s", i, names->attn);
        STREE_TRY(stree_bind_attention(b, n, d->d_model, &l->attn, &lw->attn));
    }
    if (names->mlp) {
        snprintf(n, sizeof n, "model.layers.%d.%s", i, names->mlp);
        STREE_TRY(stree_bind_gated_mlp(b, n, "gate_proj.weight", "up_proj.weight", "down_proj.weight", d->d_model,
                                       l->mlp.d_ff, &lw->mlp));
    }
    return STREE_OK;
}

stree_status stree_alloc_experts(stree_weights *all, int32_t n_experts, stree_mlp_weights *w) {
    const float **p = calloc((size_t)3 * (size_t)n_experts, sizeof *p);
    if (!p) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for %d experts", n_experts);
    STREE_TRY(stree_weights_own(all, (void *)p));
    w->expert_gate = p;
    w->expert_up = p + n_experts;
    w->expert_down = p + 2 * n_experts;
    return STREE_OK;
}

const char *stree_pick_prefix(const stree_wbinder *b, const char *probe) {
    char n[NAME_CAP];
    if (stree_bind_has(b, cat(n, "model.", probe))) return "model.";
    if (stree_bind_has(b, cat(n, "backbone.", probe))) return "backbone.";
    return "model.";
}

stree_status stree_parse_mamba_prefixed(const stree_cfg *cfg, int32_t d_inner, float eps, stree_mamba2_desc *m) {
    m->d_inner = d_inner;
    STREE_TRY(stree_cfg_int(cfg, "mamba_n_heads", &m->n_heads));
    STREE_TRY(positive(cfg, "mamba_n_heads", m->n_heads));
    const cJSON *hd = stree_cfg_get(cfg, "mamba_d_head");
    if (!hd || (cJSON_IsString(hd) && !strcmp(hd->valuestring, "auto"))) {
        m->head_dim = m->d_inner / m->n_heads;
    } else {
        STREE_TRY(stree_cfg_int(cfg, "mamba_d_head", &m->head_dim));
    }
    STREE_TRY(stree_cfg_int_or(cfg, "mamba_n_groups", 1, &m->n_groups));
    STREE_TRY(stree_cfg_int(cfg, "mamba_d_state", &m->d_state));
    STREE_TRY(stree_cfg_int_or(cfg, "mamba_d_conv", 4, &m->d_conv));
    STREE_TRY(stree_cfg_bool_or(cfg, "mamba_conv_bias", 1, &m->conv_bias));
    STREE_TRY(stree_cfg_bool_or(cfg, "mamba_proj_bias", 0, &m->in_proj_bias));
    m->out_proj_bias = m->in_proj_bias;
    STREE_TRY(stree_parse_dt_limit(cfg, m));
    m->gnorm_weight = 1;
    m->gnorm_groups = 1;
    m->gnorm_before_gate = 0;
    m->gnorm_eps = eps;
    return STREE_OK;
}

stree_status stree_parse_layer_kinds(const stree_cfg *cfg, const char *key, stree_layer_kind_map map,
                                     char *kinds, int32_t cap, int32_t *n) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) return stree_fail(STREE_ERR_CONFIG, "%s: missing required key '%s'", cfg->path, key);
    if (!cJSON_IsArray(v)) return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be a list of strings", cfg->path, key);
    int32_t count = cJSON_GetArraySize(v);
    if (count <= 0 || count > cap)
        return stree_fail(STREE_ERR_CONFIG, "%s: '%s' has %d entries (1..%d allowed)", cfg->path, key, count, cap);
    for (int32_t i = 0; i < count; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        char kind = cJSON_IsString(e) ? map(e->valuestring) : 0;
        if (!kind)
            return stree_fail(STREE_ERR_CONFIG, "%s: %s[%d] = %s%s%s is not a known layer type", cfg->path, key, i,
                              cJSON_IsString(e) ? "'" : "", cJSON_IsString(e) ? e->valuestring : "(not a string)",
                              cJSON_IsString(e) ? "'" : "");
        kinds[i] = kind;
    }
    *n = count;
    return STREE_OK;
}

char stree_layer_kind_standard(const char *name) {
    if (!strcmp(name, "mamba") || !strcmp(name, "linear_attention") || !strcmp(name, "M")) return 'M';
    if (!strcmp(name, "attention") || !strcmp(name, "full_attention") || !strcmp(name, "*")) return '*';
    if (!strcmp(name, "mlp") || !strcmp(name, "-")) return '-';
    if (!strcmp(name, "moe") || !strcmp(name, "E")) return 'E';
    return 0;
}

const char *stree_bind_backbone_io(stree_wbinder *b, const stree_model_desc *d, const char *probe, stree_weights *w,
                                   stree_status *status) {
    const char *p = stree_pick_prefix(b, probe);
    char embed[NAME_CAP], norm_f[NAME_CAP];
    snprintf(embed, sizeof embed, "%sembeddings.weight", p);
    if (!stree_bind_has(b, embed)) snprintf(embed, sizeof embed, "%sembedding.weight", p);
    snprintf(norm_f, sizeof norm_f, "%snorm_f.weight", p);
    *status = stree_bind_io(b, d, embed, norm_f, "lm_head.weight", w);
    return p;
}
