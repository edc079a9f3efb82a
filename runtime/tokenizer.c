/* Hugging Face tokenizer.json: loading (BPE model, added tokens, post-processor; the other
 * components in tokenizer_parse.c) and encoding:
 *   raw text -> U+FFFD for invalid bytes -> split on added tokens (non-normalized ones in the raw
 *   text, then normalized ones in each normalized piece) -> pre-tokenizer -> BPE per word ->
 *   post-processor ids (add_special). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/config_json.h"
#include "runtime/error.h"
#include "runtime/tokenizer_internal.h"

#define OOM() stree_fail(STREE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory")

static const cJSON *jget(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int jflag(const cJSON *o, const char *k, int def) {
    const cJSON *v = jget(o, k);
    return v && cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int json_id(const cJSON *v, int32_t *out) {
    if (!v || !cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 2147483646.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    *out = (int32_t)v->valuedouble;
    return 0;
}

void stree_tokenizer_free(stree_tokenizer *tok) {
    if (!tok) return;
    tk_strmap_free(&tok->vocab);
    tk_mergemap_free(&tok->merges);
    if (tok->id_str)
        for (int32_t i = 0; i < tok->n_ids; i++) free(tok->id_str[i]);
    free(tok->id_str);
    free(tok->id_len);
    free(tok->id_special);
    for (int i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].match);
        free(tok->added[i].decode_as);
    }
    free(tok->added);
    tk_strmap_free(&tok->added_map);
    tk_strmap_free(&tok->special_set);
    free(tok->added_order[0]);
    free(tok->added_order[1]);
    tk_norm_free(tok->normalizer);
    tk_pretok_free(tok->pretok);
    free(tok->post.before);
    free(tok->post.after);
    tk_dec_free(tok->decoder);
    free(tok->path);
    free(tok);
}

/* ---------------------------------------------------------------- model */
static stree_status set_id_str(stree_tokenizer *tok, int32_t id, const char *s, size_t n) {
    char *d = dup_bytes(s, n);
    if (!d) return OOM();
    free(tok->id_str[id]);
    tok->id_str[id] = d;
    tok->id_len[id] = n;
    return STREE_OK;
}

static stree_status parse_merges(stree_tokenizer *tok, const cJSON *merges) {
    const char *path = tok->path;
    int cnt = cJSON_GetArraySize(merges);
    if (tk_mergemap_init(&tok->merges, (size_t)cnt)) return OOM();
    tk_buf cat = {0};
    int rank = 0;
    stree_status st = STREE_OK;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *a, *b;
        size_t al, bl;
        if (cJSON_IsString(m)) {
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp) {
                st = stree_fail(STREE_ERR_FORMAT, "%s: model.merges[%d] '%s' is not two tokens separated by a space",
                                path, rank, m->valuestring);
                break;
            }
            a = m->valuestring;
            al = (size_t)(sp - a);
            b = sp + 1;
            bl = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring;
            al = strlen(a);
            b = m->child->next->valuestring;
            bl = strlen(b);
        } else {
            st = stree_fail(STREE_ERR_FORMAT, "%s: model.merges[%d] must be \"a b\" or [\"a\", \"b\"]", path, rank);
            break;
        }
        int32_t ia = tk_strmap_get(&tok->vocab, a, al), ib = tk_strmap_get(&tok->vocab, b, bl);
        if (ia < 0 || ib < 0) {
            const char *bad = ia < 0 ? a : b;
            int bad_len = (int)(ia < 0 ? al : bl);
            st = stree_fail(STREE_ERR_FORMAT, "%s: model.merges[%d]: token '%.*s' is not in model.vocab", path, rank,
                            bad_len, bad);
            break;
        }
        cat.len = 0;
        if (tk_buf_put(&cat, a, al) || tk_buf_put(&cat, b, bl)) {
            st = OOM();
            break;
        }
        int32_t im = tk_strmap_get(&tok->vocab, cat.p, cat.len);
        if (im < 0) {
            st = stree_fail(STREE_ERR_FORMAT, "%s: model.merges[%d]: merged token '%s' is not in model.vocab", path,
                            rank, cat.p);
            break;
        }
        if (tk_mergemap_set(&tok->merges, ia, ib, rank, im)) {
            st = OOM();
            break;
        }
    }
    tk_buf_free(&cat);
    return st;
}

