/* elementwise.cu — activations, add/mul, broadcast add, copy, and the layout ops
 * (concat/split rows, transpose, embedding gather, nearest upsample, patchify/unpatchify).
 * All memory-bound: grid-stride loops over the output, fp32 math, any float dtype in/out. */
#include "cuda_common.h"

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); \
       i += (size_t) gridDim.x * blockDim.x)

#define LAUNCH_1D(be, kernel, n, ...) \
  do { \
    kernel<<<cuda_grid_1d ((n), 256), 256, 0, cuda_impl_of (be)->stream>>> (__VA_ARGS__); \
    CUDA_LAUNCH_CHECK (be); \
  } while (0)

__global__ void
activation_kernel (void *out, int odt, const void *in, int idt, size_t n, int act)
{
  GRID_LOOP (i, n)
    st_f32 (out, odt, i, act_apply (ld_f32 (in, idt, i), act));
}

/* op 0: a + b, op 1: a · b */
__global__ void
binary_kernel (void *out, int odt, const void *a, int adt, const void *b, int bdt, size_t n,
               int op)
{
  GRID_LOOP (i, n)
    {
      float x = ld_f32 (a, adt, i), y = ld_f32 (b, bdt, i);
      st_f32 (out, odt, i, op ? x * y : x + y);
    }
}

__global__ void
add_broadcast_kernel (void *out, int odt, const void *in, int idt, const void *vec, int vdt,
                      size_t total, int64_t n)
{
  GRID_LOOP (i, total)
    st_f32 (out, odt, i, ld_f32 (in, idt, i) + ld_f32 (vec, vdt, i % n));
}

/* out[b, l, :] = l < L1 ? a[b, l, :] : b[b, l − L1, :] */
__global__ void
concat_rows_kernel (void *out, int odt, const void *a, int adt, const void *b, int bdt,
                    int64_t L1, int64_t L2, int64_t C, size_t total)
{
  GRID_LOOP (i, total)
    {
      size_t  c = i % C, row = i / C;
      int64_t l = row % (L1 + L2), bi = row / (L1 + L2);
      float   v = l < L1 ? ld_f32 (a, adt, ((size_t) bi * L1 + l) * C + c)
                         : ld_f32 (b, bdt, ((size_t) bi * L2 + (l - L1)) * C + c);
      st_f32 (out, odt, i, v);
    }
}

/* dst[b, l, :] = in[b, off + l, :] for l < Ld (Ltot rows per batch in `in`) */
__global__ void
slice_rows_kernel (void *dst, int ddt, const void *in, int idt, int64_t Ltot, int64_t off,
                   int64_t Ld, int64_t C, size_t total)
{
  GRID_LOOP (i, total)
    {
      size_t  c = i % C, row = i / C;
      int64_t l = row % Ld, bi = row / Ld;
      st_f32 (dst, ddt, i, ld_f32 (in, idt, ((size_t) bi * Ltot + off + l) * C + c));
    }
}

/* out[b, n, c] = in[b, c, n]: 32×32 tiles through shared memory */
__global__ void
transpose_kernel (void *out, int odt, const void *in, int idt, int64_t C, int64_t N)
{
  __shared__ float tile[32][33];
  const int64_t b = blockIdx.z, c0 = blockIdx.y * 32, n0 = blockIdx.x * 32;
  const size_t  base = (size_t) b * C * N;
  for (int k = threadIdx.y; k < 32; k += blockDim.y)
    {
      int64_t c = c0 + k, n = n0 + threadIdx.x;
      if (c < C && n < N)
        tile[k][threadIdx.x] = ld_f32 (in, idt, base + (size_t) c * N + n);
    }
  __syncthreads ();
  for (int k = threadIdx.y; k < 32; k += blockDim.y)
    {
      int64_t n = n0 + k, c = c0 + threadIdx.x;
      if (c < C && n < N)
        st_f32 (out, odt, base + (size_t) n * C + c, tile[threadIdx.x][k]);
    }
}

__global__ void
embedding_kernel (void *out, int odt, const void *table, int tdt, const int32_t *ids,
                  int64_t D, size_t total)
{
  GRID_LOOP (i, total)
    st_f32 (out, odt, i, ld_f32 (table, tdt, (size_t) ids[i / D] * D + i % D));
}

__global__ void
upsample2x_kernel (void *out, int odt, const void *in, int idt, int64_t H, int64_t W,
                   size_t total)
{
  GRID_LOOP (i, total)
    {
      int64_t x = i % (2 * W), y = (i / (2 * W)) % (2 * H);
      size_t  plane = i / (4 * (size_t) H * W);
      st_f32 (out, odt, i, ld_f32 (in, idt, (plane * H + y / 2) * W + x / 2));
    }
}

/* out[b, r·(W/p) + c, ci·p² + pr·p + pc] = in[b, ci, r·p + pr, c·p + pc] */
__global__ void
patchify_kernel (void *out, int odt, const void *in, int idt, int64_t C, int64_t H, int64_t W,
                 int64_t p, size_t total)
{
  const int64_t vec = C * p * p, Wp = W / p, T = (H / p) * Wp;
  GRID_LOOP (i, total)
    {
      int64_t v = i % vec, t = (i / vec) % T, b = i / ((size_t) vec * T);
      int64_t ci = v / (p * p), pr = (v / p) % p, pc = v % p;
      int64_t y = (t / Wp) * p + pr, x = (t % Wp) * p + pc;
      st_f32 (out, odt, i, ld_f32 (in, idt, (((size_t) b * C + ci) * H + y) * W + x));
    }
}

/* out[b, ci, y, x] = in[b, (y/p)·(W/p) + x/p, ((y%p)·p + x%p)·C + ci] */
__global__ void
unpatchify_kernel (void *out, int odt, const void *in, int idt, int64_t C, int64_t H, int64_t W,
                   int64_t p, size_t total)
{
  const int64_t Wp = W / p, T = (H / p) * Wp;
  GRID_LOOP (i, total)
    {
      int64_t x = i % W, y = (i / W) % H, ci = (i / ((size_t) W * H)) % C;
      int64_t b = i / ((size_t) W * H * C);
      int64_t t = (y / p) * Wp + x / p, v = ((y % p) * p + x % p) * C + ci;
      st_f32 (out, odt, i, ld_f32 (in, idt, ((size_t) b * T + t) * p * p * C + v));
    }
}

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
  LAUNCH_1D (be, concat_rows_kernel, total, out->data, out->dtype, a->data, a->dtype, b->data,
             b->dtype, L1, L2, C, total);
}

void
cuda_op_split_rows (struct backend *be, struct tensor *a, struct tensor *b,
                    const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C)
{
  if (cuda_check_float (be, in, "split_rows", "input"))
    return;
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
  if (!CUDA_TRY (be, cudaMemcpyAsync (d_ids, ids, bytes, cudaMemcpyHostToDevice,
                                      cuda_impl_of (be)->stream)))
    LAUNCH_1D (be, embedding_kernel, total, out->data, out->dtype, table->data, table->dtype,
               d_ids, D, total);
  cuda_scratch_free (be, d_ids, bytes);
}

void
cuda_op_upsample2x (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                    int64_t C, int64_t H, int64_t W)
{
  size_t total = (size_t) B * C * 4 * H * W;
  if (cuda_check_float (be, out, "upsample2x", "output")
      || cuda_check_float (be, in, "upsample2x", "input") || total == 0)
    return;
  LAUNCH_1D (be, upsample2x_kernel, total, out->data, out->dtype, in->data, in->dtype, H, W,
             total);
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
