/* CPU reference: RoPE and tree attention (committed prefix + ancestor-or-self tree keys). */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

void stree_cpu_rope(const stree_rope_params *p) {
    int32_t half = p->rope_dims / 2;
    for (int32_t i = 0; i < p->n; i++) {
        float pos = (float)((*p->n_past) + p->depth[i]);
        for (int32_t h = 0; h < p->n_heads; h++) {
            float *x = p->x + i * p->ldx + (int64_t)h * p->head_dim;
            for (int32_t d = 0; d < half; d++) {
                /* inv_freq = theta^(-2d/rd), computed as torch does: 1 / theta^(2d/rd) in fp32 */
                float inv_freq = 1.0f / powf(p->theta, (float)(2 * d) / (float)p->rope_dims);
                float angle = pos * inv_freq;
                float c = cosf(angle), s = sinf(angle);
                float a = x[d], b = x[d + half];
                x[d] = a * c - b * s;
                x[d + half] = b * c + a * s;
            }
        }
    }
}

void stree_cpu_attn_tree(const stree_attn_tree_params *p) {
    int32_t hd = p->head_dim, group = p->n_heads / p->n_kv_heads;
    int64_t q_row = (int64_t)p->n_heads * hd, kv_row = (int64_t)p->n_kv_heads * hd;
    float *score = p->scratch; /* [n_past + depth + 1] */
    int32_t path[STREE_CPU_MAX_TREE];
    for (int32_t i = 0; i < p->tree.n; i++) {
        int32_t n_path = 0;
        for (int32_t j = i; j >= 0; j = p->tree.parent[j]) path[n_path++] = j;
        for (int32_t h = 0; h < p->n_heads; h++) {
            const float *q = p->q + i * q_row + (int64_t)h * hd;
            int64_t kv_off = (int64_t)(h / group) * hd;
            float mx = -INFINITY;
            int32_t n_keys = (*p->n_past) + n_path;
            for (int32_t t = 0; t < n_keys; t++) {
                const float *k = t < (*p->n_past) ? p->k_cache + t * kv_row + kv_off
                                               : p->k_tree + path[n_keys - 1 - t] * kv_row + kv_off;
                float dot = 0.0f;
                for (int32_t d = 0; d < hd; d++) dot += q[d] * k[d];
                score[t] = dot * p->scale;
                mx = score[t] > mx ? score[t] : mx;
            }
            float sum = 0.0f;
            for (int32_t t = 0; t < n_keys; t++) {
                score[t] = expf(score[t] - mx);
                sum += score[t];
            }
            float *out = p->out + i * q_row + (int64_t)h * hd;
            memset(out, 0, (size_t)hd * sizeof *out);
            for (int32_t t = 0; t < n_keys; t++) {
                const float *v = t < (*p->n_past) ? p->v_cache + t * kv_row + kv_off
                                               : p->v_tree + path[n_keys - 1 - t] * kv_row + kv_off;
                float w = score[t] / sum;
                for (int32_t d = 0; d < hd; d++) out[d] += w * v[d];
            }
        }
    }
}
