/* worker.c — the engine on a worker thread.
 *
 * libgimp is not thread-safe: every PDB call (progress included) stays on the main thread.
 * The worker owns nothing of GIMP: it gets the engine options and parameters (with pixels
 * already read on the main thread), loads the model when the cache has none for these
 * options, and runs the generations.  Its stage and step reports travel to the main thread
 * through a private GMainContext that the main thread spins until the worker is done; a
 * private context (not the default one) keeps a persistent plug-in from starting a second
 * call while this one runs.
 */
#include <string.h>
#include <unistd.h>

#include <glib/gi18n.h>

#include "sd35-plugin.h"

struct _Sd35EngineCache
{
  sd35_engine *engine;
  gchar       *key;         /* what the engine was opened with: model, backend, T5 */
  gchar       *model_name;  /* file name of the MMDiT, for the settings parasite */
  guint        n_loads;
  guint        n_calls;
  gdouble      last_load_s;
};

typedef struct
{
  Sd35EngineCache                  *cache;
  const struct sd35_engine_options *options;
  const struct sd35_params         *params;
  gint                              n_images;
  struct sd35_result               *results;
  GCancellable                     *cancellable;
  gchar                            *key;
  GMainContext                     *context;
  GMainLoop                        *loop;
  gint                              image_index;  /* worker side */
  enum sd35_status                  status;
  struct sd35_error                 err;
  const gchar                      *headline;
} Job;

typedef struct
{
  gchar   *text;      /* NULL: only the fraction */
  gdouble  fraction;  /* < 0: leave as is */
} Report;

Sd35EngineCache *
sd35_engine_cache_new (void)
{
  return g_new0 (Sd35EngineCache, 1);
}

void
sd35_engine_cache_unload (Sd35EngineCache *cache)
{
  if (cache->engine != NULL)
    g_printerr ("gimp-sd35: engine unloaded\n");
  g_clear_pointer (&cache->engine, sd35_engine_free);
  g_clear_pointer (&cache->key, g_free);
  g_clear_pointer (&cache->model_name, g_free);
}

void
sd35_engine_cache_free (Sd35EngineCache *cache)
{
  if (cache == NULL)
    return;
  sd35_engine_cache_unload (cache);
  g_free (cache);
}

/* One line for scripts and tests: is a model loaded, how often was one loaded, how long did
 * the last load take, which process holds it. */
gchar *
sd35_engine_cache_describe (Sd35EngineCache *cache)
{
  return g_strdup_printf ("loaded=%d loads=%u calls=%u last-load-s=%.3f pid=%d model=%s",
                          cache->engine != NULL, cache->n_loads, cache->n_calls,
                          cache->last_load_s, (int) getpid (),
                          cache->model_name != NULL ? cache->model_name : "");
}

const gchar *
sd35_engine_cache_model_name (Sd35EngineCache *cache)
{
  return cache->model_name != NULL ? cache->model_name : "";
}

static gchar *
options_key (const struct sd35_engine_options *o)
{
  return g_strdup_printf ("%s|%s|%s|%d|%d|%d", o->model_path ? o->model_path : "",
                          o->text_encoders_dir ? o->text_encoders_dir : "",
                          o->tokenizers_dir ? o->tokenizers_dir : "", o->backend,
                          o->use_t5, o->force_turbo);
}

/* ---- main-thread side of the reports ---- */

static gboolean
report_cb (gpointer data)
{
  Report *r = data;

  if (r->text != NULL)
    gimp_progress_set_text (r->text);
  if (r->fraction >= 0.0)
    gimp_progress_update (r->fraction);
  return G_SOURCE_REMOVE;
}

static void
report_free (gpointer data)
{
  Report *r = data;

  g_free (r->text);
  g_free (r);
}

static void
post_report (Job     *job,
             gchar   *text,
             gdouble  fraction)
{
  Report *r = g_new0 (Report, 1);

  r->text = text;
  r->fraction = fraction;
  g_main_context_invoke_full (job->context, G_PRIORITY_DEFAULT, report_cb, r, report_free);
}

/* ---- engine callbacks, on the worker thread ---- */

/* The engine's stage names (sd35.h) are fixed English words; the progress bar says them
 * in the user's language.  An unknown one is shown as it is. */
static const struct
{
  const gchar *stage;
  const gchar *text;
} stage_texts[] =
{
  { "encoding prompt", N_("encoding the prompt") },
  { "sampling",        N_("sampling") },
  { "decoding",        N_("decoding the image") },
};

