/* stree tune: measure the verify-latency curve on this device and the drafter's acceptance per
 * (depth, sibling rank) on a calibration workload, then build the static tree that maximises
 * expected accepted tokens per second (Sequoia-style dynamic programming) and write it as a tree
 * JSON the engine loads (--tree FILE / "tree" in an engine config). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/cmd_common.h"
#include "runtime/model.h"

#define TUNE_MAX_NODES 256
#define TUNE_DEPTHS STREE_STATS_DEPTHS
#define TUNE_RANKS 8

static void usage(FILE *f) {
    fprintf(f,
            "usage: stree tune (--model DIR | --random CONFIG.json) (--workload FILE.jsonl | --synthetic N,LEN) --out TREE.json\n"
            "                  [--draft DIR | --ngram N | --self-draft] [--max-budget N] [--max-new N]\n"
            "                  [--backend cpu|cuda]\n\n"
            "1. calibrates the drafter on the workload with a static tree offering ranks 0-3 at depth 1,\n"
            "   0-1 at depths 2-3 and a chain to depth 8: acceptance per (depth, sibling rank);\n"
            "2. measures the target's verify latency over tree sizes 1..max-budget on this device,\n"
            "   and the draft model's forward latency (its cost per drafted level);\n"
            "3. picks, by dynamic programming, the tree of each size with the most expected accepted\n"
            "   tokens, and the size with the most expected tokens per second; writes it to --out.\n");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* p[d][r]: probability that the rank-r child of an accepted node at depth d-1 is accepted */
static double p_acc[TUNE_DEPTHS][TUNE_RANKS];
/* f[d][m]: best expected accepted descendants of a node at depth d given m more nodes;
 * best_j[d][r][m]: nodes given to the rank-r child's subtree (0 = none) in the optimum of h */
static double f_best[TUNE_DEPTHS + 1][TUNE_MAX_NODES];
static double h_best[TUNE_DEPTHS][TUNE_RANKS + 1][TUNE_MAX_NODES];
static int16_t best_j[TUNE_DEPTHS][TUNE_RANKS + 1][TUNE_MAX_NODES];

static void solve(int32_t max_m) {
    memset(f_best, 0, sizeof f_best);
    for (int d = TUNE_DEPTHS - 2; d >= 0; d--) {
        for (int m = 0; m <= max_m; m++) h_best[d][TUNE_RANKS][m] = 0.0, best_j[d][TUNE_RANKS][m] = 0;
        for (int r = TUNE_RANKS - 1; r >= 0; r--) {
            double p = p_acc[d + 1][r];
            for (int m = 0; m <= max_m; m++) {
                double best = h_best[d][r + 1][m];
                int bj = 0;
                for (int j = 1; j <= m && p > 0; j++) {
                    double v = p * (1.0 + f_best[d + 1][j - 1]) + h_best[d][r + 1][m - j];
                    if (v > best + 1e-12) best = v, bj = j;
                }
                h_best[d][r][m] = best;
                best_j[d][r][m] = (int16_t)bj;
            }
        }
        for (int m = 0; m <= max_m; m++) f_best[d][m] = h_best[d][0][m];
    }
}

/* Appends the optimal subtree under the node with rank path prefix[0..len) using m more nodes. */
static void emit(FILE *f, int d, int m, int32_t *prefix, int len, int *first) {
    for (int r = 0; r < TUNE_RANKS && m > 0; r++) {
        int j = best_j[d][r][m];
        if (!j) continue;
        prefix[len] = r;
        fprintf(f, "%s[", *first ? "" : ", ");
        for (int k = 0; k <= len; k++) fprintf(f, "%s%d", k ? ", " : "", prefix[k]);
        fprintf(f, "]");
        *first = 0;
        emit(f, d + 1, j - 1, prefix, len + 1, first);
        m -= j;
    }
}

static int tree_depth(int d, int m) {
    int deepest = 0;
    for (int r = 0; r < TUNE_RANKS && m > 0; r++) {
        int j = best_j[d][r][m];
        if (!j) continue;
        int sub = 1 + tree_depth(d + 1, j - 1);
        if (sub > deepest) deepest = sub;
        m -= j;
    }
    return deepest;
}

/* nodes per depth (counts[1..]) of the optimal subtree under a node at depth d with m more nodes */
static void level_counts(int d, int m, int32_t *counts) {
    for (int r = 0; r < TUNE_RANKS && m > 0; r++) {
        int j = best_j[d][r][m];
        if (!j) continue;
        counts[d + 1]++;
        level_counts(d + 1, j - 1, counts);
        m -= j;
    }
}

