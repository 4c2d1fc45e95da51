/* cond.c — the SD3 conditioning of one prompt (Stability-AI/sd3.5 sd3_infer.py
 * SD3Inferencer.get_cond @ fbf8f48, sd35-facts.md §1.4):
 *   lg      = cat([clip_l_hidden (77×wl), clip_g_hidden (77×wg)], dim=-1), zero-padded to ctx_dim
 *   context = cat([lg, t5_hidden (T×ctx_dim)], dim=-2)        → (77+T)×ctx_dim
 *   pooled  = cat([clip_l_pooled, clip_g_pooled])               → wl+wg
 * Without T5 (§9, our choice, as diffusers): 77 rows of zeros stand in for t5_hidden.
 *
 * Prompt weights (tokens->clip_weighted / t5_weighted, SD35_PROMPT_WEIGHTS_COMFY): ComfyUI's
 * ClipTokenWeightEncoder.encode_token_weights (comfy/sd1_clip.py) for each encoder: the hidden
 * row j of a token of weight w != 1 becomes (z[j] − z_empty[j])·w + z_empty[j], z_empty the
 * encoder's output for gen_empty_tokens of the same length (CLIP-L [BOS, EOS, EOS…], CLIP-G
 * [BOS, EOS, 0…], T5 [EOS, 0…]); the pooled outputs stay those of the prompt. */
#include "text_encoders.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void
sd35_cond_clear (struct sd35_cond *c)
{
  if (c == NULL)
    return;
  free (c->context);
  free (c->pooled);
  free (c->clip_l_hidden);
  free (c->clip_l_pooled);
  free (c->clip_g_hidden);
  free (c->clip_g_pooled);
  free (c->t5_hidden);
  memset (c, 0, sizeof *c);
}

static float *cond_alloc (size_t rows, size_t cols, const char *what, struct sd35_error *err);

#define CLIP_BOS 49406
#define CLIP_EOS 49407
#define T5_EOS 1

/* In fp32 as torch does (an fp32 tensor times a Python float multiplies by the float cast to
 * fp32); rows of weight exactly 1 are left alone, as ComfyUI skips them. */
static void
weigh_rows (float *hidden, const float *empty, const double *weights, int n_rows, int dim)
{
  for (int j = 0; j < n_rows; j++)
    {
      float       *z = hidden + (size_t) j * dim;
      const float *e = empty + (size_t) j * dim;
      float        w = (float) weights[j];
      if (weights[j] == 1.0)
        continue;
      for (int c = 0; c < dim; c++)
        {
          float d = z[c] - e[c];
          d = d * w;
          z[c] = d + e[c];
        }
    }
}

static enum sd35_status
check_weights (const double *weights, int n, const char *encoder, struct sd35_error *err)
{
  for (int j = 0; j < n; j++)
    if (!isfinite ((float) weights[j]))
      return sd35_set_error (err, SD35_ERR_ARG, "%s token %d has the prompt weight %g, which "
                             "is not a finite number", encoder, j, weights[j]);
  return SD35_OK;
}

/* hidden [77, width] of a CLIP → weighted (see the top of this file). */
static enum sd35_status
weigh_clip (struct clip_model *m, int32_t pad, const double *weights, float *hidden,
            struct sd35_error *err)
{
  const int        L = SD35_CLIP_TOKENS, D = clip_width (m);
  int32_t          ids[SD35_CLIP_TOKENS];
  float           *empty = cond_alloc (L, (size_t) D, "the empty-prompt encoding", err);
  float           *pooled = cond_alloc (1, (size_t) D, "the empty-prompt pooled vector", err);
  enum sd35_status st = SD35_ERR_OOM;

  ids[0] = CLIP_BOS;
  ids[1] = CLIP_EOS;
  for (int k = 2; k < L; k++)
    ids[k] = pad;
  if (empty != NULL && pooled != NULL)
    st = clip_encode (m, ids, empty, pooled, err);
  if (st == SD35_OK)
    weigh_rows (hidden, empty, weights, L, D);
  free (empty);
  free (pooled);
  return st;
}

static enum sd35_status
weigh_t5 (struct t5_model *m, int n, const double *weights, float *hidden,
          struct sd35_error *err)
{
  const int        D = t5_width (m);
  int32_t         *ids = sd35_calloc ((size_t) n, sizeof *ids, "empty-prompt T5 ids", err);
  float           *empty = cond_alloc ((size_t) n, (size_t) D, "the empty-prompt encoding", err);
  enum sd35_status st = SD35_ERR_OOM;

  if (ids != NULL && empty != NULL)
    {
      ids[0] = T5_EOS;  /* then the pad, 0, from calloc */
      st = t5_encode (m, ids, n, empty, err);
    }
  if (st == SD35_OK)
    weigh_rows (hidden, empty, weights, n, D);
  free (ids);
  free (empty);
  return st;
}

static float *
cond_alloc (size_t rows, size_t cols, const char *what, struct sd35_error *err)
{
  size_t n;
  if (sd35_mul_size (rows, cols, &n) != 0 || sd35_mul_size (n, sizeof (float), &n) != 0)
    {
      sd35_set_error (err, SD35_ERR_OOM, "%s: size overflows", what);
      return NULL;
    }
  return sd35_calloc (1, n ? n : 1, what, err);
}

