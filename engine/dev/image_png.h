/* image_png.h — 8-bit RGB PNG reading and writing with libpng, for the sd35 CLI and tests
 * only (the engine library does not link libpng). */
#ifndef SD35_IMAGE_PNG_H
#define SD35_IMAGE_PNG_H

#include <stdint.h>
#include "sd35.h"

/* Reads any PNG (gray, palette, 16-bit, alpha: converted; alpha dropped) as RGB u8 HWC.
 * *rgb is malloc'd (caller frees). */
enum sd35_status png_read_rgb (const char *path, uint8_t **rgb, int *width, int *height,
                               struct sd35_error *err);
/* Writes RGB u8 HWC as an 8-bit RGB PNG (atomically: path.tmp then rename). */
enum sd35_status png_write_rgb (const char *path, const uint8_t *rgb, int width, int height,
                                struct sd35_error *err);

#endif
