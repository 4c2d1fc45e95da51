/* test_model.c — model discovery on folders built here (release layout, Hugging Face cache
 * snapshot with HOME pointing at a temporary folder, $SD35_MODEL, the golden layout of
 * ../shared), one clear SD35_ERR_MISSING naming what is missing and where it looked, pickle
 * refusal, the diffusers layout (sharded transformer, vae/, text_encoder_N/ as found files;
 * their key mapping is tests/unit/test_diffusers.c), variant detection (Turbo from a diffusers
 * folder's or HF repository's name) and the CLIP head count from config.json; the public
 * face of it (sd35.h): sd35_model_probe on complete, incomplete and missing models, and
 * sd35_model_candidates in discovery's order ($SD35_MODEL, $HF_HUB_CACHE, $HF_HOME/hub,
 * ~/.cache/huggingface/hub). */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "discover.h"
#include "safetensors.h"
#include "testutil.h"

static char *tmpdir;

static void
put (const char *dir, const char *rel, const char *content)
{
  char *p = g_build_filename (dir, rel, NULL);
  char *d = g_path_get_dirname (p);
  g_mkdir_with_parents (d, 0755);
  if (!g_file_set_contents (p, content, -1, NULL))
    test_check (0, "write %s", p);
  g_free (d);
  g_free (p);
}

/* a tiny MMDiT file: joint_blocks.0 (with ln_k unless sd3), optional attn2, optional VAE */
static void
put_mmdit (const char *dir, const char *rel, int ln_k, int attn2, int vae)
{
  struct st_writer *w = st_writer_new ();
  struct sd35_error err = { 0 };
  const int64_t     s1[1] = { 1 };
  const float       one = 1.0f;
  char             *p = g_build_filename (dir, rel, NULL);
  char             *d = g_path_get_dirname (p);

  g_mkdir_with_parents (d, 0755);
  st_writer_add_f32 (w, "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight", 1, s1,
                     &one);
  if (ln_k)
    st_writer_add_f32 (w, "model.diffusion_model.joint_blocks.0.context_block.attn.ln_k.weight",
                       1, s1, &one);
  if (attn2)
    st_writer_add_f32 (w, "model.diffusion_model.joint_blocks.0.x_block.attn2.qkv.weight", 1,
                       s1, &one);
  if (vae)
    st_writer_add_f32 (w, "first_stage_model.decoder.conv_in.bias", 1, s1, &one);
  if (st_writer_save (w, p, &err) != SD35_OK)
    test_check (0, "write %s: %s", p, err.message);
  st_writer_free (w);
  g_free (d);
  g_free (p);
}

/* the official single-file release layout under dir */
static void
make_release (const char *dir, const char *mmdit_name)
{
  put_mmdit (dir, mmdit_name, 1, 0, 1);
  put (dir, "text_encoders/clip_l.safetensors", "x");
  put (dir, "text_encoders/clip_g.safetensors", "x");
  put (dir, "text_encoders/t5xxl_fp8_e4m3fn.safetensors", "x");
  put (dir, "text_encoders/t5xxl_fp16.safetensors", "x");
  put (dir, "tokenizer/vocab.json", "{}");
  put (dir, "tokenizer/merges.txt", "#");
  put (dir, "tokenizer_2/vocab.json", "{}");
  put (dir, "tokenizer_2/merges.txt", "#");
  put (dir, "tokenizer_3/spiece.model", "x");
  put (dir, "tokenizer_3/tokenizer.json", "{}");
  put (dir, "text_encoder/config.json", "{\"num_attention_heads\": 12}");
  put (dir, "text_encoder_2/config.json", "{\"num_attention_heads\": 20}");
}

static void
rm_in (const char *dir, const char *rel)
{
  char *p = g_build_filename (dir, rel, NULL);
  g_remove (p);
  g_free (p);
}

static int
ends (const char *s, const char *suffix)
{
  return s != NULL && g_str_has_suffix (s, suffix);
}

static enum sd35_status
find (const char *model, const char *ted, const char *tokd, int need_t5,
      struct sd35_model_files *f, struct sd35_error *err)
{
  struct model_find_options o = { model, ted, tokd, need_t5 };
  sd35_error_clear (err);
  return model_find (&o, f, err);
}

