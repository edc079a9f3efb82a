/* Token trees, tree shapes and their JSON form (DESIGN.md §2, §5). */
#include "spec/tree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "runtime/config_json.h"
#include "runtime/error.h"

#define N_SLOTS (2 * STREE_TREE_MAX_NODES)
#define SLOT_MASK (N_SLOTS - 1)
_Static_assert((N_SLOTS & SLOT_MASK) == 0, "slot table size must be a power of two");
_Static_assert(STREE_TREE_MAX_NODES % 64 == 0, "node limit must be a multiple of 64");

#define DYN_MAX_TOP_K 16
#define DYN_MAX_DEPTH 32

/* ---------------------------------------------------------------- hashing */

static uint64_t hash_root(int32_t token) { return XXH64(&token, sizeof token, 0); }

/* XXH64 over the 12 bytes {u64 parent path hash, i32 token}, seed 0. */
static uint64_t hash_child(uint64_t parent_hash, int32_t token) {
    unsigned char buf[sizeof(uint64_t) + sizeof(int32_t)];
    memcpy(buf, &parent_hash, sizeof parent_hash);
    memcpy(buf + sizeof parent_hash, &token, sizeof token);
    return XXH64(buf, sizeof buf, 0);
}

/* Probes the slot table for child `token` of `parent` whose path hash is `h`. Returns the node, or -1
 * with *empty_slot = the first empty slot of the probe sequence (-1 when the table is full). */
static int32_t slot_lookup(const stree_tree *t, int32_t parent, int32_t token, uint64_t h, int32_t *empty_slot) {
    uint32_t at = (uint32_t)(h & SLOT_MASK);
    for (int32_t probe = 0; probe < N_SLOTS; probe++) {
        int32_t s = t->slot[at];
        if (s < 0) {
            if (empty_slot) *empty_slot = (int32_t)at;
            return -1;
        }
        if (t->path_hash[s] == h && t->parent[s] == parent && t->token[s] == token) return s;
        at = (at + 1) & SLOT_MASK;
    }
    if (empty_slot) *empty_slot = -1;
    return -1;
}

static void bit_set(uint64_t *words, int32_t i) { words[i / 64] |= (uint64_t)1 << (i % 64); }

/* ---------------------------------------------------------------- trees */

void stree_tree_init(stree_tree *t, int32_t root_token) {
    t->n = 1;
    t->parent[0] = -1;
    t->token[0] = root_token;
    t->depth[0] = 0;
    t->rank[0] = 0;
    t->score[0] = 0.0f;
    t->path_hash[0] = hash_root(root_token);
    memset(t->anc[0], 0, sizeof t->anc[0]);
    bit_set(t->anc[0], 0);
    for (int32_t i = 0; i < N_SLOTS; i++) t->slot[i] = -1;
}

stree_status stree_tree_add(stree_tree *t, int32_t parent, int32_t token, int32_t rank, float score,
                            int32_t *out_index, int *added) {
    if (added) *added = 0;
    if (!t) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_add: tree is NULL");
    if (parent < 0 || parent >= t->n)
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_add: parent %d is out of range 0..%d", parent,
                          t->n - 1);
    uint64_t h = hash_child(t->path_hash[parent], token);
    int32_t empty = -1;
    int32_t found = slot_lookup(t, parent, token, h, &empty);
    if (found >= 0) {
        if (out_index) *out_index = found;
        return STREE_OK;
    }
    if (t->n >= STREE_TREE_MAX_NODES)
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_add: the tree is full (%d nodes, the limit)",
                          STREE_TREE_MAX_NODES);
    if (empty < 0) return stree_fail(STREE_ERR_INTERNAL, "stree_tree_add: slot table full");
    int32_t i = t->n++;
    t->parent[i] = parent;
    t->token[i] = token;
    t->depth[i] = t->depth[parent] + 1;
    t->rank[i] = rank;
    t->score[i] = score;
    t->path_hash[i] = h;
    memcpy(t->anc[i], t->anc[parent], sizeof t->anc[i]);
    bit_set(t->anc[i], i);
    t->slot[empty] = i;
    if (out_index) *out_index = i;
    if (added) *added = 1;
    return STREE_OK;
}

