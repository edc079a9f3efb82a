/* Sampling on the model's backend (DESIGN.md §4, docs/SAMPLING.md): the sequence's counter-based
 * random stream, the buffers of the sampling ops (kernels/ops.h) of one model, and the calls the
 * engine and the drafter make. Logits and distributions stay in backend memory; per step only token
 * ids and the accepted path cross to the host. */
#ifndef STREE_VERIFY_SAMPLING_H
#define STREE_VERIFY_SAMPLING_H

#include <stdint.h>

#include "kernels/ops.h"
#include "spec/tree.h"
#include "stree.h"

/* Draw j of the stream is stree_random_bits(seed, j); every op call takes the next range of j. */
typedef struct stree_rand_stream {
    uint64_t seed, counter;
} stree_rand_stream;

void stree_rand_stream_seed(stree_rand_stream *r, uint64_t seed);

/* Backend buffers of the sampling ops for trees of up to max_rows nodes. */
typedef struct stree_sample_bufs {
    const stree_ops *ops;      /* NULL until init */
    int32_t vocab, max_rows, cap_history;
    float *probs;              /* [max_rows, vocab] sampling distributions */
    float *work;               /* [2, vocab] */
    uint64_t *scratch;         /* [vocab] */
    int32_t *tree;             /* [4, tree_n] tokens | parent | rank | has_q */
    int32_t tree_n;            /* nodes of the tree uploaded last */
    int32_t *out;              /* [max_rows * STREE_SAMPLE_MAX_DRAWS + 2] */
    int32_t *history;          /* [cap_history] the committed tokens */
    int32_t n_history;         /* of them on the backend (a prefix of the host history) */
} stree_sample_bufs;

stree_status stree_sample_bufs_init(stree_sample_bufs *b, const stree_ops *ops, int32_t vocab, int32_t max_rows,
                                    int32_t cap_history);
void stree_sample_bufs_free(stree_sample_bufs *b);
/* The history changed other than by appending (a reset): upload it whole next time. */
void stree_sample_bufs_forget(stree_sample_bufs *b);
/* Brings the backend history to history [n] by uploading the new tail. */
stree_status stree_sample_bufs_history(stree_sample_bufs *b, const int32_t *history, int32_t n);
/* Uploads the tree (tokens, parents, ranks; has_q [t->n] or all 0) in one copy. */
stree_status stree_sample_bufs_tree(stree_sample_bufs *b, const stree_tree *t, const uint8_t *maybe_has_q);

/* Distributions of tree nodes [first, first + n) from their logits (backend [n, vocab], row `first`
 * of the forward) into b->probs rows [first, first + n); context = the backend history, then the
 * node's path (b->tree must hold the tree). */
void stree_sample_probs_rows(stree_sample_bufs *b, const stree_sampling_params *sp, const float *logits,
                             int32_t first, int32_t n);
/* m draws without replacement from each of b->probs rows [first, first + n): out [n, m] (host), -1
 * where a row ran out of mass. */
stree_status stree_sample_draw_rows(stree_sample_bufs *b, int32_t first, int32_t n, int32_t m, stree_rand_stream *r,
                                    int32_t *out);
/* The acceptance walk over the tree in b->tree (all its nodes' distributions in b->probs; maybe_q: the
 * draft's q rows [tree_n, vocab] on the same backend, valid where has_q). path [STREE_TREE_MAX_NODES]:
 * root..last accepted node, *len its length, *bonus the token drawn at the end. */
stree_status stree_sample_accept_tree(stree_sample_bufs *b, const float *maybe_q, int break_residual,
                                      stree_rand_stream *r, int32_t *path, int32_t *len, int32_t *bonus);

/* Host reference of one distribution (the tests' exact AR distribution): logits [vocab] of the
 * position whose context is ctx [n_ctx] -> probs [vocab]; scratch [vocab]. The CPU op underneath. */
void stree_sampling_probs(const stree_sampling_params *sp, const float *logits, int32_t vocab, const int32_t *ctx,
                          int32_t n_ctx, float *probs, uint64_t *scratch);

#endif
