// CUDA backend: dense layers (a decode GEMV and cuBLASLt, gemm.cu; bf16 weights, fp32 accumulation), FFN
// activations, routing, routed experts, embedding and axpby. Top-k is in topk.cu.
#include <math.h>
#include <stdlib.h>

#include "kernels/cuda/common.cuh"

static __nv_bfloat16 *g_xb;  // bf16 copy of a matmul's input
static size_t g_xb_cap; /* bytes */

__global__ void to_bf16_kernel(const float *x, int64_t ldx, __nv_bfloat16 *y, int n, int k, int relu2) {
    int64_t i = blockIdx.y, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || j >= k) return;
    float v = x[i * ldx + j];
    if (relu2) v = v > 0.0f ? v * v : 0.0f;
    y[i * k + j] = __float2bfloat16(v);
}

// four elements per thread (k % 4 == 0, ldx % 4 == 0, x 16-byte aligned)
__global__ void to_bf16x4_kernel(const float *x, int64_t ldx, __nv_bfloat16 *y, int n, int k, int relu2) {
    int64_t i = blockIdx.y, j = 4 * ((int64_t)blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n || j >= k) return;
    float4 v = *reinterpret_cast<const float4 *>(x + i * ldx + j);
    store_bf16x4(y + i * k + j, relu2 ? relu2_f4(v) : v);
}

__global__ void add_bias_kernel(float *y, int64_t ldy, const float *bias, float alpha, int n, int m) {
    int64_t i = blockIdx.y, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && j < m) y[i * ldy + j] += alpha * bias[j];
}

// ---- small-batch GEMV: y[n, m] = alpha * (x[n, k] w[m, k]^T + bias) (+ y), n <= GEMV_MAX_ROWS ----
// Decode and small trees are bound by reading the weights once. A block owns R weight rows; its 256
// threads stride over the rows' 16-byte chunks (8 bf16), UNROLL chunks in flight per row, and each
// x chunk loaded (fp32, hot in L1) serves all R rows, so L1 reads stay a few per weight load. The x
// values are rounded to bf16 like the cuBLAS path's input copy, so both paths see the same operands.
// Each output's reduction order depends only on k: the same for every n (batch-invariant for n <= 8).
// By default only decode steps (n = 1) take it: with n = 2..8 its x reads from L1 made it slower than
// cuBLAS on the H200 (docs/PERF.md); STREE_CUDA_GEMV_ROWS=N sends up to N rows here.
#define GEMV_MAX_ROWS 8
#define GEMV_DEFAULT_ROWS 1 /* measured on the H200: n = 2..8 lose to cuBLAS (docs/PERF.md) */
#define GEMV_UNROLL 2
#define GEMV_THREADS 256

__device__ __forceinline__ float dot8_bf16(uint4 w, float4 a, float4 b) {
    const __nv_bfloat162 *w2 = reinterpret_cast<const __nv_bfloat162 *>(&w);
    float2 w0 = __bfloat1622float2(w2[0]), w1 = __bfloat1622float2(w2[1]);
    float2 w2f = __bfloat1622float2(w2[2]), w3 = __bfloat1622float2(w2[3]);
    return w0.x * a.x + w0.y * a.y + w1.x * a.z + w1.y * a.w + w2f.x * b.x + w2f.y * b.y + w3.x * b.z + w3.y * b.w;
}

__device__ __forceinline__ float4 round_bf16(float4 v) {
    return make_float4(__bfloat162float(__float2bfloat16(v.x)), __bfloat162float(__float2bfloat16(v.y)),
                       __bfloat162float(__float2bfloat16(v.z)), __bfloat162float(__float2bfloat16(v.w)));
}

template <int NR, int R>
__device__ __forceinline__ void gemv_chunk(const stree_matmul_params &p, const uint4 (&wv)[R], int c,
                                           float (&acc)[R][NR]) {
#pragma unroll
    for (int i = 0; i < NR; i++)
        if (i < p.n) {
            const float4 *x = reinterpret_cast<const float4 *>(p.x + i * p.ldx) + 2 * c;
            float4 a = __ldg(x), b = __ldg(x + 1);
            if (p.x_relu2) a = relu2_f4(a), b = relu2_f4(b);
            a = round_bf16(a), b = round_bf16(b);
#pragma unroll
            for (int r = 0; r < R; r++) acc[r][i] += dot8_bf16(wv[r], a, b);
        }
}

