/* safetensors loader: round trips through small files written here, sharded indexes, and one test per
 * malformed input asserting the status and that the message names the file and tensor. */
#define _XOPEN_SOURCE 700

#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "tests/helpers/golden.h"

/* ---------------------------------------------------------------- temp dir + writers */
static char tmpdir[PATH_MAX];

static void setup(void) {
    const char *d = temp_dir();
    cr_assert_not_null(d, "mkdtemp failed");
    snprintf(tmpdir, sizeof tmpdir, "%s", d);
}

static void teardown(void) { temp_dir_remove(tmpdir); }

TestSuite(safetensors, .init = setup, .fini = teardown);

/* Path of `name` inside the temp dir (a few rotating buffers). */
static const char *tp(const char *name) {
    static char bufs[8][PATH_MAX];
    static int at;
    char *b = bufs[at++ % 8];
    int w = snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
    cr_assert(w > 0 && w < PATH_MAX, "path too long: %s", name);
    return b;
}

static void mkdir_in(const char *name) { cr_assert_eq(mkdir(tp(name), 0700), 0, "mkdir %s", name); }

static void write_bytes(const char *name, const void *data, size_t len) {
    FILE *f = fopen(tp(name), "wb");
    cr_assert_not_null(f, "cannot write %s", name);
    if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* A safetensors file: u64 LE header length, the header (padded with `pad` spaces), the data. The length
 * written is `hlen_override` when nonzero. */
static void write_st_ex(const char *name, const char *header, size_t pad, const void *data, size_t data_len,
                        uint64_t hlen_override) {
    size_t hl = strlen(header) + pad;
    size_t total = 8 + hl + data_len;
    uint8_t *buf = malloc(total);
    cr_assert_not_null(buf);
    uint64_t n = hlen_override ? hlen_override : hl;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 8, header, strlen(header));
    memset(buf + 8 + strlen(header), ' ', pad);
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    write_bytes(name, buf, total);
    free(buf);
}

static void write_st(const char *name, const char *header, const void *data, size_t data_len) {
    write_st_ex(name, header, 0, data, data_len, 0);
}

static void put_f32(uint8_t *p, float v) { memcpy(p, &v, 4); } /* tests assume a little-endian host */
static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Open must fail with `status`, leave *out NULL, and the message must contain each non-NULL needle. */
static void expect_fail(const char *path, stree_status status, const char *n1, const char *n2, const char *n3) {
    stree_checkpoint *c = (stree_checkpoint *)(uintptr_t)1;
    stree_status s = stree_checkpoint_open(path, &c);
    const char *msg = stree_last_error();
    cr_log_info("%s: %s", stree_status_str(s), msg); /* shown with --verbose */
    cr_assert_eq(s, status, "status %s, want %s (message: %s)", stree_status_str(s), stree_status_str(status), msg);
    cr_assert_null(c, "*out must be NULL on failure");
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i]) cr_assert_not_null(strstr(msg, needles[i]), "message lacks \"%s\": %s", needles[i], msg);
}

static stree_checkpoint *open_ok(const char *path) {
    stree_checkpoint *c = NULL;
    stree_status s = stree_checkpoint_open(path, &c);
    cr_assert_eq(s, STREE_OK, "open %s: %s: %s", path, stree_status_str(s), stree_last_error());
    cr_assert_not_null(c);
    return c;
}

#define T1 "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

/* ---------------------------------------------------------------- valid files */
/* data: c.bf16 [0,6) | a.f32 [6,22) (unaligned) | b.f16 [22,38) | d.i64 [38,46) | e.empty [46,46) | f.i32 [46,54) */
static const char *rt_header =
    "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"not a tensor\"},"
    "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
    "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[6,22]},"
    "\"b.f16\":{\"shape\":[8],\"dtype\":\"F16\",\"data_offsets\":[22,38]},"
    "\"e.empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[46,46]},"
    "\"f.i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[46,54]},"
    "\"d.i64\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[38,46]}}";

static const float rt_f32[4] = {1.5f, -2.25f, 3.0e-3f, 1.0e30f};
static const uint16_t rt_f16[8] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x8001, 0x7C00, 0x7E00, 0x3555};
static const uint16_t rt_bf16[3] = {0x3F80, 0xC060, 0x8000};

