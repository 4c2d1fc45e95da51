/* bench.c — the stages of `sd35 bench` (see bench.h): real-size random models, timing, FLOP
 * counts from the shapes. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "text_encoders.h"

double
bench_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* CPU seconds of this process, all threads: the measure that a shared machine leaves
 * meaningful (wall time there depends on the other users) */
static double
bench_cpu_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

void
bench_stage_stats (struct bench_stage *r)
{
  double s[BENCH_MAX_RUNS];
  int    n = r->runs;

  if (n <= 0)
    return;
  memcpy (s, r->ms, (size_t) n * sizeof *s);
  qsort (s, (size_t) n, sizeof *s, cmp_double);
  r->ms_min = s[0];
  r->ms_max = s[n - 1];
  r->ms_median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* --- shapes -------------------------------------------------------------------------------- */

const char *
bench_variant_name (enum bench_variant v)
{
  return v == BENCH_LARGE ? "large" : v == BENCH_MEDIUM ? "medium" : "turbo";
}

/* sd35-facts.md: Large/Turbo depth 38, pos_embed_max_size 192, qk-norm rms; Medium (MMDiT-X)
 * depth 24, pos_embed_max_size 384, x_block.attn2 in blocks 0..12; context 4096, adm 2048. */
void
bench_mmdit_config (enum bench_variant v, struct mmdit_config *cfg)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->depth = v == BENCH_MEDIUM ? 24 : 38;
  cfg->hidden_size = 64 * cfg->depth;
  cfg->num_heads = cfg->depth;
  cfg->patch_size = 2;
  cfg->in_channels = 16;
  cfg->pos_embed_max_size = v == BENCH_MEDIUM ? 384 : 192;
  cfg->adm_in_channels = 2048;
  cfg->context_dim = 4096;
  cfg->qk_norm = 1;
  if (v == BENCH_MEDIUM)
    for (int i = 0; i <= 12; i++)
      cfg->attn2[i] = 1;
}

int
bench_mmdit_batch (enum bench_variant v)
{
  return v == BENCH_TURBO ? 1 : 2;
}

double
bench_mmdit_flop (const struct mmdit_config *cfg, int B, int H, int W, int n_ctx)
{
  const double D = cfg->hidden_size, p = cfg->patch_size, C = cfg->in_channels;
  const double nx = (double) (H / cfg->patch_size) * (W / cfg->patch_size), nc = n_ctx;
  const double n = nx + nc;
  double       f = 0.0;

  /* embedders: patch conv, context_embedder, t (256→D→D), y (adm→D→D) */
  f += 2.0 * nx * C * p * p * D + 2.0 * nc * cfg->context_dim * D;
  f += 2.0 * (256.0 * D + D * D + cfg->adm_in_channels * D + D * D);
  for (int i = 0; i < cfg->depth; i++)
    {
      int    pre_only = i == cfg->depth - 1;  /* last context block: qkv only */
      double chunks_x = cfg->attn2[i] ? 9.0 : 6.0, chunks_c = pre_only ? 2.0 : 6.0;

      f += 2.0 * (chunks_x + chunks_c) * D * D;                      /* adaLN */
      f += 2.0 * nx * 12.0 * D * D;                                   /* x: qkv, proj, mlp */
      f += 2.0 * nc * (pre_only ? 3.0 : 12.0) * D * D;                /* context */
      f += 4.0 * n * n * D;                                           /* joint attention */
      if (cfg->attn2[i])
        f += 2.0 * nx * 4.0 * D * D + 4.0 * nx * nx * D;              /* MMDiT-X attn2 */
    }
  f += 2.0 * 2.0 * D * D + 2.0 * nx * D * p * p * C;                  /* final layer */
  return f * B;
}

static double
conv_flop (double co, double ci, double k, double ho, double wo)
{
  return 2.0 * co * ci * k * k * ho * wo;
}

static double
resnet_flop (double cin, double cout, double h, double w)
{
  return conv_flop (cout, cin, 3, h, w) + conv_flop (cout, cout, 3, h, w)
         + (cin != cout ? conv_flop (cout, cin, 1, h, w) : 0.0);
}

