/* sd35-dialog-private.h — the fields of Sd35Dialog, shared by its files:
 *   sd35-dialog.c          the window: layout, simple fields bound to the config
 *   sd35-dialog-fields.c   size, seed and model: fields with logic of their own
 *   sd35-dialog-actions.c  Generate / Cancel / Close, the job's reports, errors
 *   sd35-dialog-host.c     sd35_dialog_run: GTK start-up, theme, transient parent, i18n
 */
#pragma once

#include <stdio.h>

#include "sd35-dialog.h"
#include "sd35-dialog-worker.h"
#include "sd35-preview.h"

G_BEGIN_DECLS

struct _Sd35Dialog
{
  GtkWindow            parent_instance;

  GimpProcedure       *procedure;
  GimpProcedureConfig *config;
  GimpImage           *image;
  GimpDrawable       **drawables;    /* NULL-terminated copy */
  Sd35Mode             mode;

  /* settings */
  GtkWidget           *prompt_view;
  GtkWidget           *negative_view;
  GtkWidget           *model_drop;
  GtkStringList       *model_names;  /* shown */
  GPtrArray           *model_paths;  /* parallel: gchar *, NULL = automatic */
  GtkWidget           *variant_label;
  GtkWidget           *size_drop;
  GtkAdjustment       *width_adj;
  GtkAdjustment       *height_adj;
  GtkWidget           *width_spin;
  GtkWidget           *height_spin;
  GtkAdjustment       *steps_adj;
  GtkAdjustment       *guidance_adj;
  GtkAdjustment       *seed_adj;
  GtkWidget           *seed_lock;
  GtkWidget           *sampler_drop;
  GtkWidget           *backend_drop;

  /* run */
  GtkWidget           *preview;
  GtkWidget           *step_label;
  GtkWidget           *progress;
  GtkWidget           *eta_label;
  GtkWidget           *error_revealer;
  GtkWidget           *error_label;
  GtkWidget           *generate_button;
  GtkWidget           *cancel_button;
  GtkWidget           *close_button;

  gboolean             building;        /* TRUE while widgets are being set up */
  gint                 setting_default; /* > 0 while the dialog itself changes a value */
  gboolean             steps_touched;   /* the user changed them: a model keeps off */
  gboolean             guidance_touched;
  gint                 selection_w, selection_h;  /* "from selection" size, rounded */

  Sd35DialogEngine    *engine;
  Sd35DialogJob       *job;             /* the running one, or NULL */
  gboolean             close_pending;   /* close once the job has stopped */
  GimpLayer          **last_layers;     /* of the last successful try */
  guint32              last_seed;
  gint                 n_inserted;      /* layers inserted over all tries */
  GMainLoop           *loop;            /* sd35_dialog_run's; quit on close */
  FILE                *dump;            /* $SD35_DIALOG_DUMP: events for the tests */
  guint                tick_id;         /* while a job runs: main-loop latency probe */
  gint64               last_tick_us;
  gint64               max_stall_us;
};

/* sd35-dialog-actions.c */
void     sd35_dialog_install_actions (GtkWidgetClass *widget_class);
void     sd35_dialog_add_shortcuts   (Sd35Dialog     *self);
void     sd35_dialog_generate        (Sd35Dialog     *self);
void     sd35_dialog_cancel          (Sd35Dialog     *self);
void     sd35_dialog_request_close   (Sd35Dialog     *self);
void     sd35_dialog_show_error      (Sd35Dialog     *self,
                                      const gchar    *message);
void     sd35_dialog_dump            (Sd35Dialog     *self,
                                      const gchar    *format,
                                      ...) G_GNUC_PRINTF (2, 3);
void     sd35_dialog_dump_labels     (Sd35Dialog     *self);

/* sd35-dialog-host.c */
void     sd35_dialog_bind_textdomain (void);

/* sd35-dialog.c */
void       sd35_dialog_set_running     (Sd35Dialog     *self,
                                        gboolean        running);

/* sd35-dialog-fields.c */
GtkWidget *sd35_dialog_spin_new        (GtkAdjustment **adj_out,
                                        gdouble         lower,
                                        gdouble         upper,
                                        gdouble         step,
                                        guint           digits);
GtkWidget *sd35_dialog_size_row_new    (Sd35Dialog     *self);
GtkWidget *sd35_dialog_seed_row_new    (Sd35Dialog     *self,
                                        GtkWidget     **spin_out);
GtkWidget *sd35_dialog_model_row_new   (Sd35Dialog     *self);
void       sd35_dialog_model_changed   (Sd35Dialog     *self);
void       sd35_dialog_new_random_seed (Sd35Dialog     *self);

G_END_DECLS
