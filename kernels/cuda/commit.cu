// CUDA backend: the closed-form commits of an accepted path (DESIGN.md §3.3) — SSM state, conv
// window, KV rows — as one op per layer, and every layer's in one launch (commit_all).
#include "kernels/cuda/common.cuh"

#define MAX_CONV 16
#define MAX_STATE 256
#define COMMIT_ROWS 8   /* state rows (head-dim elements) per work item */
#define COMMIT_CHUNK 16 /* path entries staged at a time */
#define COMMIT_THREADS 256
#define CONV_CHANNELS 256 /* channels per conv work item */

struct commit_smem {
    float Bs[COMMIT_CHUNK][MAX_STATE];
    float xs[COMMIT_CHUNK][COMMIT_ROWS];
    float coef[COMMIT_CHUNK];
};

// Work item (head h, state rows p0 .. p0 + COMMIT_ROWS): thread per state element (p, n),
// S = e^{c_last} S + sum_k e^{c_last - c_k} dt_k x_k[p] B_k[n]. The per-path-entry coefficients and
// B / x rows are staged in shared memory COMMIT_CHUNK entries at a time; the state is read and
// written once.
__device__ void mamba2_commit_item(const stree_mamba2_commit_params &p, const int32_t *path, int len, int h,
                                   int p0, commit_smem &sm) {
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int rows = P - p0 < COMMIT_ROWS ? P - p0 : COMMIT_ROWS;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    float c_last = p.c[(int64_t)path[len - 1] * H + h];
    float *S = p.state + ((int64_t)h * P + p0) * N;
    const int per_thread = COMMIT_ROWS * MAX_STATE / COMMIT_THREADS;
    float s[per_thread];
    float decay = __expf(c_last);
#pragma unroll
    for (int q = 0; q < per_thread; q++) {
        int e = threadIdx.x + COMMIT_THREADS * q;
        s[q] = e < rows * N ? S[e] * decay : 0.0f;
    }
    for (int t0 = 0; t0 < len; t0 += COMMIT_CHUNK) {
        int nt = len - t0 < COMMIT_CHUNK ? len - t0 : COMMIT_CHUNK;
        __syncthreads(); /* the previous chunk (or work item) is consumed */
        for (int e = threadIdx.x; e < nt * N; e += blockDim.x) {
            int t = e / N, n = e % N;
            sm.Bs[t][n] = p.xbc[(int64_t)path[t0 + t] * conv_dim + d_inner + g * N + n];
        }
        for (int e = threadIdx.x; e < nt * rows; e += blockDim.x) {
            int t = e / rows, r = e % rows;
            sm.xs[t][r] = p.xbc[(int64_t)path[t0 + t] * conv_dim + h * P + p0 + r];
        }
        if (threadIdx.x < nt) {
            int j = path[t0 + threadIdx.x];
            sm.coef[threadIdx.x] = __expf(c_last - p.c[(int64_t)j * H + h]) * p.dt[(int64_t)j * H + h];
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < per_thread; q++) {
            int e = threadIdx.x + COMMIT_THREADS * q;
            if (e < rows * N) {
                int r = e / N, n = e % N;
                float acc = s[q];
                for (int t = 0; t < nt; t++) acc += sm.coef[t] * sm.xs[t][r] * sm.Bs[t][n];
                s[q] = acc;
            }
        }
    }
#pragma unroll
    for (int q = 0; q < per_thread; q++) {
        int e = threadIdx.x + COMMIT_THREADS * q;
        if (e < rows * N) S[e] = s[q];
    }
}

// Work item (channels ch0 ..): the window after appending the path's inputs (oldest first).
__device__ void conv_commit_item(const stree_conv_commit_params &p, const int32_t *path, int len, int ch0) {
    int ch = ch0 + threadIdx.x;
    if (threadIdx.x >= CONV_CHANNELS || ch >= p.channels) return;
    int keep = p.k - 1;
    float win[MAX_CONV];
    for (int s = 0; s < keep; s++) win[s] = p.window[(int64_t)s * p.channels + ch];
    for (int t = 0; t < len; t++) {
        for (int s = 0; s + 1 < keep; s++) win[s] = win[s + 1];
        win[keep - 1] = p.x[(int64_t)path[t] * p.channels + ch];
    }
    for (int s = 0; s < keep; s++) p.window[(int64_t)s * p.channels + ch] = win[s];
}

