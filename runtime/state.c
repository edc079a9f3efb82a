/* One model's committed state (KV caches, SSM states, conv windows), its verify cache and the
 * workspace of one forward; append = prefill/decode as chains, each chunk committed whole. */
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/model.h"

#define STREE_MAX_TREE_NODES 256

static int32_t max_i(int32_t a, int32_t b) { return a > b ? a : b; }

/* count backend buffers of `each` floats (zeroed); *ok = 0 on failure */
static float **alloc_rows(const stree_ops *ops, int32_t count, size_t each, int *ok) {
    if (count == 0) return NULL;
    float **rows = calloc((size_t)count, sizeof *rows);
    if (!rows) {
        *ok = 0;
        return NULL;
    }
    for (int32_t i = 0; i < count; i++)
        if (!(rows[i] = ops->alloc((each ? each : 1) * sizeof(float)))) *ok = 0;
    return rows;
}

static void free_rows(const stree_ops *ops, float **rows, int32_t count) {
    if (!rows) return;
    for (int32_t i = 0; i < count; i++) ops->free(rows[i]);
    free(rows);
}

static void *alloc_buf(const stree_ops *ops, size_t bytes, int *ok) {
    void *p = ops->alloc(bytes ? bytes : 1);
    if (!p) *ok = 0;
    return p;
}

/* The widest per-node activation any op writes to the workspace. */
static int32_t max_width(const stree_model_desc *d) {
    int32_t w = d->d_model;
    for (int32_t i = 0; i < d->n_layers; i++) {
        const stree_layer_desc *l = &d->layers[i];
        if (l->has_mamba2) w = max_i(w, max_i(l->mamba2.in_proj_dim, l->mamba2.conv_dim));
        if (l->has_attention) w = max_i(w, l->attn.n_heads * l->attn.head_dim);
        if (l->has_mlp) w = max_i(w, max_i(l->mlp.d_ff, l->mlp.n_experts));
    }
    return w;
}

/* Every layer's commit descriptors (pointers into this state), copied to backend memory for the
 * one-launch commit. Returns 0 when out of memory. */
static int build_commit_all(stree_state *s) {
    const stree_model_desc *d = &s->model->desc;
    const stree_ops *ops = s->model->ops;
    int32_t nm = d->n_mamba_layers, na = d->n_attn_layers;
    stree_mamba2_commit_params *mamba = calloc((size_t)nm + 1, sizeof *mamba);
    stree_conv_commit_params *conv = calloc((size_t)nm + 1, sizeof *conv);
    stree_kv_commit_params *kv = calloc((size_t)na + 1, sizeof *kv);
    int32_t *starts = calloc(2 * ((size_t)nm + 1), sizeof *starts);
    stree_commit_all_params *p = &s->commit_all;
    int ok = mamba && conv && kv && starts;
    for (int32_t li = 0; ok && li < d->n_layers; li++) {
        const stree_layer_desc *l = &d->layers[li];
        if (l->has_mamba2) {
            const stree_mamba2_desc *md = &l->mamba2;
            int32_t mi = l->mamba_index;
            mamba[mi] = (stree_mamba2_commit_params){.state = s->ssm_state[mi], .xbc = s->vc.xbc[mi],
                                                      .dt = s->vc.dt[mi], .c = s->vc.c[mi], .n_heads = md->n_heads,
                                                      .head_dim = md->head_dim, .n_groups = md->n_groups,
                                                      .d_state = md->d_state};
            conv[mi] = (stree_conv_commit_params){.window = s->conv_state[mi], .x = s->vc.xbc_pre[mi],
                                                  .channels = md->conv_dim, .k = md->d_conv};
            p->max_d_state = max_i(p->max_d_state, md->d_state);
            p->max_conv_k = max_i(p->max_conv_k, md->d_conv);
            p->max_head_dim = max_i(p->max_head_dim, md->head_dim);
            starts[mi + 1] = md->n_heads;                       /* summed below */
            starts[nm + 1 + mi + 1] = (md->conv_dim + 255) / 256;
        }
        if (l->has_attention) {
            int32_t ai = l->attn_index;
            kv[ai] = (stree_kv_commit_params){.k_cache = s->k_cache[ai], .v_cache = s->v_cache[ai],
                                              .k_tree = s->vc.k_tree[ai], .v_tree = s->vc.v_tree[ai],
                                              .row = l->attn.n_kv_heads * l->attn.head_dim};
        }
    }
    if (ok) {
        for (int32_t l = 0; l < nm; l++) {
            starts[l + 1] += starts[l];
            starts[nm + 1 + l + 1] += starts[nm + 1 + l];
        }
        p->n_ssm_items = starts[nm], p->n_conv_items = starts[2 * nm + 1];
        size_t bm = ((size_t)nm + 1) * sizeof *mamba, bc = ((size_t)nm + 1) * sizeof *conv;
        size_t bk = ((size_t)na + 1) * sizeof *kv, bs = 2 * ((size_t)nm + 1) * sizeof *starts;
        void *dm = ops->alloc(bm), *dc = ops->alloc(bc), *dk = ops->alloc(bk), *ds = ops->alloc(bs);
        p->mamba = dm, p->conv = dc, p->kv = dk, p->item_start = ds; /* freed with the state */
        ok = dm && dc && dk && ds;
        if (ok) {
            ops->upload(dm, mamba, bm), ops->upload(dc, conv, bc);
            ops->upload(dk, kv, bk), ops->upload(ds, starts, bs);
        }
        p->n_mamba = nm, p->n_attn = na, p->max_len = s->max_nodes;
        p->path = s->ws.path, p->len = s->ws.commit_io, p->n_past = s->ws.n_past;
    }
    free(mamba), free(conv), free(kv), free(starts);
    return ok;
}

