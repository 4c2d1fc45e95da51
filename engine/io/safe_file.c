/* safe_file.c — bounded reads of regular files and atomic, link-safe writes (safe_file.h). */
#include "safe_file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

static const char *
mode_kind (mode_t m)
{
  if (S_ISREG (m))
    return "a regular file";
  if (S_ISDIR (m))
    return "a folder";
  if (S_ISFIFO (m))
    return "a named pipe (FIFO)";
  if (S_ISCHR (m))
    return "a character device";
  if (S_ISBLK (m))
    return "a block device";
  if (S_ISSOCK (m))
    return "a socket";
  if (S_ISLNK (m))
    return "a symbolic link";
  return "not a file";
}

const char *
sd35_path_kind (const char *path)
{
  struct stat s;

  if (path == NULL || path[0] == '\0')
    return "an empty path";
  if (stat (path, &s) == 0)
    return mode_kind (s.st_mode);
  switch (errno)
    {
    case ELOOP:
      return "a loop of symbolic links";
    case ENOENT:
      return lstat (path, &s) == 0 ? "a symbolic link to nothing" : "missing";
    case ENOTDIR:
      return "missing (a part of the path is not a folder)";
    case EACCES:
      return "not accessible (permission denied)";
    case ENAMETOOLONG:
      return "a name too long for the system";
    default:
      return "not accessible";
    }
}

enum sd35_status
sd35_check_input_file (const char *path, const char *what, struct sd35_error *err)
{
  const char *kind = sd35_path_kind (path);

  if (strcmp (kind, "a regular file") == 0)
    return SD35_OK;
  if (strcmp (kind, "missing") == 0)
    return sd35_set_error (err, SD35_ERR_MISSING, "%s %s: no such file", what, path);
  return sd35_set_error (err, SD35_ERR_IO, "%s %s is %s, not a regular file", what, path,
                         kind);
}

enum sd35_status
sd35_read_file (const char *path, size_t max_bytes, const char *what, char **data,
                size_t *len, struct sd35_error *err)
{
  struct stat      s;
  enum sd35_status st;
  char            *buf;
  size_t           got = 0;
  int              fd;

  *data = NULL;
  *len = 0;
  st = sd35_check_input_file (path, what, err);
  if (st != SD35_OK)
    return st;
  /* O_NONBLOCK: a FIFO swapped in after the check must not hang the open */
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return sd35_set_error (err, errno == ENOENT ? SD35_ERR_MISSING : SD35_ERR_IO,
                           "%s %s: cannot open: %s", what, path, g_strerror (errno));
  if (fstat (fd, &s) != 0)
    s.st_mode = 0;
  if (!S_ISREG (s.st_mode))
    {
      close (fd);
      return sd35_set_error (err, SD35_ERR_IO, "%s %s is %s, not a regular file", what, path,
                             mode_kind (s.st_mode));
    }
  if ((uint64_t) s.st_size > max_bytes)
    {
      close (fd);
      return sd35_set_error (err, SD35_ERR_FORMAT, "%s %s is %lld bytes, more than the %zu "
                             "bytes such a file may have", what, path, (long long) s.st_size,
                             max_bytes);
    }
  buf = malloc ((size_t) s.st_size + 1);
  if (buf == NULL)
    {
      close (fd);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory reading %s %s", what, path);
    }
  while (got < (size_t) s.st_size)
    {
      ssize_t k = read (fd, buf + got, (size_t) s.st_size - got);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        {
          int e = k < 0 ? errno : 0;
          close (fd);
          free (buf);
          return sd35_set_error (err, SD35_ERR_IO, "%s %s: read failed: %s", what, path,
                                 e ? g_strerror (e) : "the file became shorter while read");
        }
      got += (size_t) k;
    }
  close (fd);
  buf[got] = '\0';
  *data = buf;
  *len = got;
  return SD35_OK;
}

/* The target may be absent or a regular file (not a link: rename would replace the link,
 * which is not what a user who named it meant either). */
static enum sd35_status
check_target (const char *path, struct sd35_error *err)
{
  struct stat s;

  if (path == NULL || path[0] == '\0')
    return sd35_set_error (err, SD35_ERR_ARG, "no output file given");
  if (lstat (path, &s) == 0)
    {
      if (S_ISREG (s.st_mode))
        return SD35_OK;
      return sd35_set_error (err, SD35_ERR_ARG, "output %s is %s; give a new or a regular "
                             "file to write", path, mode_kind (s.st_mode));
    }
  if (errno == ENOENT)
    return SD35_OK;
  return sd35_set_error (err, SD35_ERR_IO, "output %s: %s", path, g_strerror (errno));
}

