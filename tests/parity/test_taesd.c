/* test_taesd.c — the TAESD3 preview decoder (engine/taesd.c) against the taesd.py reference
 * (../shared/taesd/golden_taesd3.safetensors, fp32 CPU torch): for every case `decoded`
 * max|Δ| ≤ 1e-3 and `rgb_u8` (ComfyUI mainline, truncation) within ±1; every Sequential
 * layer of the debug case (dbg_NN_*); the diffusers key layout; errors for a missing tensor
 * and a non-TAESD file; discovery (taesd_find) and the CPU cost rule; `sd35 taesd-decode`
 * (safetensors, --vae-space, PNG); the CUDA backend when present (loose bf16 bar); and the
 * pipeline: sd35_generate's on_step preview is the full-size TAESD decode of the step's x0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_png.h"
#include "taesd.h"
#include "testutil.h"
#include "vae.h"

#define DECODED_TOL 1e-3  /* absolute, README §5 "suggested bar" for fp32 compute */

static struct backend *be;
static char           *tmp_root;

static double
max_abs (const float *v, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = fabsf (v[i]) > m ? fabsf (v[i]) : m;
  return m;
}

/* test_close with an absolute tolerance */
static void
close_abs (const char *what, const float *got, const float *ref, size_t n, double tol)
{
  double m = max_abs (ref, n);
  test_close (what, got, ref, n, m > 0 ? tol / m : tol);
}

static void
test_case (struct taesd *t, struct st_file *gf, const char *c)
{
  const struct st_tensor *lt;
  struct sd35_error       err = { 0 };
  char                    name[256], what[256];
  float                  *latent, *ref, *img;
  uint8_t                *ref_u8, *u8;
  size_t                  n_img, n_u8;
  int                     h, w;

  snprintf (name, sizeof name, "%s.latent", c);
  lt = st_find (gf, name);
  if (!test_check (lt && lt->ndim == 4 && lt->shape[1] == 16, "%s: [1,16,h,w]", name))
    return;
  h = (int) lt->shape[2];
  w = (int) lt->shape[3];
  latent = test_golden_f32 (gf, name, NULL);
  snprintf (name, sizeof name, "%s.decoded", c);
  ref = test_golden_f32 (gf, name, &n_img);
  snprintf (name, sizeof name, "%s.rgb_u8", c);
  ref_u8 = test_golden_u8 (gf, name, &n_u8);
  img = calloc (n_img, sizeof *img);
  u8 = calloc (n_u8, 1);
  if (test_check (n_img == (size_t) 3 * 64 * h * w && n_u8 == n_img, "%s: image 8h×8w", c)
      && test_check (taesd_decode (t, latent, h, w, img, &err) == SD35_OK, "%s: decode: %s",
                     c, err.message))
    {
      snprintf (what, sizeof what, "%s decoded (%d×%d)", c, h, w);
      close_abs (what, img, ref, n_img, DECODED_TOL);
      taesd_image_to_u8 (img, 8 * h, 8 * w, u8);
      snprintf (what, sizeof what, "%s rgb_u8", c);
      test_within_u8 (what, u8, ref_u8, n_u8, 1);
      /* the conversion alone, from the reference's floats: exact */
      taesd_image_to_u8 (ref, 8 * h, 8 * w, u8);
      snprintf (what, sizeof what, "%s rgb_u8 from ref floats", c);
      test_within_u8 (what, u8, ref_u8, n_u8, 0);
    }
  free (latent); free (ref); free (ref_u8); free (img); free (u8);
}

