/* bf16_emu.c — a test-only backend: the fp32 CPU backend, with every bf16 activation rounded
 * to bf16 when it is stored (uploads and every op's outputs) and every matrix weight rounded to
 * bf16 at load, which is where the CUDA backend (kernels/) keeps bf16.  Like CUDA, its
 * act_dtype is BF16 and tensors carry their own dtype (ops.h): a tensor the model code asks
 * for in SD35_F32 (residual streams, adaLN vectors, ...) is stored and kept in fp32, not
 * rounded.  A BF16 tensor is held in fp32 storage (its dtype reads F32 after alloc, so the CPU
 * ops run on it) and its data pointer is remembered: that list decides what gets rounded.
 * Vectors (biases, norm weights) stay fp32 as on CUDA; accumulation is fp32 on both.  The
 * GEMM ops (linear, conv2d, attention) take bf16 operands on CUDA, converting an fp32 input
 * on the way in: here such an input is rounded too (a rounded copy; gemm_input), except an
 * fp32 linear input of at most 8 rows, which CUDA reads exactly (kernels/gemv_kernel.cuh).
 * It does not emulate the GPU's summation order or the bf16 attention probabilities, so it
 * estimates the error budget of bf16 storage, it does not replace a GPU run.  Used by test_goldens_cuda when
 * SD35_TEST_BF16_EMU=1 and no GPU is present; SD35_TEST_BF16_EMU_FAIL=k makes the k-th op of
 * each emulated backend fail like a CUDA launch error (checks that the test reports it). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "goldens_cuda.h"

#define EMU_GEMV_MAX_M 8   /* GEMV_MAX_M of kernels/gemv_kernel.cuh */

struct emu
{
  struct backend *cpu;
  uint16_t      **kept;   /* bf16 copies of f16/f32 matrix weights (the CPU backend aliases them) */
  size_t          n_kept, cap_kept;
  void          **bf16;   /* data pointers of the tensors allocated as BF16 (rounded) */
  size_t          n_bf16, cap_bf16;
  long            n_ops, fail_at;  /* fail_at > 0: injected error at that op */
};

static struct backend *
in (struct backend *be)
{
  return ((struct emu *) be->impl)->cpu;
}

static size_t
bf16_index (const struct emu *e, const void *data)
{
  for (size_t i = e->n_bf16; i-- > 0;)
    if (e->bf16[i] == data)
      return i;
  return (size_t) -1;
}

/* rounds t's values to bf16 if t was allocated as a BF16 activation (F32 tensors stay) */
static void
round_bf16 (struct emu *e, struct tensor *t)
{
  float *d;

  if (t == NULL || t->dtype != SD35_F32 || t->data == NULL
      || bf16_index (e, t->data) == (size_t) -1)
    return;
  d = t->data;
  for (size_t i = 0; i < t->numel; i++)
    d[i] = sd35_bf16_to_f32 (sd35_f32_to_bf16 (d[i]));
}

/* The operand a CUDA GEMM sees: an fp32 tensor is converted to bf16 first (gemm.cu, conv.cu,
 * attention.cu), so a rounded copy of it in *tmp (released by gemm_input_done); bf16 ones
 * and NULL as they are.  NULL with the error in the CPU backend if the copy cannot be made. */
static const struct tensor *
gemm_input (struct backend *be, const struct tensor *t, struct tensor *tmp)
{
  struct emu     *e = be->impl;
  struct backend *c = in (be);
  float          *d;

  tmp->data = NULL;
  if (t == NULL || t->dtype != SD35_F32 || bf16_index (e, t->data) != (size_t) -1)
    return t;
  *tmp = *t;
  tmp->be = c;
  tmp->data = tmp->priv = NULL;
  if (c->ops->alloc (c, tmp) != SD35_OK)
    return NULL;
  d = tmp->data;
  for (size_t i = 0; i < t->numel; i++)
    d[i] = sd35_bf16_to_f32 (sd35_f32_to_bf16 (((const float *) t->data)[i]));
  return tmp;
}

static void
gemm_input_done (struct backend *be, struct tensor *tmp)
{
  if (tmp->data != NULL)
    in (be)->ops->release (in (be), tmp);
}

