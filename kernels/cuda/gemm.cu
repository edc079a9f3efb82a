// CUDA backend: the cuBLASLt GEMM of the matmuls the GEMV does not take (more than one row), with
// the algorithm chosen once per shape.
//
// cuBLAS's heuristic pick is often not the fastest for the few-row products of a verify: on the H200,
// for 64 rows, the 4096 x 8192 out projection takes 24.9 us with it and 21.8 us with another of the
// algorithms the same heuristic lists, and the 131072 x 4096 LM head 302 against 273 us
// (bench/micro/cublaslt_algos.cu, docs/PERF.md). So the first eager call of a shape whose row count
// is a power of two up to GEMM_TUNE_MAX_ROWS (the forward's graph buckets: a handful of shapes per
// model) times the heuristic's candidates on the real operands (into a scratch output, the L2 flushed
// before each run, as the weights stream from DRAM in a forward) and keeps the fastest when it beats
// the heuristic's first by GEMM_TUNE_MARGIN; the choice then holds for the process, for the eager calls
// and the graphs captured after them. Other shapes take the heuristic's first. Tuning a shape costs
// ~40 runs of it (about 15 ms for the 8B-like LM head at 64 rows), once.
//
// Timing makes the choice, so two processes can pick differently when two algorithms are within
// noise, and their results can then differ in the last bits (a different split of k). Within a
// process a shape always gets the same algorithm. STREE_CUDA_GEMM_TUNE=0 turns tuning off: every
// shape takes the heuristic's first, run to run the same.
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

#define GEMM_TUNE_MAX_ROWS 128 /* verify trees; larger products (prefill) take the heuristic's pick */
#define GEMM_CANDIDATES 8
#define GEMM_TUNE_RUNS 5
#define GEMM_TUNE_MARGIN 0.97f /* a candidate replaces the heuristic's first only when this much faster */
#define GEMM_CACHE 1024        /* shapes remembered (open addressing); past that, heuristic each call */
#define GEMM_WORKSPACE ((size_t)64 << 20)

struct gemm_key {
    int m, n, k, ldy, accumulate, align_w, align_x, align_y; /* alignments in bytes: 2, 4, 8 or 16 */
};

// The descriptors of row-major y[n, m] (ldy) = x[n, k] w[m, k]^T, as column-major
// Y (m x n) = W^T (k x m)^T X (k x n).
struct gemm_desc {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t w, x, y;
};

struct gemm_entry { /* a remembered shape: its descriptors and algorithm, kept for the process */
    bool used;
    gemm_key key;
    gemm_desc d;
    cublasLtMatmulAlgo_t algo;
};

static gemm_entry g_cache[GEMM_CACHE];
static int g_cache_used;
static cublasLtHandle_t g_lt;
static void *g_workspace;

/* the handle and the fixed workspace (created outside any capture: graphs never allocate) */
void stree_cuda_gemm_init(void) {
    if (g_lt) return;
    CUBLAS_OK(cublasLtCreate(&g_lt));
    CUDA_OK(cudaMalloc(&g_workspace, GEMM_WORKSPACE));
}

static bool tuning_on(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("STREE_CUDA_GEMM_TUNE");
        on = !e || atoi(e) != 0;
    }
    return on;
}

static int alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    return (a & 15) == 0 ? 16 : (a & 7) == 0 ? 8 : (a & 3) == 0 ? 4 : 2;
}

static unsigned key_hash(const gemm_key &k) {
    unsigned h = 2166136261u;
    const int v[8] = {k.m, k.n, k.k, k.ldy, k.accumulate, k.align_w, k.align_x, k.align_y};
    for (int x : v) h = (h ^ (unsigned)x) * 16777619u;
    return h;
}

// The key's entry (*found), else a free slot for it (NULL when the table is three-quarters full).
static gemm_entry *lookup(const gemm_key &key, bool *found) {
    *found = false;
    for (unsigned i = key_hash(key) % GEMM_CACHE, probes = 0; probes < GEMM_CACHE; i = (i + 1) % GEMM_CACHE, probes++) {
        gemm_entry *e = &g_cache[i];
        if (!e->used) return g_cache_used < GEMM_CACHE * 3 / 4 ? e : NULL;
        if (!memcmp(&e->key, &key, sizeof key)) {
            *found = true;
            return e;
        }
    }
    return NULL;
}

