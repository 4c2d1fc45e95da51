/* fuzz_spiece.c — libFuzzer target for spiece.model (the SentencePiece protobuf reader of
 * engine/text/t5_unigram_load.c): the input must load (then tokenize a prompt) or be refused
 * with a message. */
#include "fuzz_util.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sd35_error    err = { 0 };
  struct t5_tokenizer *t5 = NULL;
  const char          *p = fuzz_file ("spiece.model", data, size);

  if (t5_tokenizer_load (p, NULL, &t5, &err) != SD35_OK)
    {
      fuzz_check_refusal (&err);
      return 0;
    }
  {
    struct tok_ids ids = { 0 };
    if (t5_tokenize_word (t5, "A photo\tof  1 cat, </s> <extra_id_99>", &ids, &err) != SD35_OK)
      fuzz_check_refusal (&err);
    tok_ids_clear (&ids);
  }
  t5_tokenizer_free (t5);
  return 0;
}
