/* stree_bench — latency of the building blocks on random-weight models of real shapes:
 * one AR decode step at batch 1, verify passes over trees of 1..128 nodes, the commit, beside the
 * bandwidth floor (bytes a decode step must read / measured device-to-device bandwidth). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/engine.h"
#include "runtime/model.h"
#include "runtime/profile.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* device-to-device copy bandwidth, bytes read + written per second */
static double copy_bandwidth(const stree_ops *ops, size_t bytes) {
    void *a = ops->alloc(bytes), *b = ops->alloc(bytes);
    if (!a || !b) return 0.0;
    ops->copy(b, a, bytes);
    ops->sync();
    double t[10];
    for (int i = 0; i < 10; i++) {
        double t0 = now();
        ops->copy(b, a, bytes);
        ops->sync();
        t[i] = now() - t0;
    }
    ops->free(a);
    ops->free(b);
    return 2.0 * (double)bytes / median(t, 10);
}

static unsigned rng = 12345;
static int32_t rnd(int32_t n) { return (int32_t)(rand_r(&rng) % (unsigned)n); }

/* a random tree of n nodes with depth <= 8 */
static void random_tree(int32_t n, int32_t vocab, int32_t *tokens, int32_t *parent) {
    int32_t depth[STREE_TREE_MAX_NODES];
    parent[0] = -1;
    depth[0] = 0;
    tokens[0] = rnd(vocab);
    for (int32_t i = 1; i < n; i++) {
        int32_t p;
        do p = rnd(i); while (depth[p] >= 8);
        parent[i] = p;
        depth[i] = depth[p] + 1;
        tokens[i] = rnd(vocab);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: stree_bench --config CONFIG.json [--backend cpu|cuda] [--n-past N] [--iters N]\n"
            "                   [--sizes 1,4,16,32,64,128] [--profile]\n\n"
            "Random weights with the shapes of CONFIG.json (an HF config.json). Prints, per figure, the\n"
            "median latency, and for the decode step the bandwidth floor and the ratio to it.\n");
}

