/* Every CUDA op against the CPU reference op on random inputs (a fresh seed per run, printed),
 * with the CUDA outputs poisoned (NaN) before each launch so unwritten elements fail. Skips, and says
 * so, when the build has no CUDA backend or no device is usable. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/cpu.h"
#include "kernels/ops.h"

#ifdef STREE_HAVE_CUDA

static unsigned seed;
static const stree_ops *G = &stree_cuda_ops;

static void setup(void) {
    if (!stree_cuda_available()) cr_skip_test("no CUDA device: the CUDA op tests need the GPU machine");
    seed = (unsigned)time(NULL) ^ (unsigned)clock();
    cr_log_info("seed %u", seed);
}

static float frand(void) { return (float)rand_r(&seed) / (float)RAND_MAX * 2.0f - 1.0f; }

static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof *x + 4);
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
    return x;
}

static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static void *dev(const void *host, size_t bytes) {
    void *d = G->alloc(bytes);
    cr_assert_not_null(d);
    G->upload(d, host, bytes);
    return d;
}

static float *poisoned(size_t n) {
    float *h = malloc(n * sizeof *h + 4);
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *d = dev(h, n * sizeof *h);
    free(h);
    return d;
}

/* downloads n floats of d and compares with ref: max |a - b| <= tol * max(max |ref|, 1) */
static void expect_close(const char *what, const float *d, const float *ref, size_t n, double tol) {
    float *h = malloc(n * sizeof *h + 4);
    G->download(h, d, n * sizeof *h);
    cr_assert_null(G->take_error(), "%s: a CUDA call failed", what);
    double err = 0.0, scale = 1.0;
    size_t bad = n;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)h[i] - (double)ref[i]);
        if (isnan(h[i]) && bad == n) bad = i;
        if (e > err) err = e;
        if (fabs((double)ref[i]) > scale) scale = fabs((double)ref[i]);
    }
    cr_expect_eq(bad, n, "%s: element %zu is NaN (unwritten?)", what, bad);
    cr_expect_leq(err, tol * scale, "%s: max |err| %g > %g x %g (seed %u)", what, err, tol, scale, seed);
    free(h);
}

TestSuite(cuda_ops, .init = setup);

/* Every case through the routing of the current mode: by default the GEMV (n = 1) and cuBLAS on a
 * bf16 copy of the activations; in batch-invariant mode the tensor-core skinny matmul (n <= 128,
 * k % 8 == 0, ldx % 4 == 0: every tile width, split and unsplit k, k and m not multiples of a tile, two
 * token tiles), cuBLAS for the rest. */
static void matmul_cases(void) {
    static const int32_t cases[][5] = {/* n, k, m, ldx, ldy */
                                       {1, 200, 96, 210, 100},  {3, 200, 96, 210, 100}, {7, 200, 96, 210, 100},
                                       {1, 200, 96, 208, 100},  {2, 264, 75, 264, 80},  {3, 200, 96, 208, 100},
                                       {5, 1032, 33, 1040, 40}, {8, 200, 96, 208, 97},  {4, 64, 8203, 64, 8203},
                                       {8, 40, 8192, 48, 8200}, {12, 200, 96, 208, 100}, {3, 264, 4100, 264, 4100},
                                       {17, 512, 300, 516, 300}, {33, 1544, 1000, 1544, 1003},
                                       {64, 4096, 200, 4096, 200}, {100, 520, 130, 520, 130},
                                       {128, 256, 4100, 264, 4100}, {200, 64, 40, 64, 40},
                                       {12, 72, 64, 72, 64}}; /* the last two also with relu(x)^2 inputs */
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int32_t n = cases[t][0], k = cases[t][1], m = cases[t][2];
        int64_t ldx = cases[t][3], ldy = cases[t][4];
        float *x = rnd((size_t)n * ldx, 1.0f), *w = rnd((size_t)m * k, 0.2f), *b = rnd((size_t)m, 1.0f);
        float *y0 = rnd((size_t)n * ldy, 1.0f);
        /* the reference gets the operands the CUDA path sees: bf16 weights and activations */
        float *xr = malloc((size_t)n * ldx * 4), *wr = malloc((size_t)m * k * 4), *yr = malloc((size_t)n * ldy * 4);
        for (size_t i = 0; i < (size_t)n * ldx; i++) xr[i] = bf16_round(x[i]);
        for (size_t i = 0; i < (size_t)m * k; i++) wr[i] = bf16_round(w[i]);
        int n_cases = sizeof cases / sizeof cases[0];
        for (int acc = 0; acc < (t + 2 >= (size_t)n_cases ? 3 : 2); acc++) {
            int relu = acc == 2; /* the CUDA path rounds relu(x)^2 to bf16 */
            if (relu)
                for (size_t i = 0; i < (size_t)n * ldx; i++) xr[i] = bf16_round(x[i] > 0 ? x[i] * x[i] : 0.0f);
            memcpy(yr, y0, (size_t)n * ldy * 4);
            stree_matmul_params p = {.x = xr, .w = wr, .wtype = STREE_WTYPE_F32, .maybe_bias = acc ? NULL : b,
                                     .y = yr, .n = n, .k = k, .m = m, .ldx = ldx, .ldy = ldy, .alpha = 0.7f,
                                     .accumulate = acc};
            stree_cpu_matmul(&p);
            float *dx = dev(x, (size_t)n * ldx * 4), *db = dev(b, (size_t)m * 4), *dy = dev(y0, (size_t)n * ldy * 4);
            void *dw = G->upload_matrix(w, m, k);
            stree_matmul_params q = p;
            q.x = dx, q.w = dw, q.wtype = STREE_WTYPE_BF16, q.maybe_bias = acc ? NULL : db, q.y = dy;
            q.x_relu2 = relu;
            G->matmul(&q);
            char what[96];
            snprintf(what, sizeof what, "matmul n=%d k=%d m=%d ldx=%d%s", n, k, m, (int)ldx,
                     relu ? " (relu2 input)" : acc ? " (accumulate)" : " (bias)");
            expect_close(what, dy, yr, (size_t)n * ldy, 1e-4);
            G->free(dx), G->free(db), G->free(dy), G->free(dw);
        }
        free(x), free(w), free(b), free(y0), free(xr), free(wr), free(yr);
    }
}

Test(cuda_ops, matmul) { matmul_cases(); }

