/* test_diffusers.c — the diffusers layout (engine/names_diffusers.c, discover.c's discovery).
 *
 * Verification routes (both were used):
 *  1. diffusers' own conversion: tests/tools/make_diffusers_tiny.py (not run by CI) runs
 *     convert_sd3_transformer_checkpoint_to_diffusers and convert_ldm_vae_checkpoint from the
 *     diffusers wheel's single_file_utils.py (0.42.1; torch replaced by byte-range stand-ins,
 *     no torch install was possible here) on the golden tiny models; with
 *     SD35_DIFFUSERS_TINY=DIR this test checks (a) and (b) below on those folders too.  Done
 *     once by hand; all passed.
 *  2. always (CI): the INVERSE of names_diffusers.c (reference → diffusers names) written here
 *     in C, independently, from diffusers' scripts/convert_sd3_to_diffusers.py (qkv chunked in
 *     three, norm_out and the last block's norm1_context swap_scale_shift'ed) and
 *     convert_ldm_vae_checkpoint (up blocks reversed, nin_shortcut → conv_shortcut, mid
 *     attention 1×1 convs → Linear [C, C]), applied to the golden tiny models; the transformer
 *     is written as two shards + diffusion_pytorch_model.safetensors.index.json.
 * Checks:
 *  (a) names_diffusers_canonical gives back every reference key of the golden file exactly
 *      once, bit-identical (dtype, shape, bytes), incl. the swapped adaLN halves and the
 *      re-packed qkv, and nothing else;
 *  (b) mmdit_forward on the mmdit_forward_tiny_{large,medium}_16x16 inputs through the
 *      diffusers files equals the single-file result exactly;
 *  (c) sd35_engine_open on a whole diffusers folder (text_encoder*, tokenizer* from the goldens
 *      and ../shared/tokenizers) generates the same image, bit for bit, as the official layout;
 *      the folder is also found as a Hugging Face cache snapshot of a "-large-turbo" repository
 *      (variant Large Turbo from the repository name). */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmdit.h"
#include "names_diffusers.h"
#include "sd35.h"
#include "testutil.h"

#define MP "model.diffusion_model."
#define VP "first_stage_model."

static const char *shared;

/* ---- reference → diffusers (the converter's direction) ---------------------------------- */

struct pair
{
  const char *ref, *dif;
};

static const struct pair top_pairs[] = {
  { "pos_embed", "pos_embed.pos_embed" },
  { "x_embedder.proj.", "pos_embed.proj." },
  { "t_embedder.mlp.0.", "time_text_embed.timestep_embedder.linear_1." },
  { "t_embedder.mlp.2.", "time_text_embed.timestep_embedder.linear_2." },
  { "y_embedder.mlp.0.", "time_text_embed.text_embedder.linear_1." },
  { "y_embedder.mlp.2.", "time_text_embed.text_embedder.linear_2." },
  { "context_embedder.", "context_embedder." },
  { "final_layer.linear.", "proj_out." },
  { "final_layer.adaLN_modulation.1.", "norm_out.linear." },  /* swapped */
};

/* joint_blocks.{i}.<ref> → transformer_blocks.{i}.<dif>; a "%s" is q/k/v of a split qkv */
static const struct pair block_pairs[] = {
  { "x_block.attn.qkv.", "attn.to_%s." },
  { "context_block.attn.qkv.", "attn.add_%s_proj." },
  { "x_block.attn2.qkv.", "attn2.to_%s." },
  { "x_block.attn.ln_q.", "attn.norm_q." },
  { "x_block.attn.ln_k.", "attn.norm_k." },
  { "context_block.attn.ln_q.", "attn.norm_added_q." },
  { "context_block.attn.ln_k.", "attn.norm_added_k." },
  { "x_block.attn2.ln_q.", "attn2.norm_q." },
  { "x_block.attn2.ln_k.", "attn2.norm_k." },
  { "x_block.attn.proj.", "attn.to_out.0." },
  { "context_block.attn.proj.", "attn.to_add_out." },
  { "x_block.attn2.proj.", "attn2.to_out.0." },
  { "x_block.adaLN_modulation.1.", "norm1.linear." },
  { "context_block.adaLN_modulation.1.", "norm1_context.linear." },  /* swapped if pre_only */
  { "x_block.mlp.fc1.", "ff.net.0.proj." },
  { "x_block.mlp.fc2.", "ff.net.2." },
  { "context_block.mlp.fc1.", "ff_context.net.0.proj." },
  { "context_block.mlp.fc2.", "ff_context.net.2." },
};

