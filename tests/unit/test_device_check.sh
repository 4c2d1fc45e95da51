#!/bin/sh
# tools/device-check.sh, dry-run without a GPU (issue 12): a bundle made from this build (the
# goldens left out, fast compression), unpacked and run as on the device; every stage must
# reach its skip — none may fail — and the script must exit 77 ("nothing could run").  On a
# machine with a GPU the dry-run would be the real check (minutes), so this test skips there.
set -u
SRC=${SD35_SOURCE_DIR:-$(dirname "$0")/../..}
BUILD=${SD35_BUILD_DIR:-$SRC/build}
[ -x "$BUILD/tests/test_ops_cuda" ] || { echo "SKIP: a build without CUDA (no test_ops_cuda)"; exit 77; }
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  echo "SKIP: this machine has a GPU: run tools/device-check.sh itself"; exit 77
fi
for t in xz tar ldd strip; do
  command -v $t > /dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$SRC" || exit 1
if ! SD35_BUNDLE_SHARED=none SD35_BUNDLE_XZ_LEVEL=0 bash tools/device-check.sh --bundle "$BUILD" \
       "$tmp/bundle" > "$tmp/bundle.log" 2>&1; then
  echo "FAIL: making the bundle:"; cat "$tmp/bundle.log"; exit 1
fi
SD35_DEVICE_BUNDLE=$tmp/bundle OUT=$tmp/out SD35_DEVICE_WORK=$tmp/work \
  bash tools/device-check.sh --dry-run > "$tmp/run.log" 2>&1
rc=$?
cat "$tmp/run.log"
fails=0
[ $rc = 77 ] || { echo "FAIL: exit status $rc, expected 77 (no GPU: nothing ran)"; fails=1; }
for stage in ops sanitizer goldens-sync goldens bench-large diffusers-large bench-medium bench-turbo; do
  grep -q "^SKIP $stage: " "$tmp/out/summary.txt" || { echo "FAIL: stage $stage did not report its skip"; fails=1; }
done
if grep -q '^FAIL' "$tmp/out/summary.txt"; then echo "FAIL: a stage failed"; fails=1; fi
n=$(ls "$tmp/out" | wc -l)
[ "$n" -le 8 ] || { echo "FAIL: $n files in \$OUT (the device tool brings back 8)"; fails=1; }
[ $fails = 0 ] && echo "ok   dry-run: every stage skipped cleanly, exit 77, $n files in \$OUT"
exit $fails
