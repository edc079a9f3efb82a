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

// dynamic shared memory: ys [SCAN_NODES, P4] | B tile [SCAN_TJ, ldb] | x tile [SCAN_TJ, P4], rows zero
// padded to whole float4
static inline __host__ __device__ int scan_ldb(int N) { return (N + 3) / 4 * 4 + 4; /* padded: no bank conflicts */ }
static inline __host__ __device__ int scan_p4(int P) { return (P + 3) / 4 * 4; }
static inline size_t scan_dyn_bytes(int P, int N) {
    return sizeof(float) * ((size_t)SCAN_NODES * scan_p4(P) + (size_t)SCAN_TJ * scan_ldb(N) + (size_t)SCAN_TJ * scan_p4(P));
}

// x rounded to tf32 (the upper 19 bits), as an mma operand
__device__ __forceinline__ uint32_t tf32_of(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += a b in fp32 accuracy from three tf32 products (each operand split into hi + lo; lo * lo dropped);
// a arrives split (ah, al)
__device__ __forceinline__ void mma_3xtf32(float (&d)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4], float b0,
                                           float b1) {
    uint32_t bh0 = tf32_of(b0), bh1 = tf32_of(b1);
    uint32_t bl0 = tf32_of(b0 - __uint_as_float(bh0)), bl1 = tf32_of(b1 - __uint_as_float(bh1));
    mma_tf32(d, al, bh0, bh1);
    mma_tf32(d, ah, bl0, bl1);
    mma_tf32(d, ah, bh0, bh1);
}

// A fragments (rows gq, gq + 8; columns n, n + 4) of C, split into its tf32 hi part (C) and the rest (C_lo)
template <int W>
__device__ __forceinline__ void load_c_frags(const float (&C)[SCAN_NODES][W], const uint32_t (&C_lo)[SCAN_NODES][W],
                                             int gq, int n, uint32_t (&ah)[4], uint32_t (&al)[4]) {
    ah[0] = __float_as_uint(C[gq][n]), ah[1] = __float_as_uint(C[gq + 8][n]);
    ah[2] = __float_as_uint(C[gq][n + 4]), ah[3] = __float_as_uint(C[gq + 8][n + 4]);
    al[0] = C_lo[gq][n], al[1] = C_lo[gq + 8][n], al[2] = C_lo[gq][n + 4], al[3] = C_lo[gq + 8][n + 4];
}

#ifndef SCAN_KG /* k-steps of the committed product whose state fragments are loaded together (a tuning knob) */
#define SCAN_KG 8
#endif

// A lane's B fragments of the committed product for k-steps ks0..ks0+SCAN_KG-1: H0[row][8s + t] and
// H0[row][8s + t + 4] (zero past P rows and N columns)
__device__ __forceinline__ void load_state_frags(const float *H0, int row, int t, int P, int N, int ks0,
                                                 float (&hb)[2 * SCAN_KG]) {
#pragma unroll
    for (int s = 0; s < SCAN_KG; s++) {
        int n = 8 * (ks0 + s) + t;
        hb[2 * s] = row < P && n < N ? __ldg(H0 + (int64_t)row * N + n) : 0.0f;
        hb[2 * s + 1] = row < P && n + 4 < N ? __ldg(H0 + (int64_t)row * N + n + 4) : 0.0f;
    }
}

// len floats of a row into shared memory, zero-filled up to pad (a multiple of 4), by threads t of nt,
// asynchronously: 16-byte copies when vec (len % 4 == 0, both ends 16-byte aligned)
__device__ __forceinline__ void stage_row_async(float *dst, const float *src, int len, int pad, bool vec, int t, int nt) {
    if (vec)
        for (int n = 4 * t; n < pad; n += 4 * nt) cp_async16(dst + n, n < len ? src + n : src, n < len);
    else
        for (int n = t; n < pad; n += nt) cp_async4(dst + n, n < len ? src + n : src, n < len);
}