static void
add_or_fail (struct st_writer *w, const char *name, const struct st_tensor *t, int ndim,
             const int64_t *shape, const void *data)
{
  if (st_writer_add (w, name, t->dtype, ndim, shape, data) != 0)
    test_check (0, "writer: add %s", name);
}

static void
add_swapped (struct st_writer *w, const char *name, const struct st_tensor *t)
{
  uint8_t *buf = malloc (t->nbytes);
  size_t   half = t->nbytes / 2;
  memcpy (buf, (const uint8_t *) t->data + half, half);
  memcpy (buf + half, t->data, half);
  add_or_fail (w, name, t, t->ndim, t->shape, buf);
  free (buf);
}

/* one MMDiT tensor (key without prefix) into the diffusers transformer writer(s) */
static void
mmdit_to_diffusers (struct st_writer *w, const char *key, const struct st_tensor *t, int64_t D)
{
  int  blk, n = 0;
  char name[256], dif[128];

  if (sscanf (key, "joint_blocks.%d.%n", &blk, &n) == 1 && n > 0)
    {
      for (size_t i = 0; i < G_N_ELEMENTS (block_pairs); i++)
        {
          const struct pair *p = &block_pairs[i];
          const char        *rest = key + n + strlen (p->ref);
          if (strncmp (key + n, p->ref, strlen (p->ref)) != 0)
            continue;
          if (strstr (p->dif, "%s") != NULL)
            {
              /* torch.chunk(qkv, 3, dim=0) */
              static const char *const qkv[3] = { "q", "k", "v" };
              int64_t                  s[4];
              size_t                   third = t->nbytes / 3;
              memcpy (s, t->shape, sizeof s);
              s[0] /= 3;
              for (int k = 0; k < 3; k++)
                {
                  snprintf (dif, sizeof dif, p->dif, qkv[k]);
                  snprintf (name, sizeof name, "transformer_blocks.%d.%s%s", blk, dif, rest);
                  add_or_fail (w, name, t, t->ndim, s, (const uint8_t *) t->data + k * third);
                }
              return;
            }
          snprintf (name, sizeof name, "transformer_blocks.%d.%s%s", blk, p->dif, rest);
          if (strstr (p->ref, "context_block.adaLN") && t->shape[0] == 2 * D)
            add_swapped (w, name, t);
          else
            add_or_fail (w, name, t, t->ndim, t->shape, t->data);
          return;
        }
    }
  for (size_t i = 0; i < G_N_ELEMENTS (top_pairs); i++)
    {
      const struct pair *p = &top_pairs[i];
      if (strncmp (key, p->ref, strlen (p->ref)) != 0)
        continue;
      snprintf (name, sizeof name, "%s%s", p->dif, key + strlen (p->ref));
      if (strstr (p->ref, "final_layer.adaLN"))
        add_swapped (w, name, t);
      else
        add_or_fail (w, name, t, t->ndim, t->shape, t->data);
      return;
    }
  test_check (0, "no diffusers name for %s", key);
}

