/* request.c — the one mapping of a call: the PDB arguments (a GimpProcedureConfig, the
 * same for a script and the dialog) into an Sd35Request, and the request into the engine's
 * load options, the cache key of the resident engine and the sampling parameters.  A new
 * PDB argument is read in sd35_request_from_config and handed to the engine here. */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-core.h"

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
                "loras", &request->loras,
                NULL);
  request->sampler = gimp_procedure_config_get_choice_id (config, "sampler");
  request->backend = gimp_procedure_config_get_choice_id (config, "backend");
  request->prompt_weights = gimp_procedure_config_get_choice_id (config, "prompt-weights");
  request->context_margin = -1;
  if (mode == SD35_MODE_IMG2IMG)
    g_object_get (config,
                  "strength", &request->strength,
                  "use-selection-mask", &request->use_selection_mask,
                  "native-resolution", &request->native_resolution,
                  "context-margin", &request->context_margin,
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
  for (gchar **l = request->loras; l != NULL && *l != NULL; l++)
    {
      gchar  path[4096];
      double strength;
      if (sd35_lora_spec_parse (*l, path, sizeof path, &strength) != 0)
        {
          g_set_error (error, SD35_PLUGIN_ERROR, 0,
                       _("LoRA “%s”: expected FILE or FILE:STRENGTH with a number"), *l);
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
  g_clear_pointer (&request->loras, g_strfreev);
}

void
sd35_request_engine_options (const Sd35Request          *request,
                             struct sd35_engine_options *options)
{
  sd35_engine_options_init (options);
  options->model_path = request->model;
  options->backend = request->backend;
  options->use_t5 = request->use_t5;
}

/* Every load option that changes what sd35_engine_open builds: a resident engine opened with
 * another key is freed and the model loaded again. */
gchar *
sd35_engine_options_key (const struct sd35_engine_options *o)
{
  return g_strdup_printf ("%s|%s|%s|%d|%d|%d", o->model_path ? o->model_path : "",
                          o->text_encoders_dir ? o->text_encoders_dir : "",
                          o->tokenizers_dir ? o->tokenizers_dir : "", o->backend,
                          o->use_t5, o->force_turbo);
}

void
sd35_request_params (const Sd35Request  *request,
                     gint                gen_w,
                     gint                gen_h,
                     guint32             seed,
                     const guint8       *init_rgb,
                     const gfloat       *mask,
                     struct sd35_params *params)
{
  sd35_params_init (params);
  params->prompt = request->prompt;
  params->negative_prompt = request->negative;
  params->width = gen_w;
  params->height = gen_h;
  params->steps = request->steps;
  params->cfg = request->guidance;
  params->shift = request->shift;
  params->sampler = request->sampler;
  params->prompt_weights = request->prompt_weights;
  params->seed = seed;
  params->slg_scale = request->slg_scale;
  params->init_rgb = init_rgb;
  params->mask = mask;
  if (request->mode == SD35_MODE_IMG2IMG)
    params->strength = request->strength;
}
