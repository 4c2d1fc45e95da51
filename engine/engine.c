/* engine.c — opening an SD3.5 model: finding its files (discover.h), choosing the backend,
 * loading tokenizers, CLIP-L, CLIP-G, T5 (only with use_t5), the MMDiT and the VAE, and
 * checking that the parts fit together.  Also the prompt conditioning cache, the text
 * encoders' offloading (freed from the backend after use, reloaded from the still-open files
 * for a new prompt) and the out-of-memory hint.  sd35_generate is in generate.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "names_diffusers.h"

static const char *
prefix_of (const struct st_file *f, const char *official)
{
  /* The official single files use "model.diffusion_model." / "first_stage_model."; a file
   * holding just the part (no prefix) is accepted too. */
  return st_has_prefix (f, official) ? official : "";
}

static enum sd35_status
open_file (const char *path, const char *what, struct st_file **out, struct sd35_error *err)
{
  if (st_open (path, out, err) != SD35_OK)
    {
      sd35_error_prefix (err, "opening the %s", what);
      return err->status;
    }
  /* a diffusers transformer/ or vae/ file is seen under the reference names from here on
   * (names_diffusers.h); any other file is left as it is */
  if (names_diffusers_canonical (out, err) != SD35_OK)
    {
      sd35_error_prefix (err, "reading the %s (diffusers layout)", what);
      return err->status;
    }
  sd35_log ("%s: %s", what, path);
  return SD35_OK;
}

/* CLIP-L, CLIP-G and (when its file is open) T5 onto the backend from their open files; at
 * open and again after engine_text_encoders_offload. */
static enum sd35_status
load_text_encoder_weights (struct sd35_engine *e, struct sd35_error *err)
{
  const struct sd35_model_files *f = &e->files;
  int                            heads;
  unsigned                       reloaded = 0;

  reloaded |= e->clip_l == NULL ? 1u << LORA_CLIP_L : 0;
  reloaded |= e->clip_g == NULL ? 1u << LORA_CLIP_G : 0;
  reloaded |= e->t5_file != NULL && e->t5 == NULL ? 1u << LORA_T5 : 0;

  heads = e->clip_l == NULL && f->clip_l_config ? model_config_heads (f->clip_l_config, err) : 0;
  if (heads < 0)
    return err->status;
  if (e->clip_l == NULL &&
      clip_load (e->be, e->clip_l_file, CLIP_KIND_L, heads, &e->clip_l, err) != SD35_OK)
    {
      engine_oom_hint (err, "while loading CLIP-L");
      sd35_error_prefix (err, "loading CLIP-L (%s)", f->clip_l);
      return err->status;
    }
  heads = e->clip_g == NULL && f->clip_g_config ? model_config_heads (f->clip_g_config, err) : 0;
  if (heads < 0)
    return err->status;
  if (e->clip_g == NULL &&
      clip_load (e->be, e->clip_g_file, CLIP_KIND_G, heads, &e->clip_g, err) != SD35_OK)
    {
      engine_oom_hint (err, "while loading CLIP-G");
      sd35_error_prefix (err, "loading CLIP-G (%s)", f->clip_g);
      return err->status;
    }
  if (e->t5_file != NULL && e->t5 == NULL
      && (t5_load (e->be, e->t5_file, &e->t5, err) != SD35_OK
          || t5_check_config (e->t5, f->t5_config, err) != SD35_OK))
    {
      engine_oom_hint (err, "while loading T5-XXL");
      sd35_error_prefix (err, "loading T5-XXL (%s)", f->t5);
      return err->status;
    }
  /* back after an offload: the LoRA set goes into the fresh weights again */
  if (reloaded != 0 && e->lora != NULL &&
      lora_reapply (e->lora, e->be, e->registry, reloaded, err) != SD35_OK)
    {
      engine_oom_hint (err, "while merging LoRAs into the text encoders");
      return err->status;
    }
  return SD35_OK;
}

