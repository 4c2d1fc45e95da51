/* fuzz_gguf.c — libFuzzer target for the GGUF reader (engine/io/gguf.c, -Dfuzz=true, clang).
 * Any input must either open, with every tensor inside the buffer, of a consistent byte size,
 * found by name and (when small) dequantizable, or be refused with SD35_ERR_FORMAT and a
 * message; anything else (a crash, a sanitizer report, another status) is a finding.
 *   build-fuzz/tests/fuzz/fuzz_gguf CORPUS_DIR tests/fuzz/corpus_gguf -dict=tests/fuzz/gguf.dict */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gguf.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };

  /* st_open_memory takes a GGUF by its magic; make every input one */
  if (size < 4 || memcmp (data, "GGUF", 4) != 0)
    return 0;
  if (st_open_memory (data, size, "fuzz input", &f, &err) != SD35_OK)
    {
      if (err.status != SD35_ERR_FORMAT || err.message[0] == '\0')
        __builtin_trap ();
      return 0;
    }
  for (size_t i = 0; i < st_count (f); i++)
    {
      const struct st_tensor *t = st_at (f, i);
      const uint8_t          *p = t->data;
      size_t                  nb = 0;
      if (st_find (f, t->name) != t || p < data || p + t->nbytes > data + size
          || sd35_dtype_nbytes (t->dtype, t->numel, &nb) != 0 || nb != t->nbytes)
        __builtin_trap ();
      if (t->numel <= 4096)
        {
          void *v = sd35_dtype_is_float (t->dtype) ? (void *) st_read_f32 (t, &err)
                                                   : (void *) st_read_i64 (t, &err);
          free (v);
        }
    }
  st_metadata (f, "general.architecture");
  st_close (f);
  return 0;
}
