/* test_ops_cpu.c — every op of the CPU backend against a naive formula written here, on small
 * odd shapes (3×5, 7 tokens, a K that spans two GEMM blocks, ...), plus the weight storage
 * choices (F16/BF16 aliased, FP8 → BF16), memory accounting and sticky errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "error.h"
#include "ops.h"
#include "testutil.h"

#define TOL 1e-5

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float
frand (void)
{
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float) ((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;  /* [-1, 1) */
}

static float *
rand_vec (size_t n)
{
  float *v = malloc (n * sizeof (float));
  for (size_t i = 0; i < n; i++)
    v[i] = frand ();
  return v;
}

static struct tensor *
up (struct backend *be, const float *x, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
  int64_t shape[4] = { d0, d1, d2, d3 };
  return tensor_from_f32 (be, x, ndim, shape);
}

static float *
down (const struct tensor *t)
{
  float *o = malloc (t->numel * sizeof (float));
  tensor_to_f32 (t, o);
  return o;
}

static float
act_ref (float x, enum op_act act)
{
  double d = x;
  switch (act)
    {
    case ACT_GELU_TANH: return (float) (0.5 * d * (1 + tanh (sqrt (2 / M_PI) * (d + 0.044715 * d * d * d))));
    case ACT_GELU_ERF:  return (float) (0.5 * d * (1 + erf (d / sqrt (2.0))));
    case ACT_QUICK_GELU: return (float) (d / (1 + exp (-1.702 * d)));
    case ACT_SILU:      return (float) (d / (1 + exp (-d)));
    default:            return x;
    }
}

/* --- linear -------------------------------------------------------------------------------- */

static void
check_linear (struct backend *be, int64_t M, int64_t N, int64_t K, enum sd35_dtype wdt,
              int has_bias, enum op_act act)
{
  float   *x = rand_vec ((size_t) (M * K)), *w = rand_vec ((size_t) (N * K));
  float   *b = rand_vec ((size_t) N), *ref = malloc ((size_t) (M * N) * sizeof (float));
  void    *wfile = malloc ((size_t) (N * K) * 4);
  char     what[96];
  struct tensor wt = { 0 }, bt = { 0 };

  /* the weight as a file would hold it; the reference uses the rounded values */
  for (int64_t i = 0; i < N * K; i++)
    {
      if (wdt == SD35_F16)
        {
          ((uint16_t *) wfile)[i] = sd35_f32_to_f16 (w[i]);
          w[i] = sd35_f16_to_f32 (((uint16_t *) wfile)[i]);
        }
      else if (wdt == SD35_BF16)
        {
          ((uint16_t *) wfile)[i] = sd35_f32_to_bf16 (w[i]);
          w[i] = sd35_bf16_to_f32 (((uint16_t *) wfile)[i]);
        }
      else
        ((float *) wfile)[i] = w[i];
    }
  wt.ndim = 2, wt.shape[0] = N, wt.shape[1] = K;
  test_check (be->ops->weight_from_host (be, &wt, wfile, wdt, WEIGHT_MATRIX) == SD35_OK,
              "weight_from_host %s", sd35_dtype_name (wdt));
  test_check (wt.dtype == wdt && wt.data == wfile, "a %s matrix is aliased, not converted",
              sd35_dtype_name (wdt));
  bt.ndim = 1, bt.shape[0] = N;
  be->ops->weight_from_host (be, &bt, b, SD35_F32, WEIGHT_VECTOR);

  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++)
      {
        double acc = has_bias ? b[n] : 0.0;
        for (int64_t k = 0; k < K; k++)
          acc += (double) x[m * K + k] * w[n * K + k];
        ref[m * N + n] = act_ref ((float) acc, act);
      }
  struct tensor *xt = up (be, x, 2, M, K, 0, 0), *ot = tensor_new_act2 (be, M, N);
  op_linear (be, ot, xt, &wt, has_bias ? &bt : NULL, M, N, K, act);
  float *got = down (ot);
  snprintf (what, sizeof what, "linear %lldx%lldx%lld %s%s act%d", (long long) M, (long long) N,
            (long long) K, sd35_dtype_name (wdt), has_bias ? " +b" : "", (int) act);
  test_close (what, got, ref, (size_t) (M * N), TOL);
  tensor_free (xt);
  tensor_free (ot);
  be->ops->release (be, &wt);
  be->ops->release (be, &bt);
  free (x), free (w), free (b), free (ref), free (wfile), free (got);
}

