/* conv.cu — conv2d (VAE 3×3 / 1×1, MMDiT patch embed) as im2col + cuBLASLt GEMM.
 *   out[b, co, oy, ox] = bias[co] + Σ_{ci,ky,kx} w[co, ci, ky, kx] · in[b, ci, oy·s − pt + ky,
 *                                                                           ox·s − pl + kx]
 *   torch: F.conv2d(F.pad(in, (pl, pr, pt, pb)), w, b, stride=s)
 *
 * Output pixels P = Ho·Wo are handled in chunks so that the im2col buffer colᵀ[Pc, K]
 * (K = Ci·kh·kw, bf16) stays ≤ 256 MiB.  In column-major terms outᵀ(P × Co, ld P) =
 * colᵀ(Pc × K)·w(K × Co), so the GEMM writes the NCHW output in place.  A 1×1 stride-1
 * unpadded conv needs no im2col: outᵀ = inᵀ(P × Ci)·wᵀ.  The bias is per output channel, a
 * column of the column-major D, which cuBLASLt's bias epilogue (per row) cannot express: a
 * small kernel adds it. */
#include "cuda_common.h"

#define IM2COL_BUDGET ((size_t) 256 << 20)

/* colᵀ[pp, (ci·kh + ky)·kw + kx] for output pixels p0 + pp of batch image `in` */
__global__ void
im2col_kernel (__nv_bfloat16 *col, const void *in, int idt, int64_t Ci, int64_t H, int64_t W,
               int64_t kh, int64_t kw, int64_t stride, int64_t pt, int64_t pl, int64_t Wo,
               int64_t p0, size_t total)
{
  const int64_t K = Ci * kh * kw;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total;
       i += (size_t) gridDim.x * blockDim.x)
    {
      int64_t k = i % K, p = p0 + (int64_t) (i / K);
      int64_t kx = k % kw, ky = (k / kw) % kh, ci = k / (kw * kh);
      int64_t y = (p / Wo) * stride - pt + ky, x = (p % Wo) * stride - pl + kx;
      float   v = 0.f;
      if (y >= 0 && y < H && x >= 0 && x < W)
        v = ld_f32 (in, idt, ((size_t) ci * H + y) * W + x);
      col[i] = __float2bfloat16 (v);
    }
}

__global__ void
channel_bias_kernel (void *out, int odt, const void *bias, int bdt, int64_t Co, int64_t P,
                     size_t total)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total;
       i += (size_t) gridDim.x * blockDim.x)
    st_f32 (out, odt, i, ld_f32 (out, odt, i) + ld_f32 (bias, bdt, (i / P) % Co));
}

