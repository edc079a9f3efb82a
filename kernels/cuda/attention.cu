// CUDA backend: RoPE, tree attention (committed prefix + ancestor-or-self tree keys, one block per
// (node, head), warps split the keys with an online softmax), and the KV commit.
#include <math.h>

#include "kernels/cuda/common.cuh"

#define MAX_HEAD_DIM 256
#define MAX_PATH 4096
#define ATTN_WARPS 4

__global__ void rope_kernel(stree_rope_params p) {
    int i = blockIdx.x, h = blockIdx.y, half = p.rope_dims / 2;
    float pos = (float)(*p.n_past + p.depth[i]);
    float *x = p.x + i * p.ldx + (int64_t)h * p.head_dim;
    for (int d = threadIdx.x; d < half; d += blockDim.x) {
        float inv_freq = 1.0f / powf(p.theta, (float)(2 * d) / (float)p.rope_dims);
        float c, s;
        sincosf(pos * inv_freq, &s, &c);
        float a = x[d], b = x[d + half];
        x[d] = a * c - b * s;
        x[d + half] = b * c + a * s;
    }
}

extern "C" void stree_cuda_rope(const stree_rope_params *p) {
    dim3 grid(p->n, p->n_heads);
    rope_kernel<<<grid, 64, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// Split-K tree attention. Block (node i, head h, split z) takes the z-th slice of node i's keys
// (committed prefix, then its ancestor-or-self tree keys); its warps keep an online softmax (max m,
// sum l, o[hd]) and the block writes one partial; a second kernel merges the ATTN_SPLITS partials in
// a fixed order. The split count is fixed so that captured graphs replay for any context length.
#define ATTN_SPLITS 8
#define ATTN_PARTIAL (MAX_HEAD_DIM + 2)

static float *g_partials;
static size_t g_partials_cap;

__global__ void attn_partial_kernel(stree_attn_tree_params p, float *partials) {
    __shared__ int path[MAX_PATH];
    __shared__ int n_path;
    __shared__ float w_m[ATTN_WARPS], w_l[ATTN_WARPS];
    __shared__ float w_o[ATTN_WARPS][MAX_HEAD_DIM];
    int i = blockIdx.x, h = blockIdx.y, z = blockIdx.z, hd = p.head_dim, n_past = *p.n_past;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    if (threadIdx.x == 0) {
        int n = 0;
        for (int j = i; j >= 0; j = p.tree.parent[j]) path[n++] = j;
        n_path = n;
    }
    __syncthreads();
    int64_t q_row = (int64_t)p.n_heads * hd, kv_row = (int64_t)p.n_kv_heads * hd;
    int64_t kv_off = (int64_t)(h / (p.n_heads / p.n_kv_heads)) * hd;
    const float *q = p.q + i * q_row + (int64_t)h * hd;
    float qr[MAX_HEAD_DIM / 32], o[MAX_HEAD_DIM / 32];
    int per_lane = (hd + 31) / 32;
    for (int r = 0; r < per_lane; r++) {
        int d = lane + 32 * r;
        qr[r] = d < hd ? q[d] : 0.0f;
        o[r] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    int n_keys = n_past + n_path, chunk = (n_keys + ATTN_SPLITS - 1) / ATTN_SPLITS;
    int begin = z * chunk, end = min(n_keys, begin + chunk);
    for (int t = begin + warp; t < end; t += n_warps) {
        const float *k, *v;
        if (t < n_past) {
            k = p.k_cache + t * kv_row + kv_off;
            v = p.v_cache + t * kv_row + kv_off;
        } else {
            int node = path[n_keys - 1 - t];
            k = p.k_tree + node * kv_row + kv_off;
            v = p.v_tree + node * kv_row + kv_off;
        }
        float dot = 0.0f;
        for (int r = 0; r < per_lane; r++) {
            int d = lane + 32 * r;
            if (d < hd) dot += qr[r] * k[d];
        }
        float s = warp_sum(dot) * p.scale;
        float m_new = fmaxf(m, s), corr = __expf(m - m_new), e = __expf(s - m_new);
        l = l * corr + e;
        for (int r = 0; r < per_lane; r++) {
            int d = lane + 32 * r;
            o[r] = o[r] * corr + (d < hd ? e * v[d] : 0.0f);
        }
        m = m_new;
    }
    if (lane == 0) {
        w_m[warp] = m;
        w_l[warp] = l;
    }
    for (int r = 0; r < per_lane; r++) {
        int d = lane + 32 * r;
        if (d < hd) w_o[warp][d] = o[r];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < n_warps; w++) M = fmaxf(M, w_m[w]);
    float *part = partials + (((int64_t)i * p.n_heads + h) * ATTN_SPLITS + z) * ATTN_PARTIAL;
    if (threadIdx.x == 0) {
        float L = 0.0f;
        for (int w = 0; w < n_warps; w++) L += w_m[w] == -INFINITY ? 0.0f : w_l[w] * __expf(w_m[w] - M);
        part[0] = M;
        part[1] = L;
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < n_warps; w++)
            if (w_m[w] != -INFINITY) acc += w_o[w][d] * __expf(w_m[w] - M);
        part[2 + d] = acc;
    }
}

__global__ void attn_combine_kernel(stree_attn_tree_params p, const float *partials) {
    int i = blockIdx.x, h = blockIdx.y, hd = p.head_dim;
    const float *part = partials + ((int64_t)i * p.n_heads + h) * ATTN_SPLITS * ATTN_PARTIAL;
    float M = -INFINITY;
    for (int z = 0; z < ATTN_SPLITS; z++) M = fmaxf(M, part[z * ATTN_PARTIAL]);
    float L = 0.0f;
    for (int z = 0; z < ATTN_SPLITS; z++) {
        float mz = part[z * ATTN_PARTIAL];
        if (mz != -INFINITY) L += part[z * ATTN_PARTIAL + 1] * __expf(mz - M);
    }
    float *out = p.out + i * (int64_t)p.n_heads * hd + (int64_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int z = 0; z < ATTN_SPLITS; z++) {
            float mz = part[z * ATTN_PARTIAL];
            if (mz != -INFINITY) acc += part[z * ATTN_PARTIAL + 2 + d] * __expf(mz - M);
        }
        out[d] = acc / L;
    }
}

