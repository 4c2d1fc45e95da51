/* sampler.c — the flow schedule and the Euler / DPM++ 2M samplers of the reference
 * (sd3_impls.py ModelSamplingDiscreteFlow, sample_euler, sample_dpmpp_2m; sd3_infer.py
 * get_sigmas, do_sampling).  sd35-facts.md §3.
 *
 * The schedule reproduces torch's float32 arithmetic bit for bit (checked against the
 * goldens): every product that torch rounds on its own goes through mul_f32 (a float
 * product computed exactly in double, then rounded once), so the compiler cannot fuse it
 * into a following add; the one place where the torch build does fuse (linspace) is an
 * explicit fmaf. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* round(a·b) in float32, never contracted into an fma (the double product is exact) */
static inline float
mul_f32 (float a, float b)
{
  return (float) ((double) a * (double) b);
}

/* ---- schedule ------------------------------------------------------------------------- */

float
sampler_flow_sigma (float timestep, double shift)
{
  float t = timestep / 1000.0f;

  if (shift == 1.0)
    return t;
  /* self.shift * t / (1 + (self.shift - 1) * t), each op a float32 tensor op */
  return mul_f32 ((float) shift, t) / (1.0f + mul_f32 ((float) (shift - 1.0), t));
}

void
sampler_sigmas (int steps, double shift, float *sigmas)
{
  /* sigma_max = buffer[-1] = sigma(1000), sigma_min = buffer[0] = sigma(1) (the buffer is
   * sigma(arange(1, 1001)); timestep(σ) = σ·1000 */
  float start = mul_f32 (sampler_flow_sigma (1000.0f, shift), 1000.0f);
  float end = mul_f32 (sampler_flow_sigma (1.0f, shift), 1000.0f);

  if (steps < 1)
    return;
  if (steps == 1)
    sigmas[0] = sampler_flow_sigma (start, shift);  /* torch.linspace(a, b, 1) = [a] */
  else
    {
      /* aten RangeFactoriesKernel.cpp linspace_kernel (float32): step = (end − start)/(n − 1);
       * the first half counts up from start, the second down from end; the torch build
       * contracts start + step·i (and end − step·k) into one fma. */
      float step = (end - start) / (float) (steps - 1);
      int   halfway = steps / 2;

      for (int i = 0; i < steps; i++)
        {
          float ts = i < halfway ? fmaf (step, (float) i, start)
                                 : fmaf (-step, (float) (steps - i - 1), end);
          sigmas[i] = sampler_flow_sigma (ts, shift);  /* the shift, a second time */
        }
    }
  sigmas[steps] = 0.0f;
}

int
sampler_img2img_start (int steps, double denoise)
{
  double v = (double) steps * (1.0 - denoise);  /* Python: int(steps * (1 - denoise)) */

  if (!(v > 0.0))
    return 0;
  if (v >= (double) steps)
    return steps;
  return (int) v;  /* truncation toward zero, like int() */
}

enum sd35_status
sampler_schedule (int steps, double shift, double denoise, float **sigmas_out,
                  int *n_sigmas_out, struct sd35_error *err)
{
  float *full, *out;
  int    start, n;

  *sigmas_out = NULL;
  *n_sigmas_out = 0;
  if (steps < 1 || steps > SAMPLER_MAX_STEPS)
    return sd35_set_error (err, SD35_ERR_ARG, "steps must be between 1 and %d (got %d)",
                           SAMPLER_MAX_STEPS, steps);
  if (!(shift > 0.0) || !isfinite (shift))
    return sd35_set_error (err, SD35_ERR_ARG, "shift must be a positive number (got %g); "
                           "SD3.5 uses 3.0, SD3 Medium 1.0", shift);
  if (!(denoise > 0.0 && denoise <= 1.0))
    return sd35_set_error (err, SD35_ERR_ARG, "img2img strength must be in (0, 1] (got %g)",
                           denoise);
  start = sampler_img2img_start (steps, denoise);
  if (start >= steps)
    return sd35_set_error (err, SD35_ERR_ARG, "img2img strength %g with %d steps leaves no "
                           "step to run (int(steps·(1 − strength)) = %d); raise the strength "
                           "or the steps", denoise, steps, start);
  full = sd35_malloc ((size_t) (steps + 1) * sizeof *full, "the sigma schedule", err);
  if (full == NULL)
    return err->status;
  sampler_sigmas (steps, shift, full);
  n = steps + 1 - start;
  out = sd35_malloc ((size_t) n * sizeof *out, "the sigma schedule", err);
  if (out == NULL)
    {
      free (full);
      return err->status;
    }
  memcpy (out, full + start, (size_t) n * sizeof *out);
  free (full);
  *sigmas_out = out;
  *n_sigmas_out = n;
  return SD35_OK;
}

