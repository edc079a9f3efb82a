/* The stree CLI's bench and tune commands (bench/cmd_*.c). */
#ifndef STREE_BENCH_COMMANDS_H
#define STREE_BENCH_COMMANDS_H

#include <stdint.h>

#include "stree.h"

int stree_cmd_bench(int argc, char **argv);
int stree_cmd_tune(int argc, char **argv);

/* A workload: prompts (token ids) and how many tokens to generate for each. */
typedef struct bench_prompt {
    int32_t *tokens;
    int32_t n_tokens, max_new;
} bench_prompt;

typedef struct bench_workload {
    bench_prompt *prompts;
    int32_t n_prompts;
} bench_workload;

/* JSONL: one object per line, {"tokens": [ids...]} (or "prompt_ids"), optional "max_new".
 * Errors name the file and the line. */
stree_status bench_workload_load(const char *path, int32_t vocab, int32_t default_max_new, bench_workload *out);
/* n prompts of len random tokens (seeded), each generating max_new. */
stree_status bench_workload_synthetic(int32_t n, int32_t len, int32_t vocab, int32_t max_new, uint32_t seed,
                                      bench_workload *out);
void bench_workload_free(bench_workload *w);

/* One measured configuration. */
typedef struct bench_result {
    char mode[128];
    int32_t n_requests;
    double ttft_ms;                 /* median over requests */
    double tpot_p50_ms, tpot_p90_ms, tpot_p99_ms; /* per output token, each token weighted once */
    double tokens_per_s;            /* output tokens / decode time */
    double tokens_per_step, accepted_per_step;
    double t_draft_s, t_verify_s, t_commit_s, t_total_s;
    double speedup;                 /* tokens/s over the AR mode's, 0 when no AR mode ran */
    int32_t tree_nodes;             /* node budget of the shape (1 for AR) */
    double peak_device_gb;
    stree_stats stats;              /* summed over the measured requests */
} bench_result;

/* Runs the workload on an engine: warm-up passes (not measured), then reps passes. */
stree_status bench_run(stree_engine *engine, const bench_workload *w, int32_t warmup, int32_t reps, int progress,
                       bench_result *out);

#endif
