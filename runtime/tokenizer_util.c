/* Tokenizer utilities: growable buffers, the two hash maps (token -> id, merge pair -> rank),
 * UTF-8 validation / lossy repair, the Unicode predicates HF's Rust code relies on, and PCRE2
 * regexes iterated the way Oniguruma (HF's regex engine) iterates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "runtime/tokenizer_internal.h"

/* ---------------------------------------------------------------- buffers */
int tk_buf_reserve(tk_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tk_buf_put(tk_buf *b, const void *src, size_t n) {
    if (tk_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int tk_buf_putc(tk_buf *b, char c) { return tk_buf_put(b, &c, 1); }

void tk_buf_free(tk_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int tk_segs_push(tk_segs *s, size_t start, size_t end, int is_match) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        tk_seg *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (tk_seg){start, end, is_match};
    return 0;
}

void tk_segs_free(tk_segs *s) {
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int tk_pieces_push(tk_pieces *p, size_t off, size_t len, int32_t id, size_t zlen) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        tk_piece *v = realloc(p->v, cap * sizeof *v);
        if (!v) return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (tk_piece){off, len, id, zlen < len ? zlen : len};
    return 0;
}

void tk_pieces_free(tk_pieces *p) {
    free(p->v);
    p->v = NULL;
    p->n = p->cap = 0;
}

int tk_ids_push(tk_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return -1;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

void tk_ids_free(tk_ids *ids) {
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

/* ---------------------------------------------------------------- string map */
struct tk_strmap_slot {
    uint64_t hash;
    size_t off;
    uint32_t len;
    int32_t val; /* -1: empty slot */
};

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int tk_strmap_init(tk_strmap *m, size_t expect) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expect * 2 + 1);
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].val = -1;
    return 0;
}

void tk_strmap_free(tk_strmap *m) {
    free(m->slots);
    tk_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

static struct tk_strmap_slot *strmap_find(const tk_strmap *m, const char *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct tk_strmap_slot *s = &m->slots[i];
        if (s->val < 0) return s;
        if (s->hash == h && s->len == len && !memcmp(m->keys.p + s->off, key, len)) return s;
    }
}

static int strmap_grow(tk_strmap *m) {
    size_t cap = m->cap * 2;
    struct tk_strmap_slot *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].val = -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct tk_strmap_slot *s = &m->slots[i];
        if (s->val < 0) continue;
        size_t j = (size_t)s->hash & (cap - 1);
        while (slots[j].val >= 0) j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int tk_strmap_set(tk_strmap *m, const char *key, size_t len, int32_t val) {
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    uint64_t h = XXH3_64bits(key, len);
    struct tk_strmap_slot *s = strmap_find(m, key, len, h);
    if (s->val >= 0) {
        s->val = val;
        return 0;
    }
    size_t off = m->keys.len;
    if (tk_buf_put(&m->keys, key, len)) return -1;
    *s = (struct tk_strmap_slot){h, off, (uint32_t)len, val};
    m->count++;
    return 0;
}

int32_t tk_strmap_get(const tk_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    const struct tk_strmap_slot *s = strmap_find(m, key, len, XXH3_64bits(key, len));
    return s->val;
}

/* ---------------------------------------------------------------- merge map */
struct tk_merge_slot {
    uint64_t key; /* (a << 32 | b) + 1; 0: empty */
    int32_t rank, merged;
};

static uint64_t merge_key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }

static size_t merge_hash(uint64_t k) { return (size_t)(k * 0x9E3779B97F4A7C15ull >> 17); }

int tk_mergemap_init(tk_mergemap *m, size_t expect) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expect * 2 + 1);
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->slots ? 0 : -1;
}

void tk_mergemap_free(tk_mergemap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

int tk_mergemap_set(tk_mergemap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap * 2;
        struct tk_merge_slot *slots = calloc(cap, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key) continue;
            size_t j = merge_hash(m->slots[i].key) & (cap - 1);
            while (slots[j].key) j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    uint64_t k = merge_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = merge_hash(k) & mask;; i = (i + 1) & mask) {
        if (m->slots[i].key == k || !m->slots[i].key) {
            if (!m->slots[i].key) m->count++;
            m->slots[i] = (struct tk_merge_slot){k, rank, merged};
            return 0;
        }
    }
}

