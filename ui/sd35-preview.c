/* sd35-preview.c — the preview area of the dialog.
 *
 * The engine's step preview is latent-sized (width/8 × height/8, e.g. 16×16 for a 128×128
 * image), so it is drawn scaled up with a linear filter (trilinear when shrinking), centred
 * and letterboxed in whatever space the dialog gives, instead of the nearest-neighbour blocks
 * a GtkPicture would show at that magnification.  Before the first step it shows the frame
 * of the image to come, in its aspect ratio (sd35_preview_set_aspect), so that resizing the
 * dialog or changing the size shows what shape the result will have.
 */
#include <math.h>
#include <string.h>

#include "sd35-preview.h"

struct _Sd35Preview
{
  GtkWidget   parent_instance;
  GdkTexture *texture;
  gdouble     spread;
  gint        aspect_w, aspect_h;  /* the image to come; 0 = unknown */
};

G_DEFINE_FINAL_TYPE (Sd35Preview, sd35_preview, GTK_TYPE_WIDGET)

#define PREVIEW_NATURAL 256  /* px: the default dialog shows a 256-px preview */
#define PREVIEW_MINIMUM 96   /* px: still readable on a 1366×768 screen with everything open */

static void
sd35_preview_snapshot (GtkWidget   *widget,
                       GtkSnapshot *snapshot)
{
  Sd35Preview     *self = SD35_PREVIEW (widget);
  gint             w = gtk_widget_get_width (widget);
  gint             h = gtk_widget_get_height (widget);
  gint             tw, th;
  gdouble          scale;
  graphene_rect_t  rect;

  if (w <= 0 || h <= 0)
    return;
  if (self->texture == NULL)
    {
      GdkRGBA fg;

      if (self->aspect_w <= 0 || self->aspect_h <= 0)
        return;
      /* the frame of the image to come: a faint area of its aspect ratio */
      scale = MIN ((gdouble) w / self->aspect_w, (gdouble) h / self->aspect_h);
      rect = GRAPHENE_RECT_INIT ((w - self->aspect_w * scale) / 2.0,
                                 (h - self->aspect_h * scale) / 2.0,
                                 self->aspect_w * scale, self->aspect_h * scale);
      gtk_widget_get_color (widget, &fg);
      fg.alpha = 0.08f;
      gtk_snapshot_append_color (snapshot, &fg, &rect);
      return;
    }
  tw = gdk_texture_get_width (self->texture);
  th = gdk_texture_get_height (self->texture);
  scale = MIN ((gdouble) w / tw, (gdouble) h / th);
  rect = GRAPHENE_RECT_INIT ((w - tw * scale) / 2.0, (h - th * scale) / 2.0,
                             tw * scale, th * scale);
  gtk_snapshot_append_scaled_texture (snapshot, self->texture,
                                      scale >= 1.0 ? GSK_SCALING_FILTER_LINEAR :
                                                     GSK_SCALING_FILTER_TRILINEAR,
                                      &rect);
}

static void
sd35_preview_measure (GtkWidget      *widget,
                      GtkOrientation  orientation,
                      int             for_size,
                      int            *minimum,
                      int            *natural,
                      int            *minimum_baseline,
                      int            *natural_baseline)
{
  *minimum = PREVIEW_MINIMUM;
  *natural = PREVIEW_NATURAL;
}

static void
sd35_preview_dispose (GObject *object)
{
  g_clear_object (&SD35_PREVIEW (object)->texture);
  G_OBJECT_CLASS (sd35_preview_parent_class)->dispose (object);
}

static void
sd35_preview_class_init (Sd35PreviewClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = sd35_preview_dispose;
  widget_class->snapshot = sd35_preview_snapshot;
  widget_class->measure = sd35_preview_measure;
  gtk_widget_class_set_css_name (widget_class, "sd35-preview");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
sd35_preview_init (Sd35Preview *self)
{
  gtk_widget_set_hexpand (GTK_WIDGET (self), TRUE);
  gtk_widget_set_vexpand (GTK_WIDGET (self), TRUE);
}

GtkWidget *
sd35_preview_new (void)
{
  return g_object_new (SD35_TYPE_PREVIEW, NULL);
}

static gdouble
rgb_spread (const guint8 *rgb,
            gsize         n_px)
{
  gdouble sum[3] = { 0 }, sq[3] = { 0 }, spread = 0.0;

  for (gsize i = 0; i < n_px; i++)
    for (gint c = 0; c < 3; c++)
      {
        sum[c] += rgb[3 * i + c];
        sq[c] += (gdouble) rgb[3 * i + c] * rgb[3 * i + c];
      }
  for (gint c = 0; c < 3; c++)
    {
      gdouble mean = sum[c] / n_px;

      spread += sqrt (MAX (sq[c] / n_px - mean * mean, 0.0)) / 3.0;
    }
  return spread;
}

void
sd35_preview_set_rgb (Sd35Preview  *preview,
                      const guint8 *rgb,
                      gint          width,
                      gint          height)
{
  GBytes *bytes;

  g_return_if_fail (SD35_IS_PREVIEW (preview));
  g_return_if_fail (rgb != NULL && width > 0 && height > 0);

  bytes = g_bytes_new (rgb, (gsize) width * height * 3);
  g_clear_object (&preview->texture);
  preview->texture = gdk_memory_texture_new (width, height, GDK_MEMORY_R8G8B8, bytes,
                                             (gsize) width * 3);
  g_bytes_unref (bytes);
  preview->spread = rgb_spread (rgb, (gsize) width * height);
  gtk_widget_queue_draw (GTK_WIDGET (preview));
}

void
sd35_preview_clear (Sd35Preview *preview)
{
  g_return_if_fail (SD35_IS_PREVIEW (preview));

  g_clear_object (&preview->texture);
  preview->spread = 0.0;
  gtk_widget_queue_draw (GTK_WIDGET (preview));
}

void
sd35_preview_set_aspect (Sd35Preview *preview,
                         gint         width,
                         gint         height)
{
  g_return_if_fail (SD35_IS_PREVIEW (preview));

  preview->aspect_w = MAX (width, 0);
  preview->aspect_h = MAX (height, 0);
  gtk_widget_queue_draw (GTK_WIDGET (preview));
}

gdouble
sd35_preview_spread (Sd35Preview *preview)
{
  g_return_val_if_fail (SD35_IS_PREVIEW (preview), 0.0);

  return preview->spread;
}
