// CUDA backend: tree causal conv, Mamba-2 dt and the tree scan with path-cumulative log-decays
// (DESIGN.md §3.2–3.3). No per-node state is formed; the commits are in commit.cu.
#include <math.h>

#include "kernels/cuda/common.cuh"

#define MAX_STATE 256

// one thread per (node, channel)
__global__ void conv_tree_kernel(stree_conv_tree_params p) {
    int i = blockIdx.y, ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= p.channels) return;
    int node = i, d = p.tree.depth[i];
    float acc = p.maybe_bias ? p.maybe_bias[ch] : 0.0f;
    for (int s = p.k - 1; s >= 0; s--) {
        float v;
        if (node >= 0) {
            v = p.x[node * p.ldx + ch];
            if (node == i && p.maybe_x_copy) p.maybe_x_copy[(int64_t)i * p.channels + ch] = v;
            node = p.tree.parent[node];
        } else {
            v = p.window[(int64_t)(s + d) * p.channels + ch];
        }
        acc += p.w[(int64_t)ch * p.k + s] * v;
    }
    p.out[(int64_t)i * p.channels + ch] = silu_f(acc);
}

extern "C" void stree_cuda_conv_tree(const stree_conv_tree_params *p) {
    dim3 grid(ceil_div(p->channels, 128), p->tree.n);
    conv_tree_kernel<<<grid, 128, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// dt = clamp(softplus(dt_raw + bias), dt_min, dt_max) of node j, head h
__device__ __forceinline__ float time_step(const stree_mamba2_scan_params &p, int j, int h) {
    float v = p.dt_raw[j * p.ld_dt + h] + p.dt_bias[h];
    v = v > 20.0f ? v : log1pf(expf(v));
    return fminf(fmaxf(v, p.dt_min), p.dt_max);
}

// dt_i and c_i = sum over path(i) of dt_j * A_h: one thread per (node, head) walks its own path
// (recomputing its ancestors' dt), so no node waits on another
__global__ void cumdecay_kernel(stree_mamba2_scan_params p) {
    int i = blockIdx.y, h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= p.n_heads) return;
    float A = -expf(p.A_log[h]), c = 0.0f;
    if (p.tree.depth[i] == i) { /* a chain from the root: independent loads, in flight together */
#pragma unroll 8
        for (int j = i; j >= 0; j--) c += time_step(p, j, h) * A;
    } else {
        for (int j = i; j >= 0; j = p.tree.parent[j]) c += time_step(p, j, h) * A;
    }
    p.dt[(int64_t)i * p.n_heads + h] = time_step(p, i, h);
    p.c[(int64_t)i * p.n_heads + h] = c;
}

