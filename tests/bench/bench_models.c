/* bench_models.c — CPU speed of the MMDiT forward and the VAE decode (a meson benchmark, not a
 * test: it prints numbers and never fails on them).
 *
 *   tiny     the golden tiny models (tiny_large, tiny_medium MMDiT at latent 16×16, batch 2;
 *            the tiny VAE decode of a 16×16 latent): median of 5 after a warm-up
 *   medium   an SD3.5 Medium-shaped MMDiT (depth 24, hidden 1536, attn2 in blocks 0–12) from
 *            random weights at 512² (latent 64×64, 77+256 context tokens), batch 1, one run
 *   vae512   the real-size SD3 VAE decoder (ch 128, mult 1,2,4,4) from random weights at 512²
 *            (latent 64×64), one run
 *
 * usage: bench_models [tiny] [medium] [vae512] [--threads N]   (no part named = all) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmdit.h"
#include "testutil.h"
#include "vae.h"

static double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static float *
random_floats (size_t n, unsigned seed)
{
  float *d = malloc (n * sizeof *d);
  for (size_t i = 0; d && i < n; i++)
    {
      seed = seed * 1664525u + 1013904223u;
      d[i] = (float) (seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
  return d;
}

/* times one MMDiT forward of batch B at latent H×W: median of n_runs after n_warm */
static void
time_mmdit (const char *label, struct mmdit *m, int B, int H, int W, int n_ctx, int n_warm,
            int n_runs)
{
  const struct mmdit_config *cfg = mmdit_get_config (m);
  size_t            nx = (size_t) B * cfg->in_channels * H * W;
  float            *x = random_floats (nx, 1), *v = malloc (nx * sizeof *v);
  float            *ctx = random_floats ((size_t) B * n_ctx * cfg->context_dim, 2);
  float            *y = random_floats ((size_t) B * cfg->adm_in_channels, 3);
  float             sigma[2] = { 0.7f, 0.7f };
  double            t[16];
  struct sd35_error err = { 0 };

  for (int i = 0; i < n_warm + n_runs && i < 16; i++)
    {
      double t0 = now_ms ();
      if (mmdit_forward (m, x, sigma, ctx, y, B, H, W, n_ctx, NULL, 0, NULL, v, &err) != SD35_OK)
        {
          printf ("%-44s failed: %s\n", label, err.message);
          goto out;
        }
      if (i >= n_warm)
        t[i - n_warm] = now_ms () - t0;
    }
  qsort (t, (size_t) n_runs, sizeof t[0], cmp_double);
  printf ("%-44s %10.1f ms  (%s of %d)\n", label, t[n_runs / 2], n_runs > 1 ? "median" : "one",
          n_runs);
out:
  free (x); free (v); free (ctx); free (y);
}

static void
time_vae (const char *label, struct vae *v, int h, int w, int n_warm, int n_runs)
{
  float            *z = random_floats ((size_t) 16 * h * w, 4);
  float            *img = malloc ((size_t) 3 * 64 * h * w * sizeof *img);
  double            t[16];
  struct sd35_error err = { 0 };

  for (int i = 0; i < n_warm + n_runs && i < 16; i++)
    {
      double t0 = now_ms ();
      if (vae_decode (v, z, h, w, img, &err) != SD35_OK)
        {
          printf ("%-44s failed: %s\n", label, err.message);
          goto out;
        }
      if (i >= n_warm)
        t[i - n_warm] = now_ms () - t0;
    }
  qsort (t, (size_t) n_runs, sizeof t[0], cmp_double);
  printf ("%-44s %10.1f ms  (%s of %d)\n", label, t[n_runs / 2], n_runs > 1 ? "median" : "one",
          n_runs);
out:
  free (z);
  free (img);
}

