/* conv_kernels.cuh — the kernels of conv.cu (launcher there); apart for the host emulation
 * test (tests/unit/test_cuda_emu.cc). */
#ifndef SD35_CONV_KERNELS_CUH
#define SD35_CONV_KERNELS_CUH

/* col[k, pp] (row stride ldc) for k = (ci·kh + ky)·kw + kx and output pixels p0 + pp < p0 + n
 * of one batch image `in`.  grid.y = k: the (ci, ky, kx) split is per block, and neighbouring
 * threads take neighbouring pixels, so both the reads of `in` and the writes are coalesced.
 * 32-bit pixel arithmetic: a chunk has < 2³¹ pixels. */
__global__ void
im2col_kernel (__nv_bfloat16 *col, const void *in, int idt, int H, int W, int kh, int kw,
               int stride, int pt, int pl, int Wo, int p0, int n, int ldc)
{
  const int k = blockIdx.y, kx = k % kw, ky = (k / kw) % kh, ci = k / (kw * kh);
  const size_t plane = (size_t) ci * H * W;
  __nv_bfloat16 *dst = col + (size_t) k * ldc;
  for (int pp = blockIdx.x * blockDim.x + threadIdx.x; pp < n; pp += gridDim.x * blockDim.x)
    {
      int   p = p0 + pp, oy = p / Wo, ox = p - oy * Wo;
      int   y = oy * stride - pt + ky, x = ox * stride - pl + kx;
      float v = 0.f;
      if (y >= 0 && y < H && x >= 0 && x < W)
        v = ld_f32 (in, idt, plane + (size_t) y * W + x);
      dst[pp] = __float2bfloat16 (v);
    }
}

/* out[b, co, p] += bias[co]; grid.y = b·Co + co (one channel plane per block row) */
__global__ void
channel_bias_kernel (void *out, int odt, const void *bias, int bdt, int64_t Co, int64_t P)
{
  const size_t plane = blockIdx.y;
  const float  bv = ld_f32 (bias, bdt, plane % Co);
  for (int64_t p = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; p < P;
       p += (int64_t) gridDim.x * blockDim.x)
    st_f32 (out, odt, plane * P + p, ld_f32 (out, odt, plane * P + p) + bv);
}

#endif
