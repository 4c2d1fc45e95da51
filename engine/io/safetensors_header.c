/* safetensors_header.c — strict validation of a safetensors file held in memory.  The format
 * (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian header
 * length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}, then the data area; offsets are relative to it.
 *
 * The JSON is read by a small schema-driven parser instead of a general one: everything is
 * bounded by the header (≤ 100 MB), nesting of skipped unknown members is limited, integers
 * are checked for overflow, and the first problem ends the parse with the file name, the
 * reason and the byte position.  Tensors are then checked against the data area. */
#include "safetensors_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

#define JSON_MAX_DEPTH 32

struct jp
{
  const char        *s;      /* header text (not NUL-terminated) */
  size_t             n, i;
  const char        *name;   /* file name for messages */
  struct sd35_error *err;
  int                failed;
};

static int SD35_PRINTF (2, 3)
jp_fail (struct jp *p, const char *fmt, ...)
{
  char    why[512];
  va_list ap;

  if (p->failed)
    return -1;
  va_start (ap, fmt);
  vsnprintf (why, sizeof why, fmt, ap);
  va_end (ap);
  sd35_set_error (p->err, SD35_ERR_FORMAT,
                  "%s: invalid safetensors header: %s (at header byte %zu)", p->name, why,
                  p->i);
  p->failed = 1;
  return -1;
}

static void
jp_ws (struct jp *p)
{
  while (p->i < p->n
         && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n'
             || p->s[p->i] == '\r'))
    p->i++;
}

/* skips whitespace; returns the next char or -1 at the end */
static int
jp_peek (struct jp *p)
{
  jp_ws (p);
  return p->i < p->n ? (unsigned char) p->s[p->i] : -1;
}

static int
jp_expect (struct jp *p, char c)
{
  if (jp_peek (p) != (unsigned char) c)
    return jp_fail (p, p->i < p->n ? "expected '%c', found '%c'" : "expected '%c', found the end",
                    c, p->i < p->n ? p->s[p->i] : ' ');
  p->i++;
  return 0;
}

