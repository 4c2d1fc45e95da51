/* cli.c — option parsing shared by the sd35 subcommands. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int
cli_fail (const char *cmd, const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "sd35 %s: ", cmd);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return 1;
}

int
cli_fail_err (const char *cmd, const struct sd35_error *err)
{
  if (err->status == SD35_CANCELLED)
    {
      fprintf (stderr, "sd35 %s: cancelled\n", cmd);
      return 130;
    }
  fprintf (stderr, "sd35 %s: %s\n", cmd,
           err->message[0] ? err->message : sd35_status_name (err->status));
  return 1;
}

int
cli_save (const char *cmd, struct st_writer *w, int bad, const char *out)
{
  struct sd35_error err = { 0 };
  int               status = 0;

  if (bad)
    status = cli_fail (cmd, "out of memory building %s", out);
  else if (st_writer_save (w, out, &err) != SD35_OK)
    status = cli_fail_err (cmd, &err);
  st_writer_free (w);
  return status;
}

static const char *
type_hint (enum cli_opt_type t)
{
  switch (t)
    {
    case CLI_STR:      return " TEXT";
    case CLI_INT:      return " N";
    case CLI_DOUBLE:   return " X";
    case CLI_U64:      return " N";
    case CLI_INT_LIST: return " N,N,...";
    case CLI_STR_LIST: return " TEXT";
    case CLI_FLAG:     return "";
    }
  return "";
}

static void
print_help (const char *cmd, const char *summary, const struct cli_opt *opts, int n_opts)
{
  printf ("usage: sd35 %s [options]\n\n%s\n\noptions:\n", cmd, summary);
  for (int i = 0; i < n_opts; i++)
    {
      char left[64];
      snprintf (left, sizeof left, "--%s%s", opts[i].name, type_hint (opts[i].type));
      printf ("  %-26s %s\n", left, opts[i].help ? opts[i].help : "");
    }
  printf ("  %-26s %s\n", "--help", "show this help");
}

static int
has_range (const struct cli_opt *o)
{
  return o->min < o->max;
}

/* "an integer from 1 to 1000" */
static int
fail_int (const char *cmd, const struct cli_opt *o, const char *v, double lo, double hi)
{
  return cli_fail (cmd, "--%s must be an integer from %.0f to %.0f, got '%s'", o->name, lo, hi,
                   v), -1;
}

static int
parse_value (const char *cmd, const struct cli_opt *o, const char *v)
{
  char *end = NULL;

  errno = 0;
  switch (o->type)
    {
    case CLI_STR:
      *(const char **) o->dest = v;
      return 0;
    case CLI_INT:
      {
        double lo = has_range (o) ? o->min : -2147483647.0, hi = has_range (o) ? o->max
                                                                                : 2147483647.0;
        long   x = strtol (v, &end, 10);
        if (errno || end == v || *end || x < lo || x > hi)
          return fail_int (cmd, o, v, lo, hi);
        *(int *) o->dest = (int) x;
        return 0;
      }
    case CLI_DOUBLE:
      {
        double x = strtod (v, &end);
        if (end == v || *end || !isfinite (x) || (has_range (o) && (x < o->min || x > o->max)))
          {
            if (has_range (o))
              return cli_fail (cmd, "--%s must be a number from %g to %g, got '%s'", o->name,
                               o->min, o->max, v), -1;
            return cli_fail (cmd, "--%s must be a finite number, got '%s'", o->name, v), -1;
          }
        *(double *) o->dest = x;
        return 0;
      }
    case CLI_U64:
      {
        unsigned long long x;
        x = v[0] == '-' ? 0 : strtoull (v, &end, 10);
        if (v[0] == '-' || errno || end == v || *end)
          return cli_fail (cmd, "--%s must be an integer from 0 to %llu, got '%s'", o->name,
                           (unsigned long long) UINT64_MAX, v), -1;
        *(uint64_t *) o->dest = (uint64_t) x;
        return 0;
      }
    case CLI_INT_LIST:
      {
        struct cli_int_list *l = o->dest;
        const char          *p = v;
        double               lo = has_range (o) ? o->min : 0, hi = has_range (o) ? o->max : 100000;
        l->n = 0;
        while (*p)
          {
            long x = strtol (p, &end, 10);
            if (errno || end == p || (*end && *end != ',') || x < lo || x > hi)
              return cli_fail (cmd, "--%s expects a list like 7,8,9 of integers from %.0f to "
                               "%.0f, got '%s'", o->name, lo, hi, v), -1;
            if (l->n >= (int) (sizeof l->values / sizeof l->values[0]))
              return cli_fail (cmd, "--%s: too many values (at most %d)", o->name,
                               (int) (sizeof l->values / sizeof l->values[0])), -1;
            l->values[l->n++] = (int) x;
            p = *end ? end + 1 : end;
          }
        return 0;
      }
    case CLI_STR_LIST:
      {
        struct cli_str_list *l = o->dest;
        if (l->n >= (int) (sizeof l->values / sizeof l->values[0]))
          return cli_fail (cmd, "--%s: given too many times", o->name), -1;
        l->values[l->n++] = v;
        return 0;
      }
    case CLI_FLAG:
      break;
    }
  return -1;
}