static void desc_destroy(gemm_desc *d) {
    if (d->y) cublasLtMatrixLayoutDestroy(d->y);
    if (d->x) cublasLtMatrixLayoutDestroy(d->x);
    if (d->w) cublasLtMatrixLayoutDestroy(d->w);
    if (d->op) cublasLtMatmulDescDestroy(d->op);
    *d = gemm_desc{};
}

static bool desc_create(gemm_desc *d, int m, int n, int k, int64_t ldy) {
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    *d = gemm_desc{};
    bool ok = cublasLtMatmulDescCreate(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&d->w, CUDA_R_16BF, k, m, k) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&d->x, CUDA_R_16BF, k, n, k) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&d->y, CUDA_R_32F, m, n, ldy) == CUBLAS_STATUS_SUCCESS;
    if (!ok) {
        stree_cuda_note("cuBLASLt: cannot describe a matmul", __FILE__, __LINE__);
        desc_destroy(d);
    }
    return ok;
}

static cublasStatus_t run(const gemm_desc &d, const cublasLtMatmulAlgo_t *algo, float alpha, const void *w, const void *x,
                          float beta, float *y) {
    return cublasLtMatmul(g_lt, d.op, &alpha, w, d.w, x, d.x, &beta, y, d.y, y, d.y, algo, g_workspace, GEMM_WORKSPACE,
                          stree_cuda_stream());
}

// The heuristic's candidates for these operands' alignments, best first; the count (0: none).
static int candidates(const gemm_desc &d, const gemm_key &key, cublasLtMatmulHeuristicResult_t (&res)[GEMM_CANDIDATES]) {
    cublasLtMatmulPreference_t pref = NULL;
    int got = 0;
    size_t ws = GEMM_WORKSPACE;
    const uint32_t align[4] = {(uint32_t)key.align_w, (uint32_t)key.align_x, (uint32_t)key.align_y, (uint32_t)key.align_y};
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    bool ok = cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) ==
                  CUBLAS_STATUS_SUCCESS;
    for (int i = 0; ok && i < 4; i++)
        ok = cublasLtMatmulPreferenceSetAttribute(pref, which[i], &align[i], sizeof align[i]) == CUBLAS_STATUS_SUCCESS;
    if (ok && cublasLtMatmulAlgoGetHeuristic(g_lt, d.op, d.w, d.x, d.y, d.y, pref, GEMM_CANDIDATES, res, &got) !=
                  CUBLAS_STATUS_SUCCESS)
        got = 0;
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    int n = 0;
    for (int i = 0; i < got; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS) res[n++] = res[i];
    return n;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// Median time of a candidate over GEMM_TUNE_RUNS runs into `scratch`, each after an L2 flush; a
// negative value when it fails to run.
static float time_candidate(const gemm_desc &d, const cublasLtMatmulAlgo_t *algo, const void *w, const void *x, float beta,
                            float *scratch, void *flush, size_t flush_bytes) {
    cudaStream_t s = stree_cuda_stream();
    cudaEvent_t ev[2 * GEMM_TUNE_RUNS];
    float t[GEMM_TUNE_RUNS];
    if (run(d, algo, 1.0f, w, x, beta, scratch) != CUBLAS_STATUS_SUCCESS) return -1.0f; /* warm-up */
    for (int r = 0; r < 2 * GEMM_TUNE_RUNS; r++) CUDA_OK(cudaEventCreate(&ev[r]));
    for (int r = 0; r < GEMM_TUNE_RUNS; r++) {
        CUDA_OK(cudaMemsetAsync(flush, r, flush_bytes, s));
        CUDA_OK(cudaEventRecord(ev[2 * r], s));
        run(d, algo, 1.0f, w, x, beta, scratch);
        CUDA_OK(cudaEventRecord(ev[2 * r + 1], s));
    }
    CUDA_OK(cudaEventSynchronize(ev[2 * GEMM_TUNE_RUNS - 1]));
    for (int r = 0; r < GEMM_TUNE_RUNS; r++) {
        t[r] = 0.0f;
        CUDA_OK(cudaEventElapsedTime(&t[r], ev[2 * r], ev[2 * r + 1]));
    }
    for (int r = 0; r < 2 * GEMM_TUNE_RUNS; r++) CUDA_OK(cudaEventDestroy(ev[r]));
    qsort(t, GEMM_TUNE_RUNS, sizeof *t, cmp_float);
    return t[GEMM_TUNE_RUNS / 2];
}

