/* cpu_attention.c — multi-head attention on a packed qkv [B, L, 3, H, dh]:
 *   out[b, i, h·dh:(h+1)·dh] = softmax_j(scale·q_i·k_j + bias[h,i,j] (−inf for j > i if causal)) · v
 * (torch: F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=causal, scale)).
 *
 * Per (batch, head): K is packed transposed into [dh][16]-key panels and V into [L][16]-column
 * panels, so both products run on the GEMM micro-kernel (cpu_gemm_micro).  Queries go 4 rows
 * at a time: their scores live in a [4, L] buffer (never an L×L matrix), softmax in fp32 with
 * the max subtracted, then p·v.  Threads split the (batch, head) pairs, or, with fewer heads
 * than threads (the VAE has one), the query rows of each head in turn. */
#include "cpu_ops.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"

struct attn_job
{
  float       *out;
  const float *qkv, *bias;
  int64_t      L, H, dh;
  float        scale;
  int          causal;
  int          oom;
};

#define ROUND16(n) (((n) + GEMM_NR - 1) / GEMM_NR * GEMM_NR)

static void
attn_pack (const struct attn_job *j, int64_t b, int64_t h, float *kp, float *vp)
{
  const int64_t L = j->L, H = j->H, dh = j->dh, row = 3 * H * dh, Lp = ROUND16 (L);
  const float  *base = j->qkv + b * L * row;

  /* kp[kb][d][c] = k[kb·16 + c][d];  vp[db][k][c] = v[k][db·16 + c]  (zeros past the end) */
  for (int64_t kb = 0; kb < Lp / GEMM_NR; kb++)
    for (int64_t c = 0; c < GEMM_NR; c++)
      {
        int64_t      k = kb * GEMM_NR + c;
        const float *kr = k < L ? base + k * row + H * dh + h * dh : NULL;
        for (int64_t d = 0; d < dh; d++)
          kp[(kb * dh + d) * GEMM_NR + c] = kr != NULL ? kr[d] : 0.0f;
      }
  for (int64_t db = 0; db < ROUND16 (dh) / GEMM_NR; db++)
    for (int64_t k = 0; k < L; k++)
      {
        const float *vr = base + k * row + 2 * H * dh + h * dh;
        for (int64_t c = 0; c < GEMM_NR; c++)
          vp[(db * L + k) * GEMM_NR + c] = db * GEMM_NR + c < dh ? vr[db * GEMM_NR + c] : 0.0f;
      }
}

/* scratch of attn_rows, in floats: scores [MR][Lp], packed probabilities [Lp][MR], packed
 * queries [dh][MR] */
#define ATTN_SCRATCH(L, dh) ((size_t) (2 * GEMM_MR * ROUND16 (L) + GEMM_MR * (dh)))

/* query rows [i_begin, i_end) of head (b, h), from packed kp/vp; s: ATTN_SCRATCH floats */
static void
attn_rows (const struct attn_job *j, int64_t b, int64_t h, const float *kp, const float *vp,
           float *s, int64_t i_begin, int64_t i_end)
{
  const int64_t L = j->L, H = j->H, dh = j->dh, row = 3 * H * dh, Lp = ROUND16 (L);
  const float  *base = j->qkv + b * L * row;
  float        *pa = s + GEMM_MR * Lp, *qa = pa + GEMM_MR * Lp;
  float         acc[GEMM_MR * GEMM_NR] __attribute__ ((aligned (32)));
  static const float zero[GEMM_NR];
  cpu_micro_fn  micro = cpu_gemm_micro ();

  for (int64_t i0 = i_begin; i0 < i_end; i0 += GEMM_MR)
    {
      int64_t mr = i_end - i0 < GEMM_MR ? i_end - i0 : GEMM_MR;
      int64_t n_keys = j->causal ? i0 + mr : L;  /* later keys are masked for all rows */
      float   sum[GEMM_MR];

      /* qa[d][r] = q[i0 + r][d] (a short tile repeats its last row) */
      for (int r = 0; r < GEMM_MR; r++)
        {
          const float *q = base + (i0 + (r < mr ? r : mr - 1)) * row + h * dh;
          for (int64_t d = 0; d < dh; d++)
            qa[d * GEMM_MR + r] = q[d];
        }
      /* scores s[r][k] = scale·q·k (+ bias), −inf where masked */
      for (int64_t kb = 0; kb * GEMM_NR < n_keys; kb++)
        {
          micro (dh, qa, kp + kb * dh * GEMM_NR, acc, GEMM_NR, zero);
          for (int64_t r = 0; r < mr; r++)
            for (int64_t c = 0; c < GEMM_NR; c++)
              {
                int64_t k = kb * GEMM_NR + c, i = i0 + r;
                float   v = -INFINITY;
                if (k < n_keys && !(j->causal && k > i))
                  {
                    v = j->scale * acc[r * GEMM_NR + c];
                    if (j->bias != NULL)
                      v += j->bias[(h * L + i) * L + k];
                  }
                s[r * Lp + k] = v;
              }
        }
      /* softmax numerators (max subtracted), packed as pa[k][r] for p·v */
      for (int64_t r = 0; r < GEMM_MR; r++)
        {
          float *sr = s + (r < mr ? r : mr - 1) * Lp, mx = -INFINITY;
          if (r < mr)
            {
              for (int64_t k = 0; k < n_keys; k++)
                mx = sr[k] > mx ? sr[k] : mx;
              sum[r] = cpu_exp_sub_sum (sr, n_keys, mx);
            }
          for (int64_t k = 0; k < n_keys; k++)
            pa[k * GEMM_MR + r] = sr[k];
        }
      /* out = p·v / Σp */
      for (int64_t db = 0; db * GEMM_NR < dh; db++)
        {
          micro (n_keys, pa, vp + db * L * GEMM_NR, acc, GEMM_NR, zero);
          for (int64_t r = 0; r < mr; r++)
            {
              float *o = j->out + (b * L + i0 + r) * H * dh + h * dh + db * GEMM_NR;
              float  inv = 1.0f / sum[r];
              for (int64_t c = 0; c < GEMM_NR && db * GEMM_NR + c < dh; c++)
                o[c] = acc[r * GEMM_NR + c] * inv;
            }
        }
    }
}

