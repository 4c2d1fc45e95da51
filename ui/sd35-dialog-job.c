/* sd35-dialog-job.c — the GIMP side of one Generate in the dialog, on the main thread.
 *
 * Before: the values come out of the config with the plug-in's own sd35_request_from_config,
 * and where and how big follows plugin/run.c exactly (the selection's bounding box, else the
 * image origin; sizes rounded to multiples of 16; img2img pixels and mask read and scaled
 * here, because libgimp is not thread-safe).  After: one layer per result through the
 * plug-in's sd35_pixels_insert_layer and sd35_settings_attach, all in one undo group, so each
 * try is one undo step.  The image is re-read on every try: the user may change the
 * selection between two.
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

/* img2img: the pixels under box and, when asked for, the selection as mask, both at the
 * generated size (as run.c read_inputs). */
static gboolean
read_img2img_inputs (Sd35DialogJob  *job,
                     GimpDrawable   *drawable,
                     gint            gen_w,
                     gint            gen_h,
                     GError        **error)
{
  const Sd35Box *box = &job->box;
  gboolean       scale = gen_w != box->width || gen_h != box->height;
  guint8        *rgb = sd35_pixels_read_rgb (drawable, box, error);

  if (rgb == NULL)
    return FALSE;
  if (scale)
    {
      job->init_rgb = sd35_pixels_resize (rgb, box->width, box->height, 3, FALSE, gen_w, gen_h);
      g_free (rgb);
    }
  else
    job->init_rgb = rgb;
  if (job->init_rgb == NULL)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0, _("Not enough memory to scale the layer"));
      return FALSE;
    }

  if (job->request.use_selection_mask && ! gimp_selection_is_empty (job->image))
    {
      gfloat *m = sd35_selection_read_mask (job->image, box, error);

      if (m == NULL)
        return FALSE;
      if (scale)
        {
          job->mask = sd35_pixels_resize (m, box->width, box->height, 1, TRUE, gen_w, gen_h);
          g_free (m);
        }
      else
        job->mask = m;
      if (job->mask == NULL)
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("Not enough memory to scale the selection"));
          return FALSE;
        }
      job->add_mask = TRUE;
    }
  return TRUE;
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
  if (mode == SD35_MODE_IMG2IMG &&
      ! read_img2img_inputs (job, drawables[0], gen_w, gen_h, error))
    goto fail;

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

static gchar *
layer_name (const gchar *prompt,
            guint32      seed)
{
  gchar *cut, *name;

  if (prompt == NULL || *prompt == '\0')
    prompt = "Stable Diffusion";
  cut = g_utf8_substring (prompt, 0, MIN (g_utf8_strlen (prompt, -1), 64));
  name = g_strdup_printf ("%s%s [seed %u]", cut,
                          g_utf8_strlen (prompt, -1) > 64 ? "…" : "", seed);
  g_free (cut);
  return name;
}

GimpLayer **
sd35_dialog_job_insert (Sd35DialogJob  *job,
                        GError        **error)
{
  gint        n = job->request.batch_count, i;
  GimpLayer **layers = g_new0 (GimpLayer *, n + 1);  /* NULL-terminated for the PDB */

  g_return_val_if_fail (job->status == SD35_OK, NULL);

  gimp_image_undo_group_start (job->image);
  for (i = 0; i < n; i++)
    {
      gfloat *rgba = sd35_pixels_result_rgba (&job->results[i], error);
      gchar  *name, *json;

      if (rgba == NULL)
        break;
      name = layer_name (job->request.prompt, (guint32) job->results[i].seed);
      layers[i] = sd35_pixels_insert_layer (job->image, name, rgba, job->results[i].width,
                                            job->results[i].height, &job->box, error);
      g_free (name);
      g_free (rgba);
      if (layers[i] == NULL)
        break;
      if (job->add_mask)
        {
          GimpLayerMask *mask = gimp_layer_create_mask (layers[i], GIMP_ADD_MASK_SELECTION);

          if (mask == NULL || ! gimp_layer_add_mask (layers[i], mask))
            {
              g_set_error (error, SD35_PLUGIN_ERROR, 0,
                           _("Could not add the selection as layer mask"));
              i++;
              break;
            }
        }
      json = sd35_settings_to_json (&job->request, (guint32) job->results[i].seed,
                                    job->model_name);
      sd35_settings_attach (GIMP_ITEM (layers[i]), i == 0 ? job->image : NULL, json);
      g_free (json);
    }
  if (i < n)
    for (gint j = 0; j < n && layers[j] != NULL; j++)
      gimp_image_remove_layer (job->image, layers[j]);
  gimp_image_undo_group_end (job->image);
  if (i < n)
    {
      g_free (layers);
      return NULL;
    }
  gimp_displays_flush ();
  return layers;
}
