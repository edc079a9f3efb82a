#include "runtime/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"

stree_status stree_weights_own(stree_weights *w, void *block) {
    if (w->n_allocs == w->cap_allocs) {
        int32_t cap = w->cap_allocs ? 2 * w->cap_allocs : 64;
        void **grown = realloc(w->allocs, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(block);
            return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory growing the weight table");
        }
        w->allocs = grown;
        w->cap_allocs = cap;
    }
    w->allocs[w->n_allocs++] = block;
    return STREE_OK;
}

void stree_weights_release(stree_weights *w) {
    if (!w) return;
    for (int32_t i = 0; i < w->n_allocs; i++) free(w->allocs[i]);
    free(w->allocs);
    free(w->layers);
    memset(w, 0, sizeof *w);
}

static void shape_str(char *buf, size_t cap, int32_t ndim, const int64_t *shape) {
    size_t len = 0;
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int32_t i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

const float stree_random_placeholder[1];

int stree_bind_has(const stree_wbinder *b, const char *name) {
    return !b->random && stree_checkpoint_find(b->ckpt, name) != NULL;
}

static stree_status bind(stree_wbinder *b, const float **dst, const char *name, int32_t ndim, const int64_t *shape,
                         int required) {
    *dst = NULL;
    if (b->random) {
        if (required) *dst = stree_random_placeholder;
        return STREE_OK;
    }
    const stree_st_tensor *t = stree_checkpoint_find(b->ckpt, name);
    if (!t) {
        if (!required) return STREE_OK;
        return stree_fail(STREE_ERR_MISSING_TENSOR, "%s: missing tensor '%s'", stree_checkpoint_path(b->ckpt), name);
    }
    int same = t->ndim == ndim;
    for (int32_t i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], got[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return stree_fail(STREE_ERR_MISSING_TENSOR, "%s: tensor '%s' has shape %s, config.json implies %s (file %s)",
                          stree_checkpoint_path(b->ckpt), name, got, want, t->file);
    }
    float *data = malloc((size_t)(t->n_elements ? t->n_elements : 1) * sizeof *data);
    if (!data) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory loading tensor '%s'", name);
    stree_status s = stree_st_tensor_to_f32(t, data);
    if (s != STREE_OK) {
        free(data);
        return s;
    }
    STREE_TRY(stree_weights_own(b->w, data));
    *dst = data;
    /* a progress line for checkpoints big enough to take a while (every 10%) */
    b->done_bytes += t->n_bytes;
    if (b->total_bytes > ((size_t)512 << 20)) {
        int32_t pct = (int32_t)(100.0 * (double)b->done_bytes / (double)b->total_bytes);
        if (pct / 10 > b->last_percent / 10) {
            stree_log(STREE_LOG_INFO, "loading %s: %d%% (%.1f of %.1f GB)", stree_checkpoint_path(b->ckpt), pct,
                      (double)b->done_bytes / 1e9, (double)b->total_bytes / 1e9);
            b->last_percent = pct;
        }
    }
    return STREE_OK;
}

stree_status stree_bind(stree_wbinder *b, const float **dst, const char *name, int32_t ndim, const int64_t *shape) {
    return bind(b, dst, name, ndim, shape, 1);
}

stree_status stree_bind_opt(stree_wbinder *b, const float **dst, const char *name, int32_t ndim, const int64_t *shape) {
    return bind(b, dst, name, ndim, shape, 0);
}
