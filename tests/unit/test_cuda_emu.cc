/* test_cuda_emu.cc — runs the real CUDA kernels of kernels/flash_attn.cuh and
 * kernels/norm_kernels.cuh on the host through tests/unit/cuda_emu.h (one std::thread per GPU
 * thread, warp collectives in lock step) and checks them against a double-precision reference
 * (flash attention, softmax rows, im2col), dtype.c (conversions) and the CPU backend (norms,
 * elementwise and layout ops, the fp32-input GEMV of op linear).  Mixed dtypes (ops.h: each
 * tensor bf16 or fp32) are run through the templated fast paths with fp32 data that bf16
 * cannot hold, so reading an fp32 tensor as bf16 (or rounding an fp32 output) fails.  Covers
 * the index arithmetic, masking and reductions of those kernels on machines without a GPU;
 * the GPU itself is checked by tests/gpu/test_ops_cuda. */
#include "cuda_emu.h"

#include <chrono>

#include "cuda_pool.h"
#include "gemm_plan.h"
#include "op_describe.h"

static unsigned char *g_smem;

#define FA_BN   64
#define FA_D    64
#define FA_LDS  72
#define FA_SMEM_DECL unsigned char *smem_raw = g_smem

/* a namespace: the real kernels' host stubs (in the linked CUDA library) have these names */
namespace emu
{
#include "flash_attn.cuh"
#include "cuda_dtype.cuh"
#include "norm_kernels.cuh"
#include "elementwise_kernels.cuh"
#include "conv_kernels.cuh"
#include "softmax_rows.cuh"
#include "convert_kernel.cuh"
#include "gemv_kernel.cuh"
}
using namespace emu;

static int failures;

/* --- driver ----------------------------------------------------------------------------------- */

template <int NW>
static void
run_flash (std::vector<__nv_bfloat16> &out, const std::vector<__nv_bfloat16> &qkv, int B, int L,
           int H, float scale)
{
  const int BM = NW * 16, nthreads = NW * 32;
  std::vector<unsigned char> smem ((BM + 4 * FA_BN) * FA_LDS * 2, 0xff);  /* poisoned */
  g_smem = smem.data ();
  emu_launch ({ (unsigned) ((L + BM - 1) / BM), (unsigned) H, (unsigned) B }, nthreads, [&] {
    flash_attn_d64<NW> (out.data (), qkv.data (), L, H, scale * 1.4426950408889634f);
  });
}

static int
check_flash (int B, int L, int H)
{
  const int   dh = 64;
  const float scale = 0.125f;
  std::vector<__nv_bfloat16> qkv ((size_t) B * L * 3 * H * dh), out ((size_t) B * L * H * dh);
  uint64_t s = 12345 + L;
  for (auto &v : qkv)
    {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      v.x = emu_f2bf ((float) ((s >> 11) * 0x1.0p-53) * 4.f - 2.f);
    }
  for (auto &v : out)
    v.x = 0x7fc0;   /* NaN: unwritten outputs fail */
  run_flash<4> (out, qkv, B, L, H, scale);

  double max_err = 0;
  int    bad = 0;
  const size_t ld = (size_t) 3 * H * dh;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < L; i++)
        {
          std::vector<double> p (L);
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j < L; j++)
            {
              double d = 0;
              for (int e = 0; e < dh; e++)
                d += (double) emu_bf2f (qkv[(b * L + i) * ld + h * dh + e].x)
                     * emu_bf2f (qkv[(b * L + j) * ld + H * dh + h * dh + e].x);
              p[j] = d * scale;
              mx = std::fmax (mx, p[j]);
            }
          for (int j = 0; j < L; j++)
            sum += (p[j] = std::exp (p[j] - mx));
          for (int e = 0; e < dh; e++)
            {
              double o = 0;
              for (int j = 0; j < L; j++)
                o += p[j] * emu_bf2f (qkv[(b * L + j) * ld + 2 * H * dh + h * dh + e].x);
              o /= sum;
              double got = emu_bf2f (out[((size_t) b * L + i) * H * dh + h * dh + e].x);
              double err = std::fabs (got - o);
              if (!(err <= 1e-2 + 2e-2 * std::fabs (o)))
                {
                  if (bad++ < 5)
                    printf ("  b%d h%d row %d d %d: got %g want %g\n", b, h, i, e, got, o);
                }
              if (err > max_err || std::isnan (err))
                max_err = err;
            }
        }
  printf ("%s flash_attn_d64 emulated B=%d L=%d H=%d: max|d| = %.3g, %d bad\n",
          bad ? "FAIL" : "ok  ", B, L, H, max_err, bad);
  return bad != 0;
}

/* Real sizes (issue 12 item 8): flash attention at the MMDiT's L = 4429 (1024², 333 context
 * tokens), whose last query block and last key tile hold 13 rows, and the grid of SD3.5
 * Large (38 heads × batch 2 with CFG).  Only the listed blocks run (emulating all 70×38×2
 * would take hours); each is checked against a double-precision reference, and every output
 * outside those blocks must stay unwritten (NaN), which catches a block writing another's
 * rows, head or batch. */
