/* cmd_vae.c — `sd35 vae-decode` and `sd35 vae-encode`: the SD3 VAE alone on tensors from a
 * safetensors file (sd3_infer.py SD3Inferencer.vae_decode / vae_encode, sd3_impls.py SDVAE).
 *   vae-decode: latent [1,16,h,w] (VAE space, after process_out) → image_float [1,3,8h,8w] F32
 *               and image_uint8 [8h,8w,3] U8 (uint8(255·clamp((x+1)/2, 0, 1)), truncating).
 *   vae-encode: image_uint8 [H,W,3] → mean, std, latent = mean + std·noise (noise =
 *               torch.manual_seed(vae_seed); randn [1,16,H/8,W/8]) and latent_process_in. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "rng.h"
#include "safetensors.h"
#include "stage_util.h"
#include "vae.h"

#define VAE_PREFIX "first_stage_model."
#define MAX_LATENT_SIDE 65536  /* as taesd-decode: keeps every size below in int and size_t */

int
cmd_vae_decode (int argc, char **argv)
{
  const char       *cmd = "vae-decode";
  const char       *model = NULL, *in = NULL, *out = NULL, *backend = NULL;
  int               threads = 0, verbose = 0, status = 1;
  const struct cli_opt opts[] = {
    { "model", CLI_STR, &model, "SD3.5 .safetensors file (VAE under first_stage_model.)", NULL },
    { "in", CLI_STR, &in, "input .safetensors with latent [1,16,h,w] (VAE space)", NULL },
    { "out", CLI_STR, &out, "output .safetensors (image_float F32, image_uint8 U8 HWC)", NULL },
    { "backend", CLI_STR, &backend, "auto (default), cpu or cuda", NULL },
    { "threads", CLI_INT, &threads, "CPU threads (default: all cores)", NULL },
    { "verbose", CLI_FLAG, &verbose, "log loading details", NULL },
  };
  struct stage      st = { 0 };
  struct vae       *v = NULL;
  struct st_writer *w = NULL;
  float            *latent = NULL, *image = NULL;
  uint8_t          *rgb = NULL;
  int64_t           ls[4] = { 1, 16, -1, -1 }, is[4], us[3];
  int               f, bad;
  size_t            n;
  int r = cli_parse (argc, argv, cmd, "SD3 VAE decode of one latent (VAE space) to an image.",
                     opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if ((r = stage_require (cmd, model, in, out)) != 0)
    return r;
  if (stage_open (&st, cmd, model, in, backend, threads, verbose) != 0)
    goto done;
  if (vae_load (st.be, st.model, VAE_PREFIX, 0, &v, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  ls[1] = vae_get_config (v)->z_channels;
  latent = stage_read (&st, "latent", 4, ls);
  if (latent == NULL)
    goto done;
  if (ls[2] > MAX_LATENT_SIDE || ls[3] > MAX_LATENT_SIDE)
    {
      cli_fail (cmd, "latent %lld×%lld (h×w) is too large to decode", (long long) ls[2],
                (long long) ls[3]);
      goto done;
    }
  f = vae_factor (v);
  is[0] = 1;
  is[1] = 3;
  is[2] = us[0] = ls[2] * f;
  is[3] = us[1] = ls[3] * f;
  us[2] = 3;
  n = (size_t) (3 * is[2] * is[3]);
  image = sd35_malloc (n * sizeof *image, "the image", &st.err);
  rgb = sd35_malloc (n, "the 8-bit image", &st.err);
  if (image == NULL || rgb == NULL
      || vae_decode (v, latent, (int) ls[2], (int) ls[3], image, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  vae_image_to_u8 (image, (int) is[2], (int) is[3], rgb);
  w = st_writer_new ();
  bad = st_writer_add_f32 (w, "image_float", 4, is, image) != 0
        || st_writer_add (w, "image_uint8", SD35_U8, 3, us, rgb) != 0;
  status = cli_save (cmd, w, bad, out);

done:
  free (latent);
  free (image);
  free (rgb);
  vae_free (v);
  stage_close (&st);
  return status;
}

int
cmd_vae_encode (int argc, char **argv)
{
  const char       *cmd = "vae-encode";
  const char       *model = NULL, *in = NULL, *out = NULL, *backend = NULL;
  int               threads = 0, verbose = 0, status = 1;
  uint64_t          vae_seed = 0;
  const struct cli_opt opts[] = {
    { "model", CLI_STR, &model, "SD3.5 .safetensors file (VAE under first_stage_model.)", NULL },
    { "in", CLI_STR, &in, "input .safetensors with image_uint8 [H,W,3] (U8)", NULL },
    { "out", CLI_STR, &out, "output .safetensors (mean, std, latent, latent_process_in)", NULL },
    { "vae-seed", CLI_U64, &vae_seed, "torch.manual_seed of the sampling noise (default 0)",
      NULL },
    { "backend", CLI_STR, &backend, "auto (default), cpu or cuda", NULL },
    { "threads", CLI_INT, &threads, "CPU threads (default: all cores)", NULL },
    { "verbose", CLI_FLAG, &verbose, "log loading details", NULL },
  };
  struct stage      st = { 0 };
  struct vae       *v = NULL;
  struct st_writer *w = NULL;
  struct torch_rng *g = NULL;
  int64_t          *pix = NULL;
  int64_t           ps[3] = { -1, -1, 3 }, ls[4];
  uint8_t          *rgb = NULL;
  float            *image = NULL, *mean = NULL, *std = NULL, *latent = NULL, *proc = NULL;
  size_t            n_pix, n;
  int               f, bad;
  char              seed_str[32];
  int r = cli_parse (argc, argv, cmd, "SD3 VAE encode of one RGB image to a sampled latent.",
                     opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if ((r = stage_require (cmd, model, in, out)) != 0)
    return r;
  if (stage_open (&st, cmd, model, in, backend, threads, verbose) != 0)
    goto done;
  if (vae_load (st.be, st.model, VAE_PREFIX, 1, &v, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  pix = stage_read_int (&st, "image_uint8", 3, ps);
  if (pix == NULL)
    goto done;
  f = vae_factor (v);
  if (ps[0] > (int64_t) f * MAX_LATENT_SIDE || ps[1] > (int64_t) f * MAX_LATENT_SIDE)
    {
      cli_fail (cmd, "image %lldx%lld (W×H) is too large to encode", (long long) ps[1],
                (long long) ps[0]);
      goto done;
    }
  if (ps[0] % f != 0 || ps[1] % f != 0)
    {
      cli_fail (cmd, "image %lldx%lld (W×H) is not a multiple of %d; resize or crop it first",
                (long long) ps[1], (long long) ps[0], f);
      goto done;
    }
  n_pix = (size_t) (ps[0] * ps[1] * 3);
  ls[0] = 1;
  ls[1] = vae_get_config (v)->z_channels;
  ls[2] = ps[0] / f;
  ls[3] = ps[1] / f;
  n = (size_t) (ls[1] * ls[2] * ls[3]);
  rgb = sd35_malloc (n_pix, "the image", &st.err);
  image = sd35_malloc (n_pix * sizeof *image, "the image", &st.err);
  mean = sd35_malloc (n * sizeof *mean, "the latent mean", &st.err);
  std = sd35_malloc (n * sizeof *std, "the latent std", &st.err);
  latent = sd35_malloc (n * sizeof *latent, "the latent", &st.err);
  proc = sd35_malloc (n * sizeof *proc, "the latent", &st.err);
  g = torch_rng_new (vae_seed);
  if (rgb == NULL || image == NULL || mean == NULL || std == NULL || latent == NULL
      || proc == NULL || g == NULL)
    {
      cli_fail (cmd, "out of memory for a %lldx%lld image", (long long) ps[1],
                (long long) ps[0]);
      goto done;
    }
  for (size_t i = 0; i < n_pix; i++)
    {
      if (pix[i] < 0 || pix[i] > 255)
        {
          cli_fail (cmd, "image_uint8 value %lld at %zu is not a byte", (long long) pix[i], i);
          goto done;
        }
      rgb[i] = (uint8_t) pix[i];
    }
  vae_u8_to_image (rgb, (int) ps[0], (int) ps[1], image);
  if (vae_encode (v, image, (int) ps[0], (int) ps[1], mean, std, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  /* SDVAE.encode: mean + std·randn_like(mean), the generator seeded just before */
  torch_randn (g, latent, n);
  for (size_t i = 0; i < n; i++)
    latent[i] = mean[i] + std[i] * latent[i];
  memcpy (proc, latent, n * sizeof *proc);
  latent_process_in (proc, n);
  w = st_writer_new ();
  snprintf (seed_str, sizeof seed_str, "%" PRIu64, vae_seed);
  st_writer_set_metadata (w, "vae_seed", seed_str);
  bad = st_writer_add_f32 (w, "mean", 4, ls, mean) != 0
        || st_writer_add_f32 (w, "std", 4, ls, std) != 0
        || st_writer_add_f32 (w, "latent", 4, ls, latent) != 0
        || st_writer_add_f32 (w, "latent_process_in", 4, ls, proc) != 0;
  status = cli_save (cmd, w, bad, out);

done:
  torch_rng_free (g);
  free (pix);
  free (rgb);
  free (image);
  free (mean);
  free (std);
  free (latent);
  free (proc);
  vae_free (v);
  stage_close (&st);
  return status;
}
