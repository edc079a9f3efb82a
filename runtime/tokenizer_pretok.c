/* Normalizers, added-token extraction and pre-tokenizers, following HF's NormalizedString /
 * PreTokenizedString semantics: a stage maps each piece that is not an added token to sub-pieces;
 * empty pieces are dropped. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "runtime/error.h"
#include "runtime/tokenizer_internal.h"

#define OOM() stree_fail(STREE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory")

/* ---------------------------------------------------------------- normalizers */
static size_t count_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte length of the first `chars` characters of s. */
static size_t chars_bytes(const char *s, size_t n, size_t chars) {
    size_t i = 0;
    while (i < n && chars) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        chars--;
    }
    return i;
}

static stree_status unicode_map(const tk_norm *nm, const char *s, size_t n, utf8proc_uint8_t **dst,
                                utf8proc_ssize_t *len) {
    utf8proc_option_t opt = UTF8PROC_STABLE;
    switch (nm->type) {
    case TK_NORM_NFC: opt |= UTF8PROC_COMPOSE; break;
    case TK_NORM_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case TK_NORM_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    *dst = NULL;
    *len = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, dst, opt);
    if (*len < 0) {
        free(*dst);
        *dst = NULL;
        return *len == UTF8PROC_ERROR_NOMEM
                   ? OOM()
                   : stree_fail(STREE_ERR_INTERNAL, "tokenizer: normalizer: %s", utf8proc_errmsg(*len));
    }
    return STREE_OK;
}

static stree_status norm_unicode(const tk_norm *nm, const char *s, size_t n, tk_buf *out, size_t *zlen) {
    if (n == 0) return STREE_OK;
    utf8proc_uint8_t *dst;
    utf8proc_ssize_t len;
    STREE_TRY(unicode_map(nm, s, n, &dst, &len));
    if (zlen && *zlen) {
        /* what the prefix aligned to offset 0 becomes on its own; a composition with what follows
         * stays aligned to its first character */
        utf8proc_uint8_t *pre;
        utf8proc_ssize_t plen;
        stree_status st = unicode_map(nm, s, *zlen, &pre, &plen);
        if (st) {
            free(dst);
            return st;
        }
        *zlen = chars_bytes((const char *)dst, (size_t)len, count_chars((const char *)pre, (size_t)plen));
        free(pre);
    }
    int bad = tk_buf_put(out, dst, (size_t)len);
    free(dst);
    return bad ? OOM() : STREE_OK;
}

static stree_status norm_lowercase(const char *s, size_t n, tk_buf *out, size_t *zlen) {
    const unsigned char *u = (const unsigned char *)s;
    size_t start = out->len, zin = zlen ? *zlen : 0;
    for (size_t i = 0; i < n;) {
        if (zlen && i == zin) *zlen = out->len - start;
        size_t cl = tk_utf8_valid_len(u + i, n - i);
        if (!cl) cl = 1;
        uint32_t cp = tk_utf8_decode(u + i, cl);
        char enc[8];
        size_t el;
        if (cp == 0x130) { /* Rust's full lowercase mapping: U+0130 -> i + COMBINING DOT ABOVE */
            memcpy(enc, "i\xCC\x87", 3);
            el = 3;
        } else {
            el = tk_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        }
        if (tk_buf_put(out, enc, el)) return OOM();
        i += cl;
    }
    if (zlen && zin >= n) *zlen = out->len - start;
    return STREE_OK;
}

/* Replaces every match of re in s with content (HF's NormalizedString::replace). */
static stree_status replace_all(const tk_regex *re, const char *content, size_t content_len, const char *s, size_t n,
                                tk_buf *out, size_t *zlen) {
    tk_segs segs = {0};
    if (tk_regex_find_matches(re, s, n, &segs)) {
        tk_segs_free(&segs);
        return stree_fail(STREE_ERR_INTERNAL, "tokenizer: regex match failed");
    }
    size_t start = out->len, zin = zlen ? *zlen : 0, zout = 0;
    int zopen = zin > 0; /* still inside the output prefix aligned to offset 0 */
    for (size_t i = 0; i < segs.n; i++) {
        const tk_seg *g = &segs.v[i];
        int bad = g->is_match ? tk_buf_put(out, content, content_len) : tk_buf_put(out, s + g->start, g->end - g->start);
        if (bad) {
            tk_segs_free(&segs);
            return OOM();
        }
        if (!zopen) continue;
        if (g->is_match) {
            /* the replacement lines up with the last replaced character; an insertion (empty
             * match) with the character before it, or with offset 0 at the start */
            int aligned;
            if (g->end == g->start) {
                aligned = g->start <= zin;
            } else {
                size_t last = g->end - 1;
                while (last > g->start && ((unsigned char)s[last] & 0xC0) == 0x80) last--;
                aligned = last < zin;
            }
            if (aligned) zout = out->len - start;
            else zopen = 0;
        } else {
            size_t keep = zin > g->start ? (zin < g->end ? zin : g->end) - g->start : 0;
            zout = out->len - start - (g->end - g->start) + keep;
            if (keep < g->end - g->start) zopen = 0;
        }
    }
    if (zlen) *zlen = zout;
    tk_segs_free(&segs);
    return STREE_OK;
}

