// CUDA backend: the closed-form commits of an accepted path (DESIGN.md §3.3) — SSM state, conv
// window, KV rows — as one op per layer, and every layer's in one launch (commit_all).
#include "kernels/cuda/common.cuh"

#define MAX_CONV 16
#define MAX_STATE 256
#define MAX_HEAD_P 256
#define COMMIT_ROWS 8   /* state rows per block of the per-layer op */
#define COMMIT_CHUNK 16 /* path entries staged at a time */
#define COMMIT_THREADS 256
#define CONV_CHANNELS 256 /* channels per conv work item */

struct commit_smem {
    float Bs[COMMIT_CHUNK][MAX_STATE];
    float xs[COMMIT_CHUNK][MAX_HEAD_P];
    float coef[COMMIT_CHUNK];
};

// Work item (head h, state rows p0 .. p0 + rows): thread per state element (p, n),
// S = e^{c_last} S + sum_k e^{c_last - c_k} dt_k x_k[p] B_k[n]. The per-path-entry coefficients and
// the B / x rows are staged in shared memory COMMIT_CHUNK entries at a time (loads unrolled so they
// are in flight together) and serve every row group of the item; with a path of up to COMMIT_CHUNK
// entries the state is read and written once.
__device__ void mamba2_commit_item(const stree_mamba2_commit_params &p, const int32_t *path, int len, int h,
                                   int p0, int rows, commit_smem &sm) {
    int H = p.n_heads, P = p.head_dim, N = p.d_state, G = p.n_groups;
    int d_inner = H * P, conv_dim = d_inner + 2 * G * N, g = h / (H / G);
    float c_last = p.c[(int64_t)path[len - 1] * H + h];
    float *S = p.state + ((int64_t)h * P + p0) * N;
    int n_elems = rows * N;
    for (int t0 = 0; t0 < len; t0 += COMMIT_CHUNK) {
        int nt = len - t0 < COMMIT_CHUNK ? len - t0 : COMMIT_CHUNK;
        __syncthreads(); /* the previous chunk (or work item) is consumed */
#pragma unroll 8
        for (int e = threadIdx.x; e < nt * N; e += COMMIT_THREADS) {
            int t = e / N, n = e % N;
            sm.Bs[t][n] = p.xbc[(int64_t)path[t0 + t] * conv_dim + d_inner + g * N + n];
        }
#pragma unroll 4
        for (int e = threadIdx.x; e < nt * rows; e += COMMIT_THREADS) {
            int t = e / rows, r = e % rows;
            sm.xs[t][r] = p.xbc[(int64_t)path[t0 + t] * conv_dim + h * P + p0 + r];
        }
        if (threadIdx.x < nt) {
            int j = path[t0 + threadIdx.x];
            sm.coef[threadIdx.x] = __expf(c_last - p.c[(int64_t)j * H + h]) * p.dt[(int64_t)j * H + h];
        }
        __syncthreads();
        float decay = t0 == 0 ? __expf(c_last) : 1.0f;
#pragma unroll 4
        for (int e = threadIdx.x; e < n_elems; e += COMMIT_THREADS) {
            int r = e / N, n = e % N;
            float acc = S[e] * decay;
            for (int t = 0; t < nt; t++) acc += sm.coef[t] * sm.xs[t][r] * sm.Bs[t][n];
            S[e] = acc;
        }
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

static bool commit_shapes_ok(int d_state, int conv_k, int head_dim) {
    if (d_state > MAX_STATE || head_dim > MAX_HEAD_P) {
        stree_cuda_note("Mamba-2 state size or head dim above 256 is not supported by the CUDA backend", __FILE__,
                        __LINE__);
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
    int p0 = blockIdx.y * COMMIT_ROWS;
    mamba2_commit_item(p, p.path, p.len, blockIdx.x, p0, min(COMMIT_ROWS, p.head_dim - p0), sm);
}

extern "C" void stree_cuda_mamba2_commit(const stree_mamba2_commit_params *p) {
    if (!commit_shapes_ok(p->d_state, 1, p->head_dim)) return;
    dim3 grid(p->n_heads, ceil_div(p->head_dim, COMMIT_ROWS));
    mamba2_commit_kernel<<<grid, COMMIT_THREADS, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void conv_commit_kernel(stree_conv_commit_params p) {
    conv_commit_item(p, p.path, p.len, blockIdx.x * CONV_CHANNELS);
}

extern "C" void stree_cuda_conv_commit(const stree_conv_commit_params *p) {
    if (!commit_shapes_ok(1, p->k, 1)) return;
    conv_commit_kernel<<<ceil_div(p->channels, CONV_CHANNELS), CONV_CHANNELS, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

__global__ void kv_commit_kernel(stree_kv_commit_params p) { kv_commit_item(p, p.path, *p.n_past, blockIdx.x); }

extern "C" void stree_cuda_kv_commit(const stree_kv_commit_params *p) {
    kv_commit_kernel<<<p->len, 256, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// Every layer's commit in one launch: a block per work item — (SSM layer, head) with all its state
// rows, (SSM layer, CONV_CHANNELS channels) of the conv window, (attention layer, path entry) of KV
// rows. The item counts are fixed per state (the host sets the grid); len and n_past are read from
// device memory, so one captured graph serves every path length (items past len exit).
#define COMMIT_MAX_LAYERS 256
__global__ void __launch_bounds__(COMMIT_THREADS) commit_all_kernel(stree_commit_all_params p, int max_len) {
    __shared__ commit_smem sm;
    __shared__ int ssm_start[COMMIT_MAX_LAYERS + 1], conv_start[COMMIT_MAX_LAYERS + 1];
    for (int l = threadIdx.x; l <= p.n_mamba; l += blockDim.x) { /* one parallel load of the offsets */
        ssm_start[l] = p.item_start[l];
        conv_start[l] = p.item_start[p.n_mamba + 1 + l];
    }
    __syncthreads();
    int len = *p.len, r = blockIdx.x;
    int ssm_items = ssm_start[p.n_mamba], conv_items = conv_start[p.n_mamba];
    if (r < ssm_items) {
        int l = 0;
        while (ssm_start[l + 1] <= r) l++;
        mamba2_commit_item(p.mamba[l], p.path, len, r - ssm_start[l], 0, p.mamba[l].head_dim, sm);
        return;
    }
    r -= ssm_items;
    if (r < conv_items) {
        int l = 0;
        while (conv_start[l + 1] <= r) l++;
        conv_commit_item(p.conv[l], p.path, len, (r - conv_start[l]) * CONV_CHANNELS);
        return;
    }
    r -= conv_items;
    if (r / max_len < p.n_attn && r % max_len < len) kv_commit_item(p.kv[r / max_len], p.path, *p.n_past, r % max_len);
}

extern "C" void stree_cuda_commit_all(const stree_commit_all_params *p) {
    if (!commit_shapes_ok(p->max_d_state, p->max_conv_k, p->max_head_dim)) return;
    if (p->n_mamba > COMMIT_MAX_LAYERS) {
        stree_cuda_note("more than 256 Mamba-2 layers are not supported by commit_all", __FILE__, __LINE__);
        return;
    }
    int blocks = p->n_ssm_items + p->n_conv_items + p->n_attn * p->max_len;
    if (blocks <= 0) return;
    commit_all_kernel<<<blocks, COMMIT_THREADS, 0, stree_cuda_stream()>>>(*p, p->max_len > 0 ? p->max_len : 1);
    LAUNCHED();
}
