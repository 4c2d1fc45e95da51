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

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* e^x, 8 lanes, Cephes' expf (range reduction by ln 2 in two parts, degree-6 polynomial):
 * ≤ 2 ulp over [−88, 88]; the clamp keeps NaN (max/min return their second operand then) */
__attribute__ ((target ("avx2,fma"))) static inline __m256
exp8 (__m256 x)
{
  const __m256 one = _mm256_set1_ps (1.0f);
  __m256       fx, y, z;
  __m256i      n;

  x = _mm256_min_ps (_mm256_set1_ps (88.3762626647949f),
                     _mm256_max_ps (_mm256_set1_ps (-88.3762626647949f), x));
  fx = _mm256_round_ps (_mm256_mul_ps (x, _mm256_set1_ps (1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps (fx, _mm256_set1_ps (0.693359375f), x);
  x = _mm256_fnmadd_ps (fx, _mm256_set1_ps (-2.12194440e-4f), x);
  z = _mm256_mul_ps (x, x);
  y = _mm256_set1_ps (1.9875691500E-4f);
  y = _mm256_fmadd_ps (y, x, _mm256_set1_ps (1.3981999507E-3f));
  y = _mm256_fmadd_ps (y, x, _mm256_set1_ps (8.3334519073E-3f));
  y = _mm256_fmadd_ps (y, x, _mm256_set1_ps (4.1665795894E-2f));
  y = _mm256_fmadd_ps (y, x, _mm256_set1_ps (1.6666665459E-1f));
  y = _mm256_fmadd_ps (y, x, _mm256_set1_ps (5.0000001201E-1f));
  y = _mm256_fmadd_ps (y, z, _mm256_add_ps (x, one));
  n = _mm256_slli_epi32 (_mm256_add_epi32 (_mm256_cvtps_epi32 (fx), _mm256_set1_epi32 (127)), 23);
  return _mm256_mul_ps (y, _mm256_castsi256_ps (n));
}

/* x[i] = e^(x[i] − mx), 8 at a time; below −88.37 (−inf of masked keys included) it is 0 */
__attribute__ ((target ("avx2,fma"))) static int64_t
exp_sub_sum_avx2 (float *x, int64_t n, float mx, float *sum)
{
  const __m256 lo = _mm256_set1_ps (-88.3762626647949f), m = _mm256_set1_ps (mx);
  __m256       acc = _mm256_setzero_ps ();
  float        part[8];
  int64_t      i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 t = _mm256_sub_ps (_mm256_loadu_ps (x + i), m);
      __m256 e = _mm256_andnot_ps (_mm256_cmp_ps (t, lo, _CMP_LT_OQ), exp8 (t));
      _mm256_storeu_ps (x + i, e);
      acc = _mm256_add_ps (acc, e);
    }
  _mm256_storeu_ps (part, acc);
  *sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  return i;
}

/* GELU (tanh), SiLU and quick GELU as x·sigmoid(a·g(x)) = x / (1 + e^(−a·g(x))):
 * 0.5x(1 + tanh u) = x·sigmoid(2u).  Within a few ulp of cpu_act1 (the reference). */
__attribute__ ((target ("avx2,fma"))) static int64_t
act_row_avx2 (float *x, int64_t n, enum op_act act)
{
  const __m256 one = _mm256_set1_ps (1.0f);
  int64_t      i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_loadu_ps (x + i), t;
      if (act == ACT_GELU_TANH)  /* −2u = −2·0.79788456·(x + 0.044715x³) */
        t = _mm256_mul_ps (_mm256_set1_ps (-1.5957691216057308f),
                           _mm256_fmadd_ps (_mm256_mul_ps (_mm256_mul_ps (v, v), v),
                                            _mm256_set1_ps (0.044715f), v));
      else if (act == ACT_SILU)
        t = _mm256_sub_ps (_mm256_setzero_ps (), v);
      else
        t = _mm256_mul_ps (_mm256_set1_ps (-1.702f), v);
      _mm256_storeu_ps (x + i, _mm256_div_ps (v, _mm256_add_ps (one, exp8 (t))));
    }
  return i;
}
#endif

void
cpu_act_row (float *x, int64_t n, enum op_act act)
{
  int64_t i = 0;

  if (act == ACT_NONE)
    return;
#if defined(__x86_64__) && defined(__GNUC__)
  if ((act == ACT_GELU_TANH || act == ACT_SILU || act == ACT_QUICK_GELU) &&
      cpu_has_avx2_fma () && !cpu_gemm_force_generic)
    i = act_row_avx2 (x, n, act);
#endif
  for (; i < n; i++)
    x[i] = cpu_act1 (x[i], act);
}

float
cpu_exp_sub_sum (float *x, int64_t n, float mx)
{
  float   sum = 0.0f;
  int64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma () && !cpu_gemm_force_generic)
    i = exp_sub_sum_avx2 (x, n, mx, &sum);
#endif
  for (; i < n; i++)
    sum += (x[i] = expf (x[i] - mx));  /* exp(−inf) = 0 for masked keys */
  return sum;
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
    j->out[i] = j->in[i];
  cpu_act_row (j->out + begin, end - begin, j->act);
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