stree_status tk_normalize(const tk_norm *nm, const char *s, size_t n, tk_buf *out, size_t *zlen) {
    if (!nm) return tk_buf_put(out, s, n) ? OOM() : STREE_OK;
    switch (nm->type) {
    case TK_NORM_SEQUENCE: {
        tk_buf cur = {0}, next = {0};
        if (tk_buf_put(&cur, s, n)) return OOM();
        for (int k = 0; k < nm->n_kids; k++) {
            next.len = 0;
            stree_status st = tk_normalize(nm->kids[k], cur.p, cur.len, &next, zlen);
            if (st) {
                tk_buf_free(&cur);
                tk_buf_free(&next);
                return st;
            }
            tk_buf t = cur;
            cur = next;
            next = t;
        }
        int bad = tk_buf_put(out, cur.p, cur.len);
        tk_buf_free(&cur);
        tk_buf_free(&next);
        return bad ? OOM() : STREE_OK;
    }
    case TK_NORM_NFC:
    case TK_NORM_NFD:
    case TK_NORM_NFKC:
    case TK_NORM_NFKD: return norm_unicode(nm, s, n, out, zlen);
    case TK_NORM_PREPEND:
        if (n && tk_buf_put(out, nm->str, nm->str_len)) return OOM();
        if (n && zlen && *zlen) *zlen += nm->str_len; /* aligned to the first character */
        return tk_buf_put(out, s, n) ? OOM() : STREE_OK;
    case TK_NORM_REPLACE: return replace_all(nm->re, nm->str, nm->str_len, s, n, out, zlen);
    case TK_NORM_LOWERCASE: return norm_lowercase(s, n, out, zlen);
    }
    return stree_fail(STREE_ERR_INTERNAL, "tokenizer: unknown normalizer");
}