static int
jp_hex4 (struct jp *p, unsigned *out)
{
  unsigned v = 0;
  if (p->n - p->i < 4)
    return jp_fail (p, "truncated \\u escape");
  for (int k = 0; k < 4; k++)
    {
      char c = p->s[p->i++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= (unsigned) (c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= (unsigned) (c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= (unsigned) (c - 'A' + 10);
      else
        return jp_fail (p, "bad hex digit in \\u escape");
    }
  *out = v;
  return 0;
}

/* A JSON string → new NUL-terminated UTF-8 (g_free).  \u0000, lone surrogates, raw control
 * characters and invalid UTF-8 are refused. */
static int
jp_string (struct jp *p, char **out)
{
  GString *s;

  *out = NULL;
  if (jp_expect (p, '"') != 0)
    return -1;
  s = g_string_new (NULL);
  for (;;)
    {
      unsigned char c;
      if (p->i >= p->n)
        goto bad_end;
      c = (unsigned char) p->s[p->i++];
      if (c == '"')
        break;
      if (c < 0x20)
        {
          jp_fail (p, "control character 0x%02x inside a string", c);
          goto fail;
        }
      if (c != '\\')
        {
          g_string_append_c (s, (char) c);
          continue;
        }
      if (p->i >= p->n)
        goto bad_end;
      c = (unsigned char) p->s[p->i++];
      switch (c)
        {
        case '"': case '\\': case '/': g_string_append_c (s, (char) c); break;
        case 'b': g_string_append_c (s, '\b'); break;
        case 'f': g_string_append_c (s, '\f'); break;
        case 'n': g_string_append_c (s, '\n'); break;
        case 'r': g_string_append_c (s, '\r'); break;
        case 't': g_string_append_c (s, '\t'); break;
        case 'u':
          {
            unsigned u, lo;
            if (jp_hex4 (p, &u) != 0)
              goto fail;
            if (u >= 0xdc00 && u <= 0xdfff)
              {
                jp_fail (p, "lone low surrogate in \\u escape");
                goto fail;
              }
            if (u >= 0xd800 && u <= 0xdbff)
              {
                if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                  {
                    jp_fail (p, "high surrogate without its low half");
                    goto fail;
                  }
                p->i += 2;
                if (jp_hex4 (p, &lo) != 0)
                  goto fail;
                if (lo < 0xdc00 || lo > 0xdfff)
                  {
                    jp_fail (p, "high surrogate without its low half");
                    goto fail;
                  }
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
              }
            if (u == 0)
              {
                jp_fail (p, "\\u0000 inside a string");
                goto fail;
              }
            g_string_append_unichar (s, (gunichar) u);
            break;
          }
        default:
          jp_fail (p, "bad escape '\\%c'", c);
          goto fail;
        }
    }
  if (!g_utf8_validate (s->str, (gssize) s->len, NULL))
    {
      jp_fail (p, "string is not valid UTF-8");
      goto fail;
    }
  *out = g_string_free (s, FALSE);
  return 0;

bad_end:
  jp_fail (p, "unterminated string");
fail:
  g_string_free (s, TRUE);
  return -1;
}

/* An integer without fraction or exponent, |v| < 2^63. */
static int
jp_int (struct jp *p, int64_t *out)
{
  int      neg = 0;
  uint64_t v = 0;
  size_t   start;

  jp_ws (p);
  if (p->i < p->n && p->s[p->i] == '-')
    {
      neg = 1;
      p->i++;
    }
  start = p->i;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
    {
      unsigned d = (unsigned) (p->s[p->i] - '0');
      if (v > (UINT64_C (0x7fffffffffffffff) - d) / 10)
        return jp_fail (p, "integer too large");
      v = v * 10 + d;
      p->i++;
    }
  if (p->i == start)
    return jp_fail (p, "expected an integer");
  if (p->s[start] == '0' && p->i - start > 1)
    return jp_fail (p, "integer with a leading zero");
  if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
    return jp_fail (p, "expected an integer, found a fractional number");
  *out = neg ? -(int64_t) v : (int64_t) v;
  return 0;
}

static int
jp_literal (struct jp *p, const char *lit)
{
  size_t l = strlen (lit);
  if (p->n - p->i < l || memcmp (p->s + p->i, lit, l) != 0)
    return jp_fail (p, "unexpected character '%c'", p->s[p->i]);
  p->i += l;
  return 0;
}

static int
jp_digits (struct jp *p)
{
  size_t start = p->i;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
    p->i++;
  return p->i > start ? 0 : jp_fail (p, "malformed number");
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
jp_skip_number (struct jp *p)
{
  if (p->s[p->i] == '-')
    p->i++;
  if (p->i < p->n && p->s[p->i] == '0')
    p->i++;
  else if (jp_digits (p) != 0)
    return -1;
  if (p->i < p->n && p->s[p->i] == '.')
    {
      p->i++;
      if (jp_digits (p) != 0)
        return -1;
    }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E'))
    {
      p->i++;
      if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
        p->i++;
      if (jp_digits (p) != 0)
        return -1;
    }
  return 0;
}

/* Skips any JSON value (members we do not use), nesting bounded by JSON_MAX_DEPTH. */
static int
jp_skip (struct jp *p, int depth)
{
  int   c = jp_peek (p);
  char *str;

  if (depth > JSON_MAX_DEPTH)
    return jp_fail (p, "nesting deeper than %d", JSON_MAX_DEPTH);
  switch (c)
    {
    case '"':
      if (jp_string (p, &str) != 0)
        return -1;
      g_free (str);
      return 0;
    case '{':
    case '[':
      {
        char close = c == '{' ? '}' : ']';
        p->i++;
        if (jp_peek (p) == close)
          {
            p->i++;
            return 0;
          }
        for (;;)
          {
            if (c == '{')
              {
                if (jp_string (p, &str) != 0)
                  return -1;
                g_free (str);
                if (jp_expect (p, ':') != 0)
                  return -1;
              }
            if (jp_skip (p, depth + 1) != 0)
              return -1;
            if (jp_peek (p) == ',')
              {
                p->i++;
                continue;
              }
            return jp_expect (p, close);
          }
      }
    case 't': return jp_literal (p, "true");
    case 'f': return jp_literal (p, "false");
    case 'n': return jp_literal (p, "null");
    case -1:  return jp_fail (p, "unexpected end of header");
    default:
      if (c == '-' || (c >= '0' && c <= '9'))
        return jp_skip_number (p);
      return jp_fail (p, "unexpected character '%c'", c);
    }
}

/* [i, i, ...] into v (at most max values); returns the count or -1 */
static int
jp_int_array (struct jp *p, int64_t *v, int max, const char *what)
{
  int n = 0;
  if (jp_expect (p, '[') != 0)
    return -1;
  if (jp_peek (p) == ']')
    {
      p->i++;
      return 0;
    }
  for (;;)
    {
      int64_t x = 0;
      if (n == max)
        return jp_fail (p, "%s has more than %d values", what, max);
      if (jp_int (p, &x) != 0)
        return -1;
      v[n++] = x;
      if (jp_peek (p) == ',')
        {
          p->i++;
          continue;
        }
      if (jp_expect (p, ']') != 0)
        return -1;
      return n;
    }
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}; unknown members are skipped. */
static int
jp_tensor (struct jp *p, const char *name, struct st_tensor *t, int64_t off[2])
{
  int seen_dtype = 0, seen_shape = 0, seen_off = 0;

  if (jp_peek (p) != '{')
    return jp_fail (p, "entry \"%s\" is not an object", name);
  p->i++;
  if (jp_peek (p) != '}')
    for (;;)
      {
        char *key;
        if (jp_string (p, &key) != 0)
          return -1;
        if (jp_expect (p, ':') != 0)
          {
            g_free (key);
            return -1;
          }
        if (strcmp (key, "dtype") == 0 && !seen_dtype)
          {
            char *dt;
            seen_dtype = 1;
            if (jp_string (p, &dt) != 0)
              goto fail_key;
            if (sd35_dtype_from_name (dt, &t->dtype) != 0)
              {
                jp_fail (p, "tensor \"%s\" has dtype %s, which is not supported "
                         "(F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, U8)", name, dt);
                g_free (dt);
                goto fail_key;
              }
            g_free (dt);
          }
        else if (strcmp (key, "shape") == 0 && !seen_shape)
          {
            seen_shape = 1;
            t->ndim = jp_int_array (p, t->shape, ST_MAX_DIMS, "shape");
            if (t->ndim < 0)
              goto fail_key;
          }
        else if (strcmp (key, "data_offsets") == 0 && !seen_off)
          {
            seen_off = 1;
            if (jp_int_array (p, off, 2, "data_offsets") != 2)
              {
                jp_fail (p, "tensor \"%s\": data_offsets must be [begin, end]", name);
                goto fail_key;
              }
          }
        else if (strcmp (key, "dtype") == 0 || strcmp (key, "shape") == 0
                 || strcmp (key, "data_offsets") == 0)
          {
            jp_fail (p, "tensor \"%s\" has \"%s\" twice", name, key);
            goto fail_key;
          }
        else if (jp_skip (p, 2) != 0)
          goto fail_key;
        g_free (key);
        if (jp_peek (p) == ',')
          {
            p->i++;
            continue;
          }
        break;
      fail_key:
        g_free (key);
        return -1;
      }
  if (jp_expect (p, '}') != 0)
    return -1;
  if (!seen_dtype || !seen_shape || !seen_off)
    return jp_fail (p, "tensor \"%s\" lacks %s", name,
                    !seen_dtype ? "\"dtype\"" : !seen_shape ? "\"shape\"" : "\"data_offsets\"");
  return 0;
}

static int
jp_metadata (struct jp *p, struct st_file *f, GHashTable *seen)
{
  if (jp_peek (p) != '{')
    return jp_fail (p, "__metadata__ is not an object");
  p->i++;
  if (jp_peek (p) == '}')
    {
      p->i++;
      return 0;
    }
  for (;;)
    {
      char *key, *val;
      if (jp_string (p, &key) != 0)
        return -1;
      if (jp_expect (p, ':') != 0 || jp_peek (p) != '"')
        {
          jp_fail (p, "__metadata__ value of \"%s\" is not a string", key);
          g_free (key);
          return -1;
        }
      if (jp_string (p, &val) != 0)
        {
          g_free (key);
          return -1;
        }
      if (g_hash_table_contains (seen, key))
        {
          jp_fail (p, "__metadata__ has \"%s\" twice", key);
          g_free (key);
          g_free (val);
          return -1;
        }
      g_hash_table_add (seen, g_strdup (key));
      if (!g_hash_table_contains (f->metadata, key))
        g_hash_table_insert (f->metadata, key, val);
      else
        {
          g_free (key);
          g_free (val);
        }
      if (jp_peek (p) == ',')
        {
          p->i++;
          continue;
        }
      return jp_expect (p, '}');
    }
}

int
st_file_append (struct st_file *f, const struct st_tensor *t, struct sd35_error *err)
{
  if (f->n_tensors == f->cap_tensors)
    {
      size_t            cap = f->cap_tensors ? 2 * f->cap_tensors : 64, bytes;
      struct st_tensor *nt = NULL;
      if (sd35_mul_size (cap, sizeof *nt, &bytes) != 0
          || (nt = realloc (f->tensors, bytes)) == NULL)
        {
          sd35_set_error (err, SD35_ERR_OOM, "out of memory for the tensor table");
          return -1;
        }
      f->tensors = nt;
      f->cap_tensors = cap;
    }
  f->tensors[f->n_tensors] = *t;
  g_hash_table_insert (f->by_name, (gpointer) t->name, GSIZE_TO_POINTER (f->n_tensors + 1));
  f->n_tensors++;
  return 0;
}

enum sd35_status
st_parse_into (struct st_file *f, const uint8_t *buf, size_t len, const char *name,
               const char *file, struct sd35_error *err)
{
  uint64_t    hl;
  size_t      first = f->n_tensors, data_len;
  const uint8_t *data;
  int         seen_meta = 0;
  GHashTable *meta_seen;
  GArray     *offs;
  struct jp   p = { 0 };
  enum sd35_status st = SD35_OK;

  if ((len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
      || (len >= 4 && memcmp (buf, "PK\003\004", 4) == 0))
    return st_refuse_pickle (name, err);
  if (len < 8)
    return st_invalid (err, name, "the file is %zu bytes, too short for the 8-byte header "
                       "length (empty or truncated file)", len);
  memcpy (&hl, buf, 8);
  if (hl > ST_MAX_HEADER)
    return st_invalid (err, name, "header length %llu exceeds the 100 MB limit (not a "
                       "safetensors file, or corrupt)", (unsigned long long) hl);
  if (hl > len - 8)
    return st_invalid (err, name, "header length %llu exceeds the %zu bytes after it "
                       "(truncated file?)", (unsigned long long) hl, len - 8);
  data = buf + 8 + hl;
  data_len = len - 8 - (size_t) hl;
  p.s = (const char *) buf + 8;
  p.n = (size_t) hl;
  p.name = name;
  p.err = err;
  if (jp_peek (&p) != '{')
    return st_invalid (err, name, "the header is not a JSON object (not a safetensors file?)");
  p.i++;

  meta_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  offs = g_array_new (FALSE, FALSE, 2 * sizeof (int64_t));
  if (jp_peek (&p) == '}')
    p.i++;
  else
    for (;;)
      {
        char            *key;
        struct st_tensor t = { 0 };
        int64_t          off[2] = { 0, 0 };
        gpointer         prev;

        if (jp_string (&p, &key) != 0 || jp_expect (&p, ':') != 0)
          {
            g_free (key);
            break;
          }
        if (strcmp (key, "__metadata__") == 0)
          {
            if (seen_meta++)
              jp_fail (&p, "\"__metadata__\" appears twice");
            g_free (key);
            if (p.failed || jp_metadata (&p, f, meta_seen) != 0)
              break;
          }
        else
          {
            if (key[0] == '\0')
              {
                /* no model has one and nothing could look it up: a damaged or hostile header */
                jp_fail (&p, "a tensor has an empty name");
                g_free (key);
                break;
              }
            prev = g_hash_table_lookup (f->by_name, key);
            if (prev != NULL)
              {
                const struct st_tensor *o = &f->tensors[GPOINTER_TO_SIZE (prev) - 1];
                if (GPOINTER_TO_SIZE (prev) - 1 >= first)
                  jp_fail (&p, "tensor \"%s\" appears twice", key);
                else
                  jp_fail (&p, "tensor \"%s\" is also in %s", key, o->file);
                g_free (key);
                break;
              }
            t.name = key;
            t.file = file;
            if (jp_tensor (&p, key, &t, off) != 0 || st_file_append (f, &t, err) != 0)
              {
                g_free (key);
                p.failed = 1;
                break;
              }
            g_array_append_val (offs, off);
          }
        if (jp_peek (&p) == ',')
          {
            p.i++;
            continue;
          }
        jp_expect (&p, '}');
        break;
      }
  if (!p.failed && jp_peek (&p) != -1)
    jp_fail (&p, "unexpected '%c' after the JSON object", p.s[p.i]);
  if (p.failed)
    st = err != NULL && err->status != SD35_OK ? err->status : SD35_ERR_FORMAT;

  for (size_t i = first; st == SD35_OK && i < f->n_tensors; i++)
    st = st_check_tensor (&f->tensors[i], &g_array_index (offs, int64_t, 2 * (i - first)), data,
                          data_len, name, err);
  if (st == SD35_OK)
    st = st_check_overlap (f, first, data, name, err);
  g_array_free (offs, TRUE);
  g_hash_table_destroy (meta_seen);
  return st;
}
