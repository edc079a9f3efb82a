/* CPU reference of the sampling ops (kernels/ops.h, docs/SAMPLING.md): logit transforms, draws
 * without replacement, the stochastic acceptance walk. Sums go through the fixed-point helpers of
 * kernels/sample_math.h so the CUDA kernels reproduce every result bit for bit. Built with
 * -ffp-contract=off (CMakeLists.txt). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/sample_math.h"

static int key_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int32_t key_index(uint64_t key) { return (int32_t)(0xFFFFFFFFu - (uint32_t)key); }

static float penalised(float l, float r) { return l > 0.0f ? l / r : l * r; }

static void probs_row(const stree_sample_probs_params *p, int32_t i) {
    int32_t V = p->vocab, node = p->first + i;
    const float *l = p->logits + (int64_t)i * p->ld;
    float *z = p->probs + (int64_t)i * V; /* scaled logits first, probabilities at the end */
    memcpy(z, l, (size_t)V * sizeof *z);
    float r = p->repetition_penalty;
    if (r != 1.0f) { /* every context token once: repeats rewrite the same value from l */
        for (int32_t j = 0; j < p->n_history; j++) {
            int32_t t = p->history[j];
            if (t >= 0 && t < V) z[t] = penalised(l[t], r);
        }
        for (int32_t j = p->tokens ? node : -1; j >= 0; j = p->parent[j]) {
            int32_t t = p->tokens[j];
            if (t >= 0 && t < V) z[t] = penalised(l[t], r);
        }
    }
    float inv_t = 1.0f / p->temperature, mx = -INFINITY;
    for (int32_t v = 0; v < V; v++) {
        z[v] *= inv_t;
        if (z[v] > mx) mx = z[v];
    }
    uint64_t s = 0;
    for (int32_t v = 0; v < V; v++) s += stree_fix(stree_sample_exp(z[v] - mx), STREE_FIX_EXP);
    double S = (double)s / STREE_FIX_EXP;
    int32_t k = p->top_k > 0 && p->top_k < V ? p->top_k : V;
    int use_p = p->top_p > 0.0f && p->top_p < 1.0f;
    if (k < V || use_p) { /* rank everything; drop ranks >= keep by marking them -inf */
        uint64_t *key = p->scratch;
        for (int32_t v = 0; v < V; v++) key[v] = stree_sample_key(z[v], v);
        qsort(key, (size_t)V, sizeof *key, key_desc);
        int32_t keep = k;
        if (use_p) {
            uint64_t mass_k = 0, before = 0;
            for (int32_t j = 0; j < k; j++) mass_k += stree_fix(stree_softmax_p(z[key_index(key[j])], mx, S), STREE_FIX_P);
            double limit = (double)p->top_p * (double)mass_k;
            for (keep = 0; keep < k && (double)before < limit; keep++)
                before += stree_fix(stree_softmax_p(z[key_index(key[keep])], mx, S), STREE_FIX_P);
        }
        for (int32_t j = keep; j < V; j++) z[key_index(key[j])] = -INFINITY;
    }
    /* min-p against the top token (its exp term is exactly 1), then renormalise */
    float floor_p = p->min_p * (float)(1.0 / S);
    uint64_t kept = 0;
    for (int32_t v = 0; v < V; v++) {
        float q = stree_softmax_p(z[v], mx, S);
        z[v] = q < floor_p ? 0.0f : q;
        kept += stree_fix(z[v], STREE_FIX_P);
    }
    double K = (double)kept / STREE_FIX_P;
    for (int32_t v = 0; v < V; v++) z[v] = (float)((double)z[v] / K);
}

void stree_cpu_sample_probs(const stree_sample_probs_params *p) {
    for (int32_t i = 0; i < p->n; i++) probs_row(p, i);
}

/* Inverse-CDF draw of x [V] with the tokens excl [n_excl] removed: the first v whose inclusive
 * fixed-point prefix exceeds floor(bits * W / 2^64); -1 when no mass is left. */
