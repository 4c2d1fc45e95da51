/* test_ops_cuda.c — every op of engine/backend/ops.h on the CUDA backend against the CPU backend (the
 * fp32 reference), on seeded inputs: tiny odd shapes (3×5), aligned shapes, and real SD3.5
 * shapes (Large GEMMs, joint attention at L = 4429, VAE convs and groupnorm).
 *
 * Inputs are rounded to bf16 on the host first, so both backends see identical values and the
 * difference measures only the GPU's bf16 outputs/intermediates and summation order.  An
 * element passes when |gpu − cpu| ≤ atol + rtol·|cpu| (per-op table below; exact for layout
 * ops).  At big shapes the CPU reference runs on a subsample (rows / query rows / output
 * channels) to stay fast.  Prints the first 5 pairs and max abs/rel error per check.
 *
 * Exits 77 (skipped) when there is no usable GPU.  `test_ops_cuda --bench` also times the
 * kernels with CUDA events (warm-up, median of repeats; ops_cuda_bench.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "error.h"
#include "ops_cuda_test.h"


/* --- tolerances (atol, rtol): bf16 output rounding is 2⁻⁹ relative ----------------------------- */
#define TOL_EXACT     0.0,  0.0
#define TOL_ELEM      1e-6, 8e-3     /* one bf16 rounding of an fp32 result */
#define TOL_NORM      1e-3, 1.6e-2   /* fp32 stats, bf16 out; long rows reorder the sums */
#define TOL_GEMM      2e-2, 1.6e-2   /* K-long fp32 sums, bf16 out (outputs have σ ≈ 0.3–1) */
#define TOL_ATTN      1e-2, 2e-2     /* bf16 P (2⁻⁹ per weight) and bf16 out */
#define TOL_CONV      2e-2, 1.6e-2

/* --- per-op checks ---------------------------------------------------------------------------- */

/* linear on all rows when M ≤ 512, else CPU on R evenly spaced rows */
static void
check_linear (int64_t M, int64_t N, int64_t K, int with_bias, enum op_act a)
{
  char           name[96];
  const int64_t  R = M <= 512 ? M : 48;
  float         *x = rand_vec ((size_t) M * K, -1.f, 1.f, (uint64_t) (M * 7 + K));
  float         *w = rand_vec ((size_t) N * K, -1.7f / sqrtf ((float) K), 1.7f / sqrtf ((float) K),
                               (uint64_t) (N * 3 + K));
  float         *bias = rand_vec ((size_t) N, -0.5f, 0.5f, (uint64_t) N);
  float         *xs = malloc ((size_t) R * K * sizeof *xs), *go, *gs;
  struct tensor *gx = act (gpu, x, M * K), *gw = weight (gpu, w, N * K, WEIGHT_MATRIX);
  struct tensor *gb = with_bias ? weight (gpu, bias, N, WEIGHT_VECTOR) : NULL;
  struct tensor *gout = act (gpu, NULL, M * N), *cx, *cw, *cb, *cout;

  snprintf (name, sizeof name, "linear %lldx%lldx%lld%s act%d", (long long) M, (long long) N,
            (long long) K, with_bias ? "+b" : "", (int) a);
  for (int64_t r = 0; r < R; r++)
    memcpy (xs + r * K, x + (r * M / R) * K, (size_t) K * sizeof *xs);
  op_linear (gpu, gout, gx, gw, gb, M, N, K, a);
  cx = act (cpu, xs, R * K);
  cw = weight (cpu, w, N * K, WEIGHT_MATRIX);
  cb = with_bias ? weight (cpu, bias, N, WEIGHT_VECTOR) : NULL;
  cout = act (cpu, NULL, R * N);
  op_linear (cpu, cout, cx, cw, cb, R, N, K, a);
  go = fetch (gout);
  gs = malloc ((size_t) R * N * sizeof *gs);
  for (int64_t r = 0; r < R; r++)
    memcpy (gs + r * N, go + (r * M / R) * N, (size_t) N * sizeof *gs);
  {
    float *co = fetch (cout);
    compare (name, gs, co, (size_t) R * N, TOL_GEMM);
    free (co);
  }
  tensor_free (gx); tensor_free (gw); tensor_free (gb); tensor_free (gout);
  tensor_free (cx); tensor_free (cw); tensor_free (cb); tensor_free (cout);
  free (x); free (w); free (bias); free (xs); free (go); free (gs);
}

