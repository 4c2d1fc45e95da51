/* test_goldens_cuda.c — the fp32 reference goldens (../shared/golden, official code on the CPU)
 * reproduced on the CUDA backend (bf16 weights and activations, fp32 where ops.h says, fp32
 * accumulation): the text_* goldens (context, pooled; tokenizer ids identical), every
 * mmdit_forward_* (v, denoised), vae_decode_* (image_float, image_uint8), vae_encode (mean,
 * std) through the internal APIs, and every sample_* through the public API
 * (goldens_cuda_pipeline.c).
 *
 * Tolerances.  One model call (text encoders, MMDiT, VAE): max|Δ| ≤ 2e-2·max|ref|.  bf16 keeps
 * 8 significant bits, so every stored activation and every matrix weight (f16 in the files,
 * bf16 on the GPU) carries a relative rounding of up to u = 2⁻⁹ ≈ 2e-3; a few dozen of them
 * in series add up like a random walk to ~√30·u ≈ 1e-2 of the local magnitude.  2e-2 (10 u)
 * is still far below what a wrong op gives (errors of order max|ref|).  Measured on the bf16
 * emulation (SD35_TEST_BF16_EMU=1, bf16_emu.c: the CPU backend rounding wherever the CUDA
 * backend stores bf16 — per tensor, ops.h: residual streams, adaLN vectors, CLIP/T5 hidden
 * states, the VAE residual path are fp32 — and rounding GEMM operands to bf16):
 * context/pooled ≤ 6.4e-3, MMDiT v ≤ 4.9e-3 and denoised ≤ 3.2e-3, vae_decode image_float
 * ≤ 1.2e-2, vae_encode mean 1.3e-2, std 7.0e-3 (all ·max|ref|).  vae_decode image_uint8: within
 * ±3 for ≥ 99.5 % of the values (measured: 100 %).
 * Whole sampling runs: cfg 4.5–5 multiplies each call's error and DPM++ 2M extrapolates it.
 * The checks use the bar, 2e-2·max|ref| on final_latent and ±3 for ≥ 99.5 % of
 * image_uint8 (goldens_cuda.h); the emulation measures final_latent ≤ 1.6e-2·max|ref| and
 * ≥ 99.99 % within ±3 on all 7 runs.  (With every activation in bf16 it measured 3.2e-2 and
 * 97.9 %: why the model code keeps those tensors in fp32.)  Whether the looser bf16-emulation
 * bounds (6e-2, ±6) hold is printed as info, to tell "precision-limited" from "wrong".  The
 * tokenizer ids and the seeded noise are made on the CPU: compared exactly.
 * Intermediates (dbg_*, per-step x/denoised, hidden states) are printed as "info", not counted.
 *
 * Exit 77 (skipped) when there is no usable GPU or driver.  Without a GPU,
 * SD35_TEST_CPU_TWIN=1 runs everything on the fp32 CPU backend instead (tests the test) and
 * SD35_TEST_BF16_EMU=1 on the bf16 emulation (the numbers above). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "goldens_cuda.h"
#include "mmdit.h"
#include "testutil.h"
#include "text_encoders.h"
#include "tokenizer.h"
#include "vae.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* A backend error ends a section: later ops would be no-ops anyway.  Returns 1 if failed. */
static int
section_failed (struct backend *be, const char *section)
{
  if (be == NULL)
    return 1;
  if (!backend_failed (be))
    return 0;
  test_check (0, "%s: the %s backend reported: %s (rest of the section skipped)", section,
              be->name, be->err.message);
  return 1;
}

static const char *
str_member (JsonObject *o, const char *name)
{
  return json_object_get_string_member_with_default (o, name, "");
}

/* "tiny_large" → golden/models/sd3.5_tiny_large.safetensors */
static struct st_file *
open_tiny_model (const char *model)
{
  char rel[256];
  snprintf (rel, sizeof rel, "golden/models/sd3.5_%s.safetensors", model);
  return test_open_golden (rel);
}

/* ---- text encoders and tokenizers ------------------------------------------------------------ */

static int
golden_ids (struct st_file *g, const char *name, int64_t **out)
{
  const struct st_tensor *t = st_find (g, name);
  struct sd35_error       err = { 0 };

  *out = t ? st_read_i64 (t, &err) : NULL;
  if (*out == NULL)
    {
      printf ("FAIL: golden %s: no ids '%s' %s\n", st_path (g), name, err.message);
      exit (1);
    }
  return (int) t->numel;
}

