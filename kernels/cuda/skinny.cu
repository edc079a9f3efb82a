// CUDA backend: the skinny matmul y[n, m] = alpha * (x[n, k] w[m, k]^T + bias) (+ y) for the few
// activation rows of a decode step or a verified tree (n <= SKINNY_MAX_ROWS), on tensor cores. It is
// the batch-invariant mode's matmul (STREE_CUDA_BATCH_INVARIANT=1, linear.cu). On the H200 it streams
// weights at ~2.4 TB/s for one row and ~0.8 TB/s for 64 (docs/PERF.md): slower than the GEMV and cuBLAS,
// which is why it is not the default.
//
// Such a product reads every weight once and little else, so the kernel is a weight stream. A block
// owns SK_BM weight rows (each warp 16 * SK_MT of them) and up to 64 tokens, and walks k in steps of
// 64 columns:
// - weights: each warp copies its rows with cp.async, whole 128-byte row pieces per copy instruction,
//   SK_STAGES - 1 steps ahead, into a swizzled tile its lanes read their mma.m16n8k16 A fragments
//   from. A fragment's k order is free as long as A and B agree, so thread q of a quad takes the
//   chunks at columns 8q and 32 + 8q of a step.
// - activations: each step's fp32 x tile is copied in the same pipeline, then rounded to bf16 (after
//   relu(x)^2 when asked) once, a step ahead, into a double-buffered, swizzled tile all warps read:
//   no bf16 copy of x in global memory.
// Enough blocks run at once (k is split when m alone gives fewer than one block per SM) that every SM
// keeps ~3 steps of weights in flight.
//
// Batch invariance: every output is summed in an order that depends only on (m, k) and the device:
// the same k steps, the same split of k over blocks (never chosen from n) and a fixed-order sum of the
// split partials. Row i of an n-row product is therefore bitwise the 1-row product of row i, so a
// drafter step and the verify of the same token agree exactly.
#include "kernels/cuda/common.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "the skinny matmul needs bf16 mma and cp.async (sm_80 or newer)"
#endif

#define SKINNY_MAX_ROWS 128 /* activation rows; more (prefill) go to cuBLAS */
#ifndef SK_WARPS
#define SK_WARPS 4
#endif
#ifndef SK_MT
#define SK_MT 2 /* 16-row m-tiles per warp */
#endif
#define SK_BM (SK_WARPS * 16 * SK_MT)    /* weight rows per block */
#define SK_BK 64                         /* k columns per step */
#ifndef SK_STAGES
#define SK_STAGES 5 /* steps in the pipeline */
#endif
#define SK_WCHUNKS (SK_MT * 4)           /* 16-byte weight chunks a thread copies, and reads, per step */
#define SK_MIN_KSLICE 512
#define SK_MAX_SPLITS 16
#define SK_MAX_TICKETS 4096
static_assert(SK_STAGES >= 3, "the main loop waits for the step after the current one");
static_assert(SK_WCHUNKS * 4 == 16 * SK_MT, "a warp copies 4 rows per instruction");

__device__ int g_sk_tickets[SK_MAX_TICKETS]; /* per output tile; zero at load, reset by the last block */
static float *g_sk_partials;                 /* [splits][n][m] */
static size_t g_sk_partials_cap; /* bytes */

struct skinny_split {
    int splits, kslice;
};

