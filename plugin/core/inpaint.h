/* inpaint.h — img2img of a selection at the model's native resolution ("inpainting at full
 * resolution", as Krita AI Diffusion and the ComfyUI crop-and-stitch inpaint workflows do):
 *
 *   1. context  = the selection's bounding box grown by a margin, clipped to the drawable;
 *   2. work     = the context scaled (aspect kept) to ≈ 1 megapixel, sides multiples of 16;
 *   3. the engine regenerates the context at the working size, under a sampling mask: the
 *      selection grown and feathered in pixel space (so that every latent cell under the
 *      composited area is fully regenerated);
 *   4. the result is scaled back to the context and composited only under the composite
 *      mask: the selection feathered (centred on its edge); the new layer covers exactly the
 *      region where that mask is non-zero.
 *
 * Plain C: no GIMP, GEGL or GTK, so that the unit suite checks it on any host. */
#ifndef SD35_INPAINT_H
#define SD35_INPAINT_H

#include <stddef.h>

/* A rectangle in image pixels. */
struct sd35_rect
{
  int x, y, width, height;
};

#define SD35_INPAINT_DEFAULT_PIXELS (1024 * 1024)  /* SD3.5's native ≈ 1 MP */
#define SD35_INPAINT_MAX_WORK_SIDE  1536           /* SD3.5 Large's position table (192 latent) */

struct sd35_inpaint_options
{
  int    margin;        /* context margin around the selection, pixels; < 0 = automatic */
  int    feather;       /* composite feather, pixels; < 0 = automatic */
  long   work_pixels;   /* target working area; <= 0 = SD35_INPAINT_DEFAULT_PIXELS */
  int    work_width;    /* > 0 with work_height: this working size instead (rounded to 16) */
  int    work_height;
};

void sd35_inpaint_options_init (struct sd35_inpaint_options *options);

struct sd35_inpaint_plan
{
  struct sd35_rect selection;  /* the selection's bounding box (inside bounds) */
  struct sd35_rect context;    /* selection + margin, clipped to bounds */
  int              margin, feather;
  int              work_width, work_height;  /* what the engine generates */
  int              grow;       /* sampling-mask dilation, context pixels */
};

/* Plans the crop and the working size.  selection and bounds (the drawable's extent) in
 * image coordinates; the selection must be non-empty and inside bounds.  Returns 0, or -1
 * when the arguments make no sense. */
int sd35_inpaint_plan (const struct sd35_rect *selection, const struct sd35_rect *bounds,
                       const struct sd35_inpaint_options *options,
                       struct sd35_inpaint_plan *plan);

/* Masks over the context (w × h floats in [0, 1], row-major, from the selection's values
 * there).  Pixels outside the context count as the nearest edge pixel (a selection that
 * touches the image edge stays selected up to it).  Both return a malloc'd mask or NULL when
 * out of memory. */
/* composite: the selection feathered by `feather` pixels, centred on its edge */
float *sd35_inpaint_composite_mask (const float *selection, int w, int h, int feather);
/* sampling: the selection dilated by `grow` pixels, then feathered by `feather` */
float *sd35_inpaint_sampling_mask (const float *selection, int w, int h, int grow,
                                   int feather);

/* The bounding box (in mask coordinates) of the values > 0; 0 when there is one, -1 when
 * the mask is all zero. */
int sd35_inpaint_mask_bounds (const float *mask, int w, int h, struct sd35_rect *bounds);

#endif
