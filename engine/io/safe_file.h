/* safe_file.h — reading and writing files given by the user, safely.
 *
 * Reading: a path is opened only when it is a regular file (a FIFO would block, a device could
 * be endless), with a size bound, and every refusal says what the path is and why it cannot be
 * used ("is a named pipe (FIFO)", "is a loop of symbolic links", ...).
 *
 * Writing: the bytes go to a temporary made with mkstemp (O_EXCL: a planted link is never
 * followed) in the target's folder, are fsync'ed and renamed over the target, so a reader never
 * sees half a file and a failed write leaves the old file alone.  A target that exists and is
 * not a regular file (a device, a FIFO, a folder, a symbolic link) is refused.
 * sd35_out_check tells before minutes of work whether the output can be written at all. */
#ifndef SD35_SAFE_FILE_H
#define SD35_SAFE_FILE_H

#include <stddef.h>
#include "sd35.h"

/* What kind of thing path is, for messages: "a named pipe (FIFO)", "a character device",
 * "a folder", "a loop of symbolic links", "missing", ...  Never NULL; a static string. */
const char *sd35_path_kind (const char *path);

/* Whole regular file → malloc'ed buffer with a NUL after the last byte (*len without it).
 * `what` names the file in messages ("CLIP vocabulary").  A missing file is SD35_ERR_MISSING,
 * anything that is not a regular file SD35_ERR_IO, a file larger than max_bytes SD35_ERR_FORMAT. */
enum sd35_status sd35_read_file (const char *path, size_t max_bytes, const char *what,
                                 char **data, size_t *len, struct sd35_error *err);

/* Refuses a path that is not a regular file (SD35_ERR_IO: "WHAT PATH is a named pipe (FIFO),
 * not a regular file") or is missing (SD35_ERR_MISSING: "WHAT PATH: no such file"). */
enum sd35_status sd35_check_input_file (const char *path, const char *what,
                                        struct sd35_error *err);

struct sd35_out_file
{
  int   fd;     /* -1 when closed */
  char *path;   /* the target */
  char *tmp;    /* the temporary beside it (unlinked on abort) */
};

/* Can `path` be written?  The target must be absent or a regular file, its folder must exist
 * and take a new file (a temporary is made and removed).  SD35_ERR_IO / SD35_ERR_ARG with a
 * message naming the path and the reason. */
enum sd35_status sd35_out_check (const char *path, struct sd35_error *err);

/* Starts writing path: o->fd is the temporary's descriptor.  On failure o is cleared. */
enum sd35_status sd35_out_open (struct sd35_out_file *o, const char *path,
                                struct sd35_error *err);
/* Writes all n bytes (retries short writes and EINTR); the message carries the reason
 * ("No space left on device"). */
enum sd35_status sd35_out_write (struct sd35_out_file *o, const void *data, size_t n,
                                 struct sd35_error *err);
/* fsync, close, check the target once more, rename over it.  On failure the temporary is
 * removed.  o is cleared either way. */
enum sd35_status sd35_out_commit (struct sd35_out_file *o, struct sd35_error *err);
/* Drops the temporary (safe to call on a cleared or committed o). */
void sd35_out_abort (struct sd35_out_file *o);

/* The whole of data to path through the steps above. */
enum sd35_status sd35_write_file (const char *path, const void *data, size_t n,
                                  struct sd35_error *err);

#endif