static void
test_fp8_weight (struct backend *be)
{
  uint8_t       src[15];
  float         ref[15], got[15];
  struct tensor t = { 0 };

  for (int i = 0; i < 15; i++)
    {
      src[i] = (uint8_t) (i * 17 + 3);
      ref[i] = sd35_f8e4m3_to_f32 (src[i]);
    }
  t.ndim = 2, t.shape[0] = 3, t.shape[1] = 5;
  be->ops->weight_from_host (be, &t, src, SD35_F8_E4M3, WEIGHT_MATRIX);
  test_check (t.dtype == SD35_BF16, "an FP8 matrix is stored as BF16");
  tensor_to_f32 (&t, got);
  test_close ("fp8 e4m3 → bf16 is exact", got, ref, 15, 0.0);
  be->ops->release (be, &t);
}

/* Every finite f16 (62·1024 = 63488 of them) as a weight [62, 1024] times the identity:
 * the GEMM's f16 panel conversion must be exact, subnormals and −0 included. */
static void
test_f16_all_values (struct backend *be)
{
  enum { N = 62, K = 1024 };
  uint16_t     *w = malloc (N * K * sizeof (uint16_t));
  float        *eye = calloc ((size_t) K * K, sizeof (float));
  float        *ref = malloc ((size_t) K * N * sizeof (float)), *got;
  struct tensor wt = { 0 };
  int           n = 0;

  for (uint32_t h = 0; h < 0x10000u; h++)
    if (((h >> 10) & 0x1f) != 0x1f)
      w[n++] = (uint16_t) h;
  for (int k = 0; k < K; k++)
    eye[k * K + k] = 1.0f;
  for (int m = 0; m < K; m++)
    for (int j = 0; j < N; j++)
      ref[m * N + j] = sd35_f16_to_f32 (w[j * K + m]);
  wt.ndim = 2, wt.shape[0] = N, wt.shape[1] = K;
  be->ops->weight_from_host (be, &wt, w, SD35_F16, WEIGHT_MATRIX);
  struct tensor *xt = up (be, eye, 2, K, K, 0, 0), *ot = tensor_new_act2 (be, K, N);
  op_linear (be, ot, xt, &wt, NULL, K, N, K, ACT_NONE);
  test_check (n == N * K, "%d finite f16 values", n);
  test_close ("linear: every finite f16 weight converts exactly", got = down (ot), ref,
              (size_t) K * N, 0.0);
  be->ops->release (be, &wt);
  tensor_free (xt), tensor_free (ot);
  free (w), free (eye), free (ref), free (got);
}

/* --- attention ------------------------------------------------------------------------------ */

static void
check_attention (struct backend *be, int64_t B, int64_t L, int64_t H, int64_t dh, int causal,
                 int with_bias)
{
  size_t n = (size_t) (B * L * 3 * H * dh);
  float *qkv = rand_vec (n), *bias = rand_vec ((size_t) (H * L * L));
  float *ref = calloc ((size_t) (B * L * H * dh), sizeof (float));
  float  scale = 0.37f;
  char   what[96];

  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < L; i++)
        {
          double s[256], mx = -1e30, sum = 0;
          for (int64_t j = 0; j < L; j++)
            {
              double d = 0;
              for (int64_t e = 0; e < dh; e++)
                d += (double) qkv[(((b * L + i) * 3 + 0) * H + h) * dh + e] *
                     qkv[(((b * L + j) * 3 + 1) * H + h) * dh + e];
              s[j] = scale * d + (with_bias ? bias[(h * L + i) * L + j] : 0.0);
              if (causal && j > i)
                s[j] = -INFINITY;
              mx = s[j] > mx ? s[j] : mx;
            }
          for (int64_t j = 0; j < L; j++)
            sum += (s[j] = exp (s[j] - mx));
          for (int64_t e = 0; e < dh; e++)
            {
              double o = 0;
              for (int64_t j = 0; j < L; j++)
                o += s[j] / sum * qkv[(((b * L + j) * 3 + 2) * H + h) * dh + e];
              ref[((b * L + i) * H + h) * dh + e] = (float) o;
            }
        }
  struct tensor *qt = up (be, qkv, 4, B * L, 3, H, dh), *ot = tensor_new_act3 (be, B, L, H * dh);
  struct tensor *bt = with_bias ? up (be, bias, 3, H, L, L, 0) : NULL;
  op_attention (be, ot, qt, bt, B, L, H, dh, scale, causal);
  float *got = down (ot);
  snprintf (what, sizeof what, "attention B%lld L%lld H%lld dh%lld%s%s", (long long) B,
            (long long) L, (long long) H, (long long) dh, causal ? " causal" : "",
            with_bias ? " bias" : "");
  test_close (what, got, ref, (size_t) (B * L * H * dh), TOL);
  tensor_free (qt), tensor_free (ot), tensor_free (bt);
  free (qkv), free (bias), free (ref), free (got);
}

