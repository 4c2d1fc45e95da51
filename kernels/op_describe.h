/* op_describe.h — "op linear (out [2,4429,2432] BF16, in [2,4429,2432] BF16, …, 8858, 2432,
 * 2432, 0)": the text the CUDA backend's sync-check mode (SD35_CUDA_SYNC_CHECK=1,
 * cuda_backend.cu) puts before the first error, so a failure names the op and its shapes.
 * Plain C++ (no CUDA), checked on the host by tests/unit/test_cuda_emu.cc. */
#ifndef SD35_OP_DESCRIBE_H
#define SD35_OP_DESCRIBE_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

extern "C" {
#include "ops.h"
#include "error.h"
}

struct op_text
{
  char  *p;
  size_t left;
};

static inline void
op_text_add (struct op_text *o, const char *fmt, ...) SD35_PRINTF (2, 3);

static inline void
op_text_add (struct op_text *o, const char *fmt, ...)
{
  va_list ap;
  int     n;

  if (o->left <= 1)
    return;
  va_start (ap, fmt);
  n = vsnprintf (o->p, o->left, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if ((size_t) n >= o->left)
    n = (int) o->left - 1;
  o->p += n;
  o->left -= (size_t) n;
}

static inline void
op_describe_arg (struct op_text *o, const struct tensor *t)
{
  if (t == NULL)
    {
      op_text_add (o, "NULL");
      return;
    }
  op_text_add (o, "[");
  for (int d = 0; d < t->ndim && d < 4; d++)
    op_text_add (o, d ? ",%lld" : "%lld", (long long) t->shape[d]);
  op_text_add (o, "] %s", sd35_dtype_name (t->dtype));
}
static inline void op_describe_arg (struct op_text *o, struct tensor *t)
{
  op_describe_arg (o, (const struct tensor *) t);
}
static inline void op_describe_arg (struct op_text *o, int64_t v) { op_text_add (o, "%lld", (long long) v); }
static inline void op_describe_arg (struct op_text *o, int v) { op_text_add (o, "%d", v); }
static inline void op_describe_arg (struct op_text *o, float v) { op_text_add (o, "%g", (double) v); }
static inline void op_describe_arg (struct op_text *o, enum op_act v) { op_text_add (o, "act %d", (int) v); }
static inline void op_describe_arg (struct op_text *o, enum sd35_dtype v) { op_text_add (o, "%s", sd35_dtype_name (v)); }
static inline void op_describe_arg (struct op_text *o, enum weight_use v) { op_text_add (o, v == WEIGHT_VECTOR ? "vector" : "matrix"); }
static inline void op_describe_arg (struct op_text *o, const void *p) { op_text_add (o, p ? "host" : "NULL"); }

/* buf ← "op NAME (arg, arg, …)" */
template <typename... A>
static inline void
op_describe (char *buf, size_t size, const char *name, A... a)
{
  struct op_text o = { buf, size };
  int            i = 0;

  if (size == 0)
    return;
  buf[0] = '\0';
  op_text_add (&o, "op %s (", name);
  ((op_text_add (&o, i++ ? ", " : ""), op_describe_arg (&o, a)), ...);
  op_text_add (&o, ")");
}

/* --- the sync-check wrapper (SD35_CUDA_SYNC_CHECK=1) ------------------------------------------
 * Runs op f; then, unless the backend had already failed before it, after (be) (the CUDA
 * backend synchronises its stream and checks for errors there); if the backend failed in the
 * op or in after, the first error's message is prefixed with "op NAME (args…) failed: ". */
template <typename T> struct op_same { typedef T type; };   /* not deduced from a... */

template <typename R, typename... A>
static R
op_run_checked (R (*f) (struct backend *, A...), const char *name,
                void (*after) (struct backend *), struct backend *be,
                typename op_same<A>::type... a)
{
  const int was_ok = !backend_failed (be);
  struct finish
  {
    static void
    run (const int ok, void (*aft) (struct backend *), struct backend *b, const char *nm,
         typename op_same<A>::type... x)
    {
      char what[600], msg[sizeof b->err.message];
      if (!ok)
        return;
      if (!backend_failed (b) && aft != NULL)
        aft (b);
      if (!backend_failed (b))
        return;
      op_describe (what, sizeof what, nm, x...);
      struct op_text o = { msg, sizeof msg };   /* truncates the tail, if it must */
      op_text_add (&o, "%s failed: ", what);
      op_text_add (&o, "%s", b->err.message);
      memcpy (b->err.message, msg, sizeof msg);
    }
  };
  if constexpr (std::is_void<R>::value)
    {
      f (be, a...);
      finish::run (was_ok, after, be, name, a...);
    }
  else
    {
      R r = f (be, a...);
      finish::run (was_ok, after, be, name, a...);
      return r;
    }
}

#endif
