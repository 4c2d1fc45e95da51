/* ops_cuda_mixed.c — test_ops_cuda's mixed-dtype checks (ops.h: every tensor carries its own
 * dtype): the ops the model code runs with fp32 tensors next to act_dtype (bf16 on CUDA) ones
 * — the MMDiT's fp32 residual stream and adaLN vectors (ln_modulate, gated_add), GEMMs writing
 * fp32 (proj / fc2, VAE convs), the fp32-input GEMV of the adaLN linears, CLIP/T5's fp32
 * hidden states (layernorm, rmsnorm, add), the VAE's fp32 residual into groupnorm.
 *
 * fp32 inputs get values bf16 cannot hold and fp32 outputs are held to fp32 tolerances (1e-5
 * for one fma, 1e-4 for fp32 sums in another order; bf16 outputs as test_ops_cuda.c's
 * TOL_NORM / TOL_GEMM), so a kernel that reads an fp32 tensor as bf16, or rounds an fp32
 * output, fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops.h"
#include "ops_cuda_test.h"

/* n values in [lo, hi) at full fp32 precision (rand_vec rounds to bf16) */
static float *
rand_full (size_t n, float lo, float hi, uint64_t seed)
{
  float *v = malloc ((n ? n : 1) * sizeof *v);
  rng_seed (seed);
  for (size_t i = 0; v && i < n; i++)
    v[i] = lo + (hi - lo) * 0.5f * (urand () + 1.f);
  return v;
}

/* tensor of n values in dtype dt (0: the backend's act_dtype); NaN-filled when data is NULL */
static struct tensor *
typed (struct backend *be, enum sd35_dtype dt, const float *data, int64_t n)
{
  struct tensor *t = tensor_new (be, dt ? dt : be->act_dtype, 1, (int64_t[]) { n });
  float         *nan = NULL;

  if (t == NULL)
    return NULL;
  if (data == NULL && (nan = malloc ((size_t) n * sizeof *nan)) != NULL)
    for (int64_t i = 0; i < n; i++)
      nan[i] = NAN;
  if (data || nan)
    be->ops->upload_f32 (be, t, data ? data : nan);
  free (nan);
  return t;
}

enum mix_kind
{
  MX_LN_MOD = 0,  /* ln_modulate: fp32 stream and mod → act out */
  MX_GATED,       /* gated_add: fp32 x += fp32 gate · act y */
  MX_LINEAR_F32,  /* linear: act in → fp32 out (+ fp32 bias) */
  MX_GEMV,        /* linear: fp32 in of ≤ 8 rows → fp32 out (read exactly) */
  MX_LINEAR_IN32, /* linear: fp32 in of many rows → act out (converted to bf16) */
  MX_LN_F32,      /* layernorm + affine: fp32 → fp32 (CLIP) */
  MX_RMS_F32,     /* rmsnorm: fp32 → fp32 (T5) */
  MX_ADD_F32,     /* add: fp32 += fp32 */
  MX_CONV_F32,    /* conv2d 3×3: act in → fp32 out + bias (VAE residual path) */
  MX_GN_F32IN     /* groupnorm + SiLU: fp32 in → act out */
};

