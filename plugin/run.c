/* run.c — one txt2img / img2img call: work out where and how big, read the input pixels,
 * let the worker run the engine, then insert the layers in one undo group.  Nothing touches
 * the image before the engine has succeeded, so a failed or cancelled call inserts nothing.
 * The dialog (ui/sd35-dialog-job.c) reads its inputs and inserts its layers with the same
 * sd35_run_read_inputs and sd35_run_insert_layers.
 */
#include <string.h>

#include <glib/gi18n.h>

#include "sd35-plugin.h"

static GimpValueArray *
fail (GimpProcedure     *procedure,
      GimpPDBStatusType  status,
      GError            *error)
{
  if (error != NULL)
    g_printerr ("gimp-sd35: %s\n", error->message);
  return gimp_procedure_new_return_values (procedure, status, error);
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

gboolean
sd35_run_read_inputs (GimpImage      *image,
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

  *init_rgb = NULL;
  *mask = NULL;
  if (rgb == NULL)
    return FALSE;
  if (gen_w != box->width || gen_h != box->height)
    {
      guint8 *scaled = sd35_pixels_resize (rgb, box->width, box->height, 3, FALSE, gen_w, gen_h);

      g_free (rgb);
      if (scaled == NULL)
        {
          g_set_error_literal (error, SD35_PLUGIN_ERROR, 0,
                               _("Out of memory scaling the input"));
          return FALSE;
        }
      rgb = scaled;
    }
  *init_rgb = rgb;

  if (use_mask && ! gimp_selection_is_empty (image))
    {
      gfloat *m = sd35_selection_read_mask (image, box, error);

      if (m == NULL)
        return FALSE;
      if (gen_w != box->width || gen_h != box->height)
        {
          gfloat *scaled = sd35_pixels_resize (m, box->width, box->height, 1, TRUE, gen_w, gen_h);

          g_free (m);
          if (scaled == NULL)
            {
              g_set_error_literal (error, SD35_PLUGIN_ERROR, 0,
                                   _("Out of memory scaling the mask"));
              return FALSE;
            }
          m = scaled;
        }
      *mask = m;
    }
  return TRUE;
}

GimpLayer **
sd35_run_insert_layers (GimpImage                *image,
                        const Sd35Request        *request,
                        const struct sd35_result *results,
                        gint                      n,
                        const Sd35Box            *box,
                        gboolean                  add_mask,
                        const gchar              *model_name,
                        GError                  **error)
{
  GimpLayer **layers = g_new0 (GimpLayer *, n + 1);  /* NULL-terminated for the PDB */
  gint        i;

  for (i = 0; i < n; i++)
    {
      gfloat *rgba = sd35_pixels_result_rgba (&results[i], error);
      gchar  *name, *json;

      if (rgba == NULL)
        break;
      name = layer_name (request->prompt, (guint32) results[i].seed);
      layers[i] = sd35_pixels_insert_layer (image, name, rgba, results[i].width,
                                            results[i].height, box, error);
      g_free (name);
      g_free (rgba);
      if (layers[i] == NULL)
        break;
      if (add_mask)
        {
          GimpLayerMask *mask = gimp_layer_create_mask (layers[i], GIMP_ADD_MASK_SELECTION);

          if (mask == NULL || ! gimp_layer_add_mask (layers[i], mask))
            {
              g_set_error_literal (error, SD35_PLUGIN_ERROR, 0,
                                   _("Could not add the selection as layer mask"));
              i++;
              break;
            }
        }
      json = sd35_settings_to_json (request, (guint32) results[i].seed, model_name);
      sd35_settings_attach (GIMP_ITEM (layers[i]), i == 0 ? image : NULL, json);
      g_free (json);
    }
  if (i < n)
    {
      for (gint j = 0; j < n && layers[j] != NULL; j++)
        gimp_image_remove_layer (image, layers[j]);
      g_free (layers);
      return NULL;
    }
  return layers;
}

GimpValueArray *
sd35_run_request (GimpProcedure   *procedure,
                  GimpRunMode      run_mode,
                  GimpImage       *image,
                  GimpDrawable   **drawables,
                  Sd35Request     *request,
                  Sd35EngineCache *cache)
{
  struct sd35_engine_options  options;
  struct sd35_params          params;
  struct sd35_result         *results;
  GimpValueArray             *ret;
  GimpLayer                 **layers;
  GError                     *error = NULL;
  Sd35Box                     box;
  guint8                     *init_rgb = NULL;
  gfloat                     *mask = NULL;
  gboolean                    has_selection, cancelled = FALSE, ok;
  gint                        gen_w, gen_h, n = request->batch_count;
  guint32                     seed;

  if (request->mode == SD35_MODE_IMG2IMG)
    {
      if (drawables == NULL || drawables[0] == NULL || drawables[1] != NULL)
        return fail (procedure, GIMP_PDB_CALLING_ERROR,
                     g_error_new (SD35_PLUGIN_ERROR, 0,
                                  _("Procedure '%s' works with exactly one drawable."),
                                  gimp_procedure_get_name (procedure)));
      if (! sd35_selection_drawable_box (drawables[0], &box))
        return fail (procedure, GIMP_PDB_CALLING_ERROR,
                     g_error_new (SD35_PLUGIN_ERROR, 0,
                                  _("The selection does not touch the drawable '%s'."),
                                  gimp_item_get_name (GIMP_ITEM (drawables[0]))));
      has_selection = TRUE;
    }
  else
    has_selection = sd35_selection_image_box (image, &box);

  gen_w = sd35_round16 (request->width > 0 ? request->width : box.width);
  gen_h = sd35_round16 (request->height > 0 ? request->height : box.height);
  if (! has_selection)
    {
      box.width = gen_w;  /* no selection: the layer has the generated size, at the origin */
      box.height = gen_h;
    }

  /* a huge image or selection is refused before its pixels are read: 30000×30000 would be
   * gigabytes of input for a picture the engine makes at most SD35_MAX_SIDE wide */
  if ((gint64) box.width * box.height > (gint64) SD35_MAX_SIDE * SD35_MAX_SIDE
      || gen_w > SD35_MAX_SIDE || gen_h > SD35_MAX_SIDE)
    return fail (procedure, GIMP_PDB_EXECUTION_ERROR,
                 g_error_new (SD35_PLUGIN_ERROR, 0,
                              _("The area to work on is %d×%d pixels; at most %d×%d can be "
                                "used. Select a smaller area or scale the image down."),
                              box.width, box.height, SD35_MAX_SIDE, SD35_MAX_SIDE));

  if (request->mode == SD35_MODE_IMG2IMG &&
      ! sd35_run_read_inputs (image, drawables[0], &box, gen_w, gen_h,
                              request->use_selection_mask, &init_rgb, &mask, &error))
    {
      g_free (init_rgb);
      return fail (procedure, GIMP_PDB_EXECUTION_ERROR, error);
    }

  seed = request->seed >= 0 ? (guint32) request->seed : (guint32) g_random_int_range (0, G_MAXINT);

  sd35_engine_options_init (&options);
  options.model_path = request->model;
  options.backend = request->backend;
  options.use_t5 = request->use_t5;

  sd35_params_init (&params);
  params.prompt = request->prompt;
  params.negative_prompt = request->negative;
  params.width = gen_w;
  params.height = gen_h;
  params.steps = request->steps;
  params.cfg = request->guidance;
  params.shift = request->shift;
  params.sampler = request->sampler;
  params.seed = seed;
  params.slg_scale = request->slg_scale;
  params.init_rgb = init_rgb;
  params.mask = mask;
  if (request->mode == SD35_MODE_IMG2IMG)
    params.strength = request->strength;

  g_printerr ("gimp-sd35: %s %d×%d over (%d,%d) %d×%d, seed %u, batch %d\n",
              request->mode == SD35_MODE_IMG2IMG ? "img2img" : "txt2img", gen_w, gen_h,
              box.x, box.y, box.width, box.height, seed, n);
  gimp_progress_init ("Stable Diffusion 3.5");
  results = g_new0 (struct sd35_result, n);
  ok = sd35_worker_generate (cache, &options, &params, n, results, NULL, &cancelled, &error);
  g_free (init_rgb);
  g_free (mask);

  layers = NULL;
  if (ok)
    {
      gimp_image_undo_group_start (image);
      layers = sd35_run_insert_layers (image, request, results, n, &box,
                                       request->mode == SD35_MODE_IMG2IMG &&
                                       request->use_selection_mask &&
                                       ! gimp_selection_is_empty (image),
                                       sd35_engine_cache_model_name (cache), &error);
      gimp_image_undo_group_end (image);
    }
  for (gint i = 0; i < n; i++)
    sd35_result_clear (&results[i]);
  g_free (results);
  gimp_progress_end ();

  if (cancelled)
    return fail (procedure, GIMP_PDB_CANCEL, NULL);
  if (layers == NULL)
    return fail (procedure, GIMP_PDB_EXECUTION_ERROR, error);

  if (run_mode != GIMP_RUN_NONINTERACTIVE)
    gimp_displays_flush ();
  ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_TAKE_CORE_OBJECT_ARRAY (ret, 1, layers);
  GIMP_VALUES_SET_INT (ret, 2, (gint) seed);
  return ret;
}
