/* The one forward pass: over a token tree (a prefill chunk and a decode step are chains), from the
 * committed state, which it only reads. Per-node vectors for the commit go to the verify cache. */
#include <math.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/model.h"

/* A failed kernel launch / device call surfaces here as STREE_ERR_BACKEND. */
static stree_status backend_status(const stree_ops *ops) {
    const char *err = ops->take_error ? ops->take_error() : NULL;
    return err ? stree_fail(STREE_ERR_BACKEND, "%s backend: %s", ops->name, err) : STREE_OK;
}

/* y[:, :cols] = alpha * x + beta * y, row strides ldx / ldy */
static void axpby(const stree_ops *ops, const float *x, int64_t ldx, float *y, int64_t ldy, int32_t n, int32_t cols,
                  float alpha, float beta) {
    stree_axpby_params p = {.x = x, .y = y, .n = n, .cols = cols, .ldx = ldx, .ldy = ldy, .alpha = alpha,
                            .beta = beta};
    ops->axpby(&p);
}

/* u * mult into scratch (a layer input multiplier must not scale the projection's bias); the weight-type
 * copy *u_wt then no longer matches and is dropped. */
static const float *scaled_input(const stree_ops *ops, stree_workspace *ws, const float *u, const void **u_wt,
                                 int32_t n, int32_t d, float mult) {
    if (mult == 1.0f) return u;
    axpby(ops, u, d, ws->tmp, d, n, d, mult, 0.0f);
    *u_wt = NULL;
    return ws->tmp;
}

/* maybe_x_wt: x in the weight type, as its norm stored it (NULL: the backend converts x itself) */
static void linear(const stree_ops *ops, const float *x, const void *maybe_x_wt, int64_t ldx, const void *w,
                   const float *maybe_bias, float *y, int64_t ldy, int32_t n, int32_t k, int32_t m, float alpha,
                   int32_t accumulate) {
    stree_matmul_params p = {.x = x, .w = w, .wtype = ops->wtype, .maybe_bias = maybe_bias, .y = y, .n = n, .k = k,
                             .m = m, .ldx = ldx, .ldy = ldy, .alpha = alpha, .accumulate = accumulate,
                             .maybe_x_wt = maybe_x_wt};
    ops->matmul(&p);
}

static void rmsnorm(const stree_ops *ops, const float *x, const float *w, float *y, void *maybe_y_wt, int32_t n,
                    int32_t dim, int64_t ld, float eps, stree_norm_kind kind) {
    stree_rmsnorm_params p = {.x = x, .maybe_w = w, .y = y, .n = n, .dim = dim, .ldx = ld, .ldy = ld,
                              .eps = eps, .kind = kind, .maybe_y_wt = maybe_y_wt};
    ops->rmsnorm(&p);
}

/* h [n, D] += mamba2(u [n, D]) * out_mult * scale; fills the layer's verify-cache rows. u_wt: u in the
 * weight type. */
