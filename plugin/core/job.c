/* job.c — one generation, the GIMP side, on the main thread.
 *
 * Before: where and how big (the selection's bounding box, else the image origin; sizes
 * rounded to multiples of 16), and for img2img the pixels and the selection as mask, read
 * and scaled here because libgimp is not thread-safe.  Then the worker (worker.c) runs it on
 * the resident engine.  After: one layer per result over the box, the settings parasite, all
 * in one undo group.  Nothing touches the image before the engine has succeeded, so a failed
 * or cancelled job inserts nothing.  The PDB procedures (run.c) and the dialog (ui/) use the
 * same jobs.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-core-private.h"

Sd35Job *
sd35_job_ref (Sd35Job *job)
{
  g_atomic_int_inc (&job->ref_count);
  return job;
}

void
sd35_job_unref (Sd35Job *job)
{
  if (job == NULL || ! g_atomic_int_dec_and_test (&job->ref_count))
    return;
  if (job->results != NULL)
    for (gint i = 0; i < job->request.batch_count; i++)
      sd35_result_clear (&job->results[i]);
  g_free (job->results);
  sd35_engine_holder_unref (job->holder);
  g_weak_ref_clear (&job->owner);
  g_clear_pointer (&job->context, g_main_context_unref);
  sd35_request_clear (&job->request);
  g_clear_object (&job->image);
  g_free (job->init_rgb);
  g_free (job->mask);
  g_free (job->key);
  _sd35_inpaint_free (job->inpaint);
  g_free (job->variant);
  g_free (job->model_name);
  g_free (job);
}

/* buf (box->width × box->height × channels; gfloat with is_float, else guint8) at gen_w ×
 * gen_h: buf itself when it is that size, else a scaled copy and buf is freed.  NULL (buf
 * freed, oom_message in error) when out of memory. */
static gpointer
scale_to (gpointer       buf,
          const Sd35Box *box,
          gint           channels,
          gboolean       is_float,
          gint           gen_w,
          gint           gen_h,
          const gchar   *oom_message,
          GError       **error)
{
  gpointer scaled;

  if (gen_w == box->width && gen_h == box->height)
    return buf;
  scaled = sd35_pixels_resize (buf, box->width, box->height, channels, is_float, gen_w, gen_h);
  g_free (buf);
  if (scaled == NULL)
    g_set_error_literal (error, SD35_PLUGIN_ERROR, 0, oom_message);
  return scaled;
}

/* The img2img inputs: the pixels of drawable under box and, when use_mask and the image has
 * a selection, the selection as a mask, both scaled to gen_w × gen_h.  *mask stays NULL
 * without a selection (everything would be kept). */
static gboolean
read_inputs (GimpImage      *image,
             GimpDrawable   *drawable,
             const Sd35Box  *box,
             gint            gen_w,
             gint            gen_h,
             gboolean        use_mask,
             guint8        **init_rgb,
             gfloat        **mask,
             GError        **error)
{
  guint8 *rgb = sd35_pixels_read_rgb (drawable, box, error);

  if (rgb == NULL ||
      (rgb = scale_to (rgb, box, 3, FALSE, gen_w, gen_h,
                       _("Out of memory scaling the input"), error)) == NULL)
    return FALSE;
  *init_rgb = rgb;

  if (use_mask && ! gimp_selection_is_empty (image))
    {
      gfloat *m = sd35_selection_read_mask (image, box, error);

      if (m == NULL ||
          (m = scale_to (m, box, 1, TRUE, gen_w, gen_h,
                         _("Out of memory scaling the mask"), error)) == NULL)
        return FALSE;
      *mask = m;
    }
  return TRUE;
}

