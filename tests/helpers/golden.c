#define _XOPEN_SOURCE 700
#include "tests/helpers/golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>

#include "runtime/safetensors.h"

static int copy_tensor(const stree_checkpoint *ck, const char *name, stree_dtype dtype, void **out, int64_t *n,
                       int64_t *last_dim) {
    const stree_st_tensor *t = stree_checkpoint_find(ck, name);
    if (!t || t->dtype != dtype) {
        fprintf(stderr, "golden: tensor %s missing or of the wrong dtype\n", name);
        return -1;
    }
    *out = malloc(t->n_bytes ? t->n_bytes : 1);
    if (!*out) return -1;
    memcpy(*out, t->data, t->n_bytes);
    *n = t->n_elements;
    *last_dim = t->shape[t->ndim - 1];
    return 0;
}

int golden_load(const char *dir, golden *g) {
    memset(g, 0, sizeof *g);
    char path[1024];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    stree_checkpoint *ck;
    if (stree_checkpoint_open(path, &ck) != STREE_OK) {
        fprintf(stderr, "golden: %s\n", stree_last_error());
        return -1;
    }
    int64_t n_in, n_lg, n_gr, d_in, vocab, d_gr;
    int rc = copy_tensor(ck, "input_ids", STREE_DTYPE_I32, (void **)&g->input_ids, &n_in, &d_in);
    if (!rc) rc = copy_tensor(ck, "logits", STREE_DTYPE_F32, (void **)&g->logits, &n_lg, &vocab);
    if (!rc) rc = copy_tensor(ck, "greedy_ids", STREE_DTYPE_I32, (void **)&g->greedy_ids, &n_gr, &d_gr);
    stree_checkpoint_close(ck);
    if (rc) {
        golden_free(g);
        return -1;
    }
    g->n_input = (int32_t)n_in;
    g->vocab = (int32_t)vocab;
    g->n_greedy = (int32_t)n_gr;
    return n_lg == n_in * vocab ? 0 : -1;
}

void golden_free(golden *g) {
    free(g->input_ids);
    free(g->logits);
    free(g->greedy_ids);
    memset(g, 0, sizeof *g);
}

stree_backend test_backend(void) {
    const char *b = getenv("STREE_TEST_BACKEND");
    return b && !strcmp(b, "cuda") ? STREE_BACKEND_CUDA : STREE_BACKEND_CPU;
}

double test_golden_tol(void) { return test_backend() == STREE_BACKEND_CUDA ? 2e-2 : 1e-4; }
double test_equiv_tol(void) { return test_backend() == STREE_BACKEND_CUDA ? 2e-2 : 1e-5; }

struct stree_model *test_load_fixture(const char *name) {
    stree_model *m = NULL;
    stree_model_params mp = stree_model_default_params();
    mp.backend = test_backend();
    stree_status s = stree_model_load(fixture_dir(name), mp, &m);
    if (s != STREE_OK) {
        fprintf(stderr, "loading fixture %s: %s\n", name, stree_last_error());
        abort();
    }
    return m;
}

const char *fixture_dir(const char *name) {
    static char buf[1024];
    const char *root = getenv("STREE_FIXTURES"); /* another fixture folder, e.g. fresh from make_fixtures.py */
    if (root) snprintf(buf, sizeof buf, "%s/%s", root, name);
    else snprintf(buf, sizeof buf, "%s/tests/fixtures/%s", STREE_SOURCE_DIR, name);
    return buf;
}

const char *temp_dir(void) {
    static char buf[64];
    snprintf(buf, sizeof buf, "/tmp/stree-test-XXXXXX");
    return mkdtemp(buf);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void temp_dir_remove(const char *dir) {
    if (dir && !strncmp(dir, "/tmp/stree-test-", 16)) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t len = strlen(text);
    int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
    return fclose(f) ? -1 : rc;
}
