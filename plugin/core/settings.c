/* settings.c — the "sd35-settings" parasite: how a layer was made, as JSON.
 *
 * Attached (persistent, undoable) to every new layer with its own seed, and to the image as
 * its last settings; it travels in .xcf files.  An interactive run on an image that has one
 * starts from it.  Keys: mode, prompt, negative, seed, steps, guidance, sampler,
 * prompt-weights, model (file name of the MMDiT), engine-version, and for img2img at native
 * resolution native-resolution {context, working-size, margin, feather}; a reader ignores
 * keys it does not know.
 */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "json_file.h"  /* the engine's depth-bounded JSON reader: parasites come from .xcf files */
#include "sd35-core.h"

static const gchar *
sampler_nick (enum sd35_sampler sampler)
{
  switch (sampler)
    {
    case SD35_SAMPLER_EULER:    return "euler";
    case SD35_SAMPLER_DPMPP_2M: return "dpmpp-2m";
    case SD35_SAMPLER_DEFAULT:  break;
    }
  return "default";
}

gchar *
sd35_settings_to_json (const Sd35Request *request,
                       guint32            seed,
                       const gchar       *model_name)
{
  JsonBuilder   *b = json_builder_new ();
  JsonGenerator *gen;
  JsonNode      *root;
  gchar         *json;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, request->mode == SD35_MODE_IMG2IMG ? "img2img" : "txt2img");
  json_builder_set_member_name (b, "prompt");
  json_builder_add_string_value (b, request->prompt);
  json_builder_set_member_name (b, "negative");
  json_builder_add_string_value (b, request->negative);
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, seed);
  json_builder_set_member_name (b, "steps");
  json_builder_add_int_value (b, request->steps);
  json_builder_set_member_name (b, "guidance");
  json_builder_add_double_value (b, request->guidance);
  json_builder_set_member_name (b, "sampler");
  json_builder_add_string_value (b, sampler_nick (request->sampler));
  json_builder_set_member_name (b, "prompt-weights");
  json_builder_add_string_value (b, sd35_prompt_weights_name (request->prompt_weights));
  if (request->mode == SD35_MODE_IMG2IMG)
    {
      json_builder_set_member_name (b, "strength");
      json_builder_add_double_value (b, request->strength);
    }
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, model_name != NULL ? model_name : "");
  if (request->loras != NULL && request->loras[0] != NULL)
    {
      json_builder_set_member_name (b, "loras");
      json_builder_begin_array (b);
      for (gchar **l = request->loras; *l != NULL; l++)
        json_builder_add_string_value (b, *l);
      json_builder_end_array (b);
    }
  json_builder_set_member_name (b, "engine-version");
  json_builder_add_string_value (b, SD35_VERSION);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, NULL);
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
  return json;
}

gboolean
sd35_settings_attach (GimpItem    *item,
                      GimpImage   *image,
                      const gchar *json)
{
  GimpParasite *parasite;
  gboolean      ok = TRUE;

  parasite = gimp_parasite_new (SD35_PARASITE_NAME,
                                GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE,
                                (guint32) strlen (json), json);
  if (item != NULL)
    ok = gimp_item_attach_parasite (item, parasite);
  if (image != NULL)
    ok = gimp_image_attach_parasite (image, parasite) && ok;
  gimp_parasite_free (parasite);
  return ok;
}

/* Sets prompt, negative-prompt, seed, steps, guidance and sampler of config from the image's
 * parasite.  FALSE (config untouched) when there is none or it does not parse. */
gboolean
sd35_settings_apply (GimpImage           *image,
                     GimpProcedureConfig *config)
{
  GimpParasite *parasite = gimp_image_get_parasite (image, SD35_PARASITE_NAME);
  JsonParser   *parser = NULL;
  JsonObject   *o;
  gchar        *text;
  guint32       size = 0;
  gconstpointer data;
  gboolean      ok = FALSE;

  if (parasite == NULL)
    return FALSE;
  data = gimp_parasite_get_data (parasite, &size);
  text = g_strndup (data, size);
  gimp_parasite_free (parasite);

  /* the parasite comes from .xcf files: depth-bounded parse, every member type-checked */
  if (sd35_json_parse (text, strlen (text), "sd35-settings parasite", &parser, NULL) == SD35_OK
      && (o = sd35_json_node_object (json_parser_get_root (parser))) != NULL)
    {
      const gchar *str;
      gint64       num;
      gdouble      d;

      if ((str = sd35_json_string (o, "prompt")) != NULL)
        g_object_set (config, "prompt", str, NULL);
      if ((str = sd35_json_string (o, "negative")) != NULL)
        g_object_set (config, "negative-prompt", str, NULL);
      if (sd35_json_int (o, "seed", &num) && num >= 0 && num <= G_MAXINT)
        g_object_set (config, "seed", (gint) num, NULL);
      if (sd35_json_int (o, "steps", &num) && num >= 0 && num <= 1000)
        g_object_set (config, "steps", (gint) num, NULL);
      if (sd35_json_number (o, "guidance", &d) && d >= -1.0 && d <= 50.0)
        g_object_set (config, "guidance", d, NULL);
      if ((str = sd35_json_string (o, "sampler")) != NULL
          && (strcmp (str, "default") == 0 || strcmp (str, "euler") == 0
              || strcmp (str, "dpmpp-2m") == 0))
        g_object_set (config, "sampler", str, NULL);
      if ((str = sd35_json_string (o, "prompt-weights")) != NULL
          && (strcmp (str, "comfy") == 0 || strcmp (str, "ignore") == 0))
        g_object_set (config, "prompt-weights", str, NULL);
      if (json_object_has_member (o, "loras") &&
          JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "loras")))
        {
          JsonArray    *a = json_object_get_array_member (o, "loras");
          GStrvBuilder *sb = g_strv_builder_new ();
          GStrv         strv;
          for (guint i = 0; i < json_array_get_length (a) && i < 64; i++)
            {
              JsonNode *n = json_array_get_element (a, i);
              if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
                g_strv_builder_add (sb, json_node_get_string (n));
            }
          strv = g_strv_builder_end (sb);
          g_object_set (config, "loras", strv, NULL);
          g_strfreev (strv);
          g_strv_builder_unref (sb);
        }
      ok = TRUE;
    }
  g_clear_object (&parser);
  g_free (text);
  return ok;
}
