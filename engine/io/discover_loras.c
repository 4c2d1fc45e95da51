/* discover_loras.c — the LoRA files a model's user can pick (sd35_find_loras in sd35.h):
 * `loras/` beside the model file or inside its release folder, and ComfyUI's layout, where
 * the model sits in models/checkpoints/ (or diffusion_models/, unet/) and LoRAs in
 * models/loras/ (subfolders allowed, as ComfyUI lists them). */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "sd35.h"

#define LORA_MAX_DEPTH 4      /* subfolders below loras/ */
#define LORA_MAX_FILES 10000  /* a huge folder is cut, not walked forever */

static void
scan (const char *dir, int depth, GPtrArray *out, GHashTable *seen)
{
  GDir       *d;
  const char *name;

  if (depth > LORA_MAX_DEPTH || (d = g_dir_open (dir, 0, NULL)) == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL && out->len < LORA_MAX_FILES)
    {
      char *path;
      if (name[0] == '.')
        continue;
      path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        scan (path, depth + 1, out, seen);
      else if (g_str_has_suffix (name, ".safetensors") &&
               g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          char *real = realpath (path, NULL);  /* the same folder reached twice counts once */
          const char *key = real ? real : path;
          if (!g_hash_table_contains (seen, key))
            {
              g_hash_table_add (seen, g_strdup (key));
              g_ptr_array_add (out, path);
              path = NULL;
            }
          free (real);
        }
      g_free (path);
    }
  g_dir_close (d);
}

static gint
cmp_path (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

char **
sd35_find_loras (const char *model_path)
{
  GPtrArray  *out = g_ptr_array_new ();
  GHashTable *seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  char       *dir, *parent, *l;

  if (model_path != NULL && *model_path)
    {
      dir = g_file_test (model_path, G_FILE_TEST_IS_DIR) ? g_strdup (model_path)
                                                         : g_path_get_dirname (model_path);
      parent = g_path_get_dirname (dir);
      l = g_build_filename (dir, "loras", NULL);
      scan (l, 0, out, seen);
      g_free (l);
      /* ComfyUI: models/checkpoints/x.safetensors → models/loras/ */
      l = g_build_filename (parent, "loras", NULL);
      scan (l, 0, out, seen);
      g_free (l);
      g_free (parent);
      g_free (dir);
    }
  g_hash_table_destroy (seen);
  g_ptr_array_sort (out, cmp_path);
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

void
sd35_strv_free (char **v)
{
  g_strfreev (v);
}