static void
check_ids (const char *name, const struct sd35_tokens *tok, int64_t *ref_l, int64_t *ref_g,
           int64_t *ref_t5, int n_t5)
{
  char what[160];

  snprintf (what, sizeof what, "%s tokenizer ids_clip_l", name);
  test_equal_i32 (what, tok->clip_l, ref_l, SD35_CLIP_TOKENS);
  snprintf (what, sizeof what, "%s tokenizer ids_clip_g", name);
  test_equal_i32 (what, tok->clip_g, ref_g, SD35_CLIP_TOKENS);
  snprintf (what, sizeof what, "%s tokenizer ids_t5", name);
  if (test_check (tok->n_t5 == n_t5, "%s: %d T5 ids (golden %d)", what, tok->n_t5, n_t5))
    test_equal_i32 (what, tok->t5, ref_t5, (size_t) n_t5);
}

static void
text_golden (struct clip_model *cl, struct clip_model *cg, struct t5_model *t5,
             const struct clip_tokenizer *ctok, const struct t5_tokenizer *ttok, JsonObject *g)
{
  const char        *name = str_member (g, "name");
  char               rel[256], what[160];
  struct st_file    *f;
  struct sd35_tokens mine = { 0 }, gold = { 0 };
  struct sd35_cond   c = { 0 };
  struct sd35_error  err = { 0 };
  int64_t           *ids_l, *ids_g, *ids_t5;
  int                n_t5;

  snprintf (rel, sizeof rel, "golden/%s", str_member (g, "file"));
  f = test_open_golden (rel);
  golden_ids (f, "ids_clip_l", &ids_l);
  golden_ids (f, "ids_clip_g", &ids_g);
  n_t5 = golden_ids (f, "ids_t5", &ids_t5);

  /* the tokenizers run on the CPU whatever the backend: ids must be identical */
  if (test_check (sd3_tokenize (ctok, ttok, str_member (g, "prompt"), &mine, &err) == SD35_OK,
                  "%s: sd3_tokenize: %s", name, err.message))
    check_ids (name, &mine, ids_l, ids_g, ids_t5, n_t5);

  /* the encoders get the golden ids, so a tokenizer difference cannot hide here */
  for (int i = 0; i < SD35_CLIP_TOKENS; i++)
    {
      gold.clip_l[i] = (int32_t) ids_l[i];
      gold.clip_g[i] = (int32_t) ids_g[i];
    }
  gold.n_t5 = n_t5;
  gold.t5 = malloc ((size_t) n_t5 * sizeof (int32_t));
  for (int i = 0; i < n_t5; i++)
    gold.t5[i] = (int32_t) ids_t5[i];
  sd35_error_clear (&err);
  if (test_check (sd3_condition (cl, cg, t5, &gold, 0, &c, &err) == SD35_OK,
                  "%s: sd3_condition: %s", name, err.message))
    {
      static const char *const info[] = { "clip_l_hidden", "clip_l_pooled", "clip_g_hidden",
                                           "clip_g_pooled", "t5_hidden" };
      const float *got[] = { c.clip_l_hidden, c.clip_l_pooled, c.clip_g_hidden, c.clip_g_pooled,
                             c.t5_hidden };
      size_t n, n_p;
      float *ctx = test_golden_f32 (f, "context", &n);
      float *pooled = test_golden_f32 (f, "pooled", &n_p);

      snprintf (what, sizeof what, "%s context", name);
      if (test_check (n == (size_t) c.n_ctx * c.ctx_dim, "%s: %d×%d (golden %zu values)", what,
                      c.n_ctx, c.ctx_dim, n))
        test_close (what, c.context, ctx, n, GC_TOL);
      snprintf (what, sizeof what, "%s pooled", name);
      if (test_check (n_p == (size_t) c.pooled_dim, "%s: %d (golden %zu)", what, c.pooled_dim,
                      n_p))
        test_close (what, c.pooled, pooled, n_p, GC_TOL);
      for (int k = 0; k < 5; k++)
        {
          size_t nk;
          float *ref = test_golden_f32 (f, info[k], &nk);
          snprintf (what, sizeof what, "%s %s", name, info[k]);
          if (got[k] != NULL)
            gc_info_close (what, got[k], ref, nk);
          free (ref);
        }
      free (ctx);
      free (pooled);
    }
  sd35_cond_clear (&c);
  sd35_tokens_clear (&mine);
  free (gold.t5);
  free (ids_l);
  free (ids_g);
  free (ids_t5);
  st_close (f);
}

