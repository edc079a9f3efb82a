/* CPU reference: the closed-form commits of an accepted path (DESIGN.md §3.3) — SSM state, conv
 * window, KV rows — per layer, and every layer's at once (commit_all). */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

void stree_cpu_mamba2_commit(const stree_mamba2_commit_params *p) {
    int32_t H = p->n_heads, P = p->head_dim, N = p->d_state, G = p->n_groups;
    int32_t d_inner = H * P, conv_dim = d_inner + 2 * G * N, heads_per_group = H / G;
    int32_t last = p->path[p->len - 1];
    for (int32_t h = 0; h < H; h++) {
        int32_t g = h / heads_per_group;
        float *S = p->state + (int64_t)h * P * N;
        float c_last = p->c[(int64_t)last * H + h];
        float decay0 = expf(c_last);
        for (int64_t e = 0; e < (int64_t)P * N; e++) S[e] *= decay0;
        /* rank-len update: S += sum_j e^{c_last - c_j} dt_j x_j B_j^T */
        for (int32_t k = 0; k < p->len; k++) {
            int32_t j = p->path[k];
            const float *row_j = p->xbc + (int64_t)j * conv_dim;
            const float *x_j = row_j + h * P, *B_j = row_j + d_inner + g * N;
            float coef = expf(c_last - p->c[(int64_t)j * H + h]) * p->dt[(int64_t)j * H + h];
            for (int32_t pp = 0; pp < P; pp++) {
                float s = coef * x_j[pp];
                for (int32_t n = 0; n < N; n++) S[pp * N + n] += s * B_j[n];
            }
        }
    }
}

void stree_cpu_conv_commit(const stree_conv_commit_params *p) {
    int32_t keep = p->k - 1;
    size_t row = (size_t)p->channels * sizeof(float);
    if (p->len >= keep) {
        for (int32_t s = 0; s < keep; s++)
            memcpy(p->window + (int64_t)s * p->channels, p->x + (int64_t)p->path[p->len - keep + s] * p->channels, row);
        return;
    }
    memmove(p->window, p->window + (int64_t)p->len * p->channels, (size_t)(keep - p->len) * row);
    for (int32_t s = 0; s < p->len; s++)
        memcpy(p->window + (int64_t)(keep - p->len + s) * p->channels, p->x + (int64_t)p->path[s] * p->channels, row);
}

void stree_cpu_kv_commit(const stree_kv_commit_params *p) {
    for (int32_t k = 0; k < p->len; k++) {
        int64_t dst = (int64_t)((*p->n_past) + k) * p->row, src = (int64_t)p->path[k] * p->row;
        memmove(p->k_cache + dst, p->k_tree + src, (size_t)p->row * sizeof(float));
        memmove(p->v_cache + dst, p->v_tree + src, (size_t)p->row * sizeof(float));
    }
}

/* Every layer's commit: the per-layer ops with the shared path, length and n_past. */
void stree_cpu_commit_all(const stree_commit_all_params *p) {
    for (int32_t l = 0; l < p->n_mamba; l++) {
        stree_mamba2_commit_params m = p->mamba[l];
        m.path = p->path, m.len = *p->len;
        stree_cpu_mamba2_commit(&m);
        stree_conv_commit_params c = p->conv[l];
        c.path = p->path, c.len = *p->len;
        stree_cpu_conv_commit(&c);
    }
    for (int32_t l = 0; l < p->n_attn; l++) {
        stree_kv_commit_params k = p->kv[l];
        k.path = p->path, k.len = *p->len, k.n_past = p->n_past;
        stree_cpu_kv_commit(&k);
    }
}