static void
check_release (const char *what, const struct sd35_model_files *f, const char *mmdit_name)
{
  test_check (ends (f->mmdit, mmdit_name) && f->vae == NULL
                && ends (f->clip_l, "text_encoders/clip_l.safetensors")
                && ends (f->clip_g, "text_encoders/clip_g.safetensors")
                && ends (f->t5, "text_encoders/t5xxl_fp16.safetensors")
                && ends (f->clip_l_config, "text_encoder/config.json")
                && ends (f->clip_g_config, "text_encoder_2/config.json") && f->t5_config == NULL
                && ends (f->clip_vocab, "tokenizer/vocab.json")
                && ends (f->clip_merges, "tokenizer/merges.txt")
                && ends (f->t5_spiece, "tokenizer_3/spiece.model")
                && ends (f->t5_tokenizer_json, "tokenizer_3/tokenizer.json") && f->searched,
              "%s: every file found (mmdit %s, t5 %s, vocab %s)", what, f->mmdit, f->t5,
              f->clip_vocab);
}

static void
test_release (void)
{
  char                   *root = g_build_filename (tmpdir, "release", NULL);
  char                   *file = g_build_filename (root, "sd3.5_large.safetensors", NULL);
  struct sd35_model_files f;
  struct sd35_error       err;

  make_release (root, "sd3.5_large.safetensors");
  test_check (find (root, NULL, NULL, 1, &f, &err) == SD35_OK, "release folder: %s", err.message);
  check_release ("release folder", &f, "/sd3.5_large.safetensors");
  model_files_clear (&f);
  test_check (find (file, NULL, NULL, 1, &f, &err) == SD35_OK, "release file: %s", err.message);
  check_release ("release file", &f, "/sd3.5_large.safetensors");
  model_files_clear (&f);

  g_setenv ("SD35_MODEL", root, TRUE);
  test_check (find ("", NULL, NULL, 1, &f, &err) == SD35_OK && ends (f.mmdit, "sd3.5_large.safetensors"),
              "$SD35_MODEL when no model is given: %s", err.message);
  model_files_clear (&f);
  g_unsetenv ("SD35_MODEL");

  /* missing CLIP-G: one message naming it and the places looked at */
  rm_in (root, "text_encoders/clip_g.safetensors");
  test_check (find (root, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "CLIP-G text encoder (clip_g.safetensors; looked in "
                                        "MODEL/text_encoders, MODEL") != NULL
                && strstr (err.message, root) != NULL && strstr (err.message, "CLIP-L") == NULL
                && f.mmdit == NULL,
              "missing CLIP-G named with where it looked: %s", err.message);
  /* found in --text-encoders DIR instead */
  put (tmpdir, "extra/clip_g.safetensors", "x");
  {
    char *extra = g_build_filename (tmpdir, "extra", NULL);
    test_check (find (root, extra, NULL, 1, &f, &err) == SD35_OK
                  && ends (f.clip_g, "extra/clip_g.safetensors"),
                "--text-encoders DIR: %s", err.message);
    model_files_clear (&f);
    g_free (extra);
  }

  /* no T5 at all: an error only when T5 is needed */
  rm_in (root, "text_encoders/t5xxl_fp16.safetensors");
  rm_in (root, "text_encoders/t5xxl_fp8_e4m3fn.safetensors");
  put (root, "text_encoders/clip_g.safetensors", "x");
  test_check (find (root, NULL, NULL, 0, &f, &err) == SD35_OK && f.t5 == NULL,
              "no T5 and need_t5 = 0: %s", err.message);
  model_files_clear (&f);
  test_check (find (root, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "T5-XXL text encoder") != NULL,
              "no T5 and need_t5 = 1: %s", err.message);
  put (root, "text_encoders/t5xxl_fp8_e4m3fn.safetensors", "x");
  test_check (find (root, NULL, NULL, 1, &f, &err) == SD35_OK
                && ends (f.t5, "t5xxl_fp8_e4m3fn.safetensors"), "fp8 T5 found: %s", err.message);
  model_files_clear (&f);

  /* missing tokenizers */
  rm_in (root, "tokenizer/merges.txt");
  rm_in (root, "tokenizer_2/merges.txt");
  test_check (find (root, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "CLIP tokenizer (vocab.json + merges.txt; looked in "
                                        "MODEL/tokenizer, MODEL/tokenizer_2") != NULL,
              "missing CLIP tokenizer: %s", err.message);
  put (tmpdir, "toks/clip/vocab.json", "{}");
  put (tmpdir, "toks/clip/merges.txt", "#");
  put (tmpdir, "toks/t5/spiece.model", "x");
  {
    char *toks = g_build_filename (tmpdir, "toks", NULL);
    test_check (find (root, NULL, toks, 1, &f, &err) == SD35_OK
                  && ends (f.clip_merges, "toks/clip/merges.txt")
                  && ends (f.t5_spiece, "toks/t5/spiece.model") && f.t5_tokenizer_json == NULL,
                "--tokenizers DIR with clip/ and t5/: %s", err.message);
    model_files_clear (&f);
    g_free (toks);
  }
  g_free (file);
  g_free (root);
}

