/* lora.c — LoRA files (diffusers/PEFT, kohya, official keys) merged into the loaded
 * weights and taken out again (see lora.h for the formats and the memory approach). */
#include "lora.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"

/* --- key names ----------------------------------------------------------------------------- */

enum lora_key_kind
{
  KEY_DOWN,   /* A [rank, in] */
  KEY_UP,     /* B [out, rank] */
  KEY_ALPHA   /* scalar α */
};

static const struct
{
  const char        *suffix;
  enum lora_key_kind kind;
} lora_suffixes[] = {
  { ".lora_A.default.weight", KEY_DOWN },  /* PEFT with the adapter name kept */
  { ".lora_B.default.weight", KEY_UP },
  { ".lora_A.weight", KEY_DOWN },          /* diffusers / PEFT */
  { ".lora_B.weight", KEY_UP },
  { ".lora_down.weight", KEY_DOWN },       /* kohya, official keys */
  { ".lora_up.weight", KEY_UP },
  { ".lora.down.weight", KEY_DOWN },       /* older diffusers attention processors */
  { ".lora.up.weight", KEY_UP },
  { ".alpha", KEY_ALPHA },
};

/* diffusers SD3Transformer2DModel module → reference module (the inverse of diffusers'
 * convert_sd3_to_diffusers.py; names_diffusers.c does the same for whole checkpoints). */
enum map_op
{
  MAP_RENAME,
  MAP_Q, MAP_K, MAP_V,   /* one third of the fused qkv rows */
  MAP_SWAP,              /* AdaLayerNormContinuous (scale, shift) → reference (shift, scale) */
  MAP_SWAP_PRE_ONLY      /* MAP_SWAP in the last (pre_only) context block, else MAP_RENAME */
};

struct map_rule
{
  const char *from, *to;
  enum map_op op;
};

static const struct map_rule top_rules[] = {
  { "time_text_embed.timestep_embedder.linear_1", "t_embedder.mlp.0", MAP_RENAME },
  { "time_text_embed.timestep_embedder.linear_2", "t_embedder.mlp.2", MAP_RENAME },
  { "time_text_embed.text_embedder.linear_1", "y_embedder.mlp.0", MAP_RENAME },
  { "time_text_embed.text_embedder.linear_2", "y_embedder.mlp.2", MAP_RENAME },
  { "context_embedder", "context_embedder", MAP_RENAME },
  { "norm_out.linear", "final_layer.adaLN_modulation.1", MAP_SWAP },
  { "proj_out", "final_layer.linear", MAP_RENAME },
  { "pos_embed.proj", "x_embedder.proj", MAP_RENAME },  /* a conv: counted as unmatched */
};

static const struct map_rule block_rules[] = {
  { "norm1.linear", "x_block.adaLN_modulation.1", MAP_RENAME },
  { "norm1_context.linear", "context_block.adaLN_modulation.1", MAP_SWAP_PRE_ONLY },
  { "attn.to_q", "x_block.attn.qkv", MAP_Q },
  { "attn.to_k", "x_block.attn.qkv", MAP_K },
  { "attn.to_v", "x_block.attn.qkv", MAP_V },
  { "attn.add_q_proj", "context_block.attn.qkv", MAP_Q },
  { "attn.add_k_proj", "context_block.attn.qkv", MAP_K },
  { "attn.add_v_proj", "context_block.attn.qkv", MAP_V },
  { "attn.to_out.0", "x_block.attn.proj", MAP_RENAME },
  { "attn.to_add_out", "context_block.attn.proj", MAP_RENAME },
  { "attn2.to_q", "x_block.attn2.qkv", MAP_Q },
  { "attn2.to_k", "x_block.attn2.qkv", MAP_K },
  { "attn2.to_v", "x_block.attn2.qkv", MAP_V },
  { "attn2.to_out.0", "x_block.attn2.proj", MAP_RENAME },
  { "ff.net.0.proj", "x_block.mlp.fc1", MAP_RENAME },
  { "ff.net.2", "x_block.mlp.fc2", MAP_RENAME },
  { "ff_context.net.0.proj", "context_block.mlp.fc1", MAP_RENAME },
  { "ff_context.net.2", "context_block.mlp.fc2", MAP_RENAME },
};

/* Key patterns of other model families: a LoRA that matches nothing here and has these is
 * refused by name. */
static const struct
{
  const char *pattern, *family;
} other_families[] = {
  { "double_blocks", "Flux" },
  { "single_blocks", "Flux" },
  { "single_transformer_blocks", "Flux" },
  { "lora_te2_", "SDXL" },            /* checked only together with UNet keys, see below */
  { "input_blocks", "SD 1.x/2.x/SDXL (UNet)" },
  { "output_blocks", "SD 1.x/2.x/SDXL (UNet)" },
  { "middle_block", "SD 1.x/2.x/SDXL (UNet)" },
  { "down_blocks", "SD 1.x/2.x/SDXL (UNet)" },
  { "up_blocks", "SD 1.x/2.x/SDXL (UNet)" },
  { "mid_block", "SD 1.x/2.x/SDXL (UNet)" },
};

/* --- parsed files ---------------------------------------------------------------------- */

struct lora_module
{
  char                   *name;      /* the module key in the file (for messages) */
  enum lora_part          part;
  char                   *target;    /* registry name (underscored: '.' → '_' form) */
  int                     underscored;
  int                     third;     /* -1, or 0/1/2: q/k/v rows of a fused qkv */
  enum map_op             op;
  const struct st_tensor *down, *up, *alpha;
  float                  *a, *b;     /* fp32 copies, made on first use */
  int64_t                 rank;
};