/* reference attention for query row i of batch b (double), all heads */
static void
ref_attention_row (float *out, const float *qkv, const float *bias, int64_t b, int64_t i,
                   int64_t L, int64_t H, int64_t dh, float scale, int causal)
{
  const int64_t ld = 3 * H * dh;
  double       *s = malloc ((size_t) L * sizeof *s);
  for (int64_t h = 0; h < H; h++)
    {
      const float *q = qkv + (b * L + i) * ld + h * dh;
      double       mx = -INFINITY, sum = 0;
      int64_t      jmax = causal ? i + 1 : L;
      for (int64_t j = 0; j < jmax; j++)
        {
          const float *k = qkv + (b * L + j) * ld + H * dh + h * dh;
          double       d = 0;
          for (int64_t e = 0; e < dh; e++)
            d += (double) q[e] * k[e];
          s[j] = d * scale + (bias ? bias[(h * L + i) * L + j] : 0.0);
          mx = s[j] > mx ? s[j] : mx;
        }
      for (int64_t j = 0; j < jmax; j++)
        sum += (s[j] = exp (s[j] - mx));
      for (int64_t e = 0; e < dh; e++)
        {
          double o = 0;
          for (int64_t j = 0; j < jmax; j++)
            o += s[j] * qkv[(b * L + j) * ld + 2 * H * dh + h * dh + e];
          out[h * dh + e] = (float) (o / sum);
        }
    }
  free (s);
}

/* attention; rows R ≤ L checked: against the CPU backend when L is small, else the
 * double-precision reference above on evenly spaced query rows */
static void
check_attention (int64_t B, int64_t L, int64_t H, int64_t dh, int with_bias, int causal)
{
  char           name[96];
  const size_t   n = (size_t) B * L * 3 * H * dh, no = (size_t) B * L * H * dh;
  const float    scale = 1.f / sqrtf ((float) dh);
  float         *qkv = rand_vec (n, -2.f, 2.f, (uint64_t) (L * 131 + H * 7 + dh));
  float         *bias = with_bias ? rand_vec ((size_t) H * L * L, -2.f, 2.f, 99) : NULL;
  struct tensor *gq = act (gpu, qkv, (int64_t) n), *gout = act (gpu, NULL, (int64_t) no);
  struct tensor *gb = NULL;
  float         *go;

  snprintf (name, sizeof name, "attention B%lld L%lld H%lld dh%lld%s%s", (long long) B,
            (long long) L, (long long) H, (long long) dh, with_bias ? " bias" : "",
            causal ? " causal" : "");
  if (with_bias)
    {
      int64_t shape[3] = { H, L, L };
      gb = tensor_new (gpu, SD35_F32, 3, shape);
      gpu->ops->upload_f32 (gpu, gb, bias);
    }
  op_attention (gpu, gout, gq, gb, B, L, H, dh, scale, causal);
  go = fetch (gout);
  if (L <= 512)
    {
      struct tensor *cq = act (cpu, qkv, (int64_t) n), *cout = act (cpu, NULL, (int64_t) no);
      struct tensor *cb = NULL;
      if (with_bias)
        {
          int64_t shape[3] = { H, L, L };
          cb = tensor_new (cpu, SD35_F32, 3, shape);
          cpu->ops->upload_f32 (cpu, cb, bias);
        }
      op_attention (cpu, cout, cq, cb, B, L, H, dh, scale, causal);
      float *co = fetch (cout);
      compare (name, go, co, no, TOL_ATTN);
      free (co);
      tensor_free (cq); tensor_free (cout); tensor_free (cb);
    }
  else
    {
      const int64_t R = 24;
      float        *gs = malloc ((size_t) B * R * H * dh * sizeof *gs);
      float        *rs = malloc ((size_t) B * R * H * dh * sizeof *rs);
      for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < R; r++)
          {
            int64_t i = r == R - 1 ? L - 1 : r * L / R;
            size_t  o = ((size_t) b * R + r) * H * dh;
            memcpy (gs + o, go + ((size_t) b * L + i) * H * dh, (size_t) H * dh * sizeof *gs);
            ref_attention_row (rs + o, qkv, bias, b, i, L, H, dh, scale, causal);
          }
      strncat (name, " (rows)", sizeof name - strlen (name) - 1);
      compare (name, gs, rs, (size_t) B * R * H * dh, TOL_ATTN);
      free (gs);
      free (rs);
    }
  tensor_free (gq); tensor_free (gout); tensor_free (gb);
  free (qkv); free (bias); free (go);
}

