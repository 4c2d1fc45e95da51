/* LoRA (sd35_engine_set_loras, engine/dit/lora.c) on the tiny golden models, through the
 * public API, against checkpoints merged independently by numpy (tests/tools/
 * make_lora_fixtures.py → tests/data/lora/):
 *   - each key format (diffusers/PEFT, kohya with α and text encoders, official keys) and two
 *     LoRAs at once give the output of the numpy-merged checkpoint (within 1e-4; the same
 *     stored weights are expected, so normally exactly);
 *   - strength 0, and removing the set, give the output without LoRA bit for bit;
 *   - a LoRA changes the generation; unmatched keys are counted; Flux/SDXL LoRAs are refused
 *     by name and leave the previous set in place;
 *   - with text-encoder offloading (reloads from the files) the result is the same;
 *   - a strength switch on the open engine is timed against opening the engine.
 * Usage: test_lora [cpu|cuda]  (the gpu suite runs it with cuda; 77 without a GPU). */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "safetensors.h"
#include "sd35.h"
#include "testutil.h"

static enum sd35_backend_kind backend = SD35_BACKEND_CPU;
static const char *shared, *fixtures;

struct part_file
{
  const char *part;    /* key part in expected.safetensors */
  const char *golden;  /* under shared/ */
  const char *name;    /* in the model folder */
};

static const struct part_file parts[] = {
  { "mmdit", "golden/models/sd3.5_tiny_large.safetensors", "sd3.5_large.safetensors" },
  { "clip_l", "golden/models/clip_l.safetensors", "text_encoders/clip_l.safetensors" },
  { "clip_g", "golden/models/clip_g.safetensors", "text_encoders/clip_g.safetensors" },
  { "t5", "golden/models/t5xxl.safetensors", "text_encoders/t5xxl_fp16.safetensors" },
};

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
link_shared (const char *rel, const char *dir, const char *name)
{
  char src[1024], dst[1024];

  snprintf (src, sizeof src, "%s/%s", shared, rel);
  snprintf (dst, sizeof dst, "%s/%s", dir, name);
  if (symlink (src, dst) != 0)
    {
      printf ("FAIL: symlink %s → %s\n", dst, src);
      exit (1);
    }
}

/* A copy of `golden` with every tensor found under one of the expected-file prefixes
 * ("kohya/clip_l/") replaced by that (numpy-merged) tensor; the first prefix wins. */
static void
write_merged (struct st_file *expected, const char *const *prefixes, int n_prefixes,
              const struct part_file *pf, const char *out)
{
  char             path[1024];
  struct st_file  *src = NULL;
  struct st_writer *w = st_writer_new ();
  struct sd35_error err = { 0 };
  int              bad = 0;

  snprintf (path, sizeof path, "%s/%s", shared, pf->golden);
  if (st_open (path, &src, &err) != SD35_OK)
    {
      printf ("FAIL: %s\n", err.message);
      exit (1);
    }
  for (size_t i = 0; i < st_count (src); i++)
    {
      const struct st_tensor *t = st_at (src, i), *m = NULL;
      for (int p = 0; p < n_prefixes && m == NULL; p++)
        {
          char key[1024];
          snprintf (key, sizeof key, "%s/%s/%s", prefixes[p], pf->part, t->name);
          m = st_find (expected, key);
        }
      if (m != NULL && (m->dtype != t->dtype || m->numel != t->numel))
        bad |= test_check (0, "expected %s: dtype/shape differ from the model", m->name) == 0;
      bad |= st_writer_add (w, t->name, t->dtype, t->ndim, t->shape, m ? m->data : t->data);
    }
  if (bad || st_writer_save (w, out, &err) != SD35_OK)
    {
      printf ("FAIL: writing %s: %s\n", out, err.message);
      exit (1);
    }
  st_writer_free (w);
  st_close (src);
}

/* A model folder (the official layout) of the tiny Large model; with `prefixes`, the parts
 * are the merged copies. */