// The split of k over blocks: at least one block per SM, from (m, k) and the device only (batch invariance).
static skinny_split skinny_split_for(int m, int k) {
    int s = ceil_div(stree_cuda_sm_count(), ceil_div(m, SK_BM)), most = k / SK_MIN_KSLICE;
    if (s > most) s = most;
    if (s > SK_MAX_SPLITS) s = SK_MAX_SPLITS;
    if (s < 1) s = 1;
    int kslice = ceil_div(ceil_div(k, s), SK_BK) * SK_BK;
    return {ceil_div(k, kslice), kslice};
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

__device__ __forceinline__ uint32_t word(uint4 v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// d += a (16 x 16, row) * b (16 x 8, col), fp32 accumulation
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// A warp's weights of one step, [32 rows][8 chunks of 8 columns], chunk c of local row lr at
// c ^ (4 (lr & 1)) (conflict-free fragment reads). Each copy instruction takes whole 128-byte rows: lane
// l copies chunk l % 8 of rows 4 j + l / 8.
__device__ __forceinline__ void load_w_step(uint4 *slots, const uint4 *const (&w)[SK_WCHUNKS], int kb, int kend) {
    int lane = threadIdx.x & 31, c = lane & 7, col = kb + 8 * c;
    bool ok = col < kend;
#pragma unroll
    for (int j = 0; j < SK_WCHUNKS; j++) {
        int lr = 4 * j + (lane >> 3);
        cp_async16(slots + lr * 8 + (c ^ ((lr & 1) << 2)), w[j] + (ok ? col / 8 : 0), ok);
    }
}

// This thread's share of a step's x tile, fp32, into one stage: TN tokens x 16 chunks of 4 columns;
// chunk c of the tile is copied by thread c % threads. Missing tokens and columns are zero-filled.
template <int TN>
__device__ __forceinline__ void load_x_step(float4 *tile, const stree_matmul_params &p, int tok0, int kb, int kend) {
#pragma unroll
    for (int i = 0; i < ceil_div(TN * 16, SK_WARPS * 32); i++) {
        int c = threadIdx.x + i * SK_WARPS * 32, t = c >> 4, col = kb + 4 * (c & 15);
        if (c >= TN * 16) break;
        bool ok = col < kend && tok0 + t < p.n;
        cp_async16(tile + c, ok ? p.x + (int64_t)(tok0 + t) * p.ldx + col : p.x, ok);
    }
}

// The same chunks (this thread's own copies, landed) rounded to bf16, after relu(x)^2 when asked, into
// the bf16 tile [TN][8 chunks of 8 columns], chunk j of token t at j ^ (4 (t & 1)): conflict-free reads.
template <int TN>
__device__ __forceinline__ void convert_x_step(uint2 *bf, const float4 *tile, bool relu) {
#pragma unroll
    for (int i = 0; i < ceil_div(TN * 16, SK_WARPS * 32); i++) {
        int c = threadIdx.x + i * SK_WARPS * 32, t = c >> 4, j = (c & 15) >> 1;
        if (c >= TN * 16) break;
        float4 v = tile[c];
        if (relu) v = relu2_f4(v);
        bf[(t * 8 + (j ^ ((t & 1) << 2))) * 2 + (c & 1)] = make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }
}

__device__ __forceinline__ void store_out(const stree_matmul_params &p, int tok, int64_t row, float v) {
    v += p.maybe_bias ? p.maybe_bias[row] : 0.0f;
    float *y = p.y + tok * p.ldy + row;
    *y = p.accumulate ? *y + p.alpha * v : p.alpha * v;
}

// grid: (token tiles of 8 * NT, row blocks of SK_BM, k splits); dynamic shared memory skinny_smem(NT)
template <int NT>
__global__ void __launch_bounds__(SK_WARPS * 32) skinny_kernel(stree_matmul_params p, int kslice, float *partials) {
    constexpr int MT = SK_MT, TN = 8 * NT;
    extern __shared__ uint4 smem[];
    uint4 *wslots = smem;                                               /* [stage][warp][chunk][lane] */
    float4 *xtiles = reinterpret_cast<float4 *>(wslots + SK_STAGES * SK_WARPS * SK_WCHUNKS * 32); /* [stage][TN * 16] */
    uint4 *xbf = reinterpret_cast<uint4 *>(xtiles + SK_STAGES * TN * 16); /* [2][TN][8] bf16 */
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
    int tok0 = blockIdx.x * TN;
    int64_t row0 = (int64_t)blockIdx.y * SK_BM + warp * 16 * MT;
    int kbeg = blockIdx.z * kslice, kend = min(p.k, kbeg + kslice), nk = ceil_div(kend - kbeg, SK_BK);
    const uint4 *w[SK_WCHUNKS]; /* the rows this thread copies: local rows 4 j + lane / 8 */
#pragma unroll
    for (int j = 0; j < SK_WCHUNKS; j++) { /* a missing row re-reads the last one; never stored */
        int64_t row = min(row0 + 4 * j + (lane >> 3), (int64_t)p.m - 1);
        w[j] = reinterpret_cast<const uint4 *>((const __nv_bfloat16 *)p.w + row * p.k);
    }
    uint4 *my_slots = wslots + warp * SK_WCHUNKS * 32; /* this warp's rows */
    constexpr int W_STAGE = SK_WARPS * SK_WCHUNKS * 32, X_STAGE = TN * 16; /* uint4 / float4 per stage */
    auto issue_step = [&](int s) { /* the copies of step s into stage s % SK_STAGES */
        load_w_step(my_slots + (s % SK_STAGES) * W_STAGE, w, kbeg + s * SK_BK, kend);
        load_x_step<TN>(xtiles + (s % SK_STAGES) * X_STAGE, p, tok0, kbeg + s * SK_BK, kend);
    };
    float acc[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++) acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;

#pragma unroll
    for (int st = 0; st < SK_STAGES - 1; st++) {
        if (st < nk) issue_step(st);
        cp_async_commit();
    }
    cp_async_wait<SK_STAGES - 2>(); /* step 0 */
    convert_x_step<TN>(reinterpret_cast<uint2 *>(xbf), xtiles, p.x_relu2);
    for (int kt = 0; kt < nk; kt++) {
        cp_async_wait<SK_STAGES - 3>(); /* this thread's copies of steps kt and kt + 1 have landed */
        __syncthreads(); /* the bf16 x of step kt is complete; everyone is done with step kt - 1 */
        int ahead = kt + SK_STAGES - 1;
        if (ahead < nk) issue_step(ahead);
        cp_async_commit();
        if (kt + 1 < nk) /* x of the next step to bf16 once, for all warps */
            convert_x_step<TN>(reinterpret_cast<uint2 *>(xbf + ((kt + 1) & 1) * TN * 8),
                               xtiles + ((kt + 1) % SK_STAGES) * X_STAGE, p.x_relu2);
        uint4 wf[SK_WCHUNKS];
        const uint4 *st = my_slots + (kt % SK_STAGES) * W_STAGE;
#pragma unroll
        for (int j = 0; j < SK_WCHUNKS; j++) { /* [mt][row g, g + 8][chunk q, 4 + q] */
            int lr = 16 * (j >> 2) + 8 * ((j >> 1) & 1) + g, c = 4 * (j & 1) + q;
            wf[j] = st[lr * 8 + (c ^ ((lr & 1) << 2))];
        }
        const uint4 *xt = xbf + (kt & 1) * TN * 8;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            int t = 8 * nt + g, sw = (t & 1) << 2;
            uint4 x0 = xt[t * 8 + (q ^ sw)], x1 = xt[t * 8 + ((4 + q) ^ sw)];
            uint32_t b[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int s4 = 0; s4 < 4; s4++) {
                    int h = s4 >> 1, wd = (s4 & 1) * 2; /* chunk h, words wd, wd + 1: columns 4 s4 .. 4 s4 + 3 of it */
                    uint4 lo = wf[(mt * 2 + 0) * 2 + h], hi = wf[(mt * 2 + 1) * 2 + h];
                    mma_bf16(acc[mt][nt], word(lo, wd), word(hi, wd), word(lo, wd + 1), word(hi, wd + 1), b[2 * s4],
                             b[2 * s4 + 1]);
                }
        }
    }
    cp_async_wait<0>();

    // acc[mt][nt][e]: row row0 + 16 mt + g + 8 (e >> 1), token tok0 + 8 nt + 2q + (e & 1)
    /* f(token, row, value) for each accumulator this thread holds inside the output */
    auto each_output = [&](auto f) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int tok = tok0 + 8 * nt + 2 * q + (e & 1);
                    int64_t row = row0 + 16 * mt + g + 8 * (e >> 1);
                    if (tok < p.n && row < p.m) f(tok, row, acc[mt][nt][e]);
                }
    };
    if (gridDim.z == 1) {
        each_output([&](int tok, int64_t row, float v) { store_out(p, tok, row, v); });
        return;
    }
    // split k: every block stores its partial; the last to finish sums all of them in split order
    size_t plane = (size_t)p.n * p.m;
    each_output([&](int tok, int64_t row, float v) { partials[blockIdx.z * plane + (size_t)tok * p.m + row] = v; });
    __shared__ int last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int *ticket = &g_sk_tickets[blockIdx.y * gridDim.x + blockIdx.x];
        last = atomicAdd(ticket, 1) == (int)gridDim.z - 1;
        if (last) *ticket = 0; /* every split has arrived: ready for the next launch */
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    each_output([&](int tok, int64_t row, float) {
        const float *src = partials + (size_t)tok * p.m + row;
        float v = 0.0f;
        for (unsigned z = 0; z < gridDim.z; z++) v += __ldcg(src + z * plane); /* fixed order */
        store_out(p, tok, row, v);
    });
}

