// CUDA backend: tree causal conv, Mamba-2 dt, the tree scan with path-cumulative log-decays and the
// closed-form commits (DESIGN.md §3.2–3.3). No per-node state is formed.
#include <math.h>

#include "kernels/cuda/common.cuh"

#define MAX_CONV 16
#define MAX_STATE 256
#define MAX_PATH 4096

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

// one thread per channel: the window after appending the path's inputs (oldest first)
__global__ void conv_commit_kernel(stree_conv_commit_params p) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= p.channels) return;
    int keep = p.k - 1;
    float win[MAX_CONV];
    for (int s = 0; s < keep; s++) win[s] = p.window[(int64_t)s * p.channels + ch];
    for (int t = 0; t < p.len; t++) {
        for (int s = 0; s + 1 < keep; s++) win[s] = win[s + 1];
        win[keep - 1] = p.x[(int64_t)p.path[t] * p.channels + ch];
    }
    for (int s = 0; s < keep; s++) p.window[(int64_t)s * p.channels + ch] = win[s];
}

extern "C" void stree_cuda_conv_commit(const stree_conv_commit_params *p) {
    if (p->k > MAX_CONV) {
        stree_cuda_note("conv width above 16 is not supported by the CUDA backend", __FILE__, __LINE__);
        return;
    }
    conv_commit_kernel<<<ceil_div(p->channels, 128), 128, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void dt_kernel(stree_mamba2_dt_params p) {
    int i = blockIdx.y, h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= p.n_heads) return;
    float v = p.dt_raw[i * p.ld + h] + p.dt_bias[h];
    v = v > 20.0f ? v : log1pf(expf(v));
    v = fminf(fmaxf(v, p.dt_min), p.dt_max);
    p.dt[(int64_t)i * p.n_heads + h] = v;
}

extern "C" void stree_cuda_mamba2_dt(const stree_mamba2_dt_params *p) {
    dim3 grid(ceil_div(p->n_heads, 64), p->n);
    dt_kernel<<<grid, 64, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// c_i = sum over path(i) of dt_j * A_h: one thread per (node, head) walks its own path, so no node
// waits on another (a serial walk over the nodes is a chain of dependent global loads)
__global__ void cumdecay_kernel(stree_mamba2_scan_params p) {
    int i = blockIdx.y, h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= p.n_heads) return;
    float A = -expf(p.A_log[h]), c = 0.0f;
    for (int j = i; j >= 0; j = p.tree.parent[j]) c += p.dt[(int64_t)j * p.n_heads + h] * A;
    p.c[(int64_t)i * p.n_heads + h] = c;
}

#define SCAN_NODES 16
// committed part, block per (head, chunk of SCAN_NODES nodes): y_i = e^{c_i} H0 C_i + D x_i.
// Each committed state row is read once per chunk (coalesced, by one warp) and used for every node.
__global__ void scan_committed_kernel(stree_mamba2_scan_params p) {
    __shared__ float C[SCAN_NODES][MAX_STATE];
    int h = blockIdx.x, i0 = blockIdx.y * SCAN_NODES;
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    int n_here = p.tree.n - i0 < SCAN_NODES ? p.tree.n - i0 : SCAN_NODES;
    for (int e = threadIdx.x; e < SCAN_NODES * MAX_STATE; e += blockDim.x) { /* zero past N and n_here */
        int k = e / MAX_STATE, n = e % MAX_STATE;
        C[k][n] = k < n_here && n < N ? p.xbc[(int64_t)(i0 + k) * conv_dim + d_inner + G * N + g * N + n] : 0.0f;
    }
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    const float *H0 = p.state + (int64_t)h * P * N;
    for (int pp = warp; pp < P; pp += n_warps) {
        float hrow[MAX_STATE / 32];
        for (int r = 0; r < MAX_STATE / 32; r++) {
            int n = lane + 32 * r;
            hrow[r] = n < N ? H0[(int64_t)pp * N + n] : 0.0f;
        }
        for (int k = 0; k < n_here; k++) {
            float part = 0.0f;
            for (int r = 0; r < MAX_STATE / 32; r++) part += hrow[r] * C[k][lane + 32 * r];
            float dot = warp_sum(part);
            if (lane == 0) {
                int i = i0 + k;
                float c_i = p.c[(int64_t)i * H + h];
                p.y[(int64_t)i * d_inner + h * P + pp] =
                    __expf(c_i) * dot + p.D[h] * p.xbc[(int64_t)i * conv_dim + h * P + pp];
            }
        }
    }
}