static void
test_hf_cache (void)
{
  char *home = g_build_filename (tmpdir, "home", NULL);
  char *hub = g_build_filename (home, ".cache/huggingface/hub", NULL);
  char *repo = g_build_filename (hub, "models--stabilityai--stable-diffusion-3.5-medium", NULL);
  char *old = g_build_filename (repo, "snapshots/0000old", NULL);
  char *snap = g_build_filename (repo, "snapshots/ffffmain", NULL);
  struct sd35_model_files f;
  struct sd35_error       err;

  g_unsetenv ("SD35_MODEL");
  g_unsetenv ("HF_HOME");
  g_unsetenv ("HF_HUB_CACHE");
  g_setenv ("HOME", home, TRUE);
  test_check (find (NULL, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "$SD35_MODEL (unset)") != NULL
                && strstr (err.message, "huggingface/hub/models--stabilityai") != NULL,
              "nothing anywhere: %s", err.message);
  make_release (old, "sd3.5_medium.safetensors");
  make_release (snap, "sd3.5_medium.safetensors");
  put (repo, "refs/main", "ffffmain\n");
  test_check (find (NULL, NULL, NULL, 1, &f, &err) == SD35_OK
                && strstr (f.mmdit, "snapshots/ffffmain/sd3.5_medium.safetensors") != NULL,
              "HF cache snapshot of refs/main under $HOME: %s", err.message);
  check_release ("HF snapshot", &f, "/sd3.5_medium.safetensors");
  model_files_clear (&f);

  g_setenv ("HOME", tmpdir, TRUE);
  {
    char *hf = g_build_filename (home, ".cache/huggingface", NULL);
    g_setenv ("HF_HOME", hf, TRUE);
    g_free (hf);
  }
  test_check (find (NULL, NULL, NULL, 1, &f, &err) == SD35_OK
                && strstr (f.mmdit, "ffffmain") != NULL, "$HF_HOME/hub: %s", err.message);
  model_files_clear (&f);
  g_unsetenv ("HF_HOME");
  g_free (home);
  g_free (hub);
  g_free (repo);
  g_free (old);
  g_free (snap);
}

static void
test_refusals (void)
{
  struct sd35_model_files f;
  struct sd35_error       err;
  char                   *p = g_build_filename (tmpdir, "pk/sd3.5_large.ckpt", NULL);
  char                   *d = g_build_filename (tmpdir, "pk", NULL);
  char                   *df = g_build_filename (tmpdir, "diffusers", NULL);
  char                   *two = g_build_filename (tmpdir, "two", NULL);
  char                   *none = g_build_filename (tmpdir, "no-such-model", NULL);

  put (tmpdir, "pk/sd3.5_large.ckpt", "x");
  test_check (find (p, NULL, NULL, 1, &f, &err) == SD35_ERR_FORMAT
                && strstr (err.message, "pickle") != NULL, "pickle file: %s", err.message);
  test_check (find (d, NULL, NULL, 1, &f, &err) == SD35_ERR_FORMAT
                && strstr (err.message, "pickle") != NULL, "folder with a pickle: %s",
              err.message);
  /* a diffusers layout with an empty transformer/ */
  g_mkdir_with_parents (df, 0755);
  put (df, "transformer/config.json", "{}");
  put (df, "model_index.json", "{}");
  test_check (find (df, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "diffusion_pytorch_model") != NULL,
              "diffusers folder without transformer weights: %s", err.message);
  put_mmdit (two, "sd3.5_a.safetensors", 1, 0, 1);
  put_mmdit (two, "sd3.5_b.safetensors", 1, 0, 1);
  test_check (find (two, NULL, NULL, 1, &f, &err) == SD35_ERR_ARG
                && strstr (err.message, "sd3.5_a.safetensors, sd3.5_b.safetensors") != NULL,
              "two model files: %s", err.message);
  test_check (find (none, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "no-such-model") != NULL, "absent path: %s",
              err.message);
  g_free (two);
  two = g_build_filename (tmpdir, "two/broken", NULL);
  g_mkdir_with_parents (two, 0755);
  {
    static const char bad[] = "\x08\0\0\0\0\0\0\0{\"a\":1} ";
    char             *bp = g_build_filename (two, "sd3.5_x.safetensors", NULL);
    g_file_set_contents (bp, bad, sizeof bad - 1, NULL);
    g_free (bp);
  }
  test_check (find (two, NULL, NULL, 1, &f, &err) == SD35_ERR_FORMAT
                && strstr (err.message, "not an object") != NULL, "corrupt model file: %s",
              err.message);
  /* no VAE in the file and none beside it */
  put_mmdit (tmpdir, "novae/sd3.5_large.safetensors", 1, 0, 0);
  g_free (d);
  d = g_build_filename (tmpdir, "novae", NULL);
  test_check (find (d, NULL, NULL, 0, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "VAE") != NULL, "MMDiT without VAE: %s", err.message);
  g_free (p);
  g_free (d);
  g_free (df);
  g_free (two);
  g_free (none);
}

