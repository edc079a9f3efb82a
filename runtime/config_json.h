/* Typed reads from config.json with errors that name the file and the key. */
#ifndef STREE_RUNTIME_CONFIG_JSON_H
#define STREE_RUNTIME_CONFIG_JSON_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "stree.h"

typedef struct stree_cfg {
    const cJSON *root;
    const char *path; /* for messages */
} stree_cfg;

/* The value under `key`, or NULL when the key is absent or JSON null. */
const cJSON *stree_cfg_get(const stree_cfg *cfg, const char *key);
/* The value under the first of `keys` (NULL-terminated) that is present. */
const cJSON *stree_cfg_get_any(const stree_cfg *cfg, const char *const *keys, const char **found_key);

/* Required values: STREE_ERR_CONFIG naming the key when absent or of the wrong type / range. */
stree_status stree_cfg_int(const stree_cfg *cfg, const char *key, int32_t *out);
stree_status stree_cfg_float(const stree_cfg *cfg, const char *key, float *out);
/* Optional values: `def` when absent or null; STREE_ERR_CONFIG when present with the wrong type. */
stree_status stree_cfg_int_or(const stree_cfg *cfg, const char *key, int32_t def, int32_t *out);
stree_status stree_cfg_float_or(const stree_cfg *cfg, const char *key, float def, float *out);
stree_status stree_cfg_bool_or(const stree_cfg *cfg, const char *key, int32_t def, int32_t *out);
/* Reads a number from a value already looked up (for nested objects and arrays). */
stree_status stree_cfg_number(const stree_cfg *cfg, const cJSON *v, const char *what, double *out);
/* A float array of exactly n entries under `key`; `def` copied when absent. */
stree_status stree_cfg_floats_or(const stree_cfg *cfg, const char *key, int32_t n, const float *def, float *out);
/* Reads rope theta from rope_parameters.rope_theta (transformers 5) or top-level rope_theta (hub). */
stree_status stree_cfg_rope_theta(const stree_cfg *cfg, float def, float *out);
/* partial_rotary_factor from rope_parameters or top level; `def` when absent. */
stree_status stree_cfg_partial_rotary(const stree_cfg *cfg, float def, float *out);
/* A number inside rope_parameters (or rope_scaling) only; `def` when absent. */
stree_status stree_cfg_rope_parameter(const stree_cfg *cfg, const char *key, float def, float *out);
/* eos_token_id may be an int or a list (first entry); -1 when absent. */
int32_t stree_cfg_token_id(const stree_cfg *cfg, const char *key);
/* Fails unless rope_parameters.rope_type / rope_scaling is absent or "default". */
stree_status stree_cfg_check_rope_type(const stree_cfg *cfg);

/* Reads and parses a JSON file (bare Infinity/NaN accepted as Python writes them). */
stree_status stree_json_load(const char *path, cJSON **out);

#endif
