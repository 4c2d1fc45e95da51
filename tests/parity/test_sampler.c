/* test_sampler.c — the schedule, the samplers and the guidance rule against the reference
 * runs in golden/sample_*.safetensors, without the MMDiT: a fake model returns, for call i,
 * the reference's own cond / uncond predictions (and the skip-layer prediction on the SLG
 * steps), while the sampler and the guidance compute everything else.  Checks: sigmas (and
 * the full schedules of sigmas.safetensors), the img2img start index, the start x, the x
 * handed to the model and the guided x0 at every step, the final latent before and after
 * process_out, and the call pattern (no uncond pass at cfg 1, SLG exactly where the
 * reference applied it).  Run parameters come from manifest.json. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "testutil.h"

#define MAX_CALLS 64

struct run
{
  const char       *name, *file;
  enum sd35_sampler sampler;
  int               steps, start, n_calls;
  double            cfg, shift, denoise;
  double            slg_scale, slg_start, slg_end;
  int               slg_steps[MAX_CALLS], n_slg_steps;
};

/* the fake model: replays the golden predictions */
struct fake
{
  const float *cond, *uncond, *skip, *step_sigma;
  size_t       n;
  int          main_calls, skip_calls;
  int          uncond_requested;
  int          skip_at[MAX_CALLS];
  int          bad_sigma;
};

static enum sd35_status
fake_predict (void *user, const float *x, float sigma, enum sampler_batch batch, float *out,
              struct sd35_error *err)
{
  struct fake *fk = user;

  if (batch == SAMPLER_BATCH_COND_SKIP)
    {
      int i = fk->main_calls - 1;  /* after the step's main call */
      if (fk->skip == NULL || fk->skip_calls >= MAX_CALLS)
        return SD35_ERR_INTERNAL;
      fk->skip_at[fk->skip_calls] = i;
      memcpy (out, fk->skip + (size_t) fk->skip_calls * fk->n, fk->n * sizeof *out);
      fk->skip_calls++;
      return SD35_OK;
    }
  if (sigma != fk->step_sigma[fk->main_calls])
    fk->bad_sigma++;
  memcpy (out, fk->cond + (size_t) fk->main_calls * fk->n, fk->n * sizeof *out);
  if (batch == SAMPLER_BATCH_COND_UNCOND)
    {
      fk->uncond_requested++;
      memcpy (out + fk->n, fk->uncond + (size_t) fk->main_calls * fk->n, fk->n * sizeof *out);
    }
  fk->main_calls++;
  return SD35_OK;
}

/* collects what the sampler fed to the model */
struct trace
{
  float *x, *denoised;
  size_t n;
  int    n_steps_seen, max_steps;
};

static void
on_step (void *user, int step, int n_steps, float sigma, const float *x, const float *denoised)
{
  struct trace *tr = user;

  if (step < tr->max_steps)
    {
      memcpy (tr->x + (size_t) step * tr->n, x, tr->n * sizeof *x);
      memcpy (tr->denoised + (size_t) step * tr->n, denoised, tr->n * sizeof *x);
    }
  tr->n_steps_seen++;
}

