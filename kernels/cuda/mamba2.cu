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

// the Mamba width (k = 4), four channels per thread: 16-byte loads of x, the window and each channel's
// four taps; the same sums, in the same order, as conv_tree_kernel
__global__ void conv_tree4_kernel(stree_conv_tree_params p) {
    int i = blockIdx.y, ch = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (ch >= p.channels) return;
    int d = p.tree.depth[i], rows[4]; /* slot s: a tree node, or -1 (the committed window) */
    for (int s = 3, node = i; s >= 0; s--) {
        rows[s] = node;
        if (node >= 0) node = p.tree.parent[node]; /* the same for every thread: L1 hits */
    }
    float4 v[4], w[4];
#pragma unroll
    for (int s = 0; s < 4; s++)
        v[s] = rows[s] >= 0 ? *reinterpret_cast<const float4 *>(p.x + rows[s] * p.ldx + ch)
                            : *reinterpret_cast<const float4 *>(p.window + (int64_t)(s + d) * p.channels + ch);
#pragma unroll
    for (int c = 0; c < 4; c++) w[c] = *reinterpret_cast<const float4 *>(p.w + (int64_t)(ch + c) * 4);
    if (p.maybe_x_copy) *reinterpret_cast<float4 *>(p.maybe_x_copy + (int64_t)i * p.channels + ch) = v[3];
    float4 b = p.maybe_bias ? *reinterpret_cast<const float4 *>(p.maybe_bias + ch) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float acc[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const float *wc = reinterpret_cast<const float *>(&w[c]);
#pragma unroll
        for (int s = 3; s >= 0; s--) acc[c] += wc[s] * reinterpret_cast<const float *>(&v[s])[c];
    }
    *reinterpret_cast<float4 *>(p.out + (int64_t)i * p.channels + ch) =
        make_float4(silu_f(acc[0]), silu_f(acc[1]), silu_f(acc[2]), silu_f(acc[3]));
}

static bool aligned16(const void *q) { return ((uintptr_t)q & 15) == 0; }

extern "C" void stree_cuda_conv_tree(const stree_conv_tree_params *p) {
    bool vec = p->k == 4 && p->channels % 4 == 0 && p->ldx % 4 == 0 && aligned16(p->x) && aligned16(p->window) &&
               aligned16(p->w) && aligned16(p->maybe_bias) && aligned16(p->out) && aligned16(p->maybe_x_copy);
    if (vec) {
        dim3 grid(ceil_div(p->channels / 4, 128), p->tree.n);
        conv_tree4_kernel<<<grid, 128, 0, stree_cuda_stream()>>>(*p);
    } else {
        dim3 grid(ceil_div(p->channels, 128), p->tree.n);
        conv_tree_kernel<<<grid, 128, 0, stree_cuda_stream()>>>(*p);
    }
    LAUNCHED();
}

// dt = clamp(softplus(dt_raw + bias), dt_min, dt_max) of node j, head h
__device__ __forceinline__ float time_step(const stree_mamba2_scan_params &p, int j, int h) {
    float v = p.dt_raw[j * p.ld_dt + h] + p.dt_bias[h];
    v = v > 20.0f ? v : log1pf(expf(v));
    return fminf(fmaxf(v, p.dt_min), p.dt_max);
}

// c_i = sum over path(i) of dt_j * A_h, nearest first (a node's sum depends only on its own path)
__device__ __forceinline__ float path_decay_sum(int i, const int *parent, const float *dt, float A) {
    float c = 0.0f;
    for (int j = i; j >= 0; j = parent[j]) c += dt[j] * A;
    return c;
}

// dt and c for trees above SCAN_TREE nodes, one thread per (node, head) walking its own path in
// global memory (recomputing its ancestors' dt, in the same order as path_decay_sum)
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

#define SCAN_NODES 16    /* nodes per block (the thread mappings below assume 16) */
#define SCAN_TJ 32       /* ancestors per tile of the tree part (one mask word) */
#define SCAN_THREADS 256
#define SCAN_TREE 256    /* up to this many nodes the parents, dt and c live in shared memory and the
                            scan computes dt and c itself; larger trees get them from cumdecay_kernel */
