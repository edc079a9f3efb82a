/* Internal error reporting: every failing call records a message naming what is at fault. */
#ifndef STREE_RUNTIME_ERROR_H
#define STREE_RUNTIME_ERROR_H

#include "stree.h"

#if defined(__GNUC__)
#define STREE_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define STREE_PRINTF(fmt_idx, arg_idx)
#endif

/* Record `status` with a printf-style message for stree_last_error(); returns `status`. */
stree_status stree_fail(stree_status status, const char *fmt, ...) STREE_PRINTF(2, 3);
/* Prefix the current last-error message with more context ("loading DIR: ..."); returns `status`. */
stree_status stree_fail_context(stree_status status, const char *fmt, ...) STREE_PRINTF(2, 3);
void stree_clear_error(void);

void stree_log(stree_log_level level, const char *fmt, ...) STREE_PRINTF(2, 3);

/* Propagate a failure: `STREE_TRY(call);` returns the status of a failing call. */
#define STREE_TRY(expr)                      \
    do {                                     \
        stree_status stree_try_s_ = (expr);  \
        if (stree_try_s_ != STREE_OK) return stree_try_s_; \
    } while (0)

#endif