template <int NR, int R>
__global__ void __launch_bounds__(GEMV_THREADS) gemv_kernel(stree_matmul_params p) {
    __shared__ float red[GEMV_THREADS / 32][R * NR];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int64_t row0 = (int64_t)blockIdx.x * R;
    const uint4 *w[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        int64_t row = row0 + r < p.m ? row0 + r : row0; /* a missing row re-reads row0; never stored */
        w[r] = reinterpret_cast<const uint4 *>((const __nv_bfloat16 *)p.w + row * p.k);
    }
    float acc[R][NR];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int i = 0; i < NR; i++) acc[r][i] = 0.0f;
    int k8 = p.k / 8; /* 16-byte chunks per row */
    int c = threadIdx.x;
    for (; c + GEMV_THREADS * (GEMV_UNROLL - 1) < k8; c += GEMV_THREADS * GEMV_UNROLL) {
        uint4 wv[GEMV_UNROLL][R];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++)
#pragma unroll
            for (int r = 0; r < R; r++) wv[u][r] = __ldg(w[r] + c + GEMV_THREADS * u);
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) gemv_chunk<NR, R>(p, wv[u], c + GEMV_THREADS * u, acc);
    }
    for (; c < k8; c += GEMV_THREADS) {
        uint4 wv[R];
#pragma unroll
        for (int r = 0; r < R; r++) wv[r] = __ldg(w[r] + c);
        gemv_chunk<NR, R>(p, wv, c, acc);
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int i = 0; i < NR; i++) {
            float v = warp_sum(acc[r][i]);
            if (lane == 0) red[warp][r * NR + i] = v;
        }
    __syncthreads();
    for (int o = threadIdx.x; o < R * NR; o += GEMV_THREADS) {
        int r = o / NR, i = o % NR;
        int64_t row = row0 + r;
        if (i >= p.n || row >= p.m) continue;
        float v = 0.0f;
        for (int q = 0; q < GEMV_THREADS / 32; q++) v += red[q][o]; /* fixed order */
        v += p.maybe_bias ? p.maybe_bias[row] : 0.0f;
        float *y = p.y + i * p.ldy + row;
        *y = p.accumulate ? *y + p.alpha * v : p.alpha * v;
    }
}

template <int NR>
static void launch_gemv(const stree_matmul_params *p, cudaStream_t s) {
    /* R weight rows a block reuse each x chunk R times; keep >= ~2k blocks (several waves) */
    if (p->m >= 8192) gemv_kernel<NR, 4><<<ceil_div(p->m, 4), GEMV_THREADS, 0, s>>>(*p);
    else if (p->m >= 4096) gemv_kernel<NR, 2><<<ceil_div(p->m, 2), GEMV_THREADS, 0, s>>>(*p);
    else gemv_kernel<NR, 1><<<p->m, GEMV_THREADS, 0, s>>>(*p);
    LAUNCHED();
}

static bool gemv_fits(const stree_matmul_params *p) {
    return p->wtype == STREE_WTYPE_BF16 && p->n <= GEMV_MAX_ROWS && p->k % 8 == 0 && p->ldx % 4 == 0 &&
           ((uintptr_t)p->x & 15) == 0 && ((uintptr_t)p->w & 15) == 0;
}

/* The most rows the GEMV takes (the rest go to cuBLAS); STREE_CUDA_GEMV_ROWS overrides it for
 * comparisons (0 sends every matmul to cuBLAS). */
static int gemv_max_rows(void) {
    static int rows = -1;
    if (rows < 0) {
        const char *e = getenv("STREE_CUDA_GEMV_ROWS");
        rows = e ? atoi(e) : GEMV_DEFAULT_ROWS;
        if (rows < 0 || rows > GEMV_MAX_ROWS) rows = GEMV_DEFAULT_ROWS;
    }
    return rows;
}

/* STREE_CUDA_BATCH_INVARIANT=1: every matmul of n <= 128 rows goes to the skinny matmul (skinny.cu),
 * whose row i of an n-row product is bitwise the 1-row product, so a drafter's step and the verify of
 * the same token agree exactly (and attention keeps one split of the prefix for every tree size,
 * attention.cu). It is slower than the GEMV and cuBLAS on the H200 (docs/PERF.md). */
