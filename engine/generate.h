/* generate.h — the resolved parameters of one sd35_generate call (engine-internal). */
#ifndef SD35_GENERATE_H
#define SD35_GENERATE_H

#include "sd35.h"

struct gen_params
{
  int               width, height;  /* pixels */
  int               h, w;           /* latent: height/8, width/8 */
  int               steps;
  double            cfg, shift;
  enum sd35_sampler sampler;
  uint64_t          seed, vae_seed;
  double            strength;       /* 1 for txt2img */
  double            slg_scale, slg_start, slg_end;
  int               slg_layers[SD35_MAX_SKIP_LAYERS];
  int               n_slg_layers;
  const char       *prompt, *negative;
  enum sd35_prompt_weights prompt_weights;
};

/* Validates p and fills g with p's values or the variant's defaults (SD35_ERR_ARG with a
 * message naming the bad value and the valid range / nearest valid sizes). */
enum sd35_status gen_params_resolve (const struct sd35_params *p, enum sd35_variant variant,
                                     struct gen_params *g, struct sd35_error *err);
/* Skip-layer indices against the model's number of MMDiT blocks. */
enum sd35_status gen_params_check_depth (const struct gen_params *g, int depth,
                                         struct sd35_error *err);

#endif