#define SCAN_NODES 16
#define SCAN_PAIRS 1024
#define MAX_SCAN_P 256
// Block per (head h, chunk of SCAN_NODES nodes), both parts of y_i (DESIGN.md §3.2):
//   committed: y_i = e^{c_i} H0 C_i + D x_i — each row of H0 is read once per chunk (one warp,
//              coalesced) and used for every node of the chunk;
//   tree:      y_i += sum_{j in path(i)} e^{c_i - c_j} dt_j (C_i . B_j) x_j — the (node, ancestor)
//              pairs of the chunk are listed in rounds of up to SCAN_PAIRS, a warp reduces each
//              C_i . B_j, then each thread sums its (node, head-dim element) over its node's pairs.
__global__ void __launch_bounds__(256) scan_kernel(stree_mamba2_scan_params p) {
    __shared__ float C[SCAN_NODES][MAX_STATE];
    __shared__ float ys[SCAN_NODES][MAX_SCAN_P];
    __shared__ float coef[SCAN_PAIRS];      /* per pair: first e^{-c_j} dt_j, then the whole coefficient */
    __shared__ int pair_j[SCAN_PAIRS];
    __shared__ float c_pair[SCAN_PAIRS];
    __shared__ float c_node[SCAN_NODES];
    __shared__ int cursor[SCAN_NODES], remaining[SCAN_NODES], off[SCAN_NODES + 1];
    int h = blockIdx.x, i0 = blockIdx.y * SCAN_NODES;
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    int n_here = p.tree.n - i0 < SCAN_NODES ? p.tree.n - i0 : SCAN_NODES;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    bool vec4 = ((conv_dim | d_inner | N) & 3) == 0; /* B rows as 16-byte loads */
#pragma unroll
    for (int e = threadIdx.x; e < SCAN_NODES * MAX_STATE; e += blockDim.x) { /* zero past N and n_here */
        int k = e / MAX_STATE, n = e % MAX_STATE;
        C[k][n] = k < n_here && n < N ? p.xbc[(int64_t)(i0 + k) * conv_dim + d_inner + G * N + g * N + n] : 0.0f;
    }
    if (threadIdx.x < n_here) {
        cursor[threadIdx.x] = i0 + threadIdx.x;
        remaining[threadIdx.x] = p.tree.depth[i0 + threadIdx.x] + 1;
        c_node[threadIdx.x] = p.c[(int64_t)(i0 + threadIdx.x) * H + h];
    }
    __syncthreads();
    const float *H0 = p.state + (int64_t)h * P * N;
    const int ROWS = 4; /* state rows a warp loads at once: their loads overlap */
    for (int pp0 = warp; pp0 < P; pp0 += n_warps * ROWS) {
        float hrow[ROWS][MAX_STATE / 32];
#pragma unroll
        for (int t = 0; t < ROWS; t++) {
            int pp = pp0 + t * n_warps;
#pragma unroll
            for (int r = 0; r < MAX_STATE / 32; r++) {
                int n = lane + 32 * r;
                hrow[t][r] = pp < P && n < N ? H0[(int64_t)pp * N + n] : 0.0f;
            }
        }
#pragma unroll
        for (int t = 0; t < ROWS; t++) {
            int pp = pp0 + t * n_warps;
            if (pp >= P) break;
            for (int k = 0; k < n_here; k++) {
                float part = 0.0f;
#pragma unroll
                for (int r = 0; r < MAX_STATE / 32; r++) part += hrow[t][r] * C[k][lane + 32 * r];
                float dot = warp_sum(part);
                if (lane == 0) ys[k][pp] = __expf(c_node[k]) * dot; /* + D x_i at the end */
            }
        }
    }
    for (;;) {
        __syncthreads(); /* ys and the previous round's pairs are complete */
        if (threadIdx.x == 0) {
            int total = 0;
            for (int k = 0; k < n_here; k++) {
                off[k] = total;
                total += min(remaining[k], SCAN_PAIRS - total);
            }
            off[n_here] = total;
        }
        __syncthreads();
        int total = off[n_here];
        if (total == 0) break;
        if (threadIdx.x < n_here) { /* each node lists its next ancestors, nearest first */
            int k = threadIdx.x, j = cursor[k];
            if (p.tree.depth[i0 + k] == i0 + k) { /* a chain from the root: j, j-1, ... */
                for (int q = off[k]; q < off[k + 1]; q++) pair_j[q] = j--;
            } else {
                for (int q = off[k]; q < off[k + 1]; q++) {
                    pair_j[q] = j;
                    j = p.tree.parent[j];
                }
            }
            cursor[k] = j;
            remaining[k] -= off[k + 1] - off[k];
        }
        __syncthreads();
#pragma unroll 4
        for (int q = threadIdx.x; q < total; q += blockDim.x) { /* the pairs' decays, gathered in parallel */
            int j = pair_j[q];
            coef[q] = p.dt[(int64_t)j * H + h];
            c_pair[q] = p.c[(int64_t)j * H + h];
        }
        __syncthreads();
        for (int q = threadIdx.x; q < total; q += blockDim.x) { /* a thread per pair: C_i . B_j */
            int k = 0;
            while (off[k + 1] <= q) k++;
            const float *B_j = p.xbc + (int64_t)pair_j[q] * conv_dim + d_inner + g * N;
            float cb = 0.0f;
            if (vec4) {
#pragma unroll 8
                for (int n = 0; n < N; n += 4) {
                    float4 b = __ldg(reinterpret_cast<const float4 *>(B_j + n));
                    cb += C[k][n] * b.x + C[k][n + 1] * b.y + C[k][n + 2] * b.z + C[k][n + 3] * b.w;
                }
            } else {
                for (int n = 0; n < N; n++) cb += C[k][n] * B_j[n];
            }
            coef[q] = __expf(c_node[k] - c_pair[q]) * coef[q] * cb;
        }
        __syncthreads();
        for (int e = threadIdx.x; e < n_here * P; e += blockDim.x) {
            int k = e / P, pp = e % P;
            float y = 0.0f;
#pragma unroll 4
            for (int q = off[k]; q < off[k + 1]; q++) y += coef[q] * p.xbc[(int64_t)pair_j[q] * conv_dim + h * P + pp];
            ys[k][pp] += y;
        }
    }
    for (int e = threadIdx.x; e < n_here * P; e += blockDim.x) {
        int k = e / P, pp = e % P;
        const float *row = p.xbc + (int64_t)(i0 + k) * conv_dim;
        p.y[(int64_t)(i0 + k) * d_inner + h * P + pp] = ys[k][pp] + p.D[h] * row[h * P + pp];
    }
}

extern "C" void stree_cuda_mamba2_scan_tree(const stree_mamba2_scan_params *p) {
    if (p->d_state > MAX_STATE || p->head_dim > MAX_SCAN_P) {
        stree_cuda_note("Mamba-2 state size above 256 or head dim above 256 is not supported by the CUDA backend",
                        __FILE__, __LINE__);
        return;
    }
    cudaStream_t s = stree_cuda_stream();
    dim3 g0(ceil_div(p->n_heads, 64), p->tree.n);
    cumdecay_kernel<<<g0, 64, 0, s>>>(*p);
    LAUNCHED();
    dim3 grid(p->n_heads, ceil_div(p->tree.n, SCAN_NODES));
    scan_kernel<<<grid, 256, 0, s>>>(*p);
    LAUNCHED();
}
