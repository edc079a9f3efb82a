/* The op table: every compute step of the forward pass and the commit, one params struct each.
 * The CPU backend (kernels/cpu/) is the readable fp32 reference; the CUDA backend implements the
 * same table with the same structs (device pointers). Pointers carry shape comments; `ld*` are row
 * strides in elements; `maybe_` pointers may be NULL. */
#ifndef STREE_KERNELS_OPS_H
#define STREE_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/model_desc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A token tree as the kernels see it: nodes in topological order, parent[0] = -1. A chain has
 * parent[i] = i - 1. Positions are n_past + depth[i]. n_past (the committed token count) is read from
 * backend memory at run time, so a captured CUDA graph replays with the current value. */
typedef struct stree_tree_view {
    int32_t n;
    const int32_t *parent; /* [n] */
    const int32_t *depth;  /* [n] */
} stree_tree_view;

/* How the backend stores weight matrices: the CPU reference keeps fp32, CUDA bf16. */
typedef enum stree_wtype { STREE_WTYPE_F32, STREE_WTYPE_BF16 } stree_wtype;

typedef struct stree_matmul_params {
    const float *x;          /* [n, k], row stride ldx */
    const void *w;           /* [m, k] (PyTorch Linear layout), element type wtype */
    stree_wtype wtype;
    const float *maybe_bias; /* [m] */
    float *y;                /* [n, m], row stride ldy: y = alpha * (x w^T + bias) (+ y if accumulate) */
    int32_t n, k, m;
    int64_t ldx, ldy;
    float alpha;
    int32_t accumulate;
    int32_t x_relu2;         /* 1: each x element enters as relu(x)^2 (the relu2 MLP's activation) */
    const void *maybe_x_wt;  /* [n, k] contiguous: x already in the weight type (bf16 on CUDA, fp32 on
                                the CPU), as the norm that made x also stored it; never with x_relu2 */
} stree_matmul_params;

typedef struct stree_rmsnorm_params {
    const float *x;          /* [n, dim], row stride ldx */
    const float *maybe_w;    /* [dim] */
    float *y;                /* [n, dim], row stride ldy (may alias x) */
    int32_t n, dim;
    int64_t ldx, ldy;
    float eps;
    stree_norm_kind kind;    /* RMS: w*x̂; RMS_OFFSET: (1+w)*x̂ */
    void *maybe_y_wt;        /* [n, dim] contiguous: y also stored in the weight type, for a matmul */
} stree_rmsnorm_params;

typedef struct stree_gated_norm_params {
    const float *y;          /* [n, dim] scan output */
    const float *z;          /* [n, dim] gate, row stride ldz */
    const float *maybe_w;    /* [dim]; NULL = no norm: out = y * silu(z) */
    float *out;              /* [n, dim] */
    int32_t n, dim, groups, norm_before_gate;
    int64_t ldz;
    float eps;
    void *maybe_out_wt;      /* [n, dim]: out also stored in the weight type, for a matmul */
} stree_gated_norm_params;

typedef struct stree_rope_params {
    float *x;                /* [n, n_heads, head_dim] in place, row stride ldx */
    int32_t n, n_heads, head_dim, rope_dims;
    int64_t ldx;
    const int32_t *n_past;   /* [1] */
    const int32_t *depth;    /* [n]: position = n_past + depth[i] */
    float theta;
} stree_rope_params;

typedef struct stree_attn_tree_params {
    const float *q;          /* [n, n_heads * hd] */
    const float *k_cache;    /* [n_past, n_kv * hd] committed keys */
    const float *v_cache;    /* [n_past, n_kv * hd] */
    const float *k_tree;     /* [n, n_kv * hd] this tree's keys */
    const float *v_tree;     /* [n, n_kv * hd] */
    float *out;              /* [n, n_heads * hd] */
    stree_tree_view tree;
    const int32_t *n_past;   /* [1] */
    int32_t n_heads, n_kv_heads, head_dim;
    float scale;
    float *scratch;          /* [n_past + n] */
} stree_attn_tree_params;

typedef struct stree_conv_tree_params {
    const float *x;          /* [n, channels] pre-conv inputs, row stride ldx */
    const float *window;     /* [k - 1, channels] committed inputs, oldest first */
    const float *w;          /* [channels, k] */
    const float *maybe_bias; /* [channels] */
    float *out;              /* [n, channels] silu(conv) */
    float *maybe_x_copy;     /* [n, channels]: x copied here (the verify cache keeps it for the commit) */
    stree_tree_view tree;
    int32_t channels, k;
    int64_t ldx;
} stree_conv_tree_params;

