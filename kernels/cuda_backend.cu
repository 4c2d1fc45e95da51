/* cuda_backend.cu — the CUDA backend of engine/ops.h: device selection, the op table, memory
 * (a caching pool: blocks are rounded to size classes and kept on free lists, so the denoising
 * loop does no cudaMalloc/cudaFree), host⇄device transfers and weight conversion.
 *
 * One stream per backend: every op is enqueued on it, so a block released on the host may be
 * handed to the next op at once (stream order guarantees the previous user has finished).
 *
 * Storage dtypes: activations bf16; WEIGHT_MATRIX → bf16 (fp8/f16/fp32 converted on the
 * device at upload); WEIGHT_VECTOR → fp32 (biases, norm weights, pos-embed: tiny, and fp32
 * keeps them exact; every kernel reads fp32 or bf16 vectors).  A 1-D fp32 vector also gets a
 * bf16 twin at upload (cuda_vector_twin): cuBLASLt's fused bias wants the output's dtype.
 *
 * Host → device copies of activations (upload_f32, embedding ids: the per-step path) go
 * through one pinned staging buffer: the copy is truly asynchronous, and the caller's pageable
 * buffer may be freed at once (it was copied into the staging buffer first).  An event marks
 * when the previous copy out of the staging buffer has finished. */
#include "cuda_common.h"
#include "cuda_timer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_WORKSPACE_BYTES (64u << 20)   /* cuBLASLt workspace (Hopper kernels like 32+ MiB) */

/* --- errors ---------------------------------------------------------------------------------- */

static const char *
base_name (const char *path)
{
  const char *s = strrchr (path, '/');
  return s ? s + 1 : path;
}

int
cuda_record (struct backend *be, cudaError_t e, const char *call, const char *file, int line)
{
  if (e == cudaSuccess)
    return 0;
  cudaGetLastError ();   /* clear non-sticky errors so later checks see their own */
  sd35_set_error (&be->err, e == cudaErrorMemoryAllocation ? SD35_ERR_OOM : SD35_ERR_CUDA,
                  "CUDA error at %s:%d in %s: %s (%s)%s", base_name (file), line, call,
                  cudaGetErrorString (e), cudaGetErrorName (e),
                  e == cudaErrorMemoryAllocation
                  ? "; hint: use a smaller image or a smaller model, or close other GPU programs"
                  : "");
  return 1;
}

int
cublas_record (struct backend *be, cublasStatus_t s, const char *call, const char *file,
               int line)
{
  if (s == CUBLAS_STATUS_SUCCESS)
    return 0;
  sd35_set_error (&be->err, s == CUBLAS_STATUS_ALLOC_FAILED ? SD35_ERR_OOM : SD35_ERR_CUDA,
                  "cuBLAS error at %s:%d in %s: %s (status %d)", base_name (file), line, call,
                  cublasLtGetStatusString (s), (int) s);
  return 1;
}

int
cuda_fail (struct backend *be, enum sd35_status status, const char *file, int line,
           const char *fmt, ...)
{
  char    msg[768];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  sd35_set_error (&be->err, status, "%s (at %s:%d)", msg, base_name (file), line);
  return 1;
}

int
cuda_check_float (struct backend *be, const struct tensor *t, const char *op, const char *what)
{
  if (t == NULL || t->data == NULL)
    return CUDA_FAIL (be, SD35_ERR_INTERNAL, "cuda %s: %s tensor is missing", op, what);
  if (t->dtype != SD35_F32 && t->dtype != SD35_BF16 && t->dtype != SD35_F16)
    return CUDA_FAIL (be, SD35_ERR_SHAPE, "cuda %s: %s tensor has dtype %s; expected F32, F16 "
                      "or BF16", op, what, sd35_dtype_name (t->dtype));
  return 0;
}

/* --- caching pool (bookkeeping in cuda_pool.h) ------------------------------------------ */

static void
pool_trim (struct cuda_impl *ci)
{
  cudaStreamSynchronize (ci->stream);
  for (int i = 0; i < CUDA_POOL_BINS; i++)
    {
      struct cuda_block *b = ci->free_bins[i];
      while (b)
        {
          struct cuda_block *next = b->next;
          cudaFree (b->ptr);
          free (b);
          b = next;
        }
      ci->free_bins[i] = NULL;
    }
  ci->cached_bytes = 0;
}

