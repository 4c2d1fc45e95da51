/* cmd_taesd.c — `sd35 taesd-decode`: the TAESD3 preview decoder alone on a latent from a
 * safetensors file (what a step preview shows, e.g. for a `txt2img --tensors-out` x0).
 *   in:  <tensor> [1,16,h,w] or [16,h,w], model space (the sampler's x0) unless --vae-space
 *        (then (l − 0.0609)·1.5305 first, ComfyUI's VAELoader.load_taesd).
 *   out: a .png (8w × 8h, ComfyUI preview_to_image truncation), or any other name: a
 *        safetensors with decoded [1,3,8h,8w] F32 and rgb_u8 [8h,8w,3] U8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "image_png.h"
#include "safetensors.h"
#include "stage_util.h"
#include "taesd.h"
#include "vae.h"

static int
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), k = strlen (suffix);
  return n >= k && strcmp (s + n - k, suffix) == 0;
}

static int
write_out (struct stage *st, const char *out, const float *image, const uint8_t *rgb,
           int64_t H, int64_t W)
{
  const int64_t     is[4] = { 1, 3, H, W }, us[3] = { H, W, 3 };
  struct st_writer *w;
  int               bad;

  if (ends_with (out, ".png") || ends_with (out, ".PNG"))
    {
      if (png_write_rgb (out, rgb, (int) W, (int) H, &st->err) != SD35_OK)
        return cli_fail_err (st->cmd, &st->err);
      return 0;
    }
  w = st_writer_new ();
  bad = st_writer_add_f32 (w, "decoded", 4, is, image) != 0
        || st_writer_add (w, "rgb_u8", SD35_U8, 3, us, rgb) != 0;
  return cli_save (st->cmd, w, bad, out);
}

int
cmd_taesd_decode (int argc, char **argv)
{
  const char       *cmd = "taesd-decode";
  const char       *taesd = NULL, *in = NULL, *out = NULL, *backend = NULL, *name = "latent";
  int               threads = 0, verbose = 0, vae_space = 0, status = 1, ex;
  const struct cli_opt opts[] = {
    { "taesd", CLI_STR, &taesd, "taesd3_decoder.safetensors (default: $SD35_TAESD)", NULL },
    { "in", CLI_STR, &in, "input .safetensors with a latent [1,16,h,w] or [16,h,w]", NULL },
    { "tensor", CLI_STR, &name, "name of the latent in --in (default: latent)", NULL },
    { "vae-space", CLI_FLAG, &vae_space, "the latent is VAE space (after process_out, e.g. "
      "final_latent); default: model space (the sampler's x0)", NULL },
    { "out", CLI_STR, &out, "output .png, or .safetensors (decoded F32, rgb_u8 U8)", NULL },
    { "backend", CLI_STR, &backend, "auto (default), cpu or cuda", NULL },
    { "threads", CLI_INT, &threads, "CPU threads (default: all cores)", NULL },
    { "verbose", CLI_FLAG, &verbose, "log loading details", NULL },
  };
  struct stage            st = { 0 };
  struct taesd           *t = NULL;
  const struct st_tensor *lt;
  char                   *path = NULL;
  float                  *latent = NULL, *image = NULL;
  uint8_t                *rgb = NULL;
  int64_t                 ls[4] = { 1, 16, -1, -1 };
  int                     nd;
  size_t                  n;
  int r = cli_parse (argc, argv, cmd, "TAESD3 preview decode of one SD3 latent to an image.",
                     opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  path = taesd_find (taesd, NULL, &ex);
  if (path == NULL || in == NULL || out == NULL)
    {
      free (path);
      cli_fail (cmd, "--taesd (or $SD35_TAESD), --in and --out are required (see --help)");
      return 2;
    }
  if (stage_open (&st, cmd, path, in, backend, threads, verbose) != 0)
    goto done;
  if (taesd_open (st.be, path, &t, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  lt = st_find (st.in, name);
  nd = lt != NULL && lt->ndim == 3 ? 3 : 4;
  latent = stage_read (&st, name, nd, nd == 3 ? ls + 1 : ls);
  if (latent == NULL)
    goto done;
  if (ls[2] > 65536 || ls[3] > 65536)
    {
      cli_fail (cmd, "latent %s is %lld×%lld: too large for a preview", name,
                (long long) ls[2], (long long) ls[3]);
      goto done;
    }
  n = (size_t) 3 * 64 * (size_t) ls[2] * (size_t) ls[3];
  if (vae_space)
    latent_process_in (latent, (size_t) 16 * ls[2] * ls[3]);
  image = sd35_malloc (n * sizeof *image, "the image", &st.err);
  rgb = sd35_malloc (n, "the 8-bit image", &st.err);
  if (image == NULL || rgb == NULL
      || taesd_decode (t, latent, (int) ls[2], (int) ls[3], image, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  taesd_image_to_u8 (image, (int) (8 * ls[2]), (int) (8 * ls[3]), rgb);
  status = write_out (&st, out, image, rgb, 8 * ls[2], 8 * ls[3]);

done:
  free (latent);
  free (image);
  free (rgb);
  taesd_free (t);
  stage_close (&st);
  free (path);
  return status;
}