int tk_mergemap_get(const tk_mergemap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
    if (!m->slots) return 0;
    uint64_t k = merge_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = merge_hash(k) & mask;; i = (i + 1) & mask) {
        if (!m->slots[i].key) return 0;
        if (m->slots[i].key == k) {
            *rank = m->slots[i].rank;
            *merged = m->slots[i].merged;
            return 1;
        }
    }
}

/* ---------------------------------------------------------------- UTF-8 */
/* The allowed range of the second byte after lead byte c (Unicode Table 3-7); 0 when c is no lead. */
static int utf8_lead(unsigned c, unsigned *lo, unsigned *hi) {
    if (c >= 0xC2 && c <= 0xDF) { *lo = 0x80; *hi = 0xBF; return 2; }
    if (c == 0xE0) { *lo = 0xA0; *hi = 0xBF; return 3; }
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) { *lo = 0x80; *hi = 0xBF; return 3; }
    if (c == 0xED) { *lo = 0x80; *hi = 0x9F; return 3; }
    if (c == 0xF0) { *lo = 0x90; *hi = 0xBF; return 4; }
    if (c >= 0xF1 && c <= 0xF3) { *lo = 0x80; *hi = 0xBF; return 4; }
    if (c == 0xF4) { *lo = 0x80; *hi = 0x8F; return 4; }
    return 0;
}

/* How many bytes from s form a valid prefix of one character (need = its full length). */
static size_t utf8_prefix(const unsigned char *s, size_t n, int *need) {
    *need = 0;
    if (!n) return 0;
    if (s[0] < 0x80) { *need = 1; return 1; }
    unsigned lo, hi;
    int len = utf8_lead(s[0], &lo, &hi);
    if (!len) return 0;
    *need = len;
    size_t k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < (size_t)len && k < n && s[k] >= 0x80 && s[k] <= 0xBF) k++;
    }
    return k;
}

size_t tk_utf8_valid_len(const unsigned char *s, size_t n) {
    int need;
    size_t k = utf8_prefix(s, n, &need);
    return need && k == (size_t)need ? k : 0;
}

uint32_t tk_utf8_decode(const unsigned char *s, size_t len) {
    switch (len) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
               (s[3] & 0x3F);
    }
}

size_t tk_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int tk_utf8_lossy(tk_buf *out, const char *src, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, run = 0; /* run: start of the pending valid bytes */
    while (i < n) {
        int need;
        size_t k = utf8_prefix(s + i, n - i, &need);
        if (need && k == (size_t)need) {
            i += k;
            continue;
        }
        if (tk_buf_put(out, src + run, i - run)) return -1;
        if (tk_buf_put(out, "\xEF\xBF\xBD", 3)) return -1;
        i += k ? k : 1;
        run = i;
    }
    return tk_buf_put(out, src + run, n - run);
}

size_t tk_utf8_incomplete_tail(const char *src, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        size_t i = n - back;
        if (s[i] < 0x80) return 0;
        if (s[i] >= 0xC0) {
            int need;
            size_t k = utf8_prefix(s + i, back, &need);
            return need && k == back && k < (size_t)need ? back : 0;
        }
    }
    return 0;
}

