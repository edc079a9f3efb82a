/* Token trees (spec/tree.h): adding and merging nodes, ancestor bitsets, validation, pruning, static /
 * dynamic shapes and their JSON form, with errors asserted by status and message. */
#define _XOPEN_SOURCE 700

#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spec/tree.h"
#include "tests/helpers/golden.h"
#include "stree.h"

static void expect_error(stree_status got, stree_status want, const char *needle1, const char *needle2) {
    cr_assert_eq(got, want, "status %s, expected %s (%s)", stree_status_str(got), stree_status_str(want),
                 stree_last_error());
    if (needle1)
        cr_expect(strstr(stree_last_error(), needle1) != NULL, "'%s' not in: %s", needle1, stree_last_error());
    if (needle2)
        cr_expect(strstr(stree_last_error(), needle2) != NULL, "'%s' not in: %s", needle2, stree_last_error());
}

#define OK(expr) cr_assert_eq((expr), STREE_OK, "%s: %s", #expr, stree_last_error())

/* ---------------------------------------------------------------- building trees */

Test(tree, init) {
    stree_tree t;
    stree_tree_init(&t, 42);
    cr_assert_eq(t.n, 1);
    cr_assert_eq(t.parent[0], -1);
    cr_assert_eq(t.token[0], 42);
    cr_assert_eq(t.depth[0], 0);
    cr_assert_eq(t.rank[0], 0);
    cr_assert_eq(t.anc[0][0], 1u);
    for (int w = 1; w < STREE_TREE_WORDS; w++) cr_assert_eq(t.anc[0][w], 0u);
    for (int s = 0; s < 2 * STREE_TREE_MAX_NODES; s++) cr_assert_eq(t.slot[s], -1);
    OK(stree_tree_validate(&t));
}

Test(tree, add_nodes) {
    stree_tree t;
    stree_tree_init(&t, 7);
    int32_t a, b, c;
    int added = -1;
    OK(stree_tree_add(&t, 0, 10, 0, -0.5f, &a, &added));
    cr_assert_eq(added, 1);
    OK(stree_tree_add(&t, 0, 11, 1, -1.0f, &b, &added));
    cr_assert_eq(added, 1);
    OK(stree_tree_add(&t, a, 12, 0, -0.7f, &c, &added));
    cr_assert_eq(added, 1);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);
    cr_assert_eq(c, 3);
    cr_assert_eq(t.n, 4);
    cr_assert_eq(t.parent[c], a);
    cr_assert_eq(t.depth[c], 2);
    cr_assert_eq(t.rank[b], 1);
    cr_assert_float_eq(t.score[c], -0.7f, 1e-7);
    cr_assert(t.path_hash[a] != t.path_hash[b]);
    cr_assert(stree_tree_is_ancestor_or_self(&t, 0, c));
    cr_assert(stree_tree_is_ancestor_or_self(&t, a, c));
    cr_assert(stree_tree_is_ancestor_or_self(&t, c, c));
    cr_assert(!stree_tree_is_ancestor_or_self(&t, b, c));
    cr_assert(!stree_tree_is_ancestor_or_self(&t, c, a));
    OK(stree_tree_validate(&t));

    /* same token under different parents: distinct nodes */
    int32_t d;
    OK(stree_tree_add(&t, b, 12, 0, -2.0f, &d, &added));
    cr_assert_eq(added, 1);
    cr_assert_neq(d, c);
    OK(stree_tree_validate(&t));

    /* bad parent */
    expect_error(stree_tree_add(&t, 9, 1, 0, 0.0f, &d, NULL), STREE_ERR_INVALID_ARG, "parent 9", NULL);
    expect_error(stree_tree_add(&t, -1, 1, 0, 0.0f, &d, NULL), STREE_ERR_INVALID_ARG, "parent -1", NULL);
}

Test(tree, duplicate_merge_via_add) {
    stree_tree t;
    stree_tree_init(&t, 1);
    int32_t a, a2;
    int added;
    OK(stree_tree_add(&t, 0, 5, 0, -0.1f, &a, &added));
    OK(stree_tree_add(&t, 0, 5, 3, -9.0f, &a2, &added));
    cr_assert_eq(added, 0);
    cr_assert_eq(a2, a);
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.rank[a], 0, "rank must not change on merge");
    cr_assert_float_eq(t.score[a], -0.1f, 1e-7, "score must not change on merge");
    OK(stree_tree_add(&t, 0, 5, 0, 0.0f, &a2, NULL)); /* added may be NULL */
    cr_assert_eq(a2, a);
    OK(stree_tree_validate(&t));
}

