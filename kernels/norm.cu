/* norm.cu — layernorm, rmsnorm, qk_rmsnorm, ln_modulate, gated_add, groupnorm(+SiLU).
 * Statistics in fp32: two passes (mean, then Σ(x−mean)²) for the row norms, Welford partials
 * merged with Chan's formula for groupnorm (a VAE group holds millions of values).  One block
 * per row; in-place use (out == in) is safe because each thread writes only what it read. */
#include "cuda_common.h"

/* sum over the block (blockDim.x a multiple of 32, ≤ 1024) */
__device__ float
block_sum (float v)
{
  __shared__ float red[32];
  __shared__ float total;
  for (int o = 16; o; o >>= 1)
    v += __shfl_xor_sync (0xffffffffu, v, o);
  __syncthreads ();   /* red may still be read from a previous call */
  if ((threadIdx.x & 31) == 0)
    red[threadIdx.x >> 5] = v;
  __syncthreads ();
  if (threadIdx.x == 0)
    {
      float s = 0.f;
      for (int w = 0; w < (int) (blockDim.x >> 5); w++)
        s += red[w];
      total = s;
    }
  __syncthreads ();
  return total;
}

/* LayerNorm of row r; affine (w, b) optional; adaLN modulation optional:
 * y = LN(x)·(1 + mod[bi, scale_chunk·D + i]) + mod[bi, shift_chunk·D + i], bi = r / N */
__global__ void
layernorm_kernel (void *out, int odt, const void *in, int idt, const void *w, int wdt,
                  const void *bb, int bdt, const void *mod, int mdt, int64_t n_chunks,
                  int64_t shift_chunk, int64_t scale_chunk, int64_t N, int64_t D, float eps)
{
  const int64_t r = blockIdx.x;
  const size_t  base = (size_t) r * D;
  float         s = 0.f, v = 0.f;

  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    s += ld_f32 (in, idt, base + i);
  const float mean = block_sum (s) / (float) D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    {
      float d = ld_f32 (in, idt, base + i) - mean;
      v += d * d;
    }
  const float rstd = rsqrtf (block_sum (v) / (float) D + eps);
  const size_t mbase = mod ? (size_t) (r / N) * n_chunks * D : 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    {
      float y = (ld_f32 (in, idt, base + i) - mean) * rstd;
      if (w)
        y *= ld_f32 (w, wdt, i);
      if (bb)
        y += ld_f32 (bb, bdt, i);
      if (mod)
        y = y * (1.f + ld_f32 (mod, mdt, mbase + scale_chunk * D + i))
            + ld_f32 (mod, mdt, mbase + shift_chunk * D + i);
      st_f32 (out, odt, base + i, y);
    }
}

__global__ void
rmsnorm_kernel (void *out, int odt, const void *in, int idt, const void *w, int wdt, int64_t D,
                float eps)
{
  const size_t base = (size_t) blockIdx.x * D;
  float        s = 0.f;

  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    {
      float x = ld_f32 (in, idt, base + i);
      s += x * x;
    }
  const float rs = rsqrtf (block_sum (s) / (float) D + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    st_f32 (out, odt, base + i, ld_f32 (in, idt, base + i) * rs * (w ? ld_f32 (w, wdt, i) : 1.f));
}

/* one warp per (row, part ∈ {q, k}, head): RMSNorm over dh */
__global__ void
qk_rmsnorm_kernel (void *qkv, int dt, const void *wq, int wqdt, const void *wk, int wkdt,
                   int64_t rows, int64_t H, int64_t dh, float eps)
{
  const int64_t vec = (blockIdx.x * (int64_t) blockDim.x + threadIdx.x) >> 5;
  const int     lane = threadIdx.x & 31;
  if (vec >= rows * 2 * H)
    return;
  const int64_t row = vec / (2 * H), part = (vec / H) % 2, h = vec % H;
  const size_t  base = ((size_t) row * 3 + part) * H * dh + h * dh;
  const void   *w = part ? wk : wq;
  const int     wdt = part ? wkdt : wqdt;
  float         s = 0.f;

  for (int64_t i = lane; i < dh; i += 32)
    {
      float x = ld_f32 (qkv, dt, base + i);
      s += x * x;
    }
  for (int o = 16; o; o >>= 1)
    s += __shfl_xor_sync (0xffffffffu, s, o);
  const float rs = rsqrtf (s / (float) dh + eps);
  for (int64_t i = lane; i < dh; i += 32)
    st_f32 (qkv, dt, base + i, ld_f32 (qkv, dt, base + i) * rs * ld_f32 (w, wdt, i));
}

__global__ void
gated_add_kernel (void *x, int xdt, const void *y, int ydt, const void *mod, int mdt,
                  int64_t n_chunks, int64_t gate_chunk, int64_t N, int64_t D, size_t total)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total;
       i += (size_t) gridDim.x * blockDim.x)
    {
      float g = 1.f;
      if (gate_chunk >= 0)
        {
          size_t bi = i / ((size_t) N * D);
          g = ld_f32 (mod, mdt, (bi * n_chunks + gate_chunk) * D + i % D);
        }
      st_f32 (x, xdt, i, ld_f32 (x, xdt, i) + g * ld_f32 (y, ydt, i));
    }
}

/* --- groupnorm --------------------------------------------------------------------------------- */

struct welford
{
  float n, mean, m2;
};

__device__ __forceinline__ struct welford
welford_merge (struct welford a, struct welford b)
{
  struct welford r;
  float          n = a.n + b.n;
  if (n == 0.f)
    return a;
  float d = b.mean - a.mean, fb = b.n / n;
  r.n = n;
  r.mean = a.mean + d * fb;
  r.m2 = a.m2 + b.m2 + d * d * a.n * fb;
  return r;
}

