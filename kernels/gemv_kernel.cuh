/* gemv_kernel.cuh — op linear for an fp32 input of at most GEMV_MAX_M rows (gemm.cu's
 * launcher); apart for the host emulation test (tests/unit/test_cuda_emu.cc).
 *
 * The adaLN and embedder linears of the MMDiT run on SiLU(c) [B, D] with B ≤ 2: their
 * outputs (shift, scale, gate) multiply every token, so an error there is the same for all
 * tokens instead of averaging out.  cuBLASLt would take the input as bf16; this kernel reads
 * it in fp32 (products and sums fp32, weights as stored).  It is memory-bound on the weight
 * like any GEMV, so it costs no more than the GEMM would. */
#ifndef SD35_GEMV_KERNEL_CUH
#define SD35_GEMV_KERNEL_CUH

#define GEMV_MAX_M 8

/* out[m, n] = act(Σ_k in[m, k]·w[n, k] + b[n]) for m < M ≤ GEMV_MAX_M: one warp per output
 * feature n (lanes stride over k: coalesced weight reads), butterfly sum over the warp. */
__global__ void
linear_gemv_kernel (void *out, int odt, const float *in, const void *w, int wdt, const void *b,
                    int bdt, int M, int64_t N, int64_t K, int act)
{
  const int64_t n = (blockIdx.x * (int64_t) blockDim.x + threadIdx.x) >> 5;
  const int     lane = threadIdx.x & 31;
  float         acc[GEMV_MAX_M];

  if (n >= N)   /* n is the same for the whole warp: it leaves together */
    return;
#pragma unroll
  for (int m = 0; m < GEMV_MAX_M; m++)
    acc[m] = 0.f;
  for (int64_t k = lane; k < K; k += 32)
    {
      const float wv = ld_f32 (w, wdt, (size_t) n * K + k);
#pragma unroll
      for (int m = 0; m < GEMV_MAX_M; m++)
        if (m < M)
          acc[m] += wv * in[(size_t) m * K + k];
    }
#pragma unroll
  for (int m = 0; m < GEMV_MAX_M; m++)
    if (m < M)
      for (int o = 16; o; o >>= 1)
        acc[m] += __shfl_xor_sync (0xffffffffu, acc[m], o);
  if (lane == 0)
    {
      const float bv = b ? ld_f32 (b, bdt, n) : 0.f;
#pragma unroll
      for (int m = 0; m < GEMV_MAX_M; m++)
        if (m < M)
          st_f32 (out, odt, (size_t) m * N + n, act_apply (acc[m] + bv, act));
    }
}

#endif