stree_status stree_state_create(stree_model *model, int32_t n_ctx, int32_t chunk_size, stree_state **out) {
    *out = NULL;
    if (n_ctx <= 0 || n_ctx > (1 << 24))
        return stree_fail(STREE_ERR_INVALID_ARG, "n_ctx %d is out of range (1..%d)", n_ctx, 1 << 24);
    if (chunk_size <= 0 || chunk_size > 4096)
        return stree_fail(STREE_ERR_INVALID_ARG, "chunk_size %d is out of range (1..4096)", chunk_size);
    const stree_model_desc *d = &model->desc;
    stree_state *s = calloc(1, sizeof *s);
    if (!s) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    s->model = model;
    s->n_ctx = n_ctx;
    s->chunk_size = chunk_size;
    s->max_nodes = max_i(chunk_size, STREE_MAX_TREE_NODES);
    if (s->max_nodes > 4096) s->max_nodes = 4096;
    s->last_token = -1;
    int ok = 1;
    size_t kv_row = 0, mamba_conv = 0, mamba_state = 0, mamba_heads = 0;
    for (int32_t i = 0; i < d->n_layers; i++) { /* layers of one model share their sizes by kind */
        const stree_layer_desc *l = &d->layers[i];
        if (l->has_attention) kv_row = (size_t)max_i((int32_t)kv_row, l->attn.n_kv_heads * l->attn.head_dim);
        if (l->has_mamba2) {
            mamba_conv = (size_t)max_i((int32_t)mamba_conv, l->mamba2.conv_dim);
            mamba_state = (size_t)max_i((int32_t)mamba_state, l->mamba2.n_heads * l->mamba2.head_dim * l->mamba2.d_state);
            mamba_heads = (size_t)max_i((int32_t)mamba_heads, l->mamba2.n_heads);
        }
    }
    size_t conv_rows = 0;
    for (int32_t i = 0; i < d->n_layers; i++)
        if (d->layers[i].has_mamba2) conv_rows = (size_t)max_i((int32_t)conv_rows, d->layers[i].mamba2.d_conv - 1);
    size_t mn = (size_t)s->max_nodes, top_k = 1, d_expert = 1;
    for (int32_t i = 0; i < d->n_layers; i++)
        if (d->layers[i].mlp.has_moe) {
            top_k = (size_t)max_i((int32_t)top_k, d->layers[i].mlp.top_k);
            d_expert = (size_t)max_i((int32_t)d_expert, d->layers[i].mlp.d_expert);
        }
    const stree_ops *ops = model->ops;
    s->k_cache = alloc_rows(ops, d->n_attn_layers, (size_t)n_ctx * kv_row, &ok);
    s->v_cache = alloc_rows(ops, d->n_attn_layers, (size_t)n_ctx * kv_row, &ok);
    s->conv_state = alloc_rows(ops, d->n_mamba_layers, conv_rows * mamba_conv, &ok);
    s->ssm_state = alloc_rows(ops, d->n_mamba_layers, mamba_state, &ok);
    s->vc.k_tree = alloc_rows(ops, d->n_attn_layers, mn * kv_row, &ok);
    s->vc.v_tree = alloc_rows(ops, d->n_attn_layers, mn * kv_row, &ok);
    s->vc.xbc_pre = alloc_rows(ops, d->n_mamba_layers, mn * mamba_conv, &ok);
    s->vc.xbc = alloc_rows(ops, d->n_mamba_layers, mn * mamba_conv, &ok);
    s->vc.dt = alloc_rows(ops, d->n_mamba_layers, mn * mamba_heads, &ok);
    s->vc.c = alloc_rows(ops, d->n_mamba_layers, mn * mamba_heads, &ok);
    size_t D = (size_t)d->d_model, W = (size_t)max_width(d), F = sizeof(float), V = (size_t)d->vocab_size;
    stree_workspace *ws = &s->ws;
    ws->h = alloc_buf(ops, mn * D * F, &ok);
    ws->xn = alloc_buf(ops, mn * D * F, &ok);
    size_t WT = ops->wtype == STREE_WTYPE_BF16 ? 2 : 4; /* bytes per element in the weight type */
    ws->xn_wt = alloc_buf(ops, mn * D * WT, &ok);
    size_t I = 1; /* the widest Mamba-2 inner dimension */
    for (int32_t i = 0; i < d->n_layers; i++)
        if (d->layers[i].has_mamba2) I = (size_t)max_i((int32_t)I, d->layers[i].mamba2.d_inner);
    ws->g_wt = alloc_buf(ops, mn * I * WT, &ok);
    ws->acc = alloc_buf(ops, mn * D * F, &ok);
    ws->tmp = alloc_buf(ops, mn * D * F, &ok);
    ws->big = alloc_buf(ops, mn * W * F, &ok);
    ws->big2 = alloc_buf(ops, mn * W * F, &ok);
    ws->big3 = alloc_buf(ops, mn * W * F, &ok);
    ws->scores = alloc_buf(ops, ((size_t)n_ctx + mn) * F, &ok);
    ws->route_w = alloc_buf(ops, mn * top_k * F, &ok);
    ws->route_e = alloc_buf(ops, mn * top_k * sizeof(int32_t), &ok);
    ws->moe_scratch = alloc_buf(ops, mn * top_k * 3 * d_expert * F, &ok);
    ws->logits = alloc_buf(ops, mn * V * F, &ok);
    ws->io = alloc_buf(ops, (1 + 3 * mn) * sizeof(int32_t), &ok);
    ws->n_past = ws->io;
    ws->commit_io = alloc_buf(ops, (1 + mn) * sizeof(int32_t), &ok);
    ws->path = ws->commit_io ? ws->commit_io + 1 : NULL;
    ws->topk_idx = alloc_buf(ops, mn * 16 * sizeof(int32_t), &ok);
    ws->topk_logp = alloc_buf(ops, mn * 16 * F, &ok);
    s->commit_graphs = calloc((size_t)s->max_nodes + 1, sizeof *s->commit_graphs);
    if (!s->commit_graphs) ok = 0;
    if (ok && ops->commit_all && !build_commit_all(s)) ok = 0;
    const char *no_graphs = getenv("STREE_NO_GRAPHS");
    s->use_graphs = !(no_graphs && no_graphs[0] == '1');
    if (!ok) {
        stree_state_free(s);
        return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for a sequence of %d tokens", n_ctx);
    }
    *out = s;
    return STREE_OK;
}

