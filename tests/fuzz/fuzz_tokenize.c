/* fuzz_tokenize.c — libFuzzer target for both tokenizers on arbitrary prompt bytes: the
 * synthetic CLIP BPE and T5 Unigram tokenizers of the test model (engine/dev/test_model_tok.c,
 * the real files' structure) are loaded once, then every input goes through sd3_tokenize
 * (weights, CLIP-L/G, T5).  Invalid UTF-8 must be refused (SD35_ERR_ARG); anything else must
 * give 77 CLIP ids per encoder starting with BOS and at least 77 T5 ids ending in padding or
 * EOS. */
#include "fuzz_util.h"
#include "test_model.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct clip_tokenizer *clip;
static struct t5_tokenizer   *t5;

static void
load_tokenizers (void)
{
  struct sd35_error err = { 0 };
  char *cdir = g_build_filename (fuzz_dir (), "clip", NULL);
  char *tdir = g_build_filename (fuzz_dir (), "t5", NULL);
  char *v = g_build_filename (cdir, "vocab.json", NULL), *m = g_build_filename (cdir, "merges.txt", NULL);
  char *j = g_build_filename (tdir, "tokenizer.json", NULL);

  g_mkdir_with_parents (cdir, 0755);
  g_mkdir_with_parents (tdir, 0755);
  if (test_model_write_tokenizers (cdir, tdir, &err) != SD35_OK
      || clip_tokenizer_load (v, m, &clip, &err) != SD35_OK
      || t5_tokenizer_load (NULL, j, &t5, &err) != SD35_OK)
    {
      fprintf (stderr, "fuzz_tokenize: %s\n", err.message);
      abort ();
    }
  g_free (cdir);
  g_free (tdir);
  g_free (v);
  g_free (m);
  g_free (j);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sd35_error  err = { 0 };
  struct sd35_tokens tokens;
  char              *prompt = g_strndup ((const char *) data, size);

  if (clip == NULL)
    load_tokenizers ();
  memset (&tokens, 0, sizeof tokens);
  if (sd3_tokenize (clip, t5, prompt, &tokens, &err) != SD35_OK)
    {
      fuzz_check_refusal (&err);
      if (g_utf8_validate (prompt, -1, NULL) && err.status != SD35_ERR_ARG)
        __builtin_trap ();
    }
  else
    {
      if (tokens.clip_l[0] != 49406 || tokens.clip_g[0] != 49406 || tokens.n_t5 < 77
          || tokens.t5 == NULL)
        __builtin_trap ();
      for (int i = 0; i < SD35_CLIP_TOKENS; i++)
        if (tokens.clip_l[i] < 0 || tokens.clip_l[i] >= 49408)
          __builtin_trap ();
    }
  sd35_tokens_clear (&tokens);
  g_free (prompt);
  return 0;
}