static void mamba2_block(stree_state *st, int32_t layer, const stree_tree_view *tv, const float *u,
                         const void *u_wt, float *h, float scale) {
    const stree_model *m = st->model;
    const stree_ops *ops = m->ops;
    const stree_layer_desc *l = &m->desc.layers[layer];
    const stree_mamba2_desc *md = &l->mamba2;
    const stree_mamba2_weights *w = &m->dw.layers[layer].mamba2;
    int32_t n = tv->n, D = m->desc.d_model, I = md->d_inner, Cd = md->conv_dim, H = md->n_heads;
    int32_t GN = md->n_groups * md->d_state, li = l->mamba_index;
    stree_workspace *ws = &st->ws;
    float *proj = ws->big; /* [n, in_proj_dim]: z | x | B | C | dt */
    u = scaled_input(ops, ws, u, &u_wt, n, D, md->in_mult);
    linear(ops, u, u_wt, D, w->in_proj, w->maybe_in_bias, proj, md->in_proj_dim, n, D, md->in_proj_dim, 1.0f, 0);
    /* Falcon-H1 muP: scale the five segments (a no-op elsewhere) */
    int32_t seg_end[5] = {I, 2 * I, 2 * I + GN, 2 * I + 2 * GN, md->in_proj_dim};
    for (int32_t s = 0, start = 0; s < 5; start = seg_end[s], s++) {
        if (md->seg_mult[s] == 1.0f) continue;
        axpby(ops, proj + start, md->in_proj_dim, proj + start, md->in_proj_dim, n, seg_end[s] - start,
              md->seg_mult[s], 0.0f);
    }
    float *xbc_pre = st->vc.xbc_pre[li], *xbc = st->vc.xbc[li], *dt = st->vc.dt[li], *c = st->vc.c[li];
    stree_conv_tree_params cp = {.x = proj + I, .window = st->conv_state[li], .w = w->conv_w,
                                 .maybe_bias = w->maybe_conv_b, .out = xbc, .maybe_x_copy = xbc_pre, .tree = *tv,
                                 .channels = Cd, .k = md->d_conv, .ldx = md->in_proj_dim};
    ops->conv_tree(&cp);
    float *y = ws->big2; /* [n, I] */
    stree_mamba2_scan_params sp = {.xbc = xbc, .dt_raw = proj + I + Cd, .ld_dt = md->in_proj_dim,
                                   .dt_bias = w->dt_bias, .dt_min = md->dt_min, .dt_max = md->dt_max, .dt = dt,
                                   .A_log = w->A_log, .D = w->D,
                                   .state = st->ssm_state[li], .c = c, .y = y, .tree = *tv, .n_heads = H,
                                   .head_dim = md->head_dim, .n_groups = md->n_groups, .d_state = md->d_state};
    ops->mamba2_scan_tree(&sp);
    float *g = ws->big3; /* [n, I] */
    stree_gated_norm_params gp = {.y = y, .z = proj, .maybe_w = md->gnorm_weight ? w->maybe_norm : NULL, .out = g,
                                  .n = n, .dim = I, .groups = md->gnorm_groups,
                                  .norm_before_gate = md->gnorm_before_gate, .ldz = md->in_proj_dim,
                                  .eps = md->gnorm_eps, .maybe_out_wt = ws->g_wt};
    ops->gated_norm(&gp);
    linear(ops, g, ws->g_wt, I, w->out_proj, w->maybe_out_bias, h, D, n, I, D, md->out_mult * scale, 1);
}

/* h [n, D] += attention(u * in_mult) * out_mult * scale over prefix + tree ancestors. */
static void attention_block(stree_state *st, int32_t layer, const stree_tree_view *tv, const float *u,
                            const void *u_wt, float *h, float scale) {
    const stree_model *m = st->model;
    const stree_ops *ops = m->ops;
    const stree_layer_desc *l = &m->desc.layers[layer];
    const stree_attn_desc *a = &l->attn;
    const stree_attn_weights *w = &m->dw.layers[layer].attn;
    int32_t n = tv->n, D = m->desc.d_model, hd = a->head_dim, li = l->attn_index;
    int32_t q_dim = a->n_heads * hd, kv_dim = a->n_kv_heads * hd;
    stree_workspace *ws = &st->ws;
    float *q = ws->big, *o = ws->big2;
    float *k = st->vc.k_tree[li], *v = st->vc.v_tree[li];
    u = scaled_input(ops, ws, u, &u_wt, n, D, l->attn_in_mult);
    linear(ops, u, u_wt, D, w->q, w->maybe_q_bias, q, q_dim, n, D, q_dim, 1.0f, 0);
    linear(ops, u, u_wt, D, w->k, w->maybe_k_bias, k, kv_dim, n, D, kv_dim, 1.0f, 0);
    linear(ops, u, u_wt, D, w->v, w->maybe_v_bias, v, kv_dim, n, D, kv_dim, 1.0f, 0);
    if (a->key_mult != 1.0f) axpby(ops, k, kv_dim, k, kv_dim, n, kv_dim, a->key_mult, 0.0f);
    if (a->qk_norm) {
        rmsnorm(ops, q, w->maybe_q_norm, q, NULL, n * a->n_heads, hd, hd, m->desc.norm_eps, m->desc.norm_kind);
        rmsnorm(ops, k, w->maybe_k_norm, k, NULL, n * a->n_kv_heads, hd, hd, m->desc.norm_eps, m->desc.norm_kind);
    }
    if (a->rope_dims > 0) {
        stree_rope_params rq = {.x = q, .n = n, .n_heads = a->n_heads, .head_dim = hd, .rope_dims = a->rope_dims,
                                .ldx = q_dim, .n_past = st->ws.n_past, .depth = tv->depth, .theta = a->rope_theta};
        ops->rope(&rq);
        stree_rope_params rk = rq;
        rk.x = k;
        rk.n_heads = a->n_kv_heads;
        rk.ldx = kv_dim;
        ops->rope(&rk);
    }
    stree_attn_tree_params ap = {.q = q, .k_cache = st->k_cache[li], .v_cache = st->v_cache[li], .k_tree = k,
                                 .v_tree = v, .out = o, .tree = *tv, .n_past = st->ws.n_past,
                                 .n_heads = a->n_heads, .n_kv_heads = a->n_kv_heads, .head_dim = hd,
                                 .scale = a->scale, .scratch = ws->scores};
    ops->attn_tree(&ap);
    linear(ops, o, NULL, q_dim, w->o, w->maybe_o_bias, h, D, n, q_dim, D, l->attn_out_mult * scale, 1);
}

