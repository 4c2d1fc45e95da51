#!/bin/bash
# device-check.sh — the whole first GPU check in one call of the lent device machine, from a
# bundle built here (the device machine has no meson, no GLib development files, no ../shared).
#
# Here (a CUDA build, e.g. the default `meson setup build`), in the checkout the session was
# started in — the device tool sends that one:
#     tools/device-check.sh --bundle build            # → .device-bundle/ (≤ 60 MiB, ignored)
#     tools/device-check.sh --dry-run                 # the same script, here: every stage
#                                                     #   reaches its "no GPU" skip, exit 77
# There (the device tool's `run`, carry [".device-bundle"], timeout_s 540):
#     bash tools/device-check.sh
#
# Stages, in this order, each with its own timeout, all inside DEADLINE_S (default 470 s):
#   1 ops        the per-op twin tests (tests/gpu/test_ops_cuda: CUDA vs the CPU backend)
#   2 sanitizer  compute-sanitizer memcheck on the small shapes, where the device allows it
#   3 goldens-sync  every golden through the CUDA backend with SD35_CUDA_SYNC_CHECK=1
#                (synchronise + check after every op; the first failure names op and shapes)
#   4 goldens    the same without it
#   5 bench-large  sd35 bench --variant large --size 1024 --t5-tokens 256 (4429 tokens)
#   6 bench-medium, 7 bench-turbo   only while time remains
# Output: line-buffered into $OUT (summary.txt, env.txt and one log per stage: 8 files, what
# the device tool brings back), the summary also on stdout.  Exit status: 0 all passed, 1 any
# stage failed or timed out, 77 nothing could run (no GPU).
set -u
BUNDLE_DIR=${SD35_DEVICE_BUNDLE:-.device-bundle}
BUNDLE_MAX=$((60 * 1024 * 1024))   # the device tool carries 64 MiB with the working tree

