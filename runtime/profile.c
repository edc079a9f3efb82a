/* An op table that times every op of another (synchronising after each): where a step's time goes.
 * Used by stree_bench --profile; graphs are off while profiling. */
#define _POSIX_C_SOURCE 200809L
#include "runtime/profile.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const stree_ops *inner;
static double totals[STREE_PROF_N];
static long counts[STREE_PROF_N];
static const char *names[STREE_PROF_N] = {"matmul", "rmsnorm", "gated_norm", "rope", "attn_tree", "conv_tree",
                                          "commit_all", "mamba2_scan_tree", "mamba2_commit", "conv_commit",
                                          "kv_commit", "ffn_act", "route", "embed", "axpby", "topk", "moe"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define WRAP(field, idx, type)                     \
    static void prof_##field(const type *p) {      \
        inner->sync();                             \
        double t0 = now();                         \
        inner->field(p);                           \
        inner->sync();                             \
        totals[idx] += now() - t0;                 \
        counts[idx]++;                             \
    }
WRAP(matmul, 0, stree_matmul_params)
WRAP(rmsnorm, 1, stree_rmsnorm_params)
WRAP(gated_norm, 2, stree_gated_norm_params)
WRAP(rope, 3, stree_rope_params)
WRAP(attn_tree, 4, stree_attn_tree_params)
WRAP(conv_tree, 5, stree_conv_tree_params)
WRAP(commit_all, 6, stree_commit_all_params)
WRAP(mamba2_scan_tree, 7, stree_mamba2_scan_params)
WRAP(mamba2_commit, 8, stree_mamba2_commit_params)
WRAP(conv_commit, 9, stree_conv_commit_params)
WRAP(kv_commit, 10, stree_kv_commit_params)
WRAP(ffn_act, 11, stree_ffn_act_params)
WRAP(route, 12, stree_route_params)
WRAP(embed, 13, stree_embed_params)
WRAP(axpby, 14, stree_axpby_params)
WRAP(topk, 15, stree_topk_params)
WRAP(moe, 16, stree_moe_params)

static stree_ops table;

const stree_ops *stree_profile_ops(const stree_ops *wrapped) {
    inner = wrapped;
    table = *wrapped;
    table.graph_begin = NULL; /* one op at a time */
    table.graph_end = NULL;
    table.graph_launch = NULL;
    table.matmul = prof_matmul;
    table.rmsnorm = prof_rmsnorm;
    table.gated_norm = prof_gated_norm;
    table.rope = prof_rope;
    table.attn_tree = prof_attn_tree;
    table.conv_tree = prof_conv_tree;
    table.commit_all = prof_commit_all;
    table.mamba2_scan_tree = prof_mamba2_scan_tree;
    table.mamba2_commit = prof_mamba2_commit;
    table.conv_commit = prof_conv_commit;
    table.kv_commit = prof_kv_commit;
    table.ffn_act = prof_ffn_act;
    table.route = prof_route;
    table.embed = prof_embed;
    table.axpby = prof_axpby;
    table.topk = prof_topk;
    table.moe = prof_moe;
    return &table;
}

void stree_profile_reset(void) {
    memset(totals, 0, sizeof totals);
    memset(counts, 0, sizeof counts);
}

void stree_profile_print(FILE *f, const char *title, int per) {
    double all = 0.0;
    for (int i = 0; i < STREE_PROF_N; i++) all += totals[i];
    fprintf(f, "\nprofile: %s (per step, each op synchronised)\n| op | calls | ms | share |\n|---|---|---|---|\n", title);
    for (int i = 0; i < STREE_PROF_N; i++)
        if (counts[i])
            fprintf(f, "| %s | %ld | %.3f | %.0f%% |\n", names[i], counts[i] / per, 1e3 * totals[i] / per,
                    100.0 * totals[i] / all);
    fprintf(f, "| total | | %.3f | |\n", 1e3 * all / per);
}