/* LDM → diffusers AutoencoderKL (key without prefix) */
static void
vae_to_diffusers (struct st_writer *w, const char *key, const struct st_tensor *t, int n_up)
{
  static const struct pair attn[] = { { "norm.", "group_norm." }, { "q.", "to_q." },
                                      { "k.", "to_k." }, { "v.", "to_v." },
                                      { "proj_out.", "to_out.0." } };
  char        coder[16], name[256], rest[128];
  int         i, j, n = 0;
  const char *r;

  if (sscanf (key, "%15[a-z].%n", coder, &n) != 1 || n == 0)
    goto fail;
  r = key + n;
  if (sscanf (r, "down.%d.block.%d.%127s", &i, &j, rest) == 3)
    {
      char *sc = strstr (rest, "nin_shortcut");
      snprintf (name, sizeof name, "%s.down_blocks.%d.resnets.%d.%s%s", coder, i, j,
                sc ? "conv_shortcut" : rest, sc ? sc + 12 : "");
    }
  else if (sscanf (r, "down.%d.downsample.conv.%127s", &i, rest) == 2)
    snprintf (name, sizeof name, "%s.down_blocks.%d.downsamplers.0.conv.%s", coder, i, rest);
  else if (sscanf (r, "up.%d.block.%d.%127s", &i, &j, rest) == 3)
    {
      char *sc = strstr (rest, "nin_shortcut");
      snprintf (name, sizeof name, "%s.up_blocks.%d.resnets.%d.%s%s", coder, n_up - 1 - i, j,
                sc ? "conv_shortcut" : rest, sc ? sc + 12 : "");
    }
  else if (sscanf (r, "up.%d.upsample.conv.%127s", &i, rest) == 2)
    snprintf (name, sizeof name, "%s.up_blocks.%d.upsamplers.0.conv.%s", coder, n_up - 1 - i,
              rest);
  else if (sscanf (r, "mid.block_%d.%127s", &i, rest) == 2)
    {
      char *sc = strstr (rest, "nin_shortcut");
      snprintf (name, sizeof name, "%s.mid_block.resnets.%d.%s%s", coder, i - 1,
                sc ? "conv_shortcut" : rest, sc ? sc + 12 : "");
    }
  else if (strncmp (r, "mid.attn_1.", 11) == 0)
    {
      for (size_t a = 0; a < G_N_ELEMENTS (attn); a++)
        if (strncmp (r + 11, attn[a].ref, strlen (attn[a].ref)) == 0)
          {
            snprintf (name, sizeof name, "%s.mid_block.attentions.0.%s%s", coder, attn[a].dif,
                      r + 11 + strlen (attn[a].ref));
            if (t->ndim == 4)  /* conv 1×1 → Linear */
              add_or_fail (w, name, t, 2, t->shape, t->data);
            else
              add_or_fail (w, name, t, t->ndim, t->shape, t->data);
            return;
          }
      goto fail;
    }
  else if (strcmp (r, "norm_out.weight") == 0 || strcmp (r, "norm_out.bias") == 0)
    snprintf (name, sizeof name, "%s.conv_norm_out.%s", coder, r + 9);
  else if (strncmp (r, "conv_in.", 8) == 0 || strncmp (r, "conv_out.", 9) == 0)
    snprintf (name, sizeof name, "%s", key);
  else
    goto fail;
  add_or_fail (w, name, t, t->ndim, t->shape, t->data);
  return;
fail:
  test_check (0, "no diffusers name for VAE key %s", key);
}

static void
save_or_fail (struct st_writer *w, const char *path)
{
  struct sd35_error err = { 0 };
  if (st_writer_save (w, path, &err) != SD35_OK)
    test_check (0, "save %s: %s", path, err.message);
  st_writer_free (w);
}

/* dir/transformer (two shards + index) and dir/vae from a golden single file */
static void
write_diffusers (const char *model, const char *dir)
{
  struct st_file   *g = test_open_golden (model);
  struct st_writer *tw[2] = { st_writer_new (), st_writer_new () }, *vw = st_writer_new ();
  GString          *index = g_string_new ("{\"metadata\": {}, \"weight_map\": {");
  const struct st_tensor *xe = st_find (g, MP "x_embedder.proj.weight");
  int64_t           D = xe != NULL ? xe->shape[0] : 0;
  int               n_up = 0, k = 0;
  char              path[1100];

  for (size_t i = 0; i < st_count (g); i++)
    {
      int up;
      if (sscanf (st_at (g, i)->name, VP "decoder.up.%d.", &up) == 1 && up + 1 > n_up)
        n_up = up + 1;
    }
  for (size_t i = 0; i < st_count (g); i++)
    {
      const struct st_tensor *t = st_at (g, i);
      if (strncmp (t->name, MP, strlen (MP)) == 0)
        {
          mmdit_to_diffusers (tw[k++ % 2], t->name + strlen (MP), t, D);
        }
      else if (strncmp (t->name, VP, strlen (VP)) == 0)
        vae_to_diffusers (vw, t->name + strlen (VP), t, n_up);
      else
        test_check (0, "%s: unexpected key %s", model, t->name);
    }
  snprintf (path, sizeof path, "%s/transformer", dir);
  g_mkdir_with_parents (path, 0755);
  snprintf (path, sizeof path, "%s/vae", dir);
  g_mkdir_with_parents (path, 0755);
  for (int s = 0; s < 2; s++)
    {
      /* the index names every key of the shard; read them back from the saved file */
      struct st_file   *sf = NULL;
      struct sd35_error err = { 0 };
      char              leaf[64];
      snprintf (leaf, sizeof leaf, "diffusion_pytorch_model-0000%d-of-00002.safetensors", s + 1);
      snprintf (path, sizeof path, "%s/transformer/%s", dir, leaf);
      save_or_fail (tw[s], path);
      if (st_open (path, &sf, &err) != SD35_OK)
        {
          test_check (0, "reopen %s: %s", path, err.message);
          continue;
        }
      for (size_t i = 0; i < st_count (sf); i++)
        g_string_append_printf (index, "%s\"%s\": \"%s\"", index->str[index->len - 1] == '{'
                                ? "" : ", ", st_at (sf, i)->name, leaf);
      st_close (sf);
    }
  g_string_append (index, "}}");
  snprintf (path, sizeof path, "%s/transformer/diffusion_pytorch_model.safetensors.index.json",
            dir);
  g_file_set_contents (path, index->str, -1, NULL);
  snprintf (path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", dir);
  save_or_fail (vw, path);
  snprintf (path, sizeof path, "%s/model_index.json", dir);
  g_file_set_contents (path, "{\"_class_name\": \"StableDiffusion3Pipeline\"}", -1, NULL);
  g_string_free (index, TRUE);
  st_close (g);
}

static struct st_file *
open_canonical (const char *path)
{
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };

  if (!test_check (st_open (path, &f, &err) == SD35_OK, "open %s: %s", path, err.message))
    return NULL;
  if (!test_check (names_diffusers_canonical (&f, &err) == SD35_OK, "rename %s: %s", path,
                   err.message))
    {
      st_close (f);
      return NULL;
    }
  return f;
}

