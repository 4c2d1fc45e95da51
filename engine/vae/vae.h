/* vae.h — the SD3 VAE (sd3_impls.py SDVAE): 16 latent channels, factor 8, GroupNorm 32,
 * mid attention; channel widths from the weights. */
#ifndef SD35_VAE_H
#define SD35_VAE_H

#include <stdint.h>
#include "ops.h"
#include "safetensors.h"

#define SD35_LATENT_SCALE 1.5305f  /* SD3LatentFormat.scale_factor */
#define SD35_LATENT_SHIFT 0.0609f  /* SD3LatentFormat.shift_factor */

struct vae;

/* prefix "first_stage_model." for the official files.  Either half may be absent from a file
 * (need_encoder = 0 then skips it). */
enum sd35_status vae_load (struct backend *be, struct st_file *file, const char *prefix,
                           int need_encoder, struct vae **out, struct sd35_error *err);
void vae_free (struct vae *v);

/* latent [16, h, w] in VAE space (after process_out) → image [3, 8h, 8w] in ~[-1, 1]. */
enum sd35_status vae_decode (struct vae *v, const float *latent, int h, int w, float *image,
                             struct sd35_error *err);
/* vae_tiled.c: the same decode in tiles of `tile` latent pixels overlapping by ≥ `overlap`,
 * linearly blended (not exact: the group norms and the mid attention see one tile). */
enum sd35_status vae_decode_tiled (struct vae *v, const float *latent, int h, int w, int tile,
                                   int overlap, float *image, struct sd35_error *err);
/* tiling 1: tiled (64/16); -1: full; 0: tiled when vae_decode_act_bytes > vae_memory_budget */
enum sd35_status vae_decode_auto (struct vae *v, const float *latent, int h, int w, int tiling,
                                  float *image, struct sd35_error *err);
/* Estimated activation bytes of a full decode of an h×w latent on the VAE's backend. */
size_t vae_decode_act_bytes (const struct vae *v, int h, int w);
/* Memory a decode may use: CUDA 80% of free device memory (+ the pool's cache), CPU 25% RAM. */
size_t vae_memory_budget (struct backend *be);
/* image [3, H, W] in [-1, 1] → mean, std [16, H/8, W/8] (std = exp(0.5·clamp(logvar,−30,20))) */
enum sd35_status vae_encode (struct vae *v, const float *image, int H, int W, float *mean,
                             float *std, struct sd35_error *err);

/* The reference's conversions (sd3_infer.py vae_decode / vae_encode). */
void vae_image_to_u8 (const float *image, int H, int W, uint8_t *rgb_hwc);   /* uint8(255·clamp((x+1)/2)) truncating */
void vae_u8_to_image (const uint8_t *rgb_hwc, int H, int W, float *image);   /* 2·(x/255) − 1, CHW */
void latent_process_in (float *z, size_t n);   /* (z − shift)·scale */
void latent_process_out (float *z, size_t n);  /* z/scale + shift */

#define VAE_MAX_LEVELS 8

/* Widths read from the weights (sd35-facts.md §5): real SD3 VAE ch 128, ch_mult (1,2,4,4)
 * → level widths {128, 256, 512, 512}, 2 res blocks per encoder level, 3 per decoder level. */
struct vae_coder_config
{
  int n_levels;
  int width[VAE_MAX_LEVELS];  /* output channels of level i's res blocks */
  int n_blocks;               /* res blocks per level */
  int conv_in;                /* conv_in output channels (encoder: ch; decoder: mid width) */
};

struct vae_config
{
  int                     z_channels;   /* 16 */
  int                     has_encoder;
  struct vae_coder_config encoder;
  struct vae_coder_config decoder;
};

const struct vae_config *vae_get_config (const struct vae *v);
/* Pixels per latent cell: 2^(decoder levels − 1) = 8. */
int vae_factor (const struct vae *v);

/* A VAE of the given shape with random weights (benchmarks), aliasing one bf16 pool. */
enum sd35_status vae_new_random (struct backend *be, const struct vae_config *cfg,
                                 uint64_t seed, struct vae **out, struct sd35_error *err);
/* The real SD3 VAE shape (ch 128, mult 1,2,4,4, 2/3 res blocks, z 16). */
void vae_config_sd3 (struct vae_config *cfg, int with_encoder);

#endif
