/* sd35.h — the public C API of the gimp-sd35 engine (Stable Diffusion 3.5 in C).
 *
 * The engine knows nothing of GIMP or GTK.  One engine = one model (MMDiT + VAE + text
 * encoders) on one backend (CPU or CUDA).  Everything returns an `enum sd35_status`; on
 * failure `struct sd35_error` holds a one-line message a user can act on (what failed,
 * where, what to try).  Cancellation is a status (SD35_CANCELLED), not an error.
 *
 * Threads: an engine may be used from one thread at a time; callbacks run on the thread
 * that called sd35_generate().
 */
#ifndef SD35_H
#define SD35_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SD35_VERSION "0.1.0"

enum sd35_status
{
  SD35_OK = 0,
  SD35_ERR_IO,        /* file missing / unreadable */
  SD35_ERR_FORMAT,    /* corrupt or hostile file, unsupported format */
  SD35_ERR_SHAPE,     /* tensor of the wrong shape or dtype */
  SD35_ERR_MISSING,   /* a needed file or tensor is absent */
  SD35_ERR_ARG,       /* bad user argument (size, steps, ...) */
  SD35_ERR_OOM,       /* host or device memory exhausted */
  SD35_ERR_CUDA,      /* CUDA / cuBLAS failure */
  SD35_ERR_NAN,       /* NaN / Inf in weights or results */
  SD35_ERR_INTERNAL,
  SD35_CANCELLED      /* the caller asked to stop; not an error */
};

struct sd35_error
{
  enum sd35_status status;
  char             message[1024];
};

/* Human name of a status ("I/O error", "cancelled", ...). */
const char *sd35_status_name (enum sd35_status status);

enum sd35_backend_kind
{
  SD35_BACKEND_AUTO = 0,  /* CUDA when a GPU and driver are usable, else CPU (one-line notice) */
  SD35_BACKEND_CPU,
  SD35_BACKEND_CUDA
};

enum sd35_variant
{
  SD35_VARIANT_UNKNOWN = 0,
  SD35_VARIANT_LARGE,        /* SD3.5 Large: MMDiT, qk rms-norm, no attn2 */
  SD35_VARIANT_LARGE_TURBO,  /* same architecture, distilled (by file name or flag) */
  SD35_VARIANT_MEDIUM,       /* SD3.5 Medium: MMDiT-X (attn2 in some blocks) */
  SD35_VARIANT_SD3_MEDIUM    /* SD3 Medium (v3.0): no qk-norm */
};

const char *sd35_variant_name (enum sd35_variant variant);

enum sd35_sampler
{
  SD35_SAMPLER_DEFAULT = 0,  /* the variant's default */
  SD35_SAMPLER_EULER,
  SD35_SAMPLER_DPMPP_2M
};

const char *sd35_sampler_name (enum sd35_sampler sampler);
/* "euler", "dpmpp_2m" (also "dpmpp-2m") → enum; returns 0 on success, -1 if unknown. */
int         sd35_sampler_from_name (const char *name, enum sd35_sampler *out);

/* What `(word:1.3)` in a prompt does.  The syntax (A1111/ComfyUI): `(text)` multiplies the
 * weight of text by 1.1, `(text:1.3)` sets it to 1.3, nesting multiplies, `\(` `\)` are literal
 * parentheses; the parentheses and ":1.3" never reach the tokenizer. */
enum sd35_prompt_weights
{
  /* ComfyUI's rule for SD3: for each text encoder (CLIP-L, CLIP-G, T5) and each token of
   * weight w != 1, hidden = empty + w·(hidden − empty), where empty is the same encoder's
   * output for the empty prompt of the same length ([BOS, EOS, pad…]; T5: [EOS, pad…]).  The
   * pooled vectors are those of the prompt, unweighted.  A weight that is not a finite number
   * (nan, inf, beyond ±3.4e38) is refused with SD35_ERR_ARG. */
  SD35_PROMPT_WEIGHTS_COMFY = 0,
  /* the official reference (sd3.5 sd3_infer.py): weights parsed and ignored */
  SD35_PROMPT_WEIGHTS_IGNORE
};

