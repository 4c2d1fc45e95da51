/* cpu_layout.c — data movement ops of the CPU backend: row concat/split, transpose,
 * embedding lookup, nearest ×2 upsampling and the MMDiT patchify/unpatchify. */
#include "cpu_ops.h"

#include <string.h>

#include "error.h"

/* out[B, L1+L2, C] = cat(a[B, L1, C], b[B, L2, C], dim=1) */
void
cpu_op_concat_rows (struct backend *be, struct tensor *out, const struct tensor *a,
                    const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  float *o = out->data;
  for (int64_t i = 0; i < B; i++)
    {
      memcpy (o + i * (L1 + L2) * C, (const float *) a->data + i * L1 * C,
              (size_t) (L1 * C) * sizeof (float));
      memcpy (o + (i * (L1 + L2) + L1) * C, (const float *) b->data + i * L2 * C,
              (size_t) (L2 * C) * sizeof (float));
    }
}

void
cpu_op_split_rows (struct backend *be, struct tensor *a, struct tensor *b,
                   const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  const float *x = in->data;
  for (int64_t i = 0; i < B; i++)
    {
      if (a != NULL)
        memcpy ((float *) a->data + i * L1 * C, x + i * (L1 + L2) * C,
                (size_t) (L1 * C) * sizeof (float));
      if (b != NULL)
        memcpy ((float *) b->data + i * L2 * C, x + (i * (L1 + L2) + L1) * C,
                (size_t) (L2 * C) * sizeof (float));
    }
}

/* out[b, n, c] = in[b, c, n], in 32×32 tiles to stay in cache */
void
cpu_op_transpose (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                  int64_t C, int64_t N)
{
  const float *x = in->data;
  float       *o = out->data;

  if (out->data == in->data)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "transpose cannot run in place");
      return;
    }
  for (int64_t b = 0; b < B; b++)
    for (int64_t c0 = 0; c0 < C; c0 += 32)
      for (int64_t n0 = 0; n0 < N; n0 += 32)
        for (int64_t c = c0; c < C && c < c0 + 32; c++)
          for (int64_t n = n0; n < N && n < n0 + 32; n++)
            o[(b * N + n) * C + c] = x[(b * C + c) * N + n];
}

/* out[n, :] = table[ids[n], :]   (torch nn.Embedding) */
void
cpu_op_embedding (struct backend *be, struct tensor *out, const struct tensor *table,
                  const int32_t *ids, int64_t n, int64_t D)
{
  float *o = out->data;

  if (!sd35_dtype_is_float (table->dtype))
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "embedding: %s table",
                      sd35_dtype_name (table->dtype));
      return;
    }
  size_t row_bytes;
  if (sd35_dtype_nbytes (table->dtype, (size_t) D, &row_bytes) != 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "embedding: rows of %lld %s values",
                      (long long) D, sd35_dtype_name (table->dtype));
      return;
    }
  for (int64_t i = 0; i < n; i++)
    {
      const char *row = (const char *) table->data + (size_t) ids[i] * row_bytes;
      sd35_convert_to_f32 (o + i * D, row, table->dtype, (size_t) D);
    }
}

/* out[b, c, y, x] = in[b, c, y/2, x/2]   (F.interpolate(scale_factor=2, mode="nearest")) */
void
cpu_op_upsample2x (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                   int64_t C, int64_t H, int64_t W)
{
  const float *x = in->data;
  float       *o = out->data;

  for (int64_t bc = 0; bc < B * C; bc++)
    for (int64_t y = 0; y < 2 * H; y++)
      {
        const float *src = x + (bc * H + y / 2) * W;
        float       *dst = o + (bc * 2 * H + y) * 2 * W;
        for (int64_t xx = 0; xx < 2 * W; xx++)
          dst[xx] = src[xx / 2];
      }
}

static int
check_patch (struct backend *be, int64_t H, int64_t W, int64_t p)
{
  if (p <= 0 || H % p != 0 || W % p != 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "patch size %lld does not divide %lld×%lld",
                      (long long) p, (long long) H, (long long) W);
      return 0;
    }
  return 1;
}

/* out[b, r·(W/p)+c, (ci·p + pr)·p + pc] = in[b, ci, r·p+pr, c·p+pc] */
void
cpu_op_patchify (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                 int64_t C, int64_t H, int64_t W, int64_t p)
{
  const float *x = in->data;
  float       *o = out->data;
  int64_t      hp = H / p, wp = W / p;

  if (!check_patch (be, H, W, p))
    return;
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < hp; r++)
      for (int64_t c = 0; c < wp; c++)
        {
          float *tok = o + (b * hp * wp + r * wp + c) * C * p * p;
          for (int64_t ci = 0; ci < C; ci++)
            for (int64_t pr = 0; pr < p; pr++)
              for (int64_t pc = 0; pc < p; pc++)
                tok[(ci * p + pr) * p + pc] = x[((b * C + ci) * H + r * p + pr) * W + c * p + pc];
        }
}

/* out[b, ci, r·p+pr, c·p+pc] = in[b, r·(W/p)+c, (pr·p + pc)·C + ci]  (einsum nhwpqc→nchpwq) */
void
cpu_op_unpatchify (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                   int64_t C, int64_t H, int64_t W, int64_t p)
{
  const float *x = in->data;
  float       *o = out->data;
  int64_t      hp = H / p, wp = W / p;

  if (!check_patch (be, H, W, p))
    return;
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < hp; r++)
      for (int64_t c = 0; c < wp; c++)
        {
          const float *tok = x + (b * hp * wp + r * wp + c) * C * p * p;
          for (int64_t pr = 0; pr < p; pr++)
            for (int64_t pc = 0; pc < p; pc++)
              for (int64_t ci = 0; ci < C; ci++)
                o[((b * C + ci) * H + r * p + pr) * W + c * p + pc] = tok[(pr * p + pc) * C + ci];
        }
}
