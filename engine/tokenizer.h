/* tokenizer.h — the reference's prompt handling (other_impls.py SD3Tokenizer): weight-syntax
 * parsing, word-by-word tokenisation, CLIP BPE 77-token chunks (CLIP-L pads with EOS 49407,
 * CLIP-G with 0), T5 SentencePiece unigram on prompt[:226] (code points), EOS appended,
 * padded with 0 to at least 77 and never truncated.  See sd35-facts.md §1.1. */
#ifndef SD35_TOKENIZER_H
#define SD35_TOKENIZER_H

#include <stdint.h>
#include "sd35.h"

#define SD35_CLIP_TOKENS 77

struct clip_tokenizer;
struct t5_tokenizer;

enum sd35_status clip_tokenizer_load (const char *vocab_json, const char *merges_txt,
                                      struct clip_tokenizer **out, struct sd35_error *err);
void clip_tokenizer_free (struct clip_tokenizer *tok);

/* spiece_model may be NULL when only tokenizer.json exists (and vice versa). */
enum sd35_status t5_tokenizer_load (const char *spiece_model, const char *tokenizer_json,
                                    struct t5_tokenizer **out, struct sd35_error *err);
void t5_tokenizer_free (struct t5_tokenizer *tok);

struct sd35_tokens
{
  int32_t  clip_l[SD35_CLIP_TOKENS];
  int32_t  clip_g[SD35_CLIP_TOKENS];
  int32_t *t5;      /* n_t5 ids, n_t5 = max(77, n_tokens + 1); malloc'd */
  int      n_t5;
};

/* Whole SD3 tokenisation of one prompt.  t5 may be NULL (then tokens->t5 = NULL, n_t5 = 0).
 * Invalid UTF-8 is an SD35_ERR_ARG error. */
enum sd35_status sd3_tokenize (const struct clip_tokenizer *clip, const struct t5_tokenizer *t5,
                               const char *prompt, struct sd35_tokens *tokens,
                               struct sd35_error *err);
void sd35_tokens_clear (struct sd35_tokens *tokens);

#endif
