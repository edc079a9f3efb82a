/* Per-family adapters: config.json -> stree_model_desc, checkpoint names -> stree_weights. */
#ifndef STREE_RUNTIME_FAMILY_H
#define STREE_RUNTIME_FAMILY_H

#include "runtime/config_json.h"
#include "runtime/model_desc.h"
#include "runtime/weights.h"

typedef struct stree_family {
    const char *architecture; /* config.json "architectures"[0] */
    stree_status (*parse)(const stree_cfg *cfg, stree_model_desc *desc);
    stree_status (*bind)(stree_wbinder *b, const stree_model_desc *desc, stree_weights *w);
} stree_family;

/* NULL when the architecture is not supported. */
const stree_family *stree_family_find(const char *architecture);
/* "A, B, C" list for messages. */
const char *stree_family_names(void);

extern const stree_family stree_family_mamba2;
extern const stree_family stree_family_bamba;
extern const stree_family stree_family_granite_hybrid;
extern const stree_family stree_family_nemotron_h;
extern const stree_family stree_family_falcon_h1;
extern const stree_family stree_family_llama;
extern const stree_family stree_family_qwen3;

/* ---- shared pieces of the adapters (runtime/family_common.c) ---- */
stree_status stree_desc_alloc_layers(stree_model_desc *desc, int32_t n_layers);
/* Common top-level fields: vocab_size, hidden_size, tie_word_embeddings, eos/bos, max positions. */
stree_status stree_parse_common(const stree_cfg *cfg, stree_model_desc *desc, int32_t tie_default);
/* Attention from num_attention_heads / num_key_value_heads / head_dim / rope; `rope` 0 = NoPE. */
stree_status stree_parse_attention(const stree_cfg *cfg, int32_t d_model, int32_t rope, stree_attn_desc *a);
/* Fills derived Mamba-2 sizes and checks them; returns CONFIG errors naming `what`. */
stree_status stree_mamba2_finish(const stree_cfg *cfg, stree_mamba2_desc *m);
/* time_step_limit [min, max] -> dt clamp (default none). */
stree_status stree_parse_dt_limit(const stree_cfg *cfg, stree_mamba2_desc *m);
/* Mamba-2 fields spelled mamba_* (Bamba, Granite-H, Falcon-H1) for an inner size d_inner. */
stree_status stree_parse_mamba_prefixed(const stree_cfg *cfg, int32_t d_inner, float eps, stree_mamba2_desc *m);
/* Layer-type lists: maps each string to a kind letter ('M' mamba, '*' attention, '-' MLP, 'E' MoE;
 * 0 = unknown). */
typedef char (*stree_layer_kind_map)(const char *name);
char stree_layer_kind_standard(const char *name);
stree_status stree_parse_layer_kinds(const stree_cfg *cfg, const char *key, stree_layer_kind_map map, char *kinds,
                                     int32_t cap, int32_t *n);
/* Sets neutral multipliers on a layer (1.0 everywhere). */
void stree_layer_defaults(stree_layer_desc *l);
/* Counts attention / mamba layers and assigns state indices. */
void stree_desc_index_states(stree_model_desc *desc);

/* Binders for the blocks shared by families; `prefix` ends with '.' (e.g. "model.layers.3.mamba."). */
stree_status stree_bind_mamba2(stree_wbinder *b, const char *prefix, int32_t d_model, const stree_mamba2_desc *m,
                               stree_mamba2_weights *w);
stree_status stree_bind_attention(stree_wbinder *b, const char *prefix, int32_t d_model, const stree_attn_desc *a,
                                  stree_attn_weights *w);
/* Gated MLP with separate gate/up/down tensors named prefix + gate/up/down. */
stree_status stree_bind_gated_mlp(stree_wbinder *b, const char *prefix, const char *gate, const char *up,
                                  const char *down, int32_t d_model, int32_t d_ff, stree_mlp_weights *w);
stree_status stree_bind_vector(stree_wbinder *b, const float **dst, const char *name, int64_t n);
stree_status stree_bind_matrix(stree_wbinder *b, const float **dst, const char *name, int64_t rows, int64_t cols);
/* Names inside "model.layers.{i}." of a two-sub-block decoder layer (norm + mixer(s), norm + MLP). */
typedef struct stree_layer_names {
    const char *norm1, *norm2;  /* e.g. "input_layernorm.weight", "pre_ff_layernorm.weight" */
    const char *mamba, *attn;   /* mixer prefixes, e.g. "mamba.", "self_attn." */
    const char *mlp;            /* gated MLP prefix with gate_proj/up_proj/down_proj ("mlp."); NULL: the
                                 * family binds its own MLP */
} stree_layer_names;
/* Binds the norms, the layer's mixers (by the description) and the gated MLP of layer i. */
stree_status stree_bind_decoder_layer(stree_wbinder *b, const stree_model_desc *d, int32_t i,
                                      const stree_layer_names *names, stree_layer_weights *lw);
/* Embedding, final norm and lm_head (tied or not). */
stree_status stree_bind_io(stree_wbinder *b, const stree_model_desc *desc, const char *embed, const char *final_norm,
                           const char *lm_head, stree_weights *w);
/* Allocates the per-expert pointer arrays of w. */
stree_status stree_alloc_experts(stree_weights *all, int32_t n_experts, stree_mlp_weights *w);
/* Mamba-style checkpoints (Mamba2, Nemotron-H): "backbone." or "model." prefix (found by `probe`),
 * embeddings / embedding, norm_f, lm_head. Returns the prefix. */
const char *stree_bind_backbone_io(stree_wbinder *b, const stree_model_desc *d, const char *probe, stree_weights *w,
                                   stree_status *status);
/* "model." when the checkpoint has `probe` under it, else "backbone." when it has that, else "model.". */
const char *stree_pick_prefix(const stree_wbinder *b, const char *probe);

#endif
