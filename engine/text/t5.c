/* t5.c — the T5 v1.1 encoder (T5-XXL) of SD3, HF T5EncoderModel keys.
 *
 * Mirrors Stability-AI/sd3.5 other_impls.py (T5Stack, T5Block, T5Attention) @ fbf8f48
 * (sd35-facts.md §1.3): unscaled embedding; per block x += o(attn(rms1(x))) and
 * x += wo(gelu_tanh(wi_0(h)) · wi_1(h)) with h = rms2(x); RMSNorm eps 1e-6; attention without
 * 1/sqrt(d) scaling and without a mask (pads are attended to), plus the relative position
 * bias computed once from block 0's table and reused by every block; final RMSNorm.
 * Not here: tokenisation (t5_unigram.c). */
#include "text_encoders.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "error.h"
#include "weights.h"

#define T5_RMS_EPS       1e-6f  /* layer_norm_epsilon */
#define T5_NUM_BUCKETS   32     /* relative_attention_num_buckets */
#define T5_MAX_DISTANCE  128    /* relative_attention_max_distance */
#define T5_VOCAB         32128  /* vocab_size of google/t5-v1_1-xxl (sd35-facts.md §1.3) */

struct t5_block
{
  struct norm   layer_norm0;  /* layer.0.layer_norm (weight only) */
  struct linear qkv;          /* layer.0.SelfAttention.{q,k,v} fused: [3·inner, D], no bias */
  struct linear o;            /* layer.0.SelfAttention.o [D, inner] */
  struct norm   layer_norm1;  /* layer.1.layer_norm */
  struct linear wi_0, wi_1;   /* layer.1.DenseReluDense.wi_{0,1} [F, D] */
  struct linear wo;           /* layer.1.DenseReluDense.wo [D, F] */
};

struct t5_model
{
  struct backend  *be;
  int64_t          d_model, n_heads, d_kv, inner, d_ff, vocab, n_blocks;
  struct tensor   *embed_tokens;  /* [vocab, D] */
  float           *rel_bias;      /* host [32 buckets, H] of block 0 */
  struct t5_block *blocks;
  struct norm      final_layer_norm;
  uint16_t        *host_pool;     /* t5_new_random: the weights alias it */
};

void
t5_free (struct t5_model *m)
{
  if (m == NULL)
    return;
  tensor_free (m->embed_tokens);
  free (m->rel_bias);
  for (int64_t i = 0; m->blocks != NULL && i < m->n_blocks; i++)
    {
      struct t5_block *b = &m->blocks[i];
      norm_free (&b->layer_norm0);
      linear_free (&b->qkv);
      linear_free (&b->o);
      norm_free (&b->layer_norm1);
      linear_free (&b->wi_0);
      linear_free (&b->wi_1);
      linear_free (&b->wo);
    }
  free (m->blocks);
  norm_free (&m->final_layer_norm);
  free (m->host_pool);
  free (m);
}

int
t5_width (const struct t5_model *m)
{
  return (int) m->d_model;
}

enum sd35_status
t5_check_config (const struct t5_model *m, const char *config_json, struct sd35_error *err)
{
  int heads = model_config_heads (config_json, err);

  if (heads < 0)
    return err != NULL ? err->status : SD35_ERR_FORMAT;
  if (heads > 0 && heads != m->n_heads)
    return sd35_set_error (err, SD35_ERR_FORMAT, "T5 config %s says num_heads %d, but the "
                           "weights have %lld heads (relative_attention_bias [32, %lld]); the "
                           "config and the weights do not belong together", config_json, heads,
                           (long long) m->n_heads, (long long) m->n_heads);
  return SD35_OK;
}

