#define _POSIX_C_SOURCE 200809L
#include "bench/cmd_common.h"
#include "examples/cli/args.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>


void bench_add_mode(bench_options *o, const char *mode) {
    if (o->n_modes < BENCH_MAX_MODES) o->modes[o->n_modes++] = strdup(mode);
}

void bench_options_free(bench_options *o) {
    for (int i = 0; i < o->n_modes; i++) free(o->modes[i]);
    o->n_modes = 0;
}

int bench_has_mode(const bench_options *o, const char *mode) {
    for (int i = 0; i < o->n_modes; i++)
        if (!strcmp(o->modes[i], mode)) return 1;
    return 0;
}

int bench_parse_common(int argc, char **argv, bench_options *o, void (*usage)(FILE *)) {
    memset(o, 0, sizeof *o);
    o->max_new = 64;
    o->reps = 3;
    o->warmup = 1;
    o->max_budget = 64;
    o->backend = STREE_BACKEND_AUTO;
    o->sampling = stree_engine_default_params().sampling;
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof o->command - 1; i++)
        len += (size_t)snprintf(o->command + len, sizeof o->command - len, "%s%s", i ? " " : "", argv[i]);
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(f, "--self-draft")) { o->self_draft = 1; continue; }
        if (!strcmp(f, "--sweep")) { o->sweep = 1; continue; }
        if (!strcmp(f, "--target-only")) { o->target_only = 1; continue; }
        if (!v) {
            fprintf(stderr, "stree: unknown option or missing value: %s\n", f);
            return -1;
        }
        i++;
        int sampled;
        if (!strcmp(f, "--model")) o->model = v;
        else if (!strcmp(f, "--random")) o->random_config = v;
        else if (!strcmp(f, "--draft")) o->draft = v;
        else if (!strcmp(f, "--workload")) o->workload = v;
        else if (!strcmp(f, "--json")) o->json = v;
        else if (!strcmp(f, "--csv")) o->csv = v;
        else if (!strcmp(f, "--plot")) o->plot = v;
        else if (!strcmp(f, "--out")) o->out = v;
        else if (!strcmp(f, "--mode")) bench_add_mode(o, v);
        else if ((sampled = cli_sampling_flag(f, v, &o->sampling)) != 0) { if (sampled < 0) return -1; }
        else if (!strcmp(f, "--ngram")) { if (cli_int(f, v, 1, &o->ngram)) return -1; }
        else if (!strcmp(f, "--max-new")) { if (cli_int(f, v, 1, &o->max_new)) return -1; }
        else if (!strcmp(f, "--reps")) { if (cli_int(f, v, 1, &o->reps)) return -1; }
        else if (!strcmp(f, "--warmup")) { if (cli_int(f, v, 0, &o->warmup)) return -1; }
        else if (!strcmp(f, "--max-budget")) { if (cli_int(f, v, 2, &o->max_budget)) return -1; }
        else if (!strcmp(f, "--synthetic")) {
            if (sscanf(v, "%d,%d", &o->synth_n, &o->synth_len) != 2 || o->synth_n < 1 || o->synth_len < 1) {
                fprintf(stderr, "stree: --synthetic needs N,LEN (prompts, tokens each), e.g. 8,64\n");
                return -1;
            }
        } else if (!strcmp(f, "--backend")) {
            if (cli_backend(v, &o->backend)) return -1;
        } else {
            fprintf(stderr, "stree: unknown option: %s\n", f);
            return -1;
        }
    }
    if ((!o->model == !o->random_config) || (!o->workload && !o->synth_n)) {
        usage(stderr);
        return -1;
    }
    if ((o->draft != NULL) + (o->ngram > 0) + o->self_draft > 1) {
        fprintf(stderr, "stree: give at most one of --draft, --ngram, --self-draft\n");
        return -1;
    }
    return 0;
}

static void describe_device(bench_setup *s) {
    struct utsname u;
    const char *backend = stree_model_backend(s->target);
    if (uname(&u) == 0) snprintf(s->device, sizeof s->device, "%s backend on %s %s (%ld cores)", backend, u.sysname,
                                 u.machine, sysconf(_SC_NPROCESSORS_ONLN));
    else snprintf(s->device, sizeof s->device, "%s backend", backend);
    if (!strcmp(backend, "cuda")) {
        FILE *p = popen("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1", "r");
        char name[128] = "";
        if (p && fgets(name, sizeof name, p)) {
            name[strcspn(name, "\n")] = '\0';
            snprintf(s->device, sizeof s->device, "cuda backend on %s", name);
        }
        if (p) pclose(p);
    }
}