int main(int argc, char **argv) {
    const char *config = NULL, *sizes = "1,4,16,32,64,128";
    stree_backend backend = STREE_BACKEND_AUTO;
    int32_t n_past = 512, iters = 20, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--help")) { usage(); return 0; }
        if (!strcmp(argv[i], "--profile")) { profile = 1; continue; }
        if (!v) { usage(); return 2; }
        if (!strcmp(argv[i], "--config")) config = v;
        else if (!strcmp(argv[i], "--backend")) backend = !strcmp(v, "cpu") ? STREE_BACKEND_CPU : !strcmp(v, "cuda") ? STREE_BACKEND_CUDA : STREE_BACKEND_AUTO;
        else if (!strcmp(argv[i], "--n-past")) n_past = atoi(v);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(v);
        else if (!strcmp(argv[i], "--sizes")) sizes = v;
        else { usage(); return 2; }
        i++;
    }
    if (!config || iters <= 0 || iters > 1000 || n_past < 1) { usage(); return 2; }
    printf("command:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    stree_model_params mp = stree_model_default_params();
    mp.backend = backend;
    stree_model *m;
    double t0 = now();
    stree_status s = stree_model_create_random(config, 1, mp, &m);
    if (s != STREE_OK) {
        fprintf(stderr, "stree_bench: %s: %s\n", stree_status_str(s), stree_last_error());
        return 1;
    }
    const stree_ops *ops = m->ops;
    ops->sync();
    printf("model: %s (%s), %d layers (%d attention, %d Mamba-2), backend %s, built in %.1f s\n", config,
           m->desc.architecture, m->desc.n_layers, m->desc.n_attn_layers, m->desc.n_mamba_layers, ops->name, now() - t0);
    double bw = copy_bandwidth(ops, ops == &stree_cpu_ops ? ((size_t)256 << 20) : ((size_t)2 << 30));
    double floor_ms = 1e3 * (double)m->weight_bytes / bw;
    printf("decode-step bytes: %.3f GB (%s weights); device-to-device copy: %.2f TB/s (read + write); floor %.3f ms\n",
           (double)m->weight_bytes / 1e9, ops->wtype == STREE_WTYPE_BF16 ? "bf16" : "fp32", bw / 1e12, floor_ms);

    stree_state *st;
    s = stree_state_create(m, n_past + 4096, 256, &st);
    if (s != STREE_OK) {
        fprintf(stderr, "stree_bench: %s\n", stree_last_error());
        return 1;
    }
    int32_t V = m->desc.vocab_size, *ctx = malloc((size_t)n_past * sizeof *ctx);
    for (int32_t i = 0; i < n_past; i++) ctx[i] = rnd(V);
    t0 = now();
    s = stree_state_append(st, ctx, n_past, NULL);
    ops->sync();
    printf("prefill of %d tokens: %.1f ms\n", n_past, 1e3 * (now() - t0));

    double *t = malloc((size_t)iters * sizeof *t);
    int32_t tokens[STREE_TREE_MAX_NODES], parent[STREE_TREE_MAX_NODES], argmax[STREE_TREE_MAX_NODES];
    static const int32_t root_parent[1] = {-1}, root_path[1] = {0};
    /* AR decode step: forward one token, argmax to the host, commit */
    for (int warm = 1; warm >= 0; warm--) {
        for (int i = 0; i < iters && s == STREE_OK; i++) {
            int32_t tok = rnd(V);
            stree_fwd_tree ft = {.n = 1, .tokens = &tok, .parent = root_parent};
            double a = now();
            s = stree_forward_tree(st, &ft, 1, NULL);
            stree_state_topk(st, 1, 1, argmax, NULL);
            if (s == STREE_OK) s = stree_commit_path(st, root_path, 1, tok);
            ops->sync();
            t[i] = now() - a;
        }
    }
    double ar_ms = 1e3 * median(t, iters);
    printf("\n| figure | median ms | vs floor | vs AR step |\n|---|---|---|---|\n");
    printf("| AR decode step (batch 1, context %d) | %.3f | %.2fx floor (%.0f%% of floor speed) | 1.00 |\n", n_past,
           ar_ms, ar_ms / floor_ms, 100.0 * floor_ms / ar_ms);
    /* verify passes over random trees */
    char list[256];
    snprintf(list, sizeof list, "%s", sizes);
    for (char *tok = strtok(list, ","); tok && s == STREE_OK; tok = strtok(NULL, ",")) {
        int32_t n = atoi(tok);
        if (n < 1 || n > STREE_TREE_MAX_NODES) continue;
        for (int warm = 1; warm >= 0; warm--) {
            for (int i = 0; i < iters && s == STREE_OK; i++) {
                random_tree(n, V, tokens, parent);
                stree_fwd_tree ft = {.n = n, .tokens = tokens, .parent = parent};
                double a = now();
                s = stree_forward_tree(st, &ft, 1, NULL);
                stree_state_topk(st, n, 1, argmax, NULL);
                ops->sync();
                t[i] = now() - a;
            }
        }
        double ms = 1e3 * median(t, iters);
        printf("| verify, %d-node tree (+ argmax of every node) | %.3f | %.2fx | %.2fx |\n", n, ms, ms / floor_ms,
               ms / ar_ms);
    }
    /* commit of a 5-token path after a 64-node verify */
    for (int i = 0; i < iters && s == STREE_OK; i++) {
        int32_t n = 64, path[8], len = 0;
        for (int32_t j = 0; j < 5; j++) parent[j] = j - 1; /* nodes 0..4 form the accepted chain */
        for (int32_t j = 0; j < n; j++) tokens[j] = rnd(V);
        for (int32_t j = 5; j < n; j++) parent[j] = rnd(j);
        stree_fwd_tree ft = {.n = n, .tokens = tokens, .parent = parent};
        s = stree_forward_tree(st, &ft, 1, NULL);
        ops->sync();
        for (int32_t j = 0; j < 5; j++) path[len++] = j;
        double a = now();
        if (s == STREE_OK) s = stree_commit_path(st, path, len, tokens[4]);
        ops->sync();
        t[i] = now() - a;
    }
    double commit_ms = 1e3 * median(t, iters);
    printf("| commit of a 5-token path (KV rows, SSM + conv states) | %.3f | | %.1f%% of an AR step |\n", commit_ms,
           100.0 * commit_ms / ar_ms);
    if (profile && s == STREE_OK) { /* per-op split of an AR step and of a 64-node verify */
        m->ops = stree_profile_ops(ops);
        for (int pass = 0; pass < 2 && s == STREE_OK; pass++) {
            int32_t n = pass ? 64 : 1;
            stree_profile_reset();
            for (int i = 0; i < iters && s == STREE_OK; i++) {
                random_tree(n, V, tokens, parent);
                stree_fwd_tree ft = {.n = n, .tokens = tokens, .parent = parent};
                s = stree_forward_tree(st, &ft, 1, NULL);
                stree_state_topk(st, n, 1, argmax, NULL);
                if (s == STREE_OK && !pass) s = stree_commit_path(st, root_path, 1, tokens[0]);
            }
            stree_profile_print(stdout, pass ? "verify, 64-node tree" : "AR decode step", iters);
        }
        m->ops = ops;
    }
    if (s != STREE_OK) fprintf(stderr, "stree_bench: %s: %s\n", stree_status_str(s), stree_last_error());
    free(t);
    free(ctx);
    stree_state_free(st);
    stree_model_free(m);
    return s == STREE_OK ? 0 : 1;
}
