/* Tokenizers against the Hugging Face `tokenizers` library: goldens from
 * tools/tokenizers/make_goldens.py (tests/fixtures/tokenizers/<name>/{tokenizer.json,golden.json}),
 * per string: encode without / with special tokens, decode, decode skipping special tokens,
 * decode(encode(s)) == s where the library is lossless, and streaming decode (chunks are valid
 * UTF-8 and concatenate to the full decode). Then the load errors and the API's edge cases. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config_json.h"
#include "stree.h"
#include "tests/helpers/golden.h"

/* ---------------------------------------------------------------- helpers */
static int utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) len = 1;
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) { len = 3; lo = 0xA0; }
        else if (c == 0xED) { len = 3; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) len = 3;
        else if (c == 0xF0) { len = 4; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) { len = 4; hi = 0x8F; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            unsigned d = u[i + k];
            unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (d < l || d > h) return 0;
        }
        i += len;
    }
    return 1;
}

static char *unhex(const char *hex, size_t *n) {
    size_t len = strlen(hex) / 2;
    char *out = malloc(len + 1);
    cr_assert_not_null(out);
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (char)v;
    }
    out[len] = '\0';
    *n = len;
    return out;
}

static int32_t *json_ids(const cJSON *arr, int32_t *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *v = malloc(((size_t)*n + 1) * sizeof *v);
    cr_assert_not_null(v);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next) v[i++] = (int32_t)e->valuedouble;
    return v;
}

static const char *fixture_file(const char *name, const char *file) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", fixture_dir(name), file);
    return buf;
}

static stree_tokenizer *load_fixture(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", fixture_dir(name));
    stree_tokenizer *tok = NULL;
    stree_status s = stree_tokenizer_load(dir, &tok);
    cr_assert_eq(s, STREE_OK, "loading %s: %s", dir, stree_last_error());
    return tok;
}

static void show(char *dst, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F) dst[o++] = (char)c;
        else o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
    }
    dst[o] = '\0';
}

/* decode(ids) and the streamed decode of the same ids against the golden text; returns failures */
static int check_decode(const char *name, const char *label, stree_tokenizer *tok, const int32_t *ids, int32_t n_ids,
                        int sp, const char *want, size_t want_len) {
    int fails = 0;
    size_t n = 0;
    char *out = malloc(want_len + 64);
    stree_status s = stree_detokenize(tok, ids, n_ids, sp, out, want_len + 64, &n);
    if (s != STREE_OK || n != want_len || memcmp(out, want, n)) {
        char g[200], w[200];
        show(g, sizeof g, out, s ? 0 : n);
        show(w, sizeof w, want, want_len);
        cr_log_error("%s '%s' decode(skip=%d): '%s' (%zu bytes), want '%s' (%zu): %s", name, label, sp, g, n, w,
                     want_len, s ? stree_last_error() : "");
        fails++;
    }
    /* streaming the same ids: valid chunks that add up to the full decode */
    stree_text_stream *st = NULL;
    cr_assert_eq(stree_text_stream_create(tok, sp, &st), STREE_OK);
    char *acc = malloc(want_len + 64);
    size_t acc_len = 0;
    int broken = 0, overflow = 0;
    for (int32_t i = 0; i <= n_ids; i++) {
        const char *chunk = NULL;
        stree_status ps = i < n_ids ? stree_text_stream_push(st, ids[i], &chunk) : stree_text_stream_flush(st, &chunk);
        cr_assert_eq(ps, STREE_OK, "%s", stree_last_error());
        size_t cl = strlen(chunk);
        if (!utf8_valid(chunk, cl)) broken = 1;
        if (acc_len + cl > want_len + 63) {
            overflow = 1;
        } else {
            memcpy(acc + acc_len, chunk, cl);
            acc_len += cl;
        }
    }
    /* chunks are NUL-terminated strings: a decoded NUL ends a chunk early, so compare only when the
     * text has none */
    if (memchr(want, 0, want_len) == NULL &&
        (broken || overflow || acc_len != want_len || memcmp(acc, want, acc_len))) {
        char g[200];
        show(g, sizeof g, acc, acc_len);
        cr_log_error("%s '%s' stream(skip=%d): '%s' (%zu bytes, valid=%d), want %zu bytes", name, label, sp, g,
                     acc_len, !broken, want_len);
        fails++;
    }
    stree_text_stream_free(st);
    free(acc);
    free(out);
    return fails;
}