static void
on_stage (void       *user,
          const char *stage)
{
  Job         *job = user;
  const gchar *text = stage;

  for (gsize i = 0; i < G_N_ELEMENTS (stage_texts); i++)
    if (! strcmp (stage, stage_texts[i].stage))
      text = _(stage_texts[i].text);
  if (job->n_images > 1)
    post_report (job, g_strdup_printf (_("Stable Diffusion: %s (image %d of %d)"), text,
                                       job->image_index + 1, job->n_images), -1.0);
  else
    post_report (job, g_strdup_printf (_("Stable Diffusion: %s"), text), -1.0);
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
  Job     *job = user;
  gdouble  done = (job->image_index + (step + 1.0) / MAX (n_steps, 1)) / job->n_images;

  post_report (job, g_strdup_printf (_("Stable Diffusion: step %d/%d"), step + 1, n_steps),
               done);
}

static int
is_cancelled (void *user)
{
  Job *job = user;

  return job->cancellable != NULL && g_cancellable_is_cancelled (job->cancellable);
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
worker_main (gpointer data)
{
  Job                   *job = data;
  Sd35EngineCache       *cache = job->cache;
  struct sd35_callbacks  cb = { 0 };

  cb.on_stage = on_stage;
  cb.on_step = on_step;
  cb.is_cancelled = is_cancelled;
  cb.user = job;
  job->status = SD35_OK;
  if (cache->engine == NULL || g_strcmp0 (cache->key, job->key) != 0)
    {
      gint64 t0 = g_get_monotonic_time ();

      sd35_engine_cache_unload (cache);
      post_report (job, g_strdup (_("Stable Diffusion: loading the model")), -1.0);
      job->status = sd35_engine_open (job->options, &cache->engine, &job->err);
      if (job->status != SD35_OK)
        {
          cache->engine = NULL;
          job->headline = _("Could not load the Stable Diffusion model");
          goto done;
        }
      cache->key = g_strdup (job->key);
      cache->model_name = g_path_get_basename (sd35_engine_info (cache->engine)->mmdit_path);
      cache->n_loads++;
      cache->last_load_s = (g_get_monotonic_time () - t0) / 1e6;
      g_printerr ("gimp-sd35: engine loaded in %.3f s (%s, %s)\n", cache->last_load_s,
                  sd35_engine_info (cache->engine)->variant_name,
                  sd35_engine_info (cache->engine)->backend_name);
    }
  else
    g_printerr ("gimp-sd35: engine already loaded, reusing it\n");

  for (job->image_index = 0; job->image_index < job->n_images; job->image_index++)
    {
      struct sd35_params p = *job->params;

      p.seed = job->params->seed + (uint64_t) job->image_index;
      job->status = sd35_generate (cache->engine, &p, &cb, &job->results[job->image_index],
                                   &job->err);
      if (job->status != SD35_OK)
        {
          job->headline = _("Stable Diffusion failed");
          break;
        }
    }
  cache->n_calls++;

done:
  g_main_context_invoke (job->context, quit_cb, job->loop);
  return NULL;
}

gboolean
sd35_worker_generate (Sd35EngineCache                  *cache,
                      const struct sd35_engine_options *options,
                      const struct sd35_params         *params,
                      gint                              n_images,
                      struct sd35_result               *results,
                      GCancellable                     *cancellable,
                      gboolean                         *cancelled,
                      GError                          **error)
{
  Job      job;
  GThread *thread;
  GError  *thread_error = NULL;

  memset (&job, 0, sizeof job);
  job.cache = cache;
  job.options = options;
  job.params = params;
  job.n_images = n_images;
  job.results = results;
  job.cancellable = cancellable;
  job.key = options_key (options);
  job.context = g_main_context_new ();
  job.loop = g_main_loop_new (job.context, FALSE);
  *cancelled = FALSE;

  g_main_context_push_thread_default (job.context);
  thread = g_thread_try_new ("sd35-worker", worker_main, &job, &thread_error);
  if (thread != NULL)
    {
      g_main_loop_run (job.loop);
      g_thread_join (thread);
      /* reports the worker queued after its last step: show them before returning */
      while (g_main_context_iteration (job.context, FALSE))
        ;
    }
  g_main_context_pop_thread_default (job.context);
  g_main_loop_unref (job.loop);
  g_main_context_unref (job.context);
  g_free (job.key);

  if (thread == NULL)
    {
      g_propagate_prefixed_error (error, thread_error, _("Could not start a worker thread: "));
      return FALSE;
    }
  if (job.status == SD35_CANCELLED)
    {
      *cancelled = TRUE;
      return FALSE;
    }
  if (job.status != SD35_OK)
    {
      sd35_plugin_set_error (error, job.headline, &job.err);
      return FALSE;
    }
  return TRUE;
}
