/* Model weights as the forward pass reads them: fp32 host arrays (the CPU backend), one struct
 * per layer with NULL for what the layer does not have. Fused checkpoint tensors (Granite's
 * input_linear, stacked experts) are pointed into, not copied. */
#ifndef STREE_RUNTIME_WEIGHTS_H
#define STREE_RUNTIME_WEIGHTS_H

#include <stdint.h>

#include "runtime/model_desc.h"
#include "runtime/safetensors.h"

typedef struct stree_attn_weights {
    const float *q, *k, *v;        /* [n_heads*hd, D], [n_kv*hd, D], [n_kv*hd, D] */
    const float *o;                /* [D, n_heads*hd] */
    const float *maybe_q_bias, *maybe_k_bias, *maybe_v_bias, *maybe_o_bias;
    const float *maybe_q_norm, *maybe_k_norm; /* [hd] */
} stree_attn_weights;

typedef struct stree_mamba2_weights {
    const float *in_proj;          /* [in_proj_dim, D] */
    const float *maybe_in_bias;    /* [in_proj_dim] */
    const float *conv_w;           /* [conv_dim, d_conv] */
    const float *maybe_conv_b;     /* [conv_dim] */
    const float *dt_bias, *A_log, *D; /* [n_heads] */
    const float *maybe_norm;       /* [d_inner] */
    const float *out_proj;         /* [D, d_inner] */
    const float *maybe_out_bias;   /* [D] */
} stree_mamba2_weights;

typedef struct stree_mlp_weights {
    const float *gate, *up;        /* [d_ff, D] (gate NULL for relu2) */
    const float *down;             /* [D, d_ff] */
    const float *router;           /* [n_experts, D] */
    const float *maybe_router_bias;/* [n_experts]: Nemotron e_score_correction_bias */
    const float **expert_gate;     /* [n_experts] of [d_expert, D] (NULL entries for relu2) */
    const float **expert_up;       /* [n_experts] of [d_expert, D] */
    const float **expert_down;     /* [n_experts] of [D, d_expert] */
    const void *const *expert_table; /* backend copy only: [3 * n_experts] gate | up | down pointers,
                                      * an array in backend memory (what the moe op reads) */
} stree_mlp_weights;

typedef struct stree_layer_weights {
    const float *norm1, *norm2;    /* [D] (NULL when the sub-block is absent) */
    stree_attn_weights attn;
    stree_mamba2_weights mamba2;
    stree_mlp_weights mlp;
} stree_layer_weights;

typedef struct stree_weights {
    const float *embed;            /* [V, D] */
    const float *final_norm;       /* [D] */
    const float *lm_head;          /* [V, D] (== embed when tied) */
    stree_layer_weights *layers;   /* [n_layers] */
    /* ownership */
    void **allocs;
    int32_t n_allocs, cap_allocs;
} stree_weights;

/* Binding checkpoint tensors by name, with checked shapes. Messages name the tensor and the
 * checkpoint path. */
typedef struct stree_wbinder {
    const stree_checkpoint *ckpt;  /* NULL in random mode */
    stree_weights *w;
    int32_t random;                /* random weights (benchmarks): bound tensors are placeholders that
                                    * stree_weights_to_backend fills with random values */
    size_t total_bytes, done_bytes; /* for the loading progress line */
    int32_t last_percent;
} stree_wbinder;

/* The placeholder every tensor binds to in random mode (never dereferenced). */
extern const float stree_random_placeholder[1];

/* Tensor `name` converted to fp32, with exactly the given shape (ndim entries). */
stree_status stree_bind(stree_wbinder *b, const float **dst, const char *name, int32_t ndim, const int64_t *shape);
/* Like stree_bind, but *dst = NULL (and OK) when the checkpoint lacks the tensor. */
stree_status stree_bind_opt(stree_wbinder *b, const float **dst, const char *name, int32_t ndim, const int64_t *shape);
int stree_bind_has(const stree_wbinder *b, const char *name);
/* Keeps ownership of a heap block inside the weights (freed with them). */
stree_status stree_weights_own(stree_weights *w, void *block);
void stree_weights_release(stree_weights *w);

#endif
