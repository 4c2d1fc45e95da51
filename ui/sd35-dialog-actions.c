/* sd35-dialog-actions.c — what the dialog does: Generate, Cancel, Close, the reports of the
 * running job (preview, "step n / N", progress, time left), inline errors, and the event
 * dump the tests read ($SD35_DIALOG_DUMP).
 *
 * One job at a time.  Generate reads the config and the image, starts the worker and keeps
 * the window responsive; when the job is done its layers go in as one undo step and the
 * window stays open for the next try.  Cancel stops the engine within one step and inserts
 * nothing.  Close (or the window's close button) during a run cancels first and closes when
 * the worker has let go of the engine.  Escape cancels a run, or closes.
 */
#include <stdarg.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"

void
sd35_dialog_dump (Sd35Dialog  *self,
                  const gchar *format,
                  ...)
{
  va_list args;

  if (self->dump == NULL)
    return;
  va_start (args, format);
  vfprintf (self->dump, format, args);
  va_end (args);
  fputc ('\n', self->dump);
  fflush (self->dump);
}

static void
dump_widget_texts (Sd35Dialog *self,
                   GtkWidget  *widget)
{
  if (GTK_IS_LABEL (widget) && gtk_widget_get_visible (widget) &&
      *gtk_label_get_text (GTK_LABEL (widget)) != '\0')
    sd35_dialog_dump (self, "label %s", gtk_label_get_text (GTK_LABEL (widget)));
  else if (GTK_IS_EXPANDER (widget))
    sd35_dialog_dump (self, "label %s", gtk_expander_get_label (GTK_EXPANDER (widget)));
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c != NULL;
       c = gtk_widget_get_next_sibling (c))
    dump_widget_texts (self, c);
}

void
sd35_dialog_dump_labels (Sd35Dialog *self)
{
  if (self->dump == NULL)
    return;
  sd35_dialog_dump (self, "title %s", gtk_window_get_title (GTK_WINDOW (self)));
  dump_widget_texts (self, GTK_WIDGET (self));
}

/* Where the preview is drawn inside the X window, for the screenshot check. */
static void
dump_preview_bounds (Sd35Dialog *self)
{
  graphene_rect_t r;
  double          sx = 0, sy = 0;

  if (self->dump == NULL ||
      ! gtk_widget_compute_bounds (self->preview, GTK_WIDGET (self), &r))
    return;
  gtk_native_get_surface_transform (GTK_NATIVE (self), &sx, &sy);
  sd35_dialog_dump (self, "preview-bounds %d %d %d %d", (gint) (r.origin.x + sx),
                    (gint) (r.origin.y + sy), (gint) r.size.width, (gint) r.size.height);
}

void
sd35_dialog_show_error (Sd35Dialog  *self,
                        const gchar *message)
{
  gtk_label_set_text (GTK_LABEL (self->error_label), message);
  gtk_revealer_set_reveal_child (GTK_REVEALER (self->error_revealer), TRUE);
  sd35_dialog_dump (self, "event error %s", message);
}

static void
hide_error (Sd35Dialog *self)
{
  gtk_revealer_set_reveal_child (GTK_REVEALER (self->error_revealer), FALSE);
}

static gchar *
time_left (gdouble seconds)
{
  if (seconds < 1.0)
    return g_strdup (_("Almost done"));
  if (seconds < 90.0)
    return g_strdup_printf (_("About %d s left"), (gint) (seconds + 0.5));
  return g_strdup_printf (_("About %d min left"), (gint) (seconds / 60.0 + 0.5));
}

/* ---- responsiveness: how long the main loop went without a turn while a job ran ---- */

#define TICK_MS 20

static gboolean
tick_cb (gpointer data)
{
  Sd35Dialog *self = data;
  gint64      now = g_get_monotonic_time ();

  gint64      stall = now - self->last_tick_us - TICK_MS * 1000;

  if (stall > 100 * 1000)
    sd35_dialog_dump (self, "stall %d ms", (gint) (stall / 1000));
  self->max_stall_us = MAX (self->max_stall_us, stall);
  self->last_tick_us = now;
  return G_SOURCE_CONTINUE;
}

static void
tick_start (Sd35Dialog *self)
{
  self->last_tick_us = g_get_monotonic_time ();
  self->max_stall_us = 0;
  if (self->dump != NULL && self->tick_id == 0)
    self->tick_id = g_timeout_add (TICK_MS, tick_cb, self);
}

static void
tick_stop (Sd35Dialog *self)
{
  g_clear_handle_id (&self->tick_id, g_source_remove);
}

/* ---- the job's reports, on the main thread ---- */

