/* stage_util.c — see stage_util.h */
#include "stage_util.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "error.h"

int
stage_require (const char *cmd, const char *model, const char *in, const char *out)
{
  if (model != NULL && in != NULL && out != NULL)
    return 0;
  cli_fail (cmd, "--model, --in and --out are required (see --help)");
  return 2;
}

int
stage_open (struct stage *st, const char *cmd, const char *model, const char *in,
            const char *backend, int threads, int verbose)
{
  enum sd35_backend_kind kind = SD35_BACKEND_AUTO;

  memset (st, 0, sizeof *st);
  st->cmd = cmd;
  sd35_log_set_verbose (verbose);
  if (backend == NULL || strcmp (backend, "auto") == 0)
    kind = SD35_BACKEND_AUTO;
  else if (strcmp (backend, "cpu") == 0)
    kind = SD35_BACKEND_CPU;
  else if (strcmp (backend, "cuda") == 0)
    kind = SD35_BACKEND_CUDA;
  else
    return cli_fail (cmd, "--backend must be auto, cpu or cuda, not '%s'", backend);
  if (st_open (model, &st->model, &st->err) != SD35_OK
      || st_open (in, &st->in, &st->err) != SD35_OK
      || backend_new (kind, threads, &st->be, &st->err) != SD35_OK)
    return cli_fail_err (cmd, &st->err);
  return 0;
}

void
stage_close (struct stage *st)
{
  backend_free (st->be);
  st_close (st->in);
  st_close (st->model);
  memset (st, 0, sizeof *st);
}

static void
shape_str (char *buf, size_t size, int ndim, const int64_t *shape, int wild)
{
  size_t k = 0;

  k += (size_t) snprintf (buf + k, size - k, "[");
  for (int i = 0; i < ndim && k < size; i++)
    {
      if (wild && shape[i] < 0)
        k += (size_t) snprintf (buf + k, size - k, "%s*", i ? ", " : "");
      else
        k += (size_t) snprintf (buf + k, size - k, "%s%lld", i ? ", " : "", (long long) shape[i]);
    }
  if (k < size)
    snprintf (buf + k, size - k, "]");
}

static const struct st_tensor *
find_checked (struct stage *st, const char *name, int ndim, int64_t *shape)
{
  const struct st_tensor *t = st_find (st->in, name);
  char                    want[128], got[128];
  int                     ok;

  if (t == NULL)
    {
      cli_fail (st->cmd, "%s has no tensor '%s'", st_path (st->in), name);
      return NULL;
    }
  ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = t->shape[i] >= 1 && (shape[i] < 0 || t->shape[i] == shape[i]);
  if (!ok)
    {
      shape_str (want, sizeof want, ndim, shape, 1);
      shape_str (got, sizeof got, t->ndim, t->shape, 0);
      cli_fail (st->cmd, "%s: tensor '%s' has shape %s, expected %s", st_path (st->in), name,
                got, want);
      return NULL;
    }
  for (int i = 0; i < ndim; i++)
    shape[i] = t->shape[i];
  return t;
}

float *
stage_read (struct stage *st, const char *name, int ndim, int64_t *shape)
{
  const struct st_tensor *t = find_checked (st, name, ndim, shape);
  float                  *d;

  if (t == NULL)
    return NULL;
  d = st_read_f32 (t, &st->err);
  if (d == NULL)
    cli_fail_err (st->cmd, &st->err);
  return d;
}

int64_t *
stage_read_int (struct stage *st, const char *name, int ndim, int64_t *shape)
{
  const struct st_tensor *t = find_checked (st, name, ndim, shape);
  int64_t                *d;

  if (t == NULL)
    return NULL;
  d = st_read_i64 (t, &st->err);
  if (d == NULL)
    cli_fail_err (st->cmd, &st->err);
  return d;
}
