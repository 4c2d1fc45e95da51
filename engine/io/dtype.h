/* dtype.h — tensor element types and scalar conversions: the safetensors set, and the
 * block-quantized GGML types that GGUF files carry (Q8_0 … Q6_K, kept quantized in memory). */
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
  /* GGML block types (GGUF): a row is whole blocks of sd35_dtype_block_elems values */
  SD35_Q8_0,   /* 32 values: f16 d, 32 × int8                        x = d·q          */
  SD35_Q4_0,   /* 32 values: f16 d, 16 bytes of nibbles              x = d·(q − 8)    */
  SD35_Q4_1,   /* 32 values: f16 d, f16 m, 16 bytes of nibbles       x = d·q + m      */
  SD35_Q5_0,   /* 32 values: f16 d, u32 high bits, 16 bytes          x = d·(q − 16)   */
  SD35_Q5_1,   /* 32 values: f16 d, f16 m, u32 high bits, 16 bytes   x = d·q + m      */
  SD35_Q4_K,   /* 256 values: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes */
  SD35_Q5_K,   /* 256 values: as Q4_K + 32 bytes of high bits                          */
  SD35_Q6_K,   /* 256 values: 128 bytes low, 64 bytes high bits, 16 int8 scales, f16 d */
  SD35_DTYPE_COUNT
};

/* The safetensors dtypes are the ones before SD35_Q8_0. */
#define SD35_DTYPE_SAFETENSORS_COUNT SD35_Q8_0

/* bytes per element; 0 for the block-quantized types (use sd35_dtype_nbytes) */
size_t          sd35_dtype_size (enum sd35_dtype dt);
/* safetensors / GGML name ("F32", "BF16", "F8_E4M3", "Q8_0", "Q4_K", ...) */
const char     *sd35_dtype_name (enum sd35_dtype dt);
/* safetensors name → dtype (the safetensors set only); returns 0 on success, -1 if unknown */
int             sd35_dtype_from_name (const char *name, enum sd35_dtype *out);
/* converts to fp32 (sd35_convert_to_f32): the float types and the quantized ones */
int             sd35_dtype_is_float (enum sd35_dtype dt);
/* one of the GGML block types */
int             sd35_dtype_is_quant (enum sd35_dtype dt);
/* values per block (1 for element types) and bytes per block (= element size for those) */
size_t          sd35_dtype_block_elems (enum sd35_dtype dt);
size_t          sd35_dtype_block_bytes (enum sd35_dtype dt);
/* bytes of n values (n a whole number of blocks); 0 on success, -1 if n is not whole blocks,
 * the type is unknown or the size overflows */
int             sd35_dtype_nbytes (enum sd35_dtype dt, size_t n, size_t *out);

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

/* n elements of src (dtype dt, little-endian file bytes) → fp32 dst.  Float dtypes and the
 * quantized ones (n whole blocks; values past the last whole block are set to 0). */
void sd35_convert_to_f32 (float *dst, const void *src, enum sd35_dtype dt, size_t n);

#endif
