/* weights.c — the weights loader (see weights.h): key lookup with a prefix over one or more
 * files, dtype and shape checks, upload through backend->weight_from_host, and one error
 * listing every problem at the end (stable-diffusion.cpp's model_loader idea: report all
 * missing and mis-shaped tensors at once instead of failing on the first). */
#include "weights.h"

#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* problems listed in full in the final message; the rest are counted */
#define WL_MAX_LISTED 20
/* WEIGHT_VECTOR tensors up to this many elements are checked for NaN/Inf at load */
#define WL_FINITE_MAX_NUMEL ((size_t) 1 << 20)

struct weights_loader
{
  struct backend  *be;
  struct st_file **files;
  int              n_files;
  char            *prefix;
  char            *what;
  GHashTable      *used;        /* full keys looked up by a loading helper */
  GPtrArray       *problems;    /* one line each */
  size_t           n_missing, n_shape;
  enum sd35_status other;       /* status of the first other problem (OOM, NaN, backend) */
  int              check_all;   /* wl_set_check_finite (wl, 1): matrices too */
  int              be_reported; /* the backend's sticky error is listed once */
};

struct weights_loader *
wl_new (struct backend *be, struct st_file *const *files, int n_files, const char *prefix,
        const char *what)
{
  struct weights_loader *wl = calloc (1, sizeof *wl);

  if (wl == NULL || n_files < 0)
    {
      free (wl);
      return NULL;
    }
  wl->files = calloc ((size_t) n_files + 1, sizeof *wl->files);
  if (wl->files == NULL)
    {
      free (wl);
      return NULL;
    }
  for (int i = 0; i < n_files; i++)
    if (files[i] != NULL)
      wl->files[wl->n_files++] = files[i];
  wl->be = be;
  wl->prefix = g_strdup (prefix != NULL ? prefix : "");
  wl->what = g_strdup (what != NULL ? what : "model");
  wl->used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  wl->problems = g_ptr_array_new_with_free_func (g_free);
  return wl;
}

void
wl_free (struct weights_loader *wl)
{
  if (wl == NULL)
    return;
  g_hash_table_destroy (wl->used);
  g_ptr_array_free (wl->problems, TRUE);
  g_free (wl->prefix);
  g_free (wl->what);
  free (wl->files);
  free (wl);
}

void
wl_set_check_finite (struct weights_loader *wl, int all)
{
  wl->check_all = all;
}

static void SD35_PRINTF (3, 4)
wl_problem (struct weights_loader *wl, enum sd35_status status, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_ptr_array_add (wl->problems, g_strdup_vprintf (fmt, ap));
  va_end (ap);
  if (status == SD35_ERR_MISSING)
    wl->n_missing++;
  else if (status == SD35_ERR_SHAPE)
    wl->n_shape++;
  else if (wl->other == SD35_OK)
    wl->other = status;
}

static char *
wl_keyv (struct weights_loader *wl, const char *fmt, va_list ap)
{
  char *name = g_strdup_vprintf (fmt, ap);
  char *key = g_strconcat (wl->prefix, name, NULL);
  g_free (name);
  return key;
}

/* full key → tensor (and the file holding it) */
static const struct st_tensor *
wl_lookup (struct weights_loader *wl, const char *key, struct st_file **file)
{
  for (int i = 0; i < wl->n_files; i++)
    {
      const struct st_tensor *t = st_find (wl->files[i], key);
      if (t != NULL)
        {
          if (file != NULL)
            *file = wl->files[i];
          return t;
        }
    }
  return NULL;
}

const struct st_tensor *
wl_find (struct weights_loader *wl, const char *fmt, ...)
{
  const struct st_tensor *t;
  va_list                 ap;
  char                   *key;

  va_start (ap, fmt);
  key = wl_keyv (wl, fmt, ap);
  va_end (ap);
  t = wl_lookup (wl, key, NULL);
  g_free (key);
  return t;
}

int
wl_shape (struct weights_loader *wl, int64_t shape[ST_MAX_DIMS], const char *fmt, ...)
{
  const struct st_tensor *t;
  va_list                 ap;
  char                   *key;

  va_start (ap, fmt);
  key = wl_keyv (wl, fmt, ap);
  va_end (ap);
  t = wl_lookup (wl, key, NULL);
  g_free (key);
  if (t == NULL)
    return 0;
  memcpy (shape, t->shape, sizeof t->shape);
  return t->ndim;
}