int tk_utf8_is_valid(const char *src, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n;) {
        size_t k = tk_utf8_valid_len(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* ---------------------------------------------------------------- Unicode predicates */
int tk_is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int tk_is_numeric(uint32_t c) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

int tk_is_word(uint32_t c) {
    if (c == '_' || c == 0x200C || c == 0x200D) return 1;
    /* Other_Alphabetic symbols: circled / squared / negative Latin letters */
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return 1;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- regexes */
struct tk_regex {
    pcre2_code *code;
};

/* HF compiles its regexes with Oniguruma's Ruby syntax; PCRE2 differs in three places that matter:
 *   \s is Unicode White_Space there, while PCRE2's UCP \s also takes U+180E: \s and \S are
 *   rewritten (outside and inside classes) to the explicit White_Space set;
 *   \h / \H are hex digits there (horizontal space in PCRE2): rewritten;
 *   ^ and $ match at line starts / ends there: PCRE2_MULTILINE (LF, as Ruby). */
#define TK_WS_CLASS "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static int rewrite_space_classes(const char *p, size_t n, tk_buf *out) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            if (d == 's') {
                if (tk_buf_put(out, in_class ? TK_WS_CLASS : "[" TK_WS_CLASS "]",
                               strlen(in_class ? TK_WS_CLASS : "[" TK_WS_CLASS "]")))
                    return -1;
            } else if (d == 'S' && !in_class) {
                if (tk_buf_put(out, "[^" TK_WS_CLASS "]", strlen("[^" TK_WS_CLASS "]"))) return -1;
            } else if (d == 'h') {
                const char *hx = in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
                if (tk_buf_put(out, hx, strlen(hx))) return -1;
            } else if (d == 'H' && !in_class) {
                if (tk_buf_put(out, "[^0-9a-fA-F]", 12)) return -1;
            } else {
                if (tk_buf_put(out, p + i, 2)) return -1;
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            if (tk_buf_putc(out, c)) return -1;
            /* a ']' right after '[' or '[^' is literal */
            if (i + 1 < n && p[i + 1] == '^') {
                if (tk_buf_putc(out, '^')) return -1;
                i++;
            }
            if (i + 1 < n && p[i + 1] == ']') {
                if (tk_buf_putc(out, ']')) return -1;
                i++;
            }
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        if (tk_buf_putc(out, c)) return -1;
    }
    return 0;
}

tk_regex *tk_regex_compile(const char *pattern, size_t len, int literal, char *err, size_t err_cap) {
    tk_regex *re = calloc(1, sizeof *re);
    tk_buf pat = {0};
    if (!re) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    if (!literal && rewrite_space_classes(pattern, len, &pat)) {
        snprintf(err, err_cap, "out of memory");
        free(re);
        return NULL;
    }
    int code = 0;
    PCRE2_SIZE erroff = 0;
    uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
    const char *src = literal ? pattern : pat.p ? pat.p : "";
    size_t src_len = literal ? len : pat.len;
    re->code = pcre2_compile((PCRE2_SPTR)src, src_len, opts, &code, &erroff, NULL);
    tk_buf_free(&pat);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, err_cap, "invalid regex at offset %zu: %s", (size_t)erroff, (const char *)msg);
        free(re);
        return NULL;
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional: the interpreter matches the same */
    return re;
}

void tk_regex_free(tk_regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

int tk_regex_find_matches(const tk_regex *re, const char *s, size_t n, tk_segs *out) {
    if (n == 0) return tk_segs_push(out, 0, 0, 0);
    if (!tk_utf8_is_valid(s, n)) return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md) return -1;
    size_t last_end = 0, last_match_end = 0, prev = 0;
    int have_last = 0, rc = 0;
    while (last_end <= n) {
        int m = pcre2_match(re->code, (PCRE2_SPTR)s, n, last_end, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            rc = -1;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && last_match_end == me) {
            size_t step = last_end < n ? tk_utf8_valid_len((const unsigned char *)s + last_end, n - last_end) : 1;
            last_end += step ? step : 1;
            continue;
        }
        last_end = me;
        last_match_end = me;
        have_last = 1;
        if (prev != ms && tk_segs_push(out, prev, ms, 0)) { rc = -1; break; }
        if (tk_segs_push(out, ms, me, 1)) { rc = -1; break; }
        prev = me;
    }
    pcre2_match_data_free(md);
    if (rc) return rc;
    if (prev != n) return tk_segs_push(out, prev, n, 0);
    return 0;
}