// Block per (head h, chunk of SCAN_NODES nodes), both parts of y_i (DESIGN.md §3.2):
//   committed: y_i = e^{c_i} H0 C_i — on the tensor cores in fp32 accuracy (3xTF32 mma.m16n8k8: the
//              chunk's 16 nodes are the m tile, warp w takes the head-dim rows 8w..8w+7, k runs over
//              the state in a fixed order);
//   tree:      y_i += sum_{j in path(i)} e^{c_i - c_j} dt_j (C_i . B_j) x_j — dense over tiles of
//              SCAN_TJ candidate ancestors j <= the chunk's last node (topological order): the tile's
//              B and x rows are copied in (cp.async; the nearest tile at the start, with C), C_i . B_j
//              is another 3xTF32 mma product, the coefficients are zero where j is not on the node's
//              path (a mask each node's walk up its path sets), then each thread's (node, float4 of
//              the head dim) sums over the mask's ancestors, kept in shared memory across tiles.
// A node's sums run over its own path, nearest ancestor first (the other j of a tile are skipped:
// their coefficients are zero), and each mma output depends only on its own row and column, so a node
// gets the same y in a decode step and inside any tree. NMAX bounds d_state; with 128 the kernel fits 64 registers, so four
// blocks share an SM (a 64-node tree's 512 blocks for 128 heads run in one wave on the H200).
#ifndef SCAN_BLOCKS_128 /* blocks per SM the 128-state kernel is compiled for (a tuning knob) */
#define SCAN_BLOCKS_128 4
#endif
template <int NMAX>
__global__ void __launch_bounds__(SCAN_THREADS, NMAX == 128 ? SCAN_BLOCKS_128 : 2) scan_kernel(stree_mamba2_scan_params p) {
    extern __shared__ __align__(16) float dyn[];
    __shared__ __align__(16) float C[SCAN_NODES][NMAX + 4]; /* padded: conflict-free mma fragments */
    __shared__ uint32_t C_lo[SCAN_NODES][NMAX + 4]; /* C split for the mma: C holds tf32(C), C_lo the rest */
    __shared__ float A[SCAN_NODES][SCAN_TJ]; /* the tile's coefficients */
    __shared__ float part[2][SCAN_NODES][SCAN_TJ]; /* C_i . B_j over each half of the state */
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
    bool vecx = vec4 && (P & 3) == 0;
    int lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3; /* mma fragment coordinates */
    int last = i0 + n_here - 1, jt_first = last / SCAN_TJ * SCAN_TJ;
    /* the B and x rows of ancestor tile jt0, a warp per row, asynchronously */
    auto stage_tile = [&](int jt0) {
        int rows = min(SCAN_TJ, last + 1 - jt0);
        for (int jj = warp; jj < rows; jj += SCAN_THREADS / 32) {
            const float *row = p.xbc + (int64_t)(jt0 + jj) * conv_dim;
            stage_row_async(Bt + jj * ldb, row + d_inner + g * N, N, ldb, vec4, lane, 32); /* zero to 8-column steps */
            stage_row_async(Xt + jj * P4, row + h * P, P, P4, vecx, lane, 32);
        }
        cp_async_commit();
    };
    /* everything the block reads is requested up front: C of the chunk and the nearest ancestor tile
       (asynchronous copies), the state rows of the warp's first mma tile (an L1 prefetch), the parents
       and dt (and, for large trees, c) of the nodes up to the chunk's last (its ancestors) */
    for (int k = warp; k < SCAN_NODES; k += SCAN_THREADS / 32) {
        if (k < n_here)
            stage_row_async(C[k], p.xbc + (int64_t)(i0 + k) * conv_dim + d_inner + G * N + g * N, N, NMAX, vec4, lane, 32);
        else
            for (int n = lane; n < NMAX; n += 32) C[k][n] = 0.0f;
    }
    stage_tile(jt_first);
    const float *H0 = p.state + (int64_t)h * P * N;
    for (int lines = (N + 31) / 32, q = lane; q < 8 * lines; q += 32) {
        int row = 8 * warp + q / lines, col = 32 * (q % lines);
        if (row < P) asm volatile("prefetch.global.L1 [%0];" ::"l"(H0 + (int64_t)row * N + col));
    }
    int n_tree = min(i0 + n_here, SCAN_TREE);
    for (int j = tid; j < n_tree; j += SCAN_THREADS) {
        par[j] = p.tree.parent[j];
        dt_s[j] = fused ? time_step(p, j, h) : p.dt[(int64_t)j * H + h];
        if (!fused) c_s[j] = p.c[(int64_t)j * H + h];
    }
    if (tid < n_here) chain[tid] = p.tree.depth[i0 + tid] == i0 + tid;
    cp_async_wait<0>();
    __syncthreads();
    for (int e = tid; e < SCAN_NODES * NMAX; e += SCAN_THREADS) { /* read after the next barrier */
        int k = e / NMAX, n = e % NMAX;
        float x = C[k][n];
        uint32_t hi = tf32_of(x);
        C_lo[k][n] = tf32_of(x - __uint_as_float(hi));
        C[k][n] = __uint_as_float(hi);
    }
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
    for (int nt = warp; 8 * nt < P; nt += SCAN_THREADS / 32) { /* n tiles of 8 head-dim rows */
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int ks0 = 0; 8 * ks0 < N; ks0 += SCAN_KG) {
            float hb[2 * SCAN_KG];
            load_state_frags(H0, 8 * nt + gq, tq, P, N, ks0, hb);
#pragma unroll
            for (int s = 0; s < SCAN_KG; s++) {
                int n = 8 * (ks0 + s) + tq; /* C is zero past N (up to NMAX) and past n_here */
                if (n >= NMAX) break;
                uint32_t ah[4], al[4];
                load_c_frags(C, C_lo, gq, n, ah, al);
                mma_3xtf32(d, ah, al, hb[2 * s], hb[2 * s + 1]);
            }
        }
#pragma unroll
        for (int e = 0; e < 4; e++) { /* d[e]: node gq + 8 (e / 2), head-dim row 8 nt + 2 tq + e % 2 */
            int k = gq + 8 * (e >> 1), pp = 8 * nt + 2 * tq + (e & 1);
            if (k < n_here && pp < P) ys[k * P4 + pp] = __expf(c_node[k]) * d[e];
        }
    }
    __syncthreads();
    /* the tree part adds into ys: thread owns node kt = tid / 16 and the float4 columns 4 (tid % 16) + 64r */
    int kt = tid >> 4, c4 = tid & 15;
    for (int jt0 = jt_first; jt0 >= 0; jt0 -= SCAN_TJ) { /* nearest tiles first */
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
        if (jt0 != jt_first) { /* the first tile was staged at the start */
            stage_tile(jt0);
            cp_async_wait<0>();
        }
        if (!__syncthreads_or(tid < n_here && bits[tid] != 0)) continue; /* no path crosses this tile */
        { /* C_i . B_j of the tile on the tensor cores (3xTF32): warp w takes the ancestors 8 (w % 4) ..
             8 (w % 4) + 7 over half w / 4 of the state; the halves add in a fixed order below */
            int nt = warp & 3, half = warp >> 2, nk = (N + 7) / 8;
            if (8 * nt < rows) {
                float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                for (int ks = half ? (nk + 1) / 2 : 0, ke = half ? nk : (nk + 1) / 2; ks < ke; ks++) {
                    int n = 8 * ks + tq; /* C and the B tile are zero past N */
                    uint32_t ah[4], al[4];
                    load_c_frags(C, C_lo, gq, n, ah, al);
                    const float *b = Bt + (8 * nt + gq) * ldb + n;
                    mma_3xtf32(d, ah, al, b[0], b[4]);
                }
#pragma unroll
                for (int e = 0; e < 4; e++) part[half][gq + 8 * (e >> 1)][8 * nt + 2 * tq + (e & 1)] = d[e];
            }
        }
        __syncthreads();
        for (int e = tid; e < SCAN_NODES * SCAN_TJ; e += SCAN_THREADS) { /* the coefficients */
            int k = e / SCAN_TJ, jj = e % SCAN_TJ;
            bool on_path = k < n_here && jj < rows && (bits[k] >> jj & 1u);
            A[k][jj] = on_path ? __expf(c_node[k] - c_t[jj]) * dt_t[jj] * (part[0][k][jj] + part[1][k][jj]) : 0.0f;
        }
        __syncthreads();
        for (int pp = 4 * c4; kt < n_here && pp < P4; pp += 64) {
            float4 acc = *reinterpret_cast<const float4 *>(ys + kt * P4 + pp);
            for (unsigned b = bits[kt]; b; b &= ~(1u << (31 - __clz(b)))) { /* the path's j, nearest first */
                int jj = 31 - __clz(b);
                float a = A[kt][jj];
                float4 x = *reinterpret_cast<const float4 *>(Xt + jj * P4 + pp);
                acc = make_float4(fmaf(a, x.x, acc.x), fmaf(a, x.y, acc.y), fmaf(a, x.z, acc.z), fmaf(a, x.w, acc.w));
            }
            *reinterpret_cast<float4 *>(ys + kt * P4 + pp) = acc;
        }
        __syncthreads(); /* before the next tile overwrites B, x and the coefficients */
    }
    if (kt >= n_here) return; /* y_i = ys + D x_i, by the tree part's (node, float4 column) mapping */
    const float *x_i = p.xbc + (int64_t)(i0 + kt) * conv_dim + h * P;
    float *y_i = p.y + (int64_t)(i0 + kt) * d_inner + h * P, Dh = p.D[h];
    bool vecy = vecx && ((uintptr_t)p.y & 15) == 0 && (d_inner & 3) == 0;
    for (int pp = 4 * c4; pp < P; pp += 64) {
        float4 v = *reinterpret_cast<const float4 *>(ys + kt * P4 + pp);
        if (vecy) {
            float4 x = *reinterpret_cast<const float4 *>(x_i + pp);
            *reinterpret_cast<float4 *>(y_i + pp) = make_float4(v.x + Dh * x.x, v.y + Dh * x.y, v.z + Dh * x.z, v.w + Dh * x.w);
        } else {
            const float *a = reinterpret_cast<const float *>(&v);
            for (int e = 0; e < 4 && pp + e < P; e++) y_i[pp + e] = a[e] + Dh * x_i[pp + e];
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