static void
report_step (Sd35Dialog          *self,
             const Sd35JobReport *r)
{
  gint   total = r->n_steps * r->n_images;
  gint   done = r->image * r->n_steps + r->step;
  gchar *text;

  if (r->n_images > 1)
    text = g_strdup_printf (_("Step %d / %d (image %d of %d)"), r->step, r->n_steps,
                            r->image + 1, r->n_images);
  else
    text = g_strdup_printf (_("Step %d / %d"), r->step, r->n_steps);
  gtk_label_set_text (GTK_LABEL (self->step_label), text);
  g_free (text);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress),
                                 CLAMP ((gdouble) done / MAX (total, 1), 0.0, 1.0));
  /* the clock starts at the first step: time per step so far × steps to go */
  if (done > 1)
    {
      text = time_left (r->elapsed_s / (done - 1) * (total - done));
      gtk_label_set_text (GTK_LABEL (self->eta_label), text);
      g_free (text);
    }
  if (r->rgb != NULL)
    {
      sd35_preview_set_rgb (SD35_PREVIEW (self->preview), r->rgb, r->rgb_width,
                            r->rgb_height);
      if (r->step == 1 && r->image == 0)
        dump_preview_bounds (self);
    }
  sd35_dialog_dump (self, "step %d/%d image %d/%d preview %s spread %.1f", r->step,
                    r->n_steps, r->image + 1, r->n_images, r->rgb != NULL ? "yes" : "no",
                    sd35_preview_spread (SD35_PREVIEW (self->preview)));
}

static void finish_close (Sd35Dialog *self);

static void
report_done (Sd35Dialog    *self,
             Sd35DialogJob *job)
{
  GError     *error = NULL;
  GimpLayer **layers;
  gchar      *text;

  self->job = NULL;  /* the caller holds a reference until we return */
  tick_stop (self);
  sd35_dialog_dump (self, "event done max-stall-ms %d",
                    (gint) (self->max_stall_us / 1000));
  sd35_dialog_set_running (self, FALSE);
  gtk_label_set_text (GTK_LABEL (self->eta_label), "");

  if (sd35_dialog_job_cancelled (job))
    {
      gtk_label_set_text (GTK_LABEL (self->step_label), _("Cancelled — nothing was added"));
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0.0);
      sd35_dialog_dump (self, "event cancelled");
    }
  else if (! sd35_dialog_job_succeeded (job, &error) ||
           (layers = sd35_dialog_job_insert (job, &error)) == NULL)
    {
      gtk_label_set_text (GTK_LABEL (self->step_label), _("Nothing was added"));
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0.0);
      sd35_dialog_show_error (self, error->message);
      g_clear_error (&error);
    }
  else
    {
      const guint8 *rgb;
      gint          n = 0, w, h;

      while (layers[n] != NULL)
        n++;
      /* the finished image replaces the last (latent-sized) estimate */
      if ((rgb = sd35_dialog_job_result_rgb (job, &w, &h)) != NULL)
        sd35_preview_set_rgb (SD35_PREVIEW (self->preview), rgb, w, h);
      g_free (self->last_layers);
      self->last_layers = layers;
      self->last_seed = sd35_dialog_job_seed (job);
      self->n_inserted += n;
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 1.0);
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Added %d layer (seed %u)",
                                           "Added %d layers (seeds from %u)", n),
                              n, self->last_seed);
      gtk_label_set_text (GTK_LABEL (self->step_label), text);
      g_free (text);
      if (sd35_dialog_job_variant (job) != NULL)
        {
          text = g_strdup_printf (_("Detected: %s"), sd35_dialog_job_variant (job));
          gtk_label_set_text (GTK_LABEL (self->variant_label), text);
          g_free (text);
        }
      sd35_dialog_dump (self, "event inserted %d size %dx%d seed %u total %d", n,
                        sd35_dialog_job_width (job), sd35_dialog_job_height (job),
                        self->last_seed, self->n_inserted);
    }
  if (self->close_pending)
    finish_close (self);
}

static void
on_report (GObject             *owner,
           Sd35DialogJob       *job,
           const Sd35JobReport *report)
{
  Sd35Dialog *self = SD35_DIALOG (owner);

  if (job != self->job)
    return;  /* from a job this dialog has let go of */
  switch (report->kind)
    {
    case SD35_JOB_STAGE:
      gtk_label_set_text (GTK_LABEL (self->step_label), report->text);
      sd35_dialog_dump (self, "stage %s", report->text);
      break;
    case SD35_JOB_STEP:
      report_step (self, report);
      break;
    case SD35_JOB_DONE:
      sd35_dialog_job_ref (job);
      report_done (self, job);
      sd35_dialog_job_unref (job);
      break;
    }
}

/* ---- actions ---- */

