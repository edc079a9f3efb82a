// Sampling ops (kernels/ops.h, docs/SAMPLING.md): one block per row for the logit transforms and the
// draws, one block for the acceptance walk. Results equal the CPU reference (kernels/cpu/sampling.c)
// bit for bit: the shared arithmetic of kernels/sample_math.h, fixed-point sums (order-free), and
// radix selects on the same total rank order instead of a sort. Built with --fmad=false.
#include "kernels/cuda/common.cuh"
#include "kernels/sample_math.h"

#define SB 1024 // threads per block (every kernel here)

// ---------------------------------------------------------------- block-wide helpers
__device__ __forceinline__ uint64_t warp_sum_u64(uint64_t v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block; every thread gets it. smem: 32 slots.
__device__ uint64_t block_sum_u64(uint64_t v, uint64_t *smem) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum_u64(v);
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    uint64_t t = lane < (int)(blockDim.x >> 5) ? smem[lane] : 0;
    return warp_sum_u64(t);
}

__device__ float block_max(float v, float *smem) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    float t = lane < (int)(blockDim.x >> 5) ? smem[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, o));
    return t;
}

struct draw_smem {
    uint64_t warp_mass[32];
    uint64_t base, U;
    int warp, token;
};

__device__ __forceinline__ uint64_t draw_weight(const float *x, int v, int V, const int *excl, int n_excl) {
    if (v >= V) return 0;
    for (int e = 0; e < n_excl; e++)
        if (excl[e] == v) return 0;
    return stree_fix(x[v], STREE_FIX_P);
}

// The CPU reference's draw(): inverse-CDF search on fixed-point prefixes. Warp w owns a contiguous
// chunk of the row; the warp holding the target offset scans it 32 elements at a time.
__device__ int block_draw(const float *x, int V, uint64_t bits, const int *excl, int n_excl, draw_smem *sm) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    int chunk = (V + n_warps - 1) / n_warps, lo = warp * chunk, hi = min(V, lo + chunk);
    uint64_t m = 0;
    for (int v = lo + lane; v < hi; v += 32) m += draw_weight(x, v, V, excl, n_excl);
    m = warp_sum_u64(m);
    __syncthreads(); // sm is reused across calls
    if (lane == 0) sm->warp_mass[warp] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        uint64_t W = 0;
        for (int w = 0; w < n_warps; w++) W += sm->warp_mass[w];
        sm->token = -1;
        sm->warp = -1;
        if (W) {
            uint64_t U = stree_mulhi64(bits, W), acc = 0;
            for (int w = 0; w < n_warps; w++) {
                if (acc + sm->warp_mass[w] > U) {
                    sm->warp = w, sm->base = acc, sm->U = U;
                    break;
                }
                acc += sm->warp_mass[w];
            }
        }
    }
    __syncthreads();
    if (warp == sm->warp) {
        uint64_t base = sm->base, U = sm->U;
        for (int start = lo; start < hi; start += 32) {
            uint64_t w = draw_weight(x, start + lane, hi, excl, n_excl), incl = w;
            for (int o = 1; o < 32; o <<= 1) {
                uint64_t y = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += y;
            }
            unsigned hit = __ballot_sync(0xffffffffu, base + incl > U);
            if (hit) {
                if (lane == 0) sm->token = start + __ffs(hit) - 1;
                break;
            }
            base += __shfl_sync(0xffffffffu, incl, 31);
        }
    }
    __syncthreads();
    return sm->token;
}

// ---------------------------------------------------------------- sample_probs
struct select_smem {
    unsigned cnt[256];
    unsigned long long mass[256];
    uint64_t prefix, mask; // kept: (key & mask) >= prefix
    uint64_t acc;
    int want, done;
};

__device__ __forceinline__ bool sel_kept(uint64_t key, uint64_t prefix, uint64_t mask) { return (key & mask) >= prefix; }

// The top k keys by count: 8-bit digits from the top, stopping once the chosen bin is taken whole.
__device__ void select_top_count(const float *z, int V, int k, select_smem *sm, uint64_t *prefix, uint64_t *mask) {
    __syncthreads(); // sm may still be read by a previous select
    if (threadIdx.x == 0) sm->prefix = 0, sm->mask = 0, sm->want = k, sm->done = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        __syncthreads();
        for (int b = threadIdx.x; b < 256; b += blockDim.x) sm->cnt[b] = 0;
        __syncthreads();
        uint64_t pf = sm->prefix, mk = sm->mask;
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            uint64_t key = stree_sample_key(z[v], v);
            if ((key & mk) == pf) atomicAdd(&sm->cnt[(key >> shift) & 255], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int d = 255, want = sm->want;
            for (; d > 0 && (int)sm->cnt[d] < want; d--) want -= sm->cnt[d];
            sm->prefix |= (uint64_t)d << shift;
            sm->mask |= 0xFFull << shift;
            sm->want = want;
            sm->done = (int)sm->cnt[d] == want;
        }
        __syncthreads();
        if (sm->done) break;
    }
    *prefix = sm->prefix, *mask = sm->mask;
}

