/* Arithmetic of the sampling ops shared by the CPU reference and the CUDA kernels, written so both
 * backends compute bit-identical results from identical logits (docs/SAMPLING.md):
 *  - exp by one fixed polynomial (libm and CUDA expf differ in the last bits); device code uses
 *    explicitly rounded multiplies/adds so nvcc never fuses them (kernels/cpu/sampling.c is built
 *    with -ffp-contract=off for the same reason);
 *  - every sum over the vocabulary in 64-bit fixed point, so the result does not depend on the
 *    summation order (sequential on the CPU, a tree on the GPU);
 *  - draws by integer inverse-CDF search, ranks by a total order on (value, index). */
#ifndef STREE_KERNELS_SAMPLE_MATH_H
#define STREE_KERNELS_SAMPLE_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/ops.h"

#ifdef __CUDA_ARCH__
#define SM_MUL(a, b) __fmul_rn((a), (b))
#define SM_ADD(a, b) __fadd_rn((a), (b))
#else
#define SM_MUL(a, b) ((a) * (b))
#define SM_ADD(a, b) ((a) + (b))
#endif

/* Fixed-point scales: softmax terms exp(z - max) <= 1 summed over a vocabulary below 2^23 fit 2^40;
 * probabilities (each <= 1, a row summing to ~1) fit 2^60 with room for rounding. */
#define STREE_FIX_EXP 0x1p40
#define STREE_FIX_P 0x1p60

/* floor(x * scale) for x >= 0 (0 for x <= 0 or NaN): exact for every float above 1/scale */
static inline STREE_HOST_DEVICE uint64_t stree_fix(float x, double scale) {
    return x > 0.0f ? (uint64_t)((double)x * scale) : 0u;
}

/* e^x for x <= 0 (Cephes expf: Cody-Waite reduction, degree-6 polynomial; ~1 ulp); 0 below -87
 * (and for -inf / NaN), so no result is subnormal. */
static inline STREE_HOST_DEVICE float stree_sample_exp(float x) {
    if (!(x > -87.0f)) return 0.0f;
    if (x > 0.0f) x = 0.0f;
    float n = floorf(SM_ADD(SM_MUL(x, 1.44269504089f), 0.5f));
    float r = SM_ADD(x, -SM_MUL(n, 0.693359375f));
    r = SM_ADD(r, SM_MUL(n, 2.12194440e-4f));
    float z = SM_MUL(r, r), y = 1.9875691500e-4f;
    y = SM_ADD(SM_MUL(y, r), 1.3981999507e-3f);
    y = SM_ADD(SM_MUL(y, r), 8.3334519073e-3f);
    y = SM_ADD(SM_MUL(y, r), 4.1665795894e-2f);
    y = SM_ADD(SM_MUL(y, r), 1.6666665459e-1f);
    y = SM_ADD(SM_MUL(y, r), 5.0000001201e-1f);
    y = SM_ADD(SM_ADD(SM_MUL(y, z), r), 1.0f);
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n, n in [-126, 0] */
    float scale;
    memcpy(&scale, &bits, 4);
    return SM_MUL(y, scale);
}

/* The rank order of the top-k / top-p cuts: larger value first, then lower index (a total order;
 * -0 ranks as +0). Keys compare as unsigned integers. */
static inline STREE_HOST_DEVICE uint64_t stree_sample_key(float z, int32_t v) {
    float c = z == 0.0f ? 0.0f : z;
    uint32_t u;
    memcpy(&u, &c, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((uint64_t)u << 32) | (uint64_t)(0xFFFFFFFFu - (uint32_t)v);
}

/* The high 64 bits of a * b (portable: the same code on host and device). */
static inline STREE_HOST_DEVICE uint64_t stree_mulhi64(uint64_t a, uint64_t b) {
    uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    uint64_t p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;
    uint64_t mid = (p0 >> 32) + (uint32_t)p1 + (uint32_t)p2;
    return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

/* A uniform double in [0, 1) with 53 random bits. */
static inline STREE_HOST_DEVICE double stree_unit53(uint64_t bits) { return (double)(bits >> 11) * 0x1p-53; }

/* The probability of token v of a softmax row: z [V] scaled logits, mx their max, S the fixed-point
 * softmax sum (as a double). */
static inline STREE_HOST_DEVICE float stree_softmax_p(float z, float mx, double S) {
    return (float)((double)stree_sample_exp(SM_ADD(z, -mx)) / S);
}

#endif
