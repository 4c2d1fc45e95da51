/* conv.cu — conv2d (VAE 3×3 / 1×1, MMDiT patch embed) as im2col + cuBLASLt GEMM.
 *   out[b, co, oy, ox] = bias[co] + Σ_{ci,ky,kx} w[co, ci, ky, kx] · in[b, ci, oy·s − pt + ky,
 *                                                                           ox·s − pl + kx]
 *   torch: F.conv2d(F.pad(in, (pl, pr, pt, pb)), w, b, stride=s)
 *
 * Output pixels P = Ho·Wo are handled in chunks so that the im2col buffer col[K, Pc]
 * (K = Ci·kh·kw, bf16) stays ≤ 256 MiB.  In column-major terms outᵀ(P × Co, ld P) =
 * col(Pc × K, ld Pc)·w(K × Co), so the GEMM writes the NCHW output in place.  A 1×1 stride-1
 * unpadded conv needs no im2col: outᵀ = inᵀ(P × Ci)·wᵀ.  The bias is per output channel, a
 * column of the column-major D, which cuBLASLt's bias epilogue (per row) cannot express: a
 * small kernel adds it. */
#include "cuda_common.h"

#define IM2COL_BUDGET ((size_t) 256 << 20)

#include "conv_kernels.cuh"

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
  if (K > 65535 || B * Co > 65535 || (int64_t) Ci * H * W > INT32_MAX
      || H > INT32_MAX / 2 || W > INT32_MAX / 2)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "conv2d: sizes out of range (Ci·kh·kw = %lld, B·Co = %lld, "
                 "%lldx%lld)", (long long) K, (long long) (B * Co), (long long) H, (long long) W);
      return;
    }
  Ho = (H + pad_t + pad_b - kh) / stride + 1;
  Wo = (W + pad_l + pad_r - kw) / stride + 1;
  P = Ho * Wo;
  if (B <= 0 || Co <= 0 || P <= 0)
    return;
  if (P > INT32_MAX)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "conv2d: %lld output pixels exceed 2^31", (long long) P);
      return;
    }
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
            int64_t  n = P - p0 < Pc ? P - p0 : Pc;
            unsigned gx = (unsigned) ((n + 1023) / 1024);
            im2col_kernel<<<dim3 (gx, (unsigned) K), 256, 0, ci->stream>>>
              (col, (const char *) ind + (size_t) bi * Ci * H * W * sd35_dtype_size (in->dtype),
               idt, (int) H, (int) W, (int) kh, (int) kw, (int) stride, (int) pad_t,
               (int) pad_l, (int) Wo, (int) p0, (int) n, (int) Pc);
            if (CUDA_LAUNCH_CHECK (be))
              break;
            /* outᵀ[p0 .. p0+n, Co] = col(n × K, column-major, ld Pc) · w(K × Co) */
            if (cuda_gemm (be, 0, 0, n, Co, K, col, SD35_BF16, Pc, 0, wd, SD35_BF16, K, 0,
                           (char *) out->data + ((size_t) bi * Co * P + p0) * osz, out->dtype,
                           P, 0, 1, NULL, 0, 0, 1.f, 0.f) == 2)
              CUDA_FAIL (be, SD35_ERR_CUDA, "cuBLASLt has no algorithm for conv chunk "
                         "P=%lld K=%lld Co=%lld", (long long) n, (long long) K, (long long) Co);
          }
    }
  if (b && !backend_failed (be))
    {
      int64_t gx = (P + 2047) / 2048;
      channel_bias_kernel<<<dim3 ((unsigned) (gx > 65535 ? 65535 : gx), (unsigned) (B * Co)),
                            256, 0, ci->stream>>>
        (out->data, out->dtype, b->data, b->dtype, Co, P);
      CUDA_LAUNCH_CHECK (be);
    }
out:
  cuda_scratch_free (be, tmp_w);
  cuda_scratch_free (be, tmp_in);
  cuda_scratch_free (be, col);
}
