/* sd35-models.c — the models the dialog offers and what each is, through the engine's public
 * API only (sd35_model_candidates, sd35_model_probe): the same places, the same order and the
 * same rules as the engine's own discovery, without loading a weight.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-models.h"

static void
add_unique (GPtrArray   *paths,
            const gchar *path)
{
  if (path == NULL || *path == '\0' || ! g_file_test (path, G_FILE_TEST_EXISTS))
    return;
  for (guint i = 0; i < paths->len; i++)
    if (! strcmp (g_ptr_array_index (paths, i), path))
      return;
  g_ptr_array_add (paths, g_strdup (path));
}

gchar **
sd35_models_find (const gchar *extra)
{
  GPtrArray  *paths = g_ptr_array_new ();
  char      **found = sd35_model_candidates ();

  add_unique (paths, extra);
  for (char **p = found; p != NULL && *p != NULL; p++)
    add_unique (paths, *p);
  sd35_strv_free (found);
  g_ptr_array_add (paths, NULL);
  return (gchar **) g_ptr_array_free (paths, FALSE);
}

enum sd35_variant
sd35_models_detect (const gchar  *path,
                    GError      **error)
{
  struct sd35_model_probe probe;
  struct sd35_error       err = { 0 };
  enum sd35_variant       variant = SD35_VARIANT_UNKNOWN;

  if (sd35_model_probe (path, &probe, &err) == SD35_OK)
    variant = probe.variant;
  else if (probe.mmdit_path != NULL && probe.variant == SD35_VARIANT_UNKNOWN &&
           err.status == SD35_ERR_FORMAT)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 _("%s is not a Stable Diffusion 3 model"), probe.mmdit_path);
  else
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s", probe.message);
  sd35_model_probe_clear (&probe);
  return variant;
}