void
engine_text_encoders_offload (struct sd35_engine *e)
{
  if (!e->offload_text_encoders || (e->clip_l == NULL && e->clip_g == NULL && e->t5 == NULL))
    return;
  t5_free (e->t5);
  clip_free (e->clip_g);
  clip_free (e->clip_l);
  e->t5 = NULL;
  e->clip_g = e->clip_l = NULL;
  weight_registry_clear (e->registry[LORA_CLIP_L]);
  weight_registry_clear (e->registry[LORA_CLIP_G]);
  weight_registry_clear (e->registry[LORA_T5]);
  sd35_log ("text encoders offloaded (backend memory in use: %zu MiB)",
            e->be->bytes_in_use >> 20);
}

/* Worded for both the GIMP dialog and the CLI. */
#define OOM_HINT "to use less memory, try turning off T5 (--no-t5, or \"Use T5\" in the " \
                 "dialog), a smaller image size, fewer images per batch, or fp8 weights"

void
engine_oom_hint (struct sd35_error *err, const char *where_fmt, ...)
{
  char    where[256], old[sizeof err->message];
  va_list ap;

  if (err == NULL || err->status != SD35_ERR_OOM || strstr (err->message, "to use less memory"))
    return;  /* not an OOM, or already explained by an inner stage */
  va_start (ap, where_fmt);
  vsnprintf (where, sizeof where, where_fmt, ap);
  va_end (ap);
  memcpy (old, err->message, sizeof old);
  snprintf (err->message, sizeof err->message, "out of memory %s (%.480s); " OOM_HINT, where,
            old);
}

static enum sd35_status
load_text_encoders (struct sd35_engine *e, int use_t5, struct sd35_error *err)
{
  const struct sd35_model_files *f = &e->files;

  if (clip_tokenizer_load (f->clip_vocab, f->clip_merges, &e->clip_tok, err) != SD35_OK)
    {
      sd35_error_prefix (err, "loading the CLIP tokenizer (%s)", f->clip_vocab);
      return err->status;
    }
  if (use_t5 &&
      t5_tokenizer_load (f->t5_spiece, f->t5_tokenizer_json, &e->t5_tok, err) != SD35_OK)
    {
      sd35_error_prefix (err, "loading the T5 tokenizer (%s)",
                         f->t5_spiece ? f->t5_spiece : f->t5_tokenizer_json);
      return err->status;
    }

  if (open_file (f->clip_l, "CLIP-L text encoder", &e->clip_l_file, err) != SD35_OK ||
      open_file (f->clip_g, "CLIP-G text encoder", &e->clip_g_file, err) != SD35_OK)
    return err->status;
  if (use_t5 && open_file (f->t5, "T5-XXL text encoder", &e->t5_file, err) != SD35_OK)
    return err->status;  /* without use_t5, T5's weights are never opened */
  st_file_set_registry (e->clip_l_file, e->registry[LORA_CLIP_L]);
  st_file_set_registry (e->clip_g_file, e->registry[LORA_CLIP_G]);
  if (e->t5_file != NULL)
    st_file_set_registry (e->t5_file, e->registry[LORA_T5]);
  return load_text_encoder_weights (e, err);
}

