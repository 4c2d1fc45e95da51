/* cpu_norm.c — LayerNorm, RMSNorm, MMDiT qk-RMSNorm, adaLN modulate and GroupNorm (+SiLU).
 * Statistics are accumulated in double (two passes) so long rows (VAE groups of 10⁶ values)
 * stay as exact as torch's fp32 Welford; the outputs are fp32.  All work in place. */
#include "cpu_ops.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"

/* mean and 1/sqrt(var + eps) of x[0:n] (biased variance, as torch) */
static void
row_stats (const float *x, int64_t n, float eps, float *mean, float *rstd)
{
  double s = 0.0, v = 0.0, m;
  for (int64_t i = 0; i < n; i++)
    s += x[i];
  m = s / (double) n;
  for (int64_t i = 0; i < n; i++)
    v += ((double) x[i] - m) * ((double) x[i] - m);
  *mean = (float) m;
  *rstd = (float) (1.0 / sqrt (v / (double) n + (double) eps));
}

/* torch.nn.LayerNorm(D, eps): out = (x − mean)·rstd·w + b over the last dim */
void
cpu_layernorm (float *out, const float *in, const float *w, const float *b, int64_t rows,
               int64_t D, float eps)
{
  for (int64_t r = 0; r < rows; r++)
    {
      const float *x = in + r * D;
      float       *o = out + r * D;
      float        mean, rstd;
      row_stats (x, D, eps, &mean, &rstd);
      for (int64_t i = 0; i < D; i++)
        {
          float y = (x[i] - mean) * rstd;
          if (w != NULL)
            y *= w[i];
          if (b != NULL)
            y += b[i];
          o[i] = y;
        }
    }
}

/* T5LayerNorm / sd3 RMSNorm: out = w · x · rsqrt(mean(x²) + eps) (w may be NULL) */
void
cpu_rmsnorm (float *out, const float *in, const float *w, int64_t rows, int64_t D, float eps)
{
  for (int64_t r = 0; r < rows; r++)
    {
      const float *x = in + r * D;
      float       *o = out + r * D;
      double       ss = 0.0;
      float        rs;
      for (int64_t i = 0; i < D; i++)
        ss += (double) x[i] * x[i];
      rs = (float) (1.0 / sqrt (ss / (double) D + (double) eps));
      for (int64_t i = 0; i < D; i++)
        o[i] = w != NULL ? w[i] * (x[i] * rs) : x[i] * rs;
    }
}

struct norm_job
{
  float       *out;
  const float *in, *w, *b;
  int64_t      D;
  float        eps;
  int          rms;
};

static void
norm_range (void *ctx, int64_t begin, int64_t end)
{
  const struct norm_job *j = ctx;
  if (j->rms)
    cpu_rmsnorm (j->out + begin * j->D, j->in + begin * j->D, j->w, end - begin, j->D, j->eps);
  else
    cpu_layernorm (j->out + begin * j->D, j->in + begin * j->D, j->w, j->b, end - begin, j->D,
                   j->eps);
}

void
cpu_op_layernorm (struct backend *be, struct tensor *out, const struct tensor *in,
                  const struct tensor *w, const struct tensor *b, int64_t rows, int64_t D,
                  float eps)
{
  float          *tw = NULL, *tb = NULL;
  struct norm_job j = { out->data, in->data, NULL, NULL, D, eps, 0 };

  if (w != NULL)
    j.w = cpu_f32_view (be, w, (size_t) D, &tw);
  if (b != NULL)
    j.b = cpu_f32_view (be, b, (size_t) D, &tb);
  if (!backend_failed (be))
    cpu_parallel_for (be, rows, 8.0 * (double) D, norm_range, &j);
  free (tw);
  free (tb);
}

void
cpu_op_rmsnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                const struct tensor *w, int64_t rows, int64_t D, float eps)
{
  float          *tw = NULL;
  struct norm_job j = { out->data, in->data, NULL, NULL, D, eps, 1 };

  if (w != NULL)
    j.w = cpu_f32_view (be, w, (size_t) D, &tw);
  if (!backend_failed (be))
    cpu_parallel_for (be, rows, 6.0 * (double) D, norm_range, &j);
  free (tw);
}

