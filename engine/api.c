/* api.c — the small value helpers of sd35.h: option/parameter defaults, names, per-variant
 * defaults (sd3_infer.py CONFIGS), result cleanup.  The engine itself is in engine.c. */
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sd35.h"

void
sd35_engine_options_init (struct sd35_engine_options *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->backend = SD35_BACKEND_AUTO;
  opts->use_t5 = 1;
  opts->offload_text_encoders = -1;  /* on for CUDA */
}

void
sd35_params_init (struct sd35_params *p)
{
  memset (p, 0, sizeof *p);
  p->prompt = "";
  p->negative_prompt = "";
  p->width = 1024;
  p->height = 1024;
  p->steps = 0;
  p->cfg = -1.0;
  p->shift = 0.0;
  p->sampler = SD35_SAMPLER_DEFAULT;
  p->prompt_weights = SD35_PROMPT_WEIGHTS_COMFY;
  p->seed = 0;
  p->slg_scale = 0.0;
  p->slg_start = 0.01;  /* the reference's Medium SLG config */
  p->slg_end = 0.20;
  p->slg_layers[0] = 7;
  p->slg_layers[1] = 8;
  p->slg_layers[2] = 9;
  p->n_slg_layers = 3;
  p->strength = 0.8;    /* the reference's img2img denoise default */
}

const char *
sd35_variant_name (enum sd35_variant v)
{
  switch (v)
    {
    case SD35_VARIANT_LARGE:       return "SD3.5 Large";
    case SD35_VARIANT_LARGE_TURBO: return "SD3.5 Large Turbo";
    case SD35_VARIANT_MEDIUM:      return "SD3.5 Medium";
    case SD35_VARIANT_SD3_MEDIUM:  return "SD3 Medium";
    case SD35_VARIANT_UNKNOWN:     break;
    }
  return "unknown";
}

void
sd35_variant_defaults (enum sd35_variant v, struct sd35_defaults *d)
{
  /* sd3_infer.py CONFIGS / main(); unknown file name: shift 3, 50 steps, cfg 5, dpmpp_2m */
  d->shift = 3.0;
  d->steps = 50;
  d->cfg = 5.0;
  d->sampler = SD35_SAMPLER_DPMPP_2M;
  switch (v)
    {
    case SD35_VARIANT_LARGE:
      d->steps = 40;
      d->cfg = 4.5;
      break;
    case SD35_VARIANT_LARGE_TURBO:
      d->steps = 4;
      d->cfg = 1.0;
      d->sampler = SD35_SAMPLER_EULER;
      break;
    case SD35_VARIANT_SD3_MEDIUM:
      d->shift = 1.0;
      break;
    case SD35_VARIANT_MEDIUM:
    case SD35_VARIANT_UNKNOWN:
      break;
    }
}

const char *
sd35_sampler_name (enum sd35_sampler s)
{
  switch (s)
    {
    case SD35_SAMPLER_EULER:    return "euler";
    case SD35_SAMPLER_DPMPP_2M: return "dpmpp_2m";
    case SD35_SAMPLER_DEFAULT:  break;
    }
  return "default";
}

int
sd35_sampler_from_name (const char *name, enum sd35_sampler *out)
{
  if (strcmp (name, "euler") == 0)
    *out = SD35_SAMPLER_EULER;
  else if (strcmp (name, "dpmpp_2m") == 0 || strcmp (name, "dpmpp-2m") == 0)
    *out = SD35_SAMPLER_DPMPP_2M;
  else if (strcmp (name, "default") == 0)
    *out = SD35_SAMPLER_DEFAULT;
  else
    return -1;
  return 0;
}

const char *
sd35_prompt_weights_name (enum sd35_prompt_weights mode)
{
  return mode == SD35_PROMPT_WEIGHTS_IGNORE ? "ignore" : "comfy";
}

int
sd35_prompt_weights_from_name (const char *name, enum sd35_prompt_weights *out)
{
  if (name == NULL)
    return -1;
  if (strcmp (name, "comfy") == 0)
    *out = SD35_PROMPT_WEIGHTS_COMFY;
  else if (strcmp (name, "ignore") == 0)
    *out = SD35_PROMPT_WEIGHTS_IGNORE;
  else
    return -1;
  return 0;
}

void
sd35_result_clear (struct sd35_result *r)
{
  if (r == NULL)
    return;
  free (r->rgb);
  free (r->image_float);
  free (r->final_latent);
  free (r->noise);
  free (r->sigmas);
  memset (r, 0, sizeof *r);
}

int
sd35_lora_spec_parse (const char *spec, char *path, size_t path_size, double *strength)
{
  const char *colon;
  size_t      len;
  double      s = 1.0;

  if (spec == NULL || path == NULL || path_size == 0 || strength == NULL)
    return -1;
  len = strlen (spec);
  colon = strrchr (spec, ':');
  if (colon != NULL && colon[1] != '\0')
    {
      char *end = NULL;
      errno = 0;
      s = g_ascii_strtod (colon + 1, &end);  /* "0.8" in every locale */
      if (errno == 0 && end != colon + 1 && *end == '\0')
        len = (size_t) (colon - spec);
      else
        s = 1.0;  /* "C:/x.safetensors": the part after ':' is no number */
    }
  if (len == 0 || len >= path_size || !isfinite (s))
    return -1;
  memcpy (path, spec, len);
  path[len] = '\0';
  *strength = s;
  return 0;
}
