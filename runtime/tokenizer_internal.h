/* Tokenizer internals shared by tokenizer*.c: byte buffers, hash maps, UTF-8 helpers, the pipeline
 * components parsed from tokenizer.json (normalizers, pre-tokenizers, BPE model, post-processor,
 * decoders) and the piece lists an encode call passes between them.
 *
 * Invalid UTF-8 input: the `tokenizers` library takes Python str, so the C contract is that
 * invalid bytes are first replaced by U+FFFD exactly like Python's
 * bytes.decode('utf-8', errors='replace') (one U+FFFD per maximal invalid subpart), then encoded. */
#ifndef STREE_RUNTIME_TOKENIZER_INTERNAL_H
#define STREE_RUNTIME_TOKENIZER_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "stree.h"

/* ---------------------------------------------------------------- byte buffers */
typedef struct tk_buf {
    char *p;
    size_t len, cap;
} tk_buf;

int tk_buf_reserve(tk_buf *b, size_t extra); /* 0, or -1 when out of memory */
int tk_buf_put(tk_buf *b, const void *src, size_t n);
int tk_buf_putc(tk_buf *b, char c);
void tk_buf_free(tk_buf *b);

/* ---------------------------------------------------------------- hash maps */
/* bytes -> int32 (owns copies of its keys) */
typedef struct tk_strmap {
    struct tk_strmap_slot *slots;
    size_t cap, count;
    tk_buf keys;
} tk_strmap;

int tk_strmap_init(tk_strmap *m, size_t expect);
void tk_strmap_free(tk_strmap *m);
/* Inserts or overwrites; 0, or -1 when out of memory. */
int tk_strmap_set(tk_strmap *m, const char *key, size_t len, int32_t val);
/* The value, or -1 when absent. */
int32_t tk_strmap_get(const tk_strmap *m, const char *key, size_t len);

/* (left id, right id) -> (rank, merged id) */
typedef struct tk_mergemap {
    struct tk_merge_slot *slots;
    size_t cap, count;
} tk_mergemap;