struct lora_file
{
  char           *path;
  struct st_file *st;
  GPtrArray      *modules;        /* struct lora_module * */
  size_t          n_keys;
  size_t          n_unmatched;    /* keys of no known LoRA form or layer name (at open) */
  char           *first_unmatched;
  size_t          n_missing;      /* modules naming a layer this model lacks (per set) */
  const char     *first_missing;
  size_t          n_skipped_t5;   /* T5 keys while T5 is off */
  size_t          n_applied[LORA_N_PARTS];
  const char     *format;
  const char     *family;         /* another model family recognised by its keys, or NULL */
  char           *family_key;
};

struct lora_active
{
  struct lora_file *file;
  double            strength;
};

struct lora_state
{
  GPtrArray          *files;    /* struct lora_file *, the current set's files */
  struct lora_active *active;
  int                 n_active;
  char               *report;
};

static void
module_free (gpointer p)
{
  struct lora_module *m = p;

  g_free (m->name);
  g_free (m->target);
  free (m->a);
  free (m->b);
  g_free (m);
}

static void
lora_file_free (struct lora_file *f)
{
  if (f == NULL)
    return;
  if (f->modules != NULL)
    g_ptr_array_free (f->modules, TRUE);
  st_close (f->st);
  g_free (f->path);
  g_free (f->first_unmatched);
  g_free (f->family_key);
  g_free (f);
}

struct lora_state *
lora_state_new (void)
{
  struct lora_state *s = g_new0 (struct lora_state, 1);

  s->files = g_ptr_array_new ();
  s->report = g_strdup ("");
  return s;
}

void
lora_state_free (struct lora_state *s)
{
  if (s == NULL)
    return;
  for (guint i = 0; i < s->files->len; i++)
    lora_file_free (s->files->pdata[i]);
  g_ptr_array_free (s->files, TRUE);
  g_free (s->active);
  g_free (s->report);
  g_free (s);
}

const char *
lora_report (const struct lora_state *s)
{
  return s != NULL && s->report != NULL ? s->report : "";
}

static int
has_prefix (const char *s, const char *p, const char **rest)
{
  size_t n = strlen (p);

  if (strncmp (s, p, n) != 0)
    return 0;
  *rest = s + n;
  return 1;
}

/* "a.b_c.1" → "a_b_c_1" (kohya's module names) */
static char *
underscore (const char *name)
{
  char *u = g_strdup (name);

  for (char *p = u; *p; p++)
    if (*p == '.')
      *p = '_';
  return u;
}

/* A diffusers module (without "transformer.") → reference module; 0 if no rule.  With
 * `underscored`, `name` uses '_' for every '.' (kohya-style names of diffusers modules). */
static int
map_diffusers (const char *name, int underscored, char **target, enum map_op *op)
{
  const char *rest;
  char       *from;
  int         block;

  for (size_t i = 0; i < G_N_ELEMENTS (top_rules); i++)
    {
      from = underscored ? underscore (top_rules[i].from) : g_strdup (top_rules[i].from);
      if (strcmp (name, from) == 0)
        {
          g_free (from);
          *target = g_strdup (top_rules[i].to);
          *op = top_rules[i].op;
          return 1;
        }
      g_free (from);
    }
  if (!has_prefix (name, underscored ? "transformer_blocks_" : "transformer_blocks.", &rest))
    return 0;
  {
    char *end;
    long  v = strtol (rest, &end, 10);
    if (end == rest || v < 0 || v > 100000 || *end != (underscored ? '_' : '.'))
      return 0;
    block = (int) v;
    rest = end + 1;
  }
  for (size_t i = 0; i < G_N_ELEMENTS (block_rules); i++)
    {
      from = underscored ? underscore (block_rules[i].from) : g_strdup (block_rules[i].from);
      if (strcmp (rest, from) == 0)
        {
          g_free (from);
          *target = g_strdup_printf ("joint_blocks.%d.%s", block, block_rules[i].to);
          *op = block_rules[i].op;
          return 1;
        }
      g_free (from);
    }
  return 0;
}

/* Module key → part and registry name.  Returns 0 when no format matches. */
static int
map_module (struct lora_module *m, const char **format)
{
  const char *rest;
  enum map_op op = MAP_RENAME;
  char       *target = NULL;
  static const struct
  {
    const char    *prefix;
    enum lora_part part;
    int            underscored;
    const char    *format;
  } direct[] = {
    { "lora_te1_", LORA_CLIP_L, 1, "kohya" },
    { "lora_te2_", LORA_CLIP_G, 1, "kohya" },
    { "lora_te3_", LORA_T5, 1, "kohya" },
    { "lora_unet_", LORA_MMDIT, 1, "kohya" },
    { "text_encoder.", LORA_CLIP_L, 0, "diffusers" },
    { "text_encoder_2.", LORA_CLIP_G, 0, "diffusers" },
    { "text_encoder_3.", LORA_T5, 0, "diffusers" },
    { "text_encoders.clip_l.transformer.", LORA_CLIP_L, 0, "official keys" },
    { "text_encoders.clip_g.transformer.", LORA_CLIP_G, 0, "official keys" },
    { "text_encoders.t5xxl.transformer.", LORA_T5, 0, "official keys" },
    { "model.diffusion_model.", LORA_MMDIT, 0, "official keys" },
    { "diffusion_model.", LORA_MMDIT, 0, "official keys" },
  };
  const char *name = m->name;

  m->third = -1;
  m->op = MAP_RENAME;
  has_prefix (name, "base_model.model.", &name);
  for (size_t i = 0; i < G_N_ELEMENTS (direct); i++)
    if (has_prefix (name, direct[i].prefix, &rest) && *rest)
      {
        m->part = direct[i].part;
        m->target = g_strdup (rest);
        m->underscored = direct[i].underscored;
        *format = direct[i].format;
        return 1;
      }
  /* diffusers transformer, with or without "transformer.", or underscored */
  if ((has_prefix (name, "transformer.", &rest) && map_diffusers (rest, 0, &target, &op)) ||
      (has_prefix (name, "lora_transformer_", &rest) && map_diffusers (rest, 1, &target, &op)) ||
      map_diffusers (name, 0, &target, &op))
    {
      m->part = LORA_MMDIT;
      m->target = target;
      m->third = op == MAP_Q ? 0 : op == MAP_K ? 1 : op == MAP_V ? 2 : -1;
      m->op = op;
      *format = "diffusers";
      return 1;
    }
  /* official names without a prefix */
  if (g_str_has_prefix (name, "joint_blocks.") || g_str_has_prefix (name, "final_layer.") ||
      g_str_has_prefix (name, "t_embedder.") || g_str_has_prefix (name, "y_embedder.") ||
      strcmp (name, "context_embedder") == 0)
    {
      m->part = LORA_MMDIT;
      m->target = g_strdup (name);
      *format = "official keys";
      return 1;
    }
  return 0;
}