static void
text_goldens (JsonArray *goldens)
{
  struct backend         *be = gc_backend_new ("text encoders");
  char                   *vocab = test_shared_path_or_skip ("tokenizers/clip/vocab.json");
  char                   *merges = test_shared_path_or_skip ("tokenizers/clip/merges.txt");
  char                   *spiece = test_shared_path_or_skip ("tokenizers/t5/spiece.model");
  char                   *tjson = test_shared_path_or_skip ("tokenizers/t5/tokenizer.json");
  struct gc_text_encoders te = { 0 };
  struct clip_tokenizer  *ctok = NULL;
  struct t5_tokenizer    *ttok = NULL;
  struct sd35_error       err = { 0 };
  int                     n_run = 0;

  printf ("--- text encoders ---\n");
  if (be == NULL || !gc_text_encoders_load (be, &te)
      || !test_check (clip_tokenizer_load (vocab, merges, &ctok, &err) == SD35_OK
                      && t5_tokenizer_load (spiece, tjson, &ttok, &err) == SD35_OK,
                      "load the tokenizers: %s", err.message))
    goto out;
  for (guint i = 0; i < json_array_get_length (goldens); i++)
    {
      JsonObject *g = json_array_get_object_element (goldens, i);
      if (strcmp (str_member (g, "kind"), "text_encoders") != 0)
        continue;
      text_golden (te.cl, te.cg, te.t5, ctok, ttok, g);
      n_run++;
      if (section_failed (be, "text encoders"))
        break;
    }
  test_check (n_run == 4, "%d text goldens run (expected 4)", n_run);
out:
  gc_text_encoders_free (&te);
  clip_tokenizer_free (ctok);
  t5_tokenizer_free (ttok);
  if (be)
    backend_free (be);
  free (vocab);
  free (merges);
  free (spiece);
  free (tjson);
}

/* ---- MMDiT ----------------------------------------------------------------------------------- */

struct dbg_ctx
{
  struct st_file *golden;
  const char     *label;
};

static void
on_debug (void *user, const char *name, const float *data, const int64_t *shape, int ndim)
{
  struct dbg_ctx         *c = user;
  const struct st_tensor *t = st_find (c->golden, name);
  size_t                  n = 1;
  char                    what[160];
  float                  *ref;

  for (int i = 0; i < ndim; i++)
    n *= (size_t) shape[i];
  if (t == NULL || t->numel != n)
    return;
  ref = test_golden_f32 (c->golden, name, NULL);
  snprintf (what, sizeof what, "%s %s", c->label, name);
  gc_info_close (what, data, ref, n);
  free (ref);
}

static void
mmdit_golden (JsonObject *g)
{
  const char             *name = str_member (g, "name");
  char                    rel[256], what[160];
  struct st_file         *gf, *mf = open_tiny_model (str_member (g, "model"));
  const struct st_tensor *xt;
  struct backend         *be = gc_backend_new (name);
  struct mmdit           *m = NULL;
  struct sd35_error       err = { 0 };
  struct dbg_ctx          dc;
  JsonArray              *sl = json_object_get_array_member (g, "skip_layers");
  int                     skip[8], n_skip = sl ? (int) json_array_get_length (sl) : 0;
  float                  *x, *sigma, *ctx, *y, *v_ref, *d_ref, *v, *den;
  size_t                  n;

  snprintf (rel, sizeof rel, "golden/%s", str_member (g, "file"));
  gf = test_open_golden (rel);
  xt = st_find (gf, "x");
  if (!test_check (xt && xt->ndim == 4 && st_find (gf, "context") && n_skip <= 8 && be,
                   "%s: golden has x [B,16,H,W] and context; backend up", name))
    {
      if (be)
        backend_free (be);
      st_close (gf);
      st_close (mf);
      return;
    }
  for (int i = 0; i < n_skip; i++)
    skip[i] = (int) json_array_get_int_element (sl, i);
  x = test_golden_f32 (gf, "x", &n);
  sigma = test_golden_f32 (gf, "sigma", NULL);
  ctx = test_golden_f32 (gf, "context", NULL);
  y = test_golden_f32 (gf, "y", NULL);
  v_ref = test_golden_f32 (gf, "v", NULL);
  d_ref = test_golden_f32 (gf, "denoised", NULL);
  v = calloc (n, sizeof *v);
  den = calloc (n, sizeof *den);
  dc.golden = gf;
  dc.label = name;

  if (test_check (mmdit_load (be, mf, "model.diffusion_model.", &m, &err) == SD35_OK,
                  "%s: mmdit_load on %s: %s", name, be->name, err.message))
    {
      int B = (int) xt->shape[0], H = (int) xt->shape[2], W = (int) xt->shape[3];
      int n_ctx = (int) st_find (gf, "context")->shape[1];
      mmdit_set_debug (m, on_debug, &dc);
      if (test_check (mmdit_forward (m, x, sigma, ctx, y, B, H, W, n_ctx, skip, n_skip, NULL, v,
                                     &err) == SD35_OK,
                      "%s: mmdit_forward on %s: %s", name, be->name, err.message))
        {
          size_t per = n / (size_t) B;
          for (size_t i = 0; i < n; i++)
            den[i] = x[i] - v[i] * sigma[i / per];
          snprintf (what, sizeof what, "%s v", name);
          test_close (what, v, v_ref, n, GC_TOL);
          snprintf (what, sizeof what, "%s denoised", name);
          test_close (what, den, d_ref, n, GC_TOL);
        }
    }
  section_failed (be, name);
  mmdit_free (m);
  backend_free (be);
  free (x); free (sigma); free (ctx); free (y); free (v_ref); free (d_ref); free (v); free (den);
  st_close (gf);
  st_close (mf);
}

