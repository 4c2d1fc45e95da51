/* cpu_gemm.c — out[M,N] = act(in[M,K] · w[N,K]ᵀ + b[N])   (torch: F.linear(in, w, b)).
 *
 * cpu_matmul_naive is the algorithmic reference (llm.c matmul_forward_naive).  cpu_gemm is the
 * one that runs: GotoBLAS-style blocking.  The activations are packed once per call into
 * 6-row tiles; for each K block of 256 the weight rows are widened to fp32 by their dtype's
 * function (cpu_gemm_pack.c: F32/F16/BF16, block formats can be added there) into panels of
 * 16 columns, [kc][16], that stay in L1 while every row tile runs over them; the 6×16
 * micro-kernel has independent lanes (no reduction to reassociate).  On x86-64 with AVX2/FMA
 * the micro-kernel and the widening use intrinsics (target attributes, picked at run time),
 * and plain C with GCC vector types elsewhere, so one binary runs on every x86-64.
 * Work is split over column panels (or over row tiles when N is narrow) across the threads.
 * Attention runs on the same micro-kernel (cpu_gemm_micro ()). */
#include "cpu_ops.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"


void
cpu_matmul_naive (float *out, const float *in, const float *w, const float *b, int64_t M,
                  int64_t N, int64_t K, enum op_act act)
{
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++)
      {
        float acc = b != NULL ? b[n] : 0.0f;
        for (int64_t k = 0; k < K; k++)
          acc += in[m * K + k] * w[n * K + k];
        out[m * N + n] = cpu_act1 (acc, act);
      }
}

typedef float v4f __attribute__ ((vector_size (16)));


/* ---- the GEMM ---------------------------------------------------------------------------
 * Activations: packed once per call into tiles of PACK_MR rows, [kc][PACK_MR] per K block
 * (zero rows past M), shared read-only by the threads.  Weights: each thread widens one panel
 * of NR columns × KC (16 KiB, stays in L1) with the dtype's widen function and runs every
 * row tile over it, so each weight element is converted once per call.  The micro-kernel
 * keeps a 6×16 tile of `out` in 12 AVX2 registers (2 loads + 6 broadcasts per 12 FMAs). */
#define PACK_MR GEMM_MR

int cpu_gemm_force_generic = 0;


/* c[i][j] (i < 6, j < 16, row stride ldc) = (init ? init[j] : c[i][j]) + Σ_k a[k·6+i]·b[k·16+j]
 * Plain C with GCC vector types: what runs on a CPU without AVX2. */
