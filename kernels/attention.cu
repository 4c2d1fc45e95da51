/* attention.cu — multi-head attention on the packed qkv layout [B, L, 3, H, dh]:
 *   out[b, l, h·dh + d] = Σ_j softmax_j(scale·q_l·k_j + bias[h,l,j] (+ causal)) · v_j[d]
 *   torch: F.scaled_dot_product_attention(q, k, v) with q,k,v = qkv.unbind(2), heads on dim 2.
 *
 * Two paths:
 *  - flash_attn_d64: FlashAttention-2 style for dh = 64, no bias, no mask (MMDiT joint
 *    attention, L = 4429 at 1024²).  One block = NW warps × 16 query rows; K/V tiles of 64
 *    keys double-buffered in shared memory with cp.async; S = Q·Kᵀ and O += P·V on the tensor
 *    cores (mma.sync m16n8k16 bf16, fp32 accumulate); online softmax in fp32 (exp2 with the
 *    scale folded in).  Never materialises L×L.
 *  - general: any dh, optional fp32 bias [H, L, L] (T5) and causal mask (CLIP), also the VAE
 *    mid-block (H = 1, dh = C).  Queries in chunks: S = Q·Kᵀ by a batched cuBLASLt GEMM over
 *    heads (fp32 scores, ≤ 512 MiB per chunk), a row softmax kernel (fp32) writing bf16 P,
 *    then O = P·V by a second batched GEMM straight into the output.  S and P rows are
 *    padded to a multiple of 8 elements (attn_row_stride: CLIP's L = 77 would leave every
 *    leading dimension and batch stride 4- or 2-byte aligned, for which cuBLASLt may have
 *    no algorithm); the padding is never read. */
#include "cuda_common.h"

#define FA_BN   64      /* keys per tile */
#define FA_D    64      /* head dim */
#define FA_LDS  72      /* smem row stride in bf16: 144 B rows keep ldmatrix conflict-free */

