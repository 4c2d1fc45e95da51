/* test_inpaint.c — plugin/core/inpaint.c, the plan and masks of img2img at native resolution:
 * working sizes near 1 MP (multiples of 16, aspect kept, sides capped), the context clipped
 * to the drawable, the filters against brute-force versions, exact zeros outside the
 * feathered selection, and a sampling mask that fully covers every latent cell the composite
 * touches.  No GIMP needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inpaint.h"
#include "testutil.h"

static void
check_plan_64x48 (void)
{
  struct sd35_rect            sel = { 500, 400, 64, 48 }, img = { 0, 0, 1024, 768 };
  struct sd35_inpaint_options o;
  struct sd35_inpaint_plan    p;
  double                      area, aspect_c, aspect_w;

  sd35_inpaint_options_init (&o);
  test_check (sd35_inpaint_plan (&sel, &img, &o, &p) == 0, "plan 64×48 in 1024×768");
  area = (double) p.work_width * p.work_height;
  aspect_c = (double) p.context.width / p.context.height;
  aspect_w = (double) p.work_width / p.work_height;
  printf ("     64×48 at (500,400): margin %d, context (%d,%d) %d×%d, work %d×%d (%.3f MP), "
          "feather %d, grow %d\n", p.margin, p.context.x, p.context.y, p.context.width,
          p.context.height, p.work_width, p.work_height, area / 1048576.0, p.feather, p.grow);
  test_check (p.context.x == 500 - p.margin && p.context.y == 400 - p.margin &&
              p.context.width == 64 + 2 * p.margin && p.context.height == 48 + 2 * p.margin,
              "context = selection grown by the margin on every side");
  test_check (p.work_width % 16 == 0 && p.work_height % 16 == 0, "work sides multiples of 16");
  test_check (fabs (area / 1048576.0 - 1.0) < 0.1, "work area ≈ 1 MP (%.3f)",
              area / 1048576.0);
  test_check (fabs (aspect_w / aspect_c - 1.0) < 0.03, "aspect kept (%.3f vs %.3f)", aspect_w,
              aspect_c);
  test_check (p.work_width > 8 * sel.width, "the selection is worked on at > 8× its size");
  test_check (p.margin >= p.grow + p.feather, "the margin holds the grown sampling mask");

  o.work_pixels = 256 * 256;  /* small, for fast tests */
  sd35_inpaint_plan (&sel, &img, &o, &p);
  test_check (abs (p.work_width * p.work_height - 65536) < 65536 / 5 &&
              p.work_width > p.context.width, "work_pixels 65536 → %d×%d", p.work_width,
              p.work_height);
  o.work_pixels = 0;
  o.work_width = 300, o.work_height = 200;
  sd35_inpaint_plan (&sel, &img, &o, &p);
  test_check (p.work_width == 304 && p.work_height == 208, "explicit size 300×200 → %d×%d",
              p.work_width, p.work_height);
  o.work_width = o.work_height = 0;
  o.margin = 10, o.feather = 6;
  sd35_inpaint_plan (&sel, &img, &o, &p);
  test_check (p.margin == 10 && p.feather == 6 && p.context.width == 84,
              "explicit margin 10 / feather 6: %d / %d, context %d wide", p.margin, p.feather,
              p.context.width);
}

static void
check_plan_edges (void)
{
  struct sd35_inpaint_options o;
  struct sd35_inpaint_plan    p;
  struct sd35_rect            img = { 0, 0, 4000, 3000 };
  struct sd35_rect            corner = { 0, 0, 200, 150 }, big = { 100, 100, 3800, 2800 };
  struct sd35_rect            thin = { 0, 1000, 4000, 20 }, outside = { 3990, 2990, 20, 20 };
  struct sd35_rect            layer = { 1000, 500, 800, 600 }, inlayer = { 1100, 520, 50, 50 };

  sd35_inpaint_options_init (&o);
  sd35_inpaint_plan (&corner, &img, &o, &p);
  test_check (p.margin == 100 && p.context.x == 0 &&
              p.context.y == 0 && p.context.width == 200 + p.margin &&
              p.context.height == 150 + p.margin, "corner: context clipped to the image "
              "(%d×%d)", p.context.width, p.context.height);
  sd35_inpaint_plan (&big, &img, &o, &p);
  test_check (p.context.width <= 4000 &&
              p.context.height <= 3000 &&
              fabs (p.work_width * (double) p.work_height / 1048576.0 - 1) < 0.1,
              "3800×2800: scaled down to ≈ 1 MP (%d×%d)", p.work_width, p.work_height);
  sd35_inpaint_plan (&thin, &img, &o, &p);
  test_check (p.work_width <= SD35_INPAINT_MAX_WORK_SIDE && p.work_height >= 16,
              "4000×20: work %d×%d, sides capped", p.work_width, p.work_height);
  test_check (sd35_inpaint_plan (&outside, &img, &o, &p) == -1, "selection outside → -1");
  test_check (sd35_inpaint_plan (&inlayer, &layer, &o, &p) == 0 && p.context.y == 500 &&
              p.context.x == 1100 - p.margin, "context clipped to an offset drawable");
}

/* brute force: value at (x, y) of a 3-pass box blur (radius r) with repeated edges and the
 * same rounding, on the fixed-point mask */
static void
ref_box (unsigned *img, int w, int h, int r)
{
  unsigned *t = malloc ((size_t) w * h * sizeof *t);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        unsigned long s = 0;
        for (int j = -r; j <= r; j++)
          s += img[y * w + (x + j < 0 ? 0 : x + j >= w ? w - 1 : x + j)];
        t[y * w + x] = (unsigned) ((s + (2 * r + 1) / 2) / (2 * r + 1));
      }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        unsigned long s = 0;
        for (int j = -r; j <= r; j++)
          s += t[(y + j < 0 ? 0 : y + j >= h ? h - 1 : y + j) * w + x];
        img[y * w + x] = (unsigned) ((s + (2 * r + 1) / 2) / (2 * r + 1));
      }
  free (t);
}

