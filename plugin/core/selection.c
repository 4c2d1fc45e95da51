/* selection.c — where a call works: the selection's bounding box (or the whole image), its
 * intersection with a drawable, and the selection's values as a soft mask. */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-core.h"

/* The selection's bounding box in image coordinates; without a selection the whole image
 * and FALSE. */
gboolean
sd35_selection_image_box (GimpImage *image,
                          Sd35Box   *box)
{
  gboolean non_empty = FALSE;
  gint     x1, y1, x2, y2;

  if (gimp_selection_bounds (image, &non_empty, &x1, &y1, &x2, &y2) && non_empty &&
      x2 > x1 && y2 > y1)
    {
      box->x = x1;
      box->y = y1;
      box->width = x2 - x1;
      box->height = y2 - y1;
      return TRUE;
    }
  box->x = 0;
  box->y = 0;
  box->width = gimp_image_get_width (image);
  box->height = gimp_image_get_height (image);
  return FALSE;
}

/* The part of the drawable under the selection (or all of it), in image coordinates.
 * FALSE when the selection misses the drawable. */
gboolean
sd35_selection_drawable_box (GimpDrawable *drawable,
                             Sd35Box      *box)
{
  gint x, y, w, h, off_x = 0, off_y = 0;

  if (! gimp_drawable_mask_intersect (drawable, &x, &y, &w, &h) || w <= 0 || h <= 0)
    return FALSE;
  gimp_drawable_get_offsets (drawable, &off_x, &off_y);
  box->x = x + off_x;
  box->y = y + off_y;
  box->width = w;
  box->height = h;
  return TRUE;
}

/* The selection's values under box (image coordinates), box->width × box->height floats in
 * [0, 1], 1 = selected.  Soft edges are kept as they are: the channel's own curve is asked
 * for (Y or Y'), so a feathered edge reaches the engine unchanged. */
gfloat *
sd35_selection_read_mask (GimpImage      *image,
                          const Sd35Box  *box,
                          GError        **error)
{
  GimpSelection *selection = gimp_image_get_selection (image);
  GeglBuffer    *buffer;
  const Babl    *format;
  const gchar   *encoding;
  gfloat        *mask;

  if (box->width <= 0 || box->height <= 0 ||
      (gsize) box->width > G_MAXSIZE / sizeof (gfloat) / (gsize) box->height)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0, _("Bad mask size %d×%d"), box->width,
                   box->height);
      return NULL;
    }
  mask = g_try_malloc ((gsize) box->width * box->height * sizeof (gfloat));
  if (mask == NULL)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0, _("Out of memory for a %d×%d mask"),
                   box->width, box->height);
      return NULL;
    }
  buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (selection));
  encoding = babl_format_get_encoding (gegl_buffer_get_format (buffer));
  format = babl_format (g_str_has_prefix (encoding, "Y'") ? "Y' float" : "Y float");
  gegl_buffer_get (buffer, GEGL_RECTANGLE (box->x, box->y, box->width, box->height), 1.0,
                   format, mask, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  for (gsize i = 0; i < (gsize) box->width * box->height; i++)
    mask[i] = CLAMP (mask[i], 0.0f, 1.0f);
  return mask;
}
