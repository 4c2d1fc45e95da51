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
  /* The prompt weight of every token (its segment's weight; BOS, EOS and padding 1), as
   * Python floats: ComfyUI compares them with 1.0 as doubles and multiplies in fp32.
   * clip_weighted / t5_weighted: some weight is not 1, so sd3_condition applies them; 0 in
   * tokens not made by sd3_tokenize and after sd35_tokens_drop_weights. */
  double   clip_weight[SD35_CLIP_TOKENS];  /* chunk 0, shared by CLIP-L and CLIP-G */
  double  *t5_weight;                      /* n_t5 values; malloc'd with t5 */
  int      clip_weighted, t5_weighted;
};

/* Whole SD3 tokenisation of one prompt.  t5 may be NULL (then tokens->t5 = NULL, n_t5 = 0).
 * Invalid UTF-8 is an SD35_ERR_ARG error. */
enum sd35_status sd3_tokenize (const struct clip_tokenizer *clip, const struct t5_tokenizer *t5,
                               const char *prompt, struct sd35_tokens *tokens,
                               struct sd35_error *err);
void sd35_tokens_clear (struct sd35_tokens *tokens);
/* SD35_PROMPT_WEIGHTS_IGNORE: the tokens encode as if every weight were 1 (the reference). */
void sd35_tokens_drop_weights (struct sd35_tokens *tokens);

/* ---- building blocks (also used by the tests and `sd35 tokenize`) ---- */

/* A growable list of token ids. */
struct tok_ids
{
  int32_t *ids;
  size_t   n, cap;
};

/* Appends id; returns 0, or -1 (with err set) when out of memory. */
int  tok_ids_push (struct tok_ids *b, int32_t id, struct sd35_error *err);
void tok_ids_clear (struct tok_ids *b);

/* Python's str.isspace() for one code point (what str.split() splits on). */
int  tok_py_isspace (uint32_t c);

/* One piece of a prompt after the A1111 weight parser (other_impls.py `escape_important`,
 * `token_weights`, `parse_parentheses`, `unescape_important`): the text with its parentheses
 * and ":w" removed, and its weight (which the reference then ignores). */
struct prompt_segment
{
  char  *text;    /* NUL-terminated, malloc'd */
  double weight;
};

/* Parses prompt (len bytes, valid UTF-8) into *segments (n_segments of them; free with
 * prompt_segments_free).  Never fails on syntax: unbalanced or odd input is parsed exactly as
 * the reference does. */
enum sd35_status prompt_parse_weights (const char *prompt, size_t len,
                                       struct prompt_segment **segments, int *n_segments,
                                       struct sd35_error *err);
void prompt_segments_free (struct prompt_segment *segments, int n_segments);

/* For SD35_PROMPT_WEIGHTS_COMFY: SD35_ERR_ARG naming the text and its weight when a weight of
 * prompt is not a finite fp32 number (nan, inf, beyond ±3.4e38).  what: "prompt", "negative
 * prompt".  Invalid UTF-8 passes here (sd3_tokenize reports it). */
enum sd35_status prompt_check_weights (const char *prompt, const char *what,
                                       struct sd35_error *err);

/* CLIP ids of one word as the reference gets them: HF slow CLIPTokenizer(word)["input_ids"]
 * without BOS/EOS, appended to out.  word: valid UTF-8.  Thread-safe (the BPE cache is
 * locked). */
enum sd35_status clip_tokenize_word (const struct clip_tokenizer *tok, const char *word,
                                     struct tok_ids *out, struct sd35_error *err);

/* T5 ids of one word as the reference gets them: T5TokenizerFast(word)["input_ids"] without
 * the final EOS, appended to out.  word: valid UTF-8. */
enum sd35_status t5_tokenize_word (const struct t5_tokenizer *tok, const char *word,
                                   struct tok_ids *out, struct sd35_error *err);

#endif
