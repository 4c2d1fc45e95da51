/* test_safetensors.c — the safetensors reader and writer: round trips of every dtype, one
 * clear SD35_ERR_FORMAT (never a crash) for each kind of broken or hostile file, pickle
 * refusal, sharded index sets, and a deterministic mutation run over a valid file (so the
 * header parser is exercised under ASan/UBSan even without -Dfuzz). */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"
#include "testutil.h"

static char *tmpdir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

/* 8-byte length + header text + data_len bytes of 0x11 */
static uint8_t *
make_raw (const char *header, size_t data_len, size_t *len)
{
  uint64_t hl = strlen (header);
  uint8_t *b = g_malloc (8 + hl + data_len);
  memcpy (b, &hl, 8);
  memcpy (b + 8, header, hl);
  memset (b + 8 + hl, 0x11, data_len);
  *len = 8 + hl + data_len;
  return b;
}

/* Opens a raw buffer; expects `want` and (if want != OK) a message containing `needle`. */
static void
expect_mem (const char *what, const uint8_t *buf, size_t len, enum sd35_status want,
            const char *needle)
{
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  enum sd35_status  st = st_open_memory (buf, len, "test.safetensors", &f, &err);

  if (want == SD35_OK)
    test_check (st == SD35_OK && f != NULL, "%s: opens (got %s: %s)", what,
                sd35_status_name (st), err.message);
  else
    test_check (st == want && f == NULL && strstr (err.message, needle) != NULL
                  && strstr (err.message, "test.safetensors") != NULL,
                "%s: %s containing \"%s\" (got %s: %s)", what, sd35_status_name (want), needle,
                sd35_status_name (st), err.message);
  st_close (f);
}

static void
expect_header (const char *what, const char *header, size_t data_len, enum sd35_status want,
               const char *needle)
{
  size_t   len;
  uint8_t *b = make_raw (header, data_len, &len);
  expect_mem (what, b, len, want, needle);
  g_free (b);
}

static void
expect_file (const char *what, const char *path, enum sd35_status want, const char *needle)
{
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  enum sd35_status  st = st_open (path, &f, &err);

  test_check (st == want && (want == SD35_OK) == (f != NULL)
                && (want == SD35_OK || strstr (err.message, needle) != NULL),
              "%s: %s containing \"%s\" (got %s: %s)", what, sd35_status_name (want), needle,
              sd35_status_name (st), err.message);
  st_close (f);
}

static void
write_bytes (const char *path, const void *b, size_t n)
{
  GError *e = NULL;
  if (!g_file_set_contents (path, b, (gssize) n, &e))
    {
      printf ("FAIL: cannot write %s: %s\n", path, e->message);
      exit (1);
    }
}

/* A writer holding one tensor of every dtype, plus a scalar and an empty tensor. */
static struct st_writer *
make_all_dtypes (void)
{
  struct st_writer *w = st_writer_new ();
  uint8_t           bytes[64 * 8];
  const int64_t     s23[2] = { 2, 3 }, s7[1] = { 7 }, s0[2] = { 0, 5 };
  char              name[32];

  for (size_t i = 0; i < sizeof bytes; i++)
    bytes[i] = (uint8_t) (i * 37 + 5);
  for (int d = 0; d < SD35_DTYPE_SAFETENSORS_COUNT; d++)
    {
      snprintf (name, sizeof name, "t.%s", sd35_dtype_name (d));
      test_check (st_writer_add (w, name, d, d % 2 ? 1 : 2, d % 2 ? s7 : s23, bytes) == 0,
                  "writer adds %s", name);
    }
  test_check (st_writer_add (w, "scalar", SD35_F32, 0, NULL, bytes) == 0, "writer adds a scalar");
  test_check (st_writer_add (w, "empty", SD35_BF16, 2, s0, NULL) == 0, "writer adds [0, 5]");
  test_check (st_writer_add (w, "t.F32", SD35_F32, 1, s7, bytes) != 0, "writer refuses a duplicate");
  test_check (st_writer_add (w, "neg", SD35_F32, 1, (int64_t[]) { -1 }, bytes) != 0,
              "writer refuses a negative dimension");
  st_writer_set_metadata (w, "format", "pt");
  st_writer_set_metadata (w, "note", "quote\" backslash\\ tab\t");
  return w;
}

