// CUDA backend: per-row top-k over the vocabulary (argmax for greedy verification, the k best with
// log-softmax values for drafting).
#include <math.h>

#include "kernels/cuda/common.cuh"

// Top-k per row in two stages, so that a decode step's single 131k-entry row is read by many
// blocks: stage 1 splits each row into TOPK_SLICES slices and takes each slice's top k (plus its max
// and sum of exp, for the log-softmax); stage 2 merges the slices' candidates. Both order by (value
// descending, index ascending), so the result equals a single pass's.
#define TOPK_THREADS 256
#define TOPK_PER_THREAD 8
#define TOPK_SLICE (TOPK_THREADS * TOPK_PER_THREAD)
#define TOPK_MAX_K 16
#define TOPK_MAX_SLICES 128 /* vocabularies up to 262144 */

static float *g_topk_val;
static int *g_topk_idx;
static size_t g_topk_cap;

__device__ __forceinline__ bool topk_better(float v, int i, float bv, int bi) {
    return i >= 0 && (bi < 0 || v > bv || (v == bv && i < bi));
}

// k rounds of a block-wide best over each thread's PER values; writes the picks to out_val/out_idx
template <int PER>
__device__ void block_topk(float (&val)[PER], int (&idx)[PER], int k, float *out_val, int *out_idx) {
    __shared__ float s_val[TOPK_THREADS / 32];
    __shared__ int s_idx[TOPK_THREADS / 32];
    __shared__ int s_win;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned taken = 0;
    for (int r = 0; r < k; r++) {
        float best = -INFINITY;
        int best_i = -1;
#pragma unroll
        for (int e = 0; e < PER; e++)
            if (!(taken >> e & 1u) && topk_better(val[e], idx[e], best, best_i)) best = val[e], best_i = idx[e];
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
            if (topk_better(ov, oi, best, best_i)) best = ov, best_i = oi;
        }
        if (lane == 0) s_val[warp] = best, s_idx[warp] = best_i;
        __syncthreads();
        if (threadIdx.x == 0) {
            float b = s_val[0];
            int bi = s_idx[0];
            for (int w = 1; w < TOPK_THREADS / 32; w++)
                if (topk_better(s_val[w], s_idx[w], b, bi)) b = s_val[w], bi = s_idx[w];
            out_val[r] = b, out_idx[r] = bi;
            s_win = bi;
        }
        __syncthreads();
        int win = s_win;
#pragma unroll
        for (int e = 0; e < PER; e++)
            if (idx[e] == win) taken |= 1u << e;
    }
}

// grid (rows, slices): a slice's top k, its max and sum of e^{x - max}
__global__ void __launch_bounds__(TOPK_THREADS) topk_slice_kernel(stree_topk_params p, int slices, float *cand_val,
                                                                  int *cand_idx) {
    __shared__ float red[32];
    int row = blockIdx.x, sl = blockIdx.y;
    const float *x = p.x + (int64_t)row * p.vocab;
    float val[TOPK_PER_THREAD];
    int idx[TOPK_PER_THREAD];
#pragma unroll
    for (int e = 0; e < TOPK_PER_THREAD; e++) {
        int v = sl * TOPK_SLICE + e * TOPK_THREADS + threadIdx.x;
        idx[e] = v < p.vocab ? v : -1;
        val[e] = v < p.vocab ? x[v] : -INFINITY;
    }
    int64_t base = ((int64_t)row * slices + sl) * (TOPK_MAX_K + 2);
    block_topk<TOPK_PER_THREAD>(val, idx, p.k, cand_val + base, cand_idx + base);
    if (!p.logp) return;
    float mx = cand_val[base]; /* written by thread 0 before block_topk's last barrier */
    float sum = 0.0f;
#pragma unroll
    for (int e = 0; e < TOPK_PER_THREAD; e++)
        if (idx[e] >= 0) sum += __expf(val[e] - mx);
    sum = block_sum(sum, red);
    if (threadIdx.x == 0) cand_val[base + TOPK_MAX_K] = mx, cand_val[base + TOPK_MAX_K + 1] = sum;
}

// grid rows: merge the slices' candidates; log-softmax from the slices' (max, sum)
__global__ void __launch_bounds__(TOPK_THREADS) topk_merge_kernel(stree_topk_params p, int slices,
                                                                  const float *cand_val, const int *cand_idx) {
    __shared__ float red[32];
    __shared__ float pick_val[TOPK_MAX_K];
    __shared__ int pick_idx[TOPK_MAX_K];
    const int PER = TOPK_MAX_SLICES * TOPK_MAX_K / TOPK_THREADS; /* slices * k candidates */
    int row = blockIdx.x, n_cand = slices * p.k;
    float val[PER];
    int idx[PER];
#pragma unroll
    for (int e = 0; e < PER; e++) {
        int c = e * TOPK_THREADS + threadIdx.x;
        int64_t at = ((int64_t)row * slices + c / p.k) * (TOPK_MAX_K + 2) + c % p.k;
        idx[e] = c < n_cand ? cand_idx[at] : -1;
        val[e] = c < n_cand ? cand_val[at] : -INFINITY;
    }
    block_topk<PER>(val, idx, p.k, pick_val, pick_idx);
    for (int r = threadIdx.x; r < p.k; r += TOPK_THREADS) p.idx[(int64_t)row * p.k + r] = pick_idx[r];
    if (!p.logp) return;
    float M = pick_val[0], part = 0.0f;
    for (int sl = threadIdx.x; sl < slices; sl += TOPK_THREADS) {
        const float *st = cand_val + ((int64_t)row * slices + sl) * (TOPK_MAX_K + 2) + TOPK_MAX_K;
        part += st[1] * __expf(st[0] - M);
    }
    float L = block_sum(part, red);
    float lse = M + logf(L);
    for (int r = threadIdx.x; r < p.k; r += TOPK_THREADS) p.logp[(int64_t)row * p.k + r] = pick_val[r] - lse;
}

extern "C" void stree_cuda_topk(const stree_topk_params *p) {
    if (p->k < 1 || p->k > TOPK_MAX_K) {
        stree_cuda_note("top-k needs 1 <= k <= 16 on the CUDA backend", __FILE__, __LINE__);
        return;
    }
    int slices = ceil_div(p->vocab, TOPK_SLICE);
    if (slices > TOPK_MAX_SLICES) {
        stree_cuda_note("vocabularies above 262144 entries are not supported by the CUDA top-k", __FILE__, __LINE__);
        return;
    }
    size_t need = (size_t)p->n * (size_t)slices * (TOPK_MAX_K + 2);
    if (need > g_topk_cap) { /* grown outside graph capture (the eager pass comes first); kept for graphs */
        g_topk_cap = need * 2;
        CUDA_OK(cudaMalloc(&g_topk_val, g_topk_cap * sizeof(float)));
        CUDA_OK(cudaMalloc(&g_topk_idx, g_topk_cap * sizeof(int)));
    }
    cudaStream_t s = stree_cuda_stream();
    dim3 g1(p->n, slices);
    topk_slice_kernel<<<g1, TOPK_THREADS, 0, s>>>(*p, slices, g_topk_val, g_topk_idx);
    LAUNCHED();
    topk_merge_kernel<<<p->n, TOPK_THREADS, 0, s>>>(*p, slices, g_topk_val, g_topk_idx);
    LAUNCHED();
}