static void
note_unmatched (struct lora_file *f, const char *key)
{
  if (f->n_unmatched++ == 0)
    f->first_unmatched = g_strdup (key);
}

/* Opens and groups the keys of one LoRA file (nothing is resolved against a model yet). */
static enum sd35_status
lora_file_open (const char *path, struct lora_file **out, struct sd35_error *err)
{
  struct lora_file *f = g_new0 (struct lora_file, 1);
  GHashTable       *by_module = g_hash_table_new (g_str_hash, g_str_equal);
  int               has_unet = 0, has_te2 = 0;

  *out = NULL;
  f->path = g_strdup (path);
  f->modules = g_ptr_array_new_with_free_func (module_free);
  if (st_open (path, &f->st, err) != SD35_OK)
    {
      sd35_error_prefix (err, "reading the LoRA");
      g_hash_table_destroy (by_module);
      lora_file_free (f);
      return err->status;
    }
  f->n_keys = st_count (f->st);
  for (size_t i = 0; i < f->n_keys; i++)
    {
      const struct st_tensor *t = st_at (f->st, i);
      size_t                  len = strlen (t->name);
      struct lora_module     *m = NULL;
      int                     kind = -1;
      char                   *mod;

      for (size_t k = 0; k < G_N_ELEMENTS (other_families); k++)
        if (strstr (t->name, other_families[k].pattern) != NULL)
          {
            if (strcmp (other_families[k].pattern, "lora_te2_") == 0)
              has_te2 = 1;
            else
              {
                has_unet |= strstr (other_families[k].family, "UNet") != NULL;
                if (f->family == NULL || strcmp (f->family, "Flux") != 0)
                  {
                    f->family = other_families[k].family;
                    g_free (f->family_key);
                    f->family_key = g_strdup (t->name);
                  }
              }
          }
      for (size_t k = 0; k < G_N_ELEMENTS (lora_suffixes); k++)
        {
          size_t sl = strlen (lora_suffixes[k].suffix);
          if (len > sl && strcmp (t->name + len - sl, lora_suffixes[k].suffix) == 0)
            {
              kind = (int) lora_suffixes[k].kind;
              mod = g_strndup (t->name, len - sl);
              m = g_hash_table_lookup (by_module, mod);
              if (m == NULL)
                {
                  m = g_new0 (struct lora_module, 1);
                  m->name = mod;
                  g_ptr_array_add (f->modules, m);
                  g_hash_table_insert (by_module, m->name, m);
                }
              else
                g_free (mod);
              break;
            }
        }
      if (m == NULL)
        {
          note_unmatched (f, t->name);  /* DoRA scales, LoHa/LoKr factors, bias diffs … */
          continue;
        }
      if (kind == KEY_DOWN)
        m->down = t;
      else if (kind == KEY_UP)
        m->up = t;
      else
        m->alpha = t;
    }
  g_hash_table_destroy (by_module);
  if (has_unet && has_te2)
    f->family = "SDXL (UNet)";

  /* keep the modules with both halves and a known name */
  for (guint i = 0; i < f->modules->len;)
    {
      struct lora_module *m = f->modules->pdata[i];
      const char         *format = NULL;
      if (m->down == NULL || m->up == NULL || !map_module (m, &format))
        {
          note_unmatched (f, m->down ? m->down->name : m->up ? m->up->name : m->alpha->name);
          g_ptr_array_remove_index (f->modules, i);
          continue;
        }
      if (f->format == NULL)
        f->format = format;
      else if (strcmp (f->format, format) != 0)
        f->format = "mixed";
      i++;
    }
  *out = f;
  return SD35_OK;
}

/* --- resolving modules against the loaded model --------------------------------------------- */

struct contribution
{
  struct lora_module *m;
  double              scale;   /* strength · α / rank */
  int64_t             row0, rows;
  int                 swap;    /* rows are (scale, shift) halves in diffusers order */
};

/* underscored registry name → registry name, for kohya keys */
static GHashTable *
underscore_index (struct weight_registry *reg)
{
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (size_t i = 0; i < weight_registry_count (reg); i++)
    {
      struct weight_slot *s = weight_registry_at (reg, i);
      for (int p = 0; s != NULL && p < s->n_parts; p++)
        g_hash_table_insert (h, underscore (s->parts[p].name), g_strdup (s->parts[p].name));
    }
  return h;
}

static int64_t
dim_product_tail (const struct st_tensor *t)
{
  int64_t n = 1;

  for (int d = 2; d < t->ndim; d++)
    n *= t->shape[d];
  return n;
}

