/* inpaint.c — the plan and the masks of img2img at native resolution (see inpaint.h).
 *
 * Masks are worked in 16-bit fixed point with integer running sums, so that "zero" stays
 * exactly zero: the new layer covers exactly the pixels whose composite mask is above 0, and
 * every pixel outside stays as it was. */
#include "inpaint.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ONE 65535u  /* 1.0 in the masks' fixed point */

void
sd35_inpaint_options_init (struct sd35_inpaint_options *o)
{
  memset (o, 0, sizeof *o);
  o->margin = -1;
  o->feather = -1;
}

static int
clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

/* nearest multiple of 16, at least 16 */
static int
round16 (double v)
{
  int r = (int) floor (v / 16.0 + 0.5) * 16;
  return r < 16 ? 16 : r;
}

/* box radius of the 3-pass blur for a feather of `feather` pixels (reach = 3·radius) */
static int
blur_radius (int feather)
{
  if (feather <= 0)
    return 0;
  return feather < 3 ? 1 : (feather + 1) / 3;
}

int
sd35_inpaint_plan (const struct sd35_rect *sel, const struct sd35_rect *bounds,
                   const struct sd35_inpaint_options *o, struct sd35_inpaint_plan *p)
{
  int    side, x0, y0, x1, y1, cell;
  double s;

  memset (p, 0, sizeof *p);
  if (sel->width <= 0 || sel->height <= 0 || bounds->width <= 0 || bounds->height <= 0 ||
      sel->x < bounds->x || sel->y < bounds->y ||
      (long) sel->x + sel->width > (long) bounds->x + bounds->width ||
      (long) sel->y + sel->height > (long) bounds->y + bounds->height)
    return -1;
  p->selection = *sel;
  side = sel->width > sel->height ? sel->width : sel->height;
  p->feather = 3 * blur_radius (o->feather >= 0 ? o->feather
                                                : clampi ((side + 8) / 16, 2, 64));
  p->margin = o->margin >= 0 ? o->margin : clampi ((side + 1) / 2, 32, 512);
  x0 = sel->x - p->margin > bounds->x ? sel->x - p->margin : bounds->x;
  y0 = sel->y - p->margin > bounds->y ? sel->y - p->margin : bounds->y;
  x1 = (long) sel->x + sel->width + p->margin < (long) bounds->x + bounds->width
       ? sel->x + sel->width + p->margin : bounds->x + bounds->width;
  y1 = (long) sel->y + sel->height + p->margin < (long) bounds->y + bounds->height
       ? sel->y + sel->height + p->margin : bounds->y + bounds->height;
  p->context = (struct sd35_rect) { x0, y0, x1 - x0, y1 - y0 };

  if (o->work_width > 0 && o->work_height > 0)
    {
      p->work_width = clampi (round16 (o->work_width), 16, 8192);
      p->work_height = clampi (round16 (o->work_height), 16, 8192);
    }
  else
    {
      double target = o->work_pixels > 0 ? (double) o->work_pixels
                                         : (double) SD35_INPAINT_DEFAULT_PIXELS;
      int    cside = p->context.width > p->context.height ? p->context.width
                                                          : p->context.height;
      s = sqrt (target / ((double) p->context.width * p->context.height));
      if (s * cside > SD35_INPAINT_MAX_WORK_SIDE)
        s = (double) SD35_INPAINT_MAX_WORK_SIDE / cside;
      p->work_width = clampi (round16 (p->context.width * s), 16, SD35_INPAINT_MAX_WORK_SIDE);
      p->work_height = clampi (round16 (p->context.height * s), 16,
                               SD35_INPAINT_MAX_WORK_SIDE);
    }
  /* context pixels per latent cell (8 working pixels), the larger of both axes */
  cell = (int) ceil (8.0 * p->context.width / p->work_width);
  {
    int cy = (int) ceil (8.0 * p->context.height / p->work_height);
    cell = cy > cell ? cy : cell;
  }
  /* the composite mask reaches `feather` beyond the selection, the sampling blur takes
   * `feather` back, and the latent mask averages whole cells */
  p->grow = 2 * p->feather + cell;
  return 0;
}

/* ---- fixed-point 1D filters over n values spaced by stride; edge pixels repeat ---------- */

static void
box_1d (const uint32_t *src, uint32_t *dst, int n, size_t stride, int r)
{
  uint64_t sum = 0;
  uint32_t k = 2u * (uint32_t) r + 1u;

  for (int j = -r; j <= r; j++)
    sum += src[(size_t) clampi (j, 0, n - 1) * stride];
  for (int i = 0; i < n; i++)
    {
      dst[(size_t) i * stride] = (uint32_t) ((sum + k / 2) / k);
      sum += src[(size_t) clampi (i + r + 1, 0, n - 1) * stride];
      sum -= src[(size_t) clampi (i - r, 0, n - 1) * stride];
    }
}

