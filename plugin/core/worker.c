/* worker.c — the one worker thread of a plug-in process, and the engine's callbacks.
 *
 * libgimp and GTK are not thread-safe: every PDB and widget call stays on the main thread.
 * The worker owns nothing of GIMP: it takes jobs whose inputs the main thread has read
 * (job.c), one at a time from a queue, gets the resident engine from the holder (loading the
 * model when it has none for the job's key), runs the generations and posts its reports to
 * the main context that started the job.  Every report travels as an idle source with a
 * destroy notify that frees it, and is dropped there when the job's owner is gone.  Cancel
 * is an atomic flag the engine's is_cancelled polls every step and between MMDiT blocks.
 * A preview is skipped while the previous one has not been shown yet, so a slow main loop
 * never queues up frames.  The thread starts with the first job and lives as long as the
 * process.
 */
#include <string.h>

#include "sd35-core-private.h"

typedef struct
{
  Sd35Job       *job;
  Sd35JobReport  report;
  gchar         *text;
  guint8        *rgb;
} Message;

G_LOCK_DEFINE_STATIC (worker);
static GAsyncQueue *worker_queue;

/* ---- reports: worker → main thread ---- */

static gboolean
message_dispatch (gpointer data)
{
  Message *m = data;
  Sd35Job *job = m->job;
  GObject *owner = NULL;

  if (m->report.rgb != NULL)
    g_atomic_int_set (&job->preview_pending, 0);
  if (job->has_owner && (owner = g_weak_ref_get (&job->owner)) == NULL)
    return G_SOURCE_REMOVE;  /* nobody to tell */
  job->report (job, &m->report, job->user_data);
  g_clear_object (&owner);
  return G_SOURCE_REMOVE;
}

static void
message_free (gpointer data)
{
  Message *m = data;

  if (m->report.rgb != NULL)
    g_atomic_int_set (&m->job->preview_pending, 0);
  sd35_job_unref (m->job);
  g_free (m->text);
  g_free (m->rgb);
  g_free (m);
}

static Message *
message_new (Sd35Job           *job,
             Sd35JobReportKind  kind)
{
  Message *m = g_new0 (Message, 1);

  m->job = sd35_job_ref (job);
  m->report.kind = kind;
  m->report.image = job->image_index;
  m->report.n_images = job->request.batch_count;
  return m;
}

static void
message_post (Message *m)
{
  GSource *source = g_idle_source_new ();

  m->report.text = m->text;
  m->report.rgb = m->rgb;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, message_dispatch, m, message_free);
  g_source_attach (source, m->job->context);
  g_source_unref (source);
}

static void
post_stage (Sd35Job     *job,
            Sd35Stage    stage,
            const gchar *text)
{
  Message *m = message_new (job, SD35_JOB_STAGE);

  m->report.stage = stage;
  m->text = g_strdup (text);
  message_post (m);
}

/* ---- engine callbacks, on the worker thread ---- */

