/* prompt_weights.c — the A1111-style weight parser of the reference (other_impls.py
 * `escape_important`, `token_weights`, `parse_parentheses`, `unescape_important`), replicated
 * literally: `(text)` → weight×1.1, `(text:1.3)` → 1.3, `\(` `\)` literal parentheses, a
 * non-float after ':' keeps the whole text, unbalanced ')' make the nesting level negative.
 * The reference then ignores the weights (sd35-facts.md §1.1); cond.c applies them the way
 * ComfyUI does unless SD35_PROMPT_WEIGHTS_IGNORE.
 *
 * Every piece `parse_parentheses` returns is a contiguous slice of its input, so the parser
 * works on (offset, length) slices of one escaped buffer.  All parentheses and ':' are ASCII,
 * so walking UTF-8 bytes is the same as walking Python code points.
 *
 * The reference re-parses every group's inside (quadratic in the nesting depth, and
 * RecursionError beyond ~1000 levels).  Here only the whole prompt is walked literally (the
 * one place the nesting level can go negative); inside a group the level never drops below
 * its start, so its pieces follow from the parenthesis matching, the last ':' before a
 * position and the next parenthesis after one, all precomputed: linear time, same pieces. */
#include "tokenizer.h"

#include <glib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct slice
{
  size_t off, len;
  double weight;
  int    emit;    /* 1: a plain piece to output, 0: a piece to parse */
};

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
      if (c < 128 && c != 0)  /* NUL (an escaped parenthesis) is invalid, as in Python */
        g_string_append_c (a, (char) c);
      else if (tok_py_isspace (c))
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

/* parse_parentheses (other_impls.py), literally, on the slice s of buf: appends the pieces. */
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

/* Precomputed over the escaped buffer (n bytes). */
struct paren_index
{
  size_t *match;       /* '(' at i: index of its ')' (stack matching), else SIZE_MAX */
  size_t *next_paren;  /* smallest j ≥ i with buf[j] '(' or ')', else n; n + 1 entries */
  size_t *last_colon;  /* 1 + the largest j < i with buf[j] == ':', 0 if none; n + 1 entries */
};

static int
paren_index_init (struct paren_index *x, const char *buf, size_t n, struct sd35_error *err)
{
  size_t *stack, depth = 0, bytes;

  if (sd35_mul_size (n + 1, sizeof (size_t), &bytes) != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "prompt of %zu bytes is too long", n), -1;
  x->match = sd35_malloc (bytes, "prompt parser", err);
  x->next_paren = sd35_malloc (bytes, "prompt parser", err);
  x->last_colon = sd35_malloc (bytes, "prompt parser", err);
  stack = sd35_malloc (bytes, "prompt parser", err);
  if (x->match == NULL || x->next_paren == NULL || x->last_colon == NULL || stack == NULL)
    {
      free (stack);
      return -1;
    }
  x->last_colon[0] = 0;
  for (size_t i = 0; i < n; i++)
    {
      x->match[i] = SIZE_MAX;
      if (buf[i] == '(')
        stack[depth++] = i;
      else if (buf[i] == ')' && depth > 0)
        x->match[stack[--depth]] = i;
      x->last_colon[i + 1] = buf[i] == ':' ? i + 1 : x->last_colon[i];
    }
  x->next_paren[n] = n;
  for (size_t i = n; i-- > 0;)
    x->next_paren[i] = buf[i] == '(' || buf[i] == ')' ? i : x->next_paren[i + 1];
  free (stack);
  return 0;
}

static void
paren_index_free (struct paren_index *x)
{
  free (x->match);
  free (x->next_paren);
  free (x->last_colon);
}

/* parse_parentheses on a slice whose nesting level never goes below 0 (a group's inside or a
 * prefix of it): groups come from the matching, plain text is skipped to the next '('. */
