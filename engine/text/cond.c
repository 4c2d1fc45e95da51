/* cond.c — the SD3 conditioning of one prompt (Stability-AI/sd3.5 sd3_infer.py
 * SD3Inferencer.get_cond @ fbf8f48, sd35-facts.md §1.4):
 *   lg      = cat([clip_l_hidden (77×wl), clip_g_hidden (77×wg)], dim=-1), zero-padded to ctx_dim
 *   context = cat([lg, t5_hidden (T×ctx_dim)], dim=-2)        → (77+T)×ctx_dim
 *   pooled  = cat([clip_l_pooled, clip_g_pooled])               → wl+wg
 * Without T5 (§9, our choice, as diffusers): 77 rows of zeros stand in for t5_hidden. */
#include "text_encoders.h"

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