/* many heads: each item is a whole (batch, head) */
static void
attn_range_heads (void *ctx, int64_t begin, int64_t end)
{
  struct attn_job *j = ctx;
  const int64_t    Lp = ROUND16 (j->L), dhp = ROUND16 (j->dh);
  float           *kp = malloc ((size_t) (Lp * j->dh) * sizeof (float));
  float           *vp = malloc ((size_t) (dhp * j->L) * sizeof (float));
  float           *s = malloc (ATTN_SCRATCH (j->L, j->dh) * sizeof (float));

  if (kp == NULL || vp == NULL || s == NULL)
    __atomic_store_n (&j->oom, 1, __ATOMIC_RELAXED);
  else
    for (int64_t it = begin; it < end; it++)
      {
        attn_pack (j, it / j->H, it % j->H, kp, vp);
        attn_rows (j, it / j->H, it % j->H, kp, vp, s, 0, j->L);
      }
  free (kp);
  free (vp);
  free (s);
}

/* few heads (the VAE's single one): heads in turn, threads over tiles of query rows */
struct attn_rows_job
{
  struct attn_job *j;
  int64_t          b, h;
  const float     *kp, *vp;
};

#define ATTN_ROW_BLOCK (16 * GEMM_MR)

static void
attn_range_rows (void *ctx, int64_t begin, int64_t end)
{
  struct attn_rows_job *r = ctx;
  const int64_t         L = r->j->L;
  float                *s = malloc (ATTN_SCRATCH (L, r->j->dh) * sizeof (float));

  if (s == NULL)
    __atomic_store_n (&r->j->oom, 1, __ATOMIC_RELAXED);
  else
    attn_rows (r->j, r->b, r->h, r->kp, r->vp, s, begin * ATTN_ROW_BLOCK,
               end * ATTN_ROW_BLOCK < L ? end * ATTN_ROW_BLOCK : L);
  free (s);
}

void
cpu_op_attention (struct backend *be, struct tensor *out, const struct tensor *qkv,
                  const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                  float scale, int causal)
{
  struct attn_job j = { out->data, qkv->data, NULL, L, H, dh, scale, causal, 0 };
  float          *tb = NULL;

  if (out->data == qkv->data)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "attention cannot run in place");
      return;
    }
  if (bias != NULL)
    {
      j.bias = cpu_f32_view (be, bias, (size_t) (H * L * L), &tb);
      if (j.bias == NULL)
        return;
    }
  if (B * H >= cpu_threads (be))
    cpu_parallel_for (be, B * H, 4.0 * (double) L * (double) L * (double) dh, attn_range_heads,
                      &j);
  else
    {
      float *kp = cpu_scratch (be, (size_t) (ROUND16 (L) * dh), "attention keys");
      float *vp = cpu_scratch (be, (size_t) (ROUND16 (dh) * L), "attention values");
      for (int64_t bh = 0; kp != NULL && vp != NULL && bh < B * H; bh++)
        {
          struct attn_rows_job r = { &j, bh / H, bh % H, kp, vp };
          attn_pack (&j, r.b, r.h, kp, vp);
          cpu_parallel_for (be, (L + ATTN_ROW_BLOCK - 1) / ATTN_ROW_BLOCK,
                            4.0 * ATTN_ROW_BLOCK * (double) L * (double) dh, attn_range_rows,
                            &r);
        }
      free (kp);
      free (vp);
    }
  if (j.oom)
    sd35_set_error (&be->err, SD35_ERR_OOM, "out of host memory for attention scratch");
  free (tb);
}
