/* safetensors.c — opening safetensors files read-only through mmap, checking each parsed
 * tensor against the data area, the tensor table and reads into host arrays.  The header's
 * JSON is parsed in safetensors_header.c, sharded sets are safetensors_index.c, writing safetensors_writer.c. */
#include "safetensors_internal.h"
#include "safe_file.h"
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int
has_suffix_ci (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && g_ascii_strcasecmp (s + n - m, suffix) == 0;
}

int
st_is_pickle_name (const char *path)
{
  static const char *const ext[] = { ".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle" };
  for (size_t i = 0; i < G_N_ELEMENTS (ext); i++)
    if (has_suffix_ci (path, ext[i]))
      return 1;
  return 0;
}

enum sd35_status
st_refuse_pickle (const char *name, struct sd35_error *err)
{
  return sd35_set_error (err, SD35_ERR_FORMAT,
                         "%s is a PyTorch pickle checkpoint, not safetensors: pickle files can "
                         "run arbitrary code and are never loaded; convert it to .safetensors "
                         "(e.g. safetensors.torch.save_file in Python) or download the "
                         ".safetensors release", name);
}

const char *
st_shape_string (int ndim, const int64_t *shape, char *buf, size_t size)
{
  size_t n = 0;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  n += (size_t) snprintf (buf + n, size - n, "[");
  for (int d = 0; d < ndim && n < size; d++)
    n += (size_t) snprintf (buf + n, size - n, d ? ", %lld" : "%lld", (long long) shape[d]);
  if (n < size)
    snprintf (buf + n, size - n, "]");
  return buf;
}

/* --- validation of a parsed header (called by st_parse_into) --------------------------- */

enum sd35_status
st_invalid (struct sd35_error *err, const char *name, const char *fmt, ...)
{
  char    why[768];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (why, sizeof why, fmt, ap);
  va_end (ap);
  return sd35_set_error (err, SD35_ERR_FORMAT, "%s: invalid safetensors file: %s", name, why);
}

/* Checks one tensor's shape and offsets against the data area; fills numel, nbytes, data. */
enum sd35_status
st_check_tensor (struct st_tensor *t, const int64_t off[2], const uint8_t *data,
                 size_t data_len, const char *name, struct sd35_error *err)
{
  char   shp[160];
  size_t numel = 1, nbytes;

  st_shape_string (t->ndim, t->shape, shp, sizeof shp);
  for (int d = 0; d < t->ndim; d++)
    {
      if (t->shape[d] < 0)
        return st_invalid (err, name, "tensor \"%s\" has a negative dimension in shape %s",
                           t->name, shp);
      if (sd35_mul_size (numel, (size_t) t->shape[d], &numel) != 0)
        return st_invalid (err, name, "tensor \"%s\": shape %s overflows", t->name, shp);
    }
  if (sd35_mul_size (numel, sd35_dtype_size (t->dtype), &nbytes) != 0)
    return st_invalid (err, name, "tensor \"%s\": shape %s overflows", t->name, shp);
  if (off[0] < 0 || off[1] < 0)
    return st_invalid (err, name, "tensor \"%s\" has a negative data offset", t->name);
  if (off[0] > off[1])
    return st_invalid (err, name, "tensor \"%s\": data_offsets [%lld, %lld] end before they "
                       "begin", t->name, (long long) off[0], (long long) off[1]);
  if ((uint64_t) off[1] > data_len)
    return st_invalid (err, name, "tensor \"%s\" ends at byte %lld of the data area, which "
                       "has only %zu bytes (truncated file?)", t->name, (long long) off[1],
                       data_len);
  if ((uint64_t) (off[1] - off[0]) != nbytes)
    return st_invalid (err, name, "tensor \"%s\": shape %s × %s (%zu bytes each) is %zu "
                       "bytes but data_offsets [%lld, %lld] span %lld", t->name, shp,
                       sd35_dtype_name (t->dtype), sd35_dtype_size (t->dtype), nbytes,
                       (long long) off[0], (long long) off[1], (long long) (off[1] - off[0]));
  t->numel = numel;
  t->nbytes = nbytes;
  t->data = data + off[0];
  return SD35_OK;
}

static int
cmp_by_data (const void *a, const void *b)
{
  const struct st_tensor *x = *(const struct st_tensor *const *) a;
  const struct st_tensor *y = *(const struct st_tensor *const *) b;
  return x->data < y->data ? -1 : x->data > y->data;
}