/* mirrors vae.c build_decoder / vae_forward.c */
double
bench_vae_decode_flop (const struct vae_config *cfg, int h, int w)
{
  const struct vae_coder_config *cc = &cfg->decoder;
  double                         c = cc->conv_in, hh = h, ww = w, hw = (double) h * w, f;

  f = conv_flop (c, cfg->z_channels, 3, hh, ww);
  f += 2.0 * resnet_flop (c, c, hh, ww);
  f += 2.0 * hw * 4.0 * c * c + 4.0 * hw * hw * c;  /* mid attention: qkv + proj, QKᵀ + PV */
  for (int i = cc->n_levels - 1; i >= 0; i--)
    {
      for (int j = 0; j < cc->n_blocks; j++)
        {
          f += resnet_flop (c, cc->width[i], hh, ww);
          c = cc->width[i];
        }
      if (i != 0)
        {
          hh *= 2, ww *= 2;
          f += conv_flop (c, c, 3, hh, ww);
        }
    }
  return f + conv_flop (3, c, 3, hh, ww);
}

/* Sizes: sd35-facts.md §1.2/§1.3 (CLIP-L/G: HF configs of openai/clip-vit-large-patch14 and
 * laion CLIP-ViT-bigG-14; T5: google/t5-v1_1-xxl). */
struct tenc_shape
{
  int n_layers, width, heads, mlp, vocab;
};

static const struct tenc_shape tenc_shapes[3] = {
  [BENCH_CLIP_L] = { 12, 768, 12, 3072, 49408 },
  [BENCH_CLIP_G] = { 32, 1280, 20, 5120, 49408 },
  [BENCH_T5XXL] = { 24, 4096, 64, 10240, 32128 },
};

double
bench_tenc_flop (enum bench_tenc_kind kind, int n_tokens)
{
  const struct tenc_shape *s = &tenc_shapes[kind];
  const double             L = n_tokens, D = (double) s->width, F = (double) s->mlp;
  /* per layer: qkv 3D² + out D² + FF (2 or 3)·D·F multiply-adds per token, attention 4·L²·D */
  double per_layer = 2.0 * L * (4.0 * D * D + (kind == BENCH_T5XXL ? 3.0 : 2.0) * D * F)
                     + 4.0 * L * L * D;
  double f = per_layer * (double) s->n_layers;

  if (kind == BENCH_CLIP_G)
    f += 2.0 * D * D;  /* text_projection of the pooled row */
  return f;
}

double
bench_text_flop (int t5_tokens)
{
  return bench_tenc_flop (BENCH_CLIP_L, SD35_CLIP_TOKENS)
         + bench_tenc_flop (BENCH_CLIP_G, SD35_CLIP_TOKENS)
         + bench_tenc_flop (BENCH_T5XXL, t5_tokens);
}

/* --- random data --------------------------------------------------------------------------- */

/* uniform in ±scale, xorshift-multiply (values do not matter for timing, only finiteness) */
static uint64_t
next_u64 (uint64_t *s)
{
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s;
}

static float *
random_f32 (size_t n, uint64_t seed, float scale, struct sd35_error *err)
{
  float *d = sd35_malloc (n * sizeof *d, "benchmark inputs", err);

  for (size_t i = 0; d != NULL && i < n; i++)
    d[i] = ((float) (next_u64 (&seed) >> 40) / 16777216.0f * 2.0f - 1.0f) * scale;
  return d;
}

static uint16_t *
random_bf16 (size_t n, uint64_t seed, float scale, struct sd35_error *err)
{
  uint16_t *d = sd35_malloc (n * sizeof *d, "random weights", err);

  for (size_t i = 0; d != NULL && i < n; i++)
    d[i] = sd35_f32_to_bf16 (((float) (next_u64 (&seed) >> 40) / 16777216.0f * 2.0f - 1.0f)
                             * scale);
  return d;
}

static void
check_output (struct bench_stage *r, const float *v, size_t n)
{
  double m = 0.0;

  r->finite = 1;
  for (size_t i = 0; i < n; i++)
    {
      if (!isfinite (v[i]))
        {
          r->finite = 0;
          return;
        }
      if (fabs (v[i]) > m)
        m = fabs (v[i]);
    }
  r->out_absmax = m;
}

static void
stage_begin (struct backend *be, struct bench_stage *r)
{
  memset (r, 0, sizeof *r);
  op_synchronize (be);
  be->peak_bytes = be->bytes_in_use;
}

/* --- stages -------------------------------------------------------------------------------- */

