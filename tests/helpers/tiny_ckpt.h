/* A tiny Llama checkpoint written by the tests themselves (config.json + model.safetensors). */
#ifndef STREE_TESTS_TINY_CKPT_H
#define STREE_TESTS_TINY_CKPT_H

#include <stdint.h>

/* config.json text for the tiny Llama with the given vocabulary (static buffer). */
const char *tiny_llama_config(int32_t vocab);
/* Writes dir/model.safetensors for vocab 8 or the vocab of the last tiny_llama_config call; skips
 * tensor `skip` and gives tensor `reshape` one extra row (both may be NULL). Returns 0 on success. */
int tiny_llama_write(const char *dir, const char *skip, const char *reshape);

#endif