// Top-p within the top-k set (kp, km): the ranked tokens whose preceding mass is below `limit`.
__device__ void select_top_mass(const float *z, int V, float mx, double S, uint64_t kp, uint64_t km, double limit,
                                select_smem *sm, uint64_t *prefix, uint64_t *mask) {
    __syncthreads();
    if (threadIdx.x == 0) sm->prefix = 0, sm->mask = 0, sm->acc = 0, sm->done = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        __syncthreads();
        for (int b = threadIdx.x; b < 256; b += blockDim.x) sm->cnt[b] = 0, sm->mass[b] = 0;
        __syncthreads();
        uint64_t pf = sm->prefix, mk = sm->mask;
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            uint64_t key = stree_sample_key(z[v], v);
            if (!sel_kept(key, kp, km) || (key & mk) != pf) continue;
            int d = (int)((key >> shift) & 255);
            atomicAdd(&sm->cnt[d], 1u);
            atomicAdd(&sm->mass[d], (unsigned long long)stree_fix(stree_softmax_p(z[v], mx, S), STREE_FIX_P));
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int d = 255;
            uint64_t acc = sm->acc;
            for (; d >= 0; d--) {
                if (!sm->cnt[d]) continue;
                if ((double)(acc + sm->mass[d]) < limit) acc += sm->mass[d]; // the whole bin is kept
                else break;
            }
            sm->acc = acc;
            if (d < 0) sm->done = 1; // every candidate is kept
            else {
                sm->prefix |= (uint64_t)d << shift;
                sm->mask |= 0xFFull << shift;
                sm->done = sm->cnt[d] == 1;
            }
        }
        __syncthreads();
        if (sm->done) break;
    }
    *prefix = sm->prefix, *mask = sm->mask;
}

__device__ __forceinline__ float penalised(float l, float r) { return l > 0.0f ? l / r : l * r; }

__global__ void __launch_bounds__(SB) sample_probs_kernel(stree_sample_probs_params p) {
    __shared__ uint64_t red[32];
    __shared__ float redf[32];
    __shared__ select_smem sm;
    int i = blockIdx.x, V = p.vocab, node = p.first + i;
    const float *l = p.logits + (int64_t)i * p.ld;
    float *z = p.probs + (int64_t)i * V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) z[v] = l[v];
    float r = p.repetition_penalty;
    if (r != 1.0f) { // repeats write the same value from l: no dedup needed
        __syncthreads();
        for (int j = threadIdx.x; j < p.n_history; j += blockDim.x) {
            int t = p.history[j];
            if (t >= 0 && t < V) z[t] = penalised(l[t], r);
        }
        if (threadIdx.x == 0 && p.tokens)
            for (int j = node; j >= 0; j = p.parent[j]) {
                int t = p.tokens[j];
                if (t >= 0 && t < V) z[t] = penalised(l[t], r);
            }
    }
    __syncthreads();
    float inv_t = 1.0f / p.temperature, mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float s = z[v] * inv_t;
        z[v] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx, redf);
    uint64_t s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += stree_fix(stree_sample_exp(SM_ADD(z[v], -mx)), STREE_FIX_EXP);
    double S = (double)block_sum_u64(s, red) / STREE_FIX_EXP;
    int k = p.top_k > 0 && p.top_k < V ? p.top_k : V;
    bool use_p = p.top_p > 0.0f && p.top_p < 1.0f;
    uint64_t kp = 0, km = 0, pp = 0, pm = 0; // kept sets: everything until a cut narrows them
    if (k < V) select_top_count(z, V, k, &sm, &kp, &km);
    if (use_p) {
        uint64_t m = 0;
        for (int v = threadIdx.x; v < V; v += blockDim.x)
            if (sel_kept(stree_sample_key(z[v], v), kp, km)) m += stree_fix(stree_softmax_p(z[v], mx, S), STREE_FIX_P);
        uint64_t mass_k = block_sum_u64(m, red);
        select_top_mass(z, V, mx, S, kp, km, (double)p.top_p * (double)mass_k, &sm, &pp, &pm);
    }
    __syncthreads(); // every read of the scaled logits is done
    float floor_p = p.min_p * (float)(1.0 / S);
    uint64_t kept = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        uint64_t key = stree_sample_key(z[v], v);
        float q = sel_kept(key, kp, km) && sel_kept(key, pp, pm) ? stree_softmax_p(z[v], mx, S) : 0.0f;
        z[v] = q < floor_p ? 0.0f : q;
        kept += stree_fix(z[v], STREE_FIX_P);
    }
    double K = (double)block_sum_u64(kept, red) / STREE_FIX_P;
    for (int v = threadIdx.x; v < V; v += blockDim.x) z[v] = (float)((double)z[v] / K);
}

