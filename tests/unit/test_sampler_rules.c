/* test_sampler_rules.c — the sampler's rules that need no golden: argument checks, the
 * img2img start index, cancellation and error propagation, the masked-img2img blend, the
 * guidance rule and its call pattern, the SLG window, DPM++'s exact last step, the mask
 * downsampling and one hand-computed Euler step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "sampler.h"
#include "testutil.h"

#define H 4
#define W 4
#define N (16 * H * W)

/* a per-element toy denoiser: x0 = 0.5·x + 0.1 (so masked pixels evolve independently) */
struct toy
{
  int              calls, fail_at;
  enum sd35_status fail_status;
  float            last[N];
};

static enum sd35_status
toy_denoise (void *user, const float *x, float sigma, int step, float *out,
             struct sd35_error *err)
{
  struct toy *t = user;

  if (t->fail_at >= 0 && t->calls == t->fail_at)
    {
      t->calls++;
      return sd35_set_error (err, t->fail_status, "toy failure at call %d", t->calls);
    }
  for (int i = 0; i < N; i++)
    out[i] = 0.5f * x[i] + 0.1f;
  memcpy (t->last, out, sizeof t->last);
  t->calls++;
  return SD35_OK;
}

static int cancel_after;
static int polls;

static int
cancel_cb (void *user)
{
  return ++polls > cancel_after;
}

static void
fill (float *a, size_t n, float scale, float offset)
{
  for (size_t i = 0; i < n; i++)
    a[i] = scale * sinf ((float) i * 0.37f + offset);
}

static void
test_arguments (void)
{
  struct sd35_error       err = { 0 };
  float                  *s = NULL, x[N] = { 0 }, sig[3] = { 1.0f, 0.5f, 0.0f };
  int                     n = 0;
  struct toy              t = { .fail_at = -1 };
  struct sampler_denoiser den = { toy_denoise, &t };

  test_check (sampler_schedule (0, 3.0, 1.0, &s, &n, &err) == SD35_ERR_ARG &&
              strstr (err.message, "steps") != NULL, "0 steps refused: %s", err.message);
  memset (&err, 0, sizeof err);
  test_check (sampler_schedule (1001, 3.0, 1.0, &s, &n, &err) == SD35_ERR_ARG,
              "1001 steps refused: %s", err.message);
  memset (&err, 0, sizeof err);
  test_check (sampler_schedule (10, 3.0, 0.0, &s, &n, &err) == SD35_ERR_ARG,
              "strength 0 refused: %s", err.message);
  memset (&err, 0, sizeof err);
  test_check (sampler_schedule (10, 3.0, 1e-18, &s, &n, &err) == SD35_ERR_ARG,
              "a strength that leaves no step is refused: %s", err.message);
  memset (&err, 0, sizeof err);
  test_check (sampler_schedule (1000, 3.0, 1.0, &s, &n, &err) == SD35_OK && n == 1001 &&
              s[0] == 1.0f && s[1000] == 0.0f, "1000 steps: 1001 sigmas from 1 to 0");
  free (s);
  test_check (sampler_schedule (6, 3.0, 0.6, &s, &n, &err) == SD35_OK && n == 5,
              "steps 6 strength 0.6: 5 sigmas (4 steps)");
  free (s);
  memset (&err, 0, sizeof err);
  test_check (sampler_run (SD35_SAMPLER_DEFAULT, &den, x, N, sig, 3, NULL, NULL, &err) ==
              SD35_ERR_ARG, "sampler DEFAULT refused: %s", err.message);
  memset (&err, 0, sizeof err);
  test_check (sampler_run (SD35_SAMPLER_EULER, &den, x, N, sig, 1, NULL, NULL, &err) ==
              SD35_ERR_ARG, "zero steps refused: %s", err.message);
  memset (&err, 0, sizeof err);
  sig[1] = 0.0f;
  test_check (sampler_run (SD35_SAMPLER_EULER, &den, x, N, sig, 3, NULL, NULL, &err) ==
              SD35_ERR_ARG, "a zero sigma before the end refused: %s", err.message);
  test_check (t.calls == 0, "nothing ran on bad arguments");
}

