#include "tests/helpers/tiny_ckpt.h"

#include <stdio.h>
#include <string.h>

static int32_t tiny_vocab = 8;

const char *tiny_llama_config(int32_t vocab) {
    static char buf[1024];
    tiny_vocab = vocab;
    snprintf(buf, sizeof buf,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": %d, \"hidden_size\": 4,"
             " \"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
             " \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"tie_word_embeddings\": true,"
             " \"rope_parameters\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"}}",
             vocab);
    return buf;
}

typedef struct tensor_spec {
    const char *name;
    int64_t rows, cols; /* cols 0 = vector; rows -1 = vocab */
} tensor_spec;

static const tensor_spec tensors[] = {
    {"model.embed_tokens.weight", -1, 4},
    {"model.norm.weight", 4, 0},
    {"model.layers.0.input_layernorm.weight", 4, 0},
    {"model.layers.0.post_attention_layernorm.weight", 4, 0},
    {"model.layers.0.self_attn.q_proj.weight", 4, 4},
    {"model.layers.0.self_attn.k_proj.weight", 2, 4},
    {"model.layers.0.self_attn.v_proj.weight", 2, 4},
    {"model.layers.0.self_attn.o_proj.weight", 4, 4},
    {"model.layers.0.mlp.gate_proj.weight", 4, 4},
    {"model.layers.0.mlp.up_proj.weight", 4, 4},
    {"model.layers.0.mlp.down_proj.weight", 4, 4},
};
#define N_TENSORS (sizeof tensors / sizeof tensors[0])

int tiny_llama_write(const char *dir, const char *skip, const char *reshape) {
    char header[8192];
    size_t len = 0, offset = 0;
    len += (size_t)snprintf(header + len, sizeof header - len, "{");
    int first = 1;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tensor_spec *t = &tensors[i];
        if (skip && !strcmp(skip, t->name)) continue;
        int64_t rows = t->rows < 0 ? tiny_vocab : t->rows;
        if (reshape && !strcmp(reshape, t->name)) rows++;
        size_t bytes = (size_t)(rows * (t->cols ? t->cols : 1)) * 4;
        if (t->cols)
            len += (size_t)snprintf(header + len, sizeof header - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                    first ? "" : ",", t->name, (long long)rows, (long long)t->cols, offset,
                                    offset + bytes);
        else
            len += (size_t)snprintf(header + len, sizeof header - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                    first ? "" : ",", t->name, (long long)rows, offset, offset + bytes);
        offset += bytes;
        first = 0;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t n = len;
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, len, f);
    for (size_t i = 0; i < offset / 4; i++) {
        float v = 0.05f * (float)((i * 7) % 17) - 0.4f;
        fwrite(&v, 4, 1, f);
    }
    return fclose(f) ? -1 : 0;
}