static void write_roundtrip(const char *name) {
    uint8_t d[54];
    memset(d, 0xAB, sizeof d);
    for (int i = 0; i < 3; i++) put_u16(d + 2 * i, rt_bf16[i]);
    for (int i = 0; i < 4; i++) put_f32(d + 6 + 4 * i, rt_f32[i]);
    for (int i = 0; i < 8; i++) put_u16(d + 22 + 2 * i, rt_f16[i]);
    int64_t v64 = 42;
    memcpy(d + 38, &v64, 8);
    int32_t v32[2] = {7, -1};
    memcpy(d + 46, v32, 8);
    write_st_ex(name, rt_header, 13, d, sizeof d, 0); /* trailing-space padding is allowed */
}

Test(safetensors, roundtrip_single_file) {
    write_roundtrip("model.safetensors");
    const char *path = tp("model.safetensors");
    stree_checkpoint *c = open_ok(path);
    cr_assert_str_eq(stree_checkpoint_path(c), path);
    cr_assert_eq(stree_checkpoint_n_tensors(c), 6, "__metadata__ must not count as a tensor");

    /* iteration is in name order */
    static const char *names[6] = {"a.f32", "b.f16", "c.bf16", "d.i64", "e.empty", "f.i32"};
    for (int i = 0; i < 6; i++) cr_assert_str_eq(stree_checkpoint_tensor(c, i)->name, names[i]);
    cr_assert_null(stree_checkpoint_tensor(c, 6));
    cr_assert_null(stree_checkpoint_tensor(c, -1));
    cr_assert_null(stree_checkpoint_find(c, "__metadata__"));
    cr_assert_null(stree_checkpoint_find(c, "missing"));
    cr_assert_null(stree_checkpoint_find(c, "a.f3"));

    const stree_st_tensor *a = stree_checkpoint_find(c, "a.f32");
    cr_assert_not_null(a);
    cr_assert_eq(a->dtype, STREE_DTYPE_F32);
    cr_assert_str_eq(a->dtype_name, "F32");
    cr_assert_str_eq(a->file, path);
    cr_assert_eq(a->ndim, 2);
    cr_assert_eq(a->shape[0], 2);
    cr_assert_eq(a->shape[1], 2);
    cr_assert_eq(a->n_elements, 4);
    cr_assert_eq(a->n_bytes, 16);
    float f[8];
    cr_assert_eq(stree_st_tensor_to_f32(a, f), STREE_OK);
    for (int i = 0; i < 4; i++) cr_assert_eq(f[i], rt_f32[i], "a[%d] = %g", i, (double)f[i]);

    const stree_st_tensor *b = stree_checkpoint_find(c, "b.f16");
    cr_assert_not_null(b);
    cr_assert_eq(b->dtype, STREE_DTYPE_F16);
    cr_assert_eq(b->n_elements, 8);
    cr_assert_eq(b->n_bytes, 16);
    cr_assert_eq(stree_st_tensor_to_f32(b, f), STREE_OK);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -2.0f);
    cr_assert_eq(f[2], ldexpf(1.0f, -24), "smallest subnormal: %a", (double)f[2]);
    cr_assert_eq(f[3], 1023.0f * ldexpf(1.0f, -24), "largest subnormal: %a", (double)f[3]);
    cr_assert_eq(f[4], -ldexpf(1.0f, -24), "negative subnormal: %a", (double)f[4]);
    cr_assert(isinf(f[5]) && f[5] > 0);
    cr_assert(isnan(f[6]));
    cr_assert_eq(f[7], 0.333251953125f);

    const stree_st_tensor *cb = stree_checkpoint_find(c, "c.bf16");
    cr_assert_not_null(cb);
    cr_assert_eq(cb->dtype, STREE_DTYPE_BF16);
    cr_assert_eq(stree_st_tensor_to_f32(cb, f), STREE_OK);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -3.5f);
    cr_assert(f[2] == 0.0f && signbit(f[2]), "BF16 0x8000 is -0.0");

    const stree_st_tensor *d = stree_checkpoint_find(c, "d.i64");
    cr_assert_not_null(d);
    cr_assert_eq(d->dtype, STREE_DTYPE_OTHER);
    cr_assert_str_eq(d->dtype_name, "I64");
    cr_assert_eq(d->ndim, 0);
    cr_assert_eq(d->n_elements, 1, "a scalar has one element");
    cr_assert_eq(d->n_bytes, 8);
    int64_t v64;
    memcpy(&v64, d->data, 8);
    cr_assert_eq(v64, 42);
    cr_assert_eq(stree_st_tensor_to_f32(d, f), STREE_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(stree_last_error(), "'d.i64'"), "%s", stree_last_error());
    cr_assert_not_null(strstr(stree_last_error(), "I64"), "%s", stree_last_error());

    const stree_st_tensor *e = stree_checkpoint_find(c, "e.empty");
    cr_assert_not_null(e);
    cr_assert_eq(e->n_elements, 0);
    cr_assert_eq(e->n_bytes, 0);
    cr_assert_eq(e->shape[0], 0);
    cr_assert_eq(e->shape[1], 3);
    cr_assert_eq(stree_st_tensor_to_f32(e, NULL), STREE_OK);

    const stree_st_tensor *i32 = stree_checkpoint_find(c, "f.i32");
    cr_assert_not_null(i32);
    cr_assert_eq(i32->dtype, STREE_DTYPE_I32);
    int32_t v32[2];
    memcpy(v32, i32->data, 8);
    cr_assert_eq(v32[0], 7);
    cr_assert_eq(v32[1], -1);
    cr_assert_eq(stree_st_tensor_to_f32(i32, f), STREE_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(stree_last_error(), "'f.i32'"), "%s", stree_last_error());

    stree_checkpoint_close(c);
}

