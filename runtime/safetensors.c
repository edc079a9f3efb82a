/* safetensors checkpoints: memory-mapped files, validated headers, sharded indexes.
 *
 * Layout of one file: u64 little-endian header length N, N bytes of UTF-8 JSON (an object mapping tensor
 * names to {dtype, shape, data_offsets}, plus an optional "__metadata__" object of strings), then the data
 * section that the tensors must tile exactly. Every check names the file and, where one is involved, the
 * tensor. All allocations hang off the checkpoint as soon as they are made, so every error path just closes
 * the half-built checkpoint. */
#define _POSIX_C_SOURCE 200809L

#include "runtime/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.h"

#define ST_MAX_HEADER 100000000ull       /* the limit the format sets on N */
#define ST_MAX_INDEX_BYTES 100000000ll   /* model.safetensors.index.json is read whole */
#define ST_MAX_EXACT_INT 9007199254740992.0 /* 2^53: JSON numbers come through cJSON as doubles */
#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

typedef struct st_file {
    char *path;
    uint8_t *map;
    size_t size;
} st_file;

struct stree_checkpoint {
    char *path;
    st_file *files;
    int32_t n_files, cap_files;
    stree_st_tensor *tensors; /* sorted by name once open succeeds */
    int32_t n_tensors, cap_tensors;
};

/* ---------------------------------------------------------------- dtypes */
typedef struct st_dtype_info {
    const char *name;
    stree_dtype dtype;
    size_t size;
} st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"F32", STREE_DTYPE_F32, 4},       {"F16", STREE_DTYPE_F16, 2},       {"BF16", STREE_DTYPE_BF16, 2},
    {"I32", STREE_DTYPE_I32, 4},       {"F64", STREE_DTYPE_OTHER, 8},     {"I64", STREE_DTYPE_OTHER, 8},
    {"U64", STREE_DTYPE_OTHER, 8},     {"U32", STREE_DTYPE_OTHER, 4},     {"I16", STREE_DTYPE_OTHER, 2},
    {"U16", STREE_DTYPE_OTHER, 2},     {"I8", STREE_DTYPE_OTHER, 1},      {"U8", STREE_DTYPE_OTHER, 1},
    {"BOOL", STREE_DTYPE_OTHER, 1},    {"F8_E4M3", STREE_DTYPE_OTHER, 1}, {"F8_E5M2", STREE_DTYPE_OTHER, 1},
    {"F8_E8M0", STREE_DTYPE_OTHER, 1}, {"C64", STREE_DTYPE_OTHER, 8},
};

/* Valid safetensors dtypes narrower than a byte: their byte length is not product(shape) * size. */
static const char *const st_subbyte_dtypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

static const st_dtype_info *st_find_dtype(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

static int st_is_subbyte_dtype(const char *name) {
    for (size_t i = 0; i < sizeof st_subbyte_dtypes / sizeof st_subbyte_dtypes[0]; i++)
        if (strcmp(st_subbyte_dtypes[i], name) == 0) return 1;
    return 0;
}

/* ---------------------------------------------------------------- small helpers */
static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    if (r) memcpy(r, s, n);
    return r;
}

static char *st_join(const char *dir, const char *name) {
    size_t nd = strlen(dir), nn = strlen(name);
    while (nd > 1 && dir[nd - 1] == '/') nd--;
    char *r = malloc(nd + 1 + nn + 1);
    if (!r) return NULL;
    memcpy(r, dir, nd);
    size_t at = nd;
    if (!(nd == 1 && dir[0] == '/')) r[at++] = '/';
    memcpy(r + at, name, nn + 1);
    return r;
}

static const char *st_jtype(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

/* A JSON number that is a non-negative integer representable exactly. 0 ok, -1 not an integer number,
 * -2 negative, -3 too large. */
static int st_json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (d != d) return -1;
    if (d < 0) return (d >= -ST_MAX_EXACT_INT && d == (double)(int64_t)d) ? -2 : -1;
    if (d > ST_MAX_EXACT_INT) return -3;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return -1;
    *out = u;
    return 0;
}

