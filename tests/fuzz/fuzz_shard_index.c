/* fuzz_shard_index.c — libFuzzer target for *.safetensors.index.json (engine/io/
 * safetensors_index.c): the input is the index, beside two valid shards s1.safetensors ("a")
 * and s2.safetensors ("b").  It must open with every key of its weight_map in the shard the
 * map names, or be refused with a message. */
#include "fuzz_util.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
write_shards (void)
{
  static int done;
  const char *names[2] = { "a", "b" };

  if (done)
    return;
  for (int i = 0; i < 2; i++)
    {
      struct st_writer *w = st_writer_new ();
      struct sd35_error err = { 0 };
      int64_t           shape[1] = { 2 };
      float             v[2] = { 1, 2 };
      char             *p = g_strdup_printf ("%s/s%d.safetensors", fuzz_dir (), i + 1);
      if (st_writer_add_f32 (w, names[i], 1, shape, v) != 0
          || st_writer_save (w, p, &err) != SD35_OK)
        abort ();
      st_writer_free (w);
      g_free (p);
    }
  done = 1;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct st_file   *f = NULL;
  struct sd35_error err = { 0 };
  const char       *p;

  write_shards ();
  p = fuzz_file ("model.safetensors.index.json", data, size);
  if (st_open (p, &f, &err) != SD35_OK)
    {
      fuzz_check_refusal (&err);
      return 0;
    }
  for (size_t i = 0; i < st_count (f); i++)
    {
      const struct st_tensor *t = st_at (f, i);
      if (st_find (f, t->name) != t || t->file == NULL)
        __builtin_trap ();
    }
  st_close (f);
  return 0;
}