static void
test_img2img_start (void)
{
  /* manifest.json "sigmas".img2img_start_index: Python's int(steps·(1 − denoise)) */
  static const struct { int steps; double denoise; int start; } c[] = {
    { 10, 0.8, 1 }, { 6, 0.6, 2 }, { 8, 0.45, 4 }, { 40, 0.8, 7 }, { 5, 0.3, 3 }, { 4, 1.0, 0 },
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    test_check (sampler_img2img_start (c[i].steps, c[i].denoise) == c[i].start,
                "img2img start int(%d·(1−%g)) = %d", c[i].steps, c[i].denoise, c[i].start);
}

static void
test_cancel_and_errors (void)
{
  float                    sig[6], x[N];
  struct toy               t = { .fail_at = -1 };
  struct sampler_denoiser  den = { toy_denoise, &t };
  struct sampler_callbacks cb = { NULL, cancel_cb, NULL };
  struct sd35_error        err = { 0 };
  enum sd35_status         st;

  sampler_sigmas (5, 3.0, sig);
  fill (x, N, 1.0f, 0.0f);
  cancel_after = 2;
  polls = 0;
  st = sampler_run (SD35_SAMPLER_DPMPP_2M, &den, x, N, sig, 6, NULL, &cb, &err);
  test_check (st == SD35_CANCELLED && err.status == SD35_CANCELLED && t.calls == 2,
              "cancelled before step 3: SD35_CANCELLED after %d model calls", t.calls);

  memset (&err, 0, sizeof err);
  t.calls = 0;
  t.fail_at = 1;
  t.fail_status = SD35_ERR_CUDA;
  st = sampler_run (SD35_SAMPLER_EULER, &den, x, N, sig, 6, NULL, NULL, &err);
  test_check (st == SD35_ERR_CUDA && strstr (err.message, "toy failure") != NULL && t.calls == 2,
              "a denoiser error stops the run and keeps its message: %s", err.message);
}

/* masked img2img: m = 0 keeps init exactly, m = 1 is the unmasked run exactly */
static void
test_inpaint (void)
{
  static float            init[N], noise[N], x_plain[N], x_mask[N], mask[H * W];
  float                   sig[7];
  struct toy              t = { .fail_at = -1 };
  struct sampler_denoiser den = { toy_denoise, &t };
  struct sampler_inpaint  ip = { mask, init, noise, H, W };
  struct sd35_error       err = { 0 };
  int                     kept_ok = 1, regen_ok = 1;

  fill (init, N, 0.8f, 1.0f);
  fill (noise, N, 1.0f, 2.0f);
  for (int p = 0; p < H * W; p++)
    mask[p] = (p % 3 == 0) ? 1.0f : 0.0f;
  sampler_sigmas (6, 3.0, sig);
  for (int s = 0; s < 2; s++)
    {
      enum sd35_sampler smp = s ? SD35_SAMPLER_DPMPP_2M : SD35_SAMPLER_EULER;
      /* img2img from sigmas[2:] */
      sampler_noise_scaling (sig[2], noise, init, N, x_plain);
      memcpy (x_mask, x_plain, sizeof x_plain);
      if (sampler_run (smp, &den, x_plain, N, sig + 2, 5, NULL, NULL, &err) != SD35_OK ||
          sampler_run (smp, &den, x_mask, N, sig + 2, 5, &ip, NULL, &err) != SD35_OK)
        {
          test_check (0, "masked run: %s", err.message);
          return;
        }
      for (int i = 0; i < N; i++)
        {
          if (mask[i % (H * W)] == 0.0f && memcmp (&x_mask[i], &init[i], sizeof (float)) != 0)
            kept_ok = 0;
          if (mask[i % (H * W)] == 1.0f && memcmp (&x_mask[i], &x_plain[i], sizeof (float)) != 0)
            regen_ok = 0;
        }
      test_check (kept_ok, "%s: mask 0 ends exactly at the init latent", sd35_sampler_name (smp));
      test_check (regen_ok, "%s: mask 1 equals the unmasked run exactly",
                  sd35_sampler_name (smp));
    }
  ip.h = 3;
  memset (&err, 0, sizeof err);
  test_check (sampler_run (SD35_SAMPLER_EULER, &den, x_mask, N, sig, 7, &ip, NULL, &err) ==
              SD35_ERR_ARG, "a mask of the wrong size is refused: %s", err.message);
}

/* DPM++ 2M's last step to σ = 0 is x = denoised exactly; Euler one step by hand */
static void
test_steps (void)
{
  float                   x[N], x0[N], sig[4];
  struct toy              t = { .fail_at = -1 };
  struct sampler_denoiser den = { toy_denoise, &t };
  struct sd35_error       err = { 0 };
  float                   two[3] = { 0.8f, 0.2f, 0.0f };

  sampler_sigmas (3, 3.0, sig);
  fill (x, N, 1.0f, 0.5f);
  test_check (sampler_run (SD35_SAMPLER_DPMPP_2M, &den, x, N, sig, 4, NULL, NULL, &err) ==
              SD35_OK && memcmp (x, t.last, sizeof x) == 0,
              "dpmpp_2m: the last step to sigma 0 returns the x0 estimate exactly");

  /* Euler from σ 0.8 to 0.2 with x0 = 0.5x + 0.1: x' = x + (x − x0)/0.8·(0.2 − 0.8) */
  for (int i = 0; i < N; i++)
    x[i] = 1.0f;
  sampler_run (SD35_SAMPLER_EULER, &den, x, N, two, 2, NULL, NULL, &err);
  test_check (fabsf (x[0] - (1.0f + (1.0f - 0.6f) / 0.8f * -0.6f)) < 1e-6f,
              "euler step by hand: %.7f (expected 0.7)", (double) x[0]);

  sampler_flow_x0 (x, x, 0.25f, 1, x0);
  test_check (x0[0] == x[0] - x[0] * 0.25f, "flow x0 = x − v·σ");
  test_check (sampler_timestep (0.5f) == 500.0f, "timestep = σ·1000");
}

/* the fake model of the guidance tests */
struct gfake
{
  int counts[3];
  int skip_at_step[8], n_skip, main_calls;
};

static enum sd35_status
gfake_predict (void *user, const float *x, float sigma, enum sampler_batch batch, float *out,
               struct sd35_error *err)
{
  struct gfake *g = user;

  g->counts[batch]++;
  for (int i = 0; i < N; i++)
    switch (batch)
      {
      case SAMPLER_BATCH_COND_UNCOND:
        out[i] = 2.0f;      /* cond */
        out[N + i] = 1.0f;  /* uncond */
        break;
      case SAMPLER_BATCH_COND:
        out[i] = 2.0f;
        break;
      case SAMPLER_BATCH_COND_SKIP:
        out[i] = 1.5f;
        break;
      }
  if (batch == SAMPLER_BATCH_COND_SKIP && g->n_skip < 8)
    g->skip_at_step[g->n_skip++] = g->main_calls - 1;
  if (batch != SAMPLER_BATCH_COND_SKIP)
    g->main_calls++;
  return SD35_OK;
}

static void
test_guidance (void)
{
  float                   cond[2] = { 2.0f, -1.0f }, unc[2] = { 1.0f, 1.0f },
                          skip[2] = { 1.5f, 0.0f }, out[2];
  struct sampler_model    model;
  struct sampler_guidance g;
  struct sampler_denoiser den = { sampler_guidance_denoise, &g };
  struct gfake            fk;
  struct sd35_error       err = { 0 };
  float                   sig[11], x[N] = { 0 };
  int                     ok = 1;

  sampler_guidance_combine (cond, unc, NULL, 2, 3.0, 0.0, out);
  test_check (out[0] == 4.0f && out[1] == -5.0f, "cfg 3: uncond + (cond − uncond)·3");
  sampler_guidance_combine (cond, NULL, NULL, 2, 0.0, 0.0, out);
  test_check (out[0] == 2.0f && out[1] == -1.0f, "cfg 0 (< 1): the cond prediction");
  sampler_guidance_combine (cond, unc, skip, 2, 3.0, 2.0, out);
  test_check (out[0] == 5.0f && out[1] == -7.0f, "SLG: + (cond − skip)·scale");

  /* the reference's Medium config: scale 2.5, start 0.01, end 0.2, 50 steps → steps 1…9 */
  for (int s = 0; s < 50; s++)
    ok &= sampler_slg_active (2.5, 0.01, 0.2, 50, s) == (s >= 1 && s <= 9);
  test_check (ok, "SLG window at 50 steps is steps 1…9");
  test_check (!sampler_slg_active (0.0, 0.01, 0.2, 50, 5), "SLG off with scale 0");

  /* call pattern over a 10-step run */
  sampler_sigmas (10, 3.0, sig);
  for (int c = 0; c < 3; c++)
    {
      double cfg = c == 0 ? 0.0 : c == 1 ? 1.0 : 4.5;
      memset (&fk, 0, sizeof fk);
      model.predict = gfake_predict;
      model.user = &fk;
      if (sampler_guidance_init (&g, &model, N, cfg, 3.0, 0.1, 0.35, 10, &err) != SD35_OK ||
          sampler_run (SD35_SAMPLER_EULER, &den, x, N, sig, 11, NULL, NULL, &err) != SD35_OK)
        test_check (0, "guided run: %s", err.message);
      sampler_guidance_clear (&g);
      test_check (fk.counts[SAMPLER_BATCH_COND_UNCOND] == (cfg > 1 ? 10 : 0) &&
                  fk.counts[SAMPLER_BATCH_COND] == (cfg > 1 ? 0 : 10),
                  "cfg %g: %d batched (B=2) and %d cond-only calls", cfg,
                  fk.counts[SAMPLER_BATCH_COND_UNCOND], fk.counts[SAMPLER_BATCH_COND]);
      /* start 0.1·10 = 1, end 0.35·10 = 3.5: steps 2 and 3 */
      test_check (fk.n_skip == 2 && fk.skip_at_step[0] == 2 && fk.skip_at_step[1] == 3,
                  "cfg %g: skip-layer calls at steps 2 and 3 only (%d calls)", cfg, fk.n_skip);
    }
  memset (&err, 0, sizeof err);
  test_check (sampler_guidance_init (&g, &model, N, -1.0, 0.0, 0.0, 0.0, 10, &err) ==
              SD35_ERR_ARG, "a negative cfg is refused: %s", err.message);
}

static void
test_mask_to_latent (void)
{
  static float m[16 * 24];
  float        out[2 * 3];

  for (int y = 0; y < 16; y++)
    for (int x = 0; x < 24; x++)
      m[y * 24 + x] = x < 8 ? 1.0f : x < 16 ? (y % 2 ? 2.0f : NAN) : 0.25f;
  sampler_mask_to_latent (m, 16, 24, out);
  test_check (out[0] == 1.0f && out[1] == 0.5f && out[2] == 0.25f && out[3] == 1.0f &&
              out[4] == 0.5f && out[5] == 0.25f,
              "mask 16×24 → 2×3 by 8×8 means (values clamped to [0,1], NaN as 0)");
}

int
main (void)
{
  test_arguments ();
  test_img2img_start ();
  test_cancel_and_errors ();
  test_inpaint ();
  test_steps ();
  test_guidance ();
  test_mask_to_latent ();
  return test_exit ();
}
