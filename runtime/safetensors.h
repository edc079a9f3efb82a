/* safetensors checkpoints: one file or the shards named by model.safetensors.index.json,
 * memory-mapped, header validated as the format requires. */
#ifndef STREE_RUNTIME_SAFETENSORS_H
#define STREE_RUNTIME_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "stree.h"

#define STREE_ST_MAX_DIMS 8

typedef enum stree_dtype {
    STREE_DTYPE_F32,
    STREE_DTYPE_F16,
    STREE_DTYPE_BF16,
    STREE_DTYPE_I32,  /* token ids in golden files; to_f32 refuses it, read data directly */
    STREE_DTYPE_OTHER /* a valid safetensors dtype we cannot convert (I64, U8, F64, ...) */
} stree_dtype;

typedef struct stree_st_tensor {
    const char *name;                 /* owned by the checkpoint */
    const char *file;                 /* path of the file holding it (owned by the checkpoint) */
    stree_dtype dtype;
    const char *dtype_name;           /* as written in the header: "F32", "BF16", "I64", ... */
    int32_t ndim;
    int64_t shape[STREE_ST_MAX_DIMS];
    int64_t n_elements;
    const uint8_t *data;              /* into the mapping; NOT aligned */
    size_t n_bytes;
} stree_st_tensor;

typedef struct stree_checkpoint stree_checkpoint;

/* Open `dir`: model.safetensors.index.json when present (every shard it names), else
 * model.safetensors. `path` may also name one .safetensors file directly. Validates every header:
 * 8-byte length within the file and at most 100 MB, JSON object, each entry has dtype/shape/
 * data_offsets, offsets in bounds and ordered, tensors contiguous without gaps or overlaps covering
 * the whole data section, shape x dtype size == byte length, no duplicate names across shards.
 * Errors name the file and the tensor. */
stree_status stree_checkpoint_open(const char *path, stree_checkpoint **out);
void stree_checkpoint_close(stree_checkpoint *ckpt);

int32_t stree_checkpoint_n_tensors(const stree_checkpoint *ckpt);
const stree_st_tensor *stree_checkpoint_tensor(const stree_checkpoint *ckpt, int32_t index);
/* NULL when absent (no error recorded). */
const stree_st_tensor *stree_checkpoint_find(const stree_checkpoint *ckpt, const char *name);
/* The directory / path given to open. */
const char *stree_checkpoint_path(const stree_checkpoint *ckpt);

/* Convert a tensor to float32 into dst [n_elements]. STREE_ERR_UNSUPPORTED for other dtypes. */
stree_status stree_st_tensor_to_f32(const stree_st_tensor *t, float *dst);

#endif
