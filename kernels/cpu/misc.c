/* CPU reference: embedding gather, strided axpby, per-row top-k, routed experts. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

void stree_cpu_embed(const stree_embed_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        const float *row = p->table + (int64_t)p->tokens[i] * p->d;
        float *out = p->out + (int64_t)i * p->d;
        for (int32_t j = 0; j < p->d; j++) out[j] = row[j] * p->mult;
    }
}

void stree_cpu_axpby(const stree_axpby_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        const float *x = p->x + i * p->ldx;
        float *y = p->y + i * p->ldy;
        if (p->beta == 0.0f)
            for (int32_t j = 0; j < p->cols; j++) y[j] = p->alpha * x[j];
        else
            for (int32_t j = 0; j < p->cols; j++) y[j] = p->alpha * x[j] + p->beta * y[j];
    }
}

void stree_cpu_topk(const stree_topk_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        const float *x = p->x + (int64_t)i * p->vocab;
        int32_t *idx = p->idx + (int64_t)i * p->k;
        for (int32_t j = 0; j < p->k; j++) idx[j] = -1;
        for (int32_t v = 0; v < p->vocab; v++) { /* insertion into the sorted top k; ties keep the lower index */
            int32_t pos = p->k;
            while (pos > 0 && (idx[pos - 1] < 0 || x[v] > x[idx[pos - 1]])) pos--;
            if (pos >= p->k) continue;
            memmove(idx + pos + 1, idx + pos, (size_t)(p->k - pos - 1) * sizeof *idx);
            idx[pos] = v;
        }
        if (!p->logp) continue;
        float mx = x[idx[0]];
        double s = 0.0;
        for (int32_t v = 0; v < p->vocab; v++) s += exp((double)(x[v] - mx));
        float lse = mx + (float)log(s);
        for (int32_t j = 0; j < p->k; j++) p->logp[(int64_t)i * p->k + j] = x[idx[j]] - lse;
    }
}

void stree_cpu_moe(const stree_moe_params *p) {
    int32_t D = p->d_model, F = p->d_expert;
    float *gate = p->scratch, *up = p->scratch + F, *act = p->scratch + 2 * F;
    for (int32_t i = 0; i < p->n; i++) {
        const float *x = p->x + (int64_t)i * D;
        for (int32_t k = 0; k < p->top_k; k++) {
            int32_t e = p->experts[i * p->top_k + k];
            float wt = p->weights[i * p->top_k + k];
            stree_matmul_params mp = {.x = x, .wtype = p->wtype, .n = 1, .k = D, .m = F, .ldx = D, .ldy = F,
                                      .alpha = 1.0f};
            if (p->act == STREE_ACT_SILU) {
                mp.w = p->gate[e];
                mp.y = gate;
                stree_cpu_matmul(&mp);
            }
            mp.w = p->up[e];
            mp.y = up;
            stree_cpu_matmul(&mp);
            stree_ffn_act_params fp = {.gate = gate, .up = up, .out = act, .n = 1, .d = F, .ld = F, .act = p->act,
                                       .gate_mult = 1.0f};
            stree_cpu_ffn_act(&fp);
            stree_matmul_params dp = {.x = act, .w = p->down[e], .wtype = p->wtype, .y = p->out + (int64_t)i * D,
                                      .n = 1, .k = F, .m = D, .ldx = F, .ldy = D, .alpha = wt, .accumulate = 1};
            stree_cpu_matmul(&dp);
        }
    }
}