static enum sd35_status
load_diffusion (struct sd35_engine *e, int force_turbo, struct sd35_error *err)
{
  const struct sd35_model_files *f = &e->files;
  const char                    *vae_prefix;

  if (open_file (f->mmdit, "MMDiT", &e->mmdit_file, err) != SD35_OK)
    return err->status;
  {
    /* a GGUF says which model family it holds (ComfyUI-GGUF: "sd3", "flux", "sdxl" ...) */
    const char *arch = st_metadata (e->mmdit_file, "general.architecture");
    if (arch != NULL && strcmp (arch, "sd3") != 0 && strcmp (arch, "sd3.5") != 0)
      return sd35_set_error (err, SD35_ERR_FORMAT, "%s holds a \"%s\" model (its "
                             "general.architecture), not SD3 / SD3.5: use an SD3.5 .gguf "
                             "(sd3.5_large / sd3.5_large_turbo / sd3.5_medium)", f->mmdit, arch);
  }
  e->info.variant = model_detect_variant (e->mmdit_file, f->mmdit, force_turbo);
  st_file_set_registry (e->mmdit_file, e->registry[LORA_MMDIT]);
  if (mmdit_load (e->be, e->mmdit_file, prefix_of (e->mmdit_file, "model.diffusion_model."),
                  &e->mmdit, err) != SD35_OK)
    {
      engine_oom_hint (err, "while loading the MMDiT");
      sd35_error_prefix (err, "loading the MMDiT (%s)", f->mmdit);
      return err->status;
    }

  if (f->vae != NULL)
    {
      if (open_file (f->vae, "VAE", &e->vae_file, err) != SD35_OK)
        return err->status;
    }
  else if (!st_has_prefix (e->mmdit_file, "first_stage_model.decoder."))
    return sd35_set_error (err, SD35_ERR_MISSING,
                           "%s holds no VAE (no first_stage_model.* tensors) and no separate "
                           "VAE file was found; use the official single-file release "
                           "(sd3.5_large.safetensors / sd3.5_medium.safetensors), which "
                           "includes it", f->mmdit);
  {
    struct st_file *vf = e->vae_file ? e->vae_file : e->mmdit_file;
    const char     *path = f->vae ? f->vae : f->mmdit;
    char            enc[64];

    vae_prefix = prefix_of (vf, "first_stage_model.");
    snprintf (enc, sizeof enc, "%sencoder.", vae_prefix);
    e->has_vae_encoder = st_has_prefix (vf, enc);
    if (vae_load (e->be, vf, vae_prefix, e->has_vae_encoder, &e->vae, err) != SD35_OK)
      {
        engine_oom_hint (err, "while loading the VAE");
        sd35_error_prefix (err, "loading the VAE (%s)", path);
        return err->status;
      }
  }
  return SD35_OK;
}

/* The parts must agree: pooled = CLIP-L ⊕ CLIP-G widths = the MMDiT's y_embedder input; the
 * CLIP hidden states are zero-padded to, and T5 produces, the context_embedder input. */
static enum sd35_status
check_fit (struct sd35_engine *e, struct sd35_error *err)
{
  const struct mmdit_config *c = mmdit_get_config (e->mmdit);
  int                        wl = clip_width (e->clip_l), wg = clip_width (e->clip_g);

  if (wl + wg != c->adm_in_channels)
    return sd35_set_error (err, SD35_ERR_SHAPE,
                           "the text encoders do not fit the MMDiT: CLIP-L width %d + CLIP-G "
                           "width %d = %d, but the MMDiT's y_embedder expects %d (%s, %s, %s); "
                           "are they from the same model release?", wl, wg, wl + wg,
                           c->adm_in_channels, e->files.clip_l, e->files.clip_g,
                           e->files.mmdit);
  if (wl + wg > c->context_dim)
    return sd35_set_error (err, SD35_ERR_SHAPE,
                           "the CLIP hidden states (%d wide) do not fit the MMDiT's context "
                           "width %d (%s)", wl + wg, c->context_dim, e->files.mmdit);
  if (e->t5 != NULL && t5_width (e->t5) != c->context_dim)
    return sd35_set_error (err, SD35_ERR_SHAPE,
                           "T5 width %d does not match the MMDiT's context_embedder input %d "
                           "(%s, %s)", t5_width (e->t5), c->context_dim, e->files.t5,
                           e->files.mmdit);
  return SD35_OK;
}

enum sd35_status
sd35_engine_open (const struct sd35_engine_options *opts, sd35_engine **out,
                  struct sd35_error *err)
{
  struct sd35_engine_options defaults;
  struct model_find_options  find;
  struct sd35_engine        *e;
  const struct mmdit_config *c;
  struct sd35_error          local_err;