static int
all_finite (const void *data, enum sd35_dtype dt, size_t n)
{
  float buf[1024];
  for (size_t i = 0; i < n; i += 1024)
    {
      size_t k = n - i < 1024 ? n - i : 1024, off = 0;  /* 1024: whole blocks of every type */
      if (sd35_dtype_nbytes (dt, i, &off) != 0)
        return 0;
      sd35_convert_to_f32 (buf, (const uint8_t *) data + off, dt, k);
      for (size_t j = 0; j < k; j++)
        if (!isfinite (buf[j]))
          return 0;
    }
  return 1;
}

/* --- scaled checkpoints ---------------------------------------------------------------------
 * "Scaled fp8" files (ComfyUI's *_fp8_scaled, also modelopt-style exports) store X.weight in
 * F8 with a per-tensor (or per-output-row) fp32 factor X.scale_weight / X.weight_scale: the
 * real weight is weight · scale.  The loader applies the factor while widening; a scale it
 * cannot apply is a problem (the file is refused), never ignored: an unscaled fp8 weight
 * gives a garbage image without any error.  X.scale_input only matters to fp8 matmuls, which
 * this engine does not do (it widens the weights), so it is marked as read. */
static const char *const wl_scale_suffixes[] = { ".scale_weight", ".weight_scale" };

static int
has_suffix (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcmp (s + n - m, suffix) == 0;
}

/* The scale tensor of weight `key` (…".weight"), marked used; NULL when the file has none
 * (*bad set, with a problem recorded, when it has one that cannot be applied to t). */
static const struct st_tensor *
wl_scale_of (struct weights_loader *wl, const char *key, const struct st_tensor *t, int *bad)
{
  const struct st_tensor *s = NULL;
  char                   *base, *k = NULL;

  *bad = 0;
  if (!has_suffix (key, ".weight"))
    return NULL;
  base = g_strndup (key, strlen (key) - strlen (".weight"));
  for (size_t i = 0; s == NULL && i < G_N_ELEMENTS (wl_scale_suffixes); i++)
    {
      g_free (k);
      k = g_strconcat (base, wl_scale_suffixes[i], NULL);
      s = wl_lookup (wl, k, NULL);
    }
  if (s != NULL)
    {
      g_hash_table_add (wl->used, g_strdup (k));
      if (!sd35_dtype_is_float (s->dtype)
          || (s->numel != 1 && (t->ndim < 1 || s->numel != (size_t) t->shape[0])))
        {
          wl_problem (wl, SD35_ERR_SHAPE, "%s: its scale %s (%s, %zu values) is neither one "
                      "factor nor one per output row; this scaled checkpoint cannot be used",
                      key, k, sd35_dtype_name (s->dtype), s->numel);
          *bad = 1;
          s = NULL;
        }
    }
  g_free (k);
  k = g_strconcat (base, ".scale_input", NULL);
  if (wl_lookup (wl, k, NULL) != NULL)
    g_hash_table_add (wl->used, g_strdup (k));
  g_free (k);
  g_free (base);
  return s;
}

/* vals[numel] (rows of numel/rows values) ·= scale (1 or rows factors); 0 if not finite. */
static int
wl_apply_scale (struct weights_loader *wl, float *vals, size_t numel, size_t rows,
                const struct st_tensor *scale, const char *key)
{
  float *f = malloc (scale->numel * sizeof *f);
  size_t per_row = rows ? numel / rows : numel;

  if (f == NULL)
    {
      wl_problem (wl, SD35_ERR_OOM, "%s: out of memory reading its scale", key);
      return 0;
    }
  sd35_convert_to_f32 (f, scale->data, scale->dtype, scale->numel);
  for (size_t i = 0; i < scale->numel; i++)
    if (!isfinite (f[i]))
      {
        wl_problem (wl, SD35_ERR_NAN, "%s: its scale is NaN or Inf (corrupt file?)", key);
        free (f);
        return 0;
      }
  for (size_t i = 0; i < numel; i++)
    vals[i] *= f[scale->numel == 1 ? 0 : i / per_row];
  free (f);
  return 1;
}

/* Scaled matrices are stored as bf16 (what an F8 matrix widens to on every backend, half the
 * memory of fp32): vals[n] narrowed in place (element i's 2 bytes land below float i). */
