/* gemm.cu — the single cuBLASLt wrapper (llm.c matmul_cublaslt style) and op linear.
 *
 *   linear: out[M,N] = act(in[M,K] · w[N,K]ᵀ + b[N])            torch: F.linear(in, w, b)
 *
 * Row-major out[M,N] is column-major outᵀ[N,M], so we ask cuBLASLt for D(N×M) = wᵀ·in with
 * A = w (K×N column-major, transposed), B = in (K×M column-major): no copies.  bf16 operands,
 * fp32 accumulation (CUBLAS_COMPUTE_32F), bias and GELU-tanh fused as epilogues.
 * The heuristic's candidates (up to GEMM_MAX_ALGOS) are cached per (shape, dtypes, alignment,
 * epilogue): asking costs more than a small GEMM.  A launch that fails moves on to the next
 * candidate (gemm_plan.h); only when all fail is the error recorded.
 *
 * Bias: a fused bias reaches cuBLASLt in the output's dtype, the combination cuBLASLt documents
 * for non-fp8 GEMMs: bf16 outputs use the bf16 twin the backend keeps of every loaded fp32
 * vector (cuda_weight_from_host, cuda_vector_twin), fp32 outputs the fp32 vector itself.
 *
 * Operand precision: cuBLASLt gets bf16 A and B (an fp32 or f16 input is converted first);
 * D is the output tensor's dtype (fp32 D with bf16 A/B is a supported combination).  An fp32
 * input of at most GEMV_MAX_M rows (the adaLN / embedder linears) skips cuBLASLt: a GEMV
 * kernel reads it exactly (gemv_kernel.cuh, ops.h). */
#include "cuda_common.h"

#include "gemv_kernel.cuh"
#include "gemm_plan.h"

#include <stdlib.h>
#include <string.h>

struct gemm_key
{
  int64_t m, n, k, lda, ldb, ldd, sa, sb, sd;
  int     ta, tb, adt, bdt, ddt, biasdt, epi, batch, align_a, align_b, align_d, beta_nz;
};

struct gemm_cache_entry
{
  struct gemm_key         key;
  cublasLtMatmulAlgo_t    algos[GEMM_MAX_ALGOS];  /* the heuristic's order, failed ones dropped */
  int                     n_algos;
};

void
cuda_gemm_cache_free (struct cuda_impl *ci)
{
  free (ci->gemm_cache);
  ci->gemm_cache = NULL;
  ci->gemm_cache_n = ci->gemm_cache_cap = 0;
}

static cudaDataType_t
cuda_type (int dt)
{
  return dt == SD35_BF16 ? CUDA_R_16BF : dt == SD35_F16 ? CUDA_R_16F : CUDA_R_32F;
}

static int64_t
dt_size (int dt)
{
  return dt == SD35_F32 ? 4 : 2;
}

static int
ptr_align (const void *p)
{
  uintptr_t a = (uintptr_t) p;
  int       al = 256;
  while (al > 1 && (a % al) != 0)
    al >>= 1;
  return al;
}

