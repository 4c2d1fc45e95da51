/* test_gguf_model.c — a GGUF Q8_0 model end to end: the tiny SD3.5 Medium's MMDiT converted as
 * ComfyUI-GGUF does (tests/tools/make_gguf.py convert: bare names, vectors in F32, matrices in
 * Q8_0, the y_embedder's 112-wide rows in F16), committed as
 * tests/data/gguf/sd3.5_tiny_medium-Q8_0.gguf, against the same model from its safetensors
 * (f16 weights computed in fp32).
 *   - discovery: the .gguf alone (no VAE anywhere) is refused with a message that says what
 *     is needed; with the official single file beside it, that file's VAE is used;
 *   - variant detection reads the bare GGUF names (Medium);
 *   - txt2img 128×128, 4 Euler steps, cfg 4.5: the final latent within 2 % of its largest
 *     value of the fp32 run, the VAE output within 3 %, the 8-bit image within 6 levels
 *     (measured when written: 1.46 %, 1.4 % and 4 levels; Q8_0 rounds each weight to 8 bits of
 *     its 32-value block's scale);
 *   - a LoRA merges into the quantized model and its removal restores it bit for bit. */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "sd35.h"
#include "testutil.h"

static void
link_or_die (const char *src, const char *dst)
{
  if (symlink (src, dst) != 0)
    {
      printf ("FAIL: symlink %s → %s\n", src, dst);
      exit (1);
    }
}

static sd35_engine *
open_engine (const char *model)
{
  struct sd35_engine_options o;
  struct sd35_error          err = { 0 };
  sd35_engine               *e = NULL;

  sd35_engine_options_init (&o);
  o.backend = SD35_BACKEND_CPU;
  o.model_path = model;
  o.n_threads = 2;
  if (!test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open %s (%s)", model,
                   err.message))
    return NULL;
  test_check (sd35_engine_info (e)->variant == SD35_VARIANT_MEDIUM, "%s: detected as %s",
              model, sd35_engine_info (e)->variant_name);
  return e;
}

static int
generate (sd35_engine *e, const char *what, struct sd35_result *r)
{
  struct sd35_params p;
  struct sd35_error  err = { 0 };

  sd35_params_init (&p);
  p.prompt = "a red fox in the snow, watercolour";
  p.negative_prompt = "blurry";
  p.width = p.height = 128;
  p.steps = 4;
  p.cfg = 4.5;
  p.sampler = SD35_SAMPLER_EULER;
  p.seed = 1234;
  memset (r, 0, sizeof *r);
  return test_check (sd35_generate (e, &p, NULL, r, &err) == SD35_OK, "generate with %s (%s)",
                     what, err.message);
}

/* A LoRA on the GGUF model: the touched Q8_0 layers are merged into bf16, and removing it
 * restores the quantized weights bit for bit. */
static void
check_lora (sd35_engine *e, const char *dir, const struct sd35_result *plain)
{
  char              *lp = g_build_filename (dir, "lora.safetensors", NULL);
  struct sd35_lora   l = { lp, 1.0 };
  struct sd35_error  err = { 0 };
  struct sd35_result r = { 0 };
  size_t             n = (size_t) 128 * 128 * 3;
  struct st_writer  *w = st_writer_new ();
  float              down[2 * 192], up[576 * 2];
  const int64_t      sd[2] = { 2, 192 }, su[2] = { 576, 2 };

  /* rank 2 on block 0's x qkv and fc1 (the tiny Medium: 192 wide), official key form */
  for (int i = 0; i < 2 * 192; i++)
    down[i] = 0.05f * sinf (0.3f * (float) i);
  for (int i = 0; i < 576 * 2; i++)
    up[i] = 0.05f * cosf (0.7f * (float) i);
  st_writer_add_f32 (w, "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_down.weight",
                     2, sd, down);
  st_writer_add_f32 (w, "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_up.weight",
                     2, su, up);
  test_check (st_writer_save (w, lp, &err) == SD35_OK, "LoRA written (%s)", err.message);
  st_writer_free (w);

  if (test_check (sd35_engine_set_loras (e, &l, 1, &err) == SD35_OK,
                  "a LoRA merges into the Q8_0 GGUF model (%s)", err.message)
      && test_check (strstr (sd35_engine_lora_report (e), "MMDiT 1") != NULL, "report: %s",
                     sd35_engine_lora_report (e))
      && generate (e, "GGUF + LoRA", &r))
    test_check (memcmp (r.image_float, plain->image_float, n * 4) != 0,
                "the LoRA changes the GGUF model's image");
  sd35_result_clear (&r);
  if (test_check (sd35_engine_set_loras (e, NULL, 0, &err) == SD35_OK, "LoRA removed (%s)",
                  err.message)
      && generate (e, "GGUF after the LoRA", &r))
    test_check (memcmp (r.image_float, plain->image_float, n * 4) == 0,
                "without the LoRA the GGUF model gives its first image again, bit for bit");
  sd35_result_clear (&r);
  g_free (lp);
}