/* every dbg_NN_<layer> tensor of case c: the output of Sequential index NN */
static void
test_layers (struct taesd *t, struct st_file *gf, const char *c)
{
  char                    name[256], prefix[256];
  float                  *latent;
  const struct st_tensor *lt;
  int                     n_layers = 0;

  snprintf (name, sizeof name, "%s.latent", c);
  snprintf (prefix, sizeof prefix, "%s.dbg_", c);
  lt = st_find (gf, name);
  latent = test_golden_f32 (gf, name, NULL);
  for (size_t i = 0; i < st_count (gf); i++)
    {
      const char       *tn = st_at (gf, i)->name;
      struct sd35_error err = { 0 };
      int64_t           chw[3];
      size_t            n;
      float            *ref, *got;
      int               idx;

      if (strncmp (tn, prefix, strlen (prefix)) != 0
          || sscanf (tn + strlen (prefix), "%d", &idx) != 1)
        continue;
      ref = test_golden_f32 (gf, tn, &n);
      taesd_layer_shape ((int) lt->shape[2], (int) lt->shape[3], idx, chw);
      got = calloc (n, sizeof *got);
      if (test_check ((size_t) (chw[0] * chw[1] * chw[2]) == n, "%s: %zu values, we make "
                      "[%lld, %lld, %lld]", tn, n, (long long) chw[0], (long long) chw[1],
                      (long long) chw[2])
          && test_check (taesd_forward (t, latent, (int) lt->shape[2], (int) lt->shape[3], idx,
                                        got, &err) == SD35_OK, "%s: %s", tn, err.message))
        close_abs (tn, got, ref, n, DECODED_TOL);
      free (ref);
      free (got);
      n_layers++;
    }
  test_check (n_layers == TAESD_LAYERS, "%s has %d debug layers (expected %d)", c, n_layers,
              TAESD_LAYERS);
  free (latent);
}

/* A copy of the decoder file with keys renamed (diffusers), one tensor left out, or the
 * input conv narrowed to 4 latent channels (an SD1 taesd). */
static void
write_variant (const char *src, const char *dst, int diffusers, const char *drop, int narrow)
{
  struct st_file    *f = NULL;
  struct st_writer  *w = st_writer_new ();
  struct sd35_error  err = { 0 };

  if (st_open (src, &f, &err) != SD35_OK)
    {
      test_check (0, "open %s: %s", src, err.message);
      exit (1);
    }
  for (size_t i = 0; i < st_count (f); i++)
    {
      const struct st_tensor *t = st_at (f, i);
      char                    name[256];
      int                     idx, off;

      if (drop && strcmp (t->name, drop) == 0)
        continue;
      if (diffusers && sscanf (t->name, "%d.%n", &idx, &off) == 1)
        snprintf (name, sizeof name, "decoder.layers.%d.%s", idx - 1, t->name + off);
      else
        snprintf (name, sizeof name, "%s", t->name);
      {
        int64_t shape[ST_MAX_DIMS];
        memcpy (shape, t->shape, sizeof shape);
        if (narrow && strcmp (t->name, "1.weight") == 0)
          shape[1] = 4;  /* the first bytes of the real tensor */
        st_writer_add (w, name, t->dtype, t->ndim, shape, t->data);
      }
    }
  if (!test_check (st_writer_save (w, dst, &err) == SD35_OK, "write %s: %s", dst, err.message))
    exit (1);
  st_writer_free (w);
  st_close (f);
}