  if (err == NULL)
    err = &local_err;
  sd35_error_clear (err);
  *out = NULL;
  if (opts == NULL)
    {
      sd35_engine_options_init (&defaults);
      opts = &defaults;
    }
  if (opts->verbose)
    sd35_log_set_verbose (1);

  e = sd35_calloc (1, sizeof *e, "the engine", err);
  if (e == NULL)
    return err->status;

  memset (&find, 0, sizeof find);
  find.model_path = opts->model_path;
  find.text_encoders_dir = opts->text_encoders_dir;
  find.tokenizers_dir = opts->tokenizers_dir;
  find.need_t5 = opts->use_t5;
  if (model_find (&find, &e->files, err) != SD35_OK)
    goto fail;

  if (backend_new (opts->backend, opts->n_threads, &e->be, err) != SD35_OK)
    goto fail;
  e->offload_text_encoders = opts->offload_text_encoders < 0
                               ? e->be->device_memory
                               : opts->offload_text_encoders != 0;
  e->vae_tiling = opts->vae_tiling;
  for (int p = 0; p < LORA_N_PARTS; p++)
    e->registry[p] = weight_registry_new ();
  e->lora = lora_state_new ();

  if (load_diffusion (e, opts->force_turbo, err) != SD35_OK ||
      load_text_encoders (e, opts->use_t5, err) != SD35_OK ||
      check_fit (e, err) != SD35_OK)
    goto fail;
  /* optional TAESD3 preview decoder, same backend (taesd_preview.c) */
  if (engine_taesd_open (e, opts->taesd_path, err) != SD35_OK)
    goto fail;

  c = mmdit_get_config (e->mmdit);
  e->backend_name = strdup (e->be->name ? e->be->name : "?");
  if (e->backend_name == NULL)
    {
      sd35_set_error (err, SD35_ERR_OOM, "out of memory");
      goto fail;
    }
  e->info.variant_name = sd35_variant_name (e->info.variant);
  e->info.mmdit_path = e->files.mmdit;
  e->info.clip_l_path = e->files.clip_l;
  e->info.clip_g_path = e->files.clip_g;
  e->info.t5_path = opts->use_t5 ? e->files.t5 : NULL;
  e->info.backend_name = e->backend_name;
  e->info.depth = c->depth;
  e->info.hidden_size = c->hidden_size;
  e->info.taesd_path = taesd_path (e->taesd);
  sd35_variant_defaults (e->info.variant, &e->info.defaults);
  sd35_log ("model: %s, depth %d, hidden %d, backend %s%s", e->info.variant_name, c->depth,
            c->hidden_size, e->backend_name, opts->use_t5 ? "" : ", T5 off");
  *out = e;
  return SD35_OK;

fail:
  sd35_engine_free (e);
  if (err->status == SD35_OK)  /* a callee failed without saying why */
    sd35_set_error (err, SD35_ERR_INTERNAL, "opening the model failed");
  return err->status;
}

void
sd35_engine_free (sd35_engine *e)
{
  if (e == NULL)
    return;
  for (int i = 0; i < ENGINE_COND_CACHE; i++)
    {
      free (e->cache[i].text);
      sd35_cond_clear (&e->cache[i].cond);
    }
  taesd_free (e->taesd);
  free (e->taesd_rgb);
  vae_free (e->vae);
  mmdit_free (e->mmdit);
  t5_free (e->t5);
  clip_free (e->clip_g);
  clip_free (e->clip_l);
  t5_tokenizer_free (e->t5_tok);
  clip_tokenizer_free (e->clip_tok);
  /* model weights may alias the mappings: close files after the models */
  st_close (e->t5_file);
  st_close (e->clip_g_file);
  st_close (e->clip_l_file);
  st_close (e->vae_file);
  st_close (e->mmdit_file);
  /* after the models (they may alias the registries' merged buffers) */
  for (int p = 0; p < LORA_N_PARTS; p++)
    weight_registry_free (e->registry[p]);
  lora_state_free (e->lora);
  backend_free (e->be);
  model_files_clear (&e->files);
  free (e->backend_name);
  free (e);
}

