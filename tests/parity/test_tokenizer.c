/* test_tokenizer.c — sd3_tokenize against the reference's SD3Tokenizer.tokenize_with_weights:
 * every prompt of golden/tokenizer_goldens.json (CLIP-L, CLIP-G chunk 0, T5 ids, and the ids
 * of every word), the ids_* tensors of golden/text_*.safetensors, both T5 file formats, and
 * our own cases (empty, whitespace, 500 words, invalid UTF-8, weight syntax), with timings. */
#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "testutil.h"
#include "tokenizer.h"

static struct clip_tokenizer *clip;
static struct t5_tokenizer   *t5_sp, *t5_json;

static int
same_ids (const int32_t *got, size_t n_got, JsonArray *ref)
{
  if (ref == NULL || n_got != json_array_get_length (ref))
    return 0;
  for (size_t i = 0; i < n_got; i++)
    if (got[i] != json_array_get_int_element (ref, (guint) i))
      return 0;
  return 1;
}

static void
print_ids (const char *what, const int32_t *ids, size_t n, JsonArray *ref)
{
  printf ("     %s got:", what);
  for (size_t i = 0; i < n && i < 80; i++)
    printf (" %d", ids[i]);
  printf ("\n     %s ref:", what);
  for (guint i = 0; ref && i < json_array_get_length (ref) && i < 80; i++)
    printf (" %lld", (long long) json_array_get_int_element (ref, i));
  printf ("\n");
}

/* per-word ids (clip_tokenize_word / t5_tokenize_word) and weights (prompt_parse_weights, the
 * words split on ' ' after '\n' → ' ') against the golden "words" */
static int
check_words (JsonObject *p)
{
  JsonArray             *words = json_object_get_array_member (p, "words");
  const char            *prompt = json_object_get_string_member (p, "prompt");
  struct prompt_segment *segs = NULL;
  struct sd35_error      perr = { 0 };
  int                    bad = 0, n_segs = 0;
  guint                  k = 0;

  if (prompt_parse_weights (prompt, strlen (prompt), &segs, &n_segs, &perr) != SD35_OK)
    return 1;
  for (int i = 0; i < n_segs; i++)
    {
      char **w = g_strsplit_set (segs[i].text, " \n", -1);
      for (char **q = w; *q; q++)
        if (**q)
          {
            JsonObject *o = k < json_array_get_length (words) ?
                            json_array_get_object_element (words, k) : NULL;
            if (o == NULL || strcmp (json_object_get_string_member (o, "word"), *q) != 0 ||
                json_object_get_double_member (o, "weight") != segs[i].weight)
              {
                if (bad++ < 3)
                  printf ("     word %u: '%s' weight %.17g differs from the reference\n", k, *q,
                          segs[i].weight);
              }
            k++;
          }
      g_strfreev (w);
    }
  prompt_segments_free (segs, n_segs);
  if (k != json_array_get_length (words))
    bad++;

  for (guint w = 0; w < json_array_get_length (words); w++)
    {
      JsonObject       *o = json_array_get_object_element (words, w);
      const char       *word = json_object_get_string_member (o, "word");
      struct tok_ids    ids = { 0 };
      struct sd35_error err = { 0 };
      JsonArray        *ref_c = json_object_get_array_member (o, "clip_ids");
      JsonArray        *ref_t = json_object_get_array_member (o, "t5_ids");

      if (clip_tokenize_word (clip, word, &ids, &err) != SD35_OK ||
          !same_ids (ids.ids, ids.n, ref_c))
        {
          if (bad++ < 3)
            print_ids (word, ids.ids, ids.n, ref_c);
        }
      ids.n = 0;
      if (t5_tokenize_word (t5_sp, word, &ids, &err) != SD35_OK ||
          !same_ids (ids.ids, ids.n, ref_t))
        {
          if (bad++ < 3)
            print_ids (word, ids.ids, ids.n, ref_t);
        }
      tok_ids_clear (&ids);
    }
  return bad;
}

/* The token weights sd3_tokenize hands to sd3_condition (SD35_PROMPT_WEIGHTS_COMFY): CLIP
 * chunk 0 against the reference's weights_l (its tokenize_with_weights pairs), T5 against the
 * golden words' weights repeated over their T5 ids (when T5 saw every word, i.e. the prompt is
 * under 226 characters), then EOS and padding 1.  Returns the number of differences. */