/* The diffusers release layout: found files only (contents are not read by model_find). */
static void
test_diffusers (void)
{
  static const char *const files[] = {
    "transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
    "transformer/diffusion_pytorch_model-00002-of-00002.safetensors",
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
    "text_encoder_2/model.fp16.safetensors", "text_encoder_3/model-00001-of-00002.safetensors",
    "text_encoder_3/model.safetensors.index.json", "tokenizer/merges.txt",
    "tokenizer_2/merges.txt", "tokenizer_3/spiece.model", NULL
  };
  struct sd35_model_files f;
  struct sd35_error       err;
  char *df = g_build_filename (tmpdir, "stable-diffusion-3.5-large-turbo", NULL);
  char *tr = g_build_filename (df, "transformer", NULL);

  for (int i = 0; files[i] != NULL; i++)
    put (df, files[i], "x");
  put (df, "model_index.json", "{}");
  put (df, "tokenizer/vocab.json", "{}");
  put (df, "tokenizer_2/vocab.json", "{}");
  put (df, "text_encoder/config.json", "{\"num_attention_heads\": 12}");
  for (int pass = 0; pass < 2; pass++)
    {
      const char *model = pass == 0 ? df : tr;
      if (!test_check (find (model, NULL, NULL, 1, &f, &err) == SD35_OK, "diffusers %s: %s",
                       model, err.message))
        continue;
      test_check (ends (f.mmdit, "transformer/diffusion_pytorch_model.safetensors.index.json")
                    && ends (f.vae, "vae/diffusion_pytorch_model.safetensors")
                    && ends (f.clip_l, "text_encoder/model.safetensors")
                    && ends (f.clip_g, "text_encoder_2/model.fp16.safetensors")
                    && ends (f.t5, "text_encoder_3/model.safetensors.index.json")
                    && ends (f.clip_l_config, "text_encoder/config.json")
                    && ends (f.clip_vocab, "tokenizer/vocab.json")
                    && ends (f.t5_spiece, "tokenizer_3/spiece.model"),
                  "diffusers %s: mmdit %s, vae %s, clip_l %s, clip_g %s, t5 %s", model,
                  f.mmdit, f.vae, f.clip_l, f.clip_g, f.t5);
      model_files_clear (&f);
    }
  rm_in (df, "vae/diffusion_pytorch_model.safetensors");
  test_check (find (df, NULL, NULL, 1, &f, &err) == SD35_ERR_MISSING
                && strstr (err.message, "VAE") != NULL && strstr (err.message, "MODEL/vae"),
              "diffusers without vae/: %s", err.message);
  g_free (tr);
  g_free (df);
}

static enum sd35_variant
variant_of (const char *dir, const char *name, int force_turbo)
{
  char             *p = g_build_filename (dir, name, NULL);
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };
  enum sd35_variant v = SD35_VARIANT_UNKNOWN;

  if (st_open (p, &f, &err) == SD35_OK)
    v = model_detect_variant (f, p, force_turbo);
  else
    test_check (0, "open %s: %s", p, err.message);
  st_close (f);
  g_free (p);
  return v;
}

