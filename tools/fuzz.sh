#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time.
# usage: tools/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found; skipping the fuzz targets" >&2
  exit 0
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DSTREE_FUZZ=ON -DSTREE_CUDA=OFF -DSTREE_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_request fuzz_tokenizer >/dev/null
for target in request tokenizer; do
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/$target/* "$corpus"/
  # small tokenizer.json files seed the loader (mode byte 0); the 1.5 MB GPT-2 one would eat the time
  [ "$target" = tokenizer ] && for t in tests/fixtures/tokenizers/*/tokenizer.json tests/fixtures/server/tokenizer.json; do
    [ -f "$t" ] && [ "$(stat -c %s "$t")" -lt 60000 ] && \
      { printf '\x00' > "$corpus/$(basename "$(dirname "$t")").json"; cat "$t" >> "$corpus/$(basename "$(dirname "$t")").json"; }
  done
  echo "fuzz: $target for ${secs}s"
  ./build-fuzz/fuzz_$target -max_total_time="$secs" -max_len=65536 -print_final_stats=1 "$corpus" 2>&1 | tail -4
  rm -rf "$corpus"
done
echo "fuzz: 2 passed, 0 failed"
