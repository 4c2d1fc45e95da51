/* safetensors_writer.c — writing safetensors files (CLI outputs, test models) the way the reference
 * library lays them out: tensors ordered by element size (largest first, then insertion
 * order) so every tensor is aligned to its element size, "__metadata__" first in the header,
 * the header padded with spaces to a multiple of 8 bytes.  Files are written to a temporary
 * name beside the target and renamed, so a reader never sees half a file (safe_file.h). */
#include "safetensors_internal.h"
#include "safe_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_wentry
{
  char           *name;
  enum sd35_dtype dtype;
  int             ndim;
  int64_t         shape[ST_MAX_DIMS];
  size_t          nbytes;
  void           *data;
};

struct st_writer
{
  GArray     *entries;   /* struct st_wentry */
  GHashTable *names;
  GPtrArray  *meta_keys, *meta_vals;
};

struct st_writer *
st_writer_new (void)
{
  struct st_writer *w = g_new0 (struct st_writer, 1);
  w->entries = g_array_new (FALSE, TRUE, sizeof (struct st_wentry));
  w->names = g_hash_table_new (g_str_hash, g_str_equal);
  w->meta_keys = g_ptr_array_new_with_free_func (g_free);
  w->meta_vals = g_ptr_array_new_with_free_func (g_free);
  return w;
}

void
st_writer_free (struct st_writer *w)
{
  if (w == NULL)
    return;
  for (guint i = 0; i < w->entries->len; i++)
    {
      struct st_wentry *e = &g_array_index (w->entries, struct st_wentry, i);
      g_free (e->name);
      free (e->data);
    }
  g_array_free (w->entries, TRUE);
  g_hash_table_destroy (w->names);
  g_ptr_array_free (w->meta_keys, TRUE);
  g_ptr_array_free (w->meta_vals, TRUE);
  g_free (w);
}

int
st_writer_add (struct st_writer *w, const char *name, enum sd35_dtype dtype, int ndim,
               const int64_t *shape, const void *data)
{
  struct st_wentry e = { 0 };
  size_t           numel = 1;

  if (name == NULL || name[0] == '\0' || strcmp (name, "__metadata__") == 0
      || !g_utf8_validate (name, -1, NULL) || g_hash_table_contains (w->names, name)
      || (unsigned) dtype >= SD35_DTYPE_SAFETENSORS_COUNT || ndim < 0 || ndim > ST_MAX_DIMS)
    return -1;  /* (the GGUF block types have no safetensors name) */
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0 || sd35_mul_size (numel, (size_t) shape[d], &numel) != 0)
      return -1;
  if (sd35_mul_size (numel, sd35_dtype_size (dtype), &e.nbytes) != 0
      || (data == NULL && e.nbytes > 0))
    return -1;
  e.data = malloc (e.nbytes ? e.nbytes : 1);
  if (e.data == NULL)
    return -1;
  if (e.nbytes > 0)
    memcpy (e.data, data, e.nbytes);
  e.name = g_strdup (name);
  e.dtype = dtype;
  e.ndim = ndim;
  for (int d = 0; d < ndim; d++)
    e.shape[d] = shape[d];
  g_array_append_val (w->entries, e);
  g_hash_table_add (w->names, e.name);
  return 0;
}

int
st_writer_add_f32 (struct st_writer *w, const char *name, int ndim, const int64_t *shape,
                   const float *data)
{
  return st_writer_add (w, name, SD35_F32, ndim, shape, data);
}

void
st_writer_set_metadata (struct st_writer *w, const char *key, const char *value)
{
  for (guint i = 0; i < w->meta_keys->len; i++)
    if (strcmp (w->meta_keys->pdata[i], key) == 0)
      {
        g_free (w->meta_vals->pdata[i]);
        w->meta_vals->pdata[i] = g_strdup (value);
        return;
      }
  g_ptr_array_add (w->meta_keys, g_strdup (key));
  g_ptr_array_add (w->meta_vals, g_strdup (value));
}

static void
json_string (GString *s, const char *str)
{
  g_string_append_c (s, '"');
  for (const unsigned char *c = (const unsigned char *) str; *c; c++)
    if (*c == '"' || *c == '\\')
      g_string_append_printf (s, "\\%c", *c);
    else if (*c < 0x20)
      g_string_append_printf (s, "\\u%04x", *c);
    else
      g_string_append_c (s, (char) *c);
  g_string_append_c (s, '"');
}