static enum sd35_dtype
wl_narrow_bf16 (float *vals, size_t n)
{
  uint16_t *h = (uint16_t *) (void *) vals;
  for (size_t i = 0; i < n; i++)
    h[i] = sd35_f32_to_bf16 (vals[i]);
  return SD35_BF16;
}

/* Looks key up and checks float dtype and shape; marks it used.  NULL (with a problem
 * recorded unless optional and absent) when unusable. */
static const struct st_tensor *
wl_checked (struct weights_loader *wl, const char *key, int ndim, const int64_t *shape,
            int optional, struct st_file **file)
{
  const struct st_tensor *t = wl_lookup (wl, key, file);
  char                    got[160], want[160];
  int                     same;

  if (t == NULL)
    {
      if (!optional)
        wl_problem (wl, SD35_ERR_MISSING, "missing %s", key);
      return NULL;
    }
  g_hash_table_add (wl->used, g_strdup (key));
  same = t->ndim == ndim;
  for (int d = 0; same && d < ndim; d++)
    same = t->shape[d] == shape[d];
  if (!same)
    {
      wl_problem (wl, SD35_ERR_SHAPE, "%s has shape %s, expected %s", key,
                  st_shape_string (t->ndim, t->shape, got, sizeof got),
                  st_shape_string (ndim, shape, want, sizeof want));
      return NULL;
    }
  if (!sd35_dtype_is_float (t->dtype))
    {
      wl_problem (wl, SD35_ERR_SHAPE, "%s is %s, expected a float tensor", key,
                  sd35_dtype_name (t->dtype));
      return NULL;
    }
  return t;
}

/* New backend tensor from host bytes.  `owned` (malloc'd, may be NULL) is the source buffer
 * when it is not file data: kept alive with `file` if the backend aliased it, freed if not. */
static struct tensor *
wl_upload (struct weights_loader *wl, const char *key, const void *src, enum sd35_dtype dt,
           int ndim, const int64_t *shape, enum weight_use use, void *owned, size_t owned_len,
           struct st_file *file)
{
  struct tensor   *x;
  enum sd35_status st;
  size_t           numel = 1;

  if (ndim > 4)
    {
      wl_problem (wl, SD35_ERR_SHAPE, "%s has %d dimensions (at most 4 supported)", key, ndim);
      free (owned);
      return NULL;
    }
  if (backend_failed (wl->be) || (x = calloc (1, sizeof *x)) == NULL)
    {
      if (!wl->be_reported)
        wl_problem (wl, backend_failed (wl->be) ? wl->be->err.status : SD35_ERR_OOM,
                    "%s: %s", key, backend_failed (wl->be) ? wl->be->err.message
                                                           : "out of memory");
      wl->be_reported = 1;
      free (owned);
      return NULL;
    }
  for (int d = 0; d < ndim; d++)
    {
      x->shape[d] = shape[d];
      numel *= (size_t) shape[d];  /* fits: checked against the file's byte size */
    }
  x->be = wl->be;
  x->dtype = dt;
  x->ndim = ndim;
  x->numel = numel;
  st = op_weight_from_host (wl->be, x, src, dt, use);
  if (st != SD35_OK)
    {
      free (x);
      if (!wl->be_reported)
        wl_problem (wl, st, "%s: %s", key, backend_failed (wl->be) ? wl->be->err.message
                                                                  : sd35_status_name (st));
      wl->be_reported = 1;
      free (owned);
      return NULL;
    }
  if (owned != NULL)
    {
      const uint8_t *d = x->data, *o = owned;
      if (d >= o && d < o + owned_len)
        st_file_adopt (file, owned);   /* aliased: lives as long as the mapping */
      else
        free (owned);
    }
  return x;
}

