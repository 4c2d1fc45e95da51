/* test_weights.c — the weights loader on the CPU backend: lookups with a prefix, uploads of
 * every float dtype, packed qkv (same and mixed dtypes, aliased F32 kept alive by the file),
 * and one error listing every missing / mis-shaped / non-finite tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "weights.h"
#include "testutil.h"

static struct st_file *
open_writer (struct st_writer *w, void **buf)
{
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  size_t            len;

  if (st_writer_to_memory (w, buf, &len, &err) != SD35_OK
      || st_open_memory (*buf, len, "w.safetensors", &f, &err) != SD35_OK)
    {
      printf ("FAIL: test file: %s\n", err.message);
      exit (1);
    }
  st_writer_free (w);
  return f;
}

static void
add (struct st_writer *w, const char *name, enum sd35_dtype dt, int ndim, const int64_t *shape,
     float base)
{
  size_t   n = 1;
  uint8_t *b;

  for (int d = 0; d < ndim; d++)
    n *= (size_t) shape[d];
  b = malloc (n * 8 + 1);
  for (size_t i = 0; i < n; i++)
    {
      float    v = base + (float) i * 0.25f;
      uint16_t h;
      switch (dt)
        {
        case SD35_F32: memcpy (b + 4 * i, &v, 4); break;
        case SD35_F16: h = sd35_f32_to_f16 (v); memcpy (b + 2 * i, &h, 2); break;
        case SD35_BF16: h = sd35_f32_to_bf16 (v); memcpy (b + 2 * i, &h, 2); break;
        default: memset (b + 8 * i, 0, 8); break;
        }
    }
  if (st_writer_add (w, name, dt, ndim, shape, b) != 0)
    test_check (0, "add %s", name);
  free (b);
}

static int
values_are (struct tensor *t, size_t n, const float *want, const char *what)
{
  float *got;
  int    ok;

  if (!test_check (t != NULL && t->numel == n, "%s: tensor of %zu values", what, n))
    return 0;
  got = malloc (n * sizeof *got);
  tensor_to_f32 (t, got);
  ok = test_close (what, got, want, n, 0.0);
  free (got);
  return ok;
}

/* q, k, v of one layer in dtypes dq, dk, dv, each [2, 3] with values base, base+10, base+20 */
static void
add_qkv (struct st_writer *w, int layer, enum sd35_dtype dq, enum sd35_dtype dk,
         enum sd35_dtype dv)
{
  const int64_t   ws[2] = { 2, 3 }, bs[1] = { 2 };
  enum sd35_dtype dt[3] = { dq, dk, dv };
  const char     *nm = "qkv";
  char            key[96];

  for (int i = 0; i < 3; i++)
    {
      snprintf (key, sizeof key, "p.layers.%d.attn.%c_proj.weight", layer, nm[i]);
      add (w, key, dt[i], 2, ws, 10.0f * (float) i);
      snprintf (key, sizeof key, "p.layers.%d.attn.%c_proj.bias", layer, nm[i]);
      add (w, key, dt[i], 1, bs, 100.0f + 10.0f * (float) i);
    }
}

