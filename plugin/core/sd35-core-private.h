/* sd35-core-private.h — inside the plug-in core only: the fields of a job (job.c fills them
 * on the main thread, worker.c runs them) and the worker's hold on the resident engine. */
#ifndef SD35_CORE_PRIVATE_H
#define SD35_CORE_PRIVATE_H

#include "sd35-core.h"

G_BEGIN_DECLS

typedef struct _Sd35Inpaint Sd35Inpaint;

struct _Sd35Job
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
  gchar                      *key;         /* sd35_engine_options_key (&options) */
  Sd35Inpaint                *inpaint;     /* img2img at native resolution, or NULL */

  /* where the reports go (set by sd35_job_start) */
  GMainContext               *context;
  Sd35JobReportFunc           report;
  gpointer                    user_data;
  gboolean                    has_owner;
  GWeakRef                    owner;
  gint                        preview_pending;  /* atomic: a preview waits for the main loop */

  /* worker state; the main thread reads it only after SD35_JOB_DONE */
  Sd35EngineHolder           *holder;
  struct sd35_result         *results;     /* request.batch_count of them */
  enum sd35_status            status;
  struct sd35_error           err;
  Sd35Headline                headline;
  gboolean                    loaded_model;
  gdouble                     run_s, load_s;
  gchar                      *variant;
  gchar                      *model_name;
  gint                        image_index;
  gint64                      t_first_step;
};

/* inpaint-job.c: img2img of the selection at native resolution.  _prepare reads the context
 * around the selection (job->box on entry), sets job->init_rgb / mask / box / inpaint and the
 * working size; _insert_layer adds one result as a layer over exactly the feathered selection,
 * with it as layer mask; _settings_json adds what was done to the parasite's JSON. */
gboolean          _sd35_inpaint_prepare       (Sd35Job                  *job,
                                               GimpDrawable             *drawable,
                                               gint                     *gen_w,
                                               gint                     *gen_h,
                                               GError                  **error);
GimpLayer        *_sd35_inpaint_insert_layer  (Sd35Job                  *job,
                                               const struct sd35_result *result,
                                               const gchar              *name,
                                               GError                  **error);
gchar            *_sd35_inpaint_settings_json (Sd35Job                  *job,
                                               const gchar              *json);
void              _sd35_inpaint_free          (Sd35Inpaint              *inpaint);

/* worker.c: queue a started job on the process's worker thread (takes a reference). */
gboolean          _sd35_worker_push          (Sd35Job           *job,
                                              GError           **error);

/* engine-holder.c, for the worker thread: the engine for key, loaded with options when the
 * holder has none for it (*loaded = TRUE then), marked busy until _release.  NULL with *err
 * when it cannot be loaded.  loading(data) is called first when the model must load. */
sd35_engine      *_sd35_engine_holder_acquire (Sd35EngineHolder                 *holder,
                                               const struct sd35_engine_options *options,
                                               const gchar                      *key,
                                               void (*loading) (gpointer data),
                                               gpointer                          data,
                                               gboolean                         *loaded,
                                               struct sd35_error                *err);
void              _sd35_engine_holder_release (Sd35EngineHolder                 *holder);

G_END_DECLS

#endif /* SD35_CORE_PRIVATE_H */
