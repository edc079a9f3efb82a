/* Workloads for stree bench / stree tune, and the measurement loop. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/commands.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bench_workload_free(bench_workload *w) {
    for (int32_t i = 0; w->prompts && i < w->n_prompts; i++) free(w->prompts[i].tokens);
    free(w->prompts);
    memset(w, 0, sizeof *w);
}

static int add_prompt(bench_workload *w, int32_t *cap, bench_prompt p) {
    if (w->n_prompts == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        bench_prompt *grown = realloc(w->prompts, (size_t)*cap * sizeof *grown);
        if (!grown) return -1;
        w->prompts = grown;
    }
    w->prompts[w->n_prompts++] = p;
    return 0;
}

/* Messages go to stderr; the status mirrors what went wrong. */
static stree_status fail(stree_status s, const char *fmt, const char *path, long line, const char *what) {
    fprintf(stderr, "stree bench: ");
    fprintf(stderr, fmt, path, line, what);
    fprintf(stderr, "\n");
    return s;
}

stree_status bench_workload_load(const char *path, int32_t vocab, int32_t default_max_new, bench_workload *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(STREE_ERR_IO, "%s:%ld: cannot open (%s)", path, 0, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int32_t n_cap = 0;
    stree_status s = STREE_OK;
    while (s == STREE_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) continue;
        cJSON *obj = cJSON_Parse(p);
        if (!obj || !cJSON_IsObject(obj)) {
            s = fail(STREE_ERR_FORMAT, "%s:%ld: %s", path, lineno, "not a JSON object");
            cJSON_Delete(obj);
            break;
        }
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(obj, "tokens");
        if (!toks) toks = cJSON_GetObjectItemCaseSensitive(obj, "prompt_ids");
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(obj, "max_new");
        int32_t n = toks && cJSON_IsArray(toks) ? cJSON_GetArraySize(toks) : 0;
        if (n <= 0) {
            s = fail(STREE_ERR_FORMAT, "%s:%ld: %s", path, lineno, "needs \"tokens\": a non-empty list of token ids");
        } else if (mn && (!cJSON_IsNumber(mn) || mn->valuedouble < 1 || mn->valuedouble != floor(mn->valuedouble))) {
            s = fail(STREE_ERR_FORMAT, "%s:%ld: %s", path, lineno, "\"max_new\" must be a positive integer");
        } else {
            bench_prompt bp = {.tokens = malloc((size_t)n * sizeof(int32_t)), .n_tokens = n,
                               .max_new = mn ? (int32_t)mn->valuedouble : default_max_new};
            for (int32_t i = 0; bp.tokens && i < n && s == STREE_OK; i++) {
                const cJSON *t = cJSON_GetArrayItem(toks, i);
                if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble >= vocab ||
                    t->valuedouble != floor(t->valuedouble)) {
                    char what[96];
                    snprintf(what, sizeof what, "token %d is not an id in [0, %d)", i, vocab);
                    s = fail(STREE_ERR_FORMAT, "%s:%ld: %s", path, lineno, what);
                } else {
                    bp.tokens[i] = (int32_t)t->valuedouble;
                }
            }
            if (!bp.tokens) s = STREE_ERR_OUT_OF_MEMORY;
            if (s == STREE_OK && add_prompt(out, &n_cap, bp)) s = STREE_ERR_OUT_OF_MEMORY;
            if (s != STREE_OK) free(bp.tokens);
        }
        cJSON_Delete(obj);
    }
    free(line);
    fclose(f);
    if (s == STREE_OK && out->n_prompts == 0) s = fail(STREE_ERR_FORMAT, "%s:%ld: %s", path, lineno, "no prompts");
    if (s != STREE_OK) bench_workload_free(out);
    return s;
}

