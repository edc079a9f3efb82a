/* stree — speculative tree decoding for hybrid state-space / attention language models.
 *
 * The one public header. C ABI, opaque handles, params structs passed by value with
 * stree_*_default_params(). Every call a user can get wrong returns a stree_status; the message
 * of the last failure on the calling thread is in stree_last_error(). The library never exits
 * or aborts on user input.
 *
 * Ownership: handles returned through `out` pointers belong to the caller and are released with
 * the matching *_free (which accepts NULL). Pointers returned by getters are borrowed until the
 * next mutating call on the same handle. */
#ifndef STREE_H
#define STREE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STREE_VERSION_MAJOR 0
#define STREE_VERSION_MINOR 1

/* ---------------------------------------------------------------- status + errors */
typedef enum stree_status {
    STREE_OK = 0,
    STREE_ERR_INVALID_ARG,   /* a NULL handle, an out-of-range id, a bad size */
    STREE_ERR_IO,            /* a file could not be opened / read / mapped */
    STREE_ERR_FORMAT,        /* a file is malformed (safetensors header, JSON) */
    STREE_ERR_CONFIG,        /* config.json lacks a key or holds a bad value */
    STREE_ERR_UNSUPPORTED,   /* an architecture / dtype / feature this build does not handle */
    STREE_ERR_MISSING_TENSOR,/* the checkpoint lacks a tensor the architecture needs, or a shape differs */
    STREE_ERR_OUT_OF_MEMORY,
    STREE_ERR_CONTEXT_FULL,  /* the sequence would exceed its context length */
    STREE_ERR_BACKEND,       /* the compute backend failed (CUDA error, no device) */
    STREE_ERR_INTERNAL
} stree_status;

/* Static name of a status ("STREE_ERR_IO", ...). */
const char *stree_status_str(stree_status status);
/* Message of the last failed call on this thread ("" when none). Names the file, key, tensor or
 * value at fault. Valid until the next failing call on this thread. */
const char *stree_last_error(void);

/* ---------------------------------------------------------------- logging */
typedef enum stree_log_level { STREE_LOG_DEBUG, STREE_LOG_INFO, STREE_LOG_WARN, STREE_LOG_ERROR } stree_log_level;
typedef void (*stree_log_fn)(stree_log_level level, const char *message, void *user);
/* Route library messages (default: stderr at INFO and above). NULL restores the default. */
void stree_set_log(stree_log_fn fn, void *user, stree_log_level min_level);

/* ---------------------------------------------------------------- models */
typedef struct stree_model stree_model;

typedef enum stree_backend { STREE_BACKEND_AUTO = 0, STREE_BACKEND_CPU, STREE_BACKEND_CUDA } stree_backend;

typedef struct stree_model_params {
    stree_backend backend; /* default AUTO: CUDA when built and a device exists, else CPU */
    int32_t n_threads;     /* CPU threads; default 0 = all online cores */
} stree_model_params;

stree_model_params stree_model_default_params(void);

/* Load a Hugging Face checkpoint directory: config.json + model.safetensors (or the shards named
 * by model.safetensors.index.json). Supported architectures: Mamba2ForCausalLM, BambaForCausalLM,
 * GraniteMoeHybridForCausalLM, NemotronHForCausalLM, FalconH1ForCausalLM, LlamaForCausalLM,
 * Qwen3ForCausalLM. On failure *out is NULL. */
stree_status stree_model_load(const char *dir, stree_model_params params, stree_model **out);
void stree_model_free(stree_model *model);

int32_t stree_model_vocab_size(const stree_model *model);
int32_t stree_model_n_layers(const stree_model *model);
/* The architecture string of config.json, e.g. "NemotronHForCausalLM". */
const char *stree_model_architecture(const stree_model *model);
/* Token ids from config.json / generation_config.json; -1 when absent. */
int32_t stree_model_eos_token(const stree_model *model);

/* ---------------------------------------------------------------- sequences */
/* One stream of tokens: its committed KV cache, SSM and conv states. */
typedef struct stree_seq stree_seq;

typedef struct stree_seq_params {
    int32_t n_ctx;       /* context length in tokens (default 4096) */
    int32_t chunk_size;  /* prefill chunk in tokens (default 64) */
} stree_seq_params;

stree_seq_params stree_seq_default_params(void);
stree_status stree_seq_create(stree_model *model, stree_seq_params params, stree_seq **out);
void stree_seq_free(stree_seq *seq);
/* Forget every committed token. */
void stree_seq_reset(stree_seq *seq);
int32_t stree_seq_n_committed(const stree_seq *seq);

/* Append tokens to the sequence (one forward pass per chunk) and commit them.
 * maybe_logits: NULL, or [n_tokens, vocab] float32 receiving the logits after each token.
 * On failure the committed state is unchanged. */
stree_status stree_seq_append(stree_seq *seq, const int32_t *tokens, int32_t n_tokens, float *maybe_logits);

/* Greedy autoregressive decoding: appends the prompt, then generates up to max_new tokens
 * (stops early at eos when stop_at_eos). out_tokens: [max_new]; *n_out receives the count.
 * maybe_on_token (may be NULL) is called for each generated token; returning nonzero stops. */
typedef int (*stree_token_fn)(int32_t token, void *user);
stree_status stree_generate_greedy(stree_seq *seq, const int32_t *prompt, int32_t n_prompt, int32_t max_new,
                                   int stop_at_eos, int32_t *out_tokens, int32_t *n_out,
                                   stree_token_fn maybe_on_token, void *user);

#ifdef __cplusplus
}
#endif
#endif /* STREE_H */
