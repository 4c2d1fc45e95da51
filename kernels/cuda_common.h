/* cuda_common.h — shared by the CUDA backend's .cu files (never included from engine/ C code).
 *
 * Errors never exit: CUDA_TRY / CUBLAS_TRY record "file:line: call: reason" as the backend's
 * sticky error (engine/backend/ops.h) and evaluate to nonzero so the caller can return early.  Kernel
 * launches are checked with CUDA_LAUNCH_CHECK (cudaGetLastError); asynchronous faults surface
 * at the next synchronizing call, which is also checked.
 *
 * Dtypes: activations are bf16; every op also reads fp32/f16 inputs (ld_f32) and writes fp32
 * outputs (st_f32) so that the same op works on any tensor the engine hands it.  All
 * arithmetic is fp32. */
#ifndef SD35_CUDA_COMMON_H
#define SD35_CUDA_COMMON_H

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cublasLt.h>
#include <stdint.h>

extern "C" {
#include "ops.h"
#include "error.h"
}

/* --- the backend's private state --------------------------------------------------------- */

#include "cuda_pool.h"

struct gemm_cache_entry;

struct cuda_impl
{
  int                 device;
  int                 sm_count;
  int                 cc_major, cc_minor;
  cudaStream_t        stream;
  cublasLtHandle_t    lt;
  void               *workspace;       /* cuBLASLt workspace */
  size_t              workspace_size;
  struct cuda_block  *free_bins[CUDA_POOL_BINS];  /* caching pool: free blocks per size class */
  struct cuda_block  *in_use[CUDA_POOL_BUCKETS];  /* blocks handed out, by pointer (cuda_pool.h) */
  struct cuda_block  *spare;           /* unused list nodes */
  size_t              cached_bytes;    /* bytes held in free_bins */
  struct gemm_cache_entry *gemm_cache; /* heuristic results per shape */
  int                 gemm_cache_n, gemm_cache_cap;
  int                 sync_check;      /* SD35_CUDA_SYNC_CHECK=1: synchronise after every op */
  cudaEvent_t         ev_start, ev_stop;  /* cuda_timer.h */
  void               *staging;         /* pinned host buffer for host → device copies */
  size_t              staging_bytes;
  cudaEvent_t         staging_done;    /* recorded after the last copy out of staging */
  int                 staging_used;    /* staging_done is pending */
};

static inline struct cuda_impl *
cuda_impl_of (struct backend *be)
{
  return (struct cuda_impl *) be->impl;
}

/* --- error recording ----------------------------------------------------------------------- */

int cuda_record (struct backend *be, cudaError_t e, const char *call, const char *file, int line);
int cublas_record (struct backend *be, cublasStatus_t s, const char *call, const char *file,
                   int line);
int cuda_fail (struct backend *be, enum sd35_status status, const char *file, int line,
               const char *fmt, ...) SD35_PRINTF (5, 6);

#define CUDA_TRY(be, call) cuda_record ((be), (call), #call, __FILE__, __LINE__)
#define CUBLAS_TRY(be, call) cublas_record ((be), (call), #call, __FILE__, __LINE__)
#define CUDA_LAUNCH_CHECK(be) cuda_record ((be), cudaGetLastError (), "kernel launch", \
                                           __FILE__, __LINE__)
#define CUDA_FAIL(be, status, ...) cuda_fail ((be), (status), __FILE__, __LINE__, __VA_ARGS__)

/* --- scratch memory (pool; stream-ordered reuse is safe: one stream) ------------------------ */

void *cuda_scratch_alloc (struct backend *be, size_t bytes);
/* Gives a block back to the pool under the size class it was allocated with (and its bf16
 * twin, if any); NULL is fine. */
void  cuda_scratch_free (struct backend *be, void *ptr);
/* The bf16 copy of an fp32 vector weight kept since its upload (cuda_weight_from_host), or
 * NULL (kernels/gemm.cu: a bias in the output dtype). */
const void *cuda_vector_twin (struct backend *be, const void *ptr);

/* --- dtype helpers --------------------------------------------------------------------------- */

#include "cuda_dtype.cuh"

/* 1D launch geometry for n elements (grid-stride loops cover the rest). */
static inline unsigned
cuda_grid_1d (size_t n, unsigned threads)
{
  size_t g = (n + threads - 1) / threads;
  if (g > 65535u * 16u)
    g = 65535u * 16u;
  return g ? (unsigned) g : 1u;
}

/* Checks that the tensor dtype is one the kernels read (F32/F16/BF16). */
int cuda_check_float (struct backend *be, const struct tensor *t, const char *op,
                      const char *what);

/* --- cross-file entry points ----------------------------------------------------------------- */

