/* test_gguf.c — GGUF reading and the GGML block types:
 *   - every supported type of tests/data/gguf/dequant.gguf (written by the gguf PyPI package,
 *     tests/tools/make_gguf.py) dequantizes to exactly the numpy reference
 *     (dequant_ref.safetensors), whole and in odd sub-ranges (the GEMM packer's access);
 *   - the CPU linear with a quantized weight (kept quantized, widened per panel) equals the
 *     linear with the dequantized fp32 weight bit for bit, and the naive matmul within 1e-5;
 *   - the parser refuses each kind of broken or hostile file with one clear SD35_ERR_FORMAT
 *     (every truncation of a valid file included), names unsupported types, and reads a
 *     ComfyUI-GGUF orig_shape. */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_dequant.h"
#include "cpu_ops.h"
#include "error.h"
#include "ops.h"
#include "safetensors.h"
#include "testutil.h"

static const char *const type_names[] = { "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1",
                                          "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K" };

static char *
data_path (const char *name)
{
  const char *src = test_env_or_skip ("SD35_SOURCE_DIR");
  return g_build_filename (src, "tests", "data", "gguf", name, NULL);
}

static void
test_dequant_reference (struct st_file *g, struct st_file *ref)
{
  for (size_t i = 0; i < G_N_ELEMENTS (type_names); i++)
    {
      const struct st_tensor *t = st_find (g, type_names[i]);
      const struct st_tensor *r = st_find (ref, type_names[i]);
      struct sd35_error       err = { 0 };
      float                  *got;
      size_t                  bad = 0;

      if (!test_check (t != NULL && r != NULL, "%s present in both files", type_names[i]))
        continue;
      test_check (t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 512
                  && strcmp (sd35_dtype_name (t->dtype), type_names[i]) == 0,
                  "%s: shape [4, 512] (GGUF dims reversed) and dtype %s", type_names[i],
                  sd35_dtype_name (t->dtype));
      got = st_read_f32 (t, &err);
      if (!test_check (got != NULL, "%s: read as fp32 (%s)", type_names[i], err.message))
        continue;
      for (size_t k = 0; k < t->numel; k++)
        bad += memcmp (&got[k], (const float *) r->data + k, 4) != 0;
      test_check (bad == 0, "%s: %zu values dequantized equal numpy's bit for bit (%zu differ)",
                  type_names[i], t->numel, bad);
      if (sd35_dtype_is_quant (t->dtype))
        {
          /* odd sub-ranges of row 1, as the GEMM's packer asks for them */
          static const size_t ranges[][2] = { { 0, 512 }, { 3, 61 }, { 31, 2 }, { 255, 257 },
                                              { 256, 256 }, { 500, 12 }, { 64, 1 } };
          size_t row_bytes = 0;
          float  part[512];
          sd35_dtype_nbytes (t->dtype, 512, &row_bytes);
          bad = 0;
          for (size_t q = 0; q < G_N_ELEMENTS (ranges); q++)
            {
              sd35_dequant_range (t->dtype, (const uint8_t *) t->data + row_bytes,
                                  ranges[q][0], ranges[q][1], part);
              bad += memcmp (part, got + 512 + ranges[q][0], ranges[q][1] * 4) != 0;
            }
          test_check (bad == 0, "%s: sub-range dequantisation equals the whole row",
                      type_names[i]);
        }
      free (got);
    }
}

