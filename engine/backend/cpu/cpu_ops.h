/* cpu_ops.h — the CPU backend of ops.h (engine-internal).
 *
 * Two layers, llm.c style:
 *   - plain fp32 kernels on host pointers (cpu_layernorm (out, in, w, b, rows, D, eps), ...):
 *     the readable reference, usable directly by tests;
 *   - the backend_ops adapters (cpu_op_*) that unpack struct tensor, convert weight dtypes and
 *     hand work to the thread pool (cpu_parallel_for).
 * Activations are F32; weights are F32, F16 or BF16 (FP8 files become BF16 at load). */
#ifndef SD35_CPU_OPS_H
#define SD35_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"

struct cpu_backend
{
  int  n_threads;      /* ≥ 1 */
  /* TEST HOOK: $SD35_TEST_FAIL_ALLOC_AT=N (read when the backend is made) makes its N-th
   * tensor allocation fail with SD35_ERR_OOM, so tests can check out-of-memory messages
   * and cleanup deterministically (tests/unit/test_memory.c).  0 = off. */
  long fail_alloc_at;
  long n_allocs;       /* tensor allocations so far */
};

static inline int
cpu_threads (const struct backend *be)
{
  return ((const struct cpu_backend *) be->impl)->n_threads;
}

/* --- thread pool (cpu_backend.c) ------------------------------------------------------ */
/* Calls fn (ctx, begin, end) on disjoint ranges covering [0, n), on up to n_threads threads.
 * cost = rough work per item (flops); small jobs run on the calling thread. */
typedef void (*cpu_range_fn) (void *ctx, int64_t begin, int64_t end);
void cpu_parallel_for (struct backend *be, int64_t n, double cost, cpu_range_fn fn, void *ctx);

/* fp32 view of any float tensor's first n elements: the data itself for F32, else a converted
 * malloc'd copy returned in *tmp (caller frees *tmp).  NULL (error in be->err) on OOM. */
const float *cpu_f32_view (struct backend *be, const struct tensor *t, size_t n, float **tmp);
/* scratch fp32 buffer of n floats, NULL with be->err set on OOM */
float *cpu_scratch (struct backend *be, size_t n, const char *what);

/* --- plain kernels --------------------------------------------------------------------- */
float cpu_act1 (float x, enum op_act act);
/* x[i] = act(x[i]) for i < n: AVX2 for GELU-tanh, SiLU and quick GELU (a vector e^x, a few
 * ulp from cpu_act1), cpu_act1 otherwise */
void cpu_act_row (float *x, int64_t n, enum op_act act);
/* x[i] = e^(x[i] − mx) for i < n (e^−inf = 0), returns Σ x[i]: softmax's numerator */
float cpu_exp_sub_sum (float *x, int64_t n, float mx);
void cpu_matmul_naive (float *out, const float *in, const float *w, const float *b,
                       int64_t M, int64_t N, int64_t K, enum op_act act);
/* out[M,N] = act(in[M,K]·w[N,K]ᵀ + b): blocked, threaded; w of dtype w_dtype (F32/F16/BF16). */
void cpu_gemm (struct backend *be, float *out, const float *in, const void *w,
               enum sd35_dtype w_dtype, const float *b, int64_t M, int64_t N, int64_t K,
               enum op_act act);
/* the GEMM micro-kernel (AVX2/FMA or generic, picked at run time):
 * c[i][j] (i < MR, j < NR, row stride ldc) = (init ? init[j] : c[i][j]) + Σ_k a[k·MR+i]·b[k·NR+j]
 * a: MR rows packed [kc][MR]; b: a panel [kc][NR] (32-byte aligned).  Attention uses it too. */
#define GEMM_MR 6    /* rows of the micro-tile */
#define GEMM_NR 16   /* columns of the micro-tile = one packed panel */
typedef void (*cpu_micro_fn) (int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                              const float *init);
cpu_micro_fn cpu_gemm_micro (void);
#define GEMM_KC 256  /* reduction block: a weight panel is KC·NR·4 = 16 KiB (half of L1) */

/* The weight side of cpu_gemm, one entry per storage dtype (cpu_gemm_pack.c): widen (or
 * dequantize) rows n0 … n0+nr−1 (nr ≤ NR), columns k0 … k0+kc−1 of the weight w [N, K]
 * into panel[k·NR + j] (fp32, 32-byte aligned; rows ≥ nr are zero).  k0 is a multiple of
 * GEMM_KC and kc = min (GEMM_KC, K − k0); `block` (elements) must divide GEMM_KC, and K must
 * be a multiple of it (block formats: the row stride is K / block blocks). */
