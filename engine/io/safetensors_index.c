/* safetensors_index.c — sharded safetensors sets: "<name>.safetensors.index.json" as written by
 * transformers/diffusers ({"metadata": {...}, "weight_map": {"key": "shard file", ...}}).
 * Every shard named in weight_map is mapped and validated; all keys share one namespace
 * (a key in two shards is an error) and every key of weight_map must be in its shard. */
#include "safetensors_internal.h"

#include <json-glib/json-glib.h>
#include "json_file.h"
#include <string.h>

/* Shard names are plain relative paths inside the index's folder. */
static int
shard_name_ok (const char *s)
{
  char **parts;
  int    ok = 1;

  if (s[0] == '\0' || s[0] == '/' || strchr (s, '\\') != NULL)
    return 0;
  parts = g_strsplit (s, "/", -1);
  for (int i = 0; parts[i] != NULL; i++)
    if (strcmp (parts[i], "..") == 0 || parts[i][0] == '\0')
      ok = 0;
  g_strfreev (parts);
  return ok;
}

static enum sd35_status
index_parse (const char *path, JsonParser **parser, JsonObject **weight_map,
             struct sd35_error *err)
{
  JsonObject      *wm;
  enum sd35_status st = sd35_json_load (path, "safetensors index", parser, err);

  if (st != SD35_OK)
    return st;
  wm = sd35_json_object (sd35_json_node_object (json_parser_get_root (*parser)), "weight_map");
  if (wm == NULL)
    return sd35_set_error (err, SD35_ERR_FORMAT, "%s: invalid safetensors index: no "
                           "\"weight_map\" object", path);
  *weight_map = wm;
  return SD35_OK;
}

enum sd35_status
st_open_index (const char *path, struct st_file **out, struct sd35_error *err)
{
  JsonParser      *parser = NULL;
  JsonObject      *wm = NULL;
  GList           *keys = NULL;
  GPtrArray       *shards = g_ptr_array_new ();   /* unique shard names, first-seen order */
  GHashTable      *seen = g_hash_table_new (g_str_hash, g_str_equal);
  gchar           *dir = g_path_get_dirname (path);
  struct st_file  *f = NULL;
  enum sd35_status st;

  *out = NULL;
  st = index_parse (path, &parser, &wm, err);
  if (st != SD35_OK)
    goto done;
  keys = json_object_get_members (wm);
  for (GList *k = keys; k != NULL; k = k->next)
    {
      JsonNode   *v = json_object_get_member (wm, k->data);
      const char *shard;
      if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING
          || !shard_name_ok (shard = json_node_get_string (v)))
        {
          st = sd35_set_error (err, SD35_ERR_FORMAT, "%s: invalid safetensors index: the shard "
                               "of \"%s\" is not a plain file name inside the index's folder",
                               path, (const char *) k->data);
          goto done;
        }
      if (!g_hash_table_contains (seen, shard))
        {
          g_hash_table_add (seen, (gpointer) shard);
          g_ptr_array_add (shards, (gpointer) shard);
        }
    }
  if (shards->len == 0)
    {
      st = sd35_set_error (err, SD35_ERR_FORMAT, "%s: invalid safetensors index: "
                           "\"weight_map\" is empty", path);
      goto done;
    }

  f = st_file_new (path, err);
  if (f == NULL)
    {
      st = SD35_ERR_OOM;
      goto done;
    }
  for (guint i = 0; i < shards->len; i++)
    {
      gchar         *sp = g_build_filename (dir, shards->pdata[i], NULL);
      struct st_map *m = NULL;

      if (!g_file_test (sp, G_FILE_TEST_EXISTS))
        st = sd35_set_error (err, SD35_ERR_MISSING, "%s names shard \"%s\", which is missing "
                             "(looked for %s); download every shard of the model",
                             path, (const char *) shards->pdata[i], sp);
      else if ((m = st_map_file (f, sp, err)) == NULL)
        st = err != NULL ? err->status : SD35_ERR_IO;
      else
        st = st_parse_into (f, m->addr, m->len, m->path, m->path, err);
      g_free (sp);
      if (st != SD35_OK)
        goto done;
    }
  for (GList *k = keys; k != NULL; k = k->next)
    {
      const struct st_tensor *t = st_find (f, k->data);
      const char             *shard = json_object_get_string_member (wm, k->data);
      gchar                  *sp = g_build_filename (dir, shard, NULL);
      int                     same = t != NULL && strcmp (t->file, sp) == 0;

      g_free (sp);
      if (t == NULL)
        st = sd35_set_error (err, SD35_ERR_FORMAT, "%s: tensor \"%s\" is not in its shard %s "
                             "(index and shards do not match)", path, (const char *) k->data,
                             shard);
      else if (!same)
        st = sd35_set_error (err, SD35_ERR_FORMAT, "%s maps tensor \"%s\" to shard %s, but it "
                             "is in %s (index and shards do not match)", path,
                             (const char *) k->data, shard, t->file);
      if (st != SD35_OK)
        goto done;
    }
  sd35_log ("%s: %zu tensors in %u shards", path, st_count (f), shards->len);

done:
  if (st != SD35_OK)
    st_close (f);
  else
    *out = f;
  g_list_free (keys);
  g_ptr_array_free (shards, TRUE);
  g_hash_table_destroy (seen);
  g_free (dir);
  g_clear_object (&parser);
  return st;
}
