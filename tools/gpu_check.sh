#!/usr/bin/env bash
# On the GPU machine: build with CUDA (sm_90), run every CUDA op against the CPU op, then every
# suite on the CUDA backend and on the CPU backend (STREE_GPU_CPU_SUITES=0 skips the latter), then
# the latency benchmark. Logs go to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${OUT:-gpu-logs}")
mkdir -p "$out"
source tools/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/device.txt" 2>&1
cmake -S . -B build-gpu -DSTREE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log" 2>&1
cmake --build build-gpu -j16 > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
cd build-gpu
./test_cuda_ops --verbose > "$out/cuda_ops.log" 2>&1; echo "cuda_ops rc=$?"
tail -3 "$out/cuda_ops.log"
STREE_TEST_BACKEND=cuda ctest -j4 --output-on-failure > "$out/ctest_cuda.log" 2>&1; echo "ctest cuda rc=$?"
tail -15 "$out/ctest_cuda.log"
if [ "${STREE_GPU_CPU_SUITES:-1}" != 0 ]; then # CI runs the CPU suites too; skip them to save device time
  STREE_TEST_BACKEND=cpu ctest -j8 > "$out/ctest_cpu.log" 2>&1; echo "ctest cpu rc=$?"
  tail -4 "$out/ctest_cpu.log"
fi
# the latency benchmark on the two real shapes
for cfg in granite-4.0-h-1b-like nemotron-h-8b-like; do
  ./stree_bench --config ../bench/configs/$cfg.json --backend cuda --n-past 512 --iters 20 --profile > "$out/bench-$cfg.txt" 2>&1
  echo "bench $cfg rc=$?"; cat "$out/bench-$cfg.txt"
done