void
cuda_op_conv2d (struct backend *be, struct tensor *out, const struct tensor *in,
                const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci,
                int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride,
                int64_t pad_t, int64_t pad_l, int64_t pad_b, int64_t pad_r)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  const int64_t     K = Ci * kh * kw;
  int64_t           Ho, Wo, P, Pc;
  const void       *wd = w->data;
  void             *tmp_w = NULL, *tmp_in = NULL;
  __nv_bfloat16    *col = NULL;
  size_t            wbytes = 0, inbytes = 0, colbytes = 0, osz = sd35_dtype_size (out->dtype);
  const void       *ind = in->data;
  int               idt = in->dtype;

  if (cuda_check_float (be, out, "conv2d", "output") || cuda_check_float (be, in, "conv2d", "input")
      || cuda_check_float (be, w, "conv2d", "weight")
      || (b && cuda_check_float (be, b, "conv2d", "bias")))
    return;
  if (stride <= 0 || kh <= 0 || kw <= 0 || H + pad_t + pad_b < kh || W + pad_l + pad_r < kw)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "conv2d: kernel %lldx%lld stride %lld does not fit a "
                 "%lldx%lld input", (long long) kh, (long long) kw, (long long) stride,
                 (long long) H, (long long) W);
      return;
    }
  Ho = (H + pad_t + pad_b - kh) / stride + 1;
  Wo = (W + pad_l + pad_r - kw) / stride + 1;
  P = Ho * Wo;
  if (B <= 0 || Co <= 0 || P <= 0)
    return;
  if (w->dtype != SD35_BF16)
    {
      wbytes = (size_t) Co * K * 2;
      if ((tmp_w = cuda_scratch_alloc (be, wbytes)) == NULL)
        return;
      cuda_convert (be, tmp_w, SD35_BF16, w->data, w->dtype, (size_t) Co * K);
      wd = tmp_w;
    }
  if (kh == 1 && kw == 1 && stride == 1 && pad_t + pad_l + pad_b + pad_r == 0)
    {
      if (in->dtype != SD35_BF16)
        {
          inbytes = (size_t) B * Ci * P * 2;
          if ((tmp_in = cuda_scratch_alloc (be, inbytes)) == NULL)
            goto out;
          cuda_convert (be, tmp_in, SD35_BF16, in->data, in->dtype, (size_t) B * Ci * P);
          ind = tmp_in;
        }
      for (int64_t bi = 0; bi < B && !backend_failed (be); bi++)
        if (cuda_gemm (be, 0, 0, P, Co, Ci, (const __nv_bfloat16 *) ind + bi * Ci * P,
                       SD35_BF16, P, 0, wd, SD35_BF16, Ci, 0,
                       (char *) out->data + (size_t) bi * Co * P * osz, out->dtype, P, 0, 1,
                       NULL, 0, 0, 1.f, 0.f) == 2)
          CUDA_FAIL (be, SD35_ERR_CUDA, "cuBLASLt has no algorithm for 1x1 conv P=%lld "
                     "Ci=%lld Co=%lld", (long long) P, (long long) Ci, (long long) Co);
    }
  else
    {
      Pc = (int64_t) (IM2COL_BUDGET / 2 / (size_t) K);
      Pc = Pc >= 128 ? Pc / 128 * 128 : 8;
      if (Pc > P)
        Pc = P;
      colbytes = (size_t) Pc * K * 2;
      if ((col = (__nv_bfloat16 *) cuda_scratch_alloc (be, colbytes)) == NULL)
        goto out;
      for (int64_t bi = 0; bi < B && !backend_failed (be); bi++)
        for (int64_t p0 = 0; p0 < P && !backend_failed (be); p0 += Pc)
          {
            int64_t n = P - p0 < Pc ? P - p0 : Pc;
            size_t  total = (size_t) n * K;
            im2col_kernel<<<cuda_grid_1d (total, 256), 256, 0, ci->stream>>>
              (col, (const char *) ind + (size_t) bi * Ci * H * W * sd35_dtype_size (in->dtype),
               idt, Ci, H, W, kh, kw, stride, pad_t, pad_l, Wo, p0, total);
            if (CUDA_LAUNCH_CHECK (be))
              break;
            if (cuda_gemm (be, 1, 0, n, Co, K, col, SD35_BF16, K, 0, wd, SD35_BF16, K, 0,
                           (char *) out->data + ((size_t) bi * Co * P + p0) * osz, out->dtype,
                           P, 0, 1, NULL, 0, 0, 1.f, 0.f) == 2)
              CUDA_FAIL (be, SD35_ERR_CUDA, "cuBLASLt has no algorithm for conv chunk "
                         "P=%lld K=%lld Co=%lld", (long long) n, (long long) K, (long long) Co);
          }
    }
  if (b && !backend_failed (be))
    {
      size_t total = (size_t) B * Co * P;
      channel_bias_kernel<<<cuda_grid_1d (total, 256), 256, 0, ci->stream>>>
        (out->data, out->dtype, b->data, b->dtype, Co, P, total);
      CUDA_LAUNCH_CHECK (be);
    }
out:
  cuda_scratch_free (be, tmp_w, wbytes);
  cuda_scratch_free (be, tmp_in, inbytes);
  cuda_scratch_free (be, col, colbytes);
}
