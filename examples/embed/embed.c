/* Swapping a server's decode loop for stree: load once, one sequence per request, stream tokens
 * through a callback. Built and run by the test suite (docs/EMBEDDING.md walks through it).
 *
 *   stree-embed MODEL_DIR [DRAFT_DIR] */
#include <stdio.h>
#include <string.h>

#include "stree.h"

static int on_token(int32_t token, void *user) {
    int *count = user;
    printf("%s%d", (*count)++ ? " " : "", token); /* a server would write the token's text to its client */
    return 0;                                     /* nonzero stops generation (client went away) */
}

static int die(const char *what, stree_status s) {
    fprintf(stderr, "stree-embed: %s: %s: %s\n", what, stree_status_str(s), stree_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: stree-embed MODEL_DIR [DRAFT_DIR]\n");
        return 2;
    }
    /* 1. at start-up: models and one engine (read-only afterwards, shared by every request) */
    stree_model *target = NULL, *draft = NULL;
    stree_status s = stree_model_load(argv[1], stree_model_default_params(), &target);
    if (s != STREE_OK) return die("loading the target", s);
    stree_engine_params ep = stree_engine_default_params();
    if (argc > 2) {
        if ((s = stree_model_load(argv[2], stree_model_default_params(), &draft)) != STREE_OK)
            return die("loading the draft", s);
        ep.drafter = STREE_DRAFTER_MODEL;
        ep.draft_model = draft;
    } else {
        ep.drafter = STREE_DRAFTER_NGRAM; /* no draft model: prompt lookup */
    }
    ep.tree = STREE_TREE_DYNAMIC;
    ep.top_k = 3, ep.depth = 4, ep.budget = 16;
    stree_engine *engine = NULL;
    if ((s = stree_engine_create(target, ep, &engine)) != STREE_OK) return die("creating the engine", s);

    /* 2. per worker: a sequence (KV cache + SSM state), reused across requests with reset */
    stree_seq *seq = NULL;
    if ((s = stree_seq_create(engine, &seq)) != STREE_OK) return die("creating a sequence", s);

    /* 3. per request: the decode loop becomes one call (or stree_seq_prefill + stree_seq_step) */
    const int32_t prompt[] = {145, 70, 89, 0, 130, 162, 136, 160};
    for (int request = 0; request < 2; request++) {
        stree_sampling_params sp = stree_engine_default_params().sampling;
        sp.temperature = request ? 0.8f : 0.0f; /* per-request sampling */
        sp.seed = 42;
        stree_seq_reset(seq);
        if ((s = stree_seq_set_sampling(seq, sp)) != STREE_OK) return die("sampling", s);
        int32_t out[32], n_out = 0;
        int count = 0;
        s = stree_seq_generate(seq, prompt, 8, 32, 1, out, &n_out, on_token, &count);
        printf("\n");
        if (s != STREE_OK) return die("generation", s); /* the sequence's committed state is intact */
        stree_stats st;
        stree_seq_stats(seq, &st);
        fprintf(stderr, "request %d: %d tokens in %lld steps (%.2f accepted per step)\n", request, n_out,
                (long long)st.n_steps, st.n_steps ? (double)st.n_accepted / (double)st.n_steps : 0.0);
    }

    /* 4. at shut-down */
    stree_seq_free(seq);
    stree_engine_free(engine);
    stree_model_free(draft);
    stree_model_free(target);
    return 0;
}
