// CUDA backend: RoPE and tree attention (committed prefix tiled over query rows + ancestor-or-self
// tree keys per (node, head)). The KV commit is in commit.cu.
#include <math.h>

#include "kernels/cuda/common.cuh"

#define MAX_HEAD_DIM 256
#define MAX_PATH 4096
#define STAGED_PARENTS 1024 /* tree parents read from shared memory on a path walk */
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

// Tree attention in two parts whose partial softmaxes (max m, sum l, o[hd]) are merged in a fixed
// order:
//  - the committed prefix, split into `splits` key ranges: a block takes one KV head, one range
//    and ATTN_ROWS query rows (nodes x the query heads sharing that KV head), stages ATTN_TILE keys
//    and values in shared memory and runs them against every row, so K/V are read once per block
//    rather than once per (node, head);
//  - the tree keys: a block per (node, head) walks the node's ancestor-or-self path, then merges the
//    prefix kernel's partials (one slot per split, in global memory) and its own.
// The split count depends on the tree size only, never on the context, so captured graphs replay for
// any context length.
#define ATTN_MAX_SPLITS 16
#define ATTN_PARTIAL (MAX_HEAD_DIM + 2)
#define ATTN_ROWS 32
#define ATTN_TILE 32
#define PREFIX_WARPS 4
#define PREFIX_THREADS (PREFIX_WARPS * 32)
#define PT_LD (ATTN_ROWS + 4) /* P^T row stride: a lane's float4 stores fall in distinct banks */

static float *g_partials;
static size_t g_partials_cap; /* bytes */