/* Finds m's slot; 1 = found (c filled), 0 = no such layer, −1 = error (shape, alpha). */
static int
resolve (struct lora_module *m, struct weight_registry *reg, GHashTable *uindex,
         const char *path, struct weight_slot **slot_out, struct contribution *c,
         struct sd35_error *err)
{
  const char         *name = m->target;
  struct weight_slot *slot;
  int64_t             row0, rows, rank;
  const char         *base = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;

  if (reg == NULL)
    return 0;
  if (m->underscored && (name = g_hash_table_lookup (uindex, m->target)) == NULL)
    return 0;
  if ((slot = weight_registry_find (reg, name, &row0, &rows)) == NULL)
    return 0;
  if (m->third >= 0)
    {
      if (rows % 3 != 0)
        return 0;
      rows /= 3;
      row0 += m->third * rows;
    }
  if (m->down->ndim < 2 || m->up->ndim < 2 || dim_product_tail (m->down) != 1 ||
      dim_product_tail (m->up) != 1 || !sd35_dtype_is_float (m->down->dtype) ||
      !sd35_dtype_is_float (m->up->dtype))
    {
      sd35_set_error (err, SD35_ERR_SHAPE, "LoRA %s: %s is not a pair of float matrices "
                      "(down %s, up %s): only plain (linear) LoRA is supported", base, m->name,
                      sd35_dtype_name (m->down->dtype), sd35_dtype_name (m->up->dtype));
      return -1;
    }
  rank = m->down->shape[0];
  if (m->up->shape[1] != rank || m->down->shape[1] != slot->cols || m->up->shape[0] != rows ||
      rank < 1)
    {
      sd35_set_error (err, SD35_ERR_SHAPE, "LoRA %s does not fit this model: %s has down "
                      "[%lld, %lld] and up [%lld, %lld], but the model's %s is [%lld, %lld] "
                      "(a LoRA for another SD3 model, e.g. Large vs Medium?)", base, m->name,
                      (long long) m->down->shape[0], (long long) m->down->shape[1],
                      (long long) m->up->shape[0], (long long) m->up->shape[1], name,
                      (long long) rows, (long long) slot->cols);
      return -1;
    }
  m->rank = rank;
  c->m = m;
  c->row0 = row0;
  c->rows = rows;
  c->swap = m->op == MAP_SWAP;
  if (m->op == MAP_SWAP_PRE_ONLY)
    {
      /* the last context block (pre_only) has no attn.proj; its norm is continuous */
      char   *proj = g_strdup (name);
      char   *dot = strstr (proj, ".context_block.");
      int64_t r0, nr;
      if (dot != NULL)
        {
          strcpy (dot, ".context_block.attn.proj");
          c->swap = weight_registry_find (reg, proj, &r0, &nr) == NULL;
        }
      g_free (proj);
    }
  if (c->swap && rows % 2 != 0)
    return 0;
  *slot_out = slot;
  return 1;
}

/* α of a module (scalar of any float/int dtype); no α = rank (scale 1). */
static int
module_alpha (const struct lora_module *m, double *alpha)
{
  struct sd35_error e = { 0 };
  float            *v;

  if (m->alpha == NULL)
    {
      *alpha = (double) m->rank;
      return 0;
    }
  if (m->alpha->numel != 1 || (v = st_read_f32 (m->alpha, &e)) == NULL)
    return -1;
  *alpha = v[0];
  free (v);
  return isfinite (*alpha) ? 0 : -1;
}

static enum sd35_status
module_load (struct lora_module *m, const char *path, struct sd35_error *err)
{
  if (m->a != NULL)
    return SD35_OK;
  if ((m->a = st_read_f32 (m->down, err)) == NULL || (m->b = st_read_f32 (m->up, err)) == NULL)
    return err->status;
  for (size_t i = 0; i < m->down->numel; i++)
    if (!isfinite (m->a[i]))
      goto bad;
  for (size_t i = 0; i < m->up->numel; i++)
    if (!isfinite (m->b[i]))
      goto bad;
  return SD35_OK;
bad:
  free (m->a);
  free (m->b);
  m->a = m->b = NULL;
  return sd35_set_error (err, SD35_ERR_NAN, "LoRA: %s%s contains NaN or Inf (corrupt file?)",
                         path, m->name);
}

/* --- writing weights ----------------------------------------------------------------------- */

/* Makes slot->t hold `src` (dtype dt) through weight_from_host, as the loader did; `owned`
 * (may be NULL) is src when it is our buffer: kept while the backend aliases it. */
static enum sd35_status
slot_replace (struct backend *be, struct weight_slot *slot, const void *src,
              enum sd35_dtype dt, void *owned, size_t owned_len, struct sd35_error *err)
{
  struct tensor nt;

  memset (&nt, 0, sizeof nt);
  nt.be = be;
  nt.dtype = dt;
  nt.ndim = 2;
  nt.shape[0] = slot->rows;
  nt.shape[1] = slot->cols;
  nt.numel = (size_t) slot->rows * (size_t) slot->cols;
  if (op_weight_from_host (be, &nt, src, dt, WEIGHT_MATRIX) != SD35_OK)
    {
      free (owned);
      backend_check (be, err);
      sd35_error_clear (&be->err);  /* between generations: the backend stays usable */
      return err->status;
    }
  {
    /* the old storage goes through tensor_free on a copy of the struct: the model keeps its
     * tensor pointer, which now describes the new storage */
    struct tensor *old = malloc (sizeof *old);
    if (old == NULL)
      {
        struct tensor *fresh = malloc (sizeof *fresh);
        if (fresh != NULL)
          {
            *fresh = nt;
            tensor_free (fresh);
          }
        free (owned);
        return sd35_set_error (err, SD35_ERR_OOM, "out of memory merging a LoRA");
      }
    *old = *slot->t;
    *slot->t = nt;
    tensor_free (old);
  }
  free (slot->owned_host);
  slot->owned_host = NULL;
  if (owned != NULL)
    {
      const uint8_t *d = nt.data, *o = owned;
      if (d >= o && d < o + owned_len)
        slot->owned_host = owned;
      else
        free (owned);
    }
  return SD35_OK;
}

