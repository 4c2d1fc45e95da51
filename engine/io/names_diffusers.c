/* names_diffusers.c — the derived st_file with reference names over a diffusers transformer
 * or VAE file (see names_diffusers.h).  Rules read backwards from diffusers'
 * scripts/convert_sd3_to_diffusers.py (convert_sd3_transformer_checkpoint_to_diffusers) and
 * loaders/single_file_utils.py (convert_ldm_vae_checkpoint, update_vae_resnet_ldm_to_diffusers,
 * update_vae_attentions_ldm_to_diffusers, DIFFUSERS_TO_LDM_MAPPING["vae"]).
 *
 * Like safetensors_index.c this builds an st_file itself, so it uses safetensors_internal.h. */
#include "names_diffusers.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors_internal.h"

#define MMDIT_PREFIX "model.diffusion_model."
#define VAE_PREFIX   "first_stage_model."

enum rule_op
{
  OP_RENAME,
  OP_Q,             /* one third of a packed qkv */
  OP_K,
  OP_V,
  OP_SWAP,          /* diffusers (scale, shift) → reference (shift, scale) */
  OP_SWAP_PRE_ONLY  /* OP_SWAP in the last (pre_only) context block, else OP_RENAME */
};

/* `from` ends with '.' (a module: the rest of the key follows) or is a whole key. */
struct rule
{
  const char  *from, *to;
  enum rule_op op;
};

/* SD3Transformer2DModel, outside the blocks */
static const struct rule top_rules[] = {
  { "pos_embed.pos_embed", "pos_embed", OP_RENAME },
  { "pos_embed.proj.", "x_embedder.proj.", OP_RENAME },
  { "time_text_embed.timestep_embedder.linear_1.", "t_embedder.mlp.0.", OP_RENAME },
  { "time_text_embed.timestep_embedder.linear_2.", "t_embedder.mlp.2.", OP_RENAME },
  { "time_text_embed.text_embedder.linear_1.", "y_embedder.mlp.0.", OP_RENAME },
  { "time_text_embed.text_embedder.linear_2.", "y_embedder.mlp.2.", OP_RENAME },
  { "context_embedder.", "context_embedder.", OP_RENAME },
  /* AdaLayerNormContinuous chunks (scale, shift); FinalLayer (shift, scale) */
  { "norm_out.linear.", "final_layer.adaLN_modulation.1.", OP_SWAP },
  { "proj_out.", "final_layer.linear.", OP_RENAME },
};

/* transformer_blocks.{i}.<from> → joint_blocks.{i}.<to> */
static const struct rule block_rules[] = {
  { "norm1.linear.", "x_block.adaLN_modulation.1.", OP_RENAME },
  /* the last block's context norm is an AdaLayerNormContinuous too (context_pre_only) */
  { "norm1_context.linear.", "context_block.adaLN_modulation.1.", OP_SWAP_PRE_ONLY },
  { "attn.to_q.", "x_block.attn.qkv.", OP_Q },
  { "attn.to_k.", "x_block.attn.qkv.", OP_K },
  { "attn.to_v.", "x_block.attn.qkv.", OP_V },
  { "attn.add_q_proj.", "context_block.attn.qkv.", OP_Q },
  { "attn.add_k_proj.", "context_block.attn.qkv.", OP_K },
  { "attn.add_v_proj.", "context_block.attn.qkv.", OP_V },
  { "attn.norm_q.", "x_block.attn.ln_q.", OP_RENAME },
  { "attn.norm_k.", "x_block.attn.ln_k.", OP_RENAME },
  { "attn.norm_added_q.", "context_block.attn.ln_q.", OP_RENAME },
  { "attn.norm_added_k.", "context_block.attn.ln_k.", OP_RENAME },
  { "attn.to_out.0.", "x_block.attn.proj.", OP_RENAME },
  { "attn.to_add_out.", "context_block.attn.proj.", OP_RENAME },
  /* MMDiT-X (SD3.5 Medium): the x-only second attention */
  { "attn2.to_q.", "x_block.attn2.qkv.", OP_Q },
  { "attn2.to_k.", "x_block.attn2.qkv.", OP_K },
  { "attn2.to_v.", "x_block.attn2.qkv.", OP_V },
  { "attn2.norm_q.", "x_block.attn2.ln_q.", OP_RENAME },
  { "attn2.norm_k.", "x_block.attn2.ln_k.", OP_RENAME },
  { "attn2.to_out.0.", "x_block.attn2.proj.", OP_RENAME },
  { "ff.net.0.proj.", "x_block.mlp.fc1.", OP_RENAME },
  { "ff.net.2.", "x_block.mlp.fc2.", OP_RENAME },
  { "ff_context.net.0.proj.", "context_block.mlp.fc1.", OP_RENAME },
  { "ff_context.net.2.", "context_block.mlp.fc2.", OP_RENAME },
};

