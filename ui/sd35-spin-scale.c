/* sd35-spin-scale.c — wheel-safe numeric fields and the slider + entry row.
 *
 * GTK 4's GtkSpinButton and GtkRange change their value on every wheel step under the
 * pointer.  In a scrolled form that turns "scroll down to Advanced" into "guidance 4.5 →
 * 1.5".  A scroll controller in the CAPTURE phase on the field sees the wheel before the
 * field's own (bubble-phase) controller, scrolls the enclosing GtkScrolledWindow the way
 * GtkScrolledWindow itself does (pow (page, 2/3) per wheel click, pixels for touchpads) and
 * stops the event there.
 */
#include <math.h>

#include "sd35-spin-scale.h"

static gboolean
wheel_scrolls_form (GtkEventControllerScroll *controller,
                    gdouble                   dx,
                    gdouble                   dy,
                    gpointer                  data)
{
  GtkWidget     *field = gtk_event_controller_get_widget (GTK_EVENT_CONTROLLER (controller));
  GtkWidget     *scrolled = gtk_widget_get_ancestor (field, GTK_TYPE_SCROLLED_WINDOW);
  GtkAdjustment *adj;
  gdouble        step;

  if (scrolled == NULL)
    return GDK_EVENT_STOP;  /* nothing to scroll: still never change the value */
  adj = gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (scrolled));
  if (gtk_event_controller_scroll_get_unit (controller) == GDK_SCROLL_UNIT_SURFACE)
    step = 1.0;
  else
    step = pow (gtk_adjustment_get_page_size (adj), 2.0 / 3.0);
  gtk_adjustment_set_value (adj, gtk_adjustment_get_value (adj) + dy * step);
  return GDK_EVENT_STOP;
}

void
sd35_wheel_safe (GtkWidget *widget)
{
  GtkEventController *controller =
    gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);

  gtk_event_controller_set_propagation_phase (controller, GTK_PHASE_CAPTURE);
  gtk_event_controller_set_name (controller, "sd35-wheel-safe");
  g_signal_connect (controller, "scroll", G_CALLBACK (wheel_scrolls_form), NULL);
  gtk_widget_add_controller (widget, controller);
}

/* ---- slider + entry ---- */

typedef struct
{
  GtkAdjustment *value;   /* the field's: the whole range */
  GtkAdjustment *slider;  /* the slider's: the soft range */
  gboolean       syncing;
} SpinScale;

static void
value_to_slider (GtkAdjustment *adj,
                 SpinScale     *s)
{
  if (s->syncing)
    return;
  s->syncing = TRUE;
  gtk_adjustment_set_value (s->slider, gtk_adjustment_get_value (adj));  /* clamps */
  s->syncing = FALSE;
}

static void
slider_to_value (GtkAdjustment *adj,
                 SpinScale     *s)
{
  if (s->syncing)
    return;
  s->syncing = TRUE;
  gtk_adjustment_set_value (s->value, gtk_adjustment_get_value (adj));
  s->syncing = FALSE;
}

static void
spin_scale_free (gpointer data)
{
  SpinScale *s = data;

  g_signal_handlers_disconnect_by_data (s->value, s);
  g_object_unref (s->value);
  g_free (s);
}

GtkWidget *
sd35_spin_scale_new (GtkAdjustment *adj,
                     gdouble        soft_lower,
                     gdouble        soft_upper,
                     guint          digits,
                     GtkWidget    **spin_out)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  SpinScale *s = g_new0 (SpinScale, 1);
  gdouble    step = gtk_adjustment_get_step_increment (adj);
  GtkWidget *scale, *spin;

  s->value = g_object_ref (adj);
  s->slider = gtk_adjustment_new (CLAMP (gtk_adjustment_get_value (adj), soft_lower,
                                         soft_upper),
                                  soft_lower, soft_upper, step,
                                  gtk_adjustment_get_page_increment (adj), 0);
  scale = gtk_scale_new (GTK_ORIENTATION_HORIZONTAL, s->slider);
  gtk_scale_set_draw_value (GTK_SCALE (scale), FALSE);
  gtk_scale_set_digits (GTK_SCALE (scale), (gint) digits);
  gtk_range_set_round_digits (GTK_RANGE (scale), (gint) digits);
  gtk_widget_set_hexpand (scale, TRUE);
  gtk_widget_set_focusable (scale, FALSE);  /* the entry beside it takes the keyboard */
  spin = gtk_spin_button_new (adj, step, digits);
  gtk_editable_set_width_chars (GTK_EDITABLE (spin), 5);
  gtk_spin_button_set_numeric (GTK_SPIN_BUTTON (spin), FALSE);
  sd35_wheel_safe (scale);
  sd35_wheel_safe (spin);
  g_signal_connect (adj, "value-changed", G_CALLBACK (value_to_slider), s);
  g_signal_connect (s->slider, "value-changed", G_CALLBACK (slider_to_value), s);
  g_object_set_data_full (G_OBJECT (box), "sd35-spin-scale", s, spin_scale_free);
  gtk_widget_set_hexpand (box, TRUE);
  gtk_box_append (GTK_BOX (box), scale);
  gtk_box_append (GTK_BOX (box), spin);
  if (spin_out != NULL)
    *spin_out = spin;
  return box;
}
