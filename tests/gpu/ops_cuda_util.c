/* ops_cuda_util.c — data, tensors and comparisons for test_ops_cuda (see ops_cuda_test.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_cuda_test.h"

/* --- data ------------------------------------------------------------------------------------------ */

static uint64_t rng_state;
struct backend *gpu, *cpu;
int             failures, checks;

void
rng_seed (uint64_t seed)
{
  rng_state = seed;
}

float
urand (void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float) ((rng_state >> 11) * 0x1.0p-53) * 2.f - 1.f;
}

/* n values lo + (hi−lo)·U(0,1), rounded to bf16 */
float *
rand_vec (size_t n, float lo, float hi, uint64_t seed)
{
  float *v = malloc ((n ? n : 1) * sizeof *v);
  rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++)
    v[i] = sd35_bf16_to_f32 (sd35_f32_to_bf16 (lo + (hi - lo) * 0.5f * (urand () + 1.f)));
  return v;
}

/* activation tensor of n values: data, or NaN when data is NULL (an output: every element the
 * op fails to write then fails the comparison) */
struct tensor *
act (struct backend *be, const float *data, int64_t n)
{
  int64_t        shape[1] = { n };
  struct tensor *t = tensor_new (be, be->act_dtype, 1, shape);
  if (t && data)
    be->ops->upload_f32 (be, t, data);
  else if (t)
    {
      float *nan = malloc ((size_t) (n ? n : 1) * sizeof *nan);
      for (int64_t i = 0; i < n; i++)
        nan[i] = NAN;
      be->ops->upload_f32 (be, t, nan);
      free (nan);
    }
  return t;
}

struct tensor *
weight (struct backend *be, const float *data, int64_t n, enum weight_use use)
{
  struct tensor *t = calloc (1, sizeof *t);
  t->be = be;
  t->ndim = 1;
  t->shape[0] = n;
  t->numel = (size_t) n;
  t->dtype = SD35_F32;
  if (be->ops->weight_from_host (be, t, data, SD35_F32, use) != SD35_OK)
    {
      free (t);
      return NULL;
    }
  return t;
}

float *
fetch (struct tensor *t)
{
  float *h = malloc ((t->numel ? t->numel : 1) * sizeof *h);
  for (size_t i = 0; i < t->numel; i++)
    h[i] = NAN;
  tensor_to_f32 (t, h);
  return h;
}

/* --- comparison ----------------------------------------------------------------------------------- */

int
compare (const char *what, const float *got, const float *ref, size_t n, double atol,
         double rtol)
{
  double max_abs = 0, max_rel = 0;
  size_t bad = 0, first_bad = n;

  checks++;
  if (backend_failed (gpu) || backend_failed (cpu))
    {
      printf ("FAIL %-44s backend error: %s%s\n", what, gpu->err.message, cpu->err.message);
      failures++;
      return 0;
    }
  for (size_t i = 0; i < n; i++)
    {
      double d = fabs ((double) got[i] - ref[i]);
      double r = d / (fabs (ref[i]) > 1e-6 ? fabs (ref[i]) : 1e-6);
      if (!(d <= atol + rtol * fabs (ref[i])))   /* NaN fails */
        {
          if (bad++ == 0)
            first_bad = i;
        }
      if (d > max_abs || isnan (d))
        max_abs = d;
      if (r > max_rel && fabs (ref[i]) > atol)
        max_rel = r;
    }
  printf ("%s %-44s n=%-9zu max|d|=%.3g max rel=%.3g (atol %.0e rtol %.0e)%s", bad ? "FAIL" : "ok  ",
          what, n, max_abs, max_rel, atol, rtol, bad ? "" : "\n");
  if (bad)
    {
      printf (" %zu bad, first at %zu\n", bad, first_bad);
      failures++;
    }
  if (bad || getenv ("SD35_TEST_VERBOSE"))
    for (size_t i = bad ? first_bad : 0, k = 0; i < n && k < 5; i++, k++)
      printf ("    [%zu] gpu %.6g cpu %.6g\n", i, got[i], ref[i]);
  return bad == 0;
}

/* downloads both and compares (the shorter length) */
int
compare_tensors (const char *what, struct tensor *g, struct tensor *c, double atol, double rtol)
{
  float *hg = fetch (g), *hc = fetch (c);
  int    ok = compare (what, hg, hc, g->numel < c->numel ? g->numel : c->numel, atol, rtol);
  free (hg);
  free (hc);
  return ok;
}