/* A run: sync, clock, work, sync, clock.  Warm-ups are not recorded. */
#define TIMED_RUNS(be, r, warmup, iters, st, body)                                          \
  for (int run_ = 0; run_ < (warmup) + (iters) && (st) == SD35_OK; run_++)                  \
    {                                                                                       \
      double t0_, c0_;                                                                      \
      op_synchronize (be);                                                                  \
      t0_ = bench_now_ms ();                                                                \
      c0_ = bench_cpu_s ();                                                                 \
      body;                                                                                 \
      op_synchronize (be);                                                                  \
      if ((st) == SD35_OK)                                                                  \
        (st) = backend_check ((be), err);                                                   \
      if (run_ >= (warmup))                                                                 \
        {                                                                                   \
          (r)->cpu_s_sum += bench_cpu_s () - c0_;                                           \
          (r)->ms[(r)->runs++] = bench_now_ms () - t0_;                                     \
        }                                                                                   \
    }

static enum sd35_status
check_iters (int warmup, int iters, struct sd35_error *err)
{
  if (iters < 1 || iters > BENCH_MAX_RUNS || warmup < 0 || warmup > 100)
    return sd35_set_error (err, SD35_ERR_ARG, "benchmark: %d timed runs and %d warm-ups "
                           "(allowed: 1..%d and 0..100)", iters, warmup, BENCH_MAX_RUNS);
  return SD35_OK;
}

/* One n×n×n GEMM through the backend's linear op (bf16 weight; activations in the backend's
 * activation dtype), 8 per timed run so the host clock's overhead vanishes. */
enum sd35_status
bench_gemm (struct backend *be, int n, int warmup, int iters, struct bench_stage *r,
            struct sd35_error *err)
{
  const int        reps = 8;
  enum sd35_status st = check_iters (warmup, iters, err);
  struct tensor   *in = NULL, *out = NULL, *w = NULL;
  float           *host = NULL;
  uint16_t        *wh = NULL;
  double           t0;

  stage_begin (be, r);
  if (st != SD35_OK)
    return st;
  if (n < 16 || n > 32768)
    return sd35_set_error (err, SD35_ERR_ARG, "benchmark: GEMM size %d (16..32768)", n);
  t0 = bench_now_ms ();
  host = random_f32 ((size_t) n * n, 11, 1.0f, err);
  wh = random_bf16 ((size_t) n * n, 12, 0.02f, err);
  if (host == NULL || wh == NULL)
    {
      free (host), free (wh);
      return SD35_ERR_OOM;
    }
  in = tensor_from_f32 (be, host, 2, (int64_t[]) { n, n });
  out = tensor_new_act2 (be, n, n);
  w = calloc (1, sizeof *w);
  if (w != NULL)
    {
      w->be = be;
      w->ndim = 2;
      w->shape[0] = w->shape[1] = n;
      if (op_weight_from_host (be, w, wh, SD35_BF16, WEIGHT_MATRIX) != SD35_OK)
        {
          free (w);
          w = NULL;
        }
    }
  st = backend_check (be, err);
  if (st == SD35_OK && w == NULL)
    st = sd35_set_error (err, SD35_ERR_OOM, "benchmark: out of memory for the GEMM weight");
  r->weight_bytes = be->bytes_in_use;
  r->build_ms = bench_now_ms () - t0;
  TIMED_RUNS (be, r, warmup, iters, st, {
    for (int k = 0; k < reps; k++)
      op_linear (be, out, in, w, NULL, n, n, n, ACT_NONE);
  });
  for (int i = 0; i < r->runs; i++)
    r->ms[i] /= reps;
  r->cpu_s_sum /= reps;
  if (st == SD35_OK)
    {
      tensor_to_f32 (out, host);  /* host holds n·n floats */
      check_output (r, host, (size_t) n * n);
      st = backend_check (be, err);
    }
  r->flop = 2.0 * n * (double) n * n;
  r->peak_bytes = be->peak_bytes;
  r->ran = st == SD35_OK;
  bench_stage_stats (r);
  tensor_free (in), tensor_free (out), tensor_free (w);
  free (host), free (wh);
  return st;
}

/* One prompt: CLIP-L, CLIP-G, T5-XXL (t5_tokens), like sd3_condition: clip_encode and
 * t5_encode on random-weight encoders of the real shapes. */
enum sd35_status
bench_text (struct backend *be, int t5_tokens, int warmup, int iters, struct bench_stage *r,
            struct sd35_error *err)
{
  const struct tenc_shape *cl = &tenc_shapes[BENCH_CLIP_L], *cg = &tenc_shapes[BENCH_CLIP_G];
  const struct tenc_shape *t5 = &tenc_shapes[BENCH_T5XXL];
  struct clip_model       *clip[2] = { NULL, NULL };
  struct t5_model         *t5m = NULL;
  enum sd35_status         st = check_iters (warmup, iters, err);
  const int64_t            L = SD35_CLIP_TOKENS;
  int32_t                  clip_ids[SD35_CLIP_TOKENS], *t5_ids = NULL;
  float                   *hidden[3] = { NULL, NULL, NULL }, *pooled[2] = { NULL, NULL };
  double                   t0;

