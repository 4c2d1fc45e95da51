/* convert_kernel.cuh — element conversion between dtypes (weights at upload: fp8/f16/fp32 →
 * bf16/fp32; activations ⇄ fp32), as dtype.c does it on the host; apart for the host
 * emulation test (tests/unit/test_cuda_emu.cc). */
#ifndef SD35_CONVERT_KERNEL_CUH
#define SD35_CONVERT_KERNEL_CUH

__device__ __forceinline__ float
f8e4m3_to_f32 (uint8_t v)
{
  int   exp = (v >> 3) & 0xf, man = v & 7;
  float r;
  if (exp == 0xf && man == 7)
    return __int_as_float (0x7fc00000);
  r = exp == 0 ? ldexpf ((float) man, -9) : ldexpf (1.f + man / 8.f, exp - 7);
  return (v & 0x80) ? -r : r;
}

__global__ void
convert_kernel (void *dst, int dst_dt, const void *src, int src_dt, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x)
    {
      float v;
      if (src_dt == SD35_F8_E4M3)
        v = f8e4m3_to_f32 (((const uint8_t *) src)[i]);
      else if (src_dt == SD35_F8_E5M2)
        {
          __half_raw h;
          h.x = (unsigned short) (((const uint8_t *) src)[i] << 8);
          v = __half2float (__half (h));
        }
      else
        v = ld_f32 (src, src_dt, i);
      st_f32 (dst, dst_dt, i, v);
    }
}

#endif