/* (a) every golden key exactly once, bit-identical; nothing else */
static void
check_round_trip (const char *model, struct st_file *tr, struct st_file *vae)
{
  struct st_file *g = test_open_golden (model);
  size_t          n_ok = 0, n_bad = 0;

  for (size_t i = 0; i < st_count (g); i++)
    {
      const struct st_tensor *t = st_at (g, i);
      const struct st_tensor *c = st_find (strncmp (t->name, VP, strlen (VP)) == 0 ? vae : tr,
                                           t->name);
      int same = c != NULL && c->dtype == t->dtype && c->ndim == t->ndim
                 && c->nbytes == t->nbytes;
      for (int d = 0; same && d < t->ndim; d++)
        same = c->shape[d] == t->shape[d];
      same = same && memcmp (c->data, t->data, t->nbytes) == 0;
      if (same)
        n_ok++;
      else if (n_bad++ < 10)
        test_check (0, "%s: %s %s after the round trip", model, t->name,
                    c == NULL ? "missing" : "differs");
    }
  test_check (n_bad == 0 && n_ok == st_count (g) && st_count (tr) + st_count (vae) == n_ok,
              "%s: %zu of %zu tensors bit-identical through the diffusers names (derived "
              "files hold %zu + %zu)", model, n_ok, st_count (g), st_count (tr),
              st_count (vae));
  st_close (g);
}

/* (b) the MMDiT forward from both files, exactly equal */
static void
check_forward (struct backend *be, const char *model, const char *golden, struct st_file *tr)
{
  struct st_file   *gf = test_open_golden (golden), *mf = test_open_golden (model);
  const struct st_tensor *xt = st_find (gf, "x"), *ct = st_find (gf, "context");
  struct sd35_error err = { 0 };
  struct mmdit     *m[2] = { NULL, NULL };
  float            *x, *sigma, *ctx, *y, *v[2];
  size_t            n;
  int               ok = 1;

  x = test_golden_f32 (gf, "x", &n);
  sigma = test_golden_f32 (gf, "sigma", NULL);
  ctx = test_golden_f32 (gf, "context", NULL);
  y = test_golden_f32 (gf, "y", NULL);
  for (int k = 0; k < 2; k++)
    {
      v[k] = calloc (n, sizeof (float));
      ok = ok && test_check (mmdit_load (be, k ? tr : mf, MP, &m[k], &err) == SD35_OK,
                             "%s: load %s: %s", golden, k ? "diffusers" : "single file",
                             err.message)
           && test_check (mmdit_forward (m[k], x, sigma, ctx, y, (int) xt->shape[0],
                                         (int) xt->shape[2], (int) xt->shape[3],
                                         (int) ct->shape[1], NULL, 0, NULL, v[k], &err)
                            == SD35_OK, "%s: forward: %s", golden, err.message);
    }
  if (ok)
    test_check (memcmp (v[0], v[1], n * sizeof (float)) == 0,
                "%s: v through the diffusers files equals the single file's exactly", golden);
  for (int k = 0; k < 2; k++)
    {
      mmdit_free (m[k]);
      free (v[k]);
    }
  free (x); free (sigma); free (ctx); free (y);
  st_close (mf);
  st_close (gf);
}