/* AutoencoderKL mid-block attention (current and legacy diffusers names) → LDM AttnBlock */
static const struct rule attn_rules[] = {
  { "group_norm.", "norm.", OP_RENAME },
  { "to_q.", "q.", OP_RENAME },
  { "to_k.", "k.", OP_RENAME },
  { "to_v.", "v.", OP_RENAME },
  { "to_out.0.", "proj_out.", OP_RENAME },
  { "query.", "q.", OP_RENAME },
  { "key.", "k.", OP_RENAME },
  { "value.", "v.", OP_RENAME },
  { "proj_attn.", "proj_out.", OP_RENAME },
};

struct qkv_group
{
  char                   *name;     /* reference key of the packed tensor */
  const struct st_tensor *part[3];  /* q, k, v */
};

struct builder
{
  struct st_file    *src, *out;
  GHashTable        *groups;  /* packed name → struct qkv_group (owned) */
  GPtrArray         *order;   /* the groups, first-seen order */
  struct sd35_error *err;
};

static const struct rule *
match (const struct rule *r, size_t n, const char *name, const char **rest)
{
  for (size_t i = 0; i < n; i++)
    {
      size_t l = strlen (r[i].from);
      if (strncmp (name, r[i].from, l) == 0 && (r[i].from[l - 1] == '.' || name[l] == '\0'))
        {
          *rest = name + l;
          return &r[i];
        }
    }
  return NULL;
}

/* "<lit><digits>." at s: the number, and *len the characters taken; -1 if s is not that. */
static int
take_index (const char *s, const char *lit, int *len)
{
  size_t l = strlen (lit);
  int    v = 0, k = 0;

  if (strncmp (s, lit, l) != 0)
    return -1;
  s += l;
  while (k < 6 && g_ascii_isdigit (s[k]))
    v = 10 * v + (s[k++] - '0');
  if (k == 0 || s[k] != '.')
    return -1;
  *len = (int) l + k + 1;
  return v;
}

enum diffusers_part
names_diffusers_kind (const struct st_file *f)
{
  if (st_has_prefix (f, "transformer_blocks.") && st_has_prefix (f, "time_text_embed."))
    return DIFFUSERS_TRANSFORMER;
  if (st_has_prefix (f, "decoder.up_blocks.") || st_has_prefix (f, "decoder.mid_block.")
      || st_has_prefix (f, "encoder.down_blocks."))
    return DIFFUSERS_VAE;
  return DIFFUSERS_NONE;
}

/* Appends a tensor named `name` (taken) to the derived file. */
static enum sd35_status
emit (struct builder *b, char *name, const struct st_tensor *from, enum sd35_dtype dt, int ndim,
      const int64_t *shape, const void *data, size_t nbytes)
{
  struct st_file  *f = b->out;
  struct st_tensor t;

  if (g_hash_table_contains (f->by_name, name))
    {
      sd35_set_error (b->err, SD35_ERR_FORMAT, "%s: two diffusers tensors map to %s (the "
                      "second is %s); is this a diffusers SD3 file?", st_path (b->src), name,
                      from->name);
      g_free (name);
      return SD35_ERR_FORMAT;
    }
  if (f->n_tensors == f->cap_tensors)
    {
      size_t            cap = f->cap_tensors ? 2 * f->cap_tensors : 64, bytes;
      struct st_tensor *nt = NULL;
      if (sd35_mul_size (cap, sizeof *nt, &bytes) != 0
          || (nt = realloc (f->tensors, bytes)) == NULL)
        {
          g_free (name);
          return sd35_set_error (b->err, SD35_ERR_OOM, "out of memory for the tensor table");
        }
      f->tensors = nt;
      f->cap_tensors = cap;
    }
  memset (&t, 0, sizeof t);
  t.name = name;
  t.dtype = dt;
  t.ndim = ndim;
  t.numel = 1;
  for (int d = 0; d < ndim; d++)
    {
      t.shape[d] = shape[d];
      t.numel *= (size_t) shape[d];  /* ≤ the source's elements (or 3× for qkv, checked) */
    }
  t.nbytes = nbytes;
  t.data = data;
  t.file = from->file;
  f->tensors[f->n_tensors] = t;
  g_hash_table_insert (f->by_name, (gpointer) t.name, GSIZE_TO_POINTER (f->n_tensors + 1));
  f->n_tensors++;
  return SD35_OK;
}