enum norm_kind { NK_LAYER, NK_LAYER_AFFINE, NK_RMS, NK_QK, NK_MOD, NK_GATED, NK_GATED_PLAIN };

static void
check_norm (enum norm_kind kind, int64_t B, int64_t N, int64_t D, int64_t H)
{
  static const char *names[] = { "layernorm", "layernorm+affine", "rmsnorm", "qk_rmsnorm",
                                 "ln_modulate", "gated_add", "gated_add plain" };
  char           name[96];
  const int64_t  rows = B * N, chunks = 6;
  const size_t   n = kind == NK_QK ? (size_t) rows * 3 * H * D : (size_t) rows * D;
  const size_t   nw = kind == NK_MOD || kind == NK_GATED ? (size_t) B * chunks * D : (size_t) D;
  float         *x = rand_vec (n, -1.5f, 2.5f, (uint64_t) (n + kind));
  float         *y = rand_vec (n, -1.f, 1.f, (uint64_t) (n * 3 + kind));
  float         *w = rand_vec (nw, -1.f, 1.5f, (uint64_t) (D + 5));
  float         *b = rand_vec ((size_t) D, -0.5f, 0.5f, (uint64_t) (D + 11));
  struct backend *bes[2] = { gpu, cpu };
  struct tensor  *out[2];

  snprintf (name, sizeof name, "%s B%lld N%lld D%lld%s", names[kind], (long long) B,
            (long long) N, (long long) D, kind == NK_QK ? " (H·3·dh)" : "");
  for (int k = 0; k < 2; k++)
    {
      struct backend *be = bes[k];
      struct tensor  *tx = act (be, x, (int64_t) n), *ty = act (be, y, (int64_t) n);
      struct tensor  *tw = kind == NK_MOD || kind == NK_GATED ? act (be, w, (int64_t) nw)
                                                             : weight (be, w, (int64_t) nw,
                                                                       WEIGHT_VECTOR);
      struct tensor  *tb = weight (be, b, D, WEIGHT_VECTOR);
      switch (kind)
        {
        case NK_LAYER:
          op_layernorm (be, ty, tx, NULL, NULL, rows, D, 1e-6f);
          out[k] = ty;
          break;
        case NK_LAYER_AFFINE:
          op_layernorm (be, tx, tx, tw, tb, rows, D, 1e-5f);   /* in place */
          out[k] = tx;
          break;
        case NK_RMS:
          op_rmsnorm (be, ty, tx, tw, rows, D, 1e-6f);
          out[k] = ty;
          break;
        case NK_QK:
          op_qk_rmsnorm (be, tx, tw, tb, rows, H, D, 1e-6f);
          out[k] = tx;
          break;
        case NK_MOD:
          op_ln_modulate (be, ty, tx, tw, chunks, 3, 4, B, N, D, 1e-6f);
          out[k] = ty;
          break;
        case NK_GATED:
        case NK_GATED_PLAIN:
          op_gated_add (be, tx, ty, tw, chunks, kind == NK_GATED ? 2 : -1, B, N, D);
          out[k] = tx;
          break;
        }
      if (out[k] != tx) tensor_free (tx);
      if (out[k] != ty) tensor_free (ty);
      tensor_free (tw);
      tensor_free (tb);
    }
  compare_tensors (name, out[0], out[1], kind == NK_GATED || kind == NK_GATED_PLAIN
                   ? 1e-2 : 1e-3, kind == NK_GATED || kind == NK_GATED_PLAIN ? 8e-3 : 1.6e-2);
  tensor_free (out[0]);
  tensor_free (out[1]);
  free (x); free (y); free (w); free (b);
}