#define MAX_SCAN_P 256
#define SCAN_R (MAX_SCAN_P / 64) /* float4 head-dim columns per thread in the tree part */

// dynamic shared memory: ys [SCAN_NODES, P4] | B tile [SCAN_TJ, ldb] | x tile [SCAN_TJ, P4], rows zero
// padded to whole float4
static inline __host__ __device__ int scan_ldb(int N) { return (N + 3) / 4 * 4 + 4; /* padded: no bank conflicts */ }
static inline __host__ __device__ int scan_p4(int P) { return (P + 3) / 4 * 4; }
static inline size_t scan_dyn_bytes(int P, int N) {
    return sizeof(float) * ((size_t)SCAN_NODES * scan_p4(P) + (size_t)SCAN_TJ * scan_ldb(N) + (size_t)SCAN_TJ * scan_p4(P));
}

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
//   committed: y_i = e^{c_i} H0 C_i — a register-tiled product: thread (row pp, quarter s) holds the
//              float4 columns n = 4 (s + 4u) of H0 row pp, runs them against four nodes' C at a time
//              and the quarters add up by shuffles;
//   tree:      y_i += sum_{j in path(i)} e^{c_i - c_j} dt_j (C_i . B_j) x_j — dense over tiles of
//              SCAN_TJ candidate ancestors j <= the chunk's last node (topological order): one load
//              phase stages the tile's B and x rows, then the chunk's (node, j) coefficients (zero
//              where j is not on the node's path, from a mask each node's walk up its path sets),
//              then each thread's (node, head-dim element) sums.
// A node's sums run over its own path, nearest ancestor first, adding exact zeros for the other j,
// so a node gets the same y in a decode step and inside any tree. NMAX bounds d_state; with 128 the
// kernel fits 64 registers without spills, so four blocks share an SM (a 64-node tree's 512 blocks for
// 128 heads run in one wave on the H200).
#ifndef SCAN_BLOCKS_128 /* blocks per SM the 128-state kernel is compiled for (a tuning knob) */
#define SCAN_BLOCKS_128 4
#endif
template <int NMAX>
__global__ void __launch_bounds__(SCAN_THREADS, NMAX == 128 ? SCAN_BLOCKS_128 : 2) scan_kernel(stree_mamba2_scan_params p) {
    extern __shared__ __align__(16) float dyn[];
    __shared__ __align__(16) float C[SCAN_NODES][NMAX];
    __shared__ float A[SCAN_NODES][SCAN_TJ]; /* the tile's coefficients */
    __shared__ int par[SCAN_TREE];
    __shared__ float dt_s[SCAN_TREE], c_s[SCAN_TREE];
    __shared__ float dt_t[SCAN_TJ], c_t[SCAN_TJ];
    __shared__ float c_node[SCAN_NODES];
    __shared__ int cursor[SCAN_NODES], chain[SCAN_NODES];
    __shared__ unsigned bits[SCAN_NODES];
    int h = blockIdx.x, i0 = blockIdx.y * SCAN_NODES, tid = threadIdx.x;
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G), ldb = scan_ldb(N), P4 = scan_p4(P);
    int n_here = p.tree.n - i0 < SCAN_NODES ? p.tree.n - i0 : SCAN_NODES;
    bool fused = p.tree.n <= SCAN_TREE;
    bool vec4 = ((conv_dim | d_inner | N) & 3) == 0 && ((uintptr_t)p.xbc & 15) == 0; /* 16-byte row loads */
    float *ys = dyn, *Bt = ys + SCAN_NODES * P4, *Xt = Bt + SCAN_TJ * ldb;
    /* parents and dt (and, for large trees, c) of the nodes up to the chunk's last (its ancestors) and
       C of the chunk, staged in one round of loads */
    int n_tree = min(i0 + n_here, SCAN_TREE);
    for (int j = tid; j < n_tree; j += SCAN_THREADS) {
        par[j] = p.tree.parent[j];
        dt_s[j] = fused ? time_step(p, j, h) : p.dt[(int64_t)j * H + h];
        if (!fused) c_s[j] = p.c[(int64_t)j * H + h];
    }