# --- here: make the bundle -------------------------------------------------------------------
if [ "${1:-}" = "--bundle" ]; then
  BUILD=${2:-build}
  DEST=${3:-$BUNDLE_DIR}
  SHARED=${SD35_SHARED_DIR:-$(dirname "$0")/../../shared}
  for f in engine/sd35 tests/test_ops_cuda tests/test_goldens_cuda; do
    [ -x "$BUILD/$f" ] || { echo "device-check: $BUILD/$f missing: build with CUDA first" \
                                 "(meson setup $BUILD; meson compile -C $BUILD)" >&2; exit 2; }
  done
  # SD35_BUNDLE_SHARED=none leaves the goldens out (tests/unit/test_device_check.sh)
  [ "${SD35_BUNDLE_SHARED:-}" = none ] || [ -f "$SHARED/golden/manifest.json" ] \
    || { echo "device-check: no goldens in $SHARED" >&2; exit 2; }
  stage=$(mktemp -d) || exit 1
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/bin" "$stage/lib" "$stage/shared/tokenizers"
  for f in engine/sd35 tests/test_ops_cuda tests/test_goldens_cuda; do
    cp "$BUILD/$f" "$stage/bin/" && strip "$stage/bin/$(basename "$f")" || exit 1
  done
  # the shared libraries the device may lack (GLib, json-glib, libpng, …); not glibc,
  # libstdc++, libgcc_s, zlib or CUDA's (the device has those, newer)
  for f in "$stage"/bin/*; do ldd "$f"; done | awk '$3 ~ /^\// { print $3 }' | sort -u \
    | grep -vE '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libz|ld-linux[^/]*)\.so|/cuda|libcublas' \
    | while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  if [ "${SD35_BUNDLE_SHARED:-}" != none ]; then
    cp -r "$SHARED/golden" "$stage/shared/" && cp -r "$SHARED/tokenizers/clip" \
      "$SHARED/tokenizers/t5" "$stage/shared/tokenizers/" || exit 1
  fi
  { echo "built on $(uname -n) $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null)" \
         "($(git status --short 2>/dev/null | wc -l) uncommitted changes)"
    meson introspect --buildoptions "$BUILD" 2>/dev/null | python3 -c 'import json,sys; print({o["name"]: o["value"] for o in json.load(sys.stdin) if o["name"] in ("buildtype","cuda","b_sanitize","b_ndebug")})' 2>/dev/null
    command -v nvcc > /dev/null && nvcc --version | tail -1
  } > "$stage/BUILD-INFO"
  rm -rf "$DEST" && mkdir -p "$DEST" || exit 1
  tar -C "$stage" -cf - . | xz "-${SD35_BUNDLE_XZ_LEVEL:-6}" -T2 > "$DEST/bundle.tar.xz" || exit 1
  cp "$stage/BUILD-INFO" "$DEST/"
  size=$(stat -c %s "$DEST/bundle.tar.xz")
  echo "device-check: $DEST/bundle.tar.xz, $((size / 1048576)) MiB (limit $((BUNDLE_MAX / 1048576)))"
  [ "$size" -le "$BUNDLE_MAX" ] || { echo "device-check: the bundle is too large to carry" >&2; exit 1; }
  exit 0
fi

# --dry-run: the same run (here, without a GPU, every stage reaches its skip)
DEADLINE_S=${DEADLINE_S:-470}
OUT=${OUT:-/tmp/sd35-device-check}
mkdir -p "$OUT" || exit 1
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
T0=$(date +%s)
FAILS=0
RAN=0
say () { echo "$*" | tee -a "$SUMMARY"; }
elapsed () { echo $(( $(date +%s) - T0 )); }
LB=""
command -v stdbuf > /dev/null && LB="stdbuf -oL -eL"   # line-buffered C programs

# --- unpack (there: from the carried bundle; --dry-run: here, from a bundle made here) ------
WORK=${SD35_DEVICE_WORK:-/tmp/sd35-device}
if [ ! -f "$BUNDLE_DIR/bundle.tar.xz" ]; then
  say "device-check: no $BUNDLE_DIR/bundle.tar.xz (make it here: tools/device-check.sh --bundle build)"
  exit 1
fi
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
if ! tar -C "$WORK" -xJf "$BUNDLE_DIR/bundle.tar.xz" 2> "$OUT/env.txt"; then
  python3 -c 'import sys,tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    "$BUNDLE_DIR/bundle.tar.xz" "$WORK" 2>> "$OUT/env.txt" || { say "device-check: cannot unpack"; exit 1; }
fi
BIN=$WORK/bin
export LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SD35_SHARED_DIR=$WORK/shared SD35_CLI=$BIN/sd35 TMPDIR=${TMPDIR:-/tmp}
# cuBLASLt: the build's rpath points at this machine's toolkit; elsewhere find it
if ldd "$BIN/sd35" | grep -q 'not found'; then
  for lib in $(ldd "$BIN/sd35" | awk '/not found/ { print $1 }'); do
    hit=$(find /usr/local /opt /usr/lib -name "$lib*" 2> /dev/null | head -1)
    [ -n "$hit" ] && export LD_LIBRARY_PATH="$(dirname "$hit"):$LD_LIBRARY_PATH"
  done
fi
{ echo "== device-check $(date -u +%FT%TZ), deadline ${DEADLINE_S} s"; cat "$WORK/BUILD-INFO"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  command -v compute-sanitizer; uname -a; ldd "$BIN/sd35"; } >> "$OUT/env.txt" 2>&1
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1)
say "device-check: ${GPU:-no GPU found (nvidia-smi)}; $(head -1 "$WORK/BUILD-INFO")"

# run_stage NAME MAX_S LOG CMD...: runs CMD line-buffered into LOG under min(MAX_S, time left);
# records ok / FAIL / SKIP (exit 77, a CUDA-less machine, or a log line matching
# STAGE_SKIP_RE) in the summary.
STAGE_SKIP_RE=
run_stage () {
  local name=$1 max=$2 log=$3; shift 3
  local left=$(( DEADLINE_S - $(elapsed) )) t rc
  t=$max; [ "$left" -lt "$t" ] && t=$left
  if [ "$t" -lt 15 ]; then
    say "SKIP $name: no time left (${left} s before the deadline)"; return 0
  fi
  echo "\$ $* (timeout ${t} s)" >> "$OUT/$log"
  timeout -k 5 "$t" $LB "$@" >> "$OUT/$log" 2>&1
  rc=$?
  echo "exit status $rc after $(elapsed) s" >> "$OUT/$log"
  if [ -n "$STAGE_SKIP_RE" ] && grep -qE "$STAGE_SKIP_RE" "$OUT/$log"; then
    say "SKIP $name: $(grep -m1 -oE "$STAGE_SKIP_RE.*" "$OUT/$log" | cut -c1-160)"
  elif [ $rc = 77 ] || { [ -z "$GPU" ] && grep -qE 'SKIP|no usable GPU|driver is missing|no CUDA device' "$OUT/$log" \
                       && ! grep -qE '^FAIL' "$OUT/$log"; }; then
    say "SKIP $name: $(grep -m1 -oE '(SKIP|sd35 bench): .*' "$OUT/$log" | cut -c1-160)"
  elif [ $rc = 0 ]; then
    RAN=$((RAN + 1)); say "ok   $name ($(elapsed) s): $(grep -E '^(ok|[0-9]+ (checks )?failed|.*passed)' "$OUT/$log" | tail -1 | cut -c1-120)"
  else
    RAN=$((RAN + 1)); FAILS=$((FAILS + 1))
    [ $rc = 124 ] || [ $rc = 137 ] && what="timed out after ${t} s" || what="exit status $rc"
    say "FAIL $name: $what (log $log)"
    grep -E '^FAIL|error|Error' "$OUT/$log" | head -8 | tee -a "$SUMMARY"
  fi
}

# 1. per-op twin tests (all shapes, the real ones included)
run_stage ops 110 1-ops.log "$BIN/test_ops_cuda"
# 2. compute-sanitizer memcheck on the small shapes (not on gVisor: "Device not supported")
if [ -z "$GPU" ]; then
  say "SKIP sanitizer: no GPU"
elif ! command -v compute-sanitizer > /dev/null; then
  say "SKIP sanitizer: compute-sanitizer is not installed on this machine"
else
  STAGE_SKIP_RE='Device not supported|not supported on this'
  run_stage sanitizer 50 2-sanitizer.log compute-sanitizer --tool memcheck --leak-check no \
    --report-api-errors no --error-exitcode 3 "$BIN/test_ops_cuda" --small
  STAGE_SKIP_RE=
fi
# 3, 4. every golden through the CUDA backend, first synchronising after every op
SD35_CUDA_SYNC_CHECK=1 run_stage goldens-sync 110 3-goldens-sync.log "$BIN/test_goldens_cuda"
run_stage goldens 80 4-goldens.log "$BIN/test_goldens_cuda"
# 5. the number the targets are about: Large at 1024², 4429 tokens
run_stage bench-large 110 5-bench-large.log "$BIN/sd35" bench --backend cuda --variant large \
  --size 1024 --t5-tokens 256 --iters 5 --warmup 2
# 5b. the same shapes in diffusers/PyTorch on the same machine, where diffusers can be had
#     (not in the device image: carry its wheel in .whl/, see README "GPU check")
if [ -z "$GPU" ]; then
  say "SKIP diffusers-large: no GPU"
elif python3 -c 'import diffusers' 2> /dev/null || { ls .whl/*.whl > /dev/null 2>&1 \
     && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
          --target /tmp/site .whl/*.whl >> "$OUT/env.txt" 2>&1 \
     && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" \
     && python3 -c 'import diffusers' 2> /dev/null; }; then
  PYTHONUNBUFFERED=1 run_stage diffusers-large 90 5-bench-large.log python3 \
    tools/bench-diffusers.py --variant large --size 1024 --iters 5 --warmup 2 --t5-tokens 256
else
  say "SKIP diffusers-large: diffusers is not installed there (carry its wheel in .whl/)"
fi
# 6, 7. Medium and Large Turbo while time remains
run_stage bench-medium 60 6-bench-medium-turbo.log "$BIN/sd35" bench --backend cuda \
  --variant medium --size 1024 --t5-tokens 256 --iters 5 --warmup 2
run_stage bench-turbo 60 6-bench-medium-turbo.log "$BIN/sd35" bench --backend cuda \
  --variant turbo --size 1024 --t5-tokens 256 --iters 5 --warmup 2
for log in 5-bench-large.log 6-bench-medium-turbo.log; do
  [ -f "$OUT/$log" ] && grep -E '^(\$|bench-diffusers|matmul|text|MMDiT|VAE|end-to-end|denoising|peak)' "$OUT/$log" \
    | tee -a "$SUMMARY"
done

say "device-check: $RAN stage(s) ran, $FAILS failed, $(elapsed) s"
[ "$FAILS" -gt 0 ] && exit 1
[ "$RAN" = 0 ] && exit 77
exit 0
