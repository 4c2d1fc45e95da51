/* cuda_backend.cu — the CUDA backend of engine/ops.h: device selection, the op table, memory
 * (a caching pool: blocks are rounded to size classes and kept on free lists, so the denoising
 * loop does no cudaMalloc/cudaFree), host⇄device transfers and weight conversion.
 *
 * One stream per backend: every op is enqueued on it, so a block released on the host may be
 * handed to the next op at once (stream order guarantees the previous user has finished).
 *
 * Storage dtypes: activations bf16; WEIGHT_MATRIX → bf16 (fp8/f16/fp32 converted on the
 * device at upload); WEIGHT_VECTOR → fp32 (biases, norm weights, pos-embed: tiny, and fp32
 * keeps them exact; every kernel reads fp32 or bf16 vectors). */
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

/* --- caching pool -------------------------------------------------------------------------- */

/* Size class: m·2^e with m in [8, 15] (≤ 12.5 % waste), at least 512 bytes. */
static size_t
pool_class (size_t bytes, unsigned *bin)
{
  size_t m = bytes < 512 ? 512 : bytes;
  int    e = 0;

  while (m > 15)
    {
      m = (m + 1) >> 1;   /* round up while shifting */
      e++;
    }
  if (m < 8)
    m = 8;
  *bin = (unsigned) (e * 8 + (int) (m - 8)) % CUDA_POOL_BINS;
  return m << e;
}

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

/* Returns device memory of at least `bytes` (size rounded to its class in *rounded). */
static void *
pool_get (struct backend *be, size_t bytes, size_t *rounded)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  unsigned          bin;
  size_t            size = pool_class (bytes, &bin);
  void             *p = NULL;
  cudaError_t       e;

  for (struct cuda_block **pp = &ci->free_bins[bin]; *pp; pp = &(*pp)->next)
    if ((*pp)->size == size)
      {
        struct cuda_block *b = *pp;
        *pp = b->next;
        p = b->ptr;
        b->next = ci->spare;
        ci->spare = b;
        ci->cached_bytes -= size;
        *rounded = size;
        return p;
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
      sd35_set_error (&be->err, e == cudaErrorMemoryAllocation ? SD35_ERR_OOM : SD35_ERR_CUDA,
                      "GPU: cannot allocate %.1f MiB (%s; %.1f MiB in use by this engine, "
                      "%.1f of %.1f MiB free on the device); hint: use a smaller image or "
                      "model, or close other GPU programs",
                      size / 1048576.0, cudaGetErrorString (e), be->bytes_in_use / 1048576.0,
                      free_b / 1048576.0, total_b / 1048576.0);
      return NULL;
    }
  *rounded = size;
  return p;
}

static void
pool_put (struct backend *be, void *ptr, size_t rounded)
{
  struct cuda_impl  *ci = cuda_impl_of (be);
  struct cuda_block *b = ci->spare;
  unsigned           bin;

  pool_class (rounded, &bin);
  if (b)
    ci->spare = b->next;
  else if ((b = (struct cuda_block *) malloc (sizeof *b)) == NULL)
    {
      cudaFree (ptr);   /* cannot cache it: give it back (synchronizes, still correct) */
      return;
    }
  b->ptr = ptr;
  b->size = rounded;
  b->next = ci->free_bins[bin];
  ci->free_bins[bin] = b;
  ci->cached_bytes += rounded;
}

void *
cuda_scratch_alloc (struct backend *be, size_t bytes)
{
  size_t rounded;
  void  *p = pool_get (be, bytes, &rounded);
  if (p)
    {
      be->bytes_in_use += rounded;
      if (be->bytes_in_use > be->peak_bytes)
        be->peak_bytes = be->bytes_in_use;
    }
  return p;
}

void
cuda_scratch_free (struct backend *be, void *ptr, size_t bytes)
{
  unsigned bin;
  size_t   rounded;

  if (ptr == NULL)
    return;
  rounded = pool_class (bytes, &bin);
  be->bytes_in_use -= rounded;
  pool_put (be, ptr, rounded);
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
  size_t bytes = t->numel * sd35_dtype_size (t->dtype);
  cuda_scratch_free (be, t->data, bytes ? bytes : 1);
  t->data = NULL;
}

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
cuda_upload_f32 (struct backend *be, struct tensor *dst, const float *src)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  size_t            bytes = dst->numel * sizeof (float);
  void             *tmp;

  if (backend_failed (be) || dst->numel == 0)
    return;
  if (dst->dtype == SD35_F32)
    {
      CUDA_TRY (be, cudaMemcpyAsync (dst->data, src, bytes, cudaMemcpyHostToDevice,
                                     ci->stream));
      return;
    }
  if (cuda_check_float (be, dst, "upload", "destination"))
    return;
  if ((tmp = cuda_scratch_alloc (be, bytes)) == NULL)
    return;
  /* pageable → device copies return once src is staged, so src may be freed afterwards */
  if (!CUDA_TRY (be, cudaMemcpyAsync (tmp, src, bytes, cudaMemcpyHostToDevice, ci->stream)))
    cuda_convert (be, dst->data, dst->dtype, tmp, SD35_F32, dst->numel);
  cuda_scratch_free (be, tmp, bytes);
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
  cuda_scratch_free (be, tmp, bytes);
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
    {
      CUDA_TRY (be, cudaMemcpyAsync (t->data, src, src_bytes, cudaMemcpyHostToDevice,
                                     ci->stream));
      return be->err.status;
    }
  if ((tmp = cuda_scratch_alloc (be, src_bytes)) == NULL)
    return be->err.status;
  if (!CUDA_TRY (be, cudaMemcpyAsync (tmp, src, src_bytes, cudaMemcpyHostToDevice,
                                      ci->stream)))
    cuda_convert (be, t->data, t->dtype, tmp, src_dtype, t->numel);
  cuda_scratch_free (be, tmp, src_bytes);
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
  be->act_dtype = SD35_BF16;
  be->impl = ci;
  ci->device = 0;
  ci->bias_f32_ok = 1;
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