// tree part, block per (node, head), thread per head-dim element:
// y_i += sum_{j in path(i)} e^{c_i - c_j} dt_j (C_i . B_j) x_j
__global__ void scan_tree_kernel(stree_mamba2_scan_params p) {
    __shared__ float C_i[MAX_STATE];
    __shared__ float coef[MAX_PATH];
    __shared__ int path[MAX_PATH];
    __shared__ int n_path;
    __shared__ float red[32];
    int i = blockIdx.x, h = blockIdx.y;
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    const float *row_i = p.xbc + (int64_t)i * conv_dim;
    for (int n = threadIdx.x; n < N; n += blockDim.x) C_i[n] = row_i[d_inner + G * N + g * N + n];
    if (threadIdx.x == 0) {
        int n = 0;
        for (int j = i; j >= 0; j = p.tree.parent[j]) path[n++] = j;
        n_path = n;
    }
    __syncthreads();
    float c_i = p.c[(int64_t)i * H + h];
    // coefficients of the path nodes: the whole block reduces each C_i . B_j
    for (int t = 0; t < n_path; t++) {
        int j = path[t];
        const float *B_j = p.xbc + (int64_t)j * conv_dim + d_inner + g * N;
        float part = 0.0f;
        for (int n = threadIdx.x; n < N; n += blockDim.x) part += C_i[n] * B_j[n];
        float cb = block_sum(part, red);
        if (threadIdx.x == 0) coef[t] = __expf(c_i - p.c[(int64_t)j * H + h]) * p.dt[(int64_t)j * H + h] * cb;
    }
    __syncthreads();
    for (int pp = threadIdx.x; pp < P; pp += blockDim.x) {
        float y = 0.0f;
        for (int t = 0; t < n_path; t++) y += coef[t] * p.xbc[(int64_t)path[t] * conv_dim + h * P + pp];
        p.y[(int64_t)i * d_inner + h * P + pp] += y;
    }
    (void)row_i;
}

extern "C" void stree_cuda_mamba2_scan_tree(const stree_mamba2_scan_params *p) {
    if (p->d_state > MAX_STATE || p->tree.n > MAX_PATH) {
        stree_cuda_note("Mamba-2 state size above 256 is not supported by the CUDA backend", __FILE__, __LINE__);
        return;
    }
    cudaStream_t s = stree_cuda_stream();
    dim3 g0(ceil_div(p->n_heads, 64), p->tree.n);
    cumdecay_kernel<<<g0, 64, 0, s>>>(*p);
    LAUNCHED();
    dim3 g1(p->n_heads, ceil_div(p->tree.n, SCAN_NODES));
    scan_committed_kernel<<<g1, 256, 0, s>>>(*p);
    LAUNCHED();
    dim3 grid(p->tree.n, p->n_heads);
    scan_tree_kernel<<<grid, 64, 0, s>>>(*p);
    LAUNCHED();
}

// one thread per state element (h, p, n): S = e^{c_last} S + sum_k e^{c_last - c_k} dt_k x_k[p] B_k[n]
__global__ void mamba2_commit_kernel(stree_mamba2_commit_params p) {
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (int64_t)H * P * N) return;
    int h = (int)(e / ((int64_t)P * N)), pp = (int)((e / N) % P), n = (int)(e % N);
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    int last = p.path[p.len - 1];
    float c_last = p.c[(int64_t)last * H + h];
    float s = p.state[e] * __expf(c_last);
    for (int k = 0; k < p.len; k++) {
        int j = p.path[k];
        const float *row = p.xbc + (int64_t)j * conv_dim;
        float coef = __expf(c_last - p.c[(int64_t)j * H + h]) * p.dt[(int64_t)j * H + h];
        s += coef * row[h * P + pp] * row[d_inner + g * N + n];
    }
    p.state[e] = s;
}

extern "C" void stree_cuda_mamba2_commit(const stree_mamba2_commit_params *p) {
    int64_t total = (int64_t)p->n_heads * p->head_dim * p->d_state;
    mamba2_commit_kernel<<<ceil_div(total, 256), 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