Test(safetensors, directory_with_model_safetensors) {
    mkdir_in("ckpt");
    write_roundtrip("ckpt/model.safetensors");
    stree_checkpoint *c = open_ok(tp("ckpt"));
    cr_assert_str_eq(stree_checkpoint_path(c), tp("ckpt"));
    cr_assert_eq(stree_checkpoint_n_tensors(c), 6);
    const stree_st_tensor *a = stree_checkpoint_find(c, "a.f32");
    cr_assert_not_null(a);
    cr_assert_not_null(strstr(a->file, "ckpt/model.safetensors"), "%s", a->file);
    stree_checkpoint_close(c);
}

Test(safetensors, empty_header_no_tensors) {
    write_st("e.safetensors", "{}", NULL, 0);
    stree_checkpoint *c = open_ok(tp("e.safetensors"));
    cr_assert_eq(stree_checkpoint_n_tensors(c), 0);
    cr_assert_null(stree_checkpoint_find(c, "x"));
    stree_checkpoint_close(c);
}

Test(safetensors, many_tensors_lookup) {
    enum { N = 3000 };
    size_t cap = (size_t)N * 96 + 16;
    char *h = malloc(cap);
    uint8_t *data = malloc((size_t)N * 4);
    cr_assert(h && data);
    size_t at = (size_t)snprintf(h, cap, "{");
    for (int i = 0; i < N; i++) {
        at += (size_t)snprintf(h + at, cap - at,
                               "%s\"model.layers.%d.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                               i ? "," : "", i, 4 * i, 4 * i + 4);
        put_f32(data + 4 * i, (float)i + 0.5f);
    }
    snprintf(h + at, cap - at, "}");
    write_st("many.safetensors", h, data, (size_t)N * 4);
    free(h);
    free(data);
    stree_checkpoint *c = open_ok(tp("many.safetensors"));
    cr_assert_eq(stree_checkpoint_n_tensors(c), N);
    for (int i = 0; i < N; i++) {
        char name[64];
        cr_assert_lt(snprintf(name, sizeof name, "model.layers.%d.w", i), (int)sizeof name);
        const stree_st_tensor *t = stree_checkpoint_find(c, name);
        cr_assert_not_null(t, "%s not found", name);
        cr_assert_str_eq(t->name, name);
        float v;
        cr_assert_eq(stree_st_tensor_to_f32(t, &v), STREE_OK);
        cr_assert_eq(v, (float)i + 0.5f, "%s = %g", name, (double)v);
    }
    cr_assert_null(stree_checkpoint_find(c, "model.layers.3000.w"));
    cr_assert_null(stree_checkpoint_find(c, "model.layers.-1.w"));
    cr_assert_null(stree_checkpoint_find(c, ""));
    stree_checkpoint_close(c);
}

/* ---------------------------------------------------------------- sharded */
#define S1 "model-00001-of-00002.safetensors"
#define S2 "model-00002-of-00002.safetensors"

static void write_two_shards(const char *dir) {
    char n1[256], n2[256];
    cr_assert_lt(snprintf(n1, sizeof n1, "%s/" S1, dir), (int)sizeof n1);
    cr_assert_lt(snprintf(n2, sizeof n2, "%s/" S2, dir), (int)sizeof n2);
    uint8_t d1[8];
    put_f32(d1, 1.25f);
    put_u16(d1 + 4, 0x4000); /* BF16 2.0 */
    put_u16(d1 + 6, 0xBF00); /* BF16 -0.5 */
    write_st(n1,
             "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"z\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
             d1, sizeof d1);
    uint8_t d2[2];
    put_u16(d2, 0xBC00); /* F16 -1.0 */
    write_st(n2, "{\"y\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[0,2]}}", d2, sizeof d2);
}

static void write_index(const char *dir, const char *weight_map_body) {
    char name[256], body[2048];
    cr_assert_lt(snprintf(name, sizeof name, "%s/model.safetensors.index.json", dir), (int)sizeof name);
    cr_assert_lt(snprintf(body, sizeof body, "{\"metadata\":{\"total_size\":10},\"weight_map\":{%s}}", weight_map_body),
                 (int)sizeof body);
    write_bytes(name, body, strlen(body));
}

Test(safetensors, sharded_two_shards) {
    mkdir_in("sh");
    write_two_shards("sh");
    write_index("sh", "\"x\":\"" S1 "\",\"y\":\"" S2 "\",\"z\":\"" S1 "\"");
    stree_checkpoint *c = open_ok(tp("sh"));
    cr_assert_eq(stree_checkpoint_n_tensors(c), 3);
    const stree_st_tensor *x = stree_checkpoint_find(c, "x"), *y = stree_checkpoint_find(c, "y"),
                          *z = stree_checkpoint_find(c, "z");
    cr_assert(x && y && z);
    cr_assert_str_eq(x->file, tp("sh/" S1));
    cr_assert_str_eq(z->file, tp("sh/" S1));
    cr_assert_str_eq(y->file, tp("sh/" S2));
    float f[2];
    cr_assert_eq(stree_st_tensor_to_f32(x, f), STREE_OK);
    cr_assert_eq(f[0], 1.25f);
    cr_assert_eq(stree_st_tensor_to_f32(y, f), STREE_OK);
    cr_assert_eq(f[0], -1.0f);
    cr_assert_eq(y->ndim, 2);
    cr_assert_eq(stree_st_tensor_to_f32(z, f), STREE_OK);
    cr_assert_eq(f[0], 2.0f);
    cr_assert_eq(f[1], -0.5f);
    stree_checkpoint_close(c);
}

Test(safetensors, sharded_index_preferred_over_single) {
    mkdir_in("sh");
    write_two_shards("sh");
    write_index("sh", "\"x\":\"" S1 "\",\"y\":\"" S2 "\",\"z\":\"" S1 "\"");
    write_bytes("sh/model.safetensors", "junk", 4); /* would fail if it were opened */
    stree_checkpoint *c = open_ok(tp("sh"));
    cr_assert_eq(stree_checkpoint_n_tensors(c), 3);
    stree_checkpoint_close(c);
}

Test(safetensors, sharded_duplicate_across_shards) {
    mkdir_in("sh");
    write_two_shards("sh");
    uint8_t d[4] = {0};
    write_st("sh/" S2, "{" T1 "}", d, 4); /* shard 2 now also holds x */
    write_index("sh", "\"x\":\"" S1 "\",\"y\":\"" S2 "\",\"z\":\"" S1 "\"");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "'x'", S1, S2);
}

