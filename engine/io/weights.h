/* weights.h — filling a model part's weights struct by name from safetensors files.
 *
 * One loader per model part: it knows the files and the key prefix
 * ("model.diffusion_model.", "first_stage_model.", "text_model." ...).  Each helper looks
 * the key up, checks dtype (float) and shape, uploads through backend->weight_from_host and
 * marks the key used.  On a problem it records it and carries on, so wl_finish can report
 * every missing or mis-shaped tensor in one message (first 20 + a count).
 *
 * Lifetimes: a loader lives for one model part: wl_new, the helpers, then wl_finish, which
 * reports and frees the loader (wl_free only abandons a load early).  Tensors made by the
 * helpers belong to the caller (linear_free, tensor_free ...).  The st_files must stay open
 * as long as those tensors: a backend may alias file data (CPU), and host buffers the loader
 * builds itself (the packed qkv of wl_linear_qkv) are, when the backend aliased them,
 * attached to the file holding q (st_file_adopt) and freed by its st_close; otherwise they
 * are freed at once.
 *
 * Checks: float dtype and exact shape always; NaN/Inf for WEIGHT_VECTOR tensors of at most
 * 2^20 elements (cheap, catches a corrupt file early); every tensor after
 * wl_set_check_finite (wl, 1).  A NaN is an SD35_ERR_NAN problem.
 *
 * Names are printf formats: wl_linear (wl, &b->x.qkv, 3*D, D, 1, "joint_blocks.%d.x_block.attn.qkv", i)
 * looks up "<prefix>joint_blocks.3.x_block.attn.qkv.weight" and ".bias".
 */
#ifndef SD35_WEIGHTS_H
#define SD35_WEIGHTS_H

#include "ops.h"
#include "safetensors.h"
#include "error.h"

#define SD35_PRINTF_LIKE(a, b) SD35_PRINTF (a, b)

struct linear
{
  struct tensor *w;  /* [n_out, n_in] */
  struct tensor *b;  /* [n_out] or NULL */
};

struct norm
{
  struct tensor *w;  /* [D] or NULL */
  struct tensor *b;  /* [D] or NULL */
};

struct conv2d
{
  struct tensor *w;  /* [Co, Ci, kh, kw] */
  struct tensor *b;  /* [Co] */
  int64_t        co, ci, kh, kw;
};

struct weights_loader;

/* --- registry of linear weights (for LoRA merging, engine/dit/lora.c) --------------------
 * When a file has a registry (st_file_set_registry), wl_linear and wl_linear_qkv record
 * every linear weight they make: its key without the loader's prefix and without ".weight"
 * ("joint_blocks.0.x_block.attn.qkv"), the backend tensor the model uses, and the file
 * tensors it was made from (three row blocks for a packed q/k/v, each findable by its own
 * name, e.g. "text_model.encoder.layers.0.self_attn.k_proj").  The registry does not own
 * the tensors; clear it when the model part that owns them is freed. */
struct weight_part
{
  char                   *name;  /* key base of this row block */
  const struct st_tensor *src;   /* its file tensor [rows, cols] */
  int64_t                 row0, rows;
};

struct weight_slot
{
  struct tensor     *t;          /* the model's tensor [rows, cols] (contents may be swapped) */
  int64_t            rows, cols;
  int                n_parts;    /* 1, or 3 for a packed q/k/v */
  struct weight_part parts[3];
  /* what lora.c merged into t: 0 = the file's weight; else a signature of the LoRAs */
  uint64_t           merged_sig;
  void              *owned_host; /* host buffer the backend aliases for t (CPU), or NULL */
};

struct weight_registry;
struct weight_registry *weight_registry_new (void);
/* Forgets every slot (call after the tensors' model part is freed); frees owned_host. */
void                    weight_registry_clear (struct weight_registry *r);
void                    weight_registry_free (struct weight_registry *r);
size_t                  weight_registry_count (const struct weight_registry *r);
struct weight_slot     *weight_registry_at (struct weight_registry *r, size_t i);
/* A name (whole slot or one part) → its slot and row block; NULL if unknown. */
struct weight_slot     *weight_registry_find (struct weight_registry *r, const char *name,
                                              int64_t *row0, int64_t *rows);
/* Records a slot (copies names; replaces a slot of the same first name).  0, or -1 on OOM. */
int weight_registry_add (struct weight_registry *r, struct tensor *t, int n_parts,
                         const char *const names[3], const struct st_tensor *const src[3]);

/* files: 1..n open safetensors (searched in order); prefix prepended to every name. */
struct weights_loader *wl_new (struct backend *be, struct st_file *const *files, int n_files,
                               const char *prefix, const char *what /* "MMDiT", "CLIP-L" */);