int
cuda_gemm (struct backend *be, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
           const void *A, int a_dt, int64_t lda, int64_t stride_a,
           const void *B, int b_dt, int64_t ldb, int64_t stride_b,
           void *D, int d_dt, int64_t ldd, int64_t stride_d, int batch,
           const void *bias, int bias_dt, int gelu, float alpha, float beta)
{
  struct cuda_impl       *ci = cuda_impl_of (be);
  cublasLtMatmulDesc_t    op = NULL;
  cublasLtMatrixLayout_t  la = NULL, lb = NULL, ld = NULL;
  cublasOperation_t       opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t       opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtEpilogue_t      epi;
  struct gemm_key         key;
  struct gemm_cache_entry *entry = NULL;
  int                     rc = 1;

  if (backend_failed (be))
    return 1;
  if (m <= 0 || n <= 0 || k <= 0 || batch <= 0)
    return 0;
  if (bias)
    epi = gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  else
    epi = gelu ? CUBLASLT_EPILOGUE_GELU : CUBLASLT_EPILOGUE_DEFAULT;

  memset (&key, 0, sizeof key);
  key.m = m; key.n = n; key.k = k; key.lda = lda; key.ldb = ldb; key.ldd = ldd;
  key.sa = stride_a; key.sb = stride_b; key.sd = stride_d;
  key.ta = trans_a; key.tb = trans_b; key.adt = a_dt; key.bdt = b_dt; key.ddt = d_dt;
  key.biasdt = bias ? bias_dt : -1; key.epi = (int) epi; key.batch = batch;
  key.align_a = ptr_align (A); key.align_b = ptr_align (B); key.align_d = ptr_align (D);
  key.beta_nz = beta != 0.f;
  if (batch > 1)
    {
      /* every batch entry must keep the alignment the algorithm is chosen for */
      int sa = ptr_align ((const void *) (uintptr_t) (stride_a * dt_size (a_dt)));
      int sb = ptr_align ((const void *) (uintptr_t) (stride_b * dt_size (b_dt)));
      int sd = ptr_align ((const void *) (uintptr_t) (stride_d * dt_size (d_dt)));
      key.align_a = key.align_a < sa || stride_a == 0 ? key.align_a : sa;
      key.align_b = key.align_b < sb || stride_b == 0 ? key.align_b : sb;
      key.align_d = key.align_d < sd || stride_d == 0 ? key.align_d : sd;
    }
  if (bias)
    key.align_d = key.align_d < ptr_align (bias) ? key.align_d : ptr_align (bias);

  if (CUBLAS_TRY (be, cublasLtMatmulDescCreate (&op, CUBLAS_COMPUTE_32F, CUDA_R_32F)))
    goto out;
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
  if (bias)
    {
      int32_t bt = (int32_t) cuda_type (bias_dt);
      cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                      sizeof bias);
      cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt);
    }
  if (CUBLAS_TRY (be, cublasLtMatrixLayoutCreate (&la, cuda_type (a_dt), trans_a ? k : m,
                                                  trans_a ? m : k, lda))
      || CUBLAS_TRY (be, cublasLtMatrixLayoutCreate (&lb, cuda_type (b_dt), trans_b ? n : k,
                                                     trans_b ? k : n, ldb))
      || CUBLAS_TRY (be, cublasLtMatrixLayoutCreate (&ld, cuda_type (d_dt), m, n, ldd)))
    goto out;
  if (batch > 1)
    {
      int32_t bc = batch;
      cublasLtMatrixLayoutSetAttribute (la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
      cublasLtMatrixLayoutSetAttribute (lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
      cublasLtMatrixLayoutSetAttribute (ld, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
      cublasLtMatrixLayoutSetAttribute (la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                        &stride_a, sizeof stride_a);
      cublasLtMatrixLayoutSetAttribute (lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                        &stride_b, sizeof stride_b);
      cublasLtMatrixLayoutSetAttribute (ld, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                        &stride_d, sizeof stride_d);
    }

  for (int i = 0; i < ci->gemm_cache_n; i++)
    if (memcmp (&ci->gemm_cache[i].key, &key, sizeof key) == 0)
      {
        entry = &ci->gemm_cache[i];
        break;
      }
  if (entry == NULL)
    {
      cublasLtMatmulPreference_t      pref = NULL;
      cublasLtMatmulHeuristicResult_t res[GEMM_MAX_ALGOS];
      int                             nres = 0;
      uint32_t                        al_a = key.align_a, al_b = key.align_b;
      uint32_t                        al_d = key.align_d;
      uint64_t                        ws = ci->workspace_size;

      if (CUBLAS_TRY (be, cublasLtMatmulPreferenceCreate (&pref)))
        goto out;
      cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                            &ws, sizeof ws);
      cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                            &al_a, sizeof al_a);
      cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                            &al_b, sizeof al_b);
      cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                            &al_d, sizeof al_d);
      cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                            &al_d, sizeof al_d);
      cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic (ci->lt, op, la, lb, ld, ld, pref,
                                                         GEMM_MAX_ALGOS, res, &nres);
      cublasLtMatmulPreferenceDestroy (pref);
      if (s != CUBLAS_STATUS_SUCCESS || nres == 0)
        {
          rc = 2;   /* no algorithm: the caller may retry another way */
          goto out;
        }
      if (ci->gemm_cache_n == ci->gemm_cache_cap)
        {
          int   cap = ci->gemm_cache_cap ? 2 * ci->gemm_cache_cap : 64;
          void *p = realloc (ci->gemm_cache, cap * sizeof *ci->gemm_cache);
          if (p == NULL)
            {
              CUDA_FAIL (be, SD35_ERR_OOM, "out of host memory caching GEMM algorithms");
              goto out;
            }
          ci->gemm_cache = (struct gemm_cache_entry *) p;
          ci->gemm_cache_cap = cap;
        }
      entry = &ci->gemm_cache[ci->gemm_cache_n++];
      entry->key = key;
      entry->n_algos = 0;
      for (int i = 0; i < nres && i < GEMM_MAX_ALGOS; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS)
          entry->algos[entry->n_algos++] = res[i].algo;
    }
  {
    int n_before = entry->n_algos, last = CUBLAS_STATUS_NOT_SUPPORTED, used;
    used = gemm_try_algos (entry->algos, &entry->n_algos, [&] (cublasLtMatmulAlgo_t &algo) {
      cublasStatus_t st = cublasLtMatmul (ci->lt, op, &alpha, A, la, B, lb, &beta, D, ld, D, ld,
                                          &algo, ci->workspace, ci->workspace_size, ci->stream);
      /* only cuBLASLt's own status decides: a candidate that launched must not run twice
       * (beta ≠ 0 would accumulate twice); asynchronous faults surface at the next check */
      if (st != CUBLAS_STATUS_SUCCESS)
        cudaGetLastError ();   /* a failed launch's error is not the next candidate's */
      return (int) st;
    }, &last);
    if (used > 0)
      sd35_log ("cuda: GEMM m=%lld n=%lld k=%lld batch %d: %d cuBLASLt algorithm(s) failed, "
                "candidate %d of %d runs", (long long) m, (long long) n, (long long) k, batch,
                used, used + 1, n_before);
    if (used < 0)
      {
        /* forget the shape: a later call asks the heuristic again */
        *entry = ci->gemm_cache[--ci->gemm_cache_n];
        CUDA_FAIL (be, SD35_ERR_CUDA, "cuBLASLt: all %d algorithms failed for GEMM m=%lld "
                   "n=%lld k=%lld batch %d (last: %s)", n_before, (long long) m, (long long) n,
                   (long long) k, batch, cublasLtGetStatusString ((cublasStatus_t) last));
        goto out;
      }
  }
  rc = 0;