enum sd35_status
t5_load (struct backend *be, struct st_file *file, struct t5_model **out, struct sd35_error *err)
{
  static const char     *qkv_names[3] = { "q", "k", "v" };
  const char            *prefix = !st_has_prefix (file, "encoder.") &&
                                  st_has_prefix (file, "text_encoders.t5xxl.transformer.")
                                  ? "text_encoders.t5xxl.transformer." : "";
  const char            *embed_key;
  struct weights_loader *wl;
  struct t5_model       *m;
  int64_t                s[ST_MAX_DIMS];
  enum sd35_status       st = SD35_OK;

  *out = NULL;
  wl = wl_new (be, &file, 1, prefix, "T5");
  m = sd35_calloc (1, sizeof *m, "the T5 model", err);
  if (wl == NULL || m == NULL)
    {
      wl_free (wl);
      free (m);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory loading T5");
    }
  m->be = be;

  /* The reference loads only encoder.embed_tokens.weight; accept shared.weight too (§1.3). */
  embed_key = wl_shape (wl, s, "encoder.embed_tokens.weight") == 2 ? "encoder.embed_tokens.weight"
              : wl_shape (wl, s, "shared.weight") == 2 ? "shared.weight" : NULL;
  if (embed_key == NULL)
    {
      st = sd35_set_error (err, SD35_ERR_MISSING, "T5: %s has neither %sencoder.embed_tokens."
                           "weight nor %sshared.weight (is this a T5 v1.1 encoder in Hugging "
                           "Face format?)", st_path (file), prefix, prefix);
      goto fail;
    }
  if (strcmp (embed_key, "shared.weight") != 0)
    wl_find (wl, "shared.weight");
  m->vocab = s[0];
  m->d_model = s[1];
  while (wl_find (wl, "encoder.block.%d.layer.0.layer_norm.weight", (int) m->n_blocks))
    m->n_blocks++;
  m->n_heads = wl_shape (wl, s, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias."
                         "weight") == 2 && s[0] == T5_NUM_BUCKETS ? s[1] : 0;
  m->inner = wl_shape (wl, s, "encoder.block.0.layer.0.SelfAttention.q.weight") == 2 ? s[0] : 0;
  m->d_ff = wl_shape (wl, s, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight") == 2 ? s[0]
                                                                                        : 0;
  if (m->n_blocks < 1 || m->n_heads <= 0 || m->inner <= 0 || m->inner % m->n_heads != 0 ||
      m->d_ff <= 0)
    {
      st = sd35_set_error (err, SD35_ERR_SHAPE,
                           "T5 (%s): unsupported or missing shapes: %lld blocks, %lld heads "
                           "(relative_attention_bias [32, heads] of block 0), inner %lld, "
                           "d_ff %lld (needs the gated-gelu T5 v1.1 encoder)", st_path (file),
                           (long long) m->n_blocks, (long long) m->n_heads,
                           (long long) m->inner, (long long) m->d_ff);
      goto fail;
    }
  m->d_kv = m->inner / m->n_heads;
  m->blocks = sd35_calloc ((size_t) m->n_blocks, sizeof *m->blocks, "T5 blocks", err);
  if (m->blocks == NULL)
    {
      st = SD35_ERR_OOM;
      goto fail;
    }

  const int64_t D = m->d_model, I = m->inner, F = m->d_ff;
  m->embed_tokens = wl_tensor (wl, WEIGHT_MATRIX, 2, (int64_t[]) { m->vocab, D }, "%s", embed_key);
  m->rel_bias = wl_host_f32 (wl, 2, (int64_t[]) { T5_NUM_BUCKETS, m->n_heads },
                             "encoder.block.0.layer.0.SelfAttention.relative_attention_bias."
                             "weight");
  for (int i = 0; i < m->n_blocks; i++)
    {
      struct t5_block *b = &m->blocks[i];
      wl_norm (wl, &b->layer_norm0, D, 0, "encoder.block.%d.layer.0.layer_norm", i);
      /* the trailing "" only satisfies -Wformat: the loader puts q/k/v where %s is */
      wl_linear_qkv (wl, &b->qkv, I, D, 0, qkv_names, "encoder.block.%d.layer.0.SelfAttention.%s",
                     i, "");
      wl_linear (wl, &b->o, D, I, 0, "encoder.block.%d.layer.0.SelfAttention.o", i);
      wl_norm (wl, &b->layer_norm1, D, 0, "encoder.block.%d.layer.1.layer_norm", i);
      wl_linear (wl, &b->wi_0, F, D, 0, "encoder.block.%d.layer.1.DenseReluDense.wi_0", i);
      wl_linear (wl, &b->wi_1, F, D, 0, "encoder.block.%d.layer.1.DenseReluDense.wi_1", i);
      wl_linear (wl, &b->wo, D, F, 0, "encoder.block.%d.layer.1.DenseReluDense.wo", i);
    }
  wl_norm (wl, &m->final_layer_norm, D, 0, "encoder.final_layer_norm");
  st = wl_finish (wl, err);  /* frees wl */
  wl = NULL;
  if (st != SD35_OK)
    goto fail;
  sd35_log ("T5: %lld blocks, d_model %lld, %lld heads × %lld, d_ff %lld, vocab %lld (%s)",
            (long long) m->n_blocks, (long long) D, (long long) m->n_heads,
            (long long) m->d_kv, (long long) F, (long long) m->vocab, embed_key);
  *out = m;
  return SD35_OK;

fail:
  wl_free (wl);
  t5_free (m);
  return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_INTERNAL, "loading T5");
}

