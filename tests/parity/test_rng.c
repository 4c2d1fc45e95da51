/* test_rng.c — torch CPU manual_seed + randn, bit for bit, against golden/randn.safetensors
 * (the cases of manifest.json "randn"): the AVX2 16-block path with and without a tail, the
 * element-wise double path (numel < 16), a 64-bit seed (truncated), get_empty_latent's
 * per-item generators, two draws from one seeding, and `sd35 randn`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "testutil.h"

struct rng_case
{
  const char *tensor;
  uint64_t    seed;
};

/* manifest.json goldens[name = "randn"].cases */
static const struct rng_case cases[] = {
  { "case0", 0 },          /* [16]: one block */
  { "case1", 1 },          /* [1,16,16,16] */
  { "case2", 23 },         /* [1,16,10,14] */
  { "case3", 42 },         /* [1,16,16,16] */
  { "case4", 123456789 },  /* [1,16,12,16] */
  { "case5", 4294967298 }, /* [1,16,8,8]: 2^32 + 2 → seed 2 */
  { "case6", 5 },          /* [5]: normal_distribution<double> */
  { "case7", 6 },          /* [20]: tail redraw */
  { "case8", 7 },          /* [1,3,7] = 21: tail redraw */
};

/* bit-exact comparison; prints the first differing element */
static int
check_bits (const char *what, const float *got, const float *ref, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (memcmp (&got[i], &ref[i], sizeof (float)) != 0)
      return test_check (0, "%s: element %zu of %zu is %.9g, torch gives %.9g", what, i, n,
                         (double) got[i], (double) ref[i]);
  return test_check (1, "%s: %zu values bit-identical", what, n);
}

static float *
seeded_randn (uint64_t seed, size_t n)
{
  struct torch_rng *g = torch_rng_new (seed);
  float            *out = malloc ((n ? n : 1) * sizeof *out);

  if (g == NULL || out == NULL)
    {
      printf ("FAIL: out of memory\n");
      exit (1);
    }
  torch_randn (g, out, n);
  torch_rng_free (g);
  return out;
}

static void
test_cases (struct st_file *f)
{
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    {
      size_t n;
      float *ref = test_golden_f32 (f, cases[c].tensor, &n);
      float *got = seeded_randn (cases[c].seed, n);
      char   what[96];

      snprintf (what, sizeof what, "%s seed %llu numel %zu", cases[c].tensor,
                (unsigned long long) cases[c].seed, n);
      check_bits (what, got, ref, n);
      free (got);
      free (ref);
    }
}

/* get_empty_latent(2, 64, 48, seed 5): item i from Generator().manual_seed(5 + i) */
static void
test_empty_latent (struct st_file *f)
{
  size_t n;
  float *ref = test_golden_f32 (f, "empty_latent_b2_64x48_seed5", &n);
  size_t per = n / 2;
  float *got = malloc (n * sizeof *got);

  test_check (per == 16 * 6 * 8, "empty latent has 2 × 16×6×8 values (%zu)", n);
  for (int i = 0; i < 2; i++)
    {
      float *item = seeded_randn (5 + (uint64_t) i, per);
      memcpy (got + (size_t) i * per, item, per * sizeof *got);
      free (item);
    }
  check_bits ("empty_latent_b2_64x48_seed5", got, ref, n);
  free (got);
  free (ref);
}

/* manual_seed(31); a = randn(1,16,4,4); b = randn(1,16,4,4) */
static void
test_sequence (struct st_file *f)
{
  size_t            n1, n2;
  float            *ref1 = test_golden_f32 (f, "seq_seed31_first", &n1);
  float            *ref2 = test_golden_f32 (f, "seq_seed31_second", &n2);
  struct torch_rng *g = torch_rng_new (31);
  float            *a = malloc (n1 * sizeof *a), *b = malloc (n2 * sizeof *b);

  torch_randn (g, a, n1);
  torch_randn (g, b, n2);
  check_bits ("seq_seed31_first", a, ref1, n1);
  check_bits ("seq_seed31_second (stream continues)", b, ref2, n2);
  /* reseeding restarts the stream */
  torch_rng_seed (g, 31);
  torch_randn (g, b, n1);
  check_bits ("torch_rng_seed(31) restarts the stream", b, ref1, n1);
  torch_rng_free (g);
  free (a);
  free (b);
  free (ref1);
  free (ref2);
}

/* The double path caches r·sin θ in the generator: randn(5) + randn(5) = randn(10); and
 * manual_seed drops the cache (torch resets next_double_normal_sample_). */
static void
test_normal_cache (void)
{
  struct torch_rng *g = torch_rng_new (5);
  float             two[10], *one = seeded_randn (5, 10), again[5];

  torch_randn (g, two, 5);
  torch_randn (g, two + 5, 5);
  check_bits ("randn(5) twice == randn(10) (cached sine half)", two, one, 10);
  torch_rng_seed (g, 5);
  torch_randn (g, again, 5);
  check_bits ("manual_seed resets the normal cache", again, one, 5);
  torch_rng_free (g);
  free (one);
}

/* `sd35 randn --seed 123456789 --shape 1,16,12,16` == case4 */
static void
test_cli (struct st_file *f)
{
  const char             *cli = getenv ("SD35_CLI");
  const char             *tmp = getenv ("TMPDIR");
  char                    path[512], cmdline[1200];
  struct st_file         *out = NULL;
  struct sd35_error       err = { 0 };
  const struct st_tensor *t;

  if (cli == NULL || access (cli, X_OK) != 0)
    {
      printf ("skip `sd35 randn` check: $SD35_CLI not set\n");
      return;
    }
  snprintf (path, sizeof path, "%s/sd35_test_randn_%d.safetensors", tmp ? tmp : "/tmp",
            (int) getpid ());
  snprintf (cmdline, sizeof cmdline, "'%s' randn --seed 123456789 --shape 1,16,12,16 --out '%s'",
            cli, path);
  if (!test_check (system (cmdline) == 0, "sd35 randn runs"))
    return;
  if (test_check (st_open (path, &out, &err) == SD35_OK, "sd35 randn output opens: %s",
                  err.message))
    {
      t = st_find (out, "noise");
      if (test_check (t != NULL && t->dtype == SD35_F32 && t->ndim == 4 && t->shape[1] == 16 &&
                      t->shape[2] == 12 && t->shape[3] == 16,
                      "sd35 randn writes noise F32 [1,16,12,16]"))
        {
          size_t n;
          float *ref = test_golden_f32 (f, "case4", &n);
          check_bits ("sd35 randn == torch", t->data, ref, n);
          free (ref);
        }
      st_close (out);
    }
  remove (path);
  /* a bad shape is refused with exit status 2 */
  snprintf (cmdline, sizeof cmdline, "'%s' randn --seed 1 --shape 1,0,4 --out '%s' 2>/dev/null",
            cli, path);
  test_check (system (cmdline) != 0, "sd35 randn refuses a zero size");
}

int
main (void)
{
  struct st_file *f = test_open_golden ("golden/randn.safetensors");

  test_cases (f);
  test_empty_latent (f);
  test_sequence (f);
  test_normal_cache ();
  test_cli (f);
  st_close (f);
  return test_exit ();
}