/* ---- VAE ------------------------------------------------------------------------------------- */

static void
vae_decode_golden (struct vae *v, JsonObject *g)
{
  const char             *name = str_member (g, "name");
  char                    rel[256], what[160];
  struct st_file         *f;
  const struct st_tensor *lt, *u8t;
  struct sd35_error       err = { 0 };
  float                  *latent, *ref, *img;
  uint8_t                *u8;
  size_t                  n;
  int                     h, w;

  snprintf (rel, sizeof rel, "golden/%s", str_member (g, "file"));
  f = test_open_golden (rel);
  lt = st_find (f, "latent");
  u8t = st_find (f, "image_uint8");
  if (!test_check (lt && lt->ndim == 4 && u8t && u8t->dtype == SD35_U8,
                   "%s: golden has latent [1,16,h,w] and image_uint8", name))
    {
      st_close (f);
      return;
    }
  h = (int) lt->shape[2];
  w = (int) lt->shape[3];
  latent = test_golden_f32 (f, "latent", NULL);
  ref = test_golden_f32 (f, "image_float", &n);
  img = calloc (n, sizeof *img);
  u8 = calloc (u8t->numel, 1);
  if (test_check (n == (size_t) 3 * 64 * h * w && u8t->numel == n, "%s: image is 8× the latent",
                  name)
      && test_check (vae_decode (v, latent, h, w, img, &err) == SD35_OK, "%s: vae_decode: %s",
                     name, err.message))
    {
      snprintf (what, sizeof what, "%s image_float", name);
      test_close (what, img, ref, n, GC_TOL);
      vae_image_to_u8 (img, 8 * h, 8 * w, u8);
      snprintf (what, sizeof what, "%s image_uint8", name);
      gc_u8_fraction (what, u8, u8t->data, u8t->numel, GC_U8_DIFF);
    }
  free (latent); free (ref); free (img); free (u8);
  st_close (f);
}

static void
vae_encode_golden (struct vae *v)
{
  struct st_file         *f = test_open_golden ("golden/vae_encode.safetensors");
  const struct st_tensor *u8t = st_find (f, "image_uint8");
  struct sd35_error       err = { 0 };
  size_t                  n;
  float                  *mean_ref = test_golden_f32 (f, "mean", &n);
  float                  *std_ref = test_golden_f32 (f, "std", NULL);
  float                  *mean = calloc (n, sizeof *mean), *std = calloc (n, sizeof *std);
  float                  *image;
  int                     H, W;

  if (!test_check (u8t && u8t->ndim == 3 && u8t->dtype == SD35_U8 && u8t->shape[2] == 3,
                   "vae_encode: golden has image_uint8 [H, W, 3]"))
    goto out;
  H = (int) u8t->shape[0];
  W = (int) u8t->shape[1];
  image = calloc (u8t->numel, sizeof *image);
  vae_u8_to_image (u8t->data, H, W, image);
  if (test_check (n == (size_t) 16 * (H / 8) * (W / 8), "vae_encode: mean is [16, H/8, W/8]")
      && test_check (vae_encode (v, image, H, W, mean, std, &err) == SD35_OK, "vae_encode: %s",
                     err.message))
    {
      test_close ("vae_encode mean", mean, mean_ref, n, GC_TOL);
      test_close ("vae_encode std", std, std_ref, n, GC_TOL);
    }
  free (image);
out:
  free (mean_ref); free (std_ref); free (mean); free (std);
  st_close (f);
}

