/* sampler.h — the flow schedule and the samplers of the reference (sd3_impls.py
 * ModelSamplingDiscreteFlow, sd3_infer.py get_sigmas/do_sampling, Euler and DPM++ 2M), and
 * the guidance rule (CFGDenoiser / SkipLayerCFGDenoiser).  sd35-facts.md §3, §9.
 *
 * Everything here works on host fp32 arrays in model space (a latent [16, h, w] flattened
 * to n = 16·h·w floats; batch 1).  The samplers are pure functions over a denoiser callback
 * that returns the already guided x0 estimate; the guidance (sampler_guidance) is such a
 * denoiser built on a model callback that predicts x0 for a chosen batch:
 *
 *   sampler_run ── denoise(x, σ, step) ──> sampler_guidance_denoise
 *                                             ├─ predict(x, σ, COND_UNCOND) → [cond; uncond]  (B = 2)
 *                                             │    or predict(x, σ, COND) when cfg ≤ 1         (B = 1)
 *                                             └─ predict(x, σ, COND_SKIP)   → SLG steps only  (B = 1)
 *
 * so the pipeline runs the MMDiT once with B = 2 per step (plus one B = 1 skip-layer pass on
 * the SLG steps), exactly the calls the reference makes. */
#ifndef SD35_SAMPLER_H
#define SD35_SAMPLER_H

#include <stddef.h>

#include "sd35.h"

#define SAMPLER_MAX_STEPS 1000

/* ---- schedule (ModelSamplingDiscreteFlow, get_sigmas) ------------------------------- */

/* sigma(timestep) = shift·t/(1 + (shift − 1)·t), t = timestep/1000, in float32 as torch
 * computes it (identity when shift == 1). */
float sampler_flow_sigma (float timestep, double shift);
/* steps+1 sigmas (last 0) for shift: timesteps = linspace(1000·sigma_max, 1000·sigma_min,
 * steps) in float32, sigmas = sigma(timesteps) — the shift is applied twice, as the
 * reference does.  steps must be in 1..SAMPLER_MAX_STEPS (not checked here). */
void sampler_sigmas (int steps, double shift, float *sigmas /* steps+1 */);
/* img2img start index: int(steps·(1−denoise)) with Python float semantics */
int  sampler_img2img_start (int steps, double denoise);
/* Validated schedule: steps in 1..1000, denoise in (0, 1] leaving at least one step.
 * *sigmas_out (malloc'd, caller frees) = get_sigmas(steps)[start:], *n_sigmas_out values
 * (the last is 0, so n_sigmas − 1 sampler steps). */
enum sd35_status sampler_schedule (int steps, double shift, double denoise,
                                   float **sigmas_out, int *n_sigmas_out,
                                   struct sd35_error *err);

/* ---- model-space helpers ------------------------------------------------------------ */

/* The timestep the MMDiT gets for sigma (ModelSamplingDiscreteFlow.timestep: σ·1000). */
float sampler_timestep (float sigma);
/* BaseModel.calculate_denoised: x0 = x − v·σ (v the MMDiT output).  x0 may alias x or v. */
void  sampler_flow_x0 (const float *x, const float *v, float sigma, size_t n, float *x0);
/* noise_scaling: x = σ·noise + (1 − σ)·latent; latent NULL = zeros (txt2img, where σ0 = 1). */
void  sampler_noise_scaling (float sigma, const float *noise, const float *latent, size_t n,
                             float *x);
/* Image-size mask [H, W] (values clamped to [0, 1], NaN = 0) → latent-size mask
 * [H/8, W/8] by the mean over each 8×8 block. */
void  sampler_mask_to_latent (const float *mask, int H, int W, float *out);

/* ---- the samplers ------------------------------------------------------------------- */

/* The guided x0 estimate for state x at sigma.  `step` = 0-based index of this sampler step
 * = the number of previous denoiser calls (what the reference's SLG counts).  May return
 * SD35_CANCELLED (e.g. polled between MMDiT blocks). */
struct sampler_denoiser
{
  enum sd35_status (*denoise) (void *user, const float *x, float sigma, int step,
                               float *denoised_out, struct sd35_error *err);
  void *user;
};

/* Masked img2img (the plug-in's "use selection as mask").  After every step i the state is
 * blended in latent space with the init latent noised to the next sigma:
 *     x = m·x + (1 − m)·(σ_{i+1}·noise + (1 − σ_{i+1})·init_latent)
 * with m = mask[y, x] broadcast over the 16 channels (1 = regenerate, 0 = keep).  The start
 * x is σ0·noise + (1 − σ0)·init_latent everywhere, so the kept area follows the init image's
 * own noising trajectory, and after the last step (σ = 0) it equals init_latent exactly. */
