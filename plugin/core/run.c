/* run.c — one txt2img / img2img PDB call, run to the end: a job (job.c) on the worker of
 * this process, its stages and steps on a progress bar, then the layers in one undo group.
 *
 * The progress bar: GIMP ends the process that owns a progress when the user cancels it.  In
 * the resident extension that would take the loaded model with it, so the resident twins
 * report through a temporary procedure of the short-lived process that called them
 * (progress_callback): GIMP then ends that one, the next report fails, and the job is
 * cancelled while the engine stays loaded.  Without a callback (per-call loading, or a
 * script calling a resident twin directly) the reports go to gimp_progress_*.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-core.h"

typedef struct
{
  const gchar *callback;   /* NULL: gimp_progress_* */
  gboolean     caller_gone;
} Progress;

static GimpValueArray *
fail (GimpProcedure     *procedure,
      GimpPDBStatusType  status,
      GError            *error)
{
  if (error != NULL)
    g_printerr ("gimp-sd35: %s\n", error->message);
  return gimp_procedure_new_return_values (procedure, status, error);
}

gchar *
sd35_run_stage_text (const Sd35JobReport *report)
{
  const gchar *text;

  switch (report->stage)
    {
    case SD35_STAGE_LOADING:  text = _("loading the model"); break;
    case SD35_STAGE_ENCODING: text = _("encoding the prompt"); break;
    case SD35_STAGE_SAMPLING: text = _("sampling"); break;
    case SD35_STAGE_DECODING: text = _("decoding the image"); break;
    default:                  text = report->text; break;
    }
  if (report->n_images > 1)
    return g_strdup_printf (_("Stable Diffusion: %s (image %d of %d)"), text,
                            report->image + 1, report->n_images);
  return g_strdup_printf (_("Stable Diffusion: %s"), text);
}

/* Tells the caller's progress procedure; FALSE when the caller is gone. */
static gboolean
tell_caller (const gchar *callback,
             const gchar *text,
             gdouble      fraction)
{
  GimpProcedure  *procedure = gimp_pdb_lookup_procedure (gimp_get_pdb (), callback);
  GimpValueArray *ret;
  gboolean        ok;

  if (procedure == NULL)
    return FALSE;
  ret = gimp_procedure_run (procedure, "text", text != NULL ? text : "",
                            "fraction", fraction, NULL);
  ok = ret != NULL && GIMP_VALUES_GET_ENUM (ret, 0) == GIMP_PDB_SUCCESS;
  if (ret != NULL)
    gimp_value_array_unref (ret);
  return ok;
}

static void
on_report (Sd35Job             *job,
           const Sd35JobReport *report,
           gpointer             data)
{
  Progress *progress = data;
  gchar    *text = NULL;
  gdouble   fraction = -1.0;

  if (progress->caller_gone || report->kind == SD35_JOB_DONE)
    return;
  if (report->kind == SD35_JOB_STAGE)
    text = sd35_run_stage_text (report);
  else
    {
      fraction = (report->image + (gdouble) report->step / MAX (report->n_steps, 1)) /
                 MAX (report->n_images, 1);
      text = g_strdup_printf (_("Stable Diffusion: step %d/%d"), report->step,
                              report->n_steps);
    }
  if (progress->callback == NULL)
    {
      gimp_progress_set_text (text);
      if (fraction >= 0.0)
        gimp_progress_update (fraction);
    }
  else if (! tell_caller (progress->callback, text, fraction))
    {
      g_printerr ("gimp-sd35: the caller is gone (its progress was cancelled): stopping, "
                  "the engine stays loaded\n");
      progress->caller_gone = TRUE;
      sd35_job_cancel (job);
    }
  g_free (text);
}

GimpValueArray *
sd35_run_request (GimpProcedure   *procedure,
                  GimpRunMode      run_mode,
                  GimpImage       *image,
                  GimpDrawable   **drawables,
                  Sd35Request     *request,
                  const gchar     *progress_callback)
{
  Progress         progress = { progress_callback, FALSE };
  Sd35Job         *job;
  GimpValueArray  *ret;
  GimpLayer      **layers = NULL;
  GError          *error = NULL;
  gboolean         calling_error = FALSE, ok;
  const Sd35Box   *box;

  if (progress_callback != NULL && *progress_callback == '\0')
    progress.callback = NULL;
  job = sd35_job_new_from_request (request, image, drawables, &calling_error, &error);
  if (job == NULL)
    return fail (procedure, calling_error ? GIMP_PDB_CALLING_ERROR : GIMP_PDB_EXECUTION_ERROR,
                 error);

  box = sd35_job_box (job);
  g_printerr ("gimp-sd35: %s %d×%d over (%d,%d) %d×%d, seed %u, batch %d\n",
              sd35_job_request (job)->mode == SD35_MODE_IMG2IMG ? "img2img" : "txt2img",
              sd35_job_width (job), sd35_job_height (job), box->x, box->y, box->width,
              box->height, sd35_job_seed (job), sd35_job_request (job)->batch_count);
  if (progress.callback == NULL)
    gimp_progress_init ("Stable Diffusion 3.5");
  ok = sd35_job_run (job, on_report, &progress, &error);
  if (ok && sd35_job_succeeded (job, &error))
    layers = sd35_job_insert (job, &error);
  if (progress.callback == NULL)
    gimp_progress_end ();

  if (ok && sd35_job_cancelled (job))
    {
      sd35_job_unref (job);
      return fail (procedure, GIMP_PDB_CANCEL, NULL);
    }
  if (layers == NULL)
    {
      sd35_job_unref (job);
      return fail (procedure, GIMP_PDB_EXECUTION_ERROR, error);
    }
  if (run_mode != GIMP_RUN_NONINTERACTIVE)
    gimp_displays_flush ();
  ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_TAKE_CORE_OBJECT_ARRAY (ret, 1, layers);
  GIMP_VALUES_SET_INT (ret, 2, (gint) sd35_job_seed (job));
  sd35_job_unref (job);
  return ret;
}
