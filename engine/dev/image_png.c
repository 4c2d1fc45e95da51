/* image_png.c — PNG I/O with libpng (see image_png.h).  libpng reports errors by longjmp;
 * every path out of a setjmp frees what was allocated.  libpng's own messages are caught
 * (never printed) and end up in the one-line error; the image size is checked against
 * PNG_MAX_PIXELS from the header, before anything is decoded. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_png.h"
#include "safe_file.h"

#define PNG_MAX_SIDE 32768

struct png_ctx
{
  char                  why[160];   /* libpng's last error message */
  struct sd35_out_file *out;        /* writing */
  struct sd35_error    *err;
};

static void
on_png_error (png_structp png, png_const_charp msg)
{
  struct png_ctx *c = png_get_error_ptr (png);
  if (c != NULL && c->why[0] == '\0')
    snprintf (c->why, sizeof c->why, "%s", msg);
  png_longjmp (png, 1);
}

static void
on_png_warning (png_structp png, png_const_charp msg)
{
  (void) png;
  (void) msg;  /* warnings (e.g. a bad iCCP profile) are not the user's business */
}

enum sd35_status
png_read_rgb (const char *path, uint8_t **rgb, int *width, int *height, struct sd35_error *err)
{
  FILE *volatile     f = NULL;
  png_structp        png = NULL;
  png_infop          info = NULL;
  uint8_t *volatile  pix = NULL;
  png_bytep *volatile rows = NULL;
  unsigned char      sig[8];
  png_uint_32        w, h;
  int                depth, color;

  struct png_ctx     ctx = { { 0 }, NULL, err };

  *rgb = NULL;
  if (sd35_check_input_file (path, "image", err) != SD35_OK)
    return err != NULL ? err->status : SD35_ERR_IO;
  f = fopen (path, "rb");
  if (f == NULL)
    return sd35_set_error (err, SD35_ERR_IO, "cannot open %s: %m", path);
  if (fread (sig, 1, 8, f) != 8 || png_sig_cmp (sig, 0, 8) != 0)
    {
      fclose (f);
      return sd35_set_error (err, SD35_ERR_FORMAT, "%s is not a PNG file (only PNG is read)",
                             path);
    }
  png = png_create_read_struct (PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
  info = png ? png_create_info_struct (png) : NULL;
  if (info == NULL)
    {
      png_destroy_read_struct (&png, NULL, NULL);
      fclose (f);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory reading %s", path);
    }
  if (setjmp (png_jmpbuf (png)))
    {
      png_destroy_read_struct (&png, &info, NULL);
      fclose (f);
      free (pix);
      free (rows);
      if (err != NULL && err->status != SD35_OK)
        return err->status;  /* our own refusal (size), already worded */
      return sd35_set_error (err, SD35_ERR_FORMAT, "%s: corrupt or unsupported PNG (%s)", path,
                             ctx.why[0] ? ctx.why : "libpng gave no reason");
    }
  png_init_io (png, f);
  png_set_sig_bytes (png, 8);
  png_set_user_limits (png, PNG_MAX_SIDE, PNG_MAX_SIDE);
  png_read_info (png, info);
  png_get_IHDR (png, info, &w, &h, &depth, &color, NULL, NULL, NULL);
  if ((uint64_t) w * h > PNG_MAX_PIXELS)
    {
      sd35_set_error (err, SD35_ERR_FORMAT, "%s is %u×%u pixels; images of more than %d pixels "
                      "(%d×%d) are refused before decoding", path, (unsigned) w, (unsigned) h,
                      PNG_MAX_PIXELS, PNG_MAX_PIXEL_SIDE, PNG_MAX_PIXEL_SIDE);
      png_longjmp (png, 1);
    }
  if (depth == 16)
    png_set_strip_16 (png);
  if (color == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8 (png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
    png_set_gray_to_rgb (png);
  if (color & PNG_COLOR_MASK_ALPHA)
    png_set_strip_alpha (png);
  if (png_get_valid (png, info, PNG_INFO_tRNS))
    {
      png_set_tRNS_to_alpha (png);
      png_set_strip_alpha (png);
    }
  png_read_update_info (png, info);
  if (png_get_rowbytes (png, info) != (size_t) w * 3)
    png_error (png, "unexpected row size");
  pix = malloc ((size_t) w * h * 3);
  rows = malloc ((size_t) h * sizeof *rows);
  if (pix == NULL || rows == NULL)
    png_error (png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++)
    rows[y] = pix + (size_t) y * w * 3;
  png_read_image (png, rows);
  png_read_end (png, NULL);
  png_destroy_read_struct (&png, &info, NULL);
  fclose (f);
  free (rows);
  *rgb = pix;
  *width = (int) w;
  *height = (int) h;
  return SD35_OK;
}

static void
on_png_write (png_structp png, png_bytep data, size_t n)
{
  struct png_ctx *c = png_get_io_ptr (png);
  if (sd35_out_write (c->out, data, n, c->err) != SD35_OK)
    png_longjmp (png, 1);
}

static void
on_png_flush (png_structp png)
{
  (void) png;
}

enum sd35_status
png_write_rgb (const char *path, const uint8_t *rgb, int width, int height,
               struct sd35_error *err)
{
  struct sd35_out_file out;
  struct png_ctx       ctx = { { 0 }, &out, err };
  png_structp          png = NULL;
  png_infop            info = NULL;

  if (width <= 0 || height <= 0)
    return sd35_set_error (err, SD35_ERR_ARG, "cannot write %s: image size %d×%d", path, width,
                           height);
  if (sd35_out_open (&out, path, err) != SD35_OK)
    return err != NULL ? err->status : SD35_ERR_IO;
  png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
  info = png ? png_create_info_struct (png) : NULL;
  if (info == NULL || setjmp (png_jmpbuf (png)))
    {
      png_destroy_write_struct (&png, &info);
      sd35_out_abort (&out);
      if (err != NULL && err->status != SD35_OK)
        return err->status;  /* the write's reason (e.g. no space left on device) */
      return sd35_set_error (err, SD35_ERR_IO, "writing %s failed (%s)", path,
                             ctx.why[0] ? ctx.why : "out of memory");
    }
  png_set_write_fn (png, &ctx, on_png_write, on_png_flush);
  png_set_IHDR (png, info, (png_uint_32) width, (png_uint_32) height, 8, PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info (png, info);
  for (int y = 0; y < height; y++)
    png_write_row (png, (png_const_bytep) (rgb + (size_t) y * width * 3));
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);
  return sd35_out_commit (&out, err);
}