stree_status stree_tree_insert_path(stree_tree *t, const int32_t *tokens, int32_t len, float score,
                                    int32_t *out_last) {
    if (!t) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_insert_path: tree is NULL");
    if (len < 0 || (len > 0 && !tokens))
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_insert_path: bad path (len %d)", len);
    int32_t node = 0;
    for (int32_t k = 0; k < len; k++) {
        int32_t child = stree_tree_find_child(t, node, tokens[k]);
        if (child < 0) {
            int32_t rank = 0;
            for (int32_t j = node + 1; j < t->n; j++) rank += t->parent[j] == node;
            STREE_TRY(stree_tree_add(t, node, tokens[k], rank, score, &child, NULL));
        }
        node = child;
    }
    if (out_last) *out_last = node;
    return STREE_OK;
}

int32_t stree_tree_find_child(const stree_tree *t, int32_t node, int32_t token) {
    if (!t || node < 0 || node >= t->n) return -1;
    return slot_lookup(t, node, token, hash_child(t->path_hash[node], token), NULL);
}

int stree_tree_is_ancestor_or_self(const stree_tree *t, int32_t a, int32_t i) {
    if (!t || a < 0 || i < 0 || a >= t->n || i >= t->n) return 0;
    return (int)((t->anc[i][a / 64] >> (a % 64)) & 1u);
}

int32_t stree_tree_path(const stree_tree *t, int32_t node, int32_t *path) {
    if (!t || node < 0 || node >= t->n) return 0;
    int32_t len = t->depth[node] + 1;
    if (len < 1 || len > STREE_TREE_MAX_NODES) return 0;
    for (int32_t k = len - 1; k >= 0; k--) {
        path[k] = node;
        node = t->parent[node];
        if (k > 0 && node < 0) return 0; /* inconsistent depths: not a valid tree */
    }
    return len;
}

stree_status stree_tree_validate(const stree_tree *t) {
    if (!t) return stree_fail(STREE_ERR_INVALID_ARG, "tree: NULL");
    if (t->n < 1 || t->n > STREE_TREE_MAX_NODES)
        return stree_fail(STREE_ERR_INVALID_ARG, "tree: node count %d is out of range 1..%d", t->n,
                          STREE_TREE_MAX_NODES);
    const int32_t n = t->n;
    for (int32_t i = 0; i < n; i++) {
        int32_t p = t->parent[i];
        uint64_t want[STREE_TREE_WORDS] = {0};
        if (i == 0) {
            if (p != -1) return stree_fail(STREE_ERR_INVALID_ARG, "tree node 0 (root): parent is %d, not -1", p);
            if (t->depth[0] != 0)
                return stree_fail(STREE_ERR_INVALID_ARG, "tree node 0 (root): depth is %d, not 0", t->depth[0]);
            if (t->path_hash[0] != hash_root(t->token[0]))
                return stree_fail(STREE_ERR_INVALID_ARG, "tree node 0 (root): path hash does not match its token");
        } else {
            if (p < 0 || p >= i)
                return stree_fail(STREE_ERR_INVALID_ARG,
                                  "tree node %d: parent %d is not in 0..%d (cycle or not in topological order)", i,
                                  p, i - 1);
            if (t->depth[i] != t->depth[p] + 1)
                return stree_fail(STREE_ERR_INVALID_ARG, "tree node %d: depth %d, but its parent %d has depth %d", i,
                                  t->depth[i], p, t->depth[p]);
            memcpy(want, t->anc[p], sizeof want);
            if (t->path_hash[i] != hash_child(t->path_hash[p], t->token[i]))
                return stree_fail(STREE_ERR_INVALID_ARG, "tree node %d: path hash does not match parent %d and token %d",
                                  i, p, t->token[i]);
            for (int32_t j = p + 1; j < i; j++)
                if (t->parent[j] == p && t->token[j] == t->token[i])
                    return stree_fail(STREE_ERR_INVALID_ARG,
                                      "tree node %d: duplicates node %d (same parent %d and token %d)", i, j, p,
                                      t->token[i]);
        }
        bit_set(want, i);
        if (memcmp(want, t->anc[i], sizeof want) != 0)
            return stree_fail(STREE_ERR_INVALID_ARG,
                              "tree node %d: ancestor bitset is not its parent's bitset plus itself", i);
    }
    /* slot table: entries in range, and every non-root node reachable through it */
    int32_t used = 0;
    for (int32_t s = 0; s < N_SLOTS; s++) {
        int32_t v = t->slot[s];
        if (v == -1) continue;
        if (v < 1 || v >= n)
            return stree_fail(STREE_ERR_INVALID_ARG, "tree slot %d: holds node %d, not in 1..%d", s, v, n - 1);
        used++;
    }
    if (used != n - 1)
        return stree_fail(STREE_ERR_INVALID_ARG, "tree: slot table holds %d nodes, expected %d", used, n - 1);
    for (int32_t i = 1; i < n; i++)
        if (slot_lookup(t, t->parent[i], t->token[i], t->path_hash[i], NULL) != i)
            return stree_fail(STREE_ERR_INVALID_ARG, "tree node %d: not found in the slot table", i);
    return STREE_OK;
}