void stree_state_free(stree_state *s) {
    if (!s) return;
    if (s->commit_all.mamba) s->model->ops->free((void *)s->commit_all.mamba);
    if (s->commit_all.conv) s->model->ops->free((void *)s->commit_all.conv);
    if (s->commit_all.kv) s->model->ops->free((void *)s->commit_all.kv);
    if (s->commit_all.item_start) s->model->ops->free((void *)s->commit_all.item_start);
    const stree_model_desc *d = &s->model->desc;
    const stree_ops *ops = s->model->ops;
    free_rows(ops, s->k_cache, d->n_attn_layers);
    free_rows(ops, s->v_cache, d->n_attn_layers);
    free_rows(ops, s->conv_state, d->n_mamba_layers);
    free_rows(ops, s->ssm_state, d->n_mamba_layers);
    free_rows(ops, s->vc.k_tree, d->n_attn_layers);
    free_rows(ops, s->vc.v_tree, d->n_attn_layers);
    free_rows(ops, s->vc.xbc_pre, d->n_mamba_layers);
    free_rows(ops, s->vc.xbc, d->n_mamba_layers);
    free_rows(ops, s->vc.dt, d->n_mamba_layers);
    free_rows(ops, s->vc.c, d->n_mamba_layers);
    stree_workspace *ws = &s->ws;
    void *bufs[] = {ws->h,      ws->xn,      ws->xn_wt,   ws->g_wt,   ws->acc,    ws->tmp,    ws->big,   ws->big2,  ws->big3,
                    ws->scores, ws->route_w, ws->route_e, ws->moe_scratch, ws->logits, ws->io,     ws->commit_io,
                    ws->topk_idx, ws->topk_logp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops->free(bufs[i]);
    if (ops->graph_free) {
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 13; j++) ops->graph_free(s->fwd_graphs[k][j]);
        for (int32_t j = 0; s->commit_graphs && j <= s->max_nodes; j++) ops->graph_free(s->commit_graphs[j]);
        ops->graph_free(s->commit_all_graph);
    }
    free(s->commit_graphs);
    free(s);
}