static enum sd35_status
emit_alias (struct builder *b, char *name, const struct st_tensor *t)
{
  return emit (b, name, t, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
}

/* The two halves of dim 0 exchanged (rows for a [2h, h] weight, values for a [2h] bias). */
static enum sd35_status
emit_swapped (struct builder *b, char *name, const struct st_tensor *t)
{
  size_t   half = t->nbytes / 2;
  uint8_t *buf;

  if (t->ndim < 1 || t->shape[0] % 2 != 0)
    {
      sd35_set_error (b->err, SD35_ERR_SHAPE, "%s: %s has shape [%lld, ...]; an adaLN "
                      "projection needs an even number of rows (shift and scale)",
                      st_path (b->src), t->name, t->ndim ? (long long) t->shape[0] : 0LL);
      g_free (name);
      return SD35_ERR_SHAPE;
    }
  buf = sd35_malloc (t->nbytes ? t->nbytes : 1, t->name, b->err);
  if (buf == NULL)
    {
      g_free (name);
      return SD35_ERR_OOM;
    }
  memcpy (buf, (const uint8_t *) t->data + half, half);
  memcpy (buf + half, t->data, half);
  st_file_adopt (b->out, buf);
  return emit (b, name, t, t->dtype, t->ndim, t->shape, buf, t->nbytes);
}

static void
group_free (gpointer p)
{
  struct qkv_group *g = p;
  g_free (g->name);
  g_free (g);
}

static enum sd35_status
add_part (struct builder *b, char *name, int which, const struct st_tensor *t)
{
  struct qkv_group *g = g_hash_table_lookup (b->groups, name);

  if (g == NULL)
    {
      g = g_new0 (struct qkv_group, 1);
      g->name = name;
      g_hash_table_insert (b->groups, g->name, g);
      g_ptr_array_add (b->order, g);
    }
  else
    g_free (name);
  g->part[which] = t;
  return SD35_OK;
}

/* q, k, v ([n, ...] each) stacked into [3n, ...]: the file bytes when the dtypes agree, an
 * fp32 copy when not (as weights.c does for HF CLIP). */
static enum sd35_status
emit_packed (struct builder *b, struct qkv_group *g)
{
  static const char *const qkv = "qkv";
  const struct st_tensor  *q = g->part[0];
  int64_t                  shape[ST_MAX_DIMS];
  size_t                   each, len;
  int                      same;
  uint8_t                 *buf;

  for (int i = 0; i < 3; i++)
    if (g->part[i] == NULL)
      return sd35_set_error (b->err, SD35_ERR_MISSING, "%s: the %c part of %s is missing "
                             "(diffusers stores q, k and v separately; all three are needed)",
                             st_path (b->src), qkv[i], g->name);
  for (int i = 1; i < 3; i++)
    {
      const struct st_tensor *p = g->part[i];
      int                     ok = p->ndim == q->ndim;
      for (int d = 0; ok && d < q->ndim; d++)
        ok = p->shape[d] == q->shape[d];
      if (!ok || q->ndim < 1 || !sd35_dtype_is_float (p->dtype))
        {
          char s1[96], s2[96];
          return sd35_set_error (b->err, SD35_ERR_SHAPE, "%s: %s %s and %s %s cannot be packed "
                                 "into %s (q, k, v must be float tensors of one shape)",
                                 st_path (b->src), q->name,
                                 st_shape_string (q->ndim, q->shape, s1, sizeof s1), p->name,
                                 st_shape_string (p->ndim, p->shape, s2, sizeof s2), g->name);
        }
    }
  same = q->dtype == g->part[1]->dtype && q->dtype == g->part[2]->dtype;
  each = same ? q->nbytes : q->numel * sizeof (float);
  if (sd35_mul_size (each, 3, &len) != 0
      || (buf = sd35_malloc (len ? len : 1, g->name, b->err)) == NULL)
    return sd35_set_error (b->err, SD35_ERR_OOM, "out of memory packing %s", g->name);
  for (int i = 0; i < 3; i++)
    if (same)
      memcpy (buf + i * each, g->part[i]->data, each);
    else
      sd35_convert_to_f32 ((float *) (void *) (buf + i * each), g->part[i]->data,
                           g->part[i]->dtype, g->part[i]->numel);
  st_file_adopt (b->out, buf);
  memcpy (shape, q->shape, sizeof shape);
  shape[0] *= 3;
  return emit (b, g_strdup (g->name), q, same ? q->dtype : SD35_F32, q->ndim, shape, buf, len);
}

/* Is block i's context adaLN the 2-way (pre_only) one?  [2h, h] instead of [6h, h]. */
static int
pre_only_block (const struct st_file *f, int i)
{
  char *k = g_strdup_printf ("transformer_blocks.%d.norm1_context.linear.weight", i);
  const struct st_tensor *t = st_find (f, k);

  g_free (k);
  return t != NULL && t->ndim == 2 && t->shape[0] == 2 * t->shape[1];
}

static enum sd35_status
map_transformer_key (struct builder *b, const struct st_tensor *t)
{
  const struct rule *r;
  const char        *rest;
  char              *name;
  int                i, n = 0;

  i = take_index (t->name, "transformer_blocks.", &n);
  if (i >= 0 && (r = match (block_rules, G_N_ELEMENTS (block_rules), t->name + n, &rest)))
    name = g_strdup_printf (MMDIT_PREFIX "joint_blocks.%d.%s%s", i, r->to, rest);
  else if (i < 0 && (r = match (top_rules, G_N_ELEMENTS (top_rules), t->name, &rest)))
    name = g_strconcat (MMDIT_PREFIX, r->to, rest, NULL);
  else
    return emit_alias (b, g_strconcat (MMDIT_PREFIX, t->name, NULL), t);  /* logged unused */
  switch (r->op)
    {
    case OP_Q:
    case OP_K:
    case OP_V:
      return add_part (b, name, r->op - OP_Q, t);
    case OP_SWAP:
      return emit_swapped (b, name, t);
    case OP_SWAP_PRE_ONLY:
      if (pre_only_block (b->src, i))
        return emit_swapped (b, name, t);
      return emit_alias (b, name, t);
    default:
      return emit_alias (b, name, t);
    }
}

/* ResnetBlock2D → LDM ResnetBlock: only the shortcut is named differently. */
static const char *
resnet_tail (const char *rest)
{
  return g_str_has_prefix (rest, "conv_shortcut.") ? "nin_shortcut." : NULL;
}

/* A diffusers AutoencoderKL key → the LDM key (no prefix), NULL when there is no rule.
 * *attn_1x1: an attention q/k/v/proj_out weight (Linear [C, C] there, Conv 1×1 here). */
static char *
vae_name (const char *key, int n_up, int *attn_1x1)
{
  const char *coder, *r, *rest, *t;
  int         i, j, n, m;

  *attn_1x1 = 0;
  if (g_str_has_prefix (key, "encoder."))
    coder = "encoder";
  else if (g_str_has_prefix (key, "decoder."))
    coder = "decoder";
  else
    return NULL;
  r = key + 8;
  if (g_str_has_prefix (r, "conv_in.") || g_str_has_prefix (r, "conv_out."))
    return g_strdup (key);
  if (g_str_has_prefix (r, "conv_norm_out."))
    return g_strconcat (coder, ".norm_out.", r + 14, NULL);
  if ((i = take_index (r, "down_blocks.", &n)) >= 0)
    {
      if ((j = take_index (r + n, "resnets.", &m)) >= 0)
        {
          rest = r + n + m;
          t = resnet_tail (rest);
          return g_strdup_printf ("%s.down.%d.block.%d.%s%s", coder, i, j, t ? t : rest,
                                  t ? rest + 14 : "");
        }
      if (g_str_has_prefix (r + n, "downsamplers.0.conv."))
        return g_strdup_printf ("%s.down.%d.downsample.conv.%s", coder, i, r + n + 20);
      return NULL;
    }
  if ((i = take_index (r, "up_blocks.", &n)) >= 0)
    {
      int level = n_up - 1 - i;  /* diffusers runs the decoder levels in order, LDM reversed */
      if (level < 0)
        return NULL;
      if ((j = take_index (r + n, "resnets.", &m)) >= 0)
        {
          rest = r + n + m;
          t = resnet_tail (rest);
          return g_strdup_printf ("%s.up.%d.block.%d.%s%s", coder, level, j, t ? t : rest,
                                  t ? rest + 14 : "");
        }
      if (g_str_has_prefix (r + n, "upsamplers.0.conv."))
        return g_strdup_printf ("%s.up.%d.upsample.conv.%s", coder, level, r + n + 18);
      return NULL;
    }
  if ((j = take_index (r, "mid_block.resnets.", &n)) >= 0 && j < 2)
    {
      rest = r + n;
      t = resnet_tail (rest);
      return g_strdup_printf ("%s.mid.block_%d.%s%s", coder, j + 1, t ? t : rest,
                              t ? rest + 14 : "");
    }
  if (g_str_has_prefix (r, "mid_block.attentions.0."))
    {
      const struct rule *a = match (attn_rules, G_N_ELEMENTS (attn_rules), r + 23, &rest);
      if (a == NULL)
        return NULL;
      *attn_1x1 = strcmp (a->to, "norm.") != 0 && strcmp (rest, "weight") == 0;
      return g_strdup_printf ("%s.mid.attn_1.%s%s", coder, a->to, rest);
    }
  return NULL;
}

static enum sd35_status
map_vae_key (struct builder *b, const struct st_tensor *t, int n_up)
{
  int   attn_1x1;
  char *ldm = vae_name (t->name, n_up, &attn_1x1);
  char *name = g_strconcat (VAE_PREFIX, ldm != NULL ? ldm : t->name, NULL);

  g_free (ldm);
  if (attn_1x1 && (t->ndim == 2 || t->ndim == 3))
    {
      /* same bytes, seen as the reference's 1×1 conv [C, C, 1, 1] */
      const int64_t s4[4] = { t->shape[0], t->shape[1], 1, 1 };
      if (t->ndim == 3 && t->shape[2] != 1)
        return emit_alias (b, name, t);  /* not a 1×1 kernel: vae.c reports the shape */
      return emit (b, name, t, t->dtype, 4, s4, t->data, t->nbytes);
    }
  return emit_alias (b, name, t);
}

/* Moves src's mappings, adopted buffers and metadata into out and closes src; on OOM nothing
 * has moved. */
static enum sd35_status
take_over (struct st_file *out, struct st_file *src, struct sd35_error *err)
{
  GHashTableIter it;
  gpointer       k, v;
  struct st_map *m;

  m = realloc (out->maps, (size_t) (out->n_maps + src->n_maps + 1) * sizeof *m);
  if (m == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory renaming %s", st_path (src));
  out->maps = m;
  memcpy (m + out->n_maps, src->maps, (size_t) src->n_maps * sizeof *m);
  out->n_maps += src->n_maps;
  src->n_maps = 0;
  for (guint i = 0; i < src->adopted->len; i++)
    g_ptr_array_add (out->adopted, src->adopted->pdata[i]);
  g_ptr_array_set_free_func (src->adopted, NULL);
  g_hash_table_iter_init (&it, src->metadata);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_hash_table_insert (out->metadata, g_strdup (k), g_strdup (v));
  st_close (src);
  return SD35_OK;
}

enum sd35_status
names_diffusers_canonical (struct st_file **fp, struct sd35_error *err)
{
  struct st_file     *src = *fp;
  enum diffusers_part kind = names_diffusers_kind (src);
  struct builder      b = { 0 };
  enum sd35_status    st = SD35_OK;
  int                 n_up = 0, n;

  if (kind == DIFFUSERS_NONE)
    return SD35_OK;
  b.src = src;
  b.err = err;
  b.out = st_file_new (st_path (src), err);
  if (b.out == NULL)
    return SD35_ERR_OOM;
  b.groups = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, group_free);
  b.order = g_ptr_array_new ();
  for (size_t i = 0; i < st_count (src); i++)
    {
      int up = take_index (st_at (src, i)->name, "decoder.up_blocks.", &n);
      if (up >= n_up)
        n_up = up + 1;
    }
  for (size_t i = 0; st == SD35_OK && i < st_count (src); i++)
    st = kind == DIFFUSERS_TRANSFORMER ? map_transformer_key (&b, st_at (src, i))
                                       : map_vae_key (&b, st_at (src, i), n_up);
  for (guint i = 0; st == SD35_OK && i < b.order->len; i++)
    st = emit_packed (&b, b.order->pdata[i]);
  g_ptr_array_free (b.order, TRUE);
  g_hash_table_destroy (b.groups);
  if (st == SD35_OK)
    {
      sd35_log ("%s: diffusers %s, %zu tensors under reference names", st_path (src),
                kind == DIFFUSERS_TRANSFORMER ? "transformer" : "VAE", st_count (b.out));
      st = take_over (b.out, src, err);
    }
  if (st != SD35_OK)
    {
      st_close (b.out);  /* its tensors point into src, which the caller still owns */
      return st;
    }
  *fp = b.out;
  return SD35_OK;
}