// Shared-memory layout of the prefix kernel, in floats. Head dims are padded to a multiple of 4
// (hdp, zero-filled) for 16-byte reads; Q and K rows are `ld` apart, ld = 4 (mod 8), so the eight
// rows a quarter-warp reads as float4 fall in distinct banks.
struct prefix_layout {
    int hdp, ld, q, k, v, p, stats, total;
    __host__ __device__ prefix_layout(int hd) {
        hdp = (hd + 3) & ~3;
        ld = ((hdp + 7) & ~7) + 4;
        q = 0;                            /* Qs [ATTN_ROWS][ld]  row = local node * G + head in group */
        k = q + ATTN_ROWS * ld;           /* Ks [ATTN_TILE][ld] */
        v = k + ATTN_TILE * ld;           /* Vs [ATTN_TILE][hdp] */
        p = v + ATTN_TILE * hdp;          /* S [ATTN_ROWS][ATTN_TILE + 1], then P^T [ATTN_TILE][PT_LD] */
        stats = p + ATTN_TILE * PT_LD;    /* m, l, corr [3][ATTN_ROWS] */
        total = stats + 3 * ATTN_ROWS;
    }
};

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// `rows` rows of two [*, ld_src] fp32 matrices (K and V) into shared memory rows ld_a / ld_b apart,
// zero past `valid` rows and past hd. Each thread loads its whole batch into registers before it
// stores any of it, so all its loads are in flight together.
__device__ __forceinline__ void stage_kv(float *dst_a, int ld_a, const float *src_a, float *dst_b, int ld_b,
                                         const float *src_b, int64_t ld_src, int rows, int valid, int hd, int hdp,
                                         bool vec) {
    const int B = 4;
    int hd4 = hdp / 4, total = rows * hd4;
    for (int e0 = threadIdx.x; e0 < total; e0 += B * PREFIX_THREADS) {
        float4 a[B], b[B];
#pragma unroll
        for (int u = 0; u < B; u++) {
            int e = e0 + u * PREFIX_THREADS, r = e / hd4, d = 4 * (e % hd4);
            a[u] = b[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (e < total && r < valid) {
                a[u] = load4(src_a + r * ld_src + d, d, hd, vec);
                b[u] = load4(src_b + r * ld_src + d, d, hd, vec);
            }
        }
#pragma unroll
        for (int u = 0; u < B; u++) {
            int e = e0 + u * PREFIX_THREADS, r = e / hd4, d = 4 * (e % hd4);
            if (e < total) {
                *reinterpret_cast<float4 *>(dst_a + r * ld_a + d) = a[u];
                *reinterpret_cast<float4 *>(dst_b + r * ld_b + d) = b[u];
            }
        }
    }
}

// S[row][key] = scale * q_row . k_key for NR rows (ty, ty + 16) x keys tx + 8j, j < 4
template <int NR>
__device__ __forceinline__ void score_tile(const float *Qs, const float *Ks, float *S, int ld, int hdp, int ty,
                                           int tx, int nt, float scale) {
    float acc[NR][4] = {};
    for (int d = 0; d < hdp; d += 4) {
        float4 k[4];
#pragma unroll
        for (int j = 0; j < 4; j++) k[j] = *reinterpret_cast<const float4 *>(Ks + (tx + 8 * j) * ld + d);
#pragma unroll
        for (int r = 0; r < NR; r++) {
            float4 q = *reinterpret_cast<const float4 *>(Qs + (ty + 16 * r) * ld + d);
#pragma unroll
            for (int j = 0; j < 4; j++) acc[r][j] = dot4(q, k[j], acc[r][j]);
        }
    }
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            S[(ty + 16 * r) * (ATTN_TILE + 1) + tx + 8 * j] = tx + 8 * j < nt ? acc[r][j] * scale : -INFINITY;
}

// grid (n_kv_heads, splits, node chunks). Per key tile, three phases with register tiles:
//   S = Q K^T    thread (ty, tx): rows ty, ty + 16 x keys tx + 8j (j < 4), float4 steps over d;
//   softmax      warp w: rows w + 4r, a lane per key; running m, l per row in shared memory;
//   O += P V     warp w: rows w + 4r (P^T stores them contiguously), lane: float4 columns of d.
// Each row's sums run in a fixed order over d and keys whatever the other rows are, so a node's
// result does not depend on the tree around it (a decode step equals the same row in a verify).
// C4: float4 columns of the head dim per lane (1 up to head dim 128, 2 up to 256).
template <int C4>
__global__ void __launch_bounds__(PREFIX_THREADS) attn_prefix_kernel(stree_attn_tree_params p, float *partials) {
    extern __shared__ float4 smem4[];
    float *smem = reinterpret_cast<float *>(smem4);
    int hd = p.head_dim, n_past = *p.n_past, G = p.n_heads / p.n_kv_heads;
    prefix_layout L(hd);
    int hdp = L.hdp, ld = L.ld;
    int nodes_per_block = ATTN_ROWS / G > 0 ? ATTN_ROWS / G : 1;
    int hk = blockIdx.x, z = blockIdx.y, node0 = blockIdx.z * nodes_per_block;
    int n_nodes = min(nodes_per_block, p.tree.n - node0), n_rows = n_nodes * G;
    float *Qs = smem + L.q, *Ks = smem + L.k, *Vs = smem + L.v, *S = smem + L.p, *Pt = smem + L.p;
    float *m_s = smem + L.stats, *l_s = m_s + ATTN_ROWS, *corr_s = l_s + ATTN_ROWS;
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int64_t q_row = (int64_t)p.n_heads * hd, kv_row = (int64_t)p.n_kv_heads * hd, kv_off = (int64_t)hk * hd;
    bool vec = (hd & 3) == 0 && (((uintptr_t)p.q | (uintptr_t)p.k_cache | (uintptr_t)p.v_cache) & 15) == 0;
    /* Q: row r is query head hk * G + r % G of node node0 + r / G; rows past the block's nodes are zero */
    int hd4 = hdp / 4;
    for (int e0 = tid; e0 < ATTN_ROWS * hd4; e0 += 8 * PREFIX_THREADS) { /* loads first, then stores */
        float4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int e = e0 + u * PREFIX_THREADS, r = e / hd4, d = 4 * (e % hd4);
            v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (e < ATTN_ROWS * hd4 && r < n_rows)
                v[u] = load4(p.q + (node0 + r / G) * q_row + (int64_t)(hk * G + r % G) * hd + d, d, hd, vec);
        }
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int e = e0 + u * PREFIX_THREADS, r = e / hd4, d = 4 * (e % hd4);
            if (e < ATTN_ROWS * hd4) *reinterpret_cast<float4 *>(Qs + r * ld + d) = v[u];
        }
    }
    if (tid < ATTN_ROWS) m_s[tid] = -INFINITY, l_s[tid] = 0.0f;
    int splits = gridDim.y, chunk = (n_past + splits - 1) / splits;
    int begin = z * chunk, end = min(n_past, begin + chunk);
    float4 o[ATTN_ROWS / PREFIX_WARPS][C4];