static void
check_flash_blocks (int B, int L, int H, const std::vector<dim3> &blocks)
{
  const int   dh = 64, BM = 4 * 16;
  const float scale = 0.125f;
  const size_t ld = (size_t) 3 * H * dh;
  std::vector<__nv_bfloat16> qkv ((size_t) B * L * ld), out ((size_t) B * L * H * dh);
  std::vector<char> mine ((size_t) B * L * H, 0);   /* (b, row, h) written by a listed block */
  uint64_t s = 777 + L + H;
  for (auto &v : qkv)
    {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      v.x = emu_f2bf ((float) ((s >> 11) * 0x1.0p-53) * 4.f - 2.f);
    }
  for (auto &v : out)
    v.x = 0x7fc0;
  std::vector<unsigned char> smem ((BM + 4 * FA_BN) * FA_LDS * 2, 0xff);
  g_smem = smem.data ();
  auto t0 = std::chrono::steady_clock::now ();
  emu_launch_blocks ({ (unsigned) ((L + BM - 1) / BM), (unsigned) H, (unsigned) B }, 4 * 32,
                     blocks, [&] {
    flash_attn_d64<4> (out.data (), qkv.data (), L, H, scale * 1.4426950408889634f);
  });
  double secs = std::chrono::duration<double> (std::chrono::steady_clock::now () - t0).count ();

  int    bad = 0, stray = 0;
  double max_err = 0;
  std::vector<double> p (L);
  for (const dim3 &bi : blocks)
    {
      const int b = (int) bi.z, h = (int) bi.y;
      for (int i = (int) bi.x * BM; i < L && i < (int) (bi.x + 1) * BM; i++)
        {
          double mx = -INFINITY, sum = 0;
          mine[((size_t) b * L + i) * H + h] = 1;
          for (int j = 0; j < L; j++)
            {
              double d = 0;
              for (int e = 0; e < dh; e++)
                d += (double) emu_bf2f (qkv[(b * (size_t) L + i) * ld + h * dh + e].x)
                     * emu_bf2f (qkv[(b * (size_t) L + j) * ld + H * dh + h * dh + e].x);
              p[j] = d * scale;
              mx = std::fmax (mx, p[j]);
            }
          for (int j = 0; j < L; j++)
            sum += (p[j] = std::exp (p[j] - mx));
          for (int e = 0; e < dh; e++)
            {
              double o = 0;
              for (int j = 0; j < L; j++)
                o += p[j] * emu_bf2f (qkv[(b * (size_t) L + j) * ld + 2 * H * dh + h * dh + e].x);
              o /= sum;
              double got = emu_bf2f (out[((size_t) b * L + i) * H * dh + h * dh + e].x);
              double err = std::fabs (got - o);
              if (!(err <= 1e-2 + 2e-2 * std::fabs (o)) && bad++ < 5)
                printf ("  b%d h%d row %d d %d: got %g want %g\n", b, h, i, e, got, o);
              if (err > max_err || std::isnan (err))
                max_err = err;
            }
        }
    }
  for (size_t r = 0; r < mine.size (); r++)
    if (!mine[r])
      for (int e = 0; e < dh; e++)
        stray += out[r * dh + e].x != 0x7fc0;
  printf ("%s flash_attn_d64 emulated B=%d L=%d H=%d, %zu block(s) of the real grid: "
          "max|d| = %.3g, %d bad, %d stray writes (%.1f s)\n", bad || stray ? "FAIL" : "ok  ",
          B, L, H, blocks.size (), max_err, bad, stray, secs);
  failures += bad != 0 || stray != 0;
}

/* --- CUDA backend bookkeeping that needs no GPU -------------------------------------------- */

/* groupnorm's Welford counts are integers: merging partials past 2²⁴ elements keeps the count
 * exact (fp32 counts stopped at 16777216 and skewed mean and variance after that). */
static void
check_welford_counts (void)
{
  /* 1025 partials of 16384 values each (a 2048² VAE group: 16.8 M > 2²⁴), then one of 1:
   * all values 1 except the last partial's mean 2 — the exact totals are known */
  welford w = { 16384ull, 1.f, 0.f };
  for (int k = 1; k < 1025; k++)
    w = welford_merge (w, welford { 16384ull, 1.f, 0.f });
  welford one = { 1ull, 1.f + 16777216.f / 16.f, 0.f };   /* mean shifts by exactly 1/16 */
  w = welford_merge (w, one);
  const unsigned long long want_n = 1025ull * 16384ull + 1ull;
  const double want_mean = 1.0 + 1.0 / 16.0 * 16777216.0 / (double) want_n;
  int ok = w.n == want_n && std::fabs (w.mean - want_mean) < 1e-5 && w.m2 > 0.f;
  /* the fp32 count this replaced: 16793600 + 1 is not representable */
  float fcount = 16793600.f;
  fcount += 1.f;
  printf ("%s welford counts are integers: n = %llu (want %llu; an fp32 count gives %.0f), "
          "mean %.7f (want %.7f)\n", ok ? "ok  " : "FAIL", w.n, want_n, (double) fcount,
          (double) w.mean, want_mean);
  failures += !ok;
}

/* cuda_pool.h: size classes and the in-use table that release reads the size from */
static void
check_pool_bookkeeping (void)
{
  int bad = 0;
  for (size_t bytes = 1; bytes < ((size_t) 1 << 34); bytes = bytes * 3 / 2 + 7)
    {
      unsigned bin, bin2;
      size_t   c = cuda_pool_class (bytes, &bin);
      bad += c < bytes || c < 512 || (bytes >= 512 && (double) c > bytes * 1.125 + 1)
             || cuda_pool_class (c, &bin2) != c || bin2 != bin;   /* a class files as itself */
    }
  /* two tensors whose numel·dtype differ but fall in one class, and a block released after
   * its tensor's dtype changed: the stored size decides, not a recomputation */
  static struct cuda_block *in_use[CUDA_POOL_BUCKETS];
  std::vector<cuda_block> nodes (3000);
  for (size_t i = 0; i < nodes.size (); i++)
    {
      unsigned bin;
      nodes[i].ptr = (void *) (uintptr_t) (0x7f0000000000ull + i * 4096);
      nodes[i].size = cuda_pool_class (1000 + i * 37, &bin);
      nodes[i].twin = NULL;
      cuda_pool_track (in_use, &nodes[i]);
    }
  for (size_t i = 0; i < nodes.size (); i += 7)
    {
      cuda_block *b = cuda_pool_untrack (in_use, nodes[i].ptr);
      bad += b != &nodes[i] || cuda_pool_find (in_use, nodes[i].ptr) != NULL;
    }
  for (size_t i = 0; i < nodes.size (); i++)
    {
      const cuda_block *b = cuda_pool_find (in_use, nodes[i].ptr);
      bad += i % 7 == 0 ? b != NULL : (b != &nodes[i] || b->size != nodes[i].size);
    }
  bad += cuda_pool_untrack (in_use, (void *) 0x1234) != NULL;
  printf ("%s pool: size classes (≤ 12.5 %% waste, a class is its own class), sizes kept with "
          "the blocks in use, unknown pointers refused\n", bad ? "FAIL" : "ok  ");
  failures += bad != 0;
}

/* gemm_plan.h: the bias reaches cuBLASLt in the output dtype; failed algorithms fall through */
static void
check_gemm_plan (void)
{
  int bad = 0;
  bad += gemm_bias_plan (0, SD35_BF16, SD35_F32, SD35_BF16, 1) != GEMM_BIAS_NONE;
  bad += gemm_bias_plan (1, SD35_BF16, SD35_F32, SD35_BF16, 1) != GEMM_BIAS_TWIN;
  bad += gemm_bias_plan (1, SD35_F32, SD35_F32, SD35_BF16, 1) != GEMM_BIAS_AS_IS;
  bad += gemm_bias_plan (1, SD35_BF16, SD35_BF16, SD35_BF16, 0) != GEMM_BIAS_AS_IS;
  bad += gemm_bias_plan (1, SD35_BF16, SD35_F32, SD35_BF16, 0) != GEMM_BIAS_CONVERT;
  bad += gemm_bias_plan (1, SD35_F16, SD35_F32, SD35_BF16, 1) != GEMM_BIAS_CONVERT;

  int algos[GEMM_MAX_ALGOS] = { 10, 11, 12, 13 }, n = 4, last = 0, tries = 0;
  auto fail_below_12 = [&] (int a) { tries++; return a < 12 ? 15 /* NOT_SUPPORTED */ : 0; };
  int used = gemm_try_algos (algos, &n, fail_below_12, &last);
  bad += used != 2 || n != 2 || algos[0] != 12 || algos[1] != 13 || last != 15 || tries != 3;
  tries = 0;
  used = gemm_try_algos (algos, &n, fail_below_12, &last);   /* cached: first try works */
  bad += used != 0 || n != 2 || tries != 1;
  auto all_fail = [&] (int) { return 13; };
  used = gemm_try_algos (algos, &n, all_fail, &last);
  bad += used != -1 || n != 0 || last != 13;
  printf ("%s gemm plan: bias in the output dtype (twin / as is / converted), algorithm "
          "fallback on a failed launch\n", bad ? "FAIL" : "ok  ");
  failures += bad != 0;
}

