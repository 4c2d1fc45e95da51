/* rng.c — torch's CPU generator, bit for bit (sd35-facts.md §4, "torch CPU randn").
 *
 * torch.manual_seed(s) seeds at::mt19937 with s & 0xffffffff; torch.randn on a contiguous
 * float32 tensor then takes one of two paths (aten/src/ATen/native/cpu/DistributionTemplates.h,
 * normal_kernel):
 *   - numel ≥ 16 (normal_fill_AVX2 on x86-64, also on AVX-512 machines): all numel float
 *     uniforms are drawn first, then each 16-block is Box–Muller'd in place over the pairs
 *     (j, j+8) with the Cephes float log/sincos of aten/src/ATen/native/cpu/avx_mathfun.h
 *     (log256_ps, sincos256_ps); a numel % 16 tail redraws 16 uniforms into the last 16 slots
 *     and transforms them again;
 *   - numel < 16: element-wise at::normal_distribution<double> (53-bit uniforms, libm log1p,
 *     cos, sin; the sin half is cached in the generator for the next draw).
 *
 * Floating point: the torch build compiles avx_mathfun.h with FMA contraction, so which
 * multiply-adds are fused decides the last bit.  The scalar code below spells every fused
 * operation of the compiled AVX2 code as an explicit fmaf and is written so that no other
 * multiply feeds an add (so -ffp-contract, whatever its value, has nothing left to fuse);
 * no reassociation happens without -ffast-math, which this project never uses. */
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define MT_N 624
#define MT_M 397

struct torch_rng
{
  uint32_t state[MT_N];
  int      next;              /* index of the next state word; MT_N = twist first */
  int      has_next_normal;   /* at::CPUGeneratorImpl::next_double_normal_sample_ */
  double   next_normal;
};

/* ---- MT19937 (at::mt19937 = std::mt19937 with a 32-bit seed) ---- */

void
torch_rng_seed (struct torch_rng *g, uint64_t seed)
{
  g->state[0] = (uint32_t) (seed & 0xffffffffu);  /* 64-bit seeds are truncated */
  for (int i = 1; i < MT_N; i++)
    g->state[i] = 1812433253u * (g->state[i - 1] ^ (g->state[i - 1] >> 30)) + (uint32_t) i;
  g->next = MT_N;
  g->has_next_normal = 0;  /* manual_seed resets the normal caches */
  g->next_normal = 0.0;
}

struct torch_rng *
torch_rng_new (uint64_t seed)
{
  struct torch_rng *g = malloc (sizeof *g);
  if (g != NULL)
    torch_rng_seed (g, seed);
  return g;
}

void
torch_rng_free (struct torch_rng *g)
{
  free (g);
}