__device__ __forceinline__ void
cp_async16 (void *smem, const void *gmem, int valid)
{
  unsigned s = (unsigned) __cvta_generic_to_shared (smem);
  int      n = valid ? 16 : 0;   /* src-size 0: zero-fill */
  asm volatile ("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(s), "l"(gmem), "r"(n));
}

__device__ __forceinline__ void
ldmatrix_x4 (unsigned r[4], const void *smem)
{
  unsigned s = (unsigned) __cvta_generic_to_shared (smem);
  asm volatile ("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}

__device__ __forceinline__ void
ldmatrix_x4_trans (unsigned r[4], const void *smem)
{
  unsigned s = (unsigned) __cvta_generic_to_shared (smem);
  asm volatile ("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}

__device__ __forceinline__ void
mma_bf16 (float c[4], const unsigned a[4], unsigned b0, unsigned b1)
{
  asm volatile ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned
pack_bf16 (float lo, float hi)
{
  __nv_bfloat162 v = __floats2bfloat162_rn (lo, hi);
  return *(unsigned *) &v;
}

__device__ __forceinline__ void
cp_async_commit (void)
{
  asm volatile ("cp.async.commit_group;\n");
}

__device__ __forceinline__ void
cp_async_wait_1 (void)
{
  asm volatile ("cp.async.wait_group 1;\n");
}

__device__ __forceinline__ void
cp_async_wait_0 (void)
{
  asm volatile ("cp.async.wait_group 0;\n");
}

#define FA_SMEM_DECL extern __shared__ __align__ (16) unsigned char smem_raw[]

#include "flash_attn.cuh"

#include "softmax_rows.cuh"

static void
attention_general (struct backend *be, struct tensor *out, const __nv_bfloat16 *qkv,
                   const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                   float scale, int causal)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  const int64_t     ld = 3 * H * dh, ldo = H * dh, Lp = attn_row_stride (L);
  const size_t      budget = (size_t) 512 << 20;
  int64_t           Lc = (int64_t) (budget / ((size_t) H * Lp * 4));
  size_t            s_bytes, p_bytes;
  float            *S;
  __nv_bfloat16    *P;

  if (Lc < 1)
    Lc = 1;
  if (Lc > L)
    Lc = L;
  s_bytes = (size_t) H * Lc * Lp * 4;
  p_bytes = (size_t) H * Lc * Lp * 2;
  S = (float *) cuda_scratch_alloc (be, s_bytes);
  P = (__nv_bfloat16 *) cuda_scratch_alloc (be, p_bytes);
  if (S == NULL || P == NULL)
    goto out;
  for (int64_t b = 0; b < B && !backend_failed (be); b++)
    for (int64_t i0 = 0; i0 < L && !backend_failed (be); i0 += Lc)
      {
        const int64_t n = L - i0 < Lc ? L - i0 : Lc;
        const __nv_bfloat16 *q = qkv + (b * L + i0) * ld;
        const __nv_bfloat16 *k = qkv + b * L * ld + H * dh;
        const __nv_bfloat16 *v = qkv + b * L * ld + 2 * H * dh;
        int rc;

        /* Sᵀ(L × n) = Kᵀ·Q per head (column-major view of row-major S[n, Lp]) */
        rc = cuda_gemm (be, 1, 0, L, n, dh, k, SD35_BF16, ld, dh, q, SD35_BF16, ld, dh,
                        S, SD35_F32, Lp, n * Lp, (int) H, NULL, 0, 0, 1.f, 0.f);
        if (rc == 0)
          {
            softmax_rows_kernel<<<(unsigned) (H * n), 256, 0, ci->stream>>>
              (P, S, bias ? bias->data : NULL, bias ? bias->dtype : SD35_F32, L, Lp, n, i0,
               scale, causal);
            if (CUDA_LAUNCH_CHECK (be))
              break;
            /* Oᵀ(dh × n) = Vᵀ·Pᵀ per head, written into out[b, i0 + i, h·dh + d] */
            rc = cuda_gemm (be, 0, 0, dh, n, L, v, SD35_BF16, ld, dh, P, SD35_BF16, Lp, n * Lp,
                            (char *) out->data + (size_t) ((b * L + i0) * ldo)
                            * sd35_dtype_size (out->dtype), out->dtype, ldo, dh, (int) H,
                            NULL, 0, 0, 1.f, 0.f);
          }
        if (rc == 2)
          CUDA_FAIL (be, SD35_ERR_CUDA, "cuBLASLt has no algorithm for attention L=%lld H=%lld "
                     "dh=%lld", (long long) L, (long long) H, (long long) dh);
      }
out:
  cuda_scratch_free (be, S);
  cuda_scratch_free (be, P);
}

template <int NW>
static void
launch_flash (struct backend *be, struct tensor *out, const __nv_bfloat16 *qkv, int64_t B,
              int64_t L, int64_t H, float scale)
{
  const int  smem = (NW * 16 + 4 * FA_BN) * FA_LDS * 2;
  dim3       grid ((unsigned) ((L + NW * 16 - 1) / (NW * 16)), (unsigned) H, (unsigned) B);
  static int attr_set;

  if (!attr_set)
    {
      if (CUDA_TRY (be, cudaFuncSetAttribute (flash_attn_d64<NW>,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              smem)))
        return;
      attr_set = 1;
    }
  flash_attn_d64<NW><<<grid, NW * 32, smem, cuda_impl_of (be)->stream>>>
    ((__nv_bfloat16 *) out->data, qkv, (int) L, (int) H, scale * 1.4426950408889634f);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_attention (struct backend *be, struct tensor *out, const struct tensor *qkv,
                   const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                   float scale, int causal)
{
  const __nv_bfloat16 *q = (const __nv_bfloat16 *) qkv->data;
  void                *tmp = NULL;
  size_t               n = (size_t) B * L * 3 * H * dh, tmp_bytes = n * 2;

  if (cuda_check_float (be, out, "attention", "output")
      || cuda_check_float (be, qkv, "attention", "qkv")
      || (bias && cuda_check_float (be, bias, "attention", "bias")))
    return;
  if (B <= 0 || L <= 0 || H <= 0 || dh <= 0)
    return;
  if (L > INT32_MAX / 4 || H > 65535 || B > 65535)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "cuda attention: sizes out of range (B=%lld L=%lld H=%lld)",
                 (long long) B, (long long) L, (long long) H);
      return;
    }
  if (qkv->dtype != SD35_BF16)
    {
      if ((tmp = cuda_scratch_alloc (be, tmp_bytes)) == NULL)
        return;
      cuda_convert (be, tmp, SD35_BF16, qkv->data, qkv->dtype, n);
      q = (const __nv_bfloat16 *) tmp;
    }
  if (dh == FA_D && bias == NULL && !causal && out->dtype == SD35_BF16)
    launch_flash<4> (be, out, q, B, L, H, scale);
  else
    attention_general (be, out, q, bias, B, L, H, dh, scale, causal);
  cuda_scratch_free (be, tmp);
}
