#!/bin/sh
# device-bench.sh — on a CUDA machine: `sd35 bench` for SD3.5 Large, Large Turbo and Medium at
# 1024² and the same shapes in diffusers/PyTorch (tools/bench-diffusers.py), logs in $OUT.
#
#   tools/device-bench.sh
#       builds build-release (meson, -Dbuildtype=release -Dcuda=enabled) and runs everything.
#   SD35_BIN=.bench-bin/sd35 tools/device-bench.sh
#       uses a binary built elsewhere (release, CUDA), with the shared libraries it needs that
#       the machine may lack (glib, json-glib, libpng ...) in .bench-bin/lib — for machines
#       without the engine's development packages, like the lent GPU machine.
#
# Python: diffusers is not installed on the lent machine; put its wheel in .whl/ (the other
# requirements are there) and it is installed into /tmp/site.  Options (environment):
#   VARIANTS="large turbo medium"  SIZE=1024  ITERS=10  WARMUP=2  T5_TOKENS=77  STEP_TIMEOUT=240
# Output (at most 8 files, what the device tool returns): setup.log, sd35-<variant>.log,
# diffusers-<variant>.log, summary.txt.
set -u

# tools/device-bench.sh --bundle BUILD_DIR DEST: (on the build machine) copies BUILD_DIR's
# engine/sd35 and the shared libraries it links (but glibc, libstdc++, libgcc_s, zlib and the
# CUDA toolkit's, which the GPU machine has in newer versions) into DEST
# (DEST/sd35, DEST/lib/, DEST/BUILD-INFO), to be carried and run with SD35_BIN=DEST/sd35.
if [ "${1:-}" = "--bundle" ]; then
  [ $# = 3 ] || { echo "usage: $0 --bundle BUILD_DIR DEST" >&2; exit 2; }
  rm -rf "$3" && mkdir -p "$3/lib" || exit 1
  cp "$2/engine/sd35" "$3/sd35" || exit 1
  ldd "$2/engine/sd35" | awk '$3 ~ /^\// { print $3 }' \
    | grep -vE '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libz|ld-linux[^/]*)\.so|/cuda' \
    | while read -r lib; do cp -L "$lib" "$3/lib/"; done
  { echo "built on $(uname -n) $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null)"
    echo "+ uncommitted changes (git status --short | wc -l): $(git status --short | wc -l)"
    meson introspect --buildoptions "$2" 2>/dev/null \
      | python3 -c 'import json,sys; print({o["name"]: o["value"] for o in json.load(sys.stdin) if o["name"] in ("buildtype","cuda","b_sanitize")})'
    command -v nvcc >/dev/null && nvcc --version | tail -1
  } > "$3/BUILD-INFO"
  ls -la "$3" "$3/lib"
  exit 0
fi

OUT=${OUT:-$PWD/bench-out}
VARIANTS=${VARIANTS:-large turbo medium}
SIZE=${SIZE:-1024}
ITERS=${ITERS:-10}
WARMUP=${WARMUP:-2}
T5_TOKENS=${T5_TOKENS:-77}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
mkdir -p "$OUT"
SETUP="$OUT/setup.log"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

{
  echo "== machine"; date -u; uname -a; nproc
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit \
    --format=csv 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1
  command -v nvcc >/dev/null && nvcc --version | tail -2
} > "$SETUP" 2>&1

# --- the sd35 binary ----------------------------------------------------------------------------
if [ -n "${SD35_BIN:-}" ]; then
  LIBDIR="$(dirname "$SD35_BIN")/lib"
  [ -d "$LIBDIR" ] && export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "== prebuilt binary $SD35_BIN (libraries from $LIBDIR)" >> "$SETUP"
  cat "$(dirname "$SD35_BIN")/BUILD-INFO" >> "$SETUP" 2>/dev/null
else
  echo "== building build-release" >> "$SETUP"
  t0=$(date +%s)
  [ -d build-release/meson-private ] && reconf=--reconfigure || reconf=
  if ! meson setup build-release $reconf -Dbuildtype=release -Dcuda=enabled -Dgimp=disabled \
         -Dui=disabled >> "$SETUP" 2>&1 || ! ninja -C build-release engine/sd35 >> "$SETUP" 2>&1
  then
    echo "device-bench: the build failed (see setup.log)" | tee -a "$SUMMARY"
    tail -30 "$SETUP"
    exit 1
  fi
  echo "built in $(( $(date +%s) - t0 )) s" >> "$SETUP"
  SD35_BIN=build-release/engine/sd35
fi
# cuBLASLt is found through the toolkit's rpath; elsewhere (e.g. only PyTorch's wheels) search
if ldd "$SD35_BIN" | grep -q 'not found'; then
  for lib in $(ldd "$SD35_BIN" | awk '/not found/ { print $1 }'); do
    hit=$(find /usr/local /opt /usr/lib -name "$lib" 2>/dev/null | head -1)
    [ -n "$hit" ] && export LD_LIBRARY_PATH="$(dirname "$hit")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
fi
ldd "$SD35_BIN" >> "$SETUP" 2>&1

# --- diffusers ----------------------------------------------------------------------------------
HAVE_DIFFUSERS=0
if python3 -c 'import diffusers' 2>/dev/null; then
  HAVE_DIFFUSERS=1
elif ls .whl/*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps \
       --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >> "$SETUP" 2>&1; then
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  python3 -c 'import diffusers; print("diffusers", diffusers.__version__)' >> "$SETUP" 2>&1 \
    && HAVE_DIFFUSERS=1
fi
[ "$HAVE_DIFFUSERS" = 1 ] || echo "device-bench: diffusers unavailable, PyTorch side skipped" \
  | tee -a "$SUMMARY"

# --- runs: ours then diffusers, per variant (Large first: it matters most) ----------------------
export PYTHONUNBUFFERED=1
for v in $VARIANTS; do
  cmd="$SD35_BIN bench --backend cuda --variant $v --size $SIZE --iters $ITERS --warmup $WARMUP --t5-tokens $T5_TOKENS --verbose"
  echo "\$ $cmd" > "$OUT/sd35-$v.log"
  timeout "$STEP_TIMEOUT" $cmd >> "$OUT/sd35-$v.log" 2>&1
  echo "exit status $?" >> "$OUT/sd35-$v.log"
  { echo "== sd35 $v"; grep -E '^(matmul|text|MMDiT|VAE|end-to-end|denoising|peak|outputs|sd35 bench:)' \
      "$OUT/sd35-$v.log"; tail -1 "$OUT/sd35-$v.log"; } >> "$SUMMARY"
  if [ "$HAVE_DIFFUSERS" = 1 ]; then
    pcmd="python3 tools/bench-diffusers.py --variant $v --size $SIZE --iters $ITERS --warmup $WARMUP --t5-tokens $T5_TOKENS"
    echo "\$ $pcmd" > "$OUT/diffusers-$v.log"
    timeout "$STEP_TIMEOUT" $pcmd >> "$OUT/diffusers-$v.log" 2>&1
    echo "exit status $?" >> "$OUT/diffusers-$v.log"
    { echo "== diffusers $v"; grep -E '^(bench-diffusers|matmul|text|MMDiT|VAE|end-to-end)' \
        "$OUT/diffusers-$v.log"; tail -1 "$OUT/diffusers-$v.log"; } >> "$SUMMARY"
  fi
done
cat "$SUMMARY"
