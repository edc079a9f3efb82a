// Shared by the CUDA backend's files: the stream, the cuBLASLt GEMM, sticky error reporting.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/ops.h"

cudaStream_t stree_cuda_stream(void);
// The current device's SM count (at least 1), read once
int stree_cuda_sm_count(void);
// STREE_CUDA_BATCH_INVARIANT=1: a node's results do not depend on how many nodes share the step (linear.cu)
bool stree_cuda_batch_invariant(void);
// The cuBLASLt handle and workspace (gemm.cu); made before a capture starts.
void stree_cuda_gemm_init(void);
// y[n, m] (ldy) = alpha * x[n, k] w[m, k]^T + beta * y: bf16 w and x, fp32 accumulation and y
extern "C" void stree_cuda_gemm_bf16(int m, int n, int k, float alpha, const void *w, const void *x, float beta, float *y,
                                     int64_t ldy);
// Records the first failure (file:line and the CUDA / cuBLAS message) for take_error.
void stree_cuda_note(const char *what, const char *file, int line);

#define CUDA_OK(call)                                                                 \
    do {                                                                              \
        cudaError_t e_ = (call);                                                      \
        if (e_ != cudaSuccess) stree_cuda_note(cudaGetErrorString(e_), __FILE__, __LINE__); \
    } while (0)
#define CUBLAS_OK(call)                                                               \
    do {                                                                              \
        cublasStatus_t s_ = (call);                                                   \
        if (s_ != CUBLAS_STATUS_SUCCESS) stree_cuda_note(cublasLtGetStatusString(s_), __FILE__, __LINE__); \
    } while (0)
#define LAUNCHED() CUDA_OK(cudaGetLastError())

static inline __host__ __device__ int ceil_div(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

// 16-byte aligned (NULL is)
static inline __host__ __device__ bool aligned16(const void *q) { return ((uintptr_t)q & 15) == 0; }

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + __expf(-x)); }

// acc + a . b, in the order x, y, z, w
__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
    return fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, acc))));
}

// 4 consecutive floats of a row at column d (zero past `len`): one 16-byte load when `vec`
__device__ __forceinline__ float4 load4(const float *s, int d, int len, bool vec) {
    if (vec) return *reinterpret_cast<const float4 *>(s);
    return make_float4(s[0], d + 1 < len ? s[1] : 0.0f, d + 2 < len ? s[2] : 0.0f, d + 3 < len ? s[3] : 0.0f);
}

// relu(v)^2 per lane (the relu2 MLP's activation, applied as a matmul reads its input)
__device__ __forceinline__ float4 relu2_f4(float4 v) {
    v.x = v.x > 0.0f ? v.x * v.x : 0.0f, v.y = v.y > 0.0f ? v.y * v.y : 0.0f;
    v.z = v.z > 0.0f ? v.z * v.z : 0.0f, v.w = v.w > 0.0f ? v.w * v.w : 0.0f;
    return v;
}

// four floats rounded to bf16, one 8-byte store (dst 8-byte aligned)
__device__ __forceinline__ void store_bf16x4(__nv_bfloat16 *dst, float4 v) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 u;
    u.x = *reinterpret_cast<unsigned *>(&lo), u.y = *reinterpret_cast<unsigned *>(&hi);
    *reinterpret_cast<uint2 *>(dst) = u;
}

// Asynchronous global -> shared copies (sm_80+): 16 bytes bypassing L1, or 4 bytes; zero-filled when
// !valid. A thread's copies complete at cp_async_wait<N> (all but its N newest committed groups).
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid) {
    unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async4(void *smem, const void *gmem, bool valid) {
    unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit(void) { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Grows a scratch buffer to at least `bytes` (twice that, and at least min_bytes). The old buffer is
// kept, not freed: a captured graph may still read it. Growth happens in the eager pass that precedes
// capture.
static inline void grow_scratch(void **buf, size_t *cap, size_t bytes, size_t min_bytes) {
    if (bytes <= *cap) return;
    *cap = bytes * 2 > min_bytes ? bytes * 2 : min_bytes;
    CUDA_OK(cudaMalloc(buf, *cap));
}

// Sum over a warp (fixed order: deterministic).
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over a block of blockDim.x threads (multiple of 32, <= 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float *smem32) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) smem32[warp] = v;
    __syncthreads();
    float t = lane < n_warps ? smem32[lane] : 0.0f;
    return warp_sum(t);
}

// C entry points of each file (table.cu gathers them)
extern "C" {
void stree_cuda_matmul(const stree_matmul_params *p);
bool stree_cuda_skinny_fits(const stree_matmul_params *p);
void stree_cuda_skinny_matmul(const stree_matmul_params *p);
void stree_cuda_rmsnorm(const stree_rmsnorm_params *p);
void stree_cuda_gated_norm(const stree_gated_norm_params *p);
void stree_cuda_rope(const stree_rope_params *p);
void stree_cuda_attn_tree(const stree_attn_tree_params *p);
void stree_cuda_conv_tree(const stree_conv_tree_params *p);
void stree_cuda_mamba2_scan_tree(const stree_mamba2_scan_params *p);
void stree_cuda_mamba2_commit(const stree_mamba2_commit_params *p);
void stree_cuda_conv_commit(const stree_conv_commit_params *p);
void stree_cuda_kv_commit(const stree_kv_commit_params *p);
void stree_cuda_ffn_act(const stree_ffn_act_params *p);
void stree_cuda_route(const stree_route_params *p);
void stree_cuda_commit_all(const stree_commit_all_params *p);
void stree_cuda_embed(const stree_embed_params *p);
void stree_cuda_axpby(const stree_axpby_params *p);
void stree_cuda_topk(const stree_topk_params *p);
void stree_cuda_moe(const stree_moe_params *p);
void stree_cuda_sample_probs(const stree_sample_probs_params *p);
void stree_cuda_sample_draw(const stree_sample_draw_params *p);
void stree_cuda_sample_accept(const stree_sample_accept_params *p);
void *stree_cuda_alloc(size_t bytes);
void stree_cuda_free(void *p);
void stree_cuda_upload(void *dst, const void *src, size_t bytes);
void stree_cuda_download(void *dst, const void *src, size_t bytes);
void stree_cuda_copy(void *dst, const void *src, size_t bytes);
void stree_cuda_zero(void *dst, size_t bytes);
void *stree_cuda_upload_matrix(const float *src, int64_t rows, int64_t cols);
void stree_cuda_sync(void);
void *stree_cuda_random_matrix(int64_t rows, int64_t cols, uint64_t seed);
float *stree_cuda_random_vector(int64_t n, uint64_t seed, float lo, float hi);
const char *stree_cuda_take_error(void);
size_t stree_cuda_bytes_in_use(void);
void stree_cuda_graph_begin(void);
void *stree_cuda_graph_end(void);
void stree_cuda_graph_launch(void *graph);
void stree_cuda_graph_free(void *graph);
}
