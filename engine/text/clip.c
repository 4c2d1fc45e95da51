/* clip.c — the CLIP text encoders of SD3 (CLIP-L and CLIP-G), HF CLIPTextModel keys.
 *
 * Mirrors Stability-AI/sd3.5 other_impls.py (CLIPTextModel_, SDClipModel, SDXLClipG) @ fbf8f48
 * (sd35-facts.md §1.2): x = tok_emb[ids] + pos_emb[0:77]; pre-LN layers (eps 1e-5) with a
 * causal mask only; hidden = output of layer L−2 without final LN; pooled =
 * final_layer_norm(last)[argmax(ids)], projected by text_projection for CLIP-G only.
 * Not here: tokenisation (clip_bpe.c), the SD3 assembly (cond.c). */
#include "text_encoders.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "weights.h"

#define CLIP_LN_EPS 1e-5f  /* torch.nn.LayerNorm default, other_impls.py CLIPLayer */
#define CLIP_VOCAB  49408  /* vocab_size of both CLIP-L and CLIP-G (sd35-facts.md §1.2) */

struct clip_layer
{
  struct norm   layer_norm1, layer_norm2;
  struct linear qkv;       /* self_attn.{q,k,v}_proj fused: [3·D, D] */
  struct linear out_proj;  /* self_attn.out_proj [D, D] */
  struct linear fc1, fc2;  /* mlp.fc1 [F, D], mlp.fc2 [D, F] */
};

struct clip_model
{
  struct backend    *be;
  enum clip_kind     kind;
  int64_t            width, n_heads, n_layers, n_mlp, vocab, n_pos;
  struct tensor     *token_embedding;     /* [vocab, D] */
  struct tensor     *position_embedding;  /* [n_pos ≥ 77, D] */
  struct clip_layer *layers;
  struct norm        final_layer_norm;
  struct tensor     *text_projection;     /* [D, D], no bias; NULL = identity (CLIP-L unused) */
  uint16_t          *host_pool;           /* clip_new_random: the weights alias it */
};

/* key prefixes seen in the wild: HF text_encoder files, and SD3 single-file checkpoints that
 * embed the encoders (sd3_medium_incl_clips) */
static const char *
clip_prefix (struct st_file *file, enum clip_kind kind)
{
  const char *inside = kind == CLIP_KIND_L ? "text_encoders.clip_l.transformer."
                                           : "text_encoders.clip_g.transformer.";
  return st_has_prefix (file, "text_model.") || !st_has_prefix (file, inside) ? "" : inside;
}

void
clip_free (struct clip_model *m)
{
  if (m == NULL)
    return;
  tensor_free (m->token_embedding);
  tensor_free (m->position_embedding);
  for (int64_t i = 0; m->layers != NULL && i < m->n_layers; i++)
    {
      struct clip_layer *l = &m->layers[i];
      norm_free (&l->layer_norm1);
      norm_free (&l->layer_norm2);
      linear_free (&l->qkv);
      linear_free (&l->out_proj);
      linear_free (&l->fc1);
      linear_free (&l->fc2);
    }
  free (m->layers);
  norm_free (&m->final_layer_norm);
  tensor_free (m->text_projection);
  free (m->host_pool);
  free (m);
}

int
clip_width (const struct clip_model *m)
{
  return (int) m->width;
}

enum sd35_status
clip_load (struct backend *be, struct st_file *file, enum clip_kind kind, int n_heads,
           struct clip_model **out, struct sd35_error *err)
{
  const char            *what = kind == CLIP_KIND_L ? "CLIP-L" : "CLIP-G";
  const char            *prefix = clip_prefix (file, kind);
  static const char     *qkv_names[3] = { "q", "k", "v" };
  struct weights_loader *wl;
  struct clip_model     *m;
  int64_t                s[ST_MAX_DIMS];
  enum sd35_status       st;

  *out = NULL;
  wl = wl_new (be, &file, 1, prefix, what);
  m = sd35_calloc (1, sizeof *m, "the CLIP model", err);
  if (wl == NULL || m == NULL)
    {
      wl_free (wl);
      free (m);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory loading %s", what);
    }
  m->be = be;
  m->kind = kind;

