// CUDA backend: device memory, the stream, graphs, error reporting.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

static cudaStream_t g_stream;
static char g_error[512];
static int g_has_error;

void stree_cuda_note(const char *what, const char *file, int line) {
    if (g_has_error) return;
    snprintf(g_error, sizeof g_error, "CUDA: %s (%s:%d)", what, file, line);
    g_has_error = 1;
}

extern "C" const char *stree_cuda_take_error(void) {
    if (!g_has_error) return NULL;
    g_has_error = 0;
    return g_error;
}

cudaStream_t stree_cuda_stream(void) {
    if (!g_stream) CUDA_OK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    return g_stream;
}

int stree_cuda_sm_count(void) {
    static int n = 0;
    if (!n) {
        int dev = 0;
        CUDA_OK(cudaGetDevice(&dev));
        CUDA_OK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
        if (n <= 0) n = 1;
    }
    return n;
}

extern "C" int stree_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

extern "C" void *stree_cuda_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    CUDA_OK(cudaMemsetAsync(p, 0, bytes ? bytes : 1, stree_cuda_stream()));
    return p;
}

extern "C" void stree_cuda_free(void *p) {
    if (!p) return;
    CUDA_OK(cudaStreamSynchronize(stree_cuda_stream()));
    CUDA_OK(cudaFree(p));
}

extern "C" void stree_cuda_upload(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    // the host buffer may be reused right after: copy synchronously with respect to the host
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stree_cuda_stream()));
    CUDA_OK(cudaStreamSynchronize(stree_cuda_stream()));
}

extern "C" void stree_cuda_download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stree_cuda_stream()));
    CUDA_OK(cudaStreamSynchronize(stree_cuda_stream()));
}

extern "C" void stree_cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stree_cuda_stream()));
}

extern "C" void stree_cuda_zero(void *dst, size_t bytes) {
    if (bytes) CUDA_OK(cudaMemsetAsync(dst, 0, bytes, stree_cuda_stream()));
}

extern "C" void *stree_cuda_upload_matrix(const float *src, int64_t rows, int64_t cols) {
    size_t n = (size_t)rows * (size_t)cols;
    __nv_bfloat16 *host = (__nv_bfloat16 *)malloc((n ? n : 1) * sizeof *host);
    if (!host) return NULL;
    for (size_t i = 0; i < n; i++) host[i] = __float2bfloat16(src[i]); // round to nearest even
    void *dev = stree_cuda_alloc(n * sizeof *host);
    if (dev) stree_cuda_upload(dev, host, n * sizeof *host);
    free(host);
    return dev;
}

extern "C" void stree_cuda_sync(void) { CUDA_OK(cudaStreamSynchronize(stree_cuda_stream())); }

__global__ void random_bf16_kernel(__nv_bfloat16 *p, int64_t n, uint64_t seed, float scale) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        p[i] = __float2bfloat16((2.0f * stree_random_unit(seed, (uint64_t)i) - 1.0f) * scale);
}

__global__ void random_f32_kernel(float *p, int64_t n, uint64_t seed, float lo, float hi) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        p[i] = lo + (hi - lo) * stree_random_unit(seed, (uint64_t)i);
}

extern "C" void *stree_cuda_random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
    int64_t n = rows * cols;
    __nv_bfloat16 *p = (__nv_bfloat16 *)stree_cuda_alloc((size_t)n * sizeof *p);
    if (!p) return NULL;
    float scale = 1.0f / sqrtf((float)(cols > 0 ? cols : 1));
    random_bf16_kernel<<<1024, 256, 0, stree_cuda_stream()>>>(p, n, seed, scale);
    LAUNCHED();
    return p;
}

extern "C" float *stree_cuda_random_vector(int64_t n, uint64_t seed, float lo, float hi) {
    float *p = (float *)stree_cuda_alloc((size_t)n * sizeof *p);
    if (!p) return NULL;
    random_f32_kernel<<<256, 256, 0, stree_cuda_stream()>>>(p, n, seed, lo, hi);
    LAUNCHED();
    return p;
}

extern "C" void stree_cuda_graph_begin(void) {
    stree_cuda_gemm_init(); /* the handle and workspace, outside the capture */
    CUDA_OK(cudaStreamBeginCapture(stree_cuda_stream(), cudaStreamCaptureModeThreadLocal));
}

extern "C" void *stree_cuda_graph_end(void) {
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(stree_cuda_stream(), &graph);
    if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return NULL; /* the caller falls back to launching the ops one by one */
    }
    return exec;
}

extern "C" void stree_cuda_graph_launch(void *graph) {
    CUDA_OK(cudaGraphLaunch((cudaGraphExec_t)graph, stree_cuda_stream()));
}

extern "C" void stree_cuda_graph_free(void *graph) {
    if (graph) CUDA_OK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

extern "C" size_t stree_cuda_bytes_in_use(void) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return total_b - free_b;
}
