/* norm.cu — layernorm, rmsnorm, qk_rmsnorm, ln_modulate, gated_add, groupnorm(+SiLU).
 * Statistics in fp32: two passes (mean, then Σ(x−mean)²) for the row norms, Welford partials
 * merged with Chan's formula for groupnorm (a VAE group holds millions of values).  One block
 * per row; in-place use (out == in) is safe because each thread writes only what it read. */
#include "cuda_common.h"

#include "norm_kernels.cuh"

/* --- launchers ---------------------------------------------------------------------------------- */

/* blocks along one channel plane of HW values (each thread then loops ~8 times) */
static unsigned
plane_blocks (int64_t HW)
{
  int64_t g = (HW + 256 * 8 - 1) / (256 * 8);
  return (unsigned) (g < 1 ? 1 : g > 65535 ? 65535 : g);
}

static unsigned
row_threads (int64_t D)
{
  return D >= 2048 ? 512 : D >= 512 ? 256 : D >= 128 ? 128 : 32;
}

/* the fast path applies: every row tensor bf16 or fp32 with D % 8 == 0 (16-byte aligned
 * chunks of 8), fp32 affine */
static int
is_bf16_or_f32 (const struct tensor *t)
{
  return t->dtype == SD35_BF16 || t->dtype == SD35_F32;
}

static int
ln_fast_ok (const struct tensor *out, const struct tensor *in, const struct tensor *w,
            const struct tensor *b, const struct tensor *mod, int64_t D)
{
  return is_bf16_or_f32 (out) && is_bf16_or_f32 (in) && D % 8 == 0
         && D <= 8 * LN_FAST_VEC * LN_FAST_THREADS && (!w || w->dtype == SD35_F32)
         && (!b || b->dtype == SD35_F32) && (!mod || is_bf16_or_f32 (mod))
         && ((uintptr_t) out->data | (uintptr_t) in->data
             | (uintptr_t) (mod ? mod->data : NULL)) % 16 == 0;
}

/* ln_fast_kernel<TO, TI, TM> for the dtypes of out, in and mod (mod NULL: TM = bf16) */
template <typename TO, typename TI, typename TM>
static void
ln_fast_launch (struct backend *be, const struct tensor *out, const struct tensor *in,
                const struct tensor *w, const struct tensor *b, const struct tensor *mod,
                int64_t n_chunks, int64_t shift_chunk, int64_t scale_chunk, int64_t rows,
                int64_t N, int64_t D, float eps)
{
  ln_fast_kernel<TO, TI, TM><<<(unsigned) rows, LN_FAST_THREADS, 0, cuda_impl_of (be)->stream>>>
    ((TO *) out->data, (const TI *) in->data, w ? (const float *) w->data : NULL,
     b ? (const float *) b->data : NULL, mod ? (const TM *) mod->data : NULL, n_chunks,
     shift_chunk, scale_chunk, N, (int) D, eps);
}

template <typename TO, typename TI>
static void
ln_fast_mod (struct backend *be, const struct tensor *out, const struct tensor *in,
             const struct tensor *w, const struct tensor *b, const struct tensor *mod,
             int64_t n_chunks, int64_t shift_chunk, int64_t scale_chunk, int64_t rows,
             int64_t N, int64_t D, float eps)
{
  if (mod && mod->dtype == SD35_F32)
    ln_fast_launch<TO, TI, float> (be, out, in, w, b, mod, n_chunks, shift_chunk, scale_chunk,
                                   rows, N, D, eps);
  else
    ln_fast_launch<TO, TI, __nv_bfloat16> (be, out, in, w, b, mod, n_chunks, shift_chunk,
                                           scale_chunk, rows, N, D, eps);
}

static void
ln_fast (struct backend *be, const struct tensor *out, const struct tensor *in,
         const struct tensor *w, const struct tensor *b, const struct tensor *mod,
         int64_t n_chunks, int64_t shift_chunk, int64_t scale_chunk, int64_t rows, int64_t N,
         int64_t D, float eps)
{
  const int of = out->dtype == SD35_F32, inf = in->dtype == SD35_F32;
  if (of && inf)
    ln_fast_mod<float, float> (be, out, in, w, b, mod, n_chunks, shift_chunk, scale_chunk,
                               rows, N, D, eps);
  else if (of)
    ln_fast_mod<float, __nv_bfloat16> (be, out, in, w, b, mod, n_chunks, shift_chunk,
                                       scale_chunk, rows, N, D, eps);
  else if (inf)
    ln_fast_mod<__nv_bfloat16, float> (be, out, in, w, b, mod, n_chunks, shift_chunk,
                                       scale_chunk, rows, N, D, eps);
  else
    ln_fast_mod<__nv_bfloat16, __nv_bfloat16> (be, out, in, w, b, mod, n_chunks, shift_chunk,
                                               scale_chunk, rows, N, D, eps);
}