  /* dimensions from shapes (sd35-facts.md §10: the head count is in no shape) */
  if (wl_shape (wl, s, "text_model.embeddings.token_embedding.weight") != 2)
    {
      st = sd35_set_error (err, SD35_ERR_MISSING,
                           "%s: %s has no %stext_model.embeddings.token_embedding.weight "
                           "(is this a %s text encoder in Hugging Face format?)",
                           what, st_path (file), prefix, what);
      goto fail;
    }
  m->vocab = s[0];
  m->width = s[1];
  while (wl_find (wl, "text_model.encoder.layers.%d.layer_norm1.weight", (int) m->n_layers))
    m->n_layers++;
  m->n_mlp = wl_shape (wl, s, "text_model.encoder.layers.0.mlp.fc1.weight") == 2 ? s[0] : 0;
  m->n_pos = wl_shape (wl, s, "text_model.embeddings.position_embedding.weight") == 2 ? s[0] : 77;
  m->n_heads = n_heads > 0 ? n_heads : m->width / 64;
  if (m->n_layers < 2 || m->n_mlp <= 0 || m->n_heads <= 0 || m->width % m->n_heads != 0 ||
      m->n_pos < SD35_CLIP_TOKENS)
    {
      st = sd35_set_error (err, SD35_ERR_SHAPE,
                           "%s (%s): unsupported shape: %lld layers, width %lld, %lld heads, "
                           "mlp %lld, %lld positions (need ≥ 2 layers, heads dividing the "
                           "width, ≥ 77 positions)", what, st_path (file),
                           (long long) m->n_layers, (long long) m->width,
                           (long long) m->n_heads, (long long) m->n_mlp, (long long) m->n_pos);
      goto fail;
    }
  m->layers = sd35_calloc ((size_t) m->n_layers, sizeof *m->layers, "CLIP layers", err);
  if (m->layers == NULL)
    {
      st = SD35_ERR_OOM;
      goto fail;
    }

  const int64_t D = m->width, F = m->n_mlp;
  m->token_embedding = wl_tensor (wl, WEIGHT_MATRIX, 2, (int64_t[]) { m->vocab, D },
                                  "text_model.embeddings.token_embedding.weight");
  m->position_embedding = wl_tensor (wl, WEIGHT_VECTOR, 2, (int64_t[]) { m->n_pos, D },
                                     "text_model.embeddings.position_embedding.weight");
  for (int i = 0; i < m->n_layers; i++)
    {
      struct clip_layer *l = &m->layers[i];
      wl_norm (wl, &l->layer_norm1, D, 1, "text_model.encoder.layers.%d.layer_norm1", i);
      wl_norm (wl, &l->layer_norm2, D, 1, "text_model.encoder.layers.%d.layer_norm2", i);
      /* the trailing "" only satisfies -Wformat: the loader puts q/k/v where %s is */
      wl_linear_qkv (wl, &l->qkv, D, D, 1, qkv_names,
                     "text_model.encoder.layers.%d.self_attn.%s_proj", i, "");
      wl_linear (wl, &l->out_proj, D, D, 1, "text_model.encoder.layers.%d.self_attn.out_proj", i);
      wl_linear (wl, &l->fc1, F, D, 1, "text_model.encoder.layers.%d.mlp.fc1", i);
      wl_linear (wl, &l->fc2, D, F, 1, "text_model.encoder.layers.%d.mlp.fc2", i);
    }
  wl_norm (wl, &m->final_layer_norm, D, 1, "text_model.final_layer_norm");
  /* CLIP-G: pooled = text_projection(pooled); the reference uses identity when the key is
   * missing.  CLIP-L's projection is never applied (return_projected_pooled=False). */
  if (kind == CLIP_KIND_G)
    m->text_projection = wl_tensor_opt (wl, WEIGHT_MATRIX, 2, (int64_t[]) { D, D },
                                        "text_projection.weight");
  else
    wl_find (wl, "text_projection.weight");
  st = wl_finish (wl, err);  /* frees wl */
  wl = NULL;
  if (st != SD35_OK)
    goto fail;
  sd35_log ("%s: %lld layers, width %lld, %lld heads, mlp %lld, vocab %lld%s", what,
            (long long) m->n_layers, (long long) D, (long long) m->n_heads, (long long) F,
            (long long) m->vocab,
            kind == CLIP_KIND_G && m->text_projection == NULL ? ", no text_projection "
                                                                "(identity)" : "");
  *out = m;
  return SD35_OK;

fail:
  wl_free (wl);
  clip_free (m);
  return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_INTERNAL, "loading %s", what);
}

/* --- random weights (clip_new_random) ----------------------------------------------------- */

static struct tensor *
clip_rand_tensor (struct weights_random *r, enum weight_use use, int64_t d0, int64_t d1)
{
  return weights_random_tensor (r, use, d1 > 0 ? 2 : 1, d0, d1, 0, 0);
}