/* The dtype a merged weight is stored from: the file's (bf16/f16/f32); fp8 and the GGUF block
 * types → bf16 (the update would not survive fp8, and re-quantizing would round the weight a
 * second time: a merged GGUF layer takes 2 bytes a weight until the LoRA is removed); parts of
 * different dtypes → f32 (as the loader packs them). */
static enum sd35_dtype
merge_dtype (const struct weight_slot *slot)
{
  enum sd35_dtype dt = slot->parts[0].src->dtype;

  for (int p = 1; p < slot->n_parts; p++)
    if (slot->parts[p].src->dtype != dt)
      return SD35_F32;
  if (dt == SD35_F8_E4M3 || dt == SD35_F8_E5M2 || sd35_dtype_is_quant (dt))
    return SD35_BF16;
  return dt;
}

static void *
aligned_buffer (size_t bytes)
{
  void *p = NULL;

  return posix_memalign (&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}

/* Back to the file's weight, through the loader's path: bit-exact. */
static enum sd35_status
slot_restore (struct backend *be, struct weight_slot *slot, struct sd35_error *err)
{
  const struct st_tensor *t0 = slot->parts[0].src;
  int                     same = 1;
  size_t                  len = 0, each;
  uint8_t                *buf;

  if (slot->n_parts == 1)
    return slot_replace (be, slot, t0->data, t0->dtype, NULL, 0, err);
  /* a packed q/k/v, rebuilt as weights.c:wl_stack3 does */
  for (int p = 1; p < slot->n_parts; p++)
    same &= slot->parts[p].src->dtype == t0->dtype;
  for (int p = 0; p < slot->n_parts; p++)
    len += same ? slot->parts[p].src->nbytes : slot->parts[p].src->numel * sizeof (float);
  if ((buf = aligned_buffer (len)) == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory restoring %s",
                           slot->parts[0].name);
  len = 0;
  for (int p = 0; p < slot->n_parts; p++)
    {
      const struct st_tensor *t = slot->parts[p].src;
      each = same ? t->nbytes : t->numel * sizeof (float);
      if (same)
        memcpy (buf + len, t->data, each);
      else
        sd35_convert_to_f32 ((float *) (void *) (buf + len), t->data, t->dtype, t->numel);
      len += each;
    }
  return slot_replace (be, slot, buf, same ? t0->dtype : SD35_F32, buf, len, err);
}

typedef float lora_v8 __attribute__ ((vector_size (32)));

/* wrow[j] += s · Σ_k brow[k]·a[k, j] (k in order, fp32), eight columns at a time in
 * registers: the merge of a full-size LoRA is this loop (rows × cols × rank). */
static void
add_lora_row (float *restrict wrow, const float *restrict brow, const float *restrict a,
              int64_t rank, int64_t cols, float s)
{
  int64_t j = 0;

  for (; j + 8 <= cols; j += 8)
    {
      lora_v8 acc = { 0 }, av, wv;
      for (int64_t k = 0; k < rank; k++)
        {
          memcpy (&av, a + k * cols + j, sizeof av);
          acc += brow[k] * av;
        }
      memcpy (&wv, wrow + j, sizeof wv);
      wv += s * acc;
      memcpy (wrow + j, &wv, sizeof wv);
    }
  for (; j < cols; j++)
    {
      float acc = 0.0f;
      for (int64_t k = 0; k < rank; k++)
        acc += brow[k] * a[k * cols + j];
      wrow[j] += s * acc;
    }
}

/* W (from the file) + Σ scale·B·A in fp32, rounded to the dtype it is stored from: a new
 * 64-byte aligned buffer in *out (*out_len bytes, dtype *out_dt).  Touches nothing shared:
 * runs on worker threads. */
static enum sd35_status
merge_compute (const struct weight_slot *slot, const GArray *contribs, void **out,
               size_t *out_len, enum sd35_dtype *out_dt, struct sd35_error *err)
{
  size_t          n = (size_t) slot->rows * (size_t) slot->cols, bytes;
  enum sd35_dtype dt = merge_dtype (slot);
  float          *w;
  uint16_t       *h;

  *out = NULL;
  for (int p = 0; p < slot->n_parts; p++)
    if (!sd35_dtype_is_float (slot->parts[p].src->dtype))
      return sd35_set_error (err, SD35_ERR_FORMAT, "a LoRA cannot be merged into %s: it is "
                             "stored as %s (quantized); use a bf16/fp16/fp8 model file",
                             slot->parts[p].name, sd35_dtype_name (slot->parts[p].src->dtype));
  if (sd35_mul_size (n, sizeof (float), &bytes) != 0 || (w = aligned_buffer (bytes)) == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "out of memory merging a LoRA into %s",
                           slot->parts[0].name);
  for (int p = 0; p < slot->n_parts; p++)
    sd35_convert_to_f32 (w + (size_t) slot->parts[p].row0 * (size_t) slot->cols,
                         slot->parts[p].src->data, slot->parts[p].src->dtype,
                         slot->parts[p].src->numel);
  for (guint c = 0; c < contribs->len; c++)
    {
      const struct contribution *ct = &g_array_index (contribs, struct contribution, c);
      const struct lora_module  *m = ct->m;
      const float                s = (float) ct->scale;
      int64_t                    half = ct->rows / 2;

      for (int64_t i = 0; i < ct->rows; i++)
        {
          /* diffusers' continuous adaLN keeps (scale, shift): row i comes from i ± half */
          int64_t bi = ct->swap ? (i + half) % ct->rows : i;
          add_lora_row (w + (size_t) (ct->row0 + i) * (size_t) slot->cols,
                        m->b + bi * m->rank, m->a, m->rank, slot->cols, s);
        }
    }
  for (size_t i = 0; i < n; i++)
    if (!isfinite (w[i]))
      {
        free (w);
        return sd35_set_error (err, SD35_ERR_NAN, "merging the LoRA set into %s gives "
                               "non-finite weights (strength too large?)", slot->parts[0].name);
      }
  *out_dt = dt;
  if (dt == SD35_F32)
    {
      *out = w;
      *out_len = bytes;
      return SD35_OK;
    }
  if ((h = aligned_buffer (n * 2)) == NULL)
    {
      free (w);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory merging a LoRA into %s",
                             slot->parts[0].name);
    }
  for (size_t i = 0; i < n; i++)
    h[i] = dt == SD35_BF16 ? sd35_f32_to_bf16 (w[i]) : sd35_f32_to_f16 (w[i]);
  free (w);
  *out = h;
  *out_len = n * 2;
  return SD35_OK;
}