/* Returns device memory of at least `bytes`, its node tracked as in use (size = its class). */
static void *
pool_get (struct backend *be, size_t bytes)
{
  struct cuda_impl  *ci = cuda_impl_of (be);
  unsigned           bin;
  size_t             size = cuda_pool_class (bytes, &bin);
  struct cuda_block *b;
  void              *p = NULL;
  cudaError_t        e;

  for (struct cuda_block **pp = &ci->free_bins[bin]; *pp; pp = &(*pp)->next)
    if ((*pp)->size == size)
      {
        b = *pp;
        *pp = b->next;
        ci->cached_bytes -= size;
        b->twin = NULL;
        cuda_pool_track (ci->in_use, b);
        return b->ptr;
      }
  if ((b = ci->spare) != NULL)
    ci->spare = b->next;
  else if ((b = (struct cuda_block *) malloc (sizeof *b)) == NULL)
    {
      sd35_set_error (&be->err, SD35_ERR_OOM, "out of host memory for the GPU pool's records");
      return NULL;
    }
  e = cudaMalloc (&p, size);
  if (e == cudaErrorMemoryAllocation && ci->cached_bytes > 0)
    {
      cudaGetLastError ();
      pool_trim (ci);
      e = cudaMalloc (&p, size);
    }
  if (e != cudaSuccess)
    {
      size_t free_b = 0, total_b = 0;
      cudaGetLastError ();
      cudaMemGetInfo (&free_b, &total_b);
      b->next = ci->spare;
      ci->spare = b;
      sd35_set_error (&be->err, e == cudaErrorMemoryAllocation ? SD35_ERR_OOM : SD35_ERR_CUDA,
                      "GPU: cannot allocate %.1f MiB (%s; %.1f MiB in use by this engine, "
                      "%.1f of %.1f MiB free on the device); hint: use a smaller image or "
                      "model, or close other GPU programs",
                      size / 1048576.0, cudaGetErrorString (e), be->bytes_in_use / 1048576.0,
                      free_b / 1048576.0, total_b / 1048576.0);
      return NULL;
    }
  b->ptr = p;
  b->size = size;
  b->twin = NULL;
  cuda_pool_track (ci->in_use, b);
  return p;
}

void *
cuda_scratch_alloc (struct backend *be, size_t bytes)
{
  void *p = pool_get (be, bytes);
  if (p)
    {
      be->bytes_in_use += cuda_pool_find (cuda_impl_of (be)->in_use, p)->size;
      if (be->bytes_in_use > be->peak_bytes)
        be->peak_bytes = be->bytes_in_use;
    }
  return p;
}

void
cuda_scratch_free (struct backend *be, void *ptr)
{
  struct cuda_impl  *ci = cuda_impl_of (be);
  struct cuda_block *b;
  unsigned           bin;

  if (ptr == NULL)
    return;
  if ((b = cuda_pool_untrack (ci->in_use, ptr)) == NULL)
    {
      CUDA_FAIL (be, SD35_ERR_INTERNAL, "GPU pool: releasing memory it did not hand out");
      return;
    }
  if (b->twin)
    cuda_scratch_free (be, b->twin);
  b->twin = NULL;
  be->bytes_in_use -= b->size;
  cuda_pool_class (b->size, &bin);   /* a class is its own class: filed where it came from */
  b->next = ci->free_bins[bin];
  ci->free_bins[bin] = b;
  ci->cached_bytes += b->size;
}

const void *
cuda_vector_twin (struct backend *be, const void *ptr)
{
  const struct cuda_block *b = ptr ? cuda_pool_find (cuda_impl_of (be)->in_use, ptr) : NULL;
  return b ? b->twin : NULL;
}

