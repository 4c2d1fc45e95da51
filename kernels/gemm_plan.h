/* gemm_plan.h — the decisions of kernels/gemm.cu that need no GPU, apart so that the host test
 * (tests/unit/test_cuda_emu.cc) checks them: which bias operand a fused cuBLASLt epilogue
 * gets, and trying the heuristic's algorithms in order until one launches.
 * Plain C++ (no CUDA types): dtypes are enum sd35_dtype values. */
#ifndef SD35_GEMM_PLAN_H
#define SD35_GEMM_PLAN_H

#include <stdint.h>

#define GEMM_MAX_ALGOS 8   /* heuristic candidates kept per shape */

/* cuBLASLt documents the bias of a non-fp8 GEMM in the output's type (bf16 D: bf16 bias;
 * fp32 D: fp32 bias), so a bias always reaches the epilogue in the output dtype:
 *   GEMM_BIAS_AS_IS   the bias tensor already is in the output dtype
 *   GEMM_BIAS_TWIN    the bf16 twin kept since the weight's upload (bf16 output)
 *   GEMM_BIAS_CONVERT a scratch copy converted for this call (no twin: f16 output, or a bias
 *                     that is an activation rather than a loaded weight) */
enum gemm_bias_plan
{
  GEMM_BIAS_NONE = 0,
  GEMM_BIAS_AS_IS,
  GEMM_BIAS_TWIN,
  GEMM_BIAS_CONVERT
};

static inline enum gemm_bias_plan
gemm_bias_plan (int has_bias, int out_dt, int bias_dt, int twin_dt, int has_twin)
{
  if (!has_bias)
    return GEMM_BIAS_NONE;
  if (bias_dt == out_dt)
    return GEMM_BIAS_AS_IS;
  if (has_twin && twin_dt == out_dt)
    return GEMM_BIAS_TWIN;
  return GEMM_BIAS_CONVERT;
}

/* Launches with algos[0], then the next one while a launch fails.  Algorithms that failed are
 * dropped (they fail again for this shape): on return algos[0..*n) holds the working one first
 * and the untried rest.  Returns the index (in the original order) that launched, or −1 when
 * all failed (*n = 0, *last_status = the last failure).  launch(algo) returns 0 on success. */
template <typename Algo, typename Launch>
static int
gemm_try_algos (Algo *algos, int *n, Launch launch, int *last_status)
{
  for (int i = 0; i < *n; i++)
    {
      int s = launch (algos[i]);
      if (s == 0)
        {
          for (int j = i; j < *n; j++)
            algos[j - i] = algos[j];
          *n -= i;
          return i;
        }
      *last_status = s;
    }
  *n = 0;
  return -1;
}

#endif