/* Checks one golden case; returns the number of failed checks (each reported). */
static int check_case(const char *name, stree_tokenizer *tok, const cJSON *c, int byte_level) {
    int fails = 0;
    size_t in_len, dec_len, skip_len;
    char *input = unhex(cJSON_GetObjectItem(c, "input_hex")->valuestring, &in_len);
    /* decoded_hex absent: decode(ids) is the text; decoded_skip_hex absent: it equals decode(ids) */
    const cJSON *dh = cJSON_GetObjectItem(c, "decoded_hex"), *sh = cJSON_GetObjectItem(c, "decoded_skip_hex");
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    char *want_dec;
    if (dh) {
        want_dec = unhex(dh->valuestring, &dec_len);
    } else {
        dec_len = strlen(text);
        want_dec = malloc(dec_len + 1);
        memcpy(want_dec, text, dec_len + 1);
    }
    char *want_skip = sh ? unhex(sh->valuestring, &skip_len) : malloc(dec_len + 1);
    if (!sh) {
        memcpy(want_skip, want_dec, dec_len + 1);
        skip_len = dec_len;
    }
    int lossless = cJSON_IsTrue(cJSON_GetObjectItem(c, "lossless"));
    char label[200];
    show(label, sizeof label, input, in_len > 60 ? 60 : in_len);
    const char *keys[2] = {"ids", "ids_special"};
    int32_t *got[2] = {NULL, NULL};
    int32_t n_got[2] = {0, 0};
    for (int sp = 0; sp < 2; sp++) {
        int32_t n_want;
        int32_t *want = json_ids(cJSON_GetObjectItem(c, keys[sp]), &n_want);
        int32_t cap = n_want + 16, n = -1;
        got[sp] = malloc((size_t)cap * sizeof(int32_t));
        stree_status s = stree_tokenize(tok, input, in_len, sp, got[sp], cap, &n);
        n_got[sp] = n;
        if (s != STREE_OK) {
            cr_log_error("%s '%s': tokenize failed: %s", name, label, stree_last_error());
            fails++;
        } else if (n != n_want || memcmp(got[sp], want, (size_t)n * sizeof(int32_t))) {
            int at = 0;
            while (at < n && at < n_want && got[sp][at] == want[at]) at++;
            cr_log_error("%s '%s' %s: %d ids, want %d; first difference at %d: %d vs %d", name, label, keys[sp], n,
                         n_want, at, at < n ? got[sp][at] : -1, at < n_want ? want[at] : -1);
            fails++;
        }
        free(want);
    }
    /* decode of the golden ids (not ours, so decode is checked on its own) */
    for (int sp = 0; sp < 2; sp++) {
        int32_t n_ids;
        int32_t *ids = json_ids(cJSON_GetObjectItem(c, keys[sp]), &n_ids);
        fails += check_decode(name, label, tok, ids, n_ids, sp, sp ? want_skip : want_dec, sp ? skip_len : dec_len);
        free(ids);
    }
    /* round trip of our own ids: byte-level tokenizers give back the normalized text of any valid
     * UTF-8 input; the others where the library is lossless */
    int valid_input = utf8_valid(input, in_len);
    size_t norm_len;
    const cJSON *nh = cJSON_GetObjectItem(c, "normalized_hex");
    char *norm = unhex(nh ? nh->valuestring : cJSON_GetObjectItem(c, "input_hex")->valuestring, &norm_len);
    const char *ref = NULL;
    size_t ref_len = 0;
    if (byte_level && valid_input) {
        ref = norm;
        ref_len = norm_len;
    } else if (lossless) {
        ref = want_dec;
        ref_len = dec_len;
    }
    if (ref && n_got[0] >= 0) {
        char *out = malloc(ref_len * 3 + 64);
        size_t n = 0;
        stree_status s = stree_detokenize(tok, got[0], n_got[0], 0, out, ref_len * 3 + 64, &n);
        if (s != STREE_OK || n != ref_len || memcmp(out, ref, n)) {
            cr_log_error("%s '%s': decode(encode(s)) != s", name, label);
            fails++;
        }
        free(out);
    }
    free(norm);
    free(got[0]);
    free(got[1]);
    free(input);
    free(want_dec);
    free(want_skip);
    return fails;
}