int bench_setup_open(const bench_options *o, bench_setup *s) {
    memset(s, 0, sizeof *s);
    stree_model_params mp = stree_model_default_params();
    mp.backend = o->backend;
    stree_status st = o->model ? stree_model_load(o->model, mp, &s->target)
                               : stree_model_create_random(o->random_config, 1, mp, &s->target);
    if (st == STREE_OK && o->draft) st = stree_model_load(o->draft, mp, &s->draft);
    if (st != STREE_OK) {
        fprintf(stderr, "stree: loading a model: %s: %s\n", stree_status_str(st), stree_last_error());
        bench_setup_close(s);
        return 1;
    }
    int32_t V = stree_model_vocab_size(s->target);
    st = o->workload ? bench_workload_load(o->workload, V, o->max_new, &s->workload)
                     : bench_workload_synthetic(o->synth_n, o->synth_len, V, o->max_new, 1234, &s->workload);
    if (st != STREE_OK) {
        bench_setup_close(s);
        return 1;
    }
    describe_device(s);
    return 0;
}

void bench_setup_close(bench_setup *s) {
    bench_workload_free(&s->workload);
    stree_model_free(s->draft);
    stree_model_free(s->target);
    s->draft = s->target = NULL;
}

stree_status bench_engine_for_mode(const bench_options *o, const bench_setup *s, const char *mode, stree_engine **out,
                                   int32_t *nodes) {
    stree_engine_params ep = stree_engine_default_params();
    int32_t need = 0;
    for (int32_t i = 0; i < s->workload.n_prompts; i++) {
        int32_t n = s->workload.prompts[i].n_tokens + s->workload.prompts[i].max_new;
        if (n > need) need = n;
    }
    ep.n_ctx = need + 300;
    ep.sampling = o->sampling;
    if (o->target_only) ep.accept_rule = STREE_ACCEPT_TARGET_ONLY;
    *nodes = 1;
    if (strcmp(mode, "ar")) {
        if (s->draft) {
            ep.drafter = STREE_DRAFTER_MODEL;
            ep.draft_model = s->draft;
        } else if (o->ngram) {
            ep.drafter = STREE_DRAFTER_NGRAM;
            ep.ngram_max = o->ngram;
        } else {
            ep.drafter = STREE_DRAFTER_SELF;
        }
        int a, b, c;
        if (sscanf(mode, "chain:%d", &a) == 1) {
            ep.tree = STREE_TREE_CHAIN;
            ep.chain_length = a;
            *nodes = a + 1;
        } else if (sscanf(mode, "dynamic:%d,%d,%d", &a, &b, &c) == 3) {
            ep.tree = STREE_TREE_DYNAMIC;
            ep.top_k = a, ep.depth = b, ep.budget = c;
            *nodes = c;
        } else if (!strncmp(mode, "tree:", 5) && mode[5]) {
            ep.tree = STREE_TREE_FILE;
            ep.tree_file = mode + 5;
            *nodes = 0; /* filled from the engine below */
        } else {
            fprintf(stderr, "stree bench: unknown mode '%s' (ar, chain:K, tree:FILE.json, dynamic:K,D,B)\n", mode);
            return STREE_ERR_INVALID_ARG;
        }
    }
    stree_status st = stree_engine_create(s->target, ep, out);
    if (st == STREE_OK && *nodes == 0) *nodes = stree_engine_tree_nodes(*out);
    return st;
}

/* ---------------------------------------------------------------- reports */
/* P(a child is accepted at depth d | the path reached depth d - 1 and the tree offered children) */
static double depth_rate(const stree_stats *st, int d) {
    int64_t acc = 0;
    for (int r = 0; r < STREE_STATS_RANKS; r++) acc += st->accepted[d][r];
    return st->positions[d] ? (double)acc / (double)st->positions[d] : -1.0;
}

static double rank_rate(const stree_stats *st, int r) {
    int64_t off = 0, acc = 0;
    for (int d = 1; d < STREE_STATS_DEPTHS; d++) off += st->offered[d][r], acc += st->accepted[d][r];
    return off ? (double)acc / (double)off : -1.0;
}

