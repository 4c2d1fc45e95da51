/* testutil.c — see testutil.h */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_failures;

const char *
test_shared_dir (void)
{
  const char *d = getenv ("SD35_SHARED_DIR");
  struct stat st;
  if (d == NULL || stat (d, &st) != 0 || !S_ISDIR (st.st_mode))
    return NULL;
  return d;
}

char *
test_shared_path_or_skip (const char *rel)
{
  const char *d = test_shared_dir ();
  struct stat st;
  size_t      n;
  char       *p;

  if (d == NULL)
    {
      printf ("SKIP: ../shared (goldens, tokenizers) not found; set SD35_SHARED_DIR\n");
      exit (TEST_SKIP);
    }
  n = strlen (d) + strlen (rel) + 2;
  p = malloc (n);
  snprintf (p, n, "%s/%s", d, rel);
  if (stat (p, &st) != 0)
    {
      printf ("SKIP: %s not found\n", p);
      exit (TEST_SKIP);
    }
  return p;
}

const char *
test_env_or_skip (const char *var)
{
  const char *v = getenv (var);
  if (v == NULL || v[0] == '\0')
    {
      printf ("SKIP: $%s not set\n", var);
      exit (TEST_SKIP);
    }
  return v;
}

struct st_file *
test_open_golden (const char *rel)
{
  char             *p = test_shared_path_or_skip (rel);
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };

  if (st_open (p, &f, &err) != SD35_OK)
    {
      printf ("FAIL: cannot open %s: %s\n", p, err.message);
      free (p);
      exit (1);
    }
  free (p);
  return f;
}

float *
test_golden_f32 (struct st_file *f, const char *name, size_t *numel)
{
  const struct st_tensor *t = st_find (f, name);
  struct sd35_error       err = { 0 };
  float                  *d;

  if (t == NULL)
    {
      printf ("FAIL: golden %s has no tensor '%s'\n", st_path (f), name);
      exit (1);
    }
  d = st_read_f32 (t, &err);
  if (d == NULL)
    {
      printf ("FAIL: reading '%s': %s\n", name, err.message);
      exit (1);
    }
  if (numel)
    *numel = t->numel;
  return d;
}

uint8_t *
test_golden_u8 (struct st_file *f, const char *name, size_t *numel)
{
  const struct st_tensor *t = st_find (f, name);
  uint8_t                *d;

  if (t == NULL || t->dtype != SD35_U8)
    {
      printf ("FAIL: golden %s has no U8 tensor '%s'\n", st_path (f), name);
      exit (1);
    }
  d = malloc (t->numel ? t->numel : 1);
  if (d == NULL)
    {
      printf ("FAIL: out of memory reading '%s'\n", name);
      exit (1);
    }
  memcpy (d, t->data, t->numel);
  if (numel)
    *numel = t->numel;
  return d;
}

int
test_close (const char *what, const float *got, const float *ref, size_t n, double rel_tol)
{
  double max_ref = 0, max_err = 0;
  size_t at = 0;
  int    nan = 0;

  for (size_t i = 0; i < n; i++)
    {
      double r = fabs ((double) ref[i]);
      double e = fabs ((double) got[i] - (double) ref[i]);
      if (isnan (got[i]) || isinf (got[i]))
        nan = 1;
      if (r > max_ref)
        max_ref = r;
      if (e > max_err)
        {
          max_err = e;
          at = i;
        }
    }
  double tol = rel_tol * max_ref;
  int    ok = !nan && max_err <= tol;
  printf ("%s %-44s max|d|=%.3e at %zu (got %.6g ref %.6g)  tol=%.1e*max|ref|=%.3e%s\n",
          ok ? "ok  " : "FAIL", what, max_err, at, n ? got[at] : 0.0, n ? ref[at] : 0.0,
          rel_tol, tol, nan ? "  NaN/Inf!" : "");
  if (!ok)
    n_failures++;
  return ok;
}

int
test_equal_i32 (const char *what, const int32_t *got, const int64_t *ref, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if ((int64_t) got[i] != ref[i])
      {
        printf ("FAIL %s: id %zu is %d, reference %lld\n", what, i, got[i], (long long) ref[i]);
        n_failures++;
        return 0;
      }
  printf ("ok   %s (%zu ids identical)\n", what, n);
  return 1;
}

