/* tokenizer.json component parsers: normalizers, pre-tokenizers and decoders. Anything outside the
 * supported set fails with STREE_ERR_UNSUPPORTED naming the file, the field and the type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/tokenizer_internal.h"

#define OOM() stree_fail(STREE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory")

static const cJSON *jget(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static stree_status jbool(const char *path, const char *what, const cJSON *o, const char *k, int def, int *out) {
    const cJSON *v = jget(o, k);
    if (!v) {
        *out = def;
        return STREE_OK;
    }
    if (!cJSON_IsBool(v)) return stree_fail(STREE_ERR_FORMAT, "%s: %s.%s must be true or false", path, what, k);
    *out = cJSON_IsTrue(v);
    return STREE_OK;
}

static stree_status jstr(const char *path, const char *what, const cJSON *o, const char *k, const char **out) {
    const cJSON *v = jget(o, k);
    if (!v || !cJSON_IsString(v)) return stree_fail(STREE_ERR_FORMAT, "%s: %s.%s must be a string", path, what, k);
    *out = v->valuestring;
    return STREE_OK;
}

static stree_status jtype(const char *path, const char *what, const cJSON *j, const char **out) {
    if (!cJSON_IsObject(j)) return stree_fail(STREE_ERR_FORMAT, "%s: %s must be an object or null", path, what);
    return jstr(path, what, j, "type", out);
}

static const cJSON *jarray(const cJSON *o, const char *k) {
    const cJSON *v = jget(o, k);
    return v && cJSON_IsArray(v) ? v : NULL;
}

/* {"String": s} or {"Regex": r} */
static stree_status parse_pattern(const char *path, const char *what, const cJSON *o, tk_regex **out) {
    const cJSON *p = jget(o, "pattern");
    const cJSON *s = p ? jget(p, "String") : NULL;
    const cJSON *r = p ? jget(p, "Regex") : NULL;
    const cJSON *v = s ? s : r;
    if (!p || !cJSON_IsObject(p) || !v || !cJSON_IsString(v))
        return stree_fail(STREE_ERR_FORMAT, "%s: %s.pattern must be {\"String\": ...} or {\"Regex\": ...}", path, what);
    char err[300];
    *out = tk_regex_compile(v->valuestring, strlen(v->valuestring), s != NULL, err, sizeof err);
    if (!*out) return stree_fail(STREE_ERR_FORMAT, "%s: %s.pattern: %s", path, what, err);
    return STREE_OK;
}

