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
/* A model with the architecture and shapes of a config.json file and random weights (seeded; the
 * same values on every backend up to bf16 rounding): for benchmarks of real shapes. */
stree_status stree_model_create_random(const char *config_path, uint64_t seed, stree_model_params params,
                                       stree_model **out);

int32_t stree_model_vocab_size(const stree_model *model);
int32_t stree_model_n_layers(const stree_model *model);
/* Device memory in use by the process on the model's backend, bytes (0 on the CPU backend). */
size_t stree_model_device_bytes(const stree_model *model);
/* "cpu" or "cuda": the backend the model was loaded on. */
const char *stree_model_backend(const stree_model *model);
/* The architecture string of config.json, e.g. "NemotronHForCausalLM". */
const char *stree_model_architecture(const stree_model *model);
/* Token ids from config.json / generation_config.json; -1 when absent. */
int32_t stree_model_eos_token(const stree_model *model);

/* ---------------------------------------------------------------- engines */
/* An engine pairs a target model with a drafter and a tree policy. It borrows the models it is
 * given (they must outlive it) and owns the ones it loads from a config file. */
typedef struct stree_engine stree_engine;

typedef enum stree_drafter_kind {
    STREE_DRAFTER_NONE = 0, /* plain autoregressive decoding */
    STREE_DRAFTER_MODEL,    /* a draft model (same vocabulary) grows the tree with the tree forward */
    STREE_DRAFTER_NGRAM,    /* prompt lookup: continuations of earlier occurrences of the suffix */
    STREE_DRAFTER_SELF      /* the target drafts for itself (checks the machinery: all accepted) */
} stree_drafter_kind;

typedef enum stree_tree_kind {
    STREE_TREE_CHAIN = 0,   /* chain_length drafted tokens */
    STREE_TREE_BRANCHING,   /* branching[d] children per node at depth d */
    STREE_TREE_DYNAMIC,     /* EAGLE-2: top_k frontier x top_k children, depth levels, keep budget nodes */
    STREE_TREE_FILE         /* read from tree_file (JSON, see docs/TREES.md) */
} stree_tree_kind;

#define STREE_MAX_BRANCHING_DEPTH 16

/* Sampling, applied identically in AR decoding and to the target's (p) and the draft's (q)
 * distributions in speculation, in this order: repetition penalty, temperature, top-k, top-p, min-p. */
typedef struct stree_sampling_params {
    float temperature;        /* 0 (default) = greedy; otherwise logits / temperature */
    int32_t top_k;            /* keep the k most likely tokens; 0 (default) = all */
    float top_p;              /* keep the smallest set with probability >= top_p; 1 (default) = all */
    float min_p;              /* drop tokens below min_p x the top probability; 0 (default) = none */
    float repetition_penalty; /* tokens already in the context: logit / penalty if > 0, x penalty if < 0;
                               * 1 (default) = none */
    uint64_t seed;            /* the sequence's random stream (default 0): same seed, same output */
} stree_sampling_params;

typedef enum stree_accept_rule {
    STREE_ACCEPT_AUTO = 0,    /* multi-step speculative sampling for sampled draft-model trees, the
                               * target-only rule for deterministic drafts (n-gram, top-k trees) */
    STREE_ACCEPT_TARGET_ONLY  /* the target-only rule for every drafter (lossless for any tree) */
} stree_accept_rule;

typedef struct stree_engine_params {
    stree_drafter_kind drafter;   /* default NONE */
    stree_model *draft_model;     /* DRAFTER_MODEL: borrowed; its vocabulary must equal the target's */
    int32_t ngram_max;            /* NGRAM: longest suffix matched (default 3; shorter ones are tried too) */
    stree_tree_kind tree;         /* default CHAIN */
    int32_t chain_length;         /* default 4 */
    int32_t branching[STREE_MAX_BRANCHING_DEPTH]; /* BRANCHING, 0-terminated */
    int32_t top_k, depth, budget; /* DYNAMIC (defaults 4, 5, 32; budget counts the root) */
    const char *tree_file;        /* FILE: path of a tree JSON file (copied at creation) */
    int32_t n_ctx;                /* context length in tokens per sequence (default 4096) */
    int32_t chunk_size;           /* prefill chunk in tokens (default 64) */
    stree_sampling_params sampling; /* default greedy */
    stree_accept_rule accept_rule;  /* used when sampling (temperature > 0) */
    int32_t test_break_residual;    /* TEST ONLY: skip the residual update of speculative sampling, to
                                     * show the distribution test can fail. Never set otherwise. */
} stree_engine_params;

