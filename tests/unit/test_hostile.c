/* test_hostile.c — the bad-input matrix: every class of hostile or broken input the program
 * reads or writes, each refused (or warned about) with the exact message checked, never a
 * crash.  Runs in the unit suite and again under ASan + UBSan (tools/test).
 *   JSON: nesting depth (every JSON the engine reads), wrong member types;
 *   files: FIFO / device / folder / symlink loop where a file is read, disk full, outputs
 *     (planted temp link, device, symlink target, missing folder);
 *   images: decompression bomb, corrupt PNG (one line);
 *   tokenizers: duplicate ids in vocab.json, merges with 3 fields or unknown pieces;
 *   weights: a shard index mapping a tensor to the wrong shard, T5 config.json num_heads vs
 *     the weights. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "discover.h"
#include "error.h"
#include "image_png.h"
#include "json_file.h"
#include "safe_file.h"
#include "safetensors.h"
#include "sd35.h"
#include "test_model.h"
#include "testutil.h"
#include "tokenizer.h"

static char *tmp;

static char *
path_in (const char *name)
{
  return g_build_filename (tmp, name, NULL);
}

static void
put (const char *name, const char *text)
{
  char *p = path_in (name);
  if (!g_file_set_contents (p, text, -1, NULL))
    test_check (0, "cannot write %s", p);
  g_free (p);
}

/* status == want and the message contains every NULL-terminated fragment */
static int
expect (const char *what, enum sd35_status got, const struct sd35_error *err,
        enum sd35_status want, ...)
{
  va_list     ap;
  const char *frag;
  int         ok = got == want && err->status == want;

  va_start (ap, want);
  while ((frag = va_arg (ap, const char *)) != NULL)
    ok &= strstr (err->message, frag) != NULL;
  va_end (ap);
  ok &= strchr (err->message, '\n') == NULL;  /* one line */
  return test_check (ok, "%s: %s (%s)", what, err->message, sd35_status_name (got));
}

/* "[[[[…" n deep (then closed) */
static char *
deep_json (int n, const char *open, const char *close)
{
  GString *s = g_string_new (NULL);
  for (int i = 0; i < n; i++)
    g_string_append (s, open);
  for (int i = 0; i < n; i++)
    g_string_append (s, close);
  return g_string_free (s, FALSE);
}

