/* Decoding: ids -> token strings (added tokens first; special ones dropped with skip_special;
 * unknown ids dropped like HF's decode) -> the decoder chain (HF's decode_chain per decoder,
 * joined with "") -> UTF-8 with maximal invalid subparts replaced by U+FFFD.
 *
 * Streaming (stree_text_stream_*): the stream re-decodes a short window of the latest ids and hands
 * out what can no longer change: an incomplete UTF-8 tail, an open run of byte-fallback tokens and
 * a trailing run that a final Strip may remove are held back. The window restarts ("cut") after a
 * token once nothing is held, so the work per token stays small; the concatenated chunks plus the
 * flush equal stree_detokenize of all ids. */
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/tokenizer_internal.h"

#define OOM() stree_fail(STREE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory")

/* A list of strings in one buffer. */
typedef struct tlist {
    tk_buf buf;
    size_t *off, *len;
    size_t n, cap;
} tlist;

static int tl_push(tlist *t, const char *s, size_t n) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        size_t *o = realloc(t->off, cap * sizeof *o);
        if (!o) return -1;
        t->off = o;
        size_t *l = realloc(t->len, cap * sizeof *l);
        if (!l) return -1;
        t->len = l;
        t->cap = cap;
    }
    t->off[t->n] = t->buf.len;
    t->len[t->n] = n;
    t->n++;
    return tk_buf_put(&t->buf, s, n);
}

/* Appends bytes to the last string (which must be the last one written to buf). */
static int tl_append(tlist *t, const char *s, size_t n) {
    t->len[t->n - 1] += n;
    return tk_buf_put(&t->buf, s, n);
}

static void tl_reset(tlist *t) {
    t->n = 0;
    t->buf.len = 0;
}

static void tl_free(tlist *t) {
    tk_buf_free(&t->buf);
    free(t->off);
    free(t->len);
    memset(t, 0, sizeof *t);
}

static const char *tl_str(const tlist *t, size_t i) { return t->buf.p + t->off[i]; }

/* ---------------------------------------------------------------- stages */
#define MAX_STAGES 64

static int flatten(const tk_dec *d, const tk_dec **out, int n) {
    if (!d) return n;
    if (d->type == TK_DEC_SEQUENCE) {
        for (int k = 0; k < d->n_kids; k++) n = flatten(d->kids[k], out, n);
        return n;
    }
    if (n < MAX_STAGES) out[n++] = d;
    return n;
}

/* The byte a ByteLevel character stands for, or -1. */
static int char_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp >= 256 && cp < 256 + 33) return (int)(cp - 256);
    if (cp >= 256 + 33 && cp < 256 + 67) return (int)(cp - 256 - 33 + 127);
    if (cp == 256 + 67) return 173;
    return -1;
}

static int utf8_next(const char *s, size_t n, size_t i, uint32_t *cp) {
    size_t cl = tk_utf8_valid_len((const unsigned char *)s + i, n - i);
    if (!cl) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = tk_utf8_decode((const unsigned char *)s + i, cl);
    return (int)cl;
}

static int stage_bytelevel(const tlist *in, tlist *out, int last, int streaming, int *open) {
    tk_buf bytes = {0};
    for (size_t i = 0; i < in->n; i++) {
        const char *s = tl_str(in, i);
        size_t n = in->len[i], mark = bytes.len;
        int all = 1;
        for (size_t k = 0; k < n;) {
            uint32_t cp;
            k += (size_t)utf8_next(s, n, k, &cp);
            int b = char_byte(cp);
            if (b < 0) {
                all = 0;
                break;
            }
            char c = (char)b;
            if (tk_buf_put(&bytes, &c, 1)) goto oom;
        }
        if (!all) {
            bytes.len = mark;
            if (tk_buf_put(&bytes, s, n)) goto oom;
        }
    }
    if (last) {
        if (tl_push(out, bytes.p ? bytes.p : "", bytes.len)) goto oom;
    } else {
        size_t n = bytes.len;
        if (streaming) {
            size_t tail = tk_utf8_incomplete_tail(bytes.p, n);
            if (tail) *open = 1;
            n -= tail;
        }
        tk_buf fixed = {0};
        if (tk_utf8_lossy(&fixed, bytes.p ? bytes.p : "", n) || tl_push(out, fixed.p ? fixed.p : "", fixed.len)) {
            tk_buf_free(&fixed);
            goto oom;
        }
        tk_buf_free(&fixed);
    }
    tk_buf_free(&bytes);
    return 0;
oom:
    tk_buf_free(&bytes);
    return -1;
}

