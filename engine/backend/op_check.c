/* op_check.c — the debug-build size checks behind ops.h's OP_CALL: before an op runs, every
 * tensor argument must hold at least the elements that the op's sizes name.  A backend
 * trusts these sizes (a GPU kernel would read or write past the allocation without a word),
 * so a wrong size in model code becomes SD35_ERR_INTERNAL naming the op and the tensor.
 * Only "at least": model code may hand an op a larger buffer than it uses. */
#include "ops.h"

#include "error.h"

/* 1 when t (required unless optional) holds ≥ n elements; else records the error. */
static int
need (struct backend *be, const char *op, const char *what, const struct tensor *t, double n,
      int optional)
{
  if (n < 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: negative size for %s (%.0f)", op,
                      what, n);
      return 0;
    }
  if (t == NULL)
    {
      if (optional)
        return 1;
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: %s tensor is missing", op, what);
      return 0;
    }
  if ((double) t->numel < n)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL,
                      "op %s: %s tensor holds %zu elements, the sizes need %.0f", op, what,
                      t->numel, n);
      return 0;
    }
  return 1;
}

#define REQ(what, t, n) need (be, op, what, t, (double) (n), 0)
#define OPT(what, t, n) need (be, op, what, t, (double) (n), 1)

int
op_check_upload_f32 (struct backend *be, struct tensor *dst, const float *src)
{
  const char *op = "upload_f32";
  if (src == NULL && dst != NULL && dst->numel > 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: host source is missing", op);
      return 0;
    }
  return REQ ("destination", dst, 0);
}

int
op_check_download_f32 (struct backend *be, float *dst, const struct tensor *src)
{
  const char *op = "download_f32";
  if (dst == NULL && src != NULL && src->numel > 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: host destination is missing", op);
      return 0;
    }
  return REQ ("source", src, 0);
}

int
op_check_linear (struct backend *be, struct tensor *out, const struct tensor *in,
                 const struct tensor *w, const struct tensor *b, int64_t M, int64_t N,
                 int64_t K, enum op_act act)
{
  const char *op = "linear";
  return REQ ("out", out, (double) M * N) && REQ ("in", in, (double) M * K)
         && REQ ("weight", w, (double) N * K) && OPT ("bias", b, N);
}

int
op_check_attention (struct backend *be, struct tensor *out, const struct tensor *qkv,
                    const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                    float scale, int causal)
{
  const char *op = "attention";
  double      bl = (double) B * L;
  return REQ ("out", out, bl * H * dh) && REQ ("qkv", qkv, bl * 3 * H * dh)
         && OPT ("bias", bias, (double) H * L * L);
}

int
op_check_layernorm (struct backend *be, struct tensor *out, const struct tensor *in,
                    const struct tensor *w, const struct tensor *b, int64_t rows, int64_t D,
                    float eps)
{
  const char *op = "layernorm";
  return REQ ("out", out, (double) rows * D) && REQ ("in", in, (double) rows * D)
         && OPT ("weight", w, D) && OPT ("bias", b, D);
}

int
op_check_rmsnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                  const struct tensor *w, int64_t rows, int64_t D, float eps)
{
  const char *op = "rmsnorm";
  return REQ ("out", out, (double) rows * D) && REQ ("in", in, (double) rows * D)
         && OPT ("weight", w, D);
}

int
op_check_qk_rmsnorm (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                     const struct tensor *wk, int64_t rows, int64_t H, int64_t dh, float eps)
{
  const char *op = "qk_rmsnorm";
  return REQ ("qkv", qkv, (double) rows * 3 * H * dh) && OPT ("q weight", wq, dh)
         && OPT ("k weight", wk, dh);
}

static int
chunk_ok (struct backend *be, const char *op, int64_t chunk, int64_t n_chunks)
{
  if (chunk < n_chunks)
    return 1;
  sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: chunk %lld of %lld", op,
                  (long long) chunk, (long long) n_chunks);
  return 0;
}

int
op_check_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *in,
                      const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                      int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps)
{
  const char *op = "ln_modulate";
  double      bnd = (double) B * N * D;
  return REQ ("out", out, bnd) && REQ ("in", in, bnd)
         && REQ ("mod", mod, (double) B * n_chunks * D)
         && chunk_ok (be, op, shift_chunk, n_chunks) && chunk_ok (be, op, scale_chunk, n_chunks);
}

int
op_check_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
                    const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t B,
                    int64_t N, int64_t D)
{
  const char *op = "gated_add";
  double      bnd = (double) B * N * D;
  if (!REQ ("x", x, bnd) || !REQ ("y", y, bnd))
    return 0;
  if (gate_chunk < 0)
    return 1;
  return REQ ("mod", mod, (double) B * n_chunks * D) && chunk_ok (be, op, gate_chunk, n_chunks);
}

