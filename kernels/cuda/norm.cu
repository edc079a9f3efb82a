// CUDA backend: RMSNorm and the Mamba-2 gated norms (one block per row / group).
#include "kernels/cuda/common.cuh"

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
    }
}

extern "C" void stree_cuda_rmsnorm(const stree_rmsnorm_params *p) {
    int threads = p->dim >= 1024 ? 1024 : (p->dim + 31) / 32 * 32;
    rmsnorm_kernel<<<p->n, threads, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// grid (rows, groups)
__global__ void gated_norm_kernel(stree_gated_norm_params p) {
    __shared__ float red[32];
    int i = blockIdx.x, g = blockIdx.y, gs = p.dim / p.groups;
    const float *y = p.y + (int64_t)i * p.dim + (int64_t)g * gs;
    const float *z = p.z + i * p.ldz + (int64_t)g * gs;
    float *out = p.out + (int64_t)i * p.dim + (int64_t)g * gs;
    if (!p.maybe_w) {
        for (int j = threadIdx.x; j < gs; j += blockDim.x) out[j] = y[j] * silu_f(z[j]);
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
    }
}

extern "C" void stree_cuda_gated_norm(const stree_gated_norm_params *p) {
    int gs = p->dim / p->groups;
    int threads = gs >= 1024 ? 1024 : (gs + 31) / 32 * 32;
    dim3 grid(p->n, p->groups);
    gated_norm_kernel<<<grid, threads, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
