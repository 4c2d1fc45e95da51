/* cpu_dequant.h — the GGML block types (GGUF Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)
 * widened to fp32.  The values are exactly those of ggml's dequantize_row_* and of the gguf
 * Python package's numpy dequantisation (same operations in the same order, no fused
 * multiply-add), which tests/unit/test_gguf.c checks bit for bit. */
#ifndef SD35_CPU_DEQUANT_H
#define SD35_CPU_DEQUANT_H

#include <stddef.h>

#include "dtype.h"

/* n_blocks whole blocks of dt at src → n_blocks · sd35_dtype_block_elems (dt) floats. */
void sd35_dequantize (enum sd35_dtype dt, const void *src, float *dst, size_t n_blocks);

/* Values k0 … k0+n−1 of a quantized row that starts at `row` (a block boundary): the GEMM's
 * weight packer widens one panel of a row at a time.  Any k0 and n; whole blocks are widened
 * straight into dst, a partial block at either end through a small buffer. */
void sd35_dequant_range (enum sd35_dtype dt, const void *row, size_t k0, size_t n, float *dst);

#endif
