/* CPU backend memory: device buffers are plain host memory. */
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
