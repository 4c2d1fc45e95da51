/* params.c — checking sd35_params before any work, and resolving the per-variant defaults
 * (sd3_infer.py CONFIGS) into a struct gen_params that generate.c runs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "generate.h"
#include "tokenizer.h"

#define MAX_SIDE 8192  /* 64 MP: beyond this the latent/attention sizes are unreasonable */

/* "1000 (nearest valid: 992 or 1008)" */
static void
nearest_sizes (int v, char *buf, size_t n)
{
  int lo = v / 16 * 16, hi = lo + 16;

  if (lo < 16)
    snprintf (buf, n, "nearest valid: %d", hi);
  else
    snprintf (buf, n, "nearest valid: %d or %d", lo, hi);
}

static enum sd35_status
check_side (const char *what, int v, struct sd35_error *err)
{
  char near[64];

  if (v > 0 && v % 16 == 0 && v <= MAX_SIDE)
    return SD35_OK;
  if (v <= 0)
    return sd35_set_error (err, SD35_ERR_ARG, "%s %d: must be a positive multiple of 16 "
                           "(e.g. 1024)", what, v);
  if (v > MAX_SIDE)
    return sd35_set_error (err, SD35_ERR_ARG, "%s %d is larger than the %d pixels this engine "
                           "accepts", what, v, MAX_SIDE);
  nearest_sizes (v, near, sizeof near);
  return sd35_set_error (err, SD35_ERR_ARG, "%s %d is not a multiple of 16 (%s)", what, v,
                         near);
}

/* Ranges of the numbers (also in the CLI's --help and the plug-in's arguments). */
#define MAX_STEPS 1000
#define MAX_CFG   100.0
#define MIN_SHIFT 0.01   /* below, shift·t/(1 + (shift − 1)·t) underflows to NaN sigmas */
#define MAX_SHIFT 1000.0

/* `known` = 0: the model is not open yet (sd35_params_check): the defaults are not named. */
static enum sd35_status
resolve (const struct sd35_params *p, enum sd35_variant variant, int known,
         struct gen_params *g, struct sd35_error *err)
{
  struct sd35_defaults d;
  char                 dsteps[48] = "", dcfg[48] = "", dshift[48] = "";

  memset (g, 0, sizeof *g);
  if (p == NULL)
    return sd35_set_error (err, SD35_ERR_ARG, "no generation parameters given");
  if (p->width % 16 != 0 && p->height % 16 != 0 && p->width > 0 && p->height > 0)
    {
      char nw[64], nh[64];
      nearest_sizes (p->width, nw, sizeof nw);
      nearest_sizes (p->height, nh, sizeof nh);
      return sd35_set_error (err, SD35_ERR_ARG, "image size %d×%d: width and height must be "
                             "multiples of 16 (width: %s; height: %s)", p->width, p->height,
                             nw, nh);
    }
  if (check_side ("width", p->width, err) != SD35_OK ||
      check_side ("height", p->height, err) != SD35_OK)
    return err->status;

  sd35_variant_defaults (variant, &d);
  if (known)
    {
      snprintf (dsteps, sizeof dsteps, ", %d", d.steps);
      snprintf (dcfg, sizeof dcfg, " %g", d.cfg);
      snprintf (dshift, sizeof dshift, " %g", d.shift);
    }
  g->width = p->width;
  g->height = p->height;
  g->h = p->height / 8;
  g->w = p->width / 8;
  g->steps = p->steps > 0 ? p->steps : d.steps;
  if (p->steps < 0 || g->steps > MAX_STEPS)
    return sd35_set_error (err, SD35_ERR_ARG, "steps %d: must be from 1 to %d (0 = the "
                           "model's default%s)", p->steps, MAX_STEPS, dsteps);
  g->cfg = p->cfg == -1.0 ? d.cfg : p->cfg;
  if (!(g->cfg >= 0 && g->cfg <= MAX_CFG))  /* NaN fails too */
    return sd35_set_error (err, SD35_ERR_ARG, "guidance scale %g: must be a finite number from "
                           "0 to %g (below 1 = no guidance; -1 = the model's default%s)", p->cfg,
                           MAX_CFG, dcfg);
  g->shift = p->shift == 0 ? d.shift : p->shift;
  if (!(g->shift >= MIN_SHIFT && g->shift <= MAX_SHIFT))
    return sd35_set_error (err, SD35_ERR_ARG, "shift %g: must be a finite number from %g to %g "
                           "(0 = the model's default%s)", p->shift, MIN_SHIFT, MAX_SHIFT, dshift);
  g->sampler = p->sampler != SD35_SAMPLER_DEFAULT ? p->sampler : d.sampler;
  if (g->sampler != SD35_SAMPLER_EULER && g->sampler != SD35_SAMPLER_DPMPP_2M)
    return sd35_set_error (err, SD35_ERR_ARG, "unknown sampler %d (euler or dpmpp_2m)",
                           (int) p->sampler);
  g->seed = p->seed;