static void
test_json (void)
{
  struct sd35_error err = { 0 };
  JsonParser       *parser = NULL;
  char             *deep = deep_json (200000, "[", "]");
  char             *deep_obj = deep_json (100, "{\"a\":", "}");
  char             *p;

  /* the scanner: brackets inside strings do not count; 64 levels pass, 65 do not */
  {
    char *ok64 = deep_json (64, "[", "]"), *bad65 = deep_json (65, "[", "]");
    test_check (sd35_json_depth_exceeded (ok64, strlen (ok64), 64) == 0
                && sd35_json_depth_exceeded (bad65, strlen (bad65), 64) == 65
                && sd35_json_depth_exceeded ("[\"[[[[\\\"[[[\"]", 13, 1) == 0,
                "depth scanner: 64 levels pass, the 65th bracket is found, strings skipped");
    g_free (ok64);
    g_free (bad65);
  }
  put ("deep.json", deep);
  p = path_in ("deep.json");
  expect ("deep JSON", sd35_json_load (p, "model config", &parser, &err), &err, SD35_ERR_FORMAT,
          "model config ", "deep.json: JSON nested deeper than 64 levels (at byte 64)", NULL);
  test_check (parser == NULL, "no parser on refusal");
  sd35_error_clear (&err);
  /* each JSON reader of the engine goes through the bound */
  test_check (model_config_heads (p, &err) == -1, "config.json heads: refused");
  expect ("deep config.json", err.status, &err, SD35_ERR_FORMAT, "nested deeper than 64", NULL);
  sd35_error_clear (&err);
  {
    struct st_file *f = NULL;
    char           *idx = path_in ("deep.safetensors.index.json");
    put ("deep.safetensors.index.json", deep_obj);
    expect ("deep shard index", st_open (idx, &f, &err), &err, SD35_ERR_FORMAT,
            "safetensors index ", "nested deeper than 64", NULL);
    g_free (idx);
    sd35_error_clear (&err);
  }
  {
    struct t5_tokenizer *t5 = NULL;
    struct clip_tokenizer *clip = NULL;
    expect ("deep tokenizer.json", t5_tokenizer_load (NULL, p, &t5, &err), &err,
            SD35_ERR_FORMAT, "T5 tokenizer ", "nested deeper than 64", NULL);
    sd35_error_clear (&err);
    expect ("deep vocab.json", clip_tokenizer_load (p, p, &clip, &err), &err, SD35_ERR_FORMAT,
            "CLIP vocabulary ", "nested deeper than 64", NULL);
    sd35_error_clear (&err);
  }
  g_free (p);

  /* wrong types: a number where tokenizer.json has the "type" strings */
  put ("types.json", "{\"normalizer\":{\"type\":7},\"model\":{\"type\":5,\"vocab\":[]}}");
  p = path_in ("types.json");
  {
    struct t5_tokenizer *t5 = NULL;
    expect ("tokenizer.json model type a number", t5_tokenizer_load (NULL, p, &t5, &err), &err,
            SD35_ERR_FORMAT, "no Unigram model with a vocab", NULL);
    sd35_error_clear (&err);
  }
  g_free (p);
  put ("types2.json", "{\"normalizer\":{\"type\":[1]},\"added_tokens\":[{\"id\":\"0\","
       "\"content\":1}],\"model\":{\"type\":\"Unigram\",\"unk_id\":\"x\",\"vocab\":[[\"a\",-1]]}}");
  p = path_in ("types2.json");
  {
    struct t5_tokenizer *t5 = NULL;
    expect ("tokenizer.json added token of wrong types", t5_tokenizer_load (NULL, p, &t5, &err),
            &err, SD35_ERR_FORMAT, "added token 0 has no content or an id outside the vocab",
            NULL);
    sd35_error_clear (&err);
  }
  g_free (p);
  put ("types3.json", "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",\"-1\"]]}}");
  p = path_in ("types3.json");
  {
    struct t5_tokenizer *t5 = NULL;
    expect ("tokenizer.json score a string", t5_tokenizer_load (NULL, p, &t5, &err), &err,
            SD35_ERR_FORMAT, "vocab entry 0 is not [piece, score]", NULL);
    sd35_error_clear (&err);
  }
  g_free (p);
  /* spiece.model with an empty control piece: as an added token it matched everywhere
   * without moving, and tokenizing hung (fuzz finding, CI) */
  {
    static const unsigned char model[] = {
      0x0a, 0x0e, 0x0a, 0x05, '<', 'p', 'a', 'd', '>', 0x15, 0, 0, 0, 0, 0x18, 0x03,  /* <pad> */
      0x0a, 0x09, 0x0a, 0x00, 0x15, 0, 0, 0, 0, 0x18, 0x03,   /* "" control */
      0x0a, 0x0e, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x15, 0, 0, 0, 0, 0x18, 0x02,
      0x0a, 0x08, 0x0a, 0x01, 'a', 0x15, 0, 0, 0x80, 0xc0,   /* "a" -4 */
      0x1a, 0x02, 0x18, 0x01                                  /* normalizer */
    };
    struct t5_tokenizer *t5 = NULL;
    char *sp = path_in ("empty-piece.model");
    if (!g_file_set_contents (sp, (const char *) model, sizeof model, NULL))
      test_check (0, "cannot write %s", sp);
    expect ("spiece.model with an empty piece", t5_tokenizer_load (sp, NULL, &t5, &err), &err,
            SD35_ERR_FORMAT, "T5 tokenizer ", "piece 1 is malformed", NULL);
    sd35_error_clear (&err);
    g_free (sp);
  }
  /* a key with a newline in it: the message stays one line (fuzz finding) */
  put ("newline.json", "{\"a\\nb\": \"x\"}");
  p = path_in ("newline.json");
  {
    struct clip_tokenizer *clip = NULL;
    expect ("control characters in a quoted key", clip_tokenizer_load (p, p, &clip, &err), &err,
            SD35_ERR_FORMAT, "entry 'a b' has no id in 0..49407", NULL);
    sd35_error_clear (&err);
  }
  g_free (p);
  g_free (deep);
  g_free (deep_obj);
}

/* Prompt weights that are not finite: a short text is quoted without reading past its end
 * (fuzz finding: g_utf8_substring asked for 40 characters of a shorter string). */
