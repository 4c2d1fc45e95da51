/* cpu_dequant.c — GGML block types → fp32 (layouts: ggml-common.h; reference values: ggml's
 * dequantize_row_* = gguf-py's quants.py).
 *
 * Bit-exactness needs the products and sums rounded separately, as numpy does: the affine
 * types compute (d·q) + m and the K types (d·sc)·q − (dmin·m), and a contracted fma would
 * round once.  GCC contracts across statements under gnu11, so fp-contract is switched off
 * for this file (GCC: the optimize pragma; clang: the standard pragma). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "cpu_dequant.h"

#include <stdint.h>
#include <string.h>

static inline float
f16_at (const uint8_t *p)
{
  uint16_t h;
  memcpy (&h, p, 2);
  return sd35_f16_to_f32 (h);
}

/* Q8_0: d, qs[32] */
static void
deq_q8_0 (const uint8_t *b, float *y)
{
  const float   d = f16_at (b);
  const int8_t *q = (const int8_t *) (b + 2);
  for (int i = 0; i < 32; i++)
    y[i] = d * (float) q[i];
}

/* Q4_0: d, qs[16]; value i < 16 is the low nibble of qs[i], value 16 + i the high one */
static void
deq_q4_0 (const uint8_t *b, float *y)
{
  const float    d = f16_at (b);
  const uint8_t *qs = b + 2;
  for (int i = 0; i < 16; i++)
    {
      y[i] = d * (float) ((qs[i] & 0x0f) - 8);
      y[i + 16] = d * (float) ((qs[i] >> 4) - 8);
    }
}

/* Q4_1: d, m, qs[16] */
static void
deq_q4_1 (const uint8_t *b, float *y)
{
  const float    d = f16_at (b), m = f16_at (b + 2);
  const uint8_t *qs = b + 4;
  for (int i = 0; i < 16; i++)
    {
      y[i] = d * (float) (qs[i] & 0x0f) + m;
      y[i + 16] = d * (float) (qs[i] >> 4) + m;
    }
}

/* Q5_0: d, qh (u32 LE: bit i = 5th bit of value i), qs[16] */
static void
deq_q5_0 (const uint8_t *b, float *y)
{
  const float    d = f16_at (b);
  const uint8_t *qs = b + 6;
  uint32_t       qh;
  memcpy (&qh, b + 2, 4);
  for (int i = 0; i < 16; i++)
    {
      int lo = (qs[i] & 0x0f) | (int) (((qh >> i) & 1u) << 4);
      int hi = (qs[i] >> 4) | (int) (((qh >> (i + 16)) & 1u) << 4);
      y[i] = d * (float) (lo - 16);
      y[i + 16] = d * (float) (hi - 16);
    }
}

/* Q5_1: d, m, qh, qs[16] */
static void
deq_q5_1 (const uint8_t *b, float *y)
{
  const float    d = f16_at (b), m = f16_at (b + 2);
  const uint8_t *qs = b + 8;
  uint32_t       qh;
  memcpy (&qh, b + 4, 4);
  for (int i = 0; i < 16; i++)
    {
      int lo = (qs[i] & 0x0f) | (int) (((qh >> i) & 1u) << 4);
      int hi = (qs[i] >> 4) | (int) (((qh >> (i + 16)) & 1u) << 4);
      y[i] = d * (float) lo + m;
      y[i + 16] = d * (float) hi + m;
    }
}

