#define _POSIX_C_SOURCE 200809L
#include "request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

void request_free(completion_request *r) {
    free(r->prompt_text);
    free(r->prompt_ids);
    memset(r, 0, sizeof *r);
}

static int get_int(const cJSON *root, const char *key, int32_t lo, int32_t hi, int32_t *out, char *err, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return fail(err, cap, "'%s' must be an integer in [%d, %d]", key, lo, hi);
    *out = (int32_t)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *root, const char *key, double lo, double hi, float *out, char *err, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return fail(err, cap, "'%s' must be a number in [%g, %g]", key, lo, hi);
    *out = (float)v->valuedouble;
    return 0;
}

static int parse_stop(const cJSON *v, completion_request *r, char *err, size_t cap) {
    if (!v || cJSON_IsNull(v)) return 0;
    const cJSON *items[REQ_MAX_STOPS + 1];
    int n = 0;
    if (cJSON_IsString(v)) {
        items[n++] = v;
    } else if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) > REQ_MAX_STOPS) return fail(err, cap, "'stop' takes at most %d strings", REQ_MAX_STOPS);
        for (const cJSON *it = v->child; it; it = it->next) items[n++] = it;
    } else {
        return fail(err, cap, "'stop' must be a string or a list of strings");
    }
    for (int i = 0; i < n; i++) {
        if (!cJSON_IsString(items[i]) || !items[i]->valuestring[0] ||
            strlen(items[i]->valuestring) > REQ_MAX_STOP_LEN)
            return fail(err, cap, "'stop' entries must be non-empty strings of at most %d bytes", REQ_MAX_STOP_LEN);
        snprintf(r->stops[r->n_stops++], REQ_MAX_STOP_LEN + 1, "%s", items[i]->valuestring);
    }
    return 0;
}

int request_parse(const char *body, size_t len, const request_limits *lim, completion_request *r, char *err,
                  size_t cap) {
    memset(r, 0, sizeof *r);
    r->max_tokens = 16;
    r->top_p = 1.0f;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) return fail(err, cap, "the body is not valid JSON");
    int rc = 0;
    static const char *known[] = {"prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop",
                                  "stream", "model", "n", NULL};
    if (!cJSON_IsObject(root)) rc = fail(err, cap, "the body must be a JSON object");
    for (const cJSON *it = rc ? NULL : root->child; it && !rc; it = it->next) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(it->string, known[i]);
        if (!ok) rc = fail(err, cap, "unknown parameter '%s'", it->string);
    }
    const cJSON *prompt = rc ? NULL : cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!rc && !prompt) rc = fail(err, cap, "'prompt' is required (a string or a list of token ids)");
    if (!rc && cJSON_IsString(prompt)) {
        if (!prompt->valuestring[0]) rc = fail(err, cap, "'prompt' is empty");
        else if (!(r->prompt_text = strdup(prompt->valuestring))) rc = fail(err, cap, "out of memory");
    } else if (!rc && cJSON_IsArray(prompt)) {
        int32_t n = cJSON_GetArraySize(prompt);
        if (n <= 0 || n > lim->max_prompt_ids) rc = fail(err, cap, "'prompt' must hold 1..%d token ids", lim->max_prompt_ids);
        else if (!(r->prompt_ids = malloc((size_t)n * sizeof *r->prompt_ids))) rc = fail(err, cap, "out of memory");
        for (int32_t i = 0; !rc && i < n; i++) {
            const cJSON *t = cJSON_GetArrayItem(prompt, i);
            if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 ||
                t->valuedouble >= lim->vocab)
                rc = fail(err, cap, "'prompt'[%d] is not a token id in [0, %d)", i, lim->vocab);
            else r->prompt_ids[i] = (int32_t)t->valuedouble;
        }
        r->n_prompt_ids = n;
    } else if (!rc) {
        rc = fail(err, cap, "'prompt' must be a string or a list of token ids");
    }
    int32_t n_choices = 1;
    if (!rc) rc = get_int(root, "max_tokens", 1, lim->max_tokens, &r->max_tokens, err, cap);
    if (!rc) rc = get_float(root, "temperature", 0.0, 10.0, &r->temperature, err, cap);
    if (!rc) rc = get_float(root, "top_p", 1e-6, 1.0, &r->top_p, err, cap);
    if (!rc) rc = get_int(root, "top_k", 0, 1000000, &r->top_k, err, cap);
    if (!rc) rc = get_int(root, "n", 1, 1, &n_choices, err, cap);
    const cJSON *seed = rc ? NULL : cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (!rc && seed && !cJSON_IsNull(seed)) {
        if (!cJSON_IsNumber(seed) || seed->valuedouble < 0 || seed->valuedouble != floor(seed->valuedouble) ||
            seed->valuedouble > 9007199254740992.0)
            rc = fail(err, cap, "'seed' must be a non-negative integer");
        else r->seed = (uint64_t)seed->valuedouble, r->has_seed = 1;
    }
    const cJSON *stream = rc ? NULL : cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (!rc && stream && !cJSON_IsNull(stream)) {
        if (!cJSON_IsBool(stream)) rc = fail(err, cap, "'stream' must be true or false");
        else r->stream = cJSON_IsTrue(stream);
    }
    if (!rc) rc = parse_stop(cJSON_GetObjectItemCaseSensitive(root, "stop"), r, err, cap);
    cJSON_Delete(root);
    if (rc) request_free(r);
    return rc;
}
