/* test_vae.c — the SD3 VAE against the reference (goldens vae_decode_16x16, vae_decode_10x14,
 * vae_encode: sd3_impls.py SDVAE and sd3_infer.py vae_decode/vae_encode in fp32 on the CPU):
 * image_float within 1e-4·max|ref|, image_uint8 within ±1, encoder mean/std/latent/
 * latent_process_in; each command once through the CLI; errors for bad sizes and a
 * mis-shaped weight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "testutil.h"
#include "vae.h"

#define MODEL  "golden/models/sd3.5_tiny_large.safetensors"
#define PREFIX "first_stage_model."
#define TOL    1e-4

static void
test_decode (struct vae *v, const char *file)
{
  struct st_file         *gf = test_open_golden (file);
  const struct st_tensor *lt = st_find (gf, "latent");
  struct sd35_error       err = { 0 };
  size_t                  n_img, n_u8;
  float                  *latent, *ref, *img;
  uint8_t                *ref_u8, *u8;
  int                     h, w;
  char                    what[128];

  if (!test_check (lt && lt->ndim == 4, "%s: latent [1,16,h,w]", file))
    exit (1);
  h = (int) lt->shape[2];
  w = (int) lt->shape[3];
  latent = test_golden_f32 (gf, "latent", NULL);
  ref = test_golden_f32 (gf, "image_float", &n_img);
  ref_u8 = test_golden_u8 (gf, "image_uint8", &n_u8);
  img = calloc (n_img, sizeof *img);
  u8 = calloc (n_u8, 1);
  if (test_check (n_img == (size_t) 3 * 64 * h * w, "%s: image is 8× the latent", file)
      && test_check (vae_decode (v, latent, h, w, img, &err) == SD35_OK, "%s: decode: %s",
                     file, err.message))
    {
      snprintf (what, sizeof what, "%s image_float", strrchr (file, '/') + 1);
      test_close (what, img, ref, n_img, TOL);
      vae_image_to_u8 (img, 8 * h, 8 * w, u8);
      snprintf (what, sizeof what, "%s image_uint8", strrchr (file, '/') + 1);
      test_within_u8 (what, u8, ref_u8, n_u8, 1);
      /* the conversion alone, from the reference's floats: exact */
      vae_image_to_u8 (ref, 8 * h, 8 * w, u8);
      test_within_u8 ("vae_image_to_u8 (reference floats)", u8, ref_u8, n_u8, 0);
    }
  free (latent); free (ref); free (img); free (ref_u8); free (u8);
  st_close (gf);
}

static void
test_encode (struct vae *v)
{
  struct st_file   *gf = test_open_golden ("golden/vae_encode.safetensors");
  struct sd35_error err = { 0 };
  size_t            n_pix, n;
  uint8_t          *rgb = test_golden_u8 (gf, "image_uint8", &n_pix);
  float            *image_in = test_golden_f32 (gf, "image_in", NULL);
  float            *mean_ref = test_golden_f32 (gf, "mean", &n);
  float            *std_ref = test_golden_f32 (gf, "std", NULL);
  float            *noise_ref = test_golden_f32 (gf, "noise", NULL);
  float            *lat_ref = test_golden_f32 (gf, "latent", NULL);
  float            *proc_ref = test_golden_f32 (gf, "latent_process_in", NULL);
  float            *image = calloc (n_pix, sizeof *image);
  float            *mean = calloc (n, sizeof *mean), *std = calloc (n, sizeof *std);
  float            *noise = calloc (n, sizeof *noise), *lat = calloc (n, sizeof *lat);
  struct torch_rng *g = torch_rng_new (777);  /* manifest: vae_seed 777 */
  const int         H = 96, W = 128;

  vae_u8_to_image (rgb, H, W, image);
  test_close ("vae_u8_to_image vs image_in", image, image_in, n_pix, 1e-7);
  if (test_check (vae_encode (v, image, H, W, mean, std, &err) == SD35_OK, "encode: %s",
                  err.message))
    {
      test_close ("vae_encode mean", mean, mean_ref, n, TOL);
      test_close ("vae_encode std", std, std_ref, n, TOL);
      torch_randn (g, noise, n);
      test_close ("noise = randn after manual_seed(777)", noise, noise_ref, n, 1e-7);
      for (size_t i = 0; i < n; i++)
        lat[i] = mean[i] + std[i] * noise[i];
      test_close ("latent = mean + std·noise", lat, lat_ref, n, TOL);
      latent_process_in (lat, n);
      test_close ("latent_process_in", lat, proc_ref, n, TOL);
      /* process_out undoes process_in */
      latent_process_out (lat, n);
      test_close ("latent_process_out ∘ process_in", lat, lat_ref, n, 1e-6);
    }
  memset (&err, 0, sizeof err);
  test_check (vae_encode (v, image, 90, 128, mean, std, &err) == SD35_ERR_ARG
              && strstr (err.message, "multiple of 8"),
              "image height 90 → SD35_ERR_ARG (%s)", err.message);
  torch_rng_free (g);
  free (rgb); free (image_in); free (mean_ref); free (std_ref); free (noise_ref); free (lat_ref);
  free (proc_ref); free (image); free (mean); free (std); free (noise); free (lat);
  st_close (gf);
}

