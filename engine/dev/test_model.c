/* test_model.c — writing the random test model (see test_model.h).  Key names and shapes are
 * those of the official files (sd3_impls.py / mmditx.py names for the MMDiT, LDM names for
 * the VAE, Hugging Face CLIPTextModelWithProjection / T5EncoderModel names for the encoders),
 * so the normal loaders read it.  Weights ~ N(0, 1/fan_in) (norms 1, biases small), drawn
 * from torch's generator with the given seed, so the same seed writes the same model. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "rng.h"
#include "safetensors.h"
#include "test_model.h"

/* The goldens' tiny configuration (golden/config.json). */
#define TM_CLIP_L_WIDTH  48
#define TM_CLIP_L_HEADS  3
#define TM_CLIP_G_WIDTH  64
#define TM_CLIP_G_HEADS  2
#define TM_CLIP_LAYERS   3
#define TM_CLIP_VOCAB    49408
#define TM_T5_WIDTH      128
#define TM_T5_HEADS      2
#define TM_T5_FF         256
#define TM_T5_LAYERS     2
#define TM_T5_VOCAB      32128
#define TM_DEPTH         2
#define TM_HIDDEN        (64 * TM_DEPTH)
#define TM_POS_MAX       64   /* pos_embed 64×64 patches: images up to 1024×1024 */
#define TM_VAE_CH        32

struct tm
{
  struct st_writer *w;
  struct torch_rng *rng;
  enum sd35_dtype   dtype;
  const char       *prefix;
  const char       *poison;  /* key (without prefix) that gets one NaN, or NULL */
  int               failed;
};

enum tm_init { TM_RANDN, TM_NORM };

static void
tm_put (struct tm *t, enum tm_init init, double std, int ndim, const int64_t *shape,
        const char *fmt, ...) SD35_PRINTF (6, 7);

static void
tm_put (struct tm *t, enum tm_init init, double std, int ndim, const int64_t *shape,
        const char *fmt, ...)
{
  char      key[256], name[320];
  va_list   ap;
  size_t    n = 1;
  float    *f;
  uint16_t *h;

  if (t->failed)
    return;
  va_start (ap, fmt);
  vsnprintf (key, sizeof key, fmt, ap);
  va_end (ap);
  snprintf (name, sizeof name, "%s%s", t->prefix, key);
  for (int i = 0; i < ndim; i++)
    n *= (size_t) shape[i];
  f = malloc (n * sizeof *f);
  h = malloc (n * sizeof *h);
  if (f == NULL || h == NULL)
    {
      free (f);
      free (h);
      t->failed = 1;
      return;
    }
  torch_randn (t->rng, f, n);
  for (size_t i = 0; i < n; i++)
    f[i] = (float) (init == TM_NORM ? 1.0 + std * f[i] : std * f[i]);
  if (t->poison && strcmp (t->poison, key) == 0)
    f[0] = NAN;
  for (size_t i = 0; i < n; i++)
    h[i] = t->dtype == SD35_BF16 ? sd35_f32_to_bf16 (f[i]) : sd35_f32_to_f16 (f[i]);
  if (st_writer_add (t->w, name, t->dtype, ndim, shape, h) != 0)
    t->failed = 1;
  free (f);
  free (h);
}

/* name.weight [n_out, n_in] ~ N(0, 1/n_in) (+ name.bias [n_out] ~ N(0, 0.02²)) */
static void
tm_linear (struct tm *t, int64_t n_out, int64_t n_in, int bias, const char *name)
{
  int64_t ws[2] = { n_out, n_in }, bs[1] = { n_out };

  tm_put (t, TM_RANDN, 1.0 / sqrt ((double) n_in), 2, ws, "%s.weight", name);
  if (bias)
    tm_put (t, TM_RANDN, 0.02, 1, bs, "%s.bias", name);
}

static void
tm_norm (struct tm *t, int64_t d, int bias, const char *name)
{
  int64_t s[1] = { d };

  tm_put (t, TM_NORM, 0.05, 1, s, "%s.weight", name);
  if (bias)
    tm_put (t, TM_RANDN, 0.02, 1, s, "%s.bias", name);
}