/* --- random weights (t5_new_random) --------------------------------------------------------- */

static struct tensor *
t5_rand_tensor (struct weights_random *r, enum weight_use use, int64_t d0, int64_t d1)
{
  return weights_random_tensor (r, use, d1 > 0 ? 2 : 1, d0, d1, 0, 0);
}

enum sd35_status
t5_new_random (struct backend *be, int n_layers, int d_model, int n_heads, int d_ff,
               uint64_t seed, struct t5_model **out, struct sd35_error *err)
{
  struct weights_random r = { be, NULL, 0 };
  struct t5_model *m;
  const int64_t    D = d_model, F = d_ff;
  size_t           n_pool;

  *out = NULL;
  if (n_layers < 1 || n_layers > 1024 || d_model < 1 || d_model > 65536 || n_heads < 1
      || d_model % n_heads != 0 || d_ff < 1 || d_ff > 262144)
    return sd35_set_error (err, SD35_ERR_ARG, "t5_new_random: unsupported shape: %d blocks, "
                           "d_model %d, %d heads, d_ff %d (need heads dividing d_model)",
                           n_layers, d_model, n_heads, d_ff);
  /* the largest weight: embed_tokens, the fused qkv or wi/wo */
  n_pool = (size_t) (T5_VOCAB * D);
  if ((size_t) (3 * D * D) > n_pool)
    n_pool = (size_t) (3 * D * D);
  if ((size_t) (F * D) > n_pool)
    n_pool = (size_t) (F * D);
  m = sd35_calloc (1, sizeof *m, "the T5 model", err);
  if (m == NULL)
    return SD35_ERR_OOM;
  m->host_pool = sd35_malloc (n_pool * sizeof *m->host_pool, "random T5 weights", err);
  m->blocks = sd35_calloc ((size_t) n_layers, sizeof *m->blocks, "T5 blocks", err);
  m->rel_bias = sd35_malloc ((size_t) (T5_NUM_BUCKETS * n_heads) * sizeof *m->rel_bias,
                             "the T5 position bias", err);
  if (m->host_pool == NULL || m->blocks == NULL || m->rel_bias == NULL)
    {
      t5_free (m);
      return SD35_ERR_OOM;
    }
  weights_random_bf16 (m->host_pool, n_pool, seed);
  r.pool = m->host_pool;
  m->be = be;
  m->d_model = D;
  m->n_heads = n_heads;
  m->inner = D;
  m->d_kv = D / n_heads;
  m->d_ff = F;
  m->vocab = T5_VOCAB;
  m->n_blocks = n_layers;
  for (int64_t i = 0; i < T5_NUM_BUCKETS * m->n_heads; i++)
    m->rel_bias[i] = sd35_bf16_to_f32 (m->host_pool[i]);
  m->embed_tokens = t5_rand_tensor (&r, WEIGHT_MATRIX, m->vocab, D);
  for (int i = 0; i < n_layers; i++)
    {
      struct t5_block *b = &m->blocks[i];
      b->layer_norm0.w = t5_rand_tensor (&r, WEIGHT_VECTOR, D, 0);
      b->qkv.w = t5_rand_tensor (&r, WEIGHT_MATRIX, 3 * D, D);
      b->o.w = t5_rand_tensor (&r, WEIGHT_MATRIX, D, D);
      b->layer_norm1.w = t5_rand_tensor (&r, WEIGHT_VECTOR, D, 0);
      b->wi_0.w = t5_rand_tensor (&r, WEIGHT_MATRIX, F, D);
      b->wi_1.w = t5_rand_tensor (&r, WEIGHT_MATRIX, F, D);
      b->wo.w = t5_rand_tensor (&r, WEIGHT_MATRIX, D, F);
    }
  m->final_layer_norm.w = t5_rand_tensor (&r, WEIGHT_VECTOR, D, 0);
  if (r.failed)
    {
      enum sd35_status st = backend_check (be, err);
      t5_free (m);
      return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_OOM, "out of memory building "
                                                  "a random T5");
    }
  *out = m;
  return SD35_OK;
}

/* HF T5Attention._relative_position_bucket (bidirectional, 32 buckets, max distance 128) for
 * rel = key − query, in float32 like torch: log(n/8)/log(16)·8, truncated. */
