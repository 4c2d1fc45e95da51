/* test_vae_tiled.c — tiled VAE decode (vae_tiled.c) against the full decode, CPU backend,
 * the goldens' tiny VAE (sd3.5_tiny_large.safetensors, first_stage_model.*) and a seeded
 * N(0, 1) latent:
 *   - tiles of 32×32 latent pixels overlapping by 8 on a 56×56 latent (2×2 tiles; the same
 *     code and geometry as the engine's 64/16 tiles, at a quarter of the side so the test
 *     stays cheap under ASan on a loaded machine): max|Δ| to the full decode within the bound
 *     below (not exact: a tile's group norms and mid attention do not see the whole latent);
 *   - seams: near every tile border the column/row steps of Δ = tiled − full are no larger
 *     than away from the borders (a linear blend keeps Δ continuous);
 *   - the same check flags the seams of tiles that only touch (overlap 0), so it can fail;
 *   - vae_decode_auto with tiling −1 is the full decode bit for bit; in auto mode a full
 *     decode that runs out of memory (test hook: struct cpu_backend.fail_alloc_at) is
 *     retried in tiles, with tiling −1 the error is returned. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "ops.h"
#include "rng.h"
#include "safetensors.h"
#include "testutil.h"
#include "vae.h"

/* Bound on max|tiled − full| / max|full| for the 32/8 tiles: measured 0.113 (max|Δ| 0.2205,
 * max|full| 1.95) with this VAE and latent (the engine's 64/16 tiles on a 112² latent: 0.0595;
 * smaller tiles see less of the latent); the tiny random VAE is much less smooth than the
 * real one, so this says "close", not "the real model's error". */
#define TILED_REL_BOUND 0.15

/* A seam is a jump in what the tiles get wrong: m_c(i) = mean of Δ = tiled − full over the
 * other axis, per channel (pixel noise averages out, a tile's offset does not); step(i) =
 * max_c |m_c(i) − m_c(i − 1)|.  Returns the largest step within 4 pixels of a tile border
 * (a tile's zero-padded edge spreads a hard seam over a few pixels) over the largest step
 * 16 or more pixels away from every border. */
static double
seam_ratio (const float *d, int H, int W, int cols, const int *borders, int n_borders)
{
  int    n = cols ? W : H, m = cols ? H : W;
  double max_b = 0.0, max_o = 0.0, prev[3] = { 0 };

  for (int i = 0; i < n; i++)
    {
      double step = 0.0;
      int    dist = n;

      for (int c = 0; c < 3; c++)
        {
          double mean = 0.0;
          for (int j = 0; j < m; j++)
            mean += d[cols ? ((size_t) c * H + j) * W + i : ((size_t) c * H + i) * W + j];
          mean /= m;
          if (i > 0 && fabs (mean - prev[c]) > step)
            step = fabs (mean - prev[c]);
          prev[c] = mean;
        }
      if (i == 0)
        continue;
      for (int k = 0; k < n_borders; k++)
        dist = abs (i - borders[k]) < dist ? abs (i - borders[k]) : dist;
      if (dist <= 4 && step > max_b)
        max_b = step;
      else if (dist >= 16 && step > max_o)
        max_o = step;
    }
  return max_o > 0.0 ? max_b / max_o : 1e9;
}

static void
check_tiles (struct vae *v, const float *lat, int h, const float *full, int tile, int overlap,
             int expect_seams)
{
  const int         f = vae_factor (v), H = h * f;
  const size_t      n = (size_t) 3 * H * H;
  float            *img = malloc (n * sizeof *img), *d = malloc (n * sizeof *d);
  struct sd35_error err = { 0 };
  double            max_d = 0.0, max_ref = 0.0, rc, rr;
  int               borders[4], nb = 0;

  /* 2 tiles per axis: starts 0 and h − tile; borders = both ends of the overlap */
  borders[nb++] = f * (h - tile);
  borders[nb++] = f * tile;
  if (!test_check (img && d && vae_decode_tiled (v, lat, h, h, tile, overlap, img, &err)
                   == SD35_OK, "tiled decode %d/%d: %s", tile, overlap, err.message))
    goto done;
  for (size_t i = 0; i < n; i++)
    {
      d[i] = img[i] - full[i];
      max_d = fabs (d[i]) > max_d ? fabs (d[i]) : max_d;
      max_ref = fabs (full[i]) > max_ref ? fabs (full[i]) : max_ref;
    }
  rc = seam_ratio (d, H, H, 1, borders, nb);
  rr = seam_ratio (d, H, H, 0, borders, nb);
  printf ("tiles %d, overlap %d on a %d×%d latent: max|Δ| %.4g (max|full| %.4g, ratio %.4g); "
          "steps of Δ near tile borders / away from them: columns %.3g, rows %.3g\n", tile,
          overlap, h, h, max_d, max_ref, max_d / max_ref, rc, rr);
  if (expect_seams)
    test_check (rc > 2.0 && rr > 2.0, "touching tiles (overlap 0) show seams the check sees "
                "(steps near borders %.3g, %.3g × those away)", rc, rr);
  else
    {
      test_check (max_d <= TILED_REL_BOUND * max_ref, "tiled max|Δ| %.4g ≤ %.2g·max|full| "
                  "(%.4g)", max_d, TILED_REL_BOUND, TILED_REL_BOUND * max_ref);
      test_check (rc <= 1.0 && rr <= 1.0, "no seam: steps of Δ near tile borders ≤ those away "
                  "from them (%.3g, %.3g)", rc, rr);
    }
done:
  free (img);
  free (d);
}