int tk_mergemap_init(tk_mergemap *m, size_t expect);
void tk_mergemap_free(tk_mergemap *m);
int tk_mergemap_set(tk_mergemap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* 1 when present (rank / merged written), else 0 */
int tk_mergemap_get(const tk_mergemap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);

/* ---------------------------------------------------------------- UTF-8 */
/* Length of the valid UTF-8 character at s[0..n), or 0 when the bytes there are not one. */
size_t tk_utf8_valid_len(const unsigned char *s, size_t n);
/* Decodes the valid character at s (its length from tk_utf8_valid_len). */
uint32_t tk_utf8_decode(const unsigned char *s, size_t len);
/* Encodes cp into out[4]; returns the length. */
size_t tk_utf8_encode(uint32_t cp, char *out);
/* Appends src with every maximal invalid subpart replaced by U+FFFD (Python errors='replace' and
 * Rust's String::from_utf8_lossy agree). 0, or -1 when out of memory. */
int tk_utf8_lossy(tk_buf *out, const char *src, size_t n);
/* Length of a trailing incomplete (but so far valid) UTF-8 sequence at the end of s[0..n). */
size_t tk_utf8_incomplete_tail(const char *s, size_t n);
/* 1 when s[0..n) is valid UTF-8 */
int tk_utf8_is_valid(const char *s, size_t n);

/* Unicode predicates, as Rust's char methods define them */
int tk_is_whitespace(uint32_t cp); /* White_Space */
int tk_is_numeric(uint32_t cp);    /* char::is_numeric: Nd, Nl, No */
int tk_is_word(uint32_t cp);       /* the regex crate's \w */

/* ---------------------------------------------------------------- regexes (PCRE2) */
typedef struct tk_regex tk_regex;
/* literal: the pattern is a plain string (HF's String patterns). On failure *err gets a message. */
tk_regex *tk_regex_compile(const char *pattern, size_t len, int literal, char *err, size_t err_cap);
void tk_regex_free(tk_regex *re);

/* One segment of a find_matches result: [start, end) and whether it is a match. */
typedef struct tk_seg {
    size_t start, end;
    int is_match;
} tk_seg;

typedef struct tk_segs {
    tk_seg *v;
    size_t n, cap;
} tk_segs;

int tk_segs_push(tk_segs *s, size_t start, size_t end, int is_match);
void tk_segs_free(tk_segs *s);
/* HF's Pattern::find_matches for a regex (Oniguruma's iteration: an empty match right after the
 * previous match is skipped by one character). Covers the whole of s. 0, or -1 (out of memory /
 * match error). */
int tk_regex_find_matches(const tk_regex *re, const char *s, size_t n, tk_segs *out);

/* ---------------------------------------------------------------- pipeline components */
typedef enum tk_norm_type {
    TK_NORM_SEQUENCE,
    TK_NORM_NFC,
    TK_NORM_NFD,
    TK_NORM_NFKC,
    TK_NORM_NFKD,
    TK_NORM_PREPEND,
    TK_NORM_REPLACE,
    TK_NORM_LOWERCASE,
} tk_norm_type;

typedef struct tk_norm {
    tk_norm_type type;
    struct tk_norm **kids;
    int n_kids;
    char *str; /* Prepend: the prefix; Replace: the content */
    size_t str_len;
    tk_regex *re; /* Replace */
} tk_norm;

typedef enum tk_split_behavior {
    TK_SPLIT_REMOVED,
    TK_SPLIT_ISOLATED,
    TK_SPLIT_MERGED_PREV,
    TK_SPLIT_MERGED_NEXT,
    TK_SPLIT_CONTIGUOUS,
} tk_split_behavior;

typedef enum tk_pretok_type {
    TK_PRE_SEQUENCE,
    TK_PRE_BYTELEVEL,
    TK_PRE_SPLIT,
    TK_PRE_METASPACE,
    TK_PRE_DIGITS,
} tk_pretok_type;

typedef enum tk_prepend_scheme { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER } tk_prepend_scheme;

typedef struct tk_pretok {
    tk_pretok_type type;
    struct tk_pretok **kids;
    int n_kids;
    int add_prefix_space, use_regex; /* ByteLevel */
    tk_regex *re;                     /* Split pattern; ByteLevel's GPT-2 regex */
    tk_split_behavior behavior;       /* Split */
    int invert;                       /* Split */
    char repl[5];                     /* Metaspace replacement character (UTF-8) */
    size_t repl_len;
    tk_prepend_scheme prepend;        /* Metaspace */
    int split;                        /* Metaspace */
    int individual_digits;            /* Digits */
} tk_pretok;

typedef enum tk_dec_type {
    TK_DEC_SEQUENCE,
    TK_DEC_BYTELEVEL,
    TK_DEC_METASPACE,
    TK_DEC_REPLACE,
    TK_DEC_BYTEFALLBACK,
    TK_DEC_FUSE,
    TK_DEC_STRIP,
} tk_dec_type;

typedef struct tk_dec {
    tk_dec_type type;
    struct tk_dec **kids;
    int n_kids;
    tk_regex *re;           /* Replace */
    char *content;          /* Replace: the replacement */
    size_t content_len;
    uint32_t strip_char;    /* Strip */
    int strip_start, strip_stop;
    uint32_t repl_cp;       /* Metaspace replacement character */
    tk_prepend_scheme prepend;
} tk_dec;

/* Post-processor, flattened: the ids added before / after the sequence (TemplateProcessing single;
 * ByteLevel adds none; a Sequence concatenates). */
typedef struct tk_post {
    int32_t *before, *after;
    int n_before, n_after;
} tk_post;

typedef struct tk_added {
    char *content; /* as written in tokenizer.json */
    size_t len;
    char *match;   /* what is searched: content, or its normalized form when normalized */
    size_t match_len;
    char *decode_as; /* what decode() sees: the normalized form for normalized tokens (HF's cache) */
    size_t decode_len;
    int32_t id;
    int single_word, lstrip, rstrip, normalized, special;
} tk_added;

struct stree_tokenizer {
    char *path; /* for messages */
    /* BPE model */
    tk_strmap vocab;      /* token -> id */
    tk_mergemap merges;   /* (a, b) -> (rank, merged) */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;       /* -1: no unk token */
    int32_t byte_ids[256]; /* <0xXX> ids, -1 when absent */
    /* id -> string (model tokens; added tokens override, as HF's decode looks them up first) */
    char **id_str;
    size_t *id_len;
    uint8_t *id_special; /* 1 when the id's string is a special token's content */
    int32_t n_ids;       /* 1 + the largest id */
    int32_t vocab_size;  /* distinct token strings (len(get_vocab(with_added_tokens=True))) */
    /* added tokens */
    tk_added *added;
    int n_added;
    tk_strmap added_map;  /* content -> id */
    tk_strmap special_set; /* content of special tokens */
    /* per pass (0: tokens matched in the raw text, 1: normalized tokens matched after the
     * normalizer): indices into `added` ordered by first byte, longest first; order[p][first[p][b] ..
     * first[p][b+1]) are those starting with byte b */
    int32_t *added_order[2];
    int32_t added_first[2][257];
    /* pipeline */
    tk_norm *normalizer;
    tk_pretok *pretok;
    tk_post post;
    tk_dec *decoder;
};

/* ---------------------------------------------------------------- encode pieces */
/* A piece of the text between pipeline stages: arena[off, off+len); `id` >= 0 for an added token
 * (never split again); zlen: how many of its first bytes HF aligns to offset 0 of the original
 * text (0: the piece does not start there). Metaspace's prepend_scheme "first" prepends only to
 * pieces with zlen > 0. The bytes aligned to offset 0 always form a prefix: the first character,
 * what was prepended or replaced for it, its decomposition. */
typedef struct tk_piece {
    size_t off, len;
    int32_t id;
    size_t zlen;
} tk_piece;

typedef struct tk_pieces {
    tk_piece *v;
    size_t n, cap;
} tk_pieces;

int tk_pieces_push(tk_pieces *p, size_t off, size_t len, int32_t id, size_t zlen);
void tk_pieces_free(tk_pieces *p);

typedef struct tk_ids {
    int32_t *v;
    size_t n, cap;
} tk_ids;

int tk_ids_push(tk_ids *ids, int32_t id);
void tk_ids_free(tk_ids *ids);

/* ---------------------------------------------------------------- stages */
/* Parsers: `what` names the field ("normalizer", "pre_tokenizer.pretokenizers[1]") for messages. */
stree_status tk_norm_parse(const char *path, const char *what, const cJSON *j, tk_norm **out);
void tk_norm_free(tk_norm *n);
stree_status tk_pretok_parse(const char *path, const char *what, const cJSON *j, tk_pretok **out);
void tk_pretok_free(tk_pretok *p);
stree_status tk_dec_parse(const char *path, const char *what, const cJSON *j, tk_dec **out);
void tk_dec_free(tk_dec *d);

/* Appends the normalization of s[0..n) to out. zlen (may be NULL): in, the bytes of s aligned to
 * original offset 0; out, those of the output (HF aligns a replacement to the last character it
 * replaces, a prepended string to the first character). */
stree_status tk_normalize(const tk_norm *norm, const char *s, size_t n, tk_buf *out, size_t *zlen);
/* Splits the text on the added tokens (both passes, normalizing between them): arena holds the
 * text at [0, text_len) on entry; pieces receives the result. */
stree_status tk_split_added(const stree_tokenizer *tok, tk_buf *arena, size_t text_len, tk_pieces *pieces);
/* Runs the pre-tokenizer over the pieces (added-token pieces pass through). */
stree_status tk_pretokenize(const tk_pretok *pre, tk_buf *arena, tk_pieces *pieces);
/* BPE over one pre-tokenized word; appends ids. */
stree_status tk_bpe_word(const stree_tokenizer *tok, const char *w, size_t n, tk_ids *out);

/* Decodes tokens (strings) to text. stream_tail: the list continues an earlier one (index 0 is not
 * the first token, a leading Strip is done). fused_strip_hold receives the character whose trailing
 * run must be held back while streaming (a Strip with stop > 0 over the fused text), or 0. *bf_open
 * is set when the last tokens are byte-fallback bytes that a later byte token could join.
 * out receives raw bytes: the final lossy UTF-8 conversion is left to the caller. */
typedef struct tk_dec_opts {
    int stream_tail;  /* in */
    int streaming;    /* in: leave the trailing Strip to the end */
    uint32_t hold_char; /* out */
    int bf_open;      /* out */
} tk_dec_opts;

stree_status tk_decode_tokens(const stree_tokenizer *tok, const char *const *strs, const size_t *lens, size_t n,
                              tk_dec_opts *opts, tk_buf *out);

#endif