static void
tm_conv (struct tm *t, int64_t co, int64_t ci, int64_t k, const char *name)
{
  int64_t ws[4] = { co, ci, k, k }, bs[1] = { co };

  tm_put (t, TM_RANDN, 1.0 / sqrt ((double) (ci * k * k)), 4, ws, "%s.weight", name);
  tm_put (t, TM_RANDN, 0.02, 1, bs, "%s.bias", name);
}

/* ---- MMDiT (mmditx.py names) ------------------------------------------------------------ */

static void
tm_attn (struct tm *t, int64_t D, const char *name, int pre_only)
{
  char    k[160];
  int64_t s[1] = { 64 };

  snprintf (k, sizeof k, "%s.qkv", name);
  tm_linear (t, 3 * D, D, 1, k);
  tm_put (t, TM_NORM, 0.05, 1, s, "%s.ln_q.weight", name);
  tm_put (t, TM_NORM, 0.05, 1, s, "%s.ln_k.weight", name);
  if (!pre_only)
    {
      snprintf (k, sizeof k, "%s.proj", name);
      tm_linear (t, D, D, 1, k);
    }
}

static void
tm_mmdit (struct tm *t, int medium, int64_t adm, int64_t ctx)
{
  const int64_t D = TM_HIDDEN;
  int64_t       pos[3] = { 1, (int64_t) TM_POS_MAX * TM_POS_MAX, D };
  char          k[160];

  tm_put (t, TM_RANDN, 0.1, 3, pos, "pos_embed");
  tm_conv (t, D, 16, 2, "x_embedder.proj");
  tm_linear (t, D, 256, 1, "t_embedder.mlp.0");
  tm_linear (t, D, D, 1, "t_embedder.mlp.2");
  tm_linear (t, D, adm, 1, "y_embedder.mlp.0");
  tm_linear (t, D, D, 1, "y_embedder.mlp.2");
  tm_linear (t, D, ctx, 1, "context_embedder");
  for (int i = 0; i < TM_DEPTH; i++)
    {
      int pre_only = i == TM_DEPTH - 1;  /* the last context block only feeds attention */
      int attn2 = medium && i == 0;      /* MMDiT-X: x_block_self_attn_layers = [0] */

      snprintf (k, sizeof k, "joint_blocks.%d.context_block.adaLN_modulation.1", i);
      tm_linear (t, (pre_only ? 2 : 6) * D, D, 1, k);
      snprintf (k, sizeof k, "joint_blocks.%d.context_block.attn", i);
      tm_attn (t, D, k, pre_only);
      if (!pre_only)
        {
          snprintf (k, sizeof k, "joint_blocks.%d.context_block.mlp.fc1", i);
          tm_linear (t, 4 * D, D, 1, k);
          snprintf (k, sizeof k, "joint_blocks.%d.context_block.mlp.fc2", i);
          tm_linear (t, D, 4 * D, 1, k);
        }
      snprintf (k, sizeof k, "joint_blocks.%d.x_block.adaLN_modulation.1", i);
      tm_linear (t, (attn2 ? 9 : 6) * D, D, 1, k);
      snprintf (k, sizeof k, "joint_blocks.%d.x_block.attn", i);
      tm_attn (t, D, k, 0);
      if (attn2)
        {
          snprintf (k, sizeof k, "joint_blocks.%d.x_block.attn2", i);
          tm_attn (t, D, k, 0);
        }
      snprintf (k, sizeof k, "joint_blocks.%d.x_block.mlp.fc1", i);
      tm_linear (t, 4 * D, D, 1, k);
      snprintf (k, sizeof k, "joint_blocks.%d.x_block.mlp.fc2", i);
      tm_linear (t, D, 4 * D, 1, k);
    }
  tm_linear (t, 2 * D, D, 1, "final_layer.adaLN_modulation.1");
  tm_linear (t, 2 * 2 * 16, D, 1, "final_layer.linear");
}