/* h [n, D] += (dense MLP and/or routed experts of u) * scale. */
static void mlp_block(stree_state *st, int32_t layer, int32_t n, const float *u, const void *u_wt, float *h,
                      float scale) {
    const stree_model *m = st->model;
    const stree_ops *ops = m->ops;
    const stree_mlp_desc *md = &m->desc.layers[layer].mlp;
    const stree_mlp_weights *w = &m->dw.layers[layer].mlp;
    int32_t D = m->desc.d_model;
    stree_workspace *ws = &st->ws;
    /* dense only: the down projection adds straight into h; with experts, both sum into acc first */
    float *out = md->has_moe ? ws->acc : h;
    if (md->has_dense) {
        float *gate = ws->big, *up = ws->big2, *act = ws->big3;
        float down_alpha = md->down_mult * (md->has_moe ? 1.0f : scale);
        if (md->dense_act == STREE_ACT_SILU) linear(ops, u, u_wt, D, w->gate, NULL, gate, md->d_ff, n, D, md->d_ff, 1.0f, 0);
        linear(ops, u, u_wt, D, w->up, NULL, up, md->d_ff, n, D, md->d_ff, 1.0f, 0);
        if (md->dense_act == STREE_ACT_RELU2) { /* relu(up)^2 is applied as the down projection reads it */
            stree_matmul_params dp = {.x = up, .w = w->down, .wtype = ops->wtype, .y = out, .n = n, .k = md->d_ff,
                                      .m = D, .ldx = md->d_ff, .ldy = D, .alpha = down_alpha,
                                      .accumulate = !md->has_moe, .x_relu2 = 1};
            ops->matmul(&dp);
        } else {
            stree_ffn_act_params fp = {.gate = gate, .up = up, .out = act, .n = n, .d = md->d_ff, .ld = md->d_ff,
                                       .act = md->dense_act, .gate_mult = md->gate_mult};
            ops->ffn_act(&fp);
            linear(ops, act, NULL, md->d_ff, w->down, NULL, out, D, n, md->d_ff, D, down_alpha, !md->has_moe);
        }
    } else {
        ops->zero(out, (size_t)n * (size_t)D * sizeof(float));
    }
    if (md->has_moe) {
        float *logits = ws->big;
        linear(ops, u, u_wt, D, w->router, NULL, logits, md->n_experts, n, D, md->n_experts, 1.0f, 0);
        stree_route_params rp = {.logits = logits, .maybe_bias = w->maybe_router_bias, .experts = ws->route_e,
                                 .weights = ws->route_w, .n = n, .n_experts = md->n_experts, .top_k = md->top_k,
                                 .norm_topk = md->norm_topk, .kind = md->router, .scale = md->routed_scale};
        ops->route(&rp);
        int32_t E = md->n_experts;
        stree_moe_params mp = {.x = u, .experts = ws->route_e, .weights = ws->route_w, .gate = w->expert_table,
                               .up = w->expert_table + E, .down = w->expert_table + 2 * E, .wtype = ops->wtype,
                               .out = out, .scratch = ws->moe_scratch, .n = n, .d_model = D,
                               .d_expert = md->d_expert, .top_k = md->top_k, .act = md->expert_act};
        ops->moe(&mp);
        axpby(ops, ws->acc, D, h, D, n, D, scale, 1.0f);
    }
}

