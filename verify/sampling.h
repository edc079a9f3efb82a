/* Sampling transforms (repetition penalty, temperature, top-k, top-p, min-p), the sequence RNG, and
 * the stochastic acceptance rules over a verified tree (DESIGN.md §4). */
#ifndef STREE_VERIFY_SAMPLING_H
#define STREE_VERIFY_SAMPLING_H

#include <stdint.h>

#include "spec/tree.h"
#include "stree.h"

/* xoshiro256** seeded through splitmix64 */
typedef struct stree_rng {
    uint64_t s[4];
} stree_rng;

void stree_rng_seed(stree_rng *r, uint64_t seed);
/* uniform in [0, 1) */
double stree_rng_uniform(stree_rng *r);

/* Logits [vocab] of the position whose context is ctx[0..n_ctx) -> probabilities probs [vocab]
 * (zeros outside the kept set). scratch: [vocab] ints. */
void stree_sampling_probs(const stree_sampling_params *sp, const float *logits, int32_t vocab, const int32_t *ctx,
                          int32_t n_ctx, float *probs, int32_t *scratch);
/* A token drawn from probs [vocab] (which need not be normalised; its sum must be > 0). */
int32_t stree_sample(const float *probs, int32_t vocab, stree_rng *rng);

/* Inputs of one stochastic acceptance over a tree. */
typedef struct stree_accept_ctx {
    const stree_tree *tree;
    const float *logits;      /* [tree->n, vocab] target logits */
    int32_t vocab;
    const int32_t *history;   /* committed tokens (the root is tree->token[0]) */
    int32_t n_history;
    const stree_sampling_params *sampling;
    int use_mss;              /* multi-step speculative sampling with the draft's q */
    const float *const *q;    /* MSS: [tree->n] draft distributions of nodes with children (NULL
                               * elsewhere), after the same transform */
    int break_residual;       /* test only */
    stree_rng *rng;
    float *p, *q_work;        /* [vocab] scratch */
    int32_t *ctx, *scratch;   /* [n_history + tree depth + 1], [vocab] scratch */
} stree_accept_ctx;

/* Walks the tree from the root with the target-only rule or MSS; path [STREE_TREE_MAX_NODES]
 * receives root..last accepted node; returns its length; *bonus = the token sampled at the end. */
int32_t stree_accept_sampled(const stree_accept_ctx *c, int32_t *path, int32_t *bonus);

#endif