/* --- applying a set ------------------------------------------------------------------------ */

static uint64_t
sig_mix (uint64_t h, const void *p, size_t n)
{
  const uint8_t *b = p;

  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static void
contributions_free (gpointer p)
{
  g_array_free (p, TRUE);
}

/* Resolves every module of the active set for the parts in mask; fills per-slot
 * contributions (when `plan` is not NULL) and the files' counts.  Errors: shapes, α, no
 * layer matched. */
static enum sd35_status
plan_set (struct lora_active *active, int n_active,
          struct weight_registry *const regs[LORA_N_PARTS],
          unsigned mask, GHashTable *plan, struct sd35_error *err)
{
  GHashTable *uindex[LORA_N_PARTS] = { NULL };
  enum sd35_status st = SD35_OK;

  for (int p = 0; p < LORA_N_PARTS; p++)
    if (regs[p] != NULL && (mask & (1u << p)))
      uindex[p] = underscore_index (regs[p]);
  for (int a = 0; a < n_active && st == SD35_OK; a++)
    {
      struct lora_file *f = active[a].file;
      size_t            n_found = 0, n_unmatched_layers = 0;
      const char       *first_missing = NULL;

      if (mask == LORA_ALL_PARTS)
        {
          memset (f->n_applied, 0, sizeof f->n_applied);
          f->n_skipped_t5 = 0;
        }
      for (guint i = 0; i < f->modules->len && st == SD35_OK; i++)
        {
          struct lora_module *m = f->modules->pdata[i];
          struct weight_slot *slot = NULL;
          struct contribution c;
          double              alpha;
          int                 r;

          if (!(mask & (1u << m->part)))
            continue;
          if (m->part == LORA_T5 && regs[LORA_T5] == NULL)
            {
              f->n_skipped_t5 += mask == LORA_ALL_PARTS;
              continue;
            }
          r = resolve (m, regs[m->part], uindex[m->part], f->path, &slot, &c, err);
          if (r < 0)
            st = err->status;
          else if (r == 0)
            {
              if (n_unmatched_layers++ == 0)
                first_missing = m->name;
            }
          else if (module_alpha (m, &alpha) != 0)
            st = sd35_set_error (err, SD35_ERR_FORMAT, "LoRA %s: %s.alpha is not one finite "
                                 "number", f->path, m->name);
          else
            {
              n_found++;
              f->n_applied[m->part] += mask == LORA_ALL_PARTS;
              c.scale = active[a].strength * alpha / (double) m->rank;
              if (plan != NULL && active[a].strength != 0.0)
                {
                  GArray *list = g_hash_table_lookup (plan, slot);
                  if (list == NULL)
                    {
                      list = g_array_new (FALSE, FALSE, sizeof (struct contribution));
                      g_hash_table_insert (plan, slot, list);
                    }
                  g_array_append_val (list, c);
                }
            }
        }
      if (st != SD35_OK)
        break;
      if (mask == LORA_ALL_PARTS)
        {
          f->n_missing = n_unmatched_layers;
          f->first_missing = first_missing;
          /* another family's LoRA may still hit the text encoders SDXL shares (CLIP-L/G):
           * recognised keys and no MMDiT layer = refused */
          if ((n_found == 0 && f->n_skipped_t5 == 0) ||
              (f->family != NULL && f->n_applied[LORA_MMDIT] == 0))
            {
              const char *base = strrchr (f->path, '/') ? strrchr (f->path, '/') + 1 : f->path;
              if (f->family != NULL)
                st = sd35_set_error (err, SD35_ERR_FORMAT, "%s is a LoRA for %s (keys like "
                                     "%s), not for SD3/SD3.5: it cannot be applied", base,
                                     f->family, f->family_key);
              else
                st = sd35_set_error (err, SD35_ERR_FORMAT, "%s: none of its %zu keys matches "
                                     "a layer of this SD3.5 model (first: %s); is it an "
                                     "SD3/SD3.5 LoRA (diffusers, kohya or official keys)?",
                                     base, f->n_keys,
                                     f->first_unmatched ? f->first_unmatched
                                     : f->first_missing ? f->first_missing : "none");
            }
        }
    }
  for (int p = 0; p < LORA_N_PARTS; p++)
    if (uindex[p] != NULL)
      g_hash_table_destroy (uindex[p]);
  /* the fp32 factors, once per module that is used */
  if (st == SD35_OK && plan != NULL)
    {
      GHashTableIter it;
      gpointer       key, value;
      g_hash_table_iter_init (&it, plan);
      while (st == SD35_OK && g_hash_table_iter_next (&it, &key, &value))
        {
          GArray *list = value;
          for (guint i = 0; i < list->len && st == SD35_OK; i++)
            st = module_load (g_array_index (list, struct contribution, i).m, "", err);
        }
    }
  return st;
}

static uint64_t
plan_signature (GArray *list)
{
  uint64_t h = 1469598103934665603ull;

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      const struct contribution *c = &g_array_index (list, struct contribution, i);
      h = sig_mix (h, &c->m, sizeof c->m);
      h = sig_mix (h, &c->scale, sizeof c->scale);
      h = sig_mix (h, &c->row0, sizeof c->row0);
      h = sig_mix (h, &c->swap, sizeof c->swap);
    }
  return list == NULL || list->len == 0 ? 0 : (h ? h : 1);
}

