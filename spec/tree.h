/* Token trees (DESIGN.md §2, §5): nodes in topological order (parent[i] < i, node 0 = root = the
 * last emitted token), per-node depth, sibling rank and draft score, ancestor-or-self bitsets, and
 * xxHash path hashes that merge duplicate candidates. Plus tree shapes: static (child-rank paths or
 * per-depth branching), chain, and dynamic (EAGLE-2 style top-k / depth / budget), parsed from JSON. */
#ifndef STREE_SPEC_TREE_H
#define STREE_SPEC_TREE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "stree.h"

#define STREE_TREE_MAX_NODES 256
#define STREE_TREE_WORDS (STREE_TREE_MAX_NODES / 64)

typedef struct stree_tree {
    int32_t n;
    int32_t parent[STREE_TREE_MAX_NODES]; /* parent[0] = -1 */
    int32_t token[STREE_TREE_MAX_NODES];
    int32_t depth[STREE_TREE_MAX_NODES];  /* root 0 */
    int32_t rank[STREE_TREE_MAX_NODES];   /* sibling rank: 0 = the parent's best child (root: 0) */
    float score[STREE_TREE_MAX_NODES];    /* cumulative draft log-prob (root 0) */
    uint64_t path_hash[STREE_TREE_MAX_NODES];              /* xxh64 of the tokens root..node */
    uint64_t anc[STREE_TREE_MAX_NODES][STREE_TREE_WORDS];  /* ancestor-or-self bitset */
    /* open-addressing table path_hash -> node, for merging duplicate paths */
    int32_t slot[2 * STREE_TREE_MAX_NODES];
} stree_tree;

/* A tree with only the root. */
void stree_tree_init(stree_tree *t, int32_t root_token);
/* Adds child `token` under `parent` with `rank` and `score`; if that child already exists (same
 * path), returns its index instead (*added = 0). STREE_ERR_INVALID_ARG when the parent is out of
 * range or the tree already holds STREE_TREE_MAX_NODES nodes. `added` may be NULL. */
stree_status stree_tree_add(stree_tree *t, int32_t parent, int32_t token, int32_t rank, float score,
                            int32_t *out_index, int *added);
/* Inserts the path root -> tokens[0..len-1] (merging shared prefixes); *out_last = its last node.
 * Each new node gets `score` and rank = the number of children its parent already had; existing nodes
 * are left unchanged. If the tree fills up midway the nodes added so far stay. */
stree_status stree_tree_insert_path(stree_tree *t, const int32_t *tokens, int32_t len, float score, int32_t *out_last);
/* -1 when `node` has no child carrying `token`. */
int32_t stree_tree_find_child(const stree_tree *t, int32_t node, int32_t token);
/* 1 when a is node i or one of its ancestors. */
int stree_tree_is_ancestor_or_self(const stree_tree *t, int32_t a, int32_t i);
/* Writes root..node into path (capacity STREE_TREE_MAX_NODES); returns the length (depth + 1). */
int32_t stree_tree_path(const stree_tree *t, int32_t node, int32_t *path);
/* Checks every invariant (topological parents, depths, bitsets, hashes, no duplicate siblings, slot
 * table); STREE_ERR_INVALID_ARG with a message naming the node. */
stree_status stree_tree_validate(const stree_tree *t);
/* Keeps the `budget` best nodes by score (ties: lower index first; the root always), which is a
 * connected subtree when scores never increase from parent to child; re-indexed in topological
 * order into *out.
 * Selection is best-first from the root: repeatedly keep the best not-yet-kept node whose parent is kept,
 * so the result is always connected; when scores never increase along a path this is exactly the root plus
 * the (budget - 1) best other nodes. Depths, bitsets, hashes and slots are recomputed; rank and score are
 * copied. `out` may be `t`. STREE_ERR_INVALID_ARG when budget < 1. */
stree_status stree_tree_prune(const stree_tree *t, int32_t budget, stree_tree *out);

/* ---- shapes ---- */
typedef enum stree_shape_kind {
    STREE_SHAPE_STATIC,  /* a fixed tree of child ranks (chain and per-depth branching are static) */
    STREE_SHAPE_DYNAMIC, /* EAGLE-2: expand the top_k frontier nodes into top_k children, depth levels, keep budget */
} stree_shape_kind;

typedef struct stree_static_shape {
    int32_t n;                            /* nodes including the root */
    int32_t parent[STREE_TREE_MAX_NODES]; /* topological; parent[0] = -1 */
    int32_t rank[STREE_TREE_MAX_NODES];   /* child rank under the parent (distinct among siblings) */
    int32_t depth[STREE_TREE_MAX_NODES];
    int32_t max_depth;
} stree_static_shape;

typedef struct stree_tree_policy {
    stree_shape_kind kind;
    stree_static_shape shape; /* STATIC */
    int32_t top_k, depth, budget; /* DYNAMIC (budget = max nodes incl. root) */
} stree_tree_policy;

/* Shape constructors: STREE_ERR_INVALID_ARG (message naming the argument) on bad input; *out is only
 * written on success. A static policy also gets depth = shape.max_depth, budget = shape.n, top_k = 0;
 * a dynamic one has shape.n = 0 and shape.max_depth = depth. Limits: top_k 1..16, depth 1..32,
 * budget 2..STREE_TREE_MAX_NODES. */
/* Chain of k drafted tokens (k + 1 nodes). */
stree_status stree_shape_chain(int32_t k, stree_tree_policy *out);
/* Full tree with branching[d] children per node at depth d (d < n_depths), within the node limit. */
stree_status stree_shape_branching(const int32_t *branching, int32_t n_depths, stree_tree_policy *out);
/* Medusa-style list of child-rank paths, e.g. [[0],[1],[0,0]]; every path's prefix must be listed
 * (or be the root); duplicates are errors. */
stree_status stree_shape_paths(const int32_t *const *paths, const int32_t *lens, int32_t n_paths, stree_tree_policy *out);
stree_status stree_shape_dynamic(int32_t top_k, int32_t depth, int32_t budget, stree_tree_policy *out);

/* Parses a tree object:
 *   {"type": "chain", "length": 4}
 *   {"type": "static", "paths": [[0],[1],[0,0]]}      (optional "budget": max nodes, checked)
 *   {"type": "static", "branching": [3, 2, 1]}
 *   {"type": "dynamic", "top_k": 4, "depth": 6, "budget": 32}
 * `where` names the source for messages (e.g. "tree.json: tree"; NULL = "tree"); errors name the bad
 * field ("tree.json: tree.paths[3]: prefix [0, 2] is not in the list"). Unknown and repeated keys and
 * non-integer numbers are errors. All errors are STREE_ERR_CONFIG; *out is only written on success. */
stree_status stree_tree_policy_from_json(const cJSON *obj, const char *where, stree_tree_policy *out);
/* Reads a JSON file whose top level is a tree object or has a "tree" member holding one. Unreadable
 * file: STREE_ERR_IO; malformed JSON: STREE_ERR_FORMAT; bad contents: STREE_ERR_CONFIG. */
stree_status stree_tree_policy_load(const char *path, stree_tree_policy *out);

#endif