static struct tensor *
wl_tensor_key (struct weights_loader *wl, enum weight_use use, int ndim, const int64_t *shape,
               int optional, const char *key)
{
  struct st_file         *file = NULL;
  const struct st_tensor *t = wl_checked (wl, key, ndim, shape, optional, &file);

  const struct st_tensor *scale;
  int                     bad;
  float                  *w;

  if (t == NULL)
    return NULL;
  if ((use == WEIGHT_VECTOR && t->numel <= WL_FINITE_MAX_NUMEL) || wl->check_all)
    if (!all_finite (t->data, t->dtype, t->numel))
      {
        wl_problem (wl, SD35_ERR_NAN, "%s (in %s) contains NaN or Inf (corrupt file?)", key,
                    t->file);
        return NULL;
      }
  scale = wl_scale_of (wl, key, t, &bad);
  if (bad)
    return NULL;
  if (scale == NULL)
    return wl_upload (wl, key, t->data, t->dtype, ndim, shape, use, NULL, 0, NULL);
  /* widened and scaled on the host: weight·scale in fp32, matrices then narrowed to bf16 */
  if ((w = malloc ((t->numel ? t->numel : 1) * sizeof *w)) == NULL)
    {
      wl_problem (wl, SD35_ERR_OOM, "%s: out of memory applying its scale", key);
      return NULL;
    }
  sd35_convert_to_f32 (w, t->data, t->dtype, t->numel);
  if (!wl_apply_scale (wl, w, t->numel, (size_t) (t->ndim ? t->shape[0] : 1), scale, key))
    {
      free (w);
      return NULL;
    }
  return wl_upload (wl, key, w, use == WEIGHT_MATRIX ? wl_narrow_bf16 (w, t->numel) : SD35_F32,
                    ndim, shape, use, w, t->numel * sizeof *w, file);
}

/* wl_tensor_key of base + suffix (".weight", ".bias") */
static struct tensor *
wl_tensor_part (struct weights_loader *wl, enum weight_use use, int ndim, const int64_t *shape,
                const char *base, const char *suffix)
{
  char          *key = g_strconcat (base, suffix, NULL);
  struct tensor *x = wl_tensor_key (wl, use, ndim, shape, 0, key);

  g_free (key);
  return x;
}

static struct tensor *
wl_tensor_v (struct weights_loader *wl, enum weight_use use, int ndim, const int64_t *shape,
             int optional, const char *fmt, va_list ap)
{
  char          *key = wl_keyv (wl, fmt, ap);
  struct tensor *x = wl_tensor_key (wl, use, ndim, shape, optional, key);

  g_free (key);
  return x;
}

struct tensor *
wl_tensor (struct weights_loader *wl, enum weight_use use, int ndim, const int64_t *shape,
           const char *fmt, ...)
{
  struct tensor *x;
  va_list        ap;

  va_start (ap, fmt);
  x = wl_tensor_v (wl, use, ndim, shape, 0, fmt, ap);
  va_end (ap);
  return x;
}

struct tensor *
wl_tensor_opt (struct weights_loader *wl, enum weight_use use, int ndim, const int64_t *shape,
               const char *fmt, ...)
{
  struct tensor *x;
  va_list        ap;

  va_start (ap, fmt);
  x = wl_tensor_v (wl, use, ndim, shape, 1, fmt, ap);
  va_end (ap);
  return x;
}

float *
wl_host_f32 (struct weights_loader *wl, int ndim, const int64_t *shape, const char *fmt, ...)
{
  const struct st_tensor *t;
  struct sd35_error       e = { 0 };
  va_list                 ap;
  char                   *key;
  float                  *v = NULL;

  va_start (ap, fmt);
  key = wl_keyv (wl, fmt, ap);
  va_end (ap);
  t = wl_checked (wl, key, ndim, shape, 0, NULL);
  if (t != NULL && (v = st_read_f32 (t, &e)) == NULL)
    wl_problem (wl, e.status, "%s", e.message);
  if (v != NULL)
    {
      int                     bad;
      const struct st_tensor *scale = wl_scale_of (wl, key, t, &bad);
      if (bad || (scale != NULL
                  && !wl_apply_scale (wl, v, t->numel, (size_t) (t->ndim ? t->shape[0] : 1),
                                      scale, key)))
        {
          free (v);
          v = NULL;
        }
    }
  g_free (key);
  return v;
}

/* Records a loaded linear weight in the registry of the file that holds it (weights.h). */
static void
wl_register (struct weights_loader *wl, struct tensor *w, int n_parts, char *const bases[3])
{
  struct weight_registry *reg = wl->n_files > 0 ? st_file_registry (wl->files[0]) : NULL;
  const struct st_tensor *src[3] = { NULL, NULL, NULL };
  const char             *names[3] = { NULL, NULL, NULL };
  size_t                  plen = strlen (wl->prefix);

  if (reg == NULL || w == NULL)
    return;
  for (int i = 0; i < n_parts; i++)
    {
      char *key = g_strconcat (bases[i], ".weight", NULL);
      src[i] = wl_lookup (wl, key, NULL);
      g_free (key);
      if (src[i] == NULL)
        return;
      names[i] = strncmp (bases[i], wl->prefix, plen) == 0 ? bases[i] + plen : bases[i];
    }
  if (weight_registry_add (reg, w, n_parts, names, src) != 0)
    sd35_log ("%s: %s not recorded for LoRA merging", wl->what, names[0]);
}

