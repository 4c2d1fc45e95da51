/* sd35-dialog-worker.h — one Generate of the dialog: the engine on a worker thread, its
 * reports back on the main thread, and the GIMP side before (inputs) and after (layers). */
#pragma once

#include <glib-object.h>
#include <libgimp/gimp.h>

#include "sd35-plugin.h"

G_BEGIN_DECLS

/* The loaded model, kept between the tries of one dialog and shared with the running job
 * (reference counted: a job may outlive the dialog by one step). */
typedef struct _Sd35DialogEngine Sd35DialogEngine;

Sd35DialogEngine *sd35_dialog_engine_new   (void);
Sd35DialogEngine *sd35_dialog_engine_ref   (Sd35DialogEngine *engine);
void              sd35_dialog_engine_unref (Sd35DialogEngine *engine);

typedef enum
{
  SD35_JOB_STAGE,    /* text: "Loading the model…", "Encoding the prompt…", … */
  SD35_JOB_STEP,     /* step, n_steps, image, n_images, elapsed_s, maybe rgb */
  SD35_JOB_DONE      /* the job's status, results and error are final */
} Sd35JobReportKind;

typedef struct _Sd35DialogJob Sd35DialogJob;

typedef struct
{
  Sd35JobReportKind kind;
  const gchar      *text;
  gint              step, n_steps;   /* 1-based step of n_steps */
  gint              image, n_images; /* 0-based image of the batch */
  gdouble           elapsed_s;       /* since the first step of the first image */
  const guint8     *rgb;             /* x0 estimate, RGB HWC, or NULL (skipped: GTK is busy) */
  gint              rgb_width, rgb_height;
} Sd35JobReport;

/* Called on the main thread, in order, only while `owner` is alive. */
typedef void (*Sd35JobReportFunc) (GObject             *owner,
                                   Sd35DialogJob       *job,
                                   const Sd35JobReport *report);

/* Everything one Generate needs, read from the config and the image on the main thread
 * (pixels and selection included).  NULL with *error for an impossible call (bad
 * arguments, a selection outside the drawable, out of memory). */
Sd35DialogJob *sd35_dialog_job_new     (GimpProcedureConfig  *config,
                                        Sd35Mode              mode,
                                        GimpImage            *image,
                                        GimpDrawable        **drawables,
                                        GError              **error);
Sd35DialogJob *sd35_dialog_job_ref     (Sd35DialogJob        *job);
void           sd35_dialog_job_unref   (Sd35DialogJob        *job);

/* Starts the worker thread.  FALSE with *error if no thread could be started. */
gboolean       sd35_dialog_job_start   (Sd35DialogJob        *job,
                                        Sd35DialogEngine     *engine,
                                        GObject              *owner,
                                        Sd35JobReportFunc     report,
                                        GError              **error);
/* Asks the engine to stop; it does so within one step (between MMDiT blocks). */
void           sd35_dialog_job_cancel  (Sd35DialogJob        *job);

/* After SD35_JOB_DONE: */
gboolean       sd35_dialog_job_cancelled (Sd35DialogJob      *job);
/* FALSE with *error when the engine failed. */
gboolean       sd35_dialog_job_succeeded (Sd35DialogJob      *job,
                                          GError            **error);
guint32        sd35_dialog_job_seed      (Sd35DialogJob      *job);
gint           sd35_dialog_job_width     (Sd35DialogJob      *job);
gint           sd35_dialog_job_height    (Sd35DialogJob      *job);
/* The first image of a successful job, RGB u8 HWC (owned by the job), or NULL. */
const guint8  *sd35_dialog_job_result_rgb (Sd35DialogJob    *job,
                                           gint             *width,
                                           gint             *height);
/* The detected variant of the model the job ran ("SD3.5 Large", …), or NULL. */
const gchar   *sd35_dialog_job_variant   (Sd35DialogJob      *job);

/* Inserts one layer per result, in one undo group (one undo step).  Returns the new layers
 * (NULL-terminated, free with g_free) or NULL with *error; on an error nothing stays. */
GimpLayer    **sd35_dialog_job_insert    (Sd35DialogJob      *job,
                                          GError            **error);

G_END_DECLS
