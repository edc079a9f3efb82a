#include "runtime/config_json.h"

#include <math.h>
#include <string.h>

#include "runtime/error.h"

const cJSON *stree_cfg_get(const stree_cfg *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    if (!v || cJSON_IsNull(v)) return NULL;
    return v;
}

const cJSON *stree_cfg_get_any(const stree_cfg *cfg, const char *const *keys, const char **found_key) {
    for (; *keys; keys++) {
        const cJSON *v = stree_cfg_get(cfg, *keys);
        if (v) {
            if (found_key) *found_key = *keys;
            return v;
        }
    }
    return NULL;
}

stree_status stree_cfg_number(const stree_cfg *cfg, const cJSON *v, const char *what, double *out) {
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return STREE_OK;
    }
    /* transformers 5 writes non-finite floats as {"__float__": "Infinity"} */
    if (cJSON_IsObject(v)) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, "__float__");
        if (f && cJSON_IsString(f)) v = f;
    }
    /* Python's json writes bare Infinity; the loader quotes it into the string "Infinity". */
    if (cJSON_IsString(v) && (!strcmp(v->valuestring, "Infinity") || !strcmp(v->valuestring, "-Infinity"))) {
        *out = v->valuestring[0] == '-' ? -INFINITY : INFINITY;
        return STREE_OK;
    }
    return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be a number", cfg->path, what);
}

static stree_status get_int(const stree_cfg *cfg, const char *key, const cJSON *v, int32_t *out) {
    double d = 0.0;
    STREE_TRY(stree_cfg_number(cfg, v, key, &d));
    if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
        return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be an integer, got %g", cfg->path, key, d);
    *out = (int32_t)d;
    return STREE_OK;
}

stree_status stree_cfg_int(const stree_cfg *cfg, const char *key, int32_t *out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) return stree_fail(STREE_ERR_CONFIG, "%s: missing required key '%s'", cfg->path, key);
    return get_int(cfg, key, v, out);
}

stree_status stree_cfg_float(const stree_cfg *cfg, const char *key, float *out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) return stree_fail(STREE_ERR_CONFIG, "%s: missing required key '%s'", cfg->path, key);
    double d = 0.0;
    STREE_TRY(stree_cfg_number(cfg, v, key, &d));
    *out = (float)d;
    return STREE_OK;
}

stree_status stree_cfg_int_or(const stree_cfg *cfg, const char *key, int32_t def, int32_t *out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) {
        *out = def;
        return STREE_OK;
    }
    return get_int(cfg, key, v, out);
}

stree_status stree_cfg_float_or(const stree_cfg *cfg, const char *key, float def, float *out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) {
        *out = def;
        return STREE_OK;
    }
    double d = 0.0;
    STREE_TRY(stree_cfg_number(cfg, v, key, &d));
    *out = (float)d;
    return STREE_OK;
}

stree_status stree_cfg_bool_or(const stree_cfg *cfg, const char *key, int32_t def, int32_t *out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) {
        *out = def;
        return STREE_OK;
    }
    if (!cJSON_IsBool(v)) return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be true or false", cfg->path, key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return STREE_OK;
}

stree_status stree_cfg_floats_or(const stree_cfg *cfg, const char *key, int32_t n, const float *def, float *out) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (!v) {
        memcpy(out, def, (size_t)n * sizeof *out);
        return STREE_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return stree_fail(STREE_ERR_CONFIG, "%s: '%s' must be a list of %d numbers", cfg->path, key, n);
    for (int32_t i = 0; i < n; i++) {
        double d = 0.0;
        STREE_TRY(stree_cfg_number(cfg, cJSON_GetArrayItem(v, i), key, &d));
        out[i] = (float)d;
    }
    return STREE_OK;
}

static const cJSON *rope_params(const stree_cfg *cfg) {
    const cJSON *rp = stree_cfg_get(cfg, "rope_parameters");
    if (rp && cJSON_IsObject(rp)) return rp;
    rp = stree_cfg_get(cfg, "rope_scaling");
    if (rp && cJSON_IsObject(rp)) return rp;
    return NULL;
}

static stree_status rope_number(const stree_cfg *cfg, const char *key, float def, float *out) {
    const cJSON *rp = rope_params(cfg);
    const cJSON *v = rp ? cJSON_GetObjectItemCaseSensitive(rp, key) : NULL;
    if (v && !cJSON_IsNull(v)) {
        double d = 0.0;
        STREE_TRY(stree_cfg_number(cfg, v, key, &d));
        *out = (float)d;
        return STREE_OK;
    }
    return stree_cfg_float_or(cfg, key, def, out);
}

stree_status stree_cfg_rope_theta(const stree_cfg *cfg, float def, float *out) {
    return rope_number(cfg, "rope_theta", def, out);
}

stree_status stree_cfg_rope_parameter(const stree_cfg *cfg, const char *key, float def, float *out) {
    const cJSON *rp = rope_params(cfg);
    const cJSON *v = rp ? cJSON_GetObjectItemCaseSensitive(rp, key) : NULL;
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return STREE_OK;
    }
    double d = 0.0;
    STREE_TRY(stree_cfg_number(cfg, v, key, &d));
    *out = (float)d;
    return STREE_OK;
}

stree_status stree_cfg_partial_rotary(const stree_cfg *cfg, float def, float *out) {
    return rope_number(cfg, "partial_rotary_factor", def, out);
}

stree_status stree_cfg_check_rope_type(const stree_cfg *cfg) {
    const cJSON *rp = rope_params(cfg);
    if (!rp) return STREE_OK;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(rp, "type");
    if (!t || cJSON_IsNull(t)) return STREE_OK;
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "default")) return STREE_OK;
    return stree_fail(STREE_ERR_UNSUPPORTED, "%s: rope type '%s' is not supported (only \"default\")", cfg->path,
                      cJSON_IsString(t) ? t->valuestring : "?");
}

int32_t stree_cfg_token_id(const stree_cfg *cfg, const char *key) {
    const cJSON *v = stree_cfg_get(cfg, key);
    if (v && cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    if (v && cJSON_IsNumber(v)) return (int32_t)v->valuedouble;
    return -1;
}