void
wl_linear (struct weights_loader *wl, struct linear *l, int64_t n_out, int64_t n_in,
           int has_bias, const char *fmt, ...)
{
  const int64_t ws[2] = { n_out, n_in }, bs[1] = { n_out };
  va_list       ap;
  char         *base;

  va_start (ap, fmt);
  base = wl_keyv (wl, fmt, ap);
  va_end (ap);
  l->w = wl_tensor_part (wl, WEIGHT_MATRIX, 2, ws, base, ".weight");
  l->b = has_bias ? wl_tensor_part (wl, WEIGHT_VECTOR, 1, bs, base, ".bias") : NULL;
  wl_register (wl, l->w, 1, (char *const[3]) { base, NULL, NULL });
  g_free (base);
}

/* Three checked tensors of `each` elements stacked into one [3·rows, cols...] tensor: the
 * file bytes concatenated when the dtypes agree (no conversion, so the backend sees file
 * data), else an fp32 copy. */
static struct tensor *
wl_stack3 (struct weights_loader *wl, const struct st_tensor *t[3], struct st_file *file,
           enum weight_use use, int ndim, const int64_t *shape3, const char *what)
{
  const struct st_tensor *scale[3] = { NULL, NULL, NULL };
  int      same = t[0]->dtype == t[1]->dtype && t[1]->dtype == t[2]->dtype, bad = 0;
  size_t   each, len;
  uint8_t *buf;

  for (int i = 0; i < 3; i++)
    {
      int b;
      scale[i] = wl_scale_of (wl, t[i]->name, t[i], &b);
      bad |= b;
      if (scale[i] != NULL)
        same = 0;   /* scaled parts are widened to fp32 */
    }
  if (bad)
    return NULL;
  each = same ? t[0]->nbytes : t[0]->numel * sizeof (float);

  if (sd35_mul_size (each, 3, &len) != 0 || (buf = malloc (len ? len : 1)) == NULL)
    {
      wl_problem (wl, SD35_ERR_OOM, "%s: out of memory packing q, k, v", what);
      return NULL;
    }
  for (int i = 0; i < 3; i++)
    {
      if (use == WEIGHT_VECTOR && !all_finite (t[i]->data, t[i]->dtype, t[i]->numel))
        {
          wl_problem (wl, SD35_ERR_NAN, "%s (in %s) contains NaN or Inf (corrupt file?)",
                      t[i]->name, t[i]->file);
          free (buf);
          return NULL;
        }
      if (same)
        memcpy (buf + i * each, t[i]->data, each);
      else
        {
          float *f = (float *) (void *) (buf + i * each);
          sd35_convert_to_f32 (f, t[i]->data, t[i]->dtype, t[i]->numel);
          if (scale[i] != NULL
              && !wl_apply_scale (wl, f, t[i]->numel, (size_t) t[i]->shape[0], scale[i],
                                  t[i]->name))
            {
              free (buf);
              return NULL;
            }
        }
    }
  if (!same && use == WEIGHT_MATRIX && (scale[0] || scale[1] || scale[2]))
    return wl_upload (wl, what, buf, wl_narrow_bf16 ((float *) (void *) buf, 3 * t[0]->numel),
                      ndim, shape3, use, buf, len, file);
  return wl_upload (wl, what, buf, same ? t[0]->dtype : SD35_F32, ndim, shape3, use, buf, len,
                    file);
}

/* fmt with its "%s" replaced by names[i] after the other conversions are done: the %s is
 * swapped for a marker before formatting. */