bool stree_cuda_batch_invariant(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("STREE_CUDA_BATCH_INVARIANT");
        on = e && atoi(e) > 0;
    }
    return on;
}

extern "C" void stree_cuda_matmul(const stree_matmul_params *p) {
    cudaStream_t s = stree_cuda_stream();
    if (stree_cuda_batch_invariant() && stree_cuda_skinny_fits(p)) {
        stree_cuda_skinny_matmul(p);
        return;
    }
    if (gemv_fits(p) && p->n <= gemv_max_rows()) {
        if (p->n == 1) launch_gemv<1>(p, s);
        else if (p->n == 2) launch_gemv<2>(p, s);
        else if (p->n <= 4) launch_gemv<4>(p, s);
        else launch_gemv<8>(p, s);
        return;
    }
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)p->maybe_x_wt; /* the norm's bf16 copy, else make one */
    if (!xb) {
        grow_scratch((void **)&g_xb, &g_xb_cap, (size_t)p->n * (size_t)p->k * sizeof *g_xb, (size_t)1 << 23);
        if (p->k % 4 == 0 && p->ldx % 4 == 0 && aligned16(p->x)) {
            dim3 grid(ceil_div(p->k / 4, 256), p->n);
            to_bf16x4_kernel<<<grid, 256, 0, s>>>(p->x, p->ldx, g_xb, p->n, p->k, p->x_relu2);
        } else {
            dim3 grid(ceil_div(p->k, 256), p->n);
            to_bf16_kernel<<<grid, 256, 0, s>>>(p->x, p->ldx, g_xb, p->n, p->k, p->x_relu2);
        }
        LAUNCHED();
        xb = g_xb;
    }
    stree_cuda_gemm_bf16(p->m, p->n, p->k, p->alpha, p->w, xb, p->accumulate ? 1.0f : 0.0f, p->y, p->ldy);
    if (p->maybe_bias) {
        dim3 g2(ceil_div(p->m, 256), p->n);
        add_bias_kernel<<<g2, 256, 0, s>>>(p->y, p->ldy, p->maybe_bias, p->alpha, p->n, p->m);
        LAUNCHED();
    }
}

__global__ void ffn_act_kernel(stree_ffn_act_params p) {
    int64_t i = blockIdx.y, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n || j >= p.d) return;
    float up = p.up[i * p.ld + j], r;
    if (p.act == STREE_ACT_SILU) {
        r = silu_f(p.gate[i * p.ld + j] * p.gate_mult) * up;
    } else {
        float u = up > 0.0f ? up : 0.0f;
        r = u * u;
    }
    p.out[i * p.d + j] = r;
}

extern "C" void stree_cuda_ffn_act(const stree_ffn_act_params *p) {
    dim3 grid(ceil_div(p->d, 256), p->n);
    ffn_act_kernel<<<grid, 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void route_kernel(stree_route_params p) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float *lg = p.logits + (int64_t)i * p.n_experts;
    int32_t *ex = p.experts + (int64_t)i * p.top_k;
    float *wt = p.weights + (int64_t)i * p.top_k;
    for (int k = 0; k < p.top_k; k++) {
        int best = -1;
        float best_s = -INFINITY;
        for (int e = 0; e < p.n_experts; e++) {
            bool taken = false;
            for (int t = 0; t < k; t++) taken |= ex[t] == e;
            if (taken) continue;
            float s = lg[e];
            if (p.kind == STREE_ROUTER_SIGMOID_BIAS) s = 1.0f / (1.0f + expf(-s)) + (p.maybe_bias ? p.maybe_bias[e] : 0.0f);
            if (best < 0 || s > best_s) {
                best = e;
                best_s = s;
            }
        }
        ex[k] = best;
    }
    float sum = 0.0f;
    if (p.kind == STREE_ROUTER_TOPK_SOFTMAX) {
        float mx = lg[ex[0]];
        for (int k = 0; k < p.top_k; k++) sum += (wt[k] = expf(lg[ex[k]] - mx));
        for (int k = 0; k < p.top_k; k++) wt[k] /= sum;
    } else if (p.kind == STREE_ROUTER_SOFTMAX_TOPK) {
        float mx = -INFINITY, all = 0.0f;
        for (int e = 0; e < p.n_experts; e++) mx = fmaxf(mx, lg[e]);
        for (int e = 0; e < p.n_experts; e++) all += expf(lg[e] - mx);
        for (int k = 0; k < p.top_k; k++) sum += (wt[k] = expf(lg[ex[k]] - mx) / all);
        if (p.norm_topk)
            for (int k = 0; k < p.top_k; k++) wt[k] /= sum;
    } else {
        for (int k = 0; k < p.top_k; k++) sum += (wt[k] = 1.0f / (1.0f + expf(-lg[ex[k]])));
        if (p.norm_topk)
            for (int k = 0; k < p.top_k; k++) wt[k] /= sum + 1e-20f;
    }
    for (int k = 0; k < p.top_k; k++) wt[k] *= p.scale;
}