static void
test_prompt_weights (void)
{
  struct sd35_error err = { 0 };

  expect ("weight 1e40", prompt_check_weights ("(y:1e40)", "prompt", &err), &err, SD35_ERR_ARG,
          "prompt: the weight of \"y\" is 1e+40; a weight must be a finite number", NULL);
  sd35_error_clear (&err);
  expect ("weight over a newline", prompt_check_weights ("(a\nb:1e40)", "prompt", &err), &err,
          SD35_ERR_ARG, "the weight of \"a b\" is 1e+40", NULL);
  sd35_error_clear (&err);
}

static void
test_input_kinds (void)
{
  struct sd35_error err = { 0 };
  char             *fifo = path_in ("fifo"), *loop = path_in ("loop");
  char             *data = NULL;
  size_t            len;

  test_check (mkfifo (fifo, 0600) == 0, "mkfifo: %s", g_strerror (errno));
  test_check (symlink ("loop", loop) == 0, "symlink loop");
  expect ("FIFO read", sd35_read_file (fifo, 100, "CLIP merges", &data, &len, &err), &err,
          SD35_ERR_IO, "CLIP merges ", "fifo is a named pipe (FIFO), not a regular file", NULL);
  sd35_error_clear (&err);
  expect ("device read", sd35_read_file ("/dev/zero", 100, "T5 tokenizer", &data, &len, &err),
          &err, SD35_ERR_IO, "T5 tokenizer /dev/zero is a character device, not a regular file",
          NULL);
  sd35_error_clear (&err);
  expect ("symlink loop read", sd35_read_file (loop, 100, "image", &data, &len, &err), &err,
          SD35_ERR_IO, "loop is a loop of symbolic links, not a regular file", NULL);
  sd35_error_clear (&err);
  {
    struct st_file *f = NULL;
    expect ("FIFO safetensors", st_open (fifo, &f, &err), &err, SD35_ERR_IO,
            "safetensors file ", "is a named pipe (FIFO), not a regular file", NULL);
    sd35_error_clear (&err);
  }
  /* --model: the kind of path, not "no such file" */
  {
    struct model_find_options fo = { fifo, NULL, NULL, 1 };
    struct sd35_model_files   files;
    memset (&files, 0, sizeof files);
    expect ("FIFO as --model", model_find (&fo, &files, &err), &err, SD35_ERR_IO,
            "fifo is a named pipe (FIFO), which cannot be a model", NULL);
    model_files_clear (&files);
    sd35_error_clear (&err);
    fo.model_path = loop;
    expect ("symlink loop as --model", model_find (&fo, &files, &err), &err, SD35_ERR_IO,
            "loop is a loop of symbolic links, which cannot be a model", NULL);
    model_files_clear (&files);
    sd35_error_clear (&err);
    fo.model_path = "/dev/null";
    expect ("device as --model", model_find (&fo, &files, &err), &err, SD35_ERR_IO,
            "/dev/null is a character device, which cannot be a model", NULL);
    model_files_clear (&files);
    sd35_error_clear (&err);
  }
  g_free (fifo);
  g_free (loop);
}