/* No two non-empty tensors share a byte (empty ones take no room). */
enum sd35_status
st_check_overlap (struct st_file *f, size_t first, const uint8_t *data, const char *name,
                  struct sd35_error *err)
{
  size_t                   n = 0;
  const struct st_tensor **v;
  enum sd35_status         st = SD35_OK;

  v = sd35_calloc (f->n_tensors - first, sizeof *v, "tensor table", err);
  if (v == NULL)
    return SD35_ERR_OOM;
  for (size_t i = first; i < f->n_tensors; i++)
    if (f->tensors[i].nbytes > 0)
      v[n++] = &f->tensors[i];
  qsort (v, n, sizeof *v, cmp_by_data);
  for (size_t i = 1; i < n; i++)
    if ((const uint8_t *) v[i - 1]->data + v[i - 1]->nbytes > (const uint8_t *) v[i]->data)
      {
        st = st_invalid (err, name, "tensors \"%s\" (bytes %td..%td) and \"%s\" (from byte %td) "
                         "overlap", v[i - 1]->name, (const uint8_t *) v[i - 1]->data - data,
                         (const uint8_t *) v[i - 1]->data + v[i - 1]->nbytes - data,
                         v[i]->name, (const uint8_t *) v[i]->data - data);
        break;
      }
  free (v);
  return st;
}

struct st_file *
st_file_new (const char *path, struct sd35_error *err)
{
  struct st_file *f = sd35_calloc (1, sizeof *f, "safetensors file", err);
  if (f == NULL)
    return NULL;
  f->path = g_strdup (path);
  f->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  f->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  f->adopted = g_ptr_array_new_with_free_func (free);
  return f;
}

struct st_map *
st_map_file (struct st_file *f, const char *path, struct sd35_error *err)
{
  struct stat    sb;
  struct st_map *maps, *m;
  void          *addr;
  int            fd;

  /* a FIFO or a device says what it is instead of blocking or "no such file" */
  if (sd35_check_input_file (path, "safetensors file", err) != SD35_OK)
    return NULL;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    {
      sd35_set_error (err, errno == ENOENT ? SD35_ERR_MISSING : SD35_ERR_IO,
                      "cannot open %s: %s", path, strerror (errno));
      return NULL;
    }
  if (fstat (fd, &sb) != 0 || !S_ISREG (sb.st_mode))
    {
      sd35_set_error (err, SD35_ERR_IO, "safetensors file %s is not a regular file", path);
      close (fd);
      return NULL;
    }
  if (sb.st_size == 0)
    {
      sd35_set_error (err, SD35_ERR_FORMAT, "%s: invalid safetensors file: the file is empty "
                      "(0 bytes)", path);
      close (fd);
      return NULL;
    }
  addr = mmap (NULL, (size_t) sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close (fd);
  if (addr == MAP_FAILED)
    {
      sd35_set_error (err, SD35_ERR_IO, "cannot map %s (%lld bytes): %s", path,
                      (long long) sb.st_size, strerror (errno));
      return NULL;
    }
  maps = realloc (f->maps, (size_t) (f->n_maps + 1) * sizeof *maps);
  if (maps == NULL)
    {
      munmap (addr, (size_t) sb.st_size);
      sd35_set_error (err, SD35_ERR_OOM, "out of memory opening %s", path);
      return NULL;
    }
  f->maps = maps;
  m = &maps[f->n_maps++];
  m->addr = addr;
  m->len = (size_t) sb.st_size;
  m->path = g_strdup (path);
  return m;
}

enum sd35_status
st_open (const char *path, struct st_file **out, struct sd35_error *err)
{
  struct st_file  *f;
  struct st_map   *m;
  enum sd35_status st;

  *out = NULL;
  if (has_suffix_ci (path, ".index.json"))
    return st_open_index (path, out, err);
  if (st_is_pickle_name (path))
    return st_refuse_pickle (path, err);
  f = st_file_new (path, err);
  if (f == NULL)
    return SD35_ERR_OOM;
  m = st_map_file (f, path, err);
  if (m == NULL)
    st = err != NULL ? err->status : SD35_ERR_IO;
  else if (gguf_has_magic (m->addr, m->len) || has_suffix_ci (path, ".gguf"))
    st = gguf_parse_into (f, m->addr, m->len, m->path, m->path, err);
  else
    st = st_parse_into (f, m->addr, m->len, m->path, m->path, err);
  if (st != SD35_OK)
    {
      st_close (f);
      return st;
    }
  *out = f;
  return SD35_OK;
}

enum sd35_status
st_open_memory (const void *buf, size_t len, const char *name, struct st_file **out,
                struct sd35_error *err)
{
  struct st_file  *f;
  enum sd35_status st;

  *out = NULL;
  f = st_file_new (name, err);
  if (f == NULL)
    return SD35_ERR_OOM;
  if (gguf_has_magic (buf, len))
    st = gguf_parse_into (f, buf, len, f->path, f->path, err);
  else
    st = st_parse_into (f, buf, len, f->path, f->path, err);
  if (st != SD35_OK)
    {
      st_close (f);
      return st;
    }
  *out = f;
  return SD35_OK;
}

void
st_close (struct st_file *f)
{
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->n_tensors; i++)
    g_free ((char *) f->tensors[i].name);
  free (f->tensors);
  for (int i = 0; i < f->n_maps; i++)
    {
      munmap (f->maps[i].addr, f->maps[i].len);
      g_free (f->maps[i].path);
    }
  free (f->maps);
  g_hash_table_destroy (f->by_name);
  g_hash_table_destroy (f->metadata);
  g_ptr_array_free (f->adopted, TRUE);
  g_free (f->path);
  free (f);
}