static void
test_run (const struct run *r)
{
  char                    rel[256], what[160];
  struct st_file         *f;
  size_t                  n, n_sig, n_full, n_steps_ref;
  float                  *noise, *sigmas_ref, *full_ref, *x_noised, *step_x, *step_den;
  float                  *init = NULL, *final_model, *final_ref, *sigmas = NULL, *full, *x;
  struct fake             fk = { 0 };
  struct trace            tr = { 0 };
  struct sampler_guidance gd;
  struct sampler_model    model = { fake_predict, &fk };
  struct sampler_denoiser den = { sampler_guidance_denoise, &gd };
  struct sampler_callbacks cb = { on_step, NULL, &tr };
  struct sd35_error       err = { 0 };
  int                     n_sigmas = 0;
  double                  tol = r->n_slg_steps > 0 ? 1e-3 : 1e-4;

  printf ("--- %s (%s, %d steps, cfg %g, denoise %g)\n", r->name,
          sd35_sampler_name (r->sampler), r->steps, r->cfg, r->denoise);
  snprintf (rel, sizeof rel, "golden/%s", r->file);
  f = test_open_golden (rel);
  noise = test_golden_f32 (f, "noise", &n);
  sigmas_ref = test_golden_f32 (f, "sigmas", &n_sig);
  full_ref = test_golden_f32 (f, "sigmas_full", &n_full);
  x_noised = test_golden_f32 (f, "x_noised", NULL);
  step_x = test_golden_f32 (f, "step_x", &n_steps_ref);
  step_den = test_golden_f32 (f, "step_denoised", NULL);
  fk.cond = test_golden_f32 (f, "step_cond_denoised", NULL);
  fk.uncond = test_golden_f32 (f, "step_uncond_denoised", NULL);
  fk.step_sigma = test_golden_f32 (f, "step_sigma", NULL);
  fk.skip = st_find (f, "slg_skip_denoised") ? test_golden_f32 (f, "slg_skip_denoised", NULL)
                                              : NULL;
  final_model = test_golden_f32 (f, "final_latent_model", NULL);
  final_ref = test_golden_f32 (f, "final_latent", NULL);
  if (r->start > 0)
    init = test_golden_f32 (f, "init_latent", NULL);
  fk.n = n;
  n_steps_ref /= n;

  /* schedule */
  full = malloc ((size_t) (r->steps + 1) * sizeof *full);
  sampler_sigmas (r->steps, r->shift, full);
  test_check (n_full == (size_t) r->steps + 1, "sigmas_full has steps+1 = %d values", r->steps + 1);
  test_close ("sigmas_full (1e-6 abs)", full, full_ref, n_full, 1e-6);
  test_check (sampler_img2img_start (r->steps, r->denoise) == r->start,
              "img2img start index int(%d·(1−%g)) = %d", r->steps, r->denoise, r->start);
  if (sampler_schedule (r->steps, r->shift, r->denoise, &sigmas, &n_sigmas, &err) != SD35_OK)
    {
      test_check (0, "sampler_schedule: %s", err.message);
      goto done;
    }
  test_check ((size_t) n_sigmas == n_sig && n_steps_ref == (size_t) n_sigmas - 1 &&
              r->n_calls == n_sigmas - 1 + r->n_slg_steps,
              "%d sigmas, %zu steps, %d model calls", n_sigmas, n_steps_ref, r->n_calls);
  test_close ("sigmas (1e-6 abs)", sigmas, sigmas_ref, n_sig, 1e-6);

  /* start x = noise_scaling(σ0, noise, latent) (txt2img: σ0 = 1, the empty latent drops) */
  x = malloc (n * sizeof *x);
  sampler_noise_scaling (sigmas[0], noise, init, n, x);
  test_close ("x_noised (start x)", x, x_noised, n, 1e-6);

  /* sampling with the fake model */
  tr.n = n;
  tr.max_steps = n_sigmas - 1;
  tr.x = malloc ((size_t) tr.max_steps * n * sizeof *tr.x);
  tr.denoised = malloc ((size_t) tr.max_steps * n * sizeof *tr.x);
  if (sampler_guidance_init (&gd, &model, n, r->cfg, r->slg_scale, r->slg_start, r->slg_end,
                             r->steps, &err) != SD35_OK ||
      sampler_run (r->sampler, &den, x, n, sigmas, n_sigmas, NULL, &cb, &err) != SD35_OK)
    test_check (0, "sampler ran: %s", err.message);
  sampler_guidance_clear (&gd);

  test_check (tr.n_steps_seen == n_sigmas - 1, "on_step called %d times", tr.n_steps_seen);
  test_check (fk.bad_sigma == 0, "the model got step_sigma[i] at every step (%d wrong)",
              fk.bad_sigma);
  for (int i = 0; i < tr.max_steps; i++)
    {
      snprintf (what, sizeof what, "step_x[%d]", i);
      test_close (what, tr.x + (size_t) i * n, step_x + (size_t) i * n, n, tol);
      snprintf (what, sizeof what, "step_denoised[%d] (guided)", i);
      test_close (what, tr.denoised + (size_t) i * n, step_den + (size_t) i * n, n, tol);
    }
  test_close ("final_latent_model", x, final_model, n, tol);
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] / 1.5305f + 0.0609f;  /* SD3LatentFormat.process_out (vae.h owns the helper) */
  test_close ("final_latent (process_out)", x, final_ref, n, tol);

  /* the call pattern */
  if (r->cfg <= 1.0)
    test_check (fk.uncond_requested == 0, "cfg %g never asks for the uncond prediction (%d)",
                r->cfg, fk.uncond_requested);
  else
    test_check (fk.uncond_requested == n_sigmas - 1, "cfg %g: cond+uncond batch every step",
                r->cfg);
  if (test_check (fk.skip_calls == r->n_slg_steps, "SLG calls: %d, reference %d", fk.skip_calls,
                  r->n_slg_steps))
    for (int k = 0; k < fk.skip_calls; k++)
      test_check (fk.skip_at[k] == r->slg_steps[k], "SLG call %d at step %d (reference %d)", k,
                  fk.skip_at[k], r->slg_steps[k]);

  free (tr.x);
  free (tr.denoised);
  free (x);