/* The CPU backend keeps the quantized matrix and widens it inside the GEMM. */
static void
test_linear (struct st_file *g, struct st_file *ref)
{
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  const int64_t     M = 7, N = 4, K = 512;
  float            *x = malloc (M * K * sizeof *x), *o1 = malloc (M * N * 4),
        *o2 = malloc (M * N * 4), *on = malloc (M * N * 4);

  if (!test_check (backend_cpu_new (2, &be, &err) == SD35_OK, "cpu backend (%s)", err.message))
    return;
  for (int64_t i = 0; i < M * K; i++)
    x[i] = sinf (0.37f * (float) i) * 0.5f;
  for (size_t i = 3; i < G_N_ELEMENTS (type_names); i++)
    {
      const struct st_tensor *t = st_find (g, type_names[i]), *r = st_find (ref, type_names[i]);
      const int64_t           shape[2] = { N, K }, xs[2] = { M, K };
      struct tensor           wq = { 0 }, wf = { 0 };
      struct tensor          *in, *out1, *out2;

      if (t == NULL || r == NULL)
        continue;
      wq.ndim = wf.ndim = 2;
      memcpy (wq.shape, shape, sizeof shape);
      memcpy (wf.shape, shape, sizeof shape);
      be->ops->weight_from_host (be, &wq, t->data, t->dtype, WEIGHT_MATRIX);
      be->ops->weight_from_host (be, &wf, r->data, SD35_F32, WEIGHT_MATRIX);
      test_check (wq.dtype == t->dtype && wq.data == t->data,
                  "%s matrix kept quantized (aliased, dtype %s)", type_names[i],
                  sd35_dtype_name (wq.dtype));
      in = tensor_from_f32 (be, x, 2, xs);
      out1 = tensor_new_act2 (be, M, N);
      out2 = tensor_new_act2 (be, M, N);
      op_linear (be, out1, in, &wq, NULL, M, N, K, ACT_NONE);
      op_linear (be, out2, in, &wf, NULL, M, N, K, ACT_NONE);
      if (test_check (!backend_failed (be), "%s linear ran (%s)", type_names[i],
                      be->err.message))
        {
          tensor_to_f32 (out1, o1);
          tensor_to_f32 (out2, o2);
          test_check (memcmp (o1, o2, M * N * 4) == 0,
                      "%s linear equals the fp32-weight linear bit for bit", type_names[i]);
          cpu_matmul_naive (on, x, r->data, NULL, M, N, K, ACT_NONE);
          test_close (type_names[i], o1, on, M * N, 1e-5);
        }
      tensor_free (in);
      tensor_free (out1);
      tensor_free (out2);
      be->ops->release (be, &wq);
      be->ops->release (be, &wf);
    }
  backend_free (be);
  free (x);
  free (o1);
  free (o2);
  free (on);
}

/* Q8_0 at panel width: 37 rows (two full 16-row panels, which the AVX2 widening takes, and a
 * short one) × 768, random blocks; quantized linear = fp32-weight linear bit for bit, with the
 * AVX2 kernels and with the generic C ones. */
static void
test_linear_q8_panels (void)
{
  const int64_t     M = 13, N = 37, K = 768;
  const size_t      nb = (size_t) N * (size_t) K / 32;
  uint8_t          *q = malloc (nb * 34);
  float            *wf = malloc ((size_t) (N * K) * 4), *x = malloc ((size_t) (M * K) * 4);
  float            *o[2][2];
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  uint32_t          seed = 12345;

  for (size_t b = 0; b < nb; b++)
    {
      uint16_t d = sd35_f32_to_f16 (0.001f + 0.0001f * (float) (b % 17));
      memcpy (q + b * 34, &d, 2);
      for (int i = 0; i < 32; i++)
        {
          seed = seed * 1664525u + 1013904223u;
          q[b * 34 + 2 + i] = (uint8_t) (seed >> 24);
        }
    }
  sd35_dequantize (SD35_Q8_0, q, wf, nb);
  for (int64_t i = 0; i < M * K; i++)
    x[i] = cosf (0.11f * (float) i);
  if (!test_check (backend_cpu_new (2, &be, &err) == SD35_OK, "cpu backend (%s)", err.message))
    return;
  for (int generic = 0; generic < 2; generic++)
    {
      const int64_t  shape[2] = { N, K }, xs[2] = { M, K };
      struct tensor  wq = { 0 }, w32 = { 0 };
      struct tensor *in = tensor_from_f32 (be, x, 2, xs);
      struct tensor *a = tensor_new_act2 (be, M, N), *b = tensor_new_act2 (be, M, N);

      cpu_gemm_force_generic = generic;
      wq.ndim = w32.ndim = 2;
      memcpy (wq.shape, shape, sizeof shape);
      memcpy (w32.shape, shape, sizeof shape);
      be->ops->weight_from_host (be, &wq, q, SD35_Q8_0, WEIGHT_MATRIX);
      be->ops->weight_from_host (be, &w32, wf, SD35_F32, WEIGHT_MATRIX);
      op_linear (be, a, in, &wq, NULL, M, N, K, ACT_NONE);
      op_linear (be, b, in, &w32, NULL, M, N, K, ACT_NONE);
      o[generic][0] = malloc ((size_t) (M * N) * 4);
      o[generic][1] = malloc ((size_t) (M * N) * 4);
      tensor_to_f32 (a, o[generic][0]);
      tensor_to_f32 (b, o[generic][1]);
      test_check (!backend_failed (be) && memcmp (o[generic][0], o[generic][1], M * N * 4) == 0,
                  "Q8_0 [37, 768] linear (%s widening) equals the fp32-weight linear bit for bit",
                  generic ? "generic C" : "AVX2 where the CPU has it");
      tensor_free (in);
      tensor_free (a);
      tensor_free (b);
      be->ops->release (be, &wq);
      be->ops->release (be, &w32);
    }
  cpu_gemm_force_generic = 0;
  for (int g = 0; g < 2; g++)
    for (int i = 0; i < 2; i++)
      free (o[g][i]);
  backend_free (be);
  free (q);
  free (wf);
  free (x);
}

