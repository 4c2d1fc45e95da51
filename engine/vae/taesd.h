/* taesd.h — TAESD3, the tiny SD3 latent → RGB decoder used for full-resolution step previews
 * (madebyollin/taesd taesd.py Decoder(latent_channels=16), as ComfyUI's latent_preview.py
 * runs it; facts in ../shared/taesd/README.md).
 *
 * taesd.c is the network over ops.h (same backend as the model); taesd_preview.c finds the
 * weights next to the model and makes the per-step preview of the pipeline.
 *
 * Input: the sampler's x0 estimate in MODEL space [16, h, w] (before process_out), exactly
 * what sd35_latent_preview takes; no scale or shift.  Output: RGB [3, 8h, 8w] in ~[0, 1]. */
#ifndef SD35_TAESD_H
#define SD35_TAESD_H

#include <stdint.h>

#include "ops.h"
#include "safetensors.h"

#define TAESD_LAYERS      20  /* nn.Sequential indices 0..19 (0 = Clamp, 19 = output conv) */
#define TAESD_FILE_NAME   "taesd3_decoder.safetensors"
#define TAESD_MACS_PER_POS 17.3e6  /* multiply-adds per latent position (README §2) */

struct taesd;

/* Opens `path` (taesd.py keys "1.weight" ... "19.bias", or diffusers' "decoder.layers.0.*"
 * ... with the index shifted by one) and loads it on be.  The engine's file stays open until
 * taesd_free. */
enum sd35_status taesd_open (struct backend *be, const char *path, struct taesd **out,
                             struct sd35_error *err);
void             taesd_free (struct taesd *t);
const char      *taesd_path (const struct taesd *t);

/* Shape [C, H, W] of the output of Sequential index `last` (0..19) for a latent h × w. */
void taesd_layer_shape (int h, int w, int last, int64_t chw[3]);

/* Runs Sequential indices 0..last on latent [16, h, w] and writes that layer's output
 * (taesd_layer_shape floats) to out.  last = TAESD_LAYERS − 1 is the decoded image. */
enum sd35_status taesd_forward (struct taesd *t, const float *latent, int h, int w, int last,
                                float *out, struct sd35_error *err);
/* latent [16, h, w] → image [3, 8h, 8w], not clamped */
enum sd35_status taesd_decode (struct taesd *t, const float *latent, int h, int w,
                               float *image, struct sd35_error *err);

/* ComfyUI's preview_to_image of TAESD output (mainline: truncation):
 * u8 = (uint8)(clamp(y, 0, 1)·255), CHW float → HWC bytes; NaN → 0. */
void taesd_image_to_u8 (const float *image, int H, int W, uint8_t *rgb_hwc);

/* --- engine glue (taesd_preview.c) ---------------------------------------------------- */
struct sd35_engine;

/* Where the TAESD weights are: `option` (sd35_engine_options.taesd_path) when non-NULL ("" =
 * none); else $SD35_TAESD ("" = none); else TAESD_FILE_NAME beside mmdit_path, in vae_approx/
 * beside it, or in ../vae_approx/ (ComfyUI's models/checkpoints + models/vae_approx).
 * Returns a malloc'd path or NULL; *explicit_ = 1 when it came from the option or the env. */
char *taesd_find (const char *option, const char *mmdit_path, int *explicit_);

/* Whether a TAESD preview is worth it for a latent h × w on this backend (see
 * taesd_preview.c for the rule): always on a device with memory of its own (a GPU:
 * backend.device_memory); on the host only when the decoder costs at
 * most TAESD_CPU_MAX_POS latent positions' worth or ≤ 1/16 of one MMDiT forward. */
#define TAESD_CPU_MAX_POS (64 * 64)
int taesd_preview_worth (int on_device, int h, int w, int mmdit_hidden,
                         int mmdit_depth);

/* Loads the TAESD of the engine (e->files.mmdit, option) into e->taesd; a file that was only
 * discovered and fails to load is skipped with a notice, an explicit one is an error. */
enum sd35_status engine_taesd_open (struct sd35_engine *e, const char *option,
                                    struct sd35_error *err);
/* The full-resolution preview of x0 [16, h, w] (model space) when the engine has a TAESD and
 * taesd_preview_worth says yes: returns 1 with *rgb (8w × 8h HWC, valid until the next call)
 * and its size; 0 means "use sd35_latent_preview".  A failed decode because of memory turns
 * TAESD previews off for this engine (notice) instead of failing the generation. */
int engine_taesd_preview (struct sd35_engine *e, const float *x0, int h, int w,
                          const uint8_t **rgb, int *pw, int *ph);

#endif