/* op_describe.h: what SD35_CUDA_SYNC_CHECK=1 puts before the first error */
static void
check_op_describe (void)
{
  struct tensor out = {}, in = {};
  char          buf[256], small[24];
  out.ndim = 3, out.shape[0] = 2, out.shape[1] = 4429, out.shape[2] = 2432;
  out.dtype = SD35_BF16;
  in = out;
  in.dtype = SD35_F32;
  op_describe (buf, sizeof buf, "linear", &out, (const struct tensor *) &in,
               (const struct tensor *) NULL, (int64_t) 8858, (int64_t) 2432, 0.5f, ACT_GELU_TANH);
  int ok = strcmp (buf, "op linear ([2,4429,2432] BF16, [2,4429,2432] F32, NULL, 8858, 2432, "
                        "0.5, act 1)") == 0;
  op_describe (small, sizeof small, "linear", &out, (int64_t) 1);
  ok &= strlen (small) == sizeof small - 1;   /* truncated, terminated */
  printf ("%s op_describe: \"%s\"\n", ok ? "ok  " : "FAIL", buf);
  failures += !ok;
}

/* op_run_checked (SD35_CUDA_SYNC_CHECK=1's wrapper) on the CPU backend's real ops: an op that
 * fails, and a fault found only by the check after the op (a stand-in for the GPU's
 * asynchronous errors), both come out as "op NAME (shapes…) failed: reason"; an earlier
 * error is left as it was */
static void
fake_async_fault (struct backend *be)
{
  sd35_set_error (&be->err, SD35_ERR_CUDA, "an illegal memory access was encountered");
}

static void
check_sync_checked (void)
{
  struct backend   *b = NULL;
  struct sd35_error err = {};
  int               ok = backend_cpu_new (1, &b, &err) == SD35_OK;
  if (!ok)
    {
      printf ("FAIL sync-check: CPU backend: %s\n", err.message);
      failures++;
      return;
    }
  struct tensor *x = tensor_new_act2 (b, 3, 3), *w = tensor_new_act2 (b, 3, 3);
  /* linear in place is refused by the CPU backend */
  op_run_checked (b->ops->linear, "linear", NULL, b, x, x, w, (const struct tensor *) NULL,
                  3, 3, 3, ACT_NONE);
  const char *want = "op linear ([3,3] F32, [3,3] F32, [3,3] F32, NULL, 3, 3, 3, act 0) failed: ";
  ok &= strncmp (b->err.message, want, strlen (want)) == 0;
  printf ("%s sync-check names a failing op: %.110s…\n", ok ? "ok  " : "FAIL", b->err.message);
  sd35_error_clear (&b->err);
  op_run_checked (b->ops->add, "add", fake_async_fault, b, x, x, w, 9);
  int ok2 = strcmp (b->err.message, "op add ([3,3] F32, [3,3] F32, [3,3] F32, 9) failed: an "
                    "illegal memory access was encountered") == 0;
  printf ("%s sync-check names the op before an asynchronous fault: %s\n", ok2 ? "ok  " : "FAIL",
          b->err.message);
  op_run_checked (b->ops->add, "add", fake_async_fault, b, x, x, w, 9);
  int ok3 = strstr (b->err.message, "op add (") == b->err.message
            && strstr (b->err.message + 1, "op add (") == NULL;
  printf ("%s sync-check leaves an earlier error alone\n", ok3 ? "ok  " : "FAIL");
  sd35_error_clear (&b->err);
  struct tensor t = {};
  t.be = b, t.dtype = SD35_F32, t.ndim = 1, t.shape[0] = 4, t.numel = 4;
  enum sd35_status st = op_run_checked (b->ops->alloc, "alloc", NULL, b, &t);
  int ok4 = st == SD35_OK && !backend_failed (b) && t.data != NULL;
  b->ops->release (b, &t);
  printf ("%s sync-check passes an op's return value through\n", ok4 ? "ok  " : "FAIL");
  failures += !ok + !ok2 + !ok3 + !ok4;
  tensor_free (x), tensor_free (w);
  backend_free (b);
}

/* --- norms against the CPU backend -------------------------------------------------------- */

static struct backend *cpu;

static std::vector<float>
rnd (size_t n, float lo, float hi, uint64_t seed)
{
  std::vector<float> v (n);
  uint64_t           s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto &x : v)
    {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      x = emu_bf2f (emu_f2bf (lo + (hi - lo) * (float) ((s >> 11) * 0x1.0p-53)));
    }
  return v;
}

static std::vector<__nv_bfloat16>
to_bf16 (const std::vector<float> &v)
{
  std::vector<__nv_bfloat16> r (v.size ());
  for (size_t i = 0; i < v.size (); i++)
    r[i].x = emu_f2bf (v[i]);
  return r;
}

static struct tensor *
cpu_t (const std::vector<float> &v)
{
  int64_t shape[1] = { (int64_t) v.size () };
  return tensor_from_f32 (cpu, v.data (), 1, shape);
}

static void
compare (const char *what, const std::vector<__nv_bfloat16> &got, struct tensor *ref,
         double atol, double rtol)
{
  std::vector<float> r (ref->numel);
  tensor_to_f32 (ref, r.data ());
  double max_d = 0;
  int    bad = 0;
  for (size_t i = 0; i < r.size (); i++)
    {
      double g = emu_bf2f (got[i].x), d = std::fabs (g - r[i]);
      if (!(d <= atol + rtol * std::fabs (r[i])))
        if (bad++ < 5)
          printf ("  [%zu] emulated %g cpu %g\n", i, g, r[i]);
      if (d > max_d || std::isnan (d))
        max_d = d;
    }
  printf ("%s %-40s n=%-7zu max|d| = %.3g\n", bad ? "FAIL" : "ok  ", what, r.size (), max_d);
  failures += bad != 0;
}

