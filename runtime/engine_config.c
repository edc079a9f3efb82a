/* stree_engine_create_from_config: one JSON file names the models, the drafter and the tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config_json.h"
#include "runtime/engine.h"
#include "runtime/error.h"

/* Model paths in the file are relative to the file's folder. */
static void resolve_path(const char *config_path, const char *rel, char *out, size_t cap) {
    const char *slash = strrchr(config_path, '/');
    if (rel[0] == '/' || !slash) snprintf(out, cap, "%s", rel);
    else snprintf(out, cap, "%.*s/%s", (int)(slash - config_path), config_path, rel);
}

static stree_status parse_drafter(const stree_cfg *cfg, stree_drafter_kind *out) {
    const cJSON *v = stree_cfg_get(cfg, "drafter");
    if (!v) {
        *out = stree_cfg_get(cfg, "draft") ? STREE_DRAFTER_MODEL : STREE_DRAFTER_NONE;
        return STREE_OK;
    }
    static const char *names[] = {"none", "model", "ngram", "self"};
    for (int i = 0; cJSON_IsString(v) && i < 4; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *out = (stree_drafter_kind)i;
            return STREE_OK;
        }
    return stree_fail(STREE_ERR_CONFIG, "%s: 'drafter' must be \"none\", \"model\", \"ngram\" or \"self\"", cfg->path);
}

static stree_status check_keys(const stree_cfg *cfg) {
    /* "server" belongs to examples/server, which reads the same file */
    static const char *known[] = {"target",   "draft",       "drafter", "ngram_max", "tree", "n_ctx", "chunk_size",
                                  "sampling", "accept_rule", "server",  NULL};
    for (const cJSON *it = cfg->root->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(it->string, known[i]);
        if (!ok) return stree_fail(STREE_ERR_CONFIG, "%s: unknown key '%s'", cfg->path, it->string);
    }
    return STREE_OK;
}

/* "sampling": {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed"} */
static stree_status parse_sampling(const stree_cfg *cfg, stree_sampling_params *sp) {
    const cJSON *obj = stree_cfg_get(cfg, "sampling");
    if (!obj) return STREE_OK;
    if (!cJSON_IsObject(obj)) return stree_fail(STREE_ERR_CONFIG, "%s: 'sampling' must be an object", cfg->path);
    static const char *known[] = {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed", NULL};
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(it->string, known[i]);
        if (!ok) return stree_fail(STREE_ERR_CONFIG, "%s: unknown key 'sampling.%s'", cfg->path, it->string);
        if (!cJSON_IsNumber(it)) return stree_fail(STREE_ERR_CONFIG, "%s: 'sampling.%s' must be a number", cfg->path,
                                                   it->string);
    }
    stree_cfg sub = {.root = obj, .path = cfg->path};
    STREE_TRY(stree_cfg_float_or(&sub, "temperature", sp->temperature, &sp->temperature));
    STREE_TRY(stree_cfg_int_or(&sub, "top_k", sp->top_k, &sp->top_k));
    STREE_TRY(stree_cfg_float_or(&sub, "top_p", sp->top_p, &sp->top_p));
    STREE_TRY(stree_cfg_float_or(&sub, "min_p", sp->min_p, &sp->min_p));
    STREE_TRY(stree_cfg_float_or(&sub, "repetition_penalty", sp->repetition_penalty, &sp->repetition_penalty));
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(obj, "seed");
    if (seed) sp->seed = (uint64_t)seed->valuedouble;
    return STREE_OK;
}

static stree_status load_model(const stree_cfg *cfg, const char *key, stree_model_params mp, stree_model **out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v || !cJSON_IsString(v))
        return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be the path of a model folder", cfg->path, key);
    char dir[1024];
    resolve_path(cfg->path, v->valuestring, dir, sizeof dir);
    return stree_model_load(dir, mp, out);
}

stree_status stree_engine_create_from_config(const char *path, stree_model_params mp, stree_engine **out) {
    if (!out || !path) return stree_fail(STREE_ERR_INVALID_ARG, "stree_engine_create_from_config: bad arguments");
    *out = NULL;
    cJSON *root;
    STREE_TRY(stree_json_load(path, &root));
    stree_cfg cfg = {.root = root, .path = path};
    stree_engine_params p = stree_engine_default_params();
    stree_model *target = NULL, *draft = NULL;
    stree_status s = cJSON_IsObject(root) ? STREE_OK
                                          : stree_fail(STREE_ERR_CONFIG, "%s: the top level must be an object", path);
    if (s == STREE_OK) s = check_keys(&cfg);
    if (s == STREE_OK) s = parse_drafter(&cfg, &p.drafter);
    if (s == STREE_OK) s = stree_cfg_int_or(&cfg, "ngram_max", p.ngram_max, &p.ngram_max);
    if (s == STREE_OK) s = stree_cfg_int_or(&cfg, "n_ctx", p.n_ctx, &p.n_ctx);
    if (s == STREE_OK) s = stree_cfg_int_or(&cfg, "chunk_size", p.chunk_size, &p.chunk_size);
    if (s == STREE_OK) s = parse_sampling(&cfg, &p.sampling);
    if (s == STREE_OK && stree_cfg_get(&cfg, "accept_rule")) {
        const cJSON *r = stree_cfg_get(&cfg, "accept_rule");
        if (cJSON_IsString(r) && !strcmp(r->valuestring, "auto")) p.accept_rule = STREE_ACCEPT_AUTO;
        else if (cJSON_IsString(r) && !strcmp(r->valuestring, "target_only")) p.accept_rule = STREE_ACCEPT_TARGET_ONLY;
        else s = stree_fail(STREE_ERR_CONFIG, "%s: 'accept_rule' must be \"auto\" or \"target_only\"", path);
    }
    stree_tree_policy policy;
    int has_tree = stree_cfg_get(&cfg, "tree") != NULL;
    if (s == STREE_OK && has_tree) {
        char where[1100];
        snprintf(where, sizeof where, "%s: tree", path);
        s = stree_tree_policy_from_json(stree_cfg_get(&cfg, "tree"), where, &policy);
    }
    if (s == STREE_OK) s = load_model(&cfg, "target", mp, &target);
    if (s == STREE_OK && p.drafter == STREE_DRAFTER_MODEL) s = load_model(&cfg, "draft", mp, &draft);
    p.draft_model = draft;
    stree_engine *e = NULL;
    if (s == STREE_OK) s = stree_engine_create(target, p, &e);
    if (s == STREE_OK && has_tree) {
        e->policy = policy;
        e->max_depth = policy.kind == STREE_SHAPE_DYNAMIC ? policy.depth : policy.shape.max_depth;
        e->max_nodes = policy.kind == STREE_SHAPE_DYNAMIC ? policy.budget : policy.shape.n;
    }
    cJSON_Delete(root);
    if (s != STREE_OK) {
        stree_model_free(target);
        stree_model_free(draft);
        return s;
    }
    e->owned[0] = target;
    e->owned[1] = draft;
    *out = e;
    return STREE_OK;
}