/* median verify latency (forward + argmax of all nodes) of random trees of n nodes, seconds */
static double verify_latency(stree_state *st, int32_t n, int32_t vocab, unsigned *seed) {
    double t[7];
    int32_t tokens[TUNE_MAX_NODES], parent[TUNE_MAX_NODES], depth[TUNE_MAX_NODES], argmax[TUNE_MAX_NODES];
    for (int it = -2; it < 7; it++) {
        parent[0] = -1, depth[0] = 0, tokens[0] = (int32_t)(rand_r(seed) % (unsigned)vocab);
        for (int32_t i = 1; i < n; i++) {
            int32_t p;
            do p = (int32_t)(rand_r(seed) % (unsigned)i); while (depth[p] >= 8);
            parent[i] = p, depth[i] = depth[p] + 1, tokens[i] = (int32_t)(rand_r(seed) % (unsigned)vocab);
        }
        stree_fwd_tree ft = {.n = n, .tokens = tokens, .parent = parent};
        double a = now();
        if (stree_forward_tree(st, &ft, 1, NULL) != STREE_OK) return -1.0;
        stree_state_topk(st, n, 1, argmax, NULL);
        st->model->ops->sync();
        if (it >= 0) t[it] = now() - a;
    }
    for (int i = 1; i < 7; i++) /* insertion sort, 7 entries */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[3];
}

/* lat[1..max_n]: median forward + argmax latency of random trees of each size (measured at a few
 * sizes, linear in between) over a random context; prints the measured rows. 0 on success. */
static int latency_curve(stree_model *m, const char *what, int32_t max_n, double *lat) {
    stree_state *st = NULL;
    int32_t V = stree_model_vocab_size(m), ctx_len = 256;
    stree_status s = stree_state_create(m, ctx_len + 512, 64, &st);
    int32_t *ctx = malloc((size_t)ctx_len * sizeof *ctx);
    unsigned seed = 7;
    for (int32_t i = 0; ctx && i < ctx_len; i++) ctx[i] = (int32_t)(rand_r(&seed) % (unsigned)V);
    if (s == STREE_OK && ctx) s = stree_state_append(st, ctx, ctx_len, NULL);
    static const int32_t sizes[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256};
    int32_t prev = 0, rc = s == STREE_OK && ctx ? 0 : 1;
    printf("%s (forward + argmax over every node), context %d:\n| nodes | ms |\n|---|---|\n", what, ctx_len);
    for (size_t i = 0; !rc && i < sizeof sizes / sizeof *sizes && sizes[i] <= max_n; i++) {
        int32_t n = sizes[i];
        lat[n] = verify_latency(st, n, V, &seed);
        if (lat[n] < 0) {
            rc = 1;
            break;
        }
        printf("| %d | %.3f |\n", n, 1e3 * lat[n]);
        for (int32_t k = prev + 1; prev && k < n; k++) /* linear in between */
            lat[k] = lat[prev] + (lat[n] - lat[prev]) * (double)(k - prev) / (double)(n - prev);
        prev = n;
    }
    for (int32_t k = prev + 1; k <= max_n; k++) lat[k] = lat[prev];
    printf("\n");
    free(ctx);
    stree_state_free(st);
    return rc;
}