static stree_status parse_model(stree_tokenizer *tok, const cJSON *model, int32_t max_added_id) {
    const char *path = tok->path;
    if (!model || !cJSON_IsObject(model)) return stree_fail(STREE_ERR_FORMAT, "%s: 'model' must be an object", path);
    const cJSON *type = jget(model, "type");
    if (type && !cJSON_IsString(type)) return stree_fail(STREE_ERR_FORMAT, "%s: model.type must be a string", path);
    if (type ? strcmp(type->valuestring, "BPE") != 0 : !jget(model, "merges"))
        return stree_fail(STREE_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported (supported: BPE)", path,
                          type ? type->valuestring : "(none)");
    const cJSON *dropout = jget(model, "dropout");
    if (dropout && (!cJSON_IsNumber(dropout) || dropout->valuedouble != 0.0))
        return stree_fail(STREE_ERR_UNSUPPORTED, "%s: model.dropout (BPE dropout is random) is not supported", path);
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = jget(model, affixes[k]);
        if (v && (!cJSON_IsString(v) || v->valuestring[0]))
            return stree_fail(STREE_ERR_UNSUPPORTED, "%s: model.%s is not supported (only null)", path, affixes[k]);
    }
    const cJSON *vocab = jget(model, "vocab");
    const cJSON *merges = jget(model, "merges");
    if (!vocab || !cJSON_IsObject(vocab))
        return stree_fail(STREE_ERR_FORMAT, "%s: model.vocab must be an object (token -> id)", path);
    if (!merges || !cJSON_IsArray(merges)) return stree_fail(STREE_ERR_FORMAT, "%s: model.merges must be a list", path);

    int32_t max_id = max_added_id;
    int n_vocab = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, n_vocab++) {
        int32_t id;
        if (json_id(e, &id))
            return stree_fail(STREE_ERR_FORMAT, "%s: model.vocab['%s'] must be a non-negative integer id", path,
                              e->string);
        if (id > max_id) max_id = id;
    }
    tok->n_ids = max_id + 1;
    tok->id_str = calloc((size_t)tok->n_ids, sizeof *tok->id_str);
    tok->id_len = calloc((size_t)tok->n_ids, sizeof *tok->id_len);
    tok->id_special = calloc((size_t)tok->n_ids, 1);
    if (!tok->id_str || !tok->id_len || !tok->id_special || tk_strmap_init(&tok->vocab, (size_t)n_vocab)) return OOM();
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        size_t n = strlen(e->string);
        if (tk_strmap_set(&tok->vocab, e->string, n, id)) return OOM();
        STREE_TRY(set_id_str(tok, id, e->string, n));
    }
    STREE_TRY(parse_merges(tok, merges));

    tok->byte_fallback = jflag(model, "byte_fallback", 0);
    tok->fuse_unk = jflag(model, "fuse_unk", 0);
    tok->ignore_merges = jflag(model, "ignore_merges", 0);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_ids[b] = tk_strmap_get(&tok->vocab, name, 6);
    }
    tok->unk_id = -1;
    const cJSON *unk = jget(model, "unk_token");
    if (unk) {
        if (!cJSON_IsString(unk)) return stree_fail(STREE_ERR_FORMAT, "%s: model.unk_token must be a string", path);
        tok->unk_id = tk_strmap_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring));
        if (tok->unk_id < 0)
            return stree_fail(STREE_ERR_FORMAT, "%s: model.unk_token '%s' is not in model.vocab", path,
                              unk->valuestring);
    }
    return STREE_OK;
}

/* ---------------------------------------------------------------- added tokens */
static stree_status scan_added_ids(const char *path, const cJSON *arr, int32_t *max_id) {
    *max_id = -1;
    if (!arr) return STREE_OK;
    if (!cJSON_IsArray(arr)) return stree_fail(STREE_ERR_FORMAT, "%s: added_tokens must be a list", path);
    int k = 0;
    for (const cJSON *t = arr->child; t; t = t->next, k++) {
        int32_t id;
        const cJSON *c = cJSON_IsObject(t) ? jget(t, "content") : NULL;
        if (!cJSON_IsObject(t) || json_id(jget(t, "id"), &id))
            return stree_fail(STREE_ERR_FORMAT, "%s: added_tokens[%d].id must be a non-negative integer", path, k);
        if (!c || !cJSON_IsString(c))
            return stree_fail(STREE_ERR_FORMAT, "%s: added_tokens[%d].content must be a string", path, k);
        if (id > *max_id) *max_id = id;
    }
    return STREE_OK;
}

