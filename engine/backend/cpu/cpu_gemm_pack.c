/* cpu_gemm_pack.c — the weight side of the CPU GEMM: one "widen" function per storage dtype.
 *
 * A widen function turns NR (= 16) consecutive weight rows × kc consecutive columns of a
 * weight stored as [N, K] in some dtype into the fp32 panel the micro-kernel reads,
 * transposed: panel[k·NR + j] = w[n0 + j, k0 + k].  The GEMM calls it once per weight element
 * and GEMM call (the panel is then reused by every row of the activations), so the weights
 * stay in their 16-bit (or quantized) storage and are never held in fp32.
 *
 * To add a storage dtype (e.g. a GGUF block format): write its widen function (dequantize
 * whole blocks: k0 is a multiple of GEMM_KC, which is a multiple of every block size, and kc
 * is GEMM_KC except at the end of a row) and add a row to cpu_weight_format ().  The row
 * stride of block formats is K / block × bytes per block; `block` tells cpu_op_linear which
 * K it may accept.
 *
 * On x86-64 the F32/F16/BF16 widening has AVX2 (+F16C) versions (8 rows × 8 columns per step:
 * vector conversion, then an in-register 8×8 transpose), chosen at run time; the generic C
 * versions run everywhere and do the edges. */
#include "cpu_ops.h"

#include <string.h>

#include "cpu_dequant.h"
#include "dtype.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define GEMM_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/* f16 → f32 with the normal-number case inline (dtype.c handles zero, subnormal, inf, NaN) */
static inline float
f16_to_f32_fast (uint16_t h)
{
  uint32_t e = (h >> 10) & 0x1fu, u;
  float    f;

  if (e == 0 || e == 0x1f)
    return sd35_f16_to_f32 (h);
  u = ((uint32_t) (h & 0x8000u) << 16) | ((e + 112) << 23) | ((uint32_t) (h & 0x3ffu) << 13);
  memcpy (&f, &u, 4);
  return f;
}

/* generic: rows j < nr, columns [kb, kc) (the part the vector code left), zero rows ≥ nr */
static void
widen_rest (float *panel, const void *w, enum sd35_dtype dt, int64_t K, int64_t n0, int64_t nr,
            int64_t k0, int64_t kb, int64_t kc)
{
  for (int64_t j = 0; j < GEMM_NR; j++)
    {
      size_t row = (size_t) (n0 + j) * (size_t) K + (size_t) k0;
      if (j >= nr)
        {
          for (int64_t k = kb; k < kc; k++)
            panel[k * GEMM_NR + j] = 0.0f;
          continue;
        }
      if (dt == SD35_F32)
        {
          const float *src = (const float *) w + row;
          for (int64_t k = kb; k < kc; k++)
            panel[k * GEMM_NR + j] = src[k];
        }
      else if (dt == SD35_F16)
        {
          const uint16_t *src = (const uint16_t *) w + row;
          for (int64_t k = kb; k < kc; k++)
            panel[k * GEMM_NR + j] = f16_to_f32_fast (src[k]);
        }
      else
        {
          const uint16_t *src = (const uint16_t *) w + row;
          for (int64_t k = kb; k < kc; k++)
            panel[k * GEMM_NR + j] = sd35_bf16_to_f32 (src[k]);
        }
    }
}

static void
widen_f32 (float *panel, const void *w, int64_t K, int64_t n0, int64_t nr, int64_t k0,
           int64_t kc)
{
  widen_rest (panel, w, SD35_F32, K, n0, nr, k0, 0, kc);
}

static void
widen_f16 (float *panel, const void *w, int64_t K, int64_t n0, int64_t nr, int64_t k0,
           int64_t kc)
{
  widen_rest (panel, w, SD35_F16, K, n0, nr, k0, 0, kc);
}

static void
widen_bf16 (float *panel, const void *w, int64_t K, int64_t n0, int64_t nr, int64_t k0,
            int64_t kc)
{
  widen_rest (panel, w, SD35_BF16, K, n0, nr, k0, 0, kc);
}

/* GGUF block types (cpu_dequant.c): each of the nr rows' kc values dequantized block by block
 * (k0 is a multiple of GEMM_KC, so whole blocks), then written down the panel's column. */