static void
bench_tiny (struct backend *be)
{
  static const char *const models[2] = { "sd3.5_tiny_large", "sd3.5_tiny_medium" };
  struct sd35_error        err = { 0 };
  char                     path[1024], label[128];

  if (test_shared_dir () == NULL)
    {
      printf ("tiny: ../shared not found (set SD35_SHARED_DIR); skipped\n");
      return;
    }
  for (int k = 0; k < 2; k++)
    {
      struct st_file *f = NULL;
      struct mmdit   *m = NULL;
      struct vae     *v = NULL;

      snprintf (path, sizeof path, "%s/golden/models/%s.safetensors", test_shared_dir (),
                models[k]);
      if (st_open (path, &f, &err) != SD35_OK)
        {
          printf ("tiny: %s\n", err.message);
          return;
        }
      if (mmdit_load (be, f, "model.diffusion_model.", &m, &err) == SD35_OK)
        {
          snprintf (label, sizeof label, "MMDiT %s, latent 16x16, B=2", models[k] + 6);
          time_mmdit (label, m, 2, 16, 16, 154, 1, 5);
        }
      if (k == 0 && vae_load (be, f, "first_stage_model.", 0, &v, &err) == SD35_OK)
        time_vae ("VAE decode tiny (ch 32), latent 16x16", v, 16, 16, 1, 5);
      if (err.status != SD35_OK)
        printf ("tiny: %s\n", err.message);
      mmdit_free (m);
      vae_free (v);
      st_close (f);
    }
}

static void
bench_medium (struct backend *be)
{
  struct mmdit_config cfg = { 0 };
  struct mmdit       *m = NULL;
  struct sd35_error   err = { 0 };

  cfg.depth = 24;
  cfg.hidden_size = 64 * 24;
  cfg.num_heads = 24;
  cfg.patch_size = 2;
  cfg.in_channels = 16;
  cfg.pos_embed_max_size = 96;  /* the release has 384; only the 32×32 crop is used here */
  cfg.adm_in_channels = 2048;
  cfg.context_dim = 4096;
  cfg.qk_norm = 1;
  for (int i = 0; i <= 12; i++)
    cfg.attn2[i] = 1;
  if (mmdit_new_random (be, &cfg, 42, &m, &err) != SD35_OK)
    {
      printf ("medium: %s\n", err.message);
      return;
    }
  time_mmdit ("MMDiT Medium-shaped (random), 512², B=1", m, 1, 64, 64, 77 + 256, 0, 1);
  mmdit_free (m);
}

static void
bench_vae512 (struct backend *be)
{
  struct vae_config cfg;
  struct vae       *v = NULL;
  struct sd35_error err = { 0 };

  vae_config_sd3 (&cfg, 0);
  if (vae_new_random (be, &cfg, 42, &v, &err) != SD35_OK)
    {
      printf ("vae512: %s\n", err.message);
      return;
    }
  time_vae ("VAE decode real size (random), 512²", v, 64, 64, 0, 1);
  vae_free (v);
}

int
main (int argc, char **argv)
{
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  int               threads = 0, any = 0, tiny = 0, medium = 0, vae512 = 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--threads") == 0 && i + 1 < argc)
        threads = atoi (argv[++i]);
      else if (strcmp (argv[i], "tiny") == 0)
        tiny = any = 1;
      else if (strcmp (argv[i], "medium") == 0)
        medium = any = 1;
      else if (strcmp (argv[i], "vae512") == 0)
        vae512 = any = 1;
      else
        {
          fprintf (stderr, "usage: %s [tiny] [medium] [vae512] [--threads N]\n", argv[0]);
          return 2;
        }
    }
  if (!any)
    tiny = medium = vae512 = 1;
  if (backend_cpu_new (threads, &be, &err) != SD35_OK)
    {
      printf ("CPU backend: %s\n", err.message);
      return 1;
    }
  printf ("CPU backend, --threads %d (0 = all cores)\n", threads);
  if (tiny)
    bench_tiny (be);
  if (medium)
    bench_medium (be);
  if (vae512)
    bench_vae512 (be);
  backend_free (be);
  return 0;
}