/* layernorm (slow or fast kernel), optional affine / adaLN mod; B·N rows of D */
static void
check_layernorm (int fast, int affine, int with_mod, int64_t B, int64_t N, int64_t D)
{
  const int64_t rows = B * N, chunks = 6;
  auto x = rnd (rows * D, -1.5f, 2.5f, D + fast), w = rnd (D, 0.5f, 1.5f, 2),
       b = rnd (D, -0.5f, 0.5f, 3), mod = rnd (B * chunks * D, -1.f, 1.f, 4);
  auto xb = to_bf16 (x), modb = to_bf16 (mod);
  char name[96];
  snprintf (name, sizeof name, "%s layernorm%s%s B%lld N%lld D%lld", fast ? "fast" : "slow",
            affine ? "+affine" : "", with_mod ? "+mod" : "", (long long) B, (long long) N,
            (long long) D);
  if (fast)   /* in place, as the engine may call it */
    emu_launch ({ (unsigned) rows }, LN_FAST_THREADS, [&] {
      ln_fast_kernel (xb.data (), xb.data (), affine ? w.data () : NULL,
                      affine ? b.data () : NULL, with_mod ? modb.data () : NULL, chunks, 3, 4,
                      N, (int) D, 1e-6f);
    });
  else
    emu_launch ({ (unsigned) rows }, 32, [&] {
      layernorm_kernel (xb.data (), SD35_BF16, xb.data (), SD35_BF16, affine ? w.data () : NULL,
                        SD35_F32, affine ? b.data () : NULL, SD35_F32,
                        with_mod ? modb.data () : NULL, SD35_BF16, chunks, 3, 4, N, D, 1e-6f);
    });
  struct tensor *cx = cpu_t (x), *cw = cpu_t (w), *cb = cpu_t (b), *cm = cpu_t (mod);
  if (with_mod)
    op_ln_modulate (cpu, cx, cx, cm, chunks, 3, 4, B, N, D, 1e-6f);
  else
    op_layernorm (cpu, cx, cx, affine ? cw : NULL, affine ? cb : NULL, rows, D, 1e-6f);
  compare (name, xb, cx, 1e-3, 1.6e-2);
  tensor_free (cx); tensor_free (cw); tensor_free (cb); tensor_free (cm);
}

static void
check_gated_add (int fast, int gate, int64_t B, int64_t N, int64_t D)
{
  const int64_t chunks = 6;
  const size_t  n = (size_t) (B * N * D);
  auto x = rnd (n, -2.f, 2.f, 5), y = rnd (n, -1.f, 1.f, 6), mod = rnd (B * chunks * D, -1, 1, 7);
  auto xb = to_bf16 (x), yb = to_bf16 (y), modb = to_bf16 (mod);
  char name[96];
  snprintf (name, sizeof name, "%s gated_add gate %d B%lld N%lld D%lld", fast ? "fast" : "slow",
            gate, (long long) B, (long long) N, (long long) D);
  if (fast)
    emu_launch ({ 2 }, 32, [&] {
      gated_add_fast_kernel (xb.data (), yb.data (), gate >= 0 ? modb.data () : NULL, chunks,
                             gate, N, D, n / 8);
    });
  else
    emu_launch ({ 2 }, 32, [&] {
      gated_add_kernel (xb.data (), SD35_BF16, yb.data (), SD35_BF16,
                        gate >= 0 ? modb.data () : NULL, SD35_BF16, chunks, gate, N, D, n);
    });
  struct tensor *cx = cpu_t (x), *cy = cpu_t (y), *cm = cpu_t (mod);
  op_gated_add (cpu, cx, cy, cm, chunks, gate, B, N, D);
  compare (name, xb, cx, 1e-2, 8e-3);
  tensor_free (cx); tensor_free (cy); tensor_free (cm);
}

static void
check_rms (int64_t rows, int64_t D, unsigned threads)
{
  auto x = rnd (rows * D, -2.f, 2.f, 8), w = rnd (D, 0.5f, 1.5f, 9);
  auto xb = to_bf16 (x);
  std::vector<__nv_bfloat16> ob (x.size ());
  char name[64];
  snprintf (name, sizeof name, "rmsnorm rows %lld D%lld", (long long) rows, (long long) D);
  emu_launch ({ (unsigned) rows }, threads, [&] {
    rmsnorm_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, w.data (), SD35_F32, D, 1e-6f);
  });
  struct tensor *cx = cpu_t (x), *cw = cpu_t (w);
  op_rmsnorm (cpu, cx, cx, cw, rows, D, 1e-6f);
  compare (name, ob, cx, 1e-3, 1.6e-2);
  tensor_free (cx); tensor_free (cw);
}

static void
check_qk (int64_t rows, int64_t H, int64_t dh)
{
  auto x = rnd (rows * 3 * H * dh, -2.f, 2.f, 10), wq = rnd (dh, 0.5f, 1.5f, 11),
       wk = rnd (dh, -1.f, 1.f, 12);
  auto xb = to_bf16 (x);
  const size_t threads = (size_t) rows * 2 * H * 32;
  emu_launch ({ (unsigned) ((threads + 255) / 256) }, 256, [&] {
    qk_rmsnorm_kernel (xb.data (), SD35_BF16, wq.data (), SD35_F32, wk.data (), SD35_F32, rows,
                       H, dh, 1e-6f);
  });
  struct tensor *cx = cpu_t (x), *cq = cpu_t (wq), *ck = cpu_t (wk);
  op_qk_rmsnorm (cpu, cx, cq, ck, rows, H, dh, 1e-6f);
  compare ("qk_rmsnorm rows 3 H 2 dh 64", xb, cx, 1e-3, 1.6e-2);
  tensor_free (cx); tensor_free (cq); tensor_free (ck);
}

