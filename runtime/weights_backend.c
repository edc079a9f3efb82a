/* The backend's copy of the weights: the CPU backend reads the fp32 host arrays directly; CUDA gets
 * bf16 matrices and fp32 vectors in device memory. Expert pointer tables live in backend memory. */
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/model.h"

static stree_status own(stree_model *m, void *p) {
    if (!p) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of %s memory for the weights", m->ops->name);
    if (m->n_dev_allocs == m->cap_dev_allocs) {
        int32_t cap = m->cap_dev_allocs ? 2 * m->cap_dev_allocs : 256;
        void **grown = realloc(m->dev_allocs, (size_t)cap * sizeof *grown);
        if (!grown) {
            m->ops->free(p);
            return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
        }
        m->dev_allocs = grown;
        m->cap_dev_allocs = cap;
    }
    m->dev_allocs[m->n_dev_allocs++] = p;
    return STREE_OK;
}

typedef struct uploader {
    stree_model *m;
    int copy;       /* 0: the backend reads host memory (CPU) */
    int random;     /* random weights: fill instead of copying */
    uint64_t seed;  /* next random stream */
    stree_status s;
} uploader;

static const float *matrix(uploader *u, const float *src, int64_t rows, int64_t cols) {
    if (!src || u->s != STREE_OK) return NULL;
    const stree_ops *ops = u->m->ops;
    u->m->weight_bytes += (size_t)rows * (size_t)cols * (ops->wtype == STREE_WTYPE_BF16 ? 2 : 4);
    if (!u->copy) return src;
    void *p = u->random ? ops->random_matrix(rows, cols, u->seed++) : ops->upload_matrix(src, rows, cols);
    u->s = own(u->m, p);
    return p;
}

static const float *vector(uploader *u, const float *src, int64_t n) {
    if (!src || u->s != STREE_OK) return NULL;
    u->m->weight_bytes += (size_t)n * sizeof(float);
    if (!u->copy) return src;
    const stree_ops *ops = u->m->ops;
    void *p;
    if (u->random) {
        p = ops->random_vector(n, u->seed++, 0.5f, 1.0f); /* positive: sane norms, decays and dt */
    } else {
        p = ops->alloc((size_t)n * sizeof(float));
        if (p) ops->upload(p, src, (size_t)n * sizeof(float));
    }
    u->s = own(u->m, p);
    return p;
}

static void attn(uploader *u, const stree_attn_desc *a, int32_t D, const stree_attn_weights *h, stree_attn_weights *d) {
    int64_t q = (int64_t)a->n_heads * a->head_dim, kv = (int64_t)a->n_kv_heads * a->head_dim;
    d->q = matrix(u, h->q, q, D);
    d->k = matrix(u, h->k, kv, D);
    d->v = matrix(u, h->v, kv, D);
    d->o = matrix(u, h->o, D, q);
    d->maybe_q_bias = vector(u, h->maybe_q_bias, q);
    d->maybe_k_bias = vector(u, h->maybe_k_bias, kv);
    d->maybe_v_bias = vector(u, h->maybe_v_bias, kv);
    d->maybe_o_bias = vector(u, h->maybe_o_bias, D);
    d->maybe_q_norm = vector(u, h->maybe_q_norm, a->head_dim);
    d->maybe_k_norm = vector(u, h->maybe_k_norm, a->head_dim);
}

static void mamba(uploader *u, const stree_mamba2_desc *m, int32_t D, const stree_mamba2_weights *h,
                  stree_mamba2_weights *d) {
    d->in_proj = matrix(u, h->in_proj, m->in_proj_dim, D);
    d->maybe_in_bias = vector(u, h->maybe_in_bias, m->in_proj_dim);
    d->conv_w = vector(u, h->conv_w, (int64_t)m->conv_dim * m->d_conv);
    d->maybe_conv_b = vector(u, h->maybe_conv_b, m->conv_dim);
    d->dt_bias = vector(u, h->dt_bias, m->n_heads);
    d->A_log = vector(u, h->A_log, m->n_heads);
    d->D = vector(u, h->D, m->n_heads);
    d->maybe_norm = vector(u, h->maybe_norm, m->d_inner);
    d->out_proj = matrix(u, h->out_proj, D, m->d_inner);
    d->maybe_out_bias = vector(u, h->maybe_out_bias, D);
}