/* Offset of the first byte that breaks UTF-8 (or is a NUL), or n when the buffer is valid. */
static size_t st_utf8_invalid_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) return i;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

static void st_format_shape(const stree_st_tensor *t, char *buf, size_t cap) {
    size_t at = 0;
    int w = snprintf(buf, cap, "[");
    at = w > 0 ? (size_t)w : 0;
    for (int32_t d = 0; d < t->ndim && at < cap; d++) {
        w = snprintf(buf + at, cap - at, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (w < 0) break;
        at += (size_t)w;
    }
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* ---------------------------------------------------------------- checkpoint bookkeeping */
void stree_checkpoint_close(stree_checkpoint *ckpt) {
    if (!ckpt) return;
    for (int32_t i = 0; i < ckpt->n_tensors; i++) free((char *)ckpt->tensors[i].name);
    free(ckpt->tensors);
    for (int32_t i = 0; i < ckpt->n_files; i++) {
        if (ckpt->files[i].map) munmap(ckpt->files[i].map, ckpt->files[i].size);
        free(ckpt->files[i].path);
    }
    free(ckpt->files);
    free(ckpt->path);
    free(ckpt);
}

static stree_status st_reserve_tensors(stree_checkpoint *c, size_t more, const char *path) {
    if (more > (size_t)(INT32_MAX - c->n_tensors))
        return stree_fail(STREE_ERR_UNSUPPORTED, "%s: too many tensors (%zu more than %d)", path, more,
                          (int)c->n_tensors);
    size_t need = (size_t)c->n_tensors + more;
    if (c->tensors && need <= (size_t)c->cap_tensors) return STREE_OK; /* never NULL after a reserve */
    size_t cap = c->cap_tensors ? (size_t)c->cap_tensors : 64;
    while (cap < need) cap = cap * 2 > (size_t)INT32_MAX ? (size_t)INT32_MAX : cap * 2;
    stree_st_tensor *t = realloc(c->tensors, cap * sizeof *t);
    if (!t) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu tensor records", path, need);
    c->tensors = t;
    c->cap_tensors = (int32_t)cap;
    return STREE_OK;
}

/* Takes ownership of `path` (freed here on failure). */
static stree_status st_add_file(stree_checkpoint *c, char *path, st_file **out) {
    if (c->n_files == c->cap_files) {
        int32_t cap = c->cap_files ? c->cap_files * 2 : 4;
        st_file *f = realloc(c->files, (size_t)cap * sizeof *f);
        if (!f) {
            stree_status s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            free(path);
            return s;
        }
        c->files = f;
        c->cap_files = cap;
    }
    st_file *f = &c->files[c->n_files++];
    f->path = path;
    f->map = NULL;
    f->size = 0;
    *out = f;
    return STREE_OK;
}

static int st_cmp_name(const void *a, const void *b) {
    const stree_st_tensor *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r) return r;
    return strcmp(x->file, y->file);
}

static int st_cmp_offset(const void *a, const void *b) {
    const stree_st_tensor *x = a, *y = b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    if (x->n_bytes != y->n_bytes) return x->n_bytes < y->n_bytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---------------------------------------------------------------- one safetensors file */
static stree_status st_map_file(st_file *f) {
    const char *path = f->path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return stree_fail(STREE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return stree_fail(STREE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return stree_fail(STREE_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return stree_fail(STREE_ERR_FORMAT, "%s: empty file (a safetensors file starts with an 8-byte header length)",
                          path);
    }
    if (st.st_size < 8) {
        close(fd);
        return stree_fail(STREE_ERR_FORMAT, "%s: truncated: file is %lld bytes, shorter than the 8-byte header length",
                          path, (long long)st.st_size);
    }
    if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        close(fd);
        return stree_fail(STREE_ERR_IO, "%s: file of %lld bytes is too large to map", path, (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return stree_fail(STREE_ERR_IO, "%s: cannot mmap %lld bytes: %s", path,
                                           (long long)st.st_size, strerror(e));
    f->map = m;
    f->size = (size_t)st.st_size;
    return STREE_OK;
}

/* Validate one tensor entry and fill *t (name not yet set). */
static stree_status st_parse_entry(const char *path, const char *name, const cJSON *entry, const uint8_t *data,
                                   uint64_t data_len, stree_st_tensor *t) {
    if (!cJSON_IsObject(entry))
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': entry is %s, not an object", path, name,
                          st_jtype(entry));
    const cJSON *jdtype = NULL, *jshape = NULL, *joffs = NULL;
    for (const cJSON *k = entry->child; k; k = k->next) {
        const cJSON **slot = NULL;
        if (strcmp(k->string, "dtype") == 0) slot = &jdtype;
        else if (strcmp(k->string, "shape") == 0) slot = &jshape;
        else if (strcmp(k->string, "data_offsets") == 0) slot = &joffs;
        if (!slot) continue; /* unknown fields are tolerated */
        if (*slot) return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': duplicate key \"%s\"", path, name, k->string);
        *slot = k;
    }
    if (!jdtype) return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': missing \"dtype\"", path, name);
    if (!jshape) return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': missing \"shape\"", path, name);
    if (!joffs) return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': missing \"data_offsets\"", path, name);

    /* dtype */
    if (!cJSON_IsString(jdtype))
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is %s, not a string", path, name,
                          st_jtype(jdtype));
    const st_dtype_info *di = st_find_dtype(jdtype->valuestring);
    if (!di) {
        if (st_is_subbyte_dtype(jdtype->valuestring))
            return stree_fail(STREE_ERR_UNSUPPORTED, "%s: tensor '%s': sub-byte dtype '%s' is not supported", path,
                              name, jdtype->valuestring);
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name, jdtype->valuestring);
    }
    t->dtype = di->dtype;
    t->dtype_name = di->name; /* static: survives the JSON tree */

    /* shape */
    if (!cJSON_IsArray(jshape))
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': \"shape\" is %s, not an array", path, name,
                          st_jtype(jshape));
    int ndim = cJSON_GetArraySize(jshape);
    if (ndim > STREE_ST_MAX_DIMS)
        return stree_fail(STREE_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d are supported", path, name,
                          ndim, STREE_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t count = 1;
    int overflow = 0, d = 0;
    for (const cJSON *v = jshape->child; v; v = v->next, d++) {
        uint64_t dim = 0;
        int r = st_json_u64(v, &dim);
        if (r == -2)
            return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': shape[%d] = %lld is negative", path, name, d,
                              (long long)v->valuedouble);
        if (r == -3)
            return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': shape[%d] = %.0f is too large", path, name, d,
                              v->valuedouble);
        if (r != 0) {
            if (cJSON_IsNumber(v))
                return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': shape[%d] = %g is not an integer", path, name, d,
                                  v->valuedouble);
            return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': shape[%d] is %s, not an integer", path, name, d,
                              st_jtype(v));
        }
        t->shape[d] = (int64_t)dim;
        if (dim != 0 && count > (uint64_t)INT64_MAX / dim) overflow = 1; /* a later 0 still wins */
        else count *= dim;
    }
    if (count == 0) overflow = 0;
    for (int k = ndim; k < STREE_ST_MAX_DIMS; k++) t->shape[k] = 0;
    char shape_str[8 * 24 + 4];
    st_format_shape(t, shape_str, sizeof shape_str);
    if (overflow)
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': shape %s has more elements than fit in 64 bits", path,
                          name, shape_str);
    t->n_elements = (int64_t)count;

    /* data_offsets */
    if (!cJSON_IsArray(joffs) || cJSON_GetArraySize(joffs) != 2)
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", path,
                          name);
    uint64_t begin = 0, end = 0;
    if (st_json_u64(joffs->child, &begin) != 0 || st_json_u64(joffs->child->next, &end) != 0)
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must hold two non-negative integers",
                          path, name);
    if (begin > end)
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) begin is past end", path, name,
                          (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return stree_fail(STREE_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu) past the end of the data section (%llu bytes)",
                          path, name, (unsigned long long)begin, (unsigned long long)end,
                          (unsigned long long)data_len);
    uint64_t need = 0;
    int bytes_overflow = count > UINT64_MAX / di->size;
    if (!bytes_overflow) need = count * di->size;
    if (bytes_overflow || need != end - begin) {
        if (bytes_overflow)
            return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) but shape %s x %s overflows",
                              path, name, (unsigned long long)begin, (unsigned long long)end, shape_str, di->name);
        return stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) but shape %s x %s needs %llu bytes",
                          path, name, (unsigned long long)begin, (unsigned long long)end, shape_str, di->name,
                          (unsigned long long)need);
    }
    t->data = data + begin;
    t->n_bytes = (size_t)(end - begin);
    return STREE_OK;
}

