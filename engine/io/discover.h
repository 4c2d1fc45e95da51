/* discover.h — finding the files of an SD3.5 model and detecting its variant.
 *
 * --model takes the MMDiT single file (sd3.5_large.safetensors, sd3.5_medium.safetensors,
 * sd3.5_large_turbo.safetensors: keys model.diffusion_model.*, VAE under first_stage_model.*)
 * or a folder laid out like the official Hugging Face release (that file at the top,
 * text_encoders/{clip_l,clip_g,t5xxl_fp16,t5xxl_fp8_e4m3fn}.safetensors, tokenizer/,
 * tokenizer_2/ with vocab.json + merges.txt, tokenizer_3/ with spiece.model and/or
 * tokenizer.json), or a diffusers layout (model_index.json, transformer/ and vae/ with
 * diffusion_pytorch_model*.safetensors (sharded: + .index.json), text_encoder{,_2,_3}/ with
 * model*.safetensors, tokenizer{,_2,_3}/; the MMDiT is then transformer/'s file and `vae` is
 * vae/'s; names_diffusers.h maps their keys), either including a Hugging Face cache snapshot.  Empty model path: $SD35_MODEL,
 * then <hub>/models--stabilityai--stable-diffusion-3.5-* for hub = $HF_HUB_CACHE, $HF_HOME/hub,
 * ~/.cache/huggingface/hub in this order.
 * Text encoders are also found beside the MMDiT file or in --text-encoders DIR; tokenizers in
 * --tokenizers DIR holding clip/ and t5/.
 * A .gguf MMDiT (ComfyUI-GGUF / stable-diffusion.cpp conversions, gguf.h) is taken like the
 * single file; as it holds no VAE, the VAE comes from vae.safetensors (or sd3_vae / sd3.5_vae),
 * a vae/ diffusers folder, or an official sd3.5_*.safetensors single file beside it.
 */
#ifndef SD35_MODEL_H
#define SD35_MODEL_H

#include "sd35.h"

struct sd35_model_files
{
  char *mmdit;          /* the MMDiT (+VAE) safetensors (or .index.json) */
  char *vae;            /* separate VAE file if the MMDiT file has none (diffusers vae/), else NULL */
  char *clip_l;         /* text encoder files (NULL if not found) */
  char *clip_g;
  char *t5;
  char *clip_l_config;  /* HF config.json of text_encoder/ (CLIP-L), NULL if none */
  char *clip_g_config;  /* text_encoder_2/config.json */
  char *t5_config;      /* text_encoder_3/config.json */
  char *clip_vocab;     /* vocab.json */
  char *clip_merges;    /* merges.txt */
  char *t5_spiece;      /* spiece.model (NULL if only tokenizer.json) */
  char *t5_tokenizer_json;
  char *searched;       /* human list of the places looked at (for messages) */
  char *missing;        /* "what (names; looked in ...)" items, or NULL when nothing is */
};

struct model_find_options
{
  const char *model_path;        /* may be NULL/"" */
  const char *text_encoders_dir; /* may be NULL */
  const char *tokenizers_dir;    /* may be NULL */
  int         need_t5;           /* 0: a missing T5 is not an error */
};

/* Resolves every file; a missing required one (MMDiT, CLIP-L, CLIP-G, T5 when need_t5,
 * tokenizers) is one SD35_ERR_MISSING error naming what is missing and where it looked.
 * Pickle checkpoints are refused (SD35_ERR_FORMAT). */
enum sd35_status model_find (const struct model_find_options *opts,
                             struct sd35_model_files *out, struct sd35_error *err);
/* The same, but when the MMDiT was found and something else is missing, out keeps what was
 * found (and `missing`) beside the SD35_ERR_MISSING error: for sd35_model_probe. */
enum sd35_status model_find_partial (const struct model_find_options *opts,
                                     struct sd35_model_files *out, struct sd35_error *err);
void model_files_clear (struct sd35_model_files *files);

/* The models discovery would consider, in its order: $SD35_MODEL (when it exists), then every
 * snapshot folder of the Hugging Face cache that holds an MMDiT (the hubs and the order of
 * model_find).  NULL-terminated, g_strfreev. */
char **model_candidates (void);

struct st_file;
/* Variant from the MMDiT keys (attn2 → Medium, no ln_k → SD3 Medium, else Large) and the
 * file name ("turbo" → Large Turbo; for a diffusers transformer/ file the model folder's or
 * the Hugging Face repository's name) or force_turbo.  The keys are the reference names (a
 * diffusers file after names_diffusers_canonical). */
enum sd35_variant model_detect_variant (const struct st_file *mmdit, const char *path,
                                        int force_turbo);

/* Head count from an HF config.json ("num_attention_heads" of CLIP, "num_heads" of T5): 0 when
 * the path is NULL or the file has neither key (caller falls back to width/64, sd35-facts.md
 * §10); -1 with err set when the file cannot be read, is not JSON or the key is not an integer
 * in 1..4096. */
int model_config_heads (const char *config_json_path, struct sd35_error *err);

#endif
