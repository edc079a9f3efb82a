/* CPU backend memory: device buffers are plain host memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

void *stree_cpu_alloc(size_t bytes) { return calloc(1, bytes ? bytes : 1); }
void stree_cpu_free(void *p) { free(p); }
void stree_cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
void stree_cpu_zero(void *dst, size_t bytes) {
    if (bytes) memset(dst, 0, bytes);
}
void *stree_cpu_upload_matrix(const float *src, int64_t rows, int64_t cols) {
    size_t bytes = (size_t)rows * (size_t)cols * sizeof(float);
    void *p = malloc(bytes ? bytes : 1);
    if (p && bytes) memcpy(p, src, bytes);
    return p;
}
void stree_cpu_sync(void) {}

void *stree_cpu_random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
    size_t n = (size_t)rows * (size_t)cols;
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) return NULL;
    float scale = 1.0f / sqrtf((float)(cols > 0 ? cols : 1));
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * stree_random_unit(seed, i) - 1.0f) * scale;
    return p;
}

float *stree_cpu_random_vector(int64_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * stree_random_unit(seed, (uint64_t)i);
    return p;
}