Sd35Job *
sd35_job_new_from_request (Sd35Request   *request,
                           GimpImage     *image,
                           GimpDrawable **drawables,
                           gboolean      *calling_error,
                           GError       **error)
{
  Sd35Job  *job = g_new0 (Sd35Job, 1);
  gboolean  has_selection;
  gint      gen_w, gen_h;
  guint32   seed;

  if (calling_error != NULL)
    *calling_error = FALSE;
  job->ref_count = 1;
  g_weak_ref_init (&job->owner, NULL);
  job->image = g_object_ref (image);
  job->request = *request;
  memset (request, 0, sizeof *request);

  if (job->request.mode == SD35_MODE_IMG2IMG)
    {
      if (drawables == NULL || drawables[0] == NULL || drawables[1] != NULL)
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("Image to Image works on exactly one layer: select one in the "
                         "Layers dialog."));
          goto calling_fail;
        }
      if (! sd35_selection_drawable_box (drawables[0], &job->box))
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("The selection does not touch the layer “%s”: move the selection "
                         "or pick another layer."),
                       gimp_item_get_name (GIMP_ITEM (drawables[0])));
          goto calling_fail;
        }
      has_selection = TRUE;
    }
  else
    has_selection = sd35_selection_image_box (image, &job->box);

  gen_w = sd35_round16 (job->request.width > 0 ? job->request.width : job->box.width);
  gen_h = sd35_round16 (job->request.height > 0 ? job->request.height : job->box.height);
  if (! has_selection)
    {
      job->box.width = gen_w;  /* no selection: the layer has the generated size, at the origin */
      job->box.height = gen_h;
    }
  /* a huge image or selection is refused before its pixels are read: 30000×30000 would be
   * gigabytes of input for a picture the engine makes at most SD35_MAX_SIDE wide */
  if ((gint64) job->box.width * job->box.height > (gint64) SD35_MAX_SIDE * SD35_MAX_SIDE
      || gen_w > SD35_MAX_SIDE || gen_h > SD35_MAX_SIDE)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0,
                   _("The area to work on is %d×%d pixels; at most %d×%d can be "
                     "used. Select a smaller area or scale the image down."),
                   job->box.width, job->box.height, SD35_MAX_SIDE, SD35_MAX_SIDE);
      goto fail;
    }
  if (job->request.mode == SD35_MODE_IMG2IMG && job->request.native_resolution &&
      ! gimp_selection_is_empty (image))
    {
      if (! _sd35_inpaint_prepare (job, drawables[0], &gen_w, &gen_h, error))
        goto fail;
    }
  else if (job->request.mode == SD35_MODE_IMG2IMG)
    {
      if (! read_inputs (image, drawables[0], &job->box, gen_w, gen_h,
                         job->request.use_selection_mask, &job->init_rgb, &job->mask, error))
        goto fail;
      job->add_mask = job->mask != NULL;  /* a selection, and the caller asked for it */
    }

  seed = job->request.seed >= 0 ? (guint32) job->request.seed :
                                  (guint32) g_random_int_range (0, G_MAXINT);
  sd35_request_engine_options (&job->request, &job->options);
  job->key = sd35_engine_options_key (&job->options);
  sd35_request_params (&job->request, gen_w, gen_h, seed, job->init_rgb, job->mask,
                       &job->params);
  job->results = g_new0 (struct sd35_result, MAX (job->request.batch_count, 1));
  job->holder = sd35_engine_holder_get ();
  return job;

calling_fail:
  if (calling_error != NULL)
    *calling_error = TRUE;
fail:
  sd35_job_unref (job);
  return NULL;
}

Sd35Job *
sd35_job_new (GimpProcedureConfig  *config,
              Sd35Mode              mode,
              GimpImage            *image,
              GimpDrawable        **drawables,
              GError              **error)
{
  Sd35Request request;

  if (! sd35_request_from_config (&request, mode, config, error))
    {
      sd35_request_clear (&request);
      return NULL;
    }
  return sd35_job_new_from_request (&request, image, drawables, NULL, error);
}

gboolean
sd35_job_start (Sd35Job            *job,
                Sd35JobReportFunc   report,
                gpointer            user_data,
                GObject            *owner,
                GError            **error)
{
  g_return_val_if_fail (job->context == NULL, FALSE);

  job->context = g_main_context_ref_thread_default ();
  job->report = report;
  job->user_data = user_data;
  job->has_owner = owner != NULL;
  g_weak_ref_set (&job->owner, owner);
  return _sd35_worker_push (job, error);
}

typedef struct
{
  Sd35JobReportFunc  report;
  gpointer           user_data;
  GMainLoop         *loop;
} SyncRun;

static void
sync_report (Sd35Job             *job,
             const Sd35JobReport *report,
             gpointer             data)
{
  SyncRun *run = data;

  if (run->report != NULL)
    run->report (job, report, run->user_data);
  if (report->kind == SD35_JOB_DONE)
    g_main_loop_quit (run->loop);
}

gboolean
sd35_job_run (Sd35Job            *job,
              Sd35JobReportFunc   report,
              gpointer            user_data,
              GError            **error)
{
  GMainContext *context = g_main_context_new ();
  SyncRun       run = { report, user_data, g_main_loop_new (context, FALSE) };
  gboolean      ok;

  /* a private context: a persistent plug-in does not start a second call meanwhile */
  g_main_context_push_thread_default (context);
  ok = sd35_job_start (job, sync_report, &run, NULL, error);
  if (ok)
    g_main_loop_run (run.loop);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (run.loop);
  g_main_context_unref (context);
  return ok;
}

void
sd35_job_cancel (Sd35Job *job)
{
  g_atomic_int_set (&job->cancel, 1);
}

gboolean
sd35_job_cancelled (Sd35Job *job)
{
  return job->status == SD35_CANCELLED;
}

gboolean
sd35_job_succeeded (Sd35Job  *job,
                    GError  **error)
{
  if (job->status == SD35_OK || job->status == SD35_CANCELLED)
    return job->status == SD35_OK;
  sd35_plugin_set_error (error, job->headline, &job->err);
  return FALSE;
}

gboolean
sd35_job_loaded_model (Sd35Job *job)
{
  return job->loaded_model;
}