typedef struct added_key {
    unsigned first;
    size_t len;
    int32_t idx;
} added_key;

static int cmp_added(const void *pa, const void *pb) {
    const added_key *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Builds the per-pass match order (first byte, longest first). */
static stree_status index_added(stree_tokenizer *tok) {
    added_key *keys = malloc(((size_t)tok->n_added + 1) * sizeof *keys);
    if (!keys) return OOM();
    for (int pass = 0; pass < 2; pass++) {
        int32_t *order = malloc(((size_t)tok->n_added + 1) * sizeof *order);
        if (!order) {
            free(keys);
            return OOM();
        }
        int32_t n = 0;
        for (int i = 0; i < tok->n_added; i++) {
            const tk_added *a = &tok->added[i];
            if (a->normalized == pass && a->match_len)
                keys[n++] = (added_key){(unsigned char)a->match[0], a->match_len, i};
        }
        qsort(keys, (size_t)n, sizeof *keys, cmp_added);
        for (int32_t k = 0; k < n; k++) order[k] = keys[k].idx;
        int32_t *first = tok->added_first[pass];
        int32_t k = 0;
        for (unsigned b = 0; b < 256; b++) {
            while (k < n && keys[k].first < b) k++;
            first[b] = k;
        }
        first[256] = n;
        tok->added_order[pass] = order;
    }
    free(keys);
    return STREE_OK;
}

static stree_status parse_added(stree_tokenizer *tok, const cJSON *arr) {
    int cnt = arr ? cJSON_GetArraySize(arr) : 0;
    tok->added = calloc((size_t)cnt + 1, sizeof *tok->added);
    if (!tok->added || tk_strmap_init(&tok->added_map, (size_t)cnt) || tk_strmap_init(&tok->special_set, (size_t)cnt))
        return OOM();
    for (const cJSON *t = arr ? arr->child : NULL; t; t = t->next) {
        const char *content = jget(t, "content")->valuestring;
        size_t len = strlen(content);
        if (!len) continue; /* HF ignores empty added tokens */
        tk_added *a = &tok->added[tok->n_added];
        json_id(jget(t, "id"), &a->id);
        a->special = jflag(t, "special", 0);
        a->normalized = jflag(t, "normalized", !a->special);
        a->single_word = jflag(t, "single_word", 0);
        a->lstrip = jflag(t, "lstrip", 0);
        a->rstrip = jflag(t, "rstrip", 0);
        a->len = len;
        if (!(a->content = dup_bytes(content, len))) return OOM();
        tok->n_added++;
        tk_buf norm = {0};
        if (a->normalized && tok->normalizer) {
            stree_status st = tk_normalize(tok->normalizer, content, len, &norm, NULL);
            if (st) {
                tk_buf_free(&norm);
                return st;
            }
        } else if (tk_buf_put(&norm, content, len)) {
            return OOM();
        }
        a->match = norm.p;
        a->match_len = norm.len;
        if (!(a->decode_as = dup_bytes(norm.p, norm.len))) return OOM();
        a->decode_len = norm.len;
        if (tk_strmap_set(&tok->added_map, content, len, a->id)) return OOM();
        if (a->special && tk_strmap_set(&tok->special_set, content, len, 1)) return OOM();
        STREE_TRY(set_id_str(tok, a->id, a->decode_as, a->decode_len));
    }
    /* decode's skip test looks the decoded string up among the special contents */
    for (int32_t id = 0; id < tok->n_ids; id++)
        tok->id_special[id] = tok->id_str[id] && tk_strmap_get(&tok->special_set, tok->id_str[id], tok->id_len[id]) >= 0;
    /* len(get_vocab(with_added_tokens=True)) */
    tok->vocab_size = (int32_t)tok->vocab.count;
    for (int i = 0; i < tok->n_added; i++)
        if (tk_strmap_get(&tok->vocab, tok->added[i].content, tok->added[i].len) < 0) tok->vocab_size++;
    return index_added(tok);
}

/* ---------------------------------------------------------------- post-processor */
static stree_status add_ids(int32_t **v, int *n, const int32_t *src, int cnt) {
    int32_t *p = realloc(*v, ((size_t)*n + (size_t)cnt + 1) * sizeof *p);
    if (!p) return OOM();
    if (cnt) memcpy(p + *n, src, (size_t)cnt * sizeof *p);
    *v = p;
    *n += cnt;
    return STREE_OK;
}

static stree_status parse_template(stree_tokenizer *tok, const char *what, const cJSON *j, tk_post *out) {
    const char *path = tok->path;
    const cJSON *single = jget(j, "single"), *specials = jget(j, "special_tokens");
    if (!single || !cJSON_IsArray(single))
        return stree_fail(STREE_ERR_FORMAT, "%s: %s.single must be a list", path, what);
    int seen_seq = 0, k = 0;
    for (const cJSON *it = single->child; it; it = it->next, k++) {
        const cJSON *sp = jget(it, "SpecialToken"), *sq = jget(it, "Sequence");
        if (sq) {
            if (seen_seq)
                return stree_fail(STREE_ERR_UNSUPPORTED, "%s: %s.single[%d]: a second Sequence is not supported", path,
                                  what, k);
            seen_seq = 1;
            continue;
        }
        const cJSON *name = sp ? jget(sp, "id") : NULL;
        if (!name || !cJSON_IsString(name))
            return stree_fail(STREE_ERR_FORMAT, "%s: %s.single[%d] must be a SpecialToken or a Sequence", path, what, k);
        const cJSON *st = specials ? jget(specials, name->valuestring) : NULL;
        const cJSON *ids = st ? jget(st, "ids") : NULL;
        if (!ids || !cJSON_IsArray(ids))
            return stree_fail(STREE_ERR_FORMAT, "%s: %s.special_tokens['%s'].ids is missing", path, what,
                              name->valuestring);
        for (const cJSON *i = ids->child; i; i = i->next) {
            int32_t id;
            if (json_id(i, &id))
                return stree_fail(STREE_ERR_FORMAT, "%s: %s.special_tokens['%s'].ids must be token ids", path, what,
                                  name->valuestring);
            STREE_TRY(seen_seq ? add_ids(&out->after, &out->n_after, &id, 1)
                               : add_ids(&out->before, &out->n_before, &id, 1));
        }
    }
    return STREE_OK;
}

static stree_status parse_post(stree_tokenizer *tok, const char *what, const cJSON *j) {
    const char *path = tok->path;
    const cJSON *type = cJSON_IsObject(j) ? jget(j, "type") : NULL;
    if (!type || !cJSON_IsString(type)) return stree_fail(STREE_ERR_FORMAT, "%s: %s.type must be a string", path, what);
    if (!strcmp(type->valuestring, "ByteLevel")) return STREE_OK;
    if (!strcmp(type->valuestring, "TemplateProcessing")) {
        tk_post one = {0};
        stree_status st = parse_template(tok, what, j, &one);
        /* applied after what came before: its tokens wrap the current ones */
        if (!st) st = add_ids(&one.before, &one.n_before, tok->post.before, tok->post.n_before);
        if (!st) st = add_ids(&tok->post.after, &tok->post.n_after, one.after, one.n_after);
        if (!st) {
            free(tok->post.before);
            tok->post.before = one.before;
            tok->post.n_before = one.n_before;
            one.before = NULL;
        }
        free(one.before);
        free(one.after);
        return st;
    }
    if (!strcmp(type->valuestring, "Sequence")) {
        const cJSON *arr = jget(j, "processors");
        if (!arr || !cJSON_IsArray(arr))
            return stree_fail(STREE_ERR_FORMAT, "%s: %s.processors must be a list", path, what);
        int k = 0;
        for (const cJSON *p = arr->child; p; p = p->next, k++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%d]", what, k);
            STREE_TRY(parse_post(tok, sub, p));
        }
        return STREE_OK;
    }
    return stree_fail(STREE_ERR_UNSUPPORTED,
                      "%s: %s.type '%s' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)", path,
                      what, type->valuestring);
}

