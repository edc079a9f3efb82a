/* stree_model_load: config.json -> description (family adapter), checkpoint -> fp32 weights. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/family.h"
#include "runtime/model.h"

stree_model_params stree_model_default_params(void) {
    stree_model_params p = {.backend = STREE_BACKEND_AUTO, .n_threads = 0};
    return p;
}

/* Reads a whole file; *out is NUL-terminated. */
static stree_status read_file(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return stree_fail(STREE_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 16384;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory reading", path);
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return stree_fail(STREE_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return STREE_OK;
}

/* Python's json writes bare Infinity / -Infinity / NaN, which JSON (and cJSON) rejects: quote them
 * outside strings so the typed readers can interpret them. */
static char *quote_nonfinite(const char *src, size_t len) {
    char *dst = malloc(len * 3 + 1);
    if (!dst) return NULL;
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (in_str) {
            dst[o++] = ch;
            if (ch == '\\' && i + 1 < len) dst[o++] = src[++i];
            else if (ch == '"') in_str = 0;
            continue;
        }
        if (ch == '"') in_str = 1;
        const char *word = NULL;
        if (!strncmp(src + i, "-Infinity", 9)) word = "-Infinity";
        else if (!strncmp(src + i, "Infinity", 8)) word = "Infinity";
        else if (!strncmp(src + i, "NaN", 3)) word = "NaN";
        if (word) {
            size_t wl = strlen(word);
            dst[o++] = '"';
            memcpy(dst + o, word, wl);
            o += wl;
            dst[o++] = '"';
            i += wl - 1;
            continue;
        }
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return dst;
}

stree_status stree_json_load(const char *path, cJSON **out) {
    char *raw = NULL;
    size_t len = 0;
    STREE_TRY(read_file(path, &raw, &len));
    char *text = quote_nonfinite(raw, len);
    free(raw);
    if (!text) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        long off = end ? (long)(end - text) : -1;
        free(text);
        return stree_fail(STREE_ERR_FORMAT, "%s: invalid JSON near byte %ld", path, off);
    }
    free(text);
    *out = root;
    return STREE_OK;
}

/* config.json at `path` -> description */
static stree_status describe(const char *path, stree_model_desc *desc) {
    cJSON *root;
    STREE_TRY(stree_json_load(path, &root));
    stree_cfg cfg = {.root = root, .path = path};
    stree_status s = STREE_OK;
    const cJSON *arch = stree_cfg_get(&cfg, "architectures");
    const cJSON *first = arch && cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
    if (!cJSON_IsObject(root)) {
        s = stree_fail(STREE_ERR_CONFIG, "%s: the top level must be a JSON object", path);
    } else if (!first || !cJSON_IsString(first)) {
        s = stree_fail(STREE_ERR_CONFIG, "%s: missing required key 'architectures' (a list with the model class name)",
                       path);
    } else {
        const stree_family *fam = stree_family_find(first->valuestring);
        if (!fam) {
            s = stree_fail(STREE_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (supported: %s)", path,
                           first->valuestring, stree_family_names());
        } else {
            snprintf(desc->architecture, sizeof desc->architecture, "%s", fam->architecture);
            s = fam->parse(&cfg, desc);
        }
    }
    cJSON_Delete(root);
    return s;
}

static stree_status bind_weights(stree_model *m) {
    stree_checkpoint *ckpt;
    STREE_TRY(stree_checkpoint_open(m->dir, &ckpt));
    const stree_family *fam = stree_family_find(m->desc.architecture);
    stree_wbinder b = {.ckpt = ckpt, .w = &m->weights};
    for (int32_t i = 0; i < stree_checkpoint_n_tensors(ckpt); i++) b.total_bytes += stree_checkpoint_tensor(ckpt, i)->n_bytes;
    stree_status s = STREE_OK;
    m->weights.layers = calloc((size_t)m->desc.n_layers, sizeof *m->weights.layers);
    if (!m->weights.layers) s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory for layer weights");
    if (s == STREE_OK) s = fam->bind(&b, &m->desc, &m->weights);
    stree_checkpoint_close(ckpt);
    return s;
}

static void read_generation_eos(stree_model *m) {
    if (m->desc.eos_token >= 0) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/generation_config.json", m->dir);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fclose(f);
    cJSON *root;
    if (stree_json_load(path, &root) != STREE_OK) {
        stree_clear_error();
        return;
    }
    stree_cfg cfg = {.root = root, .path = path};
    m->desc.eos_token = stree_cfg_token_id(&cfg, "eos_token_id");
    cJSON_Delete(root);
}

static stree_status pick_backend(stree_backend backend, const stree_ops **out) {
    const stree_ops *ops = &stree_cpu_ops;
#ifdef STREE_HAVE_CUDA
    if (backend != STREE_BACKEND_CPU && stree_cuda_available()) ops = &stree_cuda_ops;
    if (backend == STREE_BACKEND_CUDA && ops != &stree_cuda_ops)
        return stree_fail(STREE_ERR_BACKEND, "the CUDA backend was asked for but no CUDA device is usable");
#else
    if (backend == STREE_BACKEND_CUDA)
        return stree_fail(STREE_ERR_UNSUPPORTED, "this build has no CUDA backend (configure with -DSTREE_CUDA=ON)");
#endif
    *out = ops;
    return STREE_OK;
}

/* An empty model on the backend the params ask for; `where` names it in messages. */
static stree_status model_new(stree_model_params params, const char *where, stree_model **out) {
    const stree_ops *ops = NULL;
    STREE_TRY(pick_backend(params.backend, &ops));
    stree_model *m = calloc(1, sizeof *m);
    if (!m) return stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    m->params = params;
    m->ops = ops;
    snprintf(m->dir, sizeof m->dir, "%s", where);
    *out = m;
    return STREE_OK;
}

stree_status stree_model_create_random(const char *config_path, uint64_t seed, stree_model_params params,
                                       stree_model **out) {
    if (!out || !config_path) return stree_fail(STREE_ERR_INVALID_ARG, "stree_model_create_random: bad arguments");
    *out = NULL;
    stree_model *m = NULL;
    STREE_TRY(model_new(params, config_path, &m));
    stree_status s = describe(config_path, &m->desc);
    if (s == STREE_OK) {
        m->weights.layers = calloc((size_t)m->desc.n_layers, sizeof *m->weights.layers);
        if (!m->weights.layers) s = stree_fail(STREE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (s == STREE_OK) {
        stree_wbinder b = {.ckpt = NULL, .w = &m->weights, .random = 1};
        s = stree_family_find(m->desc.architecture)->bind(&b, &m->desc, &m->weights);
    }
    if (s == STREE_OK) s = stree_weights_to_backend(m, 1, seed);
    if (s != STREE_OK) {
        stree_fail_context(s, "random model from '%s'", config_path);
        stree_model_free(m);
        return s;
    }
    *out = m;
    return STREE_OK;
}

stree_status stree_model_load(const char *dir, stree_model_params params, stree_model **out) {
    if (!out) return stree_fail(STREE_ERR_INVALID_ARG, "stree_model_load: out is NULL");
    *out = NULL;
    if (!dir) return stree_fail(STREE_ERR_INVALID_ARG, "stree_model_load: dir is NULL");
    stree_model *m = NULL;
    STREE_TRY(model_new(params, dir, &m));
    char config[1024];
    snprintf(config, sizeof config, "%s/config.json", dir);
    stree_status s = describe(config, &m->desc);
    if (s == STREE_OK) s = bind_weights(m);
    if (s == STREE_OK) s = stree_weights_to_backend(m, 0, 0);
    if (s != STREE_OK) {
        stree_fail_context(s, "loading model '%s'", dir);
        stree_model_free(m);
        return s;
    }
    read_generation_eos(m);
    *out = m;
    return STREE_OK;
}

void stree_model_free(stree_model *model) {
    if (!model) return;
    stree_weights_backend_free(model);
    stree_weights_release(&model->weights);
    free(model->desc.layers);
    free(model);
}

size_t stree_model_device_bytes(const stree_model *model) {
    return model && model->ops->bytes_in_use ? model->ops->bytes_in_use() : 0;
}

const char *stree_model_backend(const stree_model *model) { return model ? model->ops->name : ""; }

int32_t stree_model_vocab_size(const stree_model *model) { return model ? model->desc.vocab_size : 0; }
int32_t stree_model_n_layers(const stree_model *model) { return model ? model->desc.n_layers : 0; }
const char *stree_model_architecture(const stree_model *model) { return model ? model->desc.architecture : ""; }
int32_t stree_model_eos_token(const stree_model *model) { return model ? model->desc.eos_token : -1; }