/* ---------------------------------------------------------------- added tokens */
/* Start of the character that ends at `at` (> 0). */
static size_t prev_char_start(const char *s, size_t at) {
    size_t i = at - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

static uint32_t char_before(const char *s, size_t at) {
    size_t i = prev_char_start(s, at);
    const unsigned char *u = (const unsigned char *)s + i;
    size_t cl = tk_utf8_valid_len(u, at - i);
    return cl ? tk_utf8_decode(u, cl) : 0xFFFD;
}

static uint32_t char_at(const char *s, size_t n, size_t at, size_t *len) {
    const unsigned char *u = (const unsigned char *)s + at;
    size_t cl = tk_utf8_valid_len(u, n - at);
    *len = cl ? cl : 1;
    return cl ? tk_utf8_decode(u, cl) : 0xFFFD;
}

/* HF's AddedVocabulary::find_matches: leftmost-longest matches of the pass's tokens, then the
 * single_word / lstrip / rstrip rules. Segments: is_match = token index + 1, 0 for text. */
static int find_added(const stree_tokenizer *tok, int pass, const char *s, size_t n, tk_segs *out) {
    const int32_t *order = tok->added_order[pass];
    const int32_t *first = tok->added_first[pass];
    size_t start_offset = 0;
    size_t pos = 0;
    if (order && first[256] > 0) {
        while (pos < n) {
            /* the leftmost position where some token matches, the longest there */
            size_t mstart = n;
            int32_t best = -1;
            for (size_t p = pos; p < n && best < 0; p++) {
                unsigned b = (unsigned char)s[p];
                for (int32_t k = first[b]; k < first[b + 1]; k++) {
                    const tk_added *a = &tok->added[order[k]];
                    if (a->match_len <= n - p && !memcmp(s + p, a->match, a->match_len)) {
                        best = order[k];
                        mstart = p;
                        break;
                    }
                }
            }
            if (best < 0) break;
            const tk_added *a = &tok->added[best];
            size_t start = mstart, stop = mstart + a->match_len;
            pos = stop;
            if (a->single_word) {
                int start_space = start == 0 || !tk_is_word(char_before(s, start));
                size_t cl;
                int stop_space = stop == n || !tk_is_word(char_at(s, n, stop, &cl));
                if (!start_space || !stop_space) continue;
            }
            if (a->lstrip) {
                size_t ns = start;
                while (ns > 0 && tk_is_whitespace(char_before(s, ns))) ns = prev_char_start(s, ns);
                start = ns > start_offset ? ns : start_offset;
            }
            if (a->rstrip) {
                while (stop < n) {
                    size_t cl;
                    if (!tk_is_whitespace(char_at(s, n, stop, &cl))) break;
                    stop += cl;
                }
            }
            if (start_offset < start && tk_segs_push(out, start_offset, start, 0)) return -1;
            if (tk_segs_push(out, start, stop, best + 1)) return -1;
            start_offset = stop;
        }
    }
    if (start_offset != n && tk_segs_push(out, start_offset, n, 0)) return -1;
    return 0;
}

stree_status tk_split_added(const stree_tokenizer *tok, tk_buf *arena, size_t text_len, tk_pieces *pieces) {
    tk_segs s1 = {0}, s2 = {0};
    stree_status st = STREE_OK;
    if (find_added(tok, 0, arena->p, text_len, &s1)) {
        st = OOM();
        goto done;
    }
    for (size_t i = 0; i < s1.n && !st; i++) {
        tk_seg g = s1.v[i];
        if (g.end <= g.start) continue;
        /* the first character of the text is what lines up with offset 0 */
        size_t z0 = g.start == 0 ? tk_utf8_valid_len((const unsigned char *)arena->p, g.end) : 0;
        if (g.start == 0 && !z0) z0 = 1;
        if (g.is_match) {
            if (tk_pieces_push(pieces, g.start, g.end - g.start, tok->added[g.is_match - 1].id, z0)) st = OOM();
            continue;
        }
        /* normalize the text piece, then look for the normalized added tokens in it */
        size_t off = arena->len;
        if (tk_buf_reserve(arena, 0)) {
            st = OOM();
            break;
        }
        tk_buf tmp = {0};
        size_t zlen = z0;
        st = tk_normalize(tok->normalizer, arena->p + g.start, g.end - g.start, &tmp, &zlen);
        if (!st && tk_buf_put(arena, tmp.p, tmp.len)) st = OOM();
        tk_buf_free(&tmp);
        if (st) break;
        size_t nlen = arena->len - off;
        s2.n = 0;
        if (find_added(tok, 1, arena->p + off, nlen, &s2)) {
            st = OOM();
            break;
        }
        for (size_t k = 0; k < s2.n; k++) {
            tk_seg h = s2.v[k];
            if (h.end <= h.start) continue;
            int32_t id = h.is_match ? tok->added[h.is_match - 1].id : -1;
            if (tk_pieces_push(pieces, off + h.start, h.end - h.start, id, h.start < zlen ? zlen - h.start : 0)) {
                st = OOM();
                break;
            }
        }
    }
done:
    tk_segs_free(&s1);
    tk_segs_free(&s2);
    return st;
}

/* ---------------------------------------------------------------- split behaviours */
typedef int (*char_pred)(uint32_t cp, const void *ctx);

/* HF's find_matches for a char predicate: each matching character is its own match. */
static int char_find_matches(const char *s, size_t n, char_pred pred, const void *ctx, tk_segs *out) {
    if (n == 0) return tk_segs_push(out, 0, 0, 0);
    size_t last = 0;
    for (size_t i = 0; i < n;) {
        size_t cl;
        uint32_t cp = char_at(s, n, i, &cl);
        if (pred(cp, ctx)) {
            if (last < i && tk_segs_push(out, last, i, 0)) return -1;
            if (tk_segs_push(out, i, i + cl, 1)) return -1;
            last = i + cl;
        }
        i += cl;
    }
    if (last < n && tk_segs_push(out, last, n, 0)) return -1;
    return 0;
}

/* Applies a split behaviour to find_matches segments (HF's NormalizedString::split); the result
 * keeps the non-removed segments (is_match = 0 keep, 1 remove). */
static int apply_behavior(const tk_segs *m, tk_split_behavior b, tk_segs *out) {
    int prev_match = 0;
    switch (b) {
    case TK_SPLIT_ISOLATED:
        for (size_t i = 0; i < m->n; i++)
            if (tk_segs_push(out, m->v[i].start, m->v[i].end, 0)) return -1;
        return 0;
    case TK_SPLIT_REMOVED:
        for (size_t i = 0; i < m->n; i++)
            if (tk_segs_push(out, m->v[i].start, m->v[i].end, m->v[i].is_match)) return -1;
        return 0;
    case TK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < m->n; i++) {
            if (m->v[i].is_match == prev_match && out->n) out->v[out->n - 1].end = m->v[i].end;
            else if (tk_segs_push(out, m->v[i].start, m->v[i].end, 0)) return -1;
            prev_match = m->v[i].is_match;
        }
        return 0;
    case TK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < m->n; i++) {
            if (m->v[i].is_match && !prev_match && out->n) out->v[out->n - 1].end = m->v[i].end;
            else if (tk_segs_push(out, m->v[i].start, m->v[i].end, 0)) return -1;
            prev_match = m->v[i].is_match;
        }
        return 0;
    case TK_SPLIT_MERGED_NEXT:
        for (size_t i = m->n; i-- > 0;) {
            if (m->v[i].is_match && !prev_match && out->n) out->v[out->n - 1].start = m->v[i].start;
            else if (tk_segs_push(out, m->v[i].start, m->v[i].end, 0)) return -1;
            prev_match = m->v[i].is_match;
        }
        for (size_t i = 0, j = out->n ? out->n - 1 : 0; i < j; i++, j--) {
            tk_seg t = out->v[i];
            out->v[i] = out->v[j];
            out->v[j] = t;
        }
        return 0;
    }
    return -1;
}

