/* gguf.h — GGUF files (llama.cpp / ggml's container; the quantized SD3.5 conversions used with
 * ComfyUI-GGUF and stable-diffusion.cpp) read into the same tensor table as safetensors.
 *
 * st_open / st_open_memory hand a buffer that starts with "GGUF" (or a *.gguf path) to
 * gguf_parse_into, so every loader sees GGUF tensors as st_tensors: the torch shape (GGUF
 * lists dimensions innermost first; they are reversed here, and a ComfyUI-GGUF
 * "comfy.gguf.orig_shape.<name>" array replaces the stored shape), the dtype (F32, F16, BF16,
 * I32, I64 or one of the block types Q8_0 … Q6_K of dtype.h) and a pointer into the mapping.
 * String metadata values are st_metadata entries.
 *
 * Strict: version 2 or 3 (little-endian), counts bounded by the file size, known metadata
 * value types (no arrays of arrays), power-of-two alignment, unique keys and tensor names,
 * at most 4 dimensions, rows of whole blocks, offsets aligned and inside the data area,
 * byte sizes without overflow, no two tensors sharing a byte.  A tensor of a GGML type this
 * program cannot compute with (Q2_K, Q3_K, IQ*, …) is refused at open, naming the tensor,
 * its type and the types that work. */
#ifndef SD35_GGUF_H
#define SD35_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* 1 if buf starts with the GGUF magic */
int gguf_has_magic (const void *buf, size_t len);

struct st_file;
/* Validates buf (a whole GGUF file) and appends its tensors to f (tensor `file` fields point
 * at `file`).  SD35_ERR_FORMAT "<name>: invalid GGUF file: <why>" or "… unsupported …". */
enum sd35_status gguf_parse_into (struct st_file *f, const uint8_t *buf, size_t len,
                                  const char *name, const char *file, struct sd35_error *err);

#endif