/* ---- model-space helpers -------------------------------------------------------------- */

float
sampler_timestep (float sigma)
{
  return sigma * 1000.0f;
}

void
sampler_flow_x0 (const float *x, const float *v, float sigma, size_t n, float *x0)
{
  for (size_t i = 0; i < n; i++)
    x0[i] = x[i] - mul_f32 (v[i], sigma);
}

void
sampler_noise_scaling (float sigma, const float *noise, const float *latent, size_t n,
                       float *x)
{
  float keep = 1.0f - sigma;

  for (size_t i = 0; i < n; i++)
    x[i] = mul_f32 (sigma, noise[i]) + (latent ? mul_f32 (keep, latent[i]) : 0.0f);
}

void
sampler_mask_to_latent (const float *mask, int H, int W, float *out)
{
  int h = H / 8, w = W / 8;

  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++)
      {
        double s = 0.0;
        for (int y = 0; y < 8; y++)
          for (int x = 0; x < 8; x++)
            {
              float v = mask[(size_t) (8 * i + y) * (size_t) W + (size_t) (8 * j + x)];
              s += isnan (v) || v < 0.0f ? 0.0 : v > 1.0f ? 1.0 : (double) v;
            }
        out[(size_t) i * (size_t) w + (size_t) j] = (float) (s / 64.0);
      }
}

/* ---- the samplers ----------------------------------------------------------------------- */

/* x = m·x + (1 − m)·noise_scaling(sigma, noise, init) (see sampler.h) */
static void
inpaint_blend (const struct sampler_inpaint *ip, float sigma, float *x, size_t n)
{
  size_t hw = (size_t) ip->h * (size_t) ip->w;
  float  keep = 1.0f - sigma;

  for (size_t i = 0; i < n; i++)
    {
      float m = ip->mask[i % hw];
      float ref = mul_f32 (sigma, ip->noise[i]) + mul_f32 (keep, ip->init_latent[i]);
      x[i] = mul_f32 (m, x[i]) + mul_f32 (1.0f - m, ref);
    }
}

static enum sd35_status
check_run (enum sd35_sampler sampler, const struct sampler_denoiser *den, size_t n,
           const float *sigmas, int n_sigmas, const struct sampler_inpaint *ip,
           struct sd35_error *err)
{
  if (sampler != SD35_SAMPLER_EULER && sampler != SD35_SAMPLER_DPMPP_2M)
    return sd35_set_error (err, SD35_ERR_ARG, "unknown sampler %d (use euler or dpmpp_2m; "
                           "resolve the default per model variant first)", (int) sampler);
  if (den == NULL || den->denoise == NULL)
    return sd35_set_error (err, SD35_ERR_INTERNAL, "sampler: no denoiser given");
  if (n_sigmas - 1 < 1 || n_sigmas - 1 > SAMPLER_MAX_STEPS)
    return sd35_set_error (err, SD35_ERR_ARG, "steps must be between 1 and %d (got %d)",
                           SAMPLER_MAX_STEPS, n_sigmas - 1);
  if (n == 0)
    return sd35_set_error (err, SD35_ERR_ARG, "sampler: empty latent");
  for (int i = 0; i < n_sigmas; i++)
    if (!isfinite (sigmas[i]) || sigmas[i] < 0.0f || (i < n_sigmas - 1 && sigmas[i] == 0.0f))
      return sd35_set_error (err, SD35_ERR_ARG, "sampler: sigma %d of %d is %g; sigmas must "
                             "be finite and positive (only the last may be 0)", i, n_sigmas,
                             (double) sigmas[i]);
  if (ip != NULL &&
      (ip->mask == NULL || ip->init_latent == NULL || ip->noise == NULL || ip->h <= 0 ||
       ip->w <= 0 || n % ((size_t) ip->h * (size_t) ip->w) != 0))
    return sd35_set_error (err, SD35_ERR_ARG, "sampler: the inpaint mask (%d×%d) does not "
                           "match the latent (%zu values)", ip->h, ip->w, n);
  return SD35_OK;
}