/* Every op of one forward over the tree view (device arrays already uploaded). */
static void run_layers(stree_state *st, const stree_tree_view *tv, int want_logits, const uint8_t *maybe_rows) {
    const stree_model *m = st->model;
    const stree_model_desc *d = &m->desc;
    const stree_ops *ops = m->ops;
    stree_workspace *ws = &st->ws;
    int32_t n = tv->n, D = d->d_model;
    stree_embed_params ep = {.tokens = ws->tokens, .table = m->dw.embed, .out = ws->h, .n = n, .d = D,
                             .mult = d->embedding_mult};
    ops->embed(&ep);
    for (int32_t li = 0; li < d->n_layers; li++) {
        const stree_layer_desc *l = &d->layers[li];
        const stree_layer_weights *lw = &m->dw.layers[li];
        if (l->has_mamba2 || l->has_attention) {
            rmsnorm(ops, ws->h, lw->norm1, ws->xn, ws->xn_wt, n, D, D, d->norm_eps, d->norm_kind);
            /* the mixers add into the residual stream (xn is their common input) */
            if (l->has_mamba2) mamba2_block(st, li, tv, ws->xn, ws->xn_wt, ws->h, d->residual_mult);
            if (l->has_attention) attention_block(st, li, tv, ws->xn, ws->xn_wt, ws->h, d->residual_mult);
        }
        if (l->has_mlp) {
            rmsnorm(ops, ws->h, lw->norm2, ws->xn, ws->xn_wt, n, D, D, d->norm_eps, d->norm_kind);
            mlp_block(st, li, n, ws->xn, ws->xn_wt, ws->h, d->residual_mult);
        }
    }
    if (!want_logits) return;
    /* contiguous runs of requested rows, each one batched norm + lm_head */
    for (int32_t i = 0; i < n;) {
        if (maybe_rows && !maybe_rows[i]) {
            i++;
            continue;
        }
        int32_t j = i + 1;
        while (j < n && (!maybe_rows || maybe_rows[j])) j++;
        rmsnorm(ops, ws->h + (int64_t)i * D, m->dw.final_norm, ws->tmp, ws->xn_wt, j - i, D, D, d->norm_eps,
                d->norm_kind);
        linear(ops, ws->tmp, ws->xn_wt, D, m->dw.lm_head, NULL, ws->logits + (int64_t)i * d->vocab_size, d->vocab_size, j - i,
               D, d->vocab_size, d->logits_mult, 0);
        i = j;
    }
}

/* The smallest power of two >= n (a graph per bucket; the extra nodes are ignored leaves). */
static int32_t bucket_of(int32_t n, int32_t *slot) {
    int32_t b = 1, k = 0;
    while (b < n) b <<= 1, k++;
    *slot = k;
    return b;
}

