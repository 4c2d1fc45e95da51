/* denoiser.h — the engine side of sampling: the sampler_model (sampler.h) that runs the
 * MMDiT on the prompt's and the negative prompt's conditioning (BaseModel.apply_model:
 * v = MMDiT(x, 1000·σ, ctx, y), x0 = x − v·σ), and the sampler_callbacks that turn each
 * step into the public callbacks (preview, debug tensors) and poll cancellation. */
#ifndef SD35_GUIDANCE_H
#define SD35_GUIDANCE_H

#include "engine.h"
#include "generate.h"
#include "sampler.h"

struct engine_model
{
  struct sd35_engine          *e;
  const struct gen_params     *g;
  const struct sd35_cond      *cond, *uncond;   /* uncond NULL when cfg ≤ 1 */
  const struct sd35_callbacks *cb;
  struct mmdit_cancel          cancel;
  int                          n_steps;
  size_t                       n;               /* 16·h·w */
  /* scratch */
  float   *xb, *vb, *ctx2, *y2;
  uint8_t *preview;
};

enum sd35_status engine_model_init (struct engine_model *m, struct sd35_engine *e,
                                    const struct gen_params *g, const struct sd35_cond *cond,
                                    const struct sd35_cond *uncond, int n_steps,
                                    const struct sd35_callbacks *cb, struct sd35_error *err);
void engine_model_clear (struct engine_model *m);

/* sampler_model.predict for user = struct engine_model * */
enum sd35_status engine_model_predict (void *user, const float *x, float sigma,
                                       enum sampler_batch batch, float *out,
                                       struct sd35_error *err);
/* sampler_callbacks for user = struct engine_model * */
void engine_model_on_step (void *user, int step, int n_steps, float sigma, const float *x,
                           const float *denoised);
int  engine_model_is_cancelled (void *user);

#endif