/* qkv [rows, 3, H, dh]: q heads normed with wq, k heads with wk, v untouched */
void
cpu_op_qk_rmsnorm (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                   const struct tensor *wk, int64_t rows, int64_t H, int64_t dh, float eps)
{
  float       *x = qkv->data, *tq = NULL, *tk = NULL;
  const float *q_w = cpu_f32_view (be, wq, (size_t) dh, &tq);
  const float *k_w = cpu_f32_view (be, wk, (size_t) dh, &tk);

  if (q_w != NULL && k_w != NULL)
    for (int64_t r = 0; r < rows; r++)
      {
        float *q = x + r * 3 * H * dh;
        cpu_rmsnorm (q, q, q_w, H, dh, eps);
        cpu_rmsnorm (q + H * dh, q + H * dh, k_w, H, dh, eps);
      }
  free (tq);
  free (tk);
}

/* out[b,n,:] = LN(in[b,n,:]) · (1 + scale[b]) + shift[b]   (sd3 modulate(norm(x), shift, scale)) */
void
cpu_op_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *in,
                    const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                    int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps)
{
  float       *o = out->data, *tm = NULL;
  const float *x = in->data;
  const float *m = cpu_f32_view (be, mod, (size_t) (B * n_chunks * D), &tm);

  if (m != NULL)
    for (int64_t b = 0; b < B; b++)
      {
        const float *shift = m + (b * n_chunks + shift_chunk) * D;
        const float *scale = m + (b * n_chunks + scale_chunk) * D;
        for (int64_t n = 0; n < N; n++)
          {
            const float *xr = x + (b * N + n) * D;
            float       *orow = o + (b * N + n) * D;
            float        mean, rstd;
            row_stats (xr, D, eps, &mean, &rstd);
            for (int64_t d = 0; d < D; d++)
              orow[d] = (xr[d] - mean) * rstd * (1.0f + scale[d]) + shift[d];
          }
      }
  free (tm);
}

struct gn_job
{
  float       *out;
  const float *in, *w, *b;
  int64_t      C, HW, groups;
  float        eps;
  int          silu;
};

/* one (batch, group) per item: torch.nn.GroupNorm(groups, C, eps) [+ F.silu] */
static void
gn_range (void *ctx, int64_t begin, int64_t end)
{
  const struct gn_job *j = ctx;
  int64_t              cg = j->C / j->groups;

  for (int64_t it = begin; it < end; it++)
    {
      int64_t      b = it / j->groups, g = it % j->groups;
      size_t       off = (size_t) (b * j->C + g * cg) * (size_t) j->HW;
      const float *x = j->in + off;
      float       *o = j->out + off;
      float        mean, rstd;
      row_stats (x, cg * j->HW, j->eps, &mean, &rstd);
      for (int64_t c = 0; c < cg; c++)
        {
          float wc = j->w != NULL ? j->w[g * cg + c] : 1.0f;
          float bc = j->b != NULL ? j->b[g * cg + c] : 0.0f;
          for (int64_t i = 0; i < j->HW; i++)
            {
              float y = (x[c * j->HW + i] - mean) * rstd * wc + bc;
              o[c * j->HW + i] = j->silu ? y / (1.0f + expf (-y)) : y;
            }
        }
    }
}

void
cpu_op_groupnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                  const struct tensor *w, const struct tensor *b, int64_t B, int64_t C,
                  int64_t HW, int64_t groups, float eps, int silu)
{
  float        *tw = NULL, *tb = NULL;
  struct gn_job j = { out->data, in->data, NULL, NULL, C, HW, groups, eps, silu };

  if (groups <= 0 || C % groups != 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "groupnorm: %lld channels in %lld groups",
                      (long long) C, (long long) groups);
      return;
    }
  if (w != NULL)
    j.w = cpu_f32_view (be, w, (size_t) C, &tw);
  if (b != NULL)
    j.b = cpu_f32_view (be, b, (size_t) C, &tb);
  if (!backend_failed (be))
    cpu_parallel_for (be, B * groups, 10.0 * (double) (C / groups) * (double) HW, gn_range, &j);
  free (tw);
  free (tb);
}