/* --- norms ---------------------------------------------------------------------------------- */

static void
ln_ref (float *o, const float *x, const float *w, const float *b, int64_t D, double eps, int rms)
{
  double mean = 0, var = 0;
  for (int64_t i = 0; i < D; i++)
    mean += x[i];
  mean = rms ? 0.0 : mean / D;
  for (int64_t i = 0; i < D; i++)
    var += (x[i] - mean) * (x[i] - mean);
  var /= D;
  for (int64_t i = 0; i < D; i++)
    o[i] = (float) ((x[i] - mean) / sqrt (var + eps) * (w ? w[i] : 1.0) + (b ? b[i] : 0.0));
}

static void
test_norms (struct backend *be)
{
  enum { R = 3, D = 13, H = 2, DH = 5, B = 2, N = 3, C = 6, HW = 5, G = 3 };
  float *x = rand_vec (R * D), *w = rand_vec (D), *b = rand_vec (D), ref[R * D];
  struct tensor *xt = up (be, x, 2, R, D, 0, 0), *wt = up (be, w, 1, D, 0, 0, 0);
  struct tensor *bt = up (be, b, 1, D, 0, 0, 0), *ot = tensor_new_act2 (be, R, D);
  float *got;

  for (int r = 0; r < R; r++)
    ln_ref (ref + r * D, x + r * D, w, b, D, 1e-5, 0);
  op_layernorm (be, ot, xt, wt, bt, R, D, 1e-5f);
  test_close ("layernorm affine", got = down (ot), ref, R * D, TOL), free (got);
  for (int r = 0; r < R; r++)
    ln_ref (ref + r * D, x + r * D, NULL, NULL, D, 1e-6, 0);
  op_layernorm (be, ot, xt, NULL, NULL, R, D, 1e-6f);
  test_close ("layernorm no affine", got = down (ot), ref, R * D, TOL), free (got);
  for (int r = 0; r < R; r++)
    ln_ref (ref + r * D, x + r * D, w, NULL, D, 1e-6, 1);
  op_rmsnorm (be, ot, xt, wt, R, D, 1e-6f);
  test_close ("rmsnorm", got = down (ot), ref, R * D, TOL), free (got);
  op_copy (be, ot, xt, R * D);
  op_rmsnorm (be, ot, ot, wt, R, D, 1e-6f);
  test_close ("rmsnorm in place", got = down (ot), ref, R * D, TOL), free (got);

  /* qk_rmsnorm on [R, 3, H, DH] */
  float *qkv = rand_vec (R * 3 * H * DH), qref[R * 3 * H * DH];
  memcpy (qref, qkv, sizeof qref);
  for (int r = 0; r < R; r++)
    for (int h = 0; h < H; h++)
      {
        float *q = qref + (r * 3 + 0) * H * DH + h * DH, *k = qref + (r * 3 + 1) * H * DH + h * DH;
        ln_ref (q, q, w, NULL, DH, 1e-6, 1);
        ln_ref (k, k, b, NULL, DH, 1e-6, 1);
      }
  struct tensor *qt = up (be, qkv, 4, R, 3, H, DH);
  struct tensor *wq = up (be, w, 1, DH, 0, 0, 0), *wk = up (be, b, 1, DH, 0, 0, 0);
  op_qk_rmsnorm (be, qt, wq, wk, R, H, DH, 1e-6f);
  test_close ("qk_rmsnorm (v untouched)", got = down (qt), qref, R * 3 * H * DH, TOL), free (got);

  /* ln_modulate / gated_add with mod [B, 4·D], shift chunk 2, scale chunk 0, gate chunk 3 */
  float *xm = rand_vec (B * N * D), *mod = rand_vec (B * 4 * D), mref[B * N * D];
  for (int bb = 0; bb < B; bb++)
    for (int n = 0; n < N; n++)
      {
        float *o = mref + (bb * N + n) * D;
        ln_ref (o, xm + (bb * N + n) * D, NULL, NULL, D, 1e-6, 0);
        for (int d = 0; d < D; d++)
          o[d] = o[d] * (1 + mod[(bb * 4 + 0) * D + d]) + mod[(bb * 4 + 2) * D + d];
      }
  struct tensor *xmt = up (be, xm, 3, B, N, D, 0), *mt = up (be, mod, 2, B, 4 * D, 0, 0);
  struct tensor *omt = tensor_new_act3 (be, B, N, D);
  op_ln_modulate (be, omt, xmt, mt, 4, 2, 0, B, N, D, 1e-6f);
  test_close ("ln_modulate", got = down (omt), mref, B * N * D, TOL), free (got);
  float gref[B * N * D];
  for (int bb = 0; bb < B; bb++)
    for (int i = 0; i < N * D; i++)
      gref[bb * N * D + i] = xm[bb * N * D + i] + mod[(bb * 4 + 3) * D + i % D] * mref[bb * N * D + i];
  op_gated_add (be, xmt, omt, mt, 4, 3, B, N, D);
  test_close ("gated_add", got = down (xmt), gref, B * N * D, TOL), free (got);
  for (int i = 0; i < B * N * D; i++)
    gref[i] += mref[i];
  op_gated_add (be, xmt, omt, NULL, 4, -1, B, N, D);
  test_close ("gated_add plain residual", got = down (xmt), gref, B * N * D, TOL), free (got);

  /* groupnorm [B, C, HW], G groups, ± SiLU */
  float *xg = rand_vec (B * C * HW), *wg = rand_vec (C), *bg = rand_vec (C), gn[B * C * HW];
  struct tensor *xgt = up (be, xg, 3, B, C, HW, 0), *ogt = tensor_new_act3 (be, B, C, HW);
  struct tensor *wgt = up (be, wg, 1, C, 0, 0, 0), *bgt = up (be, bg, 1, C, 0, 0, 0);
  for (int silu = 0; silu < 2; silu++)
    {
      for (int bb = 0; bb < B; bb++)
        for (int g = 0; g < G; g++)
          {
            int   cg = C / G;
            float *o = gn + (bb * C + g * cg) * HW;
            ln_ref (o, xg + (bb * C + g * cg) * HW, NULL, NULL, cg * HW, 1e-6, 0);
            for (int c = 0; c < cg; c++)
              for (int i = 0; i < HW; i++)
                {
                  float y = o[c * HW + i] * wg[g * cg + c] + bg[g * cg + c];
                  o[c * HW + i] = silu ? act_ref (y, ACT_SILU) : y;
                }
          }
      op_groupnorm (be, ogt, xgt, wgt, bgt, B, C, HW, G, 1e-6f, silu);
      test_close (silu ? "groupnorm + silu" : "groupnorm", got = down (ogt), gn, B * C * HW, TOL);
      free (got);
    }
  tensor_free (xt), tensor_free (wt), tensor_free (bt), tensor_free (ot), tensor_free (qt);
  tensor_free (wq), tensor_free (wk), tensor_free (xmt), tensor_free (mt), tensor_free (omt);
  tensor_free (xgt), tensor_free (ogt), tensor_free (wgt), tensor_free (bgt);
  free (x), free (w), free (b), free (qkv), free (xm), free (mod), free (xg), free (wg), free (bg);
}

