/* cpu_peak.h — the fp32 FMA peak of this CPU, for `sd35 bench` (dev only).
 *   nominal  = cores × GHz (/proc/cpuinfo "cpu MHz", the base clock a VM reports) ×
 *              FLOP per cycle (32 with AVX2+FMA: 2 FMA units × 8 lanes × 2);
 *   measured = a register-only loop of independent FMAs timed in thread CPU time, per core
 *              (it shows the clock the core really runs at, boost included). */
#ifndef SD35_CPU_PEAK_H
#define SD35_CPU_PEAK_H

double cpu_peak_flop_per_cycle (void);
double cpu_peak_nominal_ghz (void);              /* 0 if unknown */
double cpu_peak_measured_gflops_per_core (void); /* 0 without AVX2/FMA */

#endif
