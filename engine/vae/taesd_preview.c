/* taesd_preview.c — the TAESD step preview of the pipeline: finding taesd3_decoder next to
 * the model (ComfyUI keeps it in models/vae_approx/), deciding when it is worth decoding, and
 * decoding the x0 estimate of a step into a full-resolution RGB preview.
 *
 * The rule (taesd_preview_worth): TAESD costs ~17.3 M multiply-adds per latent position
 * (0.28 TMAC at 1024², README §2).  On CUDA that is a few ms: every step.  On the CPU it is
 * seconds, so it runs only where it stays small — a latent of ≤ 64×64 positions (≤ 512² px,
 * ≤ 71 GMAC) — or small against the step itself: an MMDiT forward costs ≈ 12·D²·depth MACs
 * per 2×2-patch token, i.e. 3·D²·depth per latent position (qkv, proj and the 4× MLP; the
 * context stream and attention only add to it), and TAESD is used when that is ≥ 16× its
 * cost (SD3.5 Large: 3·2432²·38 ≈ 674 M, 39×; Medium: 170 M, 9.8× → projection above 512²).
 * Both costs grow with the latent area, so the decision holds for a whole generation and the
 * preview size never changes between steps.  Otherwise the latent→RGB projection
 * (sd35_latent_preview) is the preview, as without a TAESD file. */
#include "taesd.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

static char *
existing (const char *a, const char *b, const char *c)
{
  char *p = g_build_filename (a, b, c, NULL);
  char *r = NULL;

  if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
    r = strdup (p);
  g_free (p);
  return r;
}

char *
taesd_find (const char *option, const char *mmdit_path, int *explicit_)
{
  const char *env = getenv ("SD35_TAESD");
  char       *dir, *r;

  *explicit_ = 0;
  if (option != NULL || env != NULL)
    {
      const char *p = option != NULL ? option : env;
      *explicit_ = 1;
      return p[0] != '\0' ? strdup (p) : NULL;  /* "" = no TAESD */
    }
  if (mmdit_path == NULL)
    return NULL;
  dir = g_path_get_dirname (mmdit_path);
  r = existing (dir, TAESD_FILE_NAME, NULL);
  if (r == NULL)
    r = existing (dir, "vae_approx", TAESD_FILE_NAME);
  if (r == NULL)
    r = existing (dir, "../vae_approx", TAESD_FILE_NAME);  /* models/checkpoints/<model> */
  g_free (dir);
  return r;
}

int
taesd_preview_worth (int on_device, int h, int w, int mmdit_hidden,
                     int mmdit_depth)
{
  double mmdit_per_pos = 3.0 * mmdit_hidden * (double) mmdit_hidden * mmdit_depth;

  if (h <= 0 || w <= 0)
    return 0;
  if (on_device)
    return 1;
  if ((double) h * w <= TAESD_CPU_MAX_POS)
    return 1;
  return 16.0 * TAESD_MACS_PER_POS <= mmdit_per_pos;
}

enum sd35_status
engine_taesd_open (struct sd35_engine *e, const char *option, struct sd35_error *err)
{
  int   explicit_;
  char *path = taesd_find (option, e->files.mmdit, &explicit_);

  if (path == NULL)
    {
      sd35_log ("no TAESD decoder (%s): step previews are the latent projection",
                explicit_ ? "turned off" : TAESD_FILE_NAME " not found beside the model or "
                "in vae_approx/");
      return SD35_OK;
    }
  if (taesd_open (e->be, path, &e->taesd, err) != SD35_OK)
    {
      if (explicit_)
        {
          free (path);
          return err->status;
        }
      /* only found by looking around: a broken preview file must not stop the model */
      sd35_notice ("TAESD previews off: %s", err->message);
      sd35_error_clear (err);
      if (e->be->err.status == SD35_ERR_OOM)
        sd35_error_clear (&e->be->err);
    }
  free (path);
  return backend_check (e->be, err);
}

int
engine_taesd_preview (struct sd35_engine *e, const float *x0, int h, int w,
                      const uint8_t **rgb, int *pw, int *ph)
{
  const struct mmdit_config *c = mmdit_get_config (e->mmdit);
  struct sd35_error          err = { 0 };
  size_t                     n_pix;
  float                     *image;
  uint8_t                   *out;

  if (e->taesd == NULL || backend_failed (e->be) ||
      !taesd_preview_worth (e->be->device_memory, h, w, c->hidden_size, c->depth))
    return 0;
  n_pix = (size_t) 64 * (size_t) h * (size_t) w;  /* h, w ≤ the latent of a valid image */
  if (n_pix != e->taesd_n_pix)
    {
      free (e->taesd_rgb);
      e->taesd_rgb = NULL;
      e->taesd_n_pix = 0;
    }
  if (e->taesd_rgb == NULL &&
      (e->taesd_rgb = sd35_malloc (3 * n_pix, "the TAESD preview", &err)) == NULL)
    return 0;
  e->taesd_n_pix = n_pix;
  out = e->taesd_rgb;
  image = sd35_malloc (3 * n_pix * sizeof *image, "the TAESD preview", &err);
  if (image == NULL || taesd_decode (e->taesd, x0, h, w, image, &err) != SD35_OK)
    {
      free (image);
      if (err.status == SD35_ERR_OOM)
        {
          /* no room for the preview next to the model: drop TAESD, keep generating */
          sd35_notice ("TAESD previews off for this session: %s", err.message);
          if (e->be->err.status == SD35_ERR_OOM)
            sd35_error_clear (&e->be->err);
          taesd_free (e->taesd);
          e->taesd = NULL;
          e->info.taesd_path = NULL;
        }
      /* any other failure stays in the backend's sticky error and ends the generation */
      return 0;
    }
  taesd_image_to_u8 (image, 8 * h, 8 * w, out);
  free (image);
  *rgb = out;
  *pw = 8 * w;
  *ph = 8 * h;
  return 1;
}
