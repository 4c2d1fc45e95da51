/* image_resize.h — resizing an 8-bit RGB image (the CLI's img2img init image of another
 * size).  The reference resizes with PIL's LANCZOS (sd3_infer.py _image_to_latent); this is
 * a separable Lanczos-3 with the same support scaling when shrinking, not bit-identical to
 * PIL (which works in fixed point). */
#ifndef SD35_IMAGE_RESIZE_H
#define SD35_IMAGE_RESIZE_H

#include <stdint.h>
#include "sd35.h"

/* rgb: w×h HWC → *out: W×H HWC (malloc'd, caller frees). */
enum sd35_status image_resize_rgb (const uint8_t *rgb, int w, int h, int W, int H,
                                   uint8_t **out, struct sd35_error *err);

#endif