static void
vae_goldens (JsonArray *goldens)
{
  struct backend   *be = gc_backend_new ("VAE");
  struct st_file   *mf = open_tiny_model ("tiny_large");
  struct vae       *v = NULL;
  struct sd35_error err = { 0 };
  int               n_run = 0;

  printf ("--- VAE ---\n");
  if (be != NULL
      && test_check (vae_load (be, mf, "first_stage_model.", 1, &v, &err) == SD35_OK,
                     "vae_load on %s: %s", be->name, err.message))
    {
      for (guint i = 0; i < json_array_get_length (goldens); i++)
        {
          JsonObject *g = json_array_get_object_element (goldens, i);
          if (strcmp (str_member (g, "kind"), "vae_decode") != 0)
            continue;
          vae_decode_golden (v, g);
          n_run++;
          if (section_failed (be, "VAE"))
            break;
        }
      test_check (n_run == 2, "%d vae_decode goldens run (expected 2)", n_run);
      if (!section_failed (be, "VAE"))
        vae_encode_golden (v);
      section_failed (be, "VAE");
    }
  vae_free (v);
  if (be)
    backend_free (be);
  st_close (mf);
}

/* ---- main ------------------------------------------------------------------------------------ */

/* No GPU, no driver, a too old GPU, no CUDA in this build: skip.  Anything else the backend
 * reports with a GPU present (cuBLAS, memory, ...) is a failure. */
static int
is_no_gpu (const struct sd35_error *err)
{
  static const char *const reasons[] = { "no usable GPU", "driver", "compute capability",
                                         "no CUDA backend" };
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (strstr (err->message, reasons[i]) != NULL)
      return 1;
  return 0;
}

int
main (void)
{
  struct backend   *probe = NULL;
  struct sd35_error err = { 0 };
  char             *manifest;
  JsonParser       *parser;
  GError           *gerr = NULL;
  JsonArray        *goldens;
  int               n_mmdit = 0;

  if (backend_cuda_new (&probe, &err) != SD35_OK)
    {
      if (!is_no_gpu (&err))
        {
          printf ("FAIL: the CUDA backend does not start: %s\n", err.message);
          return 1;
        }
      if (getenv ("SD35_TEST_BF16_EMU") != NULL)
        gc_mode = GC_MODE_BF16_EMU;
      else if (getenv ("SD35_TEST_CPU_TWIN") != NULL)
        gc_mode = GC_MODE_CPU;
      else
        {
          printf ("SKIP: no usable CUDA GPU: %s\n", err.message);
          return TEST_SKIP;
        }
      printf ("no GPU (%s): %s\n", err.message, gc_mode == GC_MODE_CPU
              ? "checking the test itself on the fp32 CPU backend"
              : "everything on the bf16-rounding CPU emulation, through the internal APIs");
    }
  else
    backend_free (probe);

  manifest = test_shared_path_or_skip ("golden/manifest.json");
  parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, manifest, &gerr))
    {
      printf ("FAIL: %s: %s\n", manifest, gerr->message);
      return 1;
    }
  goldens = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                          "goldens");

  text_goldens (goldens);
  printf ("--- MMDiT ---\n");
  for (guint i = 0; i < json_array_get_length (goldens); i++)
    {
      JsonObject *g = json_array_get_object_element (goldens, i);
      if (strcmp (str_member (g, "kind"), "mmdit_forward") != 0)
        continue;
      mmdit_golden (g);
      n_mmdit++;
    }
  test_check (n_mmdit == 5, "%d mmdit_forward goldens run (expected 5)", n_mmdit);
  vae_goldens (goldens);
  /* the emulation cannot go through sd35_engine_open (it makes its own backends); the CPU
   * twin runs both, which checks the internal rebuild against the goldens at fp32 */
  if (gc_mode != GC_MODE_CUDA)
    gc_pipeline_internal (goldens);
  if (gc_mode != GC_MODE_BF16_EMU)
    gc_pipeline (test_shared_dir (), goldens);

  g_object_unref (parser);
  free (manifest);
  return test_exit ();
}
