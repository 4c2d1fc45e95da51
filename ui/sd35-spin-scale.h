/* sd35-spin-scale.h — numeric fields that a mouse wheel cannot change by accident, and a
 * slider with an entry in one row for ranges (in the spirit of GIMP's GimpSpinScale). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* The wheel over `widget` (a spin button, a slider) scrolls the form around it instead of
 * changing the value: a form is scrolled with the wheel, and a value that changes under the
 * pointer on the way is a value the user never chose.  Typing, the arrow keys, the +/−
 * buttons and dragging still change it. */
void       sd35_wheel_safe       (GtkWidget     *widget);

/* A slider over [soft_lower, soft_upper] and a spin button over all of adj, side by side,
 * both showing adj's value (the slider at its end when the value lies beyond).  Both are
 * wheel-safe.  *spin_out (may be NULL) receives the spin button, for a mnemonic or "Auto". */
GtkWidget *sd35_spin_scale_new   (GtkAdjustment *adj,
                                  gdouble        soft_lower,
                                  gdouble        soft_upper,
                                  guint          digits,
                                  GtkWidget    **spin_out);

G_END_DECLS
