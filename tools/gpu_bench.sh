#!/usr/bin/env bash
# On the GPU machine: build, then stree tune + stree bench on the Nemotron-H-8B-like random-weight
# target with the target as its own drafter (pure machinery overhead: random weights make any real
# drafter's acceptance meaningless). Outputs go to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${OUT:-gpu-logs}")
mkdir -p "$out"
source tools/gpu_env.sh
cmake -S . -B build-gpu -DSTREE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release -DSTREE_BUILD_TESTS=OFF > "$out/cmake.log" 2>&1
cmake --build build-gpu -j16 --target stree_cli > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
cfg=bench/configs/nemotron-h-8b-like.json
common="--random $cfg --backend cuda --self-draft --synthetic 2,128 --max-new 48"
./build-gpu/stree tune $common --max-budget 64 --out "$out/tuned.json" > "$out/tune.txt" 2>&1
echo "tune rc=$?"; tail -22 "$out/tune.txt"; cat "$out/tuned.json"
./build-gpu/stree bench $common --reps 2 --mode ar --mode chain:2 --mode chain:4 --mode dynamic:2,4,8 \
  --mode dynamic:4,4,16 --mode dynamic:4,6,32 --mode "tree:$out/tuned.json" --json "$out/bench.json" \
  --csv "$out/bench.csv" > "$out/bench.txt" 2>&1
echo "bench rc=$?"; cat "$out/bench.txt"