/* ---------------------------------------------------------------- load */
static stree_status load_root(stree_tokenizer *tok, const cJSON *root) {
    const char *path = tok->path;
    if (!cJSON_IsObject(root)) return stree_fail(STREE_ERR_FORMAT, "%s: the top level must be a JSON object", path);
    const char *unsupported[] = {"truncation", "padding"};
    for (int k = 0; k < 2; k++)
        if (jget(root, unsupported[k]))
            return stree_fail(STREE_ERR_UNSUPPORTED, "%s: '%s' is not supported (only null)", path, unsupported[k]);
    const cJSON *added = jget(root, "added_tokens");
    int32_t max_added = -1;
    STREE_TRY(scan_added_ids(path, added, &max_added));
    STREE_TRY(parse_model(tok, jget(root, "model"), max_added));
    const cJSON *v;
    if ((v = jget(root, "normalizer"))) STREE_TRY(tk_norm_parse(path, "normalizer", v, &tok->normalizer));
    if ((v = jget(root, "pre_tokenizer"))) STREE_TRY(tk_pretok_parse(path, "pre_tokenizer", v, &tok->pretok));
    if ((v = jget(root, "post_processor"))) STREE_TRY(parse_post(tok, "post_processor", v));
    if ((v = jget(root, "decoder"))) STREE_TRY(tk_dec_parse(path, "decoder", v, &tok->decoder));
    return parse_added(tok, added);
}

