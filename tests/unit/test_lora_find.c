/* sd35_find_loras: loras/ beside a model file or inside a release folder, ComfyUI's
 * models/loras/ beside models/checkpoints/, subfolders, only *.safetensors, sorted, no
 * duplicates. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd35.h"
#include "testutil.h"

static void
touch (const char *root, const char *rel)
{
  char *p = g_build_filename (root, rel, NULL), *d = g_path_get_dirname (p);

  g_mkdir_with_parents (d, 0755);
  g_file_set_contents (p, "x", 1, NULL);
  g_free (d);
  g_free (p);
}

static int
list_is (char **got, const char *root, const char *const *want, int n)
{
  int i, ok = 1;

  for (i = 0; got[i] != NULL && i < n; i++)
    {
      char *w = g_build_filename (root, want[i], NULL);
      ok &= strcmp (got[i], w) == 0;
      if (strcmp (got[i], w) != 0)
        printf ("  got %s, want %s\n", got[i], w);
      g_free (w);
    }
  return ok && i == n && got[i] == NULL;
}

int
main (void)
{
  char *tmp = test_make_tmpdir ("lora_find");
  char *model, **l;

  /* ComfyUI: models/checkpoints/ + models/loras/ (with a subfolder) */
  touch (tmp, "models/checkpoints/sd3.5_large.safetensors");
  touch (tmp, "models/loras/style b.safetensors");
  touch (tmp, "models/loras/sd35/a.safetensors");
  touch (tmp, "models/loras/readme.txt");
  touch (tmp, "models/loras/.hidden.safetensors");
  model = g_build_filename (tmp, "models/checkpoints/sd3.5_large.safetensors", NULL);
  l = sd35_find_loras (model);
  test_check (list_is (l, tmp, (const char *const[]) { "models/loras/sd35/a.safetensors",
                                                      "models/loras/style b.safetensors" }, 2),
              "ComfyUI layout: models/loras/ with subfolders, sorted, only .safetensors");
  sd35_strv_free (l);
  g_free (model);

  /* a release folder with loras/ inside; the same list for a file in that folder */
  touch (tmp, "release/sd3.5_medium.safetensors");
  touch (tmp, "release/loras/x.safetensors");
  model = g_build_filename (tmp, "release", NULL);
  l = sd35_find_loras (model);
  test_check (list_is (l, tmp, (const char *const[]) { "release/loras/x.safetensors" }, 1),
              "loras/ inside a release folder");
  sd35_strv_free (l);
  g_free (model);
  model = g_build_filename (tmp, "release/sd3.5_medium.safetensors", NULL);
  l = sd35_find_loras (model);
  test_check (list_is (l, tmp, (const char *const[]) { "release/loras/x.safetensors" }, 1),
              "loras/ beside a model file");
  sd35_strv_free (l);
  g_free (model);

  l = sd35_find_loras (NULL);
  test_check (l != NULL && l[0] == NULL, "no model: an empty list");
  sd35_strv_free (l);
  test_remove_tree (tmp);
  free (tmp);
  return test_exit ();
}
