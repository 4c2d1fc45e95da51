/* cpu_backend.c — the CPU backend of ops.h: the op table, host memory (with byte accounting),
 * weight storage choices and a tiny fork/join thread helper.
 *
 * Weights (weight_from_host): F32 files are aliased (the mmap outlives the engine), F16/BF16
 * matrices are aliased too and widened panel by panel inside the GEMM, FP8 matrices become
 * BF16 (exact: e4m3/e5m2 fit in bf16's 8-bit exponent and 7-bit mantissa), and every vector
 * becomes an owned F32 copy.  Misaligned sources are copied rather than aliased, so no load
 * is ever unaligned.  GGUF block-quantized matrices (Q8_0 … Q6_K) are aliased as they are and
 * dequantized per block inside the GEMM's weight packing (rows must be whole blocks), as are
 * tables read by row (pos_embed); other quantized tensors (vectors) become owned F32. */
#include "cpu_ops.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

/* --- thread pool ------------------------------------------------------------------------ */

struct par_job
{
  cpu_range_fn fn;
  void        *ctx;
  int64_t      begin, end;
};

static void *
par_main (void *arg)
{
  struct par_job *j = arg;
  j->fn (j->ctx, j->begin, j->end);
  return NULL;
}

/* Below this many flops a job stays on the calling thread (a thread start costs ~20 µs). */
#define CPU_PAR_MIN_COST 2.0e5

void
cpu_parallel_for (struct backend *be, int64_t n, double cost, cpu_range_fn fn, void *ctx)
{
  int64_t   nt = cpu_threads (be);
  pthread_t tid[64];
  struct par_job jobs[64];
  int       started[64];

  if (n <= 0)
    return;
  if (nt > 64)
    nt = 64;
  if (nt > n)
    nt = n;
  if (nt > 1 && (double) n * cost < CPU_PAR_MIN_COST * (double) nt)
    nt = (int64_t) ((double) n * cost / CPU_PAR_MIN_COST) + 1;
  if (nt <= 1)
    {
      fn (ctx, 0, n);
      return;
    }
  for (int64_t t = 0; t < nt; t++)
    {
      jobs[t].fn = fn;
      jobs[t].ctx = ctx;
      jobs[t].begin = n * t / nt;
      jobs[t].end = n * (t + 1) / nt;
      started[t] = 0;
    }
  for (int64_t t = 1; t < nt; t++)
    started[t] = pthread_create (&tid[t], NULL, par_main, &jobs[t]) == 0;
  fn (ctx, jobs[0].begin, jobs[0].end);
  for (int64_t t = 1; t < nt; t++)
    {
      if (started[t])
        pthread_join (tid[t], NULL);
      else
        fn (ctx, jobs[t].begin, jobs[t].end);  /* could not start a thread: do it here */
    }
}

/* --- memory ------------------------------------------------------------------------------ */

static enum sd35_status
tensor_bytes (struct backend *be, const struct tensor *t, size_t *bytes)
{
  if (sd35_dtype_nbytes (t->dtype, t->numel, bytes) != 0)
    return sd35_set_error (&be->err, SD35_ERR_OOM,
                           "tensor of %zu elements of %s is too large for this machine",
                           t->numel, sd35_dtype_name (t->dtype));
  return SD35_OK;
}

/* Owned buffers are recorded in t->priv (== t->data); aliases of the mmap have priv NULL. */
static enum sd35_status
cpu_alloc (struct backend *be, struct tensor *t)
{
  struct cpu_backend *cpu = be->impl;
  size_t              bytes;
  void  *p = NULL;

  if (tensor_bytes (be, t, &bytes) != SD35_OK)
    return be->err.status;
  if (++cpu->n_allocs == cpu->fail_alloc_at)
    return sd35_set_error (&be->err, SD35_ERR_OOM, "out of host memory allocating %zu bytes "
                           "(allocation %ld refused by SD35_TEST_FAIL_ALLOC_AT)", bytes,
                           cpu->n_allocs);
  if (posix_memalign (&p, 64, bytes ? bytes : 64) != 0)
    return sd35_set_error (&be->err, SD35_ERR_OOM,
                           "out of host memory allocating %zu bytes for a [%lld%s] tensor "
                           "(in use: %zu MiB); try a smaller image", bytes,
                           (long long) t->shape[0], t->ndim > 1 ? ", ..." : "",
                           be->bytes_in_use >> 20);
  t->data = p;
  t->priv = p;
  be->bytes_in_use += bytes;
  if (be->bytes_in_use > be->peak_bytes)
    be->peak_bytes = be->bytes_in_use;
  return SD35_OK;
}

