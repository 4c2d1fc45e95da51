/* cmd_bench.c — `sd35 bench`: times the stages of an SD3.5 generation on a backend with
 * real-size models from random weights (no files): a square GEMM through the linear op (the
 * matmul peak of this run), the text encoders (one prompt), one MMDiT step (batch 2 with CFG,
 * 1 for Turbo), one VAE decode; prints per-stage ms, TFLOP/s, % of that peak, peak backend
 * memory and an end-to-end estimate.  See bench.h for how it times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cpu_ops.h"
#include "cpu_peak.h"
#include "cli.h"
#include "commands.h"
#include "error.h"

#define MIB(b) ((double) (b) / 1048576.0)

/* CPU refusal threshold: one step above this many FLOP takes minutes on a desktop CPU. */
#define BENCH_CPU_MAX_STEP_FLOP 5e12

enum
{
  STAGE_GEMM = 1,
  STAGE_TEXT = 2,
  STAGE_MMDIT = 4,
  STAGE_VAE = 8
};

static int
parse_stages (const char *s, unsigned *mask)
{
  static const struct { const char *name; unsigned bit; } names[] = {
    { "gemm", STAGE_GEMM }, { "text", STAGE_TEXT }, { "mmdit", STAGE_MMDIT },
    { "vae", STAGE_VAE }, { "all", STAGE_GEMM | STAGE_TEXT | STAGE_MMDIT | STAGE_VAE },
  };
  char *copy = strdup (s), *save = NULL;
  int   ok = copy != NULL;

  *mask = 0;
  for (char *tok = ok ? strtok_r (copy, ",", &save) : NULL; tok && ok;
       tok = strtok_r (NULL, ",", &save))
    {
      size_t i;
      for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp (tok, names[i].name) == 0)
          break;
      if (i == sizeof names / sizeof names[0])
        ok = 0;
      else
        *mask |= names[i].bit;
    }
  free (copy);
  return ok && *mask != 0 ? 0 : -1;
}

static void
print_stage (const char *label, const struct bench_stage *r, double peak_tflops)
{
  double tflops = r->ms_median > 0 ? r->flop / (r->ms_median * 1e-3) / 1e12 : 0.0;

  printf ("%-36s %10.2f %10.2f %10.2f %10.1f %8.2f %6.1f %11.1f %9.1f  %s\n", label,
          r->ms_median, r->ms_min, r->ms_max, r->flop / 1e9, tflops,
          peak_tflops > 0 ? 100.0 * tflops / peak_tflops : 0.0, MIB (r->weight_bytes),
          MIB (r->peak_bytes), r->finite ? "yes" : "NO");
}

