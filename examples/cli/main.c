/* stree — command-line front end: logits and greedy generation over a Hugging Face checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stree.h"

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: stree <command> [options]\n\n"
            "commands:\n"
            "  logits    write float32 logits for every position of a token sequence\n"
            "  generate  generate token ids greedily after a prompt\n\n"
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
            "                      [--no-eos] [--n-ctx N] [--backend cpu]\n\n"
            "Greedy autoregressive generation. Prints the generated ids space-separated on\n"
            "stdout (--ids; the default until a tokenizer is loaded); stats go to stderr.\n"
            "  --max-new N   tokens to generate (default 32)\n"
            "  --no-eos      do not stop at the model's eos token\n");
}

typedef struct cli_args {
    const char *model, *tokens, *out;
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
        if (!v) {
            fprintf(stderr, "stree: unknown option or missing value: %s\n", f);
            return -1;
        }
        i++;
        if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--tokens")) a->tokens = v;
        else if (!strcmp(f, "--out")) a->out = v;
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

static int load(const cli_args *a, stree_model **m, stree_seq **seq, int32_t n_tokens) {
    stree_model_params mp = stree_model_default_params();
    mp.backend = a->backend;
    stree_status s = stree_model_load(a->model, mp, m);
    if (s != STREE_OK) return fail("loading the model", s);
    stree_seq_params sp = stree_seq_default_params();
    int32_t need = n_tokens + a->max_new;
    sp.n_ctx = a->n_ctx > 0 ? a->n_ctx : (need > sp.n_ctx ? need : sp.n_ctx);
    s = stree_seq_create(*m, sp, seq);
    if (s != STREE_OK) return fail("creating a sequence", s);
    return 0;
}

static int cmd_logits(const cli_args *a) {
    if (!a->model || !a->tokens || !a->out) {
        usage_logits(stderr);
        return 2;
    }
    int32_t *ids, n;
    if (parse_tokens(a->tokens, &ids, &n)) return 2;
    stree_model *m = NULL;
    stree_seq *seq = NULL;
    int rc = load(a, &m, &seq, n);
    float *logits = NULL;
    if (!rc) {
        int32_t V = stree_model_vocab_size(m);
        logits = malloc((size_t)n * (size_t)V * sizeof *logits);
        stree_status s = logits ? stree_seq_append(seq, ids, n, logits) : STREE_ERR_OUT_OF_MEMORY;
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
    stree_seq_free(seq);
    stree_model_free(m);
    return rc;
}

static int cmd_generate(const cli_args *a) {
    if (!a->model || !a->tokens) {
        usage_generate(stderr);
        return 2;
    }
    int32_t *ids, n;
    if (parse_tokens(a->tokens, &ids, &n)) return 2;
    stree_model *m = NULL;
    stree_seq *seq = NULL;
    int rc = load(a, &m, &seq, n);
    int32_t *out = NULL, n_out = 0;
    if (!rc) {
        out = malloc(((size_t)a->max_new + 1) * sizeof *out);
        double t0 = now_s();
        stree_status s = out ? stree_generate_greedy(seq, ids, n, a->max_new, a->stop_at_eos, out, &n_out, NULL, NULL)
                             : STREE_ERR_OUT_OF_MEMORY;
        double dt = now_s() - t0;
        if (s != STREE_OK) rc = fail("generation", s);
        for (int32_t i = 0; i < n_out; i++) printf("%s%d", i ? " " : "", out[i]);
        printf("\n");
        fprintf(stderr, "stree: %s: prompt %d tokens, generated %d tokens in %.3f s (%.1f tokens/s), mode ar\n",
                stree_model_architecture(m), n, n_out, dt, dt > 0 ? n_out / dt : 0.0);
    }
    free(out);
    free(ids);
    stree_seq_free(seq);
    stree_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cli_args a = {.max_new = 32, .stop_at_eos = 1, .backend = STREE_BACKEND_AUTO};
    const char *cmd = argv[1];
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
