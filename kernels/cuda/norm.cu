// CUDA backend: RMSNorm and the Mamba-2 gated norms (one block per row / group). Both can also store
// their output in bf16 for the matmul that reads it next (maybe_*_wt), so it needs no copy kernel.
#include "kernels/cuda/common.cuh"

#define NORM_THREADS 256
#define NORM_VEC 4 /* float4 per thread held in registers: rows of up to 4096 on the fast path */

// rows whose float4 chunks fit NORM_VEC per thread, 16-byte aligned
static bool norm_vec_fits(int64_t len, int64_t ld_a, int64_t ld_b, const void *a, const void *b) {
    return len % 4 == 0 && len / 4 <= (int64_t)NORM_THREADS * NORM_VEC && ld_a % 4 == 0 && ld_b % 4 == 0 &&
           aligned16(a) && aligned16(b);
}

static int norm_threads(int64_t len, bool vec) {
    int64_t t = vec ? len / 4 : len;
    int cap = vec ? NORM_THREADS : 1024;
    return t >= cap ? cap : (int)((t + 31) / 32 * 32);
}

// y = w x / rms(x): x held in registers (float4 chunks c = tid + NORM_THREADS u), one block_sum
__global__ void __launch_bounds__(NORM_THREADS) rmsnorm_vec_kernel(stree_rmsnorm_params p) {
    __shared__ float red[32];
    const float *x = p.x + blockIdx.x * p.ldx;
    float *y = p.y + blockIdx.x * p.ldy;
    int c4 = p.dim / 4;
    float4 v[NORM_VEC], w[NORM_VEC];
    float ss = 0.0f;
#pragma unroll
    for (int u = 0; u < NORM_VEC; u++) {
        int c = threadIdx.x + NORM_THREADS * u;
        v[u] = c < c4 ? *reinterpret_cast<const float4 *>(x + 4 * c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        w[u] = c < c4 && p.maybe_w ? *reinterpret_cast<const float4 *>(p.maybe_w + 4 * c) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
        ss = dot4(v[u], v[u], ss);
    }
    ss = block_sum(ss, red); /* its barriers also order the reads of x before the writes (x may be y) */
    float inv = rsqrtf(ss / p.dim + p.eps), off = p.kind == STREE_NORM_RMS_OFFSET ? 1.0f : 0.0f;
#pragma unroll
    for (int u = 0; u < NORM_VEC; u++) {
        int c = threadIdx.x + NORM_THREADS * u;
        if (c >= c4) continue;
        float4 o = make_float4((w[u].x + off) * (v[u].x * inv), (w[u].y + off) * (v[u].y * inv),
                               (w[u].z + off) * (v[u].z * inv), (w[u].w + off) * (v[u].w * inv));
        *reinterpret_cast<float4 *>(y + 4 * c) = o;
        if (p.maybe_y_wt) store_bf16x4((__nv_bfloat16 *)p.maybe_y_wt + (int64_t)blockIdx.x * p.dim + 4 * c, o);
    }
}

__global__ void rmsnorm_kernel(stree_rmsnorm_params p) {
    __shared__ float red[32];
    const float *x = p.x + blockIdx.x * p.ldx;
    float *y = p.y + blockIdx.x * p.ldy;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < p.dim; j += blockDim.x) ss += x[j] * x[j];
    ss = block_sum(ss, red);
    float inv = rsqrtf(ss / p.dim + p.eps);
    __syncthreads(); // x may alias y
    for (int j = threadIdx.x; j < p.dim; j += blockDim.x) {
        float w = p.maybe_w ? p.maybe_w[j] : 1.0f;
        if (p.kind == STREE_NORM_RMS_OFFSET) w += 1.0f;
        y[j] = w * (x[j] * inv);
        if (p.maybe_y_wt) ((__nv_bfloat16 *)p.maybe_y_wt)[(int64_t)blockIdx.x * p.dim + j] = __float2bfloat16(y[j]);
    }
}

extern "C" void stree_cuda_rmsnorm(const stree_rmsnorm_params *p) {
    bool vec = norm_vec_fits(p->dim, p->ldx, p->ldy, p->x, p->y) && aligned16(p->maybe_w) &&
               ((uintptr_t)p->maybe_y_wt & 7) == 0;
    int threads = norm_threads(p->dim, vec);
    if (vec) rmsnorm_vec_kernel<<<p->n, threads, 0, stree_cuda_stream()>>>(*p);
    else rmsnorm_kernel<<<p->n, threads, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__device__ __forceinline__ float4 silu4(float4 z) { return make_float4(silu_f(z.x), silu_f(z.y), silu_f(z.z), silu_f(z.w)); }
__device__ __forceinline__ float4 mul4(float4 a, float4 b) { return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w); }

