/* ops.h — the op interface that all model code (clip.c, t5.c, mmdit.c, vae.c) is written
 * against.  A backend (engine/backend/cpu/ = the readable fp32 reference, kernels/ = CUDA bf16) fills a
 * `struct backend_ops` table; model code calls the `op_*` wrappers below and never touches
 * tensor memory directly.
 *
 * Conventions (llm.c style):
 *   - Tensors are dense, row-major (torch order, innermost dim last) and owned by their backend.
 *   - Sizes are passed explicitly; ops take outputs first, then inputs, then weights, then sizes,
 *     then scalars.  B = batch, L/N = tokens, D/C = channels, H = heads, dh = head dim.
 *   - Activations are backend->act_dtype (F32 on the CPU, BF16 on CUDA); weights are whatever
 *     the backend chose at load (backend_ops.weight_from_host).  Ops accept both; norms,
 *     softmax and accumulation are fp32 everywhere.
 *   - Errors are sticky: an op that fails records the first error in backend->err and later
 *     ops become no-ops; model code checks backend_failed() at block boundaries (a CUDA
 *     launch error surfaces late anyway).  Nothing here exits or aborts.
 *   - In-place use (out == in) is allowed for every elementwise op, norms and modulate.
 *   - Per-tensor dtype: every tensor carries its own storage dtype (struct tensor.dtype) and
 *     every op reads each input and writes each output in that tensor's dtype; inputs and
 *     outputs of one op may differ (e.g. gated_add with x F32 and y BF16, ln_modulate F32 in
 *     → BF16 out, linear BF16 in → F32 out).  tensor_new_act* give act_dtype; model code asks
 *     for SD35_F32 explicitly (tensor_new (be, SD35_F32, …)) where bf16 storage would cost
 *     accuracy: what accumulates (residual streams: MMDiT x/context and what is added to them,
 *     CLIP/T5 hidden states, the VAE's residual path), what scales every value (adaLN vectors,
 *     the embedder path to SiLU(c)), fp32 inputs and outputs of a model (latent in, v out, the
 *     T5 position bias).  Tensors that only feed a GEMM (norm outputs, qkv, attention output,
 *     MLP hidden) stay act_dtype: on CUDA linear / conv2d / attention take bf16 operands and
 *     convert an F32 input first (fp32 accumulation), except a linear with an F32 input of at
 *     most 8 rows (adaLN / embedders), which CUDA reads in fp32 (kernels/gemv_kernel.cuh).
 *     On the CPU act_dtype is F32, so all of this is the same fp32 there.
 *     tests/gpu/bf16_emu.c emulates these rules to predict the CUDA error without a GPU.
 */
#ifndef SD35_OPS_H
#define SD35_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "sd35.h"
#include "dtype.h"

struct backend;

struct tensor
{
  struct backend *be;
  enum sd35_dtype dtype;   /* storage type of data */
  int             ndim;
  int64_t         shape[4];
  size_t          numel;
  void           *data;    /* backend memory (host for CPU, device for CUDA) */
  void           *priv;    /* backend bookkeeping (e.g. a pool slot, an mmap'd source) */
};

enum op_act
{
  ACT_NONE = 0,
  ACT_GELU_TANH,   /* 0.5x(1+tanh(√(2/π)(x+0.044715x³)))   MMDiT mlp, T5 gated-gelu */
  ACT_GELU_ERF,    /* 0.5x(1+erf(x/√2))                     CLIP-G */
  ACT_QUICK_GELU,  /* x·sigmoid(1.702x)                     CLIP-L */
  ACT_SILU,        /* x·sigmoid(x)                          adaLN inputs, VAE */
  ACT_RELU         /* max(x, 0)                             TAESD decoder */
};

/* Where a weight will be used: lets a backend keep big matrices in a compact dtype (bf16/f16)
 * and small vectors in fp32. */
enum weight_use
{
  WEIGHT_MATRIX = 0,  /* linear / conv weight, embedding table */
  WEIGHT_VECTOR       /* bias, norm weight, pos-embed, anything small */
};

struct backend_ops
{
  void (*destroy) (struct backend *be);