/* groupnorm's three kernels, with the split sizes cuda_op_groupnorm uses */
static void
check_groupnorm (int64_t B, int64_t C, int64_t HW, int64_t groups, int silu)
{
  const size_t n = (size_t) (B * C * HW), group_elems = (size_t) (C / groups * HW);
  const int    n_groups = (int) (B * groups);
  int          splits = (int) ((group_elems + 16383) / 16384);
  if (splits > 1024)
    splits = 1024;
  const size_t slice = (group_elems + splits - 1) / splits;
  auto x = rnd (n, 2.f, 4.f, 13), w = rnd (C, 0.5f, 1.5f, 14), b = rnd (C, -0.5f, 0.5f, 15);
  auto xb = to_bf16 (x);
  std::vector<__nv_bfloat16> ob (n);
  std::vector<welford>       part ((size_t) n_groups * splits);
  std::vector<float2>        stats (n_groups);
  char name[96];
  snprintf (name, sizeof name, "groupnorm B%lld C%lld HW%lld (%d splits)%s", (long long) B,
            (long long) C, (long long) HW, splits, silu ? " silu" : "");
  emu_launch ({ (unsigned) n_groups, (unsigned) splits }, 256, [&] {
    groupnorm_stats_kernel (part.data (), xb.data (), SD35_BF16, group_elems, slice);
  });
  emu_launch ({ (unsigned) ((n_groups + 127) / 128) }, 128, [&] {
    groupnorm_final_kernel (stats.data (), part.data (), n_groups, splits, 1e-6f);
  });
  emu_launch ({ 2, (unsigned) (B * C) }, 64, [&] {
    groupnorm_apply_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, w.data (), SD35_F32,
                            b.data (), SD35_F32, stats.data (), C, HW, C / groups, silu);
  });
  struct tensor *cx = cpu_t (x), *cw = cpu_t (w), *cb = cpu_t (b), *co = cpu_t (x);
  op_groupnorm (cpu, co, cx, cw, cb, B, C, HW, groups, 1e-6f, silu);
  compare (name, ob, co, 1e-3, 1.6e-2);
  tensor_free (cx); tensor_free (cw); tensor_free (cb); tensor_free (co);
}


/* --- mixed dtypes: fp32 residual streams / adaLN vectors next to bf16 activations --------- */

/* uniform in [lo, hi) at full fp32 precision (not on the bf16 grid, unlike rnd) */
static std::vector<float>
rnd_full (size_t n, float lo, float hi, uint64_t seed)
{
  std::vector<float> v (n);
  uint64_t           s = seed * 0x9E3779B97F4A7C15ull + 7;
  for (auto &x : v)
    {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      x = lo + (hi - lo) * (float) ((s >> 11) * 0x1.0p-53);
    }
  return v;
}

template <typename T> static T from_f (float v);
template <> float from_f<float> (float v) { return v; }
template <> __nv_bfloat16 from_f<__nv_bfloat16> (float v) { return { emu_f2bf (v) }; }
static float to_f (float v) { return v; }
static float to_f (__nv_bfloat16 v) { return emu_bf2f (v.x); }
template <typename T> static const char *tname ();
template <> const char *tname<float> () { return "f32"; }
template <> const char *tname<__nv_bfloat16> () { return "bf16"; }

/* v as stored in T (the kernel's input), and the same values back in fp32 (the reference's) */
template <typename T>
static std::vector<T>
stored (const std::vector<float> &v, std::vector<float> &seen)
{
  std::vector<T> r (v.size ());
  seen.resize (v.size ());
  for (size_t i = 0; i < v.size (); i++)
    {
      r[i] = from_f<T> (v[i]);
      seen[i] = to_f (r[i]);
    }
  return r;
}

/* an fp32 output is held to fp32 summation-order differences, a bf16 one to its rounding */
template <typename T>
static void
compare_t (const char *what, const std::vector<T> &got, struct tensor *ref)
{
  const int f32 = sizeof (T) == 4;
  const double atol = f32 ? 2e-5 : 1e-3, rtol = f32 ? 2e-5 : 8e-3;
  std::vector<float> r (ref->numel);
  tensor_to_f32 (ref, r.data ());
  double max_d = 0;
  int    bad = 0;
  for (size_t i = 0; i < r.size (); i++)
    {
      double g = to_f (got[i]), d = std::fabs (g - r[i]);
      if (!(d <= atol + rtol * std::fabs (r[i])))
        if (bad++ < 5)
          printf ("  [%zu] emulated %.9g cpu %.9g\n", i, g, r[i]);
      if (d > max_d || std::isnan (d))
        max_d = d;
    }
  printf ("%s %-52s n=%-7zu max|d| = %.3g\n", bad ? "FAIL" : "ok  ", what, r.size (), max_d);
  failures += bad != 0;
}

/* ln_fast_kernel<TO, TI, TM>: LN (+ adaLN mod) of B·N rows of D, e.g. fp32 stream → bf16 */
template <typename TO, typename TI, typename TM>
static void
check_ln_mixed (int with_mod, int64_t B, int64_t N, int64_t D)
{
  const int64_t rows = B * N, chunks = 6;
  std::vector<float> xs, ms;
  auto x = stored<TI> (rnd_full (rows * D, -1.5f, 2.5f, 31), xs);
  auto mod = stored<TM> (rnd_full (B * chunks * D, -1.f, 1.f, 32), ms);
  std::vector<TO> out (rows * D);
  char name[128];
  snprintf (name, sizeof name, "fast layernorm%s %s->%s mod %s B%lld N%lld D%lld",
            with_mod ? "+mod" : "", tname<TI> (), tname<TO> (), tname<TM> (), (long long) B,
            (long long) N, (long long) D);
  emu_launch ({ (unsigned) rows }, LN_FAST_THREADS, [&] {
    ln_fast_kernel<TO, TI, TM> (out.data (), x.data (), NULL, NULL,
                                with_mod ? mod.data () : NULL, chunks, 3, 4, N, (int) D, 1e-6f);
  });
  struct tensor *cx = cpu_t (xs), *cm = cpu_t (ms);
  if (with_mod)
    op_ln_modulate (cpu, cx, cx, cm, chunks, 3, 4, B, N, D, 1e-6f);
  else
    op_layernorm (cpu, cx, cx, NULL, NULL, rows, D, 1e-6f);
  compare_t (name, out, cx);
  tensor_free (cx); tensor_free (cm);
}

/* gated_add_fast_kernel<TX, TY, TM>: x += gate · y, e.g. fp32 stream += fp32 gate · bf16 y */
template <typename TX, typename TY, typename TM>
static void
check_gated_mixed (int gate, int64_t B, int64_t N, int64_t D)
{
  const int64_t chunks = 6;
  const size_t  n = (size_t) (B * N * D);
  std::vector<float> xs, ys, ms;
  auto x = stored<TX> (rnd_full (n, -2.f, 2.f, 33), xs);
  auto y = stored<TY> (rnd_full (n, -1.f, 1.f, 34), ys);
  auto mod = stored<TM> (rnd_full (B * chunks * D, -1.f, 1.f, 35), ms);
  char name[128];
  snprintf (name, sizeof name, "fast gated_add x %s y %s mod %s gate %d D%lld", tname<TX> (),
            tname<TY> (), tname<TM> (), gate, (long long) D);
  emu_launch ({ 2 }, 32, [&] {
    gated_add_fast_kernel<TX, TY, TM> (x.data (), y.data (), gate >= 0 ? mod.data () : NULL,
                                       chunks, gate, N, D, n / 8);
  });
  struct tensor *cx = cpu_t (xs), *cy = cpu_t (ys), *cm = cpu_t (ms);
  op_gated_add (cpu, cx, cy, cm, chunks, gate, B, N, D);
  compare_t (name, x, cx);
  tensor_free (cx); tensor_free (cy); tensor_free (cm);
}