static void
widen_quant (float *panel, const void *w, enum sd35_dtype dt, int64_t K, int64_t n0, int64_t nr,
             int64_t k0, int64_t kc)
{
  size_t row_bytes = (size_t) K / sd35_dtype_block_elems (dt) * sd35_dtype_block_bytes (dt);
  float  vals[GEMM_KC];

  for (int64_t j = 0; j < GEMM_NR; j++)
    {
      if (j >= nr)
        {
          for (int64_t k = 0; k < kc; k++)
            panel[k * GEMM_NR + j] = 0.0f;
          continue;
        }
      sd35_dequant_range (dt, (const uint8_t *) w + (size_t) (n0 + j) * row_bytes, (size_t) k0,
                          (size_t) kc, vals);
      for (int64_t k = 0; k < kc; k++)
        panel[k * GEMM_NR + j] = vals[k];
    }
}

#define WIDEN_QUANT(NAME, DT)                                                                 \
  static void NAME (float *panel, const void *w, int64_t K, int64_t n0, int64_t nr,           \
                    int64_t k0, int64_t kc)                                                    \
  {                                                                                           \
    widen_quant (panel, w, DT, K, n0, nr, k0, kc);                                           \
  }
WIDEN_QUANT (widen_q8_0, SD35_Q8_0)
WIDEN_QUANT (widen_q4_0, SD35_Q4_0)
WIDEN_QUANT (widen_q4_1, SD35_Q4_1)
WIDEN_QUANT (widen_q5_0, SD35_Q5_0)
WIDEN_QUANT (widen_q5_1, SD35_Q5_1)
WIDEN_QUANT (widen_q4_k, SD35_Q4_K)
WIDEN_QUANT (widen_q5_k, SD35_Q5_K)
WIDEN_QUANT (widen_q6_k, SD35_Q6_K)

/* the GGUF rows of both tables but Q8_0's (the same C code; Q8_0 has an AVX2 version) */
#define QUANT_FORMATS                                                                         \
  { SD35_Q4_0, 32, widen_q4_0 }, { SD35_Q4_1, 32, widen_q4_1 },                               \
  { SD35_Q5_0, 32, widen_q5_0 }, { SD35_Q5_1, 32, widen_q5_1 },                               \
  { SD35_Q4_K, 256, widen_q4_k }, { SD35_Q5_K, 256, widen_q5_k }, { SD35_Q6_K, 256, widen_q6_k }