/* Abandons a load (frees the loader, not the tensors made so far). */
void wl_free (struct weights_loader *wl);
/* all = 1: also check matrices for NaN/Inf (reads every weight once at load). */
void wl_set_check_finite (struct weights_loader *wl, int all);

/* key lookups (prefix applied); NULL if absent; do not mark used */
const struct st_tensor *wl_find (struct weights_loader *wl, const char *fmt, ...)
  SD35_PRINTF_LIKE (2, 3);
/* shape of a key: returns ndim (0 if absent), fills shape */
int wl_shape (struct weights_loader *wl, int64_t shape[ST_MAX_DIMS], const char *fmt, ...)
  SD35_PRINTF_LIKE (3, 4);

/* A tensor of exactly this shape (ndim ≤ 4); returns NULL and records a problem otherwise. */
struct tensor *wl_tensor (struct weights_loader *wl, enum weight_use use, int ndim,
                          const int64_t *shape, const char *fmt, ...) SD35_PRINTF_LIKE (5, 6);
/* Optional tensor: NULL without a problem when absent (still checked when present). */
struct tensor *wl_tensor_opt (struct weights_loader *wl, enum weight_use use, int ndim,
                              const int64_t *shape, const char *fmt, ...) SD35_PRINTF_LIKE (5, 6);
/* Host fp32 copy of a key (for things computed on the host, e.g. a relative-bias table);
 * checks shape; caller frees. */
float *wl_host_f32 (struct weights_loader *wl, int ndim, const int64_t *shape,
                    const char *fmt, ...) SD35_PRINTF_LIKE (4, 5);

/* <name>.weight [n_out, n_in] (+ <name>.bias [n_out] when has_bias) */
void wl_linear (struct weights_loader *wl, struct linear *l, int64_t n_out, int64_t n_in,
                int has_bias, const char *fmt, ...) SD35_PRINTF_LIKE (6, 7);
/* Three linears (q, k, v: each [n, n_in]) concatenated row-wise into one [3n, n_in] (+bias):
 * HF CLIP/T5 split projections become one packed qkv.  fmt has one %s for "q"/"k"/"v"
 * segment, e.g. "encoder.layers.%d.self_attn.%s_proj" with names = {"q","k","v"}; the
 * variadic arguments fill the other conversions only (so no printf-format check here).
 * Same-dtype parts keep the file dtype; mixed ones are packed as F32. */
void wl_linear_qkv (struct weights_loader *wl, struct linear *l, int64_t n, int64_t n_in,
                    int has_bias, const char *const names[3], const char *fmt, ...);
/* <name>.weight [D] (+ .bias [D]) */
void wl_norm (struct weights_loader *wl, struct norm *n, int64_t D, int has_bias,
              const char *fmt, ...) SD35_PRINTF_LIKE (5, 6);
/* <name>.weight [co, ci, kh, kw] + .bias [co] */
void wl_conv2d (struct weights_loader *wl, struct conv2d *c, int64_t co, int64_t ci,
                int64_t kh, int64_t kw, const char *fmt, ...) SD35_PRINTF_LIKE (7, 8);

/* SD35_OK, or one error listing every problem (first 20, or as many as fit the message,
 * then "and N more"): SD35_ERR_MISSING if a key is absent, else SD35_ERR_SHAPE (wrong shape
 * or non-float dtype); an OOM/backend/NaN problem takes precedence.  Logs the keys under
 * prefix that were never used (sd35_log).  Frees wl in every case. */
enum sd35_status wl_finish (struct weights_loader *wl, struct sd35_error *err);

void linear_free (struct linear *l);
void norm_free (struct norm *n);
void conv2d_free (struct conv2d *c);

/* n bf16 values uniform in ±0.02 (a typical init scale) from a 64-bit LCG seeded with seed:
 * the shared pool of mmdit_new_random / vae_new_random (speed tests at real sizes). */
void weights_random_bf16 (uint16_t *pool, size_t n, uint64_t seed);

/* A random-weight model under construction: every tensor is the first numel values of pool
 * (which must hold the largest tensor and outlive the model: the CPU backend aliases bf16
 * matrices).  Errors are sticky: after one failure every call returns NULL and failed = 1. */
struct weights_random
{
  struct backend *be;
  const uint16_t *pool;
  int             failed;
};

/* A tensor of shape d0..d{ndim-1} (ndim ≤ 4) from the pool, through weight_from_host. */
struct tensor *weights_random_tensor (struct weights_random *r, enum weight_use use, int ndim,
                                      int64_t d0, int64_t d1, int64_t d2, int64_t d3);

#endif