static void check_fixture(const char *name, int byte_level) {
    stree_tokenizer *tok = load_fixture(name);
    cJSON *g = NULL;
    cr_assert_eq(stree_json_load(fixture_file(name, "golden.json"), &g), STREE_OK, "%s", stree_last_error());
    const cJSON *cases = cJSON_GetObjectItem(g, "cases");
    cr_assert(cJSON_GetArraySize(cases) >= 60, "%s: only %d cases", name, cJSON_GetArraySize(cases));
    int fails = 0, n = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n++) fails += check_case(name, tok, c, byte_level);
    const cJSON *dcases = cJSON_GetObjectItem(g, "decode_cases");
    cr_assert(cJSON_GetArraySize(dcases) >= 20, "%s: decode_cases missing", name);
    int k = 0;
    for (const cJSON *c = dcases->child; c; c = c->next, k++) {
        int32_t n_ids;
        int32_t *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n_ids);
        char label[32];
        snprintf(label, sizeof label, "decode_cases[%d]", k);
        for (int sp = 0; sp < 2; sp++) {
            size_t wl;
            char *want = unhex(cJSON_GetObjectItem(c, sp ? "decoded_skip_hex" : "decoded_hex")->valuestring, &wl);
            fails += check_decode(name, label, tok, ids, n_ids, sp, want, wl);
            free(want);
        }
        free(ids);
    }
    cr_expect_eq(stree_tokenizer_vocab_size(tok), (int32_t)cJSON_GetObjectItem(g, "vocab_size")->valuedouble,
                 "%s: vocab size", name);
    const cJSON *tids = cJSON_GetObjectItem(g, "token_ids");
    for (const cJSON *t = tids->child; t; t = t->next) {
        int32_t want = cJSON_IsNumber(t) ? (int32_t)t->valuedouble : -1;
        cr_expect_eq(stree_tokenizer_token_id(tok, t->string), want, "%s: token_id('%s')", name, t->string);
    }
    cr_expect_eq(fails, 0, "%s: %d failed checks over %d strings and %d id lists (see the log)", name, fails, n, k);
    cJSON_Delete(g);
    stree_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- goldens */
Test(tokenizer, gpt2) { check_fixture("tokenizers/gpt2", 1); }
Test(tokenizer, bytelevel_bpe) { check_fixture("tokenizers/bytelevel_bpe", 1); }
Test(tokenizer, metaspace_bpe) { check_fixture("tokenizers/metaspace_bpe", 0); }
Test(tokenizer, llama2_legacy) { check_fixture("tokenizers/llama2_legacy", 0); }
Test(tokenizer, metaspace_always) { check_fixture("tokenizers/metaspace_always", 0); }
Test(tokenizer, metaspace_never) { check_fixture("tokenizers/metaspace_never", 0); }
Test(tokenizer, split_behaviors) { check_fixture("tokenizers/split_behaviors", 0); }
Test(tokenizer, qwen2_style) { check_fixture("tokenizers/qwen2_style", 1); }
Test(tokenizer, no_decoder) { check_fixture("tokenizers/no_decoder", 0); }
Test(tokenizer, strip_decoders) { check_fixture("tokenizers/strip_decoders", 0); }
Test(tokenizer, bytelevel_strip) { check_fixture("tokenizers/bytelevel_strip", 0); }
Test(tokenizer, prepend_split_first) { check_fixture("tokenizers/prepend_split_first", 0); }
Test(tokenizer, regex_edges) { check_fixture("tokenizers/regex_edges", 0); }

