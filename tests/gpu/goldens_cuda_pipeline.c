/* goldens_cuda_pipeline.c — every sample_* golden (sd3_infer.py do_sampling → vae_decode, fp32
 * on the CPU) through the public API on the CUDA backend: sd35_engine_open with
 * SD35_BACKEND_CUDA on a temp folder in the official release layout (symlinks to golden/models
 * and ../shared/tokenizers, as tests/parity/test_pipeline.c makes it), the manifest's prompts
 * and settings.  Checked: the noise bit-identical (it is always made on the CPU), the sigmas,
 * the final latent within GC_PIPE_TOL·max|ref|, image_uint8 within ±GC_PIPE_U8_DIFF for
 * ≥ GC_U8_FRAC of the values (goldens_cuda.h says why these are looser than one model call);
 * per-step x/denoised and image_float are printed as info. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "goldens_cuda.h"
#include "safetensors.h"
#include "sd35.h"
#include "testutil.h"

/* ---- the official layout ------------------------------------------------------------------ */

static void
remove_tree (const char *dir)
{
  char cmd[600];

  if (strncmp (dir, "/tmp/sd35-", 10) != 0 || strchr (dir, '\'') != NULL)
    return;
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0)
    printf ("note: could not remove %s\n", dir);
}

/* ---- per-step capture ------------------------------------------------------------------- */

struct capture
{
  float *x, *denoised;  /* [max_steps, n] */
  size_t n;
  int    max_steps, n_calls;
};

static void
on_step_tensors (void *user, int step, int n_steps, float sigma, const float *x,
                 const float *denoised, int h, int w)
{
  struct capture *c = user;

  if (step >= 0 && step < c->max_steps && (size_t) 16 * h * w == c->n)
    {
      memcpy (c->x + (size_t) step * c->n, x, c->n * sizeof *x);
      memcpy (c->denoised + (size_t) step * c->n, denoised, c->n * sizeof *x);
    }
  c->n_calls++;
}

/* ---- one golden ------------------------------------------------------------------------------ */

static double
member_double (JsonObject *o, const char *name, double def)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : def;
}

static void
set_params (JsonObject *g, struct st_file *f, const float *noise, struct sd35_params *p,
            uint8_t **init)
{
  JsonObject *slg = json_object_get_object_member (g, "skip_layer_config");

  sd35_params_init (p);
  p->prompt = json_object_get_string_member (g, "prompt");
  p->negative_prompt = json_object_get_string_member (g, "negative_prompt");
  p->prompt_weights = SD35_PROMPT_WEIGHTS_IGNORE;  /* the reference ignores weights */
  p->width = (int) json_object_get_int_member (g, "width");
  p->height = (int) json_object_get_int_member (g, "height");
  p->steps = (int) json_object_get_int_member (g, "steps");
  p->cfg = member_double (g, "cfg_scale", -1);
  p->shift = member_double (g, "shift", 0);
  if (sd35_sampler_from_name (json_object_get_string_member (g, "sampler"), &p->sampler) != 0)
    test_check (0, "unknown sampler %s", json_object_get_string_member (g, "sampler"));
  if (strcmp (json_object_get_string_member (g, "noise_source"), "saved") == 0)
    p->noise = noise;
  else
    p->seed = (uint64_t) json_object_get_int_member (g, "seed");
  if (slg && json_object_has_member (slg, "scale"))
    {
      JsonArray *layers = json_object_get_array_member (slg, "layers");
      p->slg_scale = member_double (slg, "scale", 0);
      p->slg_start = member_double (slg, "start", 0.01);
      p->slg_end = member_double (slg, "end", 0.2);
      p->n_slg_layers = (int) json_array_get_length (layers);
      if (p->n_slg_layers > SD35_MAX_SKIP_LAYERS)
        p->n_slg_layers = SD35_MAX_SKIP_LAYERS;
      for (int i = 0; i < p->n_slg_layers; i++)
        p->slg_layers[i] = (int) json_array_get_int_element (layers, i);
    }
  if (json_object_has_member (g, "init_image_png"))
    {
      const struct st_tensor *t = st_find (f, "init_image_uint8");
      if (test_check (t != NULL && t->dtype == SD35_U8, "golden has init_image_uint8 (U8)"))
        {
          *init = malloc (t->nbytes);
          memcpy (*init, t->data, t->nbytes);
          p->init_rgb = *init;
        }
      p->strength = member_double (g, "denoise", 1.0);
      p->vae_seed = (uint64_t) json_object_get_int_member (g, "vae_seed");
      p->has_vae_seed = 1;
    }
}