static void
test_files (struct taesd *t, const char *dec, const char *golden, struct st_file *gf)
{
  struct sd35_error err = { 0 };
  struct taesd     *d = NULL;
  char              path[512];
  const char       *c = "debug_s11_4x6_x2.5";
  char              name[128];
  float            *latent, *a, *b;
  size_t            n = (size_t) 3 * 32 * 48;
  enum sd35_status  st;

  snprintf (name, sizeof name, "%s.latent", c);
  latent = test_golden_f32 (gf, name, NULL);
  a = calloc (n, sizeof *a);
  b = calloc (n, sizeof *b);

  snprintf (path, sizeof path, "%s/diffusers.safetensors", tmp_root);
  write_variant (dec, path, 1, NULL, 0);
  if (test_check (taesd_open (be, path, &d, &err) == SD35_OK, "diffusers keys: %s", err.message)
      && taesd_decode (t, latent, 4, 6, a, &err) == SD35_OK
      && taesd_decode (d, latent, 4, 6, b, &err) == SD35_OK)
    test_close ("diffusers key layout = taesd.py layout", b, a, n, 0.0);
  taesd_free (d);
  d = NULL;

  memset (&err, 0, sizeof err);
  snprintf (path, sizeof path, "%s/missing.safetensors", tmp_root);
  write_variant (dec, path, 0, "12.weight", 0);
  test_check (taesd_open (be, path, &d, &err) == SD35_ERR_MISSING && d == NULL
              && strstr (err.message, "12.weight") && strstr (err.message, path),
              "missing 12.weight → SD35_ERR_MISSING naming key and file (%s)", err.message);

  memset (&err, 0, sizeof err);
  snprintf (path, sizeof path, "%s/narrow.safetensors", tmp_root);
  write_variant (dec, path, 0, NULL, 1);
  test_check (taesd_open (be, path, &d, &err) == SD35_ERR_SHAPE && d == NULL
              && strstr (err.message, "4 latent channels, SD3 needs 16")
              && strstr (err.message, "1.weight"),
              "4-channel taesd → SD35_ERR_SHAPE saying so (%s)", err.message);

  memset (&err, 0, sizeof err);
  test_check (taesd_open (be, golden, &d, &err) == SD35_ERR_FORMAT && d == NULL
              && strstr (err.message, "not a TAESD decoder"),
              "the golden file is not a decoder → SD35_ERR_FORMAT (%s)", err.message);
  memset (&err, 0, sizeof err);
  st = taesd_open (be, "/nonexistent/" TAESD_FILE_NAME, &d, &err);
  test_check (st != SD35_OK && d == NULL && strstr (err.message, "TAESD")
              && strstr (err.message, "/nonexistent/" TAESD_FILE_NAME),
              "absent file → error naming it (%d: %s)", st, err.message);
  memset (&err, 0, sizeof err);
  test_check (taesd_decode (t, latent, 0, 6, a, &err) == SD35_ERR_ARG,
              "0×6 latent → SD35_ERR_ARG (%s)", err.message);
  free (latent); free (a); free (b);
}

static void
touch (const char *path)
{
  FILE *f = fopen (path, "w");
  if (f)
    fclose (f);
}