static void
clip_rand_linear (struct weights_random *r, struct linear *l, int64_t n_out, int64_t n_in)
{
  l->w = clip_rand_tensor (r, WEIGHT_MATRIX, n_out, n_in);
  l->b = clip_rand_tensor (r, WEIGHT_VECTOR, n_out, 0);
}

static void
clip_rand_norm (struct weights_random *r, struct norm *n, int64_t D)
{
  n->w = clip_rand_tensor (r, WEIGHT_VECTOR, D, 0);
  n->b = clip_rand_tensor (r, WEIGHT_VECTOR, D, 0);
}

enum sd35_status
clip_new_random (struct backend *be, enum clip_kind kind, int n_layers, int width, int n_heads,
                 int ff, uint64_t seed, struct clip_model **out, struct sd35_error *err)
{
  struct weights_random r = { be, NULL, 0 };
  struct clip_model *m;
  const int64_t      D = width, F = ff;
  size_t             n_pool;

  *out = NULL;
  if (n_layers < 2 || n_layers > 1024 || width < 1 || width > 65536 || n_heads < 1
      || width % n_heads != 0 || ff < 1 || ff > 262144)
    return sd35_set_error (err, SD35_ERR_ARG, "clip_new_random: unsupported shape: %d layers, "
                           "width %d, %d heads, mlp %d (need ≥ 2 layers, heads dividing the "
                           "width)", n_layers, width, n_heads, ff);
  /* the largest weight: token_embedding, the fused qkv or fc1/fc2 */
  n_pool = (size_t) (CLIP_VOCAB * D);
  if ((size_t) (3 * D * D) > n_pool)
    n_pool = (size_t) (3 * D * D);
  if ((size_t) (F * D) > n_pool)
    n_pool = (size_t) (F * D);
  m = sd35_calloc (1, sizeof *m, "the CLIP model", err);
  if (m == NULL)
    return SD35_ERR_OOM;
  m->host_pool = sd35_malloc (n_pool * sizeof *m->host_pool, "random CLIP weights", err);
  m->layers = sd35_calloc ((size_t) n_layers, sizeof *m->layers, "CLIP layers", err);
  if (m->host_pool == NULL || m->layers == NULL)
    {
      clip_free (m);
      return SD35_ERR_OOM;
    }
  weights_random_bf16 (m->host_pool, n_pool, seed);
  r.pool = m->host_pool;
  m->be = be;
  m->kind = kind;
  m->width = D;
  m->n_heads = n_heads;
  m->n_layers = n_layers;
  m->n_mlp = F;
  m->vocab = CLIP_VOCAB;
  m->n_pos = SD35_CLIP_TOKENS;
  m->token_embedding = clip_rand_tensor (&r, WEIGHT_MATRIX, m->vocab, D);
  m->position_embedding = clip_rand_tensor (&r, WEIGHT_VECTOR, m->n_pos, D);
  for (int i = 0; i < n_layers; i++)
    {
      struct clip_layer *l = &m->layers[i];
      clip_rand_norm (&r, &l->layer_norm1, D);
      clip_rand_norm (&r, &l->layer_norm2, D);
      clip_rand_linear (&r, &l->qkv, 3 * D, D);
      clip_rand_linear (&r, &l->out_proj, D, D);
      clip_rand_linear (&r, &l->fc1, F, D);
      clip_rand_linear (&r, &l->fc2, D, F);
    }
  clip_rand_norm (&r, &m->final_layer_norm, D);
  if (kind == CLIP_KIND_G)
    m->text_projection = clip_rand_tensor (&r, WEIGHT_MATRIX, D, D);
  if (r.failed)
    {
      enum sd35_status st = backend_check (be, err);
      clip_free (m);
      return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_OOM, "out of memory building "
                                                  "a random CLIP");
    }
  *out = m;
  return SD35_OK;
}

/* One pre-LN transformer layer (other_impls.py CLIPLayer):
 *   x += out_proj(attn(layer_norm1(x)))   causal, scale 1/sqrt(dh)
 *   x += fc2(act(fc1(layer_norm2(x)))) */
static void
clip_layer_forward (struct clip_model *m, const struct clip_layer *l, struct tensor *x,
                    struct tensor *h, struct tensor *qkv, struct tensor *a, struct tensor *f)
{
  struct backend *be = m->be;
  const int64_t   L = SD35_CLIP_TOKENS, D = m->width, H = m->n_heads, dh = D / H;
  enum op_act     act = m->kind == CLIP_KIND_L ? ACT_QUICK_GELU : ACT_GELU_ERF;

