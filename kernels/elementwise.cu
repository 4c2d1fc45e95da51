/* elementwise.cu — activations, add/mul, broadcast add, copy, and the layout ops
 * (concat/split rows, transpose, embedding gather, nearest upsample, patchify/unpatchify).
 * All memory-bound: grid-stride loops over the output, fp32 math, any float dtype in/out. */
#include "cuda_common.h"

#include "elementwise_kernels.cuh"

#define LAUNCH_1D(be, kernel, n, ...) \
  do { \
    kernel<<<cuda_grid_1d ((n), 256), 256, 0, cuda_impl_of (be)->stream>>> (__VA_ARGS__); \
    CUDA_LAUNCH_CHECK (be); \
  } while (0)

/* --- launchers ----------------------------------------------------------------------------------- */

void
cuda_op_activation (struct backend *be, struct tensor *out, const struct tensor *in, int64_t n,
                    enum op_act act)
{
  if (cuda_check_float (be, out, "activation", "output")
      || cuda_check_float (be, in, "activation", "input") || n <= 0)
    return;
  LAUNCH_1D (be, activation_kernel, (size_t) n, out->data, out->dtype, in->data, in->dtype,
             (size_t) n, (int) act);
}

static void
binary (struct backend *be, struct tensor *out, const struct tensor *a, const struct tensor *b,
        int64_t n, int op, const char *name)
{
  if (cuda_check_float (be, out, name, "output") || cuda_check_float (be, a, name, "a")
      || cuda_check_float (be, b, name, "b") || n <= 0)
    return;
  LAUNCH_1D (be, binary_kernel, (size_t) n, out->data, out->dtype, a->data, a->dtype, b->data,
             b->dtype, (size_t) n, op);
}

void
cuda_op_add (struct backend *be, struct tensor *out, const struct tensor *a,
             const struct tensor *b, int64_t n)
{
  binary (be, out, a, b, n, 0, "add");
}

void
cuda_op_mul (struct backend *be, struct tensor *out, const struct tensor *a,
             const struct tensor *b, int64_t n)
{
  binary (be, out, a, b, n, 1, "mul");
}

void
cuda_op_add_broadcast (struct backend *be, struct tensor *out, const struct tensor *in,
                       const struct tensor *vec, int64_t B, int64_t n)
{
  size_t total = (size_t) B * n;
  if (cuda_check_float (be, out, "add_broadcast", "output")
      || cuda_check_float (be, in, "add_broadcast", "input")
      || cuda_check_float (be, vec, "add_broadcast", "vector") || total == 0)
    return;
  LAUNCH_1D (be, add_broadcast_kernel, total, out->data, out->dtype, in->data, in->dtype,
             vec->data, vec->dtype, total, n);
}

void
cuda_op_copy (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n)
{
  if (n <= 0 || dst->data == src->data)
    return;
  if (dst->dtype == src->dtype)
    {
      CUDA_TRY (be, cudaMemcpyAsync (dst->data, src->data, (size_t) n
                                     * sd35_dtype_size (src->dtype), cudaMemcpyDeviceToDevice,
                                     cuda_impl_of (be)->stream));
      return;
    }
  if (cuda_check_float (be, dst, "copy", "destination")
      || cuda_check_float (be, src, "copy", "source"))
    return;
  cuda_convert (be, dst->data, dst->dtype, src->data, src->dtype, (size_t) n);
}

void
cuda_op_concat_rows (struct backend *be, struct tensor *out, const struct tensor *a,
                     const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  size_t total = (size_t) B * (L1 + L2) * C;
  if (cuda_check_float (be, out, "concat_rows", "output")
      || cuda_check_float (be, a, "concat_rows", "a")
      || cuda_check_float (be, b, "concat_rows", "b") || total == 0)
    return;
  if (a->dtype == out->dtype && b->dtype == out->dtype)
    {
      /* per batch, a's and b's rows are contiguous blocks (B is 1 or 2: a copy each) */
      const size_t es = sd35_dtype_size (out->dtype), row = (size_t) C * es;
      cudaStream_t st = cuda_impl_of (be)->stream;
      for (int64_t bi = 0; bi < B; bi++)
        {
          char *o = (char *) out->data + (size_t) bi * (L1 + L2) * row;
          if (L1 > 0 && CUDA_TRY (be, cudaMemcpyAsync (o, (const char *) a->data + bi * L1 * row,
                                                       L1 * row, cudaMemcpyDeviceToDevice, st)))
            return;
          if (L2 > 0 && CUDA_TRY (be, cudaMemcpyAsync (o + L1 * row,
                                                       (const char *) b->data + bi * L2 * row,
                                                       L2 * row, cudaMemcpyDeviceToDevice, st)))
            return;
        }
      return;
    }
  LAUNCH_1D (be, concat_rows_kernel, total, out->data, out->dtype, a->data, a->dtype, b->data,
             b->dtype, L1, L2, C, total);
}

