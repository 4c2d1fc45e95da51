/* fuzz_json.c — libFuzzer target for every JSON file the engine reads, through the readers
 * that read them: the input as an HF config.json (model_config_heads), as a T5 tokenizer.json
 * (t5_tokenizer_load; a loaded one tokenizes a prompt), and as any other JSON such as
 * model_index.json (sd35_json_parse, the depth-bounded parse every reader starts with).  Each
 * must succeed or refuse with a message; a crash, a sanitizer report or a stack overflow on
 * deep nesting is a finding. */
#include "discover.h"
#include "fuzz_util.h"
#include "json_file.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sd35_error    err = { 0 };
  struct t5_tokenizer *t5 = NULL;
  JsonParser          *parser = NULL;
  const char          *p = fuzz_file ("config.json", data, size);
  int                  heads;

  heads = model_config_heads (p, &err);
  if (heads < 0)
    fuzz_check_refusal (&err);
  else if (heads > 4096)
    __builtin_trap ();
  sd35_error_clear (&err);

  if (sd35_json_parse ((const char *) data, size, "fuzz input", &parser, &err) != SD35_OK)
    fuzz_check_refusal (&err);
  else
    g_object_unref (parser);
  sd35_error_clear (&err);

  if (t5_tokenizer_load (NULL, p, &t5, &err) != SD35_OK)
    fuzz_check_refusal (&err);
  else
    {
      struct tok_ids ids = { 0 };
      if (t5_tokenize_word (t5, "a photo of <extra_id_0> 1 cat", &ids, &err) != SD35_OK)
        fuzz_check_refusal (&err);
      tok_ids_clear (&ids);
      t5_tokenizer_free (t5);
    }
  return 0;
}