static void
test_find (void)
{
  char  root[300], ckpt[400], model[500], approx[400], beside[500], in_approx[500];
  char *p;
  int   ex;

  unsetenv ("SD35_TAESD");
  snprintf (root, sizeof root, "%s/models", tmp_root);
  snprintf (ckpt, sizeof ckpt, "%s/checkpoints", root);
  snprintf (approx, sizeof approx, "%s/vae_approx", root);
  snprintf (model, sizeof model, "%s/sd3.5_large.safetensors", ckpt);
  snprintf (in_approx, sizeof in_approx, "%s/" TAESD_FILE_NAME, approx);
  snprintf (beside, sizeof beside, "%s/" TAESD_FILE_NAME, ckpt);
  mkdir (root, 0755);
  mkdir (ckpt, 0755);
  mkdir (approx, 0755);
  touch (model);

  p = taesd_find (NULL, model, &ex);
  test_check (p == NULL && !ex, "nothing to find → NULL (%s)", p ? p : "NULL");
  free (p);
  touch (in_approx);  /* ComfyUI: models/checkpoints/<model>, models/vae_approx/<taesd> */
  p = taesd_find (NULL, model, &ex);
  test_check (p && strstr (p, "vae_approx/" TAESD_FILE_NAME) && !ex,
              "found in ../vae_approx (%s)", p ? p : "NULL");
  free (p);
  touch (beside);
  p = taesd_find (NULL, model, &ex);
  test_check (p && strcmp (p, beside) == 0, "beside the model first (%s)", p ? p : "NULL");
  free (p);
  p = taesd_find ("", model, &ex);
  test_check (p == NULL && ex, "option \"\" → none");
  free (p);
  p = taesd_find ("/x/t.safetensors", model, &ex);
  test_check (p && strcmp (p, "/x/t.safetensors") == 0 && ex, "option path wins");
  free (p);
  setenv ("SD35_TAESD", "", 1);
  p = taesd_find (NULL, model, &ex);
  test_check (p == NULL && ex, "SD35_TAESD=\"\" → none");
  free (p);
  setenv ("SD35_TAESD", "/y/t.safetensors", 1);
  p = taesd_find (NULL, model, &ex);
  test_check (p && strcmp (p, "/y/t.safetensors") == 0, "SD35_TAESD path");
  free (p);
  unsetenv ("SD35_TAESD");

  /* the cost rule: CUDA always; CPU up to 64×64 positions, or when the MMDiT is ≥ 16× */
  test_check (taesd_preview_worth (1, 128, 128, 64, 2), "cuda 1024² → TAESD");
  test_check (taesd_preview_worth (0, 64, 64, 64, 2), "cpu 512² tiny model → TAESD");
  test_check (!taesd_preview_worth (0, 64, 72, 64, 2), "cpu 576×512 tiny → projection");
  test_check (taesd_preview_worth (0, 128, 128, 2432, 38), "cpu 1024² Large → TAESD");
  test_check (!taesd_preview_worth (0, 128, 128, 1536, 24), "cpu 1024² Medium → projection");
}

/* The same cases on the CUDA backend when there is one (bf16 activations: README §5 measured
 * max|Δ| 5e-2 and u8 up to 13 for bf16 compute, so the bar is loose; it catches layout and
 * kernel errors, not rounding).  Skipped without a GPU or in a build without CUDA. */
static void
test_cuda (struct st_file *gf, const char *dec)
{
  struct backend   *cb = NULL;
  struct taesd     *t = NULL;
  struct sd35_error err = { 0 };
  static const char *const cases[] = { "large_euler_savednoise", "randn_s7_32x24" };

  if (backend_cuda_new (&cb, &err) != SD35_OK)
    {
      printf ("SKIP cuda: %s\n", err.message);
      return;
    }
  if (test_check (taesd_open (cb, dec, &t, &err) == SD35_OK, "open on cuda: %s", err.message))
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
      {
        char                    name[128], what[160];
        const struct st_tensor *lt;
        float                  *lat, *ref, *img;
        uint8_t                *ref_u8, *u8;
        size_t                  n, n8;
        int                     h, w;

        snprintf (name, sizeof name, "%s.latent", cases[k]);
        lt = st_find (gf, name);
        if (!test_check (lt != NULL, "golden has %s", name))
          continue;
        h = (int) lt->shape[2];
        w = (int) lt->shape[3];
        lat = test_golden_f32 (gf, name, NULL);
        snprintf (name, sizeof name, "%s.decoded", cases[k]);
        ref = test_golden_f32 (gf, name, &n);
        snprintf (name, sizeof name, "%s.rgb_u8", cases[k]);
        ref_u8 = test_golden_u8 (gf, name, &n8);
        img = calloc (n, sizeof *img);
        u8 = calloc (n8, 1);
        if (test_check (taesd_decode (t, lat, h, w, img, &err) == SD35_OK, "cuda decode: %s",
                        err.message))
          {
            snprintf (what, sizeof what, "cuda %s decoded", cases[k]);
            close_abs (what, img, ref, n, 1e-1);
            taesd_image_to_u8 (img, 8 * h, 8 * w, u8);
            snprintf (what, sizeof what, "cuda %s rgb_u8", cases[k]);
            test_within_u8 (what, u8, ref_u8, n8, 24);
          }
        free (lat); free (ref); free (ref_u8); free (img); free (u8);
      }
  taesd_free (t);
  backend_free (cb);
}