static void
run_golden (sd35_engine *engine, JsonObject *g)
{
  const char             *name = json_object_get_string_member (g, "name");
  char                    rel[256], what[192];
  struct st_file         *f;
  struct sd35_params      p;
  struct sd35_callbacks   cb;
  struct sd35_result      r;
  struct sd35_error       err = { 0 };
  struct capture          cap;
  size_t                  n_noise, n_sig, n_x, n_lat, n_img;
  float                  *noise, *sigmas, *step_x, *step_d, *lat, *img;
  uint8_t                *init = NULL;
  const struct st_tensor *u8;

  snprintf (rel, sizeof rel, "golden/%s", json_object_get_string_member (g, "file"));
  f = test_open_golden (rel);
  noise = test_golden_f32 (f, "noise", &n_noise);
  sigmas = test_golden_f32 (f, "sigmas", &n_sig);
  step_x = test_golden_f32 (f, "step_x", &n_x);
  step_d = test_golden_f32 (f, "step_denoised", NULL);
  lat = test_golden_f32 (f, "final_latent", &n_lat);
  img = test_golden_f32 (f, "image_float", &n_img);
  u8 = st_find (f, "image_uint8");
  set_params (g, f, noise, &p, &init);

  memset (&cap, 0, sizeof cap);
  cap.n = n_lat;
  cap.max_steps = (int) (n_x / n_lat);
  cap.x = calloc (n_x, sizeof (float));
  cap.denoised = calloc (n_x, sizeof (float));
  memset (&cb, 0, sizeof cb);
  cb.on_step_tensors = on_step_tensors;
  cb.user = &cap;
  memset (&r, 0, sizeof r);

  printf ("== %s (%d steps, %s, cfg %g, %d×%d)\n", name, p.steps,
          json_object_get_string_member (g, "sampler"), p.cfg, p.width, p.height);
  if (!test_check (sd35_generate (engine, &p, &cb, &r, &err) == SD35_OK,
                   "%s: sd35_generate: %s", name, err.message))
    goto out;
  if (!test_check (r.rgb && r.final_latent && r.noise && r.image_float
                   && r.width == p.width && r.height == p.height,
                   "%s: result %d×%d with all buffers", name, r.width, r.height))
    goto out;
  snprintf (what, sizeof what, "%s noise (identical)", name);
  test_close (what, r.noise, noise, n_noise, 0.0);
  snprintf (what, sizeof what, "%s sigmas", name);
  if (test_check (r.n_sigmas == (int) n_sig, "%s: %d sigmas (golden %zu)", name, r.n_sigmas,
                  n_sig))
    test_close (what, r.sigmas, sigmas, n_sig, 1e-6);
  test_check (cap.n_calls == cap.max_steps, "%s: %d step callbacks (expected %d)", name,
              cap.n_calls, cap.max_steps);
  for (int s = 0; s < cap.max_steps; s++)
    {
      snprintf (what, sizeof what, "%s step %d x", name, s);
      gc_info_close (what, cap.x + (size_t) s * n_lat, step_x + (size_t) s * n_lat, n_lat);
      snprintf (what, sizeof what, "%s step %d denoised", name, s);
      gc_info_close (what, cap.denoised + (size_t) s * n_lat, step_d + (size_t) s * n_lat,
                     n_lat);
    }
  snprintf (what, sizeof what, "%s final_latent", name);
  gc_check_latent (what, r.final_latent, lat, n_lat);
  snprintf (what, sizeof what, "%s image_float", name);
  gc_info_close (what, r.image_float, img, n_img);
  snprintf (what, sizeof what, "%s image_uint8", name);
  if (test_check (u8 != NULL && u8->nbytes == (size_t) 3 * r.width * r.height,
                  "%s: golden image_uint8 is %d×%d×3", name, r.width, r.height))
    gc_check_image_u8 (what, r.rgb, u8->data, u8->nbytes);

out:
  sd35_result_clear (&r);
  free (cap.x); free (cap.denoised); free (init);
  free (noise); free (sigmas); free (step_x); free (step_d); free (lat); free (img);
  st_close (f);
}