Test(safetensors, sharded_missing_shard_file) {
    mkdir_in("sh");
    write_two_shards("sh");
    write_index("sh", "\"x\":\"" S1 "\",\"y\":\"model-gone.safetensors\"");
    expect_fail(tp("sh"), STREE_ERR_IO, "model-gone.safetensors", "model.safetensors.index.json", NULL);
}

Test(safetensors, sharded_tensor_absent_from_shard) {
    mkdir_in("sh");
    write_two_shards("sh");
    write_index("sh", "\"x\":\"" S1 "\",\"y\":\"" S2 "\",\"z\":\"" S1 "\",\"w.missing\":\"" S2 "\"");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "'w.missing'", S2, "model.safetensors.index.json");
}

Test(safetensors, sharded_tensor_in_other_shard) {
    mkdir_in("sh");
    write_two_shards("sh");
    write_index("sh", "\"x\":\"" S2 "\",\"y\":\"" S1 "\"");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "'x'", "it is in", S1);
}

Test(safetensors, sharded_bad_index_json) {
    mkdir_in("sh");
    write_bytes("sh/model.safetensors.index.json", "{\"weight_map\":", 14);
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "model.safetensors.index.json", "JSON", NULL);
}

Test(safetensors, sharded_index_without_weight_map) {
    mkdir_in("sh");
    write_bytes("sh/model.safetensors.index.json", "{\"metadata\":{}}", 15);
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "model.safetensors.index.json", "weight_map", NULL);
}

