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
#include <unistd.h>

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
  {
    gchar *prompt = NULL;

    g_object_get (self->config, "prompt", &prompt, NULL);
    sd35_dialog_dump (self, "prompt %s", prompt != NULL ? prompt : "");
    g_free (prompt);
  }
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
sd35_dialog_show_problem (Sd35Dialog  *self,
                          const gchar *message,
                          const gchar *detail)
{
  gboolean has_detail = detail != NULL && *detail != '\0';

  gtk_label_set_text (GTK_LABEL (self->error_label), message);
  gtk_label_set_text (GTK_LABEL (self->error_detail_label), has_detail ? detail : "");
  gtk_expander_set_expanded (GTK_EXPANDER (self->error_details), FALSE);
  gtk_widget_set_visible (self->error_details, has_detail);
  gtk_revealer_set_reveal_child (GTK_REVEALER (self->error_revealer), TRUE);
  sd35_dialog_dump (self, "event error %s", message);
  if (has_detail)
    sd35_dialog_dump (self, "event error-detail %s", detail);
}

void
sd35_dialog_show_error (Sd35Dialog  *self,
                        const gchar *message)
{
  sd35_dialog_show_problem (self, message, NULL);
}

/* What to do about an engine failure, in the user's language.  The engine's own message is
 * English and technical (paths, tensor names, $SD35_MODEL): it goes under Details. */
static const gchar *
advice_for (enum sd35_status status,
            gboolean         loading)
{
  switch (status)
    {
    case SD35_ERR_IO:
    case SD35_ERR_MISSING:
      return loading ?
        _("No complete Stable Diffusion 3.5 model was found. Choose the model file with "
          "“Browse…” next to Model; the text encoders must lie beside it.") :
        _("A file the model needs could not be read. Check that the model files are "
          "complete, then try again.");
    case SD35_ERR_FORMAT:
    case SD35_ERR_SHAPE:
      return _("This file is not a Stable Diffusion 3.5 model this plug-in can use. Choose "
               "another one with “Browse…”.");
    case SD35_ERR_ARG:
      return _("One of the settings cannot be used. Check the size, the steps and the "
               "strength.");
    case SD35_ERR_OOM:
      return _("There is not enough memory. Try a smaller size, turn off the T5 text encoder "
               "under Advanced, or close other programs.");
    case SD35_ERR_CUDA:
      return _("The graphics card could not be used. Choose the CPU under Advanced → "
               "Backend, or check the graphics driver.");
    case SD35_ERR_NAN:
      return _("The model produced no usable picture. Try another seed; if it happens "
               "again, the model file may be damaged.");
    default:
      return _("Something went wrong inside the plug-in. The details below help when you "
               "report it.");
    }
}

void
sd35_dialog_show_gerror (Sd35Dialog   *self,
                         const GError *error)
{
  const gchar *sep;
  gchar       *headline, *message;

  /* the plug-in's own messages (code 0) are whole translated sentences; an engine failure
   * is "headline: engine detail" with the sd35_status as code */
  if (error->domain != SD35_PLUGIN_ERROR || error->code <= SD35_OK ||
      error->code >= SD35_CANCELLED || (sep = strstr (error->message, ": ")) == NULL)
    {
      sd35_dialog_show_problem (self, error->message, NULL);
      return;
    }
  headline = g_strndup (error->message, sep - error->message);
  message = g_strdup_printf ("%s. %s", headline,
                             advice_for (error->code,
                                         g_strcmp0 (headline, _("Could not load the model")) == 0));
  sd35_dialog_show_problem (self, message, sep + 2);
  g_free (message);
  g_free (headline);
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
report_done (Sd35Dialog *self,
             Sd35Job    *job)
{
  GError     *error = NULL;
  GimpLayer **layers;
  gchar      *text;

  self->job = NULL;  /* the caller holds a reference until we return */
  tick_stop (self);
  sd35_dialog_dump (self, "event done max-stall-ms %d",
                    (gint) (self->max_stall_us / 1000));
  /* which engine ran it: the resident one of this process, loaded now or before */
  sd35_dialog_dump (self, "event engine %s loads %u pid %d load-s %.3f run-s %.3f",
                    sd35_job_loaded_model (job) ? "loaded" : "reused",
                    sd35_engine_holder_loads (self->engine), (int) getpid (),
                    sd35_job_load_seconds (job), sd35_job_run_seconds (job));
  sd35_dialog_set_running (self, FALSE);
  gtk_label_set_text (GTK_LABEL (self->eta_label), "");

  if (sd35_job_cancelled (job))
    {
      gtk_label_set_text (GTK_LABEL (self->step_label), _("Cancelled — nothing was added"));
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0.0);
      sd35_dialog_dump (self, "event cancelled");
    }
  else if (! sd35_job_succeeded (job, &error))
    {
      gtk_label_set_text (GTK_LABEL (self->step_label), _("Nothing was added"));
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0.0);
      sd35_dialog_show_gerror (self, error);
      g_clear_error (&error);
    }
  else
    {
      const guint8 *rgb;
      gint          n_images = sd35_dialog_results_n_images (job), w, h;
      gboolean      choose = n_images > 1 && ! sd35_dialog_results_add_all (self);

      /* the finished image replaces the last (latent-sized) estimate */
      if ((rgb = sd35_job_result_rgb (job, &w, &h)) != NULL)
        sd35_preview_set_rgb (SD35_PREVIEW (self->preview), rgb, w, h);
      self->last_seed = sd35_job_seed (job);
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 1.0);
      sd35_dialog_offer_seed (self, self->last_seed);
      if (sd35_job_variant (job) != NULL)
        {
          text = g_strdup_printf (_("Detected: %s"), sd35_job_variant (job));
          gtk_label_set_text (GTK_LABEL (self->variant_label), text);
          g_free (text);
        }
      if (choose)
        {
          /* a batch: the artist picks what becomes a layer */
          sd35_dialog_results_show (self, job, FALSE);
          text = g_strdup_printf (_("%d images (seeds from %u): choose the ones to add"),
                                  n_images, self->last_seed);
          gtk_label_set_text (GTK_LABEL (self->step_label), text);
          g_free (text);
        }
      else if ((layers = sd35_dialog_results_insert (self, job, NULL, &error)) == NULL)
        {
          gtk_label_set_text (GTK_LABEL (self->step_label), _("Nothing was added"));
          sd35_dialog_show_gerror (self, error);
          g_clear_error (&error);
        }
      else
        {
          gint n = 0;

          while (layers[n] != NULL)
            n++;
          text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Added %d layer (seed %u)",
                                               "Added %d layers (seeds from %u)", n),
                                  n, self->last_seed);
          gtk_label_set_text (GTK_LABEL (self->step_label), text);
          g_free (text);
          if (n_images > 1)
            sd35_dialog_results_show (self, job, TRUE);
        }
    }
  if (self->close_pending)
    finish_close (self);
}