stree_status stree_tree_prune(const stree_tree *t, int32_t budget, stree_tree *out) {
    if (!t || !out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_prune: NULL tree");
    if (budget < 1) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_prune: budget must be >= 1 (got %d)", budget);
    const int32_t n = t->n;
    if (n < 1 || n > STREE_TREE_MAX_NODES)
        return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_prune: node count %d is out of range 1..%d", n,
                          STREE_TREE_MAX_NODES);
    unsigned char keep[STREE_TREE_MAX_NODES] = {0};
    keep[0] = 1;
    int32_t kept = 1;
    /* Best-first growth from the root: take the best node (score desc, index asc) whose parent is kept.
     * When scores never increase along a path this is exactly the top (budget - 1) non-root nodes;
     * otherwise a node whose parent is not kept gives way to the next best, so the result is connected. */
    while (kept < budget && kept < n) {
        int32_t best = -1;
        for (int32_t i = 1; i < n; i++) {
            if (keep[i]) continue;
            int32_t p = t->parent[i];
            if (p < 0 || p >= i)
                return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_prune: node %d has parent %d (not a valid tree)",
                                  i, p);
            if (!keep[p]) continue;
            if (best < 0 || t->score[i] > t->score[best]) best = i; /* strict: ties keep the lower index */
        }
        if (best < 0) break;
        keep[best] = 1;
        kept++;
    }
    stree_tree tmp; /* built aside so that out may alias t */
    stree_tree_init(&tmp, t->token[0]);
    tmp.rank[0] = t->rank[0];
    tmp.score[0] = t->score[0];
    int32_t remap[STREE_TREE_MAX_NODES];
    remap[0] = 0;
    for (int32_t i = 1; i < n; i++) {
        remap[i] = -1;
        if (!keep[i]) continue;
        STREE_TRY(stree_tree_add(&tmp, remap[t->parent[i]], t->token[i], t->rank[i], t->score[i], &remap[i], NULL));
    }
    memcpy(out, &tmp, sizeof tmp);
    return STREE_OK;
}

/* ---------------------------------------------------------------- shapes */

/* Messages name `field` (e.g. "k", or "tree.json: tree.length" from JSON); failures use status `err`. */

static void shape_finish(stree_tree_policy *p) {
    p->kind = STREE_SHAPE_STATIC;
    int32_t md = 0;
    for (int32_t i = 0; i < p->shape.n; i++)
        if (p->shape.depth[i] > md) md = p->shape.depth[i];
    p->shape.max_depth = md;
    p->top_k = 0;
    p->depth = md;
    p->budget = p->shape.n;
}

static stree_status chain_impl(int32_t k, const char *field, stree_status err, stree_tree_policy *out) {
    if (k < 1 || k > STREE_TREE_MAX_NODES - 1)
        return stree_fail(err, "%s: chain length %d is out of range 1..%d (%d nodes at most)", field, k,
                          STREE_TREE_MAX_NODES - 1, STREE_TREE_MAX_NODES);
    stree_tree_policy p;
    memset(&p, 0, sizeof p);
    p.shape.n = k + 1;
    for (int32_t i = 0; i <= k; i++) {
        p.shape.parent[i] = i - 1;
        p.shape.rank[i] = 0;
        p.shape.depth[i] = i;
    }
    shape_finish(&p);
    *out = p;
    return STREE_OK;
}

