/* fuzz_safetensors.c — libFuzzer target for the safetensors reader (-Dfuzz=true, clang).
 * Any input must either open, with every tensor inside the buffer, readable, found by name,
 * and surviving a write + re-read round trip, or be refused with SD35_ERR_FORMAT; anything
 * else (a crash, a sanitizer report, another status) is a finding.
 *   build-fuzz/tests/fuzz/fuzz_safetensors CORPUS_DIR tests/fuzz/corpus -dict=tests/fuzz/safetensors.dict */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_round_trip (struct st_file *f)
{
  struct st_writer *w = st_writer_new ();
  struct sd35_error err = { 0 };
  struct st_file   *g = NULL;
  void             *buf = NULL;
  size_t            len = 0;

  for (size_t i = 0; i < st_count (f); i++)
    {
      const struct st_tensor *t = st_at (f, i);
      if (st_writer_add (w, t->name, t->dtype, t->ndim, t->shape, t->data) != 0)
        __builtin_trap ();
    }
  if (st_writer_to_memory (w, &buf, &len, &err) != SD35_OK
      || st_open_memory (buf, len, "round trip", &g, &err) != SD35_OK
      || st_count (g) != st_count (f))
    __builtin_trap ();
  for (size_t i = 0; i < st_count (f); i++)
    {
      const struct st_tensor *a = st_at (f, i), *b = st_find (g, a->name);
      if (b == NULL || b->nbytes != a->nbytes || b->dtype != a->dtype
          || (a->nbytes > 0 && memcmp (a->data, b->data, a->nbytes) != 0))
        __builtin_trap ();
    }
  st_close (g);
  free (buf);
  st_writer_free (w);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };

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
      if (st_find (f, t->name) != t || p < data || p + t->nbytes > data + size)
        __builtin_trap ();
      if (t->numel <= 4096)
        {
          void *v = sd35_dtype_is_float (t->dtype) ? (void *) st_read_f32 (t, &err)
                                                   : (void *) st_read_i64 (t, &err);
          free (v);
        }
    }
  st_metadata (f, "format");
  if (size < 4 || memcmp (data, "GGUF", 4) != 0)  /* GGUF input: fuzz_gguf's concern */
    check_round_trip (f);
  st_close (f);
  return 0;
}
