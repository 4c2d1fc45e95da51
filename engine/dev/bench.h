/* bench.h — `sd35 bench`: real-size SD3.5 stages from random weights (no files), timed on a
 * backend, with FLOP counts from the actual shapes (docs/performance.md's formulas).
 *
 * Timing: warm-up runs, then timed runs; each run is bracketed by backend->synchronize() and
 * read with a host monotonic clock (CUDA events stay inside the CUDA backend); the median is
 * reported.  Values do not change the arithmetic, so weights are slices of one shared random
 * bf16 pool (uniform ±0.02; vectors too), activations random in ±1. */
#ifndef SD35_BENCH_H
#define SD35_BENCH_H

#include <stddef.h>

#include "mmdit.h"
#include "ops.h"
#include "tokenizer.h"  /* SD35_CLIP_TOKENS */
#include "vae.h"

enum bench_variant
{
  BENCH_LARGE = 0,  /* SD3.5 Large: depth 38, CFG (B = 2) */
  BENCH_MEDIUM,     /* SD3.5 Medium (MMDiT-X): depth 24, attn2 in blocks 0–12, CFG */
  BENCH_TURBO       /* SD3.5 Large Turbo: the Large network, no CFG (B = 1) */
};

#define BENCH_MAX_RUNS 64

/* One timed stage. */
struct bench_stage
{
  int    ran;
  int    runs;                   /* timed runs */
  double ms[BENCH_MAX_RUNS];     /* each timed run */
  double ms_median, ms_min, ms_max;
  double flop;                   /* per run, from the shapes */
  size_t weight_bytes;           /* backend bytes held by the stage's weights */
  size_t peak_bytes;             /* backend peak during the stage (weights + activations) */
  double build_ms;               /* building the random model */
  double cpu_s_sum;              /* process CPU seconds of the timed runs, summed (per GEMM
                                  * for the gemm stage) */
  int    finite;                 /* 1: every output value finite */
  double out_absmax;             /* max |output| of the last run */
};

/* Shapes. */
const char *bench_variant_name (enum bench_variant v);
void        bench_mmdit_config (enum bench_variant v, struct mmdit_config *cfg);
/* Batch of one denoising step: 2 with CFG (cond + uncond in one batch), 1 for Turbo. */
int         bench_mmdit_batch (enum bench_variant v);

/* FLOP (2 per multiply-add) of one MMDiT forward of batch B at latent H×W with n_ctx context
 * tokens: every linear, the joint attention 4·N²·D per block (N = n_ctx + image tokens), the
 * MMDiT-X image self-attention 4·n²·D; adaLN and embedders included, norms not. */
double bench_mmdit_flop (const struct mmdit_config *cfg, int B, int H, int W, int n_ctx);
/* FLOP of one VAE decode of a latent h×w: every conv (2·Co·Ci·k²·Ho·Wo), the mid attention. */
double bench_vae_decode_flop (const struct vae_config *cfg, int h, int w);
/* FLOP of encoding one prompt: CLIP-L (77), CLIP-G (77), T5-XXL (t5_tokens). */
double bench_text_flop (int t5_tokens);

/* The stages.  Each builds its model on be, runs warmup + iters (iters ≤ BENCH_MAX_RUNS),
 * frees the model and fills r.  be->peak_bytes is reset to be->bytes_in_use at the start of
 * each stage so r->peak_bytes is that stage's own peak. */
enum sd35_status bench_gemm (struct backend *be, int n, int warmup, int iters,
                             struct bench_stage *r, struct sd35_error *err);
enum sd35_status bench_text (struct backend *be, int t5_tokens, int warmup, int iters,
                             struct bench_stage *r, struct sd35_error *err);
enum sd35_status bench_mmdit (struct backend *be, enum bench_variant v, int size, int n_ctx,
                              int warmup, int iters, struct bench_stage *r,
                              struct sd35_error *err);
/* The same for any MMDiT shape and batch (tests, experiments). */
enum sd35_status bench_mmdit_shape (struct backend *be, const struct mmdit_config *cfg, int B,
                                    int size, int n_ctx, int warmup, int iters,
                                    struct bench_stage *r, struct sd35_error *err);
enum sd35_status bench_vae (struct backend *be, int size, int warmup, int iters,
                            struct bench_stage *r, struct sd35_error *err);

/* Host monotonic clock in milliseconds. */
double bench_now_ms (void);
/* Fills r->ms_median/min/max from r->ms[0..runs). */
void   bench_stage_stats (struct bench_stage *r);

/* The text encoders of one prompt, for bench_tenc_flop (sd35-facts.md §1.2/§1.3); bench_text
 * builds them with clip_new_random / t5_new_random and runs clip_encode / t5_encode. */
enum bench_tenc_kind
{
  BENCH_CLIP_L = 0,  /* 12 layers, width 768, 12 heads, mlp 3072, quick-gelu */
  BENCH_CLIP_G,      /* 32 layers, width 1280, 20 heads, mlp 5120, gelu, text_projection */
  BENCH_T5XXL        /* 24 blocks, d_model 4096, 64 heads × 64, d_ff 10240, gated-gelu */
};
double bench_tenc_flop (enum bench_tenc_kind kind, int n_tokens);

#endif
