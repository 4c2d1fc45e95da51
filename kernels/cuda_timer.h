/* cuda_timer.h — CUDA-event timing of work enqueued on a CUDA backend, for benchmarks
 * (`sd35 bench`, tests/gpu).  Plain C; only meaningful when be->name is "cuda" and the build
 * has SD35_HAVE_CUDA.  begin() records a start event on the backend's stream; end() records
 * the stop event, waits for it and returns the elapsed milliseconds (−1 on error, with the
 * error recorded in be->err). */
#ifndef SD35_CUDA_TIMER_H
#define SD35_CUDA_TIMER_H

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

void  sd35_cuda_timer_begin (struct backend *be);
float sd35_cuda_timer_end (struct backend *be);

#ifdef __cplusplus
}
#endif

#endif