/* The VAE of the tiny model with one conv of the wrong shape: the error names it. */
static void
test_bad_shape (struct backend *be, struct st_file *mf, const char *tmpdir)
{
  static const char *bad = PREFIX "decoder.up.1.block.2.conv1.weight";
  struct st_writer  *w = st_writer_new ();
  struct st_file    *bf = NULL;
  struct sd35_error  err = { 0 };
  struct vae        *v = NULL;
  char               path[512];
  enum sd35_status   st;

  snprintf (path, sizeof path, "%s/bad_vae.safetensors", tmpdir);
  for (size_t i = 0; i < st_count (mf); i++)
    {
      const struct st_tensor *t = st_at (mf, i);
      int64_t shape[ST_MAX_DIMS];
      if (strncmp (t->name, PREFIX, strlen (PREFIX)) != 0)
        continue;
      memcpy (shape, t->shape, sizeof shape);
      if (strcmp (t->name, bad) == 0)
        shape[3] = 2;  /* [32, 32, 3, 2] where [32, 32, 3, 3] is expected */
      st_writer_add (w, t->name, t->dtype, t->ndim, shape, t->data);
    }
  st = st_writer_save (w, path, &err);
  st_writer_free (w);
  if (test_check (st == SD35_OK, "write %s: %s", path, err.message)
      && test_check (st_open (path, &bf, &err) == SD35_OK, "open: %s", err.message))
    {
      st = vae_load (be, bf, PREFIX, 0, &v, &err);
      test_check (st != SD35_OK && strstr (err.message, "decoder.up.1.block.2.conv1.weight")
                  && strstr (err.message, "[32, 32, 3, 2]") && strstr (err.message, "[32, 32, 3, 3]"),
                  "mis-shaped %s → error naming it, expected and found (%d: %s)", bad, st,
                  err.message);
      /* and a file without any VAE */
      vae_free (v);
      v = NULL;
      memset (&err, 0, sizeof err);
      st = vae_load (be, bf, "no_such_prefix.", 0, &v, &err);
      test_check (st == SD35_ERR_MISSING && strstr (err.message, "first_stage_model"),
                  "no VAE under the prefix → SD35_ERR_MISSING (%s)", err.message);
    }
  vae_free (v);
  st_close (bf);
  unlink (path);
}