enum sd35_status
sampler_run (enum sd35_sampler               sampler,
             const struct sampler_denoiser  *den,
             float                          *x,
             size_t                          n,
             const float                    *sigmas,
             int                             n_sigmas,
             const struct sampler_inpaint   *ip,
             const struct sampler_callbacks *cb,
             struct sd35_error              *err)
{
  float           *denoised, *old_denoised = NULL;
  int              n_steps = n_sigmas - 1;
  enum sd35_status st;
  size_t           bytes;

  st = check_run (sampler, den, n, sigmas, n_sigmas, ip, err);
  if (st != SD35_OK)
    return st;
  if (sd35_mul_size (n, 2 * sizeof (float), &bytes) != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "sampler: latent of %zu values is too large", n);
  denoised = sd35_malloc (bytes, "the sampler's x0 buffers", err);
  if (denoised == NULL)
    return err->status;
  if (sampler == SD35_SAMPLER_DPMPP_2M)
    old_denoised = denoised + n;

  for (int i = 0; i < n_steps; i++)
    {
      float sigma = sigmas[i], sigma_next = sigmas[i + 1];

      if (cb != NULL && cb->is_cancelled != NULL && cb->is_cancelled (cb->user))
        {
          st = sd35_set_error (err, SD35_CANCELLED, "cancelled");
          break;
        }
      st = den->denoise (den->user, x, sigma, i, denoised, err);
      if (st != SD35_OK)
        {
          if (err != NULL && err->status == SD35_OK)
            sd35_set_error (err, st, "the denoiser failed at step %d of %d", i + 1, n_steps);
          break;
        }
      if (cb != NULL && cb->on_step != NULL)
        cb->on_step (cb->user, i, n_steps, sigma, x, denoised);

      if (sampler == SD35_SAMPLER_EULER)
        {
          /* sample_euler: d = (x − denoised)/σ; x = x + d·(σ_next − σ) */
          float dt = sigma_next - sigma;
          for (size_t k = 0; k < n; k++)
            x[k] = x[k] + mul_f32 ((x[k] - denoised[k]) / sigma, dt);
        }
      else
        {
          /* sample_dpmpp_2m, t = −log σ, with the float32 0-dim tensor scalars of torch */
          float t = -logf (sigma), t_next = -logf (sigma_next);
          float h = t_next - t;
          float ratio = expf (-t_next) / expf (-t);   /* sigma_fn(t_next)/sigma_fn(t) */
          float c = expm1f (-h);                      /* (−h).expm1() */

          if (i == 0 || sigma_next == 0.0f)
            {
              /* first step, or last step to σ = 0 (then ratio = 0, c = −1: x = denoised) */
              for (size_t k = 0; k < n; k++)
                x[k] = mul_f32 (ratio, x[k]) - mul_f32 (c, denoised[k]);
            }
          else
            {
              float h_last = t - (-logf (sigmas[i - 1]));
              float r = h_last / h;
              float a = 1.0f / mul_f32 (2.0f, r);
              float b = 1.0f + a;
              for (size_t k = 0; k < n; k++)
                {
                  float dd = mul_f32 (b, denoised[k]) - mul_f32 (a, old_denoised[k]);
                  x[k] = mul_f32 (ratio, x[k]) - mul_f32 (c, dd);
                }
            }
          memcpy (old_denoised, denoised, n * sizeof *denoised);
        }
      if (ip != NULL)
        inpaint_blend (ip, sigma_next, x, n);
    }
  free (denoised);
  return st;
}
