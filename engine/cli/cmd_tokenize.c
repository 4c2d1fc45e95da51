/* cmd_tokenize.c — `sd35 tokenize`: the token ids the reference's SD3Tokenizer gives a prompt
 * (CLIP-L and CLIP-G chunk 0, 77 ids each; T5 ids of prompt[:226] + EOS, padded with 0 to at
 * least 77), as one JSON object on stdout:
 *   {"clip_l":[77 ids],"clip_g":[77 ids],"t5":[T ids]}     ("t5":null with --no-t5)
 * The tokenizer files come from --tokenizers DIR alone (no model needed), else from the model
 * (model_find: the release folder's tokenizer/, tokenizer_2/, tokenizer_3/). */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "discover.h"
#include "tokenizer.h"

/* dir/leaf/name for the first leaf that has it (the layouts discover.c accepts for --tokenizers) */
static char *
tok_file (const char *dir, const char *const *leaves, const char *name)
{
  for (int i = 0; leaves[i] != NULL; i++)
    {
      char *p = g_build_filename (dir, leaves[i], name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
        return p;
      g_free (p);
    }
  return NULL;
}

static void
print_ids (const char *name, const int32_t *ids, int n, int last)
{
  printf ("\"%s\":", name);
  if (ids == NULL)
    printf ("null");
  else
    {
      putchar ('[');
      for (int i = 0; i < n; i++)
        printf ("%s%d", i ? "," : "", ids[i]);
      putchar (']');
    }
  printf ("%s", last ? "}\n" : ",");
}

int
cmd_tokenize (int argc, char **argv)
{
  static const char *const clip_leaves[] = { "clip", "tokenizer", "tokenizer_2", ".", NULL };
  static const char *const t5_leaves[] = { "t5", "tokenizer_3", ".", NULL };
  const char             *cmd = "tokenize";
  struct cli_model_opts   m = { 0 };
  const char             *prompt = NULL;
  struct sd35_model_files files = { 0 };
  struct clip_tokenizer  *clip = NULL;
  struct t5_tokenizer    *t5 = NULL;
  struct sd35_tokens      tokens = { 0 };
  struct sd35_error       err = { 0 };
  char                   *vocab = NULL, *merges = NULL, *spiece = NULL, *tjson = NULL;
  int                     rc = 0;
  const struct cli_opt    opts[] = {
    CLI_MODEL_OPTS (m),
    { "prompt", CLI_STR, &prompt, "the prompt (UTF-8); weight syntax like (word:1.2) is parsed "
      "and its weights ignored, as in the reference", NULL },
  };
  int r = cli_parse (argc, argv, cmd,
                     "Prints the CLIP-L, CLIP-G and T5 token ids of a prompt as the SD3.5 "
                     "reference computes them, as one JSON object.  --tokenizers DIR (holding "
                     "clip/ and t5/) is enough; otherwise the model's tokenizer folders are used.",
                     opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if (prompt == NULL)
    {
      cli_fail (cmd, "--prompt TEXT is required (see --help)");
      return 2;
    }
  sd35_log_set_verbose (m.verbose);

  if (m.tokenizers != NULL && m.tokenizers[0] != '\0' && (m.model == NULL || m.model[0] == '\0'))
    {
      if (!g_file_test (m.tokenizers, G_FILE_TEST_IS_DIR))
        return cli_fail (cmd, "--tokenizers %s is not a folder (expected one holding clip/ with "
                         "vocab.json + merges.txt and t5/ with spiece.model or tokenizer.json)",
                         m.tokenizers);
      vocab = tok_file (m.tokenizers, clip_leaves, "vocab.json");
      merges = tok_file (m.tokenizers, clip_leaves, "merges.txt");
      spiece = tok_file (m.tokenizers, t5_leaves, "spiece.model");
      tjson = tok_file (m.tokenizers, t5_leaves, "tokenizer.json");
      if (vocab == NULL || merges == NULL || (!m.no_t5 && spiece == NULL && tjson == NULL))
        {
          rc = cli_fail (cmd, "--tokenizers %s: missing %s (looked in clip/, tokenizer/, "
                         "tokenizer_2/ and t5/, tokenizer_3/ under it)", m.tokenizers,
                         vocab == NULL || merges == NULL ? "CLIP vocab.json + merges.txt"
                                                         : "T5 spiece.model or tokenizer.json");
          goto out;
        }
    }
  else
    {
      struct model_find_options fo = { m.model, m.text_encoders, m.tokenizers, !m.no_t5 };
      if (model_find (&fo, &files, &err) != SD35_OK)
        {
          rc = cli_fail_err (cmd, &err);
          goto out;
        }
      vocab = g_strdup (files.clip_vocab);
      merges = g_strdup (files.clip_merges);
      spiece = g_strdup (files.t5_spiece);
      tjson = g_strdup (files.t5_tokenizer_json);
    }
  sd35_log ("tokenize: CLIP %s + %s, T5 %s", vocab, merges,
            m.no_t5 ? "off" : spiece ? spiece : tjson);

  if (clip_tokenizer_load (vocab, merges, &clip, &err) != SD35_OK ||
      (!m.no_t5 && t5_tokenizer_load (spiece, tjson, &t5, &err) != SD35_OK) ||
      sd3_tokenize (clip, t5, prompt, &tokens, &err) != SD35_OK)
    {
      rc = cli_fail_err (cmd, &err);
      goto out;
    }
  putchar ('{');
  print_ids ("clip_l", tokens.clip_l, SD35_CLIP_TOKENS, 0);
  print_ids ("clip_g", tokens.clip_g, SD35_CLIP_TOKENS, 0);
  print_ids ("t5", tokens.t5, tokens.n_t5, 1);
  if (fflush (stdout) != 0 || ferror (stdout))
    rc = cli_fail (cmd, "cannot write to stdout");

out:
  sd35_tokens_clear (&tokens);
  clip_tokenizer_free (clip);
  t5_tokenizer_free (t5);
  model_files_clear (&files);
  g_free (vocab);
  g_free (merges);
  g_free (spiece);
  g_free (tjson);
  return rc;
}
