#include "kernels/cpu/cpu.h"

const stree_ops stree_cpu_ops = {
    .name = "cpu",
    .matmul = stree_cpu_matmul,
    .rmsnorm = stree_cpu_rmsnorm,
    .gated_norm = stree_cpu_gated_norm,
    .rope = stree_cpu_rope,
    .attn_tree = stree_cpu_attn_tree,
    .conv_tree = stree_cpu_conv_tree,
    .mamba2_dt = stree_cpu_mamba2_dt,
    .mamba2_scan_tree = stree_cpu_mamba2_scan_tree,
    .mamba2_commit = stree_cpu_mamba2_commit,
    .conv_commit = stree_cpu_conv_commit,
    .kv_commit = stree_cpu_kv_commit,
    .ffn_act = stree_cpu_ffn_act,
    .route = stree_cpu_route,
};
