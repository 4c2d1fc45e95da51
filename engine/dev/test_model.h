/* test_model.h — a small SD3.5 model with random weights, written in the official release
 * layout (what `sd35 make-test-model` and the tests use when no real model is around):
 *
 *   DIR/sd3.5_large.safetensors | sd3.5_medium.safetensors   model.diffusion_model.* (bf16)
 *                                                           + first_stage_model.* VAE (f16)
 *   DIR/text_encoders/{clip_l,clip_g,t5xxl_fp16}.safetensors (f16, Hugging Face key names)
 *   DIR/text_encoder{,_2,_3}/config.json                     (num_attention_heads, ...)
 *   DIR/tokenizer/, tokenizer_2/ (vocab.json, merges.txt), tokenizer_3/ (spiece.model and/or
 *   tokenizer.json): linked from tokenizers_dir (clip/, t5/) or small synthetic ones
 *   DIR/README.txt
 *
 * Dimensions are those of the goldens' tiny models (MMDiT hidden 128 = 64·depth, depth 2;
 * CLIP-L 48, CLIP-G 64, T5 128; VAE ch 32) so a 256×256 image takes seconds on the CPU.
 * The images mean nothing: the weights are random (with a sane scale, so not NaN). */
#ifndef SD35_TEST_MODEL_H
#define SD35_TEST_MODEL_H

#include <stdint.h>
#include "sd35.h"

struct test_model_options
{
  const char       *out_dir;         /* created if absent */
  const char       *tokenizers_dir;  /* folder with clip/ and t5/, or NULL = synthetic */
  enum sd35_variant variant;         /* SD35_VARIANT_LARGE or SD35_VARIANT_MEDIUM */
  uint64_t          seed;
  int               poison_nan;      /* 1: one MMDiT weight is NaN (tests of SD35_ERR_NAN) */
};

void             test_model_options_init (struct test_model_options *o);
enum sd35_status test_model_write (const struct test_model_options *o, struct sd35_error *err);

/* test_model_tok.c: the synthetic tokenizer files (CLIP byte-level BPE vocab.json +
 * merges.txt with ids 49406/49407 for BOS/EOS as in the real vocab, and a T5 unigram
 * tokenizer.json), into clip_dir and t5_dir. */
enum sd35_status test_model_write_tokenizers (const char *clip_dir, const char *t5_dir,
                                              struct sd35_error *err);

#endif