Test(tree, insert_path_merges_prefixes) {
    stree_tree t;
    stree_tree_init(&t, 0);
    const int32_t p1[] = {1, 2, 3}, p2[] = {1, 2, 4}, p3[] = {1, 2}, p4[] = {5};
    int32_t l1, l2, l3, l4, l1b;
    OK(stree_tree_insert_path(&t, p1, 3, -1.0f, &l1));
    cr_assert_eq(t.n, 4);
    OK(stree_tree_insert_path(&t, p2, 3, -2.0f, &l2));
    cr_assert_eq(t.n, 5);
    cr_assert_eq(t.parent[l2], t.parent[l1]);
    cr_assert_eq(t.rank[l1], 0);
    cr_assert_eq(t.rank[l2], 1);
    OK(stree_tree_insert_path(&t, p3, 2, -3.0f, &l3));
    cr_assert_eq(t.n, 5);
    cr_assert_eq(l3, t.parent[l1]);
    OK(stree_tree_insert_path(&t, p1, 3, -4.0f, &l1b));
    cr_assert_eq(l1b, l1);
    cr_assert_eq(t.n, 5);
    OK(stree_tree_insert_path(&t, p4, 1, -5.0f, &l4));
    cr_assert_eq(t.n, 6);
    cr_assert_eq(t.parent[l4], 0);
    cr_assert_eq(t.rank[l4], 1);
    int32_t l0 = -1;
    OK(stree_tree_insert_path(&t, NULL, 0, 0.0f, &l0));
    cr_assert_eq(l0, 0);
    OK(stree_tree_validate(&t));
    expect_error(stree_tree_insert_path(&t, p1, -1, 0.0f, &l0), STREE_ERR_INVALID_ARG, "len -1", NULL);
}

Test(tree, find_child) {
    stree_tree t;
    stree_tree_init(&t, 3);
    int32_t a, b, c;
    OK(stree_tree_add(&t, 0, 100, 0, 0.0f, &a, NULL));
    OK(stree_tree_add(&t, 0, 200, 1, 0.0f, &b, NULL));
    OK(stree_tree_add(&t, a, 200, 0, 0.0f, &c, NULL));
    cr_assert_eq(stree_tree_find_child(&t, 0, 100), a);
    cr_assert_eq(stree_tree_find_child(&t, 0, 200), b);
    cr_assert_eq(stree_tree_find_child(&t, a, 200), c);
    cr_assert_eq(stree_tree_find_child(&t, a, 100), -1);
    cr_assert_eq(stree_tree_find_child(&t, b, 200), -1);
    cr_assert_eq(stree_tree_find_child(&t, 0, 3), -1);
    cr_assert_eq(stree_tree_find_child(&t, 17, 100), -1);
    cr_assert_eq(stree_tree_find_child(&t, -1, 100), -1);
}

/* A random tree of up to `max_n` nodes with small vocabulary (so merges happen). Scores decrease along
 * paths when `decreasing`. */
static void random_tree(stree_tree *t, int32_t max_n, int decreasing) {
    stree_tree_init(t, rand() % 50);
    int32_t target = 1 + rand() % max_n;
    int guard = 0;
    while (t->n < target && guard++ < 100000) {
        int32_t p = rand() % t->n;
        int32_t tok = rand() % 12;
        float drop = (float)(rand() % 1000) / 250.0f + 0.001f;
        float score = decreasing ? t->score[p] - drop : (float)(rand() % 2000) / 100.0f - 10.0f;
        int32_t idx;
        OK(stree_tree_add(t, p, tok, 0, score, &idx, NULL));
    }
}

static int walk_is_ancestor(const stree_tree *t, int32_t a, int32_t i) {
    for (int32_t x = i; x >= 0; x = t->parent[x])
        if (x == a) return 1;
    return 0;
}

Test(tree, ancestor_bitsets_random) {
    srand(12345);
    for (int trial = 0; trial < 50; trial++) {
        stree_tree t;
        random_tree(&t, STREE_TREE_MAX_NODES, 0);
        OK(stree_tree_validate(&t));
        for (int32_t i = 0; i < t.n; i++) {
            int32_t depth = 0;
            for (int32_t x = t.parent[i]; x >= 0; x = t.parent[x]) depth++;
            cr_assert_eq(t.depth[i], depth, "trial %d node %d", trial, i);
            for (int32_t a = 0; a < t.n; a++)
                cr_assert_eq(stree_tree_is_ancestor_or_self(&t, a, i), walk_is_ancestor(&t, a, i),
                             "trial %d: a=%d i=%d", trial, a, i);
            /* no bits at or beyond n */
            for (int32_t b = t.n; b < STREE_TREE_MAX_NODES; b++)
                cr_assert_eq((t.anc[i][b / 64] >> (b % 64)) & 1u, 0u);
            /* find_child finds every node under its parent */
            if (i > 0) cr_assert_eq(stree_tree_find_child(&t, t.parent[i], t.token[i]), i);
        }
    }
}