/* General cuBLASLt GEMM in column-major terms: D[m,n] = alpha·op(A)·op(B) + beta·C (C = D),
 * batched with element strides; bias (length m, fp32 or bf16, may be NULL) and the GELU-tanh
 * epilogue optional.  Records the error and returns nonzero on failure. */
int cuda_gemm (struct backend *be, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
               const void *A, int a_dt, int64_t lda, int64_t stride_a,
               const void *B, int b_dt, int64_t ldb, int64_t stride_b,
               void *D, int d_dt, int64_t ldd, int64_t stride_d, int batch,
               const void *bias, int bias_dt, int gelu, float alpha, float beta);

/* ops->free_bytes: device free memory plus the pool's cached blocks (cuda_memory.cu). */
size_t cuda_free_bytes (struct backend *be);

/* Frees the cached cuBLASLt heuristic results (backend destroy). */
void cuda_gemm_cache_free (struct cuda_impl *ci);

/* Host → device copy through the pinned staging buffer: src may be freed on return.
 * Returns nonzero (error recorded) on failure. */
int cuda_copy_to_device (struct backend *be, void *dst, const void *src, size_t bytes);

/* Converts n elements between float dtypes on the device (stream-ordered). */
void cuda_convert (struct backend *be, void *dst, int dst_dt, const void *src, int src_dt,
                   size_t n);

/* op implementations (one file per concern) */
void cuda_op_linear (struct backend *, struct tensor *, const struct tensor *,
                     const struct tensor *, const struct tensor *, int64_t, int64_t, int64_t,
                     enum op_act);
void cuda_op_attention (struct backend *, struct tensor *, const struct tensor *,
                        const struct tensor *, int64_t, int64_t, int64_t, int64_t, float, int);
void cuda_op_layernorm (struct backend *, struct tensor *, const struct tensor *,
                        const struct tensor *, const struct tensor *, int64_t, int64_t, float);
void cuda_op_rmsnorm (struct backend *, struct tensor *, const struct tensor *,
                      const struct tensor *, int64_t, int64_t, float);
void cuda_op_qk_rmsnorm (struct backend *, struct tensor *, const struct tensor *,
                         const struct tensor *, int64_t, int64_t, int64_t, float);
void cuda_op_ln_modulate (struct backend *, struct tensor *, const struct tensor *,
                          const struct tensor *, int64_t, int64_t, int64_t, int64_t, int64_t,
                          int64_t, float);
void cuda_op_gated_add (struct backend *, struct tensor *, const struct tensor *,
                        const struct tensor *, int64_t, int64_t, int64_t, int64_t, int64_t);
void cuda_op_groupnorm (struct backend *, struct tensor *, const struct tensor *,
                        const struct tensor *, const struct tensor *, int64_t, int64_t, int64_t,
                        int64_t, float, int);
void cuda_op_activation (struct backend *, struct tensor *, const struct tensor *, int64_t,
                         enum op_act);
void cuda_op_add (struct backend *, struct tensor *, const struct tensor *,
                  const struct tensor *, int64_t);
void cuda_op_mul (struct backend *, struct tensor *, const struct tensor *,
                  const struct tensor *, int64_t);
void cuda_op_add_broadcast (struct backend *, struct tensor *, const struct tensor *,
                            const struct tensor *, int64_t, int64_t);
void cuda_op_copy (struct backend *, struct tensor *, const struct tensor *, int64_t);
void cuda_op_concat_rows (struct backend *, struct tensor *, const struct tensor *,
                          const struct tensor *, int64_t, int64_t, int64_t, int64_t);
void cuda_op_split_rows (struct backend *, struct tensor *, struct tensor *,
                         const struct tensor *, int64_t, int64_t, int64_t, int64_t);
void cuda_op_transpose (struct backend *, struct tensor *, const struct tensor *, int64_t,
                        int64_t, int64_t);
void cuda_op_embedding (struct backend *, struct tensor *, const struct tensor *,
                        const int32_t *, int64_t, int64_t);
void cuda_op_conv2d (struct backend *, struct tensor *, const struct tensor *,
                     const struct tensor *, const struct tensor *, int64_t, int64_t, int64_t,
                     int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                     int64_t);
void cuda_op_upsample2x (struct backend *, struct tensor *, const struct tensor *, int64_t,
                         int64_t, int64_t, int64_t);
void cuda_op_patchify (struct backend *, struct tensor *, const struct tensor *, int64_t,
                       int64_t, int64_t, int64_t, int64_t);
void cuda_op_unpatchify (struct backend *, struct tensor *, const struct tensor *, int64_t,
                         int64_t, int64_t, int64_t, int64_t);

#endif