int
main (void)
{
  const char *shared = test_shared_dir ();
  const char *src = test_env_or_skip ("SD35_SOURCE_DIR");
  char       *tiny = test_shared_path_or_skip ("golden/models/sd3.5_tiny_medium.safetensors");
  char       *spiece = test_shared_path_or_skip ("tokenizers/t5/spiece.model");
  char       *root = test_make_tmpdir ("gguf-model");
  char       *ref_dir = g_build_filename (root, "ref", NULL);
  char       *q_dir = g_build_filename (root, "q8", NULL);
  char       *gguf_src = g_build_filename (src, "tests", "data", "gguf",
                                           "sd3.5_tiny_medium-Q8_0.gguf", NULL);
  char       *gguf = g_build_filename (q_dir, "sd3.5_tiny_medium-Q8_0.gguf", NULL);
  char       *ref_mmdit = g_build_filename (ref_dir, "sd3.5_medium.safetensors", NULL);
  char       *beside = g_build_filename (q_dir, "sd3.5_medium.safetensors", NULL);
  struct sd35_result rr = { 0 }, rq = { 0 };
  sd35_engine       *er = NULL, *eq = NULL;

  if (!test_tiny_model_layout (shared, ref_dir, NULL, NULL)
      || !test_tiny_model_layout (shared, q_dir, NULL, NULL))
    return test_exit ();
  link_or_die (tiny, ref_mmdit);
  link_or_die (gguf_src, gguf);

  /* the GGUF alone: no VAE */
  {
    struct sd35_engine_options o;
    struct sd35_error          err = { 0 };
    sd35_engine               *e = NULL;
    sd35_engine_options_init (&o);
    o.backend = SD35_BACKEND_CPU;
    o.model_path = gguf;
    test_check (sd35_engine_open (&o, &e, &err) == SD35_ERR_MISSING
                && strstr (err.message, "holds only the diffusion model") != NULL
                && strstr (err.message, "vae.safetensors") != NULL,
                "a .gguf without a VAE beside it is refused, saying what is needed (%s)",
                err.message);
    sd35_engine_free (e);
  }

  link_or_die (tiny, beside);  /* the official single file beside the GGUF: its VAE */

  /* a GGUF of another model family (general.architecture) is refused by name */
  {
    char                      *buf = NULL, *other = g_build_filename (q_dir, "other.gguf", NULL);
    gsize                      len = 0;
    struct sd35_engine_options o;
    struct sd35_error          err = { 0 };
    sd35_engine               *e = NULL;
    char                      *at;
    if (g_file_get_contents (gguf_src, &buf, &len, NULL)
        && (at = memmem (buf, len, "general.architecture", 20)) != NULL
        && memcmp (at + 20 + 4 + 8, "sd3", 3) == 0)
      {
        memcpy (at + 20 + 4 + 8, "sdx", 3);
        g_file_set_contents (other, buf, (gssize) len, NULL);
        sd35_engine_options_init (&o);
        o.backend = SD35_BACKEND_CPU;
        o.model_path = other;
        test_check (sd35_engine_open (&o, &e, &err) == SD35_ERR_FORMAT
                    && strstr (err.message, "holds a \"sdx\" model") != NULL,
                    "a GGUF of another family is refused (%s)", err.message);
        sd35_engine_free (e);
        unlink (other);
      }
    else
      test_check (0, "general.architecture = sd3 found in %s", gguf_src);
    g_free (buf);
    g_free (other);
  }
  if ((er = open_engine (ref_mmdit)) != NULL && (eq = open_engine (gguf)) != NULL
      && generate (er, "fp32", &rr) && generate (eq, "GGUF Q8_0", &rq))
    {
      size_t n_lat = (size_t) 16 * 16 * 16;
      test_close ("Q8_0 GGUF final latent vs fp32", rq.final_latent, rr.final_latent, n_lat,
                  2e-2);
      test_close ("Q8_0 GGUF image vs fp32", rq.image_float, rr.image_float,
                  (size_t) 3 * 128 * 128, 3e-2);
      test_within_u8 ("Q8_0 GGUF 8-bit image vs fp32", rq.rgb, rr.rgb, (size_t) 128 * 128 * 3,
                      6);
      check_lora (eq, root, &rq);
    }
  sd35_engine_free (er);
  sd35_engine_free (eq);
  sd35_result_clear (&rr);
  sd35_result_clear (&rq);
  test_remove_tree (root);
  g_free (ref_dir);
  g_free (q_dir);
  g_free (gguf_src);
  g_free (gguf);
  g_free (ref_mmdit);
  g_free (beside);
  free (root);
  free (tiny);
  free (spiece);
  return test_exit ();
}
