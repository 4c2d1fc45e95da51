/* bench_text.c — CLIP-L, CLIP-G and T5-XXL encoders of the real sizes with random weights,
 * for `sd35 bench`.
 *
 * clip.c and t5.c load only from files (their structs are private), so this file repeats
 * their forward op for op over ops.h: clip_layer_forward / clip_encode (pre-LN layers, causal
 * attention, hidden of layer L−2 and the final LN downloaded, CLIP-G's text_projection on the
 * EOS row) and t5_encode (host relative-position bias [H, T, T] uploaded per encode, RMSNorm,
 * unscaled attention with bias, gated-gelu FF, final RMSNorm).  Keep the two in step when the
 * real encoders change.  Sizes: sd35-facts.md §1.2/§1.3 (CLIP-L/G: HF configs of
 * openai/clip-vit-large-patch14 and laion CLIP-ViT-bigG-14; T5: google/t5-v1_1-xxl). */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct tenc_shape
{
  int64_t n_layers, width, heads, mlp, vocab;
};

static const struct tenc_shape tenc_shapes[3] = {
  [BENCH_CLIP_L] = { 12, 768, 12, 3072, 49408 },
  [BENCH_CLIP_G] = { 32, 1280, 20, 5120, 49408 },
  [BENCH_T5XXL] = { 24, 4096, 64, 10240, 32128 },
};

struct tenc_layer
{
  struct tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;  /* T5: rms weights only */
  struct tensor *qkv_w, *qkv_b;                  /* [3·D, D] (+ bias for CLIP) */
  struct tensor *o_w, *o_b;                      /* [D, D] */
  struct tensor *fc1_w, *fc1_b;                  /* CLIP fc1 / T5 wi_0: [F, D] */
  struct tensor *gate_w;                         /* T5 wi_1 [F, D] */
  struct tensor *fc2_w, *fc2_b;                  /* CLIP fc2 / T5 wo: [D, F] */
};

struct bench_tenc
{
  struct backend      *be;
  enum bench_tenc_kind kind;
  struct tenc_shape    s;
  int64_t              L;         /* tokens */
  struct tensor       *tok_emb;   /* [vocab, D] */
  struct tensor       *pos_emb;   /* CLIP [77, D] */
  struct tensor       *final_w, *final_b;
  struct tensor       *proj;      /* CLIP-G text_projection [D, D] */
  struct tenc_layer   *layers;
  float               *bias_host; /* T5 [H, L, L] */
  int32_t             *ids;
  const uint16_t      *pool;
  int                  failed;
};

size_t
bench_tenc_pool_size (enum bench_tenc_kind kind)
{
  const struct tenc_shape *s = &tenc_shapes[kind];
  size_t                   n = (size_t) (s->vocab * s->width);

  if ((size_t) (3 * s->width * s->width) > n)
    n = (size_t) (3 * s->width * s->width);
  if ((size_t) (s->mlp * s->width) > n)
    n = (size_t) (s->mlp * s->width);
  return n;
}

static struct tensor *
tw (struct bench_tenc *m, enum weight_use use, int64_t d0, int64_t d1)
{
  struct tensor *t;

  if (m->failed)
    return NULL;
  t = calloc (1, sizeof *t);
  if (t == NULL)
    {
      m->failed = 1;
      return NULL;
    }
  t->be = m->be;
  t->ndim = d1 > 0 ? 2 : 1;
  t->shape[0] = d0;
  t->shape[1] = d1 > 0 ? d1 : 0;
  if (m->be->ops->weight_from_host (m->be, t, m->pool, SD35_BF16, use) != SD35_OK)
    {
      free (t);
      m->failed = 1;
      return NULL;
    }
  return t;
}

static void
layer_free (struct tenc_layer *l)
{
  struct tensor *all[] = { l->ln1_w, l->ln1_b, l->ln2_w, l->ln2_b, l->qkv_w, l->qkv_b, l->o_w,
                           l->o_b, l->fc1_w, l->fc1_b, l->gate_w, l->fc2_w, l->fc2_b };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    tensor_free (all[i]);
}

void
bench_tenc_free (struct bench_tenc *m)
{
  if (m == NULL)
    return;
  for (int64_t i = 0; m->layers != NULL && i < m->s.n_layers; i++)
    layer_free (&m->layers[i]);
  free (m->layers);
  tensor_free (m->tok_emb);
  tensor_free (m->pos_emb);
  tensor_free (m->final_w);
  tensor_free (m->final_b);
  tensor_free (m->proj);
  free (m->bias_host);
  free (m->ids);
  free (m);
}

enum sd35_status
bench_tenc_new (struct backend *be, enum bench_tenc_kind kind, int n_tokens,
                const uint16_t *pool, size_t n_pool, struct bench_tenc **out,
                struct sd35_error *err)
{
  struct bench_tenc *m;
  int64_t            D, F, H, L;
  int                clip = kind != BENCH_T5XXL;

