/* test_pipeline.c — every sample_* golden (the official sd3_infer.py do_sampling → vae_decode,
 * fp32 on CPU) reproduced through the PUBLIC API: sd35_engine_open on a folder in the official
 * release layout (symlinks to golden/models and ../shared/tokenizers, made in a temp dir),
 * prompts from manifest.json (tokenizer + CLIP/T5 on our side), the saved noise through
 * params.noise, per-step x and denoised through callbacks.on_step_tensors.  Then one txt2img
 * and one img2img golden through the `sd35` binary ($SD35_CLI) with --tensors-out.
 *
 * Tolerances: x/denoised per step and the final latent ≤ 1e-4·max|ref| (1e-3 for the 12-step
 * SLG run), image_float the same, image_uint8 within ±1, sigmas ≤ 1e-6. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "sd35.h"
#include "testutil.h"

static char *tmp_root;

/* ---- the official layout from the goldens ----------------------------------------------- */

/* ---- per-step capture ------------------------------------------------------------------ */

struct capture
{
  float *x, *denoised;  /* [max_steps, n] */
  int    n_calls, n_preview, max_steps;
  size_t n;
  int    preview_ok;
  int    pw, ph;
};

static void
on_step_tensors (void *user, int step, int n_steps, float sigma, const float *x,
                 const float *denoised, int h, int w)
{
  struct capture *c = user;
  if (step < c->max_steps && (size_t) 16 * h * w == c->n)
    {
      memcpy (c->x + (size_t) step * c->n, x, c->n * sizeof *x);
      memcpy (c->denoised + (size_t) step * c->n, denoised, c->n * sizeof *x);
    }
  c->n_calls++;
}

static void
on_step (void *user, int step, int n_steps, float sigma, const uint8_t *rgb, int w, int h)
{
  struct capture *c = user;
  c->n_preview++;
  if (rgb == NULL || w != c->pw || h != c->ph)
    c->preview_ok = 0;
}

/* ---- one golden through the API ----------------------------------------------------------- */

static double
member_double (JsonObject *o, const char *name, double def)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : def;
}