void bench_print_table(FILE *f, const bench_options *o, const bench_setup *s, const bench_result *r, int n) {
    fprintf(f, "command: %s\ndevice: %s\nworkload: %d prompts, max_new %d, %d warm-up + %d measured passes\n",
            o->command, s->device, s->workload.n_prompts, o->max_new, o->warmup, o->reps);
    if (o->sampling.temperature > 0.0f)
        fprintf(f, "sampling: temperature %g, top-k %d, top-p %g, min-p %g, seed %llu, rule %s\n",
                o->sampling.temperature, o->sampling.top_k, o->sampling.top_p, o->sampling.min_p,
                (unsigned long long)o->sampling.seed,
                o->target_only ? "target-only" : "speculative sampling (sampled draft-model trees)");
    fprintf(f, "\n");
    fprintf(f, "| mode | nodes | TTFT ms | TPOT p50 / p90 / p99 ms | tokens/s | speedup | tokens/step | accepted/step "
               "| draft / verify / commit s | peak GB |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "| %s | %d | %.2f | %.3f / %.3f / %.3f | %.1f | %.2fx | %.2f | %.2f | %.3f / %.3f / %.3f | %.2f |\n",
                r[i].mode, r[i].tree_nodes, r[i].ttft_ms, r[i].tpot_p50_ms, r[i].tpot_p90_ms, r[i].tpot_p99_ms,
                r[i].tokens_per_s, r[i].speedup, r[i].tokens_per_step, r[i].accepted_per_step, r[i].t_draft_s,
                r[i].t_verify_s, r[i].t_commit_s, r[i].peak_device_gb);
    fprintf(f, "\nacceptance rate per depth (a child accepted / positions that offered children):\n| mode |");
    for (int d = 1; d <= 8; d++) fprintf(f, " d%d |", d);
    fprintf(f, "\n|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        if (!strcmp(r[i].mode, "ar")) continue;
        fprintf(f, "| %s |", r[i].mode);
        for (int d = 1; d <= 8; d++) {
            double v = depth_rate(&r[i].stats, d);
            if (v < 0) fprintf(f, " - |");
            else fprintf(f, " %.2f |", v);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\nacceptance rate per sibling rank (accepted / offered children of that rank):\n| mode | r0 | r1 | r2 | r3 | r4 | r5 | r6 | r7 |\n"
               "|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        if (!strcmp(r[i].mode, "ar")) continue;
        fprintf(f, "| %s |", r[i].mode);
        for (int k = 0; k < 8; k++) {
            double v = rank_rate(&r[i].stats, k);
            if (v < 0) fprintf(f, " - |");
            else fprintf(f, " %.2f |", v);
        }
        fprintf(f, "\n");
    }
}

int bench_write_json(const char *path, const bench_options *o, const bench_setup *s, const bench_result *r, int n) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "stree-bench/1");
    cJSON_AddStringToObject(root, "command", o->command);
    cJSON_AddStringToObject(root, "device", s->device);
    cJSON_AddNumberToObject(root, "prompts", s->workload.n_prompts);
    cJSON_AddNumberToObject(root, "max_new", o->max_new);
    cJSON_AddNumberToObject(root, "warmup", o->warmup);
    cJSON_AddNumberToObject(root, "reps", o->reps);
    cJSON_AddNumberToObject(root, "temperature", o->sampling.temperature);
    cJSON_AddStringToObject(root, "accept_rule", o->sampling.temperature > 0.0f ? (o->target_only ? "target_only" : "auto")
                                                                                  : "greedy");
    cJSON *modes = cJSON_AddArrayToObject(root, "modes");
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "mode", r[i].mode);
        cJSON_AddNumberToObject(m, "tree_nodes", r[i].tree_nodes);
        cJSON_AddNumberToObject(m, "requests", r[i].n_requests);
        cJSON_AddNumberToObject(m, "ttft_ms", r[i].ttft_ms);
        cJSON_AddNumberToObject(m, "tpot_p50_ms", r[i].tpot_p50_ms);
        cJSON_AddNumberToObject(m, "tpot_p90_ms", r[i].tpot_p90_ms);
        cJSON_AddNumberToObject(m, "tpot_p99_ms", r[i].tpot_p99_ms);
        cJSON_AddNumberToObject(m, "tokens_per_s", r[i].tokens_per_s);
        cJSON_AddNumberToObject(m, "speedup", r[i].speedup);
        cJSON_AddNumberToObject(m, "tokens_per_step", r[i].tokens_per_step);
        cJSON_AddNumberToObject(m, "accepted_per_step", r[i].accepted_per_step);
        cJSON_AddNumberToObject(m, "draft_s", r[i].t_draft_s);
        cJSON_AddNumberToObject(m, "verify_s", r[i].t_verify_s);
        cJSON_AddNumberToObject(m, "commit_s", r[i].t_commit_s);
        cJSON_AddNumberToObject(m, "decode_s", r[i].t_total_s);
        cJSON_AddNumberToObject(m, "peak_device_gb", r[i].peak_device_gb);
        cJSON *pd = cJSON_AddArrayToObject(m, "acceptance_per_depth");
        for (int d = 1; d < STREE_STATS_DEPTHS; d++) {
            double v = depth_rate(&r[i].stats, d);
            cJSON_AddItemToArray(pd, v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v));
        }
        cJSON *pr = cJSON_AddArrayToObject(m, "acceptance_per_rank");
        for (int k = 0; k < STREE_STATS_RANKS; k++) {
            double v = rank_rate(&r[i].stats, k);
            cJSON_AddItemToArray(pr, v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v));
        }
        cJSON_AddItemToArray(modes, m);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *f = fopen(path, "w");
    int rc = !f || fputs(text, f) < 0;
    if (f && fclose(f)) rc = 1;
    free(text);
    if (rc) fprintf(stderr, "stree bench: cannot write %s: %s\n", path, strerror(errno));
    return rc;
}