/* ---- VAE (LDM names, sd3_impls.py SDVAE) ------------------------------------------------- */

static void
tm_resblock (struct tm *t, int64_t ci, int64_t co, const char *name)
{
  char k[160];

  snprintf (k, sizeof k, "%s.norm1", name);
  tm_norm (t, ci, 1, k);
  snprintf (k, sizeof k, "%s.conv1", name);
  tm_conv (t, co, ci, 3, k);
  snprintf (k, sizeof k, "%s.norm2", name);
  tm_norm (t, co, 1, k);
  snprintf (k, sizeof k, "%s.conv2", name);
  tm_conv (t, co, co, 3, k);
  if (ci != co)
    {
      snprintf (k, sizeof k, "%s.nin_shortcut", name);
      tm_conv (t, co, ci, 1, k);
    }
}

static void
tm_mid (struct tm *t, int64_t C, const char *part)
{
  static const char *const qkvo[] = { "q", "k", "v", "proj_out" };
  char                     k[160];

  snprintf (k, sizeof k, "%s.mid.block_1", part);
  tm_resblock (t, C, C, k);
  snprintf (k, sizeof k, "%s.mid.attn_1.norm", part);
  tm_norm (t, C, 1, k);
  for (int i = 0; i < 4; i++)
    {
      snprintf (k, sizeof k, "%s.mid.attn_1.%s", part, qkvo[i]);
      tm_conv (t, C, C, 1, k);
    }
  snprintf (k, sizeof k, "%s.mid.block_2", part);
  tm_resblock (t, C, C, k);
}

static void
tm_vae (struct tm *t)
{
  static const int mult[4] = { 1, 1, 2, 2 };  /* golden config ch_mult */
  const int64_t    ch = TM_VAE_CH;
  int64_t          cin = ch;
  char             k[160];

  /* encoder */
  tm_conv (t, ch, 3, 3, "encoder.conv_in");
  for (int i = 0; i < 4; i++)
    {
      int64_t cout = ch * mult[i];
      for (int j = 0; j < 2; j++)
        {
          snprintf (k, sizeof k, "encoder.down.%d.block.%d", i, j);
          tm_resblock (t, cin, cout, k);
          cin = cout;
        }
      if (i != 3)
        {
          snprintf (k, sizeof k, "encoder.down.%d.downsample.conv", i);
          tm_conv (t, cin, cin, 3, k);
        }
    }
  tm_mid (t, cin, "encoder");
  tm_norm (t, cin, 1, "encoder.norm_out");
  tm_conv (t, 32, cin, 3, "encoder.conv_out");  /* mean and logvar of 16 channels */

  /* decoder */
  cin = ch * mult[3];
  tm_conv (t, cin, 16, 3, "decoder.conv_in");
  tm_mid (t, cin, "decoder");
  for (int i = 3; i >= 0; i--)
    {
      int64_t cout = ch * mult[i];
      for (int j = 0; j < 3; j++)
        {
          snprintf (k, sizeof k, "decoder.up.%d.block.%d", i, j);
          tm_resblock (t, cin, cout, k);
          cin = cout;
        }
      if (i != 0)
        {
          snprintf (k, sizeof k, "decoder.up.%d.upsample.conv", i);
          tm_conv (t, cin, cin, 3, k);
        }
    }
  tm_norm (t, cin, 1, "decoder.norm_out");
  tm_conv (t, 3, cin, 3, "decoder.conv_out");
}

/* ---- text encoders (Hugging Face names) -------------------------------------------------- */

