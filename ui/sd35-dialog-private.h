/* sd35-dialog-private.h — the fields of Sd35Dialog, shared by its files:
 *   sd35-dialog.c          the window: layout, simple fields bound to the config
 *   sd35-dialog-fields.c   size, seed and model: fields with logic of their own
 *   sd35-dialog-actions.c  Generate / Cancel / Close, the job's reports, errors
 *   sd35-dialog-host.c     sd35_dialog_run: GTK start-up, theme, transient parent, i18n
 */
#pragma once

#include <stdio.h>

#include "sd35-dialog.h"
#include "sd35-core.h"
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
  GtkWidget           *form_scroll;     /* the scrolled settings column */
  GtkWidget           *prompt_view;
  GtkWidget           *prompt_placeholder;
  GtkWidget           *negative_view;
  GtkWidget           *model_drop;
  GtkStringList       *model_names;  /* shown */
  GPtrArray           *model_paths;  /* parallel: gchar *, NULL = automatic */
  GtkWidget           *variant_label;
  GtkWidget           *loras_field;    /* sd35-dialog-loras.c */
  GtkWidget           *size_drop;
  GtkAdjustment       *width_adj;
  GtkAdjustment       *height_adj;
  GtkWidget           *width_spin;
  GtkWidget           *height_spin;
  GtkAdjustment       *steps_adj;
  GtkWidget           *steps_spin;
  GtkWidget           *steps_run_label;  /* img2img: the steps that run at this strength */
  gint                 default_steps;    /* the model's, for steps = Auto */
  GtkAdjustment       *guidance_adj;
  GtkWidget           *guidance_spin;
  GtkAdjustment       *strength_adj;     /* img2img only */
  GtkAdjustment       *seed_adj;
  GtkWidget           *seed_spin;
  GtkWidget           *seed_lock;
  GtkWidget           *seed_reuse;       /* "Reuse 1234": the seed of the last try */
  GtkWidget           *advanced;
  GtkWidget           *batch_spin;
  GtkWidget           *sampler_drop;
  GtkWidget           *backend_drop;

  /* run */
  GtkWidget           *preview;
  GtkWidget           *step_label;
  GtkWidget           *progress;
  GtkWidget           *eta_label;
  GtkWidget           *error_revealer;
  GtkWidget           *error_label;     /* what happened and what to do, translated */
  GtkWidget           *error_details;   /* expander: the engine's own words */
  GtkWidget           *error_detail_label;
  GtkWidget           *results_area;    /* a batch's thumbnails and what to add */
  GtkWidget           *results_flow;
  GtkWidget           *results_add_selected;
  GtkWidget           *results_add_all;
  GtkWidget           *results_always_all;  /* remembered: add a whole batch at once */
  GPtrArray           *results_toggles;  /* one per image shown, in batch order */
  Sd35Job             *results_job;      /* the batch shown, until the next Generate */
  GtkWidget           *generate_button;
  GtkWidget           *cancel_button;
  GtkWidget           *close_button;

  gboolean             building;        /* TRUE while widgets are being set up */
  gint                 setting_default; /* > 0 while the dialog itself changes a value */
  gboolean             steps_touched;   /* the user changed them: a model keeps off */
  gboolean             guidance_touched;
  gint                 selection_w, selection_h;  /* "from selection" size, rounded */

  Sd35EngineHolder    *engine;          /* the process's resident engine, kept while open */
  Sd35Job             *job;             /* the running one, or NULL */
  gboolean             close_pending;   /* close once the job has stopped */
  GimpLayer          **last_layers;     /* of the last successful try */
  guint32              last_seed;
  gint                 n_inserted;      /* layers inserted over all tries */
  GMainLoop           *loop;            /* sd35_dialog_run's; quit on close */
  FILE                *dump;            /* $SD35_DIALOG_DUMP: events for the tests */
  guint                tick_id;         /* while a job runs: main-loop latency probe */
  gint64               last_tick_us;
  gint64               max_stall_us;
  gchar               *last_bounds;     /* dump: the last "bounds" line written */
};

/* sd35-dialog-actions.c */
void     sd35_dialog_install_actions (GtkWidgetClass *widget_class);
void     sd35_dialog_add_shortcuts   (Sd35Dialog     *self);
void     sd35_dialog_generate        (Sd35Dialog     *self);
void     sd35_dialog_cancel          (Sd35Dialog     *self);
void     sd35_dialog_request_close   (Sd35Dialog     *self);
void     sd35_dialog_show_error      (Sd35Dialog     *self,
                                      const gchar    *message);
/* An error with what to do in plain words, and the technical detail (file names, the
 * engine's English message, environment variables) folded away in "Details". */
void     sd35_dialog_show_problem    (Sd35Dialog     *self,
                                      const gchar    *message,
                                      const gchar    *detail);
void     sd35_dialog_show_gerror     (Sd35Dialog     *self,
                                      const GError   *error);
void     sd35_dialog_dump            (Sd35Dialog     *self,
                                      const gchar    *format,
                                      ...) G_GNUC_PRINTF (2, 3);
void     sd35_dialog_dump_labels     (Sd35Dialog     *self);

/* sd35-dialog-results.c */
GtkWidget  *sd35_dialog_results_new         (Sd35Dialog     *self);
GtkWidget  *sd35_dialog_results_choice_new  (Sd35Dialog     *self);
gboolean    sd35_dialog_results_add_all     (Sd35Dialog     *self);
gint        sd35_dialog_results_n_images    (Sd35Job        *job);
void        sd35_dialog_results_show        (Sd35Dialog     *self,
                                             Sd35Job        *job,
                                             gboolean        all_added);
void        sd35_dialog_results_clear       (Sd35Dialog     *self);
/* Inserts the chosen results of job (NULL: all) as layers in one undo step and records
 * them as the dialog's last layers.  NULL with *error; on an error nothing stays. */
GimpLayer **sd35_dialog_results_insert      (Sd35Dialog     *self,
                                             Sd35Job        *job,
                                             const gboolean *chosen,
                                             GError        **error);
void        sd35_dialog_results_dump_bounds (Sd35Dialog     *self,
                                             GString        *line);

/* sd35-dialog-host.c */
void     sd35_dialog_bind_textdomain (void);

/* sd35-dialog.c */
void       sd35_dialog_set_running     (Sd35Dialog     *self,
                                        gboolean        running);
/* For the test dump: appends " NAME X Y W H" (root-window pixels) when widget is shown. */
void       sd35_dialog_dump_bounds_of  (Sd35Dialog     *self,
                                        GString        *line,
                                        const gchar    *name,
                                        GtkWidget      *widget);

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

/* sd35-dialog-loras.c: the LoRAs found beside the model, a switch and a strength each */
GtkWidget *sd35_dialog_loras_new       (Sd35Dialog     *self);
void       sd35_dialog_loras_refresh   (Sd35Dialog     *self,
                                        const gchar    *model_path);
void       sd35_dialog_loras_dump_bounds (Sd35Dialog   *self,
                                          GString      *line);
void       sd35_dialog_new_random_seed (Sd35Dialog     *self);
gboolean   sd35_dialog_seed_locked     (Sd35Dialog     *self);
/* After a try: offer its seed for one-click reuse. */
void       sd35_dialog_offer_seed      (Sd35Dialog     *self,
                                        guint32         seed);
void       sd35_dialog_update_steps_run (Sd35Dialog    *self);

G_END_DECLS
