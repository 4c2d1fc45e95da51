/* test_bench.c — `sd35 bench`'s FLOP formulas against the hand counts of
 * /work/shared/docs/performance.md (1024², 77 + 256 context tokens, batch 1), and each stage
 * run once on the CPU backend at a tiny size: outputs finite, runs counted, FLOP reported. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "testutil.h"
#include "text_encoders.h"

static void
check_rel (const char *what, double got, double want, double rel)
{
  test_check (fabs (got - want) <= rel * want, "%s: %.4g, expected %.4g ± %.1f%%", what, got,
              want, 100 * rel);
}

static void
check_stage (const char *what, const struct bench_stage *r, int iters, double flop)
{
  test_check (r->ran && r->runs == iters, "%s: ran %d, %d timed runs (expected %d)", what,
              r->ran, r->runs, iters);
  test_check (r->finite && r->out_absmax > 0, "%s: output finite (%d) and not all zero "
              "(max |x| %g)", what, r->finite, r->out_absmax);
  test_check (r->ms_median > 0 && r->ms_min <= r->ms_median && r->ms_median <= r->ms_max,
              "%s: times %.3f ≤ %.3f ≤ %.3f ms", what, r->ms_min, r->ms_median, r->ms_max);
  check_rel (what, r->flop, flop, 1e-12);
}

int
main (void)
{
  struct mmdit_config cfg;
  struct vae_config   vcfg;
  struct backend     *be = NULL;
  struct sd35_error   err = { 0 };
  struct bench_stage  r;
  struct clip_model  *clip = NULL;
  struct t5_model    *t5 = NULL;
  int32_t             ids[77];
  float              *out, pooled[768];

  /* performance.md: one forward at 1024², N = 4096 + 333 */
  bench_mmdit_config (BENCH_LARGE, &cfg);
  check_rel ("Large forward FLOP", bench_mmdit_flop (&cfg, 1, 128, 128, 333), 31.1e12, 0.01);
  bench_mmdit_config (BENCH_MEDIUM, &cfg);
  check_rel ("Medium forward FLOP", bench_mmdit_flop (&cfg, 1, 128, 128, 333), 11.25e12, 0.01);
  check_rel ("Medium CFG step = 2 forwards", bench_mmdit_flop (&cfg, 2, 128, 128, 333),
             2 * bench_mmdit_flop (&cfg, 1, 128, 128, 333), 1e-12);
  vae_config_sd3 (&vcfg, 0);
  check_rel ("VAE decode 1024² FLOP", bench_vae_decode_flop (&vcfg, 128, 128), 10.5e12, 0.015);
  check_rel ("T5-XXL 256 tokens FLOP", bench_tenc_flop (BENCH_T5XXL, 256), 2.4e12, 0.02);
  test_check (bench_mmdit_batch (BENCH_TURBO) == 1 && bench_mmdit_batch (BENCH_LARGE) == 2,
              "batch: Turbo 1 (no CFG), Large 2");

  if (backend_cpu_new (1, &be, &err) != SD35_OK)
    {
      test_check (0, "CPU backend: %s", err.message);
      return test_exit ();
    }
  if (bench_gemm (be, 64, 1, 2, &r, &err) != SD35_OK)
    test_check (0, "bench_gemm: %s", err.message);
  else
    check_stage ("gemm 64³", &r, 2, 2.0 * 64 * 64 * 64);

  /* the real CLIP-L shape through clip_encode (the bench's T5-XXL takes seconds on a CPU:
   * a 2-block T5 of d_model 64 instead) */
  out = malloc ((size_t) 77 * 768 * sizeof *out);
  for (int i = 0; i < 77; i++)
    ids[i] = (i * 7919) % 49407;
  ids[20] = 49407;
  if (out == NULL
      || clip_new_random (be, CLIP_KIND_L, 12, 768, 12, 3072, 21, &clip, &err) != SD35_OK
      || clip_encode (clip, ids, out, pooled, &err) != SD35_OK)
    test_check (0, "CLIP-L: %s", err.message);
  else
    {
      int   ok = 1;
      float m = 0.0f;
      for (int i = 0; i < 77 * 768; i++)
        ok &= isfinite (out[i]), m = fmaxf (m, fabsf (out[i]));
      for (int i = 0; i < 768; i++)
        ok &= isfinite (pooled[i]);
      test_check (ok && m > 0.0f, "CLIP-L output finite and not all zero (max |x| %g)", m);
      test_check (clip_width (clip) == 768, "CLIP-L width 768");
    }
  for (int i = 0; i < 16; i++)
    ids[i] = (i * 7919) % 32127;
  if (out == NULL || t5_new_random (be, 2, 64, 4, 160, 23, &t5, &err) != SD35_OK
      || t5_encode (t5, ids, 16, out, &err) != SD35_OK)
    test_check (0, "T5: %s", err.message);
  else
    {
      int ok = 1;
      for (int i = 0; i < 16 * 64; i++)
        ok &= isfinite (out[i]);
      test_check (ok && t5_width (t5) == 64, "T5 (2 blocks, d_model 64) output finite");
    }
  clip_free (clip);
  t5_free (t5);
  test_check (clip_new_random (be, CLIP_KIND_G, 2, 100, 3, 64, 1, &clip, &err) == SD35_ERR_ARG
              && clip == NULL, "CLIP: 3 heads for width 100 refused");
  free (out);

  if (bench_vae (be, 16, 0, 1, &r, &err) != SD35_OK)
    test_check (0, "bench_vae: %s", err.message);
  else
    check_stage ("VAE decode 16²", &r, 1, bench_vae_decode_flop (&vcfg, 2, 2));

  /* a depth-2 MMDiT-X (attn2 in block 0) at latent 4×4 with 8 context tokens, batch 2; the
   * real sizes take minutes on a CPU (the step is bound by reading every weight) */
  cfg.depth = 2, cfg.hidden_size = 128, cfg.num_heads = 2, cfg.pos_embed_max_size = 8;
  memset (cfg.attn2, 0, sizeof cfg.attn2);
  cfg.attn2[0] = 1;
  if (bench_mmdit_shape (be, &cfg, 2, 32, 8, 0, 1, &r, &err) != SD35_OK)
    test_check (0, "bench_mmdit_shape: %s", err.message);
  else
    check_stage ("MMDiT depth 2, 32²", &r, 1, bench_mmdit_flop (&cfg, 2, 4, 4, 8));

  /* argument checks */
  test_check (bench_mmdit_shape (be, &cfg, 2, 24, 8, 0, 1, &r, &err) == SD35_ERR_ARG,
              "size 24 (not a multiple of 16) refused");
  test_check (bench_gemm (be, 64, 0, 0, &r, &err) == SD35_ERR_ARG, "0 timed runs refused");
  backend_free (be);
  return test_exit ();
}