static enum sd35_status
cuda_alloc (struct backend *be, struct tensor *t)
{
  size_t bytes;

  if (sd35_mul_size (t->numel, sd35_dtype_size (t->dtype), &bytes))
    return sd35_set_error (&be->err, SD35_ERR_OOM, "tensor of %zu elements is too large",
                           t->numel);
  t->data = cuda_scratch_alloc (be, bytes ? bytes : 1);
  if (t->data == NULL)
    return be->err.status;
  t->priv = NULL;
  return SD35_OK;
}

static void
cuda_release (struct backend *be, struct tensor *t)
{
  if (t == NULL || t->data == NULL)
    return;
  cuda_scratch_free (be, t->data);   /* the pool knows the block's size */
  t->data = NULL;
}

/* The bf16 twin of a 1-D fp32 weight vector (kernels/gemm.cu's fused bias in a bf16 output):
 * made when `create`, refreshed after any write to the vector (upload_f32). */
static void vector_twin_refresh (struct backend *be, struct tensor *t, int create);

/* --- conversions ------------------------------------------------------------------------------ */

#include "convert_kernel.cuh"

void
cuda_convert (struct backend *be, void *dst, int dst_dt, const void *src, int src_dt, size_t n)
{
  if (n == 0 || backend_failed (be))
    return;
  convert_kernel<<<cuda_grid_1d (n, 256), 256, 0, cuda_impl_of (be)->stream>>>
    (dst, dst_dt, src, src_dt, n);
  CUDA_LAUNCH_CHECK (be);
}

static void
vector_twin_refresh (struct backend *be, struct tensor *t, int create)
{
  struct cuda_block *b = cuda_pool_find (cuda_impl_of (be)->in_use, t->data);

  if (b == NULL || t->dtype != SD35_F32 || backend_failed (be))
    return;
  if (b->twin == NULL && create)
    b->twin = cuda_scratch_alloc (be, t->numel * 2);
  if (b->twin != NULL)
    cuda_convert (be, b->twin, SD35_BF16, t->data, SD35_F32, t->numel);
}

/* Host → device through the pinned staging buffer (see the top of this file); falls back to
 * a pageable copy (which returns once src is staged by the driver) when no pinned memory can
 * be had. */
int
cuda_copy_to_device (struct backend *be, void *dst, const void *src, size_t bytes)
{
  struct cuda_impl *ci = cuda_impl_of (be);

  if (bytes == 0 || backend_failed (be))
    return backend_failed (be);
  if (ci->staging_done == NULL
      && CUDA_TRY (be, cudaEventCreateWithFlags (&ci->staging_done, cudaEventDisableTiming)))
    return 1;
  /* the previous copy out of the staging buffer must be done before it is overwritten */
  if (ci->staging_used && CUDA_TRY (be, cudaEventSynchronize (ci->staging_done)))
    return 1;
  ci->staging_used = 0;
  if (bytes > ci->staging_bytes)
    {
      size_t want = bytes < ((size_t) 4 << 20) ? ((size_t) 4 << 20) : bytes;
      if (ci->staging)
        cudaFreeHost (ci->staging);
      ci->staging = NULL;
      ci->staging_bytes = 0;
      if (cudaHostAlloc (&ci->staging, want, cudaHostAllocDefault) != cudaSuccess)
        {
          cudaGetLastError ();
          ci->staging = NULL;
          return CUDA_TRY (be, cudaMemcpyAsync (dst, src, bytes, cudaMemcpyHostToDevice,
                                                ci->stream));
        }
      ci->staging_bytes = want;
    }
  memcpy (ci->staging, src, bytes);
  if (CUDA_TRY (be, cudaMemcpyAsync (dst, ci->staging, bytes, cudaMemcpyHostToDevice,
                                     ci->stream))
      || CUDA_TRY (be, cudaEventRecord (ci->staging_done, ci->stream)))
    return 1;
  ci->staging_used = 1;
  return 0;
}

static void
cuda_upload_f32 (struct backend *be, struct tensor *dst, const float *src)
{
  size_t bytes = dst->numel * sizeof (float);
  void  *tmp;

  if (backend_failed (be) || dst->numel == 0)
    return;
  if (dst->dtype == SD35_F32)
    {
      if (!cuda_copy_to_device (be, dst->data, src, bytes))
        vector_twin_refresh (be, dst, 0);   /* a weight vector written again (LoRA) */
      return;
    }
  if (cuda_check_float (be, dst, "upload", "destination"))
    return;
  if ((tmp = cuda_scratch_alloc (be, bytes)) == NULL)
    return;
  if (!cuda_copy_to_device (be, tmp, src, bytes))
    cuda_convert (be, dst->data, dst->dtype, tmp, SD35_F32, dst->numel);
  cuda_scratch_free (be, tmp);
}