#pragma unroll 4
    for (int e = tid; e < SCAN_NODES * NMAX; e += SCAN_THREADS) { /* zero past N and n_here */
        int k = e / NMAX, n = e % NMAX;
        C[k][n] = k < n_here && n < N ? p.xbc[(int64_t)(i0 + k) * conv_dim + d_inner + G * N + g * N + n] : 0.0f;
    }
    if (tid < n_here) chain[tid] = p.tree.depth[i0 + tid] == i0 + tid;
    const float *H0 = p.state + (int64_t)h * P * N;
    const int U = NMAX / 16; /* float4 columns per thread */
    int s = tid & 3, prow = tid >> 2;
    float4 hv[U];
    load_state_rows<U>(H0, prow, s, P, N, hv); /* in flight across the barriers */
    __syncthreads();
    if (fused) {
        float A_h = -expf(p.A_log[h]);
        for (int j = tid; j < n_tree; j += SCAN_THREADS) c_s[j] = path_decay_sum(j, par, dt_s, A_h);
        __syncthreads();
    }
    if (tid < n_here) {
        int i = i0 + tid;
        c_node[tid] = i < SCAN_TREE ? c_s[i] : p.c[(int64_t)i * H + h];
        cursor[tid] = i;
        if (fused) {
            p.dt[(int64_t)i * H + h] = dt_s[i];
            p.c[(int64_t)i * H + h] = c_s[i];
        }
    }
    __syncthreads();
    for (int pp0 = 0; pp0 < P; pp0 += SCAN_THREADS / 4) {
        int pp = pp0 + prow;
        if (pp0 > 0) load_state_rows<U>(H0, pp, s, P, N, hv);
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
                    if (k0 + kk < n_here) ys[(k0 + kk) * P4 + pp] = __expf(c_node[k0 + kk]) * acc[kk];
        }
    }
    __syncthreads();
    /* the tree part: thread owns node kt = tid / 16 and the float4 columns pp = 4 (tid % 16) + 64r */
    int kt = tid >> 4, c4 = tid & 15, nr = (P + 63) / 64;
    float4 acc[SCAN_R];
