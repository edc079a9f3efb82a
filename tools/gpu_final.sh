#!/usr/bin/env bash
# On the GPU machine, one pass for a session's closing numbers: build; every CUDA op against the CPU
# op; the latency benchmark on the two real shapes; the trained demo pair (tune + bench, T = 0 and
# T = 1, held-out code and prose); then the suites on the CUDA backend (the long ones in parallel).
# Logs go to /tmp/stree-logs (tar them into $OUT: the device tool returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/.."
L=/tmp/stree-logs; rm -rf $L; mkdir -p $L
source tools/gpu_env.sh
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $L/device.txt 2>&1
cmake -S . -B build-gpu -DSTREE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release > $L/cmake.log 2>&1
cmake --build build-gpu -j16 > $L/build.log 2>&1; echo "build rc=$? ($(( $(date +%s) - t0 )) s)"
cd build-gpu
./test_cuda_ops --verbose > $L/cuda_ops.log 2>&1; echo "cuda_ops rc=$?"; tail -1 $L/cuda_ops.log
for cfg in nemotron-h-8b-like granite-4.0-h-1b-like; do
  ./stree_bench --config ../bench/configs/$cfg.json --backend cuda --n-past 512 --iters 20 --profile > $L/bench-$cfg.txt 2>&1
  echo "bench $cfg rc=$?"; grep -E "^\| (AR|verify|commit)|floor" $L/bench-$cfg.txt
done
T=../models/demo-hybrid-13m; D=../models/demo-llama-2m
./stree tune --model $T --draft $D --workload ../bench/workloads/heldout-code.jsonl --max-new 64 --max-budget 64 --backend cuda --out $L/tuned-gpu.json > $L/tune-gpu.txt 2>&1; echo "tune rc=$?"; cat $L/tuned-gpu.json | head -c 400; echo
echo '{"type":"static","branching":[4,2,2,1,1]}' > $L/static.json
for temp in 0 1; do for w in code prose; do
  ./stree bench --model $T --draft $D --workload ../bench/workloads/heldout-$w.jsonl --max-new 64 --reps 1 --backend cuda --temperature $temp \
    --mode ar --mode chain:4 --mode tree:$L/static.json --mode dynamic:4,6,32 --mode tree:$L/tuned-gpu.json --csv $L/pair-gpu-$w-t$temp.csv > $L/pair-gpu-$w-t$temp.txt 2>&1
  echo "pair $w T=$temp rc=$?"; grep -E "^\|" $L/pair-gpu-$w-t$temp.txt | cut -c1-160
done; done
echo "benches done ($(( $(date +%s) - t0 )) s)"
export STREE_TEST_BACKEND=cuda
timeout ${SPEC_S:-200} ./test_spec_greedy --verbose > $L/spec_greedy.log 2>&1 & ps=$!
timeout ${SAMPLING_S:-200} ./test_sampling --verbose > $L/sampling.log 2>&1 & pm=$!
ctest -j3 -E "test_spec_greedy|test_sampling$" --output-on-failure > $L/ctest_cuda.log 2>&1; echo "ctest (others) rc=$?"; tail -4 $L/ctest_cuda.log
wait $ps; echo "spec_greedy rc=$? (124 = stopped by the time limit)"; grep -E "WARN|FAIL|Synthesis" $L/spec_greedy.log | tail -8
wait $pm; echo "sampling rc=$? (124 = stopped by the time limit)"; grep -E "PASS|FAIL|Synthesis" $L/sampling.log | tail -10
echo "total $(( $(date +%s) - t0 )) s"