static int
check_token_weights (JsonObject *p, const struct sd35_tokens *tk)
{
  JsonArray *ref_w = json_array_get_array_element (json_object_get_array_member (p, "weights_l"),
                                                   0);
  JsonArray *words = json_object_get_array_member (p, "words");
  JsonArray *t5_words = json_object_get_array_member (p, "t5_words");
  int        bad = 0, any = 0;
  size_t     k = 0;

  for (guint i = 0; i < SD35_CLIP_TOKENS; i++)
    {
      double ref = json_array_get_double_element (ref_w, i);
      any |= ref != 1.0;
      if (tk->clip_weight[i] != ref && bad++ < 3)
        printf ("     clip token %u: weight %.17g, reference %.17g\n", i, tk->clip_weight[i], ref);
    }
  if (tk->clip_weighted != any && bad++ < 3)
    printf ("     clip_weighted %d, reference has weights: %d\n", tk->clip_weighted, any);
  if (json_array_get_length (t5_words) != json_array_get_length (words))
    return bad;  /* T5 saw prompt[:226] only */
  for (guint w = 0; w < json_array_get_length (words); w++)
    if (strcmp (json_array_get_string_element (t5_words, w),
                json_object_get_string_member (json_array_get_object_element (words, w),
                                               "word")) != 0)
      return bad;  /* a word cut at character 226 */
  any = 0;
  for (guint w = 0; w < json_array_get_length (words); w++)
    {
      JsonObject *o = json_array_get_object_element (words, w);
      double      ref = json_object_get_double_member (o, "weight");
      guint       n = json_array_get_length (json_object_get_array_member (o, "t5_ids"));
      for (guint j = 0; j < n; j++, k++)
        {
          any |= ref != 1.0;
          if ((k >= (size_t) tk->n_t5 || tk->t5_weight[k] != ref) && bad++ < 3)
            printf ("     T5 token %zu: weight %.17g, reference %.17g\n", k,
                    k < (size_t) tk->n_t5 ? tk->t5_weight[k] : 0.0, ref);
        }
    }
  for (; k < (size_t) tk->n_t5; k++)
    if (tk->t5_weight[k] != 1.0 && bad++ < 3)
      printf ("     T5 token %zu (EOS/pad): weight %.17g, not 1\n", k, tk->t5_weight[k]);
  if (tk->t5_weighted != any && bad++ < 3)
    printf ("     t5_weighted %d, reference has weights: %d\n", tk->t5_weighted, any);
  return bad;
}

static void
check_goldens (void)
{
  char       *path = test_shared_path_or_skip ("golden/tokenizer_goldens.json");
  JsonParser *parser = json_parser_new ();
  GError     *gerr = NULL;
  JsonArray  *prompts;

  if (!json_parser_load_from_file (parser, path, &gerr))
    {
      test_check (0, "reading %s: %s", path, gerr->message);
      g_error_free (gerr);
      g_object_unref (parser);
      free (path);
      return;
    }
  prompts = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                          "prompts");
  for (guint i = 0; i < json_array_get_length (prompts); i++)
    {
      JsonObject         *p = json_array_get_object_element (prompts, i);
      const char         *prompt = json_object_get_string_member (p, "prompt");
      JsonArray          *ref_l = json_array_get_array_element (json_object_get_array_member (p, "clip_l"), 0);
      JsonArray          *ref_g = json_array_get_array_element (json_object_get_array_member (p, "clip_g"), 0);
      JsonArray          *ref_t = json_object_get_array_member (p, "t5xxl");
      struct sd35_tokens  tk, tj;
      struct sd35_error   err = { 0 };
      char                label[48];
      int                 ok_l, ok_g, ok_t, ok_j, bad_words, bad_weights;

      g_snprintf (label, sizeof label, "%.40s", prompt);
      for (char *c = label; *c; c++)
        if (*c == '\n' || *c == '\t')
          *c = ' ';
      if (sd3_tokenize (clip, t5_sp, prompt, &tk, &err) != SD35_OK ||
          sd3_tokenize (NULL == clip ? NULL : clip, t5_json, prompt, &tj, &err) != SD35_OK)
        {
          test_check (0, "golden prompt %u '%s': %s", i, label, err.message);
          continue;
        }
      ok_l = same_ids (tk.clip_l, SD35_CLIP_TOKENS, ref_l);
      ok_g = same_ids (tk.clip_g, SD35_CLIP_TOKENS, ref_g);
      ok_t = same_ids (tk.t5, (size_t) tk.n_t5, ref_t);
      ok_j = same_ids (tj.t5, (size_t) tj.n_t5, ref_t);
      bad_words = check_words (p);
      bad_weights = check_token_weights (p, &tk);
      if (!ok_l)
        print_ids ("clip_l", tk.clip_l, SD35_CLIP_TOKENS, ref_l);
      if (!ok_g)
        print_ids ("clip_g", tk.clip_g, SD35_CLIP_TOKENS, ref_g);
      if (!ok_t)
        print_ids ("t5", tk.t5, (size_t) tk.n_t5, ref_t);
      test_check (ok_l && ok_g && ok_t && ok_j && bad_words == 0 && bad_weights == 0,
                  "golden %2u '%s': clip_l %s, clip_g %s, t5 %s (%d ids), t5 via tokenizer.json "
                  "%s, %d word(s) differ, %d token weight(s) differ", i, label,
                  ok_l ? "=" : "DIFF", ok_g ? "=" : "DIFF", ok_t ? "=" : "DIFF", tk.n_t5,
                  ok_j ? "=" : "DIFF", bad_words, bad_weights);
      sd35_tokens_clear (&tk);
      sd35_tokens_clear (&tj);
    }
  g_object_unref (parser);
  free (path);
}