static void
make_layout (const char *dir, struct st_file *expected, const char *const *prefixes,
             int n_prefixes)
{
  static const char *const sub[] = { "text_encoders", "text_encoder", "text_encoder_2",
                                     "text_encoder_3", "tokenizer", "tokenizer_2",
                                     "tokenizer_3" };
  char path[1024];

  mkdir (dir, 0755);
  for (size_t i = 0; i < G_N_ELEMENTS (sub); i++)
    {
      snprintf (path, sizeof path, "%s/%s", dir, sub[i]);
      mkdir (path, 0755);
    }
  for (size_t i = 0; i < G_N_ELEMENTS (parts); i++)
    if (prefixes == NULL)
      link_shared (parts[i].golden, dir, parts[i].name);
    else
      {
        snprintf (path, sizeof path, "%s/%s", dir, parts[i].name);
        write_merged (expected, prefixes, n_prefixes, &parts[i], path);
      }
  link_shared ("golden/models/text_encoder/config.json", dir, "text_encoder/config.json");
  link_shared ("golden/models/text_encoder_2/config.json", dir, "text_encoder_2/config.json");
  link_shared ("golden/models/text_encoder_3/config.json", dir, "text_encoder_3/config.json");
  link_shared ("tokenizers/clip/vocab.json", dir, "tokenizer/vocab.json");
  link_shared ("tokenizers/clip/merges.txt", dir, "tokenizer/merges.txt");
  link_shared ("tokenizers/clip/vocab.json", dir, "tokenizer_2/vocab.json");
  link_shared ("tokenizers/clip/merges.txt", dir, "tokenizer_2/merges.txt");
  link_shared ("tokenizers/t5/spiece.model", dir, "tokenizer_3/spiece.model");
}

static sd35_engine *
open_engine (const char *dir, int offload, double *seconds)
{
  struct sd35_engine_options o;
  struct sd35_error          err = { 0 };
  sd35_engine               *e = NULL;
  double                     t0 = now_s ();

  sd35_engine_options_init (&o);
  o.backend = backend;
  o.model_path = dir;
  o.offload_text_encoders = offload;
  if (sd35_engine_open (&o, &e, &err) != SD35_OK)
    {
      if (backend == SD35_BACKEND_CUDA && err.status == SD35_ERR_CUDA)
        {
          printf ("SKIP: no usable GPU: %s\n", err.message);
          exit (TEST_SKIP);
        }
      printf ("FAIL: open %s: %s\n", dir, err.message);
      exit (1);
    }
  if (seconds != NULL)
    *seconds = now_s () - t0;
  return e;
}

/* A small generation (64×64, 2 Euler steps, CFG 4.5: cond and uncond, so the text encoders
 * count); returns the image in [-1, 1] (3·64·64 floats, caller frees). */
static float *
generate (sd35_engine *e, const char *prompt)
{
  struct sd35_params p;
  struct sd35_result r;
  struct sd35_error  err = { 0 };
  float             *img;

  sd35_params_init (&p);
  p.prompt = prompt;
  p.width = p.height = 64;
  p.steps = 2;
  p.cfg = 4.5;
  p.sampler = SD35_SAMPLER_EULER;
  p.seed = 7;
  memset (&r, 0, sizeof r);
  if (sd35_generate (e, &p, NULL, &r, &err) != SD35_OK)
    {
      printf ("FAIL: generate: %s\n", err.message);
      exit (1);
    }
  img = g_memdup2 (r.image_float, 3 * 64 * 64 * sizeof (float));
  sd35_result_clear (&r);
  return img;
}

static double
max_abs_diff (const float *a, const float *b)
{
  double m = 0;

  for (size_t i = 0; i < 3 * 64 * 64; i++)
    m = fmax (m, fabs ((double) a[i] - b[i]));
  return m;
}

static int
set_loras (sd35_engine *e, const struct sd35_lora *l, int n, struct sd35_error *err)
{
  memset (err, 0, sizeof *err);
  return sd35_engine_set_loras (e, l, n, err);
}

static void
fixture (char *buf, size_t size, const char *name)
{
  snprintf (buf, size, "%s/%s.safetensors", fixtures, name);
}

/* A small LoRA file with the given module names (rank 2, zeros). */
static void
write_foreign_lora (const char *path, const char *const *modules, int n)
{
  struct st_writer *w = st_writer_new ();
  struct sd35_error err = { 0 };
  float             zeros[2 * 64] = { 0 };

  for (int i = 0; i < n; i++)
    {
      char key[512];
      snprintf (key, sizeof key, "%s.lora_down.weight", modules[i]);
      st_writer_add_f32 (w, key, 2, (int64_t[]) { 2, 64 }, zeros);
      snprintf (key, sizeof key, "%s.lora_up.weight", modules[i]);
      st_writer_add_f32 (w, key, 2, (int64_t[]) { 64, 2 }, zeros);
    }
  if (st_writer_save (w, path, &err) != SD35_OK)
    printf ("FAIL: %s\n", err.message);
  st_writer_free (w);
}