/* max over [i − r, i + r] (van Herk / Gil–Werman: prefix and suffix maxima per block) */
static void
max_1d (const uint32_t *src, uint32_t *dst, int n, size_t stride, int r, uint32_t *g,
        uint32_t *h)
{
  int k = 2 * r + 1, m = n + 2 * r;  /* padded with the edge values */

  for (int i = 0; i < m; i++)
    {
      uint32_t v = src[(size_t) clampi (i - r, 0, n - 1) * stride];
      g[i] = (i % k == 0 || v > g[i - 1]) ? v : g[i - 1];
    }
  for (int i = m - 1; i >= 0; i--)
    {
      uint32_t v = src[(size_t) clampi (i - r, 0, n - 1) * stride];
      h[i] = (i == m - 1 || (i + 1) % k == 0 || v > h[i + 1]) ? v : h[i + 1];
    }
  for (int i = 0; i < n; i++)  /* window [i, i + 2r] of the padded array */
    dst[(size_t) i * stride] = h[i] > g[i + k - 1] ? h[i] : g[i + k - 1];
}

enum filter { FILTER_BLUR, FILTER_MAX };

/* one separable filter over a w × h fixed-point image, in place (tmp: w·h scratch) */
static int
filter_2d (uint32_t *img, uint32_t *tmp, int w, int h, int r, enum filter f)
{
  int       n = w > h ? w : h;
  uint32_t *g = NULL, *hh = NULL;

  if (r <= 0)
    return 0;
  if (f == FILTER_MAX)
    {
      g = malloc (((size_t) n + 2 * (size_t) r) * sizeof *g);
      hh = malloc (((size_t) n + 2 * (size_t) r) * sizeof *hh);
      if (g == NULL || hh == NULL)
        {
          free (g), free (hh);
          return -1;
        }
    }
  for (int y = 0; y < h; y++)  /* rows: img → tmp */
    if (f == FILTER_BLUR)
      box_1d (img + (size_t) y * w, tmp + (size_t) y * w, w, 1, r);
    else
      max_1d (img + (size_t) y * w, tmp + (size_t) y * w, w, 1, r, g, hh);
  for (int x = 0; x < w; x++)  /* columns: tmp → img */
    if (f == FILTER_BLUR)
      box_1d (tmp + x, img + x, h, (size_t) w, r);
    else
      max_1d (tmp + x, img + x, h, (size_t) w, r, g, hh);
  free (g);
  free (hh);
  return 0;
}

static float *
make_mask (const float *sel, int w, int h, int grow, int feather)
{
  size_t    n;
  uint32_t *img, *tmp;
  float    *out;
  int       r = blur_radius (feather), ok = 0;

  if (w <= 0 || h <= 0 || (size_t) w > SIZE_MAX / sizeof (float) / (size_t) h)
    return NULL;
  n = (size_t) w * h;
  img = malloc (n * sizeof *img);
  tmp = malloc (n * sizeof *tmp);
  out = malloc (n * sizeof *out);
  if (img != NULL && tmp != NULL && out != NULL)
    {
      for (size_t i = 0; i < n; i++)
        {
          float v = sel[i];
          img[i] = !(v > 0.0f) ? 0u : v >= 1.0f ? ONE : (uint32_t) lrintf (v * (float) ONE);
        }
      ok = filter_2d (img, tmp, w, h, grow, FILTER_MAX) == 0;
      /* three box passes ≈ a Gaussian that reaches 3r */
      for (int pass = 0; ok && pass < 3; pass++)
        ok = filter_2d (img, tmp, w, h, r, FILTER_BLUR) == 0;
      for (size_t i = 0; ok && i < n; i++)
        out[i] = (float) img[i] / (float) ONE;
    }
  free (img);
  free (tmp);
  if (!ok)
    {
      free (out);
      return NULL;
    }
  return out;
}

float *
sd35_inpaint_composite_mask (const float *sel, int w, int h, int feather)
{
  return make_mask (sel, w, h, 0, feather);
}

float *
sd35_inpaint_sampling_mask (const float *sel, int w, int h, int grow, int feather)
{
  return make_mask (sel, w, h, grow, feather);
}

int
sd35_inpaint_mask_bounds (const float *m, int w, int h, struct sd35_rect *b)
{
  int x0 = w, y0 = h, x1 = -1, y1 = -1;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (m[(size_t) y * w + x] > 0.0f)
        {
          x0 = x < x0 ? x : x0;
          x1 = x > x1 ? x : x1;
          y0 = y < y0 ? y : y0;
          y1 = y > y1 ? y : y1;
        }
  if (x1 < 0)
    return -1;
  *b = (struct sd35_rect) { x0, y0, x1 - x0 + 1, y1 - y0 + 1 };
  return 0;
}