/* The 8 six-bit scales and mins of a Q4_K/Q5_K super-block (ggml get_scale_min_k4). */
static void
k_scales (const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
  for (int j = 0; j < 4; j++)
    {
      sc[j] = s[j] & 63;
      mn[j] = s[j + 4] & 63;
      sc[j + 4] = (uint8_t) ((s[j + 8] & 0x0f) | ((s[j] >> 6) << 4));
      mn[j + 4] = (uint8_t) ((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]; sub-block j (32 values) of pair p = j/2 takes the low
 * (even j) or high (odd j) nibbles of qs[32p … 32p+31] */
static void
deq_q4_k (const uint8_t *b, float *y)
{
  const float    d = f16_at (b), dmin = f16_at (b + 2);
  const uint8_t *qs = b + 16;
  uint8_t        sc[8], mn[8];

  k_scales (b + 4, sc, mn);
  for (int j = 0; j < 8; j++)
    {
      const float    d1 = d * (float) sc[j], m1 = dmin * (float) mn[j];
      const uint8_t *q = qs + 32 * (j / 2);
      const int      sh = 4 * (j & 1);
      for (int l = 0; l < 32; l++)
        y[32 * j + l] = d1 * (float) ((q[l] >> sh) & 0x0f) - m1;
    }
}

/* Q5_K: d, dmin, scales[12], qh[32] (bit j of qh[l] = 5th bit of value 32j + l), qs[128] */
static void
deq_q5_k (const uint8_t *b, float *y)
{
  const float    d = f16_at (b), dmin = f16_at (b + 2);
  const uint8_t *qh = b + 16, *qs = b + 48;
  uint8_t        sc[8], mn[8];

  k_scales (b + 4, sc, mn);
  for (int j = 0; j < 8; j++)
    {
      const float    d1 = d * (float) sc[j], m1 = dmin * (float) mn[j];
      const uint8_t *q = qs + 32 * (j / 2);
      const int      sh = 4 * (j & 1);
      for (int l = 0; l < 32; l++)
        {
          int v = ((q[l] >> sh) & 0x0f) | (((qh[l] >> j) & 1) << 4);
          y[32 * j + l] = d1 * (float) v - m1;
        }
    }
}

/* Q6_K: ql[128], qh[64], scales[16] (int8), d.  Per half h (128 values): value 32t + l
 * (t = 0…3, l = 0…31) = low nibble of ql[64h + l + 32(t&1)] (t < 2) or its high nibble
 * (t ≥ 2), 2 high bits from qh[32h + l] >> 2t; scale = scales[value / 16]. */
static void
deq_q6_k (const uint8_t *b, float *y)
{
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t  *sc = (const int8_t *) (b + 192);
  const float    d = f16_at (b + 208);

  for (int h = 0; h < 2; h++)
    for (int t = 0; t < 4; t++)
      for (int l = 0; l < 32; l++)
        {
          int         e = 128 * h + 32 * t + l;
          int         lo = (ql[64 * h + l + 32 * (t & 1)] >> (4 * (t >> 1))) & 0x0f;
          int         hi = (qh[32 * h + l] >> (2 * t)) & 3;
          const float ds = d * (float) sc[e / 16];
          y[e] = ds * (float) ((lo | (hi << 4)) - 32);
        }
}

typedef void (*deq_block_fn) (const uint8_t *b, float *y);

static deq_block_fn
deq_fn (enum sd35_dtype dt)
{
  switch (dt)
    {
    case SD35_Q8_0: return deq_q8_0;
    case SD35_Q4_0: return deq_q4_0;
    case SD35_Q4_1: return deq_q4_1;
    case SD35_Q5_0: return deq_q5_0;
    case SD35_Q5_1: return deq_q5_1;
    case SD35_Q4_K: return deq_q4_k;
    case SD35_Q5_K: return deq_q5_k;
    case SD35_Q6_K: return deq_q6_k;
    default: return NULL;
    }
}

void
sd35_dequantize (enum sd35_dtype dt, const void *src, float *dst, size_t n_blocks)
{
  deq_block_fn   fn = deq_fn (dt);
  const uint8_t *b = src;
  size_t         bb = sd35_dtype_block_bytes (dt), be = sd35_dtype_block_elems (dt);

  if (fn == NULL)
    {
      memset (dst, 0, n_blocks * be * sizeof *dst);
      return;
    }
  for (size_t i = 0; i < n_blocks; i++)
    fn (b + i * bb, dst + i * be);
}

void
sd35_dequant_range (enum sd35_dtype dt, const void *row, size_t k0, size_t n, float *dst)
{
  deq_block_fn   fn = deq_fn (dt);
  const uint8_t *b = row;
  size_t         bb = sd35_dtype_block_bytes (dt), be = sd35_dtype_block_elems (dt);
  float          tmp[256];

  if (fn == NULL)
    {
      memset (dst, 0, n * sizeof *dst);
      return;
    }
  while (n > 0)
    {
      size_t blk = k0 / be, off = k0 % be, take = be - off < n ? be - off : n;
      if (off == 0 && take == be)
        fn (b + blk * bb, dst);
      else
        {
          fn (b + blk * bb, tmp);
          memcpy (dst, tmp + off, take * sizeof *dst);
        }
      dst += take;
      k0 += take;
      n -= take;
    }
}