static void
test_load_ok (struct backend *be)
{
  struct st_writer      *w = st_writer_new ();
  struct st_file        *f;
  struct weights_loader *wl;
  struct sd35_error      err = { 0 };
  const int64_t          s43[2] = { 4, 3 }, s4[1] = { 4 }, s3[1] = { 3 }, c[4] = { 2, 1, 3, 3 };
  const int64_t          s2[1] = { 2 };
  const char *const      names[3] = { "q", "k", "v" };
  struct linear          lin, qkv0, qkv1, qkv2;
  struct norm            nm;
  struct conv2d          cv;
  struct tensor         *opt, *pe;
  int64_t                shape[ST_MAX_DIMS];
  float                  want[54], *host;
  void                  *buf;

  add (w, "p.lin.weight", SD35_BF16, 2, s43, 1.0f);
  add (w, "p.lin.bias", SD35_F32, 1, s4, -1.0f);
  add (w, "p.norm.weight", SD35_F16, 1, s3, 2.0f);
  add (w, "p.norm.bias", SD35_BF16, 1, s3, 0.5f);
  add (w, "p.conv.weight", SD35_F16, 4, c, -3.0f);
  add (w, "p.conv.bias", SD35_F32, 1, s2, 7.0f);
  add (w, "p.table", SD35_F32, 1, s4, 4.0f);
  add (w, "p.unused", SD35_F32, 1, s4, 0.0f);
  add (w, "other.x", SD35_F32, 1, s4, 0.0f);
  add_qkv (w, 0, SD35_F16, SD35_F16, SD35_F16);
  add_qkv (w, 1, SD35_F32, SD35_F32, SD35_F32);
  add_qkv (w, 2, SD35_F16, SD35_BF16, SD35_F32);
  f = open_writer (w, &buf);

  wl = wl_new (be, &f, 1, "p.", "test part");
  test_check (wl_find (wl, "lin.%s", "weight") != NULL && wl_find (wl, "lin.nope") == NULL
                && wl_find (wl, "other.x") == NULL, "wl_find applies the prefix");
  test_check (wl_shape (wl, shape, "conv.weight") == 4 && shape[0] == 2 && shape[3] == 3
                && wl_shape (wl, shape, "absent") == 0, "wl_shape");
  wl_linear (wl, &lin, 4, 3, 1, "lin");
  wl_norm (wl, &nm, 3, 1, "norm");
  wl_conv2d (wl, &cv, 2, 1, 3, 3, "conv");
  opt = wl_tensor_opt (wl, WEIGHT_VECTOR, 1, s4, "not.there");
  pe = wl_tensor (wl, WEIGHT_VECTOR, 1, s4, "table");
  host = wl_host_f32 (wl, 1, s4, "table");
  for (int l = 0; l < 3; l++)
    wl_linear_qkv (wl, l == 0 ? &qkv0 : l == 1 ? &qkv1 : &qkv2, 2, 3, 1, names,
                   "layers.%d.attn.%s_proj", l);
  test_check (wl_finish (wl, &err) == SD35_OK, "load without problems: %s", err.message);
  test_check (opt == NULL, "an absent optional tensor is NULL without a problem");

  for (int i = 0; i < 12; i++)
    want[i] = 1.0f + 0.25f * (float) i;
  values_are (lin.w, 12, want, "BF16 linear weight");
  for (int i = 0; i < 4; i++)
    want[i] = -1.0f + 0.25f * (float) i;
  values_are (lin.b, 4, want, "F32 bias");
  for (int i = 0; i < 3; i++)
    want[i] = 2.0f + 0.25f * (float) i;
  values_are (nm.w, 3, want, "F16 norm weight");
  for (int i = 0; i < 18; i++)
    want[i] = -3.0f + 0.25f * (float) i;
  values_are (cv.w, 18, want, "F16 conv weight");
  test_check (cv.co == 2 && cv.ci == 1 && cv.kh == 3 && cv.kw == 3, "conv sizes recorded");
  for (int i = 0; i < 4; i++)
    want[i] = 4.0f + 0.25f * (float) i;
  values_are (pe, 4, want, "wl_tensor");
  test_check (host != NULL && test_close ("wl_host_f32", host, want, 4, 0.0), "host copy");
  free (host);

  /* packed rows: q then k then v */
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 6; j++)
      want[6 * i + j] = 10.0f * (float) i + 0.25f * (float) j;
  values_are (qkv0.w, 18, want, "packed qkv F16");
  values_are (qkv1.w, 18, want, "packed qkv F32 (aliased by the CPU backend)");
  values_are (qkv2.w, 18, want, "packed qkv of mixed dtypes");
  test_check (qkv0.w->shape[0] == 6 && qkv0.w->shape[1] == 3, "packed shape [3n, n_in]");
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++)
      want[2 * i + j] = 100.0f + 10.0f * (float) i + 0.25f * (float) j;
  values_are (qkv1.b, 6, want, "packed qkv bias");

  linear_free (&lin);
  norm_free (&nm);
  conv2d_free (&cv);
  linear_free (&qkv0);
  linear_free (&qkv1);
  linear_free (&qkv2);
  tensor_free (pe);
  st_close (f);   /* frees the aliased packed buffer (ASan checks both) */
  free (buf);
}

