/* CPU reference: dense layers (y = x w^T) and FFN activations. */
#include <math.h>

#include "kernels/cpu/cpu.h"

static float relu2(float v) { return v > 0.0f ? v * v : 0.0f; }

/* x[j], or relu(x[j])^2 for the relu2 MLP's down projection */
static inline float x_at(const float *x, int32_t j, int32_t relu) { return relu ? relu2(x[j]) : x[j]; }

void stree_cpu_matmul(const stree_matmul_params *p) {
    /* fp32 weights only (the CPU backend's wtype). Output-row outer loop: each weight row is read
     * once and reused for all n inputs. */
    int32_t r = p->x_relu2;
    for (int32_t o = 0; o < p->m; o++) {
        const float *w = (const float *)p->w + (int64_t)o * p->k;
        float bias = p->maybe_bias ? p->maybe_bias[o] : 0.0f;
        for (int32_t i = 0; i < p->n; i++) {
            const float *x = p->x + i * p->ldx;
            float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
            int32_t j = 0;
            for (; j + 4 <= p->k; j += 4) {
                acc0 += x_at(x, j, r) * w[j];
                acc1 += x_at(x, j + 1, r) * w[j + 1];
                acc2 += x_at(x, j + 2, r) * w[j + 2];
                acc3 += x_at(x, j + 3, r) * w[j + 3];
            }
            for (; j < p->k; j++) acc0 += x_at(x, j, r) * w[j];
            float v = p->alpha * ((acc0 + acc1) + (acc2 + acc3) + bias);
            float *y = p->y + i * p->ldy + o;
            *y = p->accumulate ? *y + v : v;
        }
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
