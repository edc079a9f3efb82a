#!/usr/bin/env bash
# On the GPU machine: build, then per-kernel GPU time (ncu, one metric, no cache flush, no clock
# lock) of the 8B-like bench at the given tree sizes, grouped by (kernel, grid). Logs into $1.
# usage: tools/gpu_profile.sh LOGDIR [SIZES]   e.g. tools/gpu_profile.sh /tmp/prof 1,64
set -uo pipefail
cd "$(dirname "$0")/.."
L=${1:-/tmp/stree-prof}; SIZES=${2:-1,64}; mkdir -p "$L"
source tools/gpu_env.sh
cmake -S . -B build-gpu -DSTREE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release > "$L/cmake.log" 2>&1
cmake --build build-gpu -j16 > "$L/build.log" 2>&1 || { echo "build failed"; tail -30 "$L/build.log"; exit 1; }
/usr/local/cuda/bin/ncu --csv --cache-control none --clock-control none --metrics gpu__time_duration.sum \
  ./build-gpu/stree_bench --config bench/configs/nemotron-h-8b-like.json --backend cuda --n-past 512 --iters 1 \
  --sizes "$SIZES" > "$L/ncu-raw.csv" 2> "$L/ncu.err"
python3 - "$L/ncu-raw.csv" > "$L/ncu-summary.txt" <<'PY'
# the last forward (a forward ends with topk_merge_kernel), kernels grouped; cuBLAS kernels as GEMM
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
ix = {k: i for i, k in enumerate(rows[0])}
ks = []
for r in rows[1:]:
    try: v = float(r[ix["Metric Value"]].replace(",", ""))
    except ValueError: continue
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}[r[ix["Metric Unit"]]]
    ks.append((r[ix["Kernel Name"]].split("(")[0][:56], r[ix["Grid Size"]], v * scale))
ends = [i for i, k in enumerate(ks) if k[0].startswith("topk_merge")]
seg = ks[ends[-2] + 1:ends[-1] + 1]
agg, tot = collections.defaultdict(lambda: [0, 0.0]), collections.defaultdict(float)
for n, g, us in seg:
    agg[(n, g)][0] += 1; agg[(n, g)][1] += us
    tot["GEMM (skinny, cuBLAS, GEMV)" if n.startswith(("nvjet", "void cublasLt", "void gemv", "void skinny", "sm90")) else n.split("<")[0]] += us
print(f"last forward: {len(seg)} kernels, {sum(k[2] for k in seg):.1f} us of GPU time")
for n, t in sorted(tot.items(), key=lambda x: -x[1]): print(f"  {n:40s} {t:9.1f} us")
print(f"\n{'kernel':56s} {'grid':>14s} {'calls':>5s} {'total us':>9s}")
for (n, g), (c, t) in sorted(agg.items(), key=lambda x: -x[1][1]): print(f"{n:56s} {g:>14s} {c:5d} {t:9.1f}")
PY
head -24 "$L/ncu-summary.txt"