static void
test_cli (const char *tmpdir)
{
  const char       *cli = getenv ("SD35_CLI");
  char             *model = test_shared_path_or_skip (MODEL);
  char             *dec_in = test_shared_path_or_skip ("golden/vae_decode_10x14.safetensors");
  char             *enc_in = test_shared_path_or_skip ("golden/vae_encode.safetensors");
  char              cmd[2048], out[512];
  struct sd35_error err = { 0 };
  struct st_file   *of = NULL, *gf;
  int               rc;
  static const char *const enc_names[] = { "mean", "std", "latent", "latent_process_in" };

  if (cli == NULL)
    {
      printf ("SKIP cli: $SD35_CLI not set\n");
      goto out;
    }
  snprintf (out, sizeof out, "%s/dec.safetensors", tmpdir);
  snprintf (cmd, sizeof cmd, "'%s' vae-decode --model '%s' --in '%s' --out '%s' --backend cpu",
            cli, model, dec_in, out);
  rc = system (cmd);
  if (test_check (rc == 0, "cli: %s → exit %d", cmd, rc)
      && test_check (st_open (out, &of, &err) == SD35_OK, "cli output: %s", err.message))
    {
      size_t   n, n_ref, n8, n8_ref;
      float   *got = test_golden_f32 (of, "image_float", &n);
      uint8_t *u8, *u8_ref;
      gf = test_open_golden ("golden/vae_decode_10x14.safetensors");
      float   *ref = test_golden_f32 (gf, "image_float", &n_ref);
      u8 = test_golden_u8 (of, "image_uint8", &n8);
      u8_ref = test_golden_u8 (gf, "image_uint8", &n8_ref);
      if (test_check (n == n_ref && n8 == n8_ref, "cli vae-decode sizes"))
        {
          test_close ("cli vae-decode image_float", got, ref, n, TOL);
          test_within_u8 ("cli vae-decode image_uint8", u8, u8_ref, n8, 1);
        }
      free (got); free (ref); free (u8); free (u8_ref);
      st_close (gf);
    }
  st_close (of);
  of = NULL;
  unlink (out);

  snprintf (out, sizeof out, "%s/enc.safetensors", tmpdir);
  snprintf (cmd, sizeof cmd, "'%s' vae-encode --model '%s' --in '%s' --out '%s' --vae-seed 777 "
            "--backend cpu", cli, model, enc_in, out);
  rc = system (cmd);
  if (test_check (rc == 0, "cli: %s → exit %d", cmd, rc)
      && test_check (st_open (out, &of, &err) == SD35_OK, "cli output: %s", err.message))
    {
      gf = test_open_golden ("golden/vae_encode.safetensors");
      for (int k = 0; k < 4; k++)
        {
          size_t n, n_ref;
          float *got = test_golden_f32 (of, enc_names[k], &n);
          float *ref = test_golden_f32 (gf, enc_names[k], &n_ref);
          char   what[64];
          snprintf (what, sizeof what, "cli vae-encode %s", enc_names[k]);
          if (test_check (n == n_ref, "%s: %zu values", what, n))
            test_close (what, got, ref, n, TOL);
          free (got);
          free (ref);
        }
      st_close (gf);
    }
  st_close (of);
  unlink (out);
out:
  free (model);
  free (dec_in);
  free (enc_in);
}

int
main (void)
{
  char             *model = test_shared_path_or_skip (MODEL);
  struct backend   *be = NULL;
  struct st_file   *mf = NULL;
  struct vae       *v = NULL;
  struct sd35_error err = { 0 };
  char             *tmpdir;

  if (backend_cpu_new (0, &be, &err) != SD35_OK || st_open (model, &mf, &err) != SD35_OK)
    {
      printf ("FAIL: setup: %s\n", err.message);
      return 1;
    }
  free (model);
  tmpdir = test_make_tmpdir ("vae");
  if (test_check (vae_load (be, mf, PREFIX, 1, &v, &err) == SD35_OK, "load: %s", err.message))
    {
      const struct vae_config *cfg = vae_get_config (v);
      test_check (cfg->z_channels == 16 && cfg->decoder.n_levels == 4
                  && cfg->decoder.n_blocks == 3 && cfg->encoder.n_blocks == 2
                  && cfg->decoder.width[0] == 32 && cfg->decoder.width[3] == 64
                  && vae_factor (v) == 8,
                  "config from the weights: z 16, 4 levels, widths 32..64, 3/2 res blocks");
      test_decode (v, "golden/vae_decode_16x16.safetensors");
      test_decode (v, "golden/vae_decode_10x14.safetensors");
      test_encode (v);
    }
  vae_free (v);
  test_bad_shape (be, mf, tmpdir);
  test_cli (tmpdir);
  st_close (mf);
  backend_free (be);
  test_remove_tree (tmpdir);
  free (tmpdir);
  return test_exit ();
}
