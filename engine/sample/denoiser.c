/* denoiser.c — see denoiser.h.  The guidance rule itself (CFG on x0, SLG) is sampler.c's
 * sampler_guidance; this file only says how to get the predictions it asks for.
 *
 * When the prompt's and the negative's contexts have different lengths (a T5 prompt longer
 * than 76 tokens) they cannot share a batch; they then run as two batches of one, which gives
 * the numbers the reference would give if it could batch them. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "denoiser.h"

int
engine_model_is_cancelled (void *user)
{
  const struct engine_model *m = user;
  return m->cb && m->cb->is_cancelled && m->cb->is_cancelled (m->cb->user);
}

enum sd35_status
engine_model_init (struct engine_model *m, struct sd35_engine *e, const struct gen_params *g,
                   const struct sd35_cond *cond, const struct sd35_cond *uncond, int n_steps,
                   const struct sd35_callbacks *cb, struct sd35_error *err)
{
  size_t n_ctx = (size_t) cond->n_ctx * cond->ctx_dim;

  memset (m, 0, sizeof *m);
  m->e = e;
  m->g = g;
  m->cond = cond;
  m->uncond = uncond;
  m->cb = cb;
  m->n_steps = n_steps;
  m->n = (size_t) 16 * g->h * g->w;
  if (cb && cb->is_cancelled)
    {
      m->cancel.is_cancelled = engine_model_is_cancelled;
      m->cancel.user = m;
    }
  if (uncond && (size_t) uncond->n_ctx * uncond->ctx_dim > n_ctx)
    n_ctx = (size_t) uncond->n_ctx * uncond->ctx_dim;

  m->xb = sd35_malloc (2 * m->n * sizeof (float), "the denoiser input", err);
  m->vb = sd35_malloc (2 * m->n * sizeof (float), "the denoiser output", err);
  m->ctx2 = sd35_malloc (2 * n_ctx * sizeof (float), "the batched context", err);
  m->y2 = sd35_malloc ((size_t) 2 * cond->pooled_dim * sizeof (float), "the pooled batch", err);
  m->preview = sd35_malloc ((size_t) g->h * g->w * 3, "the preview", err);
  if (err->status != SD35_OK)
    return err->status;
  memcpy (m->y2, cond->pooled, (size_t) cond->pooled_dim * sizeof (float));
  if (uncond)
    {
      if (uncond->pooled_dim != cond->pooled_dim || uncond->ctx_dim != cond->ctx_dim)
        return sd35_set_error (err, SD35_ERR_INTERNAL, "prompt and negative conditioning "
                               "differ in width");
      memcpy (m->y2 + cond->pooled_dim, uncond->pooled,
              (size_t) cond->pooled_dim * sizeof (float));
      if (uncond->n_ctx == cond->n_ctx)
        {
          size_t nc = (size_t) cond->n_ctx * cond->ctx_dim;
          memcpy (m->ctx2, cond->context, nc * sizeof (float));
          memcpy (m->ctx2 + nc, uncond->context, nc * sizeof (float));
        }
    }
  return SD35_OK;
}

void
engine_model_clear (struct engine_model *m)
{
  free (m->xb);
  free (m->vb);
  free (m->ctx2);
  free (m->y2);
  free (m->preview);
  memset (m, 0, sizeof *m);
}

static enum sd35_status
forward (struct engine_model *m, const float *x, const float *sigma, const float *ctx,
         const float *y, int B, int n_ctx, const int *skip, int n_skip, float *v,
         struct sd35_error *err)
{
  const struct gen_params *g = m->g;

  return mmdit_forward (m->e->mmdit, x, sigma, ctx, y, B, g->h, g->w, n_ctx, skip, n_skip,
                        m->cancel.is_cancelled ? &m->cancel : NULL, v, err);
}

enum sd35_status
engine_model_predict (void *user, const float *x, float sigma, enum sampler_batch batch,
                      float *out, struct sd35_error *err)
{
  struct engine_model    *m = user;
  const struct sd35_cond *c = m->cond, *u = m->uncond;
  size_t                  n = m->n;
  float                   s2[2] = { sigma, sigma };

  switch (batch)
    {
    case SAMPLER_BATCH_COND:
      if (forward (m, x, s2, c->context, c->pooled, 1, c->n_ctx, NULL, 0, m->vb, err))
        return err->status;
      sampler_flow_x0 (x, m->vb, sigma, n, out);
      return SD35_OK;

    case SAMPLER_BATCH_COND_SKIP:
      if (forward (m, x, s2, c->context, c->pooled, 1, c->n_ctx, m->g->slg_layers,
                   m->g->n_slg_layers, m->vb, err))
        return err->status;
      sampler_flow_x0 (x, m->vb, sigma, n, out);
      return SD35_OK;

    case SAMPLER_BATCH_COND_UNCOND:
      if (u == NULL)
        return sd35_set_error (err, SD35_ERR_INTERNAL, "unconditional prediction asked for "
                               "without a negative conditioning");
      if (u->n_ctx == c->n_ctx)
        {
          memcpy (m->xb, x, n * sizeof (float));
          memcpy (m->xb + n, x, n * sizeof (float));
          if (forward (m, m->xb, s2, m->ctx2, m->y2, 2, c->n_ctx, NULL, 0, m->vb, err))
            return err->status;
        }
      else if (forward (m, x, s2, c->context, c->pooled, 1, c->n_ctx, NULL, 0, m->vb, err) ||
               forward (m, x, s2, u->context, u->pooled, 1, u->n_ctx, NULL, 0, m->vb + n,
                        err))
        return err->status;
      sampler_flow_x0 (x, m->vb, sigma, n, out);
      sampler_flow_x0 (x, m->vb + n, sigma, n, out + n);
      return SD35_OK;
    }
  return sd35_set_error (err, SD35_ERR_INTERNAL, "unknown prediction batch %d", (int) batch);
}

void
engine_model_on_step (void *user, int step, int n_steps, float sigma, const float *x,
                      const float *denoised)
{
  struct engine_model         *m = user;
  const struct sd35_callbacks *cb = m->cb;
  int                          h = m->g->h, w = m->g->w;

  if (cb == NULL)
    return;
  if (cb->on_step_tensors)
    cb->on_step_tensors (cb->user, step, n_steps, sigma, x, denoised, h, w);
  if (cb->on_step)
    {
      /* preview of the x0 estimate (model space, as the reference's decode_latent_to_preview) */
      const uint8_t *rgb;
      int            pw, ph;

      /* full-resolution TAESD3 preview when loaded and cheap enough */
      if (engine_taesd_preview (m->e, denoised, h, w, &rgb, &pw, &ph))
        {
          cb->on_step (cb->user, step, n_steps, sigma, rgb, pw, ph);
          return;
        }
      sd35_latent_preview (denoised, h, w, m->preview);
      cb->on_step (cb->user, step, n_steps, sigma, m->preview, w, h);
    }
}
