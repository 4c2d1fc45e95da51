/* gguf.c — the GGUF container (ggml docs/gguf.md): header, metadata key/values, tensor infos,
 * aligned data area.  Everything is read with bounds checks from the mapped bytes; see
 * gguf.h for what is checked. */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors_internal.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS          4     /* GGML_MAX_DIMS */
#define GGUF_MAX_NAME          4096  /* far above any real tensor name (ggml: 64, sd.cpp: 128) */
#define ORIG_SHAPE_KEY         "comfy.gguf.orig_shape."

enum gguf_vtype
{
  GV_U8 = 0, GV_I8, GV_U16, GV_I16, GV_U32, GV_I32, GV_F32, GV_BOOL, GV_STRING, GV_ARRAY,
  GV_U64, GV_I64, GV_F64, GV_COUNT
};

/* bytes of a scalar value type (0: string / array) */
static const size_t vtype_size[GV_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

/* GGML tensor types: the ones read here, and the names of the others for messages */
static const struct
{
  int             id;
  const char     *name;
  int             supported;
  enum sd35_dtype dtype;
} ggml_types[] = {
  { 0, "F32", 1, SD35_F32 },      { 1, "F16", 1, SD35_F16 },      { 2, "Q4_0", 1, SD35_Q4_0 },
  { 3, "Q4_1", 1, SD35_Q4_1 },    { 6, "Q5_0", 1, SD35_Q5_0 },    { 7, "Q5_1", 1, SD35_Q5_1 },
  { 8, "Q8_0", 1, SD35_Q8_0 },    { 12, "Q4_K", 1, SD35_Q4_K },   { 13, "Q5_K", 1, SD35_Q5_K },
  { 14, "Q6_K", 1, SD35_Q6_K },   { 26, "I32", 1, SD35_I32 },     { 27, "I64", 1, SD35_I64 },
  { 30, "BF16", 1, SD35_BF16 },
  { 9, "Q8_1", 0, 0 },    { 10, "Q2_K", 0, 0 },    { 11, "Q3_K", 0, 0 },  { 15, "Q8_K", 0, 0 },
  { 16, "IQ2_XXS", 0, 0 }, { 17, "IQ2_XS", 0, 0 }, { 18, "IQ3_XXS", 0, 0 },
  { 19, "IQ1_S", 0, 0 },  { 20, "IQ4_NL", 0, 0 },  { 21, "IQ3_S", 0, 0 }, { 22, "IQ2_S", 0, 0 },
  { 23, "IQ4_XS", 0, 0 }, { 24, "I8", 0, 0 },      { 25, "I16", 0, 0 },   { 28, "F64", 0, 0 },
  { 29, "IQ1_M", 0, 0 },  { 34, "TQ1_0", 0, 0 },   { 35, "TQ2_0", 0, 0 }, { 39, "MXFP4", 0, 0 },
};

#define SUPPORTED_TYPES "F32, F16, BF16, Q8_0, Q6_K, Q5_K, Q5_1, Q5_0, Q4_K, Q4_1, Q4_0"

struct rd
{
  const uint8_t     *b;
  size_t             n, i;
  const char        *name;
  struct sd35_error *err;
  int                failed;
};

static int SD35_PRINTF (2, 3)
fail (struct rd *r, const char *fmt, ...)
{
  char    why[640];
  va_list ap;

  if (r->failed)
    return -1;
  va_start (ap, fmt);
  vsnprintf (why, sizeof why, fmt, ap);
  va_end (ap);
  sd35_set_error (r->err, SD35_ERR_FORMAT, "%s: invalid GGUF file: %s", r->name, why);
  r->failed = 1;
  return -1;
}

static int
need (struct rd *r, size_t k, const char *what)
{
  if (r->failed)
    return -1;
  if (k > r->n - r->i)
    return fail (r, "%s at byte %zu runs past the end of the file (%zu bytes; truncated?)",
                 what, r->i, r->n);
  return 0;
}

static int
rd_u32 (struct rd *r, uint32_t *v, const char *what)
{
  if (need (r, 4, what) != 0)
    return -1;
  memcpy (v, r->b + r->i, 4);
  r->i += 4;
  return 0;
}

static int
rd_u64 (struct rd *r, uint64_t *v, const char *what)
{
  if (need (r, 8, what) != 0)
    return -1;
  memcpy (v, r->b + r->i, 8);
  r->i += 8;
  return 0;
}

/* A string: u64 length + bytes (not NUL-terminated in the file). */
static int
rd_str (struct rd *r, const char **s, size_t *len, const char *what)
{
  uint64_t n;
  if (rd_u64 (r, &n, what) != 0)
    return -1;
  if (n > r->n - r->i)
    return fail (r, "%s at byte %zu claims %llu bytes, more than the %zu left in the file",
                 what, r->i - 8, (unsigned long long) n, r->n - r->i);
  *s = (const char *) r->b + r->i;
  *len = (size_t) n;
  r->i += (size_t) n;
  return 0;
}

/* Skips (or, for shape arrays, reads) one value of type t; depth 1 inside an array. */
static int
skip_value (struct rd *r, uint32_t t, int in_array, const char *key)
{
  if (t >= GV_COUNT)
    return fail (r, "metadata \"%s\" has unknown value type %u", key, t);
  if (t == GV_STRING)
    {
      const char *s;
      size_t      n;
      return rd_str (r, &s, &n, "a metadata string");
    }
  if (t == GV_ARRAY)
    {
      uint32_t et;
      uint64_t cnt;
      if (in_array)
        return fail (r, "metadata \"%s\" is an array of arrays (not supported)", key);
      if (rd_u32 (r, &et, "an array type") != 0 || rd_u64 (r, &cnt, "an array length") != 0)
        return -1;
      if (et >= GV_COUNT || et == GV_ARRAY)
        return fail (r, "metadata \"%s\" is an array of unknown or nested type %u", key, et);
      if (et == GV_STRING)
        {
          /* each string takes at least its 8-byte length */
          if (cnt > (r->n - r->i) / 8)
            return fail (r, "metadata \"%s\" claims %llu strings, more than the file can hold",
                         key, (unsigned long long) cnt);
          for (uint64_t k = 0; k < cnt; k++)
            if (skip_value (r, GV_STRING, 1, key) != 0)
              return -1;
          return 0;
        }
      if (cnt > (r->n - r->i) / vtype_size[et])
        return fail (r, "metadata \"%s\" claims %llu values, more than the file can hold", key,
                     (unsigned long long) cnt);
      r->i += (size_t) cnt * vtype_size[et];
      return 0;
    }
  if (need (r, vtype_size[t], "a metadata value") != 0)
    return -1;
  r->i += vtype_size[t];
  return 0;
}

/* A ComfyUI-GGUF orig_shape value: an array of INT32 (or INT64) dims, each > 0. */
static int
read_shape_array (struct rd *r, const char *key, int64_t shape[ST_MAX_DIMS], int *ndim)
{
  uint32_t et;
  uint64_t cnt;

  if (rd_u32 (r, &et, "an array type") != 0 || rd_u64 (r, &cnt, "an array length") != 0)
    return -1;
  if ((et != GV_I32 && et != GV_I64 && et != GV_U32 && et != GV_U64) || cnt < 1
      || cnt > ST_MAX_DIMS)
    return fail (r, "\"%s\" must be an array of 1 to %d integers", key, ST_MAX_DIMS);
  if (need (r, (size_t) cnt * vtype_size[et], "a shape array") != 0)
    return -1;
  for (uint64_t k = 0; k < cnt; k++)
    {
      int64_t v;
      if (vtype_size[et] == 4)
        {
          int32_t  s32;
          uint32_t u32;
          memcpy (&s32, r->b + r->i, 4);
          memcpy (&u32, r->b + r->i, 4);
          v = et == GV_I32 ? s32 : (int64_t) u32;
        }
      else
        {
          uint64_t u64;
          memcpy (&u64, r->b + r->i, 8);
          v = u64 > INT64_MAX ? -1 : (int64_t) u64;
        }
      r->i += vtype_size[et];
      if (v <= 0)
        return fail (r, "\"%s\" holds the dimension %lld (must be positive)", key,
                     (long long) v);
      shape[k] = v;
    }
  *ndim = (int) cnt;
  return 0;
}

int
gguf_has_magic (const void *buf, size_t len)
{
  return len >= 4 && memcmp (buf, "GGUF", 4) == 0;
}

struct orig_shape
{
  int     ndim;
  int64_t shape[ST_MAX_DIMS];
};

static const char *
ggml_type_name (uint32_t id)
{
  for (size_t k = 0; k < G_N_ELEMENTS (ggml_types); k++)
    if ((uint32_t) ggml_types[k].id == id)
      return ggml_types[k].name;
  return NULL;
}

/* The key/value section: alignment, string metadata, orig_shape arrays. */
static int
read_kv (struct rd *r, struct st_file *f, uint64_t n_kv, uint32_t *alignment,
         GHashTable *orig_shapes)
{
  GHashTable *seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  int         rc = 0;

  for (uint64_t k = 0; k < n_kv && rc == 0; k++)
    {
      const char *ks, *vs;
      size_t      kn, vn;
      uint32_t    t;
      char       *key;

      if (rd_str (r, &ks, &kn, "a metadata key") != 0)
        {
          rc = -1;
          break;
        }
      if (kn == 0 || memchr (ks, '\0', kn) != NULL)
        {
          rc = fail (r, "metadata key %llu is empty or holds a NUL byte", (unsigned long long) k);
          break;
        }
      key = g_strndup (ks, kn);
      if (g_hash_table_contains (seen, key))
        {
          rc = fail (r, "metadata key \"%s\" appears twice", key);
          g_free (key);
          break;
        }
      g_hash_table_add (seen, key);
      if (rd_u32 (r, &t, "a metadata type") != 0)
        {
          rc = -1;
          break;
        }
      if (strcmp (key, "general.alignment") == 0)
        {
          uint32_t a;
          if (t != GV_U32)
            rc = fail (r, "general.alignment has value type %u, not UINT32", t);
          else if (rd_u32 (r, &a, "general.alignment") != 0)
            rc = -1;
          else if (a == 0 || (a & (a - 1)) != 0)
            rc = fail (r, "general.alignment %u is not a power of two", a);
          else
            *alignment = a;
        }
      else if (g_str_has_prefix (key, ORIG_SHAPE_KEY) && t == GV_ARRAY)
        {
          struct orig_shape *os = g_new0 (struct orig_shape, 1);
          if (read_shape_array (r, key, os->shape, &os->ndim) != 0)
            {
              g_free (os);
              rc = -1;
            }
          else
            g_hash_table_insert (orig_shapes, g_strdup (key + strlen (ORIG_SHAPE_KEY)), os);
        }
      else if (t == GV_STRING)
        {
          if (rd_str (r, &vs, &vn, "a metadata string") != 0)
            rc = -1;
          else
            g_hash_table_insert (f->metadata, g_strdup (key), g_strndup (vs, vn));
        }
      else
        rc = skip_value (r, t, 0, key);
    }
  g_hash_table_destroy (seen);
  return r->failed ? -1 : rc;
}

static int
cmp_by_data (const void *a, const void *b)
{
  const struct st_tensor *x = *(const struct st_tensor *const *) a;
  const struct st_tensor *y = *(const struct st_tensor *const *) b;
  return x->data < y->data ? -1 : x->data > y->data;
}

/* No two non-empty tensors from index `first` on share a byte. */
static void
check_overlap (struct rd *r, struct st_file *f, size_t first, const uint8_t *data)
{
  size_t                   n = 0;
  const struct st_tensor **v = g_new (const struct st_tensor *, f->n_tensors - first + 1);

  for (size_t i = first; i < f->n_tensors; i++)
    if (f->tensors[i].nbytes > 0)
      v[n++] = &f->tensors[i];
  qsort (v, n, sizeof *v, cmp_by_data);
  for (size_t i = 1; i < n; i++)
    if ((const uint8_t *) v[i - 1]->data + v[i - 1]->nbytes > (const uint8_t *) v[i]->data)
      {
        fail (r, "tensors \"%s\" (data bytes %td..%td) and \"%s\" (from byte %td) overlap",
              v[i - 1]->name, (const uint8_t *) v[i - 1]->data - data,
              (const uint8_t *) v[i - 1]->data + v[i - 1]->nbytes - data, v[i]->name,
              (const uint8_t *) v[i]->data - data);
        break;
      }
  g_free (v);
}

enum sd35_status
gguf_parse_into (struct st_file *f, const uint8_t *buf, size_t len, const char *name,
                 const char *file, struct sd35_error *err)
{
  struct rd        r = { buf, len, 0, name, err, 0 };
  uint32_t         version, alignment = GGUF_DEFAULT_ALIGNMENT;
  uint64_t         n_tensors, n_kv;
  size_t           first = f->n_tensors, data_off, data_len;
  GHashTable      *orig_shapes;
  GArray          *offsets;

  if (!gguf_has_magic (buf, len))
    {
      fail (&r, "the file does not start with \"GGUF\" (not a GGUF file, or damaged)");
      return SD35_ERR_FORMAT;
    }
  r.i = 4;
  if (rd_u32 (&r, &version, "the version") != 0)
    return SD35_ERR_FORMAT;
  if (version == 1)
    return fail (&r, "version 1 (the 2023 draft with 32-bit counts) is not supported; "
                 "convert the model again with a current tool"), SD35_ERR_FORMAT;
  if (version != 2 && version != 3)
    return fail (&r, "version %u is not supported (2 and 3 are; a big-endian file reads as "
                 "a huge version)", version), SD35_ERR_FORMAT;
  if (rd_u64 (&r, &n_tensors, "the tensor count") != 0
      || rd_u64 (&r, &n_kv, "the metadata count") != 0)
    return SD35_ERR_FORMAT;
  /* a key/value takes ≥ 13 bytes (8 length + 1 + 4 type), a tensor info ≥ 25 */
  if (n_kv > (len - r.i) / 13)
    return fail (&r, "%llu metadata entries cannot fit in %zu bytes",
                 (unsigned long long) n_kv, len), SD35_ERR_FORMAT;
  if (n_tensors > (len - r.i) / 25)
    return fail (&r, "%llu tensors cannot fit in %zu bytes", (unsigned long long) n_tensors,
                 len), SD35_ERR_FORMAT;

  orig_shapes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  offsets = g_array_new (FALSE, FALSE, sizeof (uint64_t));
  if (read_kv (&r, f, n_kv, &alignment, orig_shapes) != 0)
    goto out;

  for (uint64_t k = 0; k < n_tensors; k++)
    {
      struct st_tensor t = { 0 };
      const char      *ns;
      size_t           nn, blk;
      uint32_t         nd, type;
      uint64_t         ne[GGUF_MAX_DIMS], off;
      const char      *tname;
      int              known = 0;

      if (rd_str (&r, &ns, &nn, "a tensor name") != 0)
        goto out;
      if (nn == 0 || nn > GGUF_MAX_NAME || memchr (ns, '\0', nn) != NULL)
        {
          fail (&r, "tensor %llu has an empty, over-long or NUL-holding name",
                (unsigned long long) k);
          goto out;
        }
      t.name = g_strndup (ns, nn);
      t.file = file;
      if (g_hash_table_lookup (f->by_name, t.name) != NULL)
        {
          fail (&r, "tensor \"%s\" appears twice", t.name);
          g_free ((char *) t.name);
          goto out;
        }
      if (rd_u32 (&r, &nd, "a dimension count") != 0 || (nd < 1 || nd > GGUF_MAX_DIMS
                                                          ? fail (&r, "tensor \"%s\" has %u "
                                                                  "dimensions (1 to 4 allowed)",
                                                                  t.name, nd)
                                                          : 0) != 0)
        {
          g_free ((char *) t.name);
          goto out;
        }
      for (uint32_t d = 0; d < nd; d++)
        if (rd_u64 (&r, &ne[d], "a dimension") != 0)
          break;
      if (r.failed || rd_u32 (&r, &type, "a tensor type") != 0
          || rd_u64 (&r, &off, "a tensor offset") != 0)
        {
          g_free ((char *) t.name);
          goto out;
        }
      for (size_t j = 0; j < G_N_ELEMENTS (ggml_types); j++)
        if ((uint32_t) ggml_types[j].id == type)
          {
            known = 1;
            if (ggml_types[j].supported)
              {
                t.dtype = ggml_types[j].dtype;
                known = 2;
              }
          }
      tname = ggml_type_name (type);
      if (known != 2)
        {
          if (known == 1)
            sd35_set_error (err, SD35_ERR_FORMAT,
                                 "%s: tensor \"%s\" is stored as GGML type %s, which this "
                                 "program cannot compute with (it reads %s); use a .gguf "
                                 "quantized to one of those (Q8_0 is the closest to the "
                                 "original weights, Q4_K and Q4_0 the smallest)", name, t.name,
                                 tname, SUPPORTED_TYPES);
          else
            fail (&r, "tensor \"%s\" has unknown GGML type %u", t.name, type);
          r.failed = 1;
          g_free ((char *) t.name);
          goto out;
        }
      /* torch order: outermost first */
      t.ndim = (int) nd;
      t.numel = 1;
      for (uint32_t d = 0; d < nd; d++)
        {
          if (ne[d] > (uint64_t) INT64_MAX
              || sd35_mul_size (t.numel, (size_t) ne[d], &t.numel) != 0)
            {
              fail (&r, "tensor \"%s\": its dimensions overflow", t.name);
              g_free ((char *) t.name);
              goto out;
            }
          t.shape[nd - 1 - d] = (int64_t) ne[d];
        }
      blk = sd35_dtype_block_elems (t.dtype);
      if (ne[0] % blk != 0)
        {
          fail (&r, "tensor \"%s\" is %s, but its rows of %llu values are not whole blocks of "
                "%zu", t.name, tname, (unsigned long long) ne[0], blk);
          g_free ((char *) t.name);
          goto out;
        }
      if (sd35_dtype_nbytes (t.dtype, t.numel, &t.nbytes) != 0)
        {
          fail (&r, "tensor \"%s\": its byte size overflows", t.name);
          g_free ((char *) t.name);
          goto out;
        }
      if (off % alignment != 0)
        {
          fail (&r, "tensor \"%s\" starts at data offset %llu, not a multiple of the "
                "alignment %u", t.name, (unsigned long long) off, alignment);
          g_free ((char *) t.name);
          goto out;
        }
      if (st_file_append (f, &t, err) != 0)
        {
          g_free ((char *) t.name);
          r.failed = 1;
          goto out;
        }
      g_array_append_val (offsets, off);
    }

  /* the data area starts at the next multiple of the alignment */
  data_off = r.i;
  if (data_off % alignment != 0)
    data_off += alignment - data_off % alignment;
  if (data_off > len)
    {
      if (f->n_tensors > first)
        {
          fail (&r, "the data area would start at byte %zu, past the end of the file (%zu "
                "bytes; truncated?)", data_off, len);
          goto out;
        }
      data_off = len;
    }
  data_len = len - data_off;
  for (size_t k = first; k < f->n_tensors; k++)
    {
      struct st_tensor        *t = &f->tensors[k];
      uint64_t                 off = g_array_index (offsets, uint64_t, k - first);
      const struct orig_shape *os = g_hash_table_lookup (orig_shapes, t->name);

      if (off > data_len || t->nbytes > data_len - off)
        {
          fail (&r, "tensor \"%s\" (%zu bytes at data offset %llu) ends past the end of the "
                "file (data area of %zu bytes; truncated?)", t->name, t->nbytes,
                (unsigned long long) off, data_len);
          goto out;
        }
      t->data = buf + data_off + off;
      if (os != NULL)
        {
          size_t numel = 1;
          for (int d = 0; d < os->ndim; d++)
            if (sd35_mul_size (numel, (size_t) os->shape[d], &numel) != 0)
              numel = 0;
          if (numel != t->numel)
            {
              fail (&r, "tensor \"%s\": its " ORIG_SHAPE_KEY " holds %zu values, the tensor "
                    "%zu", t->name, numel, t->numel);
              goto out;
            }
          t->ndim = os->ndim;
          memcpy (t->shape, os->shape, sizeof os->shape);
        }
    }
  check_overlap (&r, f, first, buf + data_off);

out:
  g_hash_table_destroy (orig_shapes);
  g_array_free (offsets, TRUE);
  if (r.failed)
    return err != NULL && err->status != SD35_OK ? err->status : SD35_ERR_FORMAT;
  return SD35_OK;
}
