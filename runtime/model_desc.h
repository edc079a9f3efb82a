/* One internal description of every supported model: what each layer computes, with every family's
 * quirks (norm variants, multipliers, clamps, routing) spelled out as plain fields. Filled by the
 * per-family adapters (runtime/family_*.c) from config.json; read by the forward pass. */
#ifndef STREE_RUNTIME_MODEL_DESC_H
#define STREE_RUNTIME_MODEL_DESC_H

#include <stdint.h>

typedef enum stree_norm_kind {
    STREE_NORM_RMS,        /* w * x / rms(x) */
    STREE_NORM_RMS_OFFSET, /* (1 + w) * x / rms(x) — Qwen3-Next zero-centred weights */
} stree_norm_kind;

typedef enum stree_act {
    STREE_ACT_SILU, /* gated: down(silu(gate) * up) */
    STREE_ACT_RELU2 /* plain: down(relu(up)^2) */
} stree_act;

typedef struct stree_attn_desc {
    int32_t n_heads, n_kv_heads, head_dim;
    int32_t rope_dims;       /* leading dims of each head rotated (NeoX half rotation); 0 = NoPE */
    float rope_theta;
    float scale;             /* softmax scale (head_dim^-0.5, or Granite's attention_multiplier) */
    float key_mult;          /* Falcon-H1: k = k_proj(x) * key_mult before RoPE; 1 elsewhere */
    int32_t qk_norm;         /* Qwen3: per-head RMSNorm of q and k (weights [head_dim]) before RoPE */
    int32_t qkv_bias, o_bias;
} stree_attn_desc;

typedef struct stree_mamba2_desc {
    int32_t d_inner, n_heads, head_dim, n_groups, d_state, d_conv;
    int32_t conv_dim;        /* d_inner + 2 * n_groups * d_state */
    int32_t in_proj_dim;     /* 2 * d_inner + 2 * n_groups * d_state + n_heads */
    float dt_min, dt_max;    /* clamp after softplus (0 / INFINITY = none) */
    int32_t conv_bias, in_proj_bias, out_proj_bias;
    /* gated norm of y with z */
    int32_t gnorm_weight;        /* 0: no norm at all, out = y * silu(z) (Falcon-H1 mamba_rms_norm=false) */
    int32_t gnorm_groups;        /* normalise over d_inner / gnorm_groups channels (1 = full width) */
    int32_t gnorm_before_gate;   /* 1: rmsnorm(y) * w * silu(z); 0: rmsnorm(y * silu(z)) * w */
    float gnorm_eps;
    /* Falcon-H1 multipliers (1 elsewhere) */
    float in_mult;               /* in_proj(x * in_mult) */
    float seg_mult[5];           /* in_proj output segments [z | x | B | C | dt] scaled (mup vector) */
    float out_mult;              /* mixer output scaled */
} stree_mamba2_desc;

typedef enum stree_router_kind {
    STREE_ROUTER_TOPK_SOFTMAX,   /* Granite: top-k of raw logits, softmax over those k */
    STREE_ROUTER_SOFTMAX_TOPK,   /* Qwen/Mixtral: softmax over all, top-k, optional renormalise */
    STREE_ROUTER_SIGMOID_BIAS,   /* Nemotron-H/DeepSeek-V3: sigmoid, top-k on (s + bias), weights s */
} stree_router_kind;

typedef struct stree_mlp_desc {
    int32_t has_dense;           /* a dense MLP (Granite shared_mlp, Nemotron '-', shared experts) */
    stree_act dense_act;
    int32_t d_ff;
    float gate_mult, down_mult;  /* Falcon-H1 mlp_multipliers; 1 elsewhere */
    int32_t has_moe;
    stree_act expert_act;
    int32_t n_experts, top_k, d_expert;
    stree_router_kind router;
    int32_t norm_topk;           /* renormalise the chosen weights to sum 1 */
    float routed_scale;          /* routed output multiplier (Nemotron routed_scaling_factor) */
} stree_mlp_desc;

typedef struct stree_layer_desc {
    /* sub-block 1: h += residual_mult * (mixers(norm1(h))) — Falcon-H1 runs mamba and attention in parallel */
    int32_t has_attention, has_mamba2;
    float attn_in_mult, attn_out_mult; /* Falcon-H1; 1 elsewhere */
    stree_attn_desc attn;
    stree_mamba2_desc mamba2;
    /* sub-block 2: h += residual_mult * mlp(norm2(h)) */
    int32_t has_mlp;
    stree_mlp_desc mlp;
    int32_t attn_index;   /* index into the sequence's KV caches, -1 if none */
    int32_t mamba_index;  /* index into the sequence's SSM/conv states, -1 if none */
} stree_layer_desc;

typedef struct stree_model_desc {
    char architecture[64];
    int32_t vocab_size, d_model, n_layers;
    stree_layer_desc *layers;     /* [n_layers], owned */
    int32_t n_attn_layers, n_mamba_layers;
    stree_norm_kind norm_kind;
    float norm_eps;
    float embedding_mult;  /* h0 = embed[ids] * embedding_mult */
    float residual_mult;   /* Granite residual_multiplier */
    float logits_mult;     /* logits = lm_head(h) * logits_mult (Granite 1/logits_scaling, Falcon lm_head_multiplier) */
    int32_t tie_embeddings;
    int32_t max_positions; /* 0 = unknown */
    int32_t bos_token, eos_token; /* -1 when absent */
} stree_model_desc;

#endif
