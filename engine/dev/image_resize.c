/* image_resize.c — separable Lanczos-3 resize of RGB u8 images (see image_resize.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_resize.h"

static double
lanczos3 (double x)
{
  if (x == 0)
    return 1.0;
  if (x <= -3 || x >= 3)
    return 0.0;
  x *= M_PI;
  return 3.0 * sin (x) * sin (x / 3.0) / (x * x);
}

/* One pass along a line: src has n_in samples (stride s_in), dst n_out (stride s_out),
 * 3 channels, values as float. */
static void
resample_line (const float *src, int n_in, size_t s_in, float *dst, int n_out, size_t s_out)
{
  double scale = (double) n_in / n_out;
  double support = scale > 1 ? 3.0 * scale : 3.0;
  double fscale = scale > 1 ? scale : 1.0;  /* widen the filter when shrinking (PIL) */

  for (int o = 0; o < n_out; o++)
    {
      double center = (o + 0.5) * scale;
      int    lo = (int) floor (center - support), hi = (int) ceil (center + support);
      double acc[3] = { 0, 0, 0 }, wsum = 0;

      if (lo < 0)
        lo = 0;
      if (hi > n_in)
        hi = n_in;
      for (int i = lo; i < hi; i++)
        {
          double wt = lanczos3 ((i + 0.5 - center) / fscale);
          for (int c = 0; c < 3; c++)
            acc[c] += wt * src[i * s_in + c];
          wsum += wt;
        }
      for (int c = 0; c < 3; c++)
        dst[o * s_out + c] = (float) (wsum != 0 ? acc[c] / wsum : 0);
    }
}

enum sd35_status
image_resize_rgb (const uint8_t *rgb, int w, int h, int W, int H, uint8_t **out,
                  struct sd35_error *err)
{
  float *a, *b;
  size_t n_a, n_b, n_out;

  *out = NULL;
  if (w <= 0 || h <= 0 || W <= 0 || H <= 0 ||
      sd35_mul_size ((size_t) w * 3, (size_t) h, &n_a) != 0 ||
      sd35_mul_size ((size_t) W * 3, (size_t) h, &n_b) != 0 ||
      sd35_mul_size ((size_t) W * 3, (size_t) H, &n_out) != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "cannot resize %d×%d to %d×%d", w, h, W, H);
  a = sd35_malloc (n_a * sizeof *a, "resizing the image", err);
  b = sd35_malloc ((n_b > n_out ? n_b : n_out) * sizeof *b, "resizing the image", err);
  *out = sd35_malloc (n_out, "the resized image", err);
  if (a == NULL || b == NULL || *out == NULL)
    {
      free (a);
      free (b);
      free (*out);
      *out = NULL;
      return err->status;
    }
  for (size_t i = 0; i < n_a; i++)
    a[i] = rgb[i];
  /* horizontal: a [h, w, 3] → b [h, W, 3] */
  for (int y = 0; y < h; y++)
    resample_line (a + (size_t) y * w * 3, w, 3, b + (size_t) y * W * 3, W, 3);
  /* vertical: b [h, W, 3] → a' [H, W, 3] (reuse a when large enough) */
  {
    float *c = n_out <= n_a ? a : NULL;
    if (c == NULL)
      {
        free (a);
        a = c = sd35_malloc (n_out * sizeof *c, "resizing the image", err);
        if (c == NULL)
          {
            free (b);
            free (*out);
            *out = NULL;
            return err->status;
          }
      }
    for (int x = 0; x < W; x++)
      resample_line (b + (size_t) x * 3, h, (size_t) W * 3, c + (size_t) x * 3, H,
                     (size_t) W * 3);
    for (size_t i = 0; i < n_out; i++)
      {
        float v = roundf (c[i]);
        (*out)[i] = (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
      }
  }
  free (a);
  free (b);
  return SD35_OK;
}