  if (!(p->slg_scale >= 0 && p->slg_scale <= MAX_CFG))
    return sd35_set_error (err, SD35_ERR_ARG, "skip-layer guidance scale %g: must be a finite "
                           "number from 0 to %g (0 = off)", p->slg_scale, MAX_CFG);
  if (p->slg_scale > 0)
    {
      if (p->n_slg_layers <= 0 || p->n_slg_layers > SD35_MAX_SKIP_LAYERS)
        return sd35_set_error (err, SD35_ERR_ARG, "skip-layer guidance needs 1 to %d layers "
                               "(got %d)", SD35_MAX_SKIP_LAYERS, p->n_slg_layers);
      for (int i = 0; i < p->n_slg_layers; i++)
        if (p->slg_layers[i] < 0)
          return sd35_set_error (err, SD35_ERR_ARG, "skip-layer index %d: block indices start "
                                 "at 0", p->slg_layers[i]);
      if (!(p->slg_start >= 0 && p->slg_end <= 1 && p->slg_start < p->slg_end))
        return sd35_set_error (err, SD35_ERR_ARG, "skip-layer guidance start %g / end %g: need "
                               "0 ≤ start < end ≤ 1 (fractions of the steps)", p->slg_start,
                               p->slg_end);
      g->slg_scale = p->slg_scale;
      g->slg_start = p->slg_start;
      g->slg_end = p->slg_end;
      g->n_slg_layers = p->n_slg_layers;
      memcpy (g->slg_layers, p->slg_layers, sizeof g->slg_layers);
    }

  g->strength = 1.0;
  if (p->init_rgb != NULL)
    {
      if (!(p->strength > 0 && p->strength <= 1))
        return sd35_set_error (err, SD35_ERR_ARG, "img2img strength %g: must be in (0, 1] "
                               "(1 = ignore the init image's content, small = stay close)",
                               p->strength);
      g->strength = p->strength;
      g->vae_seed = p->has_vae_seed ? p->vae_seed : p->seed;
    }
  else if (p->mask != NULL)
    return sd35_set_error (err, SD35_ERR_ARG, "a mask needs an init image (img2img)");

  g->prompt = p->prompt ? p->prompt : "";
  g->negative = p->negative_prompt ? p->negative_prompt : "";
  g->prompt_weights = p->prompt_weights;
  if (p->prompt_weights != SD35_PROMPT_WEIGHTS_COMFY &&
      p->prompt_weights != SD35_PROMPT_WEIGHTS_IGNORE)
    return sd35_set_error (err, SD35_ERR_ARG, "unknown prompt-weights mode %d (comfy or "
                           "ignore)", (int) p->prompt_weights);
  /* refused before any work; only the weights that are applied matter */
  if (p->prompt_weights == SD35_PROMPT_WEIGHTS_COMFY &&
      (prompt_check_weights (g->prompt, "prompt", err) != SD35_OK ||
       (g->cfg > 1.0 && prompt_check_weights (g->negative, "negative prompt", err) != SD35_OK)))
    return err->status;
  return SD35_OK;
}

enum sd35_status
gen_params_resolve (const struct sd35_params *p, enum sd35_variant variant,
                    struct gen_params *g, struct sd35_error *err)
{
  return resolve (p, variant, 1, g, err);
}

enum sd35_status
gen_params_check_depth (const struct gen_params *g, int depth, struct sd35_error *err)
{
  for (int i = 0; g->slg_scale > 0 && i < g->n_slg_layers; i++)
    if (g->slg_layers[i] >= depth)
      return sd35_set_error (err, SD35_ERR_ARG, "skip-layer index %d is beyond this model's %d "
                             "blocks (valid: 0 to %d)", g->slg_layers[i], depth, depth - 1);
  return SD35_OK;
}

enum sd35_status
sd35_params_check (const struct sd35_params *p, struct sd35_error *err)
{
  struct gen_params g;
  struct sd35_error local;

  if (err == NULL)
    err = &local;
  sd35_error_clear (err);
  return resolve (p, SD35_VARIANT_LARGE, 0, &g, err);
}