  /* --- memory -------------------------------------------------------------------- */
  /* Fill t->data for t->dtype/numel (t->be, dtype, shape, numel set by the caller). */
  enum sd35_status (*alloc) (struct backend *be, struct tensor *t);
  void (*release) (struct backend *be, struct tensor *t);
  /* host fp32 ⇄ tensor (any activation dtype), numel floats */
  void (*upload_f32)   (struct backend *be, struct tensor *dst, const float *src);
  void (*download_f32) (struct backend *be, float *dst, const struct tensor *src);
  /* A weight from file bytes of dtype `src_dtype` (F32/F16/BF16/F8_E4M3/F8_E5M2): the backend
   * picks the storage dtype, allocates t (shape set by caller) and converts.  `src` stays
   * valid for the engine's life (mmap), so a CPU backend may alias it. */
  enum sd35_status (*weight_from_host) (struct backend *be, struct tensor *t,
                                        const void *src, enum sd35_dtype src_dtype,
                                        enum weight_use use);
  void (*synchronize) (struct backend *be);

  /* --- linear algebra ------------------------------------------------------------- */
  /* out[M,N] = act(in[M,K] · w[N,K]ᵀ + b[N])       torch: F.linear(in, w, b) */
  void (*linear) (struct backend *be, struct tensor *out, const struct tensor *in,
                  const struct tensor *w, const struct tensor *b /* may be NULL */,
                  int64_t M, int64_t N, int64_t K, enum op_act act);

  /* Multi-head attention on a packed qkv tensor [B, L, 3, H, dh] (the layout of a fused qkv
   * linear): out[B, L, H·dh] = softmax(scale·q·kᵀ + bias [+ causal mask]) · v per head.
   * bias: optional fp32 [H, L, L] (T5 relative position bias), added before softmax.
   * causal: −inf above the diagonal (CLIP). */
  void (*attention) (struct backend *be, struct tensor *out, const struct tensor *qkv,
                     const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                     float scale, int causal);

  /* --- norms ------------------------------------------------------------------------ */
  /* LayerNorm over the last dim D of rows rows; w/b may be NULL (no affine). */
  void (*layernorm) (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *w, const struct tensor *b,
                     int64_t rows, int64_t D, float eps);
  /* RMSNorm: out = w · x · rsqrt(mean(x²) + eps), over the last dim D. */
  void (*rmsnorm) (struct backend *be, struct tensor *out, const struct tensor *in,
                   const struct tensor *w, int64_t rows, int64_t D, float eps);
  /* In place on packed qkv [rows, 3, H, dh]: RMSNorm (over dh) of the q part with wq[dh] and
   * of the k part with wk[dh]; v untouched.  (MMDiT qk-norm, SelfAttention.pre_attention.) */
  void (*qk_rmsnorm) (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                      const struct tensor *wk, int64_t rows, int64_t H, int64_t dh, float eps);
  /* adaLN: out[b,n,:] = LN(in[b,n,:]) · (1 + scale[b]) + shift[b]; LN without affine.
   * mod is the adaLN linear output [B, n_chunks·D]; chunk k of batch b is
   * mod[b, k·D : (k+1)·D].  (DismantledBlock.pre_attention: modulate(norm1(x), shift, scale)) */
  void (*ln_modulate) (struct backend *be, struct tensor *out, const struct tensor *in,
                       const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                       int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps);
  /* x[b,n,:] += gate[b] · y[b,n,:], gate = chunk gate_chunk of mod [B, n_chunks·D];
   * gate_chunk < 0 means a plain residual add (gate = 1). */
  void (*gated_add) (struct backend *be, struct tensor *x, const struct tensor *y,
                     const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk,
                     int64_t B, int64_t N, int64_t D);
  /* GroupNorm over [B, C, HW] with affine w,b [C]; optionally SiLU after. (VAE) */
  void (*groupnorm) (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *w, const struct tensor *b, int64_t B, int64_t C,
                     int64_t HW, int64_t groups, float eps, int silu);

  /* --- elementwise ------------------------------------------------------------------ */
  void (*activation) (struct backend *be, struct tensor *out, const struct tensor *in,
                      int64_t n, enum op_act act);
  void (*add) (struct backend *be, struct tensor *out, const struct tensor *a,
               const struct tensor *b, int64_t n);
  void (*mul) (struct backend *be, struct tensor *out, const struct tensor *a,
               const struct tensor *b, int64_t n);
  /* out[b, i] = in[b, i] + vec[i] for i < n (broadcast over B); pos-embed, biases */
  void (*add_broadcast) (struct backend *be, struct tensor *out, const struct tensor *in,
                         const struct tensor *vec, int64_t B, int64_t n);
  void (*copy) (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n);

