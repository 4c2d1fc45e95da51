/* error.h — helpers to fill `struct sd35_error` (engine-internal).  The first error wins:
 * sd35_set_error does nothing when err already holds one, so a low-level reason is not
 * overwritten by a vaguer one further up. */
#ifndef SD35_ERROR_H
#define SD35_ERROR_H

#include <stdarg.h>
#include "sd35.h"

#if defined(__GNUC__)
#define SD35_PRINTF(a, b) __attribute__ ((format (printf, a, b)))
#else
#define SD35_PRINTF(a, b)
#endif

/* Records status + formatted message (if err != NULL and no error is recorded yet); returns status. */
enum sd35_status sd35_set_error (struct sd35_error *err, enum sd35_status status,
                                 const char *fmt, ...) SD35_PRINTF (3, 4);
enum sd35_status sd35_set_errorv (struct sd35_error *err, enum sd35_status status,
                                  const char *fmt, va_list ap);
/* Prefixes the recorded message with "what: " (e.g. the file being loaded). */
void sd35_error_prefix (struct sd35_error *err, const char *fmt, ...) SD35_PRINTF (2, 3);
void sd35_error_clear (struct sd35_error *err);

/* Overflow-checked size arithmetic: return 0 and set *out on success, -1 on overflow. */
int sd35_mul_size (size_t a, size_t b, size_t *out);
int sd35_add_size (size_t a, size_t b, size_t *out);

/* malloc/calloc that record SD35_ERR_OOM ("out of memory allocating N bytes for WHAT"). */
void *sd35_malloc (size_t n, const char *what, struct sd35_error *err);
void *sd35_calloc (size_t count, size_t size, const char *what, struct sd35_error *err);

/* Logging to stderr, enabled by sd35_log_set_verbose or SD35_VERBOSE=1. */
void sd35_log_set_verbose (int verbose);
void sd35_log (const char *fmt, ...) SD35_PRINTF (1, 2);
/* One-line notice always printed to stderr (e.g. "no GPU: using the CPU backend"). */
void sd35_notice (const char *fmt, ...) SD35_PRINTF (1, 2);

#endif
