/* stree — command-line front end: logits and greedy generation over a Hugging Face checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/commands.h"
#include "stree.h"

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: stree <command> [options]\n\n"
            "commands:\n"
            "  logits    write float32 logits for every position of a token sequence\n"
            "  generate  generate token ids greedily after a prompt\n"
            "  bench     measure a workload in several decoding modes (latency, acceptance)\n"
            "  tune      build the fastest tree for this device and drafter from measurements\n\n"
            "Run 'stree <command> --help' for the options of a command.\n");
}

static void usage_logits(FILE *f) {
    fprintf(f,
            "usage: stree logits --model DIR --tokens 1,2,3 --out FILE [--backend cpu]\n\n"
            "Runs the model over the tokens and writes float32 little-endian logits\n"
            "[n_tokens x vocab] to FILE.\n");
}

static void usage_generate(FILE *f) {
    fprintf(f,
            "usage: stree generate --model DIR --tokens 1,2,3 [--max-new N] [--greedy] [--ids]\n"
            "                      [--draft DIR | --ngram N | --self-draft] [--tree FILE.json |\n"
            "                      --chain K | --dynamic TOPK,DEPTH,BUDGET] [--no-eos] [--n-ctx N]\n"
            "                      [--backend cpu]\n\n"
            "Greedy generation, tree-speculative when a drafter is given (output identical to\n"
            "autoregressive decoding). Prints the generated ids space-separated on stdout (--ids);\n"
            "stats (tokens/s, mean accepted length, tokens per step) go to stderr.\n"
            "  --max-new N        tokens to generate (default 32)\n"
            "  --draft DIR        draft model (same vocabulary as the target)\n"
            "  --ngram N          prompt-lookup drafter matching suffixes of up to N tokens\n"
            "  --self-draft       the target drafts for itself (machinery check: all accepted)\n"
            "  --tree FILE.json   tree shape (see docs/TREES.md); default: a chain of 4\n"
            "  --chain K          chain of K drafted tokens\n"
            "  --dynamic K,D,B    EAGLE-2 dynamic tree: top-k K, depth D, budget B nodes\n"
            "  --no-eos           do not stop at the model's eos token\n"
            "  --temperature T    sample (T > 0; default 0 = greedy); also --top-k K, --top-p P,\n"
            "                     --min-p P, --repetition-penalty R, --seed S\n"
            "  --target-only      with sampling: the target-only acceptance rule for every drafter\n"
            "                     (default: speculative sampling for sampled draft-model trees)\n");
}

typedef struct cli_args {
    const char *model, *tokens, *out, *draft, *tree_file;
    int32_t ngram, self_draft, chain, dyn[3], target_only;
    stree_sampling_params sampling;
    int32_t max_new, n_ctx, ids, stop_at_eos;
    stree_backend backend;
} cli_args;

static int parse_tokens(const char *s, int32_t **out, int32_t *n) {
    size_t cap = 16, count = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff || (*end && *end != ',')) {
            fprintf(stderr, "stree: --tokens: '%s' is not a comma-separated list of token ids\n", s);
            free(ids);
            return -1;
        }
        if (count == cap) {
            cap *= 2;
            int32_t *grown = realloc(ids, cap * sizeof *ids);
            if (!grown) {
                free(ids);
                return -1;
            }
            ids = grown;
        }
        ids[count++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (count == 0) {
        fprintf(stderr, "stree: --tokens is empty\n");
        free(ids);
        return -1;
    }
    *out = ids;
    *n = (int32_t)count;
    return 0;
}

static int parse_int(const char *flag, const char *v, int32_t lo, int32_t *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || errno || x < lo || x > 0x7fffffff) {
        fprintf(stderr, "stree: %s needs an integer >= %d\n", flag, lo);
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

/* Returns 0 on success, 1 on --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, cli_args *a) {
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) return 1;
        if (!strcmp(f, "--greedy")) continue;
        if (!strcmp(f, "--ids")) { a->ids = 1; continue; }
        if (!strcmp(f, "--no-eos")) { a->stop_at_eos = 0; continue; }
        if (!strcmp(f, "--self-draft")) { a->self_draft = 1; continue; }
        if (!strcmp(f, "--target-only")) { a->target_only = 1; continue; }
        if (!v) {
            fprintf(stderr, "stree: unknown option or missing value: %s\n", f);
            return -1;
        }
        i++;
        if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--tokens")) a->tokens = v;
        else if (!strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "--draft")) a->draft = v;
        else if (!strcmp(f, "--temperature")) a->sampling.temperature = strtof(v, NULL);
        else if (!strcmp(f, "--top-p")) a->sampling.top_p = strtof(v, NULL);
        else if (!strcmp(f, "--min-p")) a->sampling.min_p = strtof(v, NULL);
        else if (!strcmp(f, "--repetition-penalty")) a->sampling.repetition_penalty = strtof(v, NULL);
        else if (!strcmp(f, "--top-k")) { if (parse_int(f, v, 0, &a->sampling.top_k)) return -1; }
        else if (!strcmp(f, "--seed")) a->sampling.seed = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--tree")) a->tree_file = v;
        else if (!strcmp(f, "--ngram")) { if (parse_int(f, v, 1, &a->ngram)) return -1; }
        else if (!strcmp(f, "--chain")) { if (parse_int(f, v, 1, &a->chain)) return -1; }
        else if (!strcmp(f, "--dynamic")) {
            if (sscanf(v, "%d,%d,%d", &a->dyn[0], &a->dyn[1], &a->dyn[2]) != 3) {
                fprintf(stderr, "stree: --dynamic needs TOPK,DEPTH,BUDGET (e.g. 4,5,32)\n");
                return -1;
            }
        }
        else if (!strcmp(f, "--max-new")) { if (parse_int(f, v, 0, &a->max_new)) return -1; }
        else if (!strcmp(f, "--n-ctx")) { if (parse_int(f, v, 1, &a->n_ctx)) return -1; }
        else if (!strcmp(f, "--backend")) {
            if (!strcmp(v, "cpu")) a->backend = STREE_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) a->backend = STREE_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) a->backend = STREE_BACKEND_AUTO;
            else {
                fprintf(stderr, "stree: --backend must be cpu, cuda or auto\n");
                return -1;
            }
        } else {
            fprintf(stderr, "stree: unknown option: %s\n", f);
            return -1;
        }
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, stree_status s) {
    fprintf(stderr, "stree: %s failed: %s: %s\n", what, stree_status_str(s), stree_last_error());
    return 1;
}

typedef struct loaded {
    stree_model *target, *draft;
    stree_engine *engine;
    stree_seq *seq;
} loaded;

static void unload(loaded *l) {
    stree_seq_free(l->seq);
    stree_engine_free(l->engine);
    stree_model_free(l->draft);
    stree_model_free(l->target);
}

static int load(const cli_args *a, loaded *l, int32_t n_tokens) {
    stree_model_params mp = stree_model_default_params();
    mp.backend = a->backend;
    stree_status s = stree_model_load(a->model, mp, &l->target);
    if (s != STREE_OK) return fail("loading the model", s);
    stree_engine_params ep = stree_engine_default_params();
    int32_t need = n_tokens + a->max_new + 300; /* a step may commit up to a whole tree path */
    ep.n_ctx = a->n_ctx > 0 ? a->n_ctx : (need > ep.n_ctx ? need : ep.n_ctx);
    int n_drafters = (a->draft != NULL) + (a->ngram > 0) + (a->self_draft != 0);
    if (n_drafters > 1) {
        fprintf(stderr, "stree: give at most one of --draft, --ngram, --self-draft\n");
        return 2;
    }
    if (a->draft) {
        s = stree_model_load(a->draft, mp, &l->draft);
        if (s != STREE_OK) return fail("loading the draft model", s);
        ep.drafter = STREE_DRAFTER_MODEL;
        ep.draft_model = l->draft;
    } else if (a->ngram > 0) {
        ep.drafter = STREE_DRAFTER_NGRAM;
        ep.ngram_max = a->ngram;
    } else if (a->self_draft) {
        ep.drafter = STREE_DRAFTER_SELF;
    }
    if (a->tree_file) {
        ep.tree = STREE_TREE_FILE;
        ep.tree_file = a->tree_file;
    } else if (a->dyn[0] > 0) {
        ep.tree = STREE_TREE_DYNAMIC;
        ep.top_k = a->dyn[0];
        ep.depth = a->dyn[1];
        ep.budget = a->dyn[2];
    } else if (a->chain > 0) {
        ep.chain_length = a->chain;
    }
    ep.sampling = a->sampling;
    if (a->target_only) ep.accept_rule = STREE_ACCEPT_TARGET_ONLY;
    s = stree_engine_create(l->target, ep, &l->engine);
    if (s != STREE_OK) return fail("creating the engine", s);
    s = stree_seq_create(l->engine, &l->seq);
    if (s != STREE_OK) return fail("creating a sequence", s);
    return 0;
}

