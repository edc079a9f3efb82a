/* CPU reference: tree causal conv, Mamba-2 dt, the tree scan with path-cumulative log-decays
 * (DESIGN.md §3.2–3.3). No per-node state is ever formed; the commits are in commit.c. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

static float silu(float x) { return x / (1.0f + expf(-x)); }

void stree_cpu_conv_tree(const stree_conv_tree_params *p) {
    int32_t k = p->k;
    int32_t rows[STREE_CPU_MAX_CONV]; /* tree node per window slot, or -1 - committed index */
    for (int32_t i = 0; i < p->tree.n; i++) {
        /* slot k-1 is node i, k-2 its parent, ...; slots before the root read the committed
         * window's newest entries: slot s of a node at depth d reads window[s + d]. */
        int32_t node = i, d = p->tree.depth[i];
        for (int32_t s = k - 1; s >= 0; s--) {
            if (node >= 0) {
                rows[s] = node;
                node = p->tree.parent[node];
            } else {
                rows[s] = -1 - (s + d);
            }
        }
        float *out = p->out + (int64_t)i * p->channels;
        for (int32_t ch = 0; ch < p->channels; ch++) {
            float acc = p->maybe_bias ? p->maybe_bias[ch] : 0.0f;
            for (int32_t s = 0; s < k; s++) {
                float v = rows[s] >= 0 ? p->x[rows[s] * p->ldx + ch]
                                       : p->window[(int64_t)(-1 - rows[s]) * p->channels + ch];
                acc += p->w[(int64_t)ch * k + s] * v;
            }
            out[ch] = silu(acc);
        }
        if (p->maybe_x_copy)
            memcpy(p->maybe_x_copy + (int64_t)i * p->channels, p->x + i * p->ldx, (size_t)p->channels * sizeof(float));
    }
}

/* dt = clamp(softplus(dt_raw + bias), dt_min, dt_max) for every node and head */
static void time_steps(const stree_mamba2_scan_params *p) {
    for (int32_t i = 0; i < p->tree.n; i++) {
        for (int32_t h = 0; h < p->n_heads; h++) {
            float v = p->dt_raw[i * p->ld_dt + h] + p->dt_bias[h];
            v = v > 20.0f ? v : log1pf(expf(v)); /* torch softplus, threshold 20 */
            if (v < p->dt_min) v = p->dt_min;
            if (v > p->dt_max) v = p->dt_max;
            p->dt[(int64_t)i * p->n_heads + h] = v;
        }
    }
}

void stree_cpu_mamba2_scan_tree(const stree_mamba2_scan_params *p) {
    int32_t H = p->n_heads, P = p->head_dim, N = p->d_state, G = p->n_groups;
    int32_t d_inner = H * P, conv_dim = d_inner + 2 * G * N, heads_per_group = H / G;
    const stree_tree_view *t = &p->tree;
    time_steps(p);
    for (int32_t i = 0; i < t->n; i++) {
        for (int32_t h = 0; h < H; h++) {
            float A = -expf(p->A_log[h]);
            float parent_c = t->parent[i] >= 0 ? p->c[(int64_t)t->parent[i] * H + h] : 0.0f;
            p->c[(int64_t)i * H + h] = parent_c + p->dt[(int64_t)i * H + h] * A;
        }
    }
    for (int32_t i = 0; i < t->n; i++) {
        const float *row_i = p->xbc + (int64_t)i * conv_dim;
        for (int32_t h = 0; h < H; h++) {
            int32_t g = h / heads_per_group;
            const float *C_i = row_i + d_inner + G * N + g * N;
            const float *x_i = row_i + h * P;
            float c_i = p->c[(int64_t)i * H + h];
            float *y = p->y + (int64_t)i * d_inner + h * P;
            /* committed part: e^{c_i} H0 C_i */
            const float *H0 = p->state + (int64_t)h * P * N;
            float decay0 = expf(c_i);
            for (int32_t pp = 0; pp < P; pp++) {
                float acc = 0.0f;
                for (int32_t n = 0; n < N; n++) acc += H0[pp * N + n] * C_i[n];
                y[pp] = decay0 * acc + p->D[h] * x_i[pp];
            }
            /* tree part: sum over path(i) of e^{c_i - c_j} dt_j (C_i . B_j) x_j (exponent <= 0) */
            for (int32_t j = i; j >= 0; j = t->parent[j]) {
                const float *row_j = p->xbc + (int64_t)j * conv_dim;
                const float *B_j = row_j + d_inner + g * N;
                float cb = 0.0f;
                for (int32_t n = 0; n < N; n++) cb += C_i[n] * B_j[n];
                float coef = expf(c_i - p->c[(int64_t)j * H + h]) * p->dt[(int64_t)j * H + h] * cb;
                const float *x_j = row_j + h * P;
                for (int32_t pp = 0; pp < P; pp++) y[pp] += coef * x_j[pp];
            }
        }
    }
}