struct sampler_inpaint
{
  const float *mask;         /* [h, w] in [0, 1] */
  const float *init_latent;  /* [16, h, w], model space (process_in applied) */
  const float *noise;        /* [16, h, w], the noise the start x was made from */
  int          h, w;
};

struct sampler_callbacks
{
  /* After the denoiser call of step `step` (0-based, of n_steps): the sigma, the state x
   * that was fed to the denoiser and the guided x0 estimate (for previews).  The arrays are
   * only valid during the call. */
  void (*on_step) (void *user, int step, int n_steps, float sigma, const float *x,
                   const float *denoised);
  /* Polled before every step; non-zero → SD35_CANCELLED. */
  int  (*is_cancelled) (void *user);
  void *user;
};

/* Runs `sampler` (EULER or DPMPP_2M; DEFAULT is an error: resolve it per variant first)
 * over sigmas[0..n_sigmas−1] (n_sigmas − 1 steps, 1..1000; sigmas > 0 except the last,
 * which may be 0).  x [n] holds the start state (sampler_noise_scaling) and receives the
 * result (model space, before process_out).  inpaint and cb may be NULL.
 * On any status other than SD35_OK (errors, SD35_CANCELLED) x holds no result. */
enum sd35_status sampler_run (enum sd35_sampler               sampler,
                              const struct sampler_denoiser  *denoiser,
                              float                          *x,
                              size_t                          n,
                              const float                    *sigmas,
                              int                             n_sigmas,
                              const struct sampler_inpaint   *inpaint,
                              const struct sampler_callbacks *cb,
                              struct sd35_error              *err);

/* ---- guidance (CFGDenoiser / SkipLayerCFGDenoiser on the x0 prediction) ------------- */

enum sampler_batch
{
  SAMPLER_BATCH_COND_UNCOND,  /* B = 2: out = [cond (n); uncond (n)], x repeated twice */
  SAMPLER_BATCH_COND,         /* B = 1: out = cond */
  SAMPLER_BATCH_COND_SKIP     /* B = 1: cond with the skip layers left out (SLG) */
};

/* The model: x0 prediction(s) (sampler_flow_x0 of the MMDiT output) for state x at sigma
 * with the conditioning chosen by `batch`. */
struct sampler_model
{
  enum sd35_status (*predict) (void *user, const float *x, float sigma,
                               enum sampler_batch batch, float *out,
                               struct sd35_error *err);
  void *user;
};

/* The rule, for one step (step = number of previous denoiser calls, steps = the total step
 * count of the run, before any img2img truncation):
 *   cfg > 1:  d = uncond + (cond − uncond)·cfg                      (one B = 2 call)
 *   cfg ≤ 1:  d = cond  (below 1: no guidance, sd35-facts §9; at 1 the reference's formula
 *             gives the same, so the unconditional pass is skipped)  (one B = 1 call)
 *   SLG, if slg_scale > 0 and step > slg_start·steps and step < slg_end·steps (strict):
 *             d += (cond − skip)·slg_scale, skip = COND_SKIP prediction (one more B = 1 call) */
struct sampler_guidance
{
  struct sampler_model model;
  size_t n;
  double cfg;
  double slg_scale, slg_start, slg_end;  /* slg_scale ≤ 0: off */
  int    steps;
  float *buf;                            /* 3·n scratch */
};

enum sd35_status sampler_guidance_init (struct sampler_guidance    *g,
                                        const struct sampler_model *model,
                                        size_t                      n,
                                        double                      cfg,
                                        double                      slg_scale,
                                        double                      slg_start,
                                        double                      slg_end,
                                        int                         steps,
                                        struct sd35_error          *err);
void sampler_guidance_clear (struct sampler_guidance *g);
/* Whether this guidance needs the unconditional prediction at all (cfg > 1). */
int  sampler_guidance_uses_uncond (const struct sampler_guidance *g);
/* Whether SLG applies at denoiser call `step`. */
int  sampler_slg_active (double slg_scale, double slg_start, double slg_end, int steps,
                         int step);
/* The combination itself: out = rule(cond, uncond, skip) (uncond ignored when cfg ≤ 1, skip
 * ignored when NULL); float32 like torch.  out may alias cond. */
void sampler_guidance_combine (const float *cond, const float *uncond, const float *skip,
                               size_t n, double cfg, double slg_scale, float *out);
/* sampler_denoiser.denoise for user = struct sampler_guidance *. */
enum sd35_status sampler_guidance_denoise (void *user, const float *x, float sigma, int step,
                                           float *denoised_out, struct sd35_error *err);

#endif