/* the generic layernorm_kernel (D % 8 != 0) with an fp32 input and mod, bf16 output */
static void
check_ln_generic_mixed (void)
{
  const int64_t B = 2, N = 3, D = 5, chunks = 6;
  auto x = rnd_full (B * N * D, -1.5f, 2.5f, 36), mod = rnd_full (B * chunks * D, -1, 1, 37);
  std::vector<__nv_bfloat16> out (x.size ());
  emu_launch ({ (unsigned) (B * N) }, 32, [&] {
    layernorm_kernel (out.data (), SD35_BF16, x.data (), SD35_F32, NULL, 0, NULL, 0,
                      mod.data (), SD35_F32, chunks, 0, 1, N, D, 1e-6f);
  });
  struct tensor *cx = cpu_t (x), *cm = cpu_t (mod);
  op_ln_modulate (cpu, cx, cx, cm, chunks, 0, 1, B, N, D, 1e-6f);
  compare_t ("slow layernorm+mod f32->bf16 mod f32 D5", out, cx);
  tensor_free (cx); tensor_free (cm);
}

/* linear_gemv_kernel: fp32 input of M ≤ GEMV_MAX_M rows · bf16 weight [N, K] + fp32 bias */
template <typename TO>
static void
check_gemv (int M, int64_t N, int64_t K, enum op_act act, int with_bias)
{
  std::vector<float> ws, bs;
  auto x = rnd_full ((size_t) M * K, -1.f, 1.f, 38);
  auto w = stored<__nv_bfloat16> (rnd_full ((size_t) N * K, -0.2f, 0.2f, 39), ws);
  auto b = rnd_full ((size_t) N, -0.5f, 0.5f, 40);
  std::vector<TO> out ((size_t) M * N);
  char name[128];
  snprintf (name, sizeof name, "gemv linear M%d N%lld K%lld act %d%s -> %s", M, (long long) N,
            (long long) K, (int) act, with_bias ? " +bias" : "", tname<TO> ());
  emu_launch ({ (unsigned) ((N * 32 + 255) / 256) }, 256, [&] {
    linear_gemv_kernel (out.data (), sizeof (TO) == 4 ? SD35_F32 : SD35_BF16, x.data (),
                        w.data (), SD35_BF16, with_bias ? b.data () : NULL, SD35_F32, M, N, K,
                        (int) act);
  });
  int64_t wshape[2] = { N, K }, oshape[2] = { M, N };
  struct tensor *cx = cpu_t (x), *cb = cpu_t (b);
  struct tensor *cw = tensor_from_f32 (cpu, ws.data (), 2, wshape);
  struct tensor *co = tensor_new (cpu, SD35_F32, 2, oshape);
  op_linear (cpu, co, cx, cw, with_bias ? cb : NULL, M, N, K, act);
  compare_t (name, out, co);
  tensor_free (cx); tensor_free (cb); tensor_free (cw); tensor_free (co);
}

/* --- elementwise / layout against the CPU backend --------------------------------------------- */

static void
compare_exact (const char *what, const std::vector<__nv_bfloat16> &got, struct tensor *ref)
{
  compare (what, got, ref, 0.0, 0.0);
}

static void
check_elementwise (void)
{
  const int64_t B = 2, C = 6, Hh = 4, W = 6, N = Hh * W, n = B * C * N;
  auto x = rnd (n, -4.f, 4.f, 21), y = rnd (n, -2.f, 2.f, 22);
  auto xb = to_bf16 (x), yb = to_bf16 (y);
  std::vector<__nv_bfloat16> ob (4 * n);
  struct tensor *cx = cpu_t (x), *cy = cpu_t (y), *co;
  char name[64];

  for (int a = 0; a <= ACT_SILU; a++)
    {
      emu_launch ({ 2 }, 64, [&] {
        activation_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, n, a);
      });
      co = cpu_t (x);
      op_activation (cpu, co, cx, n, (enum op_act) a);
      snprintf (name, sizeof name, "activation %d", a);
      ob.resize (n);
      compare (name, ob, co, 1e-6, 8e-3);
      tensor_free (co);
    }
  for (int op = 0; op < 2; op++)
    {
      emu_launch ({ 2 }, 64, [&] {
        binary_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, yb.data (), SD35_BF16, n, op);
      });
      co = cpu_t (x);
      if (op)
        op_mul (cpu, co, cx, cy, n);
      else
        op_add (cpu, co, cx, cy, n);
      compare (op ? "mul" : "add", ob, co, 1e-6, 8e-3);
      tensor_free (co);
    }
  emu_launch ({ 2 }, 64, [&] {
    add_broadcast_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, yb.data (), SD35_BF16,
                          n, C * N);
  });
  co = cpu_t (x);
  op_add_broadcast (cpu, co, cx, cy, B, C * N);
  compare ("add_broadcast", ob, co, 1e-6, 8e-3);
  tensor_free (co);

  /* concat_rows of a [B, 3, 8] and b [B, 5, 8]; split back */
  {
    const int64_t L1 = 3, L2 = 5, Cc = 8;
    std::vector<float> a (x.begin (), x.begin () + B * L1 * Cc), b (y.begin (), y.begin () + B * L2 * Cc);
    auto ab = to_bf16 (a), bb = to_bf16 (b);
    std::vector<__nv_bfloat16> cat (B * (L1 + L2) * Cc), s1 (B * L1 * Cc), s2 (B * L2 * Cc);
    emu_launch ({ 1 }, 64, [&] {
      concat_rows_kernel (cat.data (), SD35_BF16, ab.data (), SD35_BF16, bb.data (), SD35_BF16,
                          L1, L2, Cc, cat.size ());
    });
    struct tensor *ca = cpu_t (a), *cb = cpu_t (b);
    std::vector<float> zero (cat.size ());
    co = cpu_t (zero);
    op_concat_rows (cpu, co, ca, cb, B, L1, L2, Cc);
    compare_exact ("concat_rows", cat, co);
    emu_launch ({ 1 }, 32, [&] {
      slice_rows_kernel (s1.data (), SD35_BF16, cat.data (), SD35_BF16, L1 + L2, 0, L1, Cc, s1.size ());
      slice_rows_kernel (s2.data (), SD35_BF16, cat.data (), SD35_BF16, L1 + L2, L1, L2, Cc, s2.size ());
    });
    compare_exact ("split_rows a", s1, ca);
    compare_exact ("split_rows b", s2, cb);
    tensor_free (ca); tensor_free (cb); tensor_free (co);
  }
  /* transpose [B, C, N] → [B, N, C] with the launcher's 32×8 blocks; N = 40 > 32 */
  {
    const int64_t Ct = 5, Nt = 40;
    auto t = rnd (B * Ct * Nt, -4.f, 4.f, 23);
    auto tb = to_bf16 (t);
    std::vector<__nv_bfloat16> tout (t.size ());
    emu_launch ({ (unsigned) ((Nt + 31) / 32), (unsigned) ((Ct + 31) / 32), (unsigned) B },
                dim3 { 32, 8, 1 }, [&] {
      transpose_kernel (tout.data (), SD35_BF16, tb.data (), SD35_BF16, Ct, Nt);
    });
    struct tensor *ct = cpu_t (t);
    co = cpu_t (t);
    op_transpose (cpu, co, ct, B, Ct, Nt);
    compare_exact ("transpose", tout, co);
    tensor_free (ct); tensor_free (co);
  }
  /* embedding, upsample2x, patchify, unpatchify */
  {
    const int32_t ids[5] = { 3, 0, 7, 3, 11 };
    const int64_t D = 8;
    std::vector<__nv_bfloat16> eo (5 * D);
    emu_launch ({ 1 }, 32, [&] {
      embedding_kernel (eo.data (), SD35_BF16, xb.data (), SD35_BF16, ids, D, eo.size ());
    });
    std::vector<float> zero (5 * D);
    co = cpu_t (zero);
    op_embedding (cpu, co, cx, ids, 5, D);
    compare_exact ("embedding", eo, co);
    tensor_free (co);
  }
  ob.assign (4 * n, __nv_bfloat16 { 0 });
  emu_launch ({ 1, (unsigned) (B * C) }, 64, [&] {
    upsample2x_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, Hh, W);
  });
  {
    std::vector<float> big (4 * n);
    co = cpu_t (big);
  }
  op_upsample2x (cpu, co, cx, B, C, Hh, W);
  compare_exact ("upsample2x", ob, co);
  tensor_free (co);
  ob.resize (n);
  emu_launch ({ 2 }, 64, [&] {
    patchify_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, C, Hh, W, 2, n);
  });
  co = cpu_t (x);
  op_patchify (cpu, co, cx, B, C, Hh, W, 2);
  compare_exact ("patchify", ob, co);
  tensor_free (co);
  emu_launch ({ 2 }, 64, [&] {
    unpatchify_kernel (ob.data (), SD35_BF16, xb.data (), SD35_BF16, C, Hh, W, 2, n);
  });
  co = cpu_t (x);
  op_unpatchify (cpu, co, cx, B, C, Hh, W, 2);
  compare_exact ("unpatchify", ob, co);
  tensor_free (co);
  tensor_free (cx);
  tensor_free (cy);
}