  *out = NULL;
  if (n_pool < bench_tenc_pool_size (kind))
    return sd35_set_error (err, SD35_ERR_INTERNAL, "bench_tenc_new: pool too small");
  if (n_tokens < 1 || n_tokens > 4096 || (clip && n_tokens != SD35_CLIP_TOKENS))
    return sd35_set_error (err, SD35_ERR_ARG, "text encoder benchmark: %d tokens (CLIP: 77; "
                           "T5: 1..4096)", n_tokens);
  m = sd35_calloc (1, sizeof *m, "a text encoder", err);
  if (m == NULL)
    return SD35_ERR_OOM;
  m->be = be;
  m->kind = kind;
  m->s = tenc_shapes[kind];
  m->pool = pool;
  m->L = L = n_tokens;
  D = m->s.width, F = m->s.mlp, H = m->s.heads;
  m->layers = calloc ((size_t) m->s.n_layers, sizeof *m->layers);
  m->ids = malloc ((size_t) L * sizeof *m->ids);
  if (!clip)
    m->bias_host = malloc ((size_t) (H * L * L) * sizeof *m->bias_host);
  if (m->layers == NULL || m->ids == NULL || (!clip && m->bias_host == NULL))
    {
      bench_tenc_free (m);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory building a text encoder");
    }
  /* ids spread over the vocabulary; for CLIP the largest (EOS, pooled row) at position 20 */
  for (int64_t i = 0; i < L; i++)
    m->ids[i] = (int32_t) ((i * 7919) % (m->s.vocab - 1));
  if (clip)
    m->ids[20] = (int32_t) (m->s.vocab - 1);
  for (int64_t i = 0; !clip && i < H * L * L; i++)  /* small bias like a trained table */
    m->bias_host[i] = (float) ((i * 2654435761u) % 1000) * 1e-3f - 0.5f;

  m->tok_emb = tw (m, WEIGHT_MATRIX, m->s.vocab, D);
  if (clip)
    m->pos_emb = tw (m, WEIGHT_VECTOR, L, D);
  for (int64_t i = 0; i < m->s.n_layers; i++)
    {
      struct tenc_layer *l = &m->layers[i];
      l->ln1_w = tw (m, WEIGHT_VECTOR, D, 0);
      l->ln2_w = tw (m, WEIGHT_VECTOR, D, 0);
      l->qkv_w = tw (m, WEIGHT_MATRIX, 3 * D, D);
      l->o_w = tw (m, WEIGHT_MATRIX, D, D);
      l->fc1_w = tw (m, WEIGHT_MATRIX, F, D);
      l->fc2_w = tw (m, WEIGHT_MATRIX, D, F);
      if (clip)
        {
          l->ln1_b = tw (m, WEIGHT_VECTOR, D, 0);
          l->ln2_b = tw (m, WEIGHT_VECTOR, D, 0);
          l->qkv_b = tw (m, WEIGHT_VECTOR, 3 * D, 0);
          l->o_b = tw (m, WEIGHT_VECTOR, D, 0);
          l->fc1_b = tw (m, WEIGHT_VECTOR, F, 0);
          l->fc2_b = tw (m, WEIGHT_VECTOR, D, 0);
        }
      else
        l->gate_w = tw (m, WEIGHT_MATRIX, F, D);
    }
  m->final_w = tw (m, WEIGHT_VECTOR, D, 0);
  if (clip)
    m->final_b = tw (m, WEIGHT_VECTOR, D, 0);
  if (kind == BENCH_CLIP_G)
    m->proj = tw (m, WEIGHT_MATRIX, D, D);
  if (m->failed)
    {
      enum sd35_status st = backend_check (be, err);
      bench_tenc_free (m);
      return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_OOM, "out of memory building "
                                                  "a text encoder");
    }
  *out = m;
  return SD35_OK;
}

int64_t
bench_tenc_width (const struct bench_tenc *m)
{
  return m->s.width;
}

int64_t
bench_tenc_tokens (const struct bench_tenc *m)
{
  return m->L;
}

double
bench_tenc_flop (enum bench_tenc_kind kind, int n_tokens)
{
  const struct tenc_shape *s = &tenc_shapes[kind];
  const double             L = n_tokens, D = (double) s->width, F = (double) s->mlp;
  /* per layer: qkv 3D² + out D² + FF (2 or 3)·D·F multiply-adds per token, attention 4·L²·D */
  double per_layer = 2.0 * L * (4.0 * D * D + (kind == BENCH_T5XXL ? 3.0 : 2.0) * D * F)
                     + 4.0 * L * L * D;
  double f = per_layer * (double) s->n_layers;

  if (kind == BENCH_CLIP_G)
    f += 2.0 * D * D;  /* text_projection of the pooled row */
  return f;
}

