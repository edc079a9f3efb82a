// CUDA backend: tree causal conv, Mamba-2 dt and the tree scan with path-cumulative log-decays
// (DESIGN.md §3.2–3.3). No per-node state is formed; the commits are in commit.cu.
#include <math.h>

#include "kernels/cuda/common.cuh"

#define MAX_STATE 256 /* d_state bound of the CUDA scan */

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
#define SCAN_THREADS 256
#define SCAN_TREE 256 /* parents of the first SCAN_TREE nodes are staged in shared memory */
#define MAX_SCAN_P 256

// H0 row pp, float4 columns n = 4 (s + 4u): four threads cover a row in 64-byte runs
template <int U>
__device__ __forceinline__ void load_state_rows(const float *H0, int pp, int s, int P, int N, float4 (&hv)[U]) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        int n = 4 * (s + 4 * u);
        hv[u] = pp < P && n < N ? load4(H0 + (int64_t)pp * N + n, n, N, (N & 3) == 0) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

// Block per (head h, chunk of SCAN_NODES nodes), both parts of y_i (DESIGN.md §3.2):
//   committed: y_i = e^{c_i} H0 C_i + D x_i — a register-tiled product: thread (row pp, quarter s)
//              holds the float4 columns n = 4 (s + 4u) of H0 row pp, runs them against four nodes'
//              C at a time and the quarters add up by shuffles. H0 is read once per chunk;
//   tree:      y_i += sum_{j in path(i)} e^{c_i - c_j} dt_j (C_i . B_j) x_j — the (node, ancestor)
//              pairs of the chunk are listed in rounds of up to SCAN_PAIRS (parents from shared
//              memory), a thread computes each C_i . B_j, then each thread sums its (node, head-dim
//              element) over its node's pairs.
// Every sum runs in a fixed order that does not depend on the other nodes of the chunk, so a node
// gets the same y in a decode step and inside a tree. NMAX bounds d_state (register tile size).
template <int NMAX>
__global__ void __launch_bounds__(SCAN_THREADS, 2) scan_kernel(stree_mamba2_scan_params p) {
    __shared__ __align__(16) float C[SCAN_NODES][NMAX];
    __shared__ float ys[SCAN_NODES][MAX_SCAN_P];
    __shared__ float coef[SCAN_PAIRS];      /* per pair: first e^{-c_j} dt_j, then the whole coefficient */
    __shared__ int pair_j[SCAN_PAIRS];
    __shared__ float c_pair[SCAN_PAIRS];
    __shared__ float c_node[SCAN_NODES];
    __shared__ int par[SCAN_TREE];
    __shared__ float dt_s[SCAN_TREE], c_s[SCAN_TREE];
    __shared__ int cursor[SCAN_NODES], remaining[SCAN_NODES], off[SCAN_NODES + 1];
    int h = blockIdx.x, i0 = blockIdx.y * SCAN_NODES, tid = threadIdx.x;
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    int n_here = p.tree.n - i0 < SCAN_NODES ? p.tree.n - i0 : SCAN_NODES;
    bool vec4 = ((conv_dim | d_inner | N) & 3) == 0 && ((uintptr_t)p.xbc & 15) == 0; /* 16-byte row loads */
    /* parents, dt and c of the nodes up to the chunk's last (its ancestors) and C of the chunk, staged
       in one round of loads */
    int n_tree = min(i0 + n_here, SCAN_TREE);
    for (int j = tid; j < n_tree; j += SCAN_THREADS) {
        par[j] = p.tree.parent[j];
        dt_s[j] = p.dt[(int64_t)j * H + h];
        c_s[j] = p.c[(int64_t)j * H + h];
    }
#pragma unroll 4
    for (int e = tid; e < SCAN_NODES * NMAX; e += SCAN_THREADS) { /* zero past N and n_here */
        int k = e / NMAX, n = e % NMAX;
        C[k][n] = k < n_here && n < N ? p.xbc[(int64_t)(i0 + k) * conv_dim + d_inner + G * N + g * N + n] : 0.0f;
    }
    if (tid < n_here) {
        cursor[tid] = i0 + tid;
        remaining[tid] = p.tree.depth[i0 + tid] + 1;
        c_node[tid] = p.c[(int64_t)(i0 + tid) * H + h];
    }
    __syncthreads();
    const float *H0 = p.state + (int64_t)h * P * N;
    const int U = NMAX / 16; /* float4 columns per thread */
    int s = tid & 3, prow = tid >> 2;
    for (int pp0 = 0; pp0 < P; pp0 += SCAN_THREADS / 4) {
        int pp = pp0 + prow;
        float4 hv[U];
        load_state_rows<U>(H0, pp, s, P, N, hv);
        for (int k0 = 0; k0 < n_here; k0 += 4) { /* C is zero past n_here: four nodes at a time */
            float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int kk = 0; kk < 4; kk++)
                    acc[kk] = dot4(hv[u], *reinterpret_cast<const float4 *>(&C[k0 + kk][4 * (s + 4 * u)]), acc[kk]);
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                acc[kk] += __shfl_xor_sync(0xffffffffu, acc[kk], 1);
                acc[kk] += __shfl_xor_sync(0xffffffffu, acc[kk], 2);
            }
            if (pp < P && s == 0)
#pragma unroll
                for (int kk = 0; kk < 4; kk++)
                    if (k0 + kk < n_here) ys[k0 + kk][pp] = __expf(c_node[k0 + kk]) * acc[kk]; /* + D x_i at the end */
        }
    }
    for (;;) {
        __syncthreads(); /* ys and the previous round's pairs are complete */
        if (tid == 0) {
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
        if (tid < n_here) { /* each node lists its next ancestors, nearest first */
            int k = tid, j = cursor[k];
            if (p.tree.depth[i0 + k] == i0 + k) { /* a chain from the root: j, j-1, ... */
                for (int q = off[k]; q < off[k + 1]; q++) pair_j[q] = j--;
            } else {
                for (int q = off[k]; q < off[k + 1]; q++) {
                    pair_j[q] = j;
                    j = j < SCAN_TREE ? par[j] : p.tree.parent[j];
                }
            }
            cursor[k] = j;
            remaining[k] -= off[k + 1] - off[k];
        }
        __syncthreads();
#pragma unroll 4
        for (int q = tid; q < total; q += SCAN_THREADS) { /* the pairs' decays, gathered in parallel */
            int j = pair_j[q];
            coef[q] = j < SCAN_TREE ? dt_s[j] : p.dt[(int64_t)j * H + h];
            c_pair[q] = j < SCAN_TREE ? c_s[j] : p.c[(int64_t)j * H + h];
        }
        __syncthreads();
        for (int q = tid; q < total; q += SCAN_THREADS) { /* a thread per pair: C_i . B_j */
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
        for (int e = tid; e < n_here * P; e += SCAN_THREADS) {
            int k = e / P, pp = e % P;
            float y = 0.0f;
#pragma unroll 4
            for (int q = off[k]; q < off[k + 1]; q++) y += coef[q] * p.xbc[(int64_t)pair_j[q] * conv_dim + h * P + pp];
            ys[k][pp] += y;
        }
    }
    for (int e = tid; e < n_here * P; e += SCAN_THREADS) {
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
    if (p->d_state <= 64) scan_kernel<64><<<grid, SCAN_THREADS, 0, s>>>(*p);
    else if (p->d_state <= 128) scan_kernel<128><<<grid, SCAN_THREADS, 0, s>>>(*p);
    else scan_kernel<256><<<grid, SCAN_THREADS, 0, s>>>(*p);
    LAUNCHED();
}
