/* stage_util.h — what the single-stage commands (`sd35 mmdit`, `vae-decode`, `vae-encode`)
 * share: open the model file, a backend and the input file; read input tensors with their
 * shape checked and a message naming the tensor, the expected and the found shape. */
#ifndef SD35_STAGE_UTIL_H
#define SD35_STAGE_UTIL_H

#include <stdint.h>

#include "ops.h"
#include "safetensors.h"

struct stage
{
  const char       *cmd;
  struct st_file   *model;
  struct st_file   *in;
  struct backend   *be;
  struct sd35_error err;
};

/* The arguments every stage command needs: 0 when --model, --in and --out are all given, else
 * 2 (the exit status for a usage error) after saying so. */
int stage_require (const char *cmd, const char *model, const char *in, const char *out);

/* Opens --model and --in and the backend ("auto"/"cpu"/"cuda", NULL = auto).  Returns 0, or
 * 1 after printing the error. */
int stage_open (struct stage *st, const char *cmd, const char *model, const char *in,
                const char *backend, int threads, int verbose);
void stage_close (struct stage *st);

/* Tensor `name` of the input as fp32 (float dtypes) with ndim dims; shape[i] ≥ 0 must match,
 * shape[i] < 0 accepts any size ≥ 1 and is filled in.  NULL after printing the error. */
float *stage_read (struct stage *st, const char *name, int ndim, int64_t *shape);
/* Same for integer/uint8 data (e.g. an image), values as int64. */
int64_t *stage_read_int (struct stage *st, const char *name, int ndim, int64_t *shape);

#endif
