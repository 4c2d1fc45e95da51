/* generate.c — sd35_generate: one image from a prompt (txt2img) or from an init image
 * (img2img, optionally masked), following sd3_infer.py SD3Inferencer.gen_image/do_sampling:
 *
 *   cond = get_cond(prompt), uncond = get_cond(negative)          (engine_condition)
 *   noise = randn(manual_seed(seed), [1,16,H/8,W/8]) or the caller's
 *   latent = 0 (txt2img) | process_in(mean + std·randn(manual_seed(vae_seed)))  (img2img)
 *   sigmas = get_sigmas(steps, shift)[int(steps·(1−strength)):]
 *   x = sigmas[0]·noise + (1 − sigmas[0])·latent                   (noise_scaling)
 *   x = sampler(denoiser, x, sigmas)                               (Euler / DPM++ 2M)
 *   image = VAE.decode(process_out(x)) → uint8(255·clamp((img+1)/2))
 *
 * The guidance rule, the samplers and the mask blend are sampler.c's; denoiser.c runs the
 * MMDiT for them (cond and uncond batched) and turns steps into the public callbacks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "generate.h"
#include "denoiser.h"
#include "rng.h"
#include "sampler.h"

static void
stage (const struct sd35_callbacks *cb, const char *what)
{
  sd35_log ("%s", what);
  if (cb && cb->on_stage)
    cb->on_stage (cb->user, what);
}

static int
cancelled (const struct sd35_callbacks *cb)
{
  return cb && cb->is_cancelled && cb->is_cancelled (cb->user);
}

/* torch.manual_seed(seed); torch.randn(n) (sd35-facts.md §4) */
static enum sd35_status
seeded_randn (uint64_t seed, float *out, size_t n, struct sd35_error *err)
{
  struct torch_rng *g = torch_rng_new (seed);

  if (g == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory creating the noise generator");
  torch_randn (g, out, n);
  torch_rng_free (g);
  return SD35_OK;
}

/* img2img: _image_to_latent = process_in(VAE.encode(2·img/255 − 1)), sampled with the
 * vae_seed noise (mean + std·randn). */
static enum sd35_status
encode_init (struct sd35_engine *e, const struct gen_params *g, const uint8_t *rgb,
             float *latent, struct sd35_error *err)
{
  size_t n_img = (size_t) 3 * g->height * g->width, n_lat = (size_t) 16 * g->h * g->w;
  float *img = NULL, *std = NULL, *eps = NULL;

  if (!e->has_vae_encoder)
    return sd35_set_error (err, SD35_ERR_MISSING, "img2img needs the VAE encoder, but %s has "
                           "no first_stage_model.encoder.* tensors", e->files.mmdit);
  img = sd35_malloc (n_img * sizeof *img, "the init image", err);
  std = sd35_malloc (n_lat * sizeof *std, "the init latent", err);
  eps = sd35_malloc (n_lat * sizeof *eps, "the init latent noise", err);
  if (img && std && eps)
    {
      vae_u8_to_image (rgb, g->height, g->width, img);
      if (vae_encode (e->vae, img, g->height, g->width, latent, std, err) == SD35_OK &&
          seeded_randn (g->vae_seed, eps, n_lat, err) == SD35_OK)
        {
          for (size_t i = 0; i < n_lat; i++)
            latent[i] = latent[i] + std[i] * eps[i];
          latent_process_in (latent, n_lat);
        }
    }
  free (img);
  free (std);
  free (eps);
  return err->status;
}

/* A callee's failure recorded in err even when it returned a status without a message
 * (so `done:` below always sees it). */
static int
failed (enum sd35_status st, struct sd35_error *err)
{
  if (st == SD35_OK)
    return 0;
  if (err->status == SD35_OK)
    sd35_set_error (err, st, "%s", st == SD35_CANCELLED ? "cancelled" : sd35_status_name (st));
  return 1;
}

static int
all_finite (const float *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isfinite (v[i]))
      return 0;
  return 1;
}

static enum sd35_status
check_inputs (const struct sd35_params *p, const struct gen_params *g, struct sd35_error *err)
{
  size_t n = (size_t) 16 * g->h * g->w;

  if (p->noise != NULL && !all_finite (p->noise, n))
    return sd35_set_error (err, SD35_ERR_ARG, "the given noise contains NaN or Inf");
  return SD35_OK;
}

enum sd35_status
sd35_generate (sd35_engine *e, const struct sd35_params *p, const struct sd35_callbacks *cb,
               struct sd35_result *out, struct sd35_error *err)
{
  struct gen_params        g;
  struct engine_model      em;
  struct sampler_model     model;
  struct sampler_guidance  gd;
  struct sampler_denoiser  denoiser;
  struct sampler_callbacks scb;
  struct sampler_inpaint   inpaint;
  const struct sd35_cond  *cond = NULL, *uncond = NULL;
  size_t                   n_lat, n_img;
  float                   *latent = NULL, *x = NULL, *lat_mask = NULL;
  struct sd35_error        local_err;
  char                     where[96] = "";

  if (err == NULL)
    err = &local_err;
  sd35_error_clear (err);
  if (out == NULL || e == NULL)
    return sd35_set_error (err, SD35_ERR_ARG, "sd35_generate: no engine or no result given");
  memset (out, 0, sizeof *out);
  memset (&em, 0, sizeof em);
  memset (&gd, 0, sizeof gd);
  memset (&inpaint, 0, sizeof inpaint);
  if (gen_params_resolve (p, e->info.variant, &g, err) != SD35_OK ||
      gen_params_check_depth (&g, e->info.depth, err) != SD35_OK ||
      check_inputs (p, &g, err) != SD35_OK)
    return err->status;
  n_lat = (size_t) 16 * g.h * g.w;
  n_img = (size_t) 3 * g.height * g.width;

