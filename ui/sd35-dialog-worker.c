/* sd35-dialog-worker.c — the engine of the dialog on a worker thread.
 *
 * The pattern of gnome-text-editor's editor-document-statistics.c: the job owns copies of
 * its inputs (sd35-dialog-job.c read them on the main thread) and a weak reference to its
 * owner; every report travels to the main thread through g_idle_add_full with a destroy
 * notify that frees it, and is dropped there when the owner is gone (the dialog drops the
 * ones of a job it has replaced).  Cancel is an atomic flag the engine's is_cancelled polls
 * every step and between MMDiT blocks.  A preview is skipped while the previous one has not
 * been drawn yet, so a slow main loop never queues up frames.  No libgimp or GTK call here.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-job.h"

struct _Sd35DialogEngine
{
  gint         ref_count;  /* atomic */
  GMutex       lock;       /* one job at a time uses the engine */
  sd35_engine *engine;
  gchar       *key;
};

typedef struct
{
  Sd35DialogJob *job;
  Sd35JobReport  report;
  gchar         *text;
  guint8        *rgb;
} Message;

Sd35DialogEngine *
sd35_dialog_engine_new (void)
{
  Sd35DialogEngine *e = g_new0 (Sd35DialogEngine, 1);

  e->ref_count = 1;
  g_mutex_init (&e->lock);
  return e;
}

Sd35DialogEngine *
sd35_dialog_engine_ref (Sd35DialogEngine *engine)
{
  g_atomic_int_inc (&engine->ref_count);
  return engine;
}

void
sd35_dialog_engine_unref (Sd35DialogEngine *engine)
{
  if (engine == NULL || ! g_atomic_int_dec_and_test (&engine->ref_count))
    return;
  g_clear_pointer (&engine->engine, sd35_engine_free);
  g_free (engine->key);
  g_mutex_clear (&engine->lock);
  g_free (engine);
}

/* ---- reports: worker → main thread ---- */

static gboolean
message_dispatch (gpointer data)
{
  Message *m = data;
  GObject *owner = g_weak_ref_get (&m->job->owner);

  if (m->report.rgb != NULL)
    g_atomic_int_set (&m->job->preview_pending, 0);
  if (owner != NULL)
    {
      m->job->report (owner, m->job, &m->report);
      g_object_unref (owner);
    }
  return G_SOURCE_REMOVE;
}

static void
message_free (gpointer data)
{
  Message *m = data;

  if (m->report.rgb != NULL)
    g_atomic_int_set (&m->job->preview_pending, 0);
  sd35_dialog_job_unref (m->job);
  g_free (m->text);
  g_free (m->rgb);
  g_free (m);
}

static Message *
message_new (Sd35DialogJob     *job,
             Sd35JobReportKind  kind)
{
  Message *m = g_new0 (Message, 1);

  m->job = sd35_dialog_job_ref (job);
  m->report.kind = kind;
  m->report.image = job->image_index;
  m->report.n_images = job->request.batch_count;
  return m;
}

static void
message_post (Message *m)
{
  m->report.text = m->text;
  m->report.rgb = m->rgb;
  g_idle_add_full (G_PRIORITY_DEFAULT, message_dispatch, m, message_free);
}

static void
post_stage (Sd35DialogJob *job,
            const gchar   *text)
{
  Message *m = message_new (job, SD35_JOB_STAGE);

  m->text = g_strdup (text);
  message_post (m);
}

/* ---- engine callbacks, on the worker thread ---- */

static void
on_stage (void       *user,
          const char *stage)
{
  Sd35DialogJob *job = user;

  /* the engine's stage names are fixed English words; the dialog says them in its language */
  if (! strcmp (stage, "encoding prompt"))
    post_stage (job, _("Reading the prompt…"));
  else if (! strcmp (stage, "sampling"))
    post_stage (job, _("Painting…"));
  else if (! strcmp (stage, "decoding"))
    post_stage (job, _("Finishing the image…"));
  else
    post_stage (job, stage);
}

