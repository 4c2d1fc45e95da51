/* test_memory.c — the engine's memory features on the CPU backend, with a random test model
 * (test_model.h; its byte accounting is the code path CUDA uses too, backend->bytes_in_use /
 * peak_bytes):
 *   - offload_text_encoders: CLIP-L/G and T5 leave the backend after the prompts are encoded
 *     (sd35_engine_memory drops by their bytes), come back for a new prompt, and the images
 *     are bit-identical to an engine that keeps them;
 *   - out-of-memory: with the test hook SD35_TEST_FAIL_ALLOC_AT=N (cpu_backend.c) the N-th
 *     allocation fails; every failure while opening or generating must give SD35_ERR_OOM with
 *     a message naming the stage and the hint, and free everything (ASan build: no leaks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sd35.h"
#include "test_model.h"
#include "testutil.h"

static char *model_dir;

static sd35_engine *
open_engine (int offload, struct sd35_error *err)
{
  struct sd35_engine_options o;
  sd35_engine               *e = NULL;

  sd35_engine_options_init (&o);
  o.model_path = model_dir;
  o.backend = SD35_BACKEND_CPU;
  o.n_threads = 2;
  o.offload_text_encoders = offload;
  sd35_engine_open (&o, &e, err);
  return e;
}

static void
params (struct sd35_params *p, const char *prompt)
{
  sd35_params_init (p);
  p->prompt = prompt;
  p->negative_prompt = "blurry";
  p->width = 64;
  p->height = 64;
  p->steps = 2;
  p->cfg = 3.0;
  p->seed = 7;
}

static int
generate (sd35_engine *e, const char *prompt, struct sd35_result *r)
{
  struct sd35_params p;
  struct sd35_error  err = { 0 };

  params (&p, prompt);
  if (sd35_generate (e, &p, NULL, r, &err) != SD35_OK)
    return test_check (0, "generate '%s': %s", prompt, err.message);
  return 1;
}

static void
test_offload (void)
{
  struct sd35_error  err = { 0 };
  sd35_engine       *keep = open_engine (0, &err), *off;
  struct sd35_result rk, ro;
  size_t             k_open, k_gen, o_open, o_gen, o_again, o_new, peak, o_peak;

  if (!test_check (keep != NULL, "open (keep): %s", err.message))
    return;
  off = open_engine (1, &err);
  if (!test_check (off != NULL, "open (offload): %s", err.message))
    {
      sd35_engine_free (keep);
      return;
    }
  test_check (sd35_engine_memory (NULL, &k_open, &peak) == SD35_ERR_ARG,
              "sd35_engine_memory (NULL) is an argument error");
  sd35_engine_memory (keep, &k_open, NULL);
  sd35_engine_memory (off, &o_open, NULL);
  test_check (k_open == o_open && k_open > 0, "after open both hold the same bytes (%zu, %zu)",
              k_open, o_open);

  memset (&rk, 0, sizeof rk);
  memset (&ro, 0, sizeof ro);
  if (generate (keep, "a red apple", &rk) && generate (off, "a red apple", &ro))
    {
      sd35_engine_memory (keep, &k_gen, &peak);
      sd35_engine_memory (off, &o_gen, &o_peak);
      printf ("in use after open %zu B; after a generation: kept %zu B, offloaded %zu B "
              "(text encoders %zu B); peak kept %zu B, offloaded %zu B\n", k_open, k_gen, o_gen,
              k_gen - o_gen, peak, o_peak);
      test_check (o_gen < k_gen, "offloading: in use after generate %zu < when keeping %zu",
                  o_gen, k_gen);
      test_check (o_peak < peak, "offloading: peak %zu < peak when keeping %zu", o_peak, peak);
      test_check (memcmp (rk.rgb, ro.rgb, (size_t) 3 * rk.width * rk.height) == 0,
                  "offloading gives the same image, bit for bit");
    }
  sd35_result_clear (&ro);
  /* the same prompts again: from the cache, the encoders stay off the backend */
  if (generate (off, "a red apple", &ro))
    {
      sd35_engine_memory (off, &o_again, NULL);
      test_check (o_again == o_gen, "cached prompt: in use %zu = %zu", o_again, o_gen);
    }
  sd35_result_clear (&ro);
  sd35_result_clear (&rk);
  /* a new prompt: the encoders are reloaded from the open files, used and freed again */
  if (generate (keep, "a green pear", &rk) && generate (off, "a green pear", &ro))
    {
      sd35_engine_memory (off, &o_new, NULL);
      test_check (o_new == o_gen, "new prompt: encoders freed again (in use %zu = %zu)", o_new,
                  o_gen);
      test_check (memcmp (rk.rgb, ro.rgb, (size_t) 3 * rk.width * rk.height) == 0,
                  "reloaded encoders give the same image, bit for bit");
    }
  sd35_result_clear (&ro);
  sd35_result_clear (&rk);
  sd35_engine_free (keep);
  sd35_engine_free (off);
}