static void
check_groupnorm (int64_t B, int64_t C, int64_t HW, int64_t groups, int silu)
{
  char            name[96];
  const size_t    n = (size_t) B * C * HW;
  float          *x = rand_vec (n, 2.f, 4.f, (uint64_t) (n + silu));   /* mean ≠ 0 on purpose */
  float          *w = rand_vec ((size_t) C, 0.5f, 1.5f, 3), *b = rand_vec ((size_t) C, -0.5f, 0.5f, 4);
  struct backend *bes[2] = { gpu, cpu };
  struct tensor  *out[2];

  snprintf (name, sizeof name, "groupnorm B%lld C%lld HW%lld G%lld%s", (long long) B,
            (long long) C, (long long) HW, (long long) groups, silu ? " silu" : "");
  for (int k = 0; k < 2; k++)
    {
      struct tensor *tx = act (bes[k], x, (int64_t) n);
      struct tensor *tw = weight (bes[k], w, C, WEIGHT_VECTOR);
      struct tensor *tb = weight (bes[k], b, C, WEIGHT_VECTOR);
      out[k] = act (bes[k], NULL, (int64_t) n);
      op_groupnorm (bes[k], out[k], tx, tw, tb, B, C, HW, groups, 1e-6f, silu);
      tensor_free (tx); tensor_free (tw); tensor_free (tb);
    }
  compare_tensors (name, out[0], out[1], TOL_NORM);
  tensor_free (out[0]);
  tensor_free (out[1]);
  free (x); free (w); free (b);
}

/* conv2d; with Co > 16 at big sizes, the CPU computes only the first 8 output channels */
static void
check_conv (int64_t B, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t k, int64_t s,
            int64_t pt, int64_t pl, int64_t pb, int64_t pr)
{
  char           name[112];
  const int64_t  Ho = (H + pt + pb - k) / s + 1, Wo = (W + pl + pr - k) / s + 1;
  const int64_t  big = (int64_t) Ci * k * k * Ho * Wo * Co > 200000000;
  const int64_t  Cr = big ? 8 : Co;
  const size_t   nx = (size_t) B * Ci * H * W, nw = (size_t) Co * Ci * k * k;
  float         *x = rand_vec (nx, -1.f, 1.f, (uint64_t) (nx + Co));
  float         *w = rand_vec (nw, -1.7f / sqrtf ((float) (Ci * k * k)),
                               1.7f / sqrtf ((float) (Ci * k * k)), (uint64_t) (nw + 1));
  float         *b = rand_vec ((size_t) Co, -0.5f, 0.5f, 17);
  struct tensor *gx = act (gpu, x, (int64_t) nx), *gw = weight (gpu, w, (int64_t) nw, WEIGHT_MATRIX);
  struct tensor *gb = weight (gpu, b, Co, WEIGHT_VECTOR);
  struct tensor *gout = act (gpu, NULL, B * Co * Ho * Wo);
  struct tensor *cx = act (cpu, x, (int64_t) nx);
  struct tensor *cw = weight (cpu, w, Cr * Ci * k * k, WEIGHT_MATRIX);
  struct tensor *cb = weight (cpu, b, Cr, WEIGHT_VECTOR);
  struct tensor *cout = act (cpu, NULL, B * Cr * Ho * Wo);
  float         *go, *co, *gs;

  snprintf (name, sizeof name, "conv2d B%lld %lld→%lld %lldx%lld k%lld s%lld pad %lld,%lld,%lld,%lld%s",
            (long long) B, (long long) Ci, (long long) Co, (long long) H, (long long) W,
            (long long) k, (long long) s, (long long) pt, (long long) pl, (long long) pb,
            (long long) pr, big ? " (8 ch)" : "");
  op_conv2d (gpu, gout, gx, gw, gb, B, Ci, H, W, Co, k, k, s, pt, pl, pb, pr);
  op_conv2d (cpu, cout, cx, cw, cb, B, Ci, H, W, Cr, k, k, s, pt, pl, pb, pr);
  go = fetch (gout);
  co = fetch (cout);
  gs = malloc ((size_t) B * Cr * Ho * Wo * sizeof *gs);
  for (int64_t bi = 0; bi < B; bi++)
    memcpy (gs + (size_t) bi * Cr * Ho * Wo, go + (size_t) bi * Co * Ho * Wo,
            (size_t) Cr * Ho * Wo * sizeof *gs);
  compare (name, gs, co, (size_t) B * Cr * Ho * Wo, TOL_CONV);
  tensor_free (gx); tensor_free (gw); tensor_free (gb); tensor_free (gout);
  tensor_free (cx); tensor_free (cw); tensor_free (cb); tensor_free (cout);
  free (x); free (w); free (b); free (go); free (co); free (gs);
}