/* --- elementwise and layout ------------------------------------------------------------------ */

static void
test_elementwise (struct backend *be)
{
  enum { B = 3, N = 5 };
  float *a = rand_vec (B * N), *b = rand_vec (B * N), ref[B * N], *got;
  struct tensor *at = up (be, a, 2, B, N, 0, 0), *bt = up (be, b, 2, B, N, 0, 0);
  struct tensor *ot = tensor_new_act2 (be, B, N), *vt = up (be, b, 1, N, 0, 0, 0);
  static const char *names[] = { "none", "gelu tanh", "gelu erf", "quick_gelu", "silu" };

  for (int act = ACT_NONE; act <= ACT_SILU; act++)
    {
      char what[64];
      for (int i = 0; i < B * N; i++)
        ref[i] = act_ref (4 * a[i], (enum op_act) act);
      float a4[B * N];
      for (int i = 0; i < B * N; i++)
        a4[i] = 4 * a[i];
      be->ops->upload_f32 (be, ot, a4);
      op_activation (be, ot, ot, B * N, (enum op_act) act);
      snprintf (what, sizeof what, "activation %s (in place)", names[act]);
      test_close (what, got = down (ot), ref, B * N, TOL), free (got);
    }
  for (int i = 0; i < B * N; i++)
    ref[i] = a[i] + b[i];
  op_add (be, ot, at, bt, B * N);
  test_close ("add", got = down (ot), ref, B * N, TOL), free (got);
  for (int i = 0; i < B * N; i++)
    ref[i] = a[i] * b[i];
  op_mul (be, ot, at, bt, B * N);
  test_close ("mul", got = down (ot), ref, B * N, TOL), free (got);
  for (int i = 0; i < B * N; i++)
    ref[i] = a[i] + b[i % N];
  op_add_broadcast (be, ot, at, vt, B, N);
  test_close ("add_broadcast", got = down (ot), ref, B * N, TOL), free (got);
  op_copy (be, ot, bt, B * N);
  test_close ("copy", got = down (ot), b, B * N, 0.0), free (got);
  tensor_free (at), tensor_free (bt), tensor_free (ot), tensor_free (vt);
  free (a), free (b);
}