/* Pushes the kept, non-empty segments of the piece at arena offset `base` as new pieces. */
static int push_segments(tk_pieces *out, const tk_segs *kept, size_t base, size_t zlen) {
    for (size_t i = 0; i < kept->n; i++) {
        const tk_seg *g = &kept->v[i];
        if (g->is_match || g->end <= g->start) continue;
        if (tk_pieces_push(out, base + g->start, g->end - g->start, -1, g->start < zlen ? zlen - g->start : 0))
            return -1;
    }
    return 0;
}

static int is_numeric_pred(uint32_t cp, const void *ctx) { return tk_is_numeric(cp); }

static int is_char_pred(uint32_t cp, const void *ctx) { return cp == *(const uint32_t *)ctx; }

/* GPT-2 / ByteLevel bytes_to_unicode: printable bytes map to themselves, the 68 others (0..32,
 * 127..160, 173) to U+0100 + their rank among them. */
static size_t byte_char(unsigned b, char *enc) {
    uint32_t cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) cp = b;
    else if (b <= 32) cp = 256 + b;
    else if (b <= 160) cp = 256 + 33 + (b - 127);
    else cp = 256 + 67; /* 173 */
    return tk_utf8_encode(cp, enc);
}

/* ---------------------------------------------------------------- pre-tokenizers */
static stree_status pretok_one(const tk_pretok *pre, tk_buf *arena, const tk_piece *pc, tk_pieces *out) {
    tk_segs m = {0}, kept = {0};
    stree_status st = STREE_OK;
    size_t base = pc->off, n = pc->len;
    switch (pre->type) {
    case TK_PRE_SEQUENCE: st = stree_fail(STREE_ERR_INTERNAL, "tokenizer: nested sequence"); break;
    case TK_PRE_SPLIT:
        if (tk_regex_find_matches(pre->re, arena->p + base, n, &m)) {
            st = stree_fail(STREE_ERR_INTERNAL, "tokenizer: regex match failed");
            break;
        }
        if (pre->invert)
            for (size_t i = 0; i < m.n; i++) m.v[i].is_match = !m.v[i].is_match;
        if (apply_behavior(&m, pre->behavior, &kept) || push_segments(out, &kept, base, pc->zlen)) st = OOM();
        break;
    case TK_PRE_DIGITS:
        if (char_find_matches(arena->p + base, n, is_numeric_pred, NULL, &m) ||
            apply_behavior(&m, pre->individual_digits ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS, &kept) ||
            push_segments(out, &kept, base, pc->zlen))
            st = OOM();
        break;
    case TK_PRE_METASPACE: {
        size_t off = arena->len;
        /* replace ' ' by the replacement, prepending one per the scheme */
        int starts = n >= pre->repl_len && !memcmp(arena->p + base, pre->repl, pre->repl_len);
        int prepend = 0;
        if (pre->prepend == TK_PREPEND_ALWAYS) prepend = !starts && !(n >= 1 && arena->p[base] == ' ');
        else if (pre->prepend == TK_PREPEND_FIRST) prepend = !starts && !(n >= 1 && arena->p[base] == ' ') && pc->zlen;
        if (prepend && tk_buf_put(arena, pre->repl, pre->repl_len)) { st = OOM(); break; }
        size_t zlen = 0;
        for (size_t i = 0; i < n; i++) {
            char c = arena->p[base + i];
            if (c == ' ' ? tk_buf_put(arena, pre->repl, pre->repl_len) : tk_buf_putc(arena, c)) { st = OOM(); break; }
            if (i + 1 == pc->zlen) zlen = arena->len - off;
        }
        if (st) break;
        size_t len = arena->len - off;
        if (!pre->split) {
            if (len && tk_pieces_push(out, off, len, -1, zlen)) st = OOM();
            break;
        }
        uint32_t rc = tk_utf8_decode((const unsigned char *)pre->repl, pre->repl_len);
        if (char_find_matches(arena->p + off, len, is_char_pred, &rc, &m) ||
            apply_behavior(&m, TK_SPLIT_MERGED_NEXT, &kept) || push_segments(out, &kept, off, zlen))
            st = OOM();
        break;
    }
    case TK_PRE_BYTELEVEL: {
        size_t src = base, len = n, zin = pc->zlen;
        if (pre->add_prefix_space && !(n >= 1 && arena->p[base] == ' ')) {
            if (zin) zin++; /* the space lines up with the first character */
            size_t off = arena->len;
            if (tk_buf_reserve(arena, n + 1)) { st = OOM(); break; }
            arena->p[arena->len++] = ' ';
            memcpy(arena->p + arena->len, arena->p + base, n);
            arena->len += n;
            arena->p[arena->len] = '\0';
            src = off;
            len = n + 1;
        }
        if (pre->use_regex) {
            if (tk_regex_find_matches(pre->re, arena->p + src, len, &m)) {
                st = stree_fail(STREE_ERR_INTERNAL, "tokenizer: regex match failed");
                break;
            }
        } else if (tk_segs_push(&m, 0, len, 0)) {
            st = OOM();
            break;
        }
        for (size_t i = 0; i < m.n && !st; i++) {
            tk_seg g = m.v[i];
            if (g.end <= g.start) continue;
            size_t off = arena->len;
            if (tk_buf_reserve(arena, 2 * (g.end - g.start))) { st = OOM(); break; }
            size_t zlen = 0;
            for (size_t k = g.start; k < g.end; k++) {
                arena->len += byte_char((unsigned char)arena->p[src + k], arena->p + arena->len);
                if (k < zin) zlen = arena->len - off;
            }
            arena->p[arena->len] = '\0';
            if (tk_pieces_push(out, off, arena->len - off, -1, zlen)) st = OOM();
        }
        break;
    }
    }
    tk_segs_free(&m);
    tk_segs_free(&kept);
    return st;
}

static stree_status pretok_apply(const tk_pretok *pre, tk_buf *arena, tk_pieces *pieces) {
    if (pre->type == TK_PRE_SEQUENCE) {
        for (int k = 0; k < pre->n_kids; k++) STREE_TRY(pretok_apply(pre->kids[k], arena, pieces));
        return STREE_OK;
    }
    tk_pieces out = {0};
    for (size_t i = 0; i < pieces->n; i++) {
        tk_piece pc = pieces->v[i];
        stree_status st;
        if (pc.id >= 0) st = tk_pieces_push(&out, pc.off, pc.len, pc.id, pc.zlen) ? OOM() : STREE_OK;
        else st = pretok_one(pre, arena, &pc, &out);
        if (st) {
            tk_pieces_free(&out);
            return st;
        }
    }
    tk_pieces_free(pieces);
    *pieces = out;
    return STREE_OK;
}

stree_status tk_pretokenize(const tk_pretok *pre, tk_buf *arena, tk_pieces *pieces) {
    if (!pre) return STREE_OK;
    return pretok_apply(pre, arena, pieces);
}
