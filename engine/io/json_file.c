/* json_file.c — depth-bounded JSON parsing and typed member access (json_file.h). */
#include "json_file.h"

#include <stdlib.h>

#include "error.h"
#include "safe_file.h"

size_t
sd35_json_depth_exceeded (const char *text, size_t len, int max_depth)
{
  int in_string = 0, depth = 0;

  for (size_t i = 0; i < len; i++)
    {
      char c = text[i];
      if (in_string)
        {
          if (c == '\\')
            i++;            /* the escaped character cannot end the string */
          else if (c == '"')
            in_string = 0;
          continue;
        }
      if (c == '"')
        in_string = 1;
      else if (c == '[' || c == '{')
        {
          if (++depth > max_depth)
            return i + 1;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return 0;
}

enum sd35_status
sd35_json_parse (const char *text, size_t len, const char *what, JsonParser **parser,
                 struct sd35_error *err)
{
  GError *gerr = NULL;
  size_t  at;

  *parser = NULL;
  if (len > SD35_JSON_MAX_BYTES)
    return sd35_set_error (err, SD35_ERR_FORMAT, "%s: %zu bytes of JSON, more than the %zu "
                           "this program reads", what, len, SD35_JSON_MAX_BYTES);
  at = sd35_json_depth_exceeded (text, len, SD35_JSON_MAX_DEPTH);
  if (at != 0)
    return sd35_set_error (err, SD35_ERR_FORMAT, "%s: JSON nested deeper than %d levels (at "
                           "byte %zu); not a file this program reads", what,
                           SD35_JSON_MAX_DEPTH, at - 1);
  *parser = json_parser_new ();
  if (!json_parser_load_from_data (*parser, text, (gssize) len, &gerr))
    {
      sd35_set_error (err, SD35_ERR_FORMAT, "%s: invalid JSON: %s", what, gerr->message);
      g_error_free (gerr);
      g_clear_object (parser);
      return SD35_ERR_FORMAT;
    }
  return SD35_OK;
}

enum sd35_status
sd35_json_load (const char *path, const char *what, JsonParser **parser, struct sd35_error *err)
{
  char            *text = NULL;
  size_t           len = 0;
  enum sd35_status st;

  *parser = NULL;
  st = sd35_read_file (path, SD35_JSON_MAX_BYTES, what, &text, &len, err);
  if (st != SD35_OK)
    return st;
  {
    char *label = g_strdup_printf ("%s %s", what, path);
    st = sd35_json_parse (text, len, label, parser, err);
    g_free (label);
  }
  free (text);
  return st;
}

JsonObject *
sd35_json_node_object (JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

JsonArray *
sd35_json_node_array (JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

const char *
sd35_json_node_string (JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
           ? json_node_get_string (n) : NULL;
}

gboolean
sd35_json_node_int (JsonNode *n, gint64 *out)
{
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return TRUE;
}

gboolean
sd35_json_node_number (JsonNode *n, double *out)
{
  GType t;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  t = json_node_get_value_type (n);
  if (t == G_TYPE_INT64)
    *out = (double) json_node_get_int (n);
  else if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double (n);
  else
    return FALSE;
  return TRUE;
}

static JsonNode *
member (JsonObject *o, const char *key)
{
  return o != NULL ? json_object_get_member (o, key) : NULL;
}

JsonObject *
sd35_json_object (JsonObject *o, const char *key)
{
  return sd35_json_node_object (member (o, key));
}

JsonArray *
sd35_json_array (JsonObject *o, const char *key)
{
  return sd35_json_node_array (member (o, key));
}

const char *
sd35_json_string (JsonObject *o, const char *key)
{
  return sd35_json_node_string (member (o, key));
}

gboolean
sd35_json_int (JsonObject *o, const char *key, gint64 *out)
{
  return sd35_json_node_int (member (o, key), out);
}

gboolean
sd35_json_number (JsonObject *o, const char *key, double *out)
{
  return sd35_json_node_number (member (o, key), out);
}