void
cuda_op_split_rows (struct backend *be, struct tensor *a, struct tensor *b,
                    const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  const size_t es = sd35_dtype_size (in->dtype), row = (size_t) C * es;
  cudaStream_t st = cuda_impl_of (be)->stream;

  if (cuda_check_float (be, in, "split_rows", "input"))
    return;
  /* same dtype: a copy per batch of each contiguous block */
  for (int64_t bi = 0; bi < B; bi++)
    {
      const char *src = (const char *) in->data + (size_t) bi * (L1 + L2) * row;
      if (a && a->dtype == in->dtype && L1 * C > 0
          && CUDA_TRY (be, cudaMemcpyAsync ((char *) a->data + bi * L1 * row, src, L1 * row,
                                            cudaMemcpyDeviceToDevice, st)))
        return;
      if (b && b->dtype == in->dtype && L2 * C > 0
          && CUDA_TRY (be, cudaMemcpyAsync ((char *) b->data + bi * L2 * row, src + L1 * row,
                                            L2 * row, cudaMemcpyDeviceToDevice, st)))
        return;
    }
  if (a && a->dtype == in->dtype)
    a = NULL;
  if (b && b->dtype == in->dtype)
    b = NULL;
  if (a && !cuda_check_float (be, a, "split_rows", "a") && B * L1 * C > 0)
    LAUNCH_1D (be, slice_rows_kernel, (size_t) (B * L1 * C), a->data, a->dtype, in->data,
               in->dtype, L1 + L2, (int64_t) 0, L1, C, (size_t) (B * L1 * C));
  if (b && !cuda_check_float (be, b, "split_rows", "b") && B * L2 * C > 0)
    LAUNCH_1D (be, slice_rows_kernel, (size_t) (B * L2 * C), b->data, b->dtype, in->data,
               in->dtype, L1 + L2, L1, L2, C, (size_t) (B * L2 * C));
}

void
cuda_op_transpose (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                   int64_t C, int64_t N)
{
  if (cuda_check_float (be, out, "transpose", "output")
      || cuda_check_float (be, in, "transpose", "input") || B * C * N == 0)
    return;
  if (B > 65535 || (C + 31) / 32 > 65535)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "transpose: B=%lld C=%lld too large", (long long) B,
                 (long long) C);
      return;
    }
  dim3 grid ((unsigned) ((N + 31) / 32), (unsigned) ((C + 31) / 32), (unsigned) B);
  transpose_kernel<<<grid, dim3 (32, 8), 0, cuda_impl_of (be)->stream>>>
    (out->data, out->dtype, in->data, in->dtype, C, N);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_embedding (struct backend *be, struct tensor *out, const struct tensor *table,
                   const int32_t *ids, int64_t n, int64_t D)
{
  size_t   bytes = (size_t) n * sizeof (int32_t), total = (size_t) n * D;
  int32_t *d_ids;

  if (cuda_check_float (be, out, "embedding", "output")
      || cuda_check_float (be, table, "embedding", "table") || total == 0)
    return;
  if ((d_ids = (int32_t *) cuda_scratch_alloc (be, bytes)) == NULL)
    return;
  if (!cuda_copy_to_device (be, d_ids, ids, bytes))   /* pinned staging: ids may go now */
    LAUNCH_1D (be, embedding_kernel, total, out->data, out->dtype, table->data, table->dtype,
               d_ids, D, total);
  cuda_scratch_free (be, d_ids);
}

void
cuda_op_upsample2x (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                    int64_t C, int64_t H, int64_t W)
{
  size_t total = (size_t) B * C * 4 * H * W;
  if (cuda_check_float (be, out, "upsample2x", "output")
      || cuda_check_float (be, in, "upsample2x", "input") || total == 0)
    return;
  if (B * C > 65535 || 4 * H * W > INT32_MAX)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "upsample2x: %lld planes of %lldx%lld out of range",
                 (long long) (B * C), (long long) H, (long long) W);
      return;
    }
  {
    int64_t gx = (4 * H * W + 2047) / 2048;
    upsample2x_kernel<<<dim3 ((unsigned) (gx > 65535 ? 65535 : gx), (unsigned) (B * C)), 256, 0,
                        cuda_impl_of (be)->stream>>> (out->data, out->dtype, in->data,
                                                      in->dtype, (int) H, (int) W);
    CUDA_LAUNCH_CHECK (be);
  }
}

void
cuda_op_patchify (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                  int64_t C, int64_t H, int64_t W, int64_t p)
{
  size_t total = (size_t) B * C * H * W;
  if (cuda_check_float (be, out, "patchify", "output")
      || cuda_check_float (be, in, "patchify", "input") || total == 0 || p <= 0)
    return;
  LAUNCH_1D (be, patchify_kernel, total, out->data, out->dtype, in->data, in->dtype, C, H, W,
             p, total);
}

void
cuda_op_unpatchify (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                    int64_t C, int64_t H, int64_t W, int64_t p)
{
  size_t total = (size_t) B * C * H * W;
  if (cuda_check_float (be, out, "unpatchify", "output")
      || cuda_check_float (be, in, "unpatchify", "input") || total == 0 || p <= 0)
    return;
  LAUNCH_1D (be, unpatchify_kernel, total, out->data, out->dtype, in->data, in->dtype, C, H, W,
             p, total);
}
