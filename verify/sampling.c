#include "verify/sampling.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void stree_rng_seed(stree_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double stree_rng_uniform(stree_rng *r) {
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return (double)(result >> 11) * (1.0 / 9007199254740992.0);
}

int32_t stree_sample(const float *probs, int32_t vocab, stree_rng *rng) {
    double total = 0.0;
    for (int32_t i = 0; i < vocab; i++) total += probs[i];
    double u = stree_rng_uniform(rng) * total, acc = 0.0;
    int32_t last = 0;
    for (int32_t i = 0; i < vocab; i++) {
        if (probs[i] <= 0.0f) continue;
        acc += probs[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* rounding at the very top */
}

/* descending by probability, ties by lower index (a stable, total order) */
static void sort_desc(const float *p, int32_t *idx, int32_t n) {
    for (int32_t i = 1; i < n; i++) { /* insertion sort over the kept candidates (small in practice) */
        int32_t v = idx[i], j = i;
        while (j > 0 && (p[idx[j - 1]] < p[v] || (p[idx[j - 1]] == p[v] && idx[j - 1] > v))) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

void stree_sampling_probs(const stree_sampling_params *sp, const float *logits, int32_t vocab, const int32_t *ctx,
                          int32_t n_ctx, float *probs, int32_t *scratch) {
    memcpy(probs, logits, (size_t)vocab * sizeof *probs);
    if (sp->repetition_penalty > 0.0f && sp->repetition_penalty != 1.0f) {
        /* each distinct context token once (HF gathers, scales, scatters) */
        for (int32_t i = 0; i < n_ctx; i++) {
            int32_t t = ctx[i], seen = 0;
            for (int32_t j = 0; j < i && !seen; j++) seen = ctx[j] == t;
            if (seen || t < 0 || t >= vocab) continue;
            float l = logits[t];
            probs[t] = l > 0.0f ? l / sp->repetition_penalty : l * sp->repetition_penalty;
        }
    }
    float inv_t = 1.0f / sp->temperature, mx = -INFINITY;
    for (int32_t i = 0; i < vocab; i++) {
        probs[i] *= inv_t;
        if (probs[i] > mx) mx = probs[i];
    }
    double sum = 0.0;
    for (int32_t i = 0; i < vocab; i++) sum += (probs[i] = expf(probs[i] - mx));
    for (int32_t i = 0; i < vocab; i++) probs[i] = (float)(probs[i] / sum);
    int32_t k = sp->top_k > 0 && sp->top_k < vocab ? sp->top_k : vocab;
    int need_sort = k < vocab || (sp->top_p > 0.0f && sp->top_p < 1.0f);
    if (need_sort) {
        /* the candidates: everything, sorted (vocabularies of tests are small; a partial sort would
         * do for the large ones) */
        for (int32_t i = 0; i < vocab; i++) scratch[i] = i;
        sort_desc(probs, scratch, vocab);
        int32_t keep = k;
        if (sp->top_p > 0.0f && sp->top_p < 1.0f) {
            double mass = 0.0, kept = 0.0;
            for (int32_t i = 0; i < keep; i++) mass += probs[scratch[i]];
            int32_t j = 0;
            for (; j < keep; j++) { /* smallest prefix (of the top-k renormalised) reaching top_p */
                kept += probs[scratch[j]] / mass;
                if (kept >= sp->top_p) {
                    j++;
                    break;
                }
            }
            keep = j < 1 ? 1 : j;
        }
        for (int32_t i = keep; i < vocab; i++) probs[scratch[i]] = 0.0f;
    }
    if (sp->min_p > 0.0f) {
        float top = 0.0f;
        for (int32_t i = 0; i < vocab; i++) top = probs[i] > top ? probs[i] : top;
        for (int32_t i = 0; i < vocab; i++)
            if (probs[i] < sp->min_p * top) probs[i] = 0.0f;
    }
    sum = 0.0;
    for (int32_t i = 0; i < vocab; i++) sum += probs[i];
    for (int32_t i = 0; i < vocab; i++) probs[i] = (float)(probs[i] / sum);
}

/* the context of node `node`: history, then the tree path root..node */
static int32_t node_context(const stree_accept_ctx *c, int32_t node) {
    int32_t path[STREE_TREE_MAX_NODES];
    int32_t len = stree_tree_path(c->tree, node, path), n = c->n_history;
    memcpy(c->ctx, c->history, (size_t)n * sizeof *c->ctx);
    for (int32_t k = 0; k < len; k++) c->ctx[n + k] = c->tree->token[path[k]];
    return n + len;
}

static void normalise(float *x, int32_t n) {
    double s = 0.0;
    for (int32_t i = 0; i < n; i++) s += x[i];
    if (s > 0.0)
        for (int32_t i = 0; i < n; i++) x[i] = (float)(x[i] / s);
}

int32_t stree_accept_sampled(const stree_accept_ctx *c, int32_t *path, int32_t *bonus) {
    const stree_tree *t = c->tree;
    int32_t V = c->vocab, len = 0, node = 0;
    path[len++] = 0;
    for (;;) {
        int32_t n_ctx = node_context(c, node);
        stree_sampling_probs(c->sampling, c->logits + (int64_t)node * V, V, c->ctx, n_ctx, c->p, c->scratch);
        /* children in sibling-rank order (the drafter's sampling order) */
        int32_t kids[STREE_TREE_MAX_NODES], n_kids = 0;
        for (int32_t i = node + 1; i < t->n; i++)
            if (t->parent[i] == node) kids[n_kids++] = i;
        for (int32_t a = 1; a < n_kids; a++)
            for (int32_t b = a; b > 0 && t->rank[kids[b - 1]] > t->rank[kids[b]]; b--) {
                int32_t x = kids[b];
                kids[b] = kids[b - 1];
                kids[b - 1] = x;
            }
        int32_t next = -1;
        if (n_kids && c->use_mss && c->q && c->q[node]) {
            /* multi-step speculative sampling: children were drawn without replacement from q */
            memcpy(c->q_work, c->q[node], (size_t)V * sizeof *c->q_work);
            for (int32_t a = 0; a < n_kids && next < 0; a++) {
                int32_t x = t->token[kids[a]];
                float px = c->p[x], qx = c->q_work[x];
                double u = stree_rng_uniform(c->rng);
                if (qx > 0.0f && u < (double)px / (double)qx) {
                    next = kids[a];
                    break;
                }
                if (!c->break_residual) { /* p <- norm(max(p - q, 0)) */
                    for (int32_t i = 0; i < V; i++) {
                        float d = c->p[i] - c->q_work[i];
                        c->p[i] = d > 0.0f ? d : 0.0f;
                    }
                    normalise(c->p, V);
                }
                c->q_work[x] = 0.0f; /* q(x) <- 0, q <- norm(q) */
                normalise(c->q_work, V);
            }
            if (next < 0) {
                *bonus = stree_sample(c->p, V, c->rng);
                return len;
            }
        } else {
            /* target-only: sample from p; descend when a child carries the token */
            int32_t tok = stree_sample(c->p, V, c->rng);
            for (int32_t a = 0; a < n_kids && next < 0; a++)
                if (t->token[kids[a]] == tok) next = kids[a];
            if (next < 0) {
                *bonus = tok;
                return len;
            }
        }
        node = next;
        path[len++] = node;
    }
}
