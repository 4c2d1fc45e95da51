/* ops_cuda_test.h — what test_ops_cuda.c shares with its benchmarks (ops_cuda_bench.c). */
#ifndef SD35_OPS_CUDA_TEST_H
#define SD35_OPS_CUDA_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"

extern struct backend *gpu, *cpu;
extern int             failures, checks;   /* counted by compare() */

void           rng_seed (uint64_t seed);
float          urand (void);               /* U(−1, 1) */

/* n values in [lo, hi) rounded to bf16, seeded */
float         *rand_vec (size_t n, float lo, float hi, uint64_t seed);
/* activation tensor of n values: data, or NaN-filled when data is NULL */
struct tensor *act (struct backend *be, const float *data, int64_t n);
/* weight tensor from fp32 host data (kept alive by the caller: a CPU backend may alias it) */
struct tensor *weight (struct backend *be, const float *data, int64_t n, enum weight_use use);
/* device/host tensor → new fp32 host array (caller frees) */
float         *fetch (struct tensor *t);
/* passes when |got − ref| ≤ atol + rtol·|ref| everywhere (NaN fails); prints max errors and,
 * on failure, the first 5 pairs; counts checks and failures */
int            compare (const char *what, const float *got, const float *ref, size_t n,
                        double atol, double rtol);
int            compare_tensors (const char *what, struct tensor *g, struct tensor *c,
                                double atol, double rtol);
/* ops with fp32 and act_dtype tensors mixed (ops_cuda_mixed.c); big: SD3.5 shapes too */
void           check_mixed (int big);
/* CUDA-event timings of the kernels at SD3.5 sizes (test_ops_cuda --bench) */
void           run_bench (void);

#endif