static stree_status branching_impl(const int32_t *b, int32_t n_depths, const char *field, stree_status err,
                                   stree_tree_policy *out) {
    if (n_depths < 1) return stree_fail(err, "%s: needs at least one depth (got %d)", field, n_depths);
    if (!b) return stree_fail(err, "%s: NULL", field);
    for (int32_t d = 0; d < n_depths; d++)
        if (b[d] < 1) return stree_fail(err, "%s[%d]: branching factor %d must be >= 1", field, d, b[d]);
    /* node count, saturating well above the limit */
    const int64_t cap = (int64_t)1 << 40;
    int64_t level = 1, total = 1;
    int saturated = 0;
    for (int32_t d = 0; d < n_depths && !saturated; d++) {
        level *= b[d];
        if (level > cap) level = cap, saturated = 1;
        total += level;
        if (total > cap) total = cap, saturated = 1;
    }
    if (total > STREE_TREE_MAX_NODES) {
        if (saturated)
            return stree_fail(err, "%s: the tree would have more than %lld nodes; the limit is %d", field,
                              (long long)cap, STREE_TREE_MAX_NODES);
        return stree_fail(err, "%s: the tree would have %lld nodes; the limit is %d", field, (long long)total,
                          STREE_TREE_MAX_NODES);
    }
    stree_tree_policy p;
    memset(&p, 0, sizeof p);
    p.shape.n = 1;
    p.shape.parent[0] = -1;
    int32_t lo = 0, hi = 1; /* nodes of the current depth: [lo, hi) */
    for (int32_t d = 0; d < n_depths; d++) {
        for (int32_t par = lo; par < hi; par++)
            for (int32_t r = 0; r < b[d]; r++) {
                int32_t i = p.shape.n++;
                p.shape.parent[i] = par;
                p.shape.rank[i] = r;
                p.shape.depth[i] = d + 1;
            }
        lo = hi;
        hi = p.shape.n;
    }
    shape_finish(&p);
    *out = p;
    return STREE_OK;
}

static int path_cmp(const int32_t *a, int32_t la, const int32_t *b, int32_t lb) {
    if (la != lb) return la < lb ? -1 : 1;
    for (int32_t k = 0; k < la; k++)
        if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
}