/* ids_clip_l / ids_clip_g / ids_t5 of a text_* golden */
static void
check_text_golden (const char *name)
{
  char                rel[128];
  struct st_file     *f;
  const char         *prompt;
  struct sd35_tokens  tk;
  struct sd35_error   err = { 0 };

  g_snprintf (rel, sizeof rel, "golden/%s.safetensors", name);
  f = test_open_golden (rel);
  prompt = NULL;
  /* the prompt is in the manifest; the tensors carry the ids */
  {
    char       *mpath = test_shared_path_or_skip ("golden/manifest.json");
    JsonParser *parser = json_parser_new ();
    if (json_parser_load_from_file (parser, mpath, NULL))
      {
        JsonArray *g = json_object_get_array_member (
          json_node_get_object (json_parser_get_root (parser)), "goldens");
        for (guint i = 0; i < json_array_get_length (g); i++)
          {
            JsonObject *o = json_array_get_object_element (g, i);
            if (strcmp (json_object_get_string_member_with_default (o, "name", ""), name) == 0)
              prompt = g_strdup (json_object_get_string_member (o, "prompt"));
          }
      }
    g_object_unref (parser);
    free (mpath);
  }
  if (!test_check (prompt != NULL, "%s: prompt found in manifest.json", name) ||
      !test_check (sd3_tokenize (clip, t5_sp, prompt, &tk, &err) == SD35_OK, "%s: tokenize %s",
                   name, err.message))
    {
      st_close (f);
      return;
    }
  {
    static const char *const keys[] = { "ids_clip_l", "ids_clip_g", "ids_t5" };
    for (int k = 0; k < 3; k++)
      {
        const struct st_tensor *t = st_find (f, keys[k]);
        int64_t                *ref = t ? st_read_i64 (t, &err) : NULL;
        const int32_t          *got = k == 0 ? tk.clip_l : k == 1 ? tk.clip_g : tk.t5;
        size_t                  n = k == 2 ? (size_t) tk.n_t5 : SD35_CLIP_TOKENS;
        char                    what[64];
        g_snprintf (what, sizeof what, "%s %s", name, keys[k]);
        if (test_check (ref != NULL && t->numel == n, "%s: %zu ids (reference %zu)", what, n,
                        t ? t->numel : 0))
          test_equal_i32 (what, got, ref, n);
        free (ref);
      }
  }
  sd35_tokens_clear (&tk);
  g_free ((char *) prompt);
  st_close (f);
}

/* ids of the words of text (split on ' '), concatenated */
static void
word_ids (const char *text, int use_t5, struct tok_ids *out)
{
  char            **w = g_strsplit (text, " ", -1);
  struct sd35_error err = { 0 };
  for (char **p = w; *p; p++)
    if (**p)
      {
        if (use_t5)
          t5_tokenize_word (t5_sp, *p, out, &err);
        else
          clip_tokenize_word (clip, *p, out, &err);
      }
  g_strfreev (w);
}

