/* cpu_attention.c — multi-head attention on a packed qkv [B, L, 3, H, dh]:
 *   out[b, i, h·dh:(h+1)·dh] = softmax_j(scale·q_i·k_j + bias[h,i,j] (−inf for j > i if causal)) · v
 * (torch: F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=causal, scale)).
 * One query row at a time: its L scores live in a per-thread row buffer (never an L×L
 * matrix), softmax in fp32 with the max subtracted, then Σ p_j v_j.  Threads split the
 * (batch, head, query) rows. */
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

/* q·k with 8 independent partial sums (vectorises without reassociation) */
static float
dot8 (const float *a, const float *b, int64_t n)
{
  float   s[8] = { 0 };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int u = 0; u < 8; u++)
      s[u] += a[i + u] * b[i + u];
  for (; i < n; i++)
    s[0] += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void
attn_range (void *ctx, int64_t begin, int64_t end)
{
  struct attn_job *j = ctx;
  const int64_t    L = j->L, H = j->H, dh = j->dh, row = 3 * H * dh;
  float           *p = malloc ((size_t) L * sizeof (float));
  float           *acc = malloc ((size_t) dh * sizeof (float));

  if (p == NULL || acc == NULL)
    {
      __atomic_store_n (&j->oom, 1, __ATOMIC_RELAXED);
      free (p);
      free (acc);
      return;
    }
  for (int64_t it = begin; it < end; it++)
    {
      int64_t      i = it % L, h = (it / L) % H, b = it / (L * H);
      const float *base = j->qkv + b * L * row;
      const float *q = base + i * row + h * dh;
      const float *bias = j->bias != NULL ? j->bias + (h * L + i) * L : NULL;
      int64_t      n_keys = j->causal ? i + 1 : L;  /* keys past i are masked (weight 0) */
      float        mx = -INFINITY, sum = 0.0f;

      for (int64_t k = 0; k < n_keys; k++)
        {
          float s = j->scale * dot8 (q, base + k * row + H * dh + h * dh, dh);
          if (bias != NULL)
            s += bias[k];
          p[k] = s;
          mx = s > mx ? s : mx;
        }
      for (int64_t k = 0; k < n_keys; k++)
        {
          p[k] = expf (p[k] - mx);
          sum += p[k];
        }
      for (int64_t d = 0; d < dh; d++)
        acc[d] = 0.0f;
      for (int64_t k = 0; k < n_keys; k++)
        {
          const float *v = base + k * row + 2 * H * dh + h * dh;
          float        w = p[k];
          for (int64_t d = 0; d < dh; d++)
            acc[d] += w * v[d];
        }
      float *o = j->out + (b * L + i) * H * dh + h * dh;
      for (int64_t d = 0; d < dh; d++)
        o[d] = acc[d] / sum;
    }
  free (p);
  free (acc);
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
  cpu_parallel_for (be, B * H * L, 4.0 * (double) L * (double) dh, attn_range, &j);
  if (j.oom)
    sd35_set_error (&be->err, SD35_ERR_OOM, "out of host memory for attention scratch");
  free (tb);
}