enum elem_kind { EK_ACT, EK_ADD, EK_MUL, EK_BCAST, EK_COPY, EK_CONCAT, EK_SPLIT, EK_TRANSPOSE,
                 EK_EMBED, EK_UPSAMPLE, EK_PATCHIFY, EK_UNPATCHIFY };

/* shape args: a, b, c, d mean different things per op (see the switch) */
static void
check_elem (enum elem_kind kind, int64_t a, int64_t b, int64_t c, int64_t d, int arg)
{
  static const char *names[] = { "activation", "add", "mul", "add_broadcast", "copy",
                                 "concat_rows", "split_rows", "transpose", "embedding",
                                 "upsample2x", "patchify", "unpatchify" };
  char            name[96];
  struct backend *bes[2] = { gpu, cpu };
  struct tensor  *out[2], *out2[2] = { NULL, NULL };
  size_t          nin = (size_t) a * b * c * d, nout = nin;
  int32_t        *ids = NULL;
  float          *x, *y;

  if (kind == EK_UPSAMPLE)
    nout = nin * 4;
  if (kind == EK_CONCAT || kind == EK_SPLIT)   /* B = a, L1 = b, L2 = c, C = d */
    nin = nout = (size_t) a * (b + c) * d;
  if (kind == EK_EMBED)   /* a = vocab, b = n ids, c = D */
    {
      nin = (size_t) a * c;
      nout = (size_t) b * c;
      ids = malloc ((size_t) b * sizeof *ids);
      rng_seed (12345);
      for (int64_t i = 0; i < b; i++)
        ids[i] = (int32_t) ((urand () + 1.f) * 0.5f * (float) (a - 1) + 0.5f);
    }
  x = rand_vec (nin, -4.f, 4.f, nin + kind);
  y = kind == EK_EMBED ? NULL : rand_vec (nin, -2.f, 2.f, nin * 5 + kind);
  snprintf (name, sizeof name, "%s %lldx%lldx%lldx%lld%s%d", names[kind], (long long) a,
            (long long) b, (long long) c, (long long) d, kind == EK_ACT ? " act" : " ", arg);
  for (int k = 0; k < 2; k++)
    {
      struct backend *be = bes[k];
      struct tensor  *tx = NULL, *ty = NULL;
      if (kind != EK_EMBED)
        {
          tx = act (be, x, (int64_t) nin);
          ty = act (be, y, (int64_t) nin);
        }
      out[k] = act (be, NULL, (int64_t) nout);
      switch (kind)
        {
        case EK_ACT:
          op_activation (be, out[k], tx, (int64_t) nin, (enum op_act) arg);
          break;
        case EK_ADD:
          op_add (be, out[k], tx, ty, (int64_t) nin);
          break;
        case EK_MUL:
          op_mul (be, tx, tx, ty, (int64_t) nin);   /* in place */
          op_copy (be, out[k], tx, (int64_t) nin);
          break;
        case EK_BCAST:   /* B = a, n = b·c·d */
          op_add_broadcast (be, out[k], tx, ty, a, b * c * d);
          break;
        case EK_COPY:
          op_copy (be, out[k], tx, (int64_t) nin);
          break;
        case EK_CONCAT:  /* B = a, L1 = b, L2 = c, C = d: inputs are slices of x and y */
          {
            int64_t sa[1] = { a * b * d }, sb[1] = { a * c * d };
            struct tensor *ta = tensor_new (be, be->act_dtype, 1, sa);
            struct tensor *tb = tensor_new (be, be->act_dtype, 1, sb);
            be->ops->upload_f32 (be, ta, x);
            be->ops->upload_f32 (be, tb, y);
            tensor_free (out[k]);
            {
              int64_t so[1] = { a * (b + c) * d };
              out[k] = tensor_new (be, be->act_dtype, 1, so);
            }
            op_concat_rows (be, out[k], ta, tb, a, b, c, d);
            tensor_free (ta);
            tensor_free (tb);
          }
          break;
        case EK_SPLIT:   /* in = x as [a, b + c, d] */
          {
            int64_t sa[1] = { a * b * d }, sb[1] = { a * c * d };
            tensor_free (out[k]);
            out[k] = tensor_new (be, be->act_dtype, 1, sa);
            out2[k] = tensor_new (be, be->act_dtype, 1, sb);
            op_split_rows (be, out[k], out2[k], tx, a, b, c, d);
          }
          break;
        case EK_TRANSPOSE:   /* B = a, C = b, N = c·d */
          op_transpose (be, out[k], tx, a, b, c * d);
          break;
        case EK_EMBED:
          {
            struct tensor *tt = weight (be, x, a * c, WEIGHT_MATRIX);
            op_embedding (be, out[k], tt, ids, b, c);
            tensor_free (tt);
          }
          break;
        case EK_UPSAMPLE:
          op_upsample2x (be, out[k], tx, 1, a * b, c, d);
          break;
        case EK_PATCHIFY:   /* B = 1, C = a·b, H = c, W = d */
          op_patchify (be, out[k], tx, 1, a * b, c, d, arg);
          break;
        case EK_UNPATCHIFY:
          op_unpatchify (be, out[k], tx, 1, a * b, c, d, arg);
          break;
        }
      tensor_free (tx);
      tensor_free (ty);
    }
  if (kind == EK_ACT || kind == EK_ADD || kind == EK_MUL || kind == EK_BCAST)
    compare_tensors (name, out[0], out[1], TOL_ELEM);
  else
    compare_tensors (name, out[0], out[1], TOL_EXACT);
  if (out2[0])
    compare_tensors ("split_rows (second part)", out2[0], out2[1], TOL_EXACT);
  for (int k = 0; k < 2; k++)
    {
      tensor_free (out[k]);
      tensor_free (out2[k]);
    }
  free (x); free (y); free (ids);
}

