// How fast do weights stream under each access pattern the skinny matmul could use? Kernels that only
// read bf16 weight rows (xor of the words; optionally an x tile and the mma of the real kernel), 128 rows
// per block, cp.async into a 4-stage pipeline or straight into registers. On the GPU machine:
//   nvcc -arch=sm_90 -std=c++17 -O3 -o /tmp/stream bench/micro/weight_stream.cu && /tmp/stream
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
#define STAGES 4
__device__ __forceinline__ void cp16(void *s, const void *g) { unsigned d = (unsigned)__cvta_generic_to_shared(s); asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(g)); }
__device__ __forceinline__ void cp16z(void *s, const void *g, bool ok) { unsigned d = (unsigned)__cvta_generic_to_shared(s); asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(g), "r"(ok ? 16 : 0)); }
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N> __device__ __forceinline__ void waitg() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
// PAT 0: per-thread chunks rows g,g+8 (x2 mt), cols 8q, 32+8q (the skinny kernel); PAT 1: each warp instruction = 512 contiguous B of 4 rows x 128 B;
// PAT 2: the block's 16 KB step is contiguous (repacked layout)
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
template <int PAT, bool XT = false, bool MMA = false>
__global__ void __launch_bounds__(128) stream_cp(const uint4 *w, int m, int k, int kslice, float *out, const float *x = nullptr) {
  extern __shared__ uint4 sm[];
  float4 *xs = reinterpret_cast<float4 *>(sm + STAGES * 1024); // [stage][8 tok][16]
  float dacc[2][4] = {};
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
  int64_t row0 = (int64_t)blockIdx.y * 128 + warp * 32;
  int kbeg = blockIdx.z * kslice, nk = kslice / 64;
  uint4 *my = sm + warp * 256 + lane; // [stage][warp][8][32]
  auto issue = [&](int st, int kb) {
    uint4 *slot = my + st * 1024;
    for (int j = 0; j < 8; j++) {
      const uint4 *src;
      if (PAT == 0 || PAT == 3) { int mt = j >> 2, r = (j >> 1) & 1, h = j & 1; src = w + ((row0 + 16 * mt + 8 * r + g) * k + kb + 32 * h + 8 * q) / 8; }
      else if (PAT == 1) { int row = j * 4 + (lane >> 3); src = w + ((row0 + row) * k + kb) / 8 + (lane & 7); }
      else { int64_t blockbase = (((int64_t)blockIdx.y * (k / 64)) + (kb / 64)) * 1024; src = w + blockbase + warp * 256 + j * 32 + lane; }
      if (PAT == 3) cp16z(slot + j * 32, src, kb < k); else cp16(slot + j * 32, src);
    }
    if (XT) { int c = threadIdx.x, t = c >> 4; cp16z(xs + st * 128 + c, t == 0 ? x + kb + 4 * (c & 15) : x, t == 0); }
  };
  for (int s = 0; s < STAGES - 1; s++) { if (s < nk) issue(s, kbeg + s * 64); commit(); }
  uint32_t acc = 0;
  for (int kt = 0; kt < nk; kt++) {
    waitg<STAGES - 2>();
    __syncthreads();
    int a = kt + STAGES - 1; if (a < nk) issue(a % STAGES, kbeg + a * 64); commit();
    const uint4 *st = my + (kt % STAGES) * 1024;
    uint4 wf[8];
    for (int j = 0; j < 8; j++) wf[j] = st[j * 32];
    uint32_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    if (XT) { const float4 *xt = xs + (kt % STAGES) * 128; for (int j = 0; j < 4; j++) { float4 v = xt[g * 16 + 2 * q + j]; b[2 * j] = __float_as_uint(v.x) ^ __float_as_uint(v.y); b[2 * j + 1] = __float_as_uint(v.z); } }
    if (MMA) {
      for (int mt = 0; mt < 2; mt++) for (int s4 = 0; s4 < 4; s4++) { int h = s4 >> 1; uint4 lo = wf[(mt * 2) * 2 + h], hi = wf[(mt * 2 + 1) * 2 + h];
        mma_bf16(dacc[mt], (s4 & 1) ? lo.z : lo.x, (s4 & 1) ? hi.z : hi.x, (s4 & 1) ? lo.w : lo.y, (s4 & 1) ? hi.w : hi.y, b[2 * s4], b[2 * s4 + 1]); }
    } else {
      for (int j = 0; j < 8; j++) acc ^= wf[j].x + wf[j].y + wf[j].z + wf[j].w + b[j];
    }
  }
  if (acc == 0x12345678u || dacc[0][0] + dacc[1][3] == 1.2345f) out[0] = 1.0f;
}
// direct to registers, one step ahead, 16 rows x 64 cols per warp (v1)
__global__ void __launch_bounds__(128) stream_reg(const uint4 *w, int m, int k, int kslice, float *out) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
  int64_t row0 = ((int64_t)blockIdx.y * 4 + warp) * 16;
  int kbeg = blockIdx.z * kslice, kend = kbeg + kslice;
  const uint4 *r0 = w + (row0 + g) * k / 8, *r1 = w + (row0 + g + 8) * k / 8;
  uint32_t acc = 0;
  uint4 c[4], n[4];
  auto ld = [&](uint4 (&d)[4], int kb) { d[0] = __ldcs(r0 + (kb + 8 * q) / 8); d[1] = __ldcs(r0 + (kb + 32 + 8 * q) / 8); d[2] = __ldcs(r1 + (kb + 8 * q) / 8); d[3] = __ldcs(r1 + (kb + 32 + 8 * q) / 8); };
  ld(c, kbeg);
  for (int kb = kbeg; kb < kend; kb += 64) {
    if (kb + 64 < kend) ld(n, kb + 64);
    for (int j = 0; j < 4; j++) acc ^= c[j].x + c[j].y + c[j].z + c[j].w;
    for (int j = 0; j < 4; j++) c[j] = n[j];
  }
  if (acc == 0x12345678u) out[0] = 1.0f;
}
int main() {
  int shapes[][2] = {{18560, 4096}, {4096, 8192}, {21504, 4096}};
  float *out; cudaMalloc(&out, 4);
  for (auto &sh : shapes) {
    int m = sh[0], k = sh[1]; size_t bytes = (size_t)m * k * 2;
    uint4 *w; cudaMalloc(&w, bytes); cudaMemset(w, 1, bytes);
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    auto run = [&](const char *name, auto launch) {
      for (int i = 0; i < 3; i++) launch();
      cudaEventRecord(a); for (int i = 0; i < 20; i++) launch(); cudaEventRecord(b); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b); double us = ms * 1e3 / 20;
      printf("m=%6d k=%5d %-28s %7.1f us %6.0f GB/s %s\n", m, k, name, us, bytes / us / 1e3, cudaGetErrorString(cudaGetLastError()));
    };
    size_t smem = STAGES * 4 * 256 * 16;
    cudaFuncSetAttribute(stream_cp<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    cudaFuncSetAttribute(stream_cp<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    cudaFuncSetAttribute(stream_cp<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    cudaFuncSetAttribute(stream_cp<3>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    float *x; cudaMalloc(&x, (size_t)k * 4 * 8); cudaMemset(x, 0, (size_t)k * 32);
    size_t smx = STAGES * 4 * 256 * 16 + STAGES * 128 * 16;
    cudaFuncSetAttribute(stream_cp<0, true, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smx);
    cudaFuncSetAttribute(stream_cp<0, false, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smx);
    cudaFuncSetAttribute(stream_cp<0, true, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smx);
    { dim3 grid(1, m / 128, 1);
      run("cp scattered +x", [&] { stream_cp<0, true, false><<<grid, 128, smx>>>(w, m, k, k, out, x); });
      run("cp scattered +mma", [&] { stream_cp<0, false, true><<<grid, 128, smx>>>(w, m, k, k, out, x); });
      run("cp scattered +x +mma", [&] { stream_cp<0, true, true><<<grid, 128, smx>>>(w, m, k, k, out, x); });
    }
    for (int S : {1}) {
      if (k / S < 256) continue;
      dim3 grid(1, m / 128, S);
      char nm[64];
      snprintf(nm, 64, "cp scattered S=%d (%d blk)", S, grid.y * S); run(nm, [&] { stream_cp<0><<<grid, 128, smem>>>(w, m, k, k / S, out); });
      snprintf(nm, 64, "cp scattered zfill S=%d", S); run(nm, [&] { stream_cp<3><<<grid, 128, smem>>>(w, m, k, k / S, out); });
      snprintf(nm, 64, "cp rows-512B S=%d", S); run(nm, [&] { stream_cp<1><<<grid, 128, smem>>>(w, m, k, k / S, out); });
      snprintf(nm, 64, "cp packed S=%d", S); run(nm, [&] { stream_cp<2><<<grid, 128, smem>>>(w, m, k, k / S, out); });
      dim3 g2(1, m / 64, S);
      snprintf(nm, 64, "reg v1 S=%d (%d blk)", S, g2.y * S); run(nm, [&] { stream_reg<<<g2, 128>>>(w, m, k, k / S, out); });
    }
    cudaFree(w);
  }
}