/* ---------------------------------------------------------------- API edges */
Test(tokenizer, file_path_and_small_buffers) {
    stree_tokenizer *tok = NULL;
    cr_assert_eq(stree_tokenizer_load(fixture_file("tokenizers/gpt2", "tokenizer.json"), &tok), STREE_OK, "%s",
                 stree_last_error());
    cr_expect_eq(stree_tokenizer_vocab_size(tok), 50257);
    cr_expect_eq(stree_tokenizer_token_id(tok, "<|endoftext|>"), 50256);
    int32_t ids[4];
    int32_t n = -1;
    const char *text = "Hello world, hello world";
    cr_expect_eq(stree_tokenize(tok, text, strlen(text), 0, ids, 2, &n), STREE_ERR_INVALID_ARG);
    cr_expect_gt(n, 2, "the count is reported when cap is too small");
    cr_expect_eq(stree_tokenize(tok, text, strlen(text), 0, NULL, 0, &n), STREE_ERR_INVALID_ARG);
    int32_t need = n;
    int32_t *all = malloc((size_t)need * sizeof *all);
    cr_expect_eq(stree_tokenize(tok, text, strlen(text), 0, all, need, &n), STREE_OK);
    char small[4];
    size_t len = 0;
    cr_expect_eq(stree_detokenize(tok, all, need, 0, small, sizeof small, &len), STREE_ERR_INVALID_ARG);
    cr_expect_eq(len, strlen(text));
    cr_expect_eq(small[0], '\0');
    char big[64];
    cr_expect_eq(stree_detokenize(tok, all, need, 0, big, sizeof big, &len), STREE_OK);
    cr_expect_str_eq(big, text);
    int32_t bad[2] = {15496, -3};
    cr_expect_eq(stree_detokenize(tok, bad, 2, 0, big, sizeof big, &len), STREE_ERR_INVALID_ARG);
    int32_t unknown[3] = {15496, 999999, 995}; /* HF's decode drops ids it has no token for */
    cr_expect_eq(stree_detokenize(tok, unknown, 3, 0, big, sizeof big, &len), STREE_OK);
    cr_expect_str_eq(big, "Hello world");
    cr_expect_eq(stree_tokenize(NULL, text, 1, 0, ids, 4, &n), STREE_ERR_INVALID_ARG);
    cr_expect_eq(stree_tokenize(tok, NULL, 3, 0, ids, 4, &n), STREE_ERR_INVALID_ARG);
    cr_expect_eq(stree_tokenize(tok, NULL, 0, 0, ids, 4, &n), STREE_OK);
    cr_expect_eq(n, 0);
    free(all);
    stree_tokenizer_free(tok);
    stree_tokenizer_free(NULL);
}

Test(tokenizer, stream_holds_incomplete_characters) {
    stree_tokenizer *tok = load_fixture("tokenizers/gpt2");
    /* GPT-2 splits the 4 bytes of U+1F600 over several byte-level tokens */
    const char *emoji = "\xF0\x9F\x98\x80";
    int32_t ids[8], n = 0;
    cr_assert_eq(stree_tokenize(tok, emoji, 4, 0, ids, 8, &n), STREE_OK);
    cr_assert_geq(n, 2, "U+1F600 should take several GPT-2 tokens");
    stree_text_stream *s = NULL;
    cr_assert_eq(stree_text_stream_create(tok, 0, &s), STREE_OK);
    const char *chunk;
    size_t total = 0;
    char acc[32] = {0};
    for (int i = 0; i < n; i++) {
        cr_assert_eq(stree_text_stream_push(s, ids[i], &chunk), STREE_OK);
        cr_expect(utf8_valid(chunk, strlen(chunk)));
        memcpy(acc + total, chunk, strlen(chunk));
        total += strlen(chunk);
        if (i + 1 < n) cr_expect_eq(strlen(chunk), 0, "an incomplete character is held back");
    }
    cr_assert_eq(stree_text_stream_flush(s, &chunk), STREE_OK);
    cr_expect_str_eq(chunk, "");
    cr_expect_str_eq(acc, emoji);
    /* a dangling tail becomes U+FFFD at the flush */
    {
        cr_assert_eq(stree_text_stream_push(s, ids[0], &chunk), STREE_OK);
        cr_expect_str_eq(chunk, "");
        cr_assert_eq(stree_text_stream_flush(s, &chunk), STREE_OK);
        cr_expect_str_eq(chunk, "\xEF\xBF\xBD");
    }
    cr_expect_eq(stree_text_stream_push(s, -1, &chunk), STREE_ERR_INVALID_ARG);
    stree_text_stream_free(s);
    stree_tokenizer_free(tok);
}

/* Strip with a trailing cut on fused text: streaming holds the trailing run back until it is known
 * not to be the end (decodes checked against tokenizers 0.23.3 by hand: [a, " "] -> "a",
 * [a, " ", b] -> "a b", [a, "  "] -> "a ", [" ", a, "  ", " "] -> " a  "; on an empty list the
 * library panics, here it is ""). */