stree_engine_params stree_engine_default_params(void);
/* On failure *out is NULL. Checks the tree policy and the draft model's vocabulary. */
stree_status stree_engine_create(stree_model *target, stree_engine_params params, stree_engine **out);
/* Creates an engine from a JSON config file: {"target": DIR, "draft": DIR | null, "drafter":
 * "none"|"model"|"ngram"|"self", "ngram_max": 3, "tree": {...}, "n_ctx": 4096, "chunk_size": 64}.
 * Relative model paths are relative to the config file. The engine owns the models it loads. */
stree_status stree_engine_create_from_config(const char *path, stree_model_params model_params, stree_engine **out);
void stree_engine_free(stree_engine *engine);
stree_model *stree_engine_target(const stree_engine *engine);
/* Context length of the engine's sequences, in tokens. */
int32_t stree_engine_n_ctx(const stree_engine *engine);
/* The most nodes (root included) a step's tree can have under the engine's policy (1 for AR). */
int32_t stree_engine_tree_nodes(const stree_engine *engine);

/* ---------------------------------------------------------------- sequences */
/* One stream of tokens: the target's (and draft's) committed KV caches, SSM and conv states, the
 * committed token history, and statistics. */
typedef struct stree_seq stree_seq;

stree_status stree_seq_create(stree_engine *engine, stree_seq **out);
void stree_seq_free(stree_seq *seq);
/* Forget every committed token and the statistics. */
void stree_seq_reset(stree_seq *seq);
/* Sampling for this sequence from now on (e.g. per request); restarts its random stream from
 * params.seed. The engine's sampling params are the default. */
stree_status stree_seq_set_sampling(stree_seq *seq, stree_sampling_params params);
/* Restart the sequence's random stream from `seed` (e.g. one seed per request). */
void stree_seq_seed(stree_seq *seq, uint64_t seed);
/* Tokens the target has committed (the pending token, if any, is not counted). */
int32_t stree_seq_n_committed(const stree_seq *seq);

/* Commit tokens through the target (one forward pass per chunk; the draft model follows).
 * maybe_logits: NULL, or [n_tokens, vocab] float32 receiving the target's logits after each token.
 * On failure the committed state is unchanged. */
stree_status stree_seq_append(stree_seq *seq, const int32_t *tokens, int32_t n_tokens, float *maybe_logits);

/* Set the prompt: commits all but its last token; the last becomes the pending root of the next step. */
stree_status stree_seq_prefill(stree_seq *seq, const int32_t *prompt, int32_t n_prompt);

/* One draft -> verify -> commit step (greedy): writes the >= 1 emitted tokens into out [cap]
 * (cap >= the tree depth + 1; STREE_MAX_STEP_TOKENS always suffices). On failure the committed state
 * is unchanged. */
#define STREE_MAX_STEP_TOKENS 257
stree_status stree_seq_step(stree_seq *seq, int32_t *out, int32_t cap, int32_t *n_out);

/* Prefill + steps until max_new tokens (or eos when stop_at_eos). out_tokens: [max_new].
 * maybe_on_token (may be NULL) sees each token; returning nonzero stops. */
typedef int (*stree_token_fn)(int32_t token, void *user);
stree_status stree_seq_generate(stree_seq *seq, const int32_t *prompt, int32_t n_prompt, int32_t max_new,
                                int stop_at_eos, int32_t *out_tokens, int32_t *n_out, stree_token_fn maybe_on_token,
                                void *user);

