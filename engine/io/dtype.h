/* dtype.h — tensor element types (the safetensors set) and scalar conversions. */
#ifndef SD35_DTYPE_H
#define SD35_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum sd35_dtype
{
  SD35_F32 = 0,
  SD35_F16,
  SD35_BF16,
  SD35_F8_E4M3,
  SD35_F8_E5M2,
  SD35_I64,
  SD35_I32,
  SD35_U8,
  SD35_DTYPE_COUNT
};

/* bytes per element */
size_t          sd35_dtype_size (enum sd35_dtype dt);
/* safetensors name ("F32", "BF16", "F8_E4M3", ...) */
const char     *sd35_dtype_name (enum sd35_dtype dt);
/* name → dtype; returns 0 on success, -1 if unknown */
int             sd35_dtype_from_name (const char *name, enum sd35_dtype *out);
int             sd35_dtype_is_float (enum sd35_dtype dt);

static inline float
sd35_bf16_to_f32 (uint16_t h)
{
  uint32_t u = (uint32_t) h << 16;
  float    f;
  memcpy (&f, &u, 4);
  return f;
}

/* round to nearest even, NaN kept NaN */
static inline uint16_t
sd35_f32_to_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}

float    sd35_f16_to_f32 (uint16_t h);
uint16_t sd35_f32_to_f16 (float f);
float    sd35_f8e4m3_to_f32 (uint8_t v);
float    sd35_f8e5m2_to_f32 (uint8_t v);

/* n elements of src (dtype dt, little-endian file bytes) → fp32 dst.  Float dtypes only. */
void sd35_convert_to_f32 (float *dst, const void *src, enum sd35_dtype dt, size_t n);

#endif