stree_status stree_forward_tree(stree_state *st, const stree_fwd_tree *tree, int want_logits,
                                const uint8_t *maybe_rows) {
    const stree_model *m = st->model;
    const stree_model_desc *d = &m->desc;
    const stree_ops *ops = m->ops;
    stree_workspace *ws = &st->ws;
    int32_t n = tree->n;
    if (n <= 0 || n > st->max_nodes)
        return stree_fail(STREE_ERR_INVALID_ARG, "a forward takes 1..%d nodes, got %d", st->max_nodes, n);
    int32_t max_depth = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t p = tree->parent[i];
        if ((i == 0) != (p < 0) || p >= i)
            return stree_fail(STREE_ERR_INVALID_ARG, "tree node %d has parent %d (need parent[0] = -1, parent[i] < i)",
                              i, p);
        if (tree->tokens[i] < 0 || tree->tokens[i] >= d->vocab_size)
            return stree_fail(STREE_ERR_INVALID_ARG, "token id %d at node %d is outside the vocabulary [0, %d)",
                              tree->tokens[i], i, d->vocab_size);
        ws->h_tokens[i] = tree->tokens[i];
        ws->h_parent[i] = p;
        ws->h_depth[i] = p < 0 ? 0 : ws->h_depth[p] + 1;
        if (ws->h_depth[i] > max_depth) max_depth = ws->h_depth[i];
    }
    if (st->n_committed + max_depth + 1 > st->n_ctx)
        return stree_fail(STREE_ERR_CONTEXT_FULL, "context of %d tokens is full (%d committed, tree depth %d)",
                          st->n_ctx, st->n_committed, max_depth + 1);
    /* graphs: all rows' logits (or none), tree padded to a power-of-two bucket with leaves under the root */
    int32_t slot = 0, nb = n;
    int use_graph = ops->graph_begin && !maybe_rows && st->use_graphs;
    if (use_graph) {
        nb = bucket_of(n, &slot);
        if (nb > st->max_nodes) nb = n, use_graph = 0;
        for (int32_t i = n; i < nb; i++) {
            ws->h_tokens[i] = ws->h_tokens[0];
            ws->h_parent[i] = 0;
            ws->h_depth[i] = 1;
        }
    }
    size_t ints = (size_t)nb * sizeof(int32_t);
    ws->h_io[0] = st->n_committed;
    memcpy(ws->h_io + 1, ws->h_tokens, ints);
    memcpy(ws->h_io + 1 + nb, ws->h_parent, ints);
    memcpy(ws->h_io + 1 + 2 * nb, ws->h_depth, ints);
    ops->upload(ws->io, ws->h_io, sizeof(int32_t) + 3 * ints);
    ws->tokens = ws->io + 1;
    ws->parent = ws->io + 1 + nb;
    ws->depth = ws->io + 1 + 2 * nb;
    stree_tree_view tv = {.n = nb, .parent = ws->parent, .depth = ws->depth};
    void **graph = use_graph ? &st->fwd_graphs[want_logits ? 1 : 0][slot] : NULL;
    if (graph && *graph) {
        ops->graph_launch(*graph);
    } else {
        run_layers(st, &tv, want_logits, maybe_rows);
        if (graph && backend_status(ops) == STREE_OK) { /* capture for the next forward of this bucket */
            ops->graph_begin();
            run_layers(st, &tv, want_logits, maybe_rows);
            *graph = ops->graph_end();
            if (!*graph) st->use_graphs = 0; /* capture unsupported here: stay eager */
        }
    }
    st->vc.n_nodes = nb;
    return backend_status(ops);
}

stree_status stree_forward_tree_host(stree_state *st, const stree_fwd_tree *tree, float *out,
                                     const uint8_t *maybe_rows) {
    STREE_TRY(stree_forward_tree(st, tree, out != NULL, maybe_rows));
    if (!out) return STREE_OK;
    const stree_ops *ops = st->model->ops;
    size_t V = (size_t)st->model->desc.vocab_size;
    for (int32_t i = 0; i < tree->n; i++)
        if (!maybe_rows || maybe_rows[i])
            ops->download(out + (size_t)i * V, st->ws.logits + (size_t)i * V, V * sizeof(float));
    return STREE_OK;
}

void stree_state_topk(stree_state *st, int32_t n, int32_t k, int32_t *idx, float *logp) {
    const stree_ops *ops = st->model->ops;
    stree_topk_params p = {.x = st->ws.logits, .idx = st->ws.topk_idx, .logp = logp ? st->ws.topk_logp : NULL,
                           .n = n, .vocab = st->model->desc.vocab_size, .k = k};
    ops->topk(&p);
    ops->download(idx, st->ws.topk_idx, (size_t)n * (size_t)k * sizeof(int32_t));
    if (logp) ops->download(logp, st->ws.topk_logp, (size_t)n * (size_t)k * sizeof(float));
}

