/* Test helpers: golden fixtures (golden.safetensors: input_ids I32 [1,T], logits F32 [1,T,V],
 * greedy_ids I32 [1,G]) and temporary directories. */
#ifndef STREE_TESTS_GOLDEN_H
#define STREE_TESTS_GOLDEN_H

#include <stdint.h>

typedef struct golden {
    int32_t *input_ids;  /* [n_input] */
    int32_t n_input;
    float *logits;       /* [n_input, vocab] */
    int32_t vocab;
    int32_t *greedy_ids; /* [n_greedy] */
    int32_t n_greedy;
} golden;

/* Loads DIR/golden.safetensors; returns 0 on success (message on stderr otherwise). */
int golden_load(const char *dir, golden *g);
void golden_free(golden *g);

/* The backend the suites run on: STREE_TEST_BACKEND=cuda selects CUDA (the GPU machine), else CPU. */
#include "stree.h"
stree_backend test_backend(void);
/* Relative tolerance against fp32 references: 1e-4 on the fp32 CPU backend, 2e-2 with bf16 CUDA
 * weights and activations. */
double test_golden_tol(void);
/* Tolerance for equivalences that are exact in real arithmetic (tree vs sequential): 1e-5 on CPU,
 * 2e-2 on CUDA (bf16 GEMM inputs, batch-dependent cuBLAS kernels). */
double test_equiv_tol(void);
/* Loads tests/fixtures/<name> on the test backend (criterion assert on failure). */
struct stree_model *test_load_fixture(const char *name);

/* Absolute path of tests/fixtures/<name> in the source tree (static buffer). */
const char *fixture_dir(const char *name);

/* mkdtemp under /tmp; returns a static path. */
const char *temp_dir(void);
/* rm -r of a temp dir made by temp_dir. */
void temp_dir_remove(const char *dir);
/* Writes `text` to dir/name; returns 0 on success. */
int write_text(const char *dir, const char *name, const char *text);

#endif
