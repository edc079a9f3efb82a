/* Internal engine and stream structs. */
#ifndef STREE_RUNTIME_ENGINE_H
#define STREE_RUNTIME_ENGINE_H

#include "runtime/model.h"
#include "spec/tree.h"
#include "stree.h"
#include "verify/sampling.h"

struct stree_engine {
    stree_model *target;
    stree_model *draft;          /* DRAFTER_MODEL (or the target for SELF); NULL otherwise */
    stree_model *owned[2];       /* models loaded from a config file */
    stree_engine_params params;
    stree_tree_policy policy;
    int32_t max_depth;           /* deepest drafted node the policy can produce */
    int32_t max_nodes;           /* tree nodes incl. the root */
};

typedef struct stree_drafter stree_drafter;

struct stree_seq {
    stree_engine *engine;
    stree_state *target;
    stree_drafter *drafter;      /* NULL for AR */
    int32_t *history;            /* [n_ctx + 1] committed tokens, then the pending root */
    int32_t n_history;           /* committed tokens (== target->n_committed) */
    int32_t pending;             /* the root of the next step: emitted, not yet seen by the target; -1 none */
    stree_tree tree;
    stree_stats stats;
    /* sampling (temperature > 0): the target's backend buffers, allocated on first use */
    stree_sampling_params sampling; /* the engine's, or stree_seq_set_sampling's */
    stree_rand_stream stream;
    stree_sample_bufs sb;
    float *q_copy;               /* [rows, V] target-backend copy of q when the drafter runs elsewhere */
    float *h_q;                  /* [rows, V] host staging of that copy */
};

double stree_now(void);

#endif