/* ---- (c) whole folders through the public API -------------------------------------------- */

static void
link_shared (const char *src, const char *dir, const char *dst)
{
  char s[1024], d[1024], *parent;
  snprintf (s, sizeof s, "%s/%s", shared, src);
  snprintf (d, sizeof d, "%s/%s", dir, dst);
  parent = g_path_get_dirname (d);
  g_mkdir_with_parents (parent, 0755);
  g_free (parent);
  if (symlink (s, d) != 0)
    test_check (0, "symlink %s → %s", d, s);
}

static void
link_tokenizers_and_configs (const char *dir)
{
  link_shared ("golden/models/text_encoder/config.json", dir, "text_encoder/config.json");
  link_shared ("golden/models/text_encoder_2/config.json", dir, "text_encoder_2/config.json");
  link_shared ("golden/models/text_encoder_3/config.json", dir, "text_encoder_3/config.json");
  link_shared ("tokenizers/clip/vocab.json", dir, "tokenizer/vocab.json");
  link_shared ("tokenizers/clip/merges.txt", dir, "tokenizer/merges.txt");
  link_shared ("tokenizers/clip/vocab.json", dir, "tokenizer_2/vocab.json");
  link_shared ("tokenizers/clip/merges.txt", dir, "tokenizer_2/merges.txt");
  link_shared ("tokenizers/t5/spiece.model", dir, "tokenizer_3/spiece.model");
  link_shared ("tokenizers/t5/tokenizer.json", dir, "tokenizer_3/tokenizer.json");
}

static int
generate (const char *model_path, struct sd35_result *res)
{
  struct sd35_engine_options o;
  struct sd35_params         p;
  struct sd35_error          err = { 0 };
  sd35_engine               *e = NULL;
  int                        ok;

  sd35_engine_options_init (&o);
  o.backend = SD35_BACKEND_CPU;
  o.model_path = model_path;
  if (!test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open %s: %s", model_path,
                   err.message))
    return 0;
  sd35_params_init (&p);
  p.prompt = "a photo of a cat";
  p.negative_prompt = "blurry";
  p.width = 64;
  p.height = 48;
  p.steps = 3;
  p.seed = 7;
  ok = test_check (sd35_generate (e, &p, NULL, res, &err) == SD35_OK, "generate with %s: %s",
                   model_path, err.message);
  sd35_engine_free (e);
  return ok;
}

static void
check_engine (const char *tmp, const char *diff_dir)
{
  struct sd35_result r[2];
  char               official[1024], hub[1024], snap[1100];

  memset (r, 0, sizeof r);
  /* the official layout beside */
  snprintf (official, sizeof official, "%s/official", tmp);
  link_shared ("golden/models/sd3.5_tiny_large.safetensors", official, "sd3.5_large.safetensors");
  link_shared ("golden/models/clip_l.safetensors", official, "text_encoders/clip_l.safetensors");
  link_shared ("golden/models/clip_g.safetensors", official, "text_encoders/clip_g.safetensors");
  link_shared ("golden/models/t5xxl.safetensors", official,
               "text_encoders/t5xxl_fp16.safetensors");
  link_tokenizers_and_configs (official);
  /* the diffusers folder's text encoders and tokenizers */
  link_shared ("golden/models/clip_l.safetensors", diff_dir, "text_encoder/model.safetensors");
  link_shared ("golden/models/clip_g.safetensors", diff_dir, "text_encoder_2/model.safetensors");
  link_shared ("golden/models/t5xxl.safetensors", diff_dir, "text_encoder_3/model.safetensors");
  link_tokenizers_and_configs (diff_dir);

  if (generate (official, &r[0]) && generate (diff_dir, &r[1]))
    {
      size_t n = (size_t) r[0].width * r[0].height * 3;
      test_check (r[0].width == r[1].width && r[0].height == r[1].height
                    && memcmp (r[0].rgb, r[1].rgb, n) == 0
                    && memcmp (r[0].image_float, r[1].image_float, n * sizeof (float)) == 0,
                  "diffusers folder: the same %dx%d image (u8 and float) as the official "
                  "layout", r[1].width, r[1].height);
    }
  sd35_result_clear (&r[0]);
  sd35_result_clear (&r[1]);

  /* found without a path as a Hugging Face snapshot of a -large-turbo repository */
  snprintf (hub, sizeof hub, "%s/hub/models--stabilityai--stable-diffusion-3.5-large-turbo",
            tmp);
  snprintf (snap, sizeof snap, "%s/snapshots", hub);
  g_mkdir_with_parents (snap, 0755);
  snprintf (snap, sizeof snap, "%s/snapshots/0123abcd", hub);
  if (symlink (diff_dir, snap) != 0)
    test_check (0, "symlink %s", snap);
  snprintf (hub, sizeof hub, "%s/hub", tmp);
  g_setenv ("HF_HUB_CACHE", hub, TRUE);
  g_unsetenv ("SD35_MODEL");
  {
    struct sd35_engine_options o;
    struct sd35_error          err = { 0 };
    sd35_engine               *e = NULL;
    sd35_engine_options_init (&o);
    o.backend = SD35_BACKEND_CPU;
    o.model_path = NULL;
    if (test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open from the HF cache: %s",
                    err.message))
      {
        const struct sd35_model_info *info = sd35_engine_info (e);
        test_check (info->variant == SD35_VARIANT_LARGE_TURBO
                      && strstr (info->mmdit_path, "0123abcd/transformer/") != NULL,
                    "HF snapshot: %s (%s)", info->variant_name, info->mmdit_path);
      }
    sd35_engine_free (e);
  }
  g_unsetenv ("HF_HUB_CACHE");
}