/* `sd35 taesd-decode` on the debug case: the safetensors output (model-space input and the
 * same latent given in VAE space with --vae-space) and the PNG. */
static void
test_cli (const char *dec, struct st_file *gf)
{
  const char       *cli = getenv ("SD35_CLI"), *c = "debug_s11_4x6_x2.5";
  char              cmd[2048], in[400], out[400], png[400], name[128];
  struct st_writer *w = st_writer_new ();
  struct st_file   *of = NULL;
  struct sd35_error err = { 0 };
  const int64_t     ls[4] = { 1, 16, 4, 6 };
  size_t            n = (size_t) 16 * 4 * 6, n_img, n8;
  float            *lat, *vae_lat, *ref;
  uint8_t          *ref_u8, *png_rgb = NULL;
  int               rc, pw = 0, ph = 0;

  if (cli == NULL)
    {
      printf ("SKIP cli: $SD35_CLI not set\n");
      st_writer_free (w);
      return;
    }
  snprintf (name, sizeof name, "%s.latent", c);
  lat = test_golden_f32 (gf, name, NULL);
  vae_lat = malloc (n * sizeof *vae_lat);
  memcpy (vae_lat, lat, n * sizeof *vae_lat);
  latent_process_out (vae_lat, n);
  snprintf (name, sizeof name, "%s.decoded", c);
  ref = test_golden_f32 (gf, name, &n_img);
  snprintf (name, sizeof name, "%s.rgb_u8", c);
  ref_u8 = test_golden_u8 (gf, name, &n8);
  snprintf (in, sizeof in, "%s/cli_in.safetensors", tmp_root);
  st_writer_add_f32 (w, "latent", 4, ls, lat);
  st_writer_add_f32 (w, "final_latent", 3, ls + 1, vae_lat);
  if (!test_check (st_writer_save (w, in, &err) == SD35_OK, "write %s: %s", in, err.message))
    exit (1);
  st_writer_free (w);

  for (int vae = 0; vae < 2; vae++)
    {
      snprintf (out, sizeof out, "%s/cli_out%d.safetensors", tmp_root, vae);
      snprintf (cmd, sizeof cmd, "'%s' taesd-decode --taesd '%s' --in '%s' --out '%s' "
                "--backend cpu%s", cli, dec, in, out,
                vae ? " --tensor final_latent --vae-space" : "");
      rc = system (cmd);
      if (test_check (rc == 0, "cli: %s → exit %d", cmd, rc)
          && test_check (st_open (out, &of, &err) == SD35_OK, "cli output: %s", err.message))
        {
          size_t   m, m8;
          float   *got = test_golden_f32 (of, "decoded", &m);
          uint8_t *u8 = test_golden_u8 (of, "rgb_u8", &m8);
          if (test_check (m == n_img && m8 == n8, "cli taesd-decode sizes"))
            {
              /* --vae-space: process_out then process_in again moves x0 by ~1e-7 */
              close_abs (vae ? "cli decoded (--vae-space)" : "cli decoded", got, ref, m,
                         DECODED_TOL);
              test_within_u8 (vae ? "cli rgb_u8 (--vae-space)" : "cli rgb_u8", u8, ref_u8,
                              m8, 1);
            }
          free (got);
          free (u8);
          st_close (of);
          of = NULL;
        }
    }

  snprintf (png, sizeof png, "%s/cli_out.png", tmp_root);
  snprintf (cmd, sizeof cmd, "'%s' taesd-decode --taesd '%s' --in '%s' --out '%s' --backend cpu",
            cli, dec, in, png);
  rc = system (cmd);
  if (test_check (rc == 0, "cli: %s → exit %d", cmd, rc)
      && test_check (png_read_rgb (png, &png_rgb, &pw, &ph, &err) == SD35_OK, "read %s: %s",
                     png, err.message)
      && test_check (pw == 48 && ph == 32, "PNG is 8w × 8h = 48×32 (%d×%d)", pw, ph))
    test_within_u8 ("cli PNG", png_rgb, ref_u8, n8, 1);

  snprintf (cmd, sizeof cmd, "'%s' taesd-decode --taesd '%s' --in '%s' --tensor nope --out '%s' "
            "--backend cpu 2>/dev/null", cli, dec, in, png);
  rc = system (cmd);
  test_check (rc != 0, "cli: absent --tensor fails (%d)", rc);
  free (png_rgb); free (lat); free (vae_lat); free (ref); free (ref_u8);
}

