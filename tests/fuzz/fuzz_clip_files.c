/* fuzz_clip_files.c — libFuzzer target for the CLIP tokenizer files: the input up to its first
 * NUL byte is vocab.json, the rest merges.txt (clip_tokenizer_load: JSON of piece → id, merges
 * "a b" per line).  Either loads (then tokenizes a prompt) or is refused with a message. */
#include "fuzz_util.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sd35_error      err = { 0 };
  struct clip_tokenizer *clip = NULL;
  const uint8_t         *nul = memchr (data, 0, size);
  size_t                 nv = nul ? (size_t) (nul - data) : size;
  char                  *vocab, *merges;

  vocab = g_strdup (fuzz_file ("vocab.json", data, nv));
  merges = g_strdup (fuzz_file ("merges.txt", nul ? nul + 1 : data, nul ? size - nv - 1 : 0));
  if (clip_tokenizer_load (vocab, merges, &clip, &err) != SD35_OK)
    fuzz_check_refusal (&err);
  else
    {
      struct tok_ids ids = { 0 };
      if (clip_tokenize_word (clip, "photo", &ids, &err) != SD35_OK)
        fuzz_check_refusal (&err);
      tok_ids_clear (&ids);
      clip_tokenizer_free (clip);
    }
  g_free (vocab);
  g_free (merges);
  return 0;
}