int
cmd_bench (int argc, char **argv)
{
  const char *cmd = "bench";
  const char *variant_s = NULL, *backend_s = "auto", *stages_s = "all";
  int         size = 0, steps = 0, iters = 0, warmup = -1, t5_tokens = 77, gemm_n = 0;
  int         threads = 0, force = 0, verbose = 0;
  const struct cli_opt opts[] = {
    { "variant", CLI_STR, &variant_s, "large, medium or turbo (default: large on CUDA, medium "
      "on the CPU)", NULL },
    { "size", CLI_INT, &size, "image side in pixels (default: 1024 on CUDA, 256 on the CPU)",
      NULL },
    { "steps", CLI_INT, &steps, "steps of the end-to-end estimate (default 28; turbo 4)", NULL },
    { "backend", CLI_STR, &backend_s, "auto (default), cpu or cuda", NULL },
    { "iters", CLI_INT, &iters, "timed runs per stage, median reported (default: 10 on CUDA, "
      "1 on the CPU)", NULL },
    { "warmup", CLI_INT, &warmup, "untimed runs first (default: 2 on CUDA, 0 on the CPU)",
      NULL },
    { "t5-tokens", CLI_INT, &t5_tokens, "T5 tokens (default 77, the reference's length for "
      "prompts ≤ 76 tokens; context = 77 + this)", NULL },
    { "stages", CLI_STR, &stages_s, "comma list of gemm, text, mmdit, vae (default all)",
      NULL },
    { "gemm", CLI_INT, &gemm_n, "side of the square peak GEMM (default: 8192 on CUDA, 1024 "
      "on the CPU)", NULL },
    { "threads", CLI_INT, &threads, "CPU threads (default: all cores)", NULL },
    { "force", CLI_FLAG, &force, "run even a configuration that is too big for the CPU", NULL },
    { "verbose", CLI_FLAG, &verbose, "log model building details", NULL },
  };
  enum bench_variant     variant;
  enum sd35_backend_kind kind;
  unsigned               stages;
  struct backend        *be = NULL;
  struct sd35_error      err = { 0 };
  struct bench_stage     gemm = { 0 }, text = { 0 }, step = { 0 }, vae = { 0 };
  struct mmdit_config    mcfg;
  int                    cpu, B, n_ctx, status = 1;
  double                 peak = 0.0;
  size_t                 peak_all = 0;
  int r = cli_parse (argc, argv, cmd, "Times SD3.5 stages (text encoders, one MMDiT step, VAE "
                     "decode) with real-size random-weight models; no model files needed.",
                     opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if (strcmp (backend_s, "auto") == 0)
    kind = SD35_BACKEND_AUTO;
  else if (strcmp (backend_s, "cpu") == 0)
    kind = SD35_BACKEND_CPU;
  else if (strcmp (backend_s, "cuda") == 0)
    kind = SD35_BACKEND_CUDA;
  else
    {
      cli_fail (cmd, "--backend %s: expected auto, cpu or cuda", backend_s);
      return 2;
    }
  if (parse_stages (stages_s, &stages) != 0)
    {
      cli_fail (cmd, "--stages %s: expected a comma list of gemm, text, mmdit, vae or all",
                stages_s);
      return 2;
    }
  sd35_log_set_verbose (verbose);
  if (backend_new (kind, threads, &be, &err) != SD35_OK)
    return cli_fail_err (cmd, &err);
  cpu = !be->device_memory;  /* host backends get the small defaults */

  /* defaults by the backend actually obtained */
  if (variant_s == NULL)
    variant_s = cpu ? "medium" : "large";
  if (strcmp (variant_s, "large") == 0)
    variant = BENCH_LARGE;
  else if (strcmp (variant_s, "medium") == 0)
    variant = BENCH_MEDIUM;
  else if (strcmp (variant_s, "turbo") == 0)
    variant = BENCH_TURBO;
  else
    {
      cli_fail (cmd, "--variant %s: expected large, medium or turbo", variant_s);
      status = 2;
      goto done;
    }
  if (size == 0)
    size = cpu ? 256 : 1024;
  if (steps == 0)
    steps = variant == BENCH_TURBO ? 4 : 28;
  if (iters == 0)
    iters = cpu ? 1 : 10;
  if (warmup < 0)
    warmup = cpu ? 0 : 2;
  if (gemm_n == 0)
    gemm_n = cpu ? 1024 : 8192;
  if (size < 16 || size % 16 != 0 || size > 4096 || steps < 1 || steps > 1000
      || t5_tokens < 1 || t5_tokens > 512 || iters < 1 || iters > BENCH_MAX_RUNS)
    {
      cli_fail (cmd, "bad sizes: --size %d (16..4096, multiple of 16), --steps %d (1..1000), "
                "--t5-tokens %d (1..512), --iters %d (1..%d)", size, steps, t5_tokens, iters,
                BENCH_MAX_RUNS);
      status = 2;
      goto done;
    }
  bench_mmdit_config (variant, &mcfg);
  B = bench_mmdit_batch (variant);
  n_ctx = SD35_CLIP_TOKENS + t5_tokens;
  if (cpu && !force && (stages & STAGE_MMDIT)
      && bench_mmdit_flop (&mcfg, B, size / 8, size / 8, n_ctx) > BENCH_CPU_MAX_STEP_FLOP)
    {
      cli_fail (cmd, "%s at %d×%d on the CPU backend: one step is %.1f TFLOP, minutes per "
                "run at a CPU's 0.1–1 TFLOP/s (over %.0f TFLOP allowed without --force).  Use a "
                "GPU (--backend cuda), a smaller --size (256) or --variant medium, or --force "
                "to run it anyway", variant_s, size, size,
                bench_mmdit_flop (&mcfg, B, size / 8, size / 8, n_ctx) / 1e12,
                BENCH_CPU_MAX_STEP_FLOP / 1e12);
      status = 2;
      goto done;
    }

  printf ("sd35 bench: %s (depth %d, hidden %d%s), %d×%d → latent %d×%d = %d image tokens + "
          "%d context tokens (CLIP 77 + T5 %d), batch %d%s\n", variant_s, mcfg.depth,
          mcfg.hidden_size, variant == BENCH_MEDIUM ? ", attn2 in blocks 0–12" : "", size,
          size, size / 8, size / 8, (size / 16) * (size / 16), n_ctx, t5_tokens, B,
          B == 2 ? " (CFG)" : " (no CFG)");
  printf ("backend %s (activations %s); %d warm-up + %d timed runs per stage, median; host "
          "monotonic clock around backend synchronize(); random weights (bf16 pool, ±0.02)\n",
          be->name, sd35_dtype_name (be->act_dtype), warmup, iters);
  fflush (stdout);

  if ((stages & STAGE_GEMM)
      && bench_gemm (be, gemm_n, warmup + 1, iters, &gemm, &err) != SD35_OK)
    goto fail;
  if (gemm.ran && gemm.ms_median > 0)
    peak = gemm.flop / (gemm.ms_median * 1e-3) / 1e12;
  if ((stages & STAGE_TEXT) && bench_text (be, t5_tokens, warmup, iters, &text, &err) != SD35_OK)
    goto fail;
  if ((stages & STAGE_MMDIT)
      && bench_mmdit (be, variant, size, n_ctx, warmup, iters, &step, &err) != SD35_OK)
    goto fail;
  if ((stages & STAGE_VAE) && bench_vae (be, size, warmup, iters, &vae, &err) != SD35_OK)
    goto fail;

  printf ("\n%-36s %10s %10s %10s %10s %8s %6s %11s %9s  %s\n", "stage", "median ms",
          "min ms", "max ms", "GFLOP", "TFLOP/s", "%peak", "weights MiB", "peak MiB",
          "finite");
  if (gemm.ran)
    {
      char label[64];
      snprintf (label, sizeof label, "matmul peak (linear %d³)", gemm_n);
      print_stage (label, &gemm, peak);
    }
  if (text.ran)
    print_stage ("text encoders (L + G + T5), 1 prompt", &text, peak);
  if (step.ran)
    print_stage (B == 2 ? "MMDiT step (CFG, batch 2)" : "MMDiT step (batch 1)", &step, peak);
  if (vae.ran)
    {
      char label[64];
      snprintf (label, sizeof label, "VAE decode %d×%d", size, size);
      print_stage (label, &vae, peak);
    }
  {
    const struct bench_stage *all[4] = { &gemm, &text, &step, &vae };
    for (int i = 0; i < 4; i++)
      if (all[i]->peak_bytes > peak_all)
        peak_all = all[i]->peak_bytes;
  }
  if (text.ran && step.ran && vae.ran)
    {
      int    prompts = B == 2 ? 2 : 1;  /* CFG also encodes the negative prompt */
      double e2e = prompts * text.ms_median + steps * step.ms_median + vae.ms_median;
      double flop = prompts * text.flop + steps * step.flop + vae.flop;
      printf ("\nend-to-end estimate, %d steps: %d × text + %d × step + VAE decode = %.1f ms "
              "(%.1f TFLOP, %.1f TFLOP/s)\n", steps, prompts, steps, e2e, flop / 1e12,
              flop / (e2e * 1e-3) / 1e12);
      printf ("denoising alone: %d × step = %.1f ms\n", steps, steps * step.ms_median);
    }
  if (cpu && gemm.ran && gemm.cpu_s_sum > 0)
    {
      /* the GEMM against this machine's FMA peak, both by CPU time (what a shared machine
       * leaves meaningful) and by the wall clock */
      int    nt = cpu_threads (be);
      double ghz = cpu_peak_nominal_ghz (), fpc = cpu_peak_flop_per_cycle ();
      double nominal = nt * ghz * fpc, measured = nt * cpu_peak_measured_gflops_per_core ();
      double by_cpu = gemm.flop * gemm.runs / (gemm.cpu_s_sum / nt) / 1e9;
      double by_wall = gemm.flop / (gemm.ms_median * 1e-3) / 1e9;
      printf ("\nCPU FMA peak (fp32), %d threads: nominal %d × %.2f GHz (/proc/cpuinfo) × %.0f "
              "FLOP/cycle (2 FMA units × 8 lanes × 2) = %.1f GFLOP/s", nt, nt, ghz, fpc,
              nominal);
      if (measured > 0)
        printf ("; measured %.1f GFLOP/s (register-only FMA loop, CPU time: the clock the "
                "cores really run at)", measured);
      printf ("\nCPU GEMM %d³ (bf16 weights): %.1f GFLOP/s by CPU time = %.0f%% of the nominal "
              "peak", gemm_n, by_cpu, nominal > 0 ? 100.0 * by_cpu / nominal : 0.0);
      if (measured > 0)
        printf (", %.0f%% of the measured one", 100.0 * by_cpu / measured);
      printf ("; %.1f GFLOP/s by the wall clock%s\n", by_wall,
              by_wall < 0.8 * by_cpu ? " (lower: the machine is shared, other processes "
                                       "had the cores part of the time)" : "");
    }
  printf ("peak backend memory (largest stage, weights + activations): %.1f MiB\n",
          MIB (peak_all));
  printf ("outputs finite: %s\n", (!gemm.ran || gemm.finite) && (!text.ran || text.finite)
                                  && (!step.ran || step.finite) && (!vae.ran || vae.finite)
                                  ? "yes" : "NO");
  if (verbose)
    printf ("build ms: gemm %.0f, text %.0f, mmdit %.0f, vae %.0f\n", gemm.build_ms,
            text.build_ms, step.build_ms, vae.build_ms);
  status = ((!gemm.ran || gemm.finite) && (!text.ran || text.finite)
            && (!step.ran || step.finite) && (!vae.ran || vae.finite)) ? 0 : 1;
  if (status != 0)
    fprintf (stderr, "sd35 bench: a stage produced NaN/Inf (see the finite column)\n");
  goto done;

fail:
  status = cli_fail_err (cmd, &err);
done:
  backend_free (be);
  return status;
}
