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

/* Debug hook: called during mmdit_forward with named intermediates (the goldens' dbg_*
 * names: dbg_t_freq, dbg_patch_embed, dbg_pos_embed_crop, dbg_t_emb, dbg_y_emb, dbg_c_mod,
 * dbg_context_embedded, dbg_block{i}_x/_context, dbg_final_layer_out) as host fp32.
 * Costs a download per tensor; NULL turns it off. */
typedef void (*mmdit_debug_fn) (void *user, const char *name, const float *data,
                                const int64_t *shape, int ndim);
void mmdit_set_debug (struct mmdit *m, mmdit_debug_fn fn, void *user);

/* TimestepEmbedder.timestep_embedding (t, 256): [B, 256], cos first (float32 like torch). */
void mmdit_timestep_embedding (const float *t, int B, float *out);

/* A model of the given shape with random weights (benchmarks): cfg->depth, hidden_size,
 * num_heads, patch_size, in_channels, pos_embed_max_size, adm_in_channels, context_dim,
 * qk_norm and attn2[] are used as given.  Weights are bf16 slices of one shared random
 * pool, so the host memory is that of the largest weight, not of the model. */
enum sd35_status mmdit_new_random (struct backend *be, const struct mmdit_config *cfg,
                                   uint64_t seed, struct mmdit **out, struct sd35_error *err);

#endif