/* With the norm's bf16 copy of x given, the cuBLAS path reads the copy and makes none (x poisoned) */
Test(cuda_ops, matmul_reads_norm_copy) {
    const char *e = getenv("STREE_CUDA_BATCH_INVARIANT");
    if (e && atoi(e) > 0) cr_skip_test("the batch-invariant matmul reads fp32 x itself");
    int32_t n = 17, k = 512, m = 300;
    float *x = rnd((size_t)n * k, 1.0f), *w = rnd((size_t)m * k, 0.2f), *y = malloc((size_t)n * m * 4);
    float *xr = malloc((size_t)n * k * 4), *wr = malloc((size_t)m * k * 4);
    for (size_t i = 0; i < (size_t)n * k; i++) xr[i] = bf16_round(x[i]);
    for (size_t i = 0; i < (size_t)m * k; i++) wr[i] = bf16_round(w[i]);
    stree_matmul_params p = {.x = xr, .w = wr, .wtype = STREE_WTYPE_F32, .y = y, .n = n, .k = k, .m = m, .ldx = k,
                             .ldy = m, .alpha = 1.0f};
    stree_cpu_matmul(&p);
    void *dw = G->upload_matrix(w, m, k), *dxw = G->upload_matrix(x, n, k); /* bf16 [n, k] */
    float *dx = poisoned((size_t)n * k), *dy = poisoned((size_t)n * m);
    stree_matmul_params q = p;
    q.x = dx, q.maybe_x_wt = dxw, q.w = dw, q.wtype = STREE_WTYPE_BF16, q.y = dy;
    G->matmul(&q);
    expect_close("matmul from the bf16 copy", dy, y, (size_t)n * m, 1e-4);
    G->free(dw), G->free(dxw), G->free(dx), G->free(dy);
    free(x), free(w), free(y), free(xr), free(wr);
}

Test(cuda_ops, matmul_batch_invariant_mode) {
    setenv("STREE_CUDA_BATCH_INVARIANT", "1", 1); /* read at this process's first matmul */
    matmul_cases();
}

/* Batch-invariant mode: row i of an n-row product is bitwise the 1-row product of row i, for every n
 * the skinny matmul takes and for split and unsplit k: what makes a drafter's step agree exactly with
 * the verify. */
Test(cuda_ops, matmul_batch_invariant) {
    setenv("STREE_CUDA_BATCH_INVARIANT", "1", 1);
    static const int32_t shapes[][2] = {{1536, 4100}, {4096, 1000}, {520, 96}}; /* k, m */
    static const int32_t ns[] = {2, 7, 9, 16, 31, 64, 100, 128};
    enum { N_MAX = 128 };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int32_t k = shapes[t][0], m = shapes[t][1];
        float *x = rnd((size_t)N_MAX * k, 1.0f), *w = rnd((size_t)m * k, 0.2f);
        float *dx = dev(x, (size_t)N_MAX * k * 4), *one = poisoned((size_t)N_MAX * m), *many = poisoned((size_t)N_MAX * m);
        void *dw = G->upload_matrix(w, m, k);
        stree_matmul_params p = {.x = dx, .w = dw, .wtype = STREE_WTYPE_BF16, .n = 1, .k = k, .m = m, .ldx = k,
                                 .ldy = m, .alpha = 1.0f};
        for (int i = 0; i < N_MAX; i++) {
            p.x = dx + (size_t)i * k, p.y = one + (size_t)i * m;
            G->matmul(&p);
        }
        float *h1 = malloc((size_t)N_MAX * m * 4), *hn = malloc((size_t)N_MAX * m * 4);
        G->download(h1, one, (size_t)N_MAX * m * 4);
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            p.x = dx, p.y = many, p.n = ns[j];
            G->matmul(&p);
            G->download(hn, many, (size_t)ns[j] * m * 4);
            cr_assert_null(G->take_error(), "matmul k=%d m=%d n=%d: a CUDA call failed", k, m, ns[j]);
            size_t diff = (size_t)ns[j] * m;
            for (size_t e = 0; e < (size_t)ns[j] * m && diff == (size_t)ns[j] * m; e++)
                if (memcmp(&h1[e], &hn[e], 4) != 0) diff = e;
            cr_expect_eq(diff, (size_t)ns[j] * m, "matmul k=%d m=%d: row %zu of the %d-row product is not the "
                         "1-row product (column %zu: %.9g vs %.9g)", k, m, diff / m, ns[j], diff % m,
                         diff < (size_t)ns[j] * m ? hn[diff] : 0.0, diff < (size_t)ns[j] * m ? h1[diff] : 0.0);
        }
        free(x), free(w), free(h1), free(hn);
        G->free(dx), G->free(one), G->free(many), G->free(dw);
    }
}

/* the bf16 copy a norm stored (n values at d_wt) must be its fp32 output d_out rounded */
static void expect_bf16_copy(const char *what, const void *d_wt, const float *d_out, size_t n) {
    uint16_t *wt = malloc(n * 2 + 2);
    float *out = malloc(n * 4 + 4);
    G->download(wt, d_wt, n * 2);
    G->download(out, d_out, n * 4);
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++) {
        uint32_t u = (uint32_t)wt[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        if (f != bf16_round(out[i])) bad = i;
    }
    cr_expect_eq(bad, n, "%s: bf16 copy element %zu is not the rounded output", what, bad);
    free(wt), free(out);
}

/* RMSNorm of n rows of dim (row strides ld), in place when `in_place`, with its bf16 copy */
static void check_rmsnorm(int32_t n, int32_t dim, int64_t ld, int in_place) {
    float *x = rnd((size_t)n * ld, 2.0f), *w = rnd((size_t)dim, 1.0f), *ref = malloc((size_t)n * ld * 4);
    cr_log_info("rmsnorm n=%d dim %d ld %d%s", n, dim, (int)ld, in_place ? " in place" : "");
    for (int kind = 0; kind < 2; kind++) {
        memcpy(ref, x, (size_t)n * ld * 4);
        stree_rmsnorm_params p = {.x = x, .maybe_w = w, .y = ref, .n = n, .dim = dim, .ldx = ld, .ldy = ld,
                                  .eps = 1e-5f, .kind = kind ? STREE_NORM_RMS_OFFSET : STREE_NORM_RMS};
        stree_cpu_rmsnorm(&p);
        float *dx = dev(x, (size_t)n * ld * 4), *dw = dev(w, (size_t)dim * 4);
        float *dy = in_place ? dx : dev(x, (size_t)n * ld * 4);
        void *dwt = G->alloc((size_t)n * dim * 2);
        stree_rmsnorm_params q = p;
        q.x = dx, q.maybe_w = dw, q.y = dy, q.maybe_y_wt = dwt;
        G->rmsnorm(&q);
        expect_close("rmsnorm", dy, ref, (size_t)n * ld, 1e-5);
        float *packed = malloc((size_t)n * dim * 4); /* the copy is contiguous: y's rows without the stride */
        float *dpacked = G->alloc((size_t)n * dim * 4);
        float *hy = malloc((size_t)n * ld * 4);
        G->download(hy, dy, (size_t)n * ld * 4);
        for (int32_t i = 0; i < n; i++) memcpy(packed + (size_t)i * dim, hy + (size_t)i * ld, (size_t)dim * 4);
        G->upload(dpacked, packed, (size_t)n * dim * 4);
        expect_bf16_copy("rmsnorm", dwt, dpacked, (size_t)n * dim);
        free(packed), free(hy);
        if (!in_place) G->free(dy);
        G->free(dx), G->free(dw), G->free(dwt), G->free(dpacked);
    }
    free(x), free(w), free(ref);
}