static void
test_outputs (void)
{
  struct sd35_error err = { 0 };
  char             *victim = path_in ("victim.txt"), *out = path_in ("out.png");
  char             *planted = path_in ("out.png.tmp"), *link = path_in ("link.png");
  char             *text = NULL;
  const uint8_t     rgb[3 * 4] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

  put ("victim.txt", "precious");
  /* the old writer's fixed temporary name, planted as a link to a file of the user's */
  test_check (symlink (victim, planted) == 0, "plant link");
  test_check (png_write_rgb (out, rgb, 2, 2, &err) == SD35_OK, "write beside a planted "
              "link: %s", err.message);
  test_check (g_file_get_contents (victim, &text, NULL, NULL) && strcmp (text, "precious") == 0,
              "the planted link's target is untouched");
  g_free (text);
  {
    uint8_t *back = NULL;
    int      w = 0, h = 0;
    test_check (png_read_rgb (out, &back, &w, &h, &err) == SD35_OK && w == 2 && h == 2
                && memcmp (back, rgb, sizeof rgb) == 0, "the PNG reads back");
    free (back);
  }
  test_check (symlink (victim, link) == 0, "link as target");
  expect ("symlink as --out", png_write_rgb (link, rgb, 2, 2, &err), &err, SD35_ERR_ARG,
          "link.png is a symbolic link; give a new or a regular file to write", NULL);
  sd35_error_clear (&err);
  expect ("device as --out", sd35_out_check ("/dev/null", &err), &err, SD35_ERR_ARG,
          "output /dev/null is a character device; give a new or a regular file to write",
          NULL);
  sd35_error_clear (&err);
  expect ("folder as --out", sd35_out_check (tmp, &err), &err, SD35_ERR_ARG,
          "is a folder; give a new or a regular file to write", NULL);
  sd35_error_clear (&err);
  {
    char *nowhere = path_in ("no/such/dir/out.png");
    expect ("missing folder", sd35_out_check (nowhere, &err), &err, SD35_ERR_IO,
            "cannot write ", "/no/such/dir is missing", NULL);
    sd35_error_clear (&err);
    g_free (nowhere);
  }
  {
    struct st_writer *w = st_writer_new ();
    int64_t           shape[1] = { 1 };
    float             one = 1;
    st_writer_add_f32 (w, "x", 1, shape, &one);
    expect ("safetensors to a device", st_writer_save (w, "/dev/null", &err), &err,
            SD35_ERR_ARG, "output /dev/null is a character device", NULL);
    sd35_error_clear (&err);
    st_writer_free (w);
  }
  /* disk full, emulated by a file size limit (EFBIG): the reason is in the message and no
   * temporary is left behind */
  {
    struct rlimit old, lim;
    uint8_t      *big = calloc (3, 256 * 256);
    getrlimit (RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    signal (SIGXFSZ, SIG_IGN);
    setrlimit (RLIMIT_FSIZE, &lim);
    uint32_t x = 2463534242u;
    for (int i = 0; i < 3 * 256 * 256; i++)
      {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;  /* incompressible */
        big[i] = (uint8_t) x;
      }
    expect ("file too large", png_write_rgb (out, big, 256, 256, &err), &err, SD35_ERR_IO,
            "cannot write ", "out.png: File too large", NULL);
    setrlimit (RLIMIT_FSIZE, &old);
    sd35_error_clear (&err);
    free (big);
    {
      GDir       *d = g_dir_open (tmp, 0, NULL);
      const char *e;
      int         stray = 0;
      while ((e = g_dir_read_name (d)) != NULL)
        stray += g_str_has_prefix (e, ".out.png.");
      g_dir_close (d);
      test_check (stray == 0, "no temporary left after a failed write");
    }
  }
  g_free (victim);
  g_free (out);
  g_free (planted);
  g_free (link);
}

static uint32_t
crc32_png (const uint8_t *p, size_t n)
{
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++)
    {
      c ^= p[i];
      for (int k = 0; k < 8; k++)
        c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
  return c ^ 0xffffffffu;
}

static void
put_chunk (FILE *f, const char *type, const uint8_t *data, uint32_t n)
{
  uint8_t  *buf = malloc (4 + (size_t) n);
  uint8_t   be[4] = { n >> 24, n >> 16, n >> 8, n };
  uint32_t  crc;

  memcpy (buf, type, 4);
  if (n)
    memcpy (buf + 4, data, n);
  crc = crc32_png (buf, 4 + (size_t) n);
  fwrite (be, 1, 4, f);
  fwrite (buf, 1, 4 + (size_t) n, f);
  be[0] = crc >> 24, be[1] = crc >> 16, be[2] = crc >> 8, be[3] = crc;
  fwrite (be, 1, 4, f);
  free (buf);
}

/* A PNG of a few dozen bytes declaring w×h RGB pixels (an empty IDAT: a decoder that trusts
 * the header allocates w·h·3 bytes before it finds out). */
static char *
write_bomb (const char *name, uint32_t w, uint32_t h)
{
  static const uint8_t sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
  uint8_t ihdr[13] = { w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16, h >> 8, h, 8, 2, 0, 0, 0 };
  char   *p = path_in (name);
  FILE   *f = fopen (p, "wb");

  fwrite (sig, 1, 8, f);
  put_chunk (f, "IHDR", ihdr, 13);
  put_chunk (f, "IDAT", NULL, 0);
  put_chunk (f, "IEND", NULL, 0);
  fclose (f);
  return p;
}

static void
test_images (void)
{
  struct sd35_error err = { 0 };
  uint8_t          *rgb = NULL;
  int               w, h;
  char             *bomb = write_bomb ("bomb.png", 30000, 30000);
  char             *bad = write_bomb ("bad.png", 16, 16);

  expect ("decompression bomb", png_read_rgb (bomb, &rgb, &w, &h, &err), &err, SD35_ERR_FORMAT,
          "bomb.png is 30000×30000 pixels; images of more than 67108864 pixels (8192×8192) are "
          "refused before decoding", NULL);
  test_check (rgb == NULL, "nothing decoded");
  sd35_error_clear (&err);
  /* a header that promises rows and no data: libpng's reason in the one line */
  expect ("corrupt PNG", png_read_rgb (bad, &rgb, &w, &h, &err), &err, SD35_ERR_FORMAT,
          "bad.png: corrupt or unsupported PNG (", NULL);
  sd35_error_clear (&err);
  put ("notpng.png", "GIF89a");
  {
    char *p = path_in ("notpng.png");
    expect ("not a PNG", png_read_rgb (p, &rgb, &w, &h, &err), &err, SD35_ERR_FORMAT,
            "notpng.png is not a PNG file (only PNG is read)", NULL);
    sd35_error_clear (&err);
    g_free (p);
  }
  g_free (bomb);
  g_free (bad);
}

/* The synthetic tokenizer files, then one broken copy at a time. */
static void
test_tokenizers (void)
{
  struct sd35_error      err = { 0 };
  struct clip_tokenizer *clip = NULL;
  char                  *cdir = path_in ("clip"), *tdir = path_in ("t5");
  char                  *vocab = g_build_filename (cdir, "vocab.json", NULL);
  char                  *merges = g_build_filename (cdir, "merges.txt", NULL);
  char                  *text = NULL, *bad_merges = path_in ("bad_merges.txt");
  char                  *bad_vocab = path_in ("bad_vocab.json");
  gsize                  len;

  g_mkdir (cdir, 0755);
  g_mkdir (tdir, 0755);
  if (!test_check (test_model_write_tokenizers (cdir, tdir, &err) == SD35_OK, "tokenizers: %s",
                   err.message))
    return;
  test_check (clip_tokenizer_load (vocab, merges, &clip, &err) == SD35_OK, "good CLIP files "
              "load: %s", err.message);
  clip_tokenizer_free (clip);
  clip = NULL;

  /* duplicate id: the last entry's id replaced by the first's */
  g_file_get_contents (vocab, &text, &len, NULL);
  {
    char *last = g_strrstr (text, ":49407}");
    if (test_check (last != NULL, "vocab ends with id 49407"))
      {
        GString *s = g_string_new_len (text, last - text);
        g_string_append (s, ":0}\n");
        g_file_set_contents (bad_vocab, s->str, -1, NULL);
        g_string_free (s, TRUE);
        expect ("duplicate id in vocab.json", clip_tokenizer_load (bad_vocab, merges, &clip,
                &err), &err, SD35_ERR_FORMAT, "CLIP vocabulary ", "id 0 is given to both ",
                "(each id must name one piece)", NULL);
        sd35_error_clear (&err);
      }
  }
  g_free (text);

  /* merges: a third field on line 2, then an unknown piece */
  g_file_get_contents (merges, &text, &len, NULL);
  {
    char    *nl = strchr (text, '\n');
    char    *nl2 = nl ? strchr (nl + 1, '\n') : NULL;
    GString *s = g_string_new_len (text, nl2 - text);
    g_string_append (s, " extra");
    g_string_append (s, nl2);
    g_file_set_contents (bad_merges, s->str, -1, NULL);
    expect ("merges line of three fields", clip_tokenizer_load (vocab, bad_merges, &clip, &err),
            &err, SD35_ERR_FORMAT, "CLIP merges ", "line 2: three or more fields; expected two "
            "pieces 'a b'", NULL);
    sd35_error_clear (&err);
    g_string_truncate (s, 0);
    g_string_append_len (s, text, nl + 1 - text);
    g_string_append (s, "zzzunknown q");
    g_string_append (s, nl2);
    g_file_set_contents (bad_merges, s->str, -1, NULL);
    expect ("merges with an unknown piece", clip_tokenizer_load (vocab, bad_merges, &clip,
            &err), &err, SD35_ERR_FORMAT, "line 2: 'zzzunknown' is not in the vocabulary "
            "(merges.txt and vocab.json do not belong together)", NULL);
    sd35_error_clear (&err);
    g_string_free (s, TRUE);
  }
  g_free (text);
  g_free (cdir);
  g_free (tdir);
  g_free (vocab);
  g_free (merges);
  g_free (bad_merges);
  g_free (bad_vocab);
}

/* Two shards, the index saying "a" is in the second while it is in the first. */
static void
test_shard_index (void)
{
  struct sd35_error err = { 0 };
  struct st_file   *f = NULL;
  int64_t           shape[1] = { 1 };
  float             v = 1;
  const char       *names[2] = { "a", "b" };

  for (int i = 0; i < 2; i++)
    {
      struct st_writer *w = st_writer_new ();
      char             *p = g_strdup_printf ("%s/s%d.safetensors", tmp, i + 1);
      st_writer_add_f32 (w, names[i], 1, shape, &v);
      test_check (st_writer_save (w, p, &err) == SD35_OK, "shard %d: %s", i + 1, err.message);
      st_writer_free (w);
      g_free (p);
    }
  put ("good.safetensors.index.json", "{\"weight_map\":{\"a\":\"s1.safetensors\","
       "\"b\":\"s2.safetensors\"}}");
  put ("wrong.safetensors.index.json", "{\"weight_map\":{\"a\":\"s2.safetensors\","
       "\"b\":\"s1.safetensors\"}}");
  {
    char *good = path_in ("good.safetensors.index.json");
    char *wrong = path_in ("wrong.safetensors.index.json");
    test_check (st_open (good, &f, &err) == SD35_OK, "good index: %s", err.message);
    st_close (f);
    f = NULL;
    expect ("tensor mapped to the wrong shard", st_open (wrong, &f, &err), &err,
            SD35_ERR_FORMAT, "wrong.safetensors.index.json maps tensor \"a\" to shard "
            "s2.safetensors, but it is in ", "s1.safetensors (index and shards do not match)",
            NULL);
    sd35_error_clear (&err);
    g_free (good);
    g_free (wrong);
  }
}

/* Runs the CLI; its exit status, stderr in *errout (g_free). */
static int
run_cli (char **errout, const char *first, ...)
{
  const char *cli = getenv ("SD35_CLI");
  GPtrArray  *argv = g_ptr_array_new ();
  va_list     ap;
  int         status = -1;

  *errout = g_strdup ("");
  if (cli == NULL)
    return -1;
  g_ptr_array_add (argv, (gpointer) cli);
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_free (*errout);
  *errout = NULL;
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, errout, &status, NULL))
    status = -1;
  else
    status = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
  g_ptr_array_free (argv, TRUE);
  return status;
}