static void
test_layout (struct backend *be)
{
  enum { B = 2, L1 = 3, L2 = 4, C = 5, V = 7 };
  float *a = rand_vec (B * L1 * C), *b = rand_vec (B * L2 * C), ref[B * (L1 + L2) * C], *got;
  struct tensor *at = up (be, a, 3, B, L1, C, 0), *bt = up (be, b, 3, B, L2, C, 0);
  struct tensor *ct = tensor_new_act3 (be, B, L1 + L2, C);
  struct tensor *a2 = tensor_new_act3 (be, B, L1, C), *b2 = tensor_new_act3 (be, B, L2, C);

  for (int bb = 0; bb < B; bb++)
    {
      memcpy (ref + bb * (L1 + L2) * C, a + bb * L1 * C, L1 * C * sizeof (float));
      memcpy (ref + (bb * (L1 + L2) + L1) * C, b + bb * L2 * C, L2 * C * sizeof (float));
    }
  op_concat_rows (be, ct, at, bt, B, L1, L2, C);
  test_close ("concat_rows", got = down (ct), ref, B * (L1 + L2) * C, 0.0), free (got);
  op_split_rows (be, a2, b2, ct, B, L1, L2, C);
  test_close ("split_rows a", got = down (a2), a, B * L1 * C, 0.0), free (got);
  test_close ("split_rows b", got = down (b2), b, B * L2 * C, 0.0), free (got);
  op_split_rows (be, NULL, b2, ct, B, L1, L2, C);
  test_check (!backend_failed (be), "split_rows with a NULL part");

  /* transpose [B, C=5, N=7] → [B, 7, 5] */
  float tr[B * L2 * C];
  struct tensor *tt = tensor_new_act3 (be, B, C, L2);
  for (int bb = 0; bb < B; bb++)
    for (int c = 0; c < C; c++)
      for (int n = 0; n < L2; n++)
        tr[(bb * C + c) * L2 + n] = b[(bb * L2 + n) * C + c];
  op_transpose (be, tt, bt, B, L2, C);  /* in [B, L2, C] viewed as [B, "C"=L2, "N"=C] */
  test_close ("transpose", got = down (tt), tr, B * L2 * C, 0.0), free (got);

  /* embedding from an F32 and a BF16 table */
  float  *table = rand_vec (V * C), eref[4 * C];
  uint16_t tb16[V * C];
  int32_t ids[4] = { 6, 0, 3, 6 };
  struct tensor t32 = { 0 }, t16 = { 0 };
  struct tensor *et = tensor_new_act2 (be, 4, C);
  t32.ndim = t16.ndim = 2, t32.shape[0] = t16.shape[0] = V, t32.shape[1] = t16.shape[1] = C;
  for (int i = 0; i < V * C; i++)
    {
      tb16[i] = sd35_f32_to_bf16 (table[i]);
      table[i] = sd35_bf16_to_f32 (tb16[i]);
    }
  for (int i = 0; i < 4; i++)
    memcpy (eref + i * C, table + ids[i] * C, C * sizeof (float));
  be->ops->weight_from_host (be, &t32, table, SD35_F32, WEIGHT_MATRIX);
  be->ops->weight_from_host (be, &t16, tb16, SD35_BF16, WEIGHT_MATRIX);
  op_embedding (be, et, &t32, ids, 4, C);
  test_close ("embedding f32", got = down (et), eref, 4 * C, 0.0), free (got);
  op_embedding (be, et, &t16, ids, 4, C);
  test_close ("embedding bf16", got = down (et), eref, 4 * C, 0.0), free (got);

  tensor_free (at), tensor_free (bt), tensor_free (ct), tensor_free (a2), tensor_free (b2);
  tensor_free (tt), tensor_free (et);
  free (a), free (b), free (table);
}

/* --- images ----------------------------------------------------------------------------------- */

static void
check_conv (struct backend *be, int64_t B, int64_t Ci, int64_t H, int64_t W, int64_t Co,
            int64_t kh, int64_t kw, int64_t s, int64_t pt, int64_t pl, int64_t pb, int64_t pr,
            enum sd35_dtype wdt)
{
  int64_t Ho = (H + pt + pb - kh) / s + 1, Wo = (W + pl + pr - kw) / s + 1;
  size_t  nw = (size_t) (Co * Ci * kh * kw);
  float  *x = rand_vec ((size_t) (B * Ci * H * W)), *w = rand_vec (nw), *bias = rand_vec ((size_t) Co);
  float  *ref = malloc ((size_t) (B * Co * Ho * Wo) * sizeof (float)), *got;
  uint16_t *w16 = malloc (nw * 2);
  struct tensor wt = { 0 };
  char   what[128];