Test(cuda_ops, rmsnorm_and_gated_norm) {
    check_rmsnorm(5, 96, 96, 0);     /* a short row: one warp, float4 loads */
    check_rmsnorm(64, 4096, 4096, 0); /* the 8B-like model's rows: four float4 per thread */
    check_rmsnorm(3, 4096, 4100, 1); /* in place, a row stride */
    check_rmsnorm(4, 90, 90, 0);     /* not a multiple of 4: scalar loads */
    check_rmsnorm(2, 6000, 6000, 0); /* wider than the registers hold */
    check_rmsnorm(40, 128, 128, 1);  /* per-head q/k norms */
    /* gated norms: no weight; gate-then-norm full and grouped; norm-before-gate grouped; the 8B-like
       grouping (1024 per group); groups not a multiple of 4 wide */
    int variants[][5] = {{0, 1, 0, 96, 5}, {1, 1, 0, 96, 5}, {1, 3, 0, 96, 5}, {1, 2, 1, 96, 5},
                         {1, 8, 0, 8192, 3}, {1, 8, 1, 8192, 2}, {1, 3, 0, 90, 4}, {0, 3, 0, 90, 4}};
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        int32_t dim = variants[v][3], n = variants[v][4];
        float *x = rnd((size_t)n * dim, 2.0f), *w = rnd((size_t)dim, 1.0f), *z = rnd((size_t)n * 2 * dim, 2.0f);
        float *ref = malloc((size_t)n * dim * 4);
        stree_gated_norm_params p = {.y = x, .z = z, .maybe_w = variants[v][0] ? w : NULL, .out = ref, .n = n,
                                     .dim = dim, .groups = variants[v][1], .norm_before_gate = variants[v][2],
                                     .ldz = 2 * dim, .eps = 1e-5f};
        stree_cpu_gated_norm(&p);
        float *dy = dev(x, (size_t)n * dim * 4), *dz = dev(z, (size_t)n * 2 * dim * 4), *dw = dev(w, (size_t)dim * 4);
        float *dout = poisoned((size_t)n * dim);
        void *dwt = G->alloc((size_t)n * dim * 2);
        stree_gated_norm_params q = p;
        q.y = dy, q.z = dz, q.maybe_w = variants[v][0] ? dw : NULL, q.out = dout, q.maybe_out_wt = dwt;
        G->gated_norm(&q);
        char what[64];
        snprintf(what, sizeof what, "gated_norm variant %zu", v);
        expect_close(what, dout, ref, (size_t)n * dim, 1e-5);
        expect_bf16_copy(what, dwt, dout, (size_t)n * dim);
        G->free(dy), G->free(dz), G->free(dw), G->free(dout), G->free(dwt);
        free(x), free(w), free(z), free(ref);
    }
}

/* a random tree of n nodes (topological), depths filled; a chain when `chain` */
static void random_tree(int32_t n, int32_t *parent, int32_t *depth, int chain) {
    parent[0] = -1;
    depth[0] = 0;
    for (int32_t i = 1; i < n; i++) {
        parent[i] = chain ? i - 1 : (int32_t)(rand_r(&seed) % (unsigned)i);
        depth[i] = depth[parent[i]] + 1;
    }
}

/* rope, tree attention and the KV commit for one shape */
static void check_attention(int32_t n, int32_t nh, int32_t nkv, int32_t hd, int32_t n_past, int chain) {
    int32_t parent[512], depth[512];
    random_tree(n, parent, depth, chain);
    cr_log_info("attention n=%d heads %d/%d hd %d n_past %d%s", n, nh, nkv, hd, n_past, chain ? " chain" : "");
    float *q = rnd((size_t)n * nh * hd, 1.0f), *kt = rnd((size_t)n * nkv * hd, 1.0f), *vt = rnd((size_t)n * nkv * hd, 1.0f);
    float *kc = rnd((size_t)n_past * nkv * hd, 1.0f), *vc = rnd((size_t)n_past * nkv * hd, 1.0f);
    float *qr = malloc((size_t)n * nh * hd * 4), *out = malloc((size_t)n * nh * hd * 4);
    float *scr = malloc((size_t)(n_past + n) * 4);
    memcpy(qr, q, (size_t)n * nh * hd * 4);
    stree_rope_params rp = {.x = qr, .n = n, .n_heads = nh, .head_dim = hd, .rope_dims = hd < 32 ? hd & ~1 : 32, .ldx = nh * hd,
                            .n_past = &n_past, .depth = depth, .theta = 10000.0f};
    stree_cpu_rope(&rp);
    int32_t *dparent = dev(parent, (size_t)n * 4), *ddepth = dev(depth, (size_t)n * 4);
    int32_t *dn_past = dev(&n_past, 4);
    float *dq = dev(q, (size_t)n * nh * hd * 4);
    stree_rope_params rq = rp;
    rq.x = dq, rq.depth = ddepth, rq.n_past = dn_past;
    G->rope(&rq);
    expect_close("rope", dq, qr, (size_t)n * nh * hd, 1e-5);
    stree_tree_view tv = {.n = n, .parent = parent, .depth = depth};
    stree_attn_tree_params ap = {.q = qr, .k_cache = kc, .v_cache = vc, .k_tree = kt, .v_tree = vt, .out = out,
                                 .tree = tv, .n_past = &n_past, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
                                 .scale = 0.15f, .scratch = scr};
    stree_cpu_attn_tree(&ap);
    float *dkc = dev(kc, (size_t)n_past * nkv * hd * 4), *dvc = dev(vc, (size_t)n_past * nkv * hd * 4);
    float *dkt = dev(kt, (size_t)n * nkv * hd * 4), *dvt = dev(vt, (size_t)n * nkv * hd * 4);
    float *dout = poisoned((size_t)n * nh * hd);
    stree_attn_tree_params aq = ap;
    aq.q = dq, aq.k_cache = dkc, aq.v_cache = dvc, aq.k_tree = dkt, aq.v_tree = dvt, aq.out = dout;
    aq.tree.parent = dparent, aq.tree.depth = ddepth, aq.scratch = NULL, aq.n_past = dn_past;
    G->attn_tree(&aq);
    expect_close("attn_tree", dout, out, (size_t)n * nh * hd, 1e-5);
    /* kv commit of a root-to-node path */
    int32_t path[512], len = 0;
    for (int32_t j = n - 1; j >= 0; j = parent[j]) path[len++] = j;
    for (int32_t a = 0, b = len - 1; a < b; a++, b--) {
        int32_t t = path[a];
        path[a] = path[b];
        path[b] = t;
    }
    int32_t *dpath = dev(path, (size_t)len * 4);
    float *kc2 = malloc((size_t)(n_past + len) * nkv * hd * 4), *vc2 = malloc((size_t)(n_past + len) * nkv * hd * 4);
    memcpy(kc2, kc, (size_t)n_past * nkv * hd * 4);
    memcpy(vc2, vc, (size_t)n_past * nkv * hd * 4);
    float *dkc2 = dev(kc2, (size_t)(n_past + len) * nkv * hd * 4), *dvc2 = dev(vc2, (size_t)(n_past + len) * nkv * hd * 4);
    stree_kv_commit_params kp = {.k_cache = kc2, .v_cache = vc2, .k_tree = kt, .v_tree = vt, .path = path, .len = len,
                                 .n_past = &n_past, .row = nkv * hd};
    stree_cpu_kv_commit(&kp);
    stree_kv_commit_params kq = kp;
    kq.k_cache = dkc2, kq.v_cache = dvc2, kq.k_tree = dkt, kq.v_tree = dvt, kq.path = dpath, kq.n_past = dn_past;
    G->kv_commit(&kq);
    expect_close("kv_commit k", dkc2, kc2, (size_t)(n_past + len) * nkv * hd, 0);
    expect_close("kv_commit v", dvc2, vc2, (size_t)(n_past + len) * nkv * hd, 0);
    void *bufs[] = {dn_past, dparent, ddepth, dq, dkc, dvc, dkt, dvt, dout, dpath, dkc2, dvc2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) G->free(bufs[i]);
    free(q), free(kt), free(vt), free(kc), free(vc), free(qr), free(out), free(scr), free(kc2), free(vc2);
}