static void
test_variants (void)
{
  char *d = g_build_filename (tmpdir, "variants", NULL);

  put_mmdit (d, "large.safetensors", 1, 0, 1);
  put_mmdit (d, "sd3.5_large_Turbo.safetensors", 1, 0, 1);
  put_mmdit (d, "medium.safetensors", 1, 1, 1);
  put_mmdit (d, "sd3_medium.safetensors", 0, 0, 1);
  test_check (variant_of (d, "large.safetensors", 0) == SD35_VARIANT_LARGE, "Large");
  test_check (variant_of (d, "large.safetensors", 1) == SD35_VARIANT_LARGE_TURBO, "forced turbo");
  test_check (variant_of (d, "sd3.5_large_Turbo.safetensors", 0) == SD35_VARIANT_LARGE_TURBO,
              "turbo by name");
  test_check (variant_of (d, "medium.safetensors", 0) == SD35_VARIANT_MEDIUM, "attn2 → Medium");
  test_check (variant_of (d, "sd3_medium.safetensors", 0) == SD35_VARIANT_SD3_MEDIUM,
              "no ln_k → SD3 Medium");
  test_check (model_detect_variant (NULL, "x", 0) == SD35_VARIANT_UNKNOWN, "no file → unknown");
  /* diffusers: the name of the folder above transformer/, or of the HF repository */
  put_mmdit (d, "sd-3.5-large-turbo/transformer/diffusion_pytorch_model.safetensors", 1, 0, 0);
  put_mmdit (d, "turbo/sd-3.5-large/transformer/diffusion_pytorch_model.safetensors", 1, 0, 0);
  put_mmdit (d, "models--stabilityai--stable-diffusion-3.5-large-turbo/snapshots/0123/"
             "transformer/diffusion_pytorch_model.safetensors", 1, 0, 0);
  test_check (variant_of (d, "sd-3.5-large-turbo/transformer/diffusion_pytorch_model"
                          ".safetensors", 0) == SD35_VARIANT_LARGE_TURBO
                && variant_of (d, "turbo/sd-3.5-large/transformer/diffusion_pytorch_model"
                               ".safetensors", 0) == SD35_VARIANT_LARGE
                && variant_of (d, "models--stabilityai--stable-diffusion-3.5-large-turbo/"
                               "snapshots/0123/transformer/diffusion_pytorch_model.safetensors",
                               0) == SD35_VARIANT_LARGE_TURBO,
              "turbo from a diffusers folder or HF repository name");
  put (d, "cfg/bad.json", "{\"num_attention_heads\": ");
  put (d, "cfg/str.json", "{\"num_attention_heads\": \"12\"}");
  put (d, "cfg/t5.json", "{\"num_heads\": 64}");
  {
    char *bad = g_build_filename (d, "cfg/bad.json", NULL);
    char *str = g_build_filename (d, "cfg/str.json", NULL);
    char *t5 = g_build_filename (d, "cfg/t5.json", NULL);
    struct sd35_error e1 = { 0 }, e2 = { 0 }, e3 = { 0 };
    test_check (model_config_heads (bad, &e1) == -1 && e1.status == SD35_ERR_FORMAT
                  && model_config_heads (str, &e2) == -1
                  && strstr (e2.message, "\"num_attention_heads\" must be an integer in 1..4096")
                  && model_config_heads ("/nonexistent/config.json", &e3) == -1
                  && e3.status == SD35_ERR_MISSING
                  && model_config_heads (NULL, NULL) == 0 && model_config_heads (t5, NULL) == 64,
                "config heads: refused when unreadable or of the wrong type (%s | %s | %s), "
                "num_heads for T5", e1.message, e2.message, e3.message);
    g_free (bad);
    g_free (str);
    g_free (t5);
  }
  g_free (d);
}