const char *sd35_prompt_weights_name (enum sd35_prompt_weights mode);   /* "comfy", "ignore" */
/* "comfy" / "ignore" → enum; returns 0 on success, -1 if unknown. */
int         sd35_prompt_weights_from_name (const char *name, enum sd35_prompt_weights *out);

/* Per-variant defaults (sd3_infer.py CONFIGS). */
struct sd35_defaults
{
  int               steps;
  double            cfg;
  double            shift;
  enum sd35_sampler sampler;
};

void sd35_variant_defaults (enum sd35_variant variant, struct sd35_defaults *out);

struct sd35_engine_options
{
  const char            *model_path;        /* MMDiT file, release folder, HF snapshot; NULL/"" = discover */
  const char            *text_encoders_dir; /* optional extra place for clip_l/clip_g/t5xxl files */
  const char            *tokenizers_dir;    /* optional folder with clip/ and t5/ */
  enum sd35_backend_kind backend;
  int                    use_t5;            /* 0: T5 never loaded, its part of the context is zeros */
  int                    force_turbo;       /* 1: treat as Large Turbo whatever the file name */
  int                    n_threads;         /* CPU threads, 0 = all cores */
  int                    verbose;           /* log loading details to stderr */
  /* TAESD3 decoder for full-resolution step previews (taesd3_decoder.safetensors):
   * NULL = discover: $SD35_TAESD ("" = none), else taesd3_decoder.safetensors beside the MMDiT
   * file, in vae_approx/ beside it or in ../vae_approx/ (ComfyUI's models/ layout); a
   * discovered file that fails to load is skipped with a notice.  "" = none.  Else this
   * file, and an error if it cannot be loaded.  Without one, on_step previews are the
   * latent-size projection (sd35_latent_preview). */
  const char            *taesd_path;
  /* Memory.  offload_text_encoders: 1 = CLIP-L, CLIP-G and T5 leave the backend (GPU) once
   * the prompts of a generation are encoded, and are reloaded from their still-open files
   * only when a prompt that is not in the engine's conditioning cache needs encoding (the
   * same prompt with other seeds costs nothing); 0 = they stay loaded; -1 (the default from
   * sd35_engine_options_init) = on for the CUDA backend, off for the CPU one (whose big
   * weights alias the mapped files anyway). */
  int                    offload_text_encoders;
  /* VAE decode in overlapping 64×64-latent tiles (512×512 pixels, 16 latent pixels of
   * overlap, linearly blended): 0 = when the full decode's estimated activation memory
   * exceeds the budget (CUDA: 80% of the free device memory; CPU: 25% of the RAM); 1 =
   * always; -1 = never.  Tiles differ slightly from a full decode (the VAE's group norms
   * and mid attention see one tile), without visible seams. */
  int                    vae_tiling;
};

void sd35_engine_options_init (struct sd35_engine_options *opts);

typedef struct sd35_engine sd35_engine;

/* What was found and loaded (strings owned by the engine). */
struct sd35_model_info
{
  enum sd35_variant    variant;
  const char          *variant_name;
  const char          *mmdit_path;
  const char          *clip_l_path;
  const char          *clip_g_path;
  const char          *t5_path;       /* NULL when T5 is off or absent */
  const char          *backend_name;  /* "cpu" or "cuda (NVIDIA H200)" */
  int                  depth;         /* MMDiT blocks */
  int                  hidden_size;
  struct sd35_defaults defaults;
  const char          *taesd_path;    /* the TAESD preview decoder in use; NULL = none */
};

/* What a model path holds, read without loading a weight (only the MMDiT's header): for
 * model pickers and messages.  Strings are owned by the probe (sd35_model_probe_clear). */
struct sd35_model_probe
{
  enum sd35_variant variant;        /* UNKNOWN when there is no MMDiT or it is not SD3 */
  char             *mmdit_path;     /* the MMDiT file (or .index.json); NULL = none found */
  char             *vae_path;       /* a separate VAE (diffusers vae/); NULL = in the MMDiT */
  char             *clip_l_path;    /* text encoders, NULL = not found */
  char             *clip_g_path;
  char             *t5_path;        /* optional: without it the engine runs without T5 */
  int               has_clip_tokenizer;  /* vocab.json + merges.txt */
  int               has_t5_tokenizer;    /* spiece.model or tokenizer.json */
  char             *missing;        /* what is missing and where it was looked for, or NULL */
  char             *message;        /* one readable sentence: what the path holds or lacks */
};