Test(cuda_ops, rope_and_attention) {
    check_attention(23, 4, 2, 48, 37, 0);   /* small random tree */
    check_attention(64, 8, 2, 128, 700, 0); /* four query heads per KV head, several key tiles per split */
    check_attention(1, 8, 8, 64, 5, 0);     /* a decode step, fewer keys than splits */
    check_attention(150, 4, 1, 32, 0, 1);   /* a prefill chunk: no prefix, long paths */
    check_attention(9, 16, 2, 24, 1500, 0); /* eight query heads per KV head, three key tiles per split */
    check_attention(5, 3, 1, 18, 60, 0);    /* head dim not a multiple of 4: scalar loads, padded rows */
    check_attention(3, 4, 4, 256, 130, 0);  /* the largest head dim, a partial last key tile */
    check_attention(64, 32, 8, 128, 512, 0); /* the 8B-like verify: fewer prefix splits than a decode step */
    check_attention(256, 32, 8, 128, 300, 1); /* a prefill chunk after a prefix: fewer splits still */
}

/* tree conv, dt, the tree scan and both commits for one shape */
static void check_mamba2(int32_t n, int32_t H, int32_t P, int32_t G_, int32_t N, int32_t K, int chain) {
    int32_t d_inner = H * P, Cd = d_inner + 2 * G_ * N, ip = 2 * d_inner + 2 * G_ * N + H;
    int32_t parent[512], depth[512];
    random_tree(n, parent, depth, chain);
    cr_log_info("mamba2 n=%d H %d P %d G %d N %d%s", n, H, P, G_, N, chain ? " chain" : "");
    float *xpre = rnd((size_t)n * Cd, 1.0f), *win = rnd((size_t)(K - 1) * Cd, 1.0f), *cw = rnd((size_t)Cd * K, 0.5f);
    float *cb = rnd((size_t)Cd, 0.5f), *proj = rnd((size_t)n * ip, 2.0f), *dtb = rnd((size_t)H, 1.0f);
    float *A_log = rnd((size_t)H, 1.0f), *Dp = rnd((size_t)H, 1.0f), *state = rnd((size_t)H * P * N, 1.0f);
    float *xbc = malloc((size_t)n * Cd * 4), *dt = malloc((size_t)n * H * 4), *c = malloc((size_t)n * H * 4);
    float *y = malloc((size_t)n * d_inner * 4);
    int32_t *dparent = dev(parent, (size_t)n * 4), *ddepth = dev(depth, (size_t)n * 4);
    stree_tree_view tv = {.n = n, .parent = parent, .depth = depth}, dtv = {.n = n, .parent = dparent, .depth = ddepth};
    stree_conv_tree_params cp = {.x = xpre, .window = win, .w = cw, .maybe_bias = cb, .out = xbc, .tree = tv,
                                 .channels = Cd, .k = K, .ldx = Cd};
    stree_cpu_conv_tree(&cp);
    float *dxpre = dev(xpre, (size_t)n * Cd * 4), *dwin = dev(win, (size_t)(K - 1) * Cd * 4);
    float *dcw = dev(cw, (size_t)Cd * K * 4), *dcb = dev(cb, (size_t)Cd * 4), *dxbc = poisoned((size_t)n * Cd);
    stree_conv_tree_params cq = cp;
    cq.x = dxpre, cq.window = dwin, cq.w = dcw, cq.maybe_bias = dcb, cq.out = dxbc, cq.tree = dtv;
    float *dcopy = poisoned((size_t)n * Cd);
    cq.maybe_x_copy = dcopy;
    G->conv_tree(&cq);
    expect_close("conv_tree", dxbc, xbc, (size_t)n * Cd, 1e-5);
    expect_close("conv_tree x copy", dcopy, xpre, (size_t)n * Cd, 0);
    G->free(dcopy);
    stree_mamba2_scan_params sp = {.xbc = xbc, .dt_raw = proj + 2 * d_inner + 2 * G_ * N, .ld_dt = ip,
                                   .dt_bias = dtb, .dt_min = 0.01f, .dt_max = 1.5f, .dt = dt, .A_log = A_log,
                                   .D = Dp, .state = state, .c = c, .y = y, .tree = tv, .n_heads = H,
                                   .head_dim = P, .n_groups = G_, .d_state = N};
    stree_cpu_mamba2_scan_tree(&sp);
    float *dproj = dev(proj, (size_t)n * ip * 4), *ddtb = dev(dtb, (size_t)H * 4), *ddt = poisoned((size_t)n * H);
    float *dA = dev(A_log, (size_t)H * 4), *dD = dev(Dp, (size_t)H * 4), *dstate = dev(state, (size_t)H * P * N * 4);
    float *dc = poisoned((size_t)n * H), *dy = poisoned((size_t)n * d_inner);
    stree_mamba2_scan_params sq = sp;
    sq.xbc = dxbc, sq.dt_raw = dproj + 2 * d_inner + 2 * G_ * N, sq.dt_bias = ddtb, sq.dt = ddt, sq.A_log = dA, sq.D = dD, sq.state = dstate, sq.c = dc, sq.y = dy, sq.tree = dtv;
    G->mamba2_scan_tree(&sq);
    expect_close("mamba2 dt", ddt, dt, (size_t)n * H, 1e-5);
    expect_close("mamba2 c", dc, c, (size_t)n * H, 1e-5);
    expect_close("mamba2_scan_tree", dy, y, (size_t)n * d_inner, 1e-4);
    int32_t path[512], len = 0;
    for (int32_t j = n - 1; j >= 0; j = parent[j]) path[len++] = j;
    for (int32_t a = 0, b = len - 1; a < b; a++, b--) {
        int32_t t = path[a];
        path[a] = path[b];
        path[b] = t;
    }
    int32_t *dpath = dev(path, (size_t)len * 4);
    stree_mamba2_commit_params mp = {.state = state, .xbc = xbc, .dt = dt, .c = c, .path = path, .len = len,
                                     .n_heads = H, .head_dim = P, .n_groups = G_, .d_state = N};
    stree_cpu_mamba2_commit(&mp);
    stree_mamba2_commit_params mq = mp;
    mq.state = dstate, mq.xbc = dxbc, mq.dt = ddt, mq.c = dc, mq.path = dpath;
    G->mamba2_commit(&mq);
    expect_close("mamba2_commit", dstate, state, (size_t)H * P * N, 1e-4);
    stree_conv_commit_params ccp = {.window = win, .x = xpre, .path = path, .len = len, .channels = Cd, .k = K};
    stree_cpu_conv_commit(&ccp);
    stree_conv_commit_params ccq = ccp;
    ccq.window = dwin, ccq.x = dxpre, ccq.path = dpath;
    G->conv_commit(&ccq);
    expect_close("conv_commit", dwin, win, (size_t)(K - 1) * Cd, 0);
    void *bufs[] = {dparent, ddepth, dxpre, dwin, dcw, dcb, dxbc, dproj, ddtb, ddt, dA, dD, dstate, dc, dy, dpath};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) G->free(bufs[i]);
    free(xpre), free(win), free(cw), free(cb), free(proj), free(dtb), free(A_log), free(Dp), free(state);
    free(xbc), free(dt), free(c), free(y);
}