int
cli_parse_loras (const char *cmd, const struct cli_str_list *list, struct sd35_lora *out)
{
  static char paths[32][4096];

  for (int i = 0; i < list->n && i < 32; i++)
    {
      if (sd35_lora_spec_parse (list->values[i], paths[i], sizeof paths[i],
                                &out[i].strength) != 0)
        return cli_fail (cmd, "--lora expects FILE[:STRENGTH] with a finite strength, got "
                         "'%s'", list->values[i]), -1;
      out[i].path = paths[i];
    }
  return 0;
}

int
cli_parse (int argc, char **argv, const char *cmd, const char *summary,
           const struct cli_opt *opts, int n_opts)
{
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      const char *eq;
      size_t      len;
      int         found = -1;

      if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        {
          print_help (cmd, summary, opts, n_opts);
          return 1;
        }
      if (strncmp (a, "--", 2) != 0)
        return cli_fail (cmd, "unexpected argument '%s' (see --help)", a), -1;
      a += 2;
      eq = strchr (a, '=');
      len = eq ? (size_t) (eq - a) : strlen (a);
      for (int k = 0; k < n_opts; k++)
        if (strlen (opts[k].name) == len && strncmp (opts[k].name, a, len) == 0)
          found = k;
      if (found < 0)
        return cli_fail (cmd, "unknown option '--%.*s' (see --help)", (int) len, a), -1;
      if (opts[found].seen)
        *opts[found].seen = 1;
      if (opts[found].type == CLI_FLAG)
        {
          if (eq)
            return cli_fail (cmd, "--%s takes no value", opts[found].name), -1;
          *(int *) opts[found].dest = 1;
          continue;
        }
      if (eq == NULL)
        {
          if (i + 1 >= argc)
            return cli_fail (cmd, "--%s needs a value", opts[found].name), -1;
          eq = argv[++i] - 1;  /* so eq + 1 is the value */
        }
      if (parse_value (cmd, &opts[found], eq + 1) != 0)
        return -1;
    }
  return 0;
}

int
cli_prompt_weights (const char *cmd, const char *name, enum sd35_prompt_weights *out)
{
  *out = SD35_PROMPT_WEIGHTS_COMFY;
  if (name != NULL && sd35_prompt_weights_from_name (name, out) != 0)
    return cli_fail (cmd, "--prompt-weights must be comfy or ignore, not '%s'", name), -1;
  return 0;
}

int
cli_engine_options (const char *cmd, const struct cli_model_opts *m,
                    struct sd35_engine_options *opts)
{
  sd35_engine_options_init (opts);
  opts->model_path = m->model;
  opts->tokenizers_dir = m->tokenizers;
  opts->text_encoders_dir = m->text_encoders;
  opts->use_t5 = !m->no_t5;
  opts->force_turbo = m->turbo;
  opts->n_threads = m->threads;
  opts->verbose = m->verbose;
  if (m->backend == NULL || strcmp (m->backend, "auto") == 0)
    opts->backend = SD35_BACKEND_AUTO;
  else if (strcmp (m->backend, "cpu") == 0)
    opts->backend = SD35_BACKEND_CPU;
  else if (strcmp (m->backend, "cuda") == 0)
    opts->backend = SD35_BACKEND_CUDA;
  else
    return cli_fail (cmd, "--backend must be auto, cpu or cuda, not '%s'", m->backend), -1;
  return 0;
}

int
cli_parse_shape (const char *s, int64_t *shape, int max_dims)
{
  int   n = 0;
  char *end;

  while (*s)
    {
      long long x;
      errno = 0;
      x = strtoll (s, &end, 10);
      if (errno || end == s || (*end && *end != ',') || x <= 0 || x > (1LL << 31) || n >= max_dims)
        return -1;
      shape[n++] = x;
      s = *end ? end + 1 : end;
    }
  return n > 0 ? n : -1;
}