const struct sd35_model_info *
sd35_engine_info (const sd35_engine *e)
{
  return e ? &e->info : NULL;
}

enum sd35_status
sd35_engine_set_loras (sd35_engine *e, const struct sd35_lora *loras, int n_loras,
                       struct sd35_error *err)
{
  struct sd35_error local_err;
  unsigned          changed = 0;
  enum sd35_status  st;

  if (err == NULL)
    err = &local_err;
  sd35_error_clear (err);
  if (e == NULL)
    return sd35_set_error (err, SD35_ERR_ARG, "no engine");
  /* offloaded text encoders come back first, so their layers can be matched and merged */
  if (load_text_encoder_weights (e, err) != SD35_OK)
    return err->status;
  st = lora_set (e->lora, e->be, e->registry, loras, n_loras, &changed, err);
  if (changed & LORA_TEXT_PARTS)
    for (int i = 0; i < ENGINE_COND_CACHE; i++)  /* encodings of the old weights */
      {
        free (e->cache[i].text);
        e->cache[i].text = NULL;
        sd35_cond_clear (&e->cache[i].cond);
        e->cache[i].last_use = 0;
      }
  if (st != SD35_OK)
    engine_oom_hint (err, "while merging LoRAs");
  return st;
}

const char *
sd35_engine_lora_report (const sd35_engine *e)
{
  return e != NULL ? lora_report (e->lora) : "";
}

enum sd35_status
sd35_engine_memory (const sd35_engine *e, size_t *in_use, size_t *peak)
{
  if (in_use != NULL)
    *in_use = e ? e->be->bytes_in_use : 0;
  if (peak != NULL)
    *peak = e ? e->be->peak_bytes : 0;
  return e ? SD35_OK : SD35_ERR_ARG;
}

enum sd35_status
engine_condition (struct sd35_engine *e, const char *text, enum sd35_prompt_weights weights,
                  const struct sd35_cond **out, struct sd35_error *err)
{
  struct cond_cache_entry *slot = &e->cache[0];
  struct sd35_tokens       tokens;
  enum sd35_status         st;

  for (int i = 0; i < ENGINE_COND_CACHE; i++)
    if (e->cache[i].text != NULL && strcmp (e->cache[i].text, text) == 0 &&
        e->cache[i].weights == weights)
      {
        e->cache[i].last_use = ++e->use_counter;
        *out = &e->cache[i].cond;
        return SD35_OK;
      }
  /* least recently used (empty slots have last_use 0) */
  for (int i = 1; i < ENGINE_COND_CACHE; i++)
    if (e->cache[i].last_use < slot->last_use)
      slot = &e->cache[i];
  free (slot->text);
  slot->text = NULL;
  sd35_cond_clear (&slot->cond);
  slot->last_use = 0;

  if (load_text_encoder_weights (e, err) != SD35_OK)  /* back after an offload */
    return err->status;
  memset (&tokens, 0, sizeof tokens);
  st = sd3_tokenize (e->clip_tok, e->t5_tok, text, &tokens, err);
  if (weights == SD35_PROMPT_WEIGHTS_IGNORE)
    sd35_tokens_drop_weights (&tokens);
  if (st == SD35_OK)
    st = sd3_condition (e->clip_l, e->clip_g, e->t5, &tokens,
                        mmdit_get_config (e->mmdit)->context_dim, &slot->cond, err);
  sd35_tokens_clear (&tokens);
  if (st != SD35_OK)
    {
      sd35_cond_clear (&slot->cond);
      return st;
    }
  slot->text = strdup (text);
  if (slot->text == NULL)
    {
      sd35_cond_clear (&slot->cond);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory copying the prompt");
    }
  slot->weights = weights;
  slot->last_use = ++e->use_counter;
  *out = &slot->cond;
  return SD35_OK;
}
