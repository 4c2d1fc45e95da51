/* norm_kernels.cuh — the kernels of norm.cu (launchers there).  Apart so that the host
 * emulation test (tests/unit/test_cuda_emu.cc) runs the same code without a GPU. */
#ifndef SD35_NORM_KERNELS_CUH
#define SD35_NORM_KERNELS_CUH

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

/* Welford partials: the count is an integer (a float count stops being exact at 2²⁴
 * elements, which one group of a 2048² VAE decode passes); mean and m2 stay fp32. */
struct welford
{
  unsigned long long n;
  float              mean, m2;
};

__device__ __forceinline__ struct welford
welford_merge (struct welford a, struct welford b)
{
  struct welford           r;
  const unsigned long long n = a.n + b.n;
  if (b.n == 0)
    return a;
  if (a.n == 0)
    return b;
  float d = b.mean - a.mean, fb = (float) ((double) b.n / (double) n);
  r.n = n;
  r.mean = a.mean + d * fb;
  r.m2 = a.m2 + b.m2 + d * d * (float) a.n * fb;
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
  struct welford w = { 0ull, 0.f, 0.f };

  for (size_t i = s0 + threadIdx.x; i < s1; i += blockDim.x)
    {
      float x = ld_f32 (in, idt, g * group_elems + i);
      w.n += 1;
      float d = x - w.mean;
      w.mean += d / (float) w.n;
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
  stats[g] = make_float2 (w.mean, rsqrtf (w.m2 / (float) w.n + eps));
}

/* grid.y = b·C + c (one channel plane per block row): no per-element index division */
__global__ void
groupnorm_apply_kernel (void *out, int odt, const void *in, int idt, const void *w, int wdt,
                        const void *bb, int bdt, const float2 *stats, int64_t C, int64_t HW,
                        int64_t cpg, int silu)
{
  const size_t  bc = blockIdx.y;
  const int64_t c = (int64_t) (bc % C);
  const float2  st = stats[(bc / C) * (C / cpg) + c / cpg];
  const float   a = st.y * (w ? ld_f32 (w, wdt, c) : 1.f);
  const float   o = (bb ? ld_f32 (bb, bdt, c) : 0.f) - st.x * a;   /* y = x·a + o */
  for (int64_t p = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; p < HW;
       p += (int64_t) gridDim.x * blockDim.x)
    {
      float y = ld_f32 (in, idt, bc * HW + p) * a + o;
      if (silu)
        y = y / (1.f + __expf (-y));
      st_f32 (out, odt, bc * HW + p, y);
    }
}

/* --- fast paths: bf16/fp32 rows with D % 8 == 0, 16-byte accesses ------------------------------ */

#define LN_FAST_THREADS 256
#define LN_FAST_VEC     4     /* 16-byte chunks per thread: D ≤ 8 · 4 · 256 = 8192 */

__device__ __forceinline__ void
bf16x8_to_f32 (const uint4 u, float f[8])
{
  const unsigned w[4] = { u.x, u.y, u.z, u.w };
#pragma unroll
  for (int i = 0; i < 4; i++)
    {
      f[2 * i] = __uint_as_float (w[i] << 16);
      f[2 * i + 1] = __uint_as_float (w[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ uint4
f32_to_bf16x8 (const float f[8])
{
  unsigned w[4];
#pragma unroll
  for (int i = 0; i < 4; i++)
    w[i] = (unsigned) __bfloat16_as_ushort (__float2bfloat16 (f[2 * i]))
           | ((unsigned) __bfloat16_as_ushort (__float2bfloat16 (f[2 * i + 1])) << 16);
  return make_uint4 (w[0], w[1], w[2], w[3]);
}

/* 8 consecutive values (chunk c of a row) as fp32, and back: one 16-byte access for bf16,
 * two for fp32 (the residual streams and adaLN vectors the model code keeps in fp32). */
__device__ __forceinline__ void
ld8 (const __nv_bfloat16 *p, size_t c, float f[8])
{
  bf16x8_to_f32 (((const uint4 *) p)[c], f);
}

__device__ __forceinline__ void
ld8 (const float *p, size_t c, float f[8])
{
  const float4 a = ((const float4 *) p)[2 * c], b = ((const float4 *) p)[2 * c + 1];
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
  f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}

__device__ __forceinline__ void
st8 (__nv_bfloat16 *p, size_t c, const float f[8])
{
  ((uint4 *) p)[c] = f32_to_bf16x8 (f);
}

__device__ __forceinline__ void
st8 (float *p, size_t c, const float f[8])
{
  ((float4 *) p)[2 * c] = make_float4 (f[0], f[1], f[2], f[3]);
  ((float4 *) p)[2 * c + 1] = make_float4 (f[4], f[5], f[6], f[7]);
}

/* layernorm_kernel for rows with D % 8 == 0 whose tensors are bf16 or fp32 each (TO out,
 * TI in, TM mod: __nv_bfloat16 or float; e.g. an fp32 residual stream in, bf16 out): one HBM
 * read and one write per element (the row stays in registers); fp32 w/b.  In place (same
 * type) is safe: every read precedes the first write. */
template <typename TO, typename TI, typename TM>
__global__ void __launch_bounds__ (LN_FAST_THREADS)
ln_fast_kernel (TO *out, const TI *in, const float *w, const float *bb, const TM *mod,
                int64_t n_chunks, int64_t shift_chunk, int64_t scale_chunk, int64_t N, int D,
                float eps)
{
  const int64_t r = blockIdx.x;
  const int     nv = D / 8;
  const TI     *src = in + r * D;
  float         v[LN_FAST_VEC][8];
  float         s = 0.f, q = 0.f;

#pragma unroll
  for (int k = 0; k < LN_FAST_VEC; k++)
    {
      int c = (int) threadIdx.x + k * LN_FAST_THREADS;
      if (c < nv)
        {
          ld8 (src, c, v[k]);
#pragma unroll
          for (int e = 0; e < 8; e++)
            s += v[k][e];
        }
    }
  const float mean = block_sum (s) / (float) D;
#pragma unroll
  for (int k = 0; k < LN_FAST_VEC; k++)
    if ((int) threadIdx.x + k * LN_FAST_THREADS < nv)
#pragma unroll
      for (int e = 0; e < 8; e++)
        {
          float d = v[k][e] - mean;
          q += d * d;
        }
  const float rstd = rsqrtf (block_sum (q) / (float) D + eps);
  const TM   *mrow = mod ? mod + (r / N) * n_chunks * D : NULL;
  TO         *dst = out + r * D;
#pragma unroll
  for (int k = 0; k < LN_FAST_VEC; k++)
    {
      int c = (int) threadIdx.x + k * LN_FAST_THREADS;
      if (c >= nv)
        continue;
      float y[8];
#pragma unroll
      for (int e = 0; e < 8; e++)
        {
          y[e] = (v[k][e] - mean) * rstd;
          if (w)
            y[e] *= w[c * 8 + e];
          if (bb)
            y[e] += bb[c * 8 + e];
        }
      if (mrow)
        {
          float sc[8], sh[8];
          ld8 (mrow + scale_chunk * D, c, sc);
          ld8 (mrow + shift_chunk * D, c, sh);
#pragma unroll
          for (int e = 0; e < 8; e++)
            y[e] = y[e] * (1.f + sc[e]) + sh[e];
        }
      st8 (dst, c, y);
    }
}

/* gated_add_kernel with D % 8 == 0, each of x, y, mod bf16 or fp32 (TX, TY, TM; the MMDiT
 * case: an fp32 stream x += fp32 gate · bf16 projection y): nvec = B·N·D / 8 chunks of 8 */
template <typename TX, typename TY, typename TM>
__global__ void
gated_add_fast_kernel (TX *x, const TY *y, const TM *mod, int64_t n_chunks, int64_t gate_chunk,
                       int64_t N, int64_t D, size_t nvec)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < nvec;
       i += (size_t) gridDim.x * blockDim.x)
    {
      float a[8], b[8], g[8];
      ld8 (x, i, a);
      ld8 (y, i, b);
      if (mod)
        {
          size_t e0 = i * 8, bi = e0 / ((size_t) N * D);
          ld8 (mod + (bi * n_chunks + gate_chunk) * D + e0 % D, 0, g);
        }
      else
#pragma unroll
        for (int e = 0; e < 8; e++)
          g[e] = 1.f;
#pragma unroll
      for (int e = 0; e < 8; e++)
        a[e] += g[e] * b[e];
      st8 (x, i, a);
    }
}

#endif