// grid (rows, groups): y and z of the group held in registers
__global__ void __launch_bounds__(NORM_THREADS) gated_norm_vec_kernel(stree_gated_norm_params p) {
    __shared__ float red[32];
    int i = blockIdx.x, g = blockIdx.y, gs = p.dim / p.groups, c4 = gs / 4;
    const float *y = p.y + (int64_t)i * p.dim + (int64_t)g * gs;
    const float *z = p.z + i * p.ldz + (int64_t)g * gs;
    float *out = p.out + (int64_t)i * p.dim + (int64_t)g * gs;
    __nv_bfloat16 *out_wt = p.maybe_out_wt ? (__nv_bfloat16 *)p.maybe_out_wt + (int64_t)i * p.dim + (int64_t)g * gs : NULL;
    float4 h[NORM_VEC], sz[NORM_VEC];
    float ss = 0.0f;
#pragma unroll
    for (int u = 0; u < NORM_VEC; u++) {
        int c = threadIdx.x + NORM_THREADS * u;
        h[u] = sz[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (c >= c4) continue;
        float4 yv = *reinterpret_cast<const float4 *>(y + 4 * c);
        sz[u] = silu4(*reinterpret_cast<const float4 *>(z + 4 * c));
        h[u] = p.maybe_w && p.norm_before_gate ? yv : mul4(yv, sz[u]);
        ss = dot4(h[u], h[u], ss);
    }
    float4 w[NORM_VEC]; /* loaded before the reduction's barriers */
#pragma unroll
    for (int u = 0; u < NORM_VEC; u++) {
        int c = threadIdx.x + NORM_THREADS * u;
        w[u] = p.maybe_w && c < c4 ? *reinterpret_cast<const float4 *>(p.maybe_w + (int64_t)g * gs + 4 * c) : h[u];
    }
    float inv = 1.0f;
    if (p.maybe_w) inv = rsqrtf(block_sum(ss, red) / gs + p.eps);
#pragma unroll
    for (int u = 0; u < NORM_VEC; u++) {
        int c = threadIdx.x + NORM_THREADS * u;
        if (c >= c4) continue;
        float4 o = h[u];
        if (p.maybe_w) {
            o = make_float4(w[u].x * (o.x * inv), w[u].y * (o.y * inv), w[u].z * (o.z * inv), w[u].w * (o.w * inv));
            if (p.norm_before_gate) o = mul4(o, sz[u]);
        }
        *reinterpret_cast<float4 *>(out + 4 * c) = o;
        if (out_wt) store_bf16x4(out_wt + 4 * c, o);
    }
}

__global__ void gated_norm_kernel(stree_gated_norm_params p) {
    __shared__ float red[32];
    int i = blockIdx.x, g = blockIdx.y, gs = p.dim / p.groups;
    const float *y = p.y + (int64_t)i * p.dim + (int64_t)g * gs;
    const float *z = p.z + i * p.ldz + (int64_t)g * gs;
    float *out = p.out + (int64_t)i * p.dim + (int64_t)g * gs;
    __nv_bfloat16 *out_wt = p.maybe_out_wt ? (__nv_bfloat16 *)p.maybe_out_wt + (int64_t)i * p.dim + (int64_t)g * gs : NULL;
    if (!p.maybe_w) {
        for (int j = threadIdx.x; j < gs; j += blockDim.x) {
            out[j] = y[j] * silu_f(z[j]);
            if (out_wt) out_wt[j] = __float2bfloat16(out[j]);
        }
        return;
    }
    float ss = 0.0f;
    for (int j = threadIdx.x; j < gs; j += blockDim.x) {
        float h = p.norm_before_gate ? y[j] : y[j] * silu_f(z[j]);
        ss += h * h;
    }
    ss = block_sum(ss, red);
    float inv = rsqrtf(ss / gs + p.eps);
    const float *w = p.maybe_w + (int64_t)g * gs;
    for (int j = threadIdx.x; j < gs; j += blockDim.x) {
        float h = p.norm_before_gate ? y[j] : y[j] * silu_f(z[j]);
        h = w[j] * (h * inv);
        out[j] = p.norm_before_gate ? h * silu_f(z[j]) : h;
        if (out_wt) out_wt[j] = __float2bfloat16(out[j]);
    }
}

extern "C" void stree_cuda_gated_norm(const stree_gated_norm_params *p) {
    int gs = p->dim / p->groups;
    bool vec = norm_vec_fits(gs, p->dim, p->ldz, p->y, p->z) && aligned16(p->out) && aligned16(p->maybe_w) &&
               ((uintptr_t)p->maybe_out_wt & 7) == 0;
    int threads = norm_threads(gs, vec);
    dim3 grid(p->n, p->groups);
    if (vec) gated_norm_vec_kernel<<<grid, threads, 0, stree_cuda_stream()>>>(*p);
    else gated_norm_kernel<<<grid, threads, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
