/* flash_attn.cuh — the FlashAttention-2 kernel for head dim 64 (see attention.cu for the
 * contract).  Kept apart from its primitives (cp.async, ldmatrix, mma.sync, shuffles), which
 * attention.cu defines for the GPU and tools/flash_emu.cc defines for a lock-step host
 * emulation of one block: that lets the fragment index arithmetic below be checked on a
 * machine without a GPU.
 *
 * Needs: FA_BN, FA_D, FA_LDS, FA_SMEM_DECL, cp_async16, cp_async_commit, cp_async_wait_1,
 * cp_async_wait_0, ldmatrix_x4, ldmatrix_x4_trans, mma_bf16, pack_bf16. */

/* rows [row0, row0+nrows) of a 64-wide bf16 tile from global (row stride ld) into smem */
template <int NT>
__device__ __forceinline__ void
load_tile (__nv_bfloat16 *s, const __nv_bfloat16 *g, int64_t ld, int row0, int nrows, int L)
{
  for (int c = threadIdx.x; c < nrows * 8; c += NT)
    {
      int r = c >> 3, col = (c & 7) * 8;
      int ok = row0 + r < L;
      cp_async16 (s + r * FA_LDS + col, g + (int64_t) (ok ? row0 + r : 0) * ld + col, ok);
    }
}