/* "<folder>/.<name>.XXXXXX" beside the target. */
static char *
temp_template (const char *path)
{
  char *dir = g_path_get_dirname (path), *base = g_path_get_basename (path);
  char *name = g_strdup_printf (".%s.XXXXXX", base);
  char *tmp = g_build_filename (dir, name, NULL);

  g_free (dir);
  g_free (base);
  g_free (name);
  return tmp;
}

static enum sd35_status
open_temp (struct sd35_out_file *o, const char *path, struct sd35_error *err)
{
  char *dir;
  int   e;

  o->fd = -1;
  o->path = NULL;
  o->tmp = temp_template (path);
  /* mkstemp opens with O_CREAT | O_EXCL: an existing name, a planted link included, fails */
  o->fd = g_mkstemp_full (o->tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (o->fd >= 0)
    {
      o->path = g_strdup (path);
      return SD35_OK;
    }
  e = errno;
  dir = g_path_get_dirname (path);
  g_clear_pointer (&o->tmp, g_free);
  if (e == ENOENT || e == ENOTDIR)
    sd35_set_error (err, SD35_ERR_IO, "cannot write %s: the folder %s is %s", path, dir,
                    sd35_path_kind (dir));
  else
    sd35_set_error (err, SD35_ERR_IO, "cannot write %s: cannot create a file in %s: %s", path,
                    dir, g_strerror (e));
  g_free (dir);
  return SD35_ERR_IO;
}

enum sd35_status
sd35_out_check (const char *path, struct sd35_error *err)
{
  struct sd35_out_file o;

  if (check_target (path, err) != SD35_OK || open_temp (&o, path, err) != SD35_OK)
    return err != NULL ? err->status : SD35_ERR_IO;
  sd35_out_abort (&o);
  return SD35_OK;
}

enum sd35_status
sd35_out_open (struct sd35_out_file *o, const char *path, struct sd35_error *err)
{
  o->fd = -1;
  o->path = o->tmp = NULL;
  if (check_target (path, err) != SD35_OK)
    return err != NULL ? err->status : SD35_ERR_ARG;
  return open_temp (o, path, err);
}

enum sd35_status
sd35_out_write (struct sd35_out_file *o, const void *data, size_t n, struct sd35_error *err)
{
  const char *b = data;

  if (o->fd < 0)
    return sd35_set_error (err, SD35_ERR_IO, "cannot write %s: not open",
                           o->path ? o->path : "(no file)");
  while (n > 0)
    {
      ssize_t k = write (o->fd, b, n > (1u << 30) ? (1u << 30) : n);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        return sd35_set_error (err, SD35_ERR_IO, "cannot write %s: %s", o->path,
                               k < 0 ? g_strerror (errno) : "the system wrote nothing");
      b += k;
      n -= (size_t) k;
    }
  return SD35_OK;
}

void
sd35_out_abort (struct sd35_out_file *o)
{
  if (o->fd >= 0)
    close (o->fd);
  if (o->tmp != NULL)
    unlink (o->tmp);
  o->fd = -1;
  g_clear_pointer (&o->tmp, g_free);
  g_clear_pointer (&o->path, g_free);
}

enum sd35_status
sd35_out_commit (struct sd35_out_file *o, struct sd35_error *err)
{
  enum sd35_status st = SD35_OK;
  int              e = 0;

  if (o->fd < 0)
    st = sd35_set_error (err, SD35_ERR_IO, "cannot write %s: not open",
                         o->path ? o->path : "(no file)");
  else if (fchmod (o->fd, 0644) != 0 || fsync (o->fd) != 0)
    e = errno;
  if (o->fd >= 0 && close (o->fd) != 0 && e == 0)
    e = errno;
  o->fd = -1;
  if (st == SD35_OK && e != 0)
    st = sd35_set_error (err, SD35_ERR_IO, "cannot write %s: %s", o->path, g_strerror (e));
  /* the target may have been replaced while we wrote */
  if (st == SD35_OK)
    st = check_target (o->path, err);
  if (st == SD35_OK && rename (o->tmp, o->path) != 0)
    st = sd35_set_error (err, SD35_ERR_IO, "cannot write %s: %s", o->path, g_strerror (errno));
  if (st == SD35_OK)
    g_clear_pointer (&o->tmp, g_free);  /* renamed: nothing to remove */
  sd35_out_abort (o);
  return st;
}

enum sd35_status
sd35_write_file (const char *path, const void *data, size_t n, struct sd35_error *err)
{
  struct sd35_out_file o;

  if (sd35_out_open (&o, path, err) != SD35_OK)
    return err != NULL ? err->status : SD35_ERR_IO;
  if (sd35_out_write (&o, data, n, err) != SD35_OK)
    {
      sd35_out_abort (&o);
      return err != NULL ? err->status : SD35_ERR_IO;
    }
  return sd35_out_commit (&o, err);
}