/* after every call: the CPU backend's sticky error and memory counters become ours */
static void
after (struct backend *be, struct tensor *o1, struct tensor *o2)
{
  struct backend *c = in (be);
  struct emu     *e = be->impl;

  if (++e->n_ops == e->fail_at)
    sd35_set_error (&c->err, SD35_ERR_CUDA, "bf16 emu: injected failure at op %ld "
                    "(SD35_TEST_BF16_EMU_FAIL)", e->n_ops);
  if (c->err.status != SD35_OK && be->err.status == SD35_OK)
    be->err = c->err;
  be->bytes_in_use = c->bytes_in_use;
  be->peak_bytes = c->peak_bytes;
  if (be->err.status == SD35_OK)
    {
      round_bf16 (e, o1);
      round_bf16 (e, o2);
    }
}

static void
emu_destroy (struct backend *be)
{
  struct emu *e = be->impl;

  for (size_t i = 0; i < e->n_kept; i++)
    free (e->kept[i]);
  free (e->kept);
  free (e->bf16);
  backend_free (e->cpu);
  free (e);
  free (be);
}

/* a BF16 activation gets fp32 storage and is listed for rounding; F32 ones are plain */
static enum sd35_status
emu_alloc (struct backend *be, struct tensor *t)
{
  struct emu      *e = be->impl;
  int              is_bf16 = t->dtype == SD35_BF16;
  enum sd35_status st;

  if (is_bf16 && e->n_bf16 == e->cap_bf16)
    {
      size_t cap = e->cap_bf16 ? 2 * e->cap_bf16 : 256;
      void **p = realloc (e->bf16, cap * sizeof *p);
      if (p == NULL)
        return sd35_set_error (&be->err, SD35_ERR_OOM, "bf16 emu: out of memory");
      e->bf16 = p;
      e->cap_bf16 = cap;
    }
  if (is_bf16)
    t->dtype = SD35_F32;
  st = in (be)->ops->alloc (in (be), t);
  if (st == SD35_OK && is_bf16)
    e->bf16[e->n_bf16++] = t->data;
  after (be, NULL, NULL);
  return st;
}

static void
emu_release (struct backend *be, struct tensor *t)
{
  struct emu *e = be->impl;
  size_t      i = t->data ? bf16_index (e, t->data) : (size_t) -1;

  if (i != (size_t) -1)
    e->bf16[i] = e->bf16[--e->n_bf16];
  in (be)->ops->release (in (be), t);
  after (be, NULL, NULL);
}

static void
emu_upload_f32 (struct backend *be, struct tensor *dst, const float *src)
{
  in (be)->ops->upload_f32 (in (be), dst, src);
  after (be, dst, NULL);
}

static void
emu_download_f32 (struct backend *be, float *dst, const struct tensor *src)
{
  in (be)->ops->download_f32 (in (be), dst, src);
  after (be, NULL, NULL);
}

static enum sd35_status
emu_weight_from_host (struct backend *be, struct tensor *t, const void *src,
                      enum sd35_dtype src_dtype, enum weight_use use)
{
  struct emu      *e = be->impl;
  size_t           numel = 1;
  uint16_t        *b;
  enum sd35_status st;

  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] < 0 || sd35_mul_size (numel, (size_t) t->shape[i], &numel) != 0)
      return sd35_set_error (&be->err, SD35_ERR_SHAPE, "bf16 emu: weight shape overflows");
  if (use == WEIGHT_MATRIX && (src_dtype == SD35_F16 || src_dtype == SD35_F32))
    {
      if (e->n_kept == e->cap_kept)
        {
          size_t    cap = e->cap_kept ? 2 * e->cap_kept : 64;
          uint16_t **k = realloc (e->kept, cap * sizeof *k);
          if (k == NULL)
            return sd35_set_error (&be->err, SD35_ERR_OOM, "bf16 emu: out of memory");
          e->kept = k;
          e->cap_kept = cap;
        }
      if ((b = sd35_malloc ((numel ? numel : 1) * sizeof *b, "a bf16 weight", &be->err)) == NULL)
        return be->err.status;
      for (size_t i = 0; i < numel; i++)
        {
          float f = src_dtype == SD35_F16 ? sd35_f16_to_f32 (((const uint16_t *) src)[i])
                                          : ((const float *) src)[i];
          b[i] = sd35_f32_to_bf16 (f);
        }
      e->kept[e->n_kept++] = b;
      src = b;
      src_dtype = SD35_BF16;
    }
  st = in (be)->ops->weight_from_host (in (be), t, src, src_dtype, use);
  t->be = be;
  after (be, NULL, NULL);
  if (st == SD35_OK && backend_failed (be))
    in (be)->ops->release (in (be), t);  /* injected failure: the caller frees only t */
  return be->err.status;
}