static stree_status st_check_metadata(const char *path, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return stree_fail(STREE_ERR_FORMAT, "%s: \"__metadata__\" is %s, not an object", path, st_jtype(meta));
    for (const cJSON *k = meta->child; k; k = k->next)
        if (!cJSON_IsString(k))
            return stree_fail(STREE_ERR_FORMAT, "%s: \"__metadata__\" key '%s' is %s, not a string", path, k->string,
                              st_jtype(k));
    return STREE_OK;
}

/* Map `path` (ownership taken), validate its header, append its tensors to the checkpoint. */
static stree_status st_load_file(stree_checkpoint *c, char *path_owned) {
    st_file *f = NULL;
    STREE_TRY(st_add_file(c, path_owned, &f));
    const char *path = f->path;
    STREE_TRY(st_map_file(f));

    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map[i];
    if (n > ST_MAX_HEADER)
        return stree_fail(STREE_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes", path,
                          (unsigned long long)n, ST_MAX_HEADER);
    if (8 + n > f->size)
        return stree_fail(STREE_ERR_FORMAT, "%s: truncated: header length %llu runs past the end of the file (%zu bytes)",
                          path, (unsigned long long)n, f->size);
    if (n == 0) return stree_fail(STREE_ERR_FORMAT, "%s: header length is 0 (no JSON header)", path);
    const uint8_t *hdr = f->map + 8;
    size_t bad = st_utf8_invalid_at(hdr, (size_t)n);
    if (bad != n)
        return stree_fail(STREE_ERR_FORMAT, "%s: header is not valid UTF-8 (byte 0x%02x at header offset %zu)", path,
                          hdr[bad], bad);
    const uint8_t *data = hdr + n;
    uint64_t data_len = f->size - 8 - n;

    /* Parse a NUL-terminated copy: the parser never reads past the header, even at the end of the mapping. */
    char *text = malloc((size_t)n + 1);
    if (!text) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory for a %llu-byte header", path,
                                 (unsigned long long)n);
    memcpy(text, hdr, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    stree_status s = STREE_OK;
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        s = stree_fail(STREE_ERR_FORMAT, "%s: header is not valid JSON (error near header offset %zu)", path, at);
        goto done;
    }
    for (const char *p = end; p < text + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            s = stree_fail(STREE_ERR_FORMAT, "%s: unexpected bytes after the JSON header at header offset %zu", path,
                           (size_t)(p - text));
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        s = stree_fail(STREE_ERR_FORMAT, "%s: header is %s, not a JSON object", path, st_jtype(root));
        goto done;
    }

    size_t n_entries = 0;
    int seen_meta = 0;
    for (const cJSON *k = root->child; k; k = k->next) n_entries++;
    if ((s = st_reserve_tensors(c, n_entries, path)) != STREE_OK) goto done;
    const int32_t first = c->n_tensors;
    for (const cJSON *k = root->child; k; k = k->next) {
        if (strcmp(k->string, "__metadata__") == 0) {
            if (seen_meta++) {
                s = stree_fail(STREE_ERR_FORMAT, "%s: duplicate key \"__metadata__\"", path);
                goto done;
            }
            if ((s = st_check_metadata(path, k)) != STREE_OK) goto done;
            continue;
        }
        stree_st_tensor *t = &c->tensors[c->n_tensors];
        memset(t, 0, sizeof *t);
        if ((s = st_parse_entry(path, k->string, k, data, data_len, t)) != STREE_OK) goto done;
        t->file = path;
        t->name = st_strdup(k->string);
        if (!t->name) {
            s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory for tensor '%s'", path, k->string);
            goto done;
        }
        c->n_tensors++;
    }

    stree_st_tensor *ts = c->tensors + first;
    size_t nt = (size_t)(c->n_tensors - first);
    /* duplicate JSON keys (cJSON keeps them all) */
    if (nt > 1) qsort(ts, nt, sizeof *ts, st_cmp_name);
    for (size_t i = 1; i < nt; i++) {
        if (strcmp(ts[i - 1].name, ts[i].name) == 0) {
            s = stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s' appears twice in the header (duplicate key)", path,
                           ts[i].name);
            goto done;
        }
    }
    /* the tensors must tile the data section: sorted by offset, each begins where the previous ended */
    if (nt > 1) qsort(ts, nt, sizeof *ts, st_cmp_offset);
    uint64_t cursor = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < nt; i++) {
        uint64_t b = (uint64_t)(ts[i].data - data), e = b + ts[i].n_bytes;
        if (b < cursor) {
            s = stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s' (ends at %llu)",
                           path, ts[i].name, (unsigned long long)b, (unsigned long long)e, prev,
                           (unsigned long long)cursor);
            goto done;
        }
        if (b > cursor) {
            if (prev)
                s = stree_fail(STREE_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets [%llu, %llu) leave a gap of %llu bytes after tensor '%s' "
                               "(ends at %llu)",
                               path, ts[i].name, (unsigned long long)b, (unsigned long long)e,
                               (unsigned long long)(b - cursor), prev, (unsigned long long)cursor);
            else
                s = stree_fail(STREE_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets [%llu, %llu) leave a gap of %llu bytes at the start of "
                               "the data section",
                               path, ts[i].name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)b);
            goto done;
        }
        cursor = e;
        prev = ts[i].name;
    }
    if (cursor != data_len) {
        if (prev)
            s = stree_fail(STREE_ERR_FORMAT,
                           "%s: %llu trailing bytes in the data section after the last tensor '%s' (ends at %llu of %llu)",
                           path, (unsigned long long)(data_len - cursor), prev, (unsigned long long)cursor,
                           (unsigned long long)data_len);
        else
            s = stree_fail(STREE_ERR_FORMAT, "%s: %llu bytes in the data section but the header names no tensor", path,
                           (unsigned long long)data_len);
        goto done;
    }