static int
cmp_entry (const void *a, const void *b, void *user)
{
  const struct st_wentry *e = user;
  guint                   i = *(const guint *) a, j = *(const guint *) b;
  size_t                  si = sd35_dtype_size (e[i].dtype), sj = sd35_dtype_size (e[j].dtype);
  if (si != sj)
    return si > sj ? -1 : 1;
  return i < j ? -1 : i > j;
}

/* Header text (padded) and the data order; caller frees both. */
static GString *
st_writer_header (struct st_writer *w, guint **order_out)
{
  struct st_wentry *e = (struct st_wentry *) (void *) w->entries->data;
  guint            *order = g_new (guint, w->entries->len + 1);
  GString          *h = g_string_new ("{");
  size_t            off = 0;
  int               first = 1;

  for (guint i = 0; i < w->entries->len; i++)
    order[i] = i;
  g_qsort_with_data (order, (gint) w->entries->len, sizeof *order, cmp_entry, e);
  if (w->meta_keys->len > 0)
    {
      g_string_append (h, "\"__metadata__\":{");
      for (guint i = 0; i < w->meta_keys->len; i++)
        {
          if (i)
            g_string_append_c (h, ',');
          json_string (h, w->meta_keys->pdata[i]);
          g_string_append_c (h, ':');
          json_string (h, w->meta_vals->pdata[i]);
        }
      g_string_append_c (h, '}');
      first = 0;
    }
  for (guint k = 0; k < w->entries->len; k++)
    {
      const struct st_wentry *t = &e[order[k]];
      if (!first)
        g_string_append_c (h, ',');
      first = 0;
      json_string (h, t->name);
      g_string_append_printf (h, ":{\"dtype\":\"%s\",\"shape\":[", sd35_dtype_name (t->dtype));
      for (int d = 0; d < t->ndim; d++)
        g_string_append_printf (h, d ? ",%lld" : "%lld", (long long) t->shape[d]);
      g_string_append_printf (h, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
      off += t->nbytes;
    }
  g_string_append_c (h, '}');
  while (h->len % 8 != 0)
    g_string_append_c (h, ' ');
  *order_out = order;
  return h;
}

enum sd35_status
st_writer_to_memory (struct st_writer *w, void **buf, size_t *len, struct sd35_error *err)
{
  guint   *order;
  GString *h = st_writer_header (w, &order);
  size_t   total = 8 + h->len;
  uint8_t *b;
  uint64_t hl = h->len;

  *buf = NULL;
  for (guint i = 0; i < w->entries->len; i++)
    total += g_array_index (w->entries, struct st_wentry, i).nbytes;
  b = sd35_malloc (total, "safetensors file", err);
  if (b != NULL)
    {
      size_t pos = 8 + h->len;
      memcpy (b, &hl, 8);
      memcpy (b + 8, h->str, h->len);
      for (guint k = 0; k < w->entries->len; k++)
        {
          const struct st_wentry *t = &g_array_index (w->entries, struct st_wentry, order[k]);
          if (t->nbytes > 0)
            memcpy (b + pos, t->data, t->nbytes);
          pos += t->nbytes;
        }
      *buf = b;
      *len = total;
    }
  g_string_free (h, TRUE);
  g_free (order);
  return b != NULL ? SD35_OK : SD35_ERR_OOM;
}

enum sd35_status
st_writer_save (struct st_writer *w, const char *path, struct sd35_error *err)
{
  guint               *order;
  GString             *h = st_writer_header (w, &order);
  uint64_t             hl = h->len;
  struct sd35_out_file o;
  enum sd35_status     st;

  /* temporary beside the target (no link followed), fsync, rename: see safe_file.h */
  st = sd35_out_open (&o, path, err);
  if (st == SD35_OK)
    st = sd35_out_write (&o, &hl, 8, err);
  if (st == SD35_OK)
    st = sd35_out_write (&o, h->str, h->len, err);
  for (guint k = 0; st == SD35_OK && k < w->entries->len; k++)
    {
      const struct st_wentry *t = &g_array_index (w->entries, struct st_wentry, order[k]);
      st = sd35_out_write (&o, t->data, t->nbytes, err);
    }
  if (st == SD35_OK)
    st = sd35_out_commit (&o, err);
  else
    sd35_out_abort (&o);
  g_string_free (h, TRUE);
  g_free (order);
  return st;
}
