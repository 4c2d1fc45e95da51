/* text_encoders.h — CLIP-L, CLIP-G and the T5-XXL encoder, and the SD3 conditioning assembly
 * (sd3_infer.py get_cond).  Model code over ops.h; outputs come back as host fp32. */
#ifndef SD35_TEXT_ENCODERS_H
#define SD35_TEXT_ENCODERS_H

#include "ops.h"
#include "safetensors.h"
#include "tokenizer.h"

struct clip_model;  /* CLIP text model (HF CLIPTextModel[WithProjection] keys) */
struct t5_model;    /* T5 v1.1 encoder */

enum clip_kind
{
  CLIP_KIND_L,  /* quick_gelu, pooled NOT projected */
  CLIP_KIND_G   /* gelu (erf), pooled projected by text_projection */
};

/* n_heads 0 = width/64 (sd35-facts.md §10). Dimensions from tensor shapes. */
enum sd35_status clip_load (struct backend *be, struct st_file *file, enum clip_kind kind,
                            int n_heads, struct clip_model **out, struct sd35_error *err);
/* A CLIP of any shape with random weights (vocab 49408, 77 positions), no file: every weight
 * is a slice of one random bf16 pool (weights_random_bf16) that the model keeps, like
 * mmdit_new_random.  For benchmarks; CLIP_KIND_G gets a text_projection [width, width]. */
enum sd35_status clip_new_random (struct backend *be, enum clip_kind kind, int n_layers,
                                  int width, int n_heads, int ff, uint64_t seed,
                                  struct clip_model **out, struct sd35_error *err);
void clip_free (struct clip_model *m);
int  clip_width (const struct clip_model *m);
/* ids [77] → hidden [77, width] (output of layer L−2, no final LN) and pooled [width]
 * (final_ln(last)[argmax(ids)], projected for CLIP-G). */
enum sd35_status clip_encode (struct clip_model *m, const int32_t *ids, float *hidden,
                              float *pooled, struct sd35_error *err);

enum sd35_status t5_load (struct backend *be, struct st_file *file, struct t5_model **out,
                          struct sd35_error *err);
/* The same for the T5 v1.1 encoder (vocab 32128, inner = d_model, gated-gelu FF); the
 * relative-position table [32, n_heads] comes from the pool too. */
enum sd35_status t5_new_random (struct backend *be, int n_layers, int d_model, int n_heads,
                                int d_ff, uint64_t seed, struct t5_model **out,
                                struct sd35_error *err);
void t5_free (struct t5_model *m);
int  t5_width (const struct t5_model *m);
/* Refuses (SD35_ERR_FORMAT) an HF config.json (NULL: nothing to check) whose num_heads is not
 * the weights' head count, or that cannot be read. */
enum sd35_status t5_check_config (const struct t5_model *m, const char *config_json,
                                  struct sd35_error *err);
/* ids [n] → hidden [n, d_model] (final RMS norm of the last block). */
enum sd35_status t5_encode (struct t5_model *m, const int32_t *ids, int n, float *hidden,
                            struct sd35_error *err);

/* The SD3 conditioning of one prompt. */
struct sd35_cond
{
  float *context;  /* [n_ctx, ctx_dim], n_ctx = 77 + T */
  int    n_ctx, ctx_dim;
  float *pooled;   /* [pooled_dim] = cat(clip_l_pooled, clip_g_pooled) */
  int    pooled_dim;
  /* per-encoder outputs kept for `sd35 encode` (NULL t5_hidden without T5) */
  float *clip_l_hidden, *clip_l_pooled, *clip_g_hidden, *clip_g_pooled, *t5_hidden;
  int    clip_l_dim, clip_g_dim, n_t5;
};

/* ctx = cat([pad(cat(l, g), to ctx_dim), t5]); with t5 == NULL the T5 part is 77 rows of zeros
 * (sd35-facts.md §9) and ctx_dim must be given (the MMDiT context_embedder's input width). */
enum sd35_status sd3_condition (struct clip_model *clip_l, struct clip_model *clip_g,
                                struct t5_model *t5, const struct sd35_tokens *tokens,
                                int ctx_dim, struct sd35_cond *out, struct sd35_error *err);
void sd35_cond_clear (struct sd35_cond *c);

#endif