done:
  free (sigmas);
  free (full);
  free (noise);
  free (sigmas_ref);
  free (full_ref);
  free (x_noised);
  free (step_x);
  free (step_den);
  free ((float *) fk.cond);
  free ((float *) fk.uncond);
  free ((float *) fk.step_sigma);
  free ((float *) fk.skip);
  free (final_model);
  free (final_ref);
  free (init);
  st_close (f);
}

/* every get_sigmas(shift, steps) schedule of sigmas.safetensors, and the model_sampling
 * buffers; these are exact (the same float32 operations as torch) */
static void
test_schedules (void)
{
  struct st_file *f = test_open_golden ("golden/sigmas.safetensors");
  int             n_exact = 0, n_cases = 0;

  for (size_t i = 0; i < st_count (f); i++)
    {
      const struct st_tensor *t = st_at (f, i);
      int                     shift, steps;
      float                  *ref, *got;
      size_t                  n;

      if (sscanf (t->name, "sigmas_shift%d_steps%d", &shift, &steps) != 2)
        continue;
      ref = test_golden_f32 (f, t->name, &n);
      got = malloc (n * sizeof *got);
      if (!test_check (n == (size_t) steps + 1, "%s has steps+1 values", t->name))
        {
          free (ref);
          free (got);
          continue;
        }
      sampler_sigmas (steps, shift, got);
      test_close (t->name, got, ref, n, 1e-6);
      n_cases++;
      n_exact += memcmp (got, ref, n * sizeof *got) == 0;
      free (ref);
      free (got);
    }
  test_check (n_cases >= 20 && n_exact == n_cases, "%d of %d schedules bit-identical to torch",
              n_exact, n_cases);
  for (int shift = 1; shift <= 3; shift += 2)
    {
      char   name[64];
      size_t n;
      float *ref, buf[1000];
      snprintf (name, sizeof name, "model_sampling_sigmas_shift%d", shift);
      ref = test_golden_f32 (f, name, &n);
      for (int k = 0; k < 1000; k++)
        buf[k] = sampler_flow_sigma ((float) (k + 1), shift);
      test_check (n == 1000 && memcmp (buf, ref, sizeof buf) == 0,
                  "%s (sigma(arange(1, 1001))) bit-identical", name);
      free (ref);
    }
  st_close (f);
}

static double
member_double (JsonObject *o, const char *key, double dflt)
{
  return json_object_has_member (o, key) ? json_object_get_double_member (o, key) : dflt;
}

int
main (void)
{
  char       *path = test_shared_path_or_skip ("golden/manifest.json");
  JsonParser *parser = json_parser_new ();
  GError     *error = NULL;
  JsonArray  *goldens;
  int         n_runs = 0;

  if (!json_parser_load_from_file (parser, path, &error))
    {
      printf ("FAIL: %s: %s\n", path, error->message);
      return 1;
    }
  test_schedules ();
  goldens = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                          "goldens");
  for (guint i = 0; i < json_array_get_length (goldens); i++)
    {
      JsonObject *g = json_array_get_object_element (goldens, i);
      JsonObject *slg;
      JsonArray  *at;
      struct run  r = { 0 };

      if (strcmp (json_object_get_string_member (g, "kind"), "sampling") != 0)
        continue;
      r.name = json_object_get_string_member (g, "name");
      r.file = json_object_get_string_member (g, "file");
      if (sd35_sampler_from_name (json_object_get_string_member (g, "sampler"), &r.sampler) != 0)
        {
          test_check (0, "%s: unknown sampler", r.name);
          continue;
        }
      r.steps = (int) json_object_get_int_member (g, "steps");
      r.cfg = json_object_get_double_member (g, "cfg_scale");
      r.shift = json_object_get_double_member (g, "shift");
      r.denoise = json_object_get_double_member (g, "denoise");
      r.start = (int) json_object_get_int_member (g, "img2img_start_index");
      r.n_calls = (int) json_object_get_int_member (g, "n_model_calls");
      slg = json_object_get_object_member (g, "skip_layer_config");
      r.slg_scale = member_double (slg, "scale", 0.0);
      r.slg_start = member_double (slg, "start", 0.0);
      r.slg_end = member_double (slg, "end", 0.0);
      at = json_object_get_array_member (g, "slg_applied_at_steps");
      r.n_slg_steps = (int) MIN (json_array_get_length (at), MAX_CALLS);
      for (int k = 0; k < r.n_slg_steps; k++)
        r.slg_steps[k] = (int) json_array_get_int_element (at, (guint) k);
      test_run (&r);
      n_runs++;
    }
  test_check (n_runs >= 7, "%d sampling goldens replayed", n_runs);
  g_object_unref (parser);
  free (path);
  return test_exit ();
}