static void mlp(uploader *u, const stree_mlp_desc *md, int32_t D, const stree_mlp_weights *h, stree_mlp_weights *d) {
    if (md->has_dense) {
        d->gate = matrix(u, h->gate, md->d_ff, D);
        d->up = matrix(u, h->up, md->d_ff, D);
        d->down = matrix(u, h->down, D, md->d_ff);
    }
    if (!md->has_moe || u->s != STREE_OK) return;
    d->router = matrix(u, h->router, md->n_experts, D);
    d->maybe_router_bias = vector(u, h->maybe_router_bias, md->n_experts);
    int32_t E = md->n_experts;
    size_t before = u->m->weight_bytes;
    const void **table = calloc((size_t)3 * (size_t)E, sizeof *table);
    if (!table) {
        u->s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
        return;
    }
    for (int32_t e = 0; e < E; e++) {
        table[e] = matrix(u, h->expert_gate[e], md->d_expert, D);
        table[E + e] = matrix(u, h->expert_up[e], md->d_expert, D);
        table[2 * E + e] = matrix(u, h->expert_down[e], D, md->d_expert);
    }
    size_t bytes = (size_t)3 * (size_t)E * sizeof *table;
    void *dev = u->m->ops->alloc(bytes);
    if (u->s == STREE_OK) u->s = own(u->m, dev);
    if (u->s == STREE_OK) u->m->ops->upload(dev, table, bytes);
    free(table);
    d->expert_table = dev;
    /* a token reads top_k of the experts: count what a decode step reads */
    u->m->weight_bytes = before + (u->m->weight_bytes - before) / (size_t)E * (size_t)md->top_k;
}

stree_status stree_weights_to_backend(stree_model *m, int random, uint64_t seed) {
    const stree_model_desc *desc = &m->desc;
    uploader u = {.m = m, .copy = random || m->ops != &stree_cpu_ops, .random = random, .seed = seed, .s = STREE_OK};
    m->weight_bytes = 0;
    stree_weights *d = &m->dw, *h = &m->weights;
    int32_t D = desc->d_model;
    memset(d, 0, sizeof *d);
    d->layers = calloc((size_t)desc->n_layers, sizeof *d->layers);
    if (!d->layers) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    d->embed = vector(&u, h->embed, (int64_t)desc->vocab_size * D);
    m->weight_bytes -= (size_t)desc->vocab_size * (size_t)D * sizeof(float); /* a step reads one row per token */
    d->final_norm = vector(&u, h->final_norm, D);
    d->lm_head = matrix(&u, h->lm_head, desc->vocab_size, D);
    for (int32_t i = 0; i < desc->n_layers && u.s == STREE_OK; i++) {
        const stree_layer_desc *l = &desc->layers[i];
        stree_layer_weights *dl = &d->layers[i];
        const stree_layer_weights *hl = &h->layers[i];
        dl->norm1 = vector(&u, hl->norm1, D);
        dl->norm2 = vector(&u, hl->norm2, D);
        if (l->has_attention) attn(&u, &l->attn, D, &hl->attn, &dl->attn);
        if (l->has_mamba2) mamba(&u, &l->mamba2, D, &hl->mamba2, &dl->mamba2);
        if (l->has_mlp) mlp(&u, &l->mlp, D, &hl->mlp, &dl->mlp);
    }
    return u.s;
}

void stree_weights_backend_free(stree_model *m) {
    for (int32_t i = 0; i < m->n_dev_allocs; i++) m->ops->free(m->dev_allocs[i]);
    free(m->dev_allocs);
    free(m->dw.layers);
    m->dev_allocs = NULL;
    m->n_dev_allocs = m->cap_dev_allocs = 0;
    m->dw.layers = NULL;
}