static void
mt_twist (struct torch_rng *g)
{
  for (int i = 0; i < MT_N; i++)
    {
      uint32_t y = (g->state[i] & 0x80000000u) | (g->state[(i + 1) % MT_N] & 0x7fffffffu);
      uint32_t v = (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
      g->state[i] = g->state[(i + MT_M) % MT_N] ^ v;
    }
  g->next = 0;
}

static uint32_t
mt_next32 (struct torch_rng *g)
{
  uint32_t y;

  if (g->next >= MT_N)
    mt_twist (g);
  y = g->state[g->next++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

/* at::uniform_real_distribution<float>(0, 1): 24 random bits · 2^-24 (exact) */
static float
uniform_f32 (struct torch_rng *g)
{
  return (float) (mt_next32 (g) & 0xffffffu) * 0x1p-24f;
}

/* at::uniform_real_distribution<double>(0, 1): 53 bits of random64() = (hi << 32) | lo */
static double
uniform_f64 (struct torch_rng *g)
{
  uint64_t hi = mt_next32 (g);
  uint64_t lo = mt_next32 (g);
  uint64_t v = (hi << 32) | lo;
  return (double) (v & ((UINT64_C (1) << 53) - 1)) * 0x1p-53;
}

/* ---- one lane of avx_mathfun.h, with the fusions of the compiled AVX2 code ---- */

static inline uint32_t
f2u (float f)
{
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  return u;
}

static inline float
u2f (uint32_t u)
{
  float f;
  memcpy (&f, &u, sizeof f);
  return f;
}

/* Cephes logf as in log256_ps; the argument here is always in (0, 1]. The constants are
 * double literals narrowed to float, as the _PS256_CONST arrays do. */
static float
cephes_logf (float x)
{
  const float sqrthf = (float) 0.707106781186547524;
  float       e, y, z, t;
  int32_t     ex;

  if (x < u2f (0x00800000u))  /* max with the smallest normal: cut off denormals */
    x = u2f (0x00800000u);
  ex = (int32_t) (f2u (x) >> 23) - 0x7f;
  x = u2f ((f2u (x) & ~0x7f800000u) | f2u (0.5f));  /* mantissa in [0.5, 1) */
  e = (float) ex + 1.0f;
  if (x < sqrthf)
    {
      e = e - 1.0f;
      x = (x - 1.0f) + x;
    }
  else
    x = x - 1.0f;

  z = x * x;
  y = (float) 7.0376836292E-2;
  y = fmaf (y, x, (float) -1.1514610310E-1);
  y = fmaf (y, x, (float) 1.1676998740E-1);
  y = fmaf (y, x, (float) -1.2420140846E-1);
  y = fmaf (y, x, (float) 1.4249322787E-1);
  y = fmaf (y, x, (float) -1.6668057665E-1);
  y = fmaf (y, x, (float) 2.0000714765E-1);
  y = fmaf (y, x, (float) -2.4999993993E-1);
  y = fmaf (y, x, (float) 3.3333331174E-1);
  y = y * x;
  /* y·z + e·q1: the compiler fuses y·z (the earlier multiply) into the add */
  t = e * (float) -2.12194440e-4;
  y = fmaf (y, z, t);
  y = fmaf (-z, 0.5f, y);  /* y − z/2 (z/2 exact: fused or not is the same) */
  x = x + y;
  return fmaf (e, (float) 0.693359375, x);  /* e·q2 is exact as well */
}

/* Cephes sincosf as in sincos256_ps, for θ ∈ [0, 2π). */
static void
cephes_sincosf (float theta, float *s, float *c)
{
  const float fopi = (float) 1.27323954473516;  /* 4/π */
  uint32_t    sign_sin = f2u (theta) & 0x80000000u;
  uint32_t    sign_cos;
  float       x = u2f (f2u (theta) & 0x7fffffffu);
  float       y, z, yc, ys, half_z;
  int32_t     j;
  int         use_cos_poly_for_cos;

  j = (int32_t) (x * fopi);  /* cvttps: truncation */
  j = (j + 1) & ~1;
  y = (float) j;
  sign_sin ^= (uint32_t) (j & 4) << 29;
  use_cos_poly_for_cos = (j & 2) == 0;  /* poly_mask: sine from the sine polynomial */
  sign_cos = (uint32_t) (~(j - 2) & 4) << 29;

  /* extended precision modular arithmetic: x − y·DP1 − y·DP2 − y·DP3, each one fma */
  x = fmaf (y, (float) -0.78515625, x);
  x = fmaf (y, (float) -2.4187564849853515625e-4, x);
  x = fmaf (y, (float) -3.77489497744594108e-8, x);

  z = x * x;
  /* cosine polynomial; its last multiply fuses into the subtraction: fmsub(yc, z, z/2) */
  yc = fmaf ((float) 2.443315711809948E-005, z, (float) -1.388731625493765E-003);
  yc = fmaf (yc, z, (float) 4.166664568298827E-002);
  yc = yc * z;
  half_z = z * 0.5f;
  yc = fmaf (yc, z, -half_z);
  yc = yc + 1.0f;

  /* sine polynomial */
  ys = fmaf ((float) -1.9515295891E-4, z, (float) 8.3321608736E-3);
  ys = fmaf (ys, z, (float) -1.6666654611E-1);
  ys = ys * z;
  ys = fmaf (ys, x, x);

  if (use_cos_poly_for_cos)
    {
      *s = u2f (f2u (ys) ^ sign_sin);
      *c = u2f (f2u (yc) ^ sign_cos);
    }
  else
    {
      *s = u2f (f2u (yc) ^ sign_sin);
      *c = u2f (f2u (ys) ^ sign_cos);
    }
}

/* normal_fill_16_AVX2: d[0..15] uniforms → normals, pairs (j, j+8). */
static void
normal_fill_16 (float *d)
{
  const float two_pi = (float) (2.0f * 3.14159265358979323846);  /* _mm256_set1_ps(2.0f·π_double) */

  for (int j = 0; j < 8; j++)
    {
      float u1 = 1.0f - d[j];
      float u2 = d[j + 8];
      float radius = sqrtf (-2.0f * cephes_logf (u1));
      float s, c;

      cephes_sincosf (two_pi * u2, &s, &c);
      /* fmadd(n, std = 1, mean = 0): also turns −0 into +0, as torch does */
      d[j] = fmaf (radius * c, 1.0f, 0.0f);
      d[j + 8] = fmaf (radius * s, 1.0f, 0.0f);
    }
}

/* at::normal_distribution<double>(0, 1)(generator) */
static double
normal_f64 (struct torch_rng *g)
{
  const double pi = 3.14159265358979323846;
  double       u1, u2, r, theta;

  if (g->has_next_normal)
    {
      g->has_next_normal = 0;
      return g->next_normal + 0.0;
    }
  u1 = uniform_f64 (g);
  u2 = uniform_f64 (g);
  r = sqrt (-2.0 * log1p (-u2));
  theta = 2.0 * pi * u1;
  g->next_normal = r * sin (theta);
  g->has_next_normal = 1;
  return r * cos (theta) + 0.0;  /* transformation::normal: x·std + mean, −0 → +0 */
}

void
torch_randn (struct torch_rng *g, float *out, size_t n)
{
  if (n < 16)
    {
      for (size_t i = 0; i < n; i++)
        out[i] = (float) normal_f64 (g);
      return;
    }
  for (size_t i = 0; i < n; i++)
    out[i] = uniform_f32 (g);
  for (size_t i = 0; i + 16 <= n; i += 16)
    normal_fill_16 (out + i);
  if (n % 16 != 0)
    {
      float *tail = out + n - 16;
      for (int i = 0; i < 16; i++)
        tail[i] = uniform_f32 (g);
      normal_fill_16 (tail);
    }
}