extern "C" void stree_cuda_route(const stree_route_params *p) {
    route_kernel<<<ceil_div(p->n, 64), 64, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// dot of a bf16 weight row with an fp32 vector, by one warp
__device__ __forceinline__ float warp_dot(const __nv_bfloat16 *w, const float *x, int k) {
    float acc = 0.0f;
    for (int j = threadIdx.x & 31; j < k; j += 32) acc += __bfloat162float(w[j]) * x[j];
    return warp_sum(acc);
}

// stage 1: act[(i, slot), j] = act(gate_e[j] . x_i, up_e[j] . x_i), one warp per j
__global__ void moe_up_kernel(stree_moe_params p) {
    int pair = blockIdx.x, i = pair / p.top_k;
    int j = blockIdx.y * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (j >= p.d_expert) return;
    int e = p.experts[pair];
    const float *x = p.x + (int64_t)i * p.d_model;
    const __nv_bfloat16 *up = (const __nv_bfloat16 *)p.up[e] + (int64_t)j * p.d_model;
    float u = warp_dot(up, x, p.d_model), r;
    if (p.act == STREE_ACT_SILU) {
        const __nv_bfloat16 *g = (const __nv_bfloat16 *)p.gate[e] + (int64_t)j * p.d_model;
        r = silu_f(warp_dot(g, x, p.d_model)) * u;
    } else {
        float v = u > 0.0f ? u : 0.0f;
        r = v * v;
    }
    if ((threadIdx.x & 31) == 0) p.scratch[(int64_t)pair * p.d_expert + j] = r;
}

// stage 2: out[i, d] += sum_slot w[i, slot] * down_e[d] . act[(i, slot)], one warp per d, fixed order
__global__ void moe_down_kernel(stree_moe_params p) {
    int i = blockIdx.x, d = blockIdx.y * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (d >= p.d_model) return;
    float acc = 0.0f;
    for (int slot = 0; slot < p.top_k; slot++) {
        int pair = i * p.top_k + slot, e = p.experts[pair];
        const __nv_bfloat16 *w = (const __nv_bfloat16 *)p.down[e] + (int64_t)d * p.d_expert;
        acc += p.weights[pair] * warp_dot(w, p.scratch + (int64_t)pair * p.d_expert, p.d_expert);
    }
    if ((threadIdx.x & 31) == 0) p.out[(int64_t)i * p.d_model + d] += acc;
}

extern "C" void stree_cuda_moe(const stree_moe_params *p) {
    cudaStream_t s = stree_cuda_stream();
    dim3 g1(p->n * p->top_k, ceil_div(p->d_expert, 8));
    moe_up_kernel<<<g1, 256, 0, s>>>(*p);
    LAUNCHED();
    dim3 g2(p->n, ceil_div(p->d_model, 8));
    moe_down_kernel<<<g2, 256, 0, s>>>(*p);
    LAUNCHED();
}

__global__ void embed_kernel(stree_embed_params p) {
    int64_t i = blockIdx.y, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n && j < p.d) p.out[i * p.d + j] = p.table[(int64_t)p.tokens[i] * p.d + j] * p.mult;
}

extern "C" void stree_cuda_embed(const stree_embed_params *p) {
    dim3 grid(ceil_div(p->d, 256), p->n);
    embed_kernel<<<grid, 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void axpby_kernel(stree_axpby_params p) {
    int64_t i = blockIdx.y, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n || j >= p.cols) return;
    float *y = p.y + i * p.ldy + j;
    float v = p.alpha * p.x[i * p.ldx + j];
    *y = p.beta == 0.0f ? v : v + p.beta * *y;
}

extern "C" void stree_cuda_axpby(const stree_axpby_params *p) {
    dim3 grid(ceil_div(p->cols, 256), p->n);
    axpby_kernel<<<grid, 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