static void
cuda_download_f32 (struct backend *be, float *dst, const struct tensor *src)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  size_t            bytes = src->numel * sizeof (float);
  void             *tmp = NULL;
  const void       *from = src->data;

  if (backend_failed (be) || src->numel == 0)
    return;
  if (src->dtype != SD35_F32)
    {
      if (cuda_check_float (be, src, "download", "source"))
        return;
      if ((tmp = cuda_scratch_alloc (be, bytes)) == NULL)
        return;
      cuda_convert (be, tmp, SD35_F32, src->data, src->dtype, src->numel);
      from = tmp;
    }
  if (!CUDA_TRY (be, cudaMemcpyAsync (dst, from, bytes, cudaMemcpyDeviceToHost, ci->stream)))
    CUDA_TRY (be, cudaStreamSynchronize (ci->stream));
  cuda_scratch_free (be, tmp);
}

/* GGUF block types (Q8_0 … Q6_K): widened at upload, on the host, chunk by chunk — matrices
 * to bf16 (the storage every CUDA GEMM reads), vectors to fp32 — so the kernels never see a
 * quantized tensor.  The GPU then holds bf16 weights (2 bytes a value, not the file's ~1);
 * dequantizing inside the CUDA GEMM is not implemented. */
static enum sd35_status
cuda_weight_from_quant (struct backend *be, struct tensor *t, const void *src,
                        enum sd35_dtype src_dtype, enum weight_use use)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  const size_t      chunk = (size_t) 1 << 20;  /* values per step: whole blocks of every type */
  float            *f32 = NULL;
  uint16_t         *b16 = NULL;

  t->dtype = use == WEIGHT_VECTOR ? SD35_F32 : SD35_BF16;
  if (cuda_alloc (be, t) != SD35_OK)
    return be->err.status;
  f32 = (float *) malloc (chunk * sizeof *f32);
  b16 = (uint16_t *) malloc (chunk * sizeof *b16);
  if (f32 == NULL || b16 == NULL)
    sd35_set_error (&be->err, SD35_ERR_OOM, "out of host memory widening a %s weight",
                    sd35_dtype_name (src_dtype));
  for (size_t i = 0; !backend_failed (be) && i < t->numel; i += chunk)
    {
      size_t n = t->numel - i < chunk ? t->numel - i : chunk, off = 0;
      if (sd35_dtype_nbytes (src_dtype, i, &off) != 0)
        {
          sd35_set_error (&be->err, SD35_ERR_SHAPE, "%s weight of %zu values is not whole "
                          "blocks", sd35_dtype_name (src_dtype), t->numel);
          break;
        }
      sd35_convert_to_f32 (f32, (const uint8_t *) src + off, src_dtype, n);
      if (t->dtype == SD35_F32)
        CUDA_TRY (be, cudaMemcpyAsync ((float *) t->data + i, f32, n * sizeof *f32,
                                       cudaMemcpyHostToDevice, ci->stream));
      else
        {
          for (size_t k = 0; k < n; k++)
            b16[k] = sd35_f32_to_bf16 (f32[k]);
          CUDA_TRY (be, cudaMemcpyAsync ((uint16_t *) t->data + i, b16, n * sizeof *b16,
                                         cudaMemcpyHostToDevice, ci->stream));
        }
      /* the host buffers are refilled next round */
      CUDA_TRY (be, cudaStreamSynchronize (ci->stream));
    }
  free (f32);
  free (b16);
  return be->err.status;
}

