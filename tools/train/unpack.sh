#!/usr/bin/env bash
# Puts the GPU run's output (tools/train/gpu_run.sh: models.tar.part-*, logs, summary.json) into
# models/<name>/ here, then checks the engine against transformers on them (CPU, fp32):
#   bash tools/train/unpack.sh DIR_WITH_PARTS [--no-check]
set -euo pipefail
cd "$(dirname "$0")/../.."
src=${1:?folder with models.tar.part-*}
ls "$src"/models.tar.part-* >/dev/null
mkdir -p models
cat "$src"/models.tar.part-* | tar -C models -xf -
for f in summary.json target.log draft.log prep.log; do
  [ -f "$src/$f" ] && cp "$src/$f" "models/train-$f"
done
ls -la models/*/
if [ "${2:-}" != "--no-check" ]; then
  [ -x build/stree ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
  python3 tools/train/check_engine.py --stree build/stree \
    --model models/demo-hybrid-13m --model models/demo-llama-2m \
    --target models/demo-hybrid-13m --draft models/demo-llama-2m \
    --prompts bench/workloads/heldout-code.jsonl --prompts bench/workloads/heldout-prose.jsonl \
    --json models/engine-check.json
fi
