/* latent_preview.c — sd35_latent_preview: the cheap latent → RGB preview of ComfyUI's SD3 latent
 * format (sd35-facts.md §6), applied to the x0 estimate in model space.
 *
 * Source: ComfyUI comfy/latent_formats.py class SD3 (latent_rgb_factors, 16×3, and
 * latent_rgb_factors_bias) and latent_preview.py (Latent2RGBPreviewer.decode_latent_to_preview:
 * rgb = torch.nn.functional.linear(x0.movedim(0, -1), factors.T, bias) = x·F + bias; then
 * preview_to_image: clamp_(−1, 1), add_(1), mul_(127.5), round_(), to uint8). */
#include <math.h>

#include "sd35.h"

/* rows: latent channel, columns: R, G, B */
static const float sd3_rgb_factors[16][3] = {
  { -0.0922f, -0.0175f,  0.0749f },
  {  0.0311f,  0.0633f,  0.0954f },
  {  0.1994f,  0.0927f,  0.0458f },
  {  0.0856f,  0.0339f,  0.0902f },
  {  0.0587f,  0.0272f, -0.0496f },
  { -0.0006f,  0.1104f,  0.0309f },
  {  0.0978f,  0.0306f,  0.0427f },
  { -0.0042f,  0.1038f,  0.1358f },
  { -0.0194f,  0.0020f,  0.0669f },
  { -0.0488f,  0.0130f, -0.0268f },
  {  0.0922f,  0.0988f,  0.0951f },
  { -0.0278f,  0.0524f, -0.0542f },
  {  0.0332f,  0.0456f,  0.0895f },
  { -0.0069f, -0.0030f, -0.0810f },
  { -0.0596f, -0.0465f, -0.0293f },
  { -0.1448f, -0.1463f, -0.1189f },
};

static const float sd3_rgb_bias[3] = { 0.2394f, 0.2135f, 0.1925f };

/* preview_to_image for one value; NaN (a broken step) shows as black */
static uint8_t
to_u8 (float v)
{
  if (isnan (v))
    return 0;
  v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
  return (uint8_t) nearbyintf ((v + 1.0f) * 127.5f);  /* round half to even, like round_() */
}

void
sd35_latent_preview (const float *latent, int h, int w, uint8_t *rgb)
{
  size_t hw = (size_t) h * (size_t) w;

  if (h <= 0 || w <= 0)
    return;
  for (size_t p = 0; p < hw; p++)
    {
      float acc[3] = { sd3_rgb_bias[0], sd3_rgb_bias[1], sd3_rgb_bias[2] };
      for (int k = 0; k < 16; k++)
        {
          float v = latent[(size_t) k * hw + p];  /* [16, h, w] */
          acc[0] += v * sd3_rgb_factors[k][0];
          acc[1] += v * sd3_rgb_factors[k][1];
          acc[2] += v * sd3_rgb_factors[k][2];
        }
      rgb[3 * p + 0] = to_u8 (acc[0]);
      rgb[3 * p + 1] = to_u8 (acc[1]);
      rgb[3 * p + 2] = to_u8 (acc[2]);
    }
}