static void
emu_synchronize (struct backend *be)
{
  in (be)->ops->synchronize (in (be));
  after (be, NULL, NULL);
}

/* the ops: the CPU's, then the outputs rounded */
static void
emu_linear (struct backend *be, struct tensor *out, const struct tensor *x,
            const struct tensor *w, const struct tensor *b, int64_t M, int64_t N, int64_t K,
            enum op_act act)
{
  struct tensor        tmp, tmp_b;
  const struct tensor *xr = x, *br = b;

  /* at most GEMV_MAX_M rows of an fp32 input: CUDA's GEMV kernel reads them exactly */
  tmp.data = tmp_b.data = NULL;
  if (M > EMU_GEMV_MAX_M || x->dtype != SD35_F32)
    {
      xr = gemm_input (be, x, &tmp);
      /* cuBLASLt's fused bias is in the output dtype (kernels/gemm.cu: the bf16 twin) */
      if (out->dtype == SD35_BF16)
        br = gemm_input (be, b, &tmp_b);
    }
  if (xr != NULL && (b == NULL || br != NULL))
    in (be)->ops->linear (in (be), out, xr, w, br, M, N, K, act);
  gemm_input_done (be, &tmp);
  gemm_input_done (be, &tmp_b);
  after (be, out, NULL);
}

static void
emu_attention (struct backend *be, struct tensor *out, const struct tensor *qkv,
               const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
               float scale, int causal)
{
  struct tensor        tmp;
  const struct tensor *qr = gemm_input (be, qkv, &tmp);

  if (qr != NULL)
    in (be)->ops->attention (in (be), out, qr, bias, B, L, H, dh, scale, causal);
  gemm_input_done (be, &tmp);
  after (be, out, NULL);
}

static void
emu_layernorm (struct backend *be, struct tensor *out, const struct tensor *x,
               const struct tensor *w, const struct tensor *b, int64_t rows, int64_t D, float eps)
{
  in (be)->ops->layernorm (in (be), out, x, w, b, rows, D, eps);
  after (be, out, NULL);
}

static void
emu_rmsnorm (struct backend *be, struct tensor *out, const struct tensor *x,
             const struct tensor *w, int64_t rows, int64_t D, float eps)
{
  in (be)->ops->rmsnorm (in (be), out, x, w, rows, D, eps);
  after (be, out, NULL);
}

static void
emu_qk_rmsnorm (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                const struct tensor *wk, int64_t rows, int64_t H, int64_t dh, float eps)
{
  in (be)->ops->qk_rmsnorm (in (be), qkv, wq, wk, rows, H, dh, eps);
  after (be, qkv, NULL);
}

static void
emu_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *x,
                 const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                 int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps)
{
  in (be)->ops->ln_modulate (in (be), out, x, mod, n_chunks, shift_chunk, scale_chunk, B, N, D,
                             eps);
  after (be, out, NULL);
}

static void
emu_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
               const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t B,
               int64_t N, int64_t D)
{
  in (be)->ops->gated_add (in (be), x, y, mod, n_chunks, gate_chunk, B, N, D);
  after (be, x, NULL);
}

static void
emu_groupnorm (struct backend *be, struct tensor *out, const struct tensor *x,
               const struct tensor *w, const struct tensor *b, int64_t B, int64_t C, int64_t HW,
               int64_t groups, float eps, int silu)
{
  in (be)->ops->groupnorm (in (be), out, x, w, b, B, C, HW, groups, eps, silu);
  after (be, out, NULL);
}

static void
emu_activation (struct backend *be, struct tensor *out, const struct tensor *x, int64_t n,
                enum op_act act)
{
  in (be)->ops->activation (in (be), out, x, n, act);
  after (be, out, NULL);
}

static void
emu_add (struct backend *be, struct tensor *out, const struct tensor *a, const struct tensor *b,
         int64_t n)
{
  in (be)->ops->add (in (be), out, a, b, n);
  after (be, out, NULL);
}

static void
emu_mul (struct backend *be, struct tensor *out, const struct tensor *a, const struct tensor *b,
         int64_t n)
{
  in (be)->ops->mul (in (be), out, a, b, n);
  after (be, out, NULL);
}

static void
emu_add_broadcast (struct backend *be, struct tensor *out, const struct tensor *x,
                   const struct tensor *vec, int64_t B, int64_t n)
{
  in (be)->ops->add_broadcast (in (be), out, x, vec, B, n);
  after (be, out, NULL);
}