Test(safetensors, sharded_index_bad_values) {
    mkdir_in("sh");
    write_two_shards("sh");
    write_index("sh", "\"x\":3");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "'x'", "not a shard file name", NULL);
    write_index("sh", "\"x\":\"../" S1 "\"");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "'x'", "not a relative path", NULL);
    write_index("sh", "\"x\":\"" S1 "\",\"x\":\"" S1 "\"");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "'x'", "twice", NULL);
    write_index("sh", "");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, "weight_map", "empty", NULL);
}

Test(safetensors, sharded_bad_shard_header_names_shard) {
    mkdir_in("sh");
    write_two_shards("sh");
    uint8_t d[4] = {0};
    write_st("sh/" S2, "{\"y\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    write_index("sh", "\"x\":\"" S1 "\",\"y\":\"" S2 "\"");
    expect_fail(tp("sh"), STREE_ERR_FORMAT, S2, "'y'", "needs 2 bytes");
}

/* ---------------------------------------------------------------- missing paths */
Test(safetensors, missing_file) {
    expect_fail(tp("nope.safetensors"), STREE_ERR_IO, "nope.safetensors", NULL, NULL);
}

Test(safetensors, directory_with_neither) {
    mkdir_in("emptydir");
    expect_fail(tp("emptydir"), STREE_ERR_IO, "emptydir", "model.safetensors.index.json", "model.safetensors");
}

Test(safetensors, null_arguments) {
    stree_checkpoint *c = NULL;
    cr_assert_eq(stree_checkpoint_open(NULL, &c), STREE_ERR_INVALID_ARG);
    cr_assert_null(c);
    cr_assert_eq(stree_checkpoint_open(tp("x"), NULL), STREE_ERR_INVALID_ARG);
    cr_assert_eq(stree_st_tensor_to_f32(NULL, NULL), STREE_ERR_INVALID_ARG);
    stree_checkpoint_close(NULL);
    cr_assert_eq(stree_checkpoint_n_tensors(NULL), 0);
    cr_assert_null(stree_checkpoint_find(NULL, "x"));
}

/* ---------------------------------------------------------------- malformed single files */
#define BAD "bad.safetensors"

Test(safetensors, empty_file) {
    write_bytes(BAD, "", 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "empty", NULL);
}

Test(safetensors, file_shorter_than_8_bytes) {
    write_bytes(BAD, "\x02\0\0\0\0", 5);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "truncated", "5 bytes");
}

Test(safetensors, header_length_past_end) {
    write_st_ex(BAD, "{}", 0, NULL, 0, 40);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "header length 40", "past the end");
}

Test(safetensors, header_length_over_limit) {
    write_st_ex(BAD, "{}", 0, NULL, 0, 100000001ull);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "100000001", "limit");
    write_st_ex(BAD, "{}", 0, NULL, 0, UINT64_MAX);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "limit", NULL);
}

Test(safetensors, header_length_zero) {
    uint8_t z[8] = {0};
    write_bytes(BAD, z, 8);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "header length is 0", NULL);
}

Test(safetensors, bad_json) {
    write_st(BAD, "{\"x\":{\"dtype\":\"F32\",", NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "not valid JSON", NULL);
}

Test(safetensors, trailing_garbage_after_json) {
    uint8_t d[4] = {0};
    write_st(BAD, "{" T1 "}  x", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "after the JSON header", NULL);
}

Test(safetensors, invalid_utf8_header) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"x\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "UTF-8", NULL);
}

Test(safetensors, header_not_object) {
    write_st(BAD, "[1, 2]", NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "not a JSON object", NULL);
    write_st(BAD, "\"F32\"", NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "not a JSON object", NULL);
}

Test(safetensors, entry_not_object) {
    write_st(BAD, "{\"w\":3}", NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w'", "not an object");
}

Test(safetensors, missing_dtype) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w.a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w.a'", "missing \"dtype\"");
}

Test(safetensors, missing_shape) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w.b\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w.b'", "missing \"shape\"");
}

Test(safetensors, missing_data_offsets) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w.c\":{\"dtype\":\"F32\",\"shape\":[1]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w.c'", "missing \"data_offsets\"");
}