int
main (int argc, char **argv)
{
  static const struct
  {
    const char *name;
    const char *files[2];
    double      strengths[2];
    int         n;
    const char *prefixes[3];
    int         n_prefixes;
  } scenarios[] = {
    { "diffusers", { "diffusers" }, { 1.0 }, 1, { "diffusers" }, 1 },
    { "kohya", { "kohya" }, { 0.8 }, 1, { "kohya" }, 1 },
    { "official", { "official" }, { -1.5 }, 1, { "official" }, 1 },
    { "pair", { "kohya", "official" }, { 0.8, -1.5 }, 2, { "pair", "kohya", "official" }, 3 },
  };
  const char        *prompt = "a photo of a cat";
  char               path[1024], path2[1024], base_dir[1024], dir[1024];
  char              *tmp, *expected_path;
  struct st_file    *expected = NULL;
  struct sd35_error  err = { 0 };
  sd35_engine       *e, *m;
  float             *base, *img, *kohya_img = NULL;
  double             t_open, t0, t_switch, t_first;
  const char        *src_dir = getenv ("SD35_SOURCE_DIR");

  if (argc > 1 && strcmp (argv[1], "cuda") == 0)
    backend = SD35_BACKEND_CUDA;
  free (test_shared_path_or_skip ("golden/models/sd3.5_tiny_large.safetensors"));
  free (test_shared_path_or_skip ("tokenizers/t5/spiece.model"));
  shared = test_shared_dir ();
  fixtures = g_strdup_printf ("%s/tests/data/lora", src_dir ? src_dir : ".");
  expected_path = g_strdup_printf ("%s/expected.safetensors", fixtures);
  if (st_open (expected_path, &expected, &err) != SD35_OK)
    {
      printf ("FAIL: %s\n", err.message);
      return 1;
    }
  tmp = test_make_tmpdir ("lora");
  snprintf (base_dir, sizeof base_dir, "%s/base", tmp);
  make_layout (base_dir, NULL, NULL, 0);

  e = open_engine (base_dir, 0, &t_open);
  base = generate (e, prompt);

  /* strength 0 = no LoRA, bit for bit */
  fixture (path, sizeof path, "diffusers");
  test_check (set_loras (e, &(struct sd35_lora) { path, 0.0 }, 1, &err) == SD35_OK,
              "diffusers at strength 0: %s", err.message);
  img = generate (e, prompt);
  test_check (memcmp (img, base, 3 * 64 * 64 * sizeof (float)) == 0,
              "strength 0 gives the output without LoRA bit for bit (max diff %g)",
              max_abs_diff (img, base));
  g_free (img);

  for (size_t s = 0; s < G_N_ELEMENTS (scenarios); s++)
    {
      struct sd35_lora l[2];
      double           d, dm;
      float           *merged;

      for (int i = 0; i < scenarios[s].n; i++)
        {
          fixture (i ? path2 : path, sizeof path, scenarios[s].files[i]);
          l[i].path = i ? path2 : path;
          l[i].strength = scenarios[s].strengths[i];
        }
      t0 = now_s ();
      if (!test_check (set_loras (e, l, scenarios[s].n, &err) == SD35_OK, "%s: set: %s",
                       scenarios[s].name, err.message))
        continue;
      t_first = now_s () - t0;
      printf ("%s (%.3f s):\n%s\n", scenarios[s].name, t_first, sd35_engine_lora_report (e));
      img = generate (e, prompt);
      snprintf (dir, sizeof dir, "%s/%s", tmp, scenarios[s].name);
      make_layout (dir, expected, scenarios[s].prefixes, scenarios[s].n_prefixes);
      m = open_engine (dir, 0, NULL);
      merged = generate (m, prompt);
      sd35_engine_free (m);
      d = max_abs_diff (img, merged);
      dm = max_abs_diff (img, base);
      test_check (d <= 1e-4, "%s: LoRA output = numpy-merged checkpoint's (max |diff| %g, "
                  "tolerance 1e-4)", scenarios[s].name, d);
      test_check (dm > 1e-3, "%s: the LoRA changes the generation (max |diff| to no LoRA %g)",
                  scenarios[s].name, dm);
      if (strcmp (scenarios[s].name, "kohya") == 0)
        {
          kohya_img = img;
          img = NULL;
          /* one module for a block the model lacks, one DoRA key */
          test_check (strstr (sd35_engine_lora_report (e), "2 keys matched nothing") != NULL,
                      "kohya: unmatched keys counted in the report");
          test_check (strstr (sd35_engine_lora_report (e), "CLIP-L 2, CLIP-G 1, T5 1") != NULL,
                      "kohya: text-encoder layers counted");
        }
      g_free (img);
      g_free (merged);
    }

  /* a strength switch on the open engine: only the touched tensors are rebuilt */
  fixture (path, sizeof path, "kohya");
  t0 = now_s ();
  test_check (set_loras (e, &(struct sd35_lora) { path, 0.5 }, 1, &err) == SD35_OK,
              "kohya 0.5: %s", err.message);
  t_switch = now_s () - t0;
  printf ("strength switch %.4f s on the open engine; opening the engine took %.3f s\n",
          t_switch, t_open);
  test_check (set_loras (e, &(struct sd35_lora) { path, 0.8 }, 1, &err) == SD35_OK,
              "kohya 0.8 again: %s", err.message);
  img = generate (e, prompt);
  test_check (kohya_img && memcmp (img, kohya_img, 3 * 64 * 64 * sizeof (float)) == 0,
              "kohya 0.8 after 0.5: the same output as before, bit for bit");
  g_free (img);

  /* foreign LoRAs are refused by family; the set in place stays */
  {
    const char *flux[] = { "lora_unet_double_blocks_0_img_attn_qkv",
                           "lora_unet_single_blocks_0_linear1" };
    const char *sdxl[] = { "lora_unet_down_blocks_1_attentions_0_proj_in",
                           "lora_te2_text_model_encoder_layers_0_self_attn_q_proj" };
    snprintf (path2, sizeof path2, "%s/flux.safetensors", tmp);
    write_foreign_lora (path2, flux, 2);
    test_check (set_loras (e, &(struct sd35_lora) { path2, 1.0 }, 1, &err) == SD35_ERR_FORMAT &&
                strstr (err.message, "Flux") != NULL, "Flux LoRA refused: %s", err.message);
    snprintf (path2, sizeof path2, "%s/sdxl.safetensors", tmp);
    write_foreign_lora (path2, sdxl, 2);
    test_check (set_loras (e, &(struct sd35_lora) { path2, 1.0 }, 1, &err) == SD35_ERR_FORMAT &&
                strstr (err.message, "SDXL") != NULL, "SDXL LoRA refused: %s", err.message);
    img = generate (e, prompt);
    test_check (kohya_img && memcmp (img, kohya_img, 3 * 64 * 64 * sizeof (float)) == 0,
                "after the refusals the kohya set is still in place");
    g_free (img);
  }

  /* no LoRA again: every weight back bit for bit */
  test_check (set_loras (e, NULL, 0, &err) == SD35_OK, "clear: %s", err.message);
  test_check (strcmp (sd35_engine_lora_report (e), "") == 0, "empty report without LoRA");
  img = generate (e, prompt);
  test_check (memcmp (img, base, 3 * 64 * 64 * sizeof (float)) == 0,
              "LoRAs removed: the output without LoRA bit for bit (max diff %g)",
              max_abs_diff (img, base));
  g_free (img);
  sd35_engine_free (e);

  /* text encoders offloaded and reloaded from their files: the LoRA goes in again */
  e = open_engine (base_dir, 1, NULL);
  test_check (set_loras (e, &(struct sd35_lora) { path, 0.8 }, 1, &err) == SD35_OK,
              "offload engine, kohya: %s", err.message);
  g_free (generate (e, "another prompt"));  /* encoders offloaded after this one */
  img = generate (e, prompt);               /* reloaded, merged again */
  test_check (kohya_img && memcmp (img, kohya_img, 3 * 64 * 64 * sizeof (float)) == 0,
              "with text-encoder offloading the kohya output is the same bit for bit");
  g_free (img);
  sd35_engine_free (e);

  /* the CLI: --lora changes the image, --lora FILE:0 does not */
  if (backend == SD35_BACKEND_CPU && getenv ("SD35_CLI") != NULL)
    {
      char  outs[3][1024], lora0[1100], lora1[1100];
      gchar *png[3] = { NULL, NULL, NULL };
      gsize  len[3] = { 0, 0, 0 };

      snprintf (lora0, sizeof lora0, "%s:0", path);
      snprintf (lora1, sizeof lora1, "%s:0.8", path);
      for (int i = 0; i < 3; i++)
        {
          char *cli[] = { (char *) getenv ("SD35_CLI"), "txt2img", "--model", base_dir,
                          "--backend", "cpu", "--prompt", (char *) prompt, "--width", "64",
                          "--height", "64", "--steps", "2", "--seed", "7", "--out", outs[i],
                          "--quiet", "--lora", i == 1 ? lora0 : lora1, NULL };
          snprintf (outs[i], sizeof outs[i], "%s/cli%d.png", tmp, i);
          if (i == 0)
            cli[19] = NULL;  /* no --lora */
          test_check (test_run_argv (cli) == 0, "CLI run %d", i);
          g_file_get_contents (outs[i], &png[i], &len[i], NULL);
        }
      test_check (png[0] && png[1] && len[0] == len[1] && memcmp (png[0], png[1], len[0]) == 0,
                  "CLI: --lora FILE:0 writes the same PNG as no --lora");
      test_check (png[0] && png[2] && (len[0] != len[2] || memcmp (png[0], png[2], len[0]) != 0),
                  "CLI: --lora FILE:0.8 changes the PNG");
      for (int i = 0; i < 3; i++)
        g_free (png[i]);
    }

  g_free (kohya_img);
  g_free (base);
  st_close (expected);
  g_free (expected_path);
  g_free ((char *) fixtures);
  test_remove_tree (tmp);
  free (tmp);
  return test_exit ();
}