/* Probes path (a file or folder as sd35_engine_options.model_path; NULL or "" = what
 * discovery finds: $SD35_MODEL, then the Hugging Face cache).  SD35_OK when the model is
 * usable (T5 may be missing); else the status of the problem, with err set and the probe
 * still filled with what was found and the message.  Cleared first; always clear it after. */
enum sd35_status sd35_model_probe       (const char              *path,
                                         struct sd35_model_probe *out,
                                         struct sd35_error       *err);
void             sd35_model_probe_clear (struct sd35_model_probe *probe);

/* The model paths discovery considers, in its order and as it finds them: $SD35_MODEL (when it
 * exists), then every snapshot folder holding an MMDiT in the Hugging Face cache
 * ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub; stabilityai stable-diffusion-3.5-*
 * repositories, refs/main first).  NULL-terminated; free with sd35_strv_free (below). */
char           **sd35_model_candidates  (void);

enum sd35_status sd35_engine_open (const struct sd35_engine_options *opts,
                                   sd35_engine                     **out,
                                   struct sd35_error                *err);
void             sd35_engine_free (sd35_engine *engine);

/* LoRA.  One LoRA file (safetensors: diffusers/PEFT, kohya sd-scripts or official-key form;
 * MMDiT and text-encoder layers) and its strength: the update added to each weight is
 * strength · (α / rank) · B·A (no α in the file: α = rank).  Negative strengths subtract. */
struct sd35_lora
{
  const char *path;
  double      strength;
};

/* Makes loras[0..n_loras) the merged set (replacing the previous one; n_loras = 0 removes
 * all).  Weights are merged in the backend's storage dtype (W + s·(α/r)·B·A computed in fp32
 * from the weight as loaded from its still-mapped file) and restored bit-exactly from that
 * file when a LoRA or strength goes: only the touched tensors change, nothing is reloaded,
 * and only tensors whose (LoRA, strength) set changed are rebuilt.  Strength 0 leaves the
 * model bit-for-bit as without the LoRA.  Keys that match no layer are counted
 * (sd35_engine_lora_report); a file that matches nothing, a LoRA for another model family
 * (SDXL, Flux — named in the message) or one whose shapes do not fit is refused and the
 * previous set stays.  Prompts are encoded again when a text-encoder layer changed. */
enum sd35_status sd35_engine_set_loras (sd35_engine *engine, const struct sd35_lora *loras,
                                        int n_loras, struct sd35_error *err);
/* One line per LoRA of the current set: format, strength, layers merged per model part,
 * keys that matched nothing.  "" with no LoRA.  Owned by the engine; valid until the next
 * sd35_engine_set_loras. */
const char      *sd35_engine_lora_report (const sd35_engine *engine);

/* The LoRA files (*.safetensors) a user of the model at model_path (a file or a release
 * folder) can pick: loras/ beside the model file or inside the folder, and ComfyUI's
 * models/loras/ when the model is in models/checkpoints/ (or any sibling folder), with their
 * subfolders; sorted.  A NULL-terminated array (empty when none), free with sd35_strv_free. */
char **sd35_find_loras (const char *model_path);
/* "FILE[:STRENGTH]" (the CLI's --lora, the plug-in's "loras" argument) → path (copied into
 * path[path_size]) and strength (1 when absent; the part after the last ':' is a strength
 * only when it is a whole number, so "C:/x.safetensors" stays a path).  0, or -1 when empty,
 * too long or the strength is not finite. */
int    sd35_lora_spec_parse (const char *spec, char *path, size_t path_size, double *strength);
void   sd35_strv_free (char **strv);
const struct sd35_model_info *sd35_engine_info (const sd35_engine *engine);
/* Backend memory of this engine (weights + activations, bytes; the CPU backend counts the
 * buffers it owns, not the mapped weight files): now and the peak since the engine opened. */
enum sd35_status sd35_engine_memory (const sd35_engine *engine, size_t *in_use, size_t *peak);