static void
cpu_release (struct backend *be, struct tensor *t)
{
  size_t bytes;

  if (t->priv != NULL)
    {
      if (sd35_dtype_nbytes (t->dtype, t->numel, &bytes) == 0 &&
          bytes <= be->bytes_in_use)
        be->bytes_in_use -= bytes;
      free (t->priv);
    }
  t->priv = NULL;
  t->data = NULL;
}

static void
cpu_upload_f32 (struct backend *be, struct tensor *dst, const float *src)
{
  if (dst->dtype != SD35_F32)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "cpu upload_f32: destination is %s, not F32",
                      sd35_dtype_name (dst->dtype));
      return;
    }
  memcpy (dst->data, src, dst->numel * sizeof (float));
}

static void
cpu_download_f32 (struct backend *be, float *dst, const struct tensor *src)
{
  if (src->dtype == SD35_F32)
    memcpy (dst, src->data, src->numel * sizeof (float));
  else if (sd35_dtype_is_float (src->dtype))
    sd35_convert_to_f32 (dst, src->data, src->dtype, src->numel);
  else
    sd35_set_error (&be->err, SD35_ERR_INTERNAL, "cpu download_f32: %s tensor is not float",
                    sd35_dtype_name (src->dtype));
}

static enum sd35_status
cpu_weight_from_host (struct backend *be, struct tensor *t, const void *src,
                      enum sd35_dtype src_dtype, enum weight_use use)
{
  size_t numel = 1;

  if (t->ndim < 0 || t->ndim > 4)
    return sd35_set_error (&be->err, SD35_ERR_INTERNAL, "weight with %d dims", t->ndim);
  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] < 0 || sd35_mul_size (numel, (size_t) t->shape[i], &numel) != 0)
      return sd35_set_error (&be->err, SD35_ERR_SHAPE, "weight shape overflows");
  t->be = be;
  t->numel = numel;
  t->priv = NULL;

  switch (src_dtype)
    {
    case SD35_F32:
    case SD35_F16:
    case SD35_BF16:
      if ((src_dtype == SD35_F32 || use == WEIGHT_MATRIX) &&
          ((uintptr_t) src % sd35_dtype_size (src_dtype)) == 0)
        {
          t->dtype = src_dtype;
          t->data = (void *) src;  /* alias the mapping: no copy, no accounting */
          return SD35_OK;
        }
      t->dtype = use == WEIGHT_MATRIX ? src_dtype : SD35_F32;
      if (cpu_alloc (be, t) != SD35_OK)
        return be->err.status;
      if (t->dtype == src_dtype)
        memcpy (t->data, src, numel * sd35_dtype_size (src_dtype));
      else
        sd35_convert_to_f32 (t->data, src, src_dtype, numel);
      return SD35_OK;
    case SD35_F8_E4M3:
    case SD35_F8_E5M2:
      t->dtype = use == WEIGHT_MATRIX ? SD35_BF16 : SD35_F32;
      if (cpu_alloc (be, t) != SD35_OK)
        return be->err.status;
      if (t->dtype == SD35_F32)
        sd35_convert_to_f32 (t->data, src, src_dtype, numel);
      else
        {
          const uint8_t *s = src;
          uint16_t      *d = t->data;
          for (size_t i = 0; i < numel; i++)
            d[i] = sd35_f32_to_bf16 (src_dtype == SD35_F8_E4M3 ? sd35_f8e4m3_to_f32 (s[i])
                                                                : sd35_f8e5m2_to_f32 (s[i]));
        }
      return SD35_OK;
    default:
      if (sd35_dtype_is_quant (src_dtype))
        {
          /* matrices (rows of whole blocks: the GEMM widens them per panel) and tables read
           * by row (op_embedding: the MMDiT's pos_embed, 147456 × 1536 in Medium) stay
           * quantized */
          if (use == WEIGHT_MATRIX && t->ndim >= 1
              && t->shape[t->ndim - 1] % (int64_t) sd35_dtype_block_elems (src_dtype) == 0)
            {
              t->dtype = src_dtype;
              t->data = (void *) src;
              return SD35_OK;
            }
          t->dtype = SD35_F32;
          if (cpu_alloc (be, t) != SD35_OK)
            return be->err.status;
          sd35_convert_to_f32 (t->data, src, src_dtype, numel);
          return SD35_OK;
        }
      return sd35_set_error (&be->err, SD35_ERR_SHAPE,
                             "weight of dtype %s: expected F32, F16, BF16, FP8 or a GGUF type",
                             sd35_dtype_name (src_dtype));
    }
}