gdouble
sd35_job_run_seconds (Sd35Job *job)
{
  return job->run_s;
}

gdouble
sd35_job_load_seconds (Sd35Job *job)
{
  return job->load_s;
}

const Sd35Request *
sd35_job_request (Sd35Job *job)
{
  return &job->request;
}

guint32
sd35_job_seed (Sd35Job *job)
{
  return (guint32) job->params.seed;
}

gint
sd35_job_width (Sd35Job *job)
{
  return job->params.width;
}

gint
sd35_job_height (Sd35Job *job)
{
  return job->params.height;
}

const Sd35Box *
sd35_job_box (Sd35Job *job)
{
  return &job->box;
}

const guint8 *
sd35_job_result_rgb (Sd35Job *job,
                     gint    *width,
                     gint    *height)
{
  if (job->status != SD35_OK || job->results == NULL || job->results[0].rgb == NULL)
    return NULL;
  *width = job->results[0].width;
  *height = job->results[0].height;
  return job->results[0].rgb;
}

const gchar *
sd35_job_variant (Sd35Job *job)
{
  return job->variant;
}

static gchar *
layer_name (const gchar *prompt,
            guint32      seed)
{
  gchar *name;

  if (prompt == NULL || *prompt == '\0')
    prompt = "Stable Diffusion";
  if (g_utf8_strlen (prompt, -1) > 64)
    {
      gchar *cut = g_utf8_substring (prompt, 0, 64);

      name = g_strdup_printf ("%s… [seed %u]", cut, seed);
      g_free (cut);
    }
  else
    name = g_strdup_printf ("%s [seed %u]", prompt, seed);
  return name;
}

/* One layer per chosen result over the box (scaled to it), named after the prompt and
 * seed, with the selection as layer mask when the job used it, and the settings parasite. */
static GimpLayer **
insert_layers (Sd35Job         *job,
               const gboolean  *chosen,
               GError         **error)
{
  gint        n = job->request.batch_count, n_layers = 0;
  GimpLayer **layers = g_new0 (GimpLayer *, n + 1);  /* NULL-terminated for the PDB */
  gboolean    failed = FALSE;

  for (gint i = 0; i < n && ! failed; i++)
    {
      const struct sd35_result *r = &job->results[i];
      gfloat                   *rgba;
      gchar                    *name, *json;
      GimpLayer                *layer;

      if (chosen != NULL && ! chosen[i])
        continue;
      if ((rgba = sd35_pixels_result_rgba (r, error)) == NULL)
        {
          failed = TRUE;
          break;
        }
      name = layer_name (job->request.prompt, (guint32) r->seed);
      if (job->inpaint != NULL)
        layer = _sd35_inpaint_insert_layer (job, r, name, error);
      else
        layer = sd35_pixels_insert_layer (job->image, name, rgba, r->width, r->height,
                                          &job->box, error);
      g_free (name);
      g_free (rgba);
      if (layer == NULL)
        {
          failed = TRUE;
          break;
        }
      layers[n_layers++] = layer;
      if (job->add_mask)
        {
          GimpLayerMask *mask = gimp_layer_create_mask (layer, GIMP_ADD_MASK_SELECTION);

          if (mask == NULL || ! gimp_layer_add_mask (layer, mask))
            {
              g_set_error_literal (error, SD35_PLUGIN_ERROR, 0,
                                   _("Could not add the selection as layer mask"));
              failed = TRUE;
              break;
            }
        }
      json = sd35_settings_to_json (&job->request, (guint32) r->seed, job->model_name);
      if (job->inpaint != NULL)
        {
          gchar *more = _sd35_inpaint_settings_json (job, json);
          g_free (json);
          json = more;
        }
      sd35_settings_attach (GIMP_ITEM (layer), n_layers == 1 ? job->image : NULL, json);
      g_free (json);
    }
  if (failed)
    {
      for (gint j = 0; j < n_layers; j++)
        gimp_image_remove_layer (job->image, layers[j]);
      g_free (layers);
      return NULL;
    }
  return layers;
}

gint
sd35_job_n_images (Sd35Job *job)
{
  return job->request.batch_count;
}

const struct sd35_result *
sd35_job_result (Sd35Job *job,
                 gint     i)
{
  g_return_val_if_fail (i >= 0 && i < job->request.batch_count, NULL);
  return &job->results[i];
}

GimpLayer **
sd35_job_insert_chosen (Sd35Job         *job,
                        const gboolean  *chosen,
                        GError         **error)
{
  GimpLayer **layers;

  g_return_val_if_fail (job->status == SD35_OK, NULL);

  gimp_image_undo_group_start (job->image);
  layers = insert_layers (job, chosen, error);
  gimp_image_undo_group_end (job->image);
  return layers;
}

GimpLayer **
sd35_job_insert (Sd35Job  *job,
                 GError  **error)
{
  return sd35_job_insert_chosen (job, NULL, error);
}