static int
tokens_equal (const char *a, const char *b)
{
  struct sd35_tokens ta, tb;
  struct sd35_error  err = { 0 };
  int                eq;
  if (sd3_tokenize (clip, t5_sp, a, &ta, &err) != SD35_OK)
    return 0;
  if (sd3_tokenize (clip, t5_sp, b, &tb, &err) != SD35_OK)
    return sd35_tokens_clear (&ta), 0;
  eq = memcmp (ta.clip_l, tb.clip_l, sizeof ta.clip_l) == 0 &&
       memcmp (ta.clip_g, tb.clip_g, sizeof ta.clip_g) == 0 && ta.n_t5 == tb.n_t5 &&
       memcmp (ta.t5, tb.t5, (size_t) ta.n_t5 * sizeof *ta.t5) == 0;
  sd35_tokens_clear (&ta);
  sd35_tokens_clear (&tb);
  return eq;
}

static void
check_own (void)
{
  struct sd35_tokens tk;
  struct sd35_error  err = { 0 };
  GString           *p500 = g_string_new (NULL);
  struct tok_ids     ref = { 0 };
  gint64             t0;
  int                ok, n_chunk;

  /* whitespace only: [BOS, EOS, pad…], T5 [EOS, 0…] */
  ok = sd3_tokenize (clip, t5_sp, " \n\t  \n", &tk, &err) == SD35_OK;
  test_check (ok && tk.clip_l[0] == 49406 && tk.clip_l[1] == 49407 && tk.clip_l[76] == 49407 &&
              tk.clip_g[1] == 49407 && tk.clip_g[2] == 0 && tk.n_t5 == 77 && tk.t5[0] == 1 &&
              tk.t5[1] == 0, "whitespace-only prompt: BOS EOS pad / EOS pad");
  sd35_tokens_clear (&tk);

  /* 500 words: CLIP chunk 0 cut at a word boundary, T5 = words of prompt[:226] + EOS */
  for (int i = 0; i < 500; i++)
    g_string_append_printf (p500, "%sq%d%s", i ? " " : "", i, i % 7 == 3 ? "," : "");
  t0 = g_get_monotonic_time ();
  ok = sd3_tokenize (clip, t5_sp, p500->str, &tk, &err) == SD35_OK;
  printf ("     500-word prompt (%zu bytes) tokenised in %.2f ms\n", p500->len,
          (g_get_monotonic_time () - t0) / 1000.0);
  test_check (ok && g_get_monotonic_time () - t0 < 500000, "500-word prompt tokenised in < 0.5 s");
  {
    /* expected chunk 0: whole words while they fit into 75 ids (none has ≥ 8 ids) */
    char **w = g_strsplit (p500->str, " ", -1);
    n_chunk = 0;
    for (char **q = w; *q; q++)
      {
        size_t before = ref.n;
        clip_tokenize_word (clip, *q, &ref, &err);
        if (ref.n - before >= 8)
          test_check (0, "word '%s' has %zu CLIP ids (test assumes < 8)", *q, ref.n - before);
        if (ref.n > 75)
          {
            ref.n = before;
            break;
          }
      }
    g_strfreev (w);
    n_chunk = (int) ref.n;
    ok = ok && tk.clip_l[0] == 49406 && tk.clip_l[n_chunk + 1] == 49407 &&
         memcmp (tk.clip_l + 1, ref.ids, ref.n * sizeof *ref.ids) == 0 &&
         memcmp (tk.clip_g + 1, ref.ids, ref.n * sizeof *ref.ids) == 0;
    for (int k = n_chunk + 2; k < SD35_CLIP_TOKENS; k++)
      ok = ok && tk.clip_l[k] == 49407 && tk.clip_g[k] == 0;
    test_check (ok && n_chunk <= 75, "500 words: CLIP chunk 0 = %d ids of whole words + EOS + pad",
                n_chunk);
  }
  {
    char *cut = g_strndup (p500->str, 226);  /* ASCII: 226 code points = 226 bytes */
    ref.n = 0;
    word_ids (cut, 1, &ref);
    tok_ids_push (&ref, 1, &err);
    test_check (tk.n_t5 == (int) (ref.n > 77 ? ref.n : 77) && ref.n > 77 &&
                memcmp (tk.t5, ref.ids, ref.n * sizeof *ref.ids) == 0,
                "500 words: T5 = %d ids of prompt[:226] + EOS (> 77, not truncated)", tk.n_t5);
    g_free (cut);
  }
  sd35_tokens_clear (&tk);
  tok_ids_clear (&ref);
  g_string_free (p500, TRUE);

  /* prompt[:226] counts code points, not bytes */
  {
    GString *s = g_string_new (NULL);
    for (int i = 0; i < 300; i++)
      g_string_append (s, i % 2 ? "\xc3\xa9" : " ");  /* " é é …" */
    ok = sd3_tokenize (clip, t5_sp, s->str, &tk, &err) == SD35_OK;
    ref.n = 0;
    {
      char *cut = g_strndup (s->str, 113 * 3);  /* 226 code points: 113 × (' ' + 'é') */
      word_ids (cut, 1, &ref);
      g_free (cut);
    }
    tok_ids_push (&ref, 1, &err);
    test_check (ok && tk.n_t5 == (int) (ref.n > 77 ? ref.n : 77) &&
                memcmp (tk.t5, ref.ids, ref.n * 4) == 0,
                "T5 input is prompt[:226] in code points (%zu ids)", ref.n);
    sd35_tokens_clear (&tk);
    tok_ids_clear (&ref);
    g_string_free (s, TRUE);
  }

  /* invalid UTF-8 is a clear SD35_ERR_ARG */
  ok = sd3_tokenize (clip, t5_sp, "a \xff\xfe cat", &tk, &err) == SD35_ERR_ARG;
  test_check (ok && strstr (err.message, "UTF-8") != NULL && tk.t5 == NULL,
              "invalid UTF-8 → SD35_ERR_ARG: %s", err.message);

  /* weight syntax: parentheses and weights vanish, escapes stay literal */
  test_check (tokens_equal ("(a cat:1.3)", "a cat"), "'(a cat:1.3)' = 'a cat'");
  test_check (tokens_equal ("((big))", "big"), "'((big))' = 'big'");
  test_check (tokens_equal ("a (b:xyz) c", "a b:xyz c"), "'a (b:xyz) c' = 'a b:xyz c'");
  test_check (!tokens_equal ("\\(literal\\)", "literal"), "'\\(literal\\)' keeps its parentheses");
  {
    struct tok_ids w = { 0 };
    ok = sd3_tokenize (clip, t5_sp, "\\(literal\\)", &tk, &err) == SD35_OK;
    clip_tokenize_word (clip, "(literal)", &w, &err);
    test_check (ok && memcmp (tk.clip_l + 1, w.ids, w.n * 4) == 0 && tk.clip_l[w.n + 1] == 49407,
                "'\\(literal\\)' = the CLIP ids of the word '(literal)' (%zu ids)", w.n);
    tok_ids_clear (&w);
    sd35_tokens_clear (&tk);
  }
  /* T5 may be absent */
  ok = sd3_tokenize (clip, NULL, "a cat", &tk, &err) == SD35_OK;
  test_check (ok && tk.t5 == NULL && tk.n_t5 == 0 && tk.clip_l[1] == 320,
              "no T5 tokenizer: CLIP ids only");
}