/* ---- all sampling goldens --------------------------------------------------------------- */

static sd35_engine *
open_engine (const char *dir, int turbo)
{
  struct sd35_engine_options o;
  struct sd35_error          err = { 0 };
  sd35_engine               *e = NULL;

  sd35_engine_options_init (&o);
  o.backend = gc_engine_backend ();
  o.model_path = dir;
  o.force_turbo = turbo;
  if (!test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open %s%s on backend %d: %s",
                   dir, turbo ? " as turbo" : "", (int) o.backend, err.message))
    return NULL;
  printf ("     %s: %s on %s\n", dir, sd35_engine_info (e)->variant_name,
          sd35_engine_info (e)->backend_name);
  return e;
}

void
gc_pipeline (const char *shared, JsonArray *goldens)
{
  char         root[] = "/tmp/sd35-test-goldens-cuda-XXXXXX", large[256], medium[256];
  sd35_engine *eng_large = NULL, *eng_turbo = NULL, *eng_medium = NULL;
  int          n_run = 0;

  printf ("--- pipeline (public API) ---\n");
  if (!test_check (mkdtemp (root) != NULL, "mkdtemp %s", root))
    return;
  snprintf (large, sizeof large, "%s/large", root);
  snprintf (medium, sizeof medium, "%s/medium", root);
  if (test_tiny_model_layout (shared, large, "golden/models/sd3.5_tiny_large.safetensors",
                              "sd3.5_large.safetensors")
      && test_tiny_model_layout (shared, medium, "golden/models/sd3.5_tiny_medium.safetensors",
                                 "sd3.5_medium.safetensors")
      && (eng_large = open_engine (large, 0)) != NULL
      && (eng_turbo = open_engine (large, 1)) != NULL
      && (eng_medium = open_engine (medium, 0)) != NULL)
    {
      const char *want = gc_mode == GC_MODE_CUDA ? "cuda" : "cpu";
      const char *got = sd35_engine_info (eng_large)->backend_name;
      test_check (got != NULL && strncmp (got, want, strlen (want)) == 0,
                  "engine backend is \"%s\" (expected %s)", got ? got : "(null)", want);
      for (guint i = 0; i < json_array_get_length (goldens); i++)
        {
          JsonObject *g = json_array_get_object_element (goldens, i);
          const char *kind = json_object_get_string_member_with_default (g, "kind", "");
          const char *model = json_object_get_string_member_with_default (g, "model", "");
          const char *name = json_object_get_string_member_with_default (g, "name", "");
          if (strcmp (kind, "sampling") != 0)
            continue;
          run_golden (strcmp (model, "tiny_medium") == 0 ? eng_medium
                      : strstr (name, "turbo") ? eng_turbo : eng_large, g);
          n_run++;
        }
      test_check (n_run == 7, "%d sampling goldens run (expected 7)", n_run);
    }
  sd35_engine_free (eng_large);
  sd35_engine_free (eng_turbo);
  sd35_engine_free (eng_medium);
  remove_tree (root);
}
