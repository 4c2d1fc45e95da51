/* pixels.c — pixels between GIMP and the engine, through GEGL and babl.
 *
 * Both ways use babl formats *in the image's colour space* (babl_format_with_space with the
 * drawable's own format): the engine's numbers are taken as the image's R'G'B' values, with
 * no conversion to or from sRGB, so that an image in another RGB space gets what the model
 * drew and not a colorimetric re-rendering of it.  babl converts to whatever precision and
 * base type (8/16/32-bit, half, linear or perceptual, RGB or grayscale) the image has.
 */
#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-core.h"

static gboolean
check_size (gint      w,
            gint      h,
            gsize     bytes_per_px,
            GError  **error)
{
  if (w <= 0 || h <= 0 || (gsize) w > G_MAXSIZE / bytes_per_px / (gsize) h)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0, _("Bad image size %d×%d"), w, h);
      return FALSE;
    }
  return TRUE;
}

/* R'G'B' u8 (HWC) of the drawable under box (image coordinates; must lie inside the
 * drawable).  Alpha is dropped: the model sees colours only. */
guint8 *
sd35_pixels_read_rgb (GimpDrawable   *drawable,
                      const Sd35Box  *box,
                      GError        **error)
{
  GeglBuffer *buffer;
  guint8     *rgb;
  gint        off_x = 0, off_y = 0;

  if (! check_size (box->width, box->height, 3, error))
    return NULL;
  rgb = g_try_malloc ((gsize) box->width * box->height * 3);
  if (rgb == NULL)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0,
                   _("Out of memory reading %d×%d pixels"),
                   box->width, box->height);
      return NULL;
    }
  gimp_drawable_get_offsets (drawable, &off_x, &off_y);
  buffer = gimp_drawable_get_buffer (drawable);
  gegl_buffer_get (buffer,
                   GEGL_RECTANGLE (box->x - off_x, box->y - off_y, box->width, box->height),
                   1.0, babl_format_with_space ("R'G'B' u8", gegl_buffer_get_format (buffer)),
                   rgb, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_CLAMP);
  g_object_unref (buffer);
  return rgb;
}

static inline float
sample_u8 (const guint8 *s, gsize i)
{
  return s[i];
}

/* Bilinear resize of an HWC image (u8 or float), pixel centres aligned (the convention of
 * GEGL's and PIL's bilinear).  Only used when the selection's size is not the generated
 * size, e.g. not a multiple of 16.  Returns a new buffer of the same type. */
gpointer
sd35_pixels_resize (gconstpointer src,
                    gint          src_w,
                    gint          src_h,
                    gint          channels,
                    gboolean      is_float,
                    gint          dst_w,
                    gint          dst_h)
{
  gsize    elem = is_float ? sizeof (gfloat) : 1;
  gpointer dst;

  if (dst_w <= 0 || dst_h <= 0 || src_w <= 0 || src_h <= 0 ||
      (gsize) dst_w > G_MAXSIZE / elem / (gsize) channels / (gsize) dst_h)
    return NULL;
  dst = g_try_malloc ((gsize) dst_w * dst_h * channels * elem);
  if (dst == NULL)
    return NULL;

  for (gint y = 0; y < dst_h; y++)
    {
      double fy = (y + 0.5) * src_h / dst_h - 0.5;
      gint   y0 = (gint) floor (fy);
      double wy = fy - y0;
      gint   ya = CLAMP (y0, 0, src_h - 1), yb = CLAMP (y0 + 1, 0, src_h - 1);

      for (gint x = 0; x < dst_w; x++)
        {
          double fx = (x + 0.5) * src_w / dst_w - 0.5;
          gint   x0 = (gint) floor (fx);
          double wx = fx - x0;
          gint   xa = CLAMP (x0, 0, src_w - 1), xb = CLAMP (x0 + 1, 0, src_w - 1);
          gsize  o = ((gsize) y * dst_w + x) * channels;

          for (gint c = 0; c < channels; c++)
            {
              gsize  i00 = ((gsize) ya * src_w + xa) * channels + c;
              gsize  i01 = ((gsize) ya * src_w + xb) * channels + c;
              gsize  i10 = ((gsize) yb * src_w + xa) * channels + c;
              gsize  i11 = ((gsize) yb * src_w + xb) * channels + c;
              double v;

              if (is_float)
                {
                  const gfloat *s = src;

                  v = (1 - wy) * ((1 - wx) * s[i00] + wx * s[i01]) +
                      wy * ((1 - wx) * s[i10] + wx * s[i11]);
                  ((gfloat *) dst)[o + c] = (gfloat) v;
                }
              else
                {
                  const guint8 *s = src;

                  v = (1 - wy) * ((1 - wx) * sample_u8 (s, i00) + wx * sample_u8 (s, i01)) +
                      wy * ((1 - wx) * sample_u8 (s, i10) + wx * sample_u8 (s, i11));
                  ((guint8 *) dst)[o + c] = (guint8) CLAMP (lround (v), 0, 255);
                }
            }
        }
    }
  return dst;
}