/* (a) and (b) on one diffusers folder holding transformer/ (sharded or not) and vae/ */
static void
check_folder (struct backend *be, const char *model, const char *golden, const char *dir)
{
  struct st_file *tr, *vae;
  char           *idx = g_build_filename (dir, "transformer",
                                          "diffusion_pytorch_model.safetensors.index.json", NULL);
  char           *one = g_build_filename (dir, "transformer",
                                          "diffusion_pytorch_model.safetensors", NULL);
  char           *vp = g_build_filename (dir, "vae", "diffusion_pytorch_model.safetensors", NULL);

  printf ("-- %s\n", dir);
  tr = open_canonical (g_file_test (idx, G_FILE_TEST_EXISTS) ? idx : one);
  vae = open_canonical (vp);
  if (tr != NULL && vae != NULL)
    {
      check_round_trip (model, tr, vae);
      check_forward (be, model, golden, tr);
    }
  st_close (tr);
  st_close (vae);
  g_free (idx);
  g_free (one);
  g_free (vp);
}

int
main (void)
{
  static const char *const models[2] = { "golden/models/sd3.5_tiny_large.safetensors",
                                         "golden/models/sd3.5_tiny_medium.safetensors" };
  static const char *const goldens[2] = { "golden/mmdit_forward_tiny_large_16x16.safetensors",
                                          "golden/mmdit_forward_tiny_medium_16x16.safetensors" };
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  const char       *tiny = g_getenv ("SD35_DIFFUSERS_TINY");
  char             *tmp, dir[1024];

  free (test_shared_path_or_skip ("golden/models/sd3.5_tiny_large.safetensors"));
  free (test_shared_path_or_skip ("tokenizers/t5/spiece.model"));
  shared = test_shared_dir ();
  if (backend_cpu_new (0, &be, &err) != SD35_OK)
    {
      printf ("FAIL: CPU backend: %s\n", err.message);
      return 1;
    }
  tmp = test_make_tmpdir ("diffusers");
  for (int i = 0; i < 2; i++)
    {
      snprintf (dir, sizeof dir, "%s/%s", tmp, i == 0 ? "sd35-large" : "sd35-medium");
      write_diffusers (models[i], dir);
      check_folder (be, models[i], goldens[i], dir);
      /* the same from diffusers' own converter (tests/tools/make_diffusers_tiny.py) */
      if (tiny != NULL && tiny[0] != '\0')
        {
          snprintf (dir, sizeof dir, "%s/%s", tiny, i == 0 ? "large" : "medium");
          check_folder (be, models[i], goldens[i], dir);
        }
    }
  snprintf (dir, sizeof dir, "%s/sd35-large", tmp);
  check_engine (tmp, dir);
  backend_free (be);
  test_remove_tree (tmp);
  free (tmp);
  return test_exit ();
}
