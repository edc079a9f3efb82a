#!/usr/bin/env bash
# The main job: build stree (Release) and generate text from a prompt with tree speculation on the
# embedded default model — the trained demo pair in models/ (a 13M-parameter Mamba-2 / attention
# hybrid target and a 2.4M-parameter Llama draft, models/README.md) — then the same tokens
# autoregressively: it prints tokens/s, the mean accepted length and the measured speedup, and
# checks that the outputs are identical.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSTREE_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
stree=./build-release/stree
target=models/demo-hybrid-13m
draft=models/demo-llama-2m
# the tree stree tune chose for this pair on a 2-core CPU (bench/configs/demo-pair-cpu-tuned.json)
tree=bench/configs/demo-pair-cpu-tuned.json
prompt='static int parse_args(int argc, char **argv, struct options *opts)
{
	int i;

	for (i = 1; i < argc; i++) {'
echo "target: $target    draft: $draft    tree: $tree"
echo "== prompt =="
printf '%s\n' "$prompt"
echo "== tree-speculative continuation (greedy) =="
$stree generate --model "$target" --draft "$draft" --tree "$tree" --prompt "$prompt" --max-new 160 --no-eos \
  --compare-ar
