/* lora.h — LoRA files merged into the loaded weights (engine-internal; public entry point:
 * sd35_engine_set_loras in sd35.h).
 *
 * Formats (safetensors): diffusers/PEFT (`transformer.transformer_blocks.N.attn.to_q.lora_A.
 * weight` / `lora_B`, the separate q/k/v put onto our fused qkv rows; `text_encoder{,_2,_3}.`),
 * kohya sd-scripts (`lora_unet_joint_blocks_N_x_block_attn_qkv.lora_down.weight` / `lora_up` /
 * `.alpha`, `lora_te1_/te2_/te3_` = CLIP-L, CLIP-G, T5; `lora_transformer_` = diffusers names
 * with underscores) and the official key form (`[model.diffusion_model.]joint_blocks.N.
 * x_block.attn.qkv.lora_up.weight`).  Scale = strength · α / rank (no α: 1).
 *
 * How weights change (no second copy of the model): a touched weight W is rebuilt from the
 * still-mapped file tensor it was loaded from: fp32 W + Σ strengthᵢ·(αᵢ/rᵢ)·Bᵢ·Aᵢ, rounded to
 * the file's dtype (bf16/f16/f32; fp8 files to bf16) and handed to the backend's
 * weight_from_host, exactly as at load; the previous storage is released.  Undoing = the
 * same from the file tensor alone, so it is bit-exact and reloads nothing else.  Extra memory:
 * on the CPU, where untouched weights alias the mapped file, one owned copy of each touched
 * tensor; on CUDA nothing beyond one tensor in flight.  Only the tensors whose set of
 * (LoRA, strength) changed are rebuilt. */
#ifndef SD35_LORA_H
#define SD35_LORA_H

#include "sd35.h"
#include "ops.h"
#include "weights.h"

enum lora_part
{
  LORA_MMDIT = 0,
  LORA_CLIP_L,
  LORA_CLIP_G,
  LORA_T5,
  LORA_N_PARTS
};

#define LORA_TEXT_PARTS ((1u << LORA_CLIP_L) | (1u << LORA_CLIP_G) | (1u << LORA_T5))
#define LORA_ALL_PARTS  (LORA_TEXT_PARTS | (1u << LORA_MMDIT))

struct lora_state;

struct lora_state *lora_state_new (void);
void               lora_state_free (struct lora_state *s);

/* Replaces the set of merged LoRAs by loras[0..n) (n = 0: none).  regs[part] is the registry
 * of that model part (NULL when absent, e.g. T5 off).  Files are read and checked before any
 * weight changes: an unreadable file, a LoRA for another model family, one whose shapes do
 * not fit, or one that matches no layer leaves the previous set in place.  *parts_changed
 * gets the LORA_* bits of the parts whose weights changed. */
enum sd35_status lora_set (struct lora_state *s, struct backend *be,
                           struct weight_registry *const regs[LORA_N_PARTS],
                           const struct sd35_lora *loras, int n, unsigned *parts_changed,
                           struct sd35_error *err);

/* After the parts in part_mask were freed and loaded again from their files (text-encoder
 * offloading), merges the current set into them again. */
enum sd35_status lora_reapply (struct lora_state *s, struct backend *be,
                               struct weight_registry *const regs[LORA_N_PARTS],
                               unsigned part_mask, struct sd35_error *err);

/* One line per LoRA of the current set (what matched, what did not); "" when none. */
const char *lora_report (const struct lora_state *s);

#endif