extern "C" void stree_cuda_attn_tree(const stree_attn_tree_params *p) {
    if (p->head_dim > MAX_HEAD_DIM) {
        stree_cuda_note("attention head_dim above 256 is not supported by the CUDA backend", __FILE__, __LINE__);
        return;
    }
    size_t need = (size_t)p->tree.n * (size_t)p->n_heads * ATTN_SPLITS * ATTN_PARTIAL;
    if (need > g_partials_cap) { /* grown outside graph capture (the eager pass comes first); kept for graphs */
        g_partials_cap = need * 2;
        CUDA_OK(cudaMalloc(&g_partials, g_partials_cap * sizeof(float)));
    }
    cudaStream_t s = stree_cuda_stream();
    dim3 grid(p->tree.n, p->n_heads, ATTN_SPLITS);
    attn_partial_kernel<<<grid, ATTN_WARPS * 32, 0, s>>>(*p, g_partials);
    LAUNCHED();
    dim3 g2(p->tree.n, p->n_heads);
    attn_combine_kernel<<<g2, 128, 0, s>>>(*p, g_partials);
    LAUNCHED();
}

__global__ void kv_commit_kernel(stree_kv_commit_params p) {
    int k = blockIdx.x;
    int64_t dst = (int64_t)(*p.n_past + k) * p.row, src = (int64_t)p.path[k] * p.row;
    for (int j = threadIdx.x; j < p.row; j += blockDim.x) {
        p.k_cache[dst + j] = p.k_tree[src + j];
        p.v_cache[dst + j] = p.v_tree[src + j];
    }
}

extern "C" void stree_cuda_kv_commit(const stree_kv_commit_params *p) {
    kv_commit_kernel<<<p->len, 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