/* Callbacks.  on_step: after every sampler step (0-based step of n_steps), with sigma and an
 * 8-bit RGB preview (HWC, latent size: width/8 × height/8) of the x0 estimate; the buffer is
 * only valid during the call.  With a TAESD decoder (sd35_engine_options.taesd_path) the
 * preview is full size, width × height, where taesd_preview.c's cost rule allows it (always
 * on CUDA); preview_w/preview_h always give the size.  is_cancelled: polled every step and between MMDiT blocks;
 * returning non-zero makes sd35_generate return SD35_CANCELLED promptly with no output. */
struct sd35_callbacks
{
  void (*on_stage) (void *user, const char *stage);  /* "encoding prompt", "sampling", "decoding" */
  void (*on_step)  (void *user, int step, int n_steps, float sigma,
                    const uint8_t *preview_rgb, int preview_w, int preview_h);
  int  (*is_cancelled) (void *user);
  void *user;
  /* Optional debug hook (tests, `sd35 txt2img --tensors-out`): after every step, the state x
   * fed to the denoiser and the guided x0 estimate `denoised`, both model space [16, h, w]
   * (h = height/8, w = width/8).  Only valid during the call.  NULL = not called. */
  void (*on_step_tensors) (void *user, int step, int n_steps, float sigma, const float *x,
                           const float *denoised, int h, int w);
};

#define SD35_MAX_SKIP_LAYERS 64

struct sd35_params
{
  const char       *prompt;
  const char       *negative_prompt;  /* NULL = "" */
  enum sd35_prompt_weights prompt_weights;  /* both prompts; default COMFY */
  int               width, height;    /* multiples of 16 */
  int               steps;            /* 0 = variant default; 1..1000 */
  double            cfg;              /* < 0 = default; < 1 = no guidance (cond only); 1 = cond only, same result */
  double            shift;            /* <= 0 = default */
  enum sd35_sampler sampler;
  uint64_t          seed;             /* torch.manual_seed semantics: truncated to 32 bits */
  /* skip-layer guidance (off when slg_scale <= 0) */
  double            slg_scale;
  double            slg_start, slg_end;
  int               slg_layers[SD35_MAX_SKIP_LAYERS];
  int               n_slg_layers;
  /* optional caller noise [16, height/8, width/8] (replaces the seeded noise) */
  const float      *noise;
  /* img2img: RGB u8 HWC, must be width × height (the caller resizes) */
  const uint8_t    *init_rgb;
  double            strength;         /* (0, 1], the reference's `denoise` */
  uint64_t          vae_seed;         /* noise of the VAE-encode sample */
  int               has_vae_seed;     /* 0: vae_seed = seed */
  /* optional mask, width × height floats in [0,1] (1 = regenerate); with init_rgb only */
  const float      *mask;
};

void sd35_params_init (struct sd35_params *params);
/* Checks every value of params that does not depend on the model (image size, steps,
 * guidance, shift, skip-layer settings, strength) with a message naming the valid range; call
 * it before loading a model so a bad argument does not wait for minutes of loading.
 * sd35_generate checks again, then also the skip-layer indices against the model's depth. */
enum sd35_status sd35_params_check (const struct sd35_params *params, struct sd35_error *err);

struct sd35_result
{
  int      width, height;
  uint8_t *rgb;          /* HWC u8, the reference's uint8(255·clamp((x+1)/2)) */
  float   *image_float;  /* [3, H, W], the VAE output in [-1, 1] (not clamped) */
  float   *final_latent; /* [16, H/8, W/8], VAE space (after process_out) */
  float   *noise;        /* [16, H/8, W/8] the initial noise used */
  float   *sigmas;       /* n_sigmas values actually sampled over */
  int      n_sigmas;
  uint64_t seed;
};

void sd35_result_clear (struct sd35_result *result);

enum sd35_status sd35_generate (sd35_engine                 *engine,
                                const struct sd35_params    *params,
                                const struct sd35_callbacks *callbacks,
                                struct sd35_result          *out,
                                struct sd35_error           *err);

/* Latent (model space, [16, h, w]) → 8-bit RGB HWC of latent size, the 16×3 projection with
 * bias of ComfyUI's SD3 latent format (sd35-facts.md §6).  rgb must hold h·w·3 bytes. */
void sd35_latent_preview (const float *latent, int h, int w, uint8_t *rgb);

#ifdef __cplusplus
}
#endif

#endif /* SD35_H */