Test(safetensors, wrong_field_types) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, "'w'", "\"dtype\" is a number", NULL);
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, "'w'", "\"shape\" is a number", NULL);
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, "'w'", "[begin, end]", NULL);
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, "'w'", "non-negative integers", NULL);
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, "'w'", "non-negative integers", NULL);
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, "'w'", "duplicate key \"dtype\"", NULL);
}

Test(safetensors, unknown_dtype) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w.u\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w.u'", "unknown dtype 'F33'");
    write_st(BAD, "{\"w.u\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w.u'", "unknown dtype 'f32'");
}

Test(safetensors, subbyte_dtype_unsupported) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w.q\":{\"dtype\":\"F4\",\"shape\":[8],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_UNSUPPORTED, BAD, "'w.q'", "F4");
}

Test(safetensors, offset_past_end) {
    uint8_t d[8] = {0};
    write_st(BAD,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b.far\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             d, 8);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'b.far'", "past the end of the data section (8 bytes)");
}

Test(safetensors, begin_after_end) {
    uint8_t d[8] = {0};
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", d, 8);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w'", "begin is past end");
}

Test(safetensors, overlapping_tensors) {
    uint8_t d[12] = {0};
    write_st(BAD,
             "{\"a.first\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b.second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             d, 12);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "overlap", "'b.second'");
    cr_assert_not_null(strstr(stree_last_error(), "'a.first'"), "%s", stree_last_error());
}

Test(safetensors, same_range_twice_overlaps) {
    uint8_t d[4] = {0};
    write_st(BAD,
             "{\"p\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"q\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "overlap", "'q'");
}

Test(safetensors, gap_between_tensors) {
    uint8_t d[12] = {0};
    write_st(BAD,
             "{\"a.first\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b.after\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             d, 12);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "gap of 4 bytes", "'b.after'");
    cr_assert_not_null(strstr(stree_last_error(), "'a.first'"), "%s", stree_last_error());
}

Test(safetensors, gap_at_start) {
    uint8_t d[8] = {0};
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d, 8);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w'", "start of the data section");
}

Test(safetensors, trailing_bytes_after_last_tensor) {
    uint8_t d[6] = {0};
    write_st(BAD, "{" T1 "}", d, 6);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "2 trailing bytes", "'x'");
    write_st(BAD, "{}", d, 6);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "names no tensor", NULL);
}

Test(safetensors, wrong_byte_length) {
    uint8_t d[12] = {0};
    write_st("model.safetensors",
             "{\"model.layers.0.mixer.A_log\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", d, 12);
    expect_fail(tp("model.safetensors"), STREE_ERR_FORMAT,
                "model.safetensors: tensor 'model.layers.0.mixer.A_log': data_offsets [0, 12) but shape [4] x F32 "
                "needs 16 bytes",
                tp("model.safetensors"), NULL);
    write_st(BAD, "{\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,12]}}", d, 12);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'s'", "shape [] x BF16 needs 2 bytes");
}

Test(safetensors, element_count_overflow) {
    write_st(BAD,
             "{\"huge\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'huge'", "64 bits");
    write_st(BAD, "{\"huge\":{\"dtype\":\"F64\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}",
             NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'huge'", "overflows");
    write_st(BAD, "{\"huge\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", NULL, 0);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'huge'", "too large");
}

Test(safetensors, negative_dim) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w.neg\":{\"dtype\":\"F32\",\"shape\":[1,-3],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w.neg'", "shape[1] = -3 is negative");
}

Test(safetensors, non_integer_dim) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w'", "not an integer");
    write_st(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'w'", "shape[0] is a string");
}

Test(safetensors, too_many_dims) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"w9\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_UNSUPPORTED, BAD, "'w9'", "9 dimensions");
}

Test(safetensors, duplicate_key_in_one_file) {
    uint8_t d[8] = {0};
    write_st(BAD,
             "{\"dup\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"dup\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             d, 8);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "'dup'", "twice");
}

Test(safetensors, bad_metadata) {
    uint8_t d[4] = {0};
    write_st(BAD, "{\"__metadata__\":{\"n\":3}," T1 "}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "__metadata__", "'n'");
    write_st(BAD, "{\"__metadata__\":[]," T1 "}", d, 4);
    expect_fail(tp(BAD), STREE_ERR_FORMAT, BAD, "__metadata__", "not an object");
}

Test(safetensors, not_a_regular_file) {
    mkdir_in("d.safetensors");
    mkdir_in("d.safetensors/model.safetensors");
    expect_fail(tp("d.safetensors"), STREE_ERR_IO, "model.safetensors", "not a regular file", NULL);
}