Test(tree, path) {
    stree_tree t;
    stree_tree_init(&t, 0);
    const int32_t toks[] = {4, 5, 6, 7};
    int32_t last, side;
    OK(stree_tree_insert_path(&t, toks, 4, -1.0f, &last));
    OK(stree_tree_add(&t, 2, 9, 1, -1.0f, &side, NULL));
    int32_t path[STREE_TREE_MAX_NODES];
    int32_t len = stree_tree_path(&t, last, path);
    cr_assert_eq(len, 5);
    for (int32_t k = 0; k < len; k++) cr_assert_eq(path[k], k);
    len = stree_tree_path(&t, side, path);
    cr_assert_eq(len, 4);
    cr_assert_eq(path[0], 0);
    cr_assert_eq(path[1], 1);
    cr_assert_eq(path[2], 2);
    cr_assert_eq(path[3], side);
    cr_assert_eq(stree_tree_path(&t, 0, path), 1);
    cr_assert_eq(path[0], 0);
}

static void small_tree(stree_tree *t) {
    stree_tree_init(t, 1);
    int32_t idx;
    OK(stree_tree_add(t, 0, 10, 0, -1.0f, &idx, NULL));   /* 1 */
    OK(stree_tree_add(t, 0, 11, 1, -2.0f, &idx, NULL));   /* 2 */
    OK(stree_tree_add(t, 1, 12, 0, -1.5f, &idx, NULL));   /* 3 */
    OK(stree_tree_add(t, 3, 13, 0, -1.8f, &idx, NULL));   /* 4 */
    OK(stree_tree_add(t, 2, 14, 0, -2.5f, &idx, NULL));   /* 5 */
    OK(stree_tree_validate(t));
}

Test(tree, validate_catches_corruption) {
    stree_tree t;
    small_tree(&t);
    t.parent[3] = 3; /* self-loop: a cycle */
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 3", "parent 3");

    small_tree(&t);
    t.parent[1] = 4; /* parent after child: cycle 1 -> 4 -> 3 -> 1, not topological */
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 1", "topological");

    small_tree(&t);
    t.parent[0] = 2;
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 0", "parent");

    small_tree(&t);
    t.depth[4] = 7;
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 4", "depth");

    small_tree(&t);
    t.anc[5][0] |= 1u << 1; /* claims node 1 as an ancestor */
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 5", "ancestor");

    small_tree(&t);
    t.token[4] = 99; /* hash no longer matches */
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 4", "hash");

    small_tree(&t);
    t.n = 0;
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node count 0", NULL);

    /* two children of one parent with the same token (hashes consistent, slot table bypassed) */
    small_tree(&t);
    t.token[2] = 10;
    t.path_hash[2] = t.path_hash[1];
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "node 2", "duplicates node 1");

    small_tree(&t);
    for (int s = 0; s < 2 * STREE_TREE_MAX_NODES; s++)
        if (t.slot[s] == 4) t.slot[s] = -1;
    expect_error(stree_tree_validate(&t), STREE_ERR_INVALID_ARG, "slot", NULL);
}

Test(tree, full_at_max_nodes) {
    stree_tree t;
    stree_tree_init(&t, 0);
    for (int32_t i = 1; i < STREE_TREE_MAX_NODES; i++) {
        int32_t idx;
        int added;
        OK(stree_tree_add(&t, (i - 1) / 4, 1000 + i, 0, -(float)i, &idx, &added));
        cr_assert_eq(idx, i);
        cr_assert_eq(added, 1);
    }
    cr_assert_eq(t.n, STREE_TREE_MAX_NODES);
    OK(stree_tree_validate(&t));
    int32_t idx = -5;
    int added = 1;
    expect_error(stree_tree_add(&t, 0, 1, 0, 0.0f, &idx, &added), STREE_ERR_INVALID_ARG, "full", "256");
    cr_assert_eq(added, 0);
    cr_assert_eq(t.n, STREE_TREE_MAX_NODES);
    /* merging an existing child still works when full */
    OK(stree_tree_add(&t, 0, 1001, 0, 0.0f, &idx, &added));
    cr_assert_eq(idx, 1);
    cr_assert_eq(added, 0);
    const int32_t toks[] = {1001, 77};
    expect_error(stree_tree_insert_path(&t, toks, 2, 0.0f, &idx), STREE_ERR_INVALID_ARG, "full", NULL);
}