static void
cpu_synchronize (struct backend *be)
{
}

const float *
cpu_f32_view (struct backend *be, const struct tensor *t, size_t n, float **tmp)
{
  *tmp = NULL;
  if (t->dtype == SD35_F32)
    return t->data;
  if (!sd35_dtype_is_float (t->dtype))
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "cpu op: %s tensor where a float one is "
                      "expected", sd35_dtype_name (t->dtype));
      return NULL;
    }
  *tmp = cpu_scratch (be, n, "a weight converted to fp32");
  if (*tmp != NULL)
    sd35_convert_to_f32 (*tmp, t->data, t->dtype, n);
  return *tmp;
}

float *
cpu_scratch (struct backend *be, size_t n, const char *what)
{
  size_t bytes;
  if (sd35_mul_size (n ? n : 1, sizeof (float), &bytes) != 0)
    {
      sd35_set_error (&be->err, SD35_ERR_OOM, "scratch for %s overflows", what);
      return NULL;
    }
  return sd35_malloc (bytes, what, &be->err);
}

/* The RAM the system could give now (tensors live there). */
static size_t
cpu_free_bytes (struct backend *be)
{
  long pages = sysconf (_SC_AVPHYS_PAGES), page_size = sysconf (_SC_PAGESIZE);

  if (pages <= 0 || page_size <= 0)
    return SIZE_MAX;
  return (size_t) pages * (size_t) page_size;
}

static void
cpu_destroy (struct backend *be)
{
  free (be->impl);
  free (be);
}

static const struct backend_ops cpu_ops = {
  .destroy = cpu_destroy,
  .alloc = cpu_alloc,
  .release = cpu_release,
  .upload_f32 = cpu_upload_f32,
  .download_f32 = cpu_download_f32,
  .weight_from_host = cpu_weight_from_host,
  .synchronize = cpu_synchronize,
  .linear = cpu_op_linear,
  .attention = cpu_op_attention,
  .layernorm = cpu_op_layernorm,
  .rmsnorm = cpu_op_rmsnorm,
  .qk_rmsnorm = cpu_op_qk_rmsnorm,
  .ln_modulate = cpu_op_ln_modulate,
  .gated_add = cpu_op_gated_add,
  .groupnorm = cpu_op_groupnorm,
  .activation = cpu_op_activation,
  .add = cpu_op_add,
  .mul = cpu_op_mul,
  .add_broadcast = cpu_op_add_broadcast,
  .copy = cpu_op_copy,
  .concat_rows = cpu_op_concat_rows,
  .split_rows = cpu_op_split_rows,
  .transpose = cpu_op_transpose,
  .embedding = cpu_op_embedding,
  .conv2d = cpu_op_conv2d,
  .upsample2x = cpu_op_upsample2x,
  .patchify = cpu_op_patchify,
  .unpatchify = cpu_op_unpatchify,
  .free_bytes = cpu_free_bytes,
};

enum sd35_status
backend_cpu_new (int n_threads, struct backend **out, struct sd35_error *err)
{
  struct backend     *be;
  struct cpu_backend *cpu;

  *out = NULL;
  if (n_threads < 0)
    return sd35_set_error (err, SD35_ERR_ARG, "CPU thread count %d: expected 0 (all cores) "
                           "or more", n_threads);
  if (n_threads == 0)
    {
      long n = sysconf (_SC_NPROCESSORS_ONLN);
      n_threads = n > 0 ? (int) n : 1;
    }
  if (n_threads > 64)
    n_threads = 64;
  be = sd35_calloc (1, sizeof *be, "the CPU backend", err);
  cpu = sd35_calloc (1, sizeof *cpu, "the CPU backend", err);
  if (be == NULL || cpu == NULL)
    {
      free (be);
      free (cpu);
      return SD35_ERR_OOM;
    }
  cpu->n_threads = n_threads;
  if (getenv ("SD35_TEST_FAIL_ALLOC_AT") != NULL)  /* test hook, see cpu_ops.h */
    cpu->fail_alloc_at = atol (getenv ("SD35_TEST_FAIL_ALLOC_AT"));
  be->name = "cpu";
  be->ops = &cpu_ops;
  be->act_dtype = SD35_F32;
  be->impl = cpu;
  *out = be;
  return SD35_OK;
}
