/* procedures.c — the PDB face of the plug-in: menu place, documentation and the argument
 * list of plug-in-sd35-txt2img / -img2img (and of their resident twins, which take the very
 * same arguments, plus two of their own), and their return values.  What a call's values
 * mean is read in the plug-in core (core/request.c).  Argument names are PDB API: scripts
 * use them, keep them stable. */
#include <string.h>

#include <glib/gi18n-lib.h>

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
  gimp_procedure_add_choice_argument (procedure, "prompt-weights", _("Prompt _weights"),
                                      _("What (word:1.3) in a prompt does: comfy = as in "
                                        "ComfyUI, a weight above 1 strengthens the words, "
                                        "below 1 weakens them, (word) = 1.1; ignore = parsed "
                                        "and ignored, as the official reference code"),
                                      gimp_choice_new_with_values (
                                        "comfy", SD35_PROMPT_WEIGHTS_COMFY,
                                        _("Applied (as ComfyUI)"), NULL,
                                        "ignore", SD35_PROMPT_WEIGHTS_IGNORE,
                                        _("Ignored (as the reference)"), NULL,
                                        NULL),
                                      "comfy", G_PARAM_READWRITE);
  /* appended after the older arguments: Script-Fu calls them by position */
  gimp_procedure_add_string_array_argument (procedure, "loras", _("_LoRAs"),
                                            _("LoRA files merged into the model, each "
                                              "\"FILE\" or \"FILE:STRENGTH\" (strength 1 "
                                              "when left out, negative allowed; safetensors "
                                              "in diffusers, kohya or official-key form)"),
                                            G_PARAM_READWRITE);
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
           "latent space and becomes the new layer's mask. With native-resolution (the "
           "default) and a selection, the selection's box grown by context-margin is "
           "generated at about 1 megapixel (width × height when given), scaled back and "
           "blended in under the feathered selection: the new layer covers only that, with "
           "the feathered selection as its mask."),
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
      gimp_procedure_add_boolean_argument (procedure, "native-resolution",
                                           _("Work at the model's _native resolution"),
                                           _("With a selection: take the selection and a "
                                             "margin of context around it, generate that at "
                                             "about 1 megapixel (or width × height when "
                                             "given), scale it back and blend it in under "
                                             "the feathered selection; the new layer covers "
                                             "only that"),
                                           TRUE, G_PARAM_READWRITE);
      gimp_procedure_add_int_argument (procedure, "context-margin", _("Context _margin"),
                                       _("Pixels of context around the selection for "
                                         "native resolution (-1 = automatic: half the "
                                         "selection's larger side, 32 to 512)"),
                                       -1, 4096, -1, G_PARAM_READWRITE);
    }

  if (resident)
    {
      /* not translated: only the plug-in's own forwarder sets them */
      gimp_procedure_add_string_argument (procedure, ARG_PROGRESS, "Progress procedure",
                                          "Temporary procedure (text, fraction) of the caller "
                                          "that shows the progress; empty: this call's own",
                                          "", G_PARAM_READWRITE);
      gimp_procedure_add_boolean_argument (procedure, ARG_DIALOG, "Dialog",
                                           "Open the dialog here, in the resident process",
                                           FALSE, G_PARAM_READWRITE);
      gimp_procedure_add_bytes_argument (procedure, ARG_PARENT, "Parent window",
                                         "Window handle the dialog is transient for",
                                         G_PARAM_READWRITE);
    }

  gimp_procedure_add_core_object_array_return_value (procedure, "layers", _("Layers"),
                                                     _("The new layers, top first"),
                                                     GIMP_TYPE_LAYER, G_PARAM_READWRITE);
  gimp_procedure_add_int_return_value (procedure, "seed", _("Seed"),
                                       _("The seed of the first image"), 0, G_MAXINT, 0,
                                       G_PARAM_READWRITE);
  if (resident)
    gimp_procedure_add_string_return_value (procedure, RET_CONFIG, "Dialog values",
                                            "The dialog's last values (GimpConfig text) for "
                                            "the caller's config; empty without a dialog",
                                            "", G_PARAM_READWRITE);
  return procedure;
}