  op_layernorm (be, h, x, l->layer_norm1.w, l->layer_norm1.b, L, D, CLIP_LN_EPS);
  op_linear (be, qkv, h, l->qkv.w, l->qkv.b, L, 3 * D, D, ACT_NONE);  /* (77, 3·D) */
  op_attention (be, a, qkv, NULL, 1, L, H, dh, 1.0f / sqrtf ((float) dh), 1);
  op_linear (be, h, a, l->out_proj.w, l->out_proj.b, L, D, D, ACT_NONE);
  op_add (be, x, x, h, L * D);
  op_layernorm (be, h, x, l->layer_norm2.w, l->layer_norm2.b, L, D, CLIP_LN_EPS);
  op_linear (be, f, h, l->fc1.w, l->fc1.b, L, m->n_mlp, D, act);  /* (77, F) */
  op_linear (be, h, f, l->fc2.w, l->fc2.b, L, D, m->n_mlp, ACT_NONE);
  op_add (be, x, x, h, L * D);
}

enum sd35_status
clip_encode (struct clip_model *m, const int32_t *ids, float *hidden, float *pooled,
             struct sd35_error *err)
{
  struct backend *be = m->be;
  const int64_t   L = SD35_CLIP_TOKENS, D = m->width;
  const char     *what = m->kind == CLIP_KIND_L ? "CLIP-L" : "CLIP-G";
  struct tensor  *x, *h, *qkv, *a, *f, *p = NULL, *pp = NULL;
  float          *last = NULL;
  int             eos = 0;
  enum sd35_status st;

  for (int i = 0; i < L; i++)
    {
      if (ids[i] < 0 || ids[i] >= m->vocab)
        return sd35_set_error (err, SD35_ERR_ARG, "%s: token id %d at position %d is outside "
                               "the vocabulary (0..%lld)", what, (int) ids[i], i,
                               (long long) m->vocab - 1);
      if (ids[i] > ids[eos])  /* argmax, first occurrence (torch.argmax) */
        eos = i;
    }
  /* the residual stream x and h (norm / projection outputs, also the final LN read back) in
   * fp32 whatever the activation dtype: 77 rows, and bf16 storage of them costs the
   * conditioning ~1e-2 relative (ops.h, tests/gpu/bf16_emu.c) */
  x = tensor_new (be, SD35_F32, 2, (int64_t[]) { L, D });
  h = tensor_new (be, SD35_F32, 2, (int64_t[]) { L, D });
  qkv = tensor_new_act2 (be, L, 3 * D);
  a = tensor_new_act2 (be, L, D);
  f = tensor_new_act2 (be, L, m->n_mlp);
  last = sd35_malloc ((size_t) (L * D) * sizeof (float), "CLIP output", err);

  /* x = token_embedding[ids] + position_embedding[0:77]   (CLIPEmbeddings) */
  op_embedding (be, x, m->token_embedding, ids, L, D);
  op_add_broadcast (be, x, x, m->position_embedding, 1, L * D);
  for (int64_t i = 0; i < m->n_layers && last != NULL; i++)
    {
      clip_layer_forward (m, &m->layers[i], x, h, qkv, a, f);
      if (i == m->n_layers - 2 && !backend_failed (be))  /* hidden_states[-2], no final LN */
        tensor_to_f32 (x, hidden);
    }
  op_layernorm (be, h, x, m->final_layer_norm.w, m->final_layer_norm.b, L, D, CLIP_LN_EPS);
  if (last != NULL && !backend_failed (be))
    {
      tensor_to_f32 (h, last);
      if (m->text_projection != NULL)  /* pooled = final_ln[eos] · text_projectionᵀ */
        {
          /* fp32 (ops.h): one row, read exactly by the CUDA GEMV too */
          p = tensor_new (be, SD35_F32, 2, (int64_t[]) { 1, D });
          pp = tensor_new (be, SD35_F32, 2, (int64_t[]) { 1, D });
          if (p != NULL)
            op_upload_f32 (be, p, last + eos * D);
          op_linear (be, pp, p, m->text_projection, NULL, 1, D, D, ACT_NONE);
          if (!backend_failed (be))
            tensor_to_f32 (pp, pooled);
        }
      else
        memcpy (pooled, last + eos * D, (size_t) D * sizeof (float));
    }
  st = backend_check (be, err);
  if (st == SD35_OK && last == NULL)
    st = SD35_ERR_OOM;
  if (st != SD35_OK)
    sd35_error_prefix (err, "%s", what);
  tensor_free (x), tensor_free (h), tensor_free (qkv), tensor_free (a), tensor_free (f);
  tensor_free (p), tensor_free (pp);
  free (last);
  return st;
}
