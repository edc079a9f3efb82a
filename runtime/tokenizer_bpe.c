/* The BPE model over one pre-tokenized word, as HF's BPE::tokenize does it:
 *   ignore_merges: a word found whole in the vocabulary is one token;
 *   characters -> ids (byte fallback to <0xXX>, else the unk token, fused when fuse_unk);
 *   merges: a min-heap on (rank, position); stale entries are skipped when the pair at the
 *   position no longer yields the entry's merged id. */
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/tokenizer_internal.h"

typedef struct sym {
    int32_t id;
    int32_t prev, next; /* -1: none */
    int32_t len;        /* bytes; 0: merged away */
} sym;

typedef struct merge_ent {
    int32_t rank, pos, merged;
} merge_ent;

typedef struct heap {
    merge_ent *v;
    size_t n, cap;
} heap;

static int ent_less(merge_ent a, merge_ent b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static int heap_push(heap *h, merge_ent e) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        merge_ent *v = realloc(h->v, cap * sizeof *v);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(e, h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
    return 0;
}

static merge_ent heap_pop(heap *h) {
    merge_ent top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        merge_ent mv = last;
        if (l < h->n && ent_less(h->v[l], mv)) { m = l; mv = h->v[l]; }
        if (r < h->n && ent_less(h->v[r], mv)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

typedef struct word {
    sym *v;
    size_t n, cap;
} word;

static int word_add(word *w, int32_t id, int32_t len) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        sym *v = realloc(w->v, cap * sizeof *v);
        if (!v) return -1;
        w->v = v;
        w->cap = cap;
    }
    int32_t i = (int32_t)w->n;
    w->v[w->n++] = (sym){id, i - 1, -1, len};
    if (i > 0) w->v[i - 1].next = i;
    return 0;
}

static int merge_all(const tk_mergemap *mm, word *w) {
    heap h = {0};
    int32_t rank, merged;
    for (size_t i = 0; i + 1 < w->n; i++)
        if (tk_mergemap_get(mm, w->v[i].id, w->v[i + 1].id, &rank, &merged) &&
            heap_push(&h, (merge_ent){rank, (int32_t)i, merged}))
            goto oom;
    while (h.n) {
        merge_ent top = heap_pop(&h);
        sym *cur = &w->v[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t next_pos = cur->next;
        sym right = w->v[next_pos];
        if (!tk_mergemap_get(mm, cur->id, right.id, &rank, &merged) || merged != top.merged) continue;
        cur->id = top.merged;
        cur->len += right.len;
        cur->next = right.next;
        w->v[next_pos].len = 0;
        if (right.next >= 0) w->v[right.next].prev = top.pos;
        if (cur->prev >= 0 && tk_mergemap_get(mm, w->v[cur->prev].id, cur->id, &rank, &merged) &&
            heap_push(&h, (merge_ent){rank, cur->prev, merged}))
            goto oom;
        if (cur->next >= 0 && tk_mergemap_get(mm, cur->id, w->v[cur->next].id, &rank, &merged) &&
            heap_push(&h, (merge_ent){rank, top.pos, merged}))
            goto oom;
    }
    free(h.v);
    return 0;
oom:
    free(h.v);
    return -1;
}

stree_status tk_bpe_word(const stree_tokenizer *tok, const char *s, size_t n, tk_ids *out) {
    if (n == 0) return STREE_OK;
    if (tok->ignore_merges) {
        int32_t id = tk_strmap_get(&tok->vocab, s, n);
        if (id >= 0) return tk_ids_push(out, id) ? stree_fail(STREE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory")
                                                 : STREE_OK;
    }
    word w = {0};
    int32_t unk_len = -1; /* pending unk token (its byte length), -1 when none */
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t cl = tk_utf8_valid_len(u + i, n - i);
        if (!cl) cl = 1; /* pieces are valid UTF-8; stay safe on anything else */
        int32_t id = tk_strmap_get(&tok->vocab, s + i, cl);
        if (id >= 0) {
            if (unk_len >= 0 && word_add(&w, tok->unk_id, unk_len)) goto oom;
            unk_len = -1;
            if (word_add(&w, id, (int32_t)cl)) goto oom;
        } else {
            int fell_back = 0;
            if (tok->byte_fallback) {
                fell_back = 1;
                for (size_t k = 0; k < cl; k++)
                    if (tok->byte_ids[u[i + k]] < 0) fell_back = 0;
                if (fell_back)
                    for (size_t k = 0; k < cl; k++)
                        if (word_add(&w, tok->byte_ids[u[i + k]], 1)) goto oom;
            }
            if (!fell_back && tok->unk_id >= 0) {
                if (unk_len >= 0 && tok->fuse_unk) {
                    unk_len += (int32_t)cl;
                } else {
                    if (unk_len >= 0 && word_add(&w, tok->unk_id, unk_len)) goto oom;
                    unk_len = (int32_t)cl;
                }
            }
        }
        i += cl;
    }
    if (unk_len >= 0 && word_add(&w, tok->unk_id, unk_len)) goto oom;
    if (merge_all(&tok->merges, &w)) goto oom;
    for (size_t i = 0; i < w.n; i++)
        if (w.v[i].len && tk_ids_push(out, w.v[i].id)) goto oom;
    free(w.v);
    return STREE_OK;
oom:
    free(w.v);
    return stree_fail(STREE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}
