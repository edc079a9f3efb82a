/* Drafters behind one interface: each proposes a token tree rooted at the pending token and follows
 * the target's commits. One drafter instance per sequence (a draft model keeps its own state). */
#ifndef STREE_DRAFT_DRAFTER_H
#define STREE_DRAFT_DRAFTER_H

#include "runtime/engine.h"
#include "spec/tree.h"
#include "verify/sampling.h"

struct stree_drafter {
    /* Builds the tree for this step into *tree (already holding the root). history [n] ends with
     * the root token: the committed tokens, then the pending one. */
    stree_status (*build)(stree_drafter *d, const int32_t *history, int32_t n, stree_tree *tree);
    /* The target committed tokens [n] (the old root and the accepted nodes); maybe_path [n]: their
     * node ids in this step's tree, or NULL when the tokens did not come from a step (a prompt). */
    stree_status (*commit)(stree_drafter *d, const int32_t *tokens, int32_t n, const int32_t *maybe_path);
    /* Checks that committing n more tokens cannot fail (capacity). */
    stree_status (*can_commit)(stree_drafter *d, int32_t n);
    void (*reset)(stree_drafter *d);
    void (*destroy)(stree_drafter *d);
    /* After build, when the children were sampled without replacement from the draft distributions
     * q (for speculative sampling): q rows [tree n, V] in the memory of backend *ops, row i valid where
     * (*has_q)[i]; else NULL. */
    const float *(*draft_q)(stree_drafter *d, const uint8_t **has_q, const stree_ops **ops);
    stree_rand_stream *stream; /* the sequence's random stream (set by the sequence) */
    const stree_sampling_params *sampling; /* the sequence's sampling (set by the sequence) */
};

/* For DRAFTER_MODEL and DRAFTER_SELF. */
stree_status stree_model_drafter_create(const stree_engine *e, stree_drafter **out);
/* For DRAFTER_NGRAM. */
stree_status stree_ngram_drafter_create(const stree_engine *e, stree_drafter **out);

#endif
