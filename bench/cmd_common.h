/* Shared by stree bench and stree tune: options, models + workload, engines per mode, reports. */
#ifndef STREE_BENCH_CMD_COMMON_H
#define STREE_BENCH_CMD_COMMON_H

#include <stdio.h>

#include "bench/commands.h"

#define BENCH_MAX_MODES 64

typedef struct bench_options {
    const char *model, *random_config, *draft, *workload, *json, *csv, *plot, *out;
    int32_t ngram, self_draft, max_new, reps, warmup, sweep, max_budget;
    int32_t synth_n, synth_len;
    stree_backend backend;
    stree_sampling_params sampling;
    int32_t target_only;
    char *modes[BENCH_MAX_MODES];
    int n_modes;
    char command[2048];      /* as typed, for the reports */
} bench_options;

typedef struct bench_setup {
    stree_model *target, *draft;
    bench_workload workload;
    char device[256];
} bench_setup;

/* 0 ok, 1 --help printed, -1 bad arguments (message printed). */
int bench_parse_common(int argc, char **argv, bench_options *o, void (*usage)(FILE *));
void bench_add_mode(bench_options *o, const char *mode);
void bench_options_free(bench_options *o);
int bench_has_mode(const bench_options *o, const char *mode);
/* Loads the models and the workload; 0 on success (message on stderr otherwise). */
int bench_setup_open(const bench_options *o, bench_setup *s);
void bench_setup_close(bench_setup *s);
/* An engine for "ar", "chain:K", "tree:FILE", "dynamic:K,D,B"; *nodes = the shape's node budget. */
stree_status bench_engine_for_mode(const bench_options *o, const bench_setup *s, const char *mode, stree_engine **out,
                                   int32_t *nodes);

void bench_print_table(FILE *f, const bench_options *o, const bench_setup *s, const bench_result *r, int n);
int bench_write_json(const char *path, const bench_options *o, const bench_setup *s, const bench_result *r, int n);
int bench_write_csv(const char *path, const bench_options *o, const bench_setup *s, const bench_result *r, int n);
int bench_plot(const char *dir, const bench_result *r, int n);

#endif
