/* goldens_cuda_internal.c — the sample_* goldens rebuilt from the internal APIs on a given
 * backend: sd3_condition on the golden ids (cond_from / uncond_from of the manifest), the
 * MMDiT under sampler_guidance + sampler_run from the golden's x_noised and sigmas, then
 * latent_process_out and vae_decode.  sd35_engine_open can only make its own backends, so this
 * is how the bf16 emulation (bf16_emu.c) gets measured over whole sampling runs without a GPU;
 * same checks and tolerances as goldens_cuda_pipeline.c.  (img2img starts from the golden
 * x_noised, so its VAE-encode is not part of this run.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goldens_cuda.h"
#include "mmdit.h"
#include "sampler.h"
#include "testutil.h"
#include "text_encoders.h"
#include "vae.h"

struct predict_ctx
{
  struct mmdit *m;
  float        *context, *y;  /* [cond; uncond] */
  float        *xb, *vb;      /* 2n scratch */
  int           n_ctx, h, w;
  int           skip[SD35_MAX_SKIP_LAYERS], n_skip;
};

/* sampler_model.predict: x0 of [cond; uncond], cond, or cond without the skip layers */
static enum sd35_status
predict (void *user, const float *x, float sigma, enum sampler_batch batch, float *out,
         struct sd35_error *err)
{
  struct predict_ctx *c = user;
  size_t              n = (size_t) 16 * c->h * c->w;
  int                 B = batch == SAMPLER_BATCH_COND_UNCOND ? 2 : 1;
  float               sig[2] = { sigma, sigma };
  enum sd35_status    st;

  for (int b = 0; b < B; b++)
    memcpy (c->xb + b * n, x, n * sizeof *x);
  st = mmdit_forward (c->m, c->xb, sig, c->context, c->y, B, c->h, c->w, c->n_ctx, c->skip,
                      batch == SAMPLER_BATCH_COND_SKIP ? c->n_skip : 0, NULL, c->vb, err);
  if (st != SD35_OK)
    return st;
  for (int b = 0; b < B; b++)
    sampler_flow_x0 (c->xb + b * n, c->vb + b * n, sigma, n, out + b * n);
  return SD35_OK;
}

/* "text_cat.safetensors (context, pooled)" → the conditioning of that golden's ids */
static int
condition_of (struct gc_text_encoders *e, const char *from, struct sd35_cond *c)
{
  static const char *const names[] = { "ids_clip_l", "ids_clip_g", "ids_t5" };
  char               file[128], rel[160];
  struct st_file    *g;
  struct sd35_tokens tok = { 0 };
  struct sd35_error  err = { 0 };
  int                ok = 1;

  snprintf (file, sizeof file, "%s", from);
  file[strcspn (file, " ")] = '\0';
  snprintf (rel, sizeof rel, "golden/%s", file);
  g = test_open_golden (rel);
  for (int k = 0; k < 3 && ok; k++)
    {
      const struct st_tensor *t = st_find (g, names[k]);
      int64_t                *v = t ? st_read_i64 (t, &err) : NULL;
      int32_t                *dst = k == 0 ? tok.clip_l : k == 1 ? tok.clip_g : NULL;
      ok = v != NULL && (k == 2 || t->numel == SD35_CLIP_TOKENS);
      if (ok && k == 2)
        {
          tok.n_t5 = (int) t->numel;
          dst = tok.t5 = malloc (t->numel * sizeof (int32_t));
        }
      for (size_t i = 0; ok && i < t->numel; i++)
        dst[i] = (int32_t) v[i];
      free (v);
    }
  ok = test_check (ok && sd3_condition (e->cl, e->cg, e->t5, &tok, 0, c, &err) == SD35_OK,
                   "condition of %s: %s", file, err.message);
  free (tok.t5);
  st_close (g);
  return ok;
}