extern "C" void stree_cuda_sample_probs(const stree_sample_probs_params *p) {
    if (p->n <= 0) return;
    sample_probs_kernel<<<p->n, SB, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// ---------------------------------------------------------------- sample_draw
__global__ void __launch_bounds__(SB) sample_draw_kernel(stree_sample_draw_params p) {
    __shared__ draw_smem sm;
    __shared__ int drawn[STREE_SAMPLE_MAX_DRAWS];
    int i = blockIdx.x, d = 0;
    const float *x = p.probs + (int64_t)i * p.ld;
    int32_t *out = p.out + (int64_t)i * p.m;
    for (; d < p.m; d++) {
        int t = block_draw(x, p.vocab, stree_random_bits(p.seed, p.counter + (uint64_t)(i * p.m + d)), drawn, d, &sm);
        if (threadIdx.x == 0) out[d] = t, drawn[d] = t;
        __syncthreads();
        if (t < 0) break;
    }
    for (int e = d + threadIdx.x; e < p.m; e += blockDim.x) out[e] = -1;
}

extern "C" void stree_cuda_sample_draw(const stree_sample_draw_params *p) {
    if (p->n <= 0 || p->m <= 0) return;
    sample_draw_kernel<<<p->n, SB, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}

// ---------------------------------------------------------------- sample_accept
__device__ void block_normalise(float *x, int V, uint64_t *red) {
    uint64_t s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += stree_fix(x[v], STREE_FIX_P);
    s = block_sum_u64(s, red);
    if (s) {
        double S = (double)s / STREE_FIX_P;
        for (int v = threadIdx.x; v < V; v += blockDim.x) x[v] = (float)((double)x[v] / S);
    }
    __syncthreads();
}

__global__ void __launch_bounds__(SB) sample_accept_kernel(stree_sample_accept_params p) {
    __shared__ uint64_t red[32];
    __shared__ draw_smem dsm;
    __shared__ int kids[256];
    __shared__ int n_kids, len, bonus;
    int V = p.vocab, node = 0;
    uint64_t j = p.counter;
    float *pw = p.work, *qw = p.work + V;
    int32_t *path = p.out + 2;
    if (threadIdx.x == 0) len = 1, path[0] = 0, bonus = -1;
    for (;;) {
        __syncthreads();
        if (threadIdx.x == 0) { // children in sibling-rank order (the drafter's sampling order)
            int c = 0;
            for (int u = node + 1; u < p.n && c < 256; u++) {
                if (p.parent[u] != node) continue;
                int b = c++;
                for (; b > 0 && p.rank[kids[b - 1]] > p.rank[u]; b--) kids[b] = kids[b - 1];
                kids[b] = u;
            }
            n_kids = c;
        }
        __syncthreads();
        const float *prow = p.p + (int64_t)node * V;
        int next = -1;
        if (n_kids && p.maybe_q && p.has_q[node]) { // multi-step speculative sampling
            const float *qrow = p.maybe_q + (int64_t)node * V;
            for (int v = threadIdx.x; v < V; v += blockDim.x) pw[v] = prow[v], qw[v] = qrow[v];
            __syncthreads();
            for (int a = 0; a < n_kids; a++) {
                int x = p.tokens[kids[a]];
                float px = pw[x], qx = qw[x];
                double u = stree_unit53(stree_random_bits(p.seed, j++));
                if (qx > 0.0f && u < (double)px / (double)qx) {
                    next = kids[a];
                    break;
                }
                __syncthreads(); // every thread has read pw[x], qw[x]
                if (!p.break_residual) {
                    for (int v = threadIdx.x; v < V; v += blockDim.x) pw[v] = pw[v] - qw[v] > 0.0f ? pw[v] - qw[v] : 0.0f;
                    block_normalise(pw, V, red);
                }
                if (threadIdx.x == 0) qw[x] = 0.0f;
                __syncthreads();
                block_normalise(qw, V, red);
            }
            if (next < 0) {
                uint64_t bits = stree_random_bits(p.seed, j++);
                int t = block_draw(pw, V, bits, NULL, 0, &dsm);
                if (t < 0) t = block_draw(prow, V, bits, NULL, 0, &dsm); // rounding left no residual
                if (threadIdx.x == 0) bonus = t;
                break;
            }
        } else { // target-only
            int t = block_draw(prow, V, stree_random_bits(p.seed, j++), NULL, 0, &dsm);
            for (int a = 0; a < n_kids && next < 0; a++)
                if (p.tokens[kids[a]] == t) next = kids[a];
            if (next < 0) {
                if (threadIdx.x == 0) bonus = t;
                break;
            }
        }
        node = next;
        __syncthreads(); // kids[] is rebuilt next round
        if (threadIdx.x == 0) path[len++] = node;
    }
    __syncthreads();
    if (threadIdx.x == 0) p.out[0] = len, p.out[1] = bonus;
}

extern "C" void stree_cuda_sample_accept(const stree_sample_accept_params *p) {
    sample_accept_kernel<<<1, SB, 0, stree_cuda_stream()>>>(*p);
    LAUNCHED();
}