  stage_begin (be, r);
  if (st != SD35_OK)
    return st;
  if (t5_tokens < 1 || t5_tokens > 4096)
    return sd35_set_error (err, SD35_ERR_ARG, "text encoder benchmark: %d tokens (CLIP: 77; "
                           "T5: 1..4096)", t5_tokens);
  t0 = bench_now_ms ();
  /* ids spread over the vocabulary; for CLIP the largest (EOS, pooled row) at position 20 */
  for (int64_t i = 0; i < L; i++)
    clip_ids[i] = (int32_t) ((i * 7919) % (cl->vocab - 1));
  clip_ids[20] = cl->vocab - 1;
  st = clip_new_random (be, CLIP_KIND_L, cl->n_layers, cl->width, cl->heads, cl->mlp, 21,
                        &clip[0], err);
  if (st == SD35_OK)
    st = clip_new_random (be, CLIP_KIND_G, cg->n_layers, cg->width, cg->heads, cg->mlp, 22,
                          &clip[1], err);
  if (st == SD35_OK)
    st = t5_new_random (be, t5->n_layers, t5->width, t5->heads, t5->mlp, 23, &t5m, err);
  if (st == SD35_OK)
    {
      t5_ids = sd35_malloc ((size_t) t5_tokens * sizeof *t5_ids, "T5 token ids", err);
      hidden[0] = sd35_malloc ((size_t) (L * cl->width) * sizeof (float), "CLIP-L output", err);
      hidden[1] = sd35_malloc ((size_t) (L * cg->width) * sizeof (float), "CLIP-G output", err);
      hidden[2] = sd35_malloc ((size_t) t5_tokens * (size_t) t5->width * sizeof (float),
                               "T5 output", err);
      pooled[0] = sd35_malloc ((size_t) cl->width * sizeof (float), "CLIP-L pooled", err);
      pooled[1] = sd35_malloc ((size_t) cg->width * sizeof (float), "CLIP-G pooled", err);
      if (t5_ids == NULL || hidden[0] == NULL || hidden[1] == NULL || hidden[2] == NULL
          || pooled[0] == NULL || pooled[1] == NULL)
        st = SD35_ERR_OOM;
    }
  for (int64_t i = 0; st == SD35_OK && i < t5_tokens; i++)
    t5_ids[i] = (int32_t) ((i * 7919) % (t5->vocab - 1));
  op_synchronize (be);
  r->weight_bytes = be->bytes_in_use;
  r->build_ms = bench_now_ms () - t0;
  TIMED_RUNS (be, r, warmup, iters, st, {
    for (int k = 0; k < 2 && st == SD35_OK; k++)
      st = clip_encode (clip[k], clip_ids, hidden[k], pooled[k], err);
    if (st == SD35_OK)
      st = t5_encode (t5m, t5_ids, t5_tokens, hidden[2], err);
  });
  if (st == SD35_OK)
    {
      check_output (r, hidden[2], (size_t) t5_tokens * (size_t) t5->width);
      for (int k = 0; k < 2 && r->finite; k++)
        {
          const int64_t      D = k == 0 ? cl->width : cg->width;
          struct bench_stage c;
          check_output (&c, hidden[k], (size_t) (L * D));
          r->finite = c.finite;
          if (r->finite)
            {
              check_output (&c, pooled[k], (size_t) D);
              r->finite = c.finite;
            }
        }
    }
  r->flop = bench_text_flop (t5_tokens);
  r->peak_bytes = be->peak_bytes;
  r->ran = st == SD35_OK;
  bench_stage_stats (r);
  clip_free (clip[0]), clip_free (clip[1]);
  t5_free (t5m);
  for (int k = 0; k < 3; k++)
    free (hidden[k]);
  free (pooled[0]), free (pooled[1]);
  free (t5_ids);
  return st;
}

/* One denoising step: one MMDiT forward of batch 2 (CFG) or 1 (Turbo) at sigma = 1. */
enum sd35_status
bench_mmdit (struct backend *be, enum bench_variant variant, int size, int n_ctx, int warmup,
             int iters, struct bench_stage *r, struct sd35_error *err)
{
  struct mmdit_config cfg;

  bench_mmdit_config (variant, &cfg);
  return bench_mmdit_shape (be, &cfg, bench_mmdit_batch (variant), size, n_ctx, warmup, iters,
                            r, err);
}

