/* stree — command-line front end: logits and greedy generation over a Hugging Face checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/commands.h"
#include "examples/cli/args.h"
#include "stree.h"

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: stree <command> [options]\n\n"
            "commands:\n"
            "  logits    write float32 logits for every position of a token sequence\n"
            "  generate  generate after a prompt (ids or text), tree-speculatively with a drafter\n"
            "  tokenize  text -> token ids (like llama-tokenize)\n"
            "  detokenize token ids -> text\n"
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
            "usage: stree generate --model DIR (--tokens 1,2,3 | --prompt TEXT | --prompt-file F)\n"
            "                      [--tokenizer FILE] [--max-new N] [--greedy] [--ids] [--json]\n"
            "                      [--draft DIR | --ngram N | --self-draft] [--tree FILE.json |\n"
            "                      --chain K | --dynamic TOPK,DEPTH,BUDGET] [--no-eos] [--n-ctx N]\n"
            "                      [--backend cpu]\n\n"
            "Greedy generation, tree-speculative when a drafter is given (output identical to\n"
            "autoregressive decoding). Prints the generated ids space-separated on stdout (--ids);\n"
            "stats (tokens/s, mean accepted length, tokens per step) go to stderr.\n"
            "  --max-new N        tokens to generate (default 32)\n"
            "  --prompt TEXT      a text prompt (tokenizer: --tokenizer, else DIR/tokenizer.json); the\n"
            "                     text is streamed to stdout as tokens are committed\n"
            "  --ids              print the generated ids instead of text\n"
            "  --json             print the stats as one JSON object on stderr\n"
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
            "                     (default: speculative sampling for sampled draft-model trees)\n"
            "  --compare-ar       then generate the same tokens autoregressively and print the\n"
            "                     measured speedup (and, when greedy, whether the outputs match)\n");
}

typedef struct cli_args {
    const char *model, *tokens, *out, *draft, *tree_file, *prompt, *prompt_file, *tokenizer, *text, *text_file, *ids_arg;
    int32_t json;
    int32_t ngram, self_draft, chain, dyn[3], target_only, compare_ar;
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


/* Returns 0 on success, 1 on --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, cli_args *a) {
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) return 1;
        if (!strcmp(f, "--greedy")) continue;
        if (!strcmp(f, "--ids")) { /* a flag for generate; detokenize takes a list: --ids 1,2,3 */
            if (v && v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789,") == strlen(v)) {
                a->ids_arg = v;
                i++;
            } else {
                a->ids = 1;
            }
            continue;
        }
        if (!strcmp(f, "--json")) { a->json = 1; continue; }
        if (!strcmp(f, "--no-eos") || !strcmp(f, "--no-special")) { a->stop_at_eos = 0; continue; }
        if (!strcmp(f, "--self-draft")) { a->self_draft = 1; continue; }
        if (!strcmp(f, "--target-only")) { a->target_only = 1; continue; }
        if (!strcmp(f, "--compare-ar")) { a->compare_ar = 1; continue; }
        if (!v) {
            fprintf(stderr, "stree: unknown option or missing value: %s\n", f);
            return -1;
        }
        i++;
        int sampled;
        if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--tokens")) a->tokens = v;
        else if (!strcmp(f, "--prompt")) a->prompt = v;
        else if (!strcmp(f, "--prompt-file")) a->prompt_file = v;
        else if (!strcmp(f, "--tokenizer")) a->tokenizer = v;
        else if (!strcmp(f, "--text")) a->text = v;
        else if (!strcmp(f, "--file")) a->text_file = v;
        else if (!strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "--draft")) a->draft = v;
        else if ((sampled = cli_sampling_flag(f, v, &a->sampling)) != 0) { if (sampled < 0) return -1; }
        else if (!strcmp(f, "--tree")) a->tree_file = v;
        else if (!strcmp(f, "--ngram")) { if (cli_int(f, v, 1, &a->ngram)) return -1; }
        else if (!strcmp(f, "--chain")) { if (cli_int(f, v, 1, &a->chain)) return -1; }
        else if (!strcmp(f, "--dynamic")) {
            if (sscanf(v, "%d,%d,%d", &a->dyn[0], &a->dyn[1], &a->dyn[2]) != 3) {
                fprintf(stderr, "stree: --dynamic needs TOPK,DEPTH,BUDGET (e.g. 4,5,32)\n");
                return -1;
            }
        }
        else if (!strcmp(f, "--max-new")) { if (cli_int(f, v, 0, &a->max_new)) return -1; }
        else if (!strcmp(f, "--n-ctx")) { if (cli_int(f, v, 1, &a->n_ctx)) return -1; }
        else if (!strcmp(f, "--backend")) {
            if (cli_backend(v, &a->backend)) return -1;
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

/* --n-ctx, else room for the prompt, the new tokens and one whole tree path past them */
static int32_t context_for(const cli_args *a, int32_t n_prompt, int32_t default_ctx) {
    if (a->n_ctx > 0) return a->n_ctx;
    int32_t need = n_prompt + a->max_new + 300;
    return need > default_ctx ? need : default_ctx;
}

static int load(const cli_args *a, loaded *l, int32_t n_tokens) {
    stree_model_params mp = stree_model_default_params();
    mp.backend = a->backend;
    stree_status s = stree_model_load(a->model, mp, &l->target);
    if (s != STREE_OK) return fail("loading the model", s);
    stree_engine_params ep = stree_engine_default_params();
    ep.n_ctx = context_for(a, n_tokens, ep.n_ctx);
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

/* Reads a whole file into a NUL-terminated buffer (caller frees); NULL with a message on failure. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "stree: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static int load_tokenizer(const char *explicit_path, const char *model_dir, stree_tokenizer **tok) {
    char path[1024];
    if (explicit_path) snprintf(path, sizeof path, "%s", explicit_path);
    else snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    stree_status s = stree_tokenizer_load(path, tok);
    if (s != STREE_OK) return fail("loading the tokenizer", s);
    return 0;
}

/* Encodes text into a malloc'd id array. */
static int encode_text(const stree_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                       int32_t *n) {
    int32_t need = 0;
    stree_tokenize(tok, text, len, add_special, NULL, 0, &need);
    *ids = malloc(((size_t)need + 1) * sizeof **ids);
    if (!*ids) return 1;
    stree_status s = stree_tokenize(tok, text, len, add_special, *ids, need, n);
    return s == STREE_OK ? 0 : fail("tokenizing", s);
}

typedef struct stream_ctx {
    stree_text_stream *ts;
} stream_ctx;

static int print_token_text(int32_t token, void *user) {
    stream_ctx *c = user;
    const char *piece = "";
    if (stree_text_stream_push(c->ts, token, &piece) == STREE_OK) fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

/* The same generation without a drafter, timed the same way: the speedup of this run, measured. */
static int compare_with_ar(const cli_args *a, const loaded *l, const int32_t *ids, int32_t n, const int32_t *spec,
                           int32_t n_spec, double spec_s) {
    stree_engine_params ep = stree_engine_default_params();
    ep.n_ctx = context_for(a, n, ep.n_ctx);
    ep.sampling = a->sampling;
    stree_engine *e = NULL;
    stree_seq *seq = NULL;
    int32_t *out = malloc(((size_t)a->max_new + 1) * sizeof *out), n_out = 0;
    stree_status s = out ? stree_engine_create(l->target, ep, &e) : STREE_ERR_OUT_OF_MEMORY;
    if (s == STREE_OK) s = stree_seq_create(e, &seq);
    double t0 = now_s();
    if (s == STREE_OK) s = stree_seq_generate(seq, ids, n, n_spec, 0, out, &n_out, NULL, NULL);
    double dt = now_s() - t0;
    int rc = s == STREE_OK ? 0 : fail("the autoregressive comparison", s);
    if (!rc) {
        int same = n_out == n_spec && !memcmp(out, spec, (size_t)n_out * sizeof *out);
        double spec_tps = spec_s > 0 ? n_spec / spec_s : 0.0, ar_tps = dt > 0 ? n_out / dt : 0.0;
        fprintf(stderr, "stree: autoregressive: %d tokens in %.3f s (%.1f tokens/s); tree-speculative speedup %.2fx%s\n",
                n_out, dt, ar_tps, ar_tps > 0 ? spec_tps / ar_tps : 0.0,
                a->sampling.temperature > 0 ? " (sampled: outputs differ by design)"
                                            : same ? "; outputs identical" : "; OUTPUTS DIFFER");
        if (a->sampling.temperature <= 0 && !same) rc = 1;
    }
    stree_seq_free(seq);
    stree_engine_free(e);
    free(out);
    return rc;
}

static int cmd_generate(const cli_args *a) {
    int text_prompt = a->prompt || a->prompt_file;
    if (!a->model || (!a->tokens && !text_prompt) || (a->tokens && text_prompt)) {
        usage_generate(stderr);
        return 2;
    }
    int32_t *ids = NULL, n = 0;
    stree_tokenizer *tok = NULL;
    int want_text = !a->ids && (text_prompt || a->tokenizer);
    if ((text_prompt || want_text) && load_tokenizer(a->tokenizer, a->model, &tok)) return 1;
    if (a->tokens) {
        if (parse_tokens(a->tokens, &ids, &n)) return 2;
    } else {
        size_t len = 0;
        char *text = a->prompt ? strdup(a->prompt) : read_all(a->prompt_file, &len);
        if (a->prompt) len = strlen(a->prompt);
        int bad = !text || encode_text(tok, text, len, 1, &ids, &n);
        free(text);
        if (bad || n == 0) {
            if (!bad) fprintf(stderr, "stree: the prompt encodes to no tokens\n");
            stree_tokenizer_free(tok);
            free(ids);
            return 1;
        }
    }
    loaded l = {0};
    int rc = load(a, &l, n);
    int32_t *out = NULL, n_out = 0;
    double spec_s = 0.0;
    stream_ctx sc = {0};
    if (!rc && want_text && stree_text_stream_create(tok, 1, &sc.ts) != STREE_OK) rc = fail("text stream", STREE_ERR_OUT_OF_MEMORY);
    if (!rc) {
        out = malloc(((size_t)a->max_new + 1) * sizeof *out);
        double t0 = now_s();
        stree_status s = out ? stree_seq_generate(l.seq, ids, n, a->max_new, a->stop_at_eos, out, &n_out,
                                                  want_text ? print_token_text : NULL, &sc)
                             : STREE_ERR_OUT_OF_MEMORY;
        double dt = now_s() - t0;
        spec_s = dt;
        if (s != STREE_OK) rc = fail("generation", s);
        if (want_text) {
            const char *tail = "";
            stree_text_stream_flush(sc.ts, &tail);
            printf("%s\n", tail);
        } else {
            for (int32_t i = 0; i < n_out; i++) printf("%s%d", i ? " " : "", out[i]);
            printf("\n");
        }
        fflush(stdout); /* the text before the stats on stderr, also through pipes */
        stree_stats st;
        stree_seq_stats(l.seq, &st);
        double per_step = st.n_steps ? (double)st.n_emitted / (double)st.n_steps : 0.0;
        double accepted = st.n_steps ? (double)st.n_accepted / (double)st.n_steps : 0.0;
        if (a->json)
            fprintf(stderr,
                    "{\"model\": \"%s\", \"backend\": \"%s\", \"prompt_tokens\": %d, \"generated_tokens\": %d, "
                    "\"seconds\": %.6f, \"tokens_per_s\": %.3f, \"steps\": %lld, \"tokens_per_step\": %.4f, "
                    "\"mean_accepted_length\": %.4f, \"drafted\": %lld, \"accepted\": %lld, \"draft_s\": %.6f, "
                    "\"verify_s\": %.6f, \"commit_s\": %.6f}\n",
                    stree_model_architecture(l.target), stree_model_backend(l.target), n, n_out, dt,
                    dt > 0 ? n_out / dt : 0.0, (long long)st.n_steps, per_step, accepted, (long long)st.n_drafted,
                    (long long)st.n_accepted, st.t_draft, st.t_verify, st.t_commit);
        else
            fprintf(stderr,
                    "stree: %s: prompt %d tokens, generated %d tokens in %.3f s (%.1f tokens/s); %lld steps, "
                    "%.2f tokens per step, mean accepted length %.2f (drafted %lld, accepted %lld); "
                    "time draft %.3f s, verify %.3f s, commit %.3f s\n",
                    stree_model_architecture(l.target), n, n_out, dt, dt > 0 ? n_out / dt : 0.0,
                    (long long)st.n_steps, per_step, accepted, (long long)st.n_drafted, (long long)st.n_accepted,
                    st.t_draft, st.t_verify, st.t_commit);
    }
    if (!rc && a->compare_ar) rc = compare_with_ar(a, &l, ids, n, out, n_out, spec_s);
    stree_text_stream_free(sc.ts);
    stree_tokenizer_free(tok);
    free(out);
    free(ids);
    unload(&l);
    return rc;
}

static int cmd_tokenize(const cli_args *a) {
    if (!a->tokenizer || (!a->text == !a->text_file)) {
        fprintf(stderr, "usage: stree tokenize --tokenizer FILE (--text S | --file F) [--no-special]\n");
        return 2;
    }
    stree_tokenizer *tok = NULL;
    if (load_tokenizer(a->tokenizer, NULL, &tok)) return 1;
    size_t len = 0;
    char *text = a->text ? strdup(a->text) : read_all(a->text_file, &len);
    if (a->text) len = strlen(a->text);
    int32_t *ids = NULL, n = 0;
    int rc = !text || encode_text(tok, text, len, a->stop_at_eos /* --no-special clears it */, &ids, &n);
    for (int32_t i = 0; !rc && i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    if (!rc) printf("\n");
    free(ids);
    free(text);
    stree_tokenizer_free(tok);
    return rc;
}

static int cmd_detokenize(const cli_args *a) {
    if (!a->tokenizer || !a->ids_arg) {
        fprintf(stderr, "usage: stree detokenize --tokenizer FILE --ids 1,2,3\n");
        return 2;
    }
    int32_t *ids = NULL, n = 0;
    if (parse_tokens(a->ids_arg, &ids, &n)) return 2;
    stree_tokenizer *tok = NULL;
    int rc = load_tokenizer(a->tokenizer, NULL, &tok);
    size_t need = 0;
    if (!rc) stree_detokenize(tok, ids, n, 0, NULL, 0, &need);
    char *text = rc ? NULL : malloc(need + 1);
    if (text && stree_detokenize(tok, ids, n, 0, text, need + 1, &need) == STREE_OK) printf("%s\n", text);
    else if (!rc) rc = fail("detokenizing", STREE_ERR_INVALID_ARG);
    free(text);
    free(ids);
    stree_tokenizer_free(tok);
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
    int is_tokenize = !strcmp(cmd, "tokenize"), is_detokenize = !strcmp(cmd, "detokenize");
    if (!is_logits && !is_generate && !is_tokenize && !is_detokenize) {
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
    if (is_tokenize) return cmd_tokenize(&a);
    if (is_detokenize) return cmd_detokenize(&a);
    return is_logits ? cmd_logits(&a) : cmd_generate(&a);
}
