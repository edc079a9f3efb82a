#!/usr/bin/env bash
# The main job: build stree (Release) and generate from the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSTREE_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
model=tests/fixtures/nemotron_h
prompt=$(python3 -c "import json;print(','.join(map(str,json.load(open('$model/golden.json'))['prompt_ids'])))" 2>/dev/null || echo 1,2,3,4,5,6,7,8)
echo "model: $model (tiny random Nemotron-H hybrid: Mamba-2 + attention + MLP + MoE layers)"
echo "prompt ids: $prompt"
echo -n "generated ids: "
./build-release/stree generate --model "$model" --tokens "$prompt" --max-new 32 --greedy --ids --no-eos
