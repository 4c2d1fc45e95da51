/* softmax_rows.cuh — the row softmax of attention.cu's general path; apart for the host
 * emulation test (tests/unit/test_cuda_emu.cc). */
#ifndef SD35_SOFTMAX_ROWS_CUH
#define SD35_SOFTMAX_ROWS_CUH

/* --- general path: row softmax of one chunk of scores ----------------------------------------- */

/* Row stride (elements) of the general path's S and P: L rounded up to 8, so that every row,
 * every head's block and every chunk starts 16-byte aligned for cuBLASLt (fp32 S: 32 bytes,
 * bf16 P: 16 bytes) whatever L is (CLIP: 77).  Columns L..Lp−1 are padding: the GEMMs never
 * read them (their k / m is L); the softmax writes zeros there. */
static inline int64_t
attn_row_stride (int64_t L)
{
  return (L + 7) / 8 * 8;
}

/* S: fp32 [H, Lc, ld] scores of query rows i0..i0+Lc (L valid columns); P: bf16 [H, Lc, ld] */
__global__ void
softmax_rows_kernel (__nv_bfloat16 *P, const float *S, const void *bias, int bias_dt,
                     int64_t L, int64_t ld, int64_t Lc, int64_t i0, float scale, int causal)
{
  __shared__ float red[32];
  const int64_t row = blockIdx.x;              /* h·Lc + i */
  const int64_t h = row / Lc, i = row % Lc, qi = i0 + i;
  const float  *s = S + row * ld;
  __nv_bfloat16 *p = P + row * ld;
  const int64_t bias_off = (h * L + qi) * L;
  const int64_t jmax = causal ? qi + 1 : L;     /* keys j > qi are masked */
  float         mx = -INFINITY, sum = 0.f;

  for (int64_t j = threadIdx.x; j < jmax; j += blockDim.x)
    {
      float v = s[j] * scale + (bias ? ld_f32 (bias, bias_dt, bias_off + j) : 0.f);
      mx = fmaxf (mx, v);
    }
  for (int o = 16; o; o >>= 1)
    mx = fmaxf (mx, __shfl_xor_sync (0xffffffffu, mx, o));
  if ((threadIdx.x & 31) == 0)
    red[threadIdx.x >> 5] = mx;
  __syncthreads ();
  mx = -INFINITY;
  for (int w = 0; w < (int) (blockDim.x >> 5); w++)
    mx = fmaxf (mx, red[w]);
  __syncthreads ();
  for (int64_t j = threadIdx.x; j < jmax; j += blockDim.x)
    {
      float v = s[j] * scale + (bias ? ld_f32 (bias, bias_dt, bias_off + j) : 0.f);
      sum += __expf (v - mx);
    }
  for (int o = 16; o; o >>= 1)
    sum += __shfl_xor_sync (0xffffffffu, sum, o);
  if ((threadIdx.x & 31) == 0)
    red[threadIdx.x >> 5] = sum;
  __syncthreads ();
  sum = 0.f;
  for (int w = 0; w < (int) (blockDim.x >> 5); w++)
    sum += red[w];
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < ld; j += blockDim.x)
    {
      float v = 0.f;
      if (j < jmax)
        v = __expf (s[j] * scale + (bias ? ld_f32 (bias, bias_dt, bias_off + j) : 0.f) - mx)
            * inv;
      p[j] = __float2bfloat16 (v);
    }
}

#endif
