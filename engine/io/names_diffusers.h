/* names_diffusers.h — diffusers tensor names → the reference names, in one place.
 *
 * The diffusers release of SD3/SD3.5 (transformer/ = SD3Transformer2DModel, vae/ =
 * AutoencoderKL) stores the same weights as the official single file under other names, with
 * q, k, v split and the final layer's adaLN halves in the other order.  Instead of teaching
 * mmdit.c and vae.c a second naming, the opened file is replaced at load time by a *derived*
 * st_file whose keys are exactly those of the single file ("model.diffusion_model.*",
 * "first_stage_model.*"): renamed tensors point into the original mapping (no copy); the
 * packed qkv ([3h, h] from three [h, h]) and the swapped adaLN halves are host buffers built
 * once here and owned by the derived file (st_file_adopt), so they live as long as it does
 * (for the engine: its whole life).  The original mappings move into the derived file, so one
 * st_close frees everything.  Keys with no rule keep their diffusers name under the prefix, so
 * the loader logs them as unused.  The rules are those of diffusers'
 * convert_sd3_transformer_checkpoint_to_diffusers (scripts/convert_sd3_to_diffusers.py) and
 * convert_ldm_vae_checkpoint (loaders/single_file_utils.py), read backwards.
 */
#ifndef SD35_NAMES_DIFFUSERS_H
#define SD35_NAMES_DIFFUSERS_H

#include "safetensors.h"
#include "error.h"

enum diffusers_part
{
  DIFFUSERS_NONE = 0,     /* reference names (or unknown) */
  DIFFUSERS_TRANSFORMER,  /* transformer_blocks.0.attn.to_q.weight ... */
  DIFFUSERS_VAE           /* decoder.up_blocks.0.resnets.0.conv1.weight ... */
};

/* Which diffusers model part f holds, from its keys. */
enum diffusers_part names_diffusers_kind (const struct st_file *f);

/* When *f is a diffusers transformer or VAE, replaces it by the derived file with reference
 * names (and closes the original); otherwise leaves it alone.  On an error (a q without its
 * k and v, mismatched shapes, odd adaLN rows, OOM) *f is left unchanged (the caller still
 * closes it) and err names the file and tensor. */
enum sd35_status names_diffusers_canonical (struct st_file **f, struct sd35_error *err);

#endif