static char *dup_str(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A one-character string field (Metaspace replacement, Strip content); *cp its code point. */
static stree_status one_char(const char *path, const char *what, const cJSON *o, const char *k, const char *def,
                             char *enc, size_t *len, uint32_t *cp) {
    const char *s = def;
    if (jget(o, k)) STREE_TRY(jstr(path, what, o, k, &s));
    size_t n = strlen(s);
    size_t cl = tk_utf8_valid_len((const unsigned char *)s, n);
    if (!cl || cl != n) return stree_fail(STREE_ERR_FORMAT, "%s: %s.%s must be one character", path, what, k);
    if (enc) memcpy(enc, s, cl);
    if (len) *len = cl;
    *cp = tk_utf8_decode((const unsigned char *)s, cl);
    return STREE_OK;
}

static stree_status prepend_scheme(const char *path, const char *what, const cJSON *o, tk_prepend_scheme *out) {
    const cJSON *ps = jget(o, "prepend_scheme");
    if (!ps) { /* older files: add_prefix_space */
        int aps = 0;
        STREE_TRY(jbool(path, what, o, "add_prefix_space", 1, &aps));
        *out = aps ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
        return STREE_OK;
    }
    if (!cJSON_IsString(ps)) return stree_fail(STREE_ERR_FORMAT, "%s: %s.prepend_scheme must be a string", path, what);
    if (!strcmp(ps->valuestring, "always")) *out = TK_PREPEND_ALWAYS;
    else if (!strcmp(ps->valuestring, "first")) *out = TK_PREPEND_FIRST;
    else if (!strcmp(ps->valuestring, "never")) *out = TK_PREPEND_NEVER;
    else
        return stree_fail(STREE_ERR_FORMAT, "%s: %s.prepend_scheme '%s' is not one of always, first, never", path, what,
                          ps->valuestring);
    return STREE_OK;
}

/* ---------------------------------------------------------------- normalizers */
void tk_norm_free(tk_norm *n) {
    if (!n) return;
    for (int k = 0; k < n->n_kids; k++) tk_norm_free(n->kids[k]);
    free(n->kids);
    free(n->str);
    tk_regex_free(n->re);
    free(n);
}

stree_status tk_norm_parse(const char *path, const char *what, const cJSON *j, tk_norm **out) {
    *out = NULL;
    const char *type = NULL;
    STREE_TRY(jtype(path, what, j, &type));
    tk_norm *n = calloc(1, sizeof *n);
    if (!n) return OOM();
    stree_status st = STREE_OK;
    if (!strcmp(type, "Sequence")) {
        n->type = TK_NORM_SEQUENCE;
        const cJSON *arr = jarray(j, "normalizers");
        if (!arr) {
            st = stree_fail(STREE_ERR_FORMAT, "%s: %s.normalizers must be a list", path, what);
        } else {
            int cnt = cJSON_GetArraySize(arr);
            n->kids = calloc((size_t)cnt + 1, sizeof *n->kids);
            if (!n->kids) st = OOM();
            for (int k = 0; k < cnt && !st; k++) {
                char sub[256];
                snprintf(sub, sizeof sub, "%s.normalizers[%d]", what, k);
                st = tk_norm_parse(path, sub, cJSON_GetArrayItem(arr, k), &n->kids[k]);
                if (!st) n->n_kids++;
            }
        }
    } else if (!strcmp(type, "NFC")) {
        n->type = TK_NORM_NFC;
    } else if (!strcmp(type, "NFD")) {
        n->type = TK_NORM_NFD;
    } else if (!strcmp(type, "NFKC")) {
        n->type = TK_NORM_NFKC;
    } else if (!strcmp(type, "NFKD")) {
        n->type = TK_NORM_NFKD;
    } else if (!strcmp(type, "Lowercase")) {
        n->type = TK_NORM_LOWERCASE;
    } else if (!strcmp(type, "Prepend")) {
        n->type = TK_NORM_PREPEND;
        const char *s = NULL;
        st = jstr(path, what, j, "prepend", &s);
        if (!st && !(n->str = dup_str(s, n->str_len = strlen(s)))) st = OOM();
    } else if (!strcmp(type, "Replace")) {
        n->type = TK_NORM_REPLACE;
        const char *s = NULL;
        st = parse_pattern(path, what, j, &n->re);
        if (!st) st = jstr(path, what, j, "content", &s);
        if (!st && !(n->str = dup_str(s, n->str_len = strlen(s)))) st = OOM();
    } else {
        st = stree_fail(STREE_ERR_UNSUPPORTED,
                        "%s: %s.type '%s' is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace, "
                        "Lowercase)",
                        path, what, type);
    }
    if (st) {
        tk_norm_free(n);
        return st;
    }
    *out = n;
    return STREE_OK;
}

/* ---------------------------------------------------------------- pre-tokenizers */
#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

void tk_pretok_free(tk_pretok *p) {
    if (!p) return;
    for (int k = 0; k < p->n_kids; k++) tk_pretok_free(p->kids[k]);
    free(p->kids);
    tk_regex_free(p->re);
    free(p);
}

static stree_status parse_pretok(const char *path, const char *what, const cJSON *j, tk_pretok **out, int nested);

static stree_status parse_pretok_seq(const char *path, const char *what, const cJSON *j, tk_pretok *p) {
    const cJSON *arr = jarray(j, "pretokenizers");
    if (!arr) return stree_fail(STREE_ERR_FORMAT, "%s: %s.pretokenizers must be a list", path, what);
    int cnt = cJSON_GetArraySize(arr);
    p->kids = calloc((size_t)cnt + 1, sizeof *p->kids);
    if (!p->kids) return OOM();
    for (int k = 0; k < cnt; k++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", what, k);
        STREE_TRY(parse_pretok(path, sub, cJSON_GetArrayItem(arr, k), &p->kids[k], 1));
        p->n_kids++;
    }
    return STREE_OK;
}

static stree_status parse_pretok_body(const char *path, const char *what, const cJSON *j, const char *type,
                                      tk_pretok *p) {
    char err[300];
    if (!strcmp(type, "Sequence")) {
        p->type = TK_PRE_SEQUENCE;
        return parse_pretok_seq(path, what, j, p);
    }
    if (!strcmp(type, "ByteLevel")) {
        p->type = TK_PRE_BYTELEVEL;
        STREE_TRY(jbool(path, what, j, "add_prefix_space", 1, &p->add_prefix_space));
        STREE_TRY(jbool(path, what, j, "use_regex", 1, &p->use_regex));
        if (p->use_regex && !(p->re = tk_regex_compile(GPT2_REGEX, strlen(GPT2_REGEX), 0, err, sizeof err)))
            return stree_fail(STREE_ERR_INTERNAL, "%s: %s: %s", path, what, err);
        return STREE_OK;
    }
    if (!strcmp(type, "Split")) {
        p->type = TK_PRE_SPLIT;
        STREE_TRY(parse_pattern(path, what, j, &p->re));
        const char *b = NULL;
        STREE_TRY(jstr(path, what, j, "behavior", &b));
        if (!strcmp(b, "Removed")) p->behavior = TK_SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) p->behavior = TK_SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = TK_SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = TK_SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = TK_SPLIT_CONTIGUOUS;
        else
            return stree_fail(STREE_ERR_FORMAT,
                              "%s: %s.behavior '%s' is not one of Removed, Isolated, MergedWithPrevious, "
                              "MergedWithNext, Contiguous",
                              path, what, b);
        return jbool(path, what, j, "invert", 0, &p->invert);
    }
    if (!strcmp(type, "Metaspace")) {
        p->type = TK_PRE_METASPACE;
        uint32_t cp;
        STREE_TRY(one_char(path, what, j, "replacement", "\xE2\x96\x81", p->repl, &p->repl_len, &cp));
        STREE_TRY(prepend_scheme(path, what, j, &p->prepend));
        return jbool(path, what, j, "split", 1, &p->split);
    }
    if (!strcmp(type, "Digits")) {
        p->type = TK_PRE_DIGITS;
        return jbool(path, what, j, "individual_digits", 0, &p->individual_digits);
    }
    return stree_fail(STREE_ERR_UNSUPPORTED,
                      "%s: %s.type '%s' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits)",
                      path, what, type);
}