/* ---------------------------------------------------------------- pruning */

static int score_before(const stree_tree *t, int32_t a, int32_t b) {
    return t->score[a] > t->score[b] || (t->score[a] == t->score[b] && a < b);
}

Test(tree, prune_keeps_best_connected) {
    srand(777);
    for (int trial = 0; trial < 50; trial++) {
        stree_tree t, out;
        random_tree(&t, STREE_TREE_MAX_NODES, 1);
        int32_t budget = 1 + rand() % (t.n + 5);
        OK(stree_tree_prune(&t, budget, &out));
        OK(stree_tree_validate(&out));
        int32_t want_n = budget < t.n ? budget : t.n;
        cr_assert_eq(out.n, want_n, "trial %d: n %d, budget %d, source n %d", trial, out.n, budget, t.n);
        cr_assert_eq(out.token[0], t.token[0]);
        /* expected set: the (want_n - 1) best non-root nodes */
        int32_t order[STREE_TREE_MAX_NODES];
        int32_t m = 0;
        for (int32_t i = 1; i < t.n; i++) {
            int32_t k = m++;
            while (k > 0 && score_before(&t, i, order[k - 1])) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = i;
        }
        /* every kept node is found by its token path in out, with rank and score copied */
        for (int32_t r = 0; r < want_n - 1; r++) {
            int32_t src = order[r];
            int32_t path[STREE_TREE_MAX_NODES];
            int32_t len = stree_tree_path(&t, src, path);
            int32_t node = 0;
            for (int32_t k = 1; k < len; k++) {
                node = stree_tree_find_child(&out, node, t.token[path[k]]);
                cr_assert_geq(node, 0, "trial %d: node %d (rank %d by score) missing", trial, src, r);
            }
            cr_assert_eq(out.rank[node], t.rank[src]);
            cr_assert_eq(out.score[node], t.score[src]);
            cr_assert_eq(out.path_hash[node], t.path_hash[src]);
        }
        /* topological order stable by original index: the source nodes of out's nodes increase */
        int32_t prev_src = 0;
        for (int32_t i = 1; i < out.n; i++) {
            int32_t path[STREE_TREE_MAX_NODES];
            int32_t len = stree_tree_path(&out, i, path);
            int32_t src = 0;
            for (int32_t k = 1; k < len; k++) src = stree_tree_find_child(&t, src, out.token[path[k]]);
            cr_assert_gt(src, prev_src, "trial %d: out node %d comes from %d after %d", trial, i, src, prev_src);
            prev_src = src;
        }
    }
}

Test(tree, prune_stable_order_and_alias) {
    stree_tree t;
    small_tree(&t); /* scores: 1:-1 2:-2 3:-1.5 4:-1.8 5:-2.5 */
    stree_tree out;
    OK(stree_tree_prune(&t, 4, &out)); /* keeps 1, 3, 4 */
    cr_assert_eq(out.n, 4);
    cr_assert_eq(out.token[1], 10);
    cr_assert_eq(out.token[2], 12);
    cr_assert_eq(out.token[3], 13);
    cr_assert_eq(out.parent[2], 1);
    cr_assert_eq(out.parent[3], 2);
    cr_assert_eq(out.depth[3], 3);
    OK(stree_tree_prune(&t, 5, &out)); /* keeps 1, 2, 3, 4: order by original index */
    cr_assert_eq(out.n, 5);
    cr_assert_eq(out.token[1], 10);
    cr_assert_eq(out.token[2], 11);
    cr_assert_eq(out.token[3], 12);
    cr_assert_eq(out.token[4], 13);
    cr_assert_eq(out.parent[3], 1);
    cr_assert_eq(out.parent[4], 3);
    OK(stree_tree_validate(&out));
    /* in place */
    OK(stree_tree_prune(&t, 2, &t));
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.token[1], 10);
    OK(stree_tree_validate(&t));
    OK(stree_tree_prune(&t, 1, &out));
    cr_assert_eq(out.n, 1);
}