int
main (void)
{
  char              *path = test_shared_path_or_skip ("golden/models/sd3.5_tiny_large.safetensors");
  struct sd35_error  err = { 0 };
  struct backend    *be = NULL;
  struct st_file    *file = NULL;
  struct vae        *v = NULL;
  struct torch_rng  *g;
  const int          h = 56;   /* 2·32 − 8: 2×2 tiles of 32 overlapping by exactly 8 */
  float             *lat = NULL, *full = NULL, *img = NULL;
  size_t             n_img;

  if (!test_check (backend_cpu_new (2, &be, &err) == SD35_OK, "cpu backend: %s", err.message)
      || !test_check (st_open (path, &file, &err) == SD35_OK, "open %s: %s", path, err.message)
      || !test_check (vae_load (be, file, "first_stage_model.", 0, &v, &err) == SD35_OK,
                      "load VAE: %s", err.message))
    goto done;
  n_img = (size_t) 3 * h * vae_factor (v) * h * vae_factor (v);
  lat = malloc ((size_t) 16 * h * h * sizeof *lat);
  full = malloc (n_img * sizeof *full);
  img = malloc (n_img * sizeof *img);
  g = torch_rng_new (42);
  if (!test_check (lat && full && img && g, "out of memory"))
    goto done;
  torch_randn (g, lat, (size_t) 16 * h * h);
  torch_rng_free (g);
  if (!test_check (vae_decode (v, lat, h, h, full, &err) == SD35_OK, "full decode: %s",
                   err.message))
    goto done;

  check_tiles (v, lat, h, full, 32, 8, 0);
  /* a 48×48 latent (the first values of the same noise) in two touching 24-tiles per axis */
  if (test_check (vae_decode (v, lat, 48, 48, img, &err) == SD35_OK, "full decode 48: %s",
                  err.message))
    check_tiles (v, lat, 48, img, 24, 0, 1);
  if (test_check (vae_decode (v, lat, 32, 32, img, &err) == SD35_OK, "full decode 32: %s",
                  err.message))
    (void) 0;

  /* vae_decode_auto: never = the full decode exactly */
  if (test_check (vae_decode_auto (v, lat, 32, 32, -1, full, &err) == SD35_OK, "auto -1: %s",
                  err.message))
    test_check (memcmp (img, full, (size_t) 3 * 256 * 256 * sizeof *img) == 0,
                "tiling −1 is the full decode");
  test_check (vae_decode_act_bytes (v, h, h) > (size_t) 32 * h * 8 * h * 8 * sizeof (float),
              "activation estimate %zu B covers at least one 32-channel full-size tensor",
              vae_decode_act_bytes (v, h, h));

  /* out of memory in the full decode of an 8×72 latent (over one tile, cheap) */
  {
    struct cpu_backend *cpu = be->impl;
    const size_t        n8 = (size_t) 3 * 64 * 576;
    float              *ref = malloc (n8 * sizeof *ref);

    if (test_check (ref != NULL && vae_decode_tiled (v, lat, 8, 72, 64, 16, ref, &err)
                    == SD35_OK, "tiled decode 8×72: %s", err.message))
      {
        cpu->fail_alloc_at = cpu->n_allocs + 3;
        test_check (vae_decode_auto (v, lat, 8, 72, 0, img, &err) == SD35_OK
                    && !backend_failed (be), "auto: out of memory in the full decode is retried in tiles (%s)",
                    err.message);
        test_check (memcmp (img, ref, n8 * sizeof *img) == 0, "the retry is the tiled decode");
        cpu->fail_alloc_at = cpu->n_allocs + 3;
        test_check (vae_decode_auto (v, lat, 8, 72, -1, img, &err) == SD35_ERR_OOM,
                    "tiling −1: the out-of-memory error is returned (%s)", err.message);
      }
    free (ref);
  }

done:
  free (lat);
  free (full);
  free (img);
  vae_free (v);
  st_close (file);
  backend_free (be);
  free (path);
  return test_exit ();
}