static void
check_all_dtypes (struct st_file *f, const uint8_t *base)
{
  uint8_t bytes[64 * 8];

  for (size_t i = 0; i < sizeof bytes; i++)
    bytes[i] = (uint8_t) (i * 37 + 5);
  test_check (st_count (f) == SD35_DTYPE_SAFETENSORS_COUNT + 2, "%zu tensors read back", st_count (f));
  for (int d = 0; d < SD35_DTYPE_SAFETENSORS_COUNT; d++)
    {
      char                    name[32];
      const struct st_tensor *t;
      size_t                  numel = d % 2 ? 7 : 6;
      snprintf (name, sizeof name, "t.%s", sd35_dtype_name (d));
      t = st_find (f, name);
      if (!test_check (t != NULL, "%s found", name))
        continue;
      test_check (t->dtype == (enum sd35_dtype) d && t->ndim == (d % 2 ? 1 : 2)
                    && t->numel == numel && t->nbytes == numel * sd35_dtype_size (d)
                    && memcmp (t->data, bytes, t->nbytes) == 0,
                  "%s: dtype, shape and bytes round-trip", name);
      if (base != NULL)
        test_check ((size_t) ((const uint8_t *) t->data - base) % sd35_dtype_size (d) == 0,
                    "%s aligned to its element size", name);
    }
  test_check (st_find (f, "scalar") != NULL && st_find (f, "scalar")->ndim == 0
                && st_find (f, "scalar")->numel == 1, "scalar round-trips");
  test_check (st_find (f, "empty") != NULL && st_find (f, "empty")->numel == 0
                && st_find (f, "empty")->shape[1] == 5, "empty tensor round-trips");
  test_check (st_metadata (f, "format") != NULL && strcmp (st_metadata (f, "format"), "pt") == 0
                && strcmp (st_metadata (f, "note"), "quote\" backslash\\ tab\t") == 0
                && st_metadata (f, "absent") == NULL, "metadata round-trips");
  test_check (st_find (f, "nope") == NULL && st_has_prefix (f, "t.") && !st_has_prefix (f, "u."),
              "lookups");
}

static void
test_round_trip (void)
{
  struct st_writer *w = make_all_dtypes ();
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  void             *buf;
  size_t            len;
  uint64_t          hl;
  char             *path = tmp_path ("all.safetensors");
  GDir             *dir;
  const char       *entry;
  int               n_entries = 0;

  test_check (st_writer_to_memory (w, &buf, &len, &err) == SD35_OK, "writer to memory");
  memcpy (&hl, buf, 8);
  test_check (hl % 8 == 0 && (((char *) buf)[8 + hl - 1] == ' ' || ((char *) buf)[8 + hl - 1] == '}'),
              "header padded to 8 bytes with spaces (%llu)", (unsigned long long) hl);
  test_check (st_open_memory (buf, len, "mem", &f, &err) == SD35_OK, "reads it back: %s",
              err.message);
  if (f != NULL)
    check_all_dtypes (f, buf);
  st_close (f);
  f = NULL;

  test_check (st_writer_save (w, path, &err) == SD35_OK, "writer saves: %s", err.message);
  test_check (st_open (path, &f, &err) == SD35_OK, "st_open reads the saved file: %s",
              err.message);
  if (f != NULL)
    {
      check_all_dtypes (f, NULL);
      test_check (strcmp (st_path (f), path) == 0 && strcmp (st_find (f, "t.F32")->file, path) == 0,
                  "paths recorded");
    }
  st_close (f);
  dir = g_dir_open (tmpdir, 0, NULL);
  while ((entry = g_dir_read_name (dir)) != NULL)
    n_entries++;
  g_dir_close (dir);
  test_check (n_entries == 1, "no temporary file left beside the output (%d entries)", n_entries);
  g_unlink (path);
  g_free (path);
  free (buf);
  st_writer_free (w);
}

