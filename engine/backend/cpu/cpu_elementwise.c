/* cpu_elementwise.c — activations, add/mul, broadcast add, copy and the gated residual add
 * of the CPU backend.  Plain fp32 loops; all are safe in place (out == in). */
#include "cpu_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* torch formulas: F.gelu(approximate="tanh"), F.gelu, CLIP quick_gelu, F.silu, F.relu */
float
cpu_act1 (float x, enum op_act act)
{
  switch (act)
    {
    case ACT_GELU_TANH:
      return 0.5f * x * (1.0f + tanhf (0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case ACT_GELU_ERF:
      return 0.5f * x * (1.0f + erff (x * 0.7071067811865476f));
    case ACT_QUICK_GELU:
      return x / (1.0f + expf (-1.702f * x));
    case ACT_SILU:
      return x / (1.0f + expf (-x));
    case ACT_RELU:
      return x < 0.0f ? 0.0f : x;  /* NaN stays NaN, like torch.relu */
    case ACT_NONE:
    default:
      return x;
    }
}

struct act_job
{
  float       *out;
  const float *in;
  enum op_act  act;
};

static void
act_range (void *ctx, int64_t begin, int64_t end)
{
  const struct act_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    j->out[i] = cpu_act1 (j->in[i], j->act);
}

void
cpu_op_activation (struct backend *be, struct tensor *out, const struct tensor *in, int64_t n,
                   enum op_act act)
{
  struct act_job j = { out->data, in->data, act };
  cpu_parallel_for (be, n, act == ACT_NONE ? 1.0 : 20.0, act_range, &j);
}

void
cpu_op_add (struct backend *be, struct tensor *out, const struct tensor *a,
            const struct tensor *b, int64_t n)
{
  float       *o = out->data, *ta, *tb;
  const float *x = cpu_f32_view (be, a, (size_t) n, &ta);
  const float *y = cpu_f32_view (be, b, (size_t) n, &tb);

  if (x != NULL && y != NULL)
    for (int64_t i = 0; i < n; i++)
      o[i] = x[i] + y[i];
  free (ta);
  free (tb);
}

void
cpu_op_mul (struct backend *be, struct tensor *out, const struct tensor *a,
            const struct tensor *b, int64_t n)
{
  float       *o = out->data, *ta, *tb;
  const float *x = cpu_f32_view (be, a, (size_t) n, &ta);
  const float *y = cpu_f32_view (be, b, (size_t) n, &tb);

  if (x != NULL && y != NULL)
    for (int64_t i = 0; i < n; i++)
      o[i] = x[i] * y[i];
  free (ta);
  free (tb);
}

/* out[b, i] = in[b, i] + vec[i] */
void
cpu_op_add_broadcast (struct backend *be, struct tensor *out, const struct tensor *in,
                      const struct tensor *vec, int64_t B, int64_t n)
{
  float       *o = out->data, *tv;
  const float *x = in->data;
  const float *v = cpu_f32_view (be, vec, (size_t) n, &tv);

  if (v != NULL)
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < n; i++)
        o[b * n + i] = x[b * n + i] + v[i];
  free (tv);
}

void
cpu_op_copy (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n)
{
  if (dst->data == src->data)
    return;
  if (src->dtype == SD35_F32)
    memmove (dst->data, src->data, (size_t) n * sizeof (float));
  else if (sd35_dtype_is_float (src->dtype))
    sd35_convert_to_f32 (dst->data, src->data, src->dtype, (size_t) n);
  else
    sd35_set_error (&be->err, SD35_ERR_INTERNAL, "cpu copy: %s source",
                    sd35_dtype_name (src->dtype));
}

/* x[b,n,:] += gate[b] · y[b,n,:]; gate = mod[b, gate_chunk·D : (gate_chunk+1)·D] or 1 */
void
cpu_op_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
                  const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t B,
                  int64_t N, int64_t D)
{
  float       *xd = x->data;
  const float *yd = y->data;
  const float *md = gate_chunk >= 0 ? mod->data : NULL;

  for (int64_t b = 0; b < B; b++)
    {
      const float *gate = md != NULL ? md + (b * n_chunks + gate_chunk) * D : NULL;
      for (int64_t n = 0; n < N; n++)
        {
          float       *xr = xd + (b * N + n) * D;
          const float *yr = yd + (b * N + n) * D;
          if (gate != NULL)
            for (int64_t d = 0; d < D; d++)
              xr[d] += gate[d] * yr[d];
          else
            for (int64_t d = 0; d < D; d++)
              xr[d] += yr[d];
        }
    }
}