static void
parse_parentheses_inner (const char *buf, const struct paren_index *x, struct slice s,
                         GArray *parts)
{
  size_t end = s.off + s.len, i = s.off, cur = s.off;

  while (i < end)
    {
      size_t j = x->next_paren[i] < end ? x->next_paren[i] : end;
      if (j == end)
        break;
      if (buf[j] == ')')
        {
          /* cannot happen inside a group; stay literal if it ever does */
          g_array_set_size (parts, 0);
          parse_parentheses (buf, s, parts);
          return;
        }
      if (j > cur)
        g_array_append_val (parts, ((struct slice) { cur, j - cur, s.weight, 0 }));
      if (x->match[j] != SIZE_MAX && x->match[j] < end)
        {
          g_array_append_val (parts, ((struct slice) { j, x->match[j] + 1 - j, s.weight, 0 }));
          i = cur = x->match[j] + 1;
        }
      else
        {
          /* '(' never closed in this slice: the rest is one trailing piece */
          g_array_append_val (parts, ((struct slice) { j, end - j, s.weight, 0 }));
          i = cur = end;
        }
    }
  if (end > cur)
    g_array_append_val (parts, ((struct slice) { cur, end - cur, s.weight, 0 }));
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
  struct paren_index     index = { 0 };
  int                    first = 1;  /* the first slice parsed is the whole prompt */
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

  if (paren_index_init (&index, buf->str, buf->len, err) != 0)
    {
      g_array_free (stack, TRUE);
      g_array_free (parts, TRUE);
      g_array_free (out, TRUE);
      g_string_free (buf, TRUE);
      return err ? err->status : SD35_ERR_OOM;
    }

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
      if (first)
        parse_parentheses (buf->str, s, parts);  /* the whole prompt: levels may go negative */
      else
        parse_parentheses_inner (buf->str, &index, s, parts);
      first = 0;
      /* pushed in reverse so that the first part comes out first */
      for (guint k = parts->len; k-- > 0;)
        {
          struct slice x = g_array_index (parts, struct slice, k);
          const char  *t = buf->str + x.off;
          if (x.len >= 2 && t[0] == '(' && t[x.len - 1] == ')')
            {
              struct slice inner = { x.off + 1, x.len - 2, s.weight * 1.1, 0 };
              size_t       end = inner.off + inner.len;
              size_t       lc = index.last_colon[end];  /* 1 + x.rfind (":") in buf, or 0 */
              double       w;
              /* rfind > 0 inside; a float never holds a parenthesis (keeps this linear) */
              if (lc > inner.off + 1 && index.next_paren[lc] >= end &&
                  py_float (buf->str + lc, end - lc, &w))
                {
                  inner.weight = w;
                  inner.len = lc - 1 - inner.off;
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
  paren_index_free (&index);
  g_array_free (stack, TRUE);
  g_array_free (parts, TRUE);
  g_array_free (out, TRUE);
  g_string_free (buf, TRUE);
  return st;
}

enum sd35_status
prompt_check_weights (const char *prompt, const char *what, struct sd35_error *err)
{
  struct prompt_segment *segs = NULL;
  int                    n = 0;
  size_t                 len = prompt ? strlen (prompt) : 0;
  enum sd35_status       st;

  if (len == 0 || !g_utf8_validate (prompt, (gssize) len, NULL))
    return SD35_OK;
  st = prompt_parse_weights (prompt, len, &segs, &n, err);
  for (int i = 0; st == SD35_OK && i < n; i++)
    if (!isfinite ((float) segs[i].weight))  /* applied in fp32 */
      {
        /* g_utf8_substring reads past the end when asked for more characters than there
         * are (fuzz_prompt_weights finding, tests/fuzz/corpus_prompt/regress-*) */
        glong chars = g_utf8_strlen (segs[i].text, -1);
        char *text = g_strstrip (g_utf8_substring (segs[i].text, 0, MIN (chars, 40)));
        st = sd35_set_error (err, SD35_ERR_ARG, "%s: the weight of \"%s\" is %g; a weight "
                             "must be a finite number (|w| < 3.4e38), e.g. (%s:1.2); escape "
                             "literal parentheses as \\( \\), or set prompt weights to "
                             "\"ignore\"",
                             what, text, segs[i].weight, text[0] ? text : "word");
        g_free (text);
      }
  prompt_segments_free (segs, n);
  return st;
}
