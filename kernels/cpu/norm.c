/* CPU reference: RMSNorm and the Mamba-2 gated norms. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

static float silu(float x) { return x / (1.0f + expf(-x)); }

void stree_cpu_rmsnorm(const stree_rmsnorm_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        const float *x = p->x + i * p->ldx;
        float *y = p->y + i * p->ldy;
        double ss = 0.0;
        for (int32_t j = 0; j < p->dim; j++) ss += (double)x[j] * x[j];
        float inv = 1.0f / sqrtf((float)(ss / p->dim) + p->eps);
        for (int32_t j = 0; j < p->dim; j++) {
            float w = p->maybe_w ? p->maybe_w[j] : 1.0f;
            if (p->kind == STREE_NORM_RMS_OFFSET) w += 1.0f;
            y[j] = w * (x[j] * inv);
        }
        if (p->maybe_y_wt) memcpy((float *)p->maybe_y_wt + (int64_t)i * p->dim, y, (size_t)p->dim * sizeof(float));
    }
}

void stree_cpu_gated_norm(const stree_gated_norm_params *p) {
    int32_t gs = p->dim / p->groups;
    for (int32_t i = 0; i < p->n; i++) {
        const float *y = p->y + (int64_t)i * p->dim;
        const float *z = p->z + i * p->ldz;
        float *out = p->out + (int64_t)i * p->dim;
        if (!p->maybe_w) {
            for (int32_t j = 0; j < p->dim; j++) out[j] = y[j] * silu(z[j]);
            continue;
        }
        for (int32_t j = 0; j < p->dim; j++) out[j] = p->norm_before_gate ? y[j] : y[j] * silu(z[j]);
        for (int32_t g = 0; g < p->groups; g++) {
            float *h = out + (int64_t)g * gs;
            double ss = 0.0;
            for (int32_t j = 0; j < gs; j++) ss += (double)h[j] * h[j];
            float inv = 1.0f / sqrtf((float)(ss / gs) + p->eps);
            for (int32_t j = 0; j < gs; j++) h[j] = p->maybe_w[g * gs + j] * (h[j] * inv);
        }
        if (p->norm_before_gate)
            for (int32_t j = 0; j < p->dim; j++) out[j] *= silu(z[j]);
    }
    if (p->maybe_out_wt) memcpy(p->maybe_out_wt, p->out, (size_t)p->n * (size_t)p->dim * sizeof(float));
}
