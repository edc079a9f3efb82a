/* CPU reference: dense layers (y = x w^T) and FFN activations. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

static float relu2(float v) { return v > 0.0f ? v * v : 0.0f; }

/* Partial sums per dot product: MM_LANES independent ones, held as one SIMD vector. */
#define MM_LANES 8
typedef float mm_vec __attribute__((vector_size(MM_LANES * sizeof(float))));

static inline mm_vec mm_load(const float *p, int32_t relu) {
    mm_vec v;
    memcpy(&v, p, sizeof v);
    if (relu)
        for (int l = 0; l < MM_LANES; l++) v[l] = relu2(v[l]);
    return v;
}

/* out[r][o] = x_r . w_o (relu(x)^2 when `relu`) for RB rows and OB weight rows. Every dot product
 * runs in the same lane order and is reduced in the same fixed order whatever RB and OB are, so a
 * row's result does not depend on the batch it came in (a verify matches a decode step bitwise). */
static inline __attribute__((always_inline)) void dot_block(const int RB, const int OB, const float *x, int64_t ldx,
                                                            const float *w, int32_t k, int32_t relu,
                                                            float out[4][4]) {
    mm_vec acc[4][4] = {{{0}}};
    int32_t j = 0;
    for (; j + MM_LANES <= k; j += MM_LANES) {
        mm_vec xv[4];
        for (int r = 0; r < RB; r++) xv[r] = mm_load(x + r * ldx + j, relu);
        for (int o = 0; o < OB; o++) {
            mm_vec wv = mm_load(w + (int64_t)o * k + j, 0);
            for (int r = 0; r < RB; r++) acc[r][o] += xv[r] * wv;
        }
    }
    for (int r = 0; r < RB; r++)
        for (int o = 0; o < OB; o++) {
            mm_vec a = acc[r][o];
            float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
            for (int32_t t = j; t < k; t++) s += (relu ? relu2(x[r * ldx + t]) : x[r * ldx + t]) * w[(int64_t)o * k + t];
            out[r][o] = s;
        }
}

static void store_block(const stree_matmul_params *p, int RB, int OB, int32_t i, int32_t o, float out[4][4]) {
    for (int r = 0; r < RB; r++)
        for (int q = 0; q < OB; q++) {
            float v = p->alpha * (out[r][q] + (p->maybe_bias ? p->maybe_bias[o + q] : 0.0f));
            float *y = p->y + (i + r) * p->ldy + o + q;
            *y = p->accumulate ? *y + v : v;
        }
}

void stree_cpu_matmul(const stree_matmul_params *p) {
    /* fp32 weights only (the CPU backend's wtype). Blocks of 4 weight rows x 4 input rows: each
     * weight row is read once per 4 inputs, from cache. */
    const float *W = p->w;
    int32_t o = 0, relu = p->x_relu2;
    /* the copy in the weight type (here fp32) holds the same values; reading it checks its plumbing */
    const float *X = p->maybe_x_wt ? (const float *)p->maybe_x_wt : p->x;
    int64_t ldx = p->maybe_x_wt ? p->k : p->ldx;
    float out[4][4];
    for (; o + 4 <= p->m; o += 4) {
        const float *w = W + (int64_t)o * p->k;
        int32_t i = 0;
        for (; i + 4 <= p->n; i += 4) {
            dot_block(4, 4, X + i * ldx, ldx, w, p->k, relu, out);
            store_block(p, 4, 4, i, o, out);
        }
        for (; i < p->n; i++) {
            dot_block(1, 4, X + i * ldx, ldx, w, p->k, relu, out);
            store_block(p, 1, 4, i, o, out);
        }
    }
    for (; o < p->m; o++)
        for (int32_t i = 0; i < p->n; i++) {
            dot_block(1, 1, X + i * ldx, ldx, W + (int64_t)o * p->k, p->k, relu, out);
            store_block(p, 1, 1, i, o, out);
        }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

void stree_cpu_ffn_act(const stree_ffn_act_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        const float *up = p->up + i * p->ld;
        float *out = p->out + (int64_t)i * p->d;
        if (p->act == STREE_ACT_SILU) {
            const float *gate = p->gate + i * p->ld;
            for (int32_t j = 0; j < p->d; j++) out[j] = silu(gate[j] * p->gate_mult) * up[j];
        } else {
            for (int32_t j = 0; j < p->d; j++) {
                float r = up[j] > 0.0f ? up[j] : 0.0f;
                out[j] = r * r;
            }
        }
    }
}

void stree_cpu_route(const stree_route_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        const float *lg = p->logits + (int64_t)i * p->n_experts;
        int32_t *ex = p->experts + (int64_t)i * p->top_k;
        float *wt = p->weights + (int64_t)i * p->top_k;
        /* selection score per expert; ties keep the lower index (torch.topk order on CPU) */
        for (int32_t k = 0; k < p->top_k; k++) {
            int32_t best = -1;
            float best_score = -INFINITY;
            for (int32_t e = 0; e < p->n_experts; e++) {
                int taken = 0;
                for (int32_t t = 0; t < k; t++) taken |= ex[t] == e;
                if (taken) continue;
                float s = lg[e];
                if (p->kind == STREE_ROUTER_SIGMOID_BIAS) s = 1.0f / (1.0f + expf(-s)) + (p->maybe_bias ? p->maybe_bias[e] : 0.0f);
                if (best < 0 || s > best_score) {
                    best = e;
                    best_score = s;
                }
            }
            ex[k] = best;
        }
        float sum = 0.0f;
        if (p->kind == STREE_ROUTER_TOPK_SOFTMAX) {
            float mx = lg[ex[0]];
            for (int32_t k = 0; k < p->top_k; k++) {
                wt[k] = expf(lg[ex[k]] - mx);
                sum += wt[k];
            }
            for (int32_t k = 0; k < p->top_k; k++) wt[k] /= sum;
        } else if (p->kind == STREE_ROUTER_SOFTMAX_TOPK) {
            float mx = -INFINITY, all = 0.0f;
            for (int32_t e = 0; e < p->n_experts; e++) mx = lg[e] > mx ? lg[e] : mx;
            for (int32_t e = 0; e < p->n_experts; e++) all += expf(lg[e] - mx);
            for (int32_t k = 0; k < p->top_k; k++) {
                wt[k] = expf(lg[ex[k]] - mx) / all;
                sum += wt[k];
            }
            if (p->norm_topk)
                for (int32_t k = 0; k < p->top_k; k++) wt[k] /= sum;
        } else {
            for (int32_t k = 0; k < p->top_k; k++) {
                wt[k] = 1.0f / (1.0f + expf(-lg[ex[k]]));
                sum += wt[k];
            }
            if (p->norm_topk)
                for (int32_t k = 0; k < p->top_k; k++) wt[k] /= sum + 1e-20f;
        }
        for (int32_t k = 0; k < p->top_k; k++) wt[k] *= p->scale;
    }
}