Test(cuda_ops, mamba2_tree_ops) {
    check_mamba2(29, 6, 8, 2, 16, 4, 0);    /* small random tree */
    check_mamba2(64, 8, 64, 2, 128, 4, 0);  /* real head and state sizes, four node chunks */
    check_mamba2(1, 4, 64, 1, 128, 4, 0);   /* a decode step */
    check_mamba2(300, 2, 16, 1, 32, 4, 1);  /* a prefill chain above SCAN_TREE nodes: dt and c from their own kernel */
    check_mamba2(280, 4, 64, 2, 128, 4, 0); /* a large random tree: paths walked past the staged parents */
    check_mamba2(200, 4, 64, 2, 128, 4, 0); /* seven ancestor tiles, dt and c computed in the scan */
    check_mamba2(40, 4, 32, 2, 256, 4, 0);  /* the largest state size */
    check_mamba2(20, 2, 128, 1, 18, 4, 0);  /* a state size not a multiple of 4, head dim 128 */
    check_mamba2(17, 4, 200, 4, 64, 4, 0);  /* head dim above the 64 rows a pass of the state product takes */
    check_mamba2(9, 3, 6, 1, 5, 3, 0);      /* conv width 3, odd sizes: the scalar conv and scan loads */
}

/* top-k over real vocabulary sizes (several slices per row), ties planted across slices */
Test(cuda_ops, topk_large_vocab) {
    static const int32_t cases[][3] = {{1, 131072, 1}, {3, 151936, 8}, {2, 2049, 16}}; /* n, V, k */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t n = cases[c][0], V = cases[c][1], k = cases[c][2];
        float *lg = rnd((size_t)n * V, 4.0f), *logp = malloc((size_t)n * k * 4);
        int32_t *idx = malloc((size_t)n * k * 4), *got = malloc((size_t)n * k * 4);
        for (int32_t i = 0; i < n; i++) /* equal maxima in different slices: the lower index wins */
            lg[(size_t)i * V + V - 1] = lg[(size_t)i * V + 5] = lg[(size_t)i * V + V / 2] = 9.0f;
        stree_topk_params tp = {.x = lg, .idx = idx, .logp = logp, .n = n, .vocab = V, .k = k};
        stree_cpu_topk(&tp);
        float *dlg = dev(lg, (size_t)n * V * 4), *dlogp = poisoned((size_t)n * k);
        int32_t *didx = G->alloc((size_t)n * k * 4);
        stree_topk_params tq = tp;
        tq.x = dlg, tq.idx = didx, tq.logp = dlogp;
        G->topk(&tq);
        G->download(got, didx, (size_t)n * k * 4);
        for (int32_t i = 0; i < n * k; i++)
            cr_expect_eq(got[i], idx[i], "topk V=%d k=%d entry %d: %d vs %d", V, k, i, got[i], idx[i]);
        expect_close("topk logp (large vocabulary)", dlogp, logp, (size_t)n * k, 1e-5);
        G->free(dlg), G->free(dlogp), G->free(didx);
        free(lg), free(logp), free(idx), free(got);
    }
}

/* commit_all (one launch for every layer) against the CPU's per-layer commits: two Mamba-2 layers of
 * different shapes and two attention layers, a random root-to-node path of a 40-node tree */
Test(cuda_ops, commit_all) {
    enum { NM = 2, NA = 2, NT = 40, CTX = 64 };
    static const int32_t shapes[NM][5] = {{4, 16, 1, 32, 4}, {6, 64, 2, 128, 3}}; /* H, P, G, N, K */
    int32_t parent[NT], depth[NT], path[NT], len = 0, n_past = 9, row = 24;
    random_tree(NT, parent, depth, 0);
    for (int32_t j = NT - 1; j >= 0; j = parent[j]) path[len++] = j;
    for (int32_t a = 0, b = len - 1; a < b; a++, b--) {
        int32_t t = path[a];
        path[a] = path[b];
        path[b] = t;
    }
    stree_mamba2_commit_params hm[NM], dm[NM];
    stree_conv_commit_params hc[NM], dc[NM];
    stree_kv_commit_params hk[NA], dk[NA];
    float *host[NM * 6 + NA * 4];
    void *devs[NM * 6 + NA * 4 + 8];
    int nh = 0, nd = 0;
    for (int l = 0; l < NM; l++) {
        int32_t H = shapes[l][0], P = shapes[l][1], G_ = shapes[l][2], N = shapes[l][3], K = shapes[l][4];
        int32_t Cd = H * P + 2 * G_ * N;
        size_t ns = (size_t)H * P * N, nx = (size_t)NT * Cd, nc = (size_t)NT * H, nw = (size_t)(K - 1) * Cd;
        float *state = rnd(ns, 1.0f), *xbc = rnd(nx, 1.0f), *dt = rnd(nc, 0.5f), *c = rnd(nc, 1.0f);
        float *win = rnd(nw, 1.0f), *xpre = rnd(nx, 1.0f);
        for (size_t i = 0; i < nc; i++) dt[i] = fabsf(dt[i]), c[i] = -fabsf(c[i]) * (float)(1 + i / (size_t)H);
        hm[l] = (stree_mamba2_commit_params){.state = state, .xbc = xbc, .dt = dt, .c = c, .n_heads = H,
                                             .head_dim = P, .n_groups = G_, .d_state = N};
        hc[l] = (stree_conv_commit_params){.window = win, .x = xpre, .channels = Cd, .k = K};
        dm[l] = hm[l], dc[l] = hc[l];
        dm[l].state = dev(state, ns * 4), dm[l].xbc = dev(xbc, nx * 4), dm[l].dt = dev(dt, nc * 4);
        dm[l].c = dev(c, nc * 4), dc[l].window = dev(win, nw * 4), dc[l].x = dev(xpre, nx * 4);
        host[nh++] = state, host[nh++] = xbc, host[nh++] = dt, host[nh++] = c, host[nh++] = win, host[nh++] = xpre;
        devs[nd++] = dm[l].state, devs[nd++] = (void *)dm[l].xbc, devs[nd++] = (void *)dm[l].dt;
        devs[nd++] = (void *)dm[l].c, devs[nd++] = dc[l].window, devs[nd++] = (void *)dc[l].x;
    }
    for (int l = 0; l < NA; l++) {
        size_t ncache = (size_t)CTX * row, ntree = (size_t)NT * row;
        float *kc = rnd(ncache, 1.0f), *vc = rnd(ncache, 1.0f), *kt = rnd(ntree, 1.0f), *vt = rnd(ntree, 1.0f);
        hk[l] = (stree_kv_commit_params){.k_cache = kc, .v_cache = vc, .k_tree = kt, .v_tree = vt, .row = row};
        dk[l] = hk[l];
        dk[l].k_cache = dev(kc, ncache * 4), dk[l].v_cache = dev(vc, ncache * 4);
        dk[l].k_tree = dev(kt, ntree * 4), dk[l].v_tree = dev(vt, ntree * 4);
        host[nh++] = kc, host[nh++] = vc, host[nh++] = kt, host[nh++] = vt;
        devs[nd++] = dk[l].k_cache, devs[nd++] = dk[l].v_cache, devs[nd++] = (void *)dk[l].k_tree;
        devs[nd++] = (void *)dk[l].v_tree;
    }
    int32_t starts[2 * (NM + 1)] = {0};
    for (int l = 0; l < NM; l++) {
        starts[l + 1] = starts[l] + hm[l].n_heads;
        starts[NM + 2 + l] = starts[NM + 1 + l] + (hc[l].channels + 255) / 256;
    }
    stree_commit_all_params hp = {.mamba = hm, .conv = hc, .kv = hk, .n_mamba = NM, .n_attn = NA, .path = path,
                                  .len = &len, .n_past = &n_past, .max_len = NT, .item_start = starts,
                                  .n_ssm_items = starts[NM], .n_conv_items = starts[2 * NM + 1],
                                  .max_d_state = 128, .max_conv_k = 4, .max_head_dim = 64};
    stree_cpu_commit_all(&hp);
    stree_commit_all_params dp = hp;
    dp.mamba = dev(dm, sizeof dm), dp.conv = dev(dc, sizeof dc), dp.kv = dev(dk, sizeof dk);
    dp.path = dev(path, (size_t)len * 4), dp.len = dev(&len, 4), dp.n_past = dev(&n_past, 4);
    dp.item_start = dev(starts, sizeof starts);
    devs[nd++] = (void *)dp.mamba, devs[nd++] = (void *)dp.conv, devs[nd++] = (void *)dp.kv;
    devs[nd++] = (void *)dp.path, devs[nd++] = (void *)dp.len, devs[nd++] = (void *)dp.n_past;
    devs[nd++] = (void *)dp.item_start;
    G->commit_all(&dp);
    for (int l = 0; l < NM; l++) {
        size_t ns = (size_t)hm[l].n_heads * hm[l].head_dim * hm[l].d_state;
        expect_close("commit_all ssm state", dm[l].state, hm[l].state, ns, 1e-4);
        expect_close("commit_all conv window", dc[l].window, hc[l].window, (size_t)(hc[l].k - 1) * hc[l].channels, 0);
    }
    for (int l = 0; l < NA; l++) {
        expect_close("commit_all k cache", dk[l].k_cache, hk[l].k_cache, (size_t)CTX * row, 0);
        expect_close("commit_all v cache", dk[l].v_cache, hk[l].v_cache, (size_t)CTX * row, 0);
    }
    for (int i = 0; i < nd; i++) G->free(devs[i]);
    for (int i = 0; i < nh; i++) free(host[i]);
}