#pragma unroll
    for (int r = 0; r < ATTN_ROWS / PREFIX_WARPS; r++)
#pragma unroll
        for (int c = 0; c < C4; c++) o[r][c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    int tx = tid & 7, ty = tid >> 3;
    for (int t0 = begin; t0 < end; t0 += ATTN_TILE) {
        int nt = min(ATTN_TILE, end - t0);
        __syncthreads(); /* Qs is written / the previous tile is consumed */
        stage_kv(Ks, ld, p.k_cache + t0 * kv_row + kv_off, Vs, hdp, p.v_cache + t0 * kv_row + kv_off, kv_row,
                 ATTN_TILE, nt, hd, hdp, vec);
        __syncthreads();
        /* S = scale * Q K^T, -inf past the tile's keys */
        if (ty + 16 < n_rows) score_tile<2>(Qs, Ks, S, ld, hdp, ty, tx, nt, p.scale);
        else if (ty < n_rows) score_tile<1>(Qs, Ks, S, ld, hdp, ty, tx, nt, p.scale);
        __syncthreads();
        /* online softmax per row; P^T[key][w * 8 + r] holds row w + 4r */
        float e[ATTN_ROWS / PREFIX_WARPS];
#pragma unroll
        for (int r = 0; r < ATTN_ROWS / PREFIX_WARPS; r++) {
            int row = warp + PREFIX_WARPS * r;
            e[r] = 0.0f;
            if (row < n_rows) {
                float s = S[row * (ATTN_TILE + 1) + lane], m_old = m_s[row];
                float m_new = fmaxf(m_old, warp_max(s));
                e[r] = __expf(s - m_new);
                float corr = __expf(m_old - m_new), sum = warp_sum(e[r]);
                if (lane == 0) m_s[row] = m_new, l_s[row] = l_s[row] * corr + sum, corr_s[row] = corr;
            }
        }
        __syncthreads(); /* S is read: P^T overwrites it */
        *reinterpret_cast<float4 *>(Pt + lane * PT_LD + warp * 8) = make_float4(e[0], e[1], e[2], e[3]);
        *reinterpret_cast<float4 *>(Pt + lane * PT_LD + warp * 8 + 4) = make_float4(e[4], e[5], e[6], e[7]);
        __syncthreads();
        /* O = corr * O + P V over the tile's keys (P = 0 past them, V rows zero-filled) */
        float corr[ATTN_ROWS / PREFIX_WARPS];
#pragma unroll
        for (int r = 0; r < ATTN_ROWS / PREFIX_WARPS; r++) {
            int row = warp + PREFIX_WARPS * r;
            corr[r] = row < n_rows ? corr_s[row] : 1.0f;
#pragma unroll
            for (int c = 0; c < C4; c++) {
                o[r][c].x *= corr[r], o[r][c].y *= corr[r], o[r][c].z *= corr[r], o[r][c].w *= corr[r];
            }
        }
        bool active = warp < n_rows; /* this warp holds at least one live row */
        if (active) {
#pragma unroll 4
            for (int t = 0; t < nt; t++) {
                float4 pa = *reinterpret_cast<const float4 *>(Pt + t * PT_LD + warp * 8);
                float4 pb = *reinterpret_cast<const float4 *>(Pt + t * PT_LD + warp * 8 + 4);
                float pr[8] = {pa.x, pa.y, pa.z, pa.w, pb.x, pb.y, pb.z, pb.w};
#pragma unroll
                for (int c = 0; c < C4; c++) {
                    int d = 4 * (lane + 32 * c);
                    if (d < hdp) {
                        float4 v = *reinterpret_cast<const float4 *>(Vs + t * hdp + d);
#pragma unroll
                        for (int r = 0; r < ATTN_ROWS / PREFIX_WARPS; r++) {
                            o[r][c].x = fmaf(pr[r], v.x, o[r][c].x);
                            o[r][c].y = fmaf(pr[r], v.y, o[r][c].y);
                            o[r][c].z = fmaf(pr[r], v.z, o[r][c].z);
                            o[r][c].w = fmaf(pr[r], v.w, o[r][c].w);
                        }
                    }
                }
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < ATTN_ROWS / PREFIX_WARPS; r++) {
        int row = warp + PREFIX_WARPS * r;
        if (row >= n_rows) continue;
        int i = node0 + row / G, h = hk * G + row % G;
        float *part = partials + (((int64_t)i * p.n_heads + h) * splits + z) * ATTN_PARTIAL;
        if (lane == 0) part[0] = m_s[row], part[1] = l_s[row];
#pragma unroll
        for (int c = 0; c < C4; c++) {
            int d = 4 * (lane + 32 * c);
            float ov[4] = {o[r][c].x, o[r][c].y, o[r][c].z, o[r][c].w};
#pragma unroll
            for (int u = 0; u < 4; u++)
                if (d + u < hd) part[2 + d + u] = ov[u];
        }
    }
}

// grid (n, n_heads): the node's ancestor-or-self tree keys (warps split them, each with an online
// softmax), then the merge of the prefix kernel's partial slots and the tree part's, in slot order (the
// tree part last)
__global__ void attn_tree_combine_kernel(stree_attn_tree_params p, const float *partials, int splits) {
    __shared__ int path[MAX_PATH];
    __shared__ int par[STAGED_PARENTS];
    __shared__ int n_path;
    __shared__ float w_m[ATTN_WARPS], w_l[ATTN_WARPS];
    __shared__ float w_o[ATTN_WARPS][MAX_HEAD_DIM];
    __shared__ float t_o[MAX_HEAD_DIM]; /* the tree part's partial: max t_m, sum t_l, o */
    __shared__ float t_m, t_l;
    int i = blockIdx.x, h = blockIdx.y, hd = p.head_dim;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    if (p.tree.depth[i] == i) { /* a chain from the root (prefill): the path is i, i-1, .., 0 */
        for (int t = threadIdx.x; t <= i; t += blockDim.x) path[t] = i - t;
        if (threadIdx.x == 0) n_path = i + 1;
    } else { /* the parents up to i, staged in one parallel load, then walked from shared memory */
        int n_staged = min(i + 1, STAGED_PARENTS);
        for (int t = threadIdx.x; t < n_staged; t += blockDim.x) par[t] = p.tree.parent[t];
        __syncthreads();
        if (threadIdx.x == 0) {
            int n = 0;
            for (int j = i; j >= 0; j = j < n_staged ? par[j] : p.tree.parent[j]) path[n++] = j;
            n_path = n;
        }
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
    float Mt = -INFINITY;
    for (int w = 0; w < n_warps; w++) Mt = fmaxf(Mt, w_m[w]);
    if (threadIdx.x == 0) {
        float L = 0.0f;
        for (int w = 0; w < n_warps; w++) L += w_m[w] == -INFINITY ? 0.0f : w_l[w] * __expf(w_m[w] - Mt);
        t_m = Mt, t_l = L;
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < n_warps; w++)
            if (w_m[w] != -INFINITY) acc += w_o[w][d] * __expf(w_m[w] - Mt);
        t_o[d] = acc;
    }
    __syncthreads();
    const float *part = partials + ((int64_t)i * p.n_heads + h) * splits * ATTN_PARTIAL;
    float M = t_m;
    for (int z = 0; z < splits; z++) M = fmaxf(M, part[z * ATTN_PARTIAL]);
    float L = 0.0f;
    for (int z = 0; z < splits; z++) {
        float mz = part[z * ATTN_PARTIAL];
        if (mz != -INFINITY) L += part[z * ATTN_PARTIAL + 1] * __expf(mz - M);
    }
    if (t_m != -INFINITY) L += t_l * __expf(t_m - M);
    float *out = p.out + i * (int64_t)p.n_heads * hd + (int64_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int z = 0; z < splits; z++) {
            float mz = part[z * ATTN_PARTIAL];
            if (mz != -INFINITY) acc += part[z * ATTN_PARTIAL + 2 + d] * __expf(mz - M);
        }
        if (t_m != -INFINITY) acc += t_o[d] * __expf(t_m - M);
        out[d] = acc / L;
    }
}

// Key ranges of the committed prefix: as many as keep the prefix kernel to one wave (up to
// ATTN_MAX_SPLITS), fewer for larger trees, whose node chunks already fill the device, so that
// blocks get longer ranges and the partials stay small (a 64-node tree: 8 instead of 16, half the
// partial traffic). The batch-invariant mode keeps ATTN_MAX_SPLITS for every tree, so a node's
// sums never depend on the tree size.
static int attn_splits(int row_blocks, int head_dim, size_t smem) {
    static int per_sm[2];          /* prefix blocks resident per SM, per kernel variant ... */
    static size_t per_sm_smem[2];  /* ... for this much shared memory */
    int v = head_dim <= 128 ? 0 : 1;
    if (per_sm_smem[v] != smem) {
        CUDA_OK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm[v], v ? attn_prefix_kernel<2> : attn_prefix_kernel<1>,
                                                              PREFIX_THREADS, smem));
        per_sm_smem[v] = smem;
    }
    int64_t slots = (int64_t)stree_cuda_sm_count() * (per_sm[v] > 0 ? per_sm[v] : 1);
    int s = ATTN_MAX_SPLITS;
    if (!stree_cuda_batch_invariant())
        while (s > 1 && (int64_t)row_blocks * s > slots) s /= 2;
    return s;
}

