/* bench_lora.c — what a LoRA change costs on an open engine, against opening it (a benchmark:
 * prints numbers, fails only when a call fails).  CPU backend, T5 off, no generation.
 *
 *   open      sd35_engine_open of the model
 *   first     sd35_engine_set_loras (LORA at 1.0): read the file, merge every touched weight
 *   switch    the same LoRA at 0.5: the touched weights rebuilt, nothing reloaded
 *   remove    no LoRA: the touched weights back from the mapped file, bit-exact
 * with wall and process CPU time (all threads) and the resident memory (VmRSS) after each step.
 *
 * usage: bench_lora MODEL LORA [--threads N]
 *   e.g. MODEL = tools/make-random-sd35.py --variant medium output, LORA = make_lora_fixtures.py
 *   --random-for MODEL/sd3.5_medium.safetensors OUT (rank 16 on every attention projection) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sd35.h"

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
cpu_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long
rss_mib (void)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char  line[256];
  long  kib = -1;

  while (f != NULL && fgets (line, sizeof line, f) != NULL)
    if (strncmp (line, "VmRSS:", 6) == 0)
      kib = strtol (line + 6, NULL, 10);
  if (f != NULL)
    fclose (f);
  return kib < 0 ? -1 : kib / 1024;
}

static int
step (sd35_engine *e, const char *what, const struct sd35_lora *l, int n)
{
  struct sd35_error err = { 0 };
  double            t0 = now_s (), c0 = cpu_s ();

  if (sd35_engine_set_loras (e, l, n, &err) != SD35_OK)
    {
      fprintf (stderr, "bench_lora: %s: %s\n", what, err.message);
      return 1;
    }
  printf ("%-7s %8.3f s wall %8.3f s CPU   RSS %6ld MiB\n", what, now_s () - t0,
          cpu_s () - c0, rss_mib ());
  return 0;
}

int
main (int argc, char **argv)
{
  struct sd35_engine_options o;
  struct sd35_error          err = { 0 };
  sd35_engine               *e = NULL;
  struct sd35_lora           l;
  double                     t0;
  int                        rc;

  if (argc < 3)
    {
      fprintf (stderr, "usage: bench_lora MODEL LORA [--threads N]\n");
      return 77;
    }
  sd35_engine_options_init (&o);
  o.backend = SD35_BACKEND_CPU;
  o.model_path = argv[1];
  o.use_t5 = 0;
  if (argc > 4 && strcmp (argv[3], "--threads") == 0)
    o.n_threads = atoi (argv[4]);
  t0 = now_s ();
  if (sd35_engine_open (&o, &e, &err) != SD35_OK)
    {
      fprintf (stderr, "bench_lora: %s\n", err.message);
      return 1;
    }
  printf ("open    %8.3f s   RSS %6ld MiB   (%s)\n", now_s () - t0, rss_mib (),
          sd35_engine_info (e)->variant_name);
  l.path = argv[2];
  l.strength = 1.0;
  rc = step (e, "first", &l, 1);
  if (rc == 0)
    printf ("%s\n", sd35_engine_lora_report (e));
  l.strength = 0.5;
  rc = rc || step (e, "switch", &l, 1);
  rc = rc || step (e, "remove", NULL, 0);
  sd35_engine_free (e);
  return rc;
}