#pragma unroll
    for (int r = 0; r < SCAN_R; r++) {
        int pp = 4 * c4 + 64 * r;
        acc[r] = kt < n_here && pp < P4 ? *reinterpret_cast<const float4 *>(ys + kt * P4 + pp) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    int last = i0 + n_here - 1;
    for (int jt0 = last / SCAN_TJ * SCAN_TJ; jt0 >= 0; jt0 -= SCAN_TJ) { /* nearest tiles first */
        int rows = min(SCAN_TJ, last + 1 - jt0);
        if (tid < n_here) { /* which of the tile's j are on node i's path */
            int k = tid, i = i0 + k;
            unsigned b = 0;
            if (chain[k]) { /* every j <= i */
                int top = min(i, jt0 + SCAN_TJ - 1) - jt0;
                b = top < 0 ? 0u : top == 31 ? ~0u : (2u << top) - 1u;
            } else {
                int j = cursor[k];
                for (; j >= jt0; j = j < SCAN_TREE ? par[j] : p.tree.parent[j]) b |= 1u << (j - jt0);
                cursor[k] = j;
            }
            bits[k] = b;
        }
        if (tid < rows) {
            int j = jt0 + tid;
            dt_t[tid] = j < SCAN_TREE ? dt_s[j] : p.dt[(int64_t)j * H + h];
            c_t[tid] = j < SCAN_TREE ? c_s[j] : p.c[(int64_t)j * H + h];
        }
        int nb4 = ldb / 4 - 1; /* float4 columns of B (zero past N) */
        for (int e = tid; e < rows * nb4; e += SCAN_THREADS) {
            int jj = e / nb4, n = 4 * (e % nb4);
            const float *B_j = p.xbc + (int64_t)(jt0 + jj) * conv_dim + d_inner + g * N;
            *reinterpret_cast<float4 *>(Bt + jj * ldb + n) = load4(B_j + n, n, N, vec4);
        }
        for (int e = tid; e < rows * P4; e += SCAN_THREADS) {
            int jj = e / P4, pp = e % P4;
            Xt[jj * P4 + pp] = pp < P ? p.xbc[(int64_t)(jt0 + jj) * conv_dim + h * P + pp] : 0.0f;
        }
        if (!__syncthreads_or(tid < n_here && bits[tid] != 0)) continue; /* no path crosses this tile */
        { /* coefficients: thread (node k = tid / 16, j = jt0 + tid % 16 + 16v) */
            int k = tid >> 4, jb = tid & 15;
            float cb[2] = {0.0f, 0.0f};
            if (k < n_here)
                for (int n = 0; n < ldb - 4; n += 4) {
                    float4 c4 = *reinterpret_cast<const float4 *>(&C[k][n]);
#pragma unroll
                    for (int v = 0; v < 2; v++)
                        cb[v] = dot4(c4, *reinterpret_cast<const float4 *>(Bt + (jb + 16 * v) * ldb + n), cb[v]);
                }
#pragma unroll
            for (int v = 0; v < 2; v++) {
                int jj = jb + 16 * v;
                bool on_path = k < n_here && jj < rows && (bits[k] >> jj & 1u);
                A[k][jj] = on_path ? __expf(c_node[k] - c_t[jj]) * dt_t[jj] * cb[v] : 0.0f;
            }
        }
        __syncthreads();
        for (int jj = rows - 1; jj >= 0; jj--) { /* nearest first */
            float a = A[kt][jj];
#pragma unroll
            for (int r = 0; r < SCAN_R; r++) {
                int pp = 4 * c4 + 64 * r;
                if (r >= nr || pp >= P4) break;
                float4 x = *reinterpret_cast<const float4 *>(Xt + jj * P4 + pp);
                acc[r] = make_float4(fmaf(a, x.x, acc[r].x), fmaf(a, x.y, acc[r].y), fmaf(a, x.z, acc[r].z),
                                     fmaf(a, x.w, acc[r].w));
            }
        }
        __syncthreads(); /* before the next tile overwrites B, x and the coefficients */
    }
    if (kt >= n_here) return;
    const float *x_i = p.xbc + (int64_t)(i0 + kt) * conv_dim + h * P;
    float *y_i = p.y + (int64_t)(i0 + kt) * d_inner + h * P, Dh = p.D[h];
#pragma unroll
    for (int r = 0; r < SCAN_R; r++) {
        const float *a = reinterpret_cast<const float *>(&acc[r]);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int pp = 4 * c4 + 64 * r + e;
            if (pp < P) y_i[pp] = a[e] + Dh * x_i[pp];
        }
    }
}

template <int NMAX>
static void launch_scan(const stree_mamba2_scan_params *p, cudaStream_t s) {
    size_t dyn = scan_dyn_bytes(p->head_dim, p->d_state);
    static size_t opted = 0; /* dynamic shared memory above 48 KB needs an opt-in per kernel */
    if (dyn > opted) {
        CUDA_OK(cudaFuncSetAttribute(scan_kernel<NMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn));
        opted = dyn;
    }
    dim3 grid(p->n_heads, ceil_div(p->tree.n, SCAN_NODES));
    scan_kernel<NMAX><<<grid, SCAN_THREADS, dyn, s>>>(*p);
    LAUNCHED();
}

extern "C" void stree_cuda_mamba2_scan_tree(const stree_mamba2_scan_params *p) {
    if (p->d_state > MAX_STATE || p->head_dim > MAX_SCAN_P) {
        stree_cuda_note("Mamba-2 state size above 256 or head dim above 256 is not supported by the CUDA backend",
                        __FILE__, __LINE__);
        return;
    }
    cudaStream_t s = stree_cuda_stream();
    if (p->tree.n > SCAN_TREE) { /* the scan computes dt and c itself for smaller trees */
        dim3 g0(ceil_div(p->n_heads, 64), p->tree.n);
        cumdecay_kernel<<<g0, 64, 0, s>>>(*p);
        LAUNCHED();
    }
    if (p->d_state <= 64) launch_scan<64>(p, s);
    else if (p->d_state <= 128) launch_scan<128>(p, s);
    else launch_scan<256>(p, s);
}