static void
tm_clip (struct tm *t, int64_t W)
{
  int64_t tok[2] = { TM_CLIP_VOCAB, W }, pos[2] = { 77, W };
  char    k[160];

  tm_put (t, TM_RANDN, 0.5, 2, tok, "text_model.embeddings.token_embedding.weight");
  tm_put (t, TM_RANDN, 0.1, 2, pos, "text_model.embeddings.position_embedding.weight");
  for (int i = 0; i < TM_CLIP_LAYERS; i++)
    {
      static const char *const proj[] = { "q_proj", "k_proj", "v_proj", "out_proj" };
      snprintf (k, sizeof k, "text_model.encoder.layers.%d.layer_norm1", i);
      tm_norm (t, W, 1, k);
      for (int j = 0; j < 4; j++)
        {
          snprintf (k, sizeof k, "text_model.encoder.layers.%d.self_attn.%s", i, proj[j]);
          tm_linear (t, W, W, 1, k);
        }
      snprintf (k, sizeof k, "text_model.encoder.layers.%d.layer_norm2", i);
      tm_norm (t, W, 1, k);
      snprintf (k, sizeof k, "text_model.encoder.layers.%d.mlp.fc1", i);
      tm_linear (t, 4 * W, W, 1, k);
      snprintf (k, sizeof k, "text_model.encoder.layers.%d.mlp.fc2", i);
      tm_linear (t, W, 4 * W, 1, k);
    }
  tm_norm (t, W, 1, "text_model.final_layer_norm");
  tm_linear (t, W, W, 0, "text_projection");
}