/* fp8 and f16 weights convert on upload like the CPU's dtype.c */
static void
check_weight_dtypes (void)
{
  const enum sd35_dtype dts[4] = { SD35_F16, SD35_BF16, SD35_F8_E4M3, SD35_F8_E5M2 };
  uint8_t               raw[512];
  float                 ref[256];
  for (int d = 0; d < 4; d++)
    {
      size_t es = sd35_dtype_size (dts[d]), n = 256;
      char   name[64];
      for (size_t i = 0; i < n * es; i++)
        raw[i] = (uint8_t) (i * 37 + 11);
      if (dts[d] == SD35_F8_E4M3)
        for (size_t i = 0; i < n; i++)
          if ((raw[i] & 0x7f) == 0x7f)
            raw[i] = 0x3c;    /* keep NaN out: NaN ≠ NaN */
      if (dts[d] == SD35_F8_E5M2)
        for (size_t i = 0; i < n; i++)
          if ((raw[i] & 0x7c) == 0x7c)
            raw[i] = 0x3c;
      if (dts[d] == SD35_F16)
        for (size_t i = 0; i < n; i++)
          if ((raw[2 * i + 1] & 0x7c) == 0x7c)
            raw[2 * i + 1] = 0x3c;
      if (dts[d] == SD35_BF16)
        for (size_t i = 0; i < n; i++)
          if ((raw[2 * i + 1] & 0x7f) == 0x7f)
            raw[2 * i + 1] = 0x3f;
      sd35_convert_to_f32 (ref, raw, dts[d], n);
      for (int use = 0; use < 2; use++)
        {
          struct tensor *t = calloc (1, sizeof *t);
          t->be = gpu;
          t->ndim = 1;
          t->shape[0] = (int64_t) n;
          t->numel = n;
          gpu->ops->weight_from_host (gpu, t, raw, dts[d], (enum weight_use) use);
          float *g = fetch (t);
          snprintf (name, sizeof name, "weight_from_host %s %s", sd35_dtype_name (dts[d]),
                    use ? "vector" : "matrix");
          /* bf16 storage of f16 values rounds (f16 has 3 more mantissa bits) */
          compare (name, g, ref, n, 0.0, dts[d] == SD35_F16 && use == 0 ? 4e-3 : 0.0);
          free (g);
          tensor_free (t);
        }
    }
}