/* --- a GGUF built by hand, for the refusals ------------------------------------------------ */

struct gb
{
  GByteArray *b;
};

static void
put (struct gb *g, const void *p, size_t n)
{
  g_byte_array_append (g->b, p, (guint) n);
}
static void
u32 (struct gb *g, uint32_t v)
{
  put (g, &v, 4);
}
static void
u64 (struct gb *g, uint64_t v)
{
  put (g, &v, 8);
}
static void
str (struct gb *g, const char *s)
{
  u64 (g, strlen (s));
  put (g, s, strlen (s));
}

struct spec
{
  uint32_t    version;
  uint64_t    n_tensors_claimed;  /* 0: the real count */
  uint32_t    alignment;          /* 0: no general.alignment key */
  int         dup_key, nested_array, orig_shape, dup_tensor, n_dims5;
  uint32_t    type1;              /* GGML type of tensor "b" */
  uint64_t    ne0_b;              /* its row length */
  uint64_t    off_b;              /* its data offset */
  uint64_t    data_pad;           /* bytes of data after the header */
};

/* Tensors "a" F32 [2, 8] at offset 0 and "b" (type1) [1, ne0_b] at off_b. */
static uint8_t *
build (const struct spec *s, size_t *len)
{
  struct gb g = { g_byte_array_new () };
  int       n_kv = 1 + (s->alignment != 0) + s->dup_key + s->nested_array + s->orig_shape;
  size_t    pos, data_off, al = s->alignment ? s->alignment : 32;

  put (&g, "GGUF", 4);
  u32 (&g, s->version);
  u64 (&g, s->n_tensors_claimed ? s->n_tensors_claimed : 2);
  u64 (&g, (uint64_t) n_kv);
  str (&g, "general.architecture");
  u32 (&g, 8);
  str (&g, "sd3");
  if (s->alignment)
    {
      str (&g, "general.alignment");
      u32 (&g, 4);
      u32 (&g, s->alignment);
    }
  if (s->dup_key)
    {
      str (&g, "general.architecture");
      u32 (&g, 8);
      str (&g, "sd3");
    }
  if (s->nested_array)
    {
      str (&g, "x.nested");
      u32 (&g, 9);
      u32 (&g, 9);
      u64 (&g, 1);
    }
  if (s->orig_shape)
    {
      str (&g, "comfy.gguf.orig_shape.a");
      u32 (&g, 9);
      u32 (&g, 5);
      u64 (&g, 3);
      u32 (&g, 4);
      u32 (&g, 2);
      u32 (&g, 2);
    }
  /* tensor a: F32, ne = {8, 2} */
  str (&g, "a");
  u32 (&g, s->n_dims5 ? 5 : 2);
  u64 (&g, 8);
  u64 (&g, 2);
  if (s->n_dims5)
    for (int k = 0; k < 3; k++)
      u64 (&g, 1);
  u32 (&g, 0);
  u64 (&g, 0);
  /* tensor b */
  str (&g, s->dup_tensor ? "a" : "b");
  u32 (&g, 2);
  u64 (&g, s->ne0_b);
  u64 (&g, 1);
  u32 (&g, s->type1);
  u64 (&g, s->off_b);
  pos = g.b->len;
  data_off = (pos + al - 1) / al * al;
  for (size_t k = pos; k < data_off + s->data_pad; k++)
    {
      uint8_t z = (uint8_t) (k * 7);
      if (k >= data_off)
        z = 0x3c;  /* f16/f32 bytes of harmless finite values */
      put (&g, &z, 1);
    }
  *len = g.b->len;
  return g_byte_array_free (g.b, FALSE);
}