  if (wdt == SD35_BF16)
    for (size_t i = 0; i < nw; i++)
      w[i] = sd35_bf16_to_f32 (w16[i] = sd35_f32_to_bf16 (w[i]));
  for (int64_t b = 0; b < B; b++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++)
          {
            double acc = bias[co];
            for (int64_t ci = 0; ci < Ci; ci++)
              for (int64_t ky = 0; ky < kh; ky++)
                for (int64_t kx = 0; kx < kw; kx++)
                  {
                    int64_t iy = oy * s - pt + ky, ix = ox * s - pl + kx;
                    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                      acc += (double) w[((co * Ci + ci) * kh + ky) * kw + kx] *
                             x[((b * Ci + ci) * H + iy) * W + ix];
                  }
            ref[((b * Co + co) * Ho + oy) * Wo + ox] = (float) acc;
          }
  wt.ndim = 4, wt.shape[0] = Co, wt.shape[1] = Ci, wt.shape[2] = kh, wt.shape[3] = kw;
  be->ops->weight_from_host (be, &wt, wdt == SD35_BF16 ? (void *) w16 : (void *) w, wdt,
                             WEIGHT_MATRIX);
  struct tensor *xt = up (be, x, 4, B, Ci, H, W), *bt = up (be, bias, 1, Co, 0, 0, 0);
  struct tensor *ot = tensor_new_act4 (be, B, Co, Ho, Wo);
  op_conv2d (be, ot, xt, &wt, bt, B, Ci, H, W, Co, kh, kw, s, pt, pl, pb, pr);
  snprintf (what, sizeof what, "conv2d %lldx%lld s%lld pad(%lld,%lld,%lld,%lld) %s",
            (long long) kh, (long long) kw, (long long) s, (long long) pt, (long long) pl,
            (long long) pb, (long long) pr, sd35_dtype_name (wdt));
  test_close (what, got = down (ot), ref, (size_t) (B * Co * Ho * Wo), TOL);
  be->ops->release (be, &wt);
  tensor_free (xt), tensor_free (bt), tensor_free (ot);
  free (x), free (w), free (bias), free (ref), free (got), free (w16);
}

static void
test_images (struct backend *be)
{
  enum { B = 2, C = 3, H = 4, W = 6, P = 2 };
  float *x = rand_vec (B * C * H * W), ref[B * C * 4 * H * W], *got;
  struct tensor *xt = up (be, x, 4, B, C, H, W), *ut = tensor_new_act4 (be, B, C, 2 * H, 2 * W);

  for (int bc = 0; bc < B * C; bc++)
    for (int y = 0; y < 2 * H; y++)
      for (int xx = 0; xx < 2 * W; xx++)
        ref[(bc * 2 * H + y) * 2 * W + xx] = x[(bc * H + y / 2) * W + xx / 2];
  op_upsample2x (be, ut, xt, B, C, H, W);
  test_close ("upsample2x", got = down (ut), ref, B * C * 4 * H * W, 0.0), free (got);

  /* patchify: token r·(W/p)+c, vector (ci, pr, pc) */
  int T = (H / P) * (W / P);
  struct tensor *pt = tensor_new_act3 (be, B, T, C * P * P), *rt = tensor_new_act4 (be, B, C, H, W);
  for (int b = 0; b < B; b++)
    for (int r = 0; r < H / P; r++)
      for (int c = 0; c < W / P; c++)
        for (int ci = 0; ci < C; ci++)
          for (int pr = 0; pr < P; pr++)
            for (int pc = 0; pc < P; pc++)
              ref[((b * T + r * (W / P) + c) * C + ci) * P * P + pr * P + pc] =
                x[((b * C + ci) * H + r * P + pr) * W + c * P + pc];
  op_patchify (be, pt, xt, B, C, H, W, P);
  test_close ("patchify", got = down (pt), ref, B * C * H * W, 0.0), free (got);
  /* unpatchify reads (pr, pc, ci): feed it tokens in that order and expect x back */
  float tok[B * C * H * W];
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int ci = 0; ci < C; ci++)
        for (int q = 0; q < P * P; q++)
          tok[(b * T + t) * C * P * P + q * C + ci] = ref[(b * T + t) * C * P * P + ci * P * P + q];
  be->ops->upload_f32 (be, pt, tok);
  op_unpatchify (be, rt, pt, B, C, H, W, P);
  test_close ("unpatchify ∘ patchify = id", got = down (rt), x, B * C * H * W, 0.0), free (got);
  tensor_free (xt), tensor_free (ut), tensor_free (pt), tensor_free (rt);
  free (x);

  check_conv (be, 2, 3, 7, 6, 5, 3, 3, 2, 1, 0, 2, 1, SD35_F32);  /* asymmetric pad, stride 2 */
  check_conv (be, 1, 4, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, SD35_BF16);
  check_conv (be, 1, 6, 3, 5, 7, 1, 1, 1, 0, 0, 0, 0, SD35_F32);  /* 1×1 */
  check_conv (be, 1, 17, 9, 11, 20, 3, 2, 1, 0, 1, 0, 0, SD35_F32);
  /* pixels in chunks of 7 (not dividing 5·6 = 30 outputs): chunk seams must not show */
  cpu_conv_chunk_floats = 7 * 4 * 3 * 3;
  check_conv (be, 2, 4, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, SD35_F32);
  cpu_conv_chunk_floats = 4 << 20;
}

