/* cpu_gemm.c — out[M,N] = act(in[M,K] · w[N,K]ᵀ + b[N])   (torch: F.linear(in, w, b)).
 *
 * cpu_matmul_naive is the algorithmic reference (llm.c matmul_forward_naive).  cpu_gemm is the
 * one that runs: GotoBLAS-style blocking in plain C.  For a block of NC output columns and KC
 * of the reduction, the weight rows are widened to fp32 (they may be F16/BF16) and packed
 * transposed into panels of NR columns, [kc][NR], so the micro-kernel updates a 4×16 tile of
 * `out` with independent lanes (no reduction to reassociate: the compiler vectorises it
 * without -ffast-math).  On x86-64 the micro-kernel is also built for x86-64-v3 (AVX2+FMA)
 * and picked at run time (target_clones), so one binary runs everywhere.
 * Work is split over column blocks (or over rows when N is narrow) across the threads. */
#include "cpu_ops.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

#define GEMM_KC 256  /* reduction block: a panel is KC·NR·4 = 16 KiB (L1) */
#define GEMM_NC 128  /* columns per packed block: KC·NC·4 = 128 KiB (L2) */

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

typedef float v8f __attribute__ ((vector_size (32)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define GEMM_CLONES __attribute__ ((target_clones ("arch=x86-64-v3", "default")))
#else
#define GEMM_CLONES
#endif

/* acc[MR][NR] += Σ_k a_i[k] · panel[k][j]   (a_i: MR row pointers, panel: [kc][NR]);
 * also used by cpu_attention.c for q·kᵀ and p·v tiles */
GEMM_CLONES void
cpu_gemm_micro (float *acc, const float *const *a, const float *panel, int64_t kc)
{
  v8f c[GEMM_MR][2];

  memcpy (c, acc, sizeof c);
  for (int64_t k = 0; k < kc; k++)
    {
      v8f b0, b1;
      memcpy (&b0, panel + k * GEMM_NR, sizeof b0);
      memcpy (&b1, panel + k * GEMM_NR + 8, sizeof b1);
      for (int i = 0; i < GEMM_MR; i++)
        {
          float x = a[i][k];
          c[i][0] += x * b0;
          c[i][1] += x * b1;
        }
    }
  memcpy (acc, c, sizeof c);
}

/* f16 → f32 with the normal-number case inline (dtype.c handles zero, subnormal, inf, NaN);
 * the packing converts every weight of a GEMM once, so this is on the hot path for M ≈ 77 */
static inline float
f16_to_f32_fast (uint16_t h)
{
  uint32_t e = (h >> 10) & 0x1fu, u;
  float    f;

  if (e == 0 || e == 0x1f)
    return sd35_f16_to_f32 (h);
  u = ((uint32_t) (h & 0x8000u) << 16) | ((e + 112) << 23) | ((uint32_t) (h & 0x3ffu) << 13);
  memcpy (&f, &u, 4);
  return f;
}

/* panel p of the block: pack[p][k][j] = w[n0 + p·NR + j, k0 + k] (0 past the block's end) */
static void
gemm_pack (float *pack, const void *w, enum sd35_dtype dt, int64_t K, int64_t n0, int64_t nc,
           int64_t k0, int64_t kc)
{
  int64_t n_panels = (nc + GEMM_NR - 1) / GEMM_NR;

  for (int64_t p = 0; p < n_panels; p++)
    {
      float *panel = pack + p * kc * GEMM_NR;
      for (int64_t j = 0; j < GEMM_NR; j++)
        {
          int64_t col = p * GEMM_NR + j;
          if (col >= nc)
            {
              for (int64_t k = 0; k < kc; k++)
                panel[k * GEMM_NR + j] = 0.0f;
              continue;
            }
          size_t row = (size_t) (n0 + col) * (size_t) K + (size_t) k0;
          if (dt == SD35_F32)
            {
              const float *src = (const float *) w + row;
              for (int64_t k = 0; k < kc; k++)
                panel[k * GEMM_NR + j] = src[k];
            }
          else if (dt == SD35_F16)
            {
              const uint16_t *src = (const uint16_t *) w + row;
              for (int64_t k = 0; k < kc; k++)
                panel[k * GEMM_NR + j] = f16_to_f32_fast (src[k]);
            }
          else
            {
              const uint16_t *src = (const uint16_t *) w + row;
              for (int64_t k = 0; k < kc; k++)
                panel[k * GEMM_NR + j] = sd35_bf16_to_f32 (src[k]);
            }
        }
    }
}

struct gemm_job
{
  float          *out;
  const float    *in;
  const void     *w;
  enum sd35_dtype w_dtype;
  const float    *b;
  int64_t         M, N, K;
  enum op_act     act;
  int             split_rows;  /* 1: ranges are rows (in MR units), 0: column panels */
  int             oom;         /* a thread could not get its packing buffer */
};

/* out[m0:m1, n0:n1] complete (bias, all of K, activation) */
static void
gemm_block (const struct gemm_job *j, float *pack, int64_t m0, int64_t m1, int64_t n0,
            int64_t n1)
{
  float acc[GEMM_MR * GEMM_NR] __attribute__ ((aligned (64)));
  const int64_t K = j->K, N = j->N;

  for (int64_t nc0 = n0; nc0 < n1; nc0 += GEMM_NC)
    {
      int64_t nc = n1 - nc0 < GEMM_NC ? n1 - nc0 : GEMM_NC;
      for (int64_t k0 = 0; k0 < K || k0 == 0; k0 += GEMM_KC)
        {
          int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
          int     first = k0 == 0, last = k0 + kc >= K;
          gemm_pack (pack, j->w, j->w_dtype, K, nc0, nc, k0, kc);
          for (int64_t m = m0; m < m1; m += GEMM_MR)
            {
              const float *a[GEMM_MR];
              int64_t      mr = m1 - m < GEMM_MR ? m1 - m : GEMM_MR;
              for (int i = 0; i < GEMM_MR; i++)  /* short tiles repeat their last row */
                a[i] = j->in + (size_t) (m + (i < mr ? i : mr - 1)) * (size_t) K + k0;
              for (int64_t p = 0; p * GEMM_NR < nc; p++)
                {
                  int64_t c0 = nc0 + p * GEMM_NR;
                  int64_t nr = nc0 + nc - c0 < GEMM_NR ? nc0 + nc - c0 : GEMM_NR;
                  for (int i = 0; i < GEMM_MR; i++)
                    for (int64_t c = 0; c < GEMM_NR; c++)
                      {
                        float v = 0.0f;
                        if (i < mr && c < nr)
                          v = first ? (j->b != NULL ? j->b[c0 + c] : 0.0f)
                                    : j->out[(m + i) * N + c0 + c];
                        acc[i * GEMM_NR + c] = v;
                      }
                  if (kc > 0)
                    cpu_gemm_micro (acc, a, pack + p * kc * GEMM_NR, kc);
                  for (int i = 0; i < mr; i++)
                    for (int64_t c = 0; c < nr; c++)
                      {
                        float v = acc[i * GEMM_NR + c];
                        j->out[(m + i) * N + c0 + c] = last ? cpu_act1 (v, j->act) : v;
                      }
                }
            }
          if (K == 0)
            break;
        }
    }
}

static void
gemm_range (void *ctx, int64_t begin, int64_t end)
{
  struct gemm_job *j = ctx;
  float           *pack = NULL;

  /* one packed block per thread (128 KiB: too big for a thread's stack to be polite) */
  if (posix_memalign ((void **) &pack, 64, GEMM_KC * GEMM_NC * sizeof (float)) != 0)
    {
      __atomic_store_n (&j->oom, 1, __ATOMIC_RELAXED);
      return;
    }
  if (j->split_rows)
    {
      int64_t m0 = begin * GEMM_MR, m1 = end * GEMM_MR;
      gemm_block (j, pack, m0, m1 < j->M ? m1 : j->M, 0, j->N);
    }
  else
    {
      int64_t n0 = begin * GEMM_NR, n1 = end * GEMM_NR;
      gemm_block (j, pack, 0, j->M, n0, n1 < j->N ? n1 : j->N);
    }
  free (pack);
}

void
cpu_gemm (struct backend *be, float *out, const float *in, const void *w,
          enum sd35_dtype w_dtype, const float *b, int64_t M, int64_t N, int64_t K,
          enum op_act act)
{
  struct gemm_job j = { out, in, w, w_dtype, b, M, N, K, act, 0, 0 };
  int64_t         n_col = (N + GEMM_NR - 1) / GEMM_NR;
  int64_t         n_row = (M + GEMM_MR - 1) / GEMM_MR;
  int             nt = cpu_threads (be);

  if (M <= 0 || N <= 0)
    return;
  /* columns when there are enough panels for every thread (each converts its own weights),
   * else rows (each thread then packs all the weights, but N is narrow) */
  j.split_rows = n_col < 2 * nt && n_row > n_col;
  if (j.split_rows)
    cpu_parallel_for (be, n_row, 2.0 * GEMM_MR * (double) N * (double) K, gemm_range, &j);
  else
    cpu_parallel_for (be, n_col, 2.0 * GEMM_NR * (double) M * (double) K, gemm_range, &j);
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

  if (w->dtype != SD35_F32 && w->dtype != SD35_F16 && w->dtype != SD35_BF16)
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