  /* --- layout ------------------------------------------------------------------------- */
  /* out[B, L1+L2, C] = cat(a[B, L1, C], b[B, L2, C], dim=1)   (context first, then x) */
  void (*concat_rows) (struct backend *be, struct tensor *out, const struct tensor *a,
                       const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C);
  /* inverse: a = in[:, :L1], b = in[:, L1:]; a or b may be NULL (discarded) */
  void (*split_rows) (struct backend *be, struct tensor *a, struct tensor *b,
                      const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C);
  /* out[B, N, C] = in[B, C, N]ᵀ (and back, by swapping C and N) */
  void (*transpose) (struct backend *be, struct tensor *out, const struct tensor *in,
                     int64_t B, int64_t C, int64_t N);
  /* out[n, D] = table[ids[n], D]; ids on the host, all in [0, V) (checked by caller) */
  void (*embedding) (struct backend *be, struct tensor *out, const struct tensor *table,
                     const int32_t *ids, int64_t n, int64_t D);

  /* --- images --------------------------------------------------------------------------- */
  /* out[B, Co, Ho, Wo] = conv2d(in[B, Ci, H, W], w[Co, Ci, kh, kw], b[Co]) with zero padding
   * (top, left, bottom, right) and stride; Ho = (H + pt + pb − kh)/stride + 1. */
  void (*conv2d) (struct backend *be, struct tensor *out, const struct tensor *in,
                  const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci,
                  int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride,
                  int64_t pad_t, int64_t pad_l, int64_t pad_b, int64_t pad_r);
  /* out[B, C, 2H, 2W] = nearest-neighbour ×2 of in[B, C, H, W] */
  void (*upsample2x) (struct backend *be, struct tensor *out, const struct tensor *in,
                      int64_t B, int64_t C, int64_t H, int64_t W);
  /* MMDiT patchify: in[B, C, H, W] → out[B, (H/p)(W/p), C·p·p], token index r·(W/p)+c,
   * vector order (c, pr, pc) = the flattening of Conv2d weight [hidden, C, p, p]. */
  void (*patchify) (struct backend *be, struct tensor *out, const struct tensor *in,
                    int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);
  /* MMDiT unpatchify: in[B, (H/p)(W/p), p·p·C] with vector order (pr, pc, c) →
   * out[B, C, H, W]   (einsum nhwpqc→nchpwq) */
  void (*unpatchify) (struct backend *be, struct tensor *out, const struct tensor *in,
                      int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);

  /* --- policy: what engine and model code ask instead of comparing backend names -------- */
  /* Bytes this backend could still allocate for tensors (a GPU: the device's free memory
   * plus what its pool caches; the CPU: the RAM available now); 0 when the device cannot be
   * asked (callers then take the frugal path, e.g. a tiled VAE decode). NULL: no limit known
   * (backend_free_bytes gives SIZE_MAX). */
  size_t (*free_bytes) (struct backend *be);
};

struct backend
{
  const char               *name;       /* "cpu", "cuda": for messages and logs only — engine
                                         * and model code ask the fields and ops below, never
                                         * the name (tests/unit/test_backend_policy.sh) */
  const struct backend_ops *ops;
  enum sd35_dtype           act_dtype;  /* activation storage */
  /* Tensors live in memory of the device's own (a GPU), apart from the host's RAM: text
   * encoders are worth offloading to the host between uses, and the device is fast enough
   * that per-step work such as TAESD previews costs little. 0 for host backends. */
  int                       device_memory;
  /* threads for host-side work outside the ops (LoRA merges): the user's thread count, else
   * all cores (set by backend_new; 0 = not set, taken as all cores) */
  int                       host_threads;
  struct sd35_error         err;        /* sticky first error */
  size_t                    bytes_in_use, peak_bytes;
  void                     *impl;
};

/* --- backends ---------------------------------------------------------------------------- */
/* CPU backend (engine/backend/cpu/): n_threads 0 = all cores. */
enum sd35_status backend_cpu_new (int n_threads, struct backend **out, struct sd35_error *err);
/* CUDA backend (kernels/): SD35_ERR_CUDA with a clear message when no GPU/driver. Absent
 * (returns SD35_ERR_CUDA "built without CUDA") when compiled with -Dcuda=disabled. */