  /* --- conditioning ------------------------------------------------------------------ */
  stage (cb, "encoding prompt");
  if (failed (engine_condition (e, g.prompt, g.prompt_weights, &cond, err), err))
    {
      engine_oom_hint (err, "while encoding the prompt");
      sd35_error_prefix (err, "encoding the prompt");
      return err->status;
    }
  if (g.cfg > 1.0 && failed (engine_condition (e, g.negative, g.prompt_weights, &uncond, err), err))
    {
      engine_oom_hint (err, "while encoding the negative prompt");
      sd35_error_prefix (err, "encoding the negative prompt");
      return err->status;
    }
  /* both conditionings are cached now: CLIP/T5 may leave the backend for the MMDiT */
  engine_text_encoders_offload (e);
  if (cancelled (cb))
    return sd35_set_error (err, SD35_CANCELLED, "cancelled");

  /* --- schedule, noise, start latent ------------------------------------------------------ */
  if (failed (sampler_schedule (g.steps, g.shift, p->init_rgb ? g.strength : 1.0,
                                &out->sigmas, &out->n_sigmas, err), err))
    goto done;
  out->noise = sd35_malloc (n_lat * sizeof *out->noise, "the noise", err);
  latent = sd35_calloc (n_lat, sizeof *latent, "the start latent", err);
  x = sd35_malloc (n_lat * sizeof *x, "the sampler state", err);
  if (err->status != SD35_OK)
    goto done;
  if (p->noise != NULL)
    memcpy (out->noise, p->noise, n_lat * sizeof *out->noise);
  else if (failed (seeded_randn (g.seed, out->noise, n_lat, err), err))
    goto done;

  if (p->init_rgb != NULL)
    {
      stage (cb, "encoding image");
      snprintf (where, sizeof where, "while encoding the init image at %d×%d", g.width,
                g.height);
      if (failed (encode_init (e, &g, p->init_rgb, latent, err), err))
        goto done;
      if (p->mask != NULL)
        {
          lat_mask = sd35_malloc ((size_t) g.h * g.w * sizeof *lat_mask, "the mask", err);
          if (lat_mask == NULL)
            goto done;
          sampler_mask_to_latent (p->mask, g.height, g.width, lat_mask);
          inpaint.mask = lat_mask;
          inpaint.init_latent = latent;
          inpaint.noise = out->noise;
          inpaint.h = g.h;
          inpaint.w = g.w;
        }
    }
  /* noise_scaling; for txt2img sigmas[0] = 1 exactly, so x = noise */
  sampler_noise_scaling (out->sigmas[0], out->noise, latent, n_lat, x);

  /* --- sampling ---------------------------------------------------------------------- */
  stage (cb, "sampling");
  snprintf (where, sizeof where, "while running the MMDiT at %d×%d", g.width, g.height);
  if (failed (engine_model_init (&em, e, &g, cond, uncond, out->n_sigmas - 1, cb, err), err))
    goto done;
  model.predict = engine_model_predict;
  model.user = &em;
  if (failed (sampler_guidance_init (&gd, &model, n_lat, g.cfg, g.slg_scale, g.slg_start,
                                     g.slg_end, g.steps, err), err))
    goto done;
  denoiser.denoise = sampler_guidance_denoise;
  denoiser.user = &gd;
  scb.on_step = engine_model_on_step;
  scb.is_cancelled = engine_model_is_cancelled;
  scb.user = &em;
  if (failed (sampler_run (g.sampler, &denoiser, x, n_lat, out->sigmas, out->n_sigmas,
                           lat_mask ? &inpaint : NULL, &scb, err), err))
    goto done;

  /* --- decode ------------------------------------------------------------------------ */
  if (!all_finite (x, n_lat))
    {
      sd35_set_error (err, SD35_ERR_NAN, "the sampled latent contains NaN or Inf values: the "
                      "model weights are probably damaged (%s) or a computation overflowed; "
                      "check the model file, or try the CPU backend", e->files.mmdit);
      goto done;
    }
  latent_process_out (x, n_lat);
  if (cancelled (cb))
    {
      sd35_set_error (err, SD35_CANCELLED, "cancelled");
      goto done;
    }
  stage (cb, "decoding");
  snprintf (where, sizeof where, "while decoding the image at %d×%d (VAE)", g.width, g.height);
  out->image_float = sd35_malloc (n_img * sizeof *out->image_float, "the image", err);
  out->rgb = sd35_malloc (n_img, "the image", err);
  if (err->status != SD35_OK ||
      failed (vae_decode_auto (e->vae, x, g.h, g.w, e->vae_tiling, out->image_float, err),
              err))
    goto done;
  if (!all_finite (out->image_float, n_img))
    {
      sd35_set_error (err, SD35_ERR_NAN, "the decoded image contains NaN or Inf values: the VAE "
                      "weights are probably damaged (%s)", e->files.mmdit);
      goto done;
    }
  vae_image_to_u8 (out->image_float, g.height, g.width, out->rgb);
  out->final_latent = x;
  x = NULL;
  out->width = g.width;
  out->height = g.height;
  out->seed = g.seed;

done:
  if (where[0] != '\0')
    engine_oom_hint (err, "%s", where);
  sampler_guidance_clear (&gd);
  engine_model_clear (&em);
  free (latent);
  free (x);
  free (lat_mask);
  if (err->status != SD35_OK)
    sd35_result_clear (out);
  return err->status;
}