enum sd35_status
bench_mmdit_shape (struct backend *be, const struct mmdit_config *shape, int B, int size,
                   int n_ctx, int warmup, int iters, struct bench_stage *r,
                   struct sd35_error *err)
{
  struct mmdit_config cfg = *shape;
  struct mmdit       *m = NULL;
  enum sd35_status    st = check_iters (warmup, iters, err);
  const int           h = size / 8, w = size / 8;
  const size_t        nx = (size_t) B * 16 * h * w;
  float              *x = NULL, *ctx = NULL, *y = NULL, *v = NULL;
  float               sigma[2] = { 1.0f, 1.0f };
  double              t0;

  stage_begin (be, r);
  if (st != SD35_OK)
    return st;
  if (B < 1 || B > 2 || n_ctx < 1 || size % 16 != 0 || size < 16
      || h / 2 > cfg.pos_embed_max_size)
    return sd35_set_error (err, SD35_ERR_ARG, "benchmark: batch %d (1..2), %d context tokens, "
                           "size %d (a multiple of 16, at most %d for this model)", B, n_ctx,
                           size, 16 * cfg.pos_embed_max_size);
  t0 = bench_now_ms ();
  st = mmdit_new_random (be, &cfg, 7, &m, err);
  if (st != SD35_OK)
    return st;
  x = random_f32 (nx, 31, 1.0f, err);
  ctx = random_f32 ((size_t) B * n_ctx * cfg.context_dim, 32, 1.0f, err);
  y = random_f32 ((size_t) B * cfg.adm_in_channels, 33, 1.0f, err);
  v = sd35_malloc (nx * sizeof *v, "MMDiT output", err);
  if (x == NULL || ctx == NULL || y == NULL || v == NULL)
    st = SD35_ERR_OOM;
  op_synchronize (be);
  r->weight_bytes = be->bytes_in_use;
  r->build_ms = bench_now_ms () - t0;
  TIMED_RUNS (be, r, warmup, iters, st, {
    st = mmdit_forward (m, x, sigma, ctx, y, B, h, w, n_ctx, NULL, 0, NULL, v, err);
  });
  if (st == SD35_OK)
    check_output (r, v, nx);
  r->flop = bench_mmdit_flop (&cfg, B, h, w, n_ctx);
  r->peak_bytes = be->peak_bytes;
  r->ran = st == SD35_OK;
  bench_stage_stats (r);
  mmdit_free (m);
  free (x), free (ctx), free (y), free (v);
  return st;
}

/* One VAE decode of a size/8 latent to a size² image (batch 1). */
enum sd35_status
bench_vae (struct backend *be, int size, int warmup, int iters, struct bench_stage *r,
           struct sd35_error *err)
{
  struct vae_config cfg;
  struct vae       *vae = NULL;
  enum sd35_status  st = check_iters (warmup, iters, err);
  const int         h = size / 8, w = size / 8;
  float            *lat = NULL, *img = NULL;
  double            t0;

  stage_begin (be, r);
  if (st != SD35_OK)
    return st;
  if (size % 8 != 0 || size < 8)
    return sd35_set_error (err, SD35_ERR_ARG, "benchmark: size %d is not a multiple of 8",
                           size);
  vae_config_sd3 (&cfg, 0);
  t0 = bench_now_ms ();
  st = vae_new_random (be, &cfg, 9, &vae, err);
  if (st != SD35_OK)
    return st;
  lat = random_f32 ((size_t) 16 * h * w, 41, 1.0f, err);
  img = sd35_malloc ((size_t) 3 * size * size * sizeof *img, "decoded image", err);
  if (lat == NULL || img == NULL)
    st = SD35_ERR_OOM;
  op_synchronize (be);
  r->weight_bytes = be->bytes_in_use;
  r->build_ms = bench_now_ms () - t0;
  TIMED_RUNS (be, r, warmup, iters, st, { st = vae_decode (vae, lat, h, w, img, err); });
  if (st == SD35_OK)
    check_output (r, img, (size_t) 3 * size * size);
  r->flop = bench_vae_decode_flop (&cfg, h, w);
  r->peak_bytes = be->peak_bytes;
  r->ran = st == SD35_OK;
  bench_stage_stats (r);
  vae_free (vae);
  free (lat), free (img);
  return st;
}
