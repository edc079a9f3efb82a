#!/usr/bin/env bash
# The one GPU training run of the demo pair (issue #8): tokenizes .corpus/ (xz text carried from the
# dev machine), then trains the hybrid target and the draft at the same time on one GPU (two
# processes, each with a wall-clock budget, then the save and an fp32 eval of the saved bf16
# checkpoint). The draft's budget is shorter (default 3/5): two processes time-share the GPU, and the
# 2.4M-parameter draft saturates on fewer tokens, so the target has the GPU alone at the end.
# Writes into $OUT at most 7 files, each <= 15 MiB:
#   models.tar.part-00..02   tar of demo-hybrid-13m/ and demo-llama-2m/, split (tools/train/unpack.sh)
#   prep.log target.log draft.log   the logs;   summary.json   params, steps, validation losses
# Usage (repository root, GPU machine):  OUT=/some/dir bash tools/train/gpu_run.sh [TARGET_S=420 [DRAFT_S]]
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the output folder}"
budget=${1:-420}
dbudget=${2:-$(( budget * 3 / 5 ))}
work=${TRAIN_WORK:-/tmp/stree-train}
extra=${TRAIN_EXTRA:-}      # smoke test on a CPU: TRAIN_EXTRA="--tiny --max-steps 20 --batch 8 --seq 128 --device cpu"
prep_extra=${PREP_EXTRA:-}  # and PREP_EXTRA="--max-bytes 2000000"
rm -rf "$work" && mkdir -p "$work/models"
t0=$(date +%s)
{
  nvidia-smi -L || true
  python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available())'
  python3 tools/train/train.py --check-scan
  python3 tools/train/prep.py --corpus .corpus --out "$work/tok" $prep_extra
} > "$OUT/prep.log" 2>&1 || { echo "prep failed (see prep.log)"; tail -20 "$OUT/prep.log"; exit 1; }
echo "prep done in $(( $(date +%s) - t0 )) s"
python3 tools/train/train.py --arch target --data "$work/tok" --out "$work/models/demo-hybrid-13m" \
  --time-budget "$budget" --batch 64 --seq 512 --lr 1.5e-3 $extra > "$OUT/target.log" 2>&1 &
pt=$!
python3 tools/train/train.py --arch draft --data "$work/tok" --out "$work/models/demo-llama-2m" \
  --time-budget "$dbudget" --batch 64 --seq 512 --lr 3e-3 $extra > "$OUT/draft.log" 2>&1 &
pd=$!
wait $pt; rt=$?
wait $pd; rd=$?
echo "training done in $(( $(date +%s) - t0 )) s (target rc $rt, draft rc $rd)"
tail -n 4 "$OUT/target.log" "$OUT/draft.log"
python3 - "$work/models" "$OUT/summary.json" <<'EOF'
import json, os, sys
root, out = sys.argv[1], sys.argv[2]
s = {}
for name in sorted(os.listdir(root)):
    p = os.path.join(root, name, "metrics.json")
    if os.path.exists(p):
        m = json.load(open(p))
        m.pop("history", None)
        s[name] = m
json.dump(s, open(out, "w"), indent=1)
for k, v in s.items():
    print(k, {d: round(r["loss"], 4) for d, r in v["val"].items()}, f'{v["steps"]} steps')
EOF
tar -C "$work/models" -cf - . | split -b 15M -d - "$OUT/models.tar.part-"
ls -la "$OUT"
echo "total $(( $(date +%s) - t0 )) s"
[ $rt -eq 0 ] && [ $rd -eq 0 ]