stree_status bench_workload_synthetic(int32_t n, int32_t len, int32_t vocab, int32_t max_new, uint32_t seed,
                                      bench_workload *out) {
    memset(out, 0, sizeof *out);
    if (n <= 0 || len <= 0) return fail(STREE_ERR_INVALID_ARG, "%s%ld%s", "--synthetic: ", 0, " needs N,LEN >= 1");
    int32_t cap = 0;
    unsigned s = seed;
    for (int32_t i = 0; i < n; i++) {
        bench_prompt p = {.tokens = malloc((size_t)len * sizeof(int32_t)), .n_tokens = len, .max_new = max_new};
        if (!p.tokens || add_prompt(out, &cap, p)) {
            free(p.tokens);
            bench_workload_free(out);
            return STREE_ERR_OUT_OF_MEMORY;
        }
        /* a few repeated spans so that prompt lookup has something to find */
        for (int32_t j = 0; j < len; j++)
            p.tokens[j] = j >= 8 && rand_r(&s) % 4 == 0 ? p.tokens[j - 8] : (int32_t)(rand_r(&s) % (unsigned)vocab);
    }
    return STREE_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double q) {
    if (!n) return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void add_stats(stree_stats *acc, const stree_stats *s) {
    acc->n_steps += s->n_steps;
    acc->n_emitted += s->n_emitted;
    acc->n_drafted += s->n_drafted;
    acc->n_accepted += s->n_accepted;
    acc->t_draft += s->t_draft;
    acc->t_verify += s->t_verify;
    acc->t_commit += s->t_commit;
    for (int d = 0; d < STREE_STATS_DEPTHS; d++) acc->positions[d] += s->positions[d];
    for (int d = 0; d < STREE_STATS_DEPTHS; d++)
        for (int r = 0; r < STREE_STATS_RANKS; r++) {
            acc->offered[d][r] += s->offered[d][r];
            acc->accepted[d][r] += s->accepted[d][r];
        }
}

stree_status bench_run(stree_engine *engine, const bench_workload *w, int32_t warmup, int32_t reps, int progress,
                       bench_result *out) {
    int32_t nodes = out->tree_nodes;
    memset(out, 0, sizeof *out);
    out->tree_nodes = nodes;
    stree_seq *seq = NULL;
    stree_status s = stree_seq_create(engine, &seq);
    if (s != STREE_OK) return s;
    size_t cap = 0;
    for (int32_t i = 0; i < w->n_prompts; i++) cap += (size_t)w->prompts[i].max_new + STREE_MAX_STEP_TOKENS;
    cap *= (size_t)reps;
    double *tpot = malloc((cap + 1) * sizeof *tpot), *ttft = malloc(((size_t)w->n_prompts * reps + 1) * sizeof *ttft);
    size_t n_tpot = 0, n_ttft = 0;
    double decode_time = 0.0, t_start = now(), last_progress = t_start;
    int64_t out_tokens = 0;
    stree_model *target = stree_engine_target(engine);
    size_t peak = stree_model_device_bytes(target);
    int32_t step[STREE_MAX_STEP_TOKENS];
    for (int32_t pass = 0; pass < warmup + reps && s == STREE_OK && tpot && ttft; pass++) {
        int measured = pass >= warmup;
        for (int32_t i = 0; i < w->n_prompts && s == STREE_OK; i++) {
            const bench_prompt *p = &w->prompts[i];
            stree_seq_reset(seq);
            double t0 = now();
            s = stree_seq_prefill(seq, p->tokens, p->n_tokens);
            int32_t produced = 0, first = 1;
            while (s == STREE_OK && produced < p->max_new) {
                int32_t n = 0;
                double a = now();
                s = stree_seq_step(seq, step, STREE_MAX_STEP_TOKENS, &n);
                double dt = now() - a;
                if (s != STREE_OK) break;
                if (n > p->max_new - produced) n = p->max_new - produced;
                produced += n;
                if (!measured) continue;
                if (first) ttft[n_ttft++] = 1e3 * (now() - t0);
                first = 0;
                for (int32_t k = 0; k < n; k++) tpot[n_tpot++] = 1e3 * dt / n;
                decode_time += dt;
                out_tokens += n;
            }
            if (measured && s == STREE_OK) {
                stree_stats st;
                stree_seq_stats(seq, &st);
                add_stats(&out->stats, &st);
                out->n_requests++;
            }
            size_t used = stree_model_device_bytes(target);
            if (used > peak) peak = used;
            if (progress && now() - last_progress > 2.0) {
                fprintf(stderr, "\r  pass %d/%d, prompt %d/%d, %.0f s", pass + 1, warmup + reps, i + 1, w->n_prompts,
                        now() - t_start);
                last_progress = now();
            }
        }
    }
    if (progress && now() - t_start > 2.0) fprintf(stderr, "\r%60s\r", "");
    if (!tpot || !ttft) s = STREE_ERR_OUT_OF_MEMORY;
    if (s == STREE_OK) {
        out->ttft_ms = percentile(ttft, n_ttft, 0.5);
        out->tpot_p50_ms = percentile(tpot, n_tpot, 0.5);
        out->tpot_p90_ms = percentile(tpot, n_tpot, 0.9);
        out->tpot_p99_ms = percentile(tpot, n_tpot, 0.99);
        out->tokens_per_s = decode_time > 0 ? (double)out_tokens / decode_time : 0.0;
        double steps = (double)(out->stats.n_steps ? out->stats.n_steps : 1);
        out->tokens_per_step = (double)out->stats.n_emitted / steps;
        out->accepted_per_step = (double)out->stats.n_accepted / steps;
        out->t_draft_s = out->stats.t_draft;
        out->t_verify_s = out->stats.t_verify;
        out->t_commit_s = out->stats.t_commit;
        out->t_total_s = decode_time;
        out->peak_device_gb = (double)peak / 1e9;
    }
    free(tpot);
    free(ttft);
    stree_seq_free(seq);
    return s;
}
