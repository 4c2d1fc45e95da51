/* procedures.c — the PDB face of the plug-in: menu place, documentation and the argument
 * list of plug-in-sd35-txt2img / -img2img (and of their resident twins, which take the very
 * same arguments), and reading one call's values back out of a GimpProcedureConfig.
 * Argument names are PDB API: scripts use them, keep them stable. */
#include <string.h>

#include <glib/gi18n.h>

#include "sd35-plugin.h"

#define MENU_PATH "<Image>/Filters/Render/Stable Diffusion 3.5"

static void
add_common_arguments (GimpProcedure *procedure)
{
  gimp_procedure_add_string_argument (procedure, "prompt", _("_Prompt"),
                                      _("What the image shows"),
                                      "a photo of a red fox in the snow", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (procedure, "negative-prompt",
                                      _("_Negative prompt"),
                                      _("What the image should not show"), "",
                                      G_PARAM_READWRITE);
  gimp_procedure_add_file_argument (procedure, "model", _("_Model"),
                                    _("An MMDiT .safetensors file or an SD 3.5 release folder; "
                                      "none = look for one as the sd35 CLI does ($SD35_MODEL, "
                                      "the Hugging Face cache)"),
                                    GIMP_FILE_CHOOSER_ACTION_ANY, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "steps", _("_Steps"),
                                   _("Sampling steps (0 = the model's default)"),
                                   0, 1000, 0, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "guidance", _("_Guidance"),
                                      _("Classifier-free guidance scale (< 0 = the model's "
                                        "default)"), -1.0, 50.0, -1.0, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "seed", _("S_eed"),
                                   _("Noise seed (-1 = random; the seed used is returned)"),
                                   -1, G_MAXINT, -1, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "width", _("_Width"),
                                   _("Width (0 = the selection's bounds, else the image's; "
                                     "rounded to a multiple of 16)"),
                                   0, SD35_MAX_SIDE, 0, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "height", _("_Height"),
                                   _("Height (0 = the selection's bounds, else the image's; "
                                     "rounded to a multiple of 16)"),
                                   0, SD35_MAX_SIDE, 0, G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument (procedure, "sampler", _("Sa_mpler"),
                                      _("Sampler"),
                                      gimp_choice_new_with_values (
                                        "default", SD35_SAMPLER_DEFAULT, _("Model default"),
                                        NULL,
                                        "euler", SD35_SAMPLER_EULER, _("Euler"), NULL,
                                        "dpmpp-2m", SD35_SAMPLER_DPMPP_2M, _("DPM++ 2M"), NULL,
                                        NULL),
                                      "default", G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "shift", _("S_hift"),
                                      _("Timestep shift (<= 0 = the model's default)"),
                                      0.0, 100.0, 0.0, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "slg-scale",
                                      _("Skip-_layer guidance"),
                                      _("Skip-layer guidance scale (0 = off; SD3.5 Medium "
                                        "uses 2.5)"), 0.0, 50.0, 0.0, G_PARAM_READWRITE);
  gimp_procedure_add_boolean_argument (procedure, "use-t5", _("Use _T5"),
                                       _("Use the T5-XXL text encoder (off: less memory, "
                                         "weaker prompt following)"), TRUE, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "batch-count", _("_Batch count"),
                                   _("Number of images, one layer each, seeds s, s+1, ..."),
                                   1, SD35_MAX_BATCH, 1, G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument (procedure, "backend", _("Bac_kend"),
                                      _("Compute backend"),
                                      gimp_choice_new_with_values (
                                        "auto", SD35_BACKEND_AUTO, _("Automatic"), NULL,
                                        "cuda", SD35_BACKEND_CUDA, _("CUDA (NVIDIA GPU)"),
                                        NULL,
                                        "cpu", SD35_BACKEND_CPU, _("CPU"), NULL,
                                        NULL),
                                      "auto", G_PARAM_READWRITE);
}

GimpProcedure *
sd35_procedure_new (GimpPlugIn       *plug_in,
                    const gchar      *name,
                    Sd35Mode          mode,
                    GimpPDBProcType   proc_type,
                    GimpRunImageFunc  run_func)
{
  GimpProcedure *procedure;
  gboolean       resident = (proc_type == GIMP_PDB_PROC_TYPE_TEMPORARY);

  procedure = gimp_image_procedure_new (plug_in, name, proc_type, run_func, NULL, NULL);
  gimp_procedure_set_image_types (procedure, "RGB*, GRAY*");

  if (mode == SD35_MODE_TXT2IMG)
    {
      gimp_procedure_set_sensitivity_mask (procedure,
                                           GIMP_PROCEDURE_SENSITIVE_DRAWABLE |
                                           GIMP_PROCEDURE_SENSITIVE_DRAWABLES |
                                           GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES);
      if (! resident)
        gimp_procedure_set_menu_label (procedure, _("_Text to Image..."));
      gimp_procedure_set_documentation
        (procedure,
         _("Render a new layer from a text prompt with Stable Diffusion 3.5"),
         _("Generates an image from the prompt with a local Stable Diffusion 3.5 model and "
           "adds it as a new layer: over the selection's bounding box when there is a "
           "selection (scaled to it when the sizes differ), else at the image origin. "
           "batch-count > 1 adds one layer per seed (s, s+1, ...). Returns the new layers "
           "and the seed used. Also records the settings in the 'sd35-settings' parasite "
           "(JSON) of the image and of each new layer."),
         name);
    }
  else
    {
      gimp_procedure_set_sensitivity_mask (procedure, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
      if (! resident)
        gimp_procedure_set_menu_label (procedure, _("_Image to Image..."));
      gimp_procedure_set_documentation
        (procedure,
         _("Redraw the selection (or the layer) with Stable Diffusion 3.5"),
         _("Encodes the pixels of the selected drawable under the selection's bounding box "
           "(or the whole drawable), samples from them with the given strength (1 = ignore "
           "them) and adds the result as a new layer over that box. With "
           "use-selection-mask the selection, soft edges included, limits the change in "
           "latent space and becomes the new layer's mask."),
         name);
    }
  if (! resident)
    gimp_procedure_add_menu_path (procedure, MENU_PATH);
  gimp_procedure_set_attribution (procedure, "gimp-sd35 contributors",
                                  "gimp-sd35 contributors (GPL-3.0-or-later)", "2026");

  add_common_arguments (procedure);
  if (mode == SD35_MODE_IMG2IMG)
    {
      gimp_procedure_add_double_argument (procedure, "strength", _("St_rength"),
                                          _("How much to change (0 = nothing, 1 = ignore the "
                                            "input)"), 0.0, 1.0, 0.8, G_PARAM_READWRITE);
      gimp_procedure_add_boolean_argument (procedure, "use-selection-mask",
                                           _("Use the selection as _mask"),
                                           _("Regenerate only inside the selection (soft "
                                             "edges kept) and use it as the layer mask"),
                                           FALSE, G_PARAM_READWRITE);
    }

  gimp_procedure_add_core_object_array_return_value (procedure, "layers", _("Layers"),
                                                     _("The new layers, top first"),
                                                     GIMP_TYPE_LAYER, G_PARAM_READWRITE);
  gimp_procedure_add_int_return_value (procedure, "seed", _("Seed"),
                                       _("The seed of the first image"), 0, G_MAXINT, 0,
                                       G_PARAM_READWRITE);
  return procedure;
}

gint
sd35_round16 (gint side)
{
  gint r = ((side + 8) / 16) * 16;

  return CLAMP (r, 16, SD35_MAX_SIDE);
}

gboolean
sd35_request_from_config (Sd35Request          *request,
                          Sd35Mode              mode,
                          GimpProcedureConfig  *config,
                          GError              **error)
{
  GFile *model = NULL;

  memset (request, 0, sizeof *request);
  request->mode = mode;
  g_object_get (config,
                "prompt", &request->prompt,
                "negative-prompt", &request->negative,
                "model", &model,
                "steps", &request->steps,
                "guidance", &request->guidance,
                "seed", &request->seed,
                "width", &request->width,
                "height", &request->height,
                "shift", &request->shift,
                "slg-scale", &request->slg_scale,
                "use-t5", &request->use_t5,
                "batch-count", &request->batch_count,
                NULL);
  request->sampler = gimp_procedure_config_get_choice_id (config, "sampler");
  request->backend = gimp_procedure_config_get_choice_id (config, "backend");
  if (mode == SD35_MODE_IMG2IMG)
    g_object_get (config,
                  "strength", &request->strength,
                  "use-selection-mask", &request->use_selection_mask,
                  NULL);

  if (model != NULL)
    {
      request->model = g_file_get_path (model);
      g_object_unref (model);
      if (request->model == NULL)
        {
          g_set_error_literal (error, SD35_PLUGIN_ERROR, 0,
                               _("The model must be a local file or folder"));
          return FALSE;
        }
    }
  if (request->prompt == NULL)
    request->prompt = g_strdup ("");
  if (request->negative == NULL)
    request->negative = g_strdup ("");
  if (mode == SD35_MODE_IMG2IMG && request->strength <= 0.0)
    {
      g_set_error (error, SD35_PLUGIN_ERROR, 0,
                   _("strength must be above 0 (it is %g): 0 would change nothing"),
                   request->strength);
      return FALSE;
    }
  return TRUE;
}

void
sd35_request_clear (Sd35Request *request)
{
  g_clear_pointer (&request->prompt, g_free);
  g_clear_pointer (&request->negative, g_free);
  g_clear_pointer (&request->model, g_free);
}
