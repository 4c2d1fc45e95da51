#!/bin/sh
# cuda-device-build.sh — builds tests/gpu/test_ops_cuda (kernels/ + engine/cpu/ + the few
# engine files the op layer needs) with plain nvcc/gcc, for machines without meson or the
# engine's pkg-config dependencies (the lent GPU machine).  Usage:
#   tools/cuda-device-build.sh [BUILD_DIR]      (default /tmp/sd35-cuda)
# CUDA_GENCODE overrides the targets (default: sm_90 only, to build fast on an H100/H200).
set -eu
B=${1:-/tmp/sd35-cuda}
CUDA=${CUDA_HOME:-/usr/local/cuda}
GENCODE=${CUDA_GENCODE:--gencode=arch=compute_90,code=sm_90}
mkdir -p "$B"
pids=""
for f in kernels/*.cu; do
  o="$B/$(basename "$f" .cu).cu.o"
  "$CUDA/bin/nvcc" $GENCODE -O3 -lineinfo -std=c++17 --expt-relaxed-constexpr \
    -Xptxas -v -Iengine -Ikernels -c "$f" -o "$o" > "$o.log" 2>&1 &
  pids="$pids $!"
done
CFLAGS="-O2 -g -std=gnu11 -D_GNU_SOURCE -DSD35_HAVE_CUDA=1 -Iengine -Ikernels -Itests/gpu -Wall"
objs=""
for f in engine/error.c engine/dtype.c engine/backend.c engine/cpu/*.c tests/gpu/test_ops_cuda.c tests/gpu/ops_cuda_util.c \
         tests/gpu/ops_cuda_bench.c tests/gpu/ops_cuda_mixed.c; do
  o="$B/$(echo "$f" | tr / _).o"
  gcc $CFLAGS -c "$f" -o "$o"
  objs="$objs $o"
done
fail=0
for p in $pids; do wait "$p" || fail=1; done
cat "$B"/*.cu.o.log | grep -E "error|warning|[1-9][0-9]* bytes spill" || true
[ "$fail" = 0 ] || { cat "$B"/*.cu.o.log; echo "nvcc failed"; exit 1; }
g++ -o "$B/test_ops_cuda" $objs "$B"/*.cu.o -L"$CUDA/lib64" -lcudart_static -lcublasLt \
  -lpthread -ldl -lrt -lm -Wl,-rpath,"$CUDA/lib64"
echo "built $B/test_ops_cuda"