static void
tm_t5 (struct tm *t)
{
  const int64_t d = TM_T5_WIDTH, inner = TM_T5_HEADS * 64;
  int64_t       emb[2] = { TM_T5_VOCAB, d }, rel[2] = { 32, TM_T5_HEADS };
  char          k[160];

  tm_put (t, TM_RANDN, 1.0, 2, emb, "shared.weight");
  tm_put (t, TM_RANDN, 1.0, 2, emb, "encoder.embed_tokens.weight");
  for (int i = 0; i < TM_T5_LAYERS; i++)
    {
      static const char *const qkv[] = { "q", "k", "v" };
      for (int j = 0; j < 3; j++)
        {
          snprintf (k, sizeof k, "encoder.block.%d.layer.0.SelfAttention.%s", i, qkv[j]);
          tm_linear (t, inner, d, 0, k);
        }
      snprintf (k, sizeof k, "encoder.block.%d.layer.0.SelfAttention.o", i);
      tm_linear (t, d, inner, 0, k);
      if (i == 0)
        tm_put (t, TM_RANDN, 0.5, 2, rel,
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
      snprintf (k, sizeof k, "encoder.block.%d.layer.0.layer_norm", i);
      tm_norm (t, d, 0, k);
      snprintf (k, sizeof k, "encoder.block.%d.layer.1.DenseReluDense.wi_0", i);
      tm_linear (t, TM_T5_FF, d, 0, k);
      snprintf (k, sizeof k, "encoder.block.%d.layer.1.DenseReluDense.wi_1", i);
      tm_linear (t, TM_T5_FF, d, 0, k);
      snprintf (k, sizeof k, "encoder.block.%d.layer.1.DenseReluDense.wo", i);
      tm_linear (t, d, TM_T5_FF, 0, k);
      snprintf (k, sizeof k, "encoder.block.%d.layer.1.layer_norm", i);
      tm_norm (t, d, 0, k);
    }
  tm_norm (t, d, 0, "encoder.final_layer_norm");
}

/* ---- files -------------------------------------------------------------------------------- */

static char *
path_join (const char *a, const char *b)
{
  size_t n = strlen (a) + strlen (b) + 2;
  char  *p = malloc (n);

  if (p)
    snprintf (p, n, "%s/%s", a, b);
  return p;
}

static enum sd35_status
make_dir (const char *dir, const char *sub, struct sd35_error *err)
{
  char *p = sub ? path_join (dir, sub) : strdup (dir);

  if (p == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory");
  if (mkdir (p, 0755) != 0 && errno != EEXIST)
    {
      sd35_set_error (err, SD35_ERR_IO, "cannot create the folder %s: %s", p, strerror (errno));
      free (p);
      return err->status;
    }
  free (p);
  return SD35_OK;
}

static enum sd35_status
write_text (const char *dir, const char *name, const char *text, struct sd35_error *err)
{
  char *p = path_join (dir, name);
  FILE *f;

  if (p == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory");
  f = fopen (p, "w");
  if (f == NULL || fputs (text, f) < 0 || fclose (f) != 0)
    {
      sd35_set_error (err, SD35_ERR_IO, "cannot write %s: %s", p, strerror (errno));
      free (p);
      return err->status;
    }
  free (p);
  return SD35_OK;
}

/* One safetensors file from one or more parts (prefix, dtype, writer function). */
struct tm_part
{
  const char     *prefix;
  enum sd35_dtype dtype;
  void          (*fn) (struct tm *t, int64_t a, int64_t b, int64_t c);
  int64_t         a, b, c;
};

static void
part_mmdit (struct tm *t, int64_t medium, int64_t adm, int64_t ctx)
{
  tm_mmdit (t, (int) medium, adm, ctx);
}

static void
part_vae (struct tm *t, int64_t a, int64_t b, int64_t c)
{
  tm_vae (t);
}

static void
part_clip (struct tm *t, int64_t width, int64_t b, int64_t c)
{
  tm_clip (t, width);
}

static void
part_t5 (struct tm *t, int64_t a, int64_t b, int64_t c)
{
  tm_t5 (t);
}

static enum sd35_status
write_parts (const char *path, const struct tm_part *parts, int n_parts,
             struct torch_rng *rng, const char *poison, struct sd35_error *err)
{
  struct tm t;

  memset (&t, 0, sizeof t);
  t.w = st_writer_new ();
  t.rng = rng;
  if (t.w == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory writing %s", path);
  st_writer_set_metadata (t.w, "format", "pt");
  st_writer_set_metadata (t.w, "sd35_test_model", "random weights, not a real model");
  for (int i = 0; i < n_parts; i++)
    {
      t.prefix = parts[i].prefix;
      t.dtype = parts[i].dtype;
      t.poison = i == 0 ? poison : NULL;
      parts[i].fn (&t, parts[i].a, parts[i].b, parts[i].c);
    }
  if (t.failed)
    sd35_set_error (err, SD35_ERR_OOM, "out of memory building %s", path);
  else
    st_writer_save (t.w, path, err);
  st_writer_free (t.w);
  return err->status;
}

static const char clip_config_fmt[] =
  "{\n  \"architectures\": [\"CLIPTextModelWithProjection\"],\n"
  "  \"model_type\": \"clip_text_model\",\n  \"hidden_size\": %d,\n"
  "  \"intermediate_size\": %d,\n  \"num_attention_heads\": %d,\n"
  "  \"num_hidden_layers\": %d,\n  \"hidden_act\": \"%s\",\n  \"projection_dim\": %d,\n"
  "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": 77,\n"
  "  \"vocab_size\": %d\n}\n";

static const char t5_config_fmt[] =
  "{\n  \"architectures\": [\"T5EncoderModel\"],\n  \"model_type\": \"t5\",\n"
  "  \"d_model\": %d,\n  \"d_ff\": %d,\n  \"d_kv\": 64,\n  \"num_heads\": %d,\n"
  "  \"num_layers\": %d,\n  \"relative_attention_num_buckets\": 32,\n"
  "  \"relative_attention_max_distance\": 128,\n  \"feed_forward_proj\": \"gated-gelu\",\n"
  "  \"layer_norm_epsilon\": 1e-06,\n  \"vocab_size\": %d\n}\n";

static const char readme_text[] =
  "This folder is a TEST MODEL made by `sd35 make-test-model`: an SD3.5-shaped model with\n"
  "RANDOM WEIGHTS in the official release layout (MMDiT + VAE single file, text_encoders/,\n"
  "text_encoder*/config.json, tokenizer*/).  It is tiny (MMDiT hidden 128, depth 2; VAE\n"
  "channels 32) so that the whole pipeline runs in seconds on a CPU.  Its images are\n"
  "meaningless noise-like pictures: it exists to exercise the program, not to make art.\n"
  "For real images download SD3.5 Large / Medium from Hugging Face (stabilityai).\n";

static enum sd35_status
write_configs (const char *dir, struct sd35_error *err)
{
  char buf[1024];

  if (make_dir (dir, "text_encoder", err) || make_dir (dir, "text_encoder_2", err) ||
      make_dir (dir, "text_encoder_3", err))
    return err->status;
  snprintf (buf, sizeof buf, clip_config_fmt, TM_CLIP_L_WIDTH, 4 * TM_CLIP_L_WIDTH,
            TM_CLIP_L_HEADS, TM_CLIP_LAYERS, "quick_gelu", TM_CLIP_L_WIDTH, TM_CLIP_VOCAB);
  if (write_text (dir, "text_encoder/config.json", buf, err))
    return err->status;
  snprintf (buf, sizeof buf, clip_config_fmt, TM_CLIP_G_WIDTH, 4 * TM_CLIP_G_WIDTH,
            TM_CLIP_G_HEADS, TM_CLIP_LAYERS, "gelu", TM_CLIP_G_WIDTH, TM_CLIP_VOCAB);
  if (write_text (dir, "text_encoder_2/config.json", buf, err))
    return err->status;
  snprintf (buf, sizeof buf, t5_config_fmt, TM_T5_WIDTH, TM_T5_FF, TM_T5_HEADS, TM_T5_LAYERS,
            TM_T5_VOCAB);
  return write_text (dir, "text_encoder_3/config.json", buf, err);
}

/* dir/sub/name → a symlink to the absolute path of src (which must exist). */
static enum sd35_status
link_file (const char *src_dir, const char *src_name, const char *dir, const char *sub,
           int required, struct sd35_error *err)
{
  char *src = path_join (src_dir, src_name), *abs = NULL, *d = path_join (dir, sub), *dst;

  dst = d ? path_join (d, src_name) : NULL;
  if (src == NULL || d == NULL || dst == NULL)
    sd35_set_error (err, SD35_ERR_OOM, "out of memory");
  else if ((abs = realpath (src, NULL)) == NULL)
    {
      if (required)
        sd35_set_error (err, SD35_ERR_MISSING, "tokenizer file %s not found (--tokenizers "
                        "must hold clip/vocab.json, clip/merges.txt and t5/spiece.model or "
                        "t5/tokenizer.json)", src);
    }
  else
    {
      unlink (dst);
      if (symlink (abs, dst) != 0)
        sd35_set_error (err, SD35_ERR_IO, "cannot create the link %s: %s", dst,
                        strerror (errno));
    }
  free (src);
  free (abs);
  free (d);
  free (dst);
  return err->status;
}

static enum sd35_status
write_tokenizers (const struct test_model_options *o, struct sd35_error *err)
{
  const char *dir = o->out_dir;
  char       *clip = NULL, *t5 = NULL;
  struct stat st;

  if (make_dir (dir, "tokenizer", err) || make_dir (dir, "tokenizer_2", err) ||
      make_dir (dir, "tokenizer_3", err))
    return err->status;
  if (o->tokenizers_dir == NULL)
    {
      char *a = path_join (dir, "tokenizer"), *b = path_join (dir, "tokenizer_3");
      if (a == NULL || b == NULL)
        sd35_set_error (err, SD35_ERR_OOM, "out of memory");
      else if (test_model_write_tokenizers (a, b, err) == SD35_OK)
        {
          /* tokenizer_2 (CLIP-G) uses the same files */
          link_file (a, "vocab.json", dir, "tokenizer_2", 1, err);
          link_file (a, "merges.txt", dir, "tokenizer_2", 1, err);
        }
      free (a);
      free (b);
      return err->status;
    }
  clip = path_join (o->tokenizers_dir, "clip");
  t5 = path_join (o->tokenizers_dir, "t5");
  if (clip == NULL || t5 == NULL)
    sd35_set_error (err, SD35_ERR_OOM, "out of memory");
  else if (link_file (clip, "vocab.json", dir, "tokenizer", 1, err) == SD35_OK &&
           link_file (clip, "merges.txt", dir, "tokenizer", 1, err) == SD35_OK &&
           link_file (clip, "vocab.json", dir, "tokenizer_2", 1, err) == SD35_OK &&
           link_file (clip, "merges.txt", dir, "tokenizer_2", 1, err) == SD35_OK &&
           link_file (t5, "spiece.model", dir, "tokenizer_3", 0, err) == SD35_OK &&
           link_file (t5, "tokenizer.json", dir, "tokenizer_3", 0, err) == SD35_OK)
    {
      char *sp = path_join (t5, "spiece.model"), *tj = path_join (t5, "tokenizer.json");
      if (sp && tj && stat (sp, &st) != 0 && stat (tj, &st) != 0)
        sd35_set_error (err, SD35_ERR_MISSING, "%s holds neither spiece.model nor "
                        "tokenizer.json", t5);
      free (sp);
      free (tj);
    }
  free (clip);
  free (t5);
  return err->status;
}

void
test_model_options_init (struct test_model_options *o)
{
  memset (o, 0, sizeof *o);
  o->variant = SD35_VARIANT_LARGE;
}

enum sd35_status
test_model_write (const struct test_model_options *o, struct sd35_error *err)
{
  int               medium = o->variant == SD35_VARIANT_MEDIUM;
  struct torch_rng *rng;
  char             *p = NULL;
  const int64_t     adm = TM_CLIP_L_WIDTH + TM_CLIP_G_WIDTH, ctx = TM_T5_WIDTH;
  struct tm_part    main_parts[2] = {
    { "model.diffusion_model.", SD35_BF16, part_mmdit, medium, adm, ctx },
    { "first_stage_model.", SD35_F16, part_vae, 0, 0, 0 },
  };
  struct tm_part    clip_l = { "", SD35_F16, part_clip, TM_CLIP_L_WIDTH, 0, 0 };
  struct tm_part    clip_g = { "", SD35_F16, part_clip, TM_CLIP_G_WIDTH, 0, 0 };
  struct tm_part    t5 = { "", SD35_F16, part_t5, 0, 0, 0 };

  if (o->variant != SD35_VARIANT_LARGE && o->variant != SD35_VARIANT_MEDIUM)
    return sd35_set_error (err, SD35_ERR_ARG, "the test model is Large or Medium shaped");
  if (o->out_dir == NULL || o->out_dir[0] == '\0')
    return sd35_set_error (err, SD35_ERR_ARG, "no output folder given");
  if (make_dir (o->out_dir, NULL, err) || make_dir (o->out_dir, "text_encoders", err))
    return err->status;
  rng = torch_rng_new (o->seed);
  if (rng == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory");

#define TM_FILE(name, parts, n, poison)                                                      \
  do {                                                                                        \
    free (p);                                                                                 \
    p = path_join (o->out_dir, name);                                                         \
    if (p == NULL)                                                                            \
      sd35_set_error (err, SD35_ERR_OOM, "out of memory");                                    \
    else                                                                                      \
      write_parts (p, parts, n, rng, poison, err);                                            \
  } while (0)

  TM_FILE (medium ? "sd3.5_medium.safetensors" : "sd3.5_large.safetensors", main_parts, 2,
           o->poison_nan ? "final_layer.linear.weight" : NULL);
  if (err->status == SD35_OK)
    TM_FILE ("text_encoders/clip_l.safetensors", &clip_l, 1, NULL);
  if (err->status == SD35_OK)
    TM_FILE ("text_encoders/clip_g.safetensors", &clip_g, 1, NULL);
  if (err->status == SD35_OK)
    TM_FILE ("text_encoders/t5xxl_fp16.safetensors", &t5, 1, NULL);
#undef TM_FILE
  free (p);
  torch_rng_free (rng);
  if (err->status == SD35_OK && write_configs (o->out_dir, err) == SD35_OK &&
      write_tokenizers (o, err) == SD35_OK)
    write_text (o->out_dir, "README.txt", readme_text, err);
  return err->status;
}