static void
micro_generic (int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
               const float *init)
{
  float acc[PACK_MR][GEMM_NR] __attribute__ ((aligned (32)));

  for (int i = 0; i < PACK_MR; i++)
    memcpy (acc[i], init != NULL ? init : c + i * ldc, sizeof acc[i]);
  for (int64_t k = 0; k < kc; k++)
    {
      const float *bk = b + k * GEMM_NR, *ak = a + k * PACK_MR;
      for (int i = 0; i < PACK_MR; i++)
        {
          float x = ak[i];
          v4f   xv = { x, x, x, x }, *row = (v4f *) acc[i];
          for (int q = 0; q < GEMM_NR / 4; q++)
            {
              v4f bv;
              memcpy (&bv, bk + 4 * q, sizeof bv);
              row[q] += xv * bv;
            }
        }
    }
  for (int i = 0; i < PACK_MR; i++)
    memcpy (c + i * ldc, acc[i], sizeof acc[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define MICRO_ROW(i)                                                                          \
  {                                                                                           \
    __m256 x = _mm256_broadcast_ss (a + (i));                                                 \
    c##i##0 = _mm256_fmadd_ps (x, b0, c##i##0);                                               \
    c##i##1 = _mm256_fmadd_ps (x, b1, c##i##1);                                               \
  }

/* the same with intrinsics, so the 12 accumulators + 2 panel rows + 1 broadcast stay in the
 * 16 ymm registers */
__attribute__ ((target ("avx2,fma"))) static void
micro_avx2 (int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
            const float *init)
{
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;

  if (init != NULL)
    {
      c00 = c10 = c20 = c30 = c40 = c50 = _mm256_loadu_ps (init);
      c01 = c11 = c21 = c31 = c41 = c51 = _mm256_loadu_ps (init + 8);
    }
  else
    {
      c00 = _mm256_loadu_ps (c), c01 = _mm256_loadu_ps (c + 8);
      c10 = _mm256_loadu_ps (c + ldc), c11 = _mm256_loadu_ps (c + ldc + 8);
      c20 = _mm256_loadu_ps (c + 2 * ldc), c21 = _mm256_loadu_ps (c + 2 * ldc + 8);
      c30 = _mm256_loadu_ps (c + 3 * ldc), c31 = _mm256_loadu_ps (c + 3 * ldc + 8);
      c40 = _mm256_loadu_ps (c + 4 * ldc), c41 = _mm256_loadu_ps (c + 4 * ldc + 8);
      c50 = _mm256_loadu_ps (c + 5 * ldc), c51 = _mm256_loadu_ps (c + 5 * ldc + 8);
    }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++)
    {
      __m256 b0 = _mm256_loadu_ps (b), b1 = _mm256_loadu_ps (b + 8);
      MICRO_ROW (0) MICRO_ROW (1) MICRO_ROW (2) MICRO_ROW (3) MICRO_ROW (4) MICRO_ROW (5)
      a += PACK_MR;
      b += GEMM_NR;
    }
  _mm256_storeu_ps (c, c00), _mm256_storeu_ps (c + 8, c01);
  _mm256_storeu_ps (c + ldc, c10), _mm256_storeu_ps (c + ldc + 8, c11);
  _mm256_storeu_ps (c + 2 * ldc, c20), _mm256_storeu_ps (c + 2 * ldc + 8, c21);
  _mm256_storeu_ps (c + 3 * ldc, c30), _mm256_storeu_ps (c + 3 * ldc + 8, c31);
  _mm256_storeu_ps (c + 4 * ldc, c40), _mm256_storeu_ps (c + 4 * ldc + 8, c41);
  _mm256_storeu_ps (c + 5 * ldc, c50), _mm256_storeu_ps (c + 5 * ldc + 8, c51);
}
#undef MICRO_ROW
#endif

cpu_micro_fn
cpu_gemm_micro (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma () && !cpu_gemm_force_generic)
    return micro_avx2;
#endif
  return micro_generic;
}

struct gemm_job
{
  float                          *out;
  const float                    *in;
  float                          *ap;  /* packed activations, Mp·K floats */
  const void                     *w;
  const struct cpu_weight_format *fmt;
  cpu_micro_fn                    micro;
  const float                    *b;
  int64_t                         M, N, K, Mp;
  enum op_act                     act;
  int                             split_rows;  /* 1: ranges are row tiles, 0: column panels */
  int                             oom;         /* a thread could not get its panel buffer */
};

/* ap for the K block at k0 (length kc), tile t: ap + k0·Mp + t·6·kc, [kc][6] */
static void
gemm_pack_a (void *ctx, int64_t t0, int64_t t1)
{
  const struct gemm_job *j = ctx;
  const int64_t          M = j->M, K = j->K;

  for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC)
    {
      int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
      for (int64_t t = t0; t < t1; t++)
        {
          float       *dst = j->ap + k0 * j->Mp + t * PACK_MR * kc;
          const float *row[PACK_MR];
          for (int i = 0; i < PACK_MR; i++)
            row[i] = t * PACK_MR + i < M ? j->in + (t * PACK_MR + i) * K + k0 : NULL;
          for (int i = 0; i < PACK_MR; i++)
            for (int64_t k = 0; k < kc; k++)
              dst[k * PACK_MR + i] = row[i] != NULL ? row[i][k] : 0.0f;
        }
    }
}

/* out[tiles t0..t1, panels p0..p1] complete (bias, all of K, activation) */
static void
gemm_block (const struct gemm_job *j, float *panel, int64_t t0, int64_t t1, int64_t p0,
            int64_t p1)
{
  float         tile[PACK_MR * GEMM_NR] __attribute__ ((aligned (64)));
  float         init[GEMM_NR] __attribute__ ((aligned (64)));
  const int64_t K = j->K, N = j->N, M = j->M;

  for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC)
    {
      int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
      int     first = k0 == 0, last = k0 + kc >= K;
      for (int64_t p = p0; p < p1; p++)
        {
          int64_t n0 = p * GEMM_NR, nr = N - n0 < GEMM_NR ? N - n0 : GEMM_NR;
          j->fmt->widen (panel, j->w, K, n0, nr, k0, kc);
          for (int64_t c = 0; c < GEMM_NR; c++)
            init[c] = j->b != NULL && c < nr ? j->b[n0 + c] : 0.0f;
          for (int64_t t = t0; t < t1; t++)
            {
              int64_t      m0 = t * PACK_MR, mr = M - m0 < PACK_MR ? M - m0 : PACK_MR;
              const float *a = j->ap + k0 * j->Mp + t * PACK_MR * kc;
              float       *o = j->out + m0 * N + n0;
              if (mr == PACK_MR && nr == GEMM_NR)
                j->micro (kc, a, panel, o, N, first ? init : NULL);
              else
                {
                  for (int64_t i = 0; i < mr && !first; i++)
                    memcpy (tile + i * GEMM_NR, o + i * N, (size_t) nr * sizeof (float));
                  j->micro (kc, a, panel, tile, GEMM_NR, first ? init : NULL);
                  for (int64_t i = 0; i < mr; i++)
                    memcpy (o + i * N, tile + i * GEMM_NR, (size_t) nr * sizeof (float));
                }
              if (last && j->act != ACT_NONE)
                for (int64_t i = 0; i < mr; i++)
                  cpu_act_row (o + i * N, nr, j->act);
            }
        }
    }
}

