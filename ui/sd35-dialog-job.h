/* sd35-dialog-job.h — private: the fields of one Generate, shared by sd35-dialog-job.c (the
 * GIMP side, main thread) and sd35-dialog-worker.c (the engine side, worker thread). */
#pragma once

#include "sd35-dialog-worker.h"

G_BEGIN_DECLS

struct _Sd35DialogJob
{
  gint                        ref_count;   /* atomic */
  gint                        cancel;      /* atomic flag, polled by the engine */

  /* inputs, owned, read-only once the worker runs */
  Sd35Request                 request;
  GimpImage                  *image;
  Sd35Box                     box;
  gboolean                    add_mask;
  struct sd35_engine_options  options;
  struct sd35_params          params;
  guint8                     *init_rgb;
  gfloat                     *mask;
  gchar                      *key;         /* what the engine must have been opened with */

  /* worker state; the main thread reads it only after SD35_JOB_DONE */
  Sd35DialogEngine           *engine;
  GWeakRef                    owner;
  Sd35JobReportFunc           report;
  struct sd35_result         *results;     /* request.batch_count of them */
  enum sd35_status            status;
  struct sd35_error           err;
  const gchar                *headline;    /* translated, static */
  gchar                      *variant;
  gchar                      *model_name;
  gint                        image_index;
  gint64                      t_first_step;
  gint                        preview_pending;  /* atomic: a preview waits for GTK */
};

G_END_DECLS
