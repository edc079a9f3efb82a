// CUDA backend: RoPE and tree attention (committed prefix tiled over query rows + ancestor-or-self
// tree keys per (node, head)). The KV commit is in commit.cu.
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

// Tree attention in two parts whose partial softmaxes (max m, sum l, o[hd]) a third kernel merges in
// a fixed order:
//  - the committed prefix, split into ATTN_SPLITS key ranges: a block takes one KV head, one range
//    and ATTN_ROWS query rows (nodes x the query heads sharing that KV head), stages ATTN_TILE keys
//    and values in shared memory and runs them against every row, so K/V are read once per block
//    rather than once per (node, head);
//  - the tree keys: a block per (node, head) walks the node's ancestor-or-self path.
// The split count is fixed so that captured graphs replay for any context length.
#define ATTN_SPLITS 16
#define ATTN_SLOTS (ATTN_SPLITS + 1) /* the last slot is the tree part */
#define ATTN_PARTIAL (MAX_HEAD_DIM + 2)
#define ATTN_ROWS 32
#define ATTN_TILE 32
#define PREFIX_WARPS 4

static float *g_partials;
static size_t g_partials_cap;

static size_t prefix_smem_bytes(int hd) {
    return sizeof(float) * ((size_t)ATTN_TILE * (hd + 1) + (size_t)ATTN_TILE * hd + (size_t)ATTN_ROWS * hd +
                            (size_t)PREFIX_WARPS * (ATTN_ROWS / PREFIX_WARPS) * ATTN_TILE);
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// grid (n_kv_heads, ATTN_SPLITS, node chunks)
__global__ void __launch_bounds__(PREFIX_WARPS * 32) attn_prefix_kernel(stree_attn_tree_params p, float *partials) {
    extern __shared__ float smem[];
    const int RW = ATTN_ROWS / PREFIX_WARPS; /* rows per warp */
    int hd = p.head_dim, n_past = *p.n_past, G = p.n_heads / p.n_kv_heads;
    int nodes_per_block = ATTN_ROWS / G > 0 ? ATTN_ROWS / G : 1;
    int hk = blockIdx.x, z = blockIdx.y, node0 = blockIdx.z * nodes_per_block;
    int n_nodes = min(nodes_per_block, p.tree.n - node0), n_rows = n_nodes * G;
    float *Ks = smem;                                /* [ATTN_TILE][hd + 1] (padded: lanes read columns) */
    float *Vs = Ks + ATTN_TILE * (hd + 1);           /* [ATTN_TILE][hd] */
    float *Qs = Vs + ATTN_TILE * hd;                 /* [ATTN_ROWS][hd]: row = local node * G + head in group */
    float *Ps = Qs + ATTN_ROWS * hd;                 /* [PREFIX_WARPS][RW][ATTN_TILE] */
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int64_t q_row = (int64_t)p.n_heads * hd, kv_row = (int64_t)p.n_kv_heads * hd, kv_off = (int64_t)hk * hd;
    /* staging loops are unrolled so that their global loads are in flight together */
#pragma unroll 8
    for (int e = threadIdx.x; e < n_rows * hd; e += blockDim.x) {
        int r = e / hd, d = e % hd;
        Qs[r * hd + d] = p.q[(node0 + r / G) * q_row + (int64_t)(hk * G + r % G) * hd + d];
    }
    int chunk = (n_past + ATTN_SPLITS - 1) / ATTN_SPLITS;
    int begin = z * chunk, end = min(n_past, begin + chunk);
    float m[RW], l[RW], o[RW][MAX_HEAD_DIM / 32];
#pragma unroll
    for (int r = 0; r < RW; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        for (int dd = 0; dd < MAX_HEAD_DIM / 32; dd++) o[r][dd] = 0.0f;
    }
    for (int t0 = begin; t0 < end; t0 += ATTN_TILE) {
        int nt = min(ATTN_TILE, end - t0);
        __syncthreads(); /* Qs is written / the previous tile is consumed */
        if (hd % 4 == 0) { /* 16-byte loads, 8 in flight per thread */
            int hd4 = hd / 4;
#pragma unroll 8
            for (int e = threadIdx.x; e < nt * hd4; e += blockDim.x) {
                int t = e / hd4, d = 4 * (e % hd4);
                float4 kv = *reinterpret_cast<const float4 *>(p.k_cache + (t0 + t) * kv_row + kv_off + d);
                float4 vv = *reinterpret_cast<const float4 *>(p.v_cache + (t0 + t) * kv_row + kv_off + d);
                float *kd = Ks + t * (hd + 1) + d;
                kd[0] = kv.x, kd[1] = kv.y, kd[2] = kv.z, kd[3] = kv.w;
                *reinterpret_cast<float4 *>(Vs + t * hd + d) = vv;
            }
        } else {
#pragma unroll 8
            for (int e = threadIdx.x; e < nt * hd; e += blockDim.x) {
                int t = e / hd, d = e % hd;
                Ks[t * (hd + 1) + d] = p.k_cache[(t0 + t) * kv_row + kv_off + d];
                Vs[t * hd + d] = p.v_cache[(t0 + t) * kv_row + kv_off + d];
            }
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < RW; r++) {
            int row = warp * RW + r;
            if (row < n_rows) { /* warp-uniform */
                float s = -INFINITY;
                if (lane < nt) {
                    const float *q = Qs + row * hd, *k = Ks + lane * (hd + 1);
                    float dot = 0.0f;
                    for (int d = 0; d < hd; d++) dot += q[d] * k[d];
                    s = dot * p.scale;
                }
                float m_new = fmaxf(m[r], warp_max(s));
                float corr = __expf(m[r] - m_new), e = lane < nt ? __expf(s - m_new) : 0.0f;
                l[r] = l[r] * corr + warp_sum(e);
                float *pr = Ps + (warp * RW + r) * ATTN_TILE;
                pr[lane] = e;
                __syncwarp();
#pragma unroll
                for (int dd = 0; dd < MAX_HEAD_DIM / 32; dd++) {
                    int d = lane + 32 * dd;
                    if (d < hd) {
                        float acc = o[r][dd] * corr;
                        for (int t = 0; t < nt; t++) acc += pr[t] * Vs[t * hd + d];
                        o[r][dd] = acc;
                    }
                }
                __syncwarp();
                m[r] = m_new;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RW; r++) {
        int row = warp * RW + r;
        if (row < n_rows) {
            int i = node0 + row / G, h = hk * G + row % G;
            float *part = partials + (((int64_t)i * p.n_heads + h) * ATTN_SLOTS + z) * ATTN_PARTIAL;
            if (lane == 0) {
                part[0] = m[r];
                part[1] = l[r];
            }
#pragma unroll
            for (int dd = 0; dd < MAX_HEAD_DIM / 32; dd++) {
                int d = lane + 32 * dd;
                if (d < hd) part[2 + d] = o[r][dd];
            }
        }
    }
}

// grid (n, n_heads): the node's ancestor-or-self tree keys, warps split them with an online softmax
__global__ void attn_tree_part_kernel(stree_attn_tree_params p, float *partials) {
    __shared__ int path[MAX_PATH];
    __shared__ int n_path;
    __shared__ float w_m[ATTN_WARPS], w_l[ATTN_WARPS];
    __shared__ float w_o[ATTN_WARPS][MAX_HEAD_DIM];
    int i = blockIdx.x, h = blockIdx.y, hd = p.head_dim;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    if (p.tree.depth[i] == i) { /* a chain from the root (prefill): the path is i, i-1, .., 0 */
        for (int t = threadIdx.x; t <= i; t += blockDim.x) path[t] = i - t;
        if (threadIdx.x == 0) n_path = i + 1;
    } else if (threadIdx.x == 0) {
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
    for (int t = warp; t < n_path; t += n_warps) {
        int node = path[n_path - 1 - t];
        const float *k = p.k_tree + node * kv_row + kv_off, *v = p.v_tree + node * kv_row + kv_off;
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
    float *part = partials + (((int64_t)i * p.n_heads + h) * ATTN_SLOTS + ATTN_SPLITS) * ATTN_PARTIAL;
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
    const float *part = partials + ((int64_t)i * p.n_heads + h) * ATTN_SLOTS * ATTN_PARTIAL;
    float M = -INFINITY;
    for (int z = 0; z < ATTN_SLOTS; z++) M = fmaxf(M, part[z * ATTN_PARTIAL]);
    float L = 0.0f;
    for (int z = 0; z < ATTN_SLOTS; z++) {
        float mz = part[z * ATTN_PARTIAL];
        if (mz != -INFINITY) L += part[z * ATTN_PARTIAL + 1] * __expf(mz - M);
    }
    float *out = p.out + i * (int64_t)p.n_heads * hd + (int64_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int z = 0; z < ATTN_SLOTS; z++) {
            float mz = part[z * ATTN_PARTIAL];
            if (mz != -INFINITY) acc += part[z * ATTN_PARTIAL + 2 + d] * __expf(mz - M);
        }
        out[d] = acc / L;
    }
}

extern "C" void stree_cuda_attn_tree(const stree_attn_tree_params *p) {
    if (p->head_dim > MAX_HEAD_DIM || p->n_heads % p->n_kv_heads != 0) {
        stree_cuda_note("attention needs head_dim <= 256 and query heads a multiple of KV heads on the CUDA backend",
                        __FILE__, __LINE__);
        return;
    }
    size_t need = (size_t)p->tree.n * (size_t)p->n_heads * ATTN_SLOTS * ATTN_PARTIAL;
    if (need > g_partials_cap) { /* grown outside graph capture (the eager pass comes first); kept for graphs */
        g_partials_cap = need * 2;
        CUDA_OK(cudaMalloc(&g_partials, g_partials_cap * sizeof(float)));
    }
    cudaStream_t s = stree_cuda_stream();
    size_t smem = prefix_smem_bytes(p->head_dim);
    static size_t smem_set;
    if (smem > smem_set) { /* above 48 KB needs the opt-in; set before the first (eager) launch */
        CUDA_OK(cudaFuncSetAttribute(attn_prefix_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        smem_set = smem;
    }
    int G = p->n_heads / p->n_kv_heads, nodes_per_block = ATTN_ROWS / G > 0 ? ATTN_ROWS / G : 1;
    if (G > ATTN_ROWS) {
        stree_cuda_note("more than 32 query heads per KV head is not supported by the CUDA backend", __FILE__,
                        __LINE__);
        return;
    }
    dim3 g0(p->n_kv_heads, ATTN_SPLITS, ceil_div(p->tree.n, nodes_per_block));
    attn_prefix_kernel<<<g0, PREFIX_WARPS * 32, smem, s>>>(*p, g_partials);
    LAUNCHED();
    dim3 g1(p->tree.n, p->n_heads);
    attn_tree_part_kernel<<<g1, ATTN_WARPS * 32, 0, s>>>(*p, g_partials);
    LAUNCHED();
    dim3 g2(p->tree.n, p->n_heads);
    attn_combine_kernel<<<g2, 128, 0, s>>>(*p, g_partials);
    LAUNCHED();
}