static void
gemm_range (void *ctx, int64_t begin, int64_t end)
{
  struct gemm_job *j = ctx;
  float           *panel = NULL;
  int64_t          n_tiles = j->Mp / PACK_MR, n_panels = (j->N + GEMM_NR - 1) / GEMM_NR;

  if (posix_memalign ((void **) &panel, 64, GEMM_KC * GEMM_NR * sizeof (float)) != 0)
    {
      __atomic_store_n (&j->oom, 1, __ATOMIC_RELAXED);
      return;
    }
  if (j->split_rows)
    gemm_block (j, panel, begin, end, 0, n_panels);
  else
    gemm_block (j, panel, 0, n_tiles, begin, end);
  free (panel);
}

void
cpu_gemm (struct backend *be, float *out, const float *in, const void *w,
          enum sd35_dtype w_dtype, const float *b, int64_t M, int64_t N, int64_t K,
          enum op_act act)
{
  struct gemm_job j;
  int64_t         n_col = (N + GEMM_NR - 1) / GEMM_NR;
  int64_t         n_row = (M + PACK_MR - 1) / PACK_MR;
  int             nt = cpu_threads (be);
  size_t          ap_floats;

  if (M <= 0 || N <= 0)
    return;
  memset (&j, 0, sizeof j);
  j.fmt = cpu_weight_format (w_dtype);
  if (j.fmt == NULL || (K > 0 && (K % j.fmt->block != 0 || GEMM_KC % j.fmt->block != 0)))
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "cpu GEMM: %s weight with K = %lld",
                      sd35_dtype_name (w_dtype), (long long) K);
      return;
    }
  if (K == 0)  /* nothing to reduce: out = act(b) */
    {
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
          out[m * N + n] = cpu_act1 (b != NULL ? b[n] : 0.0f, act);
      return;
    }
  j.out = out, j.in = in, j.w = w, j.b = b, j.M = M, j.N = N, j.K = K, j.act = act;
  j.Mp = n_row * PACK_MR;
  j.micro = cpu_gemm_micro ();
  if (sd35_mul_size ((size_t) j.Mp, (size_t) K, &ap_floats) != 0 ||
      ap_floats > SIZE_MAX / sizeof (float) ||
      posix_memalign ((void **) &j.ap, 64, ap_floats * sizeof (float)) != 0)
    {
      sd35_set_error (&be->err, SD35_ERR_OOM,
                      "out of host memory for the GEMM's packed activations (%lld × %lld)",
                      (long long) M, (long long) K);
      return;
    }
  cpu_parallel_for (be, n_row, 8.0 * PACK_MR * (double) K, gemm_pack_a, &j);
  /* columns when there are enough panels for every thread (each widens its own weights),
   * else rows (each thread then widens all the weights, but N is narrow) */
  j.split_rows = n_col < 2 * nt && n_row > n_col;
  if (j.split_rows)
    cpu_parallel_for (be, n_row, 2.0 * PACK_MR * (double) N * (double) K, gemm_range, &j);
  else
    cpu_parallel_for (be, n_col, 2.0 * GEMM_NR * (double) M * (double) K, gemm_range, &j);
  free (j.ap);
  if (j.oom)
    sd35_set_error (&be->err, SD35_ERR_OOM, "out of host memory for the GEMM packing buffer");
}

void
cpu_op_linear (struct backend *be, struct tensor *out, const struct tensor *in,
               const struct tensor *w, const struct tensor *b, int64_t M, int64_t N, int64_t K,
               enum op_act act)
{
  float       *tmp_in = NULL, *tmp_b = NULL;
  const float *x, *bias = NULL;

  if (cpu_weight_format (w->dtype) == NULL)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "cpu linear: %s weight",
                      sd35_dtype_name (w->dtype));
      return;
    }
  if (out->data == in->data)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "linear cannot run in place");
      return;
    }
  x = cpu_f32_view (be, in, (size_t) (M * K), &tmp_in);
  if (b != NULL)
    bias = cpu_f32_view (be, b, (size_t) N, &tmp_b);
  if (x != NULL && (b == NULL || bias != NULL))
    cpu_gemm (be, out->data, x, w->data, w->dtype, bias, M, N, K, act);
  free (tmp_in);
  free (tmp_b);
}
