/* sd35-models.c — finding SD 3.5 models for the dialog's model list and telling their variant
 * from the MMDiT's tensor names (engine/discover.c's rules: attn2 → Medium, no ln_k → SD3
 * Medium, "turbo" in the file name → Large Turbo), without loading any weight.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-models.h"
#include "discover.h"
#include "safetensors.h"

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

/* hub/models--stabilityai--stable-diffusion-3.5-large/snapshots/<hash>/ */
static void
add_hf_cache (GPtrArray *paths)
{
  const gchar *hf_home = g_getenv ("HF_HOME");
  gchar       *hub;
  GDir        *dir;
  const gchar *name;

  if (hf_home != NULL && *hf_home != '\0')
    hub = g_build_filename (hf_home, "hub", NULL);
  else
    hub = g_build_filename (g_get_home_dir (), ".cache", "huggingface", "hub", NULL);
  dir = g_dir_open (hub, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      gchar       *snapshots;
      GDir        *sdir;
      const gchar *snap;

      if (! g_str_has_prefix (name, "models--stabilityai--stable-diffusion-3"))
        continue;
      snapshots = g_build_filename (hub, name, "snapshots", NULL);
      sdir = g_dir_open (snapshots, 0, NULL);
      while (sdir != NULL && (snap = g_dir_read_name (sdir)) != NULL)
        {
          gchar *path = g_build_filename (snapshots, snap, NULL);

          add_unique (paths, path);
          g_free (path);
        }
      if (sdir != NULL)
        g_dir_close (sdir);
      g_free (snapshots);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_free (hub);
}

gchar **
sd35_models_find (const gchar *extra)
{
  GPtrArray *paths = g_ptr_array_new ();

  add_unique (paths, extra);
  add_unique (paths, g_getenv ("SD35_MODEL"));
  add_hf_cache (paths);
  g_ptr_array_add (paths, NULL);
  return (gchar **) g_ptr_array_free (paths, FALSE);
}

enum sd35_variant
sd35_models_detect (const gchar  *path,
                    GError      **error)
{
  struct model_find_options opts = { 0 };
  struct sd35_model_files   files;
  struct sd35_error         err = { 0 };
  struct st_file           *st = NULL;
  enum sd35_variant         variant;

  opts.model_path = path;
  opts.need_t5 = 0;
  if (model_find (&opts, &files, &err) != SD35_OK)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s", err.message);
      return SD35_VARIANT_UNKNOWN;
    }
  if (st_open (files.mmdit, &st, &err) != SD35_OK)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s", err.message);
      model_files_clear (&files);
      return SD35_VARIANT_UNKNOWN;
    }
  variant = model_detect_variant (st, files.mmdit, 0);
  if (variant == SD35_VARIANT_UNKNOWN)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 _("%s is not a Stable Diffusion 3 model"), files.mmdit);
  st_close (st);
  model_files_clear (&files);
  return variant;
}
