/* cpu_conv.c — 2-D convolution (torch F.conv2d on an explicitly zero-padded input) as
 * im2col + the blocked GEMM.  Rows of the im2col matrix are output pixels and columns are
 * (ci, ky, kx), the flattening of the weight [Co, Ci, kh, kw]; so the weight is used as the
 * GEMM's [N=Co, K] matrix as stored (F16/BF16 included) and the bias is the GEMM bias.  The
 * pixels are processed in chunks so the im2col buffer stays ~16 MiB even for a 1024² VAE
 * decode (a full one would be gigabytes). */
#include "cpu_ops.h"

#include <stdlib.h>

#include "error.h"

/* im2col buffer budget in floats (16 MiB); tests lower it to exercise the chunking */
int64_t cpu_conv_chunk_floats = 4 << 20;

struct conv_geom
{
  int64_t Ci, H, W, kh, kw, stride, pad_t, pad_l, Ho, Wo;
};

/* col[p − p0, (ci·kh + ky)·kw + kx] = x[ci, oy·s − pt + ky, ox·s − pl + kx] (0 outside) */
static void
im2col (float *col, const float *x, const struct conv_geom *g, int64_t p0, int64_t p1)
{
  int64_t K = g->Ci * g->kh * g->kw;

  for (int64_t p = p0; p < p1; p++)
    {
      int64_t oy = p / g->Wo, ox = p % g->Wo;
      float  *row = col + (p - p0) * K;
      for (int64_t ci = 0; ci < g->Ci; ci++)
        for (int64_t ky = 0; ky < g->kh; ky++)
          {
            int64_t iy = oy * g->stride - g->pad_t + ky;
            float  *dst = row + (ci * g->kh + ky) * g->kw;
            if (iy < 0 || iy >= g->H)
              {
                for (int64_t kx = 0; kx < g->kw; kx++)
                  dst[kx] = 0.0f;
                continue;
              }
            const float *src = x + (ci * g->H + iy) * g->W;
            for (int64_t kx = 0; kx < g->kw; kx++)
              {
                int64_t ix = ox * g->stride - g->pad_l + kx;
                dst[kx] = ix >= 0 && ix < g->W ? src[ix] : 0.0f;
              }
          }
    }
}

/* im2col and the [np, Co] → [Co, P] scatter, split over the threads (alone on one thread they
 * were a tenth of a 256² txt2img's CPU time, all of it on one core while the other waited) */
struct conv_job
{
  float                  *col, *ob;
  const float            *x, *tmp;
  const struct conv_geom *g;
  int64_t                 p0, K, Co, P, np;
};

static void
im2col_range (void *ctx, int64_t begin, int64_t end)
{
  const struct conv_job *j = ctx;

  im2col (j->col + begin * j->K, j->x, j->g, j->p0 + begin, j->p0 + end);
}

/* out[co, p0 + p] = tmp[p, co] for co in 32-channel blocks [begin, end), in 32×32 tiles */
static void
scatter_range (void *ctx, int64_t begin, int64_t end)
{
  const struct conv_job *j = ctx;

  for (int64_t c0 = begin * 32; c0 < end * 32 && c0 < j->Co; c0 += 32)
    for (int64_t q0 = 0; q0 < j->np; q0 += 32)
      for (int64_t co = c0; co < j->Co && co < c0 + 32; co++)
        for (int64_t p = q0; p < j->np && p < q0 + 32; p++)
          j->ob[co * j->P + j->p0 + p] = j->tmp[p * j->Co + co];
}

void
cpu_op_conv2d (struct backend *be, struct tensor *out, const struct tensor *in,
               const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci, int64_t H,
               int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride, int64_t pad_t,
               int64_t pad_l, int64_t pad_b, int64_t pad_r)
{
  struct conv_geom g = { Ci, H, W, kh, kw, stride, pad_t, pad_l, 0, 0 };
  int64_t          K = Ci * kh * kw, P, chunk;
  float           *col = NULL, *tmp = NULL, *tb = NULL;
  const float     *bias = NULL;
  float           *o = out->data;

  if (out->data == in->data)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "conv2d cannot run in place");
      return;
    }
  if (stride <= 0 || H + pad_t + pad_b < kh || W + pad_l + pad_r < kw)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL,
                      "conv2d: kernel %lld×%lld stride %lld does not fit a %lld×%lld input",
                      (long long) kh, (long long) kw, (long long) stride, (long long) H,
                      (long long) W);
      return;
    }
  if (w->dtype != SD35_F32 && w->dtype != SD35_F16 && w->dtype != SD35_BF16)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "conv2d: %s weight",
                      sd35_dtype_name (w->dtype));
      return;
    }
  g.Ho = (H + pad_t + pad_b - kh) / stride + 1;
  g.Wo = (W + pad_l + pad_r - kw) / stride + 1;
  P = g.Ho * g.Wo;
  chunk = cpu_conv_chunk_floats / (K > Co ? K : Co);
  chunk = chunk < 1 ? 1 : chunk > P ? P : chunk;
  if (b != NULL && (bias = cpu_f32_view (be, b, (size_t) Co, &tb)) == NULL)
    return;
  col = cpu_scratch (be, (size_t) (chunk * K), "the conv2d im2col buffer");
  tmp = cpu_scratch (be, (size_t) (chunk * Co), "the conv2d output buffer");
  if (col == NULL || tmp == NULL)
    goto done;

  for (int64_t bi = 0; bi < B; bi++)
    {
      const float *x = (const float *) in->data + bi * Ci * H * W;
      float       *ob = o + bi * Co * P;
      for (int64_t p0 = 0; p0 < P; p0 += chunk)
        {
          int64_t np = P - p0 < chunk ? P - p0 : chunk;
          struct conv_job j = { col, ob, x, tmp, &g, p0, K, Co, P, np };
          cpu_parallel_for (be, np, 4.0 * (double) K, im2col_range, &j);
          cpu_gemm (be, tmp, col, w->data, w->dtype, bias, np, Co, K, ACT_NONE);
          /* [np, Co] → out[co, p0 : p0+np], in 32×32 tiles to stay in cache */
          cpu_parallel_for (be, (Co + 31) / 32, 4.0 * 32 * (double) np, scatter_range, &j);
        }
    }
done:
  free (col);
  free (tmp);
  free (tb);
}