/* --- conversions, softmax rows, im2col against direct definitions -------------------------------- */

static void
check_convert (void)
{
  const enum sd35_dtype dts[5] = { SD35_F32, SD35_F16, SD35_BF16, SD35_F8_E4M3, SD35_F8_E5M2 };
  std::vector<uint8_t> raw (256 * 4);
  for (size_t i = 0; i < raw.size (); i++)
    raw[i] = (uint8_t) (i * 37 + 11);
  for (int d = 0; d < 5; d++)
    {
      const size_t n = 256;
      std::vector<float> got (n), ref (n);
      sd35_convert_to_f32 (ref.data (), raw.data (), dts[d], n);
      emu_launch ({ 2 }, 64, [&] {
        convert_kernel (got.data (), SD35_F32, raw.data (), dts[d], n);
      });
      int bad = 0;
      for (size_t i = 0; i < n; i++)
        if (!(got[i] == ref[i] || (std::isnan (got[i]) && std::isnan (ref[i]))))
          if (bad++ < 3)
            printf ("  [%zu] emulated %g dtype.c %g\n", i, got[i], ref[i]);
      printf ("%s convert %-8s → F32 (bit-exact vs dtype.c)\n", bad ? "FAIL" : "ok  ",
              sd35_dtype_name (dts[d]));
      failures += bad != 0;
    }
}

/* attention.cu's general path at CLIP's L = 77 (and the others): rows padded to
 * attn_row_stride (L) keep every leading dimension, head block and chunk of S (fp32) and P
 * (bf16) 16-byte aligned for cuBLASLt; the softmax reads L columns and zeroes the padding. */
static void
check_attn_alignment (void)
{
  const int64_t Ls[] = { 1, 8, 77, 154, 333, 4096, 4429 };
  int           bad = 0;
  for (int64_t L : Ls)
    {
      const int64_t Lp = attn_row_stride (L);
      for (int64_t n = 1; n <= 9; n++)   /* chunk rows: the batch stride is n·Lp */
        bad += Lp < L || Lp - L >= 8 || (Lp * 4) % 16 || (Lp * 2) % 16 || (n * Lp * 2) % 16
               || (n * Lp * 4) % 16;
    }
  printf ("%s attention general path: S/P rows, head blocks and chunks 16-byte aligned for "
          "L = 1, 8, 77, 154, 333, 4096, 4429\n", bad ? "FAIL" : "ok  ");
  failures += bad != 0;
}

static void
check_softmax_rows (int with_bias, int causal, int64_t L = 70)
{
  const int64_t H = 2, Lc = 9, i0 = L > 29 ? 20 : 0, ld = attn_row_stride (L);
  auto S = rnd (H * Lc * ld, -20.f, 20.f, 31), bias = rnd (H * L * L, -3.f, 3.f, 32);
  std::vector<__nv_bfloat16> P (S.size ());
  const float scale = 0.3f;
  for (auto &p : P)
    p.x = 0x7fc0;   /* NaN: the padding must be written too */
  emu_launch ({ (unsigned) (H * Lc) }, 64, [&] {
    softmax_rows_kernel (P.data (), S.data (), with_bias ? bias.data () : NULL, SD35_F32, L, ld,
                         Lc, i0, scale, causal);
  });
  double max_d = 0;
  int    bad = 0;
  for (int64_t h = 0; h < H; h++)
    for (int64_t i = 0; i < Lc; i++)
      {
        const int64_t qi = i0 + i, jmax = causal ? qi + 1 : L;
        std::vector<double> p (L, 0.0);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < jmax; j++)
          {
            p[j] = S[(h * Lc + i) * ld + j] * (double) scale
                   + (with_bias ? bias[(h * L + qi) * L + j] : 0.0);
            mx = std::fmax (mx, p[j]);
          }
        for (int64_t j = 0; j < jmax; j++)
          sum += (p[j] = std::exp (p[j] - mx));
        for (int64_t j = 0; j < ld; j++)
          {
            double want = j < jmax ? p[j] / sum : 0.0;   /* padding j ≥ L: 0 */
            double d = std::fabs (emu_bf2f (P[(h * Lc + i) * ld + j].x) - want);
            if (!(d <= 1e-6 + 8e-3 * want))
              bad++;
            max_d = std::fmax (max_d, d);
          }
      }
  printf ("%s softmax_rows%s%s H%lld L%lld (row stride %lld) rows %lld..: max|d| = %.3g\n",
          bad ? "FAIL" : "ok  ", with_bias ? " bias" : "", causal ? " causal" : "",
          (long long) H, (long long) L, (long long) ld, (long long) i0, max_d);
  failures += bad != 0;
}