/* `sd35 tokenize --tokenizers DIR --prompt P` prints sd3_tokenize's ids as JSON; bad UTF-8 fails */
static void
check_cli (const char *tok_dir)
{
  const char        *cli = getenv ("SD35_CLI");
  const char        *prompt = "A (photo:1.2) of a cat, \\(escaped\\)";
  char              *argv[] = { (char *) cli, "tokenize", "--tokenizers", (char *) tok_dir,
                                "--prompt", (char *) prompt, NULL };
  char              *out = NULL, *errs = NULL;
  int                status = -1, ok;
  struct sd35_tokens tk;
  struct sd35_error  err = { 0 };
  GString           *want = g_string_new ("{\"clip_l\":[");

  if (cli == NULL || !g_file_test (cli, G_FILE_TEST_IS_EXECUTABLE))
    {
      printf ("     (no $SD35_CLI: sd35 tokenize not checked)\n");
      g_string_free (want, TRUE);
      return;
    }
  if (sd3_tokenize (clip, t5_sp, prompt, &tk, &err) != SD35_OK)
    return;
  for (int i = 0; i < SD35_CLIP_TOKENS; i++)
    g_string_append_printf (want, "%s%d", i ? "," : "", tk.clip_l[i]);
  g_string_append (want, "],\"clip_g\":[");
  for (int i = 0; i < SD35_CLIP_TOKENS; i++)
    g_string_append_printf (want, "%s%d", i ? "," : "", tk.clip_g[i]);
  g_string_append (want, "],\"t5\":[");
  for (int i = 0; i < tk.n_t5; i++)
    g_string_append_printf (want, "%s%d", i ? "," : "", tk.t5[i]);
  g_string_append (want, "]}\n");
  sd35_tokens_clear (&tk);
  ok = g_spawn_sync (NULL, argv, NULL, 0, NULL, NULL, &out, &errs, &status, NULL);
  test_check (ok && g_spawn_check_wait_status (status, NULL) && strcmp (out, want->str) == 0,
              "sd35 tokenize prints the ids as JSON%s%s", errs && *errs ? ": " : "",
              errs ? errs : "");
  g_free (out);
  g_free (errs);
  out = errs = NULL;
  argv[5] = "bad \xff\xfe utf-8";
  ok = g_spawn_sync (NULL, argv, NULL, 0, NULL, NULL, &out, &errs, &status, NULL);
  test_check (ok && !g_spawn_check_wait_status (status, NULL) && strstr (errs, "UTF-8") != NULL &&
              *out == '\0', "sd35 tokenize with invalid UTF-8 fails: %s",
              errs ? g_strchomp (errs) : "(did not run)");
  g_free (out);
  g_free (errs);
  g_string_free (want, TRUE);
}