static void
run_golden (struct backend *be, struct gc_text_encoders *e, struct mmdit *m, struct vae *v,
            JsonObject *g)
{
  const char             *name = json_object_get_string_member (g, "name");
  JsonObject             *slg = json_object_get_object_member (g, "skip_layer_config");
  char                    rel[256], what[192];
  struct st_file         *f;
  const struct st_tensor *xt, *u8t;
  struct sd35_cond        c1 = { 0 }, c0 = { 0 };
  struct predict_ctx      pc;
  struct sampler_guidance gd = { 0 };
  struct sampler_model    model = { predict, &pc };
  struct sampler_denoiser den = { sampler_guidance_denoise, &gd };
  struct sd35_error       err = { 0 };
  enum sd35_sampler       sampler;
  double                  slg_scale = 0, cfg;
  int                     steps;
  size_t                  n, n_sig, n_img, n_ctx;
  float                  *x, *sigmas, *lat, *img_ref, *img = NULL;
  uint8_t                *u8 = NULL;

  snprintf (rel, sizeof rel, "golden/%s", json_object_get_string_member (g, "file"));
  f = test_open_golden (rel);
  xt = st_find (f, "x_noised");
  u8t = st_find (f, "image_uint8");
  memset (&pc, 0, sizeof pc);
  if (!test_check (xt && xt->ndim == 4 && u8t
                   && sd35_sampler_from_name (json_object_get_string_member (g, "sampler"),
                                              &sampler) == 0,
                   "%s: golden has x_noised, image_uint8 and a known sampler", name))
    {
      st_close (f);
      return;
    }
  x = test_golden_f32 (f, "x_noised", &n);
  sigmas = test_golden_f32 (f, "sigmas", &n_sig);
  lat = test_golden_f32 (f, "final_latent", NULL);
  img_ref = test_golden_f32 (f, "image_float", &n_img);
  printf ("== %s (internal APIs on %s)\n", name, be->name);
  if (!condition_of (e, json_object_get_string_member (g, "cond_from"), &c1)
      || !condition_of (e, json_object_get_string_member (g, "uncond_from"), &c0)
      || !test_check (c1.n_ctx == c0.n_ctx && c1.pooled_dim == c0.pooled_dim,
                      "%s: cond and uncond have the same shapes", name))
    goto out;
  n_ctx = (size_t) c1.n_ctx * c1.ctx_dim;
  pc.m = m;
  pc.h = (int) xt->shape[2];
  pc.w = (int) xt->shape[3];
  pc.n_ctx = c1.n_ctx;
  pc.context = malloc (2 * n_ctx * sizeof (float));
  pc.y = malloc (2 * (size_t) c1.pooled_dim * sizeof (float));
  pc.xb = malloc (2 * n * sizeof (float));
  pc.vb = malloc (2 * n * sizeof (float));
  memcpy (pc.context, c1.context, n_ctx * sizeof (float));
  memcpy (pc.context + n_ctx, c0.context, n_ctx * sizeof (float));
  memcpy (pc.y, c1.pooled, c1.pooled_dim * sizeof (float));
  memcpy (pc.y + c1.pooled_dim, c0.pooled, c1.pooled_dim * sizeof (float));
  if (slg && json_object_has_member (slg, "scale"))
    {
      JsonArray *layers = json_object_get_array_member (slg, "layers");
      slg_scale = json_object_get_double_member (slg, "scale");
      pc.n_skip = (int) json_array_get_length (layers);
      for (int i = 0; i < pc.n_skip && i < SD35_MAX_SKIP_LAYERS; i++)
        pc.skip[i] = (int) json_array_get_int_element (layers, i);
    }
  cfg = json_object_get_double_member (g, "cfg_scale");
  steps = (int) json_object_get_int_member (g, "steps");
  if (!test_check (sampler_guidance_init (&gd, &model, n, cfg, slg_scale, 0.01, 0.2, steps,
                                          &err) == SD35_OK
                   && sampler_run (sampler, &den, x, n, sigmas, (int) n_sig, NULL, NULL,
                                   &err) == SD35_OK,
                   "%s: sampling on %s: %s", name, be->name, err.message))
    goto out;
  latent_process_out (x, n);
  snprintf (what, sizeof what, "%s final_latent", name);
  gc_check_latent (what, x, lat, n);
  img = calloc (n_img, sizeof *img);
  u8 = calloc (n_img, 1);
  if (test_check (u8t->numel == n_img && vae_decode (v, x, pc.h, pc.w, img, &err) == SD35_OK,
                  "%s: vae_decode: %s", name, err.message))
    {
      snprintf (what, sizeof what, "%s image_float", name);
      gc_info_close (what, img, img_ref, n_img);
      vae_image_to_u8 (img, 8 * pc.h, 8 * pc.w, u8);
      snprintf (what, sizeof what, "%s image_uint8", name);
      gc_check_image_u8 (what, u8, u8t->data, n_img);
    }
out:
  sampler_guidance_clear (&gd);
  sd35_cond_clear (&c1);
  sd35_cond_clear (&c0);
  free (pc.context); free (pc.y); free (pc.xb); free (pc.vb);
  free (x); free (sigmas); free (lat); free (img_ref); free (img); free (u8);
  st_close (f);
}

void
gc_pipeline_internal (JsonArray *goldens)
{
  struct backend         *be = gc_backend_new ("internal pipeline");
  struct gc_text_encoders e = { 0 };
  struct st_file         *ml = test_open_golden ("golden/models/sd3.5_tiny_large.safetensors");
  struct st_file         *mm = test_open_golden ("golden/models/sd3.5_tiny_medium.safetensors");
  struct mmdit           *m_large = NULL, *m_medium = NULL;
  struct vae             *v = NULL;
  struct sd35_error       err = { 0 };
  int                     n_run = 0;

  printf ("--- sampling goldens through the internal APIs ---\n");
  if (be != NULL && gc_text_encoders_load (be, &e)
      && test_check (mmdit_load (be, ml, "model.diffusion_model.", &m_large, &err) == SD35_OK
                     && mmdit_load (be, mm, "model.diffusion_model.", &m_medium, &err) == SD35_OK
                     && vae_load (be, ml, "first_stage_model.", 0, &v, &err) == SD35_OK,
                     "load the MMDiTs and the VAE on %s: %s", be->name, err.message))
    {
      for (guint i = 0; i < json_array_get_length (goldens); i++)
        {
          JsonObject *g = json_array_get_object_element (goldens, i);
          const char *kind = json_object_get_string_member_with_default (g, "kind", "");
          const char *model = json_object_get_string_member_with_default (g, "model", "");
          if (strcmp (kind, "sampling") != 0)
            continue;
          run_golden (be, &e, strcmp (model, "tiny_medium") == 0 ? m_medium : m_large, v, g);
          n_run++;
          if (backend_failed (be))
            {
              test_check (0, "the %s backend reported: %s", be->name, be->err.message);
              break;
            }
        }
      test_check (n_run == 7, "%d sampling goldens run (expected 7)", n_run);
    }
  gc_text_encoders_free (&e);
  mmdit_free (m_large);
  mmdit_free (m_medium);
  vae_free (v);
  if (be)
    backend_free (be);
  st_close (ml);
  st_close (mm);
}