enum sd35_status backend_cuda_new (struct backend **out, struct sd35_error *err);
/* AUTO tries CUDA then falls back to CPU with a one-line notice. */
enum sd35_status backend_new (enum sd35_backend_kind kind, int n_threads, struct backend **out,
                              struct sd35_error *err);
void backend_free (struct backend *be);

static inline int
backend_failed (const struct backend *be)
{
  return be->err.status != SD35_OK;
}

/* Copies the sticky error into err (if any) and returns its status. */
enum sd35_status backend_check (struct backend *be, struct sd35_error *err);

/* Bytes the backend could still allocate (ops->free_bytes); SIZE_MAX when no limit is known. */
size_t backend_free_bytes (struct backend *be);
/* Bytes one large working set (a whole-image VAE decode) may take before the caller tiles
 * it: most of a device's free memory (room left for cuBLAS and the driver), a quarter of the
 * RAM on the host. */
size_t backend_work_budget (struct backend *be);

/* --- tensors ------------------------------------------------------------------------------ */
/* New backend tensor of dtype and shape (ndim ≤ 4); NULL on failure (error in be->err).
 * numel is computed with overflow checks. */
struct tensor *tensor_new (struct backend *be, enum sd35_dtype dtype, int ndim,
                           const int64_t *shape);
struct tensor *tensor_new_act1 (struct backend *be, int64_t d0);
struct tensor *tensor_new_act2 (struct backend *be, int64_t d0, int64_t d1);
struct tensor *tensor_new_act3 (struct backend *be, int64_t d0, int64_t d1, int64_t d2);
struct tensor *tensor_new_act4 (struct backend *be, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* fp32 host data → new activation tensor */
struct tensor *tensor_from_f32 (struct backend *be, const float *src, int ndim,
                                const int64_t *shape);
void tensor_free (struct tensor *t);
/* tensor → host fp32 (numel floats) */
void tensor_to_f32 (const struct tensor *t, float *dst);

/* --- op wrappers (skip when the backend already failed; check sizes in debug builds) ---- */
/* In builds without NDEBUG (meson's debug and debugoptimized) every op_* call first checks
 * that each tensor argument holds at least the elements its sizes name (op_check.c) and
 * records SD35_ERR_INTERNAL naming the op and the tensor otherwise. */
#ifndef NDEBUG
#define OP_SIZES_OK(be, fn, ...) op_check_##fn ((be), __VA_ARGS__)
#else
#define OP_SIZES_OK(be, fn, ...) 1
#endif
#define OP_CALL(be, fn, ...) \
  do { if (!backend_failed (be) && OP_SIZES_OK (be, fn, __VA_ARGS__)) \
         (be)->ops->fn ((be), __VA_ARGS__); } while (0)

/* host fp32 ⇄ tensor (numel floats) and waiting for the backend, with the same sticky-error
 * rule as the ops: model code calls these, never be->ops->upload_f32 and friends. */
#define op_upload_f32(be, ...)    OP_CALL (be, upload_f32, __VA_ARGS__)
#define op_download_f32(be, ...)  OP_CALL (be, download_f32, __VA_ARGS__)
#define op_synchronize(be) \
  do { if (!backend_failed (be)) (be)->ops->synchronize (be); } while (0)
/* A weight from file bytes (ops->weight_from_host); returns the backend's status. */
enum sd35_status op_weight_from_host (struct backend *be, struct tensor *t, const void *src,
                                      enum sd35_dtype src_dtype, enum weight_use use);

#define op_linear(be, ...)        OP_CALL (be, linear, __VA_ARGS__)
#define op_attention(be, ...)     OP_CALL (be, attention, __VA_ARGS__)
#define op_layernorm(be, ...)     OP_CALL (be, layernorm, __VA_ARGS__)
#define op_rmsnorm(be, ...)       OP_CALL (be, rmsnorm, __VA_ARGS__)
#define op_qk_rmsnorm(be, ...)    OP_CALL (be, qk_rmsnorm, __VA_ARGS__)
#define op_ln_modulate(be, ...)   OP_CALL (be, ln_modulate, __VA_ARGS__)
#define op_gated_add(be, ...)     OP_CALL (be, gated_add, __VA_ARGS__)
#define op_groupnorm(be, ...)     OP_CALL (be, groupnorm, __VA_ARGS__)
#define op_activation(be, ...)    OP_CALL (be, activation, __VA_ARGS__)
#define op_add(be, ...)           OP_CALL (be, add, __VA_ARGS__)
#define op_mul(be, ...)           OP_CALL (be, mul, __VA_ARGS__)
#define op_add_broadcast(be, ...) OP_CALL (be, add_broadcast, __VA_ARGS__)
#define op_copy(be, ...)          OP_CALL (be, copy, __VA_ARGS__)
#define op_concat_rows(be, ...)   OP_CALL (be, concat_rows, __VA_ARGS__)
#define op_split_rows(be, ...)    OP_CALL (be, split_rows, __VA_ARGS__)
#define op_transpose(be, ...)     OP_CALL (be, transpose, __VA_ARGS__)
#define op_embedding(be, ...)     OP_CALL (be, embedding, __VA_ARGS__)
#define op_conv2d(be, ...)        OP_CALL (be, conv2d, __VA_ARGS__)
#define op_upsample2x(be, ...)    OP_CALL (be, upsample2x, __VA_ARGS__)
#define op_patchify(be, ...)      OP_CALL (be, patchify, __VA_ARGS__)
#define op_unpatchify(be, ...)    OP_CALL (be, unpatchify, __VA_ARGS__)

/* The size checks behind OP_SIZES_OK (op_check.c): 1 when every tensor is large enough. */
int op_check_upload_f32 (struct backend *be, struct tensor *dst, const float *src);
int op_check_download_f32 (struct backend *be, float *dst, const struct tensor *src);
int op_check_linear (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *w, const struct tensor *b, int64_t M, int64_t N,
                     int64_t K, enum op_act act);
int op_check_attention (struct backend *be, struct tensor *out, const struct tensor *qkv,
                        const struct tensor *bias, int64_t B, int64_t L, int64_t H, int64_t dh,
                        float scale, int causal);
int op_check_layernorm (struct backend *be, struct tensor *out, const struct tensor *in,
                        const struct tensor *w, const struct tensor *b, int64_t rows,
                        int64_t D, float eps);
int op_check_rmsnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                      const struct tensor *w, int64_t rows, int64_t D, float eps);
int op_check_qk_rmsnorm (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                         const struct tensor *wk, int64_t rows, int64_t H, int64_t dh,
                         float eps);