typedef struct stree_mamba2_scan_params {
    const float *xbc;        /* [n, conv_dim] post-conv: x [H*P] | B [G*N] | C [G*N] */
    const float *dt_raw;     /* [n, H] pre-activation time steps, row stride ld_dt (in_proj output) */
    int64_t ld_dt;
    const float *dt_bias;    /* [H] */
    float dt_min, dt_max;
    float *dt;               /* [n, H] out: clamp(softplus(dt_raw + dt_bias), dt_min, dt_max) */
    const float *A_log;      /* [H] */
    const float *D;          /* [H] */
    const float *state;      /* [H, P, N] committed state (read only) */
    float *c;                /* [n, H] out: path-cumulative log-decay */
    float *y;                /* [n, H*P] out */
    stree_tree_view tree;
    int32_t n_heads, head_dim, n_groups, d_state;
} stree_mamba2_scan_params;

/* Commit an accepted root-to-node path: `path` lists node ids p_0 = 0 .. p_{len-1}. */
typedef struct stree_mamba2_commit_params {
    float *state;            /* [H, P, N] in/out */
    const float *xbc;        /* [n, conv_dim] post-conv (verify cache) */
    const float *dt;         /* [n, H] */
    const float *c;          /* [n, H] */
    const int32_t *path;
    int32_t len, n_heads, head_dim, n_groups, d_state;
} stree_mamba2_commit_params;

typedef struct stree_conv_commit_params {
    float *window;           /* [k - 1, channels] in/out */
    const float *x;          /* [n, channels] pre-conv inputs (verify cache) */
    const int32_t *path;
    int32_t len, channels, k;
} stree_conv_commit_params;

typedef struct stree_kv_commit_params {
    float *k_cache, *v_cache;       /* [n_ctx, row] */
    const float *k_tree, *v_tree;   /* [n, row] */
    const int32_t *path;
    const int32_t *n_past;          /* [1]: rows go to n_past .. n_past + len - 1 */
    int32_t len, row;
} stree_kv_commit_params;

/* Every layer's commit in one call (CUDA: one kernel). The descriptor arrays, path, len and n_past
 * live in backend memory; the descriptors' own path / len / n_past fields are ignored. With len read
 * from memory, one captured graph serves every path length. */
typedef struct stree_commit_all_params {
    const stree_mamba2_commit_params *mamba; /* [n_mamba] */
    const stree_conv_commit_params *conv;    /* [n_mamba] */
    const stree_kv_commit_params *kv;        /* [n_attn] */
    int32_t n_mamba, n_attn;
    const int32_t *path;                     /* [len] node ids, path[0] = 0 */
    const int32_t *len;                      /* [1] */
    const int32_t *n_past;                   /* [1]: KV rows go to n_past .. n_past + len - 1 */
    int32_t max_len;                         /* len <= max_len */
    /* set from the descriptors by the caller: work sizes (the CUDA grid) and shape limits */
    const int32_t *item_start;               /* [2 (n_mamba + 1)] backend memory: running sums of
                                              * n_heads, then of ceil(channels / 256), from 0 */
    int32_t n_ssm_items, n_conv_items;       /* the two totals */
    int32_t max_d_state, max_conv_k, max_head_dim;
} stree_commit_all_params;

typedef struct stree_ffn_act_params {
    const float *gate;       /* [n, d] (NULL for relu2), row stride ld */
    const float *up;         /* [n, d], row stride ld */
    float *out;              /* [n, d] silu(gate * gate_mult) * up, or relu(up)^2 */
    int32_t n, d;
    int64_t ld;
    stree_act act;
    float gate_mult;
} stree_ffn_act_params;

typedef struct stree_route_params {
    const float *logits;     /* [n, E] router logits */
    const float *maybe_bias; /* [E] selection bias (sigmoid routing) */
    int32_t *experts;        /* [n, top_k] out */
    float *weights;          /* [n, top_k] out */
    int32_t n, n_experts, top_k, norm_topk;
    stree_router_kind kind;
    float scale;
} stree_route_params;