static void
test_problems (struct backend *be)
{
  struct st_writer      *w = st_writer_new ();
  struct st_file        *f;
  struct weights_loader *wl;
  struct sd35_error      err = { 0 };
  const int64_t          s43[2] = { 4, 3 }, s4[1] = { 4 }, s34[2] = { 3, 4 };
  struct linear          lin;
  struct tensor         *t;
  void                  *buf;
  float                  nan_v[4] = { 1, NAN, 2, 3 };

  add (w, "p.lin.weight", SD35_F32, 2, s34, 1.0f);     /* transposed */
  add (w, "p.ids", SD35_I64, 1, s4, 0.0f);
  add (w, "p.ok.weight", SD35_F32, 2, s43, 1.0f);
  add (w, "p.ok.bias", SD35_F32, 1, s4, 1.0f);
  st_writer_add_f32 (w, "p.nan", 1, s4, nan_v);
  f = open_writer (w, &buf);

  /* only shape problems → SD35_ERR_SHAPE */
  wl = wl_new (be, &f, 1, "p.", "part");
  wl_linear (wl, &lin, 4, 3, 0, "lin");
  t = wl_tensor (wl, WEIGHT_VECTOR, 1, s4, "ids");
  test_check (lin.w == NULL && t == NULL, "mis-shaped and integer tensors are not loaded");
  test_check (wl_finish (wl, &err) == SD35_ERR_SHAPE
                && strstr (err.message, "p.lin.weight has shape [3, 4], expected [4, 3]") != NULL
                && strstr (err.message, "p.ids is I64") != NULL
                && strstr (err.message, "w.safetensors") != NULL,
              "shape problems listed: %s", err.message);

  /* missing keys (more than fit) + a shape problem → SD35_ERR_MISSING, with a count */
  sd35_error_clear (&err);
  wl = wl_new (be, &f, 1, "p.", "part");
  wl_linear (wl, &lin, 4, 3, 1, "ok");
  linear_free (&lin);
  for (int i = 0; i < 30; i++)
    wl_linear (wl, &lin, 4, 3, 0, "blocks.%d.attn.qkv", i);
  wl_linear (wl, &lin, 4, 3, 0, "lin");
  test_check (wl_finish (wl, &err) == SD35_ERR_MISSING
                && strstr (err.message, "31 problems") != NULL
                && strstr (err.message, "missing p.blocks.0.attn.qkv.weight") != NULL
                && strstr (err.message, "more") != NULL,
              "31 problems in one message: %s", err.message);

  /* a NaN in a vector */
  sd35_error_clear (&err);
  wl = wl_new (be, &f, 1, "p.", "part");
  t = wl_tensor (wl, WEIGHT_VECTOR, 1, s4, "nan");
  test_check (t == NULL && wl_finish (wl, &err) == SD35_ERR_NAN
                && strstr (err.message, "p.nan") != NULL, "NaN found: %s", err.message);

  /* abandoning a load frees the loader */
  wl = wl_new (be, &f, 1, "p.", "part");
  wl_linear (wl, &lin, 4, 3, 0, "missing");
  wl_free (wl);
  st_close (f);
  free (buf);
}

/* A small "scaled fp8" file made here (ComfyUI's *_fp8_scaled layout): F8_E4M3 weights with
 * an fp32 X.scale_weight (one factor) or X.weight_scale (one per output row), X.scale_input
 * beside them, and a packed q/k/v whose parts have different scales.  The loader must give
 * weight·scale; a scale it cannot apply (wrong size, or with no weight that takes it) must
 * refuse the file with a message naming the tensor — never load unscaled values. */
static void
add_raw (struct st_writer *w, const char *name, enum sd35_dtype dt, int ndim,
         const int64_t *shape, const void *data)
{
  if (st_writer_add (w, name, dt, ndim, shape, data) != 0)
    test_check (0, "add %s", name);
}