/* One weight to rebuild; merges run on worker threads, uploads on the caller's. */
struct merge_job
{
  struct weight_slot *slot;
  GArray             *list;   /* NULL = restore */
  uint64_t            sig;
  int                 part;
  void               *buf;
  size_t              len;
  enum sd35_dtype     dt;
  enum sd35_status    st;
  struct sd35_error   err;
};

struct merge_batch
{
  struct merge_job *jobs;
  gint              n, next;
};

static gpointer
merge_worker (gpointer arg)
{
  struct merge_batch *b = arg;
  gint                i;

  while ((i = g_atomic_int_add (&b->next, 1)) < b->n)
    {
      struct merge_job *j = &b->jobs[i];
      if (j->list != NULL)
        j->st = merge_compute (j->slot, j->list, &j->buf, &j->len, &j->dt, &j->err);
    }
  return NULL;
}

/* The user's thread count (sd35 --threads, the plug-in's setting), else every core. */
static int
host_threads (const struct backend *be)
{
  return be->host_threads > 0 ? be->host_threads : (int) g_get_num_processors ();
}

/* Merges jobs[0..n) (on up to host_threads threads), then hands each to the backend. */
static enum sd35_status
run_batch (struct backend *be, struct merge_job *jobs, int n, unsigned *changed,
           size_t *n_merged, struct sd35_error *err)
{
  struct merge_batch b = { jobs, n, 0 };
  GThread           *threads[64];
  int                nt = MIN (MIN (n, host_threads (be)), 64), started = 0;
  enum sd35_status   st = SD35_OK;

  for (int t = 1; t < nt; t++)
    if ((threads[started] = g_thread_try_new ("lora-merge", merge_worker, &b, NULL)) != NULL)
      started++;
  merge_worker (&b);
  for (int t = 0; t < started; t++)
    g_thread_join (threads[t]);
  for (int i = 0; i < n; i++)
    {
      struct merge_job *j = &jobs[i];
      if (st == SD35_OK)
        {
          if (j->list == NULL)
            st = slot_restore (be, j->slot, err);
          else if (j->st != SD35_OK)
            {
              *err = j->err;
              st = j->st;
            }
          else
            {
              st = slot_replace (be, j->slot, j->buf, j->dt, j->buf, j->len, err);
              j->buf = NULL;  /* kept by the slot or freed */
            }
          if (st == SD35_OK)
            {
              j->slot->merged_sig = j->sig;
              *changed |= 1u << j->part;
              *n_merged += j->sig != 0;
            }
        }
      free (j->buf);
      j->buf = NULL;
    }
  return st;
}

/* Brings every slot of the parts in mask to its planned state, in batches that bound the
 * host memory held at once (one merged weight per thread). */
static enum sd35_status
apply_plan (struct backend *be, struct weight_registry *const regs[LORA_N_PARTS], unsigned mask,
            GHashTable *plan, unsigned *changed, size_t *n_merged, struct sd35_error *err)
{
  int               cap = MAX (1, MIN (host_threads (be), 64)), n = 0;
  struct merge_job *jobs = g_new0 (struct merge_job, cap);
  enum sd35_status  st = SD35_OK;

  for (int p = 0; p < LORA_N_PARTS && st == SD35_OK; p++)
    {
      if (regs[p] == NULL || !(mask & (1u << p)))
        continue;
      for (size_t i = 0; i < weight_registry_count (regs[p]) && st == SD35_OK; i++)
        {
          struct weight_slot *slot = weight_registry_at (regs[p], i);
          GArray             *list;
          uint64_t            sig;

          if (slot == NULL)
            continue;
          list = plan != NULL ? g_hash_table_lookup (plan, slot) : NULL;
          sig = plan_signature (list);
          if (sig == slot->merged_sig)
            continue;
          memset (&jobs[n], 0, sizeof jobs[n]);
          jobs[n].slot = slot;
          jobs[n].list = sig != 0 ? list : NULL;
          jobs[n].sig = sig;
          jobs[n].part = p;
          if (++n == cap)
            {
              st = run_batch (be, jobs, n, changed, n_merged, err);
              n = 0;
            }
        }
    }
  if (st == SD35_OK && n > 0)
    st = run_batch (be, jobs, n, changed, n_merged, err);
  g_free (jobs);
  return st;
}

static void
build_report (struct lora_state *s)
{
  GString *r = g_string_new (NULL);

  for (int a = 0; a < s->n_active; a++)
    {
      const struct lora_file *f = s->active[a].file;
      const char *base = strrchr (f->path, '/') ? strrchr (f->path, '/') + 1 : f->path;
      g_string_append_printf (r, "%sLoRA %s (%s, strength %g): %zu layers (MMDiT %zu, "
                              "CLIP-L %zu, CLIP-G %zu, T5 %zu)", a ? "\n" : "", base,
                              f->format ? f->format : "?", s->active[a].strength,
                              f->n_applied[0] + f->n_applied[1] + f->n_applied[2] +
                              f->n_applied[3], f->n_applied[0], f->n_applied[1],
                              f->n_applied[2], f->n_applied[3]);
      if (f->n_skipped_t5)
        g_string_append_printf (r, ", %zu T5 layers skipped (T5 off)", f->n_skipped_t5);
      if (f->n_unmatched + f->n_missing)
        g_string_append_printf (r, "; %zu key%s matched nothing (first: %s)",
                                f->n_unmatched + f->n_missing,
                                f->n_unmatched + f->n_missing > 1 ? "s" : "",
                                f->n_unmatched ? f->first_unmatched : f->first_missing);
    }
  g_free (s->report);
  s->report = g_string_free (r, FALSE);
}