typedef struct stree_embed_params {
    const int32_t *tokens;   /* [n] (device) */
    const float *table;      /* [V, D] fp32 */
    float *out;              /* [n, D] = table[tokens] * mult */
    int32_t n, d;
    float mult;
} stree_embed_params;

/* y[i, j] (+)= alpha * x[i, j] for j in [0, cols): strided copies, scaling, residual adds. */
typedef struct stree_axpby_params {
    const float *x;          /* [n, cols], row stride ldx */
    float *y;                /* [n, cols], row stride ldy (may alias x when beta == 0) */
    int32_t n, cols;
    int64_t ldx, ldy;
    float alpha, beta;       /* y = alpha * x + beta * y */
} stree_axpby_params;

/* Per row: argmax (ties: lower index) and optionally the top k with log-softmax values. */
typedef struct stree_topk_params {
    const float *x;          /* [n, V] logits */
    int32_t *idx;            /* [n, k] out, descending */
    float *logp;             /* [n, k] out: log-softmax of the chosen entries (may be NULL) */
    int32_t n, vocab, k;
} stree_topk_params;

/* Routed experts: out[i] (+)= sum_k weights[i,k] * expert_{experts[i,k]}(x[i]). */
typedef struct stree_moe_params {
    const float *x;          /* [n, D] */
    const int32_t *experts;  /* [n, top_k] */
    const float *weights;    /* [n, top_k] */
    const void *const *gate; /* [E] of [d_expert, D] (entries NULL for relu2) */
    const void *const *up;   /* [E] of [d_expert, D] */
    const void *const *down; /* [E] of [D, d_expert] */
    stree_wtype wtype;
    float *out;              /* [n, D], accumulated into */
    float *scratch;          /* [n * top_k, 3 * d_expert] */
    int32_t n, d_model, d_expert, top_k;
    stree_act act;
} stree_moe_params;

