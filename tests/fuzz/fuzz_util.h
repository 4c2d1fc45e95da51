/* fuzz_util.h — what the file-reading fuzz targets share: the readers take paths, so each input
 * is written to a file in one private folder made at the first call ($TMPDIR, default /tmp),
 * and the status check every target applies (a refusal is one of the documented statuses with
 * a message; anything else is a finding). */
#ifndef SD35_FUZZ_UTIL_H
#define SD35_FUZZ_UTIL_H

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "sd35.h"

static inline const char *
fuzz_dir (void)
{
  static char *dir;
  if (dir == NULL)
    {
      dir = g_dir_make_tmp ("sd35-fuzz-XXXXXX", NULL);
      if (dir == NULL)
        abort ();
    }
  return dir;
}

/* dir/name holding data[0..size); the path is valid until the next call with the same name. */
static inline const char *
fuzz_file (const char *name, const uint8_t *data, size_t size)
{
  static char path[4096];
  FILE       *f;

  snprintf (path, sizeof path, "%s/%s", fuzz_dir (), name);
  f = fopen (path, "wb");
  if (f == NULL || (size > 0 && fwrite (data, 1, size, f) != size) || fclose (f) != 0)
    abort ();
  return path;
}

/* A refusal must be a file-format / missing / I/O / argument error with a message. */
static inline void
fuzz_check_refusal (const struct sd35_error *err)
{
  if (err->message[0] == '\0'
      || (err->status != SD35_ERR_FORMAT && err->status != SD35_ERR_MISSING
          && err->status != SD35_ERR_IO && err->status != SD35_ERR_ARG
          && err->status != SD35_ERR_SHAPE)
      || strchr (err->message, '\n') != NULL)
    __builtin_trap ();
}

#endif