enum sd35_status
lora_set (struct lora_state *s, struct backend *be,
          struct weight_registry *const regs[LORA_N_PARTS],
          const struct sd35_lora *loras, int n, unsigned *parts_changed,
          struct sd35_error *err)
{
  GPtrArray          *files = g_ptr_array_new ();
  struct lora_active *active = g_new0 (struct lora_active, n > 0 ? n : 1);
  GHashTable         *plan = NULL;
  enum sd35_status    st = SD35_OK;
  size_t              n_merged = 0;
  gint64              t0 = g_get_monotonic_time ();

  *parts_changed = 0;
  if (n < 0 || (n > 0 && loras == NULL))
    st = sd35_set_error (err, SD35_ERR_ARG, "LoRA list: %d entries", n);
  /* the files: reuse what the current set has open, open the others */
  for (int i = 0; st == SD35_OK && i < n; i++)
    {
      struct lora_file *f = NULL;
      if (loras[i].path == NULL || !*loras[i].path)
        st = sd35_set_error (err, SD35_ERR_ARG, "LoRA %d: no file given", i + 1);
      else if (!isfinite (loras[i].strength) || fabs (loras[i].strength) > 1000.0)
        st = sd35_set_error (err, SD35_ERR_ARG, "LoRA %s: strength %g is out of range (a "
                             "finite number, normally between -2 and 2)", loras[i].path,
                             loras[i].strength);
      for (guint k = 0; st == SD35_OK && f == NULL && k < files->len; k++)
        if (strcmp (((struct lora_file *) files->pdata[k])->path, loras[i].path) == 0)
          f = files->pdata[k];   /* the same file twice: both strengths add */
      for (guint k = 0; st == SD35_OK && f == NULL && k < s->files->len; k++)
        if (strcmp (((struct lora_file *) s->files->pdata[k])->path, loras[i].path) == 0)
          {
            f = s->files->pdata[k];
            g_ptr_array_remove_index (s->files, k);
            g_ptr_array_add (files, f);
          }
      if (st == SD35_OK && f == NULL)
        {
          if (lora_file_open (loras[i].path, &f, err) != SD35_OK)
            st = err->status;
          else
            g_ptr_array_add (files, f);
        }
      if (st == SD35_OK)
        {
          active[i].file = f;
          active[i].strength = loras[i].strength;
        }
    }
  if (st == SD35_OK)
    {
      plan = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, contributions_free);
      st = plan_set (active, n, regs, LORA_ALL_PARTS, plan, err);
    }
  if (st != SD35_OK)
    {
      /* the new files go; the ones taken from the current set go back */
      for (guint k = 0; k < files->len; k++)
        {
          int in_old = 0;
          for (int a = 0; a < s->n_active; a++)
            in_old |= s->active[a].file == files->pdata[k];
          if (in_old)
            g_ptr_array_add (s->files, files->pdata[k]);
          else
            lora_file_free (files->pdata[k]);
        }
      g_ptr_array_free (files, TRUE);
      g_free (active);
      if (plan != NULL)
        g_hash_table_destroy (plan);
      return st;
    }
  st = apply_plan (be, regs, LORA_ALL_PARTS, plan, parts_changed, &n_merged, err);
  g_hash_table_destroy (plan);
  if (st != SD35_OK)
    {
      /* leave no half-merged model: everything back to the files' weights */
      struct sd35_error e2 = { 0 };
      unsigned          ch = 0;
      size_t            nm = 0;
      n = 0;
      apply_plan (be, regs, LORA_ALL_PARTS, NULL, &ch, &nm, &e2);
      *parts_changed |= ch;
    }
  /* the old set's files that are not in the new one close */
  for (guint k = 0; k < s->files->len; k++)
    lora_file_free (s->files->pdata[k]);
  g_ptr_array_set_size (s->files, 0);
  for (guint k = 0; k < files->len; k++)
    if (st == SD35_OK)
      g_ptr_array_add (s->files, files->pdata[k]);
    else
      lora_file_free (files->pdata[k]);
  g_ptr_array_free (files, TRUE);
  g_free (s->active);
  s->active = active;
  s->n_active = n;
  build_report (s);
  if (st == SD35_OK)
    sd35_log ("LoRA set: %d file%s, %zu weight%s merged or restored in %.3f s%s%s", n,
              n == 1 ? "" : "s", n_merged, n_merged == 1 ? "" : "s",
              (g_get_monotonic_time () - t0) * 1e-6, *s->report ? "\n" : "", s->report);
  return st;
}

enum sd35_status
lora_reapply (struct lora_state *s, struct backend *be,
              struct weight_registry *const regs[LORA_N_PARTS],
              unsigned part_mask, struct sd35_error *err)
{
  GHashTable      *plan;
  enum sd35_status st;
  unsigned         changed = 0;
  size_t           n_merged = 0;

  if (s == NULL || s->n_active == 0)
    return SD35_OK;
  /* a reloaded part's slots are new (merged_sig 0): merge them again */
  plan = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, contributions_free);
  st = plan_set (s->active, s->n_active, regs, part_mask, plan, err);
  if (st == SD35_OK)
    st = apply_plan (be, regs, part_mask, plan, &changed, &n_merged, err);
  g_hash_table_destroy (plan);
  return st;
}