static void
check_filters (void)
{
  enum { W = 37, H = 23 };
  float    sel[W * H], *m;
  unsigned q[W * H], d[W * H];
  int      ok = 1;

  srand (3);
  for (int i = 0; i < W * H; i++)
    sel[i] = rand () % 5 == 0 ? (float) (rand () % 256) / 255.0f : 0.0f;
  for (int i = 0; i < W * H; i++)
    q[i] = (unsigned) lrintf (sel[i] * 65535.0f);
  /* dilation by 4 (square), no blur */
  m = sd35_inpaint_sampling_mask (sel, W, H, 4, 0);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      {
        unsigned mx = 0;
        for (int j = -4; j <= 4; j++)
          for (int i = -4; i <= 4; i++)
            {
              int yy = y + j, xx = x + i;
              if (yy >= 0 && yy < H && xx >= 0 && xx < W && q[yy * W + xx] > mx)
                mx = q[yy * W + xx];
            }
        d[y * W + x] = mx;
        ok &= lrintf (m[y * W + x] * 65535.0f) == (long) mx;
      }
  test_check (ok, "dilation by 4 = brute-force max over 9×9 windows");
  free (m);
  /* composite feather 6 → three box passes of radius 2 */
  m = sd35_inpaint_composite_mask (sel, W, H, 6);
  memcpy (d, q, sizeof d);
  for (int pass = 0; pass < 3; pass++)
    ref_box (d, W, H, 2);
  ok = 1;
  for (int i = 0; i < W * H; i++)
    ok &= lrintf (m[i] * 65535.0f) == (long) d[i];
  test_check (ok, "feather 6 = three brute-force box blurs of radius 2");
  free (m);
}

static void
check_masks (void)
{
  struct sd35_rect            sel = { 500, 400, 64, 48 }, img = { 0, 0, 1024, 768 }, b;
  struct sd35_inpaint_options o;
  struct sd35_inpaint_plan    p;
  float                      *s, *c, *g;
  int                         w, h, cx, cy, cell, zero_out = 1, covered = 1, full_in = 1;

  sd35_inpaint_options_init (&o);
  sd35_inpaint_plan (&sel, &img, &o, &p);
  w = p.context.width, h = p.context.height;
  cx = sel.x - p.context.x, cy = sel.y - p.context.y;
  cell = p.grow - 2 * p.feather;  /* context pixels per latent cell */
  s = calloc ((size_t) w * h, sizeof *s);
  for (int y = cy; y < cy + sel.height; y++)
    for (int x = cx; x < cx + sel.width; x++)
      s[y * w + x] = 1.0f;
  c = sd35_inpaint_composite_mask (s, w, h, p.feather);
  g = sd35_inpaint_sampling_mask (s, w, h, p.grow, p.feather);
  b.width = 0;
  sd35_inpaint_mask_bounds (c, w, h, &b);
  test_check (b.x == cx - p.feather &&
              b.y == cy - p.feather && b.width == sel.width + 2 * p.feather &&
              b.height == sel.height + 2 * p.feather, "composite reaches exactly `feather` "
              "(%d) beyond the selection: (%d,%d) %d×%d", p.feather, b.x, b.y, b.width,
              b.height);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        int inside_by = (x >= cx + p.feather && x < cx + sel.width - p.feather &&
                         y >= cy + p.feather && y < cy + sel.height - p.feather);
        int near = (x >= cx - p.feather && x < cx + sel.width + p.feather &&
                    y >= cy - p.feather && y < cy + sel.height + p.feather);
        float v = c[y * w + x];
        if (!near && v != 0.0f)
          zero_out = 0;
        if (inside_by && v != 1.0f)
          full_in = 0;
        /* every pixel within a latent cell of a composited one is fully regenerated */
        for (int j = -cell; j <= cell && v > 0; j++)
          for (int i = -cell; i <= cell; i++)
            {
              int xx = x + i, yy = y + j;
              if (xx >= 0 && xx < w && yy >= 0 && yy < h && g[yy * w + xx] != 1.0f)
                covered = 0;
            }
      }
  test_check (zero_out, "composite exactly 0 beyond the feather");
  test_check (full_in, "composite exactly 1 deeper than the feather inside");
  test_check (covered, "sampling mask 1 around every composited pixel (± one latent cell)");
  test_check (fabsf (c[(cy + 20) * w + cx] - 0.5f) < 0.2f, "edge ≈ 0.5 (%.3f)",
              c[(cy + 20) * w + cx]);
  free (c), free (g);

  /* a selection that touches the context edge stays 1 up to it */
  memset (s, 0, (size_t) w * h * sizeof *s);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < 10; x++)
      s[y * w + x] = 1.0f;
  c = sd35_inpaint_composite_mask (s, w, h, 6);
  test_check (c[0] == 1.0f && c[(h / 2) * w] == 1.0f, "selected edge pixels stay 1");
  free (c);
  memset (s, 0, (size_t) w * h * sizeof *s);
  c = sd35_inpaint_composite_mask (s, w, h, 6);
  test_check (sd35_inpaint_mask_bounds (c, w, h, &b) == -1, "empty mask has no bounds");
  free (c);
  free (s);
}

int
main (void)
{
  check_plan_64x48 ();
  check_plan_edges ();
  check_filters ();
  check_masks ();
  return test_exit ();
}