/* --- memory, errors, backend choice --------------------------------------------------------- */

static void
test_memory_and_errors (struct backend *be)
{
  size_t         before = be->bytes_in_use;
  struct tensor *t = tensor_new_act3 (be, 3, 5, 7);
  struct sd35_error err = { 0 };

  test_check (t != NULL && be->bytes_in_use == before + 3 * 5 * 7 * 4, "bytes_in_use counts a "
              "new tensor (%zu → %zu)", before, be->bytes_in_use);
  test_check (be->peak_bytes >= be->bytes_in_use, "peak ≥ in use");
  tensor_free (t);
  test_check (be->bytes_in_use == before, "bytes_in_use back to %zu after free", before);

  {
    struct backend *b2 = NULL;
    struct tensor   wi = { 0 };
    int64_t         ids[6] = { 0 };
    float           w[9] = { 0 };
    backend_cpu_new (1, &b2, &err);
    wi.ndim = 2, wi.shape[0] = 2, wi.shape[1] = 3;
    test_check (b2->ops->weight_from_host (b2, &wi, ids, SD35_I64, WEIGHT_MATRIX) ==
                SD35_ERR_SHAPE, "an I64 weight is refused: %s", b2->err.message);
    sd35_error_clear (&b2->err);
    struct tensor *x = tensor_new_act2 (b2, 3, 3), *wt = up (b2, w, 2, 3, 3, 0, 0);
    op_linear (b2, x, x, wt, NULL, 3, 3, 3, ACT_NONE);
    test_check (backend_failed (b2), "linear in place is an error: %s", b2->err.message);
    tensor_free (x), tensor_free (wt);
    backend_free (b2);
    sd35_error_clear (&err);
  }

  int64_t huge[4] = { INT64_MAX / 2, 4, 4, 4 };
  test_check (tensor_new (be, SD35_F32, 4, huge) == NULL && backend_failed (be),
              "an overflowing shape gives NULL and a sticky error");
  test_check (backend_check (be, &err) == SD35_ERR_OOM && err.message[0] != '\0',
              "backend_check copies the error: %s", err.message);
  test_check (tensor_new_act1 (be, 3) == NULL, "after an error, tensor_new does nothing");
}

/* ops.h's wrappers: the debug-build size check names the op and the tensor; after a failure
 * upload/download/synchronize do nothing; the policy questions have answers on the CPU. */
static void
test_wrappers_and_policy (void)
{
  struct backend   *b = NULL;
  struct sd35_error err = { 0 };
  float             host[12] = { 1, 2, 3 }, back[12];

  if (backend_cpu_new (1, &b, &err) != SD35_OK)
    {
      test_check (0, "backend_cpu_new: %s", err.message);
      return;
    }
  test_check (!b->device_memory, "the CPU backend has no device memory of its own");
  test_check (backend_free_bytes (b) > 0 && backend_work_budget (b) > 0,
              "the CPU backend knows its free memory (%zu) and work budget (%zu)",
              backend_free_bytes (b), backend_work_budget (b));
#ifndef NDEBUG
  {
    struct tensor *x = tensor_new_act2 (b, 2, 3), *w = tensor_new_act2 (b, 4, 3);
    struct tensor *out = tensor_new_act2 (b, 2, 3);   /* 6 elements; M·N = 8 */
    op_linear (b, out, x, w, NULL, 2, 4, 3, ACT_NONE);
    test_check (b->err.status == SD35_ERR_INTERNAL && strstr (b->err.message, "op linear")
                && strstr (b->err.message, "out tensor holds 6 elements, the sizes need 8"),
                "a linear with a too-small output is caught before it runs: %s",
                b->err.message);
    sd35_error_clear (&b->err);
    op_conv2d (b, out, x, w, NULL, 1, 1, 2, 3, 1, 3, 3, 1, 0, 0, 0, 0);
    test_check (b->err.status == SD35_ERR_INTERNAL && strstr (b->err.message, "op conv2d"),
                "a conv2d whose kernel does not fit is caught: %s", b->err.message);
    sd35_error_clear (&b->err);
    op_upload_f32 (b, out, NULL);
    test_check (b->err.status == SD35_ERR_INTERNAL && strstr (b->err.message, "upload_f32"),
                "an upload from NULL is caught: %s", b->err.message);
    sd35_error_clear (&b->err);
    op_upload_f32 (b, out, host);
    op_download_f32 (b, back, out);
    op_synchronize (b);
    test_check (!backend_failed (b) && back[2] == 3.0f, "upload/download wrappers round-trip");
    sd35_set_error (&b->err, SD35_ERR_CUDA, "an earlier failure");
    back[2] = -1.0f;
    op_download_f32 (b, back, out);
    test_check (back[2] == -1.0f && strcmp (b->err.message, "an earlier failure") == 0,
                "after a failure download does nothing and the first error stays");
    tensor_free (x), tensor_free (w), tensor_free (out);
  }
#else
  printf ("# NDEBUG build: OP_CALL's size check is compiled out, not tested\n");
#endif
  backend_free (b);
}