/* The engine's picture as R'G'B'A float HWC in [0, 1]: the VAE output (x + 1) / 2 clamped,
 * which keeps more than 8 bits for 16/32-bit images; the u8 result when there is none. */
gfloat *
sd35_pixels_result_rgba (const struct sd35_result  *result,
                         GError                   **error)
{
  gint    w = result->width, h = result->height;
  gsize   n, plane;
  gfloat *rgba;

  if (! check_size (w, h, 4 * sizeof (gfloat), error))
    return NULL;
  n = (gsize) w * h;
  plane = n;
  rgba = g_try_malloc (n * 4 * sizeof (gfloat));
  if (rgba == NULL)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0, _("Out of memory for a %d×%d result"),
                   w, h);
      return NULL;
    }
  for (gsize i = 0; i < n; i++)
    {
      for (gint c = 0; c < 3; c++)
        {
          float v;

          if (result->image_float != NULL)
            v = (result->image_float[c * plane + i] + 1.0f) * 0.5f;  /* [3, H, W] */
          else
            v = result->rgb[i * 3 + c] / 255.0f;
          rgba[i * 4 + c] = CLAMP (v, 0.0f, 1.0f);
        }
      rgba[i * 4 + 3] = 1.0f;
    }
  return rgba;
}

/* A new layer over box (image coordinates) holding rgba (src_w × src_h, scaled to the box
 * when the sizes differ), inserted above the selected layer.  Call inside an undo group. */
GimpLayer *
sd35_pixels_insert_layer (GimpImage     *image,
                          const gchar   *name,
                          const gfloat  *rgba,
                          gint           src_w,
                          gint           src_h,
                          const Sd35Box *box,
                          GError       **error)
{
  GimpLayer     *layer;
  GimpImageType  type;
  GeglBuffer    *buffer;
  gfloat        *scaled = NULL;

  if (src_w != box->width || src_h != box->height)
    {
      scaled = sd35_pixels_resize (rgba, src_w, src_h, 4, TRUE, box->width, box->height);
      if (scaled == NULL)
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("Could not scale %d×%d to %d×%d"),
                       src_w, src_h, box->width, box->height);
          return NULL;
        }
      rgba = scaled;
    }

  type = gimp_image_get_base_type (image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  layer = gimp_layer_new (image, name, box->width, box->height, type, 100.0,
                          gimp_image_get_default_new_layer_mode (image));
  if (layer == NULL || ! gimp_image_insert_layer (image, layer, NULL, -1))
    {
      g_free (scaled);
      g_set_error (error, SD35_PLUGIN_ERROR, 0,
                   _("Could not add a %d×%d layer to the image"),
                   box->width, box->height);
      return NULL;
    }
  gimp_layer_set_offsets (layer, box->x, box->y);

  buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (layer));
  gegl_buffer_set (buffer, GEGL_RECTANGLE (0, 0, box->width, box->height), 0,
                   babl_format_with_space ("R'G'B'A float", gegl_buffer_get_format (buffer)),
                   rgba, GEGL_AUTO_ROWSTRIDE);
  g_object_unref (buffer);  /* flushes the tiles to GIMP */
  gimp_drawable_update (GIMP_DRAWABLE (layer), 0, 0, box->width, box->height);
  g_free (scaled);
  return layer;
}