/* spiece.model cut on a piece boundary parses as a smaller model: it must be refused, not give
 * wrong ids (the NormalizerSpec section that follows the pieces is missing). */
static void
check_truncated_spiece (const char *spiece)
{
  gchar               *data = NULL, *tmp = NULL;
  gsize                len = 0;
  struct t5_tokenizer *t5 = NULL;
  struct sd35_error    err = { 0 };
  int                  fd;

  if (!g_file_get_contents (spiece, &data, &len, NULL) || len < 1000)
    {
      test_check (0, "read %s", spiece);
      g_free (data);
      return;
    }
  fd = g_file_open_tmp ("sd35-test-spiece-XXXXXX", &tmp, NULL);
  if (fd >= 0)
    close (fd);
  if (tmp != NULL && g_file_set_contents (tmp, data, 1000, NULL))
    {
      enum sd35_status st = t5_tokenizer_load (tmp, NULL, &t5, &err);
      test_check (st == SD35_ERR_FORMAT && strstr (err.message, "normalizer") != NULL,
                  "spiece.model cut after 1000 bytes is refused: %s", err.message);
      t5_tokenizer_free (t5);
      g_unlink (tmp);
    }
  else
    test_check (0, "write a temp file");
  g_free (tmp);
  g_free (data);
}

int
main (void)
{
  char             *vocab = test_shared_path_or_skip ("tokenizers/clip/vocab.json");
  char             *merges = test_shared_path_or_skip ("tokenizers/clip/merges.txt");
  char             *spiece = test_shared_path_or_skip ("tokenizers/t5/spiece.model");
  char             *tjson = test_shared_path_or_skip ("tokenizers/t5/tokenizer.json");
  struct sd35_error err = { 0 };
  gint64            t0 = g_get_monotonic_time ();
  double            ms_clip, ms_sp;

  if (!test_check (clip_tokenizer_load (vocab, merges, &clip, &err) == SD35_OK,
                   "CLIP tokenizer loads: %s", err.message))
    return test_exit ();
  ms_clip = (g_get_monotonic_time () - t0) / 1000.0;
  t0 = g_get_monotonic_time ();
  if (!test_check (t5_tokenizer_load (spiece, NULL, &t5_sp, &err) == SD35_OK,
                   "T5 tokenizer loads from spiece.model: %s", err.message))
    return test_exit ();
  ms_sp = (g_get_monotonic_time () - t0) / 1000.0;
  if (!test_check (t5_tokenizer_load (NULL, tjson, &t5_json, &err) == SD35_OK,
                   "T5 tokenizer loads from tokenizer.json: %s", err.message))
    return test_exit ();
  printf ("     load times: CLIP %.0f ms, T5 spiece.model %.0f ms\n", ms_clip, ms_sp);
  test_check (ms_clip < 3000 && ms_sp < 3000, "tokenizers load in < 3 s");

  check_truncated_spiece (spiece);
  check_goldens ();
  check_text_golden ("text_cat");
  check_text_golden ("text_empty");
  check_text_golden ("text_long");
  check_text_golden ("text_many_t5_tokens");
  check_own ();
  {
    char *dir = g_path_get_dirname (vocab);   /* …/tokenizers/clip */
    char *tok_dir = g_path_get_dirname (dir); /* …/tokenizers */
    check_cli (tok_dir);
    g_free (dir);
    g_free (tok_dir);
  }

  clip_tokenizer_free (clip);
  t5_tokenizer_free (t5_sp);
  t5_tokenizer_free (t5_json);
  free (vocab);
  free (merges);
  free (spiece);
  free (tjson);
  return test_exit ();
}
