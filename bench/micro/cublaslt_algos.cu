// Which cuBLASLt algorithms the 8B-like matmul shapes get at verify sizes, and what each costs: the
// default cublasGemmEx, then every algorithm cublasLtMatmulAlgoGetHeuristic offers (all reduction
// schemes, then none: no split-K reduction pass). The weights rotate over enough copies to miss L2.
// On the GPU machine, from bench/micro:
//   nvcc -arch=sm_90 -std=c++17 -O3 -o /tmp/ltalgos cublaslt_algos.cu -lcublasLt -lcublas && /tmp/ltalgos
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>

#define OK(x) do { int rc_ = (int)(x); if (rc_) { fprintf(stderr, "%s:%d: %s -> %d\n", __FILE__, __LINE__, #x, rc_); exit(1); } } while (0)

static cudaStream_t s;
static const int REPS = 30;

struct shape { int m, k; const char *name; };

static double time_fn(void (*f)(void *, int), void *ctx, int copies) {
    for (int i = 0; i < 3; i++) f(ctx, i % copies);
    cudaEvent_t a, b;
    cudaEventCreate(&a), cudaEventCreate(&b);
    cudaEventRecord(a, s);
    for (int i = 0; i < REPS; i++) f(ctx, i % copies);
    cudaEventRecord(b, s);
    OK(cudaEventSynchronize(b));
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    cudaEventDestroy(a), cudaEventDestroy(b);
    return ms * 1e3 / REPS;
}

struct ctx_t {
    int m, k, n;
    __nv_bfloat16 **w, *x;
    float *y;
    cublasHandle_t h;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    void *ws;
    size_t ws_size;
};

static void run_gemmex(void *c_, int i) {
    ctx_t *c = (ctx_t *)c_;
    float alpha = 1.0f, beta = 1.0f;
    OK(cublasGemmEx(c->h, CUBLAS_OP_T, CUBLAS_OP_N, c->m, c->n, c->k, &alpha, c->w[i], CUDA_R_16BF, c->k, c->x,
                    CUDA_R_16BF, c->k, &beta, c->y, CUDA_R_32F, c->m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void run_lt(void *c_, int i) {
    ctx_t *c = (ctx_t *)c_;
    float alpha = 1.0f, beta = 1.0f;
    OK(cublasLtMatmul(c->lt, c->op, &alpha, c->w[i], c->la, c->x, c->lb, &beta, c->y, c->lc, c->y, c->lc, &c->algo,
                      c->ws, c->ws_size, s));
}

static int attr(const cublasLtMatmulAlgo_t *a, cublasLtMatmulAlgoConfigAttributes_t which) {
    int v = 0;
    size_t got = 0;
    uint32_t u = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, which, &u, sizeof u, &got) == 0 && got == 4) v = (int)u;
    return v;
}

int main(void) {
    OK(cudaStreamCreate(&s));
    shape shapes[] = {{18560, 4096, "mamba in_proj"}, {4096, 8192, "mamba out_proj"}, {21504, 4096, "mlp up"},
                      {4096, 21504, "mlp down"}, {6144, 4096, "attn qkv"}, {4096, 4096, "attn o"},
                      {131072, 4096, "lm head"}};
    ctx_t c = {};
    OK(cublasCreate(&c.h));
    OK(cublasSetStream(c.h, s));
    OK(cublasLtCreate(&c.lt));
    c.ws_size = (size_t)64 << 20;
    OK(cudaMalloc(&c.ws, c.ws_size));
    OK(cudaMalloc(&c.x, (size_t)64 * 21504 * 2));
    OK(cudaMalloc(&c.y, (size_t)64 * 131072 * 4));
    OK(cudaMemset(c.x, 0, (size_t)64 * 21504 * 2));
    OK(cudaMemset(c.y, 0, (size_t)64 * 131072 * 4));
    for (const shape &sh : shapes) {
        c.m = sh.m, c.k = sh.k;
        size_t bytes = (size_t)sh.m * sh.k * 2;
        int copies = (int)((400u << 20) / bytes) + 1;
        if (copies > 8) copies = 8;
        c.w = (__nv_bfloat16 **)malloc(copies * sizeof *c.w);
        for (int i = 0; i < copies; i++) {
            OK(cudaMalloc(&c.w[i], bytes));
            OK(cudaMemset(c.w[i], 0x3c, bytes));
        }
        for (int n : {16, 32, 64}) {
            c.n = n;
            double t0 = time_fn(run_gemmex, &c, copies);
            printf("%-15s m=%6d k=%5d n=%2d  cublasGemmEx %7.1f us %5.0f GB/s\n", sh.name, sh.m, sh.k, n, t0, bytes / t0 / 1e3);
            OK(cublasLtMatmulDescCreate(&c.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
            cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
            OK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
            OK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
            OK(cublasLtMatrixLayoutCreate(&c.la, CUDA_R_16BF, sh.k, sh.m, sh.k));
            OK(cublasLtMatrixLayoutCreate(&c.lb, CUDA_R_16BF, sh.k, n, sh.k));
            OK(cublasLtMatrixLayoutCreate(&c.lc, CUDA_R_32F, sh.m, n, sh.m));
            for (int pass = 0; pass < 2; pass++) {
                cublasLtMatmulPreference_t pref;
                OK(cublasLtMatmulPreferenceCreate(&pref));
                OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &c.ws_size, sizeof c.ws_size));
                if (pass == 1) {
                    uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE;
                    OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask));
                }
                cublasLtMatmulHeuristicResult_t res[32];
                int got = 0;
                OK(cublasLtMatmulAlgoGetHeuristic(c.lt, c.op, c.la, c.lb, c.lc, c.lc, pref, 32, res, &got));
                for (int r = 0; r < got; r++) {
                    if (res[r].state != CUBLAS_STATUS_SUCCESS) continue;
                    c.algo = res[r].algo;
                    double t = time_fn(run_lt, &c, copies);
                    printf("   %s #%2d id=%3d tile=%3d splitk=%2d red=%d stages=%3d waves=%.2f ws=%zu  %7.1f us %5.0f GB/s\n",
                           pass ? "nored" : "any  ", r, attr(&c.algo, CUBLASLT_ALGO_CONFIG_ID),
                           attr(&c.algo, CUBLASLT_ALGO_CONFIG_TILE_ID), attr(&c.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                           attr(&c.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME), attr(&c.algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                           res[r].wavesCount, res[r].workspaceSize, t, bytes / t / 1e3);
                }
                cublasLtMatmulPreferenceDestroy(pref);
            }
            cublasLtMatrixLayoutDestroy(c.la), cublasLtMatrixLayoutDestroy(c.lb), cublasLtMatrixLayoutDestroy(c.lc);
            cublasLtMatmulDescDestroy(c.op);
            fflush(stdout);
        }
        for (int i = 0; i < copies; i++) cudaFree(c.w[i]);
        free(c.w);
    }
    return 0;
}
