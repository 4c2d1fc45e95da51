/* test_tokenizer_own.c — the A1111 weight parser (prompt_weights.c) against the reference's
 * token_weights/parse_parentheses (other_impls.py), and the id list helper.  Expected values
 * were produced by running the reference functions in Python (copied verbatim). */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer.h"

struct seg
{
  const char *text;
  double      weight;
};

struct weight_case
{
  const char *prompt;
  int         n;
  struct seg  segs[6];
};

static const struct weight_case cases[] = {
  { "(a cat:1.3)", 1, { { "a cat", 1.3 } } },
  { "((big))", 1, { { "big", 1.2100000000000002 } } },
  { "\\(literal\\)", 1, { { "(literal)", 1.0 } } },
  { "a (b:xyz) c", 3, { { "a ", 1.0 }, { "b:xyz", 1.1 }, { " c", 1.0 } } },
  { "a) b (c", 1, { { "a) b (c", 1.0 } } },
  { "(:1.5)", 1, { { ":1.5", 1.1 } } },
  { "(a:1_0)", 1, { { "a", 10.0 } } },
  { "(a: 2 )", 1, { { "a", 2.0 } } },
  { "(a:1e)", 1, { { "a:1e", 1.1 } } },
  { "x\\(y)", 1, { { "x(y)", 1.0 } } },
  { "((a)", 1, { { "(a", 1.1 } } },
  { "(a))(b", 2, { { "a", 1.1 }, { ")(b", 1.0 } } },
  { "a:1.2", 1, { { "a:1.2", 1.0 } } },
  { "(a:1.2:1.3)", 1, { { "a:1.2", 1.3 } } },
  { "(a:\xef\xbc\x91\xef\xbc\x95)", 1, { { "a", 15.0 } } },      /* fullwidth digits */
  { "(a:1__0)", 1, { { "a:1__0", 1.1 } } },
  { "(a:-inf)", 1, { { "a", -INFINITY } } },
  { "(a:+.5e-1)", 1, { { "a", 0.05 } } },
  { "()", 0, { { NULL, 0 } } },
  { "(())", 0, { { NULL, 0 } } },
  { "\\\\)x(", 2, { { "\\)x", 1.0 }, { "(", 1.0 } } },
  { "(masterpiece:1.2), best quality, (red:0.8) hat, ((very detailed)), [not a weight]", 6,
    { { "masterpiece", 1.2 }, { ", best quality, ", 1.0 }, { "red", 0.8 }, { " hat, ", 1.0 },
      { "very detailed", 1.2100000000000002 }, { ", [not a weight]", 1.0 } } },
  { "(a:1.)", 1, { { "a", 1.0 } } },
  { "(a:.)", 1, { { "a:.", 1.1 } } },
  { "(a\xe3\x80\x80:\xe3\x80\x80" "1.5\xe3\x80\x80)", 1, { { "a\xe3\x80\x80", 1.5 } } },
  { "((a:0.5) b:2)", 2, { { "a", 0.5 }, { " b", 2.0 } } },
  { "", 0, { { NULL, 0 } } },
  { "e(5:1\\))", 2, { { "e", 1.0 }, { "5:1)", 1.1 } } },   /* "\\)" is no float digit */
  { "(a:2\\)", 1, { { "(a:2)", 1.0 } } },
  { "((((:1)))", 1, { { "(", 1.0 } } },
  { "(a:1)(b:2)c((d))", 4, { { "a", 1.0 }, { "b", 2.0 }, { "c", 1.0 }, { "d", 1.2100000000000002 } } },
};

static void
check_case (const struct weight_case *c)
{
  struct prompt_segment *segs = NULL;
  struct sd35_error      err = { 0 };
  int                    n = -1, ok;

  if (prompt_parse_weights (c->prompt, strlen (c->prompt), &segs, &n, &err) != SD35_OK)
    {
      test_check (0, "parse '%s': %s", c->prompt, err.message);
      return;
    }
  ok = n == c->n;
  for (int i = 0; ok && i < n; i++)
    ok = strcmp (segs[i].text, c->segs[i].text) == 0 &&
         (segs[i].weight == c->segs[i].weight ||
          fabs (segs[i].weight - c->segs[i].weight) <= 1e-15 * fabs (c->segs[i].weight));
  if (!ok)
    {
      printf ("     got:");
      for (int i = 0; i < n; i++)
        printf (" ['%s' %.17g]", segs[i].text, segs[i].weight);
      printf ("\n");
    }
  test_check (ok, "weights of '%s' → %d segment(s)", c->prompt, c->n);
  prompt_segments_free (segs, n);
}

int
main (void)
{
  struct tok_ids    ids = { 0 };
  struct sd35_error err = { 0 };
  int               ok = 1;
  char             *deep;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case (&cases[i]);

  /* 200000 nested parentheses: no recursion, one segment "x" */
  deep = g_malloc (400002);
  memset (deep, '(', 200000);
  deep[200000] = 'x';
  memset (deep + 200001, ')', 200000);
  deep[400001] = '\0';
  {
    struct prompt_segment *segs = NULL;
    int                    n = 0;
    enum sd35_status       st = prompt_parse_weights (deep, strlen (deep), &segs, &n, &err);
    test_check (st == SD35_OK && n == 1 && strcmp (segs[0].text, "x") == 0,
                "200000 nested parentheses parse to one segment 'x'");
    prompt_segments_free (segs, n);
  }
  g_free (deep);

  for (int i = 0; i < 100000 && ok; i++)
    ok = tok_ids_push (&ids, i, &err) == 0 && ids.ids[i] == i;
  test_check (ok && ids.n == 100000, "tok_ids_push grows to 100000 ids");
  tok_ids_clear (&ids);
  test_check (ids.ids == NULL && ids.n == 0, "tok_ids_clear empties the list");
  return test_exit ();
}