static enum sd35_status
cuda_weight_from_host (struct backend *be, struct tensor *t, const void *src,
                       enum sd35_dtype src_dtype, enum weight_use use)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  size_t            src_bytes;
  void             *tmp;

  if (backend_failed (be))
    return be->err.status;
  if (sd35_dtype_is_quant (src_dtype))
    return cuda_weight_from_quant (be, t, src, src_dtype, use);
  if (src_dtype != SD35_F32 && src_dtype != SD35_F16 && src_dtype != SD35_BF16
      && src_dtype != SD35_F8_E4M3 && src_dtype != SD35_F8_E5M2)
    return sd35_set_error (&be->err, SD35_ERR_SHAPE, "weight of dtype %s cannot be used "
                           "(expected F32, F16, BF16, F8_E4M3, F8_E5M2 or a GGUF type)",
                           sd35_dtype_name (src_dtype));
  t->dtype = use == WEIGHT_VECTOR ? SD35_F32 : SD35_BF16;
  if (cuda_alloc (be, t) != SD35_OK)
    return be->err.status;
  if (sd35_mul_size (t->numel, sd35_dtype_size (src_dtype), &src_bytes))
    return sd35_set_error (&be->err, SD35_ERR_OOM, "weight too large");
  if (src_dtype == t->dtype)
    CUDA_TRY (be, cudaMemcpyAsync (t->data, src, src_bytes, cudaMemcpyHostToDevice,
                                   ci->stream));
  else
    {
      if ((tmp = cuda_scratch_alloc (be, src_bytes)) == NULL)
        return be->err.status;
      if (!CUDA_TRY (be, cudaMemcpyAsync (tmp, src, src_bytes, cudaMemcpyHostToDevice,
                                          ci->stream)))
        cuda_convert (be, t->data, t->dtype, tmp, src_dtype, t->numel);
      cuda_scratch_free (be, tmp);
    }
  if (use == WEIGHT_VECTOR && t->ndim == 1)
    vector_twin_refresh (be, t, 1);
  return be->err.status;
}

static void
cuda_synchronize (struct backend *be)
{
  if (!backend_failed (be))
    CUDA_TRY (be, cudaStreamSynchronize (cuda_impl_of (be)->stream));
}

/* --- event timing (cuda_timer.h) --------------------------------------------------------------- */

extern "C" void
sd35_cuda_timer_begin (struct backend *be)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  if (backend_failed (be))
    return;
  if (ci->ev_start == NULL
      && (CUDA_TRY (be, cudaEventCreate (&ci->ev_start))
          || CUDA_TRY (be, cudaEventCreate (&ci->ev_stop))))
    return;
  CUDA_TRY (be, cudaEventRecord (ci->ev_start, ci->stream));
}

extern "C" float
sd35_cuda_timer_end (struct backend *be)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  float             ms = -1.f;
  if (backend_failed (be) || ci->ev_start == NULL)
    return -1.f;
  if (CUDA_TRY (be, cudaEventRecord (ci->ev_stop, ci->stream))
      || CUDA_TRY (be, cudaEventSynchronize (ci->ev_stop))
      || CUDA_TRY (be, cudaEventElapsedTime (&ms, ci->ev_start, ci->ev_stop)))
    return -1.f;
  return ms;
}

static void
cuda_destroy (struct backend *be)
{
  struct cuda_impl *ci = cuda_impl_of (be);

  if (ci == NULL)
    {
      free (be);
      return;
    }
  cudaStreamSynchronize (ci->stream);
  pool_trim (ci);
  for (int i = 0; i < CUDA_POOL_BUCKETS; i++)   /* blocks never released (engine teardown) */
    while (ci->in_use[i])
      {
        struct cuda_block *b = ci->in_use[i];
        ci->in_use[i] = b->next;
        cudaFree (b->ptr);
        free (b);
      }
  if (ci->staging)
    cudaFreeHost (ci->staging);
  if (ci->staging_done)
    cudaEventDestroy (ci->staging_done);
  while (ci->spare)
    {
      struct cuda_block *b = ci->spare;
      ci->spare = b->next;
      free (b);
    }
  cuda_gemm_cache_free (ci);
  if (ci->ev_start)
    cudaEventDestroy (ci->ev_start);
  if (ci->ev_stop)
    cudaEventDestroy (ci->ev_stop);
  if (ci->workspace)
    cudaFree (ci->workspace);
  if (ci->lt)
    cublasLtDestroy (ci->lt);
  if (ci->stream)
    cudaStreamDestroy (ci->stream);
  free (ci);
  free (be);   /* like the CPU backend: backend_free() hands the whole backend over */
}