Test(tree, prune_ties_lower_index_first) {
    stree_tree t, out;
    stree_tree_init(&t, 0);
    int32_t idx;
    for (int32_t i = 0; i < 5; i++) OK(stree_tree_add(&t, 0, 10 + i, i, -1.0f, &idx, NULL));
    OK(stree_tree_prune(&t, 3, &out));
    cr_assert_eq(out.n, 3);
    cr_assert_eq(out.token[1], 10);
    cr_assert_eq(out.token[2], 11);
}

Test(tree, prune_increasing_scores_stays_connected) {
    /* root -> a (-5) -> b (-0.1); c (-1) under root. Budget 3: b is best but its parent a is not among
     * the top 2, so b gives way to the next best. */
    stree_tree t, out;
    stree_tree_init(&t, 0);
    int32_t a, b, c;
    OK(stree_tree_add(&t, 0, 1, 0, -5.0f, &a, NULL));
    OK(stree_tree_add(&t, a, 2, 0, -0.1f, &b, NULL));
    OK(stree_tree_add(&t, 0, 3, 1, -1.0f, &c, NULL));
    OK(stree_tree_prune(&t, 3, &out));
    OK(stree_tree_validate(&out));
    cr_assert_eq(out.n, 3);
    cr_assert_eq(out.token[1], 1);
    cr_assert_eq(out.token[2], 3);
    OK(stree_tree_prune(&t, 4, &out));
    cr_assert_eq(out.n, 4);
    OK(stree_tree_validate(&out));
}

Test(tree, prune_budget_zero) {
    stree_tree t, out;
    small_tree(&t);
    expect_error(stree_tree_prune(&t, 0, &out), STREE_ERR_INVALID_ARG, "budget must be >= 1", NULL);
    expect_error(stree_tree_prune(&t, -3, &out), STREE_ERR_INVALID_ARG, "budget must be >= 1", NULL);
}

/* ---------------------------------------------------------------- shapes */

Test(shape, chain) {
    stree_tree_policy p;
    OK(stree_shape_chain(4, &p));
    cr_assert_eq(p.kind, STREE_SHAPE_STATIC);
    cr_assert_eq(p.shape.n, 5);
    cr_assert_eq(p.shape.max_depth, 4);
    for (int32_t i = 0; i < 5; i++) {
        cr_assert_eq(p.shape.parent[i], i - 1);
        cr_assert_eq(p.shape.rank[i], 0);
        cr_assert_eq(p.shape.depth[i], i);
    }
    OK(stree_shape_chain(STREE_TREE_MAX_NODES - 1, &p));
    cr_assert_eq(p.shape.n, STREE_TREE_MAX_NODES);
    expect_error(stree_shape_chain(0, &p), STREE_ERR_INVALID_ARG, "k", "1..255");
    expect_error(stree_shape_chain(STREE_TREE_MAX_NODES, &p), STREE_ERR_INVALID_ARG, "256", NULL);
}

Test(shape, branching_3_2) {
    stree_tree_policy p;
    const int32_t b[] = {3, 2};
    OK(stree_shape_branching(b, 2, &p));
    cr_assert_eq(p.kind, STREE_SHAPE_STATIC);
    cr_assert_eq(p.shape.n, 10);
    cr_assert_eq(p.shape.max_depth, 2);
    const int32_t parent[] = {-1, 0, 0, 0, 1, 1, 2, 2, 3, 3};
    const int32_t rank[] = {0, 0, 1, 2, 0, 1, 0, 1, 0, 1};
    const int32_t depth[] = {0, 1, 1, 1, 2, 2, 2, 2, 2, 2};
    for (int32_t i = 0; i < 10; i++) {
        cr_assert_eq(p.shape.parent[i], parent[i], "node %d", i);
        cr_assert_eq(p.shape.rank[i], rank[i], "node %d", i);
        cr_assert_eq(p.shape.depth[i], depth[i], "node %d", i);
    }
    const int32_t big[] = {4, 4, 4, 4}; /* 1+4+16+64+256 = 341 */
    expect_error(stree_shape_branching(big, 4, &p), STREE_ERR_INVALID_ARG, "341 nodes", "limit is 256");
    const int32_t huge[] = {1000, 1000, 1000, 1000, 1000, 1000};
    expect_error(stree_shape_branching(huge, 6, &p), STREE_ERR_INVALID_ARG, "more than", "limit is 256");
    const int32_t zero[] = {2, 0};
    expect_error(stree_shape_branching(zero, 2, &p), STREE_ERR_INVALID_ARG, "branching[1]", ">= 1");
    expect_error(stree_shape_branching(b, 0, &p), STREE_ERR_INVALID_ARG, "branching", NULL);
}

