/* dtype.c — element types and exact scalar conversions (f16, bf16, fp8 e4m3fn / e5m2). */
#include "dtype.h"

#include <math.h>

#include "cpu_dequant.h"
#include "error.h"

static const struct
{
  const char *name;
  size_t      size;        /* bytes per block */
  size_t      block;       /* values per block */
} dtype_info[SD35_DTYPE_COUNT] = {
  [SD35_F32] = { "F32", 4, 1 },         [SD35_F16] = { "F16", 2, 1 },
  [SD35_BF16] = { "BF16", 2, 1 },       [SD35_F8_E4M3] = { "F8_E4M3", 1, 1 },
  [SD35_F8_E5M2] = { "F8_E5M2", 1, 1 }, [SD35_I64] = { "I64", 8, 1 },
  [SD35_I32] = { "I32", 4, 1 },         [SD35_U8] = { "U8", 1, 1 },
  [SD35_Q8_0] = { "Q8_0", 34, 32 },     [SD35_Q4_0] = { "Q4_0", 18, 32 },
  [SD35_Q4_1] = { "Q4_1", 20, 32 },     [SD35_Q5_0] = { "Q5_0", 22, 32 },
  [SD35_Q5_1] = { "Q5_1", 24, 32 },     [SD35_Q4_K] = { "Q4_K", 144, 256 },
  [SD35_Q5_K] = { "Q5_K", 176, 256 },   [SD35_Q6_K] = { "Q6_K", 210, 256 },
};

size_t
sd35_dtype_size (enum sd35_dtype dt)
{
  return (unsigned) dt < SD35_DTYPE_COUNT && dtype_info[dt].block == 1 ? dtype_info[dt].size
                                                                        : 0;
}

int
sd35_dtype_is_quant (enum sd35_dtype dt)
{
  return dt >= SD35_Q8_0 && dt < SD35_DTYPE_COUNT;
}

size_t
sd35_dtype_block_elems (enum sd35_dtype dt)
{
  return (unsigned) dt < SD35_DTYPE_COUNT ? dtype_info[dt].block : 0;
}

size_t
sd35_dtype_block_bytes (enum sd35_dtype dt)
{
  return (unsigned) dt < SD35_DTYPE_COUNT ? dtype_info[dt].size : 0;
}

int
sd35_dtype_nbytes (enum sd35_dtype dt, size_t n, size_t *out)
{
  size_t blk = sd35_dtype_block_elems (dt);
  if (blk == 0 || n % blk != 0)
    return -1;
  return sd35_mul_size (n / blk, dtype_info[dt].size, out);
}

const char *
sd35_dtype_name (enum sd35_dtype dt)
{
  return (unsigned) dt < SD35_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

int
sd35_dtype_from_name (const char *name, enum sd35_dtype *out)
{
  for (int i = 0; i < SD35_DTYPE_SAFETENSORS_COUNT; i++)
    if (strcmp (name, dtype_info[i].name) == 0)
      {
        *out = (enum sd35_dtype) i;
        return 0;
      }
  return -1;
}

int
sd35_dtype_is_float (enum sd35_dtype dt)
{
  return dt == SD35_F32 || dt == SD35_F16 || dt == SD35_BF16 || dt == SD35_F8_E4M3
         || dt == SD35_F8_E5M2 || sd35_dtype_is_quant (dt);
}

float
sd35_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  float    f;

  if (exp == 0x1f)
    u = sign | 0x7f800000u | (man << 13);       /* inf / nan */
  else if (exp != 0)
    u = sign | ((exp + 112) << 23) | (man << 13);
  else if (man == 0)
    u = sign;                                    /* ±0 */
  else
    {
      /* subnormal: value = man · 2^-24 */
      f = (float) man * 0x1p-24f;
      memcpy (&u, &f, 4);
      u |= sign;
    }
  memcpy (&f, &u, 4);
  return f;
}

uint16_t
sd35_f32_to_f16 (float f)
{
  uint32_t u, sign, absu;
  memcpy (&u, &f, 4);
  sign = (u >> 16) & 0x8000u;
  absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u)
    return (uint16_t) (sign | 0x7e00u);          /* nan */
  if (absu >= 0x477ff000u)
    return (uint16_t) (sign | 0x7c00u);          /* overflow → inf (round-to-nearest) */
  if (absu < 0x38800000u)
    {
      /* subnormal or zero: round(|f| · 2^24) with ties to even (rintf) */
      float a;
      memcpy (&a, &absu, 4);
      return (uint16_t) (sign | (uint32_t) rintf (a * 0x1p24f));
    }
  /* normal: rebias and round mantissa to 10 bits, ties to even */
  uint32_t r = absu + 0xfffu + ((absu >> 13) & 1u);
  r -= 112u << 23;
  return (uint16_t) (sign | (r >> 13));
}

/* float8_e4m3fn: 1-4-3, bias 7, no inf, 0x7f/0xff = nan, max 448 */
float
sd35_f8e4m3_to_f32 (uint8_t v)
{
  int   sign = v >> 7;
  int   exp = (v >> 3) & 0xf;
  int   man = v & 0x7;
  float r;

  if (exp == 0xf && man == 0x7)
    return NAN;
  if (exp == 0)
    r = ldexpf ((float) man, -9);               /* man/8 · 2^-6 */
  else
    r = ldexpf (1.0f + (float) man / 8.0f, exp - 7);
  return sign ? -r : r;
}

/* float8_e5m2: 1-5-2, bias 15, IEEE-like (inf, nan) */
float
sd35_f8e5m2_to_f32 (uint8_t v)
{
  return sd35_f16_to_f32 ((uint16_t) v << 8);
}

void
sd35_convert_to_f32 (float *dst, const void *src, enum sd35_dtype dt, size_t n)
{
  const uint8_t *b = src;
  switch (dt)
    {
    case SD35_F32:
      memcpy (dst, src, n * 4);
      break;
    case SD35_F16:
      for (size_t i = 0; i < n; i++)
        {
          uint16_t h;
          memcpy (&h, b + 2 * i, 2);
          dst[i] = sd35_f16_to_f32 (h);
        }
      break;
    case SD35_BF16:
      for (size_t i = 0; i < n; i++)
        {
          uint16_t h;
          memcpy (&h, b + 2 * i, 2);
          dst[i] = sd35_bf16_to_f32 (h);
        }
      break;
    case SD35_F8_E4M3:
      for (size_t i = 0; i < n; i++)
        dst[i] = sd35_f8e4m3_to_f32 (b[i]);
      break;
    case SD35_F8_E5M2:
      for (size_t i = 0; i < n; i++)
        dst[i] = sd35_f8e5m2_to_f32 (b[i]);
      break;
    default:
      if (sd35_dtype_is_quant (dt))
        {
          size_t blk = sd35_dtype_block_elems (dt), whole = n / blk * blk;
          sd35_dequantize (dt, src, dst, whole / blk);
          for (size_t i = whole; i < n; i++)
            dst[i] = 0.0f;
        }
      else
        for (size_t i = 0; i < n; i++)
          dst[i] = 0.0f;
      break;
    }
}
