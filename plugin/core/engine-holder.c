/* engine-holder.c — the resident engine of a plug-in process: one per process, reference
 * counted (the resident extension, an open dialog and every queued job hold one), keyed by
 * the model and its load options (sd35_engine_options_key).  A job with the same key reuses
 * the loaded engine; another key frees it and loads the new model.
 *
 * Only the worker thread touches the engine, between _acquire and _release ("busy"); the
 * main thread reads the counters and may ask for an unload, which waits for the running job
 * when there is one.  The mutex guards the fields, never a load or a generation.
 */
#include <unistd.h>

#include "sd35-core-private.h"

struct _Sd35EngineHolder
{
  gint         ref_count;    /* atomic */
  GMutex       lock;
  sd35_engine *engine;
  gchar       *key;          /* what the engine was opened with */
  gchar       *model_name;   /* file name of the MMDiT, for the settings parasite */
  gboolean     busy;         /* a job uses the engine */
  gboolean     unload_pending;
  guint        n_loads;
  guint        n_calls;
  gdouble      last_load_s;
};

G_LOCK_DEFINE_STATIC (the_holder);
static Sd35EngineHolder *the_holder;  /* the process's one, while referenced */

Sd35EngineHolder *
sd35_engine_holder_get (void)
{
  Sd35EngineHolder *h;

  G_LOCK (the_holder);
  if (the_holder == NULL)
    {
      the_holder = g_new0 (Sd35EngineHolder, 1);
      g_mutex_init (&the_holder->lock);
    }
  h = the_holder;
  g_atomic_int_inc (&h->ref_count);
  G_UNLOCK (the_holder);
  return h;
}

Sd35EngineHolder *
sd35_engine_holder_ref (Sd35EngineHolder *holder)
{
  g_atomic_int_inc (&holder->ref_count);
  return holder;
}

static void
free_engine_locked (Sd35EngineHolder *holder)
{
  if (holder->engine != NULL)
    g_printerr ("gimp-sd35: engine unloaded\n");
  g_clear_pointer (&holder->engine, sd35_engine_free);
  g_clear_pointer (&holder->key, g_free);
  g_clear_pointer (&holder->model_name, g_free);
}

void
sd35_engine_holder_unref (Sd35EngineHolder *holder)
{
  if (holder == NULL)
    return;
  G_LOCK (the_holder);
  if (! g_atomic_int_dec_and_test (&holder->ref_count))
    {
      G_UNLOCK (the_holder);
      return;
    }
  if (the_holder == holder)
    the_holder = NULL;
  G_UNLOCK (the_holder);
  /* no job holds a reference: the engine is not busy */
  free_engine_locked (holder);
  g_mutex_clear (&holder->lock);
  g_free (holder);
}

void
sd35_engine_holder_unload (Sd35EngineHolder *holder)
{
  g_mutex_lock (&holder->lock);
  if (holder->busy)
    holder->unload_pending = TRUE;
  else
    free_engine_locked (holder);
  g_mutex_unlock (&holder->lock);
}

gchar *
sd35_engine_holder_describe (Sd35EngineHolder *holder)
{
  gchar *s;

  g_mutex_lock (&holder->lock);
  s = g_strdup_printf ("loaded=%d loads=%u calls=%u last-load-s=%.3f pid=%d model=%s",
                       holder->engine != NULL, holder->n_loads, holder->n_calls,
                       holder->last_load_s, (int) getpid (),
                       holder->model_name != NULL ? holder->model_name : "");
  g_mutex_unlock (&holder->lock);
  return s;
}

guint
sd35_engine_holder_loads (Sd35EngineHolder *holder)
{
  guint n;

  g_mutex_lock (&holder->lock);
  n = holder->n_loads;
  g_mutex_unlock (&holder->lock);
  return n;
}

sd35_engine *
_sd35_engine_holder_acquire (Sd35EngineHolder                 *holder,
                             const struct sd35_engine_options *options,
                             const gchar                      *key,
                             void (*loading) (gpointer data),
                             gpointer                          data,
                             gboolean                         *loaded,
                             struct sd35_error                *err)
{
  sd35_engine      *engine = NULL;
  enum sd35_status  status;
  gint64            t0;

  *loaded = FALSE;
  g_mutex_lock (&holder->lock);
  holder->busy = TRUE;
  holder->n_calls++;
  if (holder->engine != NULL && g_strcmp0 (holder->key, key) == 0)
    {
      g_mutex_unlock (&holder->lock);
      g_printerr ("gimp-sd35: engine already loaded, reusing it (loads=%u)\n", holder->n_loads);
      return holder->engine;
    }
  free_engine_locked (holder);
  g_mutex_unlock (&holder->lock);

  /* busy: nobody else touches the engine fields while the model loads */
  if (loading != NULL)
    loading (data);
  t0 = g_get_monotonic_time ();
  status = sd35_engine_open (options, &engine, err);
  g_mutex_lock (&holder->lock);
  if (status != SD35_OK)
    {
      g_mutex_unlock (&holder->lock);
      return NULL;
    }
  holder->engine = engine;
  holder->key = g_strdup (key);
  holder->model_name = g_path_get_basename (sd35_engine_info (engine)->mmdit_path);
  holder->n_loads++;
  holder->last_load_s = (g_get_monotonic_time () - t0) / 1e6;
  g_mutex_unlock (&holder->lock);
  *loaded = TRUE;
  g_printerr ("gimp-sd35: engine loaded in %.3f s (%s, %s; loads=%u)\n", holder->last_load_s,
              sd35_engine_info (engine)->variant_name, sd35_engine_info (engine)->backend_name,
              holder->n_loads);
  return engine;
}

void
_sd35_engine_holder_release (Sd35EngineHolder *holder)
{
  g_mutex_lock (&holder->lock);
  holder->busy = FALSE;
  if (holder->unload_pending)
    {
      holder->unload_pending = FALSE;
      free_engine_locked (holder);
    }
  g_mutex_unlock (&holder->lock);
}