Test(tokenizer, stream_fused_trailing_strip) {
    const char *dir = temp_dir();
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    cr_assert_eq(write_text(d, "tokenizer.json",
                            "{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, {\"type\": "
                            "\"Strip\", \"content\": \" \", \"start\": 0, \"stop\": 1}]}, \"model\": {\"type\": \"BPE\", "
                            "\"vocab\": {\"a\": 0, \" \": 1, \"b\": 2, \"  \": 3}, \"merges\": []}}"),
                 0);
    stree_tokenizer *tok = NULL;
    cr_assert_eq(stree_tokenizer_load(d, &tok), STREE_OK, "%s", stree_last_error());
    static const int32_t lists[4][4] = {{0, 1}, {0, 1, 2}, {0, 3}, {1, 0, 3, 1}};
    static const int lens[4] = {2, 3, 2, 4};
    static const char *want[4] = {"a", "a b", "a ", " a  "};
    static const char *chunks[4][5] = {{"a", "", ""}, {"a", "", " b", ""}, {"a", "", " "}, {"", " a", "", "", "  "}};
    for (int k = 0; k < 4; k++) {
        char out[16];
        size_t n;
        cr_expect_eq(stree_detokenize(tok, lists[k], lens[k], 0, out, sizeof out, &n), STREE_OK);
        cr_expect_str_eq(out, want[k]);
        stree_text_stream *s = NULL;
        cr_assert_eq(stree_text_stream_create(tok, 0, &s), STREE_OK);
        for (int i = 0; i <= lens[k]; i++) {
            const char *c;
            cr_assert_eq(i < lens[k] ? stree_text_stream_push(s, lists[k][i], &c) : stree_text_stream_flush(s, &c),
                         STREE_OK);
            cr_expect_str_eq(c, chunks[k][i], "list %d step %d", k, i);
        }
        stree_text_stream_free(s);
    }
    char out[4];
    size_t n = 9;
    cr_expect_eq(stree_detokenize(tok, NULL, 0, 0, out, sizeof out, &n), STREE_OK);
    cr_expect_eq(n, 0);
    stree_tokenizer_free(tok);
    temp_dir_remove(d);
}

Test(tokenizer, invalid_utf8_is_replaced) {
    stree_tokenizer *tok = load_fixture("tokenizers/gpt2");
    const char raw[] = "ab\xFF" "c";
    const char fixed[] = "ab\xEF\xBF\xBD" "c";
    int32_t a[16], b[16], na = 0, nb = 0;
    cr_assert_eq(stree_tokenize(tok, raw, sizeof raw - 1, 0, a, 16, &na), STREE_OK);
    cr_assert_eq(stree_tokenize(tok, fixed, sizeof fixed - 1, 0, b, 16, &nb), STREE_OK);
    cr_expect_eq(na, nb);
    cr_expect_arr_eq(a, b, (size_t)na * sizeof(int32_t));
    stree_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- load errors */
static void expect_error(const char *json, stree_status want, const char *needle1, const char *needle2) {
    const char *dir = temp_dir();
    cr_assert_not_null(dir);
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    cr_assert_eq(write_text(d, "tokenizer.json", json), 0);
    stree_tokenizer *tok = (stree_tokenizer *)0x1;
    stree_status s = stree_tokenizer_load(d, &tok);
    cr_expect_eq(s, want, "status %s, want %s: %s", stree_status_str(s), stree_status_str(want), stree_last_error());
    cr_expect_null(tok);
    cr_expect(strstr(stree_last_error(), "tokenizer.json") != NULL, "no file name in: %s", stree_last_error());
    cr_expect(strstr(stree_last_error(), needle1) != NULL, "'%s' not in: %s", needle1, stree_last_error());
    if (needle2) cr_expect(strstr(stree_last_error(), needle2) != NULL, "'%s' not in: %s", needle2, stree_last_error());
    temp_dir_remove(d);
}

#define MODEL_OK "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}"

Test(tokenizer_errors, missing_file) {
    stree_tokenizer *tok = (stree_tokenizer *)0x1;
    stree_status s = stree_tokenizer_load("/nonexistent/stree/tokenizer.json", &tok);
    cr_expect_eq(s, STREE_ERR_IO, "%s", stree_status_str(s));
    cr_expect_null(tok);
    cr_expect(strstr(stree_last_error(), "/nonexistent/stree/tokenizer.json") != NULL, "%s", stree_last_error());
    s = stree_tokenizer_load("/nonexistent/stree", &tok);
    cr_expect_eq(s, STREE_ERR_IO);
}

Test(tokenizer_errors, bad_json) {
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,,}", STREE_ERR_FORMAT, "JSON", NULL);
}