void stree_state_reset(stree_state *s) {
    if (!s) return;
    const stree_model_desc *d = &s->model->desc;
    for (int32_t i = 0; i < d->n_layers; i++) {
        const stree_layer_desc *l = &d->layers[i];
        if (!l->has_mamba2) continue;
        const stree_mamba2_desc *m = &l->mamba2;
        const stree_ops *ops = s->model->ops;
        ops->zero(s->conv_state[l->mamba_index], (size_t)(m->d_conv - 1) * (size_t)m->conv_dim * sizeof(float));
        ops->zero(s->ssm_state[l->mamba_index],
                  (size_t)m->n_heads * (size_t)m->head_dim * (size_t)m->d_state * sizeof(float));
    }
    s->n_committed = 0;
    s->last_token = -1;
    s->vc.n_nodes = 0;
}

stree_status stree_state_append(stree_state *s, const int32_t *tokens, int32_t n_tokens, float *maybe_logits) {
    if ((!tokens && n_tokens > 0) || n_tokens < 0)
        return stree_fail(STREE_ERR_INVALID_ARG, "append: bad arguments");
    const stree_model_desc *d = &s->model->desc;
    /* Validate everything first so that no chunk is committed by a call that then fails. */
    for (int32_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= d->vocab_size)
            return stree_fail(STREE_ERR_INVALID_ARG, "token id %d at position %d is outside the vocabulary [0, %d)",
                              tokens[i], i, d->vocab_size);
    if (s->n_committed + n_tokens > s->n_ctx)
        return stree_fail(STREE_ERR_CONTEXT_FULL, "appending %d tokens to %d would exceed the context of %d", n_tokens,
                          s->n_committed, s->n_ctx);
    int32_t chunk = s->chunk_size;
    int32_t parent[4096], path[4096];
    for (int32_t i = 0; i < chunk; i++) {
        parent[i] = i - 1;
        path[i] = i;
    }
    for (int32_t start = 0; start < n_tokens; start += chunk) {
        int32_t n = n_tokens - start < chunk ? n_tokens - start : chunk;
        stree_fwd_tree tree = {.n = n, .tokens = tokens + start, .parent = parent};
        float *logits = maybe_logits ? maybe_logits + (int64_t)start * d->vocab_size : NULL;
        STREE_TRY(stree_forward_tree_host(s, &tree, logits, NULL));
        STREE_TRY(stree_commit_path(s, path, n, tokens[start + n - 1]));
    }
    return STREE_OK;
}