#define STREE_STATS_DEPTHS 32
#define STREE_STATS_RANKS 16
typedef struct stree_stats {
    int64_t n_steps;        /* draft -> verify -> commit steps */
    int64_t n_emitted;      /* tokens emitted by steps (accepted drafts + bonus tokens) */
    int64_t n_drafted;      /* drafted nodes verified (tree nodes minus roots) */
    int64_t n_accepted;     /* drafted nodes accepted */
    double t_draft, t_verify, t_commit; /* seconds */
    /* acceptance by position: offered[d][r] counts the times an accepted node at depth d-1 had a
     * child of sibling rank r (d >= 1); accepted[d][r] the times that child was the one accepted.
     * accepted / offered estimates the acceptance probability per (depth, rank). */
    int64_t offered[STREE_STATS_DEPTHS][STREE_STATS_RANKS];
    int64_t accepted[STREE_STATS_DEPTHS][STREE_STATS_RANKS];
    /* positions[d]: accepted nodes at depth d-1 that had children; sum over r of accepted[d][r]
     * divided by positions[d] is the acceptance rate at depth d */
    int64_t positions[STREE_STATS_DEPTHS];
} stree_stats;

stree_status stree_seq_stats(const stree_seq *seq, stree_stats *out);

/* ---------------------------------------------------------------- tokenizers */
/* A Hugging Face tokenizer.json: BPE with the byte-level pre-tokenizer (GPT-2 / Llama-3 / Qwen2
 * split regexes taken from the file) or Metaspace / SentencePiece-style BPE with byte fallback;
 * added and special tokens; the normalizers the hybrid families use. Encode and decode equal the
 * `tokenizers` library's. */
typedef struct stree_tokenizer stree_tokenizer;

/* path: a tokenizer.json file, or a folder holding one. Errors name the file and the field. */
stree_status stree_tokenizer_load(const char *path, stree_tokenizer **out);
void stree_tokenizer_free(stree_tokenizer *tok);
int32_t stree_tokenizer_vocab_size(const stree_tokenizer *tok);
/* The id of a token's text (added / special tokens included), -1 when absent. */
int32_t stree_tokenizer_token_id(const stree_tokenizer *tok, const char *token);

/* Encodes text [len bytes of UTF-8; invalid bytes are encoded as the library does]. With
 * add_special, the post-processor's tokens (e.g. BOS) are added like `encode(add_special_tokens=True)`.
 * out: [cap]; *n_out receives the count, also when cap is too small (then STREE_ERR_INVALID_ARG). */
stree_status stree_tokenize(const stree_tokenizer *tok, const char *text, size_t len, int add_special, int32_t *out,
                            int32_t cap, int32_t *n_out);
/* Decodes ids like `decode(ids, skip_special_tokens=skip_special)`: out [cap] receives UTF-8
 * (invalid sequences become U+FFFD), NUL-terminated; *n_out the length without the NUL, also when
 * cap is too small (then STREE_ERR_INVALID_ARG). */
stree_status stree_detokenize(const stree_tokenizer *tok, const int32_t *ids, int32_t n, int skip_special, char *out,
                              size_t cap, size_t *n_out);

/* Streaming decoding: text as tokens arrive, never cutting a UTF-8 character in two. */
typedef struct stree_text_stream stree_text_stream;
stree_status stree_text_stream_create(const stree_tokenizer *tok, int skip_special, stree_text_stream **out);
void stree_text_stream_free(stree_text_stream *s);
/* Appends one token; *text receives the newly complete text (borrowed until the next call; may be ""). */
stree_status stree_text_stream_push(stree_text_stream *s, int32_t token, const char **text);
/* The text still held back at the end (an incomplete character becomes U+FFFD). */
stree_status stree_text_stream_flush(stree_text_stream *s, const char **text);

#ifdef __cplusplus
}
#endif
#endif /* STREE_H */