static void
test_reads (void)
{
  struct st_writer *w = st_writer_new ();
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  const float       vf[3] = { 1.5f, -2.25f, 65504.0f };
  const uint16_t    vh[3] = { 0x3e00, 0xc080, 0x7bff };   /* f16 1.5, -2.25, 65504 */
  const uint16_t    vb[3] = { 0x3fc0, 0xc010, 0x477f };   /* bf16 1.5, -2.25, 65280 */
  const int32_t     vi[3] = { -7, 0, 2147483647 };
  const uint8_t     vu[3] = { 0, 128, 255 };
  const int64_t     s3[1] = { 3 };
  void             *buf;
  size_t            len;
  float            *x;
  int64_t          *y;

  st_writer_add_f32 (w, "f", 1, s3, vf);
  st_writer_add (w, "h", SD35_F16, 1, s3, vh);
  st_writer_add (w, "b", SD35_BF16, 1, s3, vb);
  st_writer_add (w, "i", SD35_I32, 1, s3, vi);
  st_writer_add (w, "u", SD35_U8, 1, s3, vu);
  st_writer_to_memory (w, &buf, &len, &err);
  st_writer_free (w);
  if (!test_check (st_open_memory (buf, len, "reads", &f, &err) == SD35_OK, "open: %s",
                   err.message))
    return;
  x = st_read_f32 (st_find (f, "f"), &err);
  test_check (x && x[0] == 1.5f && x[1] == -2.25f && x[2] == 65504.0f, "st_read_f32 F32");
  free (x);
  x = st_read_f32 (st_find (f, "h"), &err);
  test_check (x && x[0] == 1.5f && x[1] == -2.25f && x[2] == 65504.0f, "st_read_f32 F16");
  free (x);
  x = st_read_f32 (st_find (f, "b"), &err);
  test_check (x && x[0] == 1.5f && x[1] == -2.25f && x[2] == 65280.0f, "st_read_f32 BF16");
  free (x);
  y = st_read_i64 (st_find (f, "i"), &err);
  test_check (y && y[0] == -7 && y[1] == 0 && y[2] == 2147483647, "st_read_i64 I32");
  free (y);
  y = st_read_i64 (st_find (f, "u"), &err);
  test_check (y && y[0] == 0 && y[1] == 128 && y[2] == 255, "st_read_i64 U8");
  free (y);
  test_check (st_read_f32 (st_find (f, "i"), &err) == NULL && err.status == SD35_ERR_SHAPE
                && strstr (err.message, "\"i\"") != NULL, "st_read_f32 refuses I32: %s",
              err.message);
  sd35_error_clear (&err);
  test_check (st_read_i64 (st_find (f, "f"), &err) == NULL && err.status == SD35_ERR_SHAPE,
              "st_read_i64 refuses F32: %s", err.message);
  st_close (f);
  free (buf);
}

#define T(dt, shape, off) "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}"

