/* stree-server: an OpenAI-style completions server (libmicrohttpd) that embeds libstree.
 *
 *   stree-server --config engine.json [--host 127.0.0.1] [--port 8080]
 *
 * The engine config file is the library's (docs/TREES.md) plus an optional "server" object:
 * {"host", "port", "pool" (sequences served at once), "max_body_bytes", "max_tokens", "tokenizer"}.
 * POST /v1/completions {prompt: text | [ids], max_tokens, temperature, top_p, top_k, seed, stop,
 * stream}; GET /health. Malformed requests and limits give 4xx JSON errors; SIGTERM / SIGINT shut
 * it down cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "examples/server/request.h"
#include "stree.h"

typedef struct server {
    stree_engine *engine;
    stree_tokenizer *tok;              /* NULL: prompts must be token ids */
    stree_seq **pool;
    int *busy, pool_size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t compute;           /* steps of different requests interleave, one at a time */
    size_t max_body;
    int32_t max_tokens, n_ctx, vocab, eos;
    char model_name[256];
    long next_id;
} server;

/* ---------------------------------------------------------------- the pool of sequences */
static int acquire(server *s) {
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    while (slot < 0) {
        for (int i = 0; i < s->pool_size && slot < 0; i++)
            if (!s->busy[i]) slot = i;
        if (slot < 0) pthread_cond_wait(&s->cv, &s->mu);
    }
    s->busy[slot] = 1;
    pthread_mutex_unlock(&s->mu);
    return slot;
}

