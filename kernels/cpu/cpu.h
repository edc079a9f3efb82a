/* The CPU backend's ops (fp32 reference). */
#ifndef STREE_KERNELS_CPU_H
#define STREE_KERNELS_CPU_H

#include <stddef.h>

#include "kernels/ops.h"

#define STREE_CPU_MAX_TREE 4096 /* nodes in one forward (prefill chunk or tree) */
#define STREE_CPU_MAX_CONV 64   /* conv width */

void stree_cpu_matmul(const stree_matmul_params *p);
void stree_cpu_rmsnorm(const stree_rmsnorm_params *p);
void stree_cpu_gated_norm(const stree_gated_norm_params *p);
void stree_cpu_rope(const stree_rope_params *p);
void stree_cpu_attn_tree(const stree_attn_tree_params *p);
void stree_cpu_conv_tree(const stree_conv_tree_params *p);
void stree_cpu_mamba2_scan_tree(const stree_mamba2_scan_params *p);
void stree_cpu_mamba2_commit(const stree_mamba2_commit_params *p);
void stree_cpu_conv_commit(const stree_conv_commit_params *p);
void stree_cpu_kv_commit(const stree_kv_commit_params *p);
void stree_cpu_commit_all(const stree_commit_all_params *p);
void stree_cpu_ffn_act(const stree_ffn_act_params *p);
void stree_cpu_route(const stree_route_params *p);
void stree_cpu_embed(const stree_embed_params *p);
void stree_cpu_axpby(const stree_axpby_params *p);
void stree_cpu_topk(const stree_topk_params *p);
void stree_cpu_moe(const stree_moe_params *p);
void stree_cpu_sample_probs(const stree_sample_probs_params *p);
void stree_cpu_sample_draw(const stree_sample_draw_params *p);
void stree_cpu_sample_accept(const stree_sample_accept_params *p);
void *stree_cpu_alloc(size_t bytes);
void stree_cpu_free(void *p);
void stree_cpu_copy(void *dst, const void *src, size_t bytes);
void stree_cpu_zero(void *dst, size_t bytes);
void *stree_cpu_upload_matrix(const float *src, int64_t rows, int64_t cols);
void stree_cpu_sync(void);
void *stree_cpu_random_matrix(int64_t rows, int64_t cols, uint64_t seed);
float *stree_cpu_random_vector(int64_t n, uint64_t seed, float lo, float hi);

#endif