static void
test_bad_headers (void)
{
  const uint8_t huge[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
  uint8_t       over[64] = { 200, 0, 0, 0, 0, 0, 0, 0, '{', '}' };

  expect_header ("valid", "{\"a\":" T ("F32", "[2]", "[0,8]") "}", 8, SD35_OK, "");
  expect_header ("empty object", "{}", 0, SD35_OK, "");
  expect_mem ("zero-length", (const uint8_t *) "", 0, SD35_ERR_FORMAT, "too short");
  expect_mem ("5 bytes", (const uint8_t *) "\x02\0\0\0\0", 5, SD35_ERR_FORMAT, "too short");
  expect_mem ("header length 2^64-1", huge, sizeof huge, SD35_ERR_FORMAT, "100 MB");
  expect_mem ("header longer than the file", over, sizeof over, SD35_ERR_FORMAT, "truncated");
  expect_header ("not an object", "[1, 2]", 0, SD35_ERR_FORMAT, "not a JSON object");
  expect_header ("unterminated object", "{\"a\":" T ("F32", "[2]", "[0,8]"), 8,
                 SD35_ERR_FORMAT, "expected '}'");
  expect_header ("missing value", "{\"a\":}", 0, SD35_ERR_FORMAT, "not an object");
  expect_header ("trailing comma", "{\"a\":" T ("F32", "[2]", "[0,8]") ",}", 8,
                 SD35_ERR_FORMAT, "expected '\"'");
  expect_header ("trailing garbage", "{} x", 0, SD35_ERR_FORMAT, "after the JSON object");
  expect_header ("unterminated string", "{\"abc", 0, SD35_ERR_FORMAT, "unterminated string");
  expect_header ("bad escape", "{\"a\\q\":{}}", 0, SD35_ERR_FORMAT, "bad escape");
  expect_header ("lone surrogate", "{\"\\ud800\":{}}", 0, SD35_ERR_FORMAT, "surrogate");
  expect_header ("NUL escape", "{\"a\\u0000\":{}}", 0, SD35_ERR_FORMAT, "\\u0000");
  expect_header ("invalid UTF-8", "{\"\xff\xfe\":{}}", 0, SD35_ERR_FORMAT, "UTF-8");
  expect_header ("leading zero", "{\"a\":" T ("F32", "[02]", "[0,8]") "}", 8, SD35_ERR_FORMAT,
                 "leading zero");
  expect_header ("fractional offset", "{\"a\":" T ("F32", "[2]", "[0,8.0]") "}", 8,
                 SD35_ERR_FORMAT, "fractional");
  expect_header ("integer overflow", "{\"a\":" T ("F32", "[2]", "[0,99999999999999999999]") "}",
                 8, SD35_ERR_FORMAT, "too large");
  expect_header ("offsets out of range", "{\"a\":" T ("F32", "[2]", "[0,8]") "}", 4,
                 SD35_ERR_FORMAT, "has only 4 bytes");
  expect_header ("begin > end", "{\"a\":" T ("F32", "[0]", "[8,0]") "}", 8, SD35_ERR_FORMAT,
                 "end before");
  expect_header ("negative offset", "{\"a\":" T ("F32", "[1]", "[-4,0]") "}", 8,
                 SD35_ERR_FORMAT, "negative data offset");
  expect_header ("overlap",
                 "{\"a\":" T ("F32", "[2]", "[0,8]") ",\"b\":" T ("F32", "[2]", "[4,12]") "}", 12,
                 SD35_ERR_FORMAT, "overlap");
  expect_header ("shape x dtype != bytes", "{\"a\":" T ("F16", "[3]", "[0,8]") "}", 8,
                 SD35_ERR_FORMAT, "span 8");
  expect_header ("unknown dtype", "{\"a\":" T ("F64", "[1]", "[0,8]") "}", 8, SD35_ERR_FORMAT,
                 "dtype F64");
  expect_header ("negative shape", "{\"a\":" T ("F32", "[-1]", "[0,4]") "}", 4, SD35_ERR_FORMAT,
                 "negative dimension");
  expect_header ("huge shape",
                 "{\"a\":" T ("F32", "[4611686018427387904,4611686018427387904]", "[0,4]") "}", 4,
                 SD35_ERR_FORMAT, "overflows");
  expect_header ("huge shape × dtype", "{\"a\":" T ("F32", "[4611686018427387904]", "[0,4]") "}",
                 4, SD35_ERR_FORMAT, "overflows");
  expect_header ("too many dims", "{\"a\":" T ("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1,
                 SD35_ERR_FORMAT, "more than 8");
  expect_header ("missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                 SD35_ERR_FORMAT, "lacks \"data_offsets\"");
  expect_header ("three offsets", "{\"a\":" T ("F32", "[1]", "[0,4,8]") "}", 8, SD35_ERR_FORMAT,
                 "more than 2");
  expect_header ("duplicate tensor",
                 "{\"a\":" T ("F32", "[1]", "[0,4]") ",\"a\":" T ("F32", "[1]", "[4,8]") "}", 8,
                 SD35_ERR_FORMAT, "appears twice");
  expect_header ("empty tensor name", "{\"\":" T ("F32", "[1]", "[0,4]") "}", 4,
                 SD35_ERR_FORMAT, "empty name");
  expect_header ("duplicate field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 0,
                 SD35_ERR_FORMAT, "twice");
  expect_header ("metadata not string", "{\"__metadata__\":{\"k\":1}}", 0, SD35_ERR_FORMAT,
                 "not a string");
  expect_header ("metadata not object", "{\"__metadata__\":[]}", 0, SD35_ERR_FORMAT,
                 "not an object");
  expect_header ("deep nesting", "{\"a\":{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]"
                 "]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", 0, SD35_ERR_FORMAT, "nesting");
  expect_header ("unknown member skipped",
                 "{\"a\":{\"extra\":{\"y\":[1,2.5e3,true,null,\"s\"]},\"dtype\":\"U8\",\"shape\":[2],"
                 "\"data_offsets\":[0,2]}}", 2, SD35_OK, "");
  expect_header ("malformed skipped number", "{\"a\":{\"x\":1.e5}}", 0, SD35_ERR_FORMAT,
                 "malformed number");
  expect_header ("gaps allowed",
                 "{\"a\":" T ("U8", "[2]", "[4,6]") ",\"b\":" T ("U8", "[2]", "[0,2]") "}", 8,
                 SD35_OK, "");
  expect_mem ("pickle magic", (const uint8_t *) "\x80\x02}q\0(X\0\0\0\0\0\0", 14, SD35_ERR_FORMAT,
              "pickle");
  expect_mem ("zip magic", (const uint8_t *) "PK\003\004\0\0\0\0\0\0\0\0", 12, SD35_ERR_FORMAT,
              "pickle");
}

static void
test_bad_files (void)
{
  char    *p;
  uint8_t *b;
  size_t   len;

  p = tmp_path ("empty.safetensors");
  write_bytes (p, "", 0);
  expect_file ("zero-length file", p, SD35_ERR_FORMAT, "empty");
  g_unlink (p);
  g_free (p);

  p = tmp_path ("trunc.safetensors");
  b = make_raw ("{\"a\":" T ("F32", "[4]", "[0,16]") "}", 16, &len);
  write_bytes (p, b, len - 5);
  expect_file ("truncated data", p, SD35_ERR_FORMAT, "truncated");
  write_bytes (p, b, 20);
  expect_file ("truncated header", p, SD35_ERR_FORMAT, "truncated");
  g_unlink (p);
  g_free (p);
  g_free (b);

  p = tmp_path ("model.ckpt");
  write_bytes (p, "whatever", 8);
  expect_file ("pickle by extension", p, SD35_ERR_FORMAT, "convert it to .safetensors");
  g_unlink (p);
  g_free (p);
  p = tmp_path ("disguised.safetensors");
  write_bytes (p, "\x80\x04\x95\x10\0\0\0\0\0\0\0}", 12);
  expect_file ("pickle by magic", p, SD35_ERR_FORMAT, "pickle");
  g_unlink (p);
  g_free (p);

  p = tmp_path ("absent.safetensors");
  expect_file ("absent file", p, SD35_ERR_MISSING, "absent.safetensors");
  g_free (p);
  expect_file ("a folder", tmpdir, SD35_ERR_IO, "not a regular file");
}

static void
write_str (const char *path, const char *s)
{
  write_bytes (path, s, strlen (s));
}

static void
save_one (const char *name, const char *key, float v)
{
  struct st_writer *w = st_writer_new ();
  struct sd35_error err = { 0 };
  char             *p = tmp_path (name);
  const int64_t     s1[1] = { 1 };

  st_writer_add_f32 (w, key, 1, s1, &v);
  if (st_writer_save (w, p, &err) != SD35_OK)
    test_check (0, "save %s: %s", p, err.message);
  st_writer_free (w);
  g_free (p);
}

static void
test_index (void)
{
  char             *idx = tmp_path ("model.safetensors.index.json");
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  float            *v;

  save_one ("model-00001-of-00002.safetensors", "x.a", 1.0f);
  save_one ("model-00002-of-00002.safetensors", "x.b", 2.0f);
  write_str (idx, "{\"metadata\":{\"total_size\":8},\"weight_map\":{"
               "\"x.a\":\"model-00001-of-00002.safetensors\","
               "\"x.b\":\"model-00002-of-00002.safetensors\"}}");
  if (test_check (st_open (idx, &f, &err) == SD35_OK, "sharded index opens: %s", err.message))
    {
      const struct st_tensor *b = st_find (f, "x.b");
      test_check (st_count (f) == 2 && b != NULL && strstr (b->file, "00002") != NULL,
                  "keys of both shards in one namespace");
      v = b != NULL ? st_read_f32 (b, &err) : NULL;
      test_check (v != NULL && v[0] == 2.0f, "shard data read");
      free (v);
    }
  st_close (f);

  write_str (idx, "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
               "\"x.c\":\"model-00003-of-00003.safetensors\"}}");
  expect_file ("missing shard", idx, SD35_ERR_MISSING, "model-00003-of-00003.safetensors");
  write_str (idx, "{\"weight_map\":{\"x.a\":\"../model-00001-of-00002.safetensors\"}}");
  expect_file ("shard outside the folder", idx, SD35_ERR_FORMAT, "plain file name");
  write_str (idx, "{\"weight_map\":{\"x.z\":\"model-00001-of-00002.safetensors\"}}");
  expect_file ("key not in its shard", idx, SD35_ERR_FORMAT, "x.z");
  write_str (idx, "{\"weight_map\": 3}");
  expect_file ("no weight_map", idx, SD35_ERR_FORMAT, "weight_map");
  save_one ("dup.safetensors", "x.a", 3.0f);
  write_str (idx, "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
               "\"x.b\":\"dup.safetensors\"}}");
  expect_file ("key in two shards", idx, SD35_ERR_FORMAT, "also in");
  g_free (idx);
}

/* xorshift64*: a fixed sequence, so a failure reproduces */
static uint64_t
rnd (uint64_t *s)
{
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C (2685821657736338717);
}

static void
test_mutations (void)
{
  static const char special[] = "{}[],:\"\\0123456789-.eE ufnt";
  struct st_writer *w = make_all_dtypes ();
  struct sd35_error err = { 0 };
  uint8_t          *good, *m;
  size_t            len, n_ok = 0, n_bad = 0, bad_status = 0;
  uint64_t          hl, seed = 0x5d35;

  st_writer_to_memory (w, (void **) &good, &len, &err);
  st_writer_free (w);
  memcpy (&hl, good, 8);
  m = malloc (len);
  for (int it = 0; it < 20000; it++)
    {
      struct st_file *f = NULL;
      size_t          n = len, pos;
      int             k = 1 + (int) (rnd (&seed) % 4);

      memcpy (m, good, len);
      while (k-- > 0)
        {
          pos = (size_t) (rnd (&seed) % (8 + hl));
          switch (rnd (&seed) % 5)
            {
            case 0: m[pos] ^= (uint8_t) (1u << (rnd (&seed) % 8)); break;
            case 1: m[pos] = (uint8_t) special[rnd (&seed) % (sizeof special - 1)]; break;
            case 2: n = (size_t) (rnd (&seed) % (len + 1)); break;
            case 3: m[rnd (&seed) % 8] = (uint8_t) rnd (&seed); break;
            default:
              /* move a slice of the header by one byte */
              if (pos + 1 < 8 + hl)
                memmove (m + pos, m + pos + 1, 8 + hl - pos - 1);
              break;
            }
        }
      sd35_error_clear (&err);
      if (st_open_memory (m, n, "mutant", &f, &err) == SD35_OK)
        {
          n_ok++;
          for (size_t i = 0; i < st_count (f); i++)
            {
              const struct st_tensor *t = st_at (f, i);
              if ((const uint8_t *) t->data < m || (const uint8_t *) t->data + t->nbytes > m + n)
                bad_status++;
            }
        }
      else
        {
          n_bad++;
          if (err.status != SD35_ERR_FORMAT || strstr (err.message, "mutant") == NULL)
            {
              if (bad_status++ < 5)
                printf ("unexpected: %s: %s\n", sd35_status_name (err.status), err.message);
            }
        }
      st_close (f);
    }
  test_check (bad_status == 0 && n_bad > 0,
              "20000 mutated files: %zu open, %zu refused with a FORMAT error naming the file, "
              "%zu unexpected", n_ok, n_bad, bad_status);
  free (m);
  free (good);
}

/* every file written by the reference library in ../shared opens (when it is there) */
static void
test_reference_files (void)
{
  const char *shared = test_shared_dir ();
  const char *sub[2] = { "golden", "golden/models" };
  int         n = 0, bad = 0;

  if (shared == NULL)
    {
      printf ("note: ../shared absent, reference files not checked\n");
      return;
    }
  for (int k = 0; k < 2; k++)
    {
      char       *dir = g_build_filename (shared, sub[k], NULL);
      GDir       *d = g_dir_open (dir, 0, NULL);
      const char *e;
      while (d != NULL && (e = g_dir_read_name (d)) != NULL)
        {
          struct sd35_error err = { 0 };
          struct st_file   *f = NULL;
          char             *p;
          if (!g_str_has_suffix (e, ".safetensors"))
            continue;
          p = g_build_filename (dir, e, NULL);
          n++;
          if (st_open (p, &f, &err) != SD35_OK || st_count (f) == 0)
            {
              bad++;
              printf ("cannot open %s: %s\n", p, err.message);
            }
          st_close (f);
          g_free (p);
        }
      if (d != NULL)
        g_dir_close (d);
      g_free (dir);
    }
  test_check (n > 0 && bad == 0, "%d files written by the reference library open (%d failed)",
              n, bad);
}

int
main (void)
{
  tmpdir = test_make_tmpdir ("safetensors");
  test_round_trip ();
  test_reads ();
  test_bad_headers ();
  test_bad_files ();
  test_index ();
  test_mutations ();
  test_reference_files ();
  test_remove_tree (tmpdir);
  free (tmpdir);
  return test_exit ();
}
