/* goldens_cuda_util.c — the helpers the parts of test_goldens_cuda share (goldens_cuda.h):
 * the backend of the run's mode, the text encoders of the goldens, and the comparisons that
 * test_close does not cover (info lines, u8 fractions, the targets). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goldens_cuda.h"
#include "discover.h"
#include "testutil.h"

enum gc_mode gc_mode = GC_MODE_CUDA;

struct backend *
gc_backend_new (const char *section)
{
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  enum sd35_status  st;

  st = gc_mode == GC_MODE_CPU      ? backend_cpu_new (0, &be, &err)
     : gc_mode == GC_MODE_BF16_EMU ? bf16_emu_backend_new (&be, &err)
                                   : backend_cuda_new (&be, &err);
  if (st != SD35_OK)
    {
      test_check (0, "%s: creating the backend: %s", section, err.message);
      return NULL;
    }
  return be;
}

int
gc_text_encoders_load (struct backend *be, struct gc_text_encoders *t)
{
  char             *cfg_l = test_shared_path_or_skip ("golden/models/text_encoder/config.json");
  char             *cfg_g = test_shared_path_or_skip ("golden/models/text_encoder_2/config.json");
  int               heads_l = model_config_heads (cfg_l, NULL),
                    heads_g = model_config_heads (cfg_g, NULL);
  struct sd35_error err = { 0 };

  memset (t, 0, sizeof *t);
  free (cfg_l);
  free (cfg_g);
  t->fl = test_open_golden ("golden/models/clip_l.safetensors");
  t->fg = test_open_golden ("golden/models/clip_g.safetensors");
  t->ft = test_open_golden ("golden/models/t5xxl.safetensors");
  return test_check (clip_load (be, t->fl, CLIP_KIND_L, heads_l, &t->cl, &err) == SD35_OK
                     && clip_load (be, t->fg, CLIP_KIND_G, heads_g, &t->cg, &err) == SD35_OK
                     && t5_load (be, t->ft, &t->t5, &err) == SD35_OK,
                     "load CLIP-L, CLIP-G, T5 on %s: %s", be->name, err.message);
}

void
gc_text_encoders_free (struct gc_text_encoders *t)
{
  clip_free (t->cl);
  clip_free (t->cg);
  t5_free (t->t5);
  st_close (t->fl);
  st_close (t->fg);
  st_close (t->ft);
  memset (t, 0, sizeof *t);
}

enum sd35_backend_kind
gc_engine_backend (void)
{
  return gc_mode == GC_MODE_CUDA ? SD35_BACKEND_CUDA : SD35_BACKEND_CPU;
}

void
gc_info_close (const char *what, const float *got, const float *ref, size_t n)
{
  double max_ref = 0, max_err = 0;

  for (size_t i = 0; i < n; i++)
    {
      double d = (double) got[i] - (double) ref[i];
      if (isnan (d))
        max_err = INFINITY;
      if (fabs (ref[i]) > max_ref)
        max_ref = fabs (ref[i]);
      if (fabs (d) > max_err)
        max_err = fabs (d);
    }
  printf ("info %-44s max|d|=%.3e = %.2e*max|ref| (max|ref| %.3e)\n", what, max_err,
          max_ref > 0 ? max_err / max_ref : max_err, max_ref);
}

int
gc_u8_fraction (const char *what, const uint8_t *got, const uint8_t *ref, size_t n, int max_diff)
{
  size_t within = 0, at = 0;
  int    worst = 0;
  double frac;

  for (size_t i = 0; i < n; i++)
    {
      int d = abs ((int) got[i] - (int) ref[i]);
      within += d <= max_diff;
      if (d > worst)
        {
          worst = d;
          at = i;
        }
    }
  frac = n ? (double) within / (double) n : 0.0;
  return test_check (n > 0 && frac >= GC_U8_FRAC,
                     "%-44s %.4f%% of %zu within ±%d (need ≥ %.1f%%), max|d|=%d at %zu", what,
                     100.0 * frac, n, max_diff, 100.0 * GC_U8_FRAC, worst, at);
}

void
gc_check_latent (const char *what, const float *got, const float *ref, size_t n)
{
  double max_ref = 0, max_err = 0;

  test_close (what, got, ref, n, GC_PIPE_TOL);
  for (size_t i = 0; i < n; i++)
    {
      max_ref = fmax (max_ref, fabs (ref[i]));
      max_err = fmax (max_err, fabs ((double) got[i] - ref[i]));
    }
  printf ("info %-44s = %.2e*max|ref|: the bf16-emulation bound %.0e %s\n", what,
          max_ref > 0 ? max_err / max_ref : max_err, GC_BF16_TOL,
          max_err <= GC_BF16_TOL * max_ref ? "met" : "NOT met");
}

void
gc_check_image_u8 (const char *what, const uint8_t *got, const uint8_t *ref, size_t n)
{
  size_t within = 0;

  gc_u8_fraction (what, got, ref, n, GC_PIPE_U8_DIFF);
  for (size_t i = 0; i < n; i++)
    within += abs ((int) got[i] - (int) ref[i]) <= GC_BF16_U8_DIFF;
  printf ("info %-44s %.4f%% within ±%d: the bf16-emulation bound (≥ %.1f%%) %s\n", what,
          n ? 100.0 * within / n : 0.0, GC_BF16_U8_DIFF, 100.0 * GC_U8_FRAC,
          n && within >= GC_U8_FRAC * n ? "met" : "NOT met");
}