static int cmd_logits(const cli_args *a) {
    if (!a->model || !a->tokens || !a->out) {
        usage_logits(stderr);
        return 2;
    }
    int32_t *ids = NULL, n = 0;
    if (parse_tokens(a->tokens, &ids, &n)) return 2;
    loaded l = {0};
    int rc = load(a, &l, n);
    float *logits = NULL;
    if (!rc) {
        int32_t V = stree_model_vocab_size(l.target);
        logits = malloc((size_t)n * (size_t)V * sizeof *logits);
        stree_status s = logits ? stree_seq_append(l.seq, ids, n, logits) : STREE_ERR_OUT_OF_MEMORY;
        if (s != STREE_OK) rc = fail("the forward pass", s);
        if (!rc) {
            FILE *f = fopen(a->out, "wb");
            if (!f || fwrite(logits, sizeof *logits, (size_t)n * (size_t)V, f) != (size_t)n * (size_t)V) {
                fprintf(stderr, "stree: cannot write %s: %s\n", a->out, strerror(errno));
                rc = 1;
            }
            if (f && fclose(f) && !rc) {
                fprintf(stderr, "stree: cannot write %s: %s\n", a->out, strerror(errno));
                rc = 1;
            }
            if (!rc) fprintf(stderr, "stree: wrote logits [%d x %d] to %s\n", n, V, a->out);
        }
    }
    free(logits);
    free(ids);
    unload(&l);
    return rc;
}