Test(shape, paths_medusa) {
    /* given out of order on purpose */
    const int32_t p00[] = {0, 0}, p1[] = {1}, p0[] = {0}, p10[] = {1, 0}, p01[] = {0, 1};
    const int32_t *paths[] = {p00, p1, p0, p10, p01};
    const int32_t lens[] = {2, 1, 1, 2, 2};
    stree_tree_policy p;
    OK(stree_shape_paths(paths, lens, 5, &p));
    cr_assert_eq(p.kind, STREE_SHAPE_STATIC);
    cr_assert_eq(p.shape.n, 6);
    cr_assert_eq(p.shape.max_depth, 2);
    /* sorted: [0] [1] [0,0] [0,1] [1,0] */
    const int32_t parent[] = {-1, 0, 0, 1, 1, 2};
    const int32_t rank[] = {0, 0, 1, 0, 1, 0};
    const int32_t depth[] = {0, 1, 1, 2, 2, 2};
    for (int32_t i = 0; i < 6; i++) {
        cr_assert_eq(p.shape.parent[i], parent[i], "node %d", i);
        cr_assert_eq(p.shape.rank[i], rank[i], "node %d", i);
        cr_assert_eq(p.shape.depth[i], depth[i], "node %d", i);
    }
}

Test(shape, paths_errors) {
    stree_tree_policy p;
    const int32_t p0[] = {0}, p02[] = {0, 2}, p021[] = {0, 2, 1}, pneg[] = {0, -1};
    {
        const int32_t *paths[] = {p0, p021};
        const int32_t lens[] = {1, 3};
        expect_error(stree_shape_paths(paths, lens, 2, &p), STREE_ERR_INVALID_ARG, "paths[1]",
                     "prefix [0, 2] is not in the list");
    }
    {
        const int32_t *paths[] = {p0, p02, p0};
        const int32_t lens[] = {1, 2, 1};
        expect_error(stree_shape_paths(paths, lens, 3, &p), STREE_ERR_INVALID_ARG, "paths[2]", "duplicates paths[0]");
    }
    {
        const int32_t *paths[] = {p0, pneg};
        const int32_t lens[] = {1, 2};
        expect_error(stree_shape_paths(paths, lens, 2, &p), STREE_ERR_INVALID_ARG, "paths[1][1]", ">= 0");
    }
    {
        /* 256 paths = 257 nodes */
        static int32_t store[256][2];
        const int32_t *paths[256];
        int32_t lens[256];
        for (int32_t i = 0; i < 256; i++) {
            store[i][0] = i;
            paths[i] = store[i];
            lens[i] = 1;
        }
        expect_error(stree_shape_paths(paths, lens, 256, &p), STREE_ERR_INVALID_ARG, "257 nodes", "limit is 256");
        OK(stree_shape_paths(paths, lens, 255, &p));
        cr_assert_eq(p.shape.n, 256);
        cr_assert_eq(p.shape.rank[255], 254);
    }
}

Test(shape, dynamic) {
    stree_tree_policy p;
    OK(stree_shape_dynamic(4, 6, 32, &p));
    cr_assert_eq(p.kind, STREE_SHAPE_DYNAMIC);
    cr_assert_eq(p.top_k, 4);
    cr_assert_eq(p.depth, 6);
    cr_assert_eq(p.budget, 32);
    expect_error(stree_shape_dynamic(0, 6, 32, &p), STREE_ERR_INVALID_ARG, "top_k", "1..16");
    expect_error(stree_shape_dynamic(17, 6, 32, &p), STREE_ERR_INVALID_ARG, "top_k", "1..16");
    expect_error(stree_shape_dynamic(4, 0, 32, &p), STREE_ERR_INVALID_ARG, "depth", "1..32");
    expect_error(stree_shape_dynamic(4, 33, 32, &p), STREE_ERR_INVALID_ARG, "depth", "1..32");
    expect_error(stree_shape_dynamic(4, 6, 1, &p), STREE_ERR_INVALID_ARG, "budget", "2..256");
    expect_error(stree_shape_dynamic(4, 6, 257, &p), STREE_ERR_INVALID_ARG, "budget", "2..256");
}

/* ---------------------------------------------------------------- JSON */

static char tmpdir[PATH_MAX];

static void json_setup(void) {
    const char *d = temp_dir();
    cr_assert_not_null(d, "mkdtemp failed");
    snprintf(tmpdir, sizeof tmpdir, "%s", d);
}