static const struct backend_ops cuda_ops = {
  cuda_destroy,
  cuda_alloc,
  cuda_release,
  cuda_upload_f32,
  cuda_download_f32,
  cuda_weight_from_host,
  cuda_synchronize,
  cuda_op_linear,
  cuda_op_attention,
  cuda_op_layernorm,
  cuda_op_rmsnorm,
  cuda_op_qk_rmsnorm,
  cuda_op_ln_modulate,
  cuda_op_gated_add,
  cuda_op_groupnorm,
  cuda_op_activation,
  cuda_op_add,
  cuda_op_mul,
  cuda_op_add_broadcast,
  cuda_op_copy,
  cuda_op_concat_rows,
  cuda_op_split_rows,
  cuda_op_transpose,
  cuda_op_embedding,
  cuda_op_conv2d,
  cuda_op_upsample2x,
  cuda_op_patchify,
  cuda_op_unpatchify,
  cuda_free_bytes,
};

/* --- sync-check mode (SD35_CUDA_SYNC_CHECK=1) ------------------------------------------------
 * Every op is followed by cudaStreamSynchronize and cudaGetLastError, so an asynchronous fault
 * is caught at the op that caused it, and the first error's message starts with the op and
 * its arguments' shapes (op_describe.h).  Slow (no overlap of host and device): for the
 * device check's first pass (tools/device-check.sh) and for hunting a failure. */

#include "op_describe.h"

/* after every op in sync-check mode: wait for the stream and collect any error */
static void
cuda_sync_after (struct backend *be)
{
  cudaError_t e = cudaStreamSynchronize (cuda_impl_of (be)->stream);
  if (e == cudaSuccess)
    e = cudaGetLastError ();
  if (e != cudaSuccess)
    cuda_record (be, e, "cudaStreamSynchronize after the op", __FILE__, __LINE__);
}

template <typename F, F f, int NameIdx> struct sync_checked;

static const char *const sync_checked_names[] = {
  "alloc",
  "release",
  "upload_f32",
  "download_f32",
  "weight_from_host",
  "synchronize",
  "linear",
  "attention",
  "layernorm",
  "rmsnorm",
  "qk_rmsnorm",
  "ln_modulate",
  "gated_add",
  "groupnorm",
  "activation",
  "add",
  "mul",
  "add_broadcast",
  "copy",
  "concat_rows",
  "split_rows",
  "transpose",
  "embedding",
  "conv2d",
  "upsample2x",
  "patchify",
  "unpatchify",
};

template <typename R, typename... A, R (*f) (struct backend *, A...), int NameIdx>
struct sync_checked<R (*) (struct backend *, A...), f, NameIdx>
{
  static R
  call (struct backend *be, A... a)
  {
    return op_run_checked (f, sync_checked_names[NameIdx], cuda_sync_after, be, a...);
  }
};

#define SYNC_CHECKED(fn, idx) sync_checked<decltype (&fn), &fn, idx>::call

static const struct backend_ops cuda_ops_sync_checked = {
  cuda_destroy,
  SYNC_CHECKED (cuda_alloc, 0),
  SYNC_CHECKED (cuda_release, 1),
  SYNC_CHECKED (cuda_upload_f32, 2),
  SYNC_CHECKED (cuda_download_f32, 3),
  SYNC_CHECKED (cuda_weight_from_host, 4),
  SYNC_CHECKED (cuda_synchronize, 5),
  SYNC_CHECKED (cuda_op_linear, 6),
  SYNC_CHECKED (cuda_op_attention, 7),
  SYNC_CHECKED (cuda_op_layernorm, 8),
  SYNC_CHECKED (cuda_op_rmsnorm, 9),
  SYNC_CHECKED (cuda_op_qk_rmsnorm, 10),
  SYNC_CHECKED (cuda_op_ln_modulate, 11),
  SYNC_CHECKED (cuda_op_gated_add, 12),
  SYNC_CHECKED (cuda_op_groupnorm, 13),
  SYNC_CHECKED (cuda_op_activation, 14),
  SYNC_CHECKED (cuda_op_add, 15),
  SYNC_CHECKED (cuda_op_mul, 16),
  SYNC_CHECKED (cuda_op_add_broadcast, 17),
  SYNC_CHECKED (cuda_op_copy, 18),
  SYNC_CHECKED (cuda_op_concat_rows, 19),
  SYNC_CHECKED (cuda_op_split_rows, 20),
  SYNC_CHECKED (cuda_op_transpose, 21),
  SYNC_CHECKED (cuda_op_embedding, 22),
  SYNC_CHECKED (cuda_op_conv2d, 23),
  SYNC_CHECKED (cuda_op_upsample2x, 24),
  SYNC_CHECKED (cuda_op_patchify, 25),
  SYNC_CHECKED (cuda_op_unpatchify, 26),
  cuda_free_bytes,
};


