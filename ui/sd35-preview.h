/* sd35-preview.h — the dialog's preview area: the latest x0 estimate (or result), scaled up
 * smoothly to the space it has, aspect kept. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define SD35_TYPE_PREVIEW (sd35_preview_get_type ())
G_DECLARE_FINAL_TYPE (Sd35Preview, sd35_preview, SD35, PREVIEW, GtkWidget)

GtkWidget *sd35_preview_new     (void);
/* Copies an 8-bit RGB image (HWC, rowstride width·3). */
void       sd35_preview_set_rgb (Sd35Preview  *preview,
                                 const guint8 *rgb,
                                 gint          width,
                                 gint          height);
void       sd35_preview_clear   (Sd35Preview  *preview);
/* The size of the image to come: before the first step, its frame is shown in that aspect. */
void       sd35_preview_set_aspect (Sd35Preview *preview,
                                    gint         width,
                                    gint         height);
/* Mean standard deviation of the shown pixels over R, G, B (0 = blank or none); for the
 * dialog's test dump. */
gdouble    sd35_preview_spread  (Sd35Preview  *preview);

G_END_DECLS
