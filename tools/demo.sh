#!/usr/bin/env bash
# The main job: build stree (Release) and run tree-speculative generation on the embedded default
# model, beside plain autoregressive decoding of the same prompt (the outputs must be identical).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSTREE_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
# Until the trained demo pair lands, the embedded default is the tiny random Nemotron-H test model
# (Mamba-2 + attention + MLP + MoE layers) with the tiny Llama as its draft model.
model=tests/fixtures/nemotron_h
draft=tests/fixtures/llama
prompt=$(tr -d ' \n' < "$model/golden.json" | sed -n 's/.*"prompt_ids":\[\([0-9,]*\)\].*/\1/p')
[ -n "$prompt" ] || prompt=1,2,3,4,5,6,7,8
stree=./build-release/stree
echo "target: $model    draft: $draft"
echo "prompt ids: $prompt"
echo
echo "== tree-speculative (self-drafting, dynamic tree top-k 4, depth 5, budget 24) =="
spec=$($stree generate --model "$model" --tokens "$prompt" --max-new 64 --greedy --ids --no-eos --self-draft --dynamic 4,5,24)
echo "$spec"
echo "== tree-speculative (draft model $draft, static tree [3,2,1] via --tree) =="
tree=$(mktemp --suffix=.json)
echo '{"type": "static", "branching": [3, 2, 1]}' > "$tree"
drafted=$($stree generate --model "$model" --tokens "$prompt" --max-new 64 --greedy --ids --no-eos --draft "$draft" --tree "$tree")
rm -f "$tree"
echo "$drafted"
echo "== autoregressive =="
ar=$($stree generate --model "$model" --tokens "$prompt" --max-new 64 --greedy --ids --no-eos)
echo "$ar"
if [ "$spec" = "$ar" ] && [ "$drafted" = "$ar" ]; then
  echo "identical: tree-speculative output == autoregressive output"
else
  echo "MISMATCH between speculative and autoregressive output" >&2
  exit 1
fi