static void release(server *s, int slot) {
    pthread_mutex_lock(&s->mu);
    s->busy[slot] = 0;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- one generation */
typedef struct job {
    server *s;
    int slot;
    completion_request req;
    int32_t *prompt;
    int32_t n_prompt;
    int32_t *ids;                 /* generated */
    int32_t n_ids;
    stree_text_stream *ts;
    char *text;                   /* generated text so far (stop strings cut it) */
    size_t text_len, text_cap, text_sent;
    int prefilled, done, sent_done;
    const char *finish;           /* "length" | "stop" */
    char id[48];
    long created;
    char *pending;                /* bytes of the next SSE chunk not yet handed to MHD */
    size_t pending_len, pending_off;
    char error[256];
} job;

static int append_text(job *j, const char *t) {
    size_t n = strlen(t);
    if (j->text_len + n + 1 > j->text_cap) {
        size_t cap = (j->text_cap ? 2 * j->text_cap : 1024) + n;
        char *grown = realloc(j->text, cap);
        if (!grown) return -1;
        j->text = grown;
        j->text_cap = cap;
    }
    memcpy(j->text + j->text_len, t, n + 1);
    j->text_len += n;
    return 0;
}

/* Cuts the text at the first stop string; returns 1 when one was found. */
static int apply_stops(job *j) {
    for (int k = 0; k < j->req.n_stops; k++) {
        char *hit = strstr(j->text, j->req.stops[k]);
        if (hit) {
            j->text_len = (size_t)(hit - j->text);
            j->text[j->text_len] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Runs one step (prefill first); sets done / finish. 0 on success. */
static int job_step(job *j) {
    server *s = j->s;
    stree_seq *seq = s->pool[j->slot];
    pthread_mutex_lock(&s->compute);
    stree_status st = STREE_OK;
    int32_t out[STREE_MAX_STEP_TOKENS], n = 0;
    if (!j->prefilled) {
        stree_seq_reset(seq);
        stree_sampling_params sp = {.temperature = j->req.temperature, .top_k = j->req.top_k, .top_p = j->req.top_p,
                                    .min_p = 0.0f, .repetition_penalty = 1.0f, .seed = j->req.seed};
        st = stree_seq_set_sampling(seq, sp);
        if (st == STREE_OK) st = stree_seq_prefill(seq, j->prompt, j->n_prompt);
        j->prefilled = 1;
    }
    if (st == STREE_OK) st = stree_seq_step(seq, out, STREE_MAX_STEP_TOKENS, &n);
    pthread_mutex_unlock(&s->compute);
    if (st != STREE_OK) {
        snprintf(j->error, sizeof j->error, "%s: %s", stree_status_str(st), stree_last_error());
        j->done = 1;
        return -1;
    }
    for (int32_t k = 0; k < n && !j->done; k++) {
        if (out[k] == s->eos) {
            j->finish = "stop";
            j->done = 1;
            break;
        }
        j->ids[j->n_ids++] = out[k];
        if (j->ts) {
            const char *piece = "";
            if (stree_text_stream_push(j->ts, out[k], &piece) == STREE_OK && append_text(j, piece)) return -1;
            if (apply_stops(j)) {
                j->finish = "stop";
                j->done = 1;
            }
        }
        if (!j->done && j->n_ids >= j->req.max_tokens) {
            j->finish = "length";
            j->done = 1;
        }
    }
    if (j->done && j->ts && !strcmp(j->finish, "length")) {
        const char *tail = "";
        if (stree_text_stream_flush(j->ts, &tail) == STREE_OK && append_text(j, tail)) return -1;
        if (apply_stops(j)) j->finish = "stop";
    }
    return 0;
}

static void job_free(job *j) {
    if (!j) return;
    if (j->slot >= 0) release(j->s, j->slot);
    request_free(&j->req);
    stree_text_stream_free(j->ts);
    free(j->prompt), free(j->ids), free(j->text), free(j->pending);
    free(j);
}

/* ---------------------------------------------------------------- JSON replies */
static cJSON *choice(const job *j, const char *text, const int32_t *ids, int32_t n, const char *finish) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "text", text);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *arr = cJSON_AddArrayToObject(c, "token_ids");
    for (int32_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    (void)j;
    return c;
}

static cJSON *envelope(const job *j) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", j->id);
    cJSON_AddStringToObject(r, "object", "text_completion");
    cJSON_AddNumberToObject(r, "created", (double)j->created);
    cJSON_AddStringToObject(r, "model", j->s->model_name);
    return r;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, cJSON *body) {
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *type, const char *msg) {
    cJSON *b = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(b, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "code", code);
    return send_json(c, code, b);
}

/* ---------------------------------------------------------------- streaming (server-sent events) */
static void set_pending(job *j, char *text) {
    free(j->pending);
    j->pending = text;
    j->pending_len = strlen(text);
    j->pending_off = 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    job *j = cls;
    while (j->pending_off >= j->pending_len) {
        if (j->sent_done) return MHD_CONTENT_READER_END_OF_STREAM;
        if (j->done) {
            set_pending(j, strdup(j->error[0] ? "" : "data: [DONE]\n\n"));
            j->sent_done = 1;
            if (!j->pending_len) return MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        int32_t before = j->n_ids;
        if (job_step(j)) return MHD_CONTENT_READER_END_WITH_ERROR;
        /* hold back the bytes a stop string could still complete */
        size_t hold = 0;
        for (int k = 0; k < j->req.n_stops && !j->done; k++) {
            size_t l = strlen(j->req.stops[k]) - 1;
            if (l > hold) hold = l;
        }
        size_t ready = j->text_len > hold ? j->text_len - hold : 0;
        if (j->done) ready = j->text_len;
        if (ready < j->text_sent) ready = j->text_sent;
        char piece[65536];
        size_t plen = ready - j->text_sent < sizeof piece - 1 ? ready - j->text_sent : sizeof piece - 1;
        memcpy(piece, j->text ? j->text + j->text_sent : "", plen);
        piece[plen] = '\0';
        j->text_sent += plen;
        cJSON *r = envelope(j), *choices = cJSON_AddArrayToObject(r, "choices");
        cJSON_AddItemToArray(choices, choice(j, piece, j->ids + before, j->n_ids - before, j->done ? j->finish : NULL));
        char *json = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        size_t n = strlen(json) + 16;
        char *event = malloc(n);
        snprintf(event, n, "data: %s\n\n", json);
        free(json);
        set_pending(j, event);
    }
    size_t n = j->pending_len - j->pending_off < max ? j->pending_len - j->pending_off : max;
    memcpy(buf, j->pending + j->pending_off, n);
    j->pending_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) { job_free(cls); }

/* ---------------------------------------------------------------- requests */
typedef struct upload {
    char *body;
    size_t len, cap;
    int too_big;
} upload;

static enum MHD_Result completions(server *s, struct MHD_Connection *c, const upload *u) {
    char err[256];
    request_limits lim = {.max_tokens = s->max_tokens, .max_prompt_ids = s->n_ctx, .vocab = s->vocab};
    job *j = calloc(1, sizeof *j);
    if (!j) return send_error(c, 500, "server_error", "out of memory");
    j->s = s;
    j->slot = -1;
    if (request_parse(u->body ? u->body : "", u->len, &lim, &j->req, err, sizeof err)) {
        job_free(j);
        return send_error(c, 400, "invalid_request_error", err);
    }
    if (j->req.prompt_text) {
        if (!s->tok) {
            job_free(j);
            return send_error(c, 400, "invalid_request_error", "this server has no tokenizer: send 'prompt' as token ids");
        }
        size_t len = strlen(j->req.prompt_text);
        int32_t n = 0;
        stree_tokenize(s->tok, j->req.prompt_text, len, 1, NULL, 0, &n);
        j->prompt = malloc(((size_t)n + 1) * sizeof *j->prompt);
        if (!j->prompt || stree_tokenize(s->tok, j->req.prompt_text, len, 1, j->prompt, n, &j->n_prompt) != STREE_OK ||
            j->n_prompt == 0) {
            job_free(j);
            return send_error(c, 400, "invalid_request_error", "the prompt encodes to no tokens");
        }
    } else {
        j->n_prompt = j->req.n_prompt_ids;
        j->prompt = malloc((size_t)j->n_prompt * sizeof *j->prompt);
        if (j->prompt) memcpy(j->prompt, j->req.prompt_ids, (size_t)j->n_prompt * sizeof *j->prompt);
    }
    if (j->n_prompt + j->req.max_tokens + STREE_MAX_STEP_TOKENS > s->n_ctx) {
        snprintf(err, sizeof err, "prompt (%d tokens) + max_tokens (%d) exceed the context of %d tokens", j->n_prompt,
                 j->req.max_tokens, s->n_ctx - STREE_MAX_STEP_TOKENS);
        job_free(j);
        return send_error(c, 400, "invalid_request_error", err);
    }
    j->ids = malloc(((size_t)j->req.max_tokens + STREE_MAX_STEP_TOKENS) * sizeof *j->ids);
    if (!j->prompt || !j->ids || (s->tok && stree_text_stream_create(s->tok, 1, &j->ts) != STREE_OK)) {
        job_free(j);
        return send_error(c, 500, "server_error", "out of memory");
    }
    pthread_mutex_lock(&s->mu);
    snprintf(j->id, sizeof j->id, "cmpl-%ld", ++s->next_id);
    pthread_mutex_unlock(&s->mu);
    j->created = (long)time(NULL);
    j->slot = acquire(s);
    if (j->req.stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, j, stream_free);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    while (!j->done)
        if (job_step(j)) break;
    if (j->error[0]) {
        char msg[300];
        snprintf(msg, sizeof msg, "generation failed: %s", j->error);
        job_free(j);
        return send_error(c, 500, "server_error", msg);
    }
    cJSON *r = envelope(j), *choices = cJSON_AddArrayToObject(r, "choices");
    cJSON_AddItemToArray(choices, choice(j, j->text ? j->text : "", j->ids, j->n_ids, j->finish));
    cJSON *usage = cJSON_AddObjectToObject(r, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(usage, "completion_tokens", j->n_ids);
    cJSON_AddNumberToObject(usage, "total_tokens", j->n_prompt + j->n_ids);
    job_free(j);
    return send_json(c, 200, r);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)version;
    server *s = cls;
    if (!*con_cls) { /* first call: headers only */
        upload *u = calloc(1, sizeof *u);
        if (!u) return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    upload *u = *con_cls;
    if (*data_size) { /* body bytes */
        if (u->len + *data_size > s->max_body) {
            u->too_big = 1;
        } else {
            if (u->len + *data_size + 1 > u->cap) {
                size_t cap = (u->cap ? 2 * u->cap : 4096) + *data_size;
                char *grown = realloc(u->body, cap);
                if (!grown) return MHD_NO;
                u->body = grown;
                u->cap = cap;
            }
            memcpy(u->body + u->len, data, *data_size);
            u->len += *data_size;
            u->body[u->len] = '\0';
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/health")) {
        if (strcmp(method, "GET")) return send_error(c, 405, "invalid_request_error", "use GET /health");
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "status", "ok");
        cJSON_AddStringToObject(b, "model", s->model_name);
        cJSON_AddNumberToObject(b, "pool", s->pool_size);
        return send_json(c, 200, b);
    }
    if (!strcmp(url, "/v1/completions")) {
        if (strcmp(method, "POST")) return send_error(c, 405, "invalid_request_error", "use POST /v1/completions");
        if (u->too_big) {
            char msg[128];
            snprintf(msg, sizeof msg, "the body exceeds the limit of %zu bytes", s->max_body);
            return send_error(c, 413, "invalid_request_error", msg);
        }
        return completions(s, c, u);
    }
    return send_error(c, 404, "invalid_request_error", "unknown path (POST /v1/completions, GET /health)");
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code) {
    (void)cls, (void)c, (void)code;
    upload *u = *con_cls;
    if (u) free(u->body), free(u);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- set-up */
typedef struct server_config {
    char host[64];
    int port, pool;
    long max_body;
    int max_tokens;
    char tokenizer[1024];
} server_config;

static int read_server_config(const char *path, server_config *sc) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "stree-server: %s: %s\n", path, strerror(errno));
        return -1;
    }
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        fprintf(stderr, "stree-server: %s: invalid JSON\n", path);
        return -1;
    }
    const cJSON *srv = cJSON_GetObjectItemCaseSensitive(root, "server");
    int rc = 0;
    if (srv && !cJSON_IsObject(srv)) {
        fprintf(stderr, "stree-server: %s: 'server' must be an object\n", path);
        rc = -1;
    }
    for (const cJSON *it = srv ? srv->child : NULL; it && !rc; it = it->next) {
        if (!strcmp(it->string, "host") && cJSON_IsString(it)) snprintf(sc->host, sizeof sc->host, "%s", it->valuestring);
        else if (!strcmp(it->string, "tokenizer") && cJSON_IsString(it))
            snprintf(sc->tokenizer, sizeof sc->tokenizer, "%s", it->valuestring);
        else if (!strcmp(it->string, "port") && cJSON_IsNumber(it) && it->valueint > 0 && it->valueint < 65536) sc->port = it->valueint;
        else if (!strcmp(it->string, "pool") && cJSON_IsNumber(it) && it->valueint > 0 && it->valueint <= 256) sc->pool = it->valueint;
        else if (!strcmp(it->string, "max_body_bytes") && cJSON_IsNumber(it) && it->valuedouble >= 64) sc->max_body = (long)it->valuedouble;
        else if (!strcmp(it->string, "max_tokens") && cJSON_IsNumber(it) && it->valueint > 0) sc->max_tokens = it->valueint;
        else {
            fprintf(stderr, "stree-server: %s: bad or unknown key 'server.%s'\n", path, it->string);
            rc = -1;
        }
    }
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(root, "target");
    if (!sc->tokenizer[0] && cJSON_IsString(target)) { /* default: the target folder's tokenizer.json */
        const char *slash = strrchr(path, '/');
        if (target->valuestring[0] == '/' || !slash) snprintf(sc->tokenizer, sizeof sc->tokenizer, "%s/tokenizer.json", target->valuestring);
        else snprintf(sc->tokenizer, sizeof sc->tokenizer, "%.*s/%s/tokenizer.json", (int)(slash - path), path, target->valuestring);
    }
    cJSON_Delete(root);
    return rc;
}

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

int main(int argc, char **argv) {
    const char *config = NULL;
    server_config sc = {.host = "127.0.0.1", .port = 8080, .pool = 4, .max_body = 1 << 20, .max_tokens = 1024};
    int cli_port = 0;
    char cli_host[64] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: stree-server --config ENGINE.json [--host ADDR] [--port N]\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "stree-server: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--config")) config = argv[++i];
        else if (!strcmp(argv[i], "--port")) cli_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host")) snprintf(cli_host, sizeof cli_host, "%s", argv[++i]);
        else {
            fprintf(stderr, "stree-server: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "usage: stree-server --config ENGINE.json [--host ADDR] [--port N]\n");
        return 2;
    }
    if (read_server_config(config, &sc)) return 1;
    if (cli_port) sc.port = cli_port;
    if (cli_host[0]) snprintf(sc.host, sizeof sc.host, "%s", cli_host);
    server s;
    memset(&s, 0, sizeof s);
    stree_status st = stree_engine_create_from_config(config, stree_model_default_params(), &s.engine);
    if (st != STREE_OK) {
        fprintf(stderr, "stree-server: %s: %s\n", stree_status_str(st), stree_last_error());
        return 1;
    }
    stree_model *target = stree_engine_target(s.engine);
    FILE *tf = fopen(sc.tokenizer, "rb");
    if (tf) {
        fclose(tf);
        st = stree_tokenizer_load(sc.tokenizer, &s.tok);
        if (st != STREE_OK) {
            fprintf(stderr, "stree-server: %s: %s\n", stree_status_str(st), stree_last_error());
            stree_engine_free(s.engine);
            return 1;
        }
    } else {
        fprintf(stderr, "stree-server: no tokenizer at %s: prompts must be token ids\n", sc.tokenizer);
    }
    s.pool_size = sc.pool;
    s.pool = calloc((size_t)sc.pool, sizeof *s.pool);
    s.busy = calloc((size_t)sc.pool, sizeof *s.busy);
    for (int i = 0; i < sc.pool && st == STREE_OK; i++) st = stree_seq_create(s.engine, &s.pool[i]);
    if (st != STREE_OK) {
        fprintf(stderr, "stree-server: %s: %s\n", stree_status_str(st), stree_last_error());
        return 1;
    }
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_mutex_init(&s.compute, NULL);
    s.max_body = (size_t)sc.max_body;
    s.max_tokens = sc.max_tokens;
    s.vocab = stree_model_vocab_size(target);
    s.eos = stree_model_eos_token(target);
    s.n_ctx = stree_engine_n_ctx(s.engine);
    snprintf(s.model_name, sizeof s.model_name, "%s", stree_model_architecture(target));
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)sc.port);
    if (inet_pton(AF_INET, sc.host, &addr.sin_addr) != 1) {
        fprintf(stderr, "stree-server: bad host address %s\n", sc.host);
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                                MHD_USE_ERROR_LOG,
                                            (uint16_t)sc.port, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, &addr,
                                            MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "stree-server: cannot listen on %s:%d\n", sc.host, sc.port);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "stree-server: %s on http://%s:%d (pool %d)\n", s.model_name, sc.host, sc.port, sc.pool);
    while (!stop_requested) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "stree-server: shutting down\n");
    MHD_stop_daemon(d);
    for (int i = 0; i < sc.pool; i++) stree_seq_free(s.pool[i]);
    free(s.pool), free(s.busy);
    stree_tokenizer_free(s.tok);
    stree_engine_free(s.engine);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.compute);
    return 0;
}