static struct spec
good_spec (void)
{
  /* a: 64 bytes at 0; b: one Q8_0 block of 34 bytes at 64 */
  struct spec s = { 3, 0, 0, 0, 0, 0, 0, 0, 8, 32, 64, 128 };
  return s;
}

static void
expect (const char *what, const uint8_t *buf, size_t len, enum sd35_status want,
        const char *needle)
{
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };
  enum sd35_status  st = st_open_memory (buf, len, "t.gguf", &f, &err);

  if (want == SD35_OK)
    test_check (st == SD35_OK, "%s: opens (%s)", what, err.message);
  else
    test_check (st == want && f == NULL && strstr (err.message, needle) != NULL,
                "%s: refused with \"%s\" (got %d: %s)", what, needle, (int) st, err.message);
  st_close (f);
}

static void
test_refusals (void)
{
  struct spec s;
  uint8_t    *b;
  size_t      len, n_fail = 0;

  s = good_spec ();
  b = build (&s, &len);
  expect ("a valid hand-made file", b, len, SD35_OK, "");
  {
    struct st_file   *f = NULL;
    struct sd35_error err = { 0 };
    if (st_open_memory (b, len, "t.gguf", &f, &err) == SD35_OK)
      {
        const struct st_tensor *a = st_find (f, "a"), *q = st_find (f, "b");
        test_check (a && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 8 && a->nbytes == 64
                    && q && q->dtype == SD35_Q8_0 && q->nbytes == 34
                    && st_metadata (f, "general.architecture")
                    && strcmp (st_metadata (f, "general.architecture"), "sd3") == 0,
                    "shapes reversed to torch order, Q8_0 size, string metadata");
      }
    st_close (f);
  }
  /* every truncation before the end of the last tensor's data (98 bytes into the 128-byte
   * data area) is refused without a crash */
  for (size_t n = 0; n < len - 30; n++)
    {
      struct st_file   *f = NULL;
      struct sd35_error err = { 0 };
      if (st_open_memory (b, n, "t.gguf", &f, &err) == SD35_OK)
        n_fail++;
      st_close (f);
    }
  test_check (n_fail == 0, "all %zu truncations refused (%zu opened)", len - 30, n_fail);
  b[0] = 'X';
  expect ("bad magic", b, len, SD35_ERR_FORMAT, "invalid safetensors");
  g_free (b);

  s = good_spec (); s.version = 1; b = build (&s, &len);
  expect ("version 1", b, len, SD35_ERR_FORMAT, "version 1");
  g_free (b);
  s = good_spec (); s.version = 0x03000000; b = build (&s, &len);
  expect ("big-endian", b, len, SD35_ERR_FORMAT, "not supported");
  g_free (b);
  s = good_spec (); s.n_tensors_claimed = (uint64_t) 1 << 60; b = build (&s, &len);
  expect ("huge tensor count", b, len, SD35_ERR_FORMAT, "cannot fit");
  g_free (b);
  s = good_spec (); s.alignment = 24; b = build (&s, &len);
  expect ("alignment 24", b, len, SD35_ERR_FORMAT, "power of two");
  g_free (b);
  s = good_spec (); s.alignment = 64; b = build (&s, &len);
  expect ("alignment 64", b, len, SD35_OK, "");
  g_free (b);
  s = good_spec (); s.dup_key = 1; b = build (&s, &len);
  expect ("duplicate key", b, len, SD35_ERR_FORMAT, "appears twice");
  g_free (b);
  s = good_spec (); s.nested_array = 1; b = build (&s, &len);
  expect ("array of arrays", b, len, SD35_ERR_FORMAT, "array");
  g_free (b);
  s = good_spec (); s.dup_tensor = 1; b = build (&s, &len);
  expect ("duplicate tensor", b, len, SD35_ERR_FORMAT, "\"a\" appears twice");
  g_free (b);
  s = good_spec (); s.n_dims5 = 1; b = build (&s, &len);
  expect ("5 dimensions", b, len, SD35_ERR_FORMAT, "5 dimensions");
  g_free (b);
  s = good_spec (); s.type1 = 10; b = build (&s, &len);
  expect ("Q2_K", b, len, SD35_ERR_FORMAT, "GGML type Q2_K, which this program cannot");
  g_free (b);
  s = good_spec (); s.type1 = 99; b = build (&s, &len);
  expect ("unknown type", b, len, SD35_ERR_FORMAT, "unknown GGML type 99");
  g_free (b);
  s = good_spec (); s.ne0_b = 40; b = build (&s, &len);
  expect ("partial block", b, len, SD35_ERR_FORMAT, "not whole blocks of 32");
  g_free (b);
  s = good_spec (); s.off_b = 48; b = build (&s, &len);
  expect ("misaligned offset", b, len, SD35_ERR_FORMAT, "not a multiple of the alignment");
  g_free (b);
  s = good_spec (); s.off_b = 32; b = build (&s, &len);
  expect ("overlap", b, len, SD35_ERR_FORMAT, "overlap");
  g_free (b);
  s = good_spec (); s.off_b = 128; b = build (&s, &len);
  expect ("past the end", b, len, SD35_ERR_FORMAT, "past the end");
  g_free (b);
  s = good_spec (); s.off_b = UINT64_MAX - 31; b = build (&s, &len);
  expect ("offset near 2^64", b, len, SD35_ERR_FORMAT, "past the end");
  g_free (b);
  s = good_spec (); s.ne0_b = (uint64_t) 1 << 62; b = build (&s, &len);
  expect ("huge row", b, len, SD35_ERR_FORMAT, "");
  g_free (b);
  s = good_spec (); s.orig_shape = 1; b = build (&s, &len);
  {
    struct st_file   *f = NULL;
    struct sd35_error err = { 0 };
    const struct st_tensor *a = NULL;
    if (st_open_memory (b, len, "t.gguf", &f, &err) == SD35_OK)
      a = st_find (f, "a");
    test_check (a && a->ndim == 3 && a->shape[0] == 4 && a->shape[1] == 2 && a->shape[2] == 2,
                "comfy.gguf.orig_shape gives the torch shape [4, 2, 2] (%s)", err.message);
    st_close (f);
  }
  g_free (b);
}

int
main (void)
{
  char             *gp = data_path ("dequant.gguf"), *rp = data_path ("dequant_ref.safetensors");
  struct st_file   *g = NULL, *ref = NULL;
  struct sd35_error err = { 0 };

  if (test_check (st_open (gp, &g, &err) == SD35_OK, "open %s (%s)", gp, err.message)
      && test_check (st_open (rp, &ref, &err) == SD35_OK, "open %s (%s)", rp, err.message))
    {
      test_dequant_reference (g, ref);
      test_linear (g, ref);
    }
  st_close (g);
  st_close (ref);
  g_free (gp);
  g_free (rp);
  test_linear_q8_panels ();
  test_refusals ();
  return test_exit ();
}