static void
test_scaled_fp8 (struct backend *be)
{
  static const uint8_t f8[6] = { 0x38, 0x40, 0x30, 0xb8, 0x3c, 0x44 };  /* 1 2 .5 −1 1.5 3 */
  const int64_t        s23[2] = { 2, 3 }, s1[1] = { 1 }, s2[1] = { 2 }, s6[2] = { 6, 3 };
  const float          half = 0.5f, rows[2] = { 4.0f, -0.25f }, in_scale = 3.0f;
  const float          qs = 2.0f, ks = 0.125f;
  const char *const    names[3] = { "q", "k", "v" };
  struct st_writer    *w = st_writer_new ();
  struct weights_loader *wl;
  struct st_file      *f;
  struct sd35_error    err = { 0 };
  struct linear        lin, lin_rows, qkv;
  float                want[18], raw[6];
  void                *buf;

  for (int i = 0; i < 6; i++)
    raw[i] = sd35_f8e4m3_to_f32 (f8[i]);
  add_raw (w, "m.lin.weight", SD35_F8_E4M3, 2, s23, f8);
  add_raw (w, "m.lin.scale_weight", SD35_F32, 1, s1, &half);
  add_raw (w, "m.lin.scale_input", SD35_F32, 1, s1, &in_scale);
  add_raw (w, "m.rows.weight", SD35_F8_E4M3, 2, s23, f8);
  add_raw (w, "m.rows.weight_scale", SD35_F32, 1, s2, rows);
  add_raw (w, "m.attn.q.weight", SD35_F8_E4M3, 2, s23, f8);
  add_raw (w, "m.attn.q.scale_weight", SD35_F32, 1, s1, &qs);
  add_raw (w, "m.attn.k.weight", SD35_F8_E4M3, 2, s23, f8);
  add_raw (w, "m.attn.k.scale_weight", SD35_F32, 1, s1, &ks);
  add_raw (w, "m.attn.v.weight", SD35_F8_E4M3, 2, s23, f8);   /* v: no scale (factor 1) */
  f = open_writer (w, &buf);

  wl = wl_new (be, &f, 1, "m.", "scaled fp8 test");
  wl_linear (wl, &lin, 2, 3, 0, "lin");
  wl_linear (wl, &lin_rows, 2, 3, 0, "rows");
  wl_linear_qkv (wl, &qkv, 2, 3, 0, names, "attn.%s");
  test_check (wl_finish (wl, &err) == SD35_OK, "scaled fp8 file loads: %s", err.message);
  for (int i = 0; i < 6; i++)
    want[i] = raw[i] * half;
  values_are (lin.w, 6, want, "F8 weight · scale_weight (one factor)");
  for (int i = 0; i < 6; i++)
    want[i] = raw[i] * rows[i / 3];
  values_are (lin_rows.w, 6, want, "F8 weight · weight_scale (one per output row)");
  for (int i = 0; i < 18; i++)
    want[i] = raw[i % 6] * (i < 6 ? qs : i < 12 ? ks : 1.0f);
  test_check (qkv.w != NULL && qkv.w->shape[0] == s6[0], "packed scaled q/k/v");
  values_are (qkv.w, 18, want, "packed q/k/v, each part with its own scale");
  tensor_free (lin.w), tensor_free (lin_rows.w), tensor_free (qkv.w);
  st_close (f);
  free (buf);

  /* a scale of the wrong size, and a scale whose weight is never loaded: refused, named */
  w = st_writer_new ();
  add_raw (w, "m.lin.weight", SD35_F8_E4M3, 2, s23, f8);
  add_raw (w, "m.lin.scale_weight", SD35_F32, 1, (const int64_t[]) { 3 }, raw);
  add_raw (w, "m.orphan.scale_weight", SD35_F32, 1, s1, &half);
  f = open_writer (w, &buf);
  wl = wl_new (be, &f, 1, "m.", "scaled fp8 test");
  wl_linear (wl, &lin, 2, 3, 0, "lin");
  test_check (lin.w == NULL, "a weight with an unusable scale is not loaded");
  sd35_error_clear (&err);
  test_check (wl_finish (wl, &err) == SD35_ERR_SHAPE && strstr (err.message, "m.lin.scale_weight")
              && strstr (err.message, "m.orphan.scale_weight"),
              "unusable and orphan scales refuse the file: %s", err.message);
  st_close (f);
  free (buf);
}

int
main (void)
{
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };

  if (backend_cpu_new (1, &be, &err) != SD35_OK)
    {
      printf ("FAIL: CPU backend: %s\n", err.message);
      return 1;
    }
  test_load_ok (be);
  test_problems (be);
  test_scaled_fp8 (be);
  backend_free (be);
  return test_exit ();
}