/* --- the pipeline: on_step's preview = taesd(x0) at full size ---------------------------- */
struct capture
{
  struct taesd *t;
  float        *x0;
  int           n_ok, n_steps, bad_size;
};

static void
cap_tensors (void *user, int step, int n_steps, float sigma, const float *x,
             const float *denoised, int h, int w)
{
  struct capture *c = user;
  memcpy (c->x0, denoised, (size_t) 16 * h * w * sizeof (float));
}

static void
cap_step (void *user, int step, int n_steps, float sigma, const uint8_t *rgb, int w, int h)
{
  struct capture   *c = user;
  struct sd35_error err = { 0 };
  size_t            n = (size_t) 3 * w * h;
  float            *img = malloc (n * sizeof *img);
  uint8_t          *u8 = malloc (n);

  c->n_steps++;
  if (w != 64 || h != 48)
    c->bad_size = 1;
  else if (taesd_decode (c->t, c->x0, h / 8, w / 8, img, &err) == SD35_OK)
    {
      taesd_image_to_u8 (img, h, w, u8);
      c->n_ok += memcmp (u8, rgb, n) == 0;
    }
  free (img);
  free (u8);
}

static void
test_pipeline (const char *shared, struct taesd *t)
{
  char                       dir[300], model[500], src[700], approx[400], dec[500];
  struct sd35_engine_options o;
  struct sd35_params         p;
  struct sd35_callbacks      cb = { 0 };
  struct sd35_result         r = { 0 };
  struct sd35_error          err = { 0 };
  struct capture             cap = { t, NULL, 0, 0, 0 };
  sd35_engine               *e = NULL;
  char                       te[500], tok[500];

  snprintf (dir, sizeof dir, "%s/pipe", tmp_root);
  snprintf (approx, sizeof approx, "%s/vae_approx", dir);
  mkdir (dir, 0755);
  mkdir (approx, 0755);
  snprintf (src, sizeof src, "%s/golden/models/sd3.5_tiny_large.safetensors", shared);
  snprintf (model, sizeof model, "%s/sd3.5_large.safetensors", dir);
  snprintf (dec, sizeof dec, "%s/taesd/" TAESD_FILE_NAME, shared);
  if (symlink (src, model) != 0)
    test_check (0, "symlink %s", model);
  snprintf (src, sizeof src, "%s/" TAESD_FILE_NAME, approx);
  if (symlink (dec, src) != 0)
    test_check (0, "symlink %s", src);
  snprintf (te, sizeof te, "%s/golden/models", shared);
  snprintf (tok, sizeof tok, "%s/tokenizers", shared);

  sd35_engine_options_init (&o);
  o.backend = SD35_BACKEND_CPU;
  o.model_path = model;
  o.text_encoders_dir = te;
  o.tokenizers_dir = tok;
  o.use_t5 = 0;
  if (!test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open %s: %s", model,
                   err.message))
    return;
  test_check (sd35_engine_info (e)->taesd_path
              && strstr (sd35_engine_info (e)->taesd_path, "vae_approx/" TAESD_FILE_NAME),
              "engine found the TAESD in vae_approx/ (%s)",
              sd35_engine_info (e)->taesd_path ? sd35_engine_info (e)->taesd_path : "NULL");
  sd35_params_init (&p);
  p.prompt = "a cat";
  p.width = 64;
  p.height = 48;
  p.steps = 2;
  p.seed = 5;
  cap.x0 = malloc ((size_t) 16 * 6 * 8 * sizeof (float));
  cb.on_step = cap_step;
  cb.on_step_tensors = cap_tensors;
  cb.user = &cap;
  if (test_check (sd35_generate (e, &p, &cb, &r, &err) == SD35_OK, "generate: %s",
                  err.message))
    test_check (cap.n_steps == 2 && !cap.bad_size && cap.n_ok == 2,
                "on_step previews are 64×48 TAESD decodes of x0 (%d steps, %d identical, "
                "bad size %d)", cap.n_steps, cap.n_ok, cap.bad_size);
  sd35_result_clear (&r);
  sd35_engine_free (e);

  /* taesd_path = "" turns it off: latent-size previews */
  o.taesd_path = "";
  e = NULL;
  if (test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open: %s", err.message))
    test_check (sd35_engine_info (e)->taesd_path == NULL, "taesd_path \"\" → no TAESD");
  sd35_engine_free (e);
  e = NULL;

  /* a broken file: an error when asked for, skipped (projection previews) when discovered */
  snprintf (dec, sizeof dec, "%s/missing.safetensors", tmp_root);  /* from test_files */
  o.taesd_path = dec;
  memset (&err, 0, sizeof err);
  test_check (sd35_engine_open (&o, &e, &err) != SD35_OK && e == NULL
              && strstr (err.message, "12.weight"),
              "explicit broken TAESD → open fails naming the tensor (%s)", err.message);
  sd35_engine_free (e);
  e = NULL;
  unlink (src);
  if (symlink (dec, src) != 0)
    test_check (0, "symlink %s", src);
  o.taesd_path = NULL;
  memset (&err, 0, sizeof err);
  if (test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open with a broken discovered "
                  "TAESD: %s", err.message))
    test_check (sd35_engine_info (e)->taesd_path == NULL, "broken discovered TAESD skipped");
  sd35_engine_free (e);
  free (cap.x0);
}