int
st_file_adopt (struct st_file *f, void *buf)
{
  if (buf == NULL)
    return 0;
  g_ptr_array_add (f->adopted, buf);
  return 0;
}

void
st_file_set_registry (struct st_file *f, struct weight_registry *r)
{
  if (f != NULL)
    f->registry = r;
}

struct weight_registry *
st_file_registry (const struct st_file *f)
{
  return f != NULL ? f->registry : NULL;
}

size_t
st_count (const struct st_file *f)
{
  return f->n_tensors;
}

const struct st_tensor *
st_at (const struct st_file *f, size_t i)
{
  return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const struct st_tensor *
st_find (const struct st_file *f, const char *name)
{
  gpointer v = g_hash_table_lookup (f->by_name, name);
  return v != NULL ? &f->tensors[GPOINTER_TO_SIZE (v) - 1] : NULL;
}

int
st_has_prefix (const struct st_file *f, const char *prefix)
{
  size_t n = strlen (prefix);
  for (size_t i = 0; i < f->n_tensors; i++)
    if (strncmp (f->tensors[i].name, prefix, n) == 0)
      return 1;
  return 0;
}

const char *
st_path (const struct st_file *f)
{
  return f->path;
}

const char *
st_metadata (const struct st_file *f, const char *key)
{
  return g_hash_table_lookup (f->metadata, key);
}

float *
st_read_f32 (const struct st_tensor *t, struct sd35_error *err)
{
  float *v;

  if (!sd35_dtype_is_float (t->dtype))
    {
      sd35_set_error (err, SD35_ERR_SHAPE, "%s: tensor \"%s\" is %s, expected a float tensor",
                      t->file, t->name, sd35_dtype_name (t->dtype));
      return NULL;
    }
  v = sd35_calloc (t->numel, sizeof *v, t->name, err);
  if (v != NULL)
    sd35_convert_to_f32 (v, t->data, t->dtype, t->numel);
  return v;
}

int64_t *
st_read_i64 (const struct st_tensor *t, struct sd35_error *err)
{
  const uint8_t *b = t->data;
  int64_t       *v;

  if (t->dtype != SD35_I64 && t->dtype != SD35_I32 && t->dtype != SD35_U8)
    {
      sd35_set_error (err, SD35_ERR_SHAPE, "%s: tensor \"%s\" is %s, expected an integer tensor "
                      "(I64, I32 or U8)", t->file, t->name, sd35_dtype_name (t->dtype));
      return NULL;
    }
  v = sd35_calloc (t->numel, sizeof *v, t->name, err);
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < t->numel; i++)
    {
      if (t->dtype == SD35_I64)
        memcpy (&v[i], b + 8 * i, 8);
      else if (t->dtype == SD35_I32)
        {
          int32_t x;
          memcpy (&x, b + 4 * i, 4);
          v[i] = x;
        }
      else
        v[i] = b[i];
    }
  return v;
}
