// The skinny matmul (batch-invariant mode) against the default routing (GEMV for one row, cuBLAS for
// more) and the GEMV, on the 8B-like matmul shapes. On the GPU machine, from bench/micro:
//   nvcc -arch=sm_90 -std=c++17 -O3 -I../.. -I../../include -o /tmp/skinny skinny_vs_cublas.cu -lcublasLt
//   /tmp/skinny LABEL [memset]     (memset: constant weights instead of a pattern)
#include <stdio.h>
#include <stdlib.h>
#include "kernels/cuda/skinny.cu"
#include "kernels/cuda/linear.cu"
#include "kernels/cuda/gemm.cu"
static cudaStream_t g_s;
cudaStream_t stree_cuda_stream(void) { return g_s; }
int stree_cuda_sm_count(void) { int n = 0; cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0); return n > 0 ? n : 1; }
void stree_cuda_note(const char *w, const char *f, int l) { fprintf(stderr, "ERR %s %s:%d\n", w, f, l); exit(1); }
__global__ void fill(__nv_bfloat16 *w, size_t n) { size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; if (i < n) w[i] = __float2bfloat16((float)((i * 2654435761u) % 1000) * 1e-4f - 0.05f); }
__global__ void fillf(float *w, size_t n) { size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; if (i < n) w[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f; }
typedef void (*fn)(const stree_matmul_params *);
static void gemv1(const stree_matmul_params *p) { launch_gemv<1>(p, g_s); }
static double timeit(fn f, stree_matmul_params *p) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; i++) f(p);
  cudaEventRecord(a, g_s);
  for (int i = 0; i < 20; i++) f(p);
  cudaEventRecord(b, g_s); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b); return ms * 1e3 / 20;
}
int main(int argc, char **argv) {
  cudaStreamCreate(&g_s);
  int shapes[][2] = {{18560, 4096}, {4096, 8192}, {21504, 4096}, {4096, 21504}, {131072, 4096}};
  const char *tag = argc > 1 ? argv[1] : "";
  for (auto &sh : shapes) {
    int m = sh[0], k = sh[1]; size_t nw = (size_t)m * k;
    __nv_bfloat16 *w; float *x, *y; cudaMalloc(&w, nw * 2); cudaMalloc(&x, 128 * (size_t)k * 4); cudaMalloc(&y, 128 * (size_t)m * 4);
    if (argc > 2) cudaMemset(w, 1, nw * 2); else fill<<<(nw + 255) / 256, 256>>>(w, nw); fillf<<<(128 * k + 255) / 256, 256>>>(x, 128 * (size_t)k);
    cudaDeviceSynchronize();
    for (int n : {1, 16, 64, 128}) {
      stree_matmul_params p = {}; p.x = x; p.w = w; p.wtype = STREE_WTYPE_BF16; p.y = y; p.n = n; p.k = k; p.m = m; p.ldx = k; p.ldy = m; p.alpha = 1.0f;
      double ts = timeit(stree_cuda_skinny_matmul, &p), tc = timeit(stree_cuda_matmul, &p);
      double tg = n == 1 ? timeit(gemv1, &p) : 0;
      double gb = nw * 2 / 1e3;
      printf("%s m=%6d k=%5d n=%3d  skinny %7.1f us (%5.0f GB/s)  default %7.1f us (%5.0f GB/s)  gemv %7.1f us (%5.0f GB/s)\n", tag, m, k, n, ts, gb / ts, tc, gb / tc, tg, tg > 0 ? gb / tg : 0.0);
    }
    cudaFree(w); cudaFree(x); cudaFree(y);
  }
  return 0;
}