enum sd35_status
sd3_condition (struct clip_model *clip_l, struct clip_model *clip_g, struct t5_model *t5,
               const struct sd35_tokens *tokens, int ctx_dim, struct sd35_cond *out,
               struct sd35_error *err)
{
  const int        L = SD35_CLIP_TOKENS;
  int              wl, wg, T;
  enum sd35_status st;

  memset (out, 0, sizeof *out);
  if (clip_l == NULL || clip_g == NULL)
    return sd35_set_error (err, SD35_ERR_INTERNAL, "sd3_condition needs both CLIP models");
  wl = clip_width (clip_l);
  wg = clip_width (clip_g);
  if (t5 != NULL)
    {
      if (tokens->t5 == NULL || tokens->n_t5 <= 0)
        return sd35_set_error (err, SD35_ERR_INTERNAL, "T5 is loaded but the prompt has no T5 "
                               "tokens (tokenizer loaded without T5?)");
      if (ctx_dim > 0 && ctx_dim != t5_width (t5))
        return sd35_set_error (err, SD35_ERR_SHAPE, "T5 width %d does not match the MMDiT's "
                               "context width %d: wrong T5 file for this model?",
                               t5_width (t5), ctx_dim);
      ctx_dim = t5_width (t5);
      T = tokens->n_t5;
    }
  else
    T = L;
  if ((tokens->clip_weighted &&
       check_weights (tokens->clip_weight, L, "CLIP", err) != SD35_OK) ||
      (t5 != NULL && tokens->t5_weighted &&
       check_weights (tokens->t5_weight, T, "T5", err) != SD35_OK))
    return err->status;
  if (ctx_dim < wl + wg)
    return sd35_set_error (err, SD35_ERR_SHAPE, "context width %d is smaller than CLIP-L + "
                           "CLIP-G (%d + %d): mismatched text encoders?", ctx_dim, wl, wg);

  out->n_ctx = L + T;
  out->ctx_dim = ctx_dim;
  out->pooled_dim = wl + wg;
  out->clip_l_dim = wl;
  out->clip_g_dim = wg;
  out->n_t5 = t5 != NULL ? T : 0;
  out->context = cond_alloc ((size_t) out->n_ctx, (size_t) ctx_dim, "the context", err);
  out->pooled = cond_alloc (1, (size_t) (wl + wg), "the pooled vector", err);
  out->clip_l_hidden = cond_alloc (L, (size_t) wl, "CLIP-L hidden", err);
  out->clip_l_pooled = cond_alloc (1, (size_t) wl, "CLIP-L pooled", err);
  out->clip_g_hidden = cond_alloc (L, (size_t) wg, "CLIP-G hidden", err);
  out->clip_g_pooled = cond_alloc (1, (size_t) wg, "CLIP-G pooled", err);
  if (t5 != NULL)
    out->t5_hidden = cond_alloc ((size_t) T, (size_t) ctx_dim, "T5 hidden", err);
  if (out->context == NULL || out->pooled == NULL || out->clip_l_hidden == NULL ||
      out->clip_l_pooled == NULL || out->clip_g_hidden == NULL || out->clip_g_pooled == NULL ||
      (t5 != NULL && out->t5_hidden == NULL))
    {
      sd35_cond_clear (out);
      return SD35_ERR_OOM;
    }

  st = clip_encode (clip_l, tokens->clip_l, out->clip_l_hidden, out->clip_l_pooled, err);
  if (st == SD35_OK)
    st = clip_encode (clip_g, tokens->clip_g, out->clip_g_hidden, out->clip_g_pooled, err);
  if (st == SD35_OK && t5 != NULL)
    st = t5_encode (t5, tokens->t5, T, out->t5_hidden, err);
  if (st == SD35_OK && tokens->clip_weighted)
    st = weigh_clip (clip_l, CLIP_EOS, tokens->clip_weight, out->clip_l_hidden, err);
  if (st == SD35_OK && tokens->clip_weighted)
    st = weigh_clip (clip_g, 0, tokens->clip_weight, out->clip_g_hidden, err);
  if (st == SD35_OK && t5 != NULL && tokens->t5_weighted)
    st = weigh_t5 (t5, T, tokens->t5_weight, out->t5_hidden, err);
  if (st != SD35_OK)
    {
      sd35_cond_clear (out);
      return st;
    }

  /* context rows 0..76: [l | g | 0…]; rows 77..: t5 (or the zeros left by calloc) */
  for (int r = 0; r < L; r++)
    {
      float *row = out->context + (size_t) r * ctx_dim;
      memcpy (row, out->clip_l_hidden + (size_t) r * wl, (size_t) wl * sizeof (float));
      memcpy (row + wl, out->clip_g_hidden + (size_t) r * wg, (size_t) wg * sizeof (float));
    }
  if (t5 != NULL)
    memcpy (out->context + (size_t) L * ctx_dim, out->t5_hidden,
            (size_t) T * ctx_dim * sizeof (float));
  memcpy (out->pooled, out->clip_l_pooled, (size_t) wl * sizeof (float));
  memcpy (out->pooled + wl, out->clip_g_pooled, (size_t) wg * sizeof (float));
  return SD35_OK;
}
