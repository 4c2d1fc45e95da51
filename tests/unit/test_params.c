/* test_params.c — sd35_generate's argument checks, cancellation and NaN detection, on the
 * random test model (test_model.h, synthetic tokenizers: no ../shared needed), plus the CLI's
 * handling of an img2img init image of another size (resized) when $SD35_CLI is set. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "image_png.h"
#include "sd35.h"
#include "test_model.h"
#include "testutil.h"

static char *root;

static sd35_engine *
open_model (const char *dir, int poison, int use_t5, struct sd35_error *err)
{
  struct test_model_options  tm;
  struct sd35_engine_options o;
  sd35_engine               *e = NULL;

  test_model_options_init (&tm);
  tm.out_dir = dir;
  tm.seed = 5;
  tm.poison_nan = poison;
  if (access (dir, F_OK) != 0 &&
      !test_check (test_model_write (&tm, err) == SD35_OK, "write test model %s: %s", dir,
                   err->message))
    return NULL;
  sd35_engine_options_init (&o);
  o.model_path = dir;
  o.backend = SD35_BACKEND_CPU;
  o.use_t5 = use_t5;
  sd35_engine_open (&o, &e, err);
  return e;
}

static void
small_params (struct sd35_params *p)
{
  sd35_params_init (p);
  p->prompt = "a red apple";
  p->width = 64;
  p->height = 48;
  p->steps = 3;
  p->seed = 11;
}

/* sd35_generate must fail with `status` and a message containing every string of `needles`
 * (NULL-terminated), leaving the result empty. */
static void
expect_fail (sd35_engine *e, const struct sd35_params *p, const struct sd35_callbacks *cb,
             enum sd35_status status, const char *what, const char *const *needles)
{
  struct sd35_result r;
  struct sd35_error  err = { 0 };
  enum sd35_status   st = sd35_generate (e, p, cb, &r, &err);
  int                ok = st == status && r.rgb == NULL && r.final_latent == NULL &&
                          r.noise == NULL && r.sigmas == NULL && r.image_float == NULL;

  for (int i = 0; needles && needles[i]; i++)
    if (strstr (err.message, needles[i]) == NULL)
      ok = 0;
  test_check (ok, "%s → %s: \"%s\"", what, sd35_status_name (st), err.message);
  sd35_result_clear (&r);
}

struct cancel_state
{
  int steps_seen;
};

static void
count_step (void *user, int step, int n, float sigma, const uint8_t *rgb, int w, int h)
{
  ((struct cancel_state *) user)->steps_seen++;
}

static int
cancel_at_2 (void *user)
{
  return ((struct cancel_state *) user)->steps_seen >= 2;
}

static void
cli_resize (const char *model)
{
  const char       *cli = getenv ("SD35_CLI");
  char              init[256], out[256];
  uint8_t           img[40 * 24 * 3], *back = NULL;
  int               w = 0, h = 0;
  struct sd35_error err = { 0 };

  if (cli == NULL || access (cli, X_OK) != 0)
    {
      printf ("note: $SD35_CLI not set; CLI init-image resize not tested\n");
      return;
    }
  for (size_t i = 0; i < sizeof img; i++)
    img[i] = (uint8_t) (i * 7);
  snprintf (init, sizeof init, "%s/init.png", root);
  snprintf (out, sizeof out, "%s/out.png", root);
  test_check (png_write_rgb (init, img, 40, 24, &err) == SD35_OK, "write %s", init);
  {
    char *argv[] = { (char *) cli, "img2img", "--model", (char *) model, "--backend", "cpu",
                     "--prompt", "x", "--steps", "2", "--width", "64", "--height", "48",
                     "--seed", "3", "--init", init, "--strength", "0.5", "--out", out,
                     "--quiet", NULL };
    int rc = test_run_argv (argv);
    test_check (rc == 0, "CLI img2img with a 40×24 init image for 64×48 (resized): status %d",
                rc);
  }
  if (png_read_rgb (out, &back, &w, &h, &err) == SD35_OK)
    test_check (w == 64 && h == 48, "CLI output is %d×%d (expected 64×48)", w, h);
  else
    test_check (0, "read %s: %s", out, err.message);
  free (back);

  /* without --width/--height the output keeps the init image's size, rounded to 16 */
  {
    char *argv[] = { (char *) cli, "img2img", "--model", (char *) model, "--backend", "cpu",
                     "--prompt", "x", "--steps", "2", "--seed", "3", "--init", init,
                     "--strength", "0.5", "--out", out, "--quiet", NULL };
    int rc = test_run_argv (argv);
    test_check (rc == 0, "CLI img2img with a 40×24 init image, no size given: status %d", rc);
  }
  back = NULL;
  if (png_read_rgb (out, &back, &w, &h, &err) == SD35_OK)
    test_check (w == 48 && h == 32, "CLI img2img keeps the init size rounded to 16: %d×%d "
                "(expected 48×32 from 40×24)", w, h);
  else
    test_check (0, "read %s: %s", out, err.message);
  free (back);
}

