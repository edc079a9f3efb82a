#include "runtime/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STREE_ERROR_CAP 1024

static _Thread_local char last_error[STREE_ERROR_CAP];

const char *stree_status_str(stree_status status) {
    switch (status) {
    case STREE_OK: return "STREE_OK";
    case STREE_ERR_INVALID_ARG: return "STREE_ERR_INVALID_ARG";
    case STREE_ERR_IO: return "STREE_ERR_IO";
    case STREE_ERR_FORMAT: return "STREE_ERR_FORMAT";
    case STREE_ERR_CONFIG: return "STREE_ERR_CONFIG";
    case STREE_ERR_UNSUPPORTED: return "STREE_ERR_UNSUPPORTED";
    case STREE_ERR_MISSING_TENSOR: return "STREE_ERR_MISSING_TENSOR";
    case STREE_ERR_OUT_OF_MEMORY: return "STREE_ERR_OUT_OF_MEMORY";
    case STREE_ERR_CONTEXT_FULL: return "STREE_ERR_CONTEXT_FULL";
    case STREE_ERR_BACKEND: return "STREE_ERR_BACKEND";
    case STREE_ERR_INTERNAL: return "STREE_ERR_INTERNAL";
    }
    return "STREE_ERR_UNKNOWN";
}

const char *stree_last_error(void) { return last_error; }

void stree_clear_error(void) { last_error[0] = '\0'; }

stree_status stree_fail(stree_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

stree_status stree_fail_context(stree_status status, const char *fmt, ...) {
    char old[STREE_ERROR_CAP];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof last_error ? (size_t)n : sizeof last_error - 1;
    size_t room = sizeof last_error - 1 - len;
    if (room >= 2) {
        memcpy(last_error + len, ": ", 2);
        len += 2;
        room -= 2;
        size_t old_len = strlen(old);
        if (old_len > room) old_len = room;
        memcpy(last_error + len, old, old_len);
        len += old_len;
    }
    last_error[len] = '\0';
    return status;
}

/* ---- logging ---- */
static stree_log_fn log_fn;
static void *log_user;
static stree_log_level log_min = STREE_LOG_INFO;

void stree_set_log(stree_log_fn fn, void *user, stree_log_level min_level) {
    log_fn = fn;
    log_user = user;
    log_min = min_level;
}

void stree_log(stree_log_level level, const char *fmt, ...) {
    if (level < log_min) return;
    char msg[STREE_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(level, msg, log_user);
    } else {
        static const char *names[] = {"debug", "info", "warn", "error"};
        fprintf(stderr, "stree %s: %s\n", names[level], msg);
    }
}