int
test_within_u8 (const char *what, const uint8_t *got, const uint8_t *ref, size_t n, int max_diff)
{
  int    worst = 0;
  size_t at = 0, n_off = 0;
  for (size_t i = 0; i < n; i++)
    {
      int d = abs ((int) got[i] - (int) ref[i]);
      if (d > worst)
        {
          worst = d;
          at = i;
        }
      if (d > max_diff)
        n_off++;
    }
  int ok = worst <= max_diff;
  printf ("%s %-44s max|d|=%d at %zu (%zu values over %d)\n", ok ? "ok  " : "FAIL", what, worst,
          at, n_off, max_diff);
  if (!ok)
    n_failures++;
  return ok;
}

int
test_check (int cond, const char *fmt, ...)
{
  va_list ap;
  fputs (cond ? "ok   " : "FAIL ", stdout);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  fputc ('\n', stdout);
  if (!cond)
    n_failures++;
  return cond;
}

int
test_failures (void)
{
  return n_failures;
}

int
test_exit (void)
{
  if (n_failures)
    printf ("%d check(s) failed\n", n_failures);
  return n_failures ? 1 : 0;
}

char *
test_make_tmpdir (const char *name)
{
  const char *base = getenv ("TMPDIR");
  size_t      n;
  char       *p;

  if (base == NULL || base[0] == '\0')
    base = "/tmp";
  n = strlen (base) + strlen (name) + 32;
  p = malloc (n);
  if (p == NULL)
    {
      printf ("FAIL: out of memory\n");
      exit (1);
    }
  snprintf (p, n, "%s/sd35-test-%s-XXXXXX", base, name);
  if (mkdtemp (p) == NULL)
    {
      printf ("FAIL: cannot create the temporary folder %s\n", p);
      exit (1);
    }
  return p;
}

static int
remove_entry (const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
  if (remove (path) != 0)
    printf ("note: could not remove %s\n", path);
  return 0;
}

void
test_remove_tree (const char *dir)
{
  if (dir == NULL || strstr (dir, "/sd35-test-") == NULL)
    return;
  nftw (dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
test_run_argv (char *const argv[])
{
  pid_t pid;
  int   status = 0;

  fflush (stdout);
  pid = fork ();
  if (pid == 0)
    {
      execv (argv[0], argv);
      _exit (127);
    }
  if (pid < 0 || waitpid (pid, &status, 0) < 0)
    return -1;
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static int
layout_link (const char *shared, const char *src, const char *dir, const char *dst)
{
  char s[1024], d[1024];

  snprintf (s, sizeof s, "%s/%s", shared, src);
  snprintf (d, sizeof d, "%s/%s", dir, dst);
  if (symlink (s, d) == 0 || access (d, F_OK) == 0)
    return 1;
  return test_check (0, "layout: cannot link %s → %s", d, s);
}

int
test_tiny_model_layout (const char *shared, const char *dir, const char *mmdit_src,
                        const char *mmdit_name)
{
  static const char *const sub[] = { "text_encoders", "text_encoder", "text_encoder_2",
                                     "text_encoder_3", "tokenizer", "tokenizer_2",
                                     "tokenizer_3" };
  static const char *const links[][2] = {
    { "golden/models/clip_l.safetensors", "text_encoders/clip_l.safetensors" },
    { "golden/models/clip_g.safetensors", "text_encoders/clip_g.safetensors" },
    { "golden/models/t5xxl.safetensors", "text_encoders/t5xxl_fp16.safetensors" },
    { "golden/models/text_encoder/config.json", "text_encoder/config.json" },
    { "golden/models/text_encoder_2/config.json", "text_encoder_2/config.json" },
    { "golden/models/text_encoder_3/config.json", "text_encoder_3/config.json" },
    { "tokenizers/clip/vocab.json", "tokenizer/vocab.json" },
    { "tokenizers/clip/merges.txt", "tokenizer/merges.txt" },
    { "tokenizers/clip/vocab.json", "tokenizer_2/vocab.json" },
    { "tokenizers/clip/merges.txt", "tokenizer_2/merges.txt" },
    { "tokenizers/t5/spiece.model", "tokenizer_3/spiece.model" },
    { "tokenizers/t5/tokenizer.json", "tokenizer_3/tokenizer.json" },
  };
  char path[1024];
  int  ok = 1;

  mkdir (dir, 0755);
  for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
    {
      snprintf (path, sizeof path, "%s/%s", dir, sub[i]);
      mkdir (path, 0755);
    }
  if (mmdit_src != NULL)
    ok &= layout_link (shared, mmdit_src, dir, mmdit_name);
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    ok &= layout_link (shared, links[i][0], dir, links[i][1]);
  return ok;
}
