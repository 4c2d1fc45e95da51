/* image_png.c — PNG I/O with libpng (see image_png.h).  libpng reports errors by longjmp;
 * every path out of a setjmp frees what was allocated. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_png.h"

#define PNG_MAX_SIDE 32768

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

  *rgb = NULL;
  f = fopen (path, "rb");
  if (f == NULL)
    return sd35_set_error (err, SD35_ERR_IO, "cannot open %s: %m", path);
  if (fread (sig, 1, 8, f) != 8 || png_sig_cmp (sig, 0, 8) != 0)
    {
      fclose (f);
      return sd35_set_error (err, SD35_ERR_FORMAT, "%s is not a PNG file (only PNG is read)",
                             path);
    }
  png = png_create_read_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
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
      return sd35_set_error (err, SD35_ERR_FORMAT, "%s: corrupt or unsupported PNG", path);
    }
  png_init_io (png, f);
  png_set_sig_bytes (png, 8);
  png_set_user_limits (png, PNG_MAX_SIDE, PNG_MAX_SIDE);
  png_read_info (png, info);
  png_get_IHDR (png, info, &w, &h, &depth, &color, NULL, NULL, NULL);
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

enum sd35_status
png_write_rgb (const char *path, const uint8_t *rgb, int width, int height,
               struct sd35_error *err)
{
  FILE *volatile f = NULL;
  png_structp    png = NULL;
  png_infop      info = NULL;
  char          *tmp;
  size_t         n = strlen (path) + 8;

  tmp = sd35_malloc (n, "a file name", err);
  if (tmp == NULL)
    return err->status;
  snprintf (tmp, n, "%s.tmp", path);
  f = fopen (tmp, "wb");
  if (f == NULL)
    {
      sd35_set_error (err, SD35_ERR_IO, "cannot write %s: %m", tmp);
      free (tmp);
      return err->status;
    }
  png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  info = png ? png_create_info_struct (png) : NULL;
  if (info == NULL || setjmp (png_jmpbuf (png)))
    {
      png_destroy_write_struct (&png, &info);
      fclose (f);
      remove (tmp);
      free (tmp);
      return sd35_set_error (err, SD35_ERR_IO, "writing %s failed", path);
    }
  png_init_io (png, f);
  png_set_IHDR (png, info, (png_uint_32) width, (png_uint_32) height, 8, PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info (png, info);
  for (int y = 0; y < height; y++)
    png_write_row (png, (png_const_bytep) (rgb + (size_t) y * width * 3));
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);
  if (fclose (f) != 0 || rename (tmp, path) != 0)
    {
      sd35_set_error (err, SD35_ERR_IO, "cannot write %s: %m", path);
      remove (tmp);
      free (tmp);
      return err->status;
    }
  free (tmp);
  return SD35_OK;
}