static void
test_golden (void)
{
  const char             *shared = test_shared_dir ();
  char                   *models, *toks, *large;
  struct sd35_model_files f;
  struct sd35_error       err;

  if (shared == NULL)
    {
      printf ("note: ../shared absent, golden-layout checks skipped\n");
      return;
    }
  models = g_build_filename (shared, "golden", "models", NULL);
  toks = g_build_filename (shared, "tokenizers", NULL);
  large = g_build_filename (models, "sd3.5_tiny_large.safetensors", NULL);
  test_check (find (large, NULL, toks, 1, &f, &err) == SD35_OK
                && ends (f.clip_l, "models/clip_l.safetensors")
                && ends (f.clip_g, "models/clip_g.safetensors")
                && ends (f.t5, "models/t5xxl.safetensors")
                && ends (f.clip_l_config, "models/text_encoder/config.json")
                && ends (f.clip_g_config, "models/text_encoder_2/config.json")
                && ends (f.t5_config, "models/text_encoder_3/config.json")
                && ends (f.clip_vocab, "tokenizers/clip/vocab.json")
                && ends (f.t5_spiece, "tokenizers/t5/spiece.model")
                && ends (f.t5_tokenizer_json, "tokenizers/t5/tokenizer.json"),
              "golden layout: %s", err.message);
  if (err.status == SD35_OK)
    {
      test_check (model_config_heads (f.clip_l_config, NULL) == 3, "golden CLIP-L heads 3");
      test_check (model_config_heads (f.clip_g_config, NULL) == 2, "golden CLIP-G heads 2");
    }
  model_files_clear (&f);
  test_check (find (models, NULL, toks, 1, &f, &err) == SD35_ERR_ARG,
              "golden folder holds two models: %s", err.message);
  test_check (variant_of (models, "sd3.5_tiny_large.safetensors", 0) == SD35_VARIANT_LARGE,
              "tiny_large → Large");
  test_check (variant_of (models, "sd3.5_tiny_medium.safetensors", 0) == SD35_VARIANT_MEDIUM,
              "tiny_medium → Medium");
  test_check (variant_of (models, "sd3.5_tiny_large.safetensors", 1)
                == SD35_VARIANT_LARGE_TURBO, "tiny_large forced turbo → Large Turbo");
  g_free (models);
  g_free (toks);
  g_free (large);
}

/* sd35_model_probe: what a folder holds, without loading a weight */
static void
test_probe (void)
{
  char                    *dir = g_build_filename (tmpdir, "probe", NULL);
  char                    *missing = g_build_filename (tmpdir, "probe-none", NULL);
  struct sd35_model_probe  p;
  struct sd35_error        err = { 0 };
  enum sd35_status         st;

  make_release (dir, "sd3.5_large.safetensors");
  st = sd35_model_probe (dir, &p, &err);
  test_check (st == SD35_OK && p.variant == SD35_VARIANT_LARGE && p.mmdit_path != NULL &&
              ends (p.mmdit_path, "/sd3.5_large.safetensors") && p.clip_l_path != NULL &&
              p.clip_g_path != NULL && p.t5_path != NULL && p.has_clip_tokenizer &&
              p.has_t5_tokenizer && p.missing == NULL && p.message != NULL &&
              strstr (p.message, "SD3.5 Large") != NULL,
              "probe of a complete release: %s (%s)", p.message, err.message);
  sd35_model_probe_clear (&p);

  /* without T5 the model is still usable, and the message says so */
  rm_in (dir, "text_encoders/t5xxl_fp8_e4m3fn.safetensors");
  rm_in (dir, "text_encoders/t5xxl_fp16.safetensors");
  st = sd35_model_probe (dir, &p, NULL);
  test_check (st == SD35_OK && p.t5_path == NULL && strstr (p.message, "without T5") != NULL,
              "probe without T5: %s", p.message);
  sd35_model_probe_clear (&p);

  /* CLIP-G missing: not usable, but what was found is still reported */
  rm_in (dir, "text_encoders/clip_g.safetensors");
  memset (&err, 0, sizeof err);
  st = sd35_model_probe (dir, &p, &err);
  test_check (st == SD35_ERR_MISSING && err.status == SD35_ERR_MISSING &&
              p.mmdit_path != NULL && p.clip_l_path != NULL && p.clip_g_path == NULL &&
              p.variant == SD35_VARIANT_LARGE && p.missing != NULL &&
              strstr (p.missing, "CLIP-G") != NULL && strstr (p.message, "CLIP-G") != NULL,
              "probe without CLIP-G: missing '%s', message '%s'", p.missing ? p.missing : "",
              p.message ? p.message : "");
  sd35_model_probe_clear (&p);

  /* not a model at all */
  st = sd35_model_probe (missing, &p, NULL);
  test_check (st == SD35_ERR_MISSING && p.mmdit_path == NULL && p.message != NULL &&
              strstr (p.message, "probe-none") != NULL, "probe of a missing path: %s",
              p.message ? p.message : "");
  sd35_model_probe_clear (&p);
  test_check (p.message == NULL && p.mmdit_path == NULL, "probe_clear empties the probe");
  g_free (missing);
  g_free (dir);
}