Test(tokenizer_errors, valid_minimal_file_loads) {
    const char *dir = temp_dir();
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    cr_assert_eq(write_text(d, "tokenizer.json", "{" MODEL_OK "}"), 0);
    stree_tokenizer *tok = NULL;
    cr_assert_eq(stree_tokenizer_load(d, &tok), STREE_OK, "%s", stree_last_error());
    int32_t ids[4], n = 0;
    cr_expect_eq(stree_tokenize(tok, "abab", 4, 1, ids, 4, &n), STREE_OK);
    cr_expect_eq(n, 2);
    cr_expect_eq(ids[0], 2);
    char out[16];
    size_t len;
    cr_expect_eq(stree_detokenize(tok, ids, n, 0, out, sizeof out, &len), STREE_OK);
    cr_expect_str_eq(out, "ab ab", "no decoder: tokens joined with spaces");
    stree_tokenizer_free(tok);
    temp_dir_remove(d);
}

Test(tokenizer_errors, unsupported_model) {
    expect_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\"}}",
                 STREE_ERR_UNSUPPORTED, "model.type", "WordPiece");
}

Test(tokenizer_errors, unsupported_pre_tokenizer) {
    expect_error("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, "
                 "{\"type\": \"BertPreTokenizer\"}]}, " MODEL_OK "}",
                 STREE_ERR_UNSUPPORTED, "pre_tokenizer.pretokenizers[1].type", "BertPreTokenizer");
}

Test(tokenizer_errors, unsupported_normalizer_decoder_post) {
    expect_error("{\"normalizer\": {\"type\": \"BertNormalizer\"}, " MODEL_OK "}", STREE_ERR_UNSUPPORTED,
                 "normalizer.type", "BertNormalizer");
    expect_error("{\"decoder\": {\"type\": \"WordPiece\"}, " MODEL_OK "}", STREE_ERR_UNSUPPORTED, "decoder.type",
                 "WordPiece");
    expect_error("{\"post_processor\": {\"type\": \"RobertaProcessing\"}, " MODEL_OK "}", STREE_ERR_UNSUPPORTED,
                 "post_processor.type", "RobertaProcessing");
    expect_error("{\"truncation\": {\"max_length\": 8}, " MODEL_OK "}", STREE_ERR_UNSUPPORTED, "truncation", NULL);
}

Test(tokenizer_errors, merges_with_unknown_tokens) {
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", "
                 "\"a zz\"]}}",
                 STREE_ERR_FORMAT, "model.merges[1]", "zz");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [[\"a\", \"b\"]]}}",
                 STREE_ERR_FORMAT, "model.merges[0]", "ab");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"ab\"]}}",
                 STREE_ERR_FORMAT, "model.merges[0]", NULL);
}

Test(tokenizer_errors, bad_fields) {
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", STREE_ERR_FORMAT,
                 "model.vocab", NULL);
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": \"<unk>\"}}",
                 STREE_ERR_FORMAT, "model.unk_token", NULL);
    expect_error("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": "
                 "\"Isolated\"}, " MODEL_OK "}",
                 STREE_ERR_FORMAT, "pre_tokenizer.pattern", NULL);
    expect_error("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \"x\"}, \"behavior\": "
                 "\"Sideways\"}, " MODEL_OK "}",
                 STREE_ERR_FORMAT, "pre_tokenizer.behavior", "Sideways");
    expect_error("{\"added_tokens\": [{\"content\": \"<x>\"}], " MODEL_OK "}", STREE_ERR_FORMAT, "added_tokens[0].id",
                 NULL);
    expect_error("[1, 2]", STREE_ERR_FORMAT, "top level", NULL);
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}",
                 STREE_ERR_UNSUPPORTED, "model.dropout", NULL);
}
