/* engine.h — the inside of `struct sd35_engine` (engine-internal): every model part of one
 * SD3.5 model on one backend, and the prompt conditioning with its small cache.
 * engine.c loads and frees it; generate.c runs sd35_generate on it. */
#ifndef SD35_ENGINE_H
#define SD35_ENGINE_H

#include "sd35.h"
#include "error.h"
#include "discover.h"
#include "ops.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "text_encoders.h"
#include "mmdit.h"
#include "vae.h"
#include "taesd.h"
#include "lora.h"

/* One remembered conditioning (the GIMP plug-in re-runs the same prompt with other seeds). */
struct cond_cache_entry
{
  char            *text;  /* NULL = empty slot */
  enum sd35_prompt_weights weights;  /* how text's weights were applied */
  struct sd35_cond cond;
  unsigned         last_use;
};

#define ENGINE_COND_CACHE 4

struct sd35_engine
{
  struct sd35_model_files files;
  struct backend         *be;
  struct st_file         *mmdit_file, *vae_file, *clip_l_file, *clip_g_file, *t5_file;
  struct clip_tokenizer  *clip_tok;
  struct t5_tokenizer    *t5_tok;    /* NULL without T5 */
  struct clip_model      *clip_l, *clip_g;
  struct t5_model        *t5;        /* NULL without T5 */
  struct mmdit           *mmdit;
  struct vae             *vae;
  int                     has_vae_encoder;
  /* TAESD3 step previews (taesd.h, taesd_preview.c); NULL = projection */
  struct taesd           *taesd;
  uint8_t                *taesd_rgb;    /* full-resolution preview buffer */
  size_t                  taesd_n_pix;
  struct sd35_model_info  info;
  char                   *backend_name;

  struct cond_cache_entry cache[ENGINE_COND_CACHE];
  unsigned                use_counter;

  /* memory (sd35_engine_options): text encoders offloaded after use, VAE tiling mode */
  int                     offload_text_encoders;  /* resolved: 0 or 1 */
  int                     vae_tiling;             /* 0 auto, 1 always, -1 never */

  /* LoRA (lora.h): the linear weights of each part by name, and the merged set */
  struct weight_registry *registry[LORA_N_PARTS];
  struct lora_state      *lora;
};

/* The SD3 conditioning of `text` (tokenise + CLIP-L/G [+ T5] + assembly), from the cache when
 * the same text was encoded before.  The returned pointer is owned by the engine and stays
 * valid until the next engine_condition call with another text that evicts it (callers get
 * both prompt and negative first, so the cache holds ≥ 2 entries). */
enum sd35_status engine_condition (struct sd35_engine *e, const char *text,
                                   enum sd35_prompt_weights weights,
                                   const struct sd35_cond **out, struct sd35_error *err);

/* Frees CLIP-L/G and T5 from the backend when offloading is on (engine_condition reloads
 * them from the still-open files when an uncached prompt needs encoding). */
void engine_text_encoders_offload (struct sd35_engine *e);

/* When err holds SD35_ERR_OOM: rewrites its message as "out of memory <where> (<detail>);
 * to use less memory, try …" so a user knows which part ran out and what to change. */
void engine_oom_hint (struct sd35_error *err, const char *where_fmt, ...) SD35_PRINTF (2, 3);

#endif