#ifdef GEMM_X86
/* r[j] = row j (8 columns) → r[k] = column k (8 rows) */
__attribute__ ((target ("avx2"))) static inline void
transpose8 (__m256 r[8])
{
  __m256 t[8], s[8];

  for (int i = 0; i < 4; i++)
    {
      t[2 * i] = _mm256_unpacklo_ps (r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps (r[2 * i], r[2 * i + 1]);
    }
  for (int i = 0; i < 2; i++)
    {
      s[4 * i + 0] = _mm256_shuffle_ps (t[4 * i], t[4 * i + 2], 0x44);
      s[4 * i + 1] = _mm256_shuffle_ps (t[4 * i], t[4 * i + 2], 0xEE);
      s[4 * i + 2] = _mm256_shuffle_ps (t[4 * i + 1], t[4 * i + 3], 0x44);
      s[4 * i + 3] = _mm256_shuffle_ps (t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
  for (int i = 0; i < 4; i++)
    {
      r[i] = _mm256_permute2f128_ps (s[i], s[i + 4], 0x20);
      r[i + 4] = _mm256_permute2f128_ps (s[i], s[i + 4], 0x31);
    }
}

/* The three AVX2 widen functions: full panels (nr = 16) in steps of 8 columns; the rest
 * (short last panel, kc not a multiple of 8) goes to widen_rest. */
#define WIDEN_AVX2(NAME, DT, ELEM, LOAD8)                                                     \
  __attribute__ ((target ("avx2,fma,f16c"))) static void NAME (                               \
    float *panel, const void *w, int64_t K, int64_t n0, int64_t nr, int64_t k0, int64_t kc)   \
  {                                                                                           \
    int64_t kb = nr == GEMM_NR ? kc / 8 * 8 : 0;                                              \
    for (int g = 0; g < GEMM_NR / 8 && kb > 0; g++)                                          \
      {                                                                                       \
        const ELEM *src = (const ELEM *) w + (size_t) (n0 + 8 * g) * (size_t) K + k0;         \
        for (int64_t k = 0; k < kb; k += 8)                                                   \
          {                                                                                   \
            __m256 r[8];                                                                      \
            for (int j = 0; j < 8; j++)                                                       \
              r[j] = LOAD8 (src + (size_t) j * (size_t) K + k);                               \
            transpose8 (r);                                                                   \
            for (int i = 0; i < 8; i++)                                                       \
              _mm256_store_ps (panel + (k + i) * GEMM_NR + 8 * g, r[i]);                      \
          }                                                                                   \
      }                                                                                       \
    if (kb < kc)                                                                              \
      widen_rest (panel, w, DT, K, n0, nr, k0, kb, kc);                                      \
  }

#define LOAD8_F32(p)  _mm256_loadu_ps (p)
#define LOAD8_F16(p)  _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (p)))
#define LOAD8_BF16(p)                                                                         \
  _mm256_castsi256_ps (_mm256_slli_epi32 (                                                    \
    _mm256_cvtepu16_epi32 (_mm_loadu_si128 ((const __m128i *) (p))), 16))

/* F16C converts subnormals, inf and NaN exactly as sd35_f16_to_f32 does (IEEE widening) */
WIDEN_AVX2 (widen_f32_avx2, SD35_F32, float, LOAD8_F32)
WIDEN_AVX2 (widen_f16_avx2, SD35_F16, uint16_t, LOAD8_F16)
WIDEN_AVX2 (widen_bf16_avx2, SD35_BF16, uint16_t, LOAD8_BF16)

/* Q8_0 (the common GGUF type) in the same 8 × 8 steps: 8 columns from k0 + k (a multiple of 8)
 * lie in one 32-value block, so a row's load is 8 int8 × that block's f16 scale — one rounded
 * multiply, as cpu_dequant.c and numpy do (the results are identical). */
__attribute__ ((target ("avx2,fma,f16c"))) static void
widen_q8_0_avx2 (float *panel, const void *w, int64_t K, int64_t n0, int64_t nr, int64_t k0,
                 int64_t kc)
{
  const size_t row_bytes = (size_t) K / 32 * 34;

  if (nr != GEMM_NR || kc % 8 != 0)
    {
      widen_q8_0 (panel, w, K, n0, nr, k0, kc);
      return;
    }
  for (int g = 0; g < GEMM_NR / 8; g++)
    {
      const uint8_t *base = (const uint8_t *) w + (size_t) (n0 + 8 * g) * row_bytes;
      for (int64_t k = 0; k < kc; k += 8)
        {
          const size_t blk = (size_t) (k0 + k) / 32 * 34, off = blk + 2 + (size_t) (k0 + k) % 32;
          __m256       r[8];
          for (int j = 0; j < 8; j++)
            {
              const uint8_t *row = base + (size_t) j * row_bytes;
              uint16_t       h;
              memcpy (&h, row + blk, 2);
              r[j] = _mm256_mul_ps (_mm256_set1_ps (_cvtsh_ss (h)),
                                    _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (
                                      _mm_loadl_epi64 ((const __m128i *) (row + off)))));
            }
          transpose8 (r);
          for (int i = 0; i < 8; i++)
            _mm256_store_ps (panel + (k + i) * GEMM_NR + 8 * g, r[i]);
        }
    }
}

int
cpu_has_avx2_fma (void)
{
  static int has = -1;

  if (has < 0)
    {
      unsigned a, b, c, d;
      /* F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" */
      __builtin_cpu_init ();
      has = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma") &&
            __get_cpuid (1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
    }
  return has;
}
#else
int
cpu_has_avx2_fma (void)
{
  return 0;
}
#endif

const struct cpu_weight_format *
cpu_weight_format (enum sd35_dtype dt)
{
  static const struct cpu_weight_format generic[] = {
    { SD35_F32, 1, widen_f32 },
    { SD35_F16, 1, widen_f16 },
    { SD35_BF16, 1, widen_bf16 },
    { SD35_Q8_0, 32, widen_q8_0 },
    QUANT_FORMATS,
  };
#ifdef GEMM_X86
  static const struct cpu_weight_format avx2[] = {
    { SD35_F32, 1, widen_f32_avx2 },
    { SD35_F16, 1, widen_f16_avx2 },
    { SD35_BF16, 1, widen_bf16_avx2 },
    { SD35_Q8_0, 32, widen_q8_0_avx2 },
    QUANT_FORMATS,
  };
  const struct cpu_weight_format *table = cpu_has_avx2_fma () && !cpu_gemm_force_generic
                                            ? avx2 : generic;
#else
  const struct cpu_weight_format *table = generic;
#endif

  for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
    if (table[i].dtype == dt)
      return &table[i];
  return NULL;
}