static int cmd_generate(const cli_args *a) {
    if (!a->model || !a->tokens) {
        usage_generate(stderr);
        return 2;
    }
    int32_t *ids = NULL, n = 0;
    if (parse_tokens(a->tokens, &ids, &n)) return 2;
    loaded l = {0};
    int rc = load(a, &l, n);
    int32_t *out = NULL, n_out = 0;
    if (!rc) {
        out = malloc(((size_t)a->max_new + 1) * sizeof *out);
        double t0 = now_s();
        stree_status s = out ? stree_seq_generate(l.seq, ids, n, a->max_new, a->stop_at_eos, out, &n_out, NULL, NULL)
                             : STREE_ERR_OUT_OF_MEMORY;
        double dt = now_s() - t0;
        if (s != STREE_OK) rc = fail("generation", s);
        for (int32_t i = 0; i < n_out; i++) printf("%s%d", i ? " " : "", out[i]);
        printf("\n");
        stree_stats st;
        stree_seq_stats(l.seq, &st);
        double per_step = st.n_steps ? (double)st.n_emitted / (double)st.n_steps : 0.0;
        double accepted = st.n_steps ? (double)st.n_accepted / (double)st.n_steps : 0.0;
        fprintf(stderr,
                "stree: %s: prompt %d tokens, generated %d tokens in %.3f s (%.1f tokens/s); %lld steps, "
                "%.2f tokens per step, mean accepted length %.2f (drafted %lld, accepted %lld); "
                "time draft %.3f s, verify %.3f s, commit %.3f s\n",
                stree_model_architecture(l.target), n, n_out, dt, dt > 0 ? n_out / dt : 0.0, (long long)st.n_steps,
                per_step, accepted, (long long)st.n_drafted, (long long)st.n_accepted, st.t_draft, st.t_verify,
                st.t_commit);
    }
    free(out);
    free(ids);
    unload(&l);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cli_args a = {.max_new = 32, .stop_at_eos = 1, .backend = STREE_BACKEND_AUTO};
    a.sampling = stree_engine_default_params().sampling;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "bench")) return stree_cmd_bench(argc, argv);
    if (!strcmp(cmd, "tune")) return stree_cmd_tune(argc, argv);
    int is_logits = !strcmp(cmd, "logits"), is_generate = !strcmp(cmd, "generate");
    if (!is_logits && !is_generate) {
        fprintf(stderr, "stree: unknown command '%s'\n", cmd);
        usage_main(stderr);
        return 2;
    }
    int r = parse_args(argc, argv, &a);
    if (r == 1) {
        if (is_logits) usage_logits(stdout);
        else usage_generate(stdout);
        return 0;
    }
    if (r < 0) return 2;
    return is_logits ? cmd_logits(&a) : cmd_generate(&a);
}