/* The dialog's words for the engine's stages. */
static const gchar *
stage_text (const Sd35JobReport *report)
{
  switch (report->stage)
    {
    case SD35_STAGE_LOADING:  return _("Loading the model…");
    case SD35_STAGE_ENCODING: return _("Reading the prompt…");
    case SD35_STAGE_SAMPLING: return _("Painting…");
    case SD35_STAGE_DECODING: return _("Finishing the image…");
    default:                  return report->text;
    }
}

static void
on_report (Sd35Job             *job,
           const Sd35JobReport *report,
           gpointer             data)
{
  Sd35Dialog *self = SD35_DIALOG (data);

  if (job != self->job)
    return;  /* from a job this dialog has let go of */
  switch (report->kind)
    {
    case SD35_JOB_STAGE:
      gtk_label_set_text (GTK_LABEL (self->step_label), stage_text (report));
      sd35_dialog_dump (self, "stage %s", stage_text (report));
      break;
    case SD35_JOB_STEP:
      report_step (self, report);
      break;
    case SD35_JOB_DONE:
      sd35_job_ref (job);
      report_done (self, job);
      sd35_job_unref (job);
      break;
    }
}

/* ---- actions ---- */

/* Nothing but spaces in the prompt? */
static gboolean
prompt_is_empty (Sd35Dialog *self)
{
  gchar   *prompt = NULL;
  gboolean empty;

  g_object_get (self->config, "prompt", &prompt, NULL);
  empty = prompt == NULL || *g_strstrip (prompt) == '\0';
  g_free (prompt);
  return empty;
}

void
sd35_dialog_generate (Sd35Dialog *self)
{
  Sd35Job       *job;
  GError        *error = NULL;
  gdouble        guidance;
  gint           steps;

  if (self->job != NULL)
    return;
  hide_error (self);
  /* a number typed but not yet confirmed (Ctrl+Return straight from the field) counts */
  for (GtkWidget **w = (GtkWidget *[]) { self->steps_spin, self->guidance_spin,
                                         self->seed_spin, self->width_spin,
                                         self->height_spin, self->batch_spin, NULL };
       *w != NULL; w++)
    gtk_spin_button_update (GTK_SPIN_BUTTON (*w));
  if (prompt_is_empty (self))
    {
      sd35_dialog_dump (self, "event refused empty-prompt");
      sd35_dialog_show_error (self, _("Type a prompt first: describe what the picture should "
                                      "show."));
      gtk_widget_grab_focus (self->prompt_view);
      return;
    }

  /* the config holds the seed shown: a locked number, or -1 ("Random"), for which the job
   * draws one; that one is reported when the try is done, with "Reuse" beside the seed */
  job = sd35_job_new (self->config, self->mode, self->image, self->drawables, &error);
  if (job == NULL)
    {
      sd35_dialog_show_gerror (self, error);
      g_clear_error (&error);
      return;
    }
  if (! sd35_job_start (job, on_report, self, G_OBJECT (self), &error))
    {
      sd35_dialog_show_gerror (self, error);
      g_clear_error (&error);
      sd35_job_unref (job);
      return;
    }
  self->job = job;
  sd35_dialog_results_clear (self);
  tick_start (self);
  sd35_dialog_set_running (self, TRUE);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0.0);
  gtk_label_set_text (GTK_LABEL (self->step_label), _("Starting…"));
  gtk_label_set_text (GTK_LABEL (self->eta_label), "");
  g_object_get (self->config, "guidance", &guidance, "steps", &steps, NULL);
  sd35_dialog_dump (self, "event started %dx%d seed %u shown %s steps %d guidance %g",
                    sd35_job_width (job), sd35_job_height (job),
                    sd35_job_seed (job), gtk_editable_get_text (GTK_EDITABLE (self->seed_spin)),
                    steps, guidance);
}

void
sd35_dialog_cancel (Sd35Dialog *self)
{
  if (self->job == NULL)
    return;
  sd35_job_cancel (self->job);
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
