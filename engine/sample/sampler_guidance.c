/* sampler_guidance.c — classifier-free guidance on the x0 prediction and skip-layer guidance
 * (sd3_impls.py CFGDenoiser, sd3_infer.py SkipLayerCFGDenoiser; sd35-facts.md §3, §9), as a
 * sampler_denoiser over a model callback that predicts x0 for a chosen batch. */
#include "sampler.h"

#include <stdlib.h>

#include "error.h"

int
sampler_slg_active (double slg_scale, double slg_start, double slg_end, int steps, int step)
{
  /* SkipLayerCFGDenoiser: self.slg > 0 and step > start·steps and step < end·steps */
  return slg_scale > 0.0 && (double) step > slg_start * (double) steps &&
         (double) step < slg_end * (double) steps;
}

void
sampler_guidance_combine (const float *cond, const float *uncond, const float *skip,
                          size_t n, double cfg, double slg_scale, float *out)
{
  float scale = (float) cfg, slg = (float) slg_scale;

  for (size_t i = 0; i < n; i++)
    {
      float pos = cond[i];
      /* neg_out + (pos_out − neg_out)·cond_scale, float32; below or at 1: cond only */
      float d = cfg > 1.0 ? uncond[i] + (float) ((double) (pos - uncond[i]) * scale) : pos;
      if (skip != NULL)
        d = d + (float) ((double) (pos - skip[i]) * slg);  /* + (pos_out − skip)·slg */
      out[i] = d;
    }
}

enum sd35_status
sampler_guidance_init (struct sampler_guidance *g, const struct sampler_model *model,
                       size_t n, double cfg, double slg_scale, double slg_start,
                       double slg_end, int steps, struct sd35_error *err)
{
  size_t bytes;

  g->buf = NULL;
  if (model == NULL || model->predict == NULL)
    return sd35_set_error (err, SD35_ERR_INTERNAL, "guidance: no model callback given");
  if (!(cfg >= 0.0 && cfg <= 1000.0))
    return sd35_set_error (err, SD35_ERR_ARG, "cfg scale must be between 0 and 1000 (got %g); "
                           "SD3.5 Large uses 4.5, Medium 5, Large Turbo 1", cfg);
  if (slg_scale > 0.0 && !(slg_start >= 0.0 && slg_end <= 1.0 && slg_start <= slg_end))
    return sd35_set_error (err, SD35_ERR_ARG, "skip-layer guidance start/end must satisfy "
                           "0 ≤ start ≤ end ≤ 1 (got %g, %g)", slg_start, slg_end);
  if (steps < 1 || steps > SAMPLER_MAX_STEPS)
    return sd35_set_error (err, SD35_ERR_ARG, "steps must be between 1 and %d (got %d)",
                           SAMPLER_MAX_STEPS, steps);
  if (sd35_mul_size (n, 3 * sizeof (float), &bytes) != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "guidance: latent of %zu values is too large", n);
  g->buf = sd35_malloc (bytes, "the guidance buffers", err);
  if (g->buf == NULL)
    return err->status;
  g->model = *model;
  g->n = n;
  g->cfg = cfg;
  g->slg_scale = slg_scale;
  g->slg_start = slg_start;
  g->slg_end = slg_end;
  g->steps = steps;
  return SD35_OK;
}

void
sampler_guidance_clear (struct sampler_guidance *g)
{
  free (g->buf);
  g->buf = NULL;
}

int
sampler_guidance_uses_uncond (const struct sampler_guidance *g)
{
  return g->cfg > 1.0;
}

enum sd35_status
sampler_guidance_denoise (void *user, const float *x, float sigma, int step,
                          float *denoised_out, struct sd35_error *err)
{
  struct sampler_guidance *g = user;
  float                   *cond = g->buf, *uncond = g->buf + g->n, *skip = NULL;
  int                      use_uncond = sampler_guidance_uses_uncond (g);
  enum sd35_status         st;

  st = g->model.predict (g->model.user, x, sigma,
                         use_uncond ? SAMPLER_BATCH_COND_UNCOND : SAMPLER_BATCH_COND, cond,
                         err);
  if (st != SD35_OK)
    return st;
  if (sampler_slg_active (g->slg_scale, g->slg_start, g->slg_end, g->steps, step))
    {
      skip = g->buf + 2 * g->n;
      st = g->model.predict (g->model.user, x, sigma, SAMPLER_BATCH_COND_SKIP, skip, err);
      if (st != SD35_OK)
        return st;
    }
  sampler_guidance_combine (cond, use_uncond ? uncond : NULL, skip, g->n, g->cfg,
                            g->slg_scale, denoised_out);
  return SD35_OK;
}