int
main (void)
{
  struct backend   *be = NULL, *be1 = NULL, *be3 = NULL, *auto_be = NULL;
  struct sd35_error err = { 0 };

  /* all cores, 1 thread, and 3 threads (uneven splits even on a 2-core machine) */
  if (backend_cpu_new (0, &be, &err) != SD35_OK || backend_cpu_new (1, &be1, &err) != SD35_OK ||
      backend_cpu_new (3, &be3, &err) != SD35_OK)
    {
      printf ("FAIL backend_cpu_new: %s\n", err.message);
      return 1;
    }
  /* pass 3: the generic C GEMM kernels (what a CPU without AVX2 runs), all threads */
  for (int pass = 0; pass < 4; pass++)
    {
      struct backend *b = pass == 0 || pass == 3 ? be : pass == 1 ? be1 : be3;
      cpu_gemm_force_generic = pass == 3;
      printf ("# %s threads%s\n", pass == 0 || pass == 3 ? "all" : pass == 1 ? "1" : "3",
              pass == 3 ? ", generic kernels" : "");
      check_linear (b, 3, 5, 7, SD35_F32, 0, ACT_NONE);
      check_linear (b, 5, 37, 300, SD35_F32, 1, ACT_GELU_TANH);  /* K over one block */
      check_linear (b, 5, 37, 300, SD35_F16, 1, ACT_NONE);
      check_linear (b, 7, 19, 33, SD35_BF16, 1, ACT_SILU);
      check_linear (b, 67, 200, 64, SD35_BF16, 1, ACT_GELU_ERF);  /* threads over columns */
      check_linear (b, 300, 9, 40, SD35_F32, 1, ACT_QUICK_GELU);  /* threads over rows */
      check_linear (b, 1, 1, 1, SD35_F32, 1, ACT_NONE);
      /* whole 16-column panels and K blocks of 8 (the vector widening), K over two blocks */
      check_linear (b, 13, 48, 520, SD35_F16, 1, ACT_NONE);
      check_linear (b, 6, 32, 264, SD35_BF16, 0, ACT_GELU_TANH);
      check_linear (b, 2, 64, 256, SD35_F32, 1, ACT_SILU);
      check_attention (b, 2, 7, 3, 5, 0, 0);
      check_attention (b, 2, 7, 3, 5, 1, 0);
      check_attention (b, 1, 9, 2, 11, 0, 1);
      check_attention (b, 1, 40, 4, 16, 1, 1);
      check_attention (b, 1, 150, 1, 20, 1, 1);  /* one head: threads split its rows */
      check_attention (b, 1, 131, 1, 33, 0, 0);
    }
  cpu_gemm_force_generic = 0;
  test_fp8_weight (be);
  test_f16_all_values (be);
  cpu_gemm_force_generic = 1;  /* the generic f16 widening too */
  test_f16_all_values (be);
  cpu_gemm_force_generic = 0;
  test_norms (be);
  test_elementwise (be);
  test_layout (be);
  test_images (be);
  test_images (be1);
  test_images (be3);
  test_memory_and_errors (be);
  test_wrappers_and_policy ();

  /* AUTO always yields a backend (CPU when CUDA is absent or unusable) */
  test_check (backend_new (SD35_BACKEND_AUTO, 1, &auto_be, &err) == SD35_OK && auto_be != NULL,
              "backend_new AUTO: %s", err.message);
  if (auto_be != NULL)
    printf ("# AUTO chose %s\n", auto_be->name);
  backend_free (auto_be);
  backend_free (be);
  backend_free (be1);
  backend_free (be3);
  return test_exit ();
}
