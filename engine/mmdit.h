/* mmdit.h — the SD3/SD3.5 MMDiT and MMDiT-X denoiser (mmditx.py, sd3_impls.py BaseModel),
 * every dimension read from the weights. */
#ifndef SD35_MMDIT_H
#define SD35_MMDIT_H

#include "ops.h"
#include "safetensors.h"

struct mmdit_config
{
  int depth;               /* joint blocks */
  int hidden_size;         /* 64·depth */
  int num_heads;           /* depth (head dim 64) */
  int patch_size;          /* 2 */
  int in_channels;         /* 16 */
  int pos_embed_max_size;  /* M: pos_embed is [1, M², hidden] */
  int adm_in_channels;     /* pooled width (2048) */
  int context_dim;         /* context_embedder input (4096) */
  int qk_norm;             /* 1 = rms */
  unsigned char attn2[256];/* attn2[i] = 1 if block i has x_block.attn2 (MMDiT-X) */
};

struct mmdit;

/* prefix: "model.diffusion_model." for the official files. */
enum sd35_status mmdit_load (struct backend *be, struct st_file *file, const char *prefix,
                             struct mmdit **out, struct sd35_error *err);
void mmdit_free (struct mmdit *m);
const struct mmdit_config *mmdit_get_config (const struct mmdit *m);

struct mmdit_cancel
{
  int (*is_cancelled) (void *user);
  void *user;
};

/* One forward of a batch of B: x [B, 16, H, W] (latent, model space), sigma [B],
 * context [B, n_ctx, context_dim], y [B, adm] → v [B, 16, H, W] (velocity).
 * skip_layers: blocks bypassed entirely (n_skip may be 0).  cancel may be NULL; checked
 * between blocks (returns SD35_CANCELLED).  All arrays host fp32. */
enum sd35_status mmdit_forward (struct mmdit *m, const float *x, const float *sigma,
                                const float *context, const float *y, int B, int H, int W,
                                int n_ctx, const int *skip_layers, int n_skip,
                                const struct mmdit_cancel *cancel, float *v,
                                struct sd35_error *err);

#endif
