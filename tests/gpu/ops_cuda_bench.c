/* ops_cuda_bench.c — `test_ops_cuda --bench`: CUDA-event timings of the CUDA backend's ops at
 * SD3.5 sizes (3 warm-ups, median of the repeats), GEMM rates against an 8192³ bf16 GEMM
 * measured in the same run, bandwidth of the memory-bound ops. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_timer.h"
#include "ops_cuda_test.h"

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

#define BENCH(ms_out, reps, stmt) \
  do { \
    float t_[64]; \
    for (int w_ = 0; w_ < 3; w_++) { stmt; } \
    for (int r_ = 0; r_ < (reps); r_++) \
      { sd35_cuda_timer_begin (gpu); stmt; t_[r_] = sd35_cuda_timer_end (gpu); } \
    qsort (t_, (reps), sizeof (float), cmp_float); \
    ms_out = t_[(reps) / 2]; \
  } while (0)

static double peak_tflops;

static void
bench_linear (int64_t M, int64_t N, int64_t K, int bias, enum op_act a, const char *what)
{
  struct tensor *x = act (gpu, NULL, M * K), *out = act (gpu, NULL, M * N);
  float         *hw = rand_vec ((size_t) N * K, -0.02f, 0.02f, 5), *hb = rand_vec ((size_t) N, -1, 1, 6);
  float         *hx = rand_vec ((size_t) M * K, -1.f, 1.f, 7);
  struct tensor *w = weight (gpu, hw, N * K, WEIGHT_MATRIX);
  struct tensor *b = bias ? weight (gpu, hb, N, WEIGHT_VECTOR) : NULL;
  float          ms;
  gpu->ops->upload_f32 (gpu, x, hx);
  BENCH (ms, 20, op_linear (gpu, out, x, w, b, M, N, K, a));
  double tf = 2.0 * M * N * K / (ms * 1e-3) / 1e12;
  if (peak_tflops == 0)
    peak_tflops = tf;
  printf ("bench linear %-22s M=%-5lld N=%-5lld K=%-5lld %8.3f ms %7.1f TFLOP/s (%.0f%% of "
          "measured peak)\n", what, (long long) M, (long long) N, (long long) K, ms, tf,
          100.0 * tf / peak_tflops);
  tensor_free (x); tensor_free (out); tensor_free (w); tensor_free (b);
  free (hw); free (hb); free (hx);
}

void
run_bench (void)
{
  float ms;
  printf ("--- benchmarks (CUDA events, 3 warm-up, median of 20) ---\n");
  bench_linear (8192, 8192, 8192, 0, ACT_NONE, "peak (square, no bias)");
  bench_linear (4429, 2432, 2432, 1, ACT_NONE, "4429x2432x2432 +b");
  bench_linear (4429, 9728, 2432, 1, ACT_GELU_TANH, "fc1 +b gelu");
  bench_linear (4429, 2432, 9728, 1, ACT_NONE, "fc2 +b");
  bench_linear (4096, 7296, 2432, 1, ACT_NONE, "Large x qkv");
  bench_linear (4096, 2432, 2432, 1, ACT_NONE, "Large x proj");
  bench_linear (333, 7296, 2432, 1, ACT_NONE, "Large ctx qkv");
  {
    const int64_t L = 4429, H = 38, dh = 64;
    float *hq = rand_vec ((size_t) L * 3 * H * dh, -2.f, 2.f, 8);
    struct tensor *q = act (gpu, hq, L * 3 * H * dh), *o = act (gpu, NULL, L * H * dh);
    BENCH (ms, 20, op_attention (gpu, o, q, NULL, 1, L, H, dh, 0.125f, 0));
    double tf = 4.0 * L * L * dh * H / (ms * 1e-3) / 1e12;
    printf ("bench attention flash L=%lld H=%lld dh=%lld %8.3f ms %7.1f TFLOP/s\n",
            (long long) L, (long long) H, (long long) dh, ms, tf);
    tensor_free (q); tensor_free (o); free (hq);
  }
  {
    const int64_t L = 4096, H = 1, dh = 512;   /* VAE mid attention at 512² */
    float *hq = rand_vec ((size_t) L * 3 * H * dh, -1.f, 1.f, 9);
    struct tensor *q = act (gpu, hq, L * 3 * H * dh), *o = act (gpu, NULL, L * H * dh);
    BENCH (ms, 10, op_attention (gpu, o, q, NULL, 1, L, H, dh, 1.f / sqrtf (512.f), 0));
    printf ("bench attention general L=%lld H=%lld dh=%lld %8.3f ms %7.1f TFLOP/s\n",
            (long long) L, (long long) H, (long long) dh, ms,
            4.0 * L * L * dh * H / (ms * 1e-3) / 1e12);
    tensor_free (q); tensor_free (o); free (hq);
  }
  {
    const int64_t C = 128, HW = 256;
    struct tensor *x = act (gpu, NULL, C * HW * HW), *o = act (gpu, NULL, C * HW * HW);
    float *hw = rand_vec ((size_t) C * C * 9, -0.03f, 0.03f, 10);
    struct tensor *w = weight (gpu, hw, C * C * 9, WEIGHT_MATRIX);
    float *hx = rand_vec ((size_t) C * HW * HW, -1.f, 1.f, 11);
    gpu->ops->upload_f32 (gpu, x, hx);
    BENCH (ms, 10, op_conv2d (gpu, o, x, w, NULL, 1, C, HW, HW, C, 3, 3, 1, 1, 1, 1, 1));
    printf ("bench conv2d 3x3 %lld→%lld at %lldx%lld %8.3f ms %7.1f TFLOP/s\n", (long long) C,
            (long long) C, (long long) HW, (long long) HW, ms,
            2.0 * C * C * 9 * HW * HW / (ms * 1e-3) / 1e12);
    BENCH (ms, 10, op_groupnorm (gpu, o, x, NULL, NULL, 1, C, HW * HW, 32, 1e-6f, 1));
    printf ("bench groupnorm+silu C=%lld HW=%lld %8.3f ms %7.0f GB/s (bf16 in+out)\n",
            (long long) C, (long long) (HW * HW), ms, 4.0 * C * HW * HW / (ms * 1e-3) / 1e9);
    tensor_free (x); tensor_free (o); tensor_free (w); free (hw); free (hx);
  }
  {
    const int64_t N = 4429, D = 2432;
    struct tensor *x = act (gpu, NULL, N * D), *o = act (gpu, NULL, N * D);
    struct tensor *mod = act (gpu, NULL, 6 * D);
    float *hx = rand_vec ((size_t) N * D, -1.f, 1.f, 12);
    gpu->ops->upload_f32 (gpu, x, hx);
    gpu->ops->upload_f32 (gpu, mod, hx);
    BENCH (ms, 20, op_ln_modulate (gpu, o, x, mod, 6, 0, 1, 1, N, D, 1e-6f));
    printf ("bench ln_modulate N=%lld D=%lld %8.3f ms %7.0f GB/s\n", (long long) N,
            (long long) D, ms, 4.0 * N * D / (ms * 1e-3) / 1e9);
    BENCH (ms, 20, op_gated_add (gpu, x, o, mod, 6, 2, 1, N, D));
    printf ("bench gated_add N=%lld D=%lld %8.3f ms %7.0f GB/s\n", (long long) N,
            (long long) D, ms, 6.0 * N * D / (ms * 1e-3) / 1e9);
    tensor_free (x); tensor_free (o); tensor_free (mod); free (hx);
  }
  if (backend_failed (gpu))
    printf ("bench error: %s\n", gpu->err.message);
  printf ("gpu memory: peak %.1f MiB in tensors/scratch\n", gpu->peak_bytes / 1048576.0);
}