/* The random value in [0, 1) of element i of stream `seed` (splitmix64), shared by the backends. */
#ifdef __CUDACC__
#define STREE_HOST_DEVICE __host__ __device__
#else
#define STREE_HOST_DEVICE
#endif
static inline STREE_HOST_DEVICE uint64_t stree_random_bits(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline STREE_HOST_DEVICE float stree_random_unit(uint64_t seed, uint64_t i) {
    return (float)(stree_random_bits(seed, i) >> 40) * (1.0f / 16777216.0f);
}

/* ---- sampling (DESIGN.md §4, docs/SAMPLING.md). Random numbers are stree_random_bits(seed, counter + j)
 * for a per-op draw index j, so the backends draw the same values without any RNG state. */

/* Logits -> sampling distributions, per row: repetition penalty over the row's context, temperature,
 * softmax, top-k, top-p (of the top-k), min-p, renormalisation. Cuts rank tokens by (scaled logit
 * descending, index ascending); top-p keeps each ranked token whose preceding mass is below
 * top_p x (top-k mass). Row i is tree node first + i; its context is history, then the tokens of the
 * path root..node (tokens may be NULL: history only). */
typedef struct stree_sample_probs_params {
    const float *logits;     /* [n, vocab], row stride ld */
    float *probs;            /* [n, vocab] out (must not alias logits): zeros outside the kept set */
    const int32_t *history;  /* [n_history] context tokens before the tree */
    const int32_t *tokens;   /* [first + n] tree tokens (or NULL) */
    const int32_t *parent;   /* [first + n] */
    uint64_t *scratch;       /* [vocab] (the CPU backend's sort; CUDA ignores it) */
    int32_t n, vocab, first, n_history;
    int64_t ld;
    float temperature;       /* > 0 */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* (0, 1]; 1 = off */
    float min_p;             /* [0, 1); 0 = off */
    float repetition_penalty; /* 1 = off */
} stree_sample_probs_params;

/* m draws per row without replacement (each draw removes the drawn token's mass; m = 1: plain
 * sampling). Draw d of row i uses j = i * m + d. */
typedef struct stree_sample_draw_params {
    const float *probs;      /* [n, vocab], row stride ld: non-negative, row sums <= 8 */
    int32_t *out;            /* [n, m] tokens; -1 once a row has no mass left */
    int32_t n, vocab, m;     /* m <= STREE_SAMPLE_MAX_DRAWS */
    int64_t ld;
    uint64_t seed, counter;
} stree_sample_draw_params;
#define STREE_SAMPLE_MAX_DRAWS 16

/* The stochastic acceptance walk over a verified tree (DESIGN.md §4): from the root, at a node with
 * children and a draft distribution q, multi-step speculative sampling over its children in rank
 * order (accept x with prob min(1, p(x)/q(x)); else p <- norm(max(p - q, 0)), q(x) <- 0, q <- norm(q));
 * when all are rejected the bonus is drawn from the residual p; elsewhere the target-only rule (draw
 * t ~ p, descend into the child carrying t, else t is the bonus). Uses j < 2n + 1. */
typedef struct stree_sample_accept_params {
    const float *p;          /* [n, vocab] target distributions (sample_probs) */
    const float *maybe_q;    /* [n, vocab] draft distributions, rows where has_q[i] != 0 */
    const int32_t *tokens;   /* [n] */
    const int32_t *parent;   /* [n] */
    const int32_t *rank;     /* [n] sibling rank */
    const int32_t *has_q;    /* [n] (read when maybe_q is set) */
    float *work;             /* [2, vocab] scratch: the residual p and q */
    int32_t *out;            /* [n + 2] out: path length, bonus token, path (node ids root..last) */
    int32_t n, vocab;
    int32_t break_residual;  /* TEST ONLY: skip p <- norm(max(p - q, 0)) */
    uint64_t seed, counter;
} stree_sample_accept_params;

typedef struct stree_ops {
    const char *name;
    stree_wtype wtype;       /* how this backend stores weight matrices */
    /* memory: device buffers (host memory for the CPU backend); alloc returns zeroed memory or NULL */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);
    void (*download)(void *dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *dst, size_t bytes);
    /* a matrix in the backend's weight type, from fp32 host data [rows, cols]; NULL on failure */
    void *(*upload_matrix)(const float *src, int64_t rows, int64_t cols);
    /* random weights for benchmarks (same values on every backend up to the weight type):
     * a matrix uniform in +-1/sqrt(cols), a vector uniform in [lo, hi); NULL on failure */
    void *(*random_matrix)(int64_t rows, int64_t cols, uint64_t seed);
    float *(*random_vector)(int64_t n, uint64_t seed, float lo, float hi);
    void (*sync)(void);
    /* device memory in use by the whole process, bytes (0 where not measurable, e.g. the CPU) */
    size_t (*bytes_in_use)(void);
    /* CUDA graphs (NULL on backends without them): capture the ops issued between begin and end,
     * replay them with launch. Captured ops must not synchronise or allocate. */
    void (*graph_begin)(void);
    void *(*graph_end)(void); /* the executable graph, or NULL when capture failed */
    void (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);
    /* NULL when every op since the last call succeeded, else a message (and the error is cleared) */
    const char *(*take_error)(void);
    void (*embed)(const stree_embed_params *p);
    void (*axpby)(const stree_axpby_params *p);
    void (*topk)(const stree_topk_params *p);
    void (*moe)(const stree_moe_params *p);
    void (*matmul)(const stree_matmul_params *p);
    void (*rmsnorm)(const stree_rmsnorm_params *p);
    void (*gated_norm)(const stree_gated_norm_params *p);
    void (*rope)(const stree_rope_params *p);
    void (*attn_tree)(const stree_attn_tree_params *p);
    void (*conv_tree)(const stree_conv_tree_params *p);
    void (*mamba2_scan_tree)(const stree_mamba2_scan_params *p);
    void (*mamba2_commit)(const stree_mamba2_commit_params *p);
    void (*conv_commit)(const stree_conv_commit_params *p);
    void (*kv_commit)(const stree_kv_commit_params *p);
    void (*ffn_act)(const stree_ffn_act_params *p);
    void (*route)(const stree_route_params *p);
    void (*commit_all)(const stree_commit_all_params *p);
    void (*sample_probs)(const stree_sample_probs_params *p);
    void (*sample_draw)(const stree_sample_draw_params *p);
    void (*sample_accept)(const stree_sample_accept_params *p);
} stree_ops;

extern const stree_ops stree_cpu_ops;
#ifdef STREE_HAVE_CUDA
extern const stree_ops stree_cuda_ops;
/* 1 when a CUDA device is usable. */
int stree_cuda_available(void);
#endif

#ifdef __cplusplus
}
#endif
#endif