int stree_cmd_tune(int argc, char **argv) {
    bench_options o;
    int r = bench_parse_common(argc, argv, &o, usage);
    bench_options_free(&o); /* tune uses no --mode */
    if (r) return r < 0 ? 2 : 0;
    if (!o.out) {
        fprintf(stderr, "stree tune: --out TREE.json is required\n");
        return 2;
    }
    if (o.max_budget > TUNE_MAX_NODES) o.max_budget = TUNE_MAX_NODES;
    bench_setup setup;
    if (bench_setup_open(&o, &setup)) return 1;
    int rc = 0;
    /* 1. calibration: a static tree that offers 4 ranks at depth 1, 2 at depths 2-3 and a rank-0
     * chain down to depth 8, so every (depth, rank) the DP may use gets measured (a dynamic tree
     * prunes by draft score and can leave the deep positions unmeasured) */
    char mode[1100], calib[1024];
    snprintf(calib, sizeof calib, "%s.calibration.json", o.out);
    FILE *cf = fopen(calib, "w");
    if (!cf || fputs("{\"type\": \"static\", \"branching\": [4, 2, 2, 1, 1, 1, 1, 1]}\n", cf) < 0 || fclose(cf)) {
        fprintf(stderr, "stree tune: cannot write %s: %s\n", calib, strerror(errno));
        bench_setup_close(&setup);
        return 1;
    }
    snprintf(mode, sizeof mode, "tree:%s", calib);
    stree_engine *e = NULL;
    bench_result cal;
    memset(&cal, 0, sizeof cal);
    stree_status s = bench_engine_for_mode(&o, &setup, mode, &e, &cal.tree_nodes);
    if (s == STREE_OK) s = bench_run(e, &setup.workload, 0, 1, 1, &cal);
    stree_engine_free(e);
    if (s != STREE_OK) {
        fprintf(stderr, "stree tune: calibration failed: %s: %s\n", stree_status_str(s), stree_last_error());
        bench_setup_close(&setup);
        return 1;
    }
    for (int d = 1; d < TUNE_DEPTHS; d++)
        for (int k = 0; k < TUNE_RANKS; k++)
            p_acc[d][k] = cal.stats.offered[d][k] ? (double)cal.stats.accepted[d][k] / (double)cal.stats.offered[d][k] : 0;
    double steps = (double)(cal.stats.n_steps ? cal.stats.n_steps : 1);
    double draft_per_level = cal.stats.t_draft / steps / 8.0, commit_per_step = cal.stats.t_commit / steps;
    remove(calib);
    /* 2. the verify-latency curve, and the draft model's (a model drafter forwards the tree grown so
     * far at every level, so its cost per level depends on the nodes forwarded) */
    double lat[TUNE_MAX_NODES + 1] = {0}, dlat[TUNE_MAX_NODES + 1] = {0};
    printf("command: %s\ndevice: %s\n\n", o.command, setup.device);
    if (latency_curve(setup.target, "verify latency of the target", o.max_budget, lat)) rc = 1;
    stree_model *drafter = setup.draft ? setup.draft : o.self_draft ? setup.target : NULL;
    if (!rc && drafter && latency_curve(drafter, "forward latency of the drafter", o.max_budget, dlat)) rc = 1;
    /* 3. the tree of each size, and the size with the most tokens per second */
    solve(o.max_budget - 1);
    int32_t best_n = 1;
    double best_rate = 0.0;
    printf("\nacceptance per (depth, rank) from calibration (%s, %lld steps):\n| depth | r0 | r1 | r2 | r3 |\n"
           "|---|---|---|---|---|\n", mode, (long long)cal.stats.n_steps);
    for (int d = 1; d <= 8; d++)
        printf("| %d | %.2f | %.2f | %.2f | %.2f |\n", d, p_acc[d][0], p_acc[d][1], p_acc[d][2], p_acc[d][3]);
    printf("\n| nodes | expected tokens/step | predicted step ms | predicted tokens/s |\n|---|---|---|---|\n");
    for (int32_t n = 1; n <= o.max_budget && !rc; n++) {
        double tokens = 1.0 + f_best[0][n - 1];
        double draft = 0.0;
        if (n > 1 && drafter) { /* level L forwards the nodes above it; then the accepted path catches up */
            int32_t counts[TUNE_DEPTHS + 2] = {0}, above = 1;
            level_counts(0, n - 1, counts);
            for (int L = 1; L <= TUNE_DEPTHS && counts[L]; L++) {
                draft += dlat[above];
                above += counts[L];
            }
            int32_t catch_up = (int32_t)(tokens + 0.5);
            draft += dlat[catch_up < 1 ? 1 : catch_up > o.max_budget ? o.max_budget : catch_up];
        } else if (n > 1) {
            draft = draft_per_level * tree_depth(0, n - 1); /* n-gram: measured per level */
        }
        double t = lat[n] + commit_per_step + draft;
        double rate = tokens / t;
        if (rate > best_rate) best_rate = rate, best_n = n;
        if (n <= 4 || (n & (n - 1)) == 0 || n == o.max_budget)
            printf("| %d | %.3f | %.3f | %.1f |\n", n, tokens, 1e3 * t, rate);
    }
    if (!rc) {
        FILE *f = fopen(o.out, "w");
        if (!f) {
            fprintf(stderr, "stree tune: cannot write %s: %s\n", o.out, strerror(errno));
            rc = 1;
        } else if (best_n == 1) {
            fprintf(f, "{\"type\": \"chain\", \"length\": 1}\n"); /* drafting does not pay: the smallest tree */
            fclose(f);
        } else {
            int32_t prefix[TUNE_DEPTHS];
            int first = 1;
            fprintf(f, "{\"type\": \"static\", \"budget\": %d, \"paths\": [", best_n);
            emit(f, 0, best_n - 1, prefix, 0, &first);
            fprintf(f, "]}\n");
            rc = fclose(f) ? 1 : 0;
        }
        printf("\nbest: %d nodes, %.3f expected tokens/step, %.1f predicted tokens/s -> %s\n", best_n,
               1.0 + f_best[0][best_n - 1], best_rate, o.out);
    }
    bench_setup_close(&setup);
    return rc;
}