void
cuda_op_layernorm (struct backend *be, struct tensor *out, const struct tensor *in,
                   const struct tensor *w, const struct tensor *b, int64_t rows, int64_t D,
                   float eps)
{
  cudaStream_t st = cuda_impl_of (be)->stream;
  if (cuda_check_float (be, out, "layernorm", "output")
      || cuda_check_float (be, in, "layernorm", "input")
      || (w && cuda_check_float (be, w, "layernorm", "weight"))
      || (b && cuda_check_float (be, b, "layernorm", "bias")) || rows <= 0 || D <= 0)
    return;
  if (ln_fast_ok (out, in, w, b, NULL, D))
    ln_fast (be, out, in, w, b, NULL, 0, 0, 0, rows, 1, D, eps);
  else
    layernorm_kernel<<<(unsigned) rows, row_threads (D), 0, st>>>
      (out->data, out->dtype, in->data, in->dtype, w ? w->data : NULL, w ? w->dtype : 0,
       b ? b->data : NULL, b ? b->dtype : 0, NULL, 0, 0, 0, 0, 1, D, eps);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                     int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps)
{
  cudaStream_t st = cuda_impl_of (be)->stream;
  if (cuda_check_float (be, out, "ln_modulate", "output")
      || cuda_check_float (be, in, "ln_modulate", "input")
      || cuda_check_float (be, mod, "ln_modulate", "mod") || B * N <= 0 || D <= 0)
    return;
  if (ln_fast_ok (out, in, NULL, NULL, mod, D))
    ln_fast (be, out, in, NULL, NULL, mod, n_chunks, shift_chunk, scale_chunk, B * N, N, D,
             eps);
  else
    layernorm_kernel<<<(unsigned) (B * N), row_threads (D), 0, st>>>
      (out->data, out->dtype, in->data, in->dtype, NULL, 0, NULL, 0, mod->data, mod->dtype,
       n_chunks, shift_chunk, scale_chunk, N, D, eps);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_rmsnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                 const struct tensor *w, int64_t rows, int64_t D, float eps)
{
  if (cuda_check_float (be, out, "rmsnorm", "output")
      || cuda_check_float (be, in, "rmsnorm", "input")
      || (w && cuda_check_float (be, w, "rmsnorm", "weight")) || rows <= 0 || D <= 0)
    return;
  rmsnorm_kernel<<<(unsigned) rows, row_threads (D), 0, cuda_impl_of (be)->stream>>>
    (out->data, out->dtype, in->data, in->dtype, w ? w->data : NULL, w ? w->dtype : 0, D, eps);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_qk_rmsnorm (struct backend *be, struct tensor *qkv, const struct tensor *wq,
                    const struct tensor *wk, int64_t rows, int64_t H, int64_t dh, float eps)
{
  size_t threads;
  if (cuda_check_float (be, qkv, "qk_rmsnorm", "qkv")
      || cuda_check_float (be, wq, "qk_rmsnorm", "q weight")
      || cuda_check_float (be, wk, "qk_rmsnorm", "k weight") || rows <= 0 || H <= 0 || dh <= 0)
    return;
  threads = (size_t) rows * 2 * H * 32;
  qk_rmsnorm_kernel<<<(unsigned) ((threads + 255) / 256), 256, 0, cuda_impl_of (be)->stream>>>
    (qkv->data, qkv->dtype, wq->data, wq->dtype, wk->data, wk->dtype, rows, H, dh, eps);
  CUDA_LAUNCH_CHECK (be);
}

/* gated_add_fast_kernel<TX, TY, TM> for the dtypes of x, y and mod (NULL: TM = bf16) */
template <typename TX, typename TY, typename TM>
static void
gated_add_launch (struct backend *be, struct tensor *x, const struct tensor *y,
                  const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t N,
                  int64_t D, size_t nvec)
{
  gated_add_fast_kernel<TX, TY, TM><<<cuda_grid_1d (nvec, 256), 256, 0,
                                      cuda_impl_of (be)->stream>>>
    ((TX *) x->data, (const TY *) y->data, mod ? (const TM *) mod->data : NULL, n_chunks,
     gate_chunk, N, D, nvec);
}

template <typename TX, typename TY>
static void
gated_add_mod (struct backend *be, struct tensor *x, const struct tensor *y,
               const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t N,
               int64_t D, size_t nvec)
{
  if (mod && mod->dtype == SD35_F32)
    gated_add_launch<TX, TY, float> (be, x, y, mod, n_chunks, gate_chunk, N, D, nvec);
  else
    gated_add_launch<TX, TY, __nv_bfloat16> (be, x, y, mod, n_chunks, gate_chunk, N, D, nvec);
}

static void
gated_add_fast (struct backend *be, struct tensor *x, const struct tensor *y,
                const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t N,
                int64_t D, size_t nvec)
{
  const int xf = x->dtype == SD35_F32, yf = y->dtype == SD35_F32;
  if (xf && yf)
    gated_add_mod<float, float> (be, x, y, mod, n_chunks, gate_chunk, N, D, nvec);
  else if (xf)
    gated_add_mod<float, __nv_bfloat16> (be, x, y, mod, n_chunks, gate_chunk, N, D, nvec);
  else if (yf)
    gated_add_mod<__nv_bfloat16, float> (be, x, y, mod, n_chunks, gate_chunk, N, D, nvec);
  else
    gated_add_mod<__nv_bfloat16, __nv_bfloat16> (be, x, y, mod, n_chunks, gate_chunk, N, D,
                                                 nvec);
}

void
cuda_op_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
                   const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t B,
                   int64_t N, int64_t D)
{
  size_t total = (size_t) B * N * D;
  if (cuda_check_float (be, x, "gated_add", "x") || cuda_check_float (be, y, "gated_add", "y")
      || (gate_chunk >= 0 && cuda_check_float (be, mod, "gated_add", "mod")) || total == 0)
    return;
  if (is_bf16_or_f32 (x) && is_bf16_or_f32 (y) && D % 8 == 0
      && (gate_chunk < 0 || is_bf16_or_f32 (mod))
      && ((uintptr_t) x->data | (uintptr_t) y->data
          | (uintptr_t) (gate_chunk >= 0 ? mod->data : NULL)) % 16 == 0)
    gated_add_fast (be, x, y, gate_chunk >= 0 ? mod : NULL, n_chunks, gate_chunk, N, D,
                    total / 8);
  else
    gated_add_kernel<<<cuda_grid_1d (total, 256), 256, 0, cuda_impl_of (be)->stream>>>
      (x->data, x->dtype, y->data, y->dtype, gate_chunk >= 0 ? mod->data : NULL,
       gate_chunk >= 0 ? mod->dtype : 0, n_chunks, gate_chunk, N, D, total);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_groupnorm (struct backend *be, struct tensor *out, const struct tensor *in,
                   const struct tensor *w, const struct tensor *b, int64_t B, int64_t C,
                   int64_t HW, int64_t groups, float eps, int silu)
{
  struct cuda_impl *ci = cuda_impl_of (be);
  size_t            group_elems, slice, total = (size_t) B * C * HW, part_bytes, stat_bytes;
  int               splits, n_groups;
  struct welford   *part;
  float2           *stats;

  if (cuda_check_float (be, out, "groupnorm", "output")
      || cuda_check_float (be, in, "groupnorm", "input")
      || (w && cuda_check_float (be, w, "groupnorm", "weight"))
      || (b && cuda_check_float (be, b, "groupnorm", "bias")) || total == 0)
    return;
  if (B * C > 65535)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "groupnorm: B·C = %lld exceeds 65535", (long long) (B * C));
      return;
    }
  if (groups <= 0 || C % groups != 0)
    {
      CUDA_FAIL (be, SD35_ERR_ARG, "groupnorm: %lld channels do not split into %lld groups",
                 (long long) C, (long long) groups);
      return;
    }
  n_groups = (int) (B * groups);
  group_elems = (size_t) (C / groups) * HW;
  splits = (int) ((group_elems + 16383) / 16384);
  if (splits > 1024)
    splits = 1024;
  slice = (group_elems + splits - 1) / splits;
  part_bytes = (size_t) n_groups * splits * sizeof (struct welford);
  stat_bytes = (size_t) n_groups * sizeof (float2);
  part = (struct welford *) cuda_scratch_alloc (be, part_bytes);
  stats = (float2 *) cuda_scratch_alloc (be, stat_bytes);
  if (part && stats)
    {
      groupnorm_stats_kernel<<<dim3 ((unsigned) n_groups, (unsigned) splits), 256, 0,
                               ci->stream>>> (part, in->data, in->dtype, group_elems, slice);
      groupnorm_final_kernel<<<(n_groups + 127) / 128, 128, 0, ci->stream>>>
        (stats, part, n_groups, splits, eps);
      groupnorm_apply_kernel<<<dim3 (plane_blocks (HW), (unsigned) (B * C)), 256, 0,
                               ci->stream>>>
        (out->data, out->dtype, in->data, in->dtype, w ? w->data : NULL, w ? w->dtype : 0,
         b ? b->data : NULL, b ? b->dtype : 0, stats, C, HW, C / groups, silu);
      CUDA_LAUNCH_CHECK (be);
    }
  cuda_scratch_free (be, part);
  cuda_scratch_free (be, stats);
}