static void
run_golden (sd35_engine *engine, JsonObject *g, double tol)
{
  const char        *name = json_object_get_string_member (g, "name");
  char               rel[256], what[256];
  struct st_file    *f;
  struct sd35_params p;
  struct sd35_callbacks cb;
  struct sd35_result r;
  struct sd35_error  err = { 0 };
  struct capture     cap;
  size_t             n_noise, n_sig, n_x, n_d, n_lat, n_img;
  float             *noise, *sigmas, *step_x, *step_d, *lat, *img;
  uint8_t           *init = NULL;
  JsonObject        *slg = json_object_get_object_member (g, "skip_layer_config");
  const struct st_tensor *u8;
  int                steps;

  snprintf (rel, sizeof rel, "golden/%s", json_object_get_string_member (g, "file"));
  f = test_open_golden (rel);
  noise = test_golden_f32 (f, "noise", &n_noise);
  sigmas = test_golden_f32 (f, "sigmas", &n_sig);
  step_x = test_golden_f32 (f, "step_x", &n_x);
  step_d = test_golden_f32 (f, "step_denoised", &n_d);
  lat = test_golden_f32 (f, "final_latent", &n_lat);
  img = test_golden_f32 (f, "image_float", &n_img);
  u8 = st_find (f, "image_uint8");

  sd35_params_init (&p);
  p.prompt = json_object_get_string_member (g, "prompt");
  p.negative_prompt = json_object_get_string_member (g, "negative_prompt");
  p.prompt_weights = SD35_PROMPT_WEIGHTS_IGNORE;  /* the reference ignores weights */
  p.width = (int) json_object_get_int_member (g, "width");
  p.height = (int) json_object_get_int_member (g, "height");
  steps = p.steps = (int) json_object_get_int_member (g, "steps");
  p.cfg = member_double (g, "cfg_scale", -1);
  p.shift = member_double (g, "shift", 0);
  if (sd35_sampler_from_name (json_object_get_string_member (g, "sampler"), &p.sampler) != 0)
    test_check (0, "%s: unknown sampler", name);
  if (strcmp (json_object_get_string_member (g, "noise_source"), "saved") == 0)
    p.noise = noise;
  else
    p.seed = (uint64_t) json_object_get_int_member (g, "seed");
  if (slg && json_object_has_member (slg, "scale"))
    {
      JsonArray *layers = json_object_get_array_member (slg, "layers");
      p.slg_scale = member_double (slg, "scale", 0);
      p.slg_start = member_double (slg, "start", 0.01);
      p.slg_end = member_double (slg, "end", 0.2);
      p.n_slg_layers = (int) json_array_get_length (layers);
      for (int i = 0; i < p.n_slg_layers; i++)
        p.slg_layers[i] = (int) json_array_get_int_element (layers, i);
    }
  if (json_object_has_member (g, "init_image_png"))
    {
      const struct st_tensor *t = st_find (f, "init_image_uint8");
      test_check (t != NULL, "%s: init_image_uint8 present", name);
      init = malloc (t->nbytes);
      memcpy (init, t->data, t->nbytes);
      p.init_rgb = init;
      p.strength = member_double (g, "denoise", 1.0);
      p.vae_seed = (uint64_t) json_object_get_int_member (g, "vae_seed");
      p.has_vae_seed = 1;
    }

  memset (&cap, 0, sizeof cap);
  cap.n = n_lat;
  cap.max_steps = (int) (n_x / n_lat);
  cap.x = calloc (n_x, sizeof (float));
  cap.denoised = calloc (n_x, sizeof (float));
  cap.preview_ok = 1;
  cap.pw = p.width / 8;
  cap.ph = p.height / 8;
  memset (&cb, 0, sizeof cb);
  cb.on_step = on_step;
  cb.on_step_tensors = on_step_tensors;
  cb.user = &cap;

  printf ("== %s (%d steps, %s, cfg %g, %d×%d)\n", name, steps,
          json_object_get_string_member (g, "sampler"), p.cfg, p.width, p.height);
  if (sd35_generate (engine, &p, &cb, &r, &err) != SD35_OK)
    {
      test_check (0, "%s: sd35_generate: %s", name, err.message);
      goto out;
    }
  test_check (r.n_sigmas == (int) n_sig, "%s: %d sigmas (expected %zu)", name, r.n_sigmas,
              n_sig);
  snprintf (what, sizeof what, "%s sigmas", name);
  if (r.n_sigmas == (int) n_sig)
    test_close (what, r.sigmas, sigmas, n_sig, 1e-6);
  snprintf (what, sizeof what, "%s noise", name);
  test_close (what, r.noise, noise, n_noise, 1e-7);
  test_check (cap.n_calls == cap.max_steps && cap.n_preview == cap.max_steps && cap.preview_ok,
              "%s: %d step callbacks, %d previews (expected %d), preview size ok %d", name,
              cap.n_calls, cap.n_preview, cap.max_steps, cap.preview_ok);
  for (int s = 0; s < cap.max_steps; s++)
    {
      snprintf (what, sizeof what, "%s step %d x", name, s);
      test_close (what, cap.x + (size_t) s * n_lat, step_x + (size_t) s * n_lat, n_lat, tol);
      snprintf (what, sizeof what, "%s step %d denoised", name, s);
      test_close (what, cap.denoised + (size_t) s * n_lat, step_d + (size_t) s * n_lat, n_lat,
                  tol);
    }
  snprintf (what, sizeof what, "%s final_latent", name);
  test_close (what, r.final_latent, lat, n_lat, tol);
  snprintf (what, sizeof what, "%s image_float", name);
  test_close (what, r.image_float, img, n_img, tol);
  snprintf (what, sizeof what, "%s image_uint8", name);
  test_within_u8 (what, r.rgb, u8->data, u8->nbytes, 1);
  sd35_result_clear (&r);

out:
  free (cap.x);
  free (cap.denoised);
  free (init);
  free (noise);
  free (sigmas);
  free (step_x);
  free (step_d);
  free (lat);
  free (img);
  st_close (f);
}

/* ---- through the sd35 binary ------------------------------------------------------------- */