static int stage_metaspace(const tk_dec *d, const tlist *in, tlist *out, int first_is_start) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = tl_str(in, i);
        size_t n = in->len[i];
        int drop = i == 0 && first_is_start && d->prepend != TK_PREPEND_NEVER;
        if (tl_push(out, "", 0)) return -1;
        for (size_t k = 0; k < n;) {
            uint32_t cp;
            int cl = utf8_next(s, n, k, &cp);
            if (cp == d->repl_cp) {
                if (!drop && tl_append(out, " ", 1)) return -1;
            } else if (tl_append(out, s + k, (size_t)cl)) {
                return -1;
            }
            k += (size_t)cl;
        }
    }
    return 0;
}

static int stage_replace(const tk_dec *d, const tlist *in, tlist *out) {
    tk_segs segs = {0};
    for (size_t i = 0; i < in->n; i++) {
        const char *s = tl_str(in, i);
        size_t n = in->len[i];
        segs.n = 0;
        if (tk_regex_find_matches(d->re, s, n, &segs) || tl_push(out, "", 0)) goto fail;
        for (size_t k = 0; k < segs.n; k++) {
            const tk_seg *g = &segs.v[k];
            if (g->is_match ? tl_append(out, d->content, d->content_len)
                            : tl_append(out, s + g->start, g->end - g->start))
                goto fail;
        }
    }
    tk_segs_free(&segs);
    return 0;
fail:
    tk_segs_free(&segs);
    return -1;
}

/* "<0xAB>" -> 0xAB (Rust's u8::from_str_radix also takes a leading '+'), else -1 */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) {
            if (k == 3 && c == '+') continue;
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

static int flush_bytes(tlist *out, const tk_buf *bytes) {
    if (!bytes->len) return 0;
    if (tk_utf8_is_valid(bytes->p, bytes->len)) return tl_push(out, bytes->p, bytes->len);
    for (size_t k = 0; k < bytes->len; k++)
        if (tl_push(out, "\xEF\xBF\xBD", 3)) return -1;
    return 0;
}

static int stage_bytefallback(const tlist *in, tlist *out, int streaming, int *open) {
    tk_buf bytes = {0};
    for (size_t i = 0; i < in->n; i++) {
        int b = byte_token(tl_str(in, i), in->len[i]);
        if (b >= 0) {
            char c = (char)b;
            if (tk_buf_put(&bytes, &c, 1)) goto oom;
            continue;
        }
        if (flush_bytes(out, &bytes)) goto oom;
        bytes.len = 0;
        if (tl_push(out, tl_str(in, i), in->len[i])) goto oom;
    }
    if (streaming && bytes.len) *open = 1; /* a later byte token may join the run */
    else if (flush_bytes(out, &bytes)) goto oom;
    tk_buf_free(&bytes);
    return 0;
oom:
    tk_buf_free(&bytes);
    return -1;
}

static int stage_fuse(const tlist *in, tlist *out) {
    if (tl_push(out, "", 0)) return -1;
    for (size_t i = 0; i < in->n; i++)
        if (tl_append(out, tl_str(in, i), in->len[i])) return -1;
    return 0;
}

/* Per token: drop up to `start` leading and `stop` trailing `content` characters. On fused text
 * (one token standing for everything) the leading cut only applies at the very start, and while
 * streaming the trailing cut is left for the end (the caller holds the run back). */
static int stage_strip(const tk_dec *d, const tlist *in, tlist *out, int fused, int tail, int streaming,
                       uint32_t *hold) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = tl_str(in, i);
        size_t n = in->len[i];
        size_t a = 0, b = n;
        if (!(fused && tail)) {
            for (int k = 0; k < d->strip_start && a < n; k++) {
                uint32_t cp;
                int cl = utf8_next(s, n, a, &cp);
                if (cp != d->strip_char) break;
                a += (size_t)cl;
            }
        }
        if (fused && streaming && d->strip_stop > 0) {
            *hold = d->strip_char;
        } else {
            for (int k = 0; k < d->strip_stop && b > 0; k++) {
                size_t p = b - 1;
                while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
                uint32_t cp;
                utf8_next(s, n, p, &cp);
                if (cp != d->strip_char) break;
                b = p;
            }
        }
        if (b < a) b = a; /* HF panics here; an empty token is the sane reading */
        if (tl_push(out, s + a, b - a)) return -1;
    }
    return 0;
}

