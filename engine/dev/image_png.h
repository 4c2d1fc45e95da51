/* image_png.h — 8-bit RGB PNG reading and writing with libpng, for the sd35 CLI and tests
 * only (the engine library does not link libpng). */
#ifndef SD35_IMAGE_PNG_H
#define SD35_IMAGE_PNG_H

#include <stdint.h>
#include "sd35.h"

/* Decoded-size bound of png_read_rgb: 64 megapixels (the largest image the engine makes). */
#define PNG_MAX_PIXEL_SIDE 8192
#define PNG_MAX_PIXELS (PNG_MAX_PIXEL_SIDE * PNG_MAX_PIXEL_SIDE)

/* Reads any PNG (gray, palette, 16-bit, alpha: converted; alpha dropped) as RGB u8 HWC.
 * *rgb is malloc'd (caller frees). */
enum sd35_status png_read_rgb (const char *path, uint8_t **rgb, int *width, int *height,
                               struct sd35_error *err);
/* Writes RGB u8 HWC as an 8-bit RGB PNG (atomically, through sd35_out_*
 * of safe_file.h: a temporary beside path, fsync, rename; a non-regular target is refused). */
enum sd35_status png_write_rgb (const char *path, const uint8_t *rgb, int width, int height,
                                struct sd35_error *err);

#endif