static void
emu_copy (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n)
{
  in (be)->ops->copy (in (be), dst, src, n);
  after (be, dst, NULL);
}

static void
emu_concat_rows (struct backend *be, struct tensor *out, const struct tensor *a,
                 const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  in (be)->ops->concat_rows (in (be), out, a, b, B, L1, L2, C);
  after (be, out, NULL);
}

static void
emu_split_rows (struct backend *be, struct tensor *a, struct tensor *b, const struct tensor *x,
                int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  in (be)->ops->split_rows (in (be), a, b, x, B, L1, L2, C);
  after (be, a, b);
}

static void
emu_transpose (struct backend *be, struct tensor *out, const struct tensor *x, int64_t B,
               int64_t C, int64_t N)
{
  in (be)->ops->transpose (in (be), out, x, B, C, N);
  after (be, out, NULL);
}

static void
emu_embedding (struct backend *be, struct tensor *out, const struct tensor *table,
               const int32_t *ids, int64_t n, int64_t D)
{
  in (be)->ops->embedding (in (be), out, table, ids, n, D);
  after (be, out, NULL);
}

static void
emu_conv2d (struct backend *be, struct tensor *out, const struct tensor *x,
            const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci, int64_t H,
            int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride, int64_t pt,
            int64_t pl, int64_t pb, int64_t pr)
{
  struct tensor        tmp;
  const struct tensor *xr = gemm_input (be, x, &tmp);

  if (xr != NULL)
    in (be)->ops->conv2d (in (be), out, xr, w, b, B, Ci, H, W, Co, kh, kw, stride, pt, pl, pb,
                          pr);
  gemm_input_done (be, &tmp);
  after (be, out, NULL);
}

static void
emu_upsample2x (struct backend *be, struct tensor *out, const struct tensor *x, int64_t B,
                int64_t C, int64_t H, int64_t W)
{
  in (be)->ops->upsample2x (in (be), out, x, B, C, H, W);
  after (be, out, NULL);
}

static void
emu_patchify (struct backend *be, struct tensor *out, const struct tensor *x, int64_t B,
              int64_t C, int64_t H, int64_t W, int64_t p)
{
  in (be)->ops->patchify (in (be), out, x, B, C, H, W, p);
  after (be, out, NULL);
}

static void
emu_unpatchify (struct backend *be, struct tensor *out, const struct tensor *x, int64_t B,
                int64_t C, int64_t H, int64_t W, int64_t p)
{
  in (be)->ops->unpatchify (in (be), out, x, B, C, H, W, p);
  after (be, out, NULL);
}

static const struct backend_ops emu_ops = {
  emu_destroy, emu_alloc, emu_release, emu_upload_f32, emu_download_f32, emu_weight_from_host,
  emu_synchronize, emu_linear, emu_attention, emu_layernorm, emu_rmsnorm, emu_qk_rmsnorm,
  emu_ln_modulate, emu_gated_add, emu_groupnorm, emu_activation, emu_add, emu_mul,
  emu_add_broadcast, emu_copy, emu_concat_rows, emu_split_rows, emu_transpose, emu_embedding,
  emu_conv2d, emu_upsample2x, emu_patchify, emu_unpatchify,
  NULL,   /* free_bytes: unknown (host memory, like the CPU backend it wraps) */
};

enum sd35_status
bf16_emu_backend_new (struct backend **out, struct sd35_error *err)
{
  struct backend *be, *cpu = NULL;
  struct emu     *e;

  *out = NULL;
  if (backend_cpu_new (0, &cpu, err) != SD35_OK)
    return err->status;
  be = sd35_calloc (1, sizeof *be, "the bf16 emulation backend", err);
  e = sd35_calloc (1, sizeof *e, "the bf16 emulation backend", err);
  if (be == NULL || e == NULL)
    {
      free (be);
      free (e);
      backend_free (cpu);
      return SD35_ERR_OOM;
    }
  e->cpu = cpu;
  e->fail_at = getenv ("SD35_TEST_BF16_EMU_FAIL") ? atol (getenv ("SD35_TEST_BF16_EMU_FAIL")) : 0;
  be->name = "cpu-bf16-emu";
  be->ops = &emu_ops;
  be->act_dtype = SD35_BF16;   /* as CUDA: activations bf16 unless asked for in F32 */
  be->impl = e;
  *out = be;
  return SD35_OK;
}