Test(cuda_ops, elementwise_route_topk_moe) {
    int32_t n = 9, d = 70, V = 333, E = 6, top_k = 2, D = 40, F = 24;
    /* ffn_act */
    float *g = rnd((size_t)n * d, 3.0f), *u = rnd((size_t)n * d, 3.0f), *ref = malloc((size_t)n * d * 4);
    for (int act = 0; act < 2; act++) {
        stree_ffn_act_params p = {.gate = g, .up = u, .out = ref, .n = n, .d = d, .ld = d,
                                  .act = act ? STREE_ACT_RELU2 : STREE_ACT_SILU, .gate_mult = 0.8f};
        stree_cpu_ffn_act(&p);
        float *dg = dev(g, (size_t)n * d * 4), *du = dev(u, (size_t)n * d * 4), *dout = poisoned((size_t)n * d);
        stree_ffn_act_params q = p;
        q.gate = dg, q.up = du, q.out = dout;
        G->ffn_act(&q);
        expect_close("ffn_act", dout, ref, (size_t)n * d, 1e-5);
        G->free(dg), G->free(du), G->free(dout);
    }
    /* axpby, embed */
    stree_axpby_params ap = {.x = g, .y = ref, .n = n, .cols = d - 3, .ldx = d, .ldy = d, .alpha = 0.3f, .beta = 1.0f};
    memcpy(ref, u, (size_t)n * d * 4);
    stree_cpu_axpby(&ap);
    float *dg = dev(g, (size_t)n * d * 4), *dref = dev(u, (size_t)n * d * 4);
    stree_axpby_params aq = ap;
    aq.x = dg, aq.y = dref;
    G->axpby(&aq);
    expect_close("axpby", dref, ref, (size_t)n * d, 1e-6);
    int32_t tokens[9] = {3, 0, 332, 17, 17, 200, 1, 99, 45};
    float *table = rnd((size_t)V * d, 1.0f), *emb = malloc((size_t)n * d * 4);
    stree_embed_params ep = {.tokens = tokens, .table = table, .out = emb, .n = n, .d = d, .mult = 1.5f};
    stree_cpu_embed(&ep);
    int32_t *dtok = dev(tokens, sizeof tokens);
    float *dtable = dev(table, (size_t)V * d * 4), *demb = poisoned((size_t)n * d);
    stree_embed_params eq = ep;
    eq.tokens = dtok, eq.table = dtable, eq.out = demb;
    G->embed(&eq);
    expect_close("embed", demb, emb, (size_t)n * d, 0);
    /* topk with log-probs (ties planted) */
    float *lg = rnd((size_t)n * V, 5.0f);
    lg[10] = lg[11] = 9.0f;
    int32_t idx[9 * 4], didx_h[9 * 4];
    float logp[9 * 4];
    stree_topk_params tp = {.x = lg, .idx = idx, .logp = logp, .n = n, .vocab = V, .k = 4};
    stree_cpu_topk(&tp);
    float *dlg = dev(lg, (size_t)n * V * 4), *dlogp = poisoned((size_t)n * 4);
    int32_t *didx = G->alloc(sizeof idx);
    stree_topk_params tq = tp;
    tq.x = dlg, tq.idx = didx, tq.logp = dlogp;
    G->topk(&tq);
    G->download(didx_h, didx, sizeof idx);
    for (int i = 0; i < n * 4; i++) cr_expect_eq(didx_h[i], idx[i], "topk index %d: %d vs %d", i, didx_h[i], idx[i]);
    expect_close("topk logp", dlogp, logp, (size_t)n * 4, 1e-5);
    /* routing, all three kinds */
    float *rl = rnd((size_t)n * E, 2.0f), *rb = rnd((size_t)E, 0.5f), rw[9 * 2];
    int32_t re[9 * 2], dre_h[9 * 2];
    for (int kind = 0; kind < 3; kind++) {
        stree_route_params rp = {.logits = rl, .maybe_bias = rb, .experts = re, .weights = rw, .n = n, .n_experts = E,
                                 .top_k = top_k, .norm_topk = 1, .kind = (stree_router_kind)kind, .scale = 1.3f};
        stree_cpu_route(&rp);
        float *drl = dev(rl, (size_t)n * E * 4), *drb = dev(rb, (size_t)E * 4), *drw = poisoned((size_t)n * top_k);
        int32_t *dre = G->alloc(sizeof re);
        stree_route_params rq = rp;
        rq.logits = drl, rq.maybe_bias = drb, rq.experts = dre, rq.weights = drw;
        G->route(&rq);
        G->download(dre_h, dre, sizeof re);
        for (int i = 0; i < n * top_k; i++) cr_expect_eq(dre_h[i], re[i], "route kind %d slot %d", kind, i);
        expect_close("route weights", drw, rw, (size_t)n * top_k, 1e-5);
        G->free(drl), G->free(drb), G->free(drw), G->free(dre);
    }
    /* routed experts on bf16 weights (reference on bf16-rounded weights) */
    for (int act = 0; act < 2; act++) {
        const void *hg[6], *hu[6], *hd[6], *dtab_h[18];
        float *wg[6], *wu[6], *wd[6];
        for (int e = 0; e < E; e++) {
            wg[e] = rnd((size_t)F * D, 0.3f), wu[e] = rnd((size_t)F * D, 0.3f), wd[e] = rnd((size_t)D * F, 0.3f);
            dtab_h[e] = G->upload_matrix(wg[e], F, D);
            dtab_h[E + e] = G->upload_matrix(wu[e], F, D);
            dtab_h[2 * E + e] = G->upload_matrix(wd[e], D, F);
            for (int i = 0; i < F * D; i++) wg[e][i] = bf16_round(wg[e][i]), wu[e][i] = bf16_round(wu[e][i]);
            for (int i = 0; i < D * F; i++) wd[e][i] = bf16_round(wd[e][i]);
            hg[e] = wg[e], hu[e] = wu[e], hd[e] = wd[e];
        }
        float *x = rnd((size_t)n * D, 1.0f), *out = rnd((size_t)n * D, 1.0f), *scr = malloc((size_t)3 * F * 4);
        float *dxm = dev(x, (size_t)n * D * 4), *dout = dev(out, (size_t)n * D * 4);
        float *dscr = G->alloc((size_t)n * top_k * 3 * F * 4);
        int32_t *dre = dev(re, sizeof re);
        float *drw = dev(rw, sizeof rw);
        const void **dtab = dev(dtab_h, sizeof dtab_h);
        stree_moe_params mp = {.x = x, .experts = re, .weights = rw, .gate = hg, .up = hu, .down = hd,
                               .wtype = STREE_WTYPE_F32, .out = out, .scratch = scr, .n = n, .d_model = D,
                               .d_expert = F, .top_k = top_k, .act = act ? STREE_ACT_RELU2 : STREE_ACT_SILU};
        stree_cpu_moe(&mp);
        stree_moe_params mq = mp;
        mq.x = dxm, mq.experts = dre, mq.weights = drw, mq.gate = dtab, mq.up = dtab + E, mq.down = dtab + 2 * E;
        mq.wtype = STREE_WTYPE_BF16, mq.out = dout, mq.scratch = dscr;
        G->moe(&mq);
        expect_close("moe", dout, out, (size_t)n * D, 1e-4);
        for (int e = 0; e < 3 * E; e++) G->free((void *)dtab_h[e]);
        for (int e = 0; e < E; e++) free(wg[e]), free(wu[e]), free(wd[e]);
        G->free(dxm), G->free(dout), G->free(dscr), G->free(dre), G->free(drw), G->free((void *)dtab);
        free(x), free(out), free(scr);
    }
    G->free(dg), G->free(dref), G->free(dtok), G->free(dtable), G->free(demb), G->free(dlg), G->free(dlogp),
        G->free(didx);
    free(g), free(u), free(ref), free(table), free(emb), free(lg), free(rl), free(rb);
}