typedef void (*cpu_widen_fn) (float *panel, const void *w, int64_t K, int64_t n0, int64_t nr,
                              int64_t k0, int64_t kc);
struct cpu_weight_format
{
  enum sd35_dtype dtype;
  int64_t         block;
  cpu_widen_fn    widen;
};
/* the format of dtype dt on this CPU (AVX2/F16C versions where the CPU has them), NULL if the
 * CPU GEMM cannot read it */
const struct cpu_weight_format *cpu_weight_format (enum sd35_dtype dt);
/* 1 when the CPU has AVX2, FMA and F16C (the fast kernels run) */
int cpu_has_avx2_fma (void);
/* TEST HOOK: 1 makes cpu_gemm use the generic C kernels even on an AVX2 CPU */
extern int cpu_gemm_force_generic;
void cpu_layernorm (float *out, const float *in, const float *w, const float *b, int64_t rows,
                    int64_t D, float eps);
void cpu_rmsnorm (float *out, const float *in, const float *w, int64_t rows, int64_t D,
                  float eps);

/* im2col budget of cpu_op_conv2d in floats (default 4 Mi); only tests change it */
extern int64_t cpu_conv_chunk_floats;

/* --- backend_ops adapters -------------------------------------------------------------- */
void cpu_op_linear (struct backend *be, struct tensor *out, const struct tensor *in,
                    const struct tensor *w, const struct tensor *b, int64_t M, int64_t N,
                    int64_t K, enum op_act act);
void cpu_op_attention (struct backend *be, struct tensor *out, const struct tensor *qkv,
                       const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                       float scale, int causal);
void cpu_op_layernorm (struct backend *be, struct tensor *out, const struct tensor *in,
                       const struct tensor *w, const struct tensor *b, int64_t rows, int64_t D,
                       float eps);
void cpu_op_rmsnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *w, int64_t rows, int64_t D, float eps);
void cpu_op_qk_rmsnorm (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                        const struct tensor *wk, int64_t rows, int64_t H, int64_t dh, float eps);
void cpu_op_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *in,
                         const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                         int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps);
void cpu_op_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
                       const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t B,
                       int64_t N, int64_t D);
void cpu_op_groupnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                       const struct tensor *w, const struct tensor *b, int64_t B, int64_t C,
                       int64_t HW, int64_t groups, float eps, int silu);
void cpu_op_activation (struct backend *be, struct tensor *out, const struct tensor *in,
                        int64_t n, enum op_act act);
void cpu_op_add (struct backend *be, struct tensor *out, const struct tensor *a,
                 const struct tensor *b, int64_t n);
void cpu_op_mul (struct backend *be, struct tensor *out, const struct tensor *a,
                 const struct tensor *b, int64_t n);
void cpu_op_add_broadcast (struct backend *be, struct tensor *out, const struct tensor *in,
                           const struct tensor *vec, int64_t B, int64_t n);
void cpu_op_copy (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n);
void cpu_op_concat_rows (struct backend *be, struct tensor *out, const struct tensor *a,
                         const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C);
void cpu_op_split_rows (struct backend *be, struct tensor *a, struct tensor *b,
                        const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C);
void cpu_op_transpose (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                       int64_t C, int64_t N);
void cpu_op_embedding (struct backend *be, struct tensor *out, const struct tensor *table,
                       const int32_t *ids, int64_t n, int64_t D);
void cpu_op_conv2d (struct backend *be, struct tensor *out, const struct tensor *in,
                    const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci,
                    int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride,
                    int64_t pad_t, int64_t pad_l, int64_t pad_b, int64_t pad_r);
void cpu_op_upsample2x (struct backend *be, struct tensor *out, const struct tensor *in,
                        int64_t B, int64_t C, int64_t H, int64_t W);
void cpu_op_patchify (struct backend *be, struct tensor *out, const struct tensor *in, int64_t B,
                      int64_t C, int64_t H, int64_t W, int64_t p);
void cpu_op_unpatchify (struct backend *be, struct tensor *out, const struct tensor *in,
                        int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);

#endif