stree_status stree_tokenizer_load(const char *path, stree_tokenizer **out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tokenizer_load: path is NULL");
    struct stat sb;
    size_t pl = strlen(path);
    char *file = malloc(pl + 32);
    if (!file) return OOM();
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(file, pl + 32, "%s/tokenizer.json", path);
    else memcpy(file, path, pl + 1);
    stree_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        free(file);
        return OOM();
    }
    tok->path = file;
    cJSON *root = NULL;
    stree_status st = stree_json_load(file, &root);
    if (!st) st = load_root(tok, root);
    cJSON_Delete(root);
    if (st) {
        stree_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return STREE_OK;
}

int32_t stree_tokenizer_vocab_size(const stree_tokenizer *tok) { return tok ? tok->vocab_size : 0; }

int32_t stree_tokenizer_token_id(const stree_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    size_t n = strlen(token);
    int32_t id = tk_strmap_get(&tok->added_map, token, n);
    return id >= 0 ? id : tk_strmap_get(&tok->vocab, token, n);
}

/* ---------------------------------------------------------------- encode */
stree_status stree_tokenize(const stree_tokenizer *tok, const char *text, size_t len, int add_special, int32_t *out,
                            int32_t cap, int32_t *n_out) {
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!text && len) || cap < 0 || (!out && cap))
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_tokenize: NULL tokenizer, text, out or n_out, or cap < 0");
    tk_buf arena = {0};
    tk_pieces pieces = {0};
    tk_ids ids = {0};
    stree_status st = STREE_OK;
    if (tk_utf8_lossy(&arena, text ? text : "", len) || tk_buf_reserve(&arena, 0)) st = OOM();
    if (!st) st = tk_split_added(tok, &arena, arena.len, &pieces);
    if (!st) st = tk_pretokenize(tok->pretok, &arena, &pieces);
    if (!st && add_special)
        for (int i = 0; i < tok->post.n_before && !st; i++)
            if (tk_ids_push(&ids, tok->post.before[i])) st = OOM();
    for (size_t i = 0; i < pieces.n && !st; i++) {
        const tk_piece *p = &pieces.v[i];
        if (p->id >= 0) st = tk_ids_push(&ids, p->id) ? OOM() : STREE_OK;
        else st = tk_bpe_word(tok, arena.p + p->off, p->len, &ids);
    }
    if (!st && add_special)
        for (int i = 0; i < tok->post.n_after && !st; i++)
            if (tk_ids_push(&ids, tok->post.after[i])) st = OOM();
    if (!st) {
        if (ids.n > (size_t)INT32_MAX) {
            st = stree_fail(STREE_ERR_INVALID_ARG, "stree_tokenize: too many tokens");
        } else {
            *n_out = (int32_t)ids.n;
            if (ids.n > (size_t)cap)
                st = stree_fail(STREE_ERR_INVALID_ARG, "stree_tokenize: %zu tokens do not fit in cap %d", ids.n, cap);
            else if (ids.n)
                memcpy(out, ids.v, ids.n * sizeof *out);
        }
    }
    tk_buf_free(&arena);
    tk_pieces_free(&pieces);
    tk_ids_free(&ids);
    return st;
}