static size_t skinny_smem(int nt) {
    return (size_t)SK_STAGES * (SK_WARPS * SK_WCHUNKS * 32 + 8 * nt * 16) * sizeof(uint4) + (size_t)2 * 8 * nt * 8 * sizeof(uint4);
}

template <int NT>
static void launch_skinny(const stree_matmul_params *p, skinny_split sp, cudaStream_t s) {
    static bool sized;
    if (!sized) { /* above the default 48 KB of dynamic shared memory */
        CUDA_OK(cudaFuncSetAttribute(skinny_kernel<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)skinny_smem(NT)));
        sized = true;
    }
    dim3 grid(ceil_div(p->n, 8 * NT), ceil_div(p->m, SK_BM), sp.splits);
    skinny_kernel<NT><<<grid, SK_WARPS * 32, skinny_smem(NT), s>>>(*p, sp.kslice, g_sk_partials);
    LAUNCHED();
}

extern "C" bool stree_cuda_skinny_fits(const stree_matmul_params *p) {
    if (p->wtype != STREE_WTYPE_BF16 || p->n > SKINNY_MAX_ROWS || p->k % 8 || p->ldx % 4 || ((uintptr_t)p->x & 15) ||
        ((uintptr_t)p->w & 15))
        return false;
    skinny_split sp = skinny_split_for(p->m, p->k);
    /* tickets: one per (token tile, row block) of a split launch */
    return sp.splits == 1 || (int64_t)ceil_div(p->n, 64) * ceil_div(p->m, SK_BM) <= SK_MAX_TICKETS;
}

extern "C" void stree_cuda_skinny_matmul(const stree_matmul_params *p) {
    if (p->n <= 0 || p->m <= 0) return;
    cudaStream_t s = stree_cuda_stream();
    skinny_split sp = skinny_split_for(p->m, p->k);
    if (sp.splits > 1)
        grow_scratch((void **)&g_sk_partials, &g_sk_partials_cap, (size_t)sp.splits * p->n * p->m * sizeof(float),
                     (size_t)1 << 22);
    if (p->n <= 8) launch_skinny<1>(p, sp, s);
    else if (p->n <= 16) launch_skinny<2>(p, sp, s);
    else if (p->n <= 32) launch_skinny<4>(p, sp, s);
    else launch_skinny<8>(p, sp, s);
}