static void
check_errors (void)
{
  /* an impossible allocation reports OOM as a sticky error, never aborts */
  struct backend *be;
  struct sd35_error err = { 0 };
  if (strcmp (gpu->name, "cuda") != 0 || backend_cuda_new (&be, &err) != SD35_OK)
    return;
  int64_t        shape[2] = { (int64_t) 1 << 40, 1024 };
  struct tensor *t = tensor_new (be, SD35_BF16, 2, shape);
  checks++;
  if (t != NULL || be->err.status != SD35_ERR_OOM)
    {
      printf ("FAIL huge allocation: expected SD35_ERR_OOM, got %d\n", be->err.status);
      failures++;
    }
  else
    printf ("ok   huge allocation fails cleanly: %s\n", be->err.message);
  tensor_free (t);
  backend_free (be);
}

int
main (int argc, char **argv)
{
  struct sd35_error err = { 0 };
  int               big = 1, bench = 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--small") == 0)
        big = 0;
      else if (strcmp (argv[i], "--bench") == 0)
        bench = 1;
    }
  if (backend_cuda_new (&gpu, &err) != SD35_OK)
    {
      /* SD35_TEST_CPU_TWIN=1: run the checks CPU against CPU (tests the test itself) */
      if (getenv ("SD35_TEST_CPU_TWIN") == NULL
          || backend_cpu_new (0, &gpu, &err) != SD35_OK)
        {
          printf ("SKIP: %s\n", err.message);
          return 77;
        }
      printf ("no GPU: checking the test itself, CPU against CPU\n");
      bench = 0;
    }
  if (backend_cpu_new (0, &cpu, &err) != SD35_OK)
    {
      printf ("FAIL: CPU backend: %s\n", err.message);
      return 1;
    }

  check_weight_dtypes ();
  /* linear: odd, aligned, each activation */
  check_linear (3, 5, 7, 0, ACT_NONE);
  check_linear (3, 5, 7, 1, ACT_GELU_TANH);
  for (int a = 0; a <= ACT_SILU; a++)
    check_linear (64, 128, 256, 1, (enum op_act) a);
  check_linear (77, 768, 768, 1, ACT_QUICK_GELU);
  check_linear (1, 2432, 256, 1, ACT_SILU);
  /* attention: flash path (dh 64) incl. partial tiles; general path (other dh, bias, causal) */
  check_attention (1, 5, 2, 64, 0, 0);
  check_attention (2, 130, 3, 64, 0, 0);
  check_attention (1, 77, 2, 64, 0, 1);
  check_attention (2, 33, 4, 64, 1, 0);
  check_attention (1, 37, 2, 40, 0, 0);
  check_attention (1, 64, 1, 512, 0, 0);
  /* norms */
  check_norm (NK_LAYER, 1, 3, 5, 0);
  check_norm (NK_LAYER_AFFINE, 1, 3, 5, 0);
  check_norm (NK_LAYER_AFFINE, 1, 77, 768, 0);
  check_norm (NK_RMS, 1, 3, 5, 0);
  check_norm (NK_QK, 1, 5, 64, 3);
  check_norm (NK_MOD, 2, 7, 5, 0);
  check_norm (NK_GATED, 2, 3, 5, 0);
  check_norm (NK_GATED_PLAIN, 2, 3, 5, 0);
  check_groupnorm (1, 64, 15, 32, 0);
  check_groupnorm (2, 64, 15, 32, 1);
  /* elementwise and layout */
  for (int a = 0; a <= ACT_SILU; a++)
    check_elem (EK_ACT, 1, 3, 5, 7, a);
  check_elem (EK_ADD, 1, 1, 3, 5, 0);
  check_elem (EK_MUL, 1, 1, 3, 5, 0);
  check_elem (EK_BCAST, 3, 1, 1, 5, 0);
  check_elem (EK_COPY, 1, 1, 3, 5, 0);
  check_elem (EK_CONCAT, 2, 3, 5, 7, 0);
  check_elem (EK_SPLIT, 2, 3, 5, 7, 0);
  check_elem (EK_TRANSPOSE, 2, 3, 1, 5, 0);
  check_elem (EK_TRANSPOSE, 1, 40, 5, 7, 0);
  check_elem (EK_EMBED, 11, 7, 5, 1, 0);
  check_elem (EK_UPSAMPLE, 1, 3, 5, 7, 0);
  check_elem (EK_PATCHIFY, 2, 8, 6, 10, 2);
  check_elem (EK_UNPATCHIFY, 2, 8, 6, 10, 2);
  /* conv */
  check_conv (1, 3, 5, 7, 4, 3, 1, 1, 1, 1, 1);
  check_conv (2, 8, 9, 9, 5, 3, 2, 0, 0, 1, 1);
  check_conv (1, 16, 6, 5, 8, 1, 1, 0, 0, 0, 0);
  check_conv (1, 16, 8, 8, 64, 2, 2, 0, 0, 0, 0);
  check_mixed (big);   /* fp32 tensors next to act_dtype ones (ops.h) */
  check_errors ();

  if (big)
    {
      printf ("--- SD3.5 shapes ---\n");
      check_linear (4429, 2432, 2432, 1, ACT_NONE);
      check_linear (4429, 9728, 2432, 1, ACT_GELU_TANH);
      check_linear (4429, 2432, 9728, 1, ACT_NONE);
      check_attention (1, 4429, 38, 64, 0, 0);
      check_attention (1, 4096, 1, 512, 0, 0);
      check_attention (1, 256, 64, 64, 1, 0);      /* T5-XXL with relative bias */
      check_norm (NK_LAYER, 1, 4429, 2432, 0);
      check_norm (NK_MOD, 1, 4096, 2432, 0);
      check_norm (NK_QK, 1, 4429, 64, 38);
      check_norm (NK_RMS, 1, 256, 4096, 0);
      check_norm (NK_GATED, 1, 4429, 2432, 0);
      check_groupnorm (1, 512, 64 * 64, 32, 1);
      check_groupnorm (1, 128, 256 * 256, 32, 0);
      check_elem (EK_CONCAT, 1, 333, 4096, 2432, 0);
      check_elem (EK_SPLIT, 1, 333, 4096, 2432, 0);
      check_elem (EK_TRANSPOSE, 1, 512, 64, 64, 0);
      check_elem (EK_EMBED, 32128, 256, 4096, 1, 0);
      check_elem (EK_UPSAMPLE, 1, 128, 128, 128, 0);
      check_elem (EK_PATCHIFY, 1, 16, 128, 128, 2);
      check_elem (EK_UNPATCHIFY, 1, 16, 128, 128, 2);
      check_conv (1, 128, 256, 256, 128, 3, 1, 1, 1, 1, 1);
      check_conv (1, 512, 64, 64, 512, 3, 1, 1, 1, 1, 1);
      check_conv (1, 128, 256, 256, 128, 3, 2, 0, 0, 1, 1);   /* VAE encoder downsample */
      check_conv (1, 16, 128, 128, 2432, 2, 2, 0, 0, 0, 0);   /* MMDiT patch embed */
    }
  if (bench)
    run_bench ();

  printf ("%d of %d checks failed\n", failures, checks);
  backend_free (gpu);
  backend_free (cpu);
  return failures ? 1 : 0;
}
