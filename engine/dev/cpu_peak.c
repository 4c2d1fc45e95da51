/* cpu_peak.c — this CPU's fp32 FMA peak, for `sd35 bench` on the CPU backend (see
 * cpu_peak.h): the nominal figure from /proc/cpuinfo and a measured one from a loop of
 * independent FMAs on registers, timed in CPU time (the machine may be shared). */
#include "cpu_peak.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu_ops.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

double
cpu_peak_flop_per_cycle (void)
{
  /* AVX2+FMA: 2 FMA pipes × 8 fp32 lanes × 2 FLOP; else SSE: 4 lanes × (1 add + 1 mul) */
  return cpu_has_avx2_fma () ? 32.0 : 8.0;
}

double
cpu_peak_nominal_ghz (void)
{
  FILE  *f = fopen ("/proc/cpuinfo", "r");
  char   line[256];
  double mhz = 0.0;

  if (f == NULL)
    return 0.0;
  while (fgets (line, sizeof line, f) != NULL)
    if (strncmp (line, "cpu MHz", 7) == 0)
      {
        const char *colon = strchr (line, ':');
        if (colon != NULL)
          mhz = strtod (colon + 1, NULL);
        break;
      }
  fclose (f);
  return mhz / 1000.0;
}

static double
thread_cpu_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* 10 independent accumulators: enough to cover a 4–5 cycle FMA latency on 2 pipes */
__attribute__ ((target ("avx2,fma"))) static double
fma_loop_avx2 (long n)
{
  const __m256 m = _mm256_set1_ps (0.999999f), c = _mm256_set1_ps (1e-7f);
  __m256 a0 = _mm256_set1_ps (0.f), a1 = _mm256_set1_ps (1.f), a2 = _mm256_set1_ps (2.f),
         a3 = _mm256_set1_ps (3.f), a4 = _mm256_set1_ps (4.f), a5 = _mm256_set1_ps (5.f),
         a6 = _mm256_set1_ps (6.f), a7 = _mm256_set1_ps (7.f), a8 = _mm256_set1_ps (8.f),
         a9 = _mm256_set1_ps (9.f);
  float  out[8];

  for (long k = 0; k < n; k++)
    {
      a0 = _mm256_fmadd_ps (a0, m, c), a1 = _mm256_fmadd_ps (a1, m, c);
      a2 = _mm256_fmadd_ps (a2, m, c), a3 = _mm256_fmadd_ps (a3, m, c);
      a4 = _mm256_fmadd_ps (a4, m, c), a5 = _mm256_fmadd_ps (a5, m, c);
      a6 = _mm256_fmadd_ps (a6, m, c), a7 = _mm256_fmadd_ps (a7, m, c);
      a8 = _mm256_fmadd_ps (a8, m, c), a9 = _mm256_fmadd_ps (a9, m, c);
      __asm__ volatile ("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                        "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9));
    }
  a0 = _mm256_add_ps (_mm256_add_ps (_mm256_add_ps (a0, a1), _mm256_add_ps (a2, a3)),
                      _mm256_add_ps (_mm256_add_ps (a4, a5), _mm256_add_ps (a6, a7)));
  _mm256_storeu_ps (out, _mm256_add_ps (a0, _mm256_add_ps (a8, a9)));
  return (double) out[0];
}
#endif

double
cpu_peak_measured_gflops_per_core (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma ())
    {
      const long n = 20000000;  /* 3.2 GFLOP: ~30 ms at 100 GFLOP/s */
      double     best = 0.0;
      for (int rep = 0; rep < 3; rep++)  /* best of 3: an interrupt only slows one */
        {
          double t0 = thread_cpu_s (), sink = fma_loop_avx2 (n), t = thread_cpu_s () - t0;
          if (t > 0 && sink == sink && (double) n * 160.0 / t / 1e9 > best)
            best = (double) n * 160.0 / t / 1e9;
        }
      return best;
    }
#endif
  return 0.0;
}