int
op_check_groupnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                    const struct tensor *w, const struct tensor *b, int64_t B, int64_t C,
                    int64_t HW, int64_t groups, float eps, int silu)
{
  const char *op = "groupnorm";
  double      n = (double) B * C * HW;
  return REQ ("out", out, n) && REQ ("in", in, n) && OPT ("weight", w, C) && OPT ("bias", b, C);
}

int
op_check_activation (struct backend *be, struct tensor *out, const struct tensor *in,
                     int64_t n, enum op_act act)
{
  const char *op = "activation";
  return REQ ("out", out, n) && REQ ("in", in, n);
}

int
op_check_add (struct backend *be, struct tensor *out, const struct tensor *a,
              const struct tensor *b, int64_t n)
{
  const char *op = "add";
  return REQ ("out", out, n) && REQ ("a", a, n) && REQ ("b", b, n);
}

int
op_check_mul (struct backend *be, struct tensor *out, const struct tensor *a,
              const struct tensor *b, int64_t n)
{
  const char *op = "mul";
  return REQ ("out", out, n) && REQ ("a", a, n) && REQ ("b", b, n);
}

int
op_check_add_broadcast (struct backend *be, struct tensor *out, const struct tensor *in,
                        const struct tensor *vec, int64_t B, int64_t n)
{
  const char *op = "add_broadcast";
  return REQ ("out", out, (double) B * n) && REQ ("in", in, (double) B * n)
         && REQ ("vector", vec, n);
}

int
op_check_copy (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n)
{
  const char *op = "copy";
  return REQ ("destination", dst, n) && REQ ("source", src, n);
}

int
op_check_concat_rows (struct backend *be, struct tensor *out, const struct tensor *a,
                      const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  const char *op = "concat_rows";
  return REQ ("out", out, (double) B * (L1 + L2) * C) && REQ ("a", a, (double) B * L1 * C)
         && REQ ("b", b, (double) B * L2 * C);
}

int
op_check_split_rows (struct backend *be, struct tensor *a, struct tensor *b,
                     const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  const char *op = "split_rows";
  return REQ ("in", in, (double) B * (L1 + L2) * C) && OPT ("a", a, (double) B * L1 * C)
         && OPT ("b", b, (double) B * L2 * C);
}

int
op_check_transpose (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                    int64_t C, int64_t N)
{
  const char *op = "transpose";
  double      n = (double) B * C * N;
  return REQ ("out", out, n) && REQ ("in", in, n);
}

int
op_check_embedding (struct backend *be, struct tensor *out, const struct tensor *table,
                    const int32_t *ids, int64_t n, int64_t D)
{
  const char *op = "embedding";
  if (ids == NULL && n > 0)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: ids are missing", op);
      return 0;
    }
  return REQ ("out", out, (double) n * D) && REQ ("table", table, D);
}

int
op_check_conv2d (struct backend *be, struct tensor *out, const struct tensor *in,
                 const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci,
                 int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride,
                 int64_t pad_t, int64_t pad_l, int64_t pad_b, int64_t pad_r)
{
  const char *op = "conv2d";
  int64_t     Ho, Wo;

  if (stride < 1 || H + pad_t + pad_b < kh || W + pad_l + pad_r < kw)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "op %s: kernel %lldx%lld stride %lld does "
                      "not fit the padded %lldx%lld input", op, (long long) kh, (long long) kw,
                      (long long) stride, (long long) (H + pad_t + pad_b),
                      (long long) (W + pad_l + pad_r));
      return 0;
    }
  Ho = (H + pad_t + pad_b - kh) / stride + 1;
  Wo = (W + pad_l + pad_r - kw) / stride + 1;
  return REQ ("out", out, (double) B * Co * Ho * Wo) && REQ ("in", in, (double) B * Ci * H * W)
         && REQ ("weight", w, (double) Co * Ci * kh * kw) && OPT ("bias", b, Co);
}

int
op_check_upsample2x (struct backend *be, struct tensor *out, const struct tensor *in,
                     int64_t B, int64_t C, int64_t H, int64_t W)
{
  const char *op = "upsample2x";
  double      n = (double) B * C * H * W;
  return REQ ("out", out, 4 * n) && REQ ("in", in, n);
}

int
op_check_patchify (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                   int64_t C, int64_t H, int64_t W, int64_t p)
{
  const char *op = "patchify";
  double      n = (double) B * C * H * W;
  return REQ ("out", out, n) && REQ ("in", in, n);
}

int
op_check_unpatchify (struct backend *be, struct tensor *out, const struct tensor *in,
                     int64_t B, int64_t C, int64_t H, int64_t W, int64_t p)
{
  const char *op = "unpatchify";
  double      n = (double) B * C * H * W;
  return REQ ("out", out, n) && REQ ("in", in, n);
}
