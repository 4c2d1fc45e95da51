/* prompt_weights.c — the A1111-style weight parser of the reference (other_impls.py
 * `escape_important`, `token_weights`, `parse_parentheses`, `unescape_important`), replicated
 * literally: `(text)` → weight×1.1, `(text:1.3)` → 1.3, `\(` `\)` literal parentheses, a
 * non-float after ':' keeps the whole text, unbalanced ')' make the nesting level negative.
 * The reference then ignores the weights (sd35-facts.md §1.1); only the text matters.
 *
 * Every piece `parse_parentheses` returns is a contiguous slice of its input, so the parser
 * works on (offset, length) slices of one escaped buffer.  All parentheses and ':' are ASCII,
 * so walking UTF-8 bytes is the same as walking Python code points. */
#include "tokenizer.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct slice
{
  size_t off, len;
  double weight;
  int    emit;    /* 1: a plain piece to output, 0: a piece to parse */
};

/* Python's str.isspace() */
static int
py_isspace (gunichar c)
{
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

static int
ascii_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Does s (ASCII, no underscores, no surrounding space) fully parse as PyOS_string_to_double? */
static int
py_float_grammar (const char *s)
{
  const char *p = s;
  int         digits = 0;

  if (*p == '+' || *p == '-')
    p++;
  if (g_ascii_strcasecmp (p, "inf") == 0 || g_ascii_strcasecmp (p, "infinity") == 0 ||
      g_ascii_strcasecmp (p, "nan") == 0)
    return 1;
  while (g_ascii_isdigit (*p))
    p++, digits++;
  if (*p == '.')
    for (p++; g_ascii_isdigit (*p); p++)
      digits++;
  if (digits == 0)
    return 0;
  if (*p == 'e' || *p == 'E')
    {
      p++;
      if (*p == '+' || *p == '-')
        p++;
      if (!g_ascii_isdigit (*p))
        return 0;
      while (g_ascii_isdigit (*p))
        p++;
    }
  return *p == '\0';
}

/* Python float(text): returns 1 and the value when it would succeed, 0 when it would raise.
 * Mirrors float_from_string_inner: Unicode spaces → ' ', Unicode decimal digits → ASCII, any
 * other non-ASCII char invalid; underscores only between digits; surrounding space stripped. */
static int
py_float (const char *text, size_t len, double *out)
{
  GString    *a = g_string_sized_new (len + 1);
  const char *p = text, *end = text + len;
  char       *s, *e;
  int         ok = 1;

  for (; p < end; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      int      d;
      if (c < 128)
        g_string_append_c (a, (char) c);
      else if (py_isspace (c))
        g_string_append_c (a, ' ');
      else if ((d = g_unichar_digit_value (c)) >= 0)
        g_string_append_c (a, (char) ('0' + d));
      else
        g_string_append_c (a, '?');
    }
  /* underscores: only after a digit and before a digit, never last */
  if (strchr (a->str, '_') != NULL)
    {
      char prev = '\0';
      char *w = a->str;
      for (const char *r = a->str; *r; r++)
        {
          if (*r == '_' ? !g_ascii_isdigit (prev) : (prev == '_' && !g_ascii_isdigit (*r)))
            ok = 0;
          if (*r != '_')
            *w++ = *r;
          prev = *r;
        }
      *w = '\0';
      if (prev == '_')
        ok = 0;
    }
  s = a->str;
  e = s + strlen (s);
  while (s < e && ascii_space (*s))
    s++;
  while (e > s + 1 && ascii_space (e[-1]))
    e--;
  *e = '\0';
  if (ok && py_float_grammar (s))
    *out = g_ascii_strtod (s, NULL);
  else
    ok = 0;
  g_string_free (a, TRUE);
  return ok;
}

/* parse_parentheses (other_impls.py), on the slice s of buf: appends the pieces to parts. */
static void
parse_parentheses (const char *buf, struct slice s, GArray *parts)
{
  size_t cur = s.off, cur_len = 0;
  long   nesting = 0;

  for (size_t i = s.off; i < s.off + s.len; i++)
    {
      char ch = buf[i];
      if (ch == '(')
        {
          if (nesting == 0)
            {
              if (cur_len)
                g_array_append_val (parts, ((struct slice) { cur, cur_len, s.weight, 0 }));
              cur = i, cur_len = 1;
            }
          else
            cur_len++;
          nesting++;
        }
      else if (ch == ')')
        {
          nesting--;
          if (nesting == 0)
            {
              g_array_append_val (parts, ((struct slice) { cur, cur_len + 1, s.weight, 0 }));
              cur = i + 1, cur_len = 0;
            }
          else
            cur_len++;
        }
      else
        cur_len++;
    }
  if (cur_len)
    g_array_append_val (parts, ((struct slice) { cur, cur_len, s.weight, 0 }));
}

/* unescape_important: "\0\1" → ')', "\0\2" → '(' */
static char *
unescape (const char *buf, struct slice s, struct sd35_error *err)
{
  char  *out = sd35_malloc (s.len + 1, "prompt segment", err);
  size_t n = 0;

  if (out == NULL)
    return NULL;
  for (size_t i = s.off; i < s.off + s.len; i++)
    {
      if (buf[i] == '\0' && i + 1 < s.off + s.len && (buf[i + 1] == 1 || buf[i + 1] == 2))
        {
          out[n++] = buf[i + 1] == 1 ? ')' : '(';
          i++;
        }
      else
        out[n++] = buf[i];
    }
  out[n] = '\0';
  return out;
}

void
prompt_segments_free (struct prompt_segment *segments, int n_segments)
{
  if (segments == NULL)
    return;
  for (int i = 0; i < n_segments; i++)
    free (segments[i].text);
  free (segments);
}

enum sd35_status
prompt_parse_weights (const char *prompt, size_t len, struct prompt_segment **segments,
                      int *n_segments, struct sd35_error *err)
{
  GArray *stack = g_array_new (FALSE, FALSE, sizeof (struct slice));
  GArray *parts = g_array_new (FALSE, FALSE, sizeof (struct slice));
  GArray *out = g_array_new (FALSE, FALSE, sizeof (struct slice));
  GString *buf = g_string_sized_new (len + 1);
  struct prompt_segment *segs = NULL;
  enum sd35_status st = SD35_OK;

  *segments = NULL;
  *n_segments = 0;
  /* escape_important: "\\)" → "\0\1", then "\\(" → "\0\2" (two passes, as in Python) */
  for (size_t i = 0; i < len; i++)
    if (prompt[i] == '\\' && i + 1 < len && prompt[i + 1] == ')')
      g_string_append_len (buf, "\0\1", 2), i++;
    else
      g_string_append_c (buf, prompt[i]);
  for (size_t i = 0; i + 1 < buf->len; i++)
    if (buf->str[i] == '\\' && buf->str[i + 1] == '(')
      buf->str[i] = '\0', buf->str[i + 1] = 2;

  /* token_weights, depth first with an explicit stack (a prompt of many '(' must not exhaust
   * the C stack; Python would raise RecursionError there instead). */
  g_array_append_val (stack, ((struct slice) { 0, buf->len, 1.0, 0 }));
  while (stack->len > 0)
    {
      struct slice s = g_array_index (stack, struct slice, stack->len - 1);
      g_array_set_size (stack, stack->len - 1);
      if (s.emit)
        {
          g_array_append_val (out, s);
          continue;
        }
      g_array_set_size (parts, 0);
      parse_parentheses (buf->str, s, parts);
      /* pushed in reverse so that the first part comes out first */
      for (guint k = parts->len; k-- > 0;)
        {
          struct slice x = g_array_index (parts, struct slice, k);
          const char  *t = buf->str + x.off;
          if (x.len >= 2 && t[0] == '(' && t[x.len - 1] == ')')
            {
              struct slice inner = { x.off + 1, x.len - 2, s.weight * 1.1, 0 };
              size_t       colon = 0;  /* x.rfind (":") > 0, as an offset into inner */
              double       w;
              for (size_t j = inner.len; j-- > 0;)
                if (buf->str[inner.off + j] == ':')
                  {
                    colon = j;
                    break;
                  }
              if (colon > 0 &&
                  py_float (buf->str + inner.off + colon + 1, inner.len - colon - 1, &w))
                {
                  inner.weight = w;
                  inner.len = colon;
                }
              g_array_append_val (stack, inner);
            }
          else
            {
              x.weight = s.weight;
              x.emit = 1;
              g_array_append_val (stack, x);
            }
        }
    }

  if (out->len > 0)
    segs = sd35_calloc (out->len, sizeof *segs, "prompt segments", err);
  if (out->len > 0 && segs == NULL)
    st = SD35_ERR_OOM;
  for (guint k = 0; st == SD35_OK && k < out->len; k++)
    {
      struct slice x = g_array_index (out, struct slice, k);
      segs[k].weight = x.weight;
      segs[k].text = unescape (buf->str, x, err);
      if (segs[k].text == NULL)
        st = SD35_ERR_OOM;
    }
  if (st == SD35_OK)
    {
      *segments = segs;
      *n_segments = (int) out->len;
    }
  else
    prompt_segments_free (segs, (int) out->len);
  g_array_free (stack, TRUE);
  g_array_free (parts, TRUE);
  g_array_free (out, TRUE);
  g_string_free (buf, TRUE);
  return st;
}