static void json_teardown(void) {
    temp_dir_remove(tmpdir);
    tmpdir[0] = '\0';
}

TestSuite(tree_json, .init = json_setup, .fini = json_teardown);

/* Writes `text` to tmpdir/name; returns the path (static buffer). */
static const char *write_json(const char *name, const char *text) {
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static stree_status load_text(const char *text, stree_tree_policy *p) {
    return stree_tree_policy_load(write_json("tree.json", text), p);
}

Test(tree_json, every_form_parses) {
    stree_tree_policy p;
    OK(load_text("{\"tree\": {\"type\": \"chain\", \"length\": 4}}", &p));
    cr_assert_eq(p.kind, STREE_SHAPE_STATIC);
    cr_assert_eq(p.shape.n, 5);
    cr_assert_eq(p.shape.parent[4], 3);

    OK(load_text("{\"type\": \"chain\", \"length\": 2}", &p)); /* top level is the tree */
    cr_assert_eq(p.shape.n, 3);

    OK(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0],[1],[0,0],[0,1],[1,0]]}, \"other\": 1}", &p));
    cr_assert_eq(p.kind, STREE_SHAPE_STATIC);
    cr_assert_eq(p.shape.n, 6);
    cr_assert_eq(p.shape.parent[5], 2);
    cr_assert_eq(p.shape.rank[4], 1);

    OK(load_text("{\"type\": \"static\", \"paths\": [[0],[1],[0,0]], \"budget\": 4}", &p));
    cr_assert_eq(p.shape.n, 4);

    OK(load_text("{\"type\": \"static\", \"branching\": [3, 2, 1]}", &p));
    cr_assert_eq(p.shape.n, 1 + 3 + 6 + 6);
    cr_assert_eq(p.shape.max_depth, 3);

    OK(load_text("{\"type\": \"static\", \"branching\": [2, 2], \"budget\": 7.0}", &p));
    cr_assert_eq(p.shape.n, 7);

    OK(load_text("{\"tree\": {\"type\": \"dynamic\", \"top_k\": 4, \"depth\": 6, \"budget\": 32}}", &p));
    cr_assert_eq(p.kind, STREE_SHAPE_DYNAMIC);
    cr_assert_eq(p.top_k, 4);
    cr_assert_eq(p.depth, 6);
    cr_assert_eq(p.budget, 32);
}

Test(tree_json, from_json_object) {
    cJSON *obj = cJSON_Parse("{\"type\": \"static\", \"paths\": [[0],[0,2,1]]}");
    cr_assert_not_null(obj);
    stree_tree_policy p;
    expect_error(stree_tree_policy_from_json(obj, "tree.json: tree", &p), STREE_ERR_CONFIG,
                 "tree.json: tree.paths[1]: prefix [0, 2] is not in the list", NULL);
    expect_error(stree_tree_policy_from_json(obj, NULL, &p), STREE_ERR_CONFIG, "tree.paths[1]", NULL);
    cJSON_Delete(obj);
    obj = cJSON_Parse("[1, 2]");
    expect_error(stree_tree_policy_from_json(obj, "cfg", &p), STREE_ERR_CONFIG, "cfg", "object");
    cJSON_Delete(obj);
    expect_error(stree_tree_policy_from_json(NULL, "cfg", &p), STREE_ERR_CONFIG, "cfg", "object");
}

Test(tree_json, malformed_file) {
    stree_tree_policy p;
    const char *path = write_json("bad.json", "{\"tree\": {\"type\": \"chain\", \"length\": 4");
    expect_error(stree_tree_policy_load(path, &p), STREE_ERR_FORMAT, "bad.json", NULL);
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/none.json", tmpdir);
    stree_status s = stree_tree_policy_load(missing, &p);
    cr_assert_neq(s, STREE_OK);
    cr_expect(strstr(stree_last_error(), "none.json") != NULL, "%s", stree_last_error());
}