void
sd35_dialog_generate (Sd35Dialog *self)
{
  gboolean       locked;
  Sd35DialogJob *job;
  GError        *error = NULL;

  if (self->job != NULL)
    return;
  hide_error (self);

  /* an unlocked seed is a new one every try, shown before the try so it can be kept */
  locked = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->seed_lock));
  if (! locked)
    sd35_dialog_new_random_seed (self);
  g_object_set (self->config, "seed", (gint) gtk_adjustment_get_value (self->seed_adj), NULL);
  job = sd35_dialog_job_new (self->config, self->mode, self->image, self->drawables, &error);
  if (! locked)
    g_object_set (self->config, "seed", -1, NULL);
  if (job == NULL)
    {
      sd35_dialog_show_error (self, error->message);
      g_clear_error (&error);
      return;
    }
  if (! sd35_dialog_job_start (job, self->engine, G_OBJECT (self), on_report, &error))
    {
      sd35_dialog_show_error (self, error->message);
      g_clear_error (&error);
      sd35_dialog_job_unref (job);
      return;
    }
  self->job = job;
  tick_start (self);
  sd35_dialog_set_running (self, TRUE);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0.0);
  gtk_label_set_text (GTK_LABEL (self->step_label), _("Starting…"));
  gtk_label_set_text (GTK_LABEL (self->eta_label), "");
  sd35_dialog_dump (self, "event started %dx%d seed %u", sd35_dialog_job_width (job),
                    sd35_dialog_job_height (job), sd35_dialog_job_seed (job));
}

void
sd35_dialog_cancel (Sd35Dialog *self)
{
  if (self->job == NULL)
    return;
  sd35_dialog_job_cancel (self->job);
  gtk_widget_set_sensitive (self->cancel_button, FALSE);
  gtk_label_set_text (GTK_LABEL (self->step_label), _("Stopping…"));
  sd35_dialog_dump (self, "event cancel-requested");
}

static void
finish_close (Sd35Dialog *self)
{
  sd35_dialog_dump (self, "event closed inserted %d", self->n_inserted);
  gtk_widget_set_visible (GTK_WIDGET (self), FALSE);
  if (self->loop != NULL)
    g_main_loop_quit (self->loop);
}

void
sd35_dialog_request_close (Sd35Dialog *self)
{
  if (self->job != NULL)
    {
      self->close_pending = TRUE;  /* the engine lets go within one step */
      sd35_dialog_cancel (self);
      return;
    }
  finish_close (self);
}

static void
generate_activated (GtkWidget   *widget,
                    const gchar *action,
                    GVariant    *parameter)
{
  sd35_dialog_generate (SD35_DIALOG (widget));
}

static void
cancel_activated (GtkWidget   *widget,
                  const gchar *action,
                  GVariant    *parameter)
{
  sd35_dialog_cancel (SD35_DIALOG (widget));
}

static void
close_activated (GtkWidget   *widget,
                 const gchar *action,
                 GVariant    *parameter)
{
  sd35_dialog_request_close (SD35_DIALOG (widget));
}

static void
escape_activated (GtkWidget   *widget,
                  const gchar *action,
                  GVariant    *parameter)
{
  Sd35Dialog *self = SD35_DIALOG (widget);

  if (self->job != NULL)
    sd35_dialog_cancel (self);
  else
    sd35_dialog_request_close (self);
}

void
sd35_dialog_install_actions (GtkWidgetClass *widget_class)
{
  gtk_widget_class_install_action (widget_class, "sd35.generate", NULL, generate_activated);
  gtk_widget_class_install_action (widget_class, "sd35.cancel", NULL, cancel_activated);
  gtk_widget_class_install_action (widget_class, "sd35.close", NULL, close_activated);
  gtk_widget_class_install_action (widget_class, "sd35.escape", NULL, escape_activated);
  /* Escape bubbles: an open drop-down list or file dialog takes it first */
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "sd35.escape", NULL);
}

/* Ctrl+Return is caught before the prompt's text view, which would insert a new line. */
void
sd35_dialog_add_shortcuts (Sd35Dialog *self)
{
  GtkEventController *controller = gtk_shortcut_controller_new ();
  const guint         keys[] = { GDK_KEY_Return, GDK_KEY_KP_Enter, GDK_KEY_ISO_Enter };

  gtk_event_controller_set_propagation_phase (controller, GTK_PHASE_CAPTURE);
  gtk_shortcut_controller_set_scope (GTK_SHORTCUT_CONTROLLER (controller),
                                     GTK_SHORTCUT_SCOPE_LOCAL);
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    gtk_shortcut_controller_add_shortcut (
      GTK_SHORTCUT_CONTROLLER (controller),
      gtk_shortcut_new (gtk_keyval_trigger_new (keys[i], GDK_CONTROL_MASK),
                        gtk_named_action_new ("sd35.generate")));
  gtk_widget_add_controller (GTK_WIDGET (self), controller);
}