stree_status tk_decode_tokens(const stree_tokenizer *tok, const char *const *strs, const size_t *lens, size_t n,
                              tk_dec_opts *opts, tk_buf *out) {
    opts->hold_char = 0;
    opts->bf_open = 0;
    if (!tok->decoder) { /* HF: tokens.join(" ") */
        for (size_t i = 0; i < n; i++) {
            if ((i > 0 || opts->stream_tail) && tk_buf_put(out, " ", 1)) return OOM();
            if (tk_buf_put(out, strs[i], lens[i])) return OOM();
        }
        return STREE_OK;
    }
    const tk_dec *stages[MAX_STAGES];
    int ns = flatten(tok->decoder, stages, 0);
    tlist a = {0}, b = {0};
    stree_status st = STREE_OK;
    for (size_t i = 0; i < n && !st; i++)
        if (tl_push(&a, strs[i], lens[i])) st = OOM();
    int fused = 0;
    for (int k = 0; k < ns && !st; k++) {
        const tk_dec *d = stages[k];
        tl_reset(&b);
        int bad = 0;
        switch (d->type) {
        case TK_DEC_BYTELEVEL:
            bad = stage_bytelevel(&a, &b, k == ns - 1, opts->streaming, &opts->bf_open);
            fused = 1;
            break;
        case TK_DEC_METASPACE: bad = stage_metaspace(d, &a, &b, fused || !opts->stream_tail); break;
        case TK_DEC_REPLACE:
            if (stage_replace(d, &a, &b)) st = stree_fail(STREE_ERR_INTERNAL, "tokenizer: decoder regex failed");
            break;
        case TK_DEC_BYTEFALLBACK: bad = stage_bytefallback(&a, &b, opts->streaming, &opts->bf_open); break;
        case TK_DEC_FUSE:
            bad = stage_fuse(&a, &b);
            fused = 1;
            break;
        case TK_DEC_STRIP:
            bad = stage_strip(d, &a, &b, fused, opts->stream_tail, opts->streaming, &opts->hold_char);
            break;
        case TK_DEC_SEQUENCE: break;
        }
        if (bad) st = OOM();
        tlist t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < a.n && !st; i++)
        if (tk_buf_put(out, tl_str(&a, i), a.len[i])) st = OOM();
    tl_free(&a);
    tl_free(&b);
    return st;
}

/* Whether a stream may restart its window after a token: not when a Replace, a Strip with a
 * trailing cut or a ByteFallback works on fused text (their result depends on text on both sides). */
static int decoder_cuttable(const stree_tokenizer *tok) {
    const tk_dec *stages[MAX_STAGES];
    int ns = flatten(tok->decoder, stages, 0), fused = 0;
    for (int k = 0; k < ns; k++) {
        tk_dec_type t = stages[k]->type;
        if (fused && (t == TK_DEC_REPLACE || t == TK_DEC_BYTEFALLBACK || (t == TK_DEC_STRIP && stages[k]->strip_stop)))
            return 0;
        if (t == TK_DEC_BYTELEVEL || t == TK_DEC_FUSE) fused = 1;
    }
    return 1;
}

/* ---------------------------------------------------------------- detokenize */
/* The strings HF's decode hands to the decoder; *skipped counts dropped ids. */
static stree_status gather(const stree_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                           const char ***strs, size_t **lens, size_t *m) {
    *strs = malloc((n + 1) * sizeof **strs);
    *lens = malloc((n + 1) * sizeof **lens);
    *m = 0;
    if (!*strs || !*lens) return OOM();
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0) return stree_fail(STREE_ERR_INVALID_ARG, "tokenizer: token id %d is negative", id);
        if (id >= tok->n_ids || !tok->id_str[id]) continue; /* HF drops ids it has no token for */
        if (skip_special && tok->id_special[id]) continue;
        (*strs)[*m] = tok->id_str[id];
        (*lens)[*m] = tok->id_len[id];
        (*m)++;
    }
    return STREE_OK;
}

static stree_status decode_ids(const stree_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                               tk_dec_opts *opts, tk_buf *text) {
    const char **strs = NULL;
    size_t *lens = NULL, m = 0;
    stree_status st = gather(tok, ids, n, skip_special, &strs, &lens, &m);
    tk_buf raw = {0};
    if (!st) st = tk_decode_tokens(tok, strs, lens, m, opts, &raw);
    size_t keep = raw.len;
    if (!st && opts->streaming) {
        keep -= tk_utf8_incomplete_tail(raw.p, raw.len);
        if (opts->hold_char) {
            char enc[4];
            size_t el = tk_utf8_encode(opts->hold_char, enc);
            while (keep >= el && !memcmp(raw.p + keep - el, enc, el)) keep -= el;
        }
    }
    if (!st && (tk_utf8_lossy(text, raw.p ? raw.p : "", keep) || tk_buf_reserve(text, 0))) st = OOM();
    tk_buf_free(&raw);
    free(strs);
    free(lens);
    return st;
}