int
main (void)
{
  char              *golden = test_shared_path_or_skip ("taesd/golden_taesd3.safetensors");
  char              *dec = test_shared_path_or_skip ("taesd/" TAESD_FILE_NAME);
  struct st_file    *gf = test_open_golden ("taesd/golden_taesd3.safetensors");
  struct sd35_error  err = { 0 };
  struct taesd      *t = NULL;
  int                n_cases = 0;

  tmp_root = test_make_tmpdir ("taesd");
  if (backend_cpu_new (0, &be, &err) != SD35_OK)
    {
      printf ("FAIL: setup: %s\n", err.message);
      return 1;
    }
  if (!test_check (taesd_open (be, dec, &t, &err) == SD35_OK, "open %s: %s", dec, err.message))
    return 1;
  for (size_t i = 0; i < st_count (gf); i++)
    {
      const char *tn = st_at (gf, i)->name;
      size_t      l = strlen (tn);
      char        c[128];

      if (l < 7 || strcmp (tn + l - 7, ".latent") != 0 || l - 7 >= sizeof c)
        continue;
      memcpy (c, tn, l - 7);
      c[l - 7] = '\0';
      test_case (t, gf, c);
      if (strncmp (c, "debug", 5) == 0)
        test_layers (t, gf, c);
      n_cases++;
    }
  test_check (n_cases == 4, "%d golden cases (expected 4)", n_cases);
  test_files (t, dec, golden, gf);
  test_find ();
  test_cli (dec, gf);
  test_cuda (gf, dec);
  test_pipeline (test_shared_dir (), t);

  taesd_free (t);
  backend_free (be);
  st_close (gf);
  free (golden);
  free (dec);
  test_remove_tree (tmp_root);
  free (tmp_root);
  return test_exit ();
}