/* sd35_model_candidates: $SD35_MODEL first, then the hubs in discovery's order, and the first
 * cache candidate is what discovery loads with no model given */
static void
test_candidates (void)
{
  char                     *root = g_build_filename (tmpdir, "cand", NULL);
  char                     *own = g_build_filename (root, "own", NULL);
  char                     *hub = g_build_filename (root, "hubcache", NULL);
  char                     *hfhome = g_build_filename (root, "hfhome", NULL);
  char                     *home = g_build_filename (root, "home", NULL);
  char                     *snap1 = g_build_filename (hub, "models--stabilityai--stable-diffusion-3.5-large",
                                                      "snapshots", "aaaa", NULL);
  char                     *snap2 = g_build_filename (hfhome, "hub", "models--stabilityai--stable-diffusion-3.5-medium",
                                                      "snapshots", "bbbb", NULL);
  char                     *snap3 = g_build_filename (home, ".cache", "huggingface", "hub",
                                                      "models--stabilityai--stable-diffusion-3.5-large-turbo",
                                                      "snapshots", "cccc", NULL);
  char                     *other = g_build_filename (hub, "models--someone--other-model",
                                                      "snapshots", "dddd", NULL);
  char                    **c;
  struct model_find_options fo = { NULL, NULL, NULL, 0 };
  struct sd35_model_files   f;
  struct sd35_error         err = { 0 };
  int                       n = 0;

  make_release (own, "sd3.5_large.safetensors");
  make_release (snap1, "sd3.5_large.safetensors");
  make_release (snap2, "sd3.5_medium.safetensors");
  make_release (snap3, "sd3.5_large_turbo.safetensors");
  make_release (other, "sd3.5_large.safetensors");
  g_setenv ("SD35_MODEL", own, TRUE);
  g_setenv ("HF_HUB_CACHE", hub, TRUE);
  g_setenv ("HF_HOME", hfhome, TRUE);
  g_setenv ("HOME", home, TRUE);
  c = sd35_model_candidates ();
  while (c != NULL && c[n] != NULL)
    n++;
  test_check (n == 4 && strcmp (c[0], own) == 0 && strcmp (c[1], snap1) == 0 &&
              strcmp (c[2], snap2) == 0 && strcmp (c[3], snap3) == 0,
              "candidates: $SD35_MODEL, $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub "
              "in this order, other repositories left out (%d: %s ...)", n,
              n > 0 ? c[0] : "none");
  sd35_strv_free (c);

  /* with $SD35_MODEL unset, discovery loads the first cache candidate */
  g_unsetenv ("SD35_MODEL");
  c = sd35_model_candidates ();
  test_check (c != NULL && c[0] != NULL && strcmp (c[0], snap1) == 0 &&
              model_find (&fo, &f, &err) == SD35_OK && g_str_has_prefix (f.mmdit, snap1),
              "discovery picks the first candidate: %s (%s)", c && c[0] ? c[0] : "none",
              err.message);
  sd35_strv_free (c);
  model_files_clear (&f);

  /* $HF_HUB_CACHE unset: $HF_HOME/hub comes first */
  g_unsetenv ("HF_HUB_CACHE");
  c = sd35_model_candidates ();
  test_check (c != NULL && c[0] != NULL && strcmp (c[0], snap2) == 0 && c[1] != NULL &&
              strcmp (c[1], snap3) == 0 && c[2] == NULL,
              "without $HF_HUB_CACHE: $HF_HOME/hub, then ~/.cache/huggingface/hub");
  sd35_strv_free (c);
  g_unsetenv ("HF_HOME");
  g_setenv ("HOME", tmpdir, TRUE);
  g_free (other);
  g_free (snap3);
  g_free (snap2);
  g_free (snap1);
  g_free (home);
  g_free (hfhome);
  g_free (hub);
  g_free (own);
  g_free (root);
}

int
main (void)
{
  tmpdir = test_make_tmpdir ("model");
  test_golden ();
  test_variants ();
  test_refusals ();
  test_diffusers ();
  test_release ();
  test_hf_cache ();
  test_probe ();
  test_candidates ();
  test_remove_tree (tmpdir);
  free (tmpdir);
  return test_exit ();
}