// The index of the candidate to keep: the fastest, when it beats the first by the margin.
static int tune(const gemm_desc &d, const cublasLtMatmulHeuristicResult_t *res, int n_res, int n, int64_t ldy,
                const void *w, const void *x, float beta) {
    int dev = 0, l2 = 0;
    CUDA_OK(cudaGetDevice(&dev));
    CUDA_OK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    size_t flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20), y_bytes = (size_t)n * (size_t)ldy * sizeof(float);
    void *flush = NULL;
    float *scratch = NULL;
    if (cudaMalloc(&flush, flush_bytes) != cudaSuccess || cudaMalloc(&scratch, y_bytes) != cudaSuccess) {
        cudaGetLastError(); /* no memory to tune with: keep the heuristic's pick */
        if (flush) cudaFree(flush);
        return 0;
    }
    CUDA_OK(cudaMemsetAsync(scratch, 0, y_bytes, stree_cuda_stream()));
    float t0 = time_candidate(d, &res[0].algo, w, x, beta, scratch, flush, flush_bytes);
    int best = 0;
    float t_best = t0;
    for (int i = 1; i < n_res; i++) {
        float t = time_candidate(d, &res[i].algo, w, x, beta, scratch, flush, flush_bytes);
        if (t > 0.0f && (t_best < 0.0f || t < t_best)) best = i, t_best = t;
    }
    cudaGetLastError(); /* a candidate that failed to run is skipped, not an error */
    CUDA_OK(cudaFree(scratch));
    CUDA_OK(cudaFree(flush));
    return t0 < 0.0f || t_best < GEMM_TUNE_MARGIN * t0 ? best : 0;
}

// y[n, m] (ldy) = alpha * x[n, k] w[m, k]^T + beta * y, bf16 operands, fp32 accumulation and output
extern "C" void stree_cuda_gemm_bf16(int m, int n, int k, float alpha, const void *w, const void *x, float beta, float *y,
                                     int64_t ldy) {
    stree_cuda_gemm_init();
    gemm_key key = {m, n, k, (int)ldy, beta != 0.0f, alignment(w), alignment(x), alignment(y)};
    bool found = false;
    gemm_entry *e = lookup(key, &found);
    if (found) {
        CUBLAS_OK(run(e->d, &e->algo, alpha, w, x, beta, y));
        return;
    }
    gemm_desc d;
    if (!desc_create(&d, m, n, k, ldy)) return;
    cublasLtMatmulHeuristicResult_t res[GEMM_CANDIDATES];
    int n_res = candidates(d, key, res);
    if (n_res == 0) {
        stree_cuda_note("cuBLASLt has no algorithm for a bf16 matmul of this shape", __FILE__, __LINE__);
        desc_destroy(&d);
        return;
    }
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    CUDA_OK(cudaStreamIsCapturing(stree_cuda_stream(), &cap));
    bool keep = e && cap == cudaStreamCaptureStatusNone; /* no timing inside a capture, and nothing kept */
    bool tunable = n <= GEMM_TUNE_MAX_ROWS && (n & (n - 1)) == 0; /* the graph buckets: a few shapes to time */
    int pick = keep && tuning_on() && tunable && n_res > 1 ? tune(d, res, n_res, n, ldy, w, x, beta) : 0;
    CUBLAS_OK(run(d, &res[pick].algo, alpha, w, x, beta, y));
    if (keep) {
        e->used = true, e->key = key, e->d = d, e->algo = res[pick].algo;
        g_cache_used++;
    } else {
        desc_destroy(&d); /* after the launch: a captured graph keeps what it needs */
    }
}
