/* POST /v1/completions bodies (OpenAI-style) parsed into a plain struct, with limits; no HTTP here,
 * so the parser can be fuzzed on its own. */
#ifndef STREE_SERVER_REQUEST_H
#define STREE_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define REQ_MAX_STOPS 4
#define REQ_MAX_STOP_LEN 64

typedef struct completion_request {
    char *prompt_text;         /* owned, NULL when the prompt is token ids */
    int32_t *prompt_ids;       /* owned, NULL when the prompt is text */
    int32_t n_prompt_ids;
    int32_t max_tokens;        /* default 16 */
    float temperature;         /* default 0 (greedy) */
    float top_p;               /* default 1 */
    int32_t top_k;             /* default 0 */
    uint64_t seed;             /* default 0 */
    int has_seed;
    int stream;                /* default false */
    char stops[REQ_MAX_STOPS][REQ_MAX_STOP_LEN + 1];
    int n_stops;
} completion_request;

typedef struct request_limits {
    int32_t max_tokens;        /* largest max_tokens accepted */
    int32_t max_prompt_ids;    /* longest prompt (ids) accepted */
    int32_t vocab;             /* ids must be below */
} request_limits;

/* 0 on success; else -1 with a message in err [err_cap] (the HTTP status is 400). */
int request_parse(const char *body, size_t len, const request_limits *lim, completion_request *out, char *err,
                  size_t err_cap);
void request_free(completion_request *r);

#endif