static void
check_im2col (void)
{
  const int Ci = 3, Hh = 7, W = 6, kh = 3, kw = 3, s = 2, pt = 0, pl = 1, pb = 1, pr = 0;
  const int Ho = (Hh + pt + pb - kh) / s + 1, Wo = (W + pl + pr - kw) / s + 1;
  const int K = Ci * kh * kw, P = Ho * Wo, p0 = 3, n = P - p0, ldc = n + 5;
  auto x = rnd (Ci * Hh * W, -1.f, 1.f, 41);
  auto xb = to_bf16 (x);
  std::vector<__nv_bfloat16> col ((size_t) K * ldc);
  emu_launch ({ 1, (unsigned) K }, 32, [&] {
    im2col_kernel (col.data (), xb.data (), SD35_BF16, Hh, W, kh, kw, s, pt, pl, Wo, p0, n, ldc);
  });
  int bad = 0;
  for (int pp = 0; pp < n; pp++)
    for (int ci = 0; ci < Ci; ci++)
      for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++)
          {
            int   p = p0 + pp, yy = (p / Wo) * s - pt + ky, xx = (p % Wo) * s - pl + kx;
            float want = yy >= 0 && yy < Hh && xx >= 0 && xx < W ? x[(ci * Hh + yy) * W + xx] : 0.f;
            bad += emu_bf2f (col[(size_t) ((ci * kh + ky) * kw + kx) * ldc + pp].x) != want;
          }
  printf ("%s im2col k3 s2 pad 0,1,1,0 from pixel %d (exact)\n", bad ? "FAIL" : "ok  ", p0);
  failures += bad != 0;

  /* channel bias over [B = 2, Co = 3, P = 37] */
  const int64_t Co = 3, Pb = 37;
  auto o = rnd (2 * Co * Pb, -1.f, 1.f, 42), bias = rnd (Co, -1.f, 1.f, 43);
  auto ob = to_bf16 (o);
  emu_launch ({ 1, (unsigned) (2 * Co) }, 32, [&] {
    channel_bias_kernel (ob.data (), SD35_BF16, bias.data (), SD35_F32, Co, Pb);
  });
  bad = 0;
  for (int64_t i = 0; i < 2 * Co * Pb; i++)
    bad += emu_bf2f (ob[i].x) != emu_bf2f (emu_f2bf (o[i] + bias[(i / Pb) % Co]));
  printf ("%s channel bias (exact)\n", bad ? "FAIL" : "ok  ");
  failures += bad != 0;
}

int
main (int argc, char **argv)
{
  struct sd35_error err = {};

  if (argc > 1 && strcmp (argv[1], "--real-sizes") == 0)
    {
      /* real sizes (meson test cuda_emu_real_sizes: apart, it takes a while): one head at
       * L = 4429 — its last query block holds 13 rows and meets all 70 key tiles, the last
       * one partial — and two corners of the Large grid (70 blocks × 38 heads × batch 2) */
      check_flash_blocks (1, 4429, 1, { { 69, 0, 0 } });
      check_flash_blocks (2, 4429, 38, { { 69, 37, 1 }, { 0, 37, 0 } });
      printf ("%d failed\n", failures);
      return failures ? 1 : 0;
    }

  failures += check_flash (1, 5, 1);      /* one partial tile */
  failures += check_flash (1, 64, 2);     /* exactly one tile */
  failures += check_flash (2, 130, 2);    /* three key tiles, partial last; three query blocks */

  if (backend_cpu_new (1, &cpu, &err) != SD35_OK)
    {
      printf ("FAIL: CPU backend: %s\n", err.message);
      return 1;
    }
  check_layernorm (0, 1, 0, 1, 3, 5);
  check_layernorm (0, 0, 1, 2, 3, 5);
  check_layernorm (1, 1, 0, 1, 3, 2432);
  check_layernorm (1, 0, 0, 1, 2, 4096);
  check_layernorm (1, 0, 1, 2, 3, 64);
  check_gated_add (0, 2, 2, 3, 5);
  check_gated_add (1, 2, 2, 3, 64);
  check_gated_add (1, -1, 2, 3, 64);
  check_rms (3, 5, 32);
  check_rms (2, 2432, 512);
  check_qk (3, 2, 64);
  check_groupnorm (1, 64, 15, 32, 0);
  check_groupnorm (1, 64, 8200, 32, 1);   /* 16400 per group: 2 splits */
  check_elementwise ();
  check_convert ();
  check_softmax_rows (0, 0);
  check_softmax_rows (1, 0);
  check_softmax_rows (0, 1);
  check_softmax_rows (0, 1, 77);   /* CLIP: causal, L = 77 in rows of 80 */
  check_softmax_rows (1, 0, 77);   /* T5-like bias at an unaligned L */
  check_attn_alignment ();
  check_welford_counts ();
  check_pool_bookkeeping ();
  check_gemm_plan ();
  check_op_describe ();
  check_sync_checked ();
  check_im2col ();
  /* mixed dtypes (ops.h): the MMDiT's fp32 stream / adaLN vectors with bf16 activations */
  check_ln_mixed<__nv_bfloat16, float, float> (1, 2, 3, 64);
  check_ln_mixed<__nv_bfloat16, float, __nv_bfloat16> (1, 1, 2, 2432);
  check_ln_mixed<float, __nv_bfloat16, float> (1, 2, 2, 64);
  check_ln_mixed<float, float, float> (0, 1, 3, 4096);
  check_gated_mixed<float, __nv_bfloat16, float> (2, 2, 3, 64);
  check_gated_mixed<float, float, __nv_bfloat16> (5, 2, 3, 64);
  check_gated_mixed<float, __nv_bfloat16, float> (-1, 2, 3, 64);
  check_gated_mixed<__nv_bfloat16, float, float> (2, 2, 3, 64);
  check_ln_generic_mixed ();
  check_gemv<float> (2, 37, 300, ACT_NONE, 1);
  check_gemv<float> (1, 8, 256, ACT_SILU, 1);
  check_gemv<__nv_bfloat16> (8, 40, 64, ACT_GELU_TANH, 0);
  backend_free (cpu);
  printf ("%d failed\n", failures);
  return failures ? 1 : 0;
}
