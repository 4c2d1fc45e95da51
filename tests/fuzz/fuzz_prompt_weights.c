/* fuzz_prompt_weights.c — libFuzzer target for the prompt-weight parser (engine/text/
 * prompt_weights.c, "(word:1.2)" syntax): any bytes; valid UTF-8 must parse into segments whose
 * texts are valid UTF-8 within the input's length, invalid UTF-8 must be refused. */
#include "fuzz_util.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sd35_error      err = { 0 };
  struct prompt_segment *seg = NULL;
  int                    n = 0;
  char                  *prompt = g_strndup ((const char *) data, size);
  size_t                 len = strlen (prompt);

  if (!g_utf8_validate (prompt, (gssize) len, NULL))
    {
      g_free (prompt);
      return 0;  /* the parser's contract: valid UTF-8 (sd3_tokenize checks first) */
    }
  if (prompt_parse_weights (prompt, len, &seg, &n, &err) != SD35_OK)
    fuzz_check_refusal (&err);
  else
    {
      size_t total = 0;
      for (int i = 0; i < n; i++)
        {
          if (seg[i].text == NULL || !g_utf8_validate (seg[i].text, -1, NULL))
            __builtin_trap ();
          total += strlen (seg[i].text);
        }
      if (total > len)
        __builtin_trap ();
      prompt_segments_free (seg, n);
    }
  sd35_error_clear (&err);
  if (prompt_check_weights (prompt, "prompt", &err) != SD35_OK)
    fuzz_check_refusal (&err);
  g_free (prompt);
  return 0;
}