static void commit_layers(stree_state *st, const int32_t *path, int32_t len);

stree_status stree_commit_path(stree_state *st, const int32_t *path, int32_t len, int32_t last_token) {
    const stree_model *m = st->model;
    const stree_ops *ops = m->ops;
    if (st->vc.n_nodes <= 0) return stree_fail(STREE_ERR_INVALID_ARG, "commit without a forward to commit");
    if (len <= 0 || len > st->vc.n_nodes || path[0] != 0)
        return stree_fail(STREE_ERR_INVALID_ARG, "commit path of length %d must start at the root", len);
    for (int32_t k = 1; k < len; k++)
        if (path[k] <= 0 || path[k] >= st->vc.n_nodes || st->ws.h_parent[path[k]] != path[k - 1])
            return stree_fail(STREE_ERR_INVALID_ARG, "commit path entry %d (node %d) is not a child of node %d", k,
                              path[k], path[k - 1]);
    if (st->n_committed + len > st->n_ctx)
        return stree_fail(STREE_ERR_CONTEXT_FULL, "context of %d tokens is full", st->n_ctx);
    /* n_past on the device is still this forward's (n_committed has not moved since) */
    st->h_commit_io[0] = len;
    memcpy(st->h_commit_io + 1, path, (size_t)len * sizeof(int32_t));
    ops->upload(st->ws.commit_io, st->h_commit_io, (size_t)(1 + len) * sizeof(int32_t));
    void **graph = ops->graph_begin && st->use_graphs ? &st->commit_graphs[len] : NULL;
    if (ops->commit_all) graph = graph ? &st->commit_all_graph : NULL; /* one graph for every length */
    if (graph && *graph) {
        ops->graph_launch(*graph);
    } else {
        if (graph) ops->graph_begin();
        commit_layers(st, st->ws.path, len);
        if (graph) {
            *graph = ops->graph_end();
            if (*graph) ops->graph_launch(*graph);
            else { /* capture failed: run the ops directly, and stay eager */
                st->use_graphs = 0;
                commit_layers(st, st->ws.path, len);
            }
        }
    }
    st->n_committed += len;
    st->last_token = last_token;
    st->vc.n_nodes = 0;
    return backend_status(ops);
}

/* The commit's ops for every layer: KV rows moved, SSM state updated, conv window advanced. */
static void commit_layers(stree_state *st, const int32_t *path, int32_t len) {
    const stree_model_desc *d = &st->model->desc;
    const stree_ops *ops = st->model->ops;
    if (ops->commit_all) {
        ops->commit_all(&st->commit_all);
        return;
    }
    for (int32_t li = 0; li < d->n_layers; li++) {
        const stree_layer_desc *l = &d->layers[li];
        if (l->has_attention) {
            stree_kv_commit_params kp = {.k_cache = st->k_cache[l->attn_index], .v_cache = st->v_cache[l->attn_index],
                                         .k_tree = st->vc.k_tree[l->attn_index],
                                         .v_tree = st->vc.v_tree[l->attn_index], .path = path, .len = len,
                                         .n_past = st->ws.n_past, .row = l->attn.n_kv_heads * l->attn.head_dim};
            ops->kv_commit(&kp);
        }
        if (l->has_mamba2) {
            const stree_mamba2_desc *md = &l->mamba2;
            int32_t mi = l->mamba_index;
            stree_mamba2_commit_params sp = {.state = st->ssm_state[mi], .xbc = st->vc.xbc[mi], .dt = st->vc.dt[mi],
                                             .c = st->vc.c[mi], .path = path, .len = len, .n_heads = md->n_heads,
                                             .head_dim = md->head_dim, .n_groups = md->n_groups,
                                             .d_state = md->d_state};
            ops->mamba2_commit(&sp);
            stree_conv_commit_params cp = {.window = st->conv_state[mi], .x = st->vc.xbc_pre[mi], .path = path,
                                           .len = len, .channels = md->conv_dim, .k = md->d_conv};
            ops->conv_commit(&cp);
        }
    }
}