stree_status stree_detokenize(const stree_tokenizer *tok, const int32_t *ids, int32_t n, int skip_special, char *out,
                              size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!tok || !n_out || n < 0 || (!ids && n) || (!out && cap))
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_detokenize: NULL tokenizer, ids, out or n_out, or n < 0");
    tk_buf text = {0};
    tk_dec_opts opts = {0};
    stree_status st = decode_ids(tok, ids, (size_t)n, skip_special, &opts, &text);
    if (!st) {
        *n_out = text.len;
        if (text.len + 1 > cap) {
            if (cap) out[0] = '\0';
            st = stree_fail(STREE_ERR_INVALID_ARG, "stree_detokenize: %zu bytes of text do not fit in cap %zu", text.len,
                            cap);
        } else {
            memcpy(out, text.p ? text.p : "", text.len);
            out[text.len] = '\0';
        }
    }
    tk_buf_free(&text);
    return st;
}

/* ---------------------------------------------------------------- streams */
struct stree_text_stream {
    const stree_tokenizer *tok;
    int skip_special;
    int cuttable;
    tk_ids win;     /* ids since the last cut */
    int tail;       /* the window continues earlier text */
    int any_text;   /* text has been handed out since the start */
    size_t emitted; /* bytes of the window's text handed out */
    tk_buf text;    /* the window's text */
    tk_buf chunk;   /* what the last call returned */
};

stree_status stree_text_stream_create(const stree_tokenizer *tok, int skip_special, stree_text_stream **out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_text_stream_create: out is NULL");
    *out = NULL;
    if (!tok) return stree_fail(STREE_ERR_INVALID_ARG, "stree_text_stream_create: tokenizer is NULL");
    stree_text_stream *s = calloc(1, sizeof *s);
    if (!s || tk_buf_reserve(&s->chunk, 0)) {
        free(s);
        return OOM();
    }
    s->tok = tok;
    s->skip_special = skip_special;
    s->cuttable = decoder_cuttable(tok);
    *out = s;
    return STREE_OK;
}

void stree_text_stream_free(stree_text_stream *s) {
    if (!s) return;
    tk_ids_free(&s->win);
    tk_buf_free(&s->text);
    tk_buf_free(&s->chunk);
    free(s);
}

/* Re-decodes the window; the chunk gets the text beyond what was handed out. */
static stree_status stream_step(stree_text_stream *s, int final, tk_dec_opts *opts) {
    opts->stream_tail = s->tail;
    opts->streaming = !final;
    s->text.len = 0;
    s->chunk.len = 0;
    s->chunk.p[0] = '\0';
    STREE_TRY(decode_ids(s->tok, s->win.v, s->win.n, s->skip_special, opts, &s->text));
    if (s->text.len > s->emitted) {
        if (tk_buf_put(&s->chunk, s->text.p + s->emitted, s->text.len - s->emitted)) return OOM();
        s->emitted = s->text.len;
        s->any_text = 1;
    }
    return STREE_OK;
}

stree_status stree_text_stream_push(stree_text_stream *s, int32_t token, const char **text) {
    if (!s || !text) return stree_fail(STREE_ERR_INVALID_ARG, "stree_text_stream_push: NULL stream or text");
    *text = "";
    if (token < 0) return stree_fail(STREE_ERR_INVALID_ARG, "stree_text_stream_push: token id %d is negative", token);
    const stree_tokenizer *tok = s->tok;
    s->chunk.len = 0;
    s->chunk.p[0] = '\0';
    *text = s->chunk.p;
    if (token >= tok->n_ids || !tok->id_str[token] || (s->skip_special && tok->id_special[token])) return STREE_OK;
    if (tk_ids_push(&s->win, token)) return OOM();
    tk_dec_opts opts = {0};
    STREE_TRY(stream_step(s, 0, &opts));
    *text = s->chunk.p;
    /* restart the window when nothing is held back: the final decode of the window equals what
     * was handed out (and text was handed out, so a leading Strip is settled) */
    if (s->cuttable && s->any_text) {
        tk_dec_opts fin = {.stream_tail = s->tail, .streaming = 0};
        tk_buf full = {0};
        stree_status st = decode_ids(tok, s->win.v, s->win.n, s->skip_special, &fin, &full);
        int same = !st && full.len == s->text.len;
        tk_buf_free(&full);
        if (st) return st;
        if (same) { /* nothing held back: restart the window */
            s->win.n = 0;
            s->tail = 1;
            s->emitted = 0;
        }
    }
    return STREE_OK;
}

stree_status stree_text_stream_flush(stree_text_stream *s, const char **text) {
    if (!s || !text) return stree_fail(STREE_ERR_INVALID_ARG, "stree_text_stream_flush: NULL stream or text");
    tk_dec_opts opts = {0};
    STREE_TRY(stream_step(s, 1, &opts));
    *text = s->chunk.p;
    /* the stream starts afresh */
    s->win.n = 0;
    s->tail = 0;
    s->any_text = 0;
    s->emitted = 0;
    return STREE_OK;
}
