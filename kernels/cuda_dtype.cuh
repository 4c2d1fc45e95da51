/* cuda_dtype.cuh — element access and activations shared by the kernels: read any float
 * dtype as fp32 (ld_f32), write fp32 into any float dtype (st_f32), apply an op_act.  Needs
 * only the bf16/f16 conversion intrinsics and the SD35_* / ACT_* enums, so the host emulation
 * tests (tests/unit/cuda_emu.h) can include it too. */
#ifndef SD35_CUDA_DTYPE_CUH
#define SD35_CUDA_DTYPE_CUH

/* dt is an enum sd35_dtype value: SD35_BF16, SD35_F32 or SD35_F16 */
__device__ __forceinline__ float
ld_f32 (const void *p, int dt, size_t i)
{
  if (dt == SD35_BF16)
    return __bfloat162float (((const __nv_bfloat16 *) p)[i]);
  if (dt == SD35_F32)
    return ((const float *) p)[i];
  return __half2float (((const __half *) p)[i]);
}

__device__ __forceinline__ void
st_f32 (void *p, int dt, size_t i, float v)
{
  if (dt == SD35_BF16)
    ((__nv_bfloat16 *) p)[i] = __float2bfloat16 (v);
  else if (dt == SD35_F32)
    ((float *) p)[i] = v;
  else
    ((__half *) p)[i] = __float2half (v);
}

__device__ __forceinline__ float
act_apply (float x, int act)
{
  switch (act)
    {
    case ACT_GELU_TANH:
      return 0.5f * x * (1.f + tanhf (0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case ACT_GELU_ERF:
      return 0.5f * x * (1.f + erff (x * 0.7071067811865476f));
    case ACT_QUICK_GELU:
      return x / (1.f + __expf (-1.702f * x));
    case ACT_SILU:
      return x / (1.f + __expf (-x));
    case ACT_RELU:  /* added by the taesd helper (TAESD decoder); NaN stays NaN like torch */
      return x < 0.f ? 0.f : x;
    default:
      return x;
    }
}

#endif