// Work item (path entry k): K and V rows to n_past + k.
__device__ void kv_commit_item(const stree_kv_commit_params &p, const int32_t *path, int n_past, int k) {
    int64_t dst = (int64_t)(n_past + k) * p.row, src = (int64_t)path[k] * p.row;
    for (int j = threadIdx.x; j < p.row; j += blockDim.x) {
        p.k_cache[dst + j] = p.k_tree[src + j];
        p.v_cache[dst + j] = p.v_tree[src + j];
    }
}

static bool commit_shapes_ok(int d_state, int conv_k) {
    if (d_state > MAX_STATE) {
        stree_cuda_note("Mamba-2 state size above 256 is not supported by the CUDA backend", __FILE__, __LINE__);
        return false;
    }
    if (conv_k > MAX_CONV) {
        stree_cuda_note("conv width above 16 is not supported by the CUDA backend", __FILE__, __LINE__);
        return false;
    }
    return true;
}

__global__ void __launch_bounds__(COMMIT_THREADS) mamba2_commit_kernel(stree_mamba2_commit_params p) {
    __shared__ commit_smem sm;
    mamba2_commit_item(p, p.path, p.len, blockIdx.x, blockIdx.y * COMMIT_ROWS, sm);
}

extern "C" void stree_cuda_mamba2_commit(const stree_mamba2_commit_params *p) {
    if (!commit_shapes_ok(p->d_state, 1)) return;
    dim3 grid(p->n_heads, ceil_div(p->head_dim, COMMIT_ROWS));
    mamba2_commit_kernel<<<grid, COMMIT_THREADS, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void conv_commit_kernel(stree_conv_commit_params p) {
    conv_commit_item(p, p.path, p.len, blockIdx.x * CONV_CHANNELS);
}

extern "C" void stree_cuda_conv_commit(const stree_conv_commit_params *p) {
    if (!commit_shapes_ok(1, p->k)) return;
    conv_commit_kernel<<<ceil_div(p->channels, CONV_CHANNELS), CONV_CHANNELS, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void kv_commit_kernel(stree_kv_commit_params p) { kv_commit_item(p, p.path, *p.n_past, blockIdx.x); }

extern "C" void stree_cuda_kv_commit(const stree_kv_commit_params *p) {
    kv_commit_kernel<<<p->len, 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// Every layer's commit: blocks stride over the work items of all layers (SSM items, then conv, then
// KV rows), counted from the descriptors in device memory, so one launch (and one captured graph)
// serves any path length.
__global__ void __launch_bounds__(COMMIT_THREADS) commit_all_kernel(stree_commit_all_params p) {
    __shared__ commit_smem sm;
    int len = *p.len, n_past = *p.n_past;
    int64_t ssm_items = 0, conv_items = 0;
    for (int l = 0; l < p.n_mamba; l++) {
        ssm_items += (int64_t)p.mamba[l].n_heads * ceil_div(p.mamba[l].head_dim, COMMIT_ROWS);
        conv_items += ceil_div(p.conv[l].channels, CONV_CHANNELS);
    }
    int64_t total = ssm_items + conv_items + (int64_t)p.n_attn * len;
    for (int64_t w = blockIdx.x; w < total; w += gridDim.x) {
        int64_t r = w;
        if (r < ssm_items) {
            int l = 0;
            for (;; l++) {
                int64_t here = (int64_t)p.mamba[l].n_heads * ceil_div(p.mamba[l].head_dim, COMMIT_ROWS);
                if (r < here) break;
                r -= here;
            }
            int chunks = ceil_div(p.mamba[l].head_dim, COMMIT_ROWS);
            mamba2_commit_item(p.mamba[l], p.path, len, (int)(r / chunks), (int)(r % chunks) * COMMIT_ROWS, sm);
            continue;
        }
        r -= ssm_items;
        if (r < conv_items) {
            int l = 0;
            for (;; l++) {
                int64_t here = ceil_div(p.conv[l].channels, CONV_CHANNELS);
                if (r < here) break;
                r -= here;
            }
            conv_commit_item(p.conv[l], p.path, len, (int)r * CONV_CHANNELS);
            continue;
        }
        r -= conv_items;
        kv_commit_item(p.kv[r / len], p.path, n_past, (int)(r % len));
    }
}

extern "C" void stree_cuda_commit_all(const stree_commit_all_params *p) {
    if (!commit_shapes_ok(p->max_d_state, p->max_conv_k)) return;
    static int sms;
    if (!sms) { /* queried once, before any capture (the first commit runs eagerly) */
        int dev = 0;
        CUDA_OK(cudaGetDevice(&dev));
        CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        if (sms <= 0) sms = 132;
    }
    int blocks = sms * 8; /* a full device; each block loops over work items */
    commit_all_kernel<<<blocks, COMMIT_THREADS, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
