/* sd35-dialog-job.c — the GIMP side of one Generate in the dialog, on the main thread.
 *
 * Before: the values come out of the config with the plug-in's own sd35_request_from_config,
 * and where and how big follows plugin/run.c exactly (the selection's bounding box, else the
 * image origin; sizes rounded to multiples of 16); the img2img pixels and mask are read and
 * scaled here, on the main thread, because libgimp is not thread-safe, with the plug-in's
 * sd35_run_read_inputs.  After: the plug-in's sd35_run_insert_layers (one layer per result,
 * the settings parasite), all in one undo group, so each try is one undo step.  The image is
 * re-read on every try: the user may change the selection between two.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-job.h"

Sd35DialogJob *
sd35_dialog_job_ref (Sd35DialogJob *job)
{
  g_atomic_int_inc (&job->ref_count);
  return job;
}

void
sd35_dialog_job_unref (Sd35DialogJob *job)
{
  if (job == NULL || ! g_atomic_int_dec_and_test (&job->ref_count))
    return;
  if (job->results != NULL)
    for (gint i = 0; i < job->request.batch_count; i++)
      sd35_result_clear (&job->results[i]);
  g_free (job->results);
  if (job->engine != NULL)
    sd35_dialog_engine_unref (job->engine);
  g_weak_ref_clear (&job->owner);
  sd35_request_clear (&job->request);
  g_clear_object (&job->image);
  g_free (job->init_rgb);
  g_free (job->mask);
  g_free (job->key);
  g_free (job->variant);
  g_free (job->model_name);
  g_free (job);
}

Sd35DialogJob *
sd35_dialog_job_new (GimpProcedureConfig  *config,
                     Sd35Mode              mode,
                     GimpImage            *image,
                     GimpDrawable        **drawables,
                     GError              **error)
{
  Sd35DialogJob *job = g_new0 (Sd35DialogJob, 1);
  gboolean       has_selection;
  gint           gen_w, gen_h;
  guint32        seed;

  job->ref_count = 1;
  g_weak_ref_init (&job->owner, NULL);
  job->image = g_object_ref (image);
  if (! sd35_request_from_config (&job->request, mode, config, error))
    goto fail;

  if (mode == SD35_MODE_IMG2IMG)
    {
      if (drawables == NULL || drawables[0] == NULL || drawables[1] != NULL)
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("Image to Image works on exactly one layer: select one in the "
                         "Layers dialog."));
          goto fail;
        }
      if (! sd35_selection_drawable_box (drawables[0], &job->box))
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("The selection does not touch the layer “%s”: move the selection "
                         "or pick another layer."),
                       gimp_item_get_name (GIMP_ITEM (drawables[0])));
          goto fail;
        }
      has_selection = TRUE;
    }
  else
    has_selection = sd35_selection_image_box (image, &job->box);

  gen_w = sd35_round16 (job->request.width > 0 ? job->request.width : job->box.width);
  gen_h = sd35_round16 (job->request.height > 0 ? job->request.height : job->box.height);
  if (! has_selection)
    {
      job->box.width = gen_w;
      job->box.height = gen_h;
    }
  if (mode == SD35_MODE_IMG2IMG)
    {
      if (! sd35_run_read_inputs (image, drawables[0], &job->box, gen_w, gen_h,
                                  job->request.use_selection_mask, &job->init_rgb,
                                  &job->mask, error))
        goto fail;
      job->add_mask = job->mask != NULL;  /* a selection, and the user asked for it */
    }

  seed = job->request.seed >= 0 ? (guint32) job->request.seed :
                                  (guint32) g_random_int_range (0, G_MAXINT);

  sd35_engine_options_init (&job->options);
  job->options.model_path = job->request.model;
  job->options.backend = job->request.backend;
  job->options.use_t5 = job->request.use_t5;
  job->key = g_strdup_printf ("%s|%d|%d", job->request.model ? job->request.model : "",
                              job->request.backend, job->request.use_t5);

  sd35_params_init (&job->params);
  job->params.prompt = job->request.prompt;
  job->params.negative_prompt = job->request.negative;
  job->params.width = gen_w;
  job->params.height = gen_h;
  job->params.steps = job->request.steps;
  job->params.cfg = job->request.guidance;
  job->params.shift = job->request.shift;
  job->params.sampler = job->request.sampler;
  job->params.seed = seed;
  job->params.slg_scale = job->request.slg_scale;
  job->params.init_rgb = job->init_rgb;
  job->params.mask = job->mask;
  if (mode == SD35_MODE_IMG2IMG)
    job->params.strength = job->request.strength;

  job->results = g_new0 (struct sd35_result, job->request.batch_count);
  return job;

fail:
  sd35_dialog_job_unref (job);
  return NULL;
}

void
sd35_dialog_job_cancel (Sd35DialogJob *job)
{
  g_atomic_int_set (&job->cancel, 1);
}

gboolean
sd35_dialog_job_cancelled (Sd35DialogJob *job)
{
  return job->status == SD35_CANCELLED;
}

gboolean
sd35_dialog_job_succeeded (Sd35DialogJob  *job,
                           GError        **error)
{
  if (job->status == SD35_OK || job->status == SD35_CANCELLED)
    return job->status == SD35_OK;
  sd35_plugin_set_error (error, job->headline, &job->err);
  return FALSE;
}

guint32
sd35_dialog_job_seed (Sd35DialogJob *job)
{
  return (guint32) job->params.seed;
}

gint
sd35_dialog_job_width (Sd35DialogJob *job)
{
  return job->params.width;
}

gint
sd35_dialog_job_height (Sd35DialogJob *job)
{
  return job->params.height;
}

const guint8 *
sd35_dialog_job_result_rgb (Sd35DialogJob *job,
                            gint          *width,
                            gint          *height)
{
  if (job->status != SD35_OK || job->results == NULL || job->results[0].rgb == NULL)
    return NULL;
  *width = job->results[0].width;
  *height = job->results[0].height;
  return job->results[0].rgb;
}

const gchar *
sd35_dialog_job_variant (Sd35DialogJob *job)
{
  return job->variant;
}

GimpLayer **
sd35_dialog_job_insert (Sd35DialogJob  *job,
                        GError        **error)
{
  GimpLayer **layers;

  g_return_val_if_fail (job->status == SD35_OK, NULL);

  gimp_image_undo_group_start (job->image);
  layers = sd35_run_insert_layers (job->image, &job->request, job->results,
                                   job->request.batch_count, &job->box, job->add_mask,
                                   job->model_name, error);
  gimp_image_undo_group_end (job->image);
  if (layers != NULL)
    gimp_displays_flush ();
  return layers;
}