static void
wl_qkv_keys (struct weights_loader *wl, const char *const names[3], const char *fmt,
             va_list ap, char *keys[3], char **packed)
{
  const char *s = strstr (fmt, "%s");
  char       *f2 = s != NULL ? g_strdup_printf ("%.*s\001%s", (int) (s - fmt), fmt, s + 2)
                             : g_strdup (fmt);
  char       *base = wl_keyv (wl, f2, ap);
  char      **parts = g_strsplit (base, "\001", 2);

  for (int i = 0; i < 3; i++)
    keys[i] = g_strconcat (parts[0], parts[1] != NULL ? names[i] : "", parts[1], NULL);
  *packed = g_strdup_printf ("%s{%s,%s,%s}%s", parts[0], names[0], names[1], names[2],
                             parts[1] != NULL ? parts[1] : "");
  g_strfreev (parts);
  g_free (base);
  g_free (f2);
}

void
wl_linear_qkv (struct weights_loader *wl, struct linear *l, int64_t n, int64_t n_in,
               int has_bias, const char *const names[3], const char *fmt, ...)
{
  const int64_t ws[2] = { n, n_in }, bs[1] = { n };
  const int64_t ws3[2] = { 3 * n, n_in }, bs3[1] = { 3 * n };
  const struct st_tensor *tw[3], *tb[3];
  struct st_file         *file = NULL;
  char                   *keys[3], *packed, *k;
  int                     ok_w = 1, ok_b = 1;
  va_list                 ap;

  va_start (ap, fmt);
  wl_qkv_keys (wl, names, fmt, ap, keys, &packed);
  va_end (ap);
  l->w = l->b = NULL;
  for (int i = 0; i < 3; i++)
    {
      k = g_strconcat (keys[i], ".weight", NULL);
      tw[i] = wl_checked (wl, k, 2, ws, 0, i == 0 ? &file : NULL);
      ok_w &= tw[i] != NULL;
      g_free (k);
      if (has_bias)
        {
          k = g_strconcat (keys[i], ".bias", NULL);
          tb[i] = wl_checked (wl, k, 1, bs, 0, NULL);
          ok_b &= tb[i] != NULL;
          g_free (k);
        }
    }
  if (ok_w && file != NULL)
    {
      k = g_strconcat (packed, ".weight", NULL);
      l->w = wl_stack3 (wl, tw, file, WEIGHT_MATRIX, 2, ws3, k);
      g_free (k);
      wl_register (wl, l->w, 3, keys);
    }
  if (has_bias && ok_b && file != NULL)
    {
      k = g_strconcat (packed, ".bias", NULL);
      l->b = wl_stack3 (wl, tb, file, WEIGHT_VECTOR, 1, bs3, k);
      g_free (k);
    }
  for (int i = 0; i < 3; i++)
    g_free (keys[i]);
  g_free (packed);
}

void
wl_norm (struct weights_loader *wl, struct norm *nm, int64_t D, int has_bias, const char *fmt,
         ...)
{
  const int64_t s[1] = { D };
  va_list       ap;
  char         *base;

  va_start (ap, fmt);
  base = wl_keyv (wl, fmt, ap);
  va_end (ap);
  nm->w = wl_tensor_part (wl, WEIGHT_VECTOR, 1, s, base, ".weight");
  nm->b = has_bias ? wl_tensor_part (wl, WEIGHT_VECTOR, 1, s, base, ".bias") : NULL;
  g_free (base);
}

void
wl_conv2d (struct weights_loader *wl, struct conv2d *c, int64_t co, int64_t ci, int64_t kh,
           int64_t kw, const char *fmt, ...)
{
  const int64_t ws[4] = { co, ci, kh, kw }, bs[1] = { co };
  va_list       ap;
  char         *base;

  va_start (ap, fmt);
  base = wl_keyv (wl, fmt, ap);
  va_end (ap);
  c->co = co;
  c->ci = ci;
  c->kh = kh;
  c->kw = kw;
  c->w = wl_tensor_part (wl, WEIGHT_MATRIX, 4, ws, base, ".weight");
  c->b = wl_tensor_part (wl, WEIGHT_VECTOR, 1, bs, base, ".bias");
  g_free (base);
}

static void
wl_log_unused (struct weights_loader *wl)
{
  size_t n_unused = 0, plen = strlen (wl->prefix);

  for (int f = 0; f < wl->n_files; f++)
    for (size_t i = 0; i < st_count (wl->files[f]); i++)
      {
        const char *name = st_at (wl->files[f], i)->name;
        if (strncmp (name, wl->prefix, plen) != 0 || g_hash_table_contains (wl->used, name))
          continue;
        if (n_unused++ < 50)
          sd35_log ("%s: unused tensor %s in %s", wl->what, name, st_path (wl->files[f]));
      }
  if (n_unused > 50)
    sd35_log ("%s: and %zu more unused tensors", wl->what, n_unused - 50);
}