static void
check_mix (enum mix_kind kind, int64_t B, int64_t N, int64_t D)
{
  static const char *names[] = { "ln_modulate f32 in/mod -> act", "gated_add f32 x/mod, act y",
                                 "linear act in -> f32 out", "linear gemv f32 in -> f32",
                                 "linear f32 in -> act out", "layernorm f32 -> f32",
                                 "rmsnorm f32 -> f32", "add f32", "conv2d act -> f32",
                                 "groupnorm f32 in -> act" };
  const int64_t   rows = B * N, chunks = 6, K = D, Co = 8;
  const size_t    n = (size_t) rows * D;
  float          *x = rand_full (n, -1.5f, 2.5f, (uint64_t) (n + kind));
  float          *y = rand_vec (n, -1.f, 1.f, (uint64_t) (n * 5 + kind));   /* act values */
  float          *m = rand_full ((size_t) B * chunks * D, -1.f, 1.f, (uint64_t) (D + kind));
  float          *w = rand_vec ((size_t) 9 * Co * D, -0.2f, 0.2f, (uint64_t) (D * 3));
  float          *bv = rand_full ((size_t) (D > Co ? D : Co), -0.5f, 0.5f, (uint64_t) (D + 1));
  struct backend *bes[2] = { gpu, cpu };
  struct tensor  *out[2] = { NULL, NULL };
  double          atol = 0, rtol = 0;
  char            name[128];

  snprintf (name, sizeof name, "mixed %s B%lld N%lld D%lld", names[kind], (long long) B,
            (long long) N, (long long) D);
  for (int k = 0; k < 2; k++)
    {
      struct backend *be = bes[k];
      struct tensor  *t1 = NULL, *t2 = NULL, *t3 = NULL, *tw = NULL, *tb = NULL;
      switch (kind)
        {
        case MX_LN_MOD:
          t1 = typed (be, SD35_F32, x, (int64_t) n);
          t2 = typed (be, SD35_F32, m, B * chunks * D);
          out[k] = typed (be, 0, NULL, (int64_t) n);
          op_ln_modulate (be, out[k], t1, t2, chunks, 3, 4, B, N, D, 1e-6f);
          atol = 1e-3, rtol = 1.6e-2;
          break;
        case MX_GATED:
          out[k] = typed (be, SD35_F32, x, (int64_t) n);
          t1 = typed (be, 0, y, (int64_t) n);
          t2 = typed (be, SD35_F32, m, B * chunks * D);
          op_gated_add (be, out[k], t1, t2, chunks, 2, B, N, D);
          atol = 1e-5, rtol = 1e-5;
          break;
        case MX_LINEAR_F32:
        case MX_GEMV:
        case MX_LINEAR_IN32:
          t1 = kind == MX_LINEAR_F32 ? typed (be, 0, y, rows * K)
                                     : typed (be, SD35_F32, x, rows * K);
          tw = weight (be, w, Co * K, WEIGHT_MATRIX);
          tb = weight (be, bv, Co, WEIGHT_VECTOR);
          out[k] = typed (be, kind == MX_LINEAR_IN32 ? 0 : SD35_F32, NULL, rows * Co);
          op_linear (be, out[k], t1, tw, tb, rows, Co, K,
                     kind == MX_GEMV ? ACT_SILU : ACT_NONE);
          atol = kind == MX_LINEAR_IN32 ? 2e-2 : 1e-4;
          rtol = kind == MX_LINEAR_IN32 ? 1.6e-2 : 1e-4;
          break;
        case MX_LN_F32:
        case MX_RMS_F32:
          t1 = typed (be, SD35_F32, x, (int64_t) n);
          tw = weight (be, bv, D, WEIGHT_VECTOR);
          tb = weight (be, bv, D, WEIGHT_VECTOR);
          out[k] = typed (be, SD35_F32, NULL, (int64_t) n);
          if (kind == MX_LN_F32)
            op_layernorm (be, out[k], t1, tw, tb, rows, D, 1e-5f);
          else
            op_rmsnorm (be, out[k], t1, tw, rows, D, 1e-6f);
          atol = 1e-4, rtol = 1e-4;
          break;
        case MX_ADD_F32:
          out[k] = typed (be, SD35_F32, x, (int64_t) n);
          t3 = typed (be, SD35_F32, x, (int64_t) n);
          op_add (be, out[k], out[k], t3, (int64_t) n);
          atol = 1e-5, rtol = 1e-5;
          break;
        case MX_CONV_F32:   /* [1, D, B, N] image, 3×3 padding 1 → [1, Co, B, N] */
          t1 = typed (be, 0, y, (int64_t) n);
          tw = weight (be, w, Co * D * 9, WEIGHT_MATRIX);
          tb = weight (be, bv, Co, WEIGHT_VECTOR);
          out[k] = typed (be, SD35_F32, NULL, Co * B * N);
          op_conv2d (be, out[k], t1, tw, tb, 1, D, B, N, Co, 3, 3, 1, 1, 1, 1, 1);
          atol = 1e-4, rtol = 1e-4;
          break;
        case MX_GN_F32IN:   /* [1, D, rows] in 4 groups */
          t1 = typed (be, SD35_F32, x, (int64_t) n);
          tw = weight (be, bv, D, WEIGHT_VECTOR);
          tb = weight (be, bv, D, WEIGHT_VECTOR);
          out[k] = typed (be, 0, NULL, (int64_t) n);
          op_groupnorm (be, out[k], t1, tw, tb, 1, D, rows, 4, 1e-6f, 1);
          atol = 1e-3, rtol = 1.6e-2;
          break;
        }
      tensor_free (t1); tensor_free (t2); tensor_free (t3); tensor_free (tw); tensor_free (tb);
    }
  if (out[0] && out[1])
    compare_tensors (name, out[0], out[1], atol, rtol);
  else
    {
      printf ("FAIL %-44s tensor allocation failed\n", name);
      checks++;
      failures++;
    }
  tensor_free (out[0]);
  tensor_free (out[1]);
  free (x); free (y); free (m); free (w); free (bv);
}

void
check_mixed (int big)
{
  /* aligned D (fast templated paths) and odd D (generic kernels) */
  for (int64_t D = 64; D > 0; D = D == 64 ? 5 : 0)
    {
      check_mix (MX_LN_MOD, 2, 3, D);
      check_mix (MX_GATED, 2, 3, D);
      check_mix (MX_LN_F32, 1, 7, D);
      check_mix (MX_RMS_F32, 1, 7, D);
      check_mix (MX_ADD_F32, 1, 7, D);
      check_mix (MX_GN_F32IN, 1, 6, D == 5 ? 8 : D);
    }
  check_mix (MX_LINEAR_F32, 1, 33, 64);
  check_mix (MX_GEMV, 2, 1, 300);
  check_mix (MX_GEMV, 1, 8, 64);
  check_mix (MX_LINEAR_IN32, 1, 33, 64);
  check_mix (MX_CONV_F32, 1, 6, 16);
  if (big)
    {
      check_mix (MX_LN_MOD, 2, 4096, 2432);
      check_mix (MX_GATED, 2, 4096, 2432);
      check_mix (MX_GEMV, 2, 1, 2432);
    }
}