extern "C" enum sd35_status
backend_cuda_new (struct backend **out, struct sd35_error *err)
{
  struct backend   *be;
  struct cuda_impl *ci;
  cudaDeviceProp    prop;
  int               n = 0;
  cudaError_t       e;

  *out = NULL;
  e = cudaGetDeviceCount (&n);
  if (e != cudaSuccess || n == 0)
    {
      cudaGetLastError ();
      if (e == cudaErrorInsufficientDriver)
        return sd35_set_error (err, SD35_ERR_CUDA, "CUDA: the NVIDIA driver is missing or too "
                               "old for CUDA %d.%d (%s)", CUDART_VERSION / 1000,
                               CUDART_VERSION % 1000 / 10, cudaGetErrorString (e));
      return sd35_set_error (err, SD35_ERR_CUDA, "CUDA: no usable GPU (%s)",
                             e == cudaSuccess ? "no CUDA device found" : cudaGetErrorString (e));
    }
  be = (struct backend *) calloc (1, sizeof *be);
  ci = (struct cuda_impl *) calloc (1, sizeof *ci);
  if (be == NULL || ci == NULL)
    {
      free (be);
      free (ci);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory creating the CUDA backend");
    }
  be->name = "cuda";
  be->ops = &cuda_ops;
  be->device_memory = 1;
  {
    const char *sc = getenv ("SD35_CUDA_SYNC_CHECK");
    ci->sync_check = sc != NULL && sc[0] != '\0' && strcmp (sc, "0") != 0;
    if (ci->sync_check)
      be->ops = &cuda_ops_sync_checked;
  }
  be->act_dtype = SD35_BF16;
  be->impl = ci;
  ci->device = 0;
  if (CUDA_TRY (be, cudaSetDevice (0))
      || CUDA_TRY (be, cudaGetDeviceProperties (&prop, 0)))
    goto fail;
  ci->sm_count = prop.multiProcessorCount;
  ci->cc_major = prop.major;
  ci->cc_minor = prop.minor;
  if (prop.major < 8)
    {
      sd35_set_error (&be->err, SD35_ERR_CUDA, "CUDA: GPU %s has compute capability %d.%d; "
                      "bf16 kernels need 8.0 or newer (Ampere+)", prop.name, prop.major,
                      prop.minor);
      goto fail;
    }
  if (CUDA_TRY (be, cudaStreamCreateWithFlags (&ci->stream, cudaStreamNonBlocking))
      || CUBLAS_TRY (be, cublasLtCreate (&ci->lt))
      || CUDA_TRY (be, cudaMalloc (&ci->workspace, CUDA_WORKSPACE_BYTES)))
    goto fail;
  ci->workspace_size = CUDA_WORKSPACE_BYTES;
  sd35_log ("cuda: %s, %d SMs, compute %d.%d, %.1f GiB", prop.name, prop.multiProcessorCount,
            prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0);
  *out = be;
  return SD35_OK;

fail:
  {
    enum sd35_status st = be->err.status != SD35_OK ? be->err.status : SD35_ERR_CUDA;
    sd35_set_error (err, st, "%s", be->err.message);
    cuda_destroy (be);
    return st;
  }
}