int bench_write_csv(const char *path, const bench_options *o, const bench_setup *s, const bench_result *r, int n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "stree bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "mode,tree_nodes,ttft_ms,tpot_p50_ms,tpot_p90_ms,tpot_p99_ms,tokens_per_s,speedup,tokens_per_step,"
               "accepted_per_step,draft_s,verify_s,commit_s,decode_s,peak_device_gb,device,command\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "\"%s\",%d,%.4f,%.4f,%.4f,%.4f,%.3f,%.4f,%.4f,%.4f,%.5f,%.5f,%.5f,%.5f,%.3f,\"%s\",\"%s\"\n",
                r[i].mode, r[i].tree_nodes, r[i].ttft_ms, r[i].tpot_p50_ms, r[i].tpot_p90_ms, r[i].tpot_p99_ms,
                r[i].tokens_per_s, r[i].speedup, r[i].tokens_per_step, r[i].accepted_per_step, r[i].t_draft_s,
                r[i].t_verify_s, r[i].t_commit_s, r[i].t_total_s, r[i].peak_device_gb, s->device, o->command);
    return fclose(f) ? 1 : 0;
}

int bench_plot(const char *dir, const bench_result *r, int n) {
    if (system("command -v gnuplot >/dev/null 2>&1")) {
        fprintf(stderr, "stree bench: --plot needs gnuplot (Debian: apt-get install gnuplot-nox)\n");
        return 1;
    }
    mkdir(dir, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/speedup.dat", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    for (int i = 0; i < n; i++) fprintf(f, "%d %.4f \"%s\"\n", r[i].tree_nodes, r[i].speedup, r[i].mode);
    fclose(f);
    snprintf(path, sizeof path, "%s/depth.dat", dir);
    f = fopen(path, "w");
    if (!f) return 1;
    for (int d = 1; d <= 12; d++) {
        fprintf(f, "%d", d);
        for (int i = 0; i < n; i++) {
            double v = depth_rate(&r[i].stats, d);
            fprintf(f, " %s", v < 0 ? "NaN" : "");
            if (v >= 0) fprintf(f, "%.4f", v);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "set terminal pngcairo size 900,600 noenhanced\nset datafile missing 'NaN'\n"
               "set output '%s/speedup.png'\nset title 'speedup over AR vs tree node budget'\n"
               "set xlabel 'tree nodes'\nset ylabel 'speedup'\nset grid\n"
               "plot '%s/speedup.dat' using 1:2 with points pt 7 ps 1.5 title 'modes', '' using 1:2:3 with labels "
               "offset 0,1 notitle\n"
               "set output '%s/acceptance_per_depth.png'\nset title 'acceptance rate per depth'\n"
               "set xlabel 'depth'\nset ylabel 'accepted / offered'\nset yrange [0:1.05]\nplot ",
            dir, dir, dir);
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!strcmp(r[i].mode, "ar")) continue;
        fprintf(f, "%s'%s/depth.dat' using 1:%d with linespoints title '%s'", first ? "" : ", ", dir, i + 2, r[i].mode);
        first = 0;
    }
    if (first) fprintf(f, "0 notitle");
    fprintf(f, "\n");
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gnuplot '%s/plot.gp'", dir);
    if (system(cmd)) {
        fprintf(stderr, "stree bench: gnuplot failed on %s/plot.gp\n", dir);
        return 1;
    }
    fprintf(stderr, "stree bench: charts in %s/speedup.png and %s/acceptance_per_depth.png\n", dir, dir);
    return 0;
}
