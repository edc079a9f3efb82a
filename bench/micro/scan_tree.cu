// The Mamba-2 tree scan, the gated norm and RMSNorm of the 8B-like shape (128 heads x 64, state 128,
// 8 groups; d_model 4096) on random trees of depth <= 8, like stree_bench's. On the GPU machine, from
// bench/micro:
//   nvcc -arch=sm_90 -std=c++17 -O3 -lineinfo -I../.. -I../../include -o /tmp/scan scan_tree.cu
//   /tmp/scan            (ncu -k regex:scan_kernel -c 1 /tmp/scan 64   profiles one 64-node scan)
#include <stdio.h>
#include <stdlib.h>
#include "kernels/cuda/mamba2.cu"
#include "kernels/cuda/norm.cu"
static cudaStream_t g_s;
cudaStream_t stree_cuda_stream(void) { return g_s; }
void stree_cuda_note(const char *w, const char *f, int l) { fprintf(stderr, "ERR %s %s:%d\n", w, f, l); exit(1); }
__global__ void fillf(float *w, size_t n, float scale) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (i < n) w[i] = ((float)((i * 40503u) % 1000) * 1e-3f - 0.5f) * scale;
}
static float *rand_dev(size_t n, float scale) {
  float *d; cudaMalloc(&d, n * 4); fillf<<<(unsigned)((n + 255) / 256), 256>>>(d, n, scale); return d;
}
template <class F> static double timeit(F f, int reps) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  f();
  cudaEventRecord(a, g_s);
  for (int i = 0; i < reps; i++) f();
  cudaEventRecord(b, g_s); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b); return ms * 1e3 / reps;
}
int main(int argc, char **argv) {
  cudaStreamCreate(&g_s);
  int only = argc > 1 ? atoi(argv[1]) : 0, reps = only ? 1 : 50;
  const int H = 128, P = 64, N = 128, G = 8, D = 4096, I = H * P, Cd = I + 2 * G * N, ip = 2 * I + 2 * G * N + H;
  const int MAXN = 256;
  float *xbc = rand_dev((size_t)MAXN * Cd, 1.0f), *proj = rand_dev((size_t)MAXN * ip, 1.0f);
  float *state = rand_dev((size_t)H * P * N, 1.0f), *Alog = rand_dev(H, 1.0f), *Dp = rand_dev(H, 1.0f), *dtb = rand_dev(H, 1.0f);
  float *dt, *c, *y, *g, *h, *xn; void *wt;
  cudaMalloc(&dt, MAXN * H * 4); cudaMalloc(&c, MAXN * H * 4); cudaMalloc(&y, (size_t)MAXN * I * 4);
  cudaMalloc(&g, (size_t)MAXN * I * 4); cudaMalloc(&wt, (size_t)MAXN * I * 2);
  h = rand_dev((size_t)MAXN * D, 1.0f); cudaMalloc(&xn, (size_t)MAXN * D * 4);
  float *nw = rand_dev(I, 1.0f);
  int32_t *parent, *depth; cudaMalloc(&parent, MAXN * 4); cudaMalloc(&depth, MAXN * 4);
  for (int n : {1, 16, 64, 128, 256}) {
    if (only && n != only) continue;
    int32_t hp[MAXN], hd[MAXN]; /* a random tree of depth <= 8 */
    srand(7); hp[0] = -1; hd[0] = 0;
    for (int i = 1; i < n; i++) { do hp[i] = rand() % i; while (hd[hp[i]] >= 8); hd[i] = hd[hp[i]] + 1; }
    cudaMemcpy(parent, hp, n * 4, cudaMemcpyHostToDevice); cudaMemcpy(depth, hd, n * 4, cudaMemcpyHostToDevice);
    stree_tree_view tv = {n, parent, depth};
    stree_mamba2_scan_params sp = {};
    sp.xbc = xbc; sp.dt_raw = proj + 2 * I + 2 * G * N; sp.ld_dt = ip; sp.dt_bias = dtb; sp.dt_min = 0.001f; sp.dt_max = 100.0f;
    sp.dt = dt; sp.A_log = Alog; sp.D = Dp; sp.state = state; sp.c = c; sp.y = y; sp.tree = tv;
    sp.n_heads = H; sp.head_dim = P; sp.n_groups = G; sp.d_state = N;
    stree_gated_norm_params gp = {}; gp.y = y; gp.z = proj; gp.maybe_w = nw; gp.out = g; gp.n = n; gp.dim = I; gp.groups = G;
    gp.ldz = ip; gp.eps = 1e-5f; gp.maybe_out_wt = wt;
    stree_rmsnorm_params rp = {}; rp.x = h; rp.maybe_w = nw; rp.y = xn; rp.n = n; rp.dim = D; rp.ldx = D; rp.ldy = D; rp.eps = 1e-5f;
    rp.maybe_y_wt = wt;
    double ts = timeit([&] { stree_cuda_mamba2_scan_tree(&sp); }, reps);
    double tg = timeit([&] { stree_cuda_gated_norm(&gp); }, reps);
    double tr = timeit([&] { stree_cuda_rmsnorm(&rp); }, reps);
    printf("n=%3d  scan %7.1f us  gated_norm %6.1f us  rmsnorm %6.1f us\n", n, ts, tg, tr);
  }
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) { fprintf(stderr, "%s\n", cudaGetErrorString(e)); return 1; }
  return 0;
}