int op_check_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *in,
                          const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                          int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps);
int op_check_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
                        const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk,
                        int64_t B, int64_t N, int64_t D);
int op_check_groupnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                        const struct tensor *w, const struct tensor *b, int64_t B, int64_t C,
                        int64_t HW, int64_t groups, float eps, int silu);
int op_check_activation (struct backend *be, struct tensor *out, const struct tensor *in,
                         int64_t n, enum op_act act);
int op_check_add (struct backend *be, struct tensor *out, const struct tensor *a,
                  const struct tensor *b, int64_t n);
int op_check_mul (struct backend *be, struct tensor *out, const struct tensor *a,
                  const struct tensor *b, int64_t n);
int op_check_add_broadcast (struct backend *be, struct tensor *out, const struct tensor *in,
                            const struct tensor *vec, int64_t B, int64_t n);
int op_check_copy (struct backend *be, struct tensor *dst, const struct tensor *src, int64_t n);
int op_check_concat_rows (struct backend *be, struct tensor *out, const struct tensor *a,
                          const struct tensor *b, int64_t B, int64_t L1, int64_t L2, int64_t C);
int op_check_split_rows (struct backend *be, struct tensor *a, struct tensor *b,
                         const struct tensor *in, int64_t B, int64_t L1, int64_t L2, int64_t C);
int op_check_transpose (struct backend *be, struct tensor *out, const struct tensor *in,
                        int64_t B, int64_t C, int64_t N);
int op_check_embedding (struct backend *be, struct tensor *out, const struct tensor *table,
                        const int32_t *ids, int64_t n, int64_t D);
int op_check_conv2d (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *w, const struct tensor *b, int64_t B, int64_t Ci,
                     int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t stride,
                     int64_t pad_t, int64_t pad_l, int64_t pad_b, int64_t pad_r);
int op_check_upsample2x (struct backend *be, struct tensor *out, const struct tensor *in,
                         int64_t B, int64_t C, int64_t H, int64_t W);
int op_check_patchify (struct backend *be, struct tensor *out, const struct tensor *in,
                       int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);
int op_check_unpatchify (struct backend *be, struct tensor *out, const struct tensor *in,
                         int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);

#endif