static void
on_stage (void       *user,
          const char *stage)
{
  Sd35Job *job = user;

  /* the engine's stage names (sd35.h) are fixed English words; front ends say them in the
   * user's language */
  if (! strcmp (stage, "encoding prompt"))
    post_stage (job, SD35_STAGE_ENCODING, stage);
  else if (! strcmp (stage, "sampling"))
    post_stage (job, SD35_STAGE_SAMPLING, stage);
  else if (! strcmp (stage, "decoding"))
    post_stage (job, SD35_STAGE_DECODING, stage);
  else
    post_stage (job, SD35_STAGE_OTHER, stage);
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
  Sd35Job *job = user;
  Message *m = message_new (job, SD35_JOB_STEP);
  gint64   now = g_get_monotonic_time ();

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

static void
on_loading (gpointer data)
{
  post_stage (data, SD35_STAGE_LOADING, "loading");
}

static int
is_cancelled (void *user)
{
  Sd35Job *job = user;

  return g_atomic_int_get (&job->cancel);
}

static gboolean
set_loras (Sd35Job     *job,
           sd35_engine *engine)
{
  guint             n = job->request.loras != NULL ? g_strv_length (job->request.loras) : 0;
  struct sd35_lora *loras = g_new0 (struct sd35_lora, MAX (n, 1));
  gchar           **paths = g_new0 (gchar *, n + 1);
  gboolean          ok = TRUE;

  for (guint i = 0; i < n && ok; i++)
    {
      paths[i] = g_malloc (4096);
      ok = sd35_lora_spec_parse (job->request.loras[i], paths[i], 4096,
                                 &loras[i].strength) == 0;
      loras[i].path = paths[i];
    }
  if (! ok)
    {
      job->status = SD35_ERR_ARG;
      g_snprintf (job->err.message, sizeof job->err.message, "bad LoRA argument");
      job->err.status = SD35_ERR_ARG;
    }
  else
    {
      job->status = sd35_engine_set_loras (engine, loras, (int) n, &job->err);
      /* stderr, not g_message: this is the worker thread, and libgimp routes g_message to
       * a PDB call on the wire, which the main thread may be using (the dialog's main loop):
       * two threads on the wire abort the plug-in. */
      if (job->status == SD35_OK && n > 0)
        g_printerr ("gimp-sd35: %s\n", sd35_engine_lora_report (engine));
    }
  g_strfreev (paths);
  g_free (loras);
  return ok && job->status == SD35_OK;
}

static void
run_job (Sd35Job *job)
{
  struct sd35_callbacks  cb = { 0 };
  sd35_engine           *engine;
  gint64                 t0;

  cb.on_stage = on_stage;
  cb.on_step = on_step;
  cb.is_cancelled = is_cancelled;
  cb.user = job;

  job->status = SD35_OK;
  if (is_cancelled (job))
    {
      job->status = SD35_CANCELLED;  /* cancelled while it waited in the queue */
      return;
    }
  /* "loading" is only said when the model loads; the holder answers at once otherwise */
  t0 = g_get_monotonic_time ();
  engine = _sd35_engine_holder_acquire (job->holder, &job->options, job->key, on_loading,
                                        job, &job->loaded_model, &job->err);
  if (job->loaded_model)
    job->load_s = (g_get_monotonic_time () - t0) / 1e6;
  if (engine == NULL)
    {
      job->status = job->err.status != SD35_OK ? job->err.status : SD35_ERR_INTERNAL;
      job->headline = SD35_HEADLINE_LOAD;
      _sd35_engine_holder_release (job->holder);
      return;
    }
  /* the request's LoRAs merged into the resident engine: a changed set or strength rebuilds
   * only the touched weights, nothing is loaded again (sd35_engine_set_loras) */
  if (! set_loras (job, engine))
    {
      job->headline = SD35_HEADLINE_GENERATE;
      _sd35_engine_holder_release (job->holder);
      return;
    }
  job->variant = g_strdup (sd35_engine_info (engine)->variant_name);
  job->model_name = g_path_get_basename (sd35_engine_info (engine)->mmdit_path);

  for (job->image_index = 0; job->image_index < job->request.batch_count; job->image_index++)
    {
      struct sd35_params p = job->params;

      if (is_cancelled (job))
        {
          job->status = SD35_CANCELLED;
          break;
        }
      p.seed = job->params.seed + (uint64_t) job->image_index;
      job->status = sd35_generate (engine, &p, &cb, &job->results[job->image_index], &job->err);
      if (job->status != SD35_OK)
        {
          job->headline = SD35_HEADLINE_GENERATE;
          break;
        }
    }
  _sd35_engine_holder_release (job->holder);
}

static gpointer
worker_main (gpointer data)
{
  GAsyncQueue *queue = data;

  for (;;)
    {
      Sd35Job *job = g_async_queue_pop (queue);
      gint64   t0 = g_get_monotonic_time ();

      run_job (job);
      job->run_s = (g_get_monotonic_time () - t0) / 1e6;
      message_post (message_new (job, SD35_JOB_DONE));
      sd35_job_unref (job);  /* the queue's reference */
    }
  return NULL;
}

gboolean
_sd35_worker_push (Sd35Job  *job,
                   GError  **error)
{
  G_LOCK (worker);
  if (worker_queue == NULL)
    {
      GAsyncQueue *queue = g_async_queue_new ();
      GThread     *thread = g_thread_try_new ("sd35-worker", worker_main, queue, error);

      if (thread == NULL)
        {
          g_async_queue_unref (queue);
          G_UNLOCK (worker);
          return FALSE;
        }
      g_thread_unref (thread);  /* lives as long as the process */
      worker_queue = queue;
    }
  G_UNLOCK (worker);
  g_async_queue_push (worker_queue, sd35_job_ref (job));
  return TRUE;
}