done:
    cJSON_Delete(root);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- sharded checkpoints */
typedef struct st_map_entry {
    const char *tensor;
    const char *shard;
} st_map_entry;

static int st_cmp_entry(const void *a, const void *b) {
    const st_map_entry *x = a, *y = b;
    return strcmp(x->tensor, y->tensor);
}

static int st_cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int st_bad_shard_name(const char *s) {
    if (!s[0] || s[0] == '/') return 1;
    for (const char *p = s; *p;) { /* no ".." component */
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 1;
        if (!q) break;
        p = q + 1;
    }
    return 0;
}

static stree_status st_read_whole(const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return stree_fail(STREE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return stree_fail(STREE_ERR_IO, "%s: not a readable regular file", path);
    }
    if (st.st_size > ST_MAX_INDEX_BYTES) {
        fclose(fp);
        return stree_fail(STREE_ERR_FORMAT, "%s: %lld bytes, larger than the %lld-byte limit for an index", path,
                          (long long)st.st_size, (long long)ST_MAX_INDEX_BYTES);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, fp);
    int err = ferror(fp);
    fclose(fp);
    if (got != n || err) {
        free(buf);
        return stree_fail(STREE_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return STREE_OK;
}

static stree_status st_load_index(stree_checkpoint *c, const char *dir, const char *index_path) {
    char *text = NULL;
    size_t len = 0;
    STREE_TRY(st_read_whole(index_path, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    st_map_entry *entries = NULL;
    const char **shards = NULL;
    stree_status s = STREE_OK;
    if (!root) {
        s = stree_fail(STREE_ERR_FORMAT, "%s: not valid JSON", index_path);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        s = stree_fail(STREE_ERR_FORMAT, "%s: is %s, not a JSON object", index_path, st_jtype(root));
        goto done;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!wm) {
        s = stree_fail(STREE_ERR_FORMAT, "%s: missing \"weight_map\"", index_path);
        goto done;
    }
    if (!cJSON_IsObject(wm)) {
        s = stree_fail(STREE_ERR_FORMAT, "%s: \"weight_map\" is %s, not an object", index_path, st_jtype(wm));
        goto done;
    }
    size_t n = 0;
    for (const cJSON *k = wm->child; k; k = k->next) n++;
    if (n == 0) {
        s = stree_fail(STREE_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path);
        goto done;
    }
    entries = malloc(n * sizeof *entries);
    shards = malloc(n * sizeof *shards);
    if (!entries || !shards) {
        s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu weight_map entries", index_path, n);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *k = wm->child; k; k = k->next, i++) {
        if (!cJSON_IsString(k)) {
            s = stree_fail(STREE_ERR_FORMAT, "%s: weight_map: tensor '%s' maps to %s, not a shard file name", index_path,
                           k->string, st_jtype(k));
            goto done;
        }
        if (st_bad_shard_name(k->valuestring)) {
            s = stree_fail(STREE_ERR_FORMAT,
                           "%s: weight_map: tensor '%s' maps to shard '%s', which is not a relative path inside %s",
                           index_path, k->string, k->valuestring, dir);
            goto done;
        }
        entries[i].tensor = k->string;
        entries[i].shard = k->valuestring;
        shards[i] = k->valuestring;
    }
    qsort(entries, n, sizeof *entries, st_cmp_entry);
    for (i = 1; i < n; i++) {
        if (strcmp(entries[i - 1].tensor, entries[i].tensor) == 0) {
            s = stree_fail(STREE_ERR_FORMAT, "%s: weight_map names tensor '%s' twice", index_path, entries[i].tensor);
            goto done;
        }
    }
    qsort(shards, n, sizeof *shards, st_cmp_str);
    size_t n_shards = 0;
    for (i = 0; i < n; i++)
        if (n_shards == 0 || strcmp(shards[n_shards - 1], shards[i]) != 0) shards[n_shards++] = shards[i];

    for (i = 0; i < n_shards; i++) {
        char *sp = st_join(dir, shards[i]);
        if (!sp) {
            s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        if ((s = st_load_file(c, sp)) != STREE_OK) {
            stree_fail_context(s, "%s: shard '%s'", index_path, shards[i]);
            goto done;
        }
    }
    /* every tensor the map names must sit in the shard it names (the caller checks cross-shard duplicates
     * first; here the tensors are sorted by name) */
    if (c->n_tensors > 1) qsort(c->tensors, (size_t)c->n_tensors, sizeof *c->tensors, st_cmp_name);
    for (int32_t t = 1; t < c->n_tensors; t++) {
        if (strcmp(c->tensors[t - 1].name, c->tensors[t].name) == 0) {
            s = stree_fail(STREE_ERR_FORMAT, "%s: tensor '%s' appears in two shards: %s and %s", index_path,
                           c->tensors[t].name, c->tensors[t - 1].file, c->tensors[t].file);
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        const stree_st_tensor *t = stree_checkpoint_find(c, entries[i].tensor);
        char *want = st_join(dir, entries[i].shard);
        if (!want) {
            s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        if (!t)
            s = stree_fail(STREE_ERR_FORMAT, "%s: weight_map: tensor '%s' is not in its shard '%s' (%s)", index_path,
                           entries[i].tensor, entries[i].shard, want);
        else if (strcmp(t->file, want) != 0)
            s = stree_fail(STREE_ERR_FORMAT, "%s: weight_map: tensor '%s' is not in its shard '%s'; it is in %s",
                           index_path, entries[i].tensor, entries[i].shard, t->file);
        free(want);
        if (s != STREE_OK) goto done;
    }

done:
    free(entries);
    free(shards);
    cJSON_Delete(root);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- public API */
static stree_status st_open(stree_checkpoint *c, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return stree_fail(STREE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char *index = st_join(path, ST_INDEX_NAME);
        if (!index) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        struct stat ist;
        if (stat(index, &ist) == 0) {
            stree_status s = st_load_index(c, path, index);
            free(index);
            return s;
        }
        free(index);
        char *single = st_join(path, ST_SINGLE_NAME);
        if (!single) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        struct stat sst;
        if (stat(single, &sst) != 0) {
            free(single);
            return stree_fail(STREE_ERR_IO, "%s: no checkpoint: neither %s nor %s is in this directory", path,
                              ST_INDEX_NAME, ST_SINGLE_NAME);
        }
        STREE_TRY(st_load_file(c, single));
    } else {
        char *p = st_strdup(path);
        if (!p) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        STREE_TRY(st_load_file(c, p));
    }
    if (c->n_tensors > 1) qsort(c->tensors, (size_t)c->n_tensors, sizeof *c->tensors, st_cmp_name);
    return STREE_OK;
}

stree_status stree_checkpoint_open(const char *path, stree_checkpoint **out) {
    if (out) *out = NULL;
    if (!path || !out)
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_checkpoint_open: %s is NULL", path ? "out" : "path");
    stree_checkpoint *c = calloc(1, sizeof *c);
    if (!c) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    c->path = st_strdup(path);
    if (!c->path) {
        free(c);
        return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    stree_status s = st_open(c, path);
    if (s != STREE_OK) {
        stree_checkpoint_close(c);
        return s;
    }
    *out = c;
    return STREE_OK;
}

int32_t stree_checkpoint_n_tensors(const stree_checkpoint *ckpt) { return ckpt ? ckpt->n_tensors : 0; }

const stree_st_tensor *stree_checkpoint_tensor(const stree_checkpoint *ckpt, int32_t index) {
    if (!ckpt || index < 0 || index >= ckpt->n_tensors) return NULL;
    return &ckpt->tensors[index];
}

const stree_st_tensor *stree_checkpoint_find(const stree_checkpoint *ckpt, const char *name) {
    if (!ckpt || !name) return NULL;
    int32_t lo = 0, hi = ckpt->n_tensors;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int r = strcmp(ckpt->tensors[mid].name, name);
        if (r == 0) return &ckpt->tensors[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *stree_checkpoint_path(const stree_checkpoint *ckpt) { return ckpt ? ckpt->path : NULL; }

/* ---------------------------------------------------------------- conversion */
static float st_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return st_bits_to_f32(sign | 0x7F800000u | (mant << 13)); /* inf / nan (payload kept) */
    return st_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

stree_status stree_st_tensor_to_f32(const stree_st_tensor *t, float *dst) {
    if (!t) return stree_fail(STREE_ERR_INVALID_ARG, "stree_st_tensor_to_f32: tensor is NULL");
    if (!dst && t->n_elements > 0)
        return stree_fail(STREE_ERR_INVALID_ARG, "%s: tensor '%s': destination is NULL", t->file ? t->file : "?",
                          t->name ? t->name : "?");
    const uint8_t *p = t->data;
    size_t n = (size_t)t->n_elements;
    switch (t->dtype) {
    case STREE_DTYPE_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n) memcpy(dst, p, n * sizeof(float));
#else
        for (size_t i = 0; i < n; i++)
            dst[i] = st_bits_to_f32((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                                    (uint32_t)p[4 * i + 3] << 24);
#endif
        return STREE_OK;
    case STREE_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = st_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return STREE_OK;
    case STREE_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = st_bits_to_f32((uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16);
        return STREE_OK;
    case STREE_DTYPE_I32:
    case STREE_DTYPE_OTHER:
        break;
    }
    return stree_fail(STREE_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be converted to F32",
                      t->file ? t->file : "?", t->name ? t->name : "?", t->dtype_name ? t->dtype_name : "?");
}