/* ---------------------------------------------------------------- sampling ops
 * The sampling ops are built to agree bit for bit (kernels/sample_math.h: one exp polynomial,
 * fixed-point sums, integer inverse-CDF draws, the same total rank order), so these cases demand
 * exact equality: the same distributions from the same logits, the same tokens from the same
 * distributions and counter-based uniforms. No tolerance is needed for ties: equal logits rank by
 * index on both backends. */

/* n rows of logits [n, V]: scaled normals with planted ties and a -inf */
static float *sample_logits(int32_t n, int32_t V, float scale) {
    float *x = rnd((size_t)n * V, scale);
    for (int32_t i = 0; i < n; i++) {
        float *r = x + (size_t)i * V;
        r[V / 2] = r[V / 3] = r[7] = scale; /* a three-way tie near the top */
        r[11] = -INFINITY;
    }
    return x;
}

static void expect_same_ints(const char *what, const int32_t *d, const int32_t *ref, size_t n) {
    int32_t *h = malloc(n * sizeof *h + 4);
    G->download(h, d, n * sizeof *h);
    cr_assert_null(G->take_error(), "%s: a CUDA call failed", what);
    size_t bad = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (h[i] != ref[i] && bad++ == 0) first = i;
    cr_expect_eq(bad, 0, "%s: %zu of %zu differ, first at %zu: %d vs %d (seed %u)", what, bad, n, first,
                 first < n ? h[first] : 0, first < n ? ref[first] : 0, seed);
    free(h);
}

static void expect_same_floats(const char *what, const float *d, const float *ref, size_t n) {
    float *h = malloc(n * sizeof *h + 4);
    G->download(h, d, n * sizeof *h);
    cr_assert_null(G->take_error(), "%s: a CUDA call failed", what);
    size_t bad = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&h[i], &ref[i], 4) && bad++ == 0) first = i;
    cr_expect_eq(bad, 0, "%s: %zu of %zu differ, first at %zu: %.9g vs %.9g (seed %u)", what, bad, n, first,
                 first < n ? h[first] : 0.0, first < n ? ref[first] : 0.0, seed);
    free(h);
}