/* OOM message: the stage and the hint */
static int
oom_message_ok (const struct sd35_error *err, const char **stage)
{
  static const char *const stages[] = { "while loading CLIP-L", "while loading CLIP-G",
                                        "while loading T5-XXL", "while loading the MMDiT",
                                        "while loading the VAE", "while encoding the prompt",
                                        "while encoding the negative prompt",
                                        "while running the MMDiT at 64×64",
                                        "while decoding the image at 64×64" };

  *stage = NULL;
  for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
    if (strstr (err->message, stages[i]))
      *stage = stages[i];
  return err->status == SD35_ERR_OOM && *stage != NULL
         && strstr (err->message, "out of memory") != NULL
         && strstr (err->message, "--no-t5") != NULL
         && strstr (err->message, "smaller image size") != NULL
         && strstr (err->message, "fp8 weights") != NULL;
}

/* Fails allocation n of the open, then of a generation; returns 1 when nothing failed (n is
 * past the last allocation).  Counts the stages seen. */
static int
fail_at (long n, int offload, int *seen, int n_seen_max, const char **seen_names)
{
  char               v[32];
  struct sd35_error  err = { 0 };
  struct sd35_result r;
  const char        *stage;
  sd35_engine       *e;
  int                done = 0;

  snprintf (v, sizeof v, "%ld", n);
  setenv ("SD35_TEST_FAIL_ALLOC_AT", v, 1);
  e = open_engine (offload, &err);
  if (e != NULL)
    {
      struct sd35_params p;
      params (&p, "a red apple");
      memset (&r, 0, sizeof r);
      if (sd35_generate (e, &p, NULL, &r, &err) == SD35_OK)
        done = 1;
      else
        test_check (r.rgb == NULL && r.image_float == NULL && r.noise == NULL,
                    "allocation %ld: the failed result is empty", n);
      sd35_result_clear (&r);
      sd35_engine_free (e);
    }
  unsetenv ("SD35_TEST_FAIL_ALLOC_AT");
  if (done)
    return 1;
  if (!test_check (oom_message_ok (&err, &stage), "allocation %ld refused: status %s, message "
                   "names the stage and the hint: %s", n, sd35_status_name (err.status),
                   err.message))
    return 0;
  for (int i = 0; i < n_seen_max; i++)
    if (seen_names[i] == NULL || strcmp (seen_names[i], stage) == 0)
      {
        if (seen_names[i] == NULL)
          printf ("allocation %ld: %s\n", n, err.message);
        seen_names[i] = stage;
        seen[i]++;
        break;
      }
  return 0;
}

static void
test_oom (void)
{
  const char *names[16] = { 0 };
  int         seen[16] = { 0 }, n_stages = 0;
  long        n;

  /* every 4th allocation: each stage makes ≥ 5 (T5's vectors in the test model) */
  for (n = 1; n < 100000; n += 4)
    if (fail_at (n, 1, seen, 16, names))
      break;
  test_check (n > 1 && n < 100000, "the run without a refused allocation was reached (%ld)", n);
  for (int i = 0; i < 16 && names[i]; i++)
    n_stages++;
  test_check (n_stages >= 7, "%d distinct stages named (expect loading CLIP-L/G, T5, MMDiT, "
              "VAE, running the MMDiT, decoding)", n_stages);
  for (int i = 0; i < 16 && names[i]; i++)
    printf ("  %-40s %d refusals\n", names[i], seen[i]);
}

int
main (void)
{
  struct test_model_options tm;
  struct sd35_error         err = { 0 };
  char                      dir[1024];
  char                     *root = test_make_tmpdir ("memory");

  snprintf (dir, sizeof dir, "%s/model", root);
  model_dir = dir;
  test_model_options_init (&tm);
  tm.out_dir = dir;
  tm.seed = 3;
  if (test_check (test_model_write (&tm, &err) == SD35_OK, "write test model: %s", err.message))
    {
      test_offload ();
      test_oom ();
    }
  test_remove_tree (root);
  free (root);
  return test_exit ();
}