Test(tree_json, errors) {
    stree_tree_policy p;
    expect_error(load_text("{\"tree\": {\"length\": 4}}", &p), STREE_ERR_CONFIG, "tree.type", "missing");
    expect_error(load_text("{\"tree\": {\"type\": \"medusa\"}}", &p), STREE_ERR_CONFIG, "tree.type", "\"medusa\"");
    expect_error(load_text("{\"tree\": {\"type\": 3}}", &p), STREE_ERR_CONFIG, "tree.type", "string");
    expect_error(load_text("{\"tree\": {\"type\": \"chain\", \"lenght\": 4}}", &p), STREE_ERR_CONFIG,
                 "tree.json: tree", "unknown key \"lenght\"");
    expect_error(load_text("{\"type\": \"dynamic\", \"top_k\": 4, \"depth\": 6, \"budget\": 32, \"paths\": []}", &p),
                 STREE_ERR_CONFIG, "unknown key \"paths\"", NULL);
    expect_error(load_text("{\"tree\": {\"type\": \"chain\", \"length\": 4, \"length\": 5}}", &p), STREE_ERR_CONFIG,
                 "\"length\"", "twice");
    expect_error(load_text("{\"tree\": {\"type\": \"chain\"}}", &p), STREE_ERR_CONFIG, "tree.length", "missing");
    expect_error(load_text("{\"tree\": {\"type\": \"chain\", \"length\": 0}}", &p), STREE_ERR_CONFIG, "tree.length",
                 "1..255");
    expect_error(load_text("{\"tree\": {\"type\": \"chain\", \"length\": \"4\"}}", &p), STREE_ERR_CONFIG,
                 "tree.length", "a string");
    expect_error(load_text("{\"tree\": {\"type\": \"dynamic\", \"top_k\": 4, \"depth\": 6, \"budget\": 0}}", &p),
                 STREE_ERR_CONFIG, "tree.budget", "2..256");
    expect_error(load_text("{\"tree\": {\"type\": \"dynamic\", \"top_k\": 4, \"depth\": 6}}", &p), STREE_ERR_CONFIG,
                 "tree.budget", "missing");
    expect_error(load_text("{\"tree\": {\"type\": \"dynamic\", \"top_k\": 40, \"depth\": 6, \"budget\": 9}}", &p),
                 STREE_ERR_CONFIG, "tree.top_k", "1..16");
    expect_error(load_text("{\"tree\": {\"type\": \"dynamic\", \"top_k\": 2.5, \"depth\": 6, \"budget\": 32}}", &p),
                 STREE_ERR_CONFIG, "tree.top_k", "not an integer");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0],[1.5]]}}", &p), STREE_ERR_CONFIG,
                 "tree.paths[1][0]", "not an integer");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0],[0,-1]]}}", &p), STREE_ERR_CONFIG,
                 "tree.paths[1][1]", "non-negative");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0], 1]}}", &p), STREE_ERR_CONFIG,
                 "tree.paths[1]", "array");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0],[1],[0]]}}", &p), STREE_ERR_CONFIG,
                 "tree.paths[2]", "duplicates");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0],[0,2,1]]}}", &p), STREE_ERR_CONFIG,
                 "tree.json: tree.paths[1]: prefix [0, 2] is not in the list", NULL);
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"branching\": [2, 0]}}", &p), STREE_ERR_CONFIG,
                 "tree.branching[1]", "positive");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"branching\": [8, 8, 8]}}", &p), STREE_ERR_CONFIG,
                 "585 nodes", "limit is 256");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"branching\": [2], \"paths\": [[0]]}}", &p),
                 STREE_ERR_CONFIG, "not both", NULL);
    expect_error(load_text("{\"tree\": {\"type\": \"static\"}}", &p), STREE_ERR_CONFIG, "\"paths\" or \"branching\"",
                 NULL);
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"paths\": [[0],[1],[0,0]], \"budget\": 3}}", &p),
                 STREE_ERR_CONFIG, "tree.budget", "4 nodes, more than the budget 3");
    expect_error(load_text("{\"tree\": {\"type\": \"static\", \"branching\": [2], \"budget\": 0}}", &p),
                 STREE_ERR_CONFIG, "tree.budget", ">= 1");
    expect_error(load_text("{\"tree\": 5}", &p), STREE_ERR_CONFIG, "tree.json: tree", "object");
    /* top-level tree object: fields named after the file */
    expect_error(load_text("{\"type\": \"chain\", \"length\": -2}", &p), STREE_ERR_CONFIG, "tree.json: length",
                 NULL);
}

Test(tree_json, too_many_paths) {
    char text[8192];
    size_t at = (size_t)snprintf(text, sizeof text, "{\"type\": \"static\", \"paths\": [");
    for (int i = 0; i < 300; i++) at += (size_t)snprintf(text + at, sizeof text - at, "%s[%d]", i ? "," : "", i);
    snprintf(text + at, sizeof text - at, "]}");
    stree_tree_policy p;
    expect_error(load_text(text, &p), STREE_ERR_CONFIG, "tree.json: paths", "301 nodes");
}