/* grid (B·groups, splits): partial statistics of one slice of one group's contiguous data */
__global__ void
groupnorm_stats_kernel (struct welford *part, const void *in, int idt, size_t group_elems,
                        size_t slice)
{
  __shared__ struct welford red[32];
  const size_t   g = blockIdx.x, s0 = blockIdx.y * slice;
  const size_t   s1 = s0 + slice < group_elems ? s0 + slice : group_elems;
  struct welford w = { 0.f, 0.f, 0.f };

  for (size_t i = s0 + threadIdx.x; i < s1; i += blockDim.x)
    {
      float x = ld_f32 (in, idt, g * group_elems + i);
      w.n += 1.f;
      float d = x - w.mean;
      w.mean += d / w.n;
      w.m2 += d * (x - w.mean);
    }
  for (int o = 16; o; o >>= 1)
    {
      struct welford other;
      other.n = __shfl_xor_sync (0xffffffffu, w.n, o);
      other.mean = __shfl_xor_sync (0xffffffffu, w.mean, o);
      other.m2 = __shfl_xor_sync (0xffffffffu, w.m2, o);
      w = welford_merge (w, other);
    }
  if ((threadIdx.x & 31) == 0)
    red[threadIdx.x >> 5] = w;
  __syncthreads ();
  if (threadIdx.x == 0)
    {
      for (int k = 1; k < (int) (blockDim.x >> 5); k++)
        w = welford_merge (w, red[k]);
      part[g * gridDim.y + blockIdx.y] = w;
    }
}

/* one thread per group: merge the splits → (mean, rstd) */
__global__ void
groupnorm_final_kernel (float2 *stats, const struct welford *part, int n_groups, int splits,
                        float eps)
{
  int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= n_groups)
    return;
  struct welford w = part[(size_t) g * splits];
  for (int s = 1; s < splits; s++)
    w = welford_merge (w, part[(size_t) g * splits + s]);
  stats[g] = make_float2 (w.mean, rsqrtf (w.m2 / w.n + eps));
}

__global__ void
groupnorm_apply_kernel (void *out, int odt, const void *in, int idt, const void *w, int wdt,
                        const void *bb, int bdt, const float2 *stats, int64_t C, int64_t HW,
                        int64_t cpg, size_t total, int silu)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total;
       i += (size_t) gridDim.x * blockDim.x)
    {
      size_t bc = i / HW;                 /* b·C + c */
      int64_t c = bc % C;
      float2 st = stats[(bc / C) * (C / cpg) + c / cpg];
      float  y = (ld_f32 (in, idt, i) - st.x) * st.y;
      y = y * (w ? ld_f32 (w, wdt, c) : 1.f) + (bb ? ld_f32 (bb, bdt, c) : 0.f);
      if (silu)
        y = y / (1.f + __expf (-y));
      st_f32 (out, odt, i, y);
    }
}

/* --- launchers ---------------------------------------------------------------------------------- */

static unsigned
row_threads (int64_t D)
{
  return D >= 2048 ? 512 : D >= 512 ? 256 : D >= 128 ? 128 : 32;
}

void
cuda_op_layernorm (struct backend *be, struct tensor *out, const struct tensor *in,
                   const struct tensor *w, const struct tensor *b, int64_t rows, int64_t D,
                   float eps)
{
  if (cuda_check_float (be, out, "layernorm", "output")
      || cuda_check_float (be, in, "layernorm", "input")
      || (w && cuda_check_float (be, w, "layernorm", "weight"))
      || (b && cuda_check_float (be, b, "layernorm", "bias")) || rows <= 0 || D <= 0)
    return;
  layernorm_kernel<<<(unsigned) rows, row_threads (D), 0, cuda_impl_of (be)->stream>>>
    (out->data, out->dtype, in->data, in->dtype, w ? w->data : NULL, w ? w->dtype : 0,
     b ? b->data : NULL, b ? b->dtype : 0, NULL, 0, 0, 0, 0, 1, D, eps);
  CUDA_LAUNCH_CHECK (be);
}

void
cuda_op_ln_modulate (struct backend *be, struct tensor *out, const struct tensor *in,
                     const struct tensor *mod, int64_t n_chunks, int64_t shift_chunk,
                     int64_t scale_chunk, int64_t B, int64_t N, int64_t D, float eps)
{
  if (cuda_check_float (be, out, "ln_modulate", "output")
      || cuda_check_float (be, in, "ln_modulate", "input")
      || cuda_check_float (be, mod, "ln_modulate", "mod") || B * N <= 0 || D <= 0)
    return;
  layernorm_kernel<<<(unsigned) (B * N), row_threads (D), 0, cuda_impl_of (be)->stream>>>
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

void
cuda_op_gated_add (struct backend *be, struct tensor *x, const struct tensor *y,
                   const struct tensor *mod, int64_t n_chunks, int64_t gate_chunk, int64_t B,
                   int64_t N, int64_t D)
{
  size_t total = (size_t) B * N * D;
  if (cuda_check_float (be, x, "gated_add", "x") || cuda_check_float (be, y, "gated_add", "y")
      || (gate_chunk >= 0 && cuda_check_float (be, mod, "gated_add", "mod")) || total == 0)
    return;
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
      groupnorm_apply_kernel<<<cuda_grid_1d (total, 256), 256, 0, ci->stream>>>
        (out->data, out->dtype, in->data, in->dtype, w ? w->data : NULL, w ? w->dtype : 0,
         b ? b->data : NULL, b ? b->dtype : 0, stats, C, HW, C / groups, total, silu);
      CUDA_LAUNCH_CHECK (be);
    }
  cuda_scratch_free (be, part, part_bytes);
  cuda_scratch_free (be, stats, stat_bytes);
}