static stree_status parse_pretok(const char *path, const char *what, const cJSON *j, tk_pretok **out, int nested) {
    *out = NULL;
    const char *type = NULL;
    STREE_TRY(jtype(path, what, j, &type));
    tk_pretok *p = calloc(1, sizeof *p);
    if (!p) return OOM();
    stree_status st = parse_pretok_body(path, what, j, type, p);
    if (st) {
        tk_pretok_free(p);
        return st;
    }
    *out = p;
    return STREE_OK;
}

stree_status tk_pretok_parse(const char *path, const char *what, const cJSON *j, tk_pretok **out) {
    return parse_pretok(path, what, j, out, 0);
}

/* ---------------------------------------------------------------- decoders */
void tk_dec_free(tk_dec *d) {
    if (!d) return;
    for (int k = 0; k < d->n_kids; k++) tk_dec_free(d->kids[k]);
    free(d->kids);
    tk_regex_free(d->re);
    free(d->content);
    free(d);
}

static stree_status parse_dec_body(const char *path, const char *what, const cJSON *j, const char *type, tk_dec *d) {
    if (!strcmp(type, "Sequence")) {
        d->type = TK_DEC_SEQUENCE;
        const cJSON *arr = jarray(j, "decoders");
        if (!arr) return stree_fail(STREE_ERR_FORMAT, "%s: %s.decoders must be a list", path, what);
        int cnt = cJSON_GetArraySize(arr);
        d->kids = calloc((size_t)cnt + 1, sizeof *d->kids);
        if (!d->kids) return OOM();
        for (int k = 0; k < cnt; k++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%d]", what, k);
            STREE_TRY(tk_dec_parse(path, sub, cJSON_GetArrayItem(arr, k), &d->kids[k]));
            d->n_kids++;
        }
        return STREE_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        d->type = TK_DEC_BYTELEVEL;
        return STREE_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        d->type = TK_DEC_METASPACE;
        STREE_TRY(one_char(path, what, j, "replacement", "\xE2\x96\x81", NULL, NULL, &d->repl_cp));
        return prepend_scheme(path, what, j, &d->prepend);
    }
    if (!strcmp(type, "Replace")) {
        d->type = TK_DEC_REPLACE;
        STREE_TRY(parse_pattern(path, what, j, &d->re));
        const char *s = NULL;
        STREE_TRY(jstr(path, what, j, "content", &s));
        if (!(d->content = dup_str(s, d->content_len = strlen(s)))) return OOM();
        return STREE_OK;
    }
    if (!strcmp(type, "ByteFallback")) {
        d->type = TK_DEC_BYTEFALLBACK;
        return STREE_OK;
    }
    if (!strcmp(type, "Fuse")) {
        d->type = TK_DEC_FUSE;
        return STREE_OK;
    }
    if (!strcmp(type, "Strip")) {
        d->type = TK_DEC_STRIP;
        STREE_TRY(one_char(path, what, j, "content", " ", NULL, NULL, &d->strip_char));
        const cJSON *a = jget(j, "start"), *b = jget(j, "stop");
        if ((a && (!cJSON_IsNumber(a) || a->valuedouble < 0)) || (b && (!cJSON_IsNumber(b) || b->valuedouble < 0)))
            return stree_fail(STREE_ERR_FORMAT, "%s: %s.start / stop must be counts", path, what);
        d->strip_start = a ? a->valueint : 0;
        d->strip_stop = b ? b->valueint : 0;
        return STREE_OK;
    }
    return stree_fail(STREE_ERR_UNSUPPORTED,
                      "%s: %s.type '%s' is not supported (supported: Sequence, ByteLevel, Metaspace, Replace, "
                      "ByteFallback, Fuse, Strip)",
                      path, what, type);
}

stree_status tk_dec_parse(const char *path, const char *what, const cJSON *j, tk_dec **out) {
    *out = NULL;
    const char *type = NULL;
    STREE_TRY(jtype(path, what, j, &type));
    tk_dec *d = calloc(1, sizeof *d);
    if (!d) return OOM();
    stree_status st = parse_dec_body(path, what, j, type, d);
    if (st) {
        tk_dec_free(d);
        return st;
    }
    *out = d;
    return STREE_OK;
}