extern "C" void stree_cuda_attn_tree(const stree_attn_tree_params *p) {
    if (p->head_dim > MAX_HEAD_DIM || p->n_heads % p->n_kv_heads != 0) {
        stree_cuda_note("attention needs head_dim <= 256 and query heads a multiple of KV heads on the CUDA backend",
                        __FILE__, __LINE__);
        return;
    }
    int G = p->n_heads / p->n_kv_heads, nodes_per_block = ATTN_ROWS / G > 0 ? ATTN_ROWS / G : 1;
    if (G > ATTN_ROWS) {
        stree_cuda_note("more than 32 query heads per KV head is not supported by the CUDA backend", __FILE__,
                        __LINE__);
        return;
    }
    cudaStream_t s = stree_cuda_stream();
    size_t smem = sizeof(float) * (size_t)prefix_layout(p->head_dim).total;
    static size_t smem_set;
    if (smem > smem_set) { /* above 48 KB needs the opt-in; set before the first (eager) launch */
        CUDA_OK(cudaFuncSetAttribute(attn_prefix_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CUDA_OK(cudaFuncSetAttribute(attn_prefix_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        smem_set = smem;
    }
    int node_chunks = ceil_div(p->tree.n, nodes_per_block), splits = attn_splits(p->n_kv_heads * node_chunks, p->head_dim, smem);
    grow_scratch((void **)&g_partials, &g_partials_cap,
                 (size_t)p->tree.n * (size_t)p->n_heads * splits * ATTN_PARTIAL * sizeof(float), 0);
    dim3 g0(p->n_kv_heads, splits, node_chunks);
    if (p->head_dim <= 128) attn_prefix_kernel<1><<<g0, PREFIX_THREADS, smem, s>>>(*p, g_partials);
    else attn_prefix_kernel<2><<<g0, PREFIX_THREADS, smem, s>>>(*p, g_partials);
    LAUNCHED();
    dim3 g1(p->tree.n, p->n_heads);
    attn_tree_combine_kernel<<<g1, ATTN_WARPS * 32, 0, s>>>(*p, g_partials, splits);
    LAUNCHED();
}
