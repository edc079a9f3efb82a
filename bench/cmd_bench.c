/* stree bench: run a workload in several decoding modes and report latency, throughput and
 * acceptance (table on stdout, JSON / CSV files, gnuplot charts). Schemas: docs/BENCH.md. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "bench/cmd_common.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stree bench (--model DIR | --random CONFIG.json) (--workload FILE.jsonl | --synthetic N,LEN) [--max-new N]\n"
            "                   [--draft DIR | --ngram N | --self-draft] [--mode MODE ...] [--sweep]\n"
            "                   [--reps N] [--warmup N] [--json FILE] [--csv FILE] [--plot DIR]\n"
            "                   [--temperature T [--top-k K] [--top-p P] [--min-p P] [--seed S] [--target-only]]\n"
            "                   [--backend cpu|cuda]\n\n"
            "--random builds a random-weight target with the shapes of an HF config.json (benchmarks).\n"
            "Modes: ar | chain:K | tree:FILE.json | dynamic:TOPK,DEPTH,BUDGET (default: ar and chain:4;\n"
            "repeat --mode for several). --sweep adds a grid of dynamic shapes (top-k 2,4,8 x depth 2,4,6\n"
            "x budget 8,16,32,64) and writes one CSV row per configuration. Warm-up passes (default 1)\n"
            "are not measured; --reps measured passes (default 3). Without a drafter, modes other than ar\n"
            "use the target as its own drafter (measures the machinery; acceptance is then total).\n");
}

int stree_cmd_bench(int argc, char **argv) {
    bench_options o;
    int r = bench_parse_common(argc, argv, &o, usage);
    if (r) {
        bench_options_free(&o);
        return r < 0 ? 2 : 0;
    }
    if (o.n_modes == 0 && !o.sweep) {
        bench_add_mode(&o, "ar");
        bench_add_mode(&o, "chain:4");
    }
    if (o.sweep) {
        static const int ks[] = {2, 4, 8}, ds[] = {2, 4, 6}, bs[] = {8, 16, 32, 64};
        char m[64];
        if (!bench_has_mode(&o, "ar")) bench_add_mode(&o, "ar");
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 4; c++) {
                    snprintf(m, sizeof m, "dynamic:%d,%d,%d", ks[a], ds[b], bs[c]);
                    bench_add_mode(&o, m);
                }
    }
    bench_setup setup;
    if (bench_setup_open(&o, &setup)) {
        bench_options_free(&o);
        return 1;
    }
    bench_result *results = calloc((size_t)o.n_modes, sizeof *results);
    int rc = results ? 0 : 1;
    double ar_tps = 0.0;
    for (int i = 0; i < o.n_modes && !rc; i++) {
        stree_engine *e = NULL;
        stree_status s = bench_engine_for_mode(&o, &setup, o.modes[i], &e, &results[i].tree_nodes);
        if (s == STREE_OK) s = bench_run(e, &setup.workload, o.warmup, o.reps, 1, &results[i]);
        stree_engine_free(e);
        if (s != STREE_OK) {
            fprintf(stderr, "stree bench: mode %s: %s: %s\n", o.modes[i], stree_status_str(s), stree_last_error());
            rc = 1;
            break;
        }
        snprintf(results[i].mode, sizeof results[i].mode, "%s", o.modes[i]);
        if (!strcmp(o.modes[i], "ar")) ar_tps = results[i].tokens_per_s;
        fprintf(stderr, "  %-28s %8.1f tokens/s\n", o.modes[i], results[i].tokens_per_s);
    }
    for (int i = 0; i < o.n_modes && !rc; i++) results[i].speedup = ar_tps > 0 ? results[i].tokens_per_s / ar_tps : 0;
    if (!rc) {
        bench_print_table(stdout, &o, &setup, results, o.n_modes);
        if (o.json && bench_write_json(o.json, &o, &setup, results, o.n_modes)) rc = 1;
        if (o.csv && bench_write_csv(o.csv, &o, &setup, results, o.n_modes)) rc = 1;
        if (o.plot && bench_plot(o.plot, results, o.n_modes)) rc = 1;
    }
    free(results);
    bench_setup_close(&setup);
    bench_options_free(&o);
    return rc;
}