/* A weight scale that no loaded weight took (its weight was read some other way, or under
 * another name) would leave that weight unscaled: refuse rather than give a wrong image. */
static void
wl_check_scales_used (struct weights_loader *wl)
{
  size_t plen = strlen (wl->prefix);

  for (int f = 0; f < wl->n_files; f++)
    for (size_t i = 0; i < st_count (wl->files[f]); i++)
      {
        const char *name = st_at (wl->files[f], i)->name;
        if (strncmp (name, wl->prefix, plen) != 0 || g_hash_table_contains (wl->used, name))
          continue;
        for (size_t k = 0; k < G_N_ELEMENTS (wl_scale_suffixes); k++)
          if (has_suffix (name, wl_scale_suffixes[k]))
            wl_problem (wl, SD35_ERR_SHAPE, "%s is a weight scale that this loader does not "
                        "apply to any weight; refusing the file rather than loading it "
                        "unscaled", name);
      }
}

enum sd35_status
wl_finish (struct weights_loader *wl, struct sd35_error *err)
{
  enum sd35_status st = SD35_OK;
  GString         *msg;
  guint            n, listed;

  wl_check_scales_used (wl);
  n = wl->problems->len;

  if (n > 0)
    {
      st = wl->other != SD35_OK ? wl->other
           : wl->n_missing > 0  ? SD35_ERR_MISSING
                                : SD35_ERR_SHAPE;
      msg = g_string_new (NULL);
      g_string_append_printf (msg, "%s weights (", wl->what);
      for (int f = 0; f < wl->n_files; f++)
        g_string_append_printf (msg, f ? ", %s" : "%s", st_path (wl->files[f]));
      g_string_append_printf (msg, "): %u problem%s: ", n, n > 1 ? "s" : "");
      /* as many as fit in the message (at most 20), then a count */
      for (listed = 0; listed < n && listed < WL_MAX_LISTED; listed++)
        {
          const char *p = wl->problems->pdata[listed];
          if (listed > 0 && msg->len + strlen (p) + 100 > sizeof err->message)
            break;
          g_string_append_printf (msg, listed ? "; %s" : "%s", p);
        }
      if (listed < n)
        g_string_append_printf (msg, "; and %u more", n - listed);
      if (st == SD35_ERR_MISSING || st == SD35_ERR_SHAPE)
        g_string_append (msg, " (is this the right file for this model part?)");
      sd35_set_error (err, st, "%s", msg->str);
      g_string_free (msg, TRUE);
    }
  wl_log_unused (wl);
  wl_free (wl);
  return st;
}

void
linear_free (struct linear *l)
{
  tensor_free (l->w);
  tensor_free (l->b);
  l->w = l->b = NULL;
}

void
norm_free (struct norm *n)
{
  tensor_free (n->w);
  tensor_free (n->b);
  n->w = n->b = NULL;
}

void
conv2d_free (struct conv2d *c)
{
  tensor_free (c->w);
  tensor_free (c->b);
  c->w = c->b = NULL;
}

void
weights_random_bf16 (uint16_t *pool, size_t n, uint64_t seed)
{
  /* Knuth's MMIX LCG; the top 24 bits give a uniform in [0, 1) */
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;

  for (size_t i = 0; i < n; i++)
    {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      pool[i] = sd35_f32_to_bf16 (((float) (state >> 40) / 16777216.0f - 0.5f) * 0.04f);
    }
}

struct tensor *
weights_random_tensor (struct weights_random *r, enum weight_use use, int ndim, int64_t d0,
                       int64_t d1, int64_t d2, int64_t d3)
{
  struct tensor *t;
  int64_t        shape[4] = { d0, d1, d2, d3 };

  if (r->failed)
    return NULL;
  t = calloc (1, sizeof *t);
  if (t == NULL)
    {
      r->failed = 1;
      return NULL;
    }
  t->be = r->be;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  if (op_weight_from_host (r->be, t, r->pool, SD35_BF16, use) != SD35_OK)
    {
      free (t);
      r->failed = 1;
      return NULL;
    }
  return t;
}