static void
compare_cli_output (const char *name, const char *tensors, const char *golden_rel, double tol)
{
  struct st_file *got = test_open_golden (golden_rel), *mine = NULL;
  struct sd35_error err = { 0 };
  size_t          n_ref, n_got;
  char            what[256];

  if (st_open (tensors, &mine, &err) != SD35_OK)
    {
      test_check (0, "%s: cannot open the CLI's --tensors-out %s: %s", name, tensors,
                  err.message);
      st_close (got);
      return;
    }
  {
    float *ref = test_golden_f32 (got, "final_latent", &n_ref);
    float *v = test_golden_f32 (mine, "final_latent", &n_got);
    snprintf (what, sizeof what, "CLI %s final_latent", name);
    if (test_check (n_ref == n_got, "%s: %zu values (expected %zu)", what, n_got, n_ref))
      test_close (what, v, ref, n_ref, tol);
    free (ref);
    free (v);
  }
  {
    const struct st_tensor *a = st_find (mine, "image_uint8"), *b = st_find (got, "image_uint8");
    snprintf (what, sizeof what, "CLI %s image_uint8", name);
    if (test_check (a && b && a->nbytes == b->nbytes, "%s present, same size", what))
      test_within_u8 (what, a->data, b->data, b->nbytes, 1);
  }
  st_close (mine);
  st_close (got);
}

static void
cli_goldens (const char *shared, const char *large_dir)
{
  const char *cli = getenv ("SD35_CLI");
  char        out[512], tensors[512], noise[512], init[512];

  if (cli == NULL || access (cli, X_OK) != 0)
    {
      test_check (0, "$SD35_CLI (the sd35 binary) not set or not executable");
      return;
    }
  snprintf (out, sizeof out, "%s/cli.png", tmp_root);
  snprintf (tensors, sizeof tensors, "%s/cli.safetensors", tmp_root);
  /* the golden file itself holds the saved noise as tensor 'noise' */
  snprintf (noise, sizeof noise, "%s/golden/sample_large_euler_savednoise.safetensors", shared);
  {
    char *argv[] = { (char *) cli, "txt2img", "--model", (char *) large_dir, "--backend", "cpu",
                     "--prompt", "a photo of a cat", "--prompt-weights", "ignore",
                     "--steps", "4", "--cfg", "4.5",
                     "--sampler", "euler", "--shift", "3", "--width", "128", "--height", "128",
                     "--noise", noise, "--out", out, "--tensors-out", tensors, "--quiet", NULL };
    int rc = test_run_argv (argv);
    if (test_check (rc == 0, "CLI txt2img exit status %d", rc))
      compare_cli_output ("large_euler_savednoise", tensors,
                          "golden/sample_large_euler_savednoise.safetensors", 1e-4);
    test_check (access (out, R_OK) == 0, "CLI txt2img wrote %s", out);
  }
  snprintf (init, sizeof init, "%s/golden/large_img2img_dpmpp2m_init.png", shared);
  unlink (tensors);
  {
    char *argv[] = { (char *) cli, "img2img", "--model", (char *) large_dir, "--backend", "cpu",
                     "--prompt", "a photo of a cat", "--prompt-weights", "ignore",
                     "--steps", "6", "--cfg", "4.5",
                     "--sampler", "dpmpp_2m", "--width", "128", "--height", "96",
                     "--seed", "99", "--init", init, "--strength", "0.6", "--vae-seed", "4242",
                     "--out", out, "--tensors-out", tensors, "--quiet", NULL };
    int rc = test_run_argv (argv);
    if (test_check (rc == 0, "CLI img2img exit status %d", rc))
      compare_cli_output ("large_img2img_dpmpp2m", tensors,
                          "golden/sample_large_img2img_dpmpp2m.safetensors", 1e-4);
  }
  {
    /* bad size: a clear error naming the nearest valid sizes, exit status 2 (a bad argument,
     * refused before the model loads) */
    char *argv[] = { (char *) cli, "txt2img", "--model", (char *) large_dir, "--backend", "cpu",
                     "--prompt", "x", "--width", "100", "--height", "96", "--seed", "1",
                     "--out", out, "--quiet", NULL };
    int rc = test_run_argv (argv);
    test_check (rc == 2, "CLI txt2img --width 100 fails with status 2 (got %d)", rc);
  }
}