static int32_t draw(const float *x, int32_t V, uint64_t bits, const int32_t *excl, int32_t n_excl) {
    uint64_t W = 0;
    for (int32_t v = 0; v < V; v++) W += stree_fix(x[v], STREE_FIX_P);
    for (int32_t e = 0; e < n_excl; e++) W -= stree_fix(x[excl[e]], STREE_FIX_P);
    if (W == 0) return -1;
    uint64_t U = stree_mulhi64(bits, W), acc = 0;
    for (int32_t v = 0; v < V; v++) {
        int skip = 0;
        for (int32_t e = 0; e < n_excl && !skip; e++) skip = excl[e] == v;
        if (skip) continue;
        acc += stree_fix(x[v], STREE_FIX_P);
        if (acc > U) return v;
    }
    return -1; /* unreachable: acc reaches W > U */
}

void stree_cpu_sample_draw(const stree_sample_draw_params *p) {
    for (int32_t i = 0; i < p->n; i++) {
        int32_t *out = p->out + (int64_t)i * p->m;
        int32_t d = 0;
        for (; d < p->m; d++) {
            out[d] = draw(p->probs + (int64_t)i * p->ld, p->vocab, stree_random_bits(p->seed, p->counter + (uint64_t)(i * p->m + d)),
                          out, d);
            if (out[d] < 0) break;
        }
        for (; d < p->m; d++) out[d] = -1;
    }
}

/* x <- x / sum(x) when the sum is positive */
static void normalise(float *x, int32_t V) {
    uint64_t s = 0;
    for (int32_t v = 0; v < V; v++) s += stree_fix(x[v], STREE_FIX_P);
    if (!s) return;
    double S = (double)s / STREE_FIX_P;
    for (int32_t v = 0; v < V; v++) x[v] = (float)((double)x[v] / S);
}

void stree_cpu_sample_accept(const stree_sample_accept_params *p) {
    int32_t V = p->vocab, n = p->n, len = 0, node = 0, bonus = -1;
    uint64_t j = p->counter;
    float *pw = p->work, *qw = p->work + V;
    int32_t *path = p->out + 2;
    path[len++] = 0;
    for (;;) {
        /* children in sibling-rank order (the drafter's sampling order) */
        int32_t kids[STREE_CPU_MAX_TREE], n_kids = 0;
        for (int32_t c = node + 1; c < n; c++) {
            if (p->parent[c] != node) continue;
            int32_t b = n_kids++;
            for (; b > 0 && p->rank[kids[b - 1]] > p->rank[c]; b--) kids[b] = kids[b - 1];
            kids[b] = c;
        }
        const float *prow = p->p + (int64_t)node * V;
        int32_t next = -1;
        if (n_kids && p->maybe_q && p->has_q[node]) { /* multi-step speculative sampling */
            memcpy(pw, prow, (size_t)V * sizeof *pw);
            memcpy(qw, p->maybe_q + (int64_t)node * V, (size_t)V * sizeof *qw);
            for (int32_t a = 0; a < n_kids && next < 0; a++) {
                int32_t x = p->tokens[kids[a]];
                float px = pw[x], qx = qw[x];
                double u = stree_unit53(stree_random_bits(p->seed, j++));
                if (qx > 0.0f && u < (double)px / (double)qx) {
                    next = kids[a];
                    break;
                }
                if (!p->break_residual) { /* p <- norm(max(p - q, 0)) */
                    for (int32_t v = 0; v < V; v++) pw[v] = pw[v] - qw[v] > 0.0f ? pw[v] - qw[v] : 0.0f;
                    normalise(pw, V);
                }
                qw[x] = 0.0f; /* q(x) <- 0, q <- norm(q) */
                normalise(qw, V);
            }
            if (next < 0) {
                uint64_t bits = stree_random_bits(p->seed, j++);
                bonus = draw(pw, V, bits, NULL, 0);
                if (bonus < 0) bonus = draw(prow, V, bits, NULL, 0); /* rounding left no residual */
                break;
            }
        } else { /* target-only */
            int32_t t = draw(prow, V, stree_random_bits(p->seed, j++), NULL, 0);
            for (int32_t a = 0; a < n_kids && next < 0; a++)
                if (p->tokens[kids[a]] == t) next = kids[a];
            if (next < 0) {
                bonus = t;
                break;
            }
        }
        node = next;
        path[len++] = node;
    }
    p->out[0] = len;
    p->out[1] = bonus;
}
