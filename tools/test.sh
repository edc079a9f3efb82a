#!/usr/bin/env bash
# Builds and runs every test: the normal build, then the ASan+UBSan build of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
jobs=$(nproc)
cmake -S . -B build -DSTREE_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
cmake -S . -B build-asan -DSTREE_BUILD_TESTS=ON -DSTREE_SANITIZE=ON -DSTREE_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")
bash tools/fuzz.sh 20