int
main (void)
{
  char        *manifest_path = test_shared_path_or_skip ("golden/manifest.json");
  const char  *shared = test_shared_dir ();
  char         large[512], medium[512];
  JsonParser  *parser = json_parser_new ();
  GError      *gerr = NULL;
  JsonArray   *goldens;
  sd35_engine *eng_large = NULL, *eng_turbo = NULL, *eng_medium = NULL;
  struct sd35_engine_options o;
  struct sd35_error err = { 0 };
  int          n_run = 0;

  free (test_shared_path_or_skip ("tokenizers/t5/spiece.model"));
  if (!json_parser_load_from_file (parser, manifest_path, &gerr))
    {
      printf ("FAIL: %s: %s\n", manifest_path, gerr->message);
      return 1;
    }
  goldens = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                          "goldens");
  tmp_root = test_make_tmpdir ("pipeline");
  snprintf (large, sizeof large, "%s/large", tmp_root);
  snprintf (medium, sizeof medium, "%s/medium", tmp_root);
  if (!test_tiny_model_layout (shared, large, "golden/models/sd3.5_tiny_large.safetensors",
                               "sd3.5_large.safetensors")
      || !test_tiny_model_layout (shared, medium, "golden/models/sd3.5_tiny_medium.safetensors",
                                  "sd3.5_medium.safetensors"))
    return test_exit ();

  sd35_engine_options_init (&o);
  o.backend = SD35_BACKEND_CPU;
  o.model_path = large;
  if (sd35_engine_open (&o, &eng_large, &err) != SD35_OK)
    test_check (0, "open %s: %s", large, err.message);
  o.force_turbo = 1;
  if (eng_large && sd35_engine_open (&o, &eng_turbo, &err) != SD35_OK)
    test_check (0, "open %s as turbo: %s", large, err.message);
  o.force_turbo = 0;
  o.model_path = medium;
  if (eng_large && sd35_engine_open (&o, &eng_medium, &err) != SD35_OK)
    test_check (0, "open %s: %s", medium, err.message);

  if (eng_large && eng_turbo && eng_medium)
    {
      const struct sd35_model_info *li = sd35_engine_info (eng_large);
      const struct sd35_model_info *ti = sd35_engine_info (eng_turbo);
      const struct sd35_model_info *mi = sd35_engine_info (eng_medium);
      test_check (li->variant == SD35_VARIANT_LARGE && li->depth == 2 && li->hidden_size == 128
                  && li->t5_path != NULL, "large info: %s depth %d hidden %d", li->variant_name,
                  li->depth, li->hidden_size);
      test_check (ti->variant == SD35_VARIANT_LARGE_TURBO && ti->defaults.steps == 4,
                  "turbo info: %s, default steps %d", ti->variant_name, ti->defaults.steps);
      test_check (mi->variant == SD35_VARIANT_MEDIUM && mi->depth == 3,
                  "medium info: %s depth %d", mi->variant_name, mi->depth);

      for (guint i = 0; i < json_array_get_length (goldens); i++)
        {
          JsonObject *g = json_array_get_object_element (goldens, i);
          const char *kind = json_object_get_string_member_with_default (g, "kind", "");
          const char *model = json_object_get_string_member_with_default (g, "model", "");
          const char *name = json_object_get_string_member (g, "name");
          sd35_engine *eng;
          if (strcmp (kind, "sampling") != 0)
            continue;
          eng = strcmp (model, "tiny_medium") == 0 ? eng_medium :
                strstr (name, "turbo") ? eng_turbo : eng_large;
          run_golden (eng, g, json_object_get_int_member (g, "steps") > 10 ? 1e-3 : 1e-4);
          n_run++;
        }
      test_check (n_run == 7, "%d sampling goldens run (expected 7)", n_run);
      cli_goldens (shared, large);
    }

  sd35_engine_free (eng_large);
  sd35_engine_free (eng_turbo);
  sd35_engine_free (eng_medium);
  test_remove_tree (tmp_root);
  free (tmp_root);
  g_object_unref (parser);
  free (manifest_path);
  return test_exit ();
}