template <int NW>
__global__ void __launch_bounds__ (NW * 32)
flash_attn_d64 (__nv_bfloat16 *__restrict__ out, const __nv_bfloat16 *__restrict__ qkv,
                int L, int H, float scale_log2)
{
  constexpr int NT = NW * 32, BM = NW * 16;
  FA_SMEM_DECL;
  __nv_bfloat16 *sQ = (__nv_bfloat16 *) smem_raw;          /* BM × LDS */
  __nv_bfloat16 *sK = sQ + BM * FA_LDS;                     /* 2 × BN × LDS */
  __nv_bfloat16 *sV = sK + 2 * FA_BN * FA_LDS;              /* 2 × BN × LDS */

  const int     warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int     h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * BM;
  const int64_t ld = (int64_t) 3 * H * FA_D;                /* token stride in qkv */
  const __nv_bfloat16 *Q = qkv + (int64_t) b * L * ld + (int64_t) h * FA_D;
  const __nv_bfloat16 *K = Q + (int64_t) H * FA_D;
  const __nv_bfloat16 *V = Q + (int64_t) 2 * H * FA_D;
  const int     ntiles = (L + FA_BN - 1) / FA_BN;

  load_tile<NT> (sQ, Q, ld, q0, BM, L);
  load_tile<NT> (sK, K, ld, 0, FA_BN, L);
  load_tile<NT> (sV, V, ld, 0, FA_BN, L);
  cp_async_commit ();

  unsigned qf[4][4];
  float    o[8][4];
  float    m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
#pragma unroll
  for (int i = 0; i < 8; i++)
    o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;

  for (int t = 0; t < ntiles; t++)
    {
      const int st = t & 1;
      if (t + 1 < ntiles)
        {
          load_tile<NT> (sK + (st ^ 1) * FA_BN * FA_LDS, K, ld, (t + 1) * FA_BN, FA_BN, L);
          load_tile<NT> (sV + (st ^ 1) * FA_BN * FA_LDS, V, ld, (t + 1) * FA_BN, FA_BN, L);
        }
      cp_async_commit ();
      cp_async_wait_1 ();
      __syncthreads ();

      if (t == 0)
        {
#pragma unroll
          for (int kk = 0; kk < 4; kk++)
            ldmatrix_x4 (qf[kk], sQ + (warp * 16 + (lane & 15)) * FA_LDS + kk * 16
                         + (lane >> 4) * 8);
        }

      const __nv_bfloat16 *k_s = sK + st * FA_BN * FA_LDS;
      const __nv_bfloat16 *v_s = sV + st * FA_BN * FA_LDS;
      float s[8][4];
#pragma unroll
      for (int j = 0; j < 8; j++)
        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int jp = 0; jp < 4; jp++)
          {
            unsigned r[4];
            ldmatrix_x4 (r, k_s + (jp * 16 + (lane & 7) + (lane >> 4) * 8) * FA_LDS + kk * 16
                         + ((lane >> 3) & 1) * 8);
            mma_bf16 (s[2 * jp], qf[kk], r[0], r[1]);
            mma_bf16 (s[2 * jp + 1], qf[kk], r[2], r[3]);
          }

      /* online softmax; rows g = lane/4 (regs 0,1) and g+8 (regs 2,3) */
      const int kbase = t * FA_BN + (lane & 3) * 2;
      float     mx0 = m0, mx1 = m1;
#pragma unroll
      for (int j = 0; j < 8; j++)
        {
          int key = kbase + j * 8;
#pragma unroll
          for (int e = 0; e < 2; e++)
            {
              int ok = key + e < L;
              s[j][e] = ok ? s[j][e] * scale_log2 : -INFINITY;
              s[j][2 + e] = ok ? s[j][2 + e] * scale_log2 : -INFINITY;
              mx0 = fmaxf (mx0, s[j][e]);
              mx1 = fmaxf (mx1, s[j][2 + e]);
            }
        }
      mx0 = fmaxf (mx0, __shfl_xor_sync (0xffffffffu, mx0, 1));
      mx0 = fmaxf (mx0, __shfl_xor_sync (0xffffffffu, mx0, 2));
      mx1 = fmaxf (mx1, __shfl_xor_sync (0xffffffffu, mx1, 1));
      mx1 = fmaxf (mx1, __shfl_xor_sync (0xffffffffu, mx1, 2));
      const float a0 = exp2f (m0 - mx0), a1 = exp2f (m1 - mx1);
      m0 = mx0;
      m1 = mx1;
      float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
      for (int j = 0; j < 8; j++)
        {
          s[j][0] = exp2f (s[j][0] - m0);
          s[j][1] = exp2f (s[j][1] - m0);
          s[j][2] = exp2f (s[j][2] - m1);
          s[j][3] = exp2f (s[j][3] - m1);
          sum0 += s[j][0] + s[j][1];
          sum1 += s[j][2] + s[j][3];
        }
      l0 = l0 * a0 + sum0;
      l1 = l1 * a1 + sum1;
#pragma unroll
      for (int i = 0; i < 8; i++)
        {
          o[i][0] *= a0;
          o[i][1] *= a0;
          o[i][2] *= a1;
          o[i][3] *= a1;
        }

      /* O += P · V */
#pragma unroll
      for (int kk = 0; kk < 4; kk++)
        {
          unsigned pa[4];
          pa[0] = pack_bf16 (s[2 * kk][0], s[2 * kk][1]);
          pa[1] = pack_bf16 (s[2 * kk][2], s[2 * kk][3]);
          pa[2] = pack_bf16 (s[2 * kk + 1][0], s[2 * kk + 1][1]);
          pa[3] = pack_bf16 (s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
          for (int ip = 0; ip < 4; ip++)
            {
              unsigned r[4];
              ldmatrix_x4_trans (r, v_s + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8)
                                 * FA_LDS + ip * 16 + (lane >> 4) * 8);
              mma_bf16 (o[2 * ip], pa, r[0], r[1]);
              mma_bf16 (o[2 * ip + 1], pa, r[2], r[3]);
            }
        }
      __syncthreads ();   /* stage st is overwritten by the next iteration's loads */
    }
  cp_async_wait_0 ();

  l0 += __shfl_xor_sync (0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync (0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync (0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync (0xffffffffu, l1, 2);
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
  const int   r0 = q0 + warp * 16 + (lane >> 2), r1 = r0 + 8;
  const int64_t ldo = (int64_t) H * FA_D;
  __nv_bfloat16 *O = out + (int64_t) b * L * ldo + (int64_t) h * FA_D + (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < 8; i++)
    {
      if (r0 < L)
        *(__nv_bfloat162 *) (O + (int64_t) r0 * ldo + i * 8)
          = __floats2bfloat162_rn (o[i][0] * inv0, o[i][1] * inv0);
      if (r1 < L)
        *(__nv_bfloat162 *) (O + (int64_t) r1 * ldo + i * 8)
          = __floats2bfloat162_rn (o[i][2] * inv1, o[i][3] * inv1);
    }
}

