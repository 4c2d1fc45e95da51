#!/bin/sh
# cuda-device-check.sh — one full GPU check in one call of the lent device machine (build with
# plain nvcc/gcc, twin test on all shapes, compute-sanitizer memcheck on the small shapes,
# kernel benchmarks).  Logs go to $OUT (or /tmp/sd35-check), a summary to stdout.  Usage there:
#   sh tools/cuda-device-check.sh
set -u
OUT=${OUT:-/tmp/sd35-check}
B=/tmp/sd35-cuda
mkdir -p "$OUT"
{ nvidia-smi; nvcc --version; which compute-sanitizer; } > "$OUT/env.txt" 2>&1
grep -E "H200|H100|A100|Driver|release" "$OUT/env.txt" | head -4
if ! sh tools/cuda-device-build.sh "$B" > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; exit 1
fi
tail -1 "$OUT/build.log"
timeout 300 "$B/test_ops_cuda" --bench > "$OUT/test.log" 2>&1
echo "twin test + bench: rc=$?"
grep -E "^FAIL|checks failed|^bench|peak|SKIP" "$OUT/test.log"
grep -A5 "^FAIL" "$OUT/test.log" | head -40
if command -v compute-sanitizer > /dev/null; then
  # API errors off: the test's deliberate 2 PiB allocation (clean OOM check) is one
  timeout 200 compute-sanitizer --tool memcheck --leak-check no --report-api-errors no \
    "$B/test_ops_cuda" --small > "$OUT/memcheck.log" 2>&1
  echo "memcheck (small shapes): rc=$?"; tail -3 "$OUT/memcheck.log"
  timeout 120 compute-sanitizer --tool racecheck "$B/test_ops_cuda" --small \
    > "$OUT/racecheck.log" 2>&1
  echo "racecheck (small shapes): rc=$?"; tail -2 "$OUT/racecheck.log"
fi