/* sd35 txt2img ARG VALUE (model and output otherwise fine): exit 2 and exactly `want`. */
static void
cli_arg (const char *model, const char *out, const char *arg, const char *value,
         const char *want)
{
  char *e = NULL;
  int   rc = run_cli (&e, "txt2img", "--model", model, "--prompt", "x", "--out", out,
                      "--width", "64", "--height", "64", arg, value, NULL);
  test_check (rc == 2 && e && strstr (e, want) && strchr (e, '\n') == strrchr (e, '\n'),
              "sd35 txt2img %s %s → exit %d, one line: %s", arg, value, rc, e ? e : "");
  g_free (e);
}

static void
test_cli_and_engine (void)
{
  char             *model = path_in ("model"), *out = path_in ("cli.png"), *e = NULL;
  struct test_model_options tm;
  struct sd35_error err = { 0 };
  int               rc;

  if (getenv ("SD35_CLI") == NULL)
    {
      printf ("note: $SD35_CLI unset (not run by meson): CLI checks skipped\n");
      g_free (model);
      g_free (out);
      return;
    }
  test_model_options_init (&tm);
  tm.out_dir = model;
  if (!test_check (test_model_write (&tm, &err) == SD35_OK, "test model: %s", err.message))
    return;
  /* numbers: range and finiteness, the valid range named, before anything loads */
  cli_arg (model, out, "--steps", "0", "sd35 txt2img: --steps must be an integer from 1 to 1000, "
           "got '0'");
  cli_arg (model, out, "--steps", "4294967297", "--steps must be an integer from 1 to 1000, got "
           "'4294967297'");
  cli_arg (model, out, "--cfg", "inf", "--cfg must be a number from 0 to 100, got 'inf'");
  cli_arg (model, out, "--cfg", "nan", "--cfg must be a number from 0 to 100, got 'nan'");
  cli_arg (model, out, "--shift", "0", "--shift must be a number from 0.01 to 1000, got '0'");
  cli_arg (model, out, "--shift", "-3", "--shift must be a number from 0.01 to 1000, got '-3'");
  cli_arg (model, out, "--shift", "1e-30", "--shift must be a number from 0.01 to 1000, got "
           "'1e-30'");
  cli_arg (model, out, "--seed", "18446744073709551616", "--seed must be an integer from 0 to "
           "18446744073709551615, got '18446744073709551616'");
  cli_arg (model, out, "--threads", "99999999999", "--threads must be an integer from 1 to "
           "1024, got '99999999999'");
  cli_arg (model, out, "--width", "1000", "width 1000 is not a multiple of 16 (nearest valid: "
           "992 or 1008)");
  cli_arg (model, out, "--slg-layers", "1,x", "--slg-layers expects a list like 7,8,9 of "
           "integers from 0 to 999, got '1,x'");
  /* outputs: refused before the model loads */
  rc = run_cli (&e, "txt2img", "--model", model, "--prompt", "x", "--out", "/dev/null", NULL);
  test_check (rc == 1 && strstr (e, "sd35 txt2img: output /dev/null is a character device; "
              "give a new or a regular file to write") && strstr (e, "model:") == NULL,
              "--out /dev/null refused before loading: %s", e);
  g_free (e);
  /* skip-layer indices against the model's depth (2 blocks) */
  rc = run_cli (&e, "txt2img", "--model", model, "--prompt", "x", "--out", out, "--width", "32",
                "--height", "32", "--steps", "1", "--slg-scale", "2", "--slg-layers", "1,7",
                "--quiet", NULL);
  test_check (rc == 1 && strstr (e, "skip-layer index 7 is beyond this model's 2 blocks "
              "(valid: 0 to 1)"), "skip layer beyond the depth: %s", e);
  g_free (e);
  /* a --model that is a FIFO says so */
  {
    char *fifo = path_in ("fifo");
    rc = run_cli (&e, "txt2img", "--model", fifo, "--prompt", "x", "--out", out, NULL);
    test_check (rc == 1 && strstr (e, "is a named pipe (FIFO), which cannot be a model"),
                "--model FIFO: %s", e);
    g_free (e);
    g_free (fifo);
  }
  /* the random seed: full 32-bit range, two runs in the same second differ */
  {
    char *e2 = NULL;
    char *none = path_in ("none.safetensors");
    run_cli (&e, "txt2img", "--model", none, "--prompt", "x", "--out", out, NULL);
    run_cli (&e2, "txt2img", "--model", none, "--prompt", "x", "--out", out, NULL);
    g_free (none);
    test_check (strstr (e, "seed ") && strstr (e2, "seed ") && strcmp (e, e2) != 0,
                "random seeds differ: %s / %s", e, e2);
    g_free (e);
    g_free (e2);
  }
  /* T5 config.json that contradicts the weights (2 heads) */
  {
    char                      *cfg = g_build_filename (model, "text_encoder_3", "config.json",
                                                       NULL);
    char                      *text = NULL;
    struct sd35_engine_options o;
    sd35_engine              *eng = NULL;
    if (g_file_get_contents (cfg, &text, NULL, NULL) && strstr (text, "\"num_heads\": 2"))
      {
        GString *t = g_string_new (text);
        g_string_replace (t, "\"num_heads\": 2", "\"num_heads\": 4", 1);
        g_file_set_contents (cfg, t->str, -1, NULL);
        g_string_free (t, TRUE);
        sd35_engine_options_init (&o);
        o.model_path = model;
        o.backend = SD35_BACKEND_CPU;
        o.n_threads = 2;
        expect ("T5 num_heads vs weights", sd35_engine_open (&o, &eng, &err), &err,
                SD35_ERR_FORMAT, "config.json says num_heads 4, but the weights have 2 heads "
                "(relative_attention_bias [32, 2]); the config and the weights do not belong "
                "together", NULL);
        sd35_engine_free (eng);
        sd35_error_clear (&err);
      }
    else
      test_check (0, "the test model's T5 config has \"num_heads\": 2");
    g_free (text);
    g_free (cfg);
  }
  g_free (model);
  g_free (out);
}

int
main (void)
{
  tmp = test_make_tmpdir ("hostile");
  test_json ();
  test_prompt_weights ();
  test_input_kinds ();
  test_outputs ();
  test_images ();
  test_tokenizers ();
  test_shard_index ();
  test_cli_and_engine ();
  test_remove_tree (tmp);
  free (tmp);
  return test_exit ();
}