int
main (void)
{
  char                  good[256], nan_dir[256];
  struct sd35_error     err = { 0 };
  struct sd35_params    p;
  struct sd35_callbacks cb;
  struct sd35_result    r, r2;
  sd35_engine          *e, *e_nan, *e_no_t5;
  uint8_t               init[64 * 48 * 3];
  float                 mask[64 * 48];

  root = test_make_tmpdir ("params");
  snprintf (good, sizeof good, "%s/model", root);
  snprintf (nan_dir, sizeof nan_dir, "%s/nan", root);
  e = open_model (good, 0, 1, &err);
  if (!test_check (e != NULL, "open the test model: %s", err.message))
    return test_exit ();
  memset (&cb, 0, sizeof cb);

  /* sizes */
  small_params (&p);
  p.width = 100;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "width 100",
               (const char *const[]) { "100", "96", "112", NULL });
  small_params (&p);
  p.height = 50;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "height 50",
               (const char *const[]) { "50", "48", "64", NULL });
  small_params (&p);
  p.width = 8;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "width 8", (const char *const[]) { "16", NULL });
  small_params (&p);
  p.width = 0;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "width 0", NULL);

  /* steps: 0 = the variant's default (Large: 40); outside 1..1000 is an error */
  small_params (&p);
  p.steps = 1001;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "steps 1001", (const char *const[]) { "1000", NULL });
  small_params (&p);
  p.steps = -1;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "steps -1", NULL);
  small_params (&p);
  p.steps = 0;
  p.width = p.height = 16;
  if (test_check (sd35_generate (e, &p, NULL, &r, &err) == SD35_OK, "steps 0 (default): %s",
                  err.message))
    test_check (r.n_sigmas == 41, "steps 0 → the Large default 40 steps (%d sigmas)",
                r.n_sigmas);
  sd35_result_clear (&r);

  /* guidance */
  small_params (&p);
  p.cfg = -2;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "cfg -2", (const char *const[]) { "-2", NULL });

  /* img2img strength and init image */
  for (size_t i = 0; i < sizeof init; i++)
    init[i] = (uint8_t) (i * 13 + i / 192);
  small_params (&p);
  p.init_rgb = init;
  p.strength = 0;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "strength 0", (const char *const[]) { "(0, 1]", NULL });
  p.strength = 1.5;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "strength 1.5", NULL);
  small_params (&p);
  p.mask = mask;
  expect_fail (e, &p, NULL, SD35_ERR_ARG, "mask without init image", NULL);

  /* a working txt2img: finite, not constant, reproducible, seed-dependent */
  small_params (&p);
  if (test_check (sd35_generate (e, &p, NULL, &r, &err) == SD35_OK, "txt2img 64×48: %s",
                  err.message))
    {
      int lo = 255, hi = 0;
      for (size_t i = 0; i < (size_t) 64 * 48 * 3; i++)
        {
          lo = r.rgb[i] < lo ? r.rgb[i] : lo;
          hi = r.rgb[i] > hi ? r.rgb[i] : hi;
        }
      test_check (r.width == 64 && r.height == 48 && hi - lo > 10,
                  "image 64×48 not constant (range %d..%d)", lo, hi);
      if (sd35_generate (e, &p, NULL, &r2, &err) == SD35_OK)
        test_check (memcmp (r.rgb, r2.rgb, (size_t) 64 * 48 * 3) == 0, "same seed, same image");
      sd35_result_clear (&r2);
      p.seed = 12;
      if (sd35_generate (e, &p, NULL, &r2, &err) == SD35_OK)
        test_check (memcmp (r.final_latent, r2.final_latent, 16 * 6 * 8 * sizeof (float)) != 0,
                    "another seed, another latent");
      sd35_result_clear (&r2);
    }
  sd35_result_clear (&r);

  /* no guidance (cfg 0) and img2img with a mask run */
  small_params (&p);
  p.cfg = 0;
  test_check (sd35_generate (e, &p, NULL, &r, &err) == SD35_OK, "cfg 0: %s", err.message);
  sd35_result_clear (&r);
  for (int i = 0; i < 64 * 48; i++)
    mask[i] = (i % 64) < 32 ? 1.0f : 0.0f;
  small_params (&p);
  p.init_rgb = init;
  p.steps = 4;
  p.strength = 0.5;
  p.mask = mask;
  if (test_check (sd35_generate (e, &p, NULL, &r, &err) == SD35_OK, "masked img2img: %s",
                  err.message))
    test_check (r.n_sigmas == 3, "masked img2img: %d sigmas (4 steps from int(4·0.5) = 2 → 3)",
                r.n_sigmas);
  sd35_result_clear (&r);

  /* cancellation from is_cancelled after step 2: SD35_CANCELLED, no output */
  {
    struct cancel_state cs = { 0 };
    small_params (&p);
    p.steps = 6;
    cb.on_step = count_step;
    cb.is_cancelled = cancel_at_2;
    cb.user = &cs;
    expect_fail (e, &p, &cb, SD35_CANCELLED, "cancel at step 2", NULL);
    test_check (cs.steps_seen == 2, "stopped after 2 steps (saw %d)", cs.steps_seen);
    memset (&cb, 0, sizeof cb);
  }

  /* NaN weights: a clear SD35_ERR_NAN (at load or at the end of sampling) */
  sd35_error_clear (&err);
  e_nan = open_model (nan_dir, 1, 1, &err);
  if (e_nan == NULL)
    test_check (err.status == SD35_ERR_NAN, "NaN model refused at open: %s", err.message);
  else
    {
      small_params (&p);
      expect_fail (e_nan, &p, NULL, SD35_ERR_NAN, "NaN in the MMDiT weights",
                   (const char *const[]) { "NaN", NULL });
      sd35_engine_free (e_nan);
    }

  /* without T5: never loaded, still generates */
  sd35_error_clear (&err);
  e_no_t5 = open_model (good, 0, 0, &err);
  if (test_check (e_no_t5 != NULL, "open without T5: %s", err.message))
    {
      test_check (sd35_engine_info (e_no_t5)->t5_path == NULL, "no T5 path in the info");
      small_params (&p);
      test_check (sd35_generate (e_no_t5, &p, NULL, &r, &err) == SD35_OK, "txt2img without "
                  "T5: %s", err.message);
      sd35_result_clear (&r);
      sd35_engine_free (e_no_t5);
    }

  cli_resize (good);
  sd35_engine_free (e);

  /* missing files: T5 only matters with use_t5; a missing CLIP-G is named */
  {
    char f[300];
    snprintf (f, sizeof f, "%s/text_encoders/t5xxl_fp16.safetensors", good);
    unlink (f);
    sd35_error_clear (&err);
    e = open_model (good, 0, 1, &err);
    test_check (e == NULL && err.status == SD35_ERR_MISSING && strstr (err.message, "T5"),
                "open without the T5 file → %s: %s", sd35_status_name (err.status), err.message);
    sd35_engine_free (e);
    sd35_error_clear (&err);
    e = open_model (good, 0, 0, &err);
    test_check (e != NULL, "open without the T5 file, use_t5 = 0: %s", err.message);
    sd35_engine_free (e);
    snprintf (f, sizeof f, "%s/text_encoders/clip_g.safetensors", good);
    unlink (f);
    sd35_error_clear (&err);
    e = open_model (good, 0, 0, &err);
    test_check (e == NULL && err.status == SD35_ERR_MISSING && strstr (err.message, "clip_g"),
                "open without CLIP-G → %s: %s", sd35_status_name (err.status), err.message);
    sd35_engine_free (e);
  }
  test_remove_tree (root);
  free (root);
  return test_exit ();
}