Test(cuda_ops, sample_probs) {
    /* a small vocabulary with many rows and a real one (Qwen-sized) with a few */
    static const int32_t vocabs[2] = {1000, 151936}, rows[2] = {9, 3};
    /* temperature, top_k, top_p, min_p, repetition penalty */
    static const float cfg[][5] = {{1.0f, 0, 1.0f, 0, 1.0f},      {0.7f, 40, 1.0f, 0, 1.0f},  {1.3f, 0, 0.9f, 0, 1.0f},
                                   {0.8f, 50, 0.8f, 0.05f, 1.3f}, {1.0f, 1, 1.0f, 0, 1.0f},   {2.0f, 0, 0.3f, 0, 0.7f},
                                   {1.0f, 0, 1.0f, 0.2f, 1.1f},   {0.5f, 900, 0.95f, 0, 1.0f}};
    for (int vi = 0; vi < 2; vi++) {
        int32_t V = vocabs[vi], n = rows[vi], n_hist = 37, first = 2, nt = first + n;
        int32_t parent[64], depth[64], tokens[64], hist[37];
        random_tree(nt, parent, depth, 0);
        for (int32_t i = 0; i < nt; i++) tokens[i] = (int32_t)(rand_r(&seed) % (unsigned)V);
        for (int32_t i = 0; i < n_hist; i++) hist[i] = (int32_t)(rand_r(&seed) % (unsigned)V);
        hist[3] = hist[9] = 7; /* repeats and a tied token in the context */
        float *lg = sample_logits(n, V, 4.0f), *ref = malloc((size_t)n * V * 4);
        uint64_t *scratch = malloc((size_t)V * 8);
        float *dlg = dev(lg, (size_t)n * V * 4);
        int32_t *dtok = dev(tokens, (size_t)nt * 4), *dpar = dev(parent, (size_t)nt * 4), *dhist = dev(hist, sizeof hist);
        for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
            stree_sample_probs_params p = {.logits = lg, .probs = ref, .history = hist, .tokens = tokens, .parent = parent,
                                           .scratch = scratch, .n = n, .vocab = V, .first = first, .n_history = n_hist,
                                           .ld = V, .temperature = cfg[c][0], .top_k = (int32_t)cfg[c][1],
                                           .top_p = cfg[c][2], .min_p = cfg[c][3], .repetition_penalty = cfg[c][4]};
            stree_cpu_sample_probs(&p);
            float *dp = poisoned((size_t)n * V);
            stree_sample_probs_params q = p;
            q.logits = dlg, q.probs = dp, q.history = dhist, q.tokens = dtok, q.parent = dpar, q.scratch = NULL;
            G->sample_probs(&q);
            char what[96];
            snprintf(what, sizeof what, "sample_probs V=%d config %zu", V, c);
            expect_same_floats(what, dp, ref, (size_t)n * V);
            if (cfg[c][1] > 0) { /* the kept set has exactly top_k entries unless top-p / min-p cut deeper */
                int32_t kept = 0;
                for (int32_t v = 0; v < V; v++) kept += ref[v] > 0.0f;
                cr_expect_leq(kept, (int32_t)cfg[c][1], "%s: %d kept", what, kept);
            }
            G->free(dp);
        }
        G->free(dlg), G->free(dtok), G->free(dpar), G->free(dhist);
        free(lg), free(ref), free(scratch);
    }
}

/* n random distributions [n, V]: softmax of random logits with some exact zeros; row 1 has 3 tokens */
static float *sample_dists(int32_t n, int32_t V) {
    float *x = rnd((size_t)n * V, 3.0f);
    for (int32_t i = 0; i < n; i++) {
        float *r = x + (size_t)i * V;
        double s = 0.0;
        for (int32_t v = 0; v < V; v++) {
            r[v] = (i == 1 ? v % 97 == 5 && v < 250 : rand_r(&seed) % 5 != 0) ? expf(r[v]) : 0.0f;
            s += r[v];
        }
        for (int32_t v = 0; v < V; v++) r[v] = (float)(r[v] / s);
    }
    return x;
}

Test(cuda_ops, sample_draw) {
    int32_t n = 6, V = 50000, m = 5;
    float *x = sample_dists(n, V);
    int32_t ref[6 * 5];
    float *dx = dev(x, (size_t)n * V * 4);
    for (int rep = 0; rep < 4; rep++) {
        uint64_t s64 = ((uint64_t)rand_r(&seed) << 32) | (uint64_t)rand_r(&seed);
        stree_sample_draw_params p = {.probs = x, .out = ref, .n = n, .vocab = V, .m = m, .ld = V, .seed = s64,
                                      .counter = (uint64_t)rep * 1000};
        stree_cpu_sample_draw(&p);
        int32_t *dout = (int32_t *)poisoned((size_t)n * m);
        stree_sample_draw_params q = p;
        q.probs = dx, q.out = dout;
        G->sample_draw(&q);
        expect_same_ints("sample_draw", dout, ref, (size_t)n * m);
        cr_expect_eq(ref[m + 3], -1, "row 1 has 3 tokens: the 4th draw finds no mass");
        G->free(dout);
    }
    G->free(dx);
    free(x);
}

Test(cuda_ops, sample_accept) {
    int32_t n = 15, V = 3000;
    int32_t parent[64], depth[64], tokens[64], rank[64], has_q[64];
    random_tree(n, parent, depth, 0);
    float *p = sample_dists(n, V), *q = sample_dists(n, V);
    /* children carry likely tokens of q (distinct among siblings), so some are accepted */
    tokens[0] = 0;
    for (int32_t i = 1; i < n; i++) {
        int32_t r = 0;
        for (int32_t j = 1; j < i; j++) r += parent[j] == parent[i];
        rank[i] = r;
        const float *qr = q + (size_t)parent[i] * V;
        int32_t best = -1;
        for (int32_t v = 0; v < V; v++) {
            int taken = 0;
            for (int32_t j = 1; j < i && !taken; j++) taken = parent[j] == parent[i] && tokens[j] == v;
            if (!taken && (best < 0 || qr[v] > qr[best])) best = v;
        }
        tokens[i] = best;
    }
    rank[0] = 0;
    for (int32_t i = 0; i < n; i++) has_q[i] = rand_r(&seed) % 4 != 0;
    float *dp = dev(p, (size_t)n * V * 4), *dq = dev(q, (size_t)n * V * 4), *dwork = poisoned((size_t)2 * V);
    int32_t *dtok = dev(tokens, (size_t)n * 4), *dpar = dev(parent, (size_t)n * 4), *drank = dev(rank, (size_t)n * 4);
    int32_t *dhas = dev(has_q, (size_t)n * 4);
    float *work = malloc((size_t)2 * V * 4);
    int32_t out[66];
    int accepted = 0;
    for (int rep = 0; rep < 60; rep++) {
        int mss = rep % 3 != 2, brk = rep % 5 == 4;
        stree_sample_accept_params a = {.p = p, .maybe_q = mss ? q : NULL, .tokens = tokens, .parent = parent,
                                        .rank = rank, .has_q = has_q, .work = work, .out = out, .n = n, .vocab = V,
                                        .break_residual = brk, .seed = 12345u + (uint64_t)seed, .counter = (uint64_t)rep * 64};
        stree_cpu_sample_accept(&a);
        accepted += out[0] - 1;
        int32_t *dout = (int32_t *)poisoned((size_t)n + 2);
        stree_sample_accept_params b = a;
        b.p = dp, b.maybe_q = mss ? dq : NULL, b.tokens = dtok, b.parent = dpar, b.rank = drank, b.has_q = dhas;
        b.work = dwork, b.out = dout;
        G->sample_accept(&b);
        char what[64];
        snprintf(what, sizeof what, "sample_accept rep %d (mss %d, break %d)", rep, mss, brk);
        expect_same_ints(what, dout, out, (size_t)out[0] + 2);
        G->free(dout);
    }
    cr_log_info("sample_accept: %d nodes accepted over 60 walks", accepted);
    G->free(dp), G->free(dq), G->free(dwork), G->free(dtok), G->free(dpar), G->free(drank), G->free(dhas);
    free(p), free(q), free(work);
}

#else
Test(cuda_ops, not_built) { cr_skip_test("this build has no CUDA backend (configure with -DSTREE_CUDA=ON)"); }
#endif