/* clip.c clip_encode: out = hidden of layer L−2 (no final LN) */
static enum sd35_status
clip_run (struct bench_tenc *m, float *out, struct sd35_error *err)
{
  struct backend *be = m->be;
  const int64_t   L = m->L, D = m->s.width, F = m->s.mlp, H = m->s.heads, dh = D / H;
  enum op_act     act = m->kind == BENCH_CLIP_L ? ACT_QUICK_GELU : ACT_GELU_ERF;
  struct tensor  *x, *h, *qkv, *a, *f, *p = NULL, *pp = NULL;
  float          *last = sd35_malloc ((size_t) (L * D) * sizeof (float), "CLIP output", err);
  float           pooled_row[1280];
  enum sd35_status st;

  x = tensor_new_act2 (be, L, D);
  h = tensor_new_act2 (be, L, D);
  qkv = tensor_new_act2 (be, L, 3 * D);
  a = tensor_new_act2 (be, L, D);
  f = tensor_new_act2 (be, L, F);
  op_embedding (be, x, m->tok_emb, m->ids, L, D);
  op_add_broadcast (be, x, x, m->pos_emb, 1, L * D);
  for (int64_t i = 0; i < m->s.n_layers && last != NULL; i++)
    {
      const struct tenc_layer *l = &m->layers[i];
      op_layernorm (be, h, x, l->ln1_w, l->ln1_b, L, D, 1e-5f);
      op_linear (be, qkv, h, l->qkv_w, l->qkv_b, L, 3 * D, D, ACT_NONE);
      op_attention (be, a, qkv, NULL, 1, L, H, dh, 1.0f / sqrtf ((float) dh), 1);
      op_linear (be, h, a, l->o_w, l->o_b, L, D, D, ACT_NONE);
      op_add (be, x, x, h, L * D);
      op_layernorm (be, h, x, l->ln2_w, l->ln2_b, L, D, 1e-5f);
      op_linear (be, f, h, l->fc1_w, l->fc1_b, L, F, D, act);
      op_linear (be, h, f, l->fc2_w, l->fc2_b, L, D, F, ACT_NONE);
      op_add (be, x, x, h, L * D);
      if (i == m->s.n_layers - 2 && !backend_failed (be))
        tensor_to_f32 (x, out);
    }
  op_layernorm (be, h, x, m->final_w, m->final_b, L, D, 1e-5f);
  if (last != NULL && !backend_failed (be))
    {
      tensor_to_f32 (h, last);
      if (m->proj != NULL)
        {
          p = tensor_from_f32 (be, last + 20 * D, 2, (int64_t[]) { 1, D });
          pp = tensor_new_act2 (be, 1, D);
          op_linear (be, pp, p, m->proj, NULL, 1, D, D, ACT_NONE);
          if (!backend_failed (be))
            tensor_to_f32 (pp, pooled_row);
        }
    }
  st = backend_check (be, err);
  if (st == SD35_OK && last == NULL)
    st = SD35_ERR_OOM;
  tensor_free (x), tensor_free (h), tensor_free (qkv), tensor_free (a), tensor_free (f);
  tensor_free (p), tensor_free (pp);
  free (last);
  return st;
}

/* t5.c t5_encode: out = final RMSNorm output */
static enum sd35_status
t5_run (struct bench_tenc *m, float *out, struct sd35_error *err)
{
  struct backend *be = m->be;
  const int64_t   T = m->L, D = m->s.width, H = m->s.heads, I = D, F = m->s.mlp;
  struct tensor  *bias, *x, *h, *qkv, *a, *g, *u;

  bias = tensor_from_f32 (be, m->bias_host, 3, (int64_t[]) { H, T, T });
  x = tensor_new_act2 (be, T, D);
  h = tensor_new_act2 (be, T, D);
  qkv = tensor_new_act2 (be, T, 3 * I);
  a = tensor_new_act2 (be, T, I);
  g = tensor_new_act2 (be, T, F);
  u = tensor_new_act2 (be, T, F);
  op_embedding (be, x, m->tok_emb, m->ids, T, D);
  for (int64_t i = 0; i < m->s.n_layers; i++)
    {
      const struct tenc_layer *l = &m->layers[i];
      op_rmsnorm (be, h, x, l->ln1_w, T, D, 1e-6f);
      op_linear (be, qkv, h, l->qkv_w, NULL, T, 3 * I, D, ACT_NONE);
      op_attention (be, a, qkv, bias, 1, T, H, I / H, 1.0f, 0);
      op_linear (be, h, a, l->o_w, NULL, T, D, I, ACT_NONE);
      op_add (be, x, x, h, T * D);
      op_rmsnorm (be, h, x, l->ln2_w, T, D, 1e-6f);
      op_linear (be, g, h, l->fc1_w, NULL, T, F, D, ACT_GELU_TANH);
      op_linear (be, u, h, l->gate_w, NULL, T, F, D, ACT_NONE);
      op_mul (be, g, g, u, T * F);
      op_linear (be, h, g, l->fc2_w, NULL, T, D, F, ACT_NONE);
      op_add (be, x, x, h, T * D);
    }
  op_rmsnorm (be, h, x, m->final_w, T, D, 1e-6f);
  if (!backend_failed (be))
    tensor_to_f32 (h, out);
  tensor_free (bias), tensor_free (x), tensor_free (h), tensor_free (qkv), tensor_free (a);
  tensor_free (g), tensor_free (u);
  return backend_check (be, err);
}

enum sd35_status
bench_tenc_run (struct bench_tenc *m, float *out, struct sd35_error *err)
{
  return m->kind == BENCH_T5XXL ? t5_run (m, out, err) : clip_run (m, out, err);
}
