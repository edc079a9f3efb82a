/* Internal model and sequence structs shared by the runtime files. */
#ifndef STREE_RUNTIME_MODEL_H
#define STREE_RUNTIME_MODEL_H

#include "kernels/ops.h"
#include "runtime/model_desc.h"
#include "runtime/weights.h"
#include "stree.h"

struct stree_model {
    stree_model_desc desc;
    stree_weights weights;      /* fp32 host copy, as loaded */
    stree_weights dw;           /* the backend's copy (CPU: the same arrays); matrix fields point to
                                 * data of ops->wtype; mlp.expert_table is a device array */
    void **dev_allocs;          /* backend buffers owned by dw */
    size_t weight_bytes;        /* backend bytes one decode step reads (matrices + vectors; one
                                 * embedding row; top_k of the experts) */
    int32_t n_dev_allocs, cap_dev_allocs;
    const stree_ops *ops;
    stree_model_params params;
    char dir[512];
};

/* Builds model->dw for model->ops from the host weights; frees it. */
stree_status stree_weights_to_backend(stree_model *m, int random, uint64_t seed);
void stree_weights_backend_free(stree_model *m);

/* Small vectors cached per tree node during a forward; the commit reads them (DESIGN.md §2).
 * Rows are node ids of the last forward. */
typedef struct stree_state stree_state;

typedef struct stree_verify_cache {
    float **k_tree, **v_tree;   /* per attention layer: [max_nodes, n_kv * hd] */
    float **xbc_pre;            /* per Mamba-2 layer: [max_nodes, conv_dim] pre-conv inputs */
    float **xbc;                /* per Mamba-2 layer: [max_nodes, conv_dim] post-conv x | B | C */
    float **dt;                 /* per Mamba-2 layer: [max_nodes, H] */
    float **c;                  /* per Mamba-2 layer: [max_nodes, H] path-cumulative log-decay */
    int32_t n_nodes;            /* nodes of the last forward; 0 = nothing to commit */
} stree_verify_cache;

/* Scratch for one forward: activations sized for max_nodes rows (device buffers, except h_*). */
typedef struct stree_workspace {
    float *h;       /* [max_nodes, D] residual stream */
    float *xn;      /* [max_nodes, D] normed input */
    void *xn_wt;    /* [max_nodes, D] xn (or the final norm's output) in the weight type, for the matmuls */
    void *g_wt;     /* [max_nodes, max d_inner] the Mamba-2 gated norm's output in the weight type */
    float *acc;     /* [max_nodes, D] sub-block output */
    float *tmp;     /* [max_nodes, D] */
    float *big;     /* [max_nodes, max_width] projections */
    float *big2;    /* [max_nodes, max_width] */
    float *big3;    /* [max_nodes, max_width] */
    float *scores;  /* [n_ctx + max_nodes] */
    float *route_w; /* [max_nodes, max_top_k] */
    int32_t *route_e;
    float *moe_scratch;  /* [max_nodes * max_top_k, 3 * max_d_expert] */
    float *logits;       /* [max_nodes, V] */
    int32_t *io;         /* [1 + 3 * max_nodes]: n_past | tokens | parent | depth of this forward, the
                          * three arrays nb long (nb = the forward's node count): one upload a step */
    int32_t *tokens;     /* [nb] = io + 1 */
    int32_t *parent;     /* [nb] = io + 1 + nb */
    int32_t *depth;      /* [nb] = io + 1 + 2 nb */
    int32_t *commit_io;  /* [1 + max_nodes]: len | path of the commit (one upload) */
    int32_t *path;       /* [max_nodes] = commit_io + 1: the path being committed */
    int32_t *n_past;     /* [1] = io: the committed token count, as the kernels read it */
    int32_t *topk_idx;   /* [max_nodes, 16] */
    float *topk_logp;
    int32_t h_tokens[4096]; /* host copies (padding, validation, commit checks) */
    int32_t h_depth[4096];
    int32_t h_parent[4096];
    int32_t h_io[1 + 3 * 4096];
} stree_workspace;

/* One model's committed state for one stream (the target's, or the draft model's). */
struct stree_state {
    stree_model *model;
    int32_t n_ctx, chunk_size;
    int32_t max_nodes;
    int32_t n_committed;
    int32_t last_token;         /* last committed token, -1 when empty */
    float **k_cache, **v_cache; /* per attention layer: [n_ctx, n_kv * hd] */
    float **conv_state;         /* per Mamba-2 layer: [d_conv - 1, conv_dim] oldest first */
    float **ssm_state;          /* per Mamba-2 layer: [H, P, N] */
    stree_verify_cache vc;
    stree_workspace ws;
    /* CUDA graphs: forwards by [logits?][log2 of the node bucket], commits by path length */
    int32_t use_graphs;         /* 0 after a failed capture, or with STREE_NO_GRAPHS=1 */
    void *fwd_graphs[2][13];
    void **commit_graphs;       /* [max_nodes + 1] (backends without commit_all) */
    /* commit_all: every layer's commit descriptors in backend memory, one graph for any length */
    stree_commit_all_params commit_all;
    void *commit_all_graph;
    int32_t h_commit_io[1 + 4096];
};

/* A token tree for one forward (spec/ builds richer ones). */
typedef struct stree_fwd_tree {
    int32_t n;
    const int32_t *tokens; /* [n] */
    const int32_t *parent; /* [n], parent[0] = -1, parent[i] < i */
} stree_fwd_tree;

/* Forward over a token tree from the committed state, which is only read. Fills the verify cache.
 * When logits is set, the logits of the rows with maybe_rows[i] != 0 (all rows if NULL) are left in
 * the device buffer ws.logits [n, V]. */
stree_status stree_forward_tree(stree_state *st, const stree_fwd_tree *tree, int logits, const uint8_t *maybe_rows);
/* Forward + copy of the logits to the host: out [n, V] (rows not requested are left as they were). */
stree_status stree_forward_tree_host(stree_state *st, const stree_fwd_tree *tree, float *out, const uint8_t *maybe_rows);
/* The k best tokens (and their log-softmax when logp != NULL) of logits rows [0, n) of the last
 * forward, to the host: idx [n, k], logp [n, k]. k <= 16. */
void stree_state_topk(stree_state *st, int32_t n, int32_t k, int32_t *idx, float *logp);
stree_status stree_state_create(stree_model *model, int32_t n_ctx, int32_t chunk_size, stree_state **out);
void stree_state_free(stree_state *st);
void stree_state_reset(stree_state *st);
/* Chain forward + commit of tokens in chunks; maybe_logits [n, V]. Validates before any commit. */
stree_status stree_state_append(stree_state *st, const int32_t *tokens, int32_t n_tokens, float *maybe_logits);

/* Commit the root-to-node path `path` (p_0 = 0, len >= 1) of the last forward. */
stree_status stree_commit_path(stree_state *st, const int32_t *path, int32_t len, int32_t last_token);

#endif