static void
on_step (void          *user,
         int            step,
         int            n_steps,
         float          sigma,
         const uint8_t *preview_rgb,
         int            preview_w,
         int            preview_h)
{
  Sd35DialogJob *job = user;
  Message       *m = message_new (job, SD35_JOB_STEP);
  gint64         now = g_get_monotonic_time ();

  if (job->t_first_step == 0)
    job->t_first_step = now;
  m->report.step = step + 1;
  m->report.n_steps = n_steps;
  m->report.elapsed_s = (now - job->t_first_step) / 1e6;
  if (preview_rgb != NULL && preview_w > 0 && preview_h > 0 &&
      g_atomic_int_compare_and_exchange (&job->preview_pending, 0, 1))
    {
      m->rgb = g_memdup2 (preview_rgb, (gsize) preview_w * preview_h * 3);
      m->report.rgb_width = preview_w;
      m->report.rgb_height = preview_h;
    }
  message_post (m);
}

static int
is_cancelled (void *user)
{
  Sd35DialogJob *job = user;

  return g_atomic_int_get (&job->cancel);
}

static gpointer
worker_main (gpointer data)
{
  Sd35DialogJob         *job = data;
  Sd35DialogEngine      *holder = job->engine;
  struct sd35_callbacks  cb = { 0 };

  cb.on_stage = on_stage;
  cb.on_step = on_step;
  cb.is_cancelled = is_cancelled;
  cb.user = job;

  g_mutex_lock (&holder->lock);
  job->status = SD35_OK;
  if (holder->engine == NULL || g_strcmp0 (holder->key, job->key) != 0)
    {
      g_clear_pointer (&holder->engine, sd35_engine_free);
      g_clear_pointer (&holder->key, g_free);
      post_stage (job, _("Loading the model…"));
      job->status = sd35_engine_open (&job->options, &holder->engine, &job->err);
      if (job->status != SD35_OK)
        {
          holder->engine = NULL;
          job->headline = _("Could not load the model");
          goto done;
        }
      holder->key = g_strdup (job->key);
    }
  if (is_cancelled (job))
    {
      job->status = SD35_CANCELLED;
      goto done;
    }
  job->variant = g_strdup (sd35_engine_info (holder->engine)->variant_name);
  job->model_name = g_path_get_basename (sd35_engine_info (holder->engine)->mmdit_path);

  for (job->image_index = 0; job->image_index < job->request.batch_count; job->image_index++)
    {
      struct sd35_params p = job->params;

      p.seed = job->params.seed + (uint64_t) job->image_index;
      job->status = sd35_generate (holder->engine, &p, &cb, &job->results[job->image_index],
                                   &job->err);
      if (job->status != SD35_OK)
        {
          job->headline = _("The image could not be made");
          break;
        }
    }

done:
  g_mutex_unlock (&holder->lock);
  message_post (message_new (job, SD35_JOB_DONE));
  sd35_dialog_job_unref (job);  /* the thread's reference */
  return NULL;
}

gboolean
sd35_dialog_job_start (Sd35DialogJob      *job,
                       Sd35DialogEngine   *engine,
                       GObject            *owner,
                       Sd35JobReportFunc   report,
                       GError            **error)
{
  GThread *thread;

  g_return_val_if_fail (job->engine == NULL, FALSE);

  job->engine = sd35_dialog_engine_ref (engine);
  job->report = report;
  g_weak_ref_set (&job->owner, owner);
  thread = g_thread_try_new ("sd35-dialog", worker_main, sd35_dialog_job_ref (job), error);
  if (thread == NULL)
    {
      sd35_dialog_job_unref (job);
      return FALSE;
    }
  g_thread_unref (thread);  /* detached: SD35_JOB_DONE says when it is over */
  return TRUE;
}
