/* error.c — error recording, checked sizes, logging. */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
sd35_status_name (enum sd35_status status)
{
  switch (status)
    {
    case SD35_OK:           return "ok";
    case SD35_ERR_IO:       return "I/O error";
    case SD35_ERR_FORMAT:   return "bad file format";
    case SD35_ERR_SHAPE:    return "wrong tensor shape";
    case SD35_ERR_MISSING:  return "missing file or tensor";
    case SD35_ERR_ARG:      return "invalid argument";
    case SD35_ERR_OOM:      return "out of memory";
    case SD35_ERR_CUDA:     return "CUDA error";
    case SD35_ERR_NAN:      return "NaN or Inf";
    case SD35_ERR_INTERNAL: return "internal error";
    case SD35_CANCELLED:    return "cancelled";
    }
  return "unknown status";
}

/* Messages quote file contents and prompts (a key, a piece, a word): control characters in
 * them would break the one-line message, so they become spaces (fuzz findings). */
static void
one_line (char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      *s = ' ';
}

enum sd35_status
sd35_set_errorv (struct sd35_error *err, enum sd35_status status, const char *fmt, va_list ap)
{
  if (err == NULL || err->status != SD35_OK)
    return status;
  err->status = status;
  vsnprintf (err->message, sizeof err->message, fmt, ap);
  one_line (err->message);
  return status;
}

enum sd35_status
sd35_set_error (struct sd35_error *err, enum sd35_status status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  sd35_set_errorv (err, status, fmt, ap);
  va_end (ap);
  return status;
}

void
sd35_error_prefix (struct sd35_error *err, const char *fmt, ...)
{
  char    prefix[512];
  char    old[sizeof err->message];
  va_list ap;

  if (err == NULL || err->status == SD35_OK)
    return;
  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, err->message, sizeof old);
  snprintf (err->message, sizeof err->message, "%.500s: %.500s", prefix, old);
  one_line (err->message);
}

void
sd35_error_clear (struct sd35_error *err)
{
  if (err == NULL)
    return;
  err->status = SD35_OK;
  err->message[0] = '\0';
}

int
sd35_mul_size (size_t a, size_t b, size_t *out)
{
  if (a != 0 && b > (size_t) -1 / a)
    return -1;
  *out = a * b;
  return 0;
}

int
sd35_add_size (size_t a, size_t b, size_t *out)
{
  if (b > (size_t) -1 - a)
    return -1;
  *out = a + b;
  return 0;
}

void *
sd35_malloc (size_t n, const char *what, struct sd35_error *err)
{
  void *p = malloc (n ? n : 1);
  if (p == NULL)
    sd35_set_error (err, SD35_ERR_OOM, "out of memory allocating %zu bytes for %s", n, what);
  return p;
}

void *
sd35_calloc (size_t count, size_t size, const char *what, struct sd35_error *err)
{
  size_t n;
  void  *p;

  if (sd35_mul_size (count, size, &n) != 0)
    {
      sd35_set_error (err, SD35_ERR_OOM, "size overflow allocating %zu × %zu bytes for %s",
                      count, size, what);
      return NULL;
    }
  p = calloc (count ? count : 1, size ? size : 1);
  if (p == NULL)
    sd35_set_error (err, SD35_ERR_OOM, "out of memory allocating %zu bytes for %s", n, what);
  return p;
}

static int log_verbose = -1;

void
sd35_log_set_verbose (int verbose)
{
  log_verbose = verbose;
}

void
sd35_log (const char *fmt, ...)
{
  va_list ap;

  if (log_verbose < 0)
    {
      const char *e = getenv ("SD35_VERBOSE");
      log_verbose = e != NULL && e[0] != '\0' && e[0] != '0';
    }
  if (!log_verbose)
    return;
  va_start (ap, fmt);
  fputs ("sd35: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

void
sd35_notice (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs ("sd35: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}