static int
t5_bucket (int64_t rel)
{
  const int half = T5_NUM_BUCKETS / 2, max_exact = half / 2;
  int       bucket = rel > 0 ? half : 0;
  int64_t   n = rel < 0 ? -rel : rel;

  if (n < max_exact)
    return bucket + (int) n;
  float r = logf ((float) n / (float) max_exact);
  r = r / (float) log ((double) T5_MAX_DISTANCE / max_exact);
  r = r * (float) (half - max_exact);
  int large = max_exact + (int) r;
  return bucket + (large < half - 1 ? large : half - 1);
}

enum sd35_status
t5_encode (struct t5_model *m, const int32_t *ids, int n, float *hidden, struct sd35_error *err)
{
  struct backend  *be = m->be;
  const int64_t    T = n, D = m->d_model, H = m->n_heads, I = m->inner, F = m->d_ff;
  struct tensor   *x = NULL, *h, *qkv, *a, *g, *u, *bias = NULL;
  float           *bias_host;
  size_t           nb;
  enum sd35_status st;

  if (n <= 0)
    return sd35_set_error (err, SD35_ERR_ARG, "T5: empty token sequence");
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= m->vocab)
      return sd35_set_error (err, SD35_ERR_ARG, "T5: token id %d at position %d is outside the "
                             "vocabulary (0..%lld)", (int) ids[i], i, (long long) m->vocab - 1);
  if (sd35_mul_size ((size_t) (H * T), (size_t) T, &nb) != 0 ||
      (bias_host = sd35_malloc (nb * sizeof (float), "the T5 position bias", err)) == NULL)
    return sd35_set_error (err, SD35_ERR_OOM, "T5: %d tokens is too many", n);

  /* bias[h, q, k] = rel_bias[bucket(k − q), h]   (T5Attention.compute_bias of block 0) */
  for (int64_t q = 0; q < T; q++)
    for (int64_t k = 0; k < T; k++)
      {
        int bk = t5_bucket (k - q);
        for (int64_t hh = 0; hh < H; hh++)
          bias_host[(hh * T + q) * T + k] = m->rel_bias[bk * H + hh];
      }
  /* fp32 whatever the activation dtype (ops.h): the position bias (op attention takes fp32),
   * the residual stream x and h (norm / projection outputs, the final output read back) */
  bias = tensor_new (be, SD35_F32, 3, (int64_t[]) { H, T, T });
  if (bias != NULL)
    op_upload_f32 (be, bias, bias_host);
  free (bias_host);
  x = tensor_new (be, SD35_F32, 2, (int64_t[]) { T, D });
  h = tensor_new (be, SD35_F32, 2, (int64_t[]) { T, D });
  qkv = tensor_new_act2 (be, T, 3 * I);
  a = tensor_new_act2 (be, T, I);
  g = tensor_new_act2 (be, T, F);
  u = tensor_new_act2 (be, T, F);

  op_embedding (be, x, m->embed_tokens, ids, T, D);  /* not scaled */
  for (int64_t i = 0; i < m->n_blocks; i++)
    {
      const struct t5_block *b = &m->blocks[i];
      /* x += o(attn(rms(x)))   no 1/sqrt(d_kv) scaling, no mask */
      op_rmsnorm (be, h, x, b->layer_norm0.w, T, D, T5_RMS_EPS);
      op_linear (be, qkv, h, b->qkv.w, NULL, T, 3 * I, D, ACT_NONE);  /* (T, 3·inner) */
      op_attention (be, a, qkv, bias, 1, T, H, m->d_kv, 1.0f, 0);
      op_linear (be, h, a, b->o.w, NULL, T, D, I, ACT_NONE);
      op_add (be, x, x, h, T * D);
      /* x += wo(gelu_tanh(wi_0(h)) · wi_1(h)),  h = rms(x)   (T5DenseGatedActDense) */
      op_rmsnorm (be, h, x, b->layer_norm1.w, T, D, T5_RMS_EPS);
      op_linear (be, g, h, b->wi_0.w, NULL, T, F, D, ACT_GELU_TANH);
      op_linear (be, u, h, b->wi_1.w, NULL, T, F, D, ACT_NONE);
      op_mul (be, g, g, u, T * F);
      op_linear (be, h, g, b->wo.w, NULL, T, D, F, ACT_NONE);
      op_add (be, x, x, h, T * D);
    }
  op_rmsnorm (be, h, x, m->final_layer_norm.w, T, D, T5_RMS_EPS);
  if (!backend_failed (be))
    tensor_to_f32 (h, hidden);
  st = backend_check (be, err);
  if (st != SD35_OK)
    sd35_error_prefix (err, "T5");
  tensor_free (bias), tensor_free (x), tensor_free (h), tensor_free (qkv), tensor_free (a);
  tensor_free (g), tensor_free (u);
  return st;
}