/* "[0, 2]" for the first `len` ranks of a path. */
static void path_str(const int32_t *path, int32_t len, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    at += (size_t)snprintf(buf + at, cap - at, "[");
    for (int32_t k = 0; k < len && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, k ? ", %d" : "%d", path[k]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* The last component of a field name ("x.json: tree.paths" -> "paths"). */
static const char *field_tail(const char *field) {
    const char *tail = field;
    for (const char *c = field; *c; c++)
        if (*c == '.' || *c == ' ') tail = c + 1;
    return tail;
}

static stree_status paths_impl(const int32_t *const *paths, const int32_t *lens, int32_t n_paths, const char *field,
                               stree_status err, stree_tree_policy *out) {
    if (n_paths < 1) return stree_fail(err, "%s: needs at least one path", field);
    if (n_paths + 1 > STREE_TREE_MAX_NODES)
        return stree_fail(err, "%s: %d paths make %d nodes; the limit is %d", field, n_paths, n_paths + 1,
                          STREE_TREE_MAX_NODES);
    if (!paths || !lens) return stree_fail(err, "%s: NULL", field);
    for (int32_t i = 0; i < n_paths; i++) {
        if (lens[i] < 1) return stree_fail(err, "%s[%d]: a path needs at least one rank (the root is implicit)", field, i);
        if (!paths[i]) return stree_fail(err, "%s[%d]: NULL", field, i);
        for (int32_t k = 0; k < lens[i]; k++)
            if (paths[i][k] < 0) return stree_fail(err, "%s[%d][%d]: rank %d must be >= 0", field, i, k, paths[i][k]);
    }
    for (int32_t i = 0; i < n_paths; i++)
        for (int32_t j = 0; j < i; j++)
            if (path_cmp(paths[i], lens[i], paths[j], lens[j]) == 0) {
                char buf[256];
                path_str(paths[i], lens[i], buf, sizeof buf);
                return stree_fail(err, "%s[%d]: path %s duplicates %s[%d]", field, i, buf, field_tail(field), j);
            }
    /* every proper prefix must be listed: it suffices that the prefix one shorter is */
    for (int32_t i = 0; i < n_paths; i++) {
        if (lens[i] == 1) continue;
        int found = 0;
        for (int32_t j = 0; j < n_paths && !found; j++)
            found = path_cmp(paths[i], lens[i] - 1, paths[j], lens[j]) == 0;
        if (!found) {
            char buf[256];
            path_str(paths[i], lens[i] - 1, buf, sizeof buf);
            return stree_fail(err, "%s[%d]: prefix %s is not in the list", field, i, buf);
        }
    }
    /* order: by length, then lexicographically (insertion sort; n_paths < 256) */
    int32_t order[STREE_TREE_MAX_NODES];
    for (int32_t i = 0; i < n_paths; i++) {
        int32_t k = i;
        while (k > 0 && path_cmp(paths[order[k - 1]], lens[order[k - 1]], paths[i], lens[i]) > 0) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    stree_tree_policy p;
    memset(&p, 0, sizeof p);
    p.shape.n = n_paths + 1;
    p.shape.parent[0] = -1;
    for (int32_t s = 0; s < n_paths; s++) {
        int32_t i = order[s], node = s + 1, par = 0;
        if (lens[i] > 1)
            for (int32_t u = 0; u < s; u++) /* the prefix sorts earlier */
                if (path_cmp(paths[i], lens[i] - 1, paths[order[u]], lens[order[u]]) == 0) {
                    par = u + 1;
                    break;
                }
        p.shape.parent[node] = par;
        p.shape.rank[node] = paths[i][lens[i] - 1];
        p.shape.depth[node] = lens[i];
    }
    shape_finish(&p);
    *out = p;
    return STREE_OK;
}

static stree_status dynamic_impl(int32_t top_k, int32_t depth, int32_t budget, const char *prefix, stree_status err,
                                 stree_tree_policy *out) {
    if (top_k < 1 || top_k > DYN_MAX_TOP_K)
        return stree_fail(err, "%stop_k: %d is out of range 1..%d", prefix, top_k, DYN_MAX_TOP_K);
    if (depth < 1 || depth > DYN_MAX_DEPTH)
        return stree_fail(err, "%sdepth: %d is out of range 1..%d", prefix, depth, DYN_MAX_DEPTH);
    if (budget < 2 || budget > STREE_TREE_MAX_NODES)
        return stree_fail(err, "%sbudget: %d is out of range 2..%d (nodes including the root)", prefix, budget,
                          STREE_TREE_MAX_NODES);
    stree_tree_policy p;
    memset(&p, 0, sizeof p);
    p.kind = STREE_SHAPE_DYNAMIC;
    p.top_k = top_k;
    p.depth = depth;
    p.budget = budget;
    p.shape.max_depth = depth;
    *out = p;
    return STREE_OK;
}

stree_status stree_shape_chain(int32_t k, stree_tree_policy *out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_shape_chain: out is NULL");
    return chain_impl(k, "k", STREE_ERR_INVALID_ARG, out);
}

stree_status stree_shape_branching(const int32_t *branching, int32_t n_depths, stree_tree_policy *out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_shape_branching: out is NULL");
    return branching_impl(branching, n_depths, "branching", STREE_ERR_INVALID_ARG, out);
}

stree_status stree_shape_paths(const int32_t *const *paths, const int32_t *lens, int32_t n_paths,
                               stree_tree_policy *out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_shape_paths: out is NULL");
    return paths_impl(paths, lens, n_paths, "paths", STREE_ERR_INVALID_ARG, out);
}

stree_status stree_shape_dynamic(int32_t top_k, int32_t depth, int32_t budget, stree_tree_policy *out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_shape_dynamic: out is NULL");
    return dynamic_impl(top_k, depth, budget, "", STREE_ERR_INVALID_ARG, out);
}

/* ---------------------------------------------------------------- JSON */

#define FIELD_CAP 1024

static const char *json_kind(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

/* An int32 from an integral JSON number; `what` describes the expected value for messages. */
static stree_status json_int(const cJSON *v, const char *field, const char *what, int32_t *out) {
    if (!cJSON_IsNumber(v)) return stree_fail(STREE_ERR_CONFIG, "%s: expected %s, got %s", field, what, json_kind(v));
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return stree_fail(STREE_ERR_CONFIG, "%s: expected %s, got %g (not an integer)", field, what, d);
    if (d < -2147483648.0 || d > 2147483647.0)
        return stree_fail(STREE_ERR_CONFIG, "%s: %.0f is out of the 32-bit integer range", field, d);
    *out = (int32_t)d;
    return STREE_OK;
}

/* The required member `key` as an integer. */
static stree_status json_member_int(const cJSON *obj, const char *fp, const char *key, const char *type, int32_t *out) {
    char field[FIELD_CAP];
    snprintf(field, sizeof field, "%s%s", fp, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return stree_fail(STREE_ERR_CONFIG, "%s: missing (required for type \"%s\")", field, type);
    return json_int(v, field, "an integer", out);
}

static stree_status json_int_array(const cJSON *arr, const char *field, const char *what_all, const char *what,
                                   int32_t min,
                                   int32_t **out, int32_t *out_n) {
    if (!cJSON_IsArray(arr))
        return stree_fail(STREE_ERR_CONFIG, "%s: expected an array of %s, got %s", field, what_all, json_kind(arr));
    int32_t n = cJSON_GetArraySize(arr);
    int32_t *vals = malloc((size_t)(n > 0 ? n : 1) * sizeof *vals);
    if (!vals) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", field);
    int32_t k = 0;
    for (const cJSON *e = arr->child; e; e = e->next, k++) {
        char ef[FIELD_CAP];
        snprintf(ef, sizeof ef, "%s[%d]", field, k);
        stree_status s = json_int(e, ef, what, &vals[k]);
        if (s == STREE_OK && vals[k] < min)
            s = stree_fail(STREE_ERR_CONFIG, "%s: expected %s, got %d", ef, what, vals[k]);
        if (s != STREE_OK) {
            free(vals);
            return s;
        }
    }
    *out = vals;
    *out_n = n;
    return STREE_OK;
}

static stree_status static_paths(const cJSON *arr, const char *fp, stree_tree_policy *out) {
    char field[FIELD_CAP];
    snprintf(field, sizeof field, "%spaths", fp);
    if (!cJSON_IsArray(arr))
        return stree_fail(STREE_ERR_CONFIG, "%s: expected an array of paths (arrays of child ranks), got %s", field,
                          json_kind(arr));
    int32_t n = cJSON_GetArraySize(arr);
    if (n + 1 > STREE_TREE_MAX_NODES)
        return stree_fail(STREE_ERR_CONFIG, "%s: %d paths make %d nodes; the limit is %d", field, n, n + 1,
                          STREE_TREE_MAX_NODES);
    int32_t *paths[STREE_TREE_MAX_NODES] = {0};
    int32_t lens[STREE_TREE_MAX_NODES] = {0};
    stree_status s = STREE_OK;
    int32_t k = 0;
    for (const cJSON *e = arr->child; e && s == STREE_OK; e = e->next, k++) {
        char ef[FIELD_CAP];
        snprintf(ef, sizeof ef, "%s[%d]", field, k);
        s = json_int_array(e, ef, "child ranks", "a non-negative integer", 0, &paths[k], &lens[k]);
    }
    if (s == STREE_OK) s = paths_impl((const int32_t *const *)paths, lens, n, field, STREE_ERR_CONFIG, out);
    for (int32_t i = 0; i < n; i++) free(paths[i]);
    return s;
}

static stree_status static_branching(const cJSON *arr, const char *fp, stree_tree_policy *out) {
    char field[FIELD_CAP];
    snprintf(field, sizeof field, "%sbranching", fp);
    int32_t *b = NULL, n = 0;
    STREE_TRY(json_int_array(arr, field, "branching factors", "a positive integer", 1, &b, &n));
    stree_status s = branching_impl(b, n, field, STREE_ERR_CONFIG, out);
    free(b);
    return s;
}

/* `ow` names the object itself, `fp` prefixes field names (ow + "." or a file name + ": "). */
static stree_status policy_from_json(const cJSON *obj, const char *ow, const char *fp, stree_tree_policy *out) {
    if (!cJSON_IsObject(obj))
        return stree_fail(STREE_ERR_CONFIG, "%s: expected a JSON object, got %s", ow, obj ? json_kind(obj) : "nothing");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!type)
        return stree_fail(STREE_ERR_CONFIG, "%stype: missing (one of \"chain\", \"static\", \"dynamic\")", fp);
    if (!cJSON_IsString(type) || !type->valuestring)
        return stree_fail(STREE_ERR_CONFIG, "%stype: expected a string (\"chain\", \"static\" or \"dynamic\"), got %s",
                          fp, json_kind(type));
    static const char *const chain_keys[] = {"type", "length", NULL};
    static const char *const static_keys[] = {"type", "paths", "branching", "budget", NULL};
    static const char *const dynamic_keys[] = {"type", "top_k", "depth", "budget", NULL};
    const char *tname = type->valuestring;
    const char *const *keys;
    const char *allowed;
    if (!strcmp(tname, "chain")) keys = chain_keys, allowed = "type, length";
    else if (!strcmp(tname, "static")) keys = static_keys, allowed = "type, paths, branching, budget";
    else if (!strcmp(tname, "dynamic")) keys = dynamic_keys, allowed = "type, top_k, depth, budget";
    else
        return stree_fail(STREE_ERR_CONFIG, "%stype: unknown tree type \"%s\" (expected \"chain\", \"static\" or \"dynamic\")",
                          fp, tname);
    for (const cJSON *m = obj->child; m; m = m->next) {
        const char *key = m->string ? m->string : "";
        int ok = 0;
        for (const char *const *k = keys; *k && !ok; k++) ok = !strcmp(*k, key);
        if (!ok)
            return stree_fail(STREE_ERR_CONFIG, "%s: unknown key \"%s\" for type \"%s\" (allowed: %s)", ow, key, tname,
                              allowed);
        for (const cJSON *m2 = obj->child; m2 != m; m2 = m2->next)
            if (m2->string && !strcmp(m2->string, key))
                return stree_fail(STREE_ERR_CONFIG, "%s: key \"%s\" appears twice", ow, key);
    }
    stree_tree_policy p;
    memset(&p, 0, sizeof p);
    if (!strcmp(tname, "chain")) {
        int32_t len = 0;
        STREE_TRY(json_member_int(obj, fp, "length", tname, &len));
        char field[FIELD_CAP];
        snprintf(field, sizeof field, "%slength", fp);
        STREE_TRY(chain_impl(len, field, STREE_ERR_CONFIG, &p));
    } else if (!strcmp(tname, "static")) {
        const cJSON *paths = cJSON_GetObjectItemCaseSensitive(obj, "paths");
        const cJSON *branching = cJSON_GetObjectItemCaseSensitive(obj, "branching");
        if (paths && branching)
            return stree_fail(STREE_ERR_CONFIG, "%s: give either \"paths\" or \"branching\" for a static tree, not both",
                              ow);
        if (!paths && !branching)
            return stree_fail(STREE_ERR_CONFIG, "%s: a static tree needs \"paths\" or \"branching\"", ow);
        if (paths) STREE_TRY(static_paths(paths, fp, &p));
        else STREE_TRY(static_branching(branching, fp, &p));
        const cJSON *budget = cJSON_GetObjectItemCaseSensitive(obj, "budget");
        if (budget) {
            char field[FIELD_CAP];
            snprintf(field, sizeof field, "%sbudget", fp);
            int32_t b = 0;
            STREE_TRY(json_int(budget, field, "an integer", &b));
            if (b < 1) return stree_fail(STREE_ERR_CONFIG, "%s: %d must be >= 1 (max nodes including the root)", field, b);
            if (p.shape.n > b)
                return stree_fail(STREE_ERR_CONFIG, "%s: the static tree has %d nodes, more than the budget %d", field,
                                  p.shape.n, b);
        }
    } else {
        int32_t top_k, depth, budget;
        STREE_TRY(json_member_int(obj, fp, "top_k", tname, &top_k));
        STREE_TRY(json_member_int(obj, fp, "depth", tname, &depth));
        STREE_TRY(json_member_int(obj, fp, "budget", tname, &budget));
        STREE_TRY(dynamic_impl(top_k, depth, budget, fp, STREE_ERR_CONFIG, &p));
    }
    *out = p;
    return STREE_OK;
}

stree_status stree_tree_policy_from_json(const cJSON *obj, const char *where, stree_tree_policy *out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_policy_from_json: out is NULL");
    const char *ow = where && where[0] ? where : "tree";
    char fp[FIELD_CAP];
    snprintf(fp, sizeof fp, "%s.", ow);
    return policy_from_json(obj, ow, fp, out);
}

stree_status stree_tree_policy_load(const char *path, stree_tree_policy *out) {
    if (!path || !out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_tree_policy_load: NULL argument");
    cJSON *root = NULL;
    STREE_TRY(stree_json_load(path, &root));
    const cJSON *tree = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "tree") : NULL;
    char ow[FIELD_CAP], fp[FIELD_CAP];
    stree_status s;
    if (tree) {
        snprintf(ow, sizeof ow, "%s: tree", path);
        snprintf(fp, sizeof fp, "%s: tree.", path);
        s = policy_from_json(tree, ow, fp, out);
    } else {
        snprintf(ow, sizeof ow, "%s", path);
        snprintf(fp, sizeof fp, "%s: ", path);
        s = policy_from_json(root, ow, fp, out);
    }
    cJSON_Delete(root);
    return s;
}