out:
  if (la) cublasLtMatrixLayoutDestroy (la);
  if (lb) cublasLtMatrixLayoutDestroy (lb);
  if (ld) cublasLtMatrixLayoutDestroy (ld);
  if (op) cublasLtMatmulDescDestroy (op);
  return rc;
}

/* out[i] = act(out[i] (+ bias[i % N])) for activations cuBLASLt cannot fuse */
__global__ void
bias_act_kernel (void *out, int out_dt, const void *bias, int bias_dt, size_t total, int64_t N,
                 int act)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total;
       i += (size_t) gridDim.x * blockDim.x)
    {
      float v = ld_f32 (out, out_dt, i);
      if (bias)
        v += ld_f32 (bias, bias_dt, i % N);
      st_f32 (out, out_dt, i, act_apply (v, act));
    }
}

void
cuda_op_linear (struct backend *be, struct tensor *out, const struct tensor *in,
                const struct tensor *w, const struct tensor *b, int64_t M, int64_t N, int64_t K,
                enum op_act act)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  const void       *A = w->data, *Bm = in->data, *bias = b ? b->data : NULL;
  void             *tmp_w = NULL, *tmp_in = NULL, *tmp_b = NULL;
  size_t            wbytes = 0, inbytes = 0, bbytes = 0;
  int               bias_dt = b ? b->dtype : SD35_F32;
  int               fuse_gelu = act == ACT_GELU_TANH;
  int               rc;

  if (cuda_check_float (be, out, "linear", "output") || cuda_check_float (be, in, "linear", "input")
      || cuda_check_float (be, w, "linear", "weight")
      || (b && cuda_check_float (be, b, "linear", "bias")))
    return;
  if (M <= 0 || N <= 0 || K <= 0)
    return;
  if (in->dtype == SD35_F32 && M <= GEMV_MAX_M)
    {
      size_t threads = (size_t) N * 32;
      if (threads / 256 + 1 > 0x7fffffffu)
        {
          CUDA_FAIL (be, SD35_ERR_ARG, "linear: N=%lld too large", (long long) N);
          return;
        }
      linear_gemv_kernel<<<(unsigned) ((threads + 255) / 256), 256, 0, ci->stream>>>
        (out->data, out->dtype, (const float *) in->data, w->data, w->dtype, bias, bias_dt,
         (int) M, N, K, (int) act);
      CUDA_LAUNCH_CHECK (be);
      return;
    }
  /* cuBLASLt wants A and B of one type: bring fp32/f16 operands to bf16 */
  if (w->dtype != SD35_BF16)
    {
      wbytes = (size_t) N * K * 2;
      if ((tmp_w = cuda_scratch_alloc (be, wbytes)) == NULL)
        return;
      cuda_convert (be, tmp_w, SD35_BF16, w->data, w->dtype, (size_t) N * K);
      A = tmp_w;
    }
  if (in->dtype != SD35_BF16)
    {
      inbytes = (size_t) M * K * 2;
      if ((tmp_in = cuda_scratch_alloc (be, inbytes)) == NULL)
        goto out;
      cuda_convert (be, tmp_in, SD35_BF16, in->data, in->dtype, (size_t) M * K);
      Bm = tmp_in;
    }
  /* the fused bias in the output dtype (gemm_plan.h); bf16 twins are exact for the
   * checkpoints' bf16 biases */
  {
    const void *epi_bias = bias;
    const void *twin = b ? cuda_vector_twin (be, b->data) : NULL;
    switch (gemm_bias_plan (b != NULL, out->dtype, bias_dt, SD35_BF16, twin != NULL))
      {
      case GEMM_BIAS_TWIN:
        epi_bias = twin;
        break;
      case GEMM_BIAS_CONVERT:
        bbytes = (size_t) N * sd35_dtype_size (out->dtype);
        if ((tmp_b = cuda_scratch_alloc (be, bbytes)) == NULL)
          goto out;
        cuda_convert (be, tmp_b, out->dtype, bias, bias_dt, (size_t) N);
        epi_bias = tmp_b;
        break;
      default:
        break;
      }
    rc = cuda_gemm (be, 1, 0, N, M, K, A, SD35_BF16, K, 0, Bm, SD35_BF16, K, 0, out->data,
                    out->dtype, N, 0, 1, epi_bias, out->dtype, fuse_gelu, 1.f, 0.f);
  }
  if (rc == 2 && bias)
    {
      /* no fused epilogue at all: plain GEMM, then bias and activation in one pass */
      rc = cuda_gemm (be, 1, 0, N, M, K, A, SD35_BF16, K, 0, Bm, SD35_BF16, K, 0,
                      out->data, out->dtype, N, 0, 1, NULL, 0, 0, 1.f, 0.f);
      if (rc == 0)
        {
          size_t total = (size_t) M * N;
          bias_act_kernel<<<cuda_grid_1d (total, 256), 256, 0, ci->stream>>>
            (out->data, out->dtype, bias, bias_dt, total, N, act);
          CUDA_LAUNCH_CHECK (be);
          goto out;
        }
    }
  if (rc == 2)
    {
      CUDA_FAIL (be, SD35_ERR_CUDA, "cuBLASLt has no algorithm for linear M=%lld N=%lld "
                 "K=%lld (%s × %s → %s)", (long long) M, (long long) N, (long long) K,
                 sd35_dtype_name (in->dtype), sd35_dtype_name (w->dtype),
                 sd35_dtype_name (out->dtype));
      goto out;
    }
  if (rc == 0 && act != ACT_NONE && !fuse_gelu)
    {
      size_t total = (size_t) M * N;
      bias_act_kernel<<<cuda_grid_1d (total, 256), 256, 0, ci->stream>>>
        (out->data, out->dtype, NULL, 0, total, N, act);
      CUDA_LAUNCH_CHECK (be);
    }
out:
  cuda_scratch_free (be, tmp_w);
  cuda_scratch_free (be, tmp_in);
  cuda_scratch_free (be, tmp_b);
}
