/* vae.c — the SD3 VAE (sd3_impls.py SDVAE, VAEEncoder, VAEDecoder; sd35-facts.md §5):
 * the shape read from the weights, loading (or random weights for benchmarks), the public
 * decode/encode entry points and the reference's pixel/latent conversions.  The layers are
 * in vae_forward.c. */
#include "vae_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* --- weight source: a file (weights loader) or a random bf16 pool ----------------------- */

struct vae_src
{
  struct backend        *be;
  struct weights_loader *wl;    /* loading, or */
  const uint16_t        *pool;  /* random weights (aliased by the backend) */
  struct vae            *v;
  int                    failed;
};

static struct tensor *
src_new (struct vae_src *s, enum weight_use use, int ndim, const int64_t *shape,
         const void *data, enum sd35_dtype dtype)
{
  struct tensor *t = calloc (1, sizeof *t);

  if (t == NULL)
    {
      s->failed = 1;
      return NULL;
    }
  t->be = s->be;
  t->ndim = ndim;
  memcpy (t->shape, shape, (size_t) ndim * sizeof *shape);
  if (op_weight_from_host (s->be, t, data, dtype, use) != SD35_OK)
    {
      free (t);
      s->failed = 1;
      return NULL;
    }
  return t;
}

static struct tensor *src_tensor (struct vae_src *s, enum weight_use use, int ndim,
                                  const int64_t *shape, const char *fmt, ...) SD35_PRINTF (5, 6);

static struct tensor *
src_tensor (struct vae_src *s, enum weight_use use, int ndim, const int64_t *shape,
            const char *fmt, ...)
{
  char    name[256];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (name, sizeof name, fmt, ap);
  va_end (ap);
  if (s->wl != NULL)
    return wl_tensor (s->wl, use, ndim, shape, "%s", name);
  if (s->failed)
    return NULL;
  return src_new (s, use, ndim, shape, s->pool, SD35_BF16);
}

static void
src_conv (struct vae_src *s, struct conv2d *c, int64_t co, int64_t ci, int64_t k,
          const char *name)
{
  const int64_t ws[4] = { co, ci, k, k };
  const int64_t bs[1] = { co };

  c->co = co;
  c->ci = ci;
  c->kh = c->kw = k;
  c->w = src_tensor (s, WEIGHT_MATRIX, 4, ws, "%s.weight", name);
  c->b = src_tensor (s, WEIGHT_VECTOR, 1, bs, "%s.bias", name);
}

static void
src_norm (struct vae_src *s, struct norm *n, int64_t c, const char *name)
{
  const int64_t cs[1] = { c };

  n->w = src_tensor (s, WEIGHT_VECTOR, 1, cs, "%s.weight", name);
  n->b = src_tensor (s, WEIGHT_VECTOR, 1, cs, "%s.bias", name);
}

static void
build_resnet (struct vae_src *s, struct vae_resnet *r, int64_t cin, int64_t cout,
              const char *name)
{
  char sub[128];

  r->cin = cin;
  r->cout = cout;
  snprintf (sub, sizeof sub, "%s.norm1", name);
  src_norm (s, &r->norm1, cin, sub);
  snprintf (sub, sizeof sub, "%s.conv1", name);
  src_conv (s, &r->conv1, cout, cin, 3, sub);
  snprintf (sub, sizeof sub, "%s.norm2", name);
  src_norm (s, &r->norm2, cout, sub);
  snprintf (sub, sizeof sub, "%s.conv2", name);
  src_conv (s, &r->conv2, cout, cout, 3, sub);
  if (cin != cout)
    {
      snprintf (sub, sizeof sub, "%s.nin_shortcut", name);
      src_conv (s, &r->nin_shortcut, cout, cin, 1, sub);
    }
}

/* q, k, v (1×1 convs [C, C, 1, 1]) packed into one [3C, C] linear + [3C] bias, so a single
 * GEMM yields the [HW, 3, 1, C] layout op_attention reads. */
static void
build_attn (struct vae_src *s, struct vae_attn *a, int64_t c)
{
  static const char *const qkv[3] = { "q", "k", "v" };
  const int64_t            w4[4] = { c, c, 1, 1 };
  const int64_t            cs[1] = { c };
  const int64_t            pw[2] = { 3 * c, c };
  const int64_t            pb[1] = { 3 * c };

  a->c = c;
  src_norm (s, &a->norm, c, "mid.attn_1.norm");
  if (s->wl != NULL)
    {
      float *pack = malloc ((size_t) (3 * c * c + 3 * c) * sizeof *pack);
      int    ok = pack != NULL;

      for (int k = 0; k < 3; k++)
        {
          float *wk = wl_host_f32 (s->wl, 4, w4, "mid.attn_1.%s.weight", qkv[k]);
          float *bk = wl_host_f32 (s->wl, 1, cs, "mid.attn_1.%s.bias", qkv[k]);
          if (ok && wk && bk)
            {
              memcpy (pack + k * c * c, wk, (size_t) (c * c) * sizeof *pack);
              memcpy (pack + 3 * c * c + k * c, bk, (size_t) c * sizeof *pack);
            }
          else
            ok = 0;
          free (wk);
          free (bk);
        }
      if (!ok)
        {
          free (pack);  /* the loader has recorded what is missing */
          if (pack == NULL)
            s->failed = 1;
        }
      else
        {
          /* the CPU backend aliases F32 sources: the pack lives as long as the VAE */
          s->v->host_keep[s->v->n_host_keep++] = pack;
          a->qkv.w = src_new (s, WEIGHT_MATRIX, 2, pw, pack, SD35_F32);
          a->qkv.b = src_new (s, WEIGHT_VECTOR, 1, pb, pack + 3 * c * c, SD35_F32);
        }
    }
  else if (!s->failed)
    {
      a->qkv.w = src_new (s, WEIGHT_MATRIX, 2, pw, s->pool, SD35_BF16);
      a->qkv.b = src_new (s, WEIGHT_VECTOR, 1, pb, s->pool, SD35_BF16);
    }
  a->proj_out.w = src_tensor (s, WEIGHT_MATRIX, 4, w4, "mid.attn_1.proj_out.weight");
  a->proj_out.b = src_tensor (s, WEIGHT_VECTOR, 1, cs, "mid.attn_1.proj_out.bias");
}

static void
build_mid (struct vae_src *s, struct vae_mid *mid, int64_t c)
{
  build_resnet (s, &mid->block_1, c, c, "mid.block_1");
  build_attn (s, &mid->attn_1, c);
  build_resnet (s, &mid->block_2, c, c, "mid.block_2");
}

static int
build_levels (struct vae_src *s, struct vae_coder *cd, const struct vae_coder_config *cc)
{
  cd->level = calloc ((size_t) cc->n_levels, sizeof *cd->level);
  if (cd->level == NULL)
    return -1;
  for (int i = 0; i < cc->n_levels; i++)
    {
      cd->level[i].block = calloc ((size_t) cc->n_blocks, sizeof *cd->level[i].block);
      if (cd->level[i].block == NULL)
        return -1;
    }
  return 0;
}

/* VAEEncoder: conv_in → down levels (res blocks, downsample but at the last) → mid →
 * norm_out/SiLU → conv_out (2·z). */
static void
build_encoder (struct vae_src *s, struct vae_coder *e, const struct vae_config *cfg)
{
  const struct vae_coder_config *cc = &cfg->encoder;
  int64_t                        c = cc->conv_in;
  char                           name[64];

  if (build_levels (s, e, cc) != 0)
    {
      s->failed = 1;
      return;
    }
  src_conv (s, &e->conv_in, c, 3, 3, "conv_in");
  for (int i = 0; i < cc->n_levels; i++)
    {
      for (int j = 0; j < cc->n_blocks; j++)
        {
          snprintf (name, sizeof name, "down.%d.block.%d", i, j);
          build_resnet (s, &e->level[i].block[j], c, cc->width[i], name);
          c = cc->width[i];
        }
      if (i != cc->n_levels - 1)
        {
          snprintf (name, sizeof name, "down.%d.downsample.conv", i);
          src_conv (s, &e->level[i].sample, c, c, 3, name);
        }
    }
  build_mid (s, &e->mid, c);
  src_norm (s, &e->norm_out, c, "norm_out");
  src_conv (s, &e->conv_out, 2 * cfg->z_channels, c, 3, "conv_out");
}

/* VAEDecoder: conv_in → mid → up levels from the top (n_blocks res blocks, upsample but at
 * level 0) → norm_out/SiLU → conv_out (RGB). */
static void
build_decoder (struct vae_src *s, struct vae_coder *d, const struct vae_config *cfg)
{
  const struct vae_coder_config *cc = &cfg->decoder;
  int64_t                        c = cc->conv_in;
  char                           name[64];

  if (build_levels (s, d, cc) != 0)
    {
      s->failed = 1;
      return;
    }
  src_conv (s, &d->conv_in, c, cfg->z_channels, 3, "conv_in");
  build_mid (s, &d->mid, c);
  for (int i = cc->n_levels - 1; i >= 0; i--)
    {
      for (int j = 0; j < cc->n_blocks; j++)
        {
          snprintf (name, sizeof name, "up.%d.block.%d", i, j);
          build_resnet (s, &d->level[i].block[j], c, cc->width[i], name);
          c = cc->width[i];
        }
      if (i != 0)
        {
          snprintf (name, sizeof name, "up.%d.upsample.conv", i);
          src_conv (s, &d->level[i].sample, c, c, 3, name);
        }
    }
  src_norm (s, &d->norm_out, c, "norm_out");
  src_conv (s, &d->conv_out, 3, c, 3, "conv_out");
}

/* --- shape from the file ------------------------------------------------------------------ */

/* One loader per half, prefixed "<prefix>decoder." / "<prefix>encoder.", so a decoder-only
 * load does not report the encoder's tensors as unused. */
static enum sd35_status
read_coder_config (struct weights_loader *wl, const char *coder, const char *level_name,
                   struct vae_coder_config *cc, int64_t *z, const char *path,
                   const char *prefix, struct sd35_error *err)
{
  int64_t s[ST_MAX_DIMS];
  int     n = wl_shape (wl, s, "conv_in.weight");

  memset (cc, 0, sizeof *cc);
  if (n != 4)
    return sd35_set_error (err, SD35_ERR_MISSING, "%s: no VAE %s here (%s%s.conv_in.weight "
                           "is %s); the SD3.5 single files hold it under first_stage_model.",
                           path, coder, prefix, coder, n == 0 ? "absent" : "not a conv weight");
  cc->conv_in = (int) s[0];
  *z = s[1];
  while (cc->n_levels < VAE_MAX_LEVELS
         && wl_shape (wl, s, "%s.%d.block.0.conv1.weight", level_name, cc->n_levels) == 4)
    cc->width[cc->n_levels++] = (int) s[0];
  while (wl_find (wl, "%s.0.block.%d.conv1.weight", level_name, cc->n_blocks))
    cc->n_blocks++;
  if (cc->n_levels == 0 || cc->n_blocks == 0)
    return sd35_set_error (err, SD35_ERR_MISSING, "%s: VAE %s has no %s%s.%s.0.block.0 "
                           "(LDM key names expected)", path, coder, prefix, coder, level_name);
  return SD35_OK;
}

/* Reads the shape of one half and builds it from the file. */
static enum sd35_status
load_coder (struct vae *v, struct st_file *file, const char *prefix, int decoder,
            struct sd35_error *err)
{
  const char      *coder = decoder ? "decoder" : "encoder";
  struct vae_src   src = { v->be, NULL, NULL, v, 0 };
  enum sd35_status st;
  char             full[256], what[32];
  int64_t          z = 0;

  snprintf (full, sizeof full, "%s%s.", prefix, coder);
  snprintf (what, sizeof what, "VAE %s", coder);
  src.wl = wl_new (v->be, &file, 1, full, what);
  if (src.wl == NULL)
    return backend_check (v->be, err) != SD35_OK
             ? err->status
             : sd35_set_error (err, SD35_ERR_OOM, "out of memory starting the VAE loader");
  st = read_coder_config (src.wl, coder, decoder ? "up" : "down",
                          decoder ? &v->cfg.decoder : &v->cfg.encoder, &z, st_path (file),
                          prefix, err);
  if (st != SD35_OK)
    {
      wl_free (src.wl);
      return st;
    }
  if (decoder)
    {
      v->cfg.z_channels = (int) z;
      build_decoder (&src, &v->decoder, &v->cfg);
    }
  else
    build_encoder (&src, &v->encoder, &v->cfg);
  st = wl_finish (src.wl, err);
  if (st == SD35_OK && src.failed)
    st = backend_check (v->be, err) != SD35_OK
           ? err->status
           : sd35_set_error (err, SD35_ERR_OOM, "out of memory loading the VAE %s", coder);
  return st;
}

void
vae_config_sd3 (struct vae_config *cfg, int with_encoder)
{
  static const int widths[4] = { 128, 256, 512, 512 };

  memset (cfg, 0, sizeof *cfg);
  cfg->z_channels = 16;
  cfg->has_encoder = with_encoder;
  cfg->encoder.n_levels = cfg->decoder.n_levels = 4;
  memcpy (cfg->encoder.width, widths, sizeof widths);
  memcpy (cfg->decoder.width, widths, sizeof widths);
  cfg->encoder.n_blocks = 2;
  cfg->decoder.n_blocks = 3;
  cfg->encoder.conv_in = 128;
  cfg->decoder.conv_in = 512;
}

/* --- construction ------------------------------------------------------------------------- */

static void
resnet_free (struct vae_resnet *r)
{
  norm_free (&r->norm1);
  norm_free (&r->norm2);
  conv2d_free (&r->conv1);
  conv2d_free (&r->conv2);
  conv2d_free (&r->nin_shortcut);
}

static void
coder_free (struct vae_coder *cd, const struct vae_coder_config *cc)
{
  if (cd->level)
    for (int i = 0; i < cc->n_levels; i++)
      {
        if (cd->level[i].block)
          for (int j = 0; j < cc->n_blocks; j++)
            resnet_free (&cd->level[i].block[j]);
        free (cd->level[i].block);
        conv2d_free (&cd->level[i].sample);
      }
  free (cd->level);
  conv2d_free (&cd->conv_in);
  resnet_free (&cd->mid.block_1);
  norm_free (&cd->mid.attn_1.norm);
  linear_free (&cd->mid.attn_1.qkv);
  linear_free (&cd->mid.attn_1.proj_out);
  resnet_free (&cd->mid.block_2);
  norm_free (&cd->norm_out);
  conv2d_free (&cd->conv_out);
}

void
vae_free (struct vae *v)
{
  if (v == NULL)
    return;
  coder_free (&v->decoder, &v->cfg.decoder);
  coder_free (&v->encoder, &v->cfg.encoder);
  for (int i = 0; i < v->n_host_keep; i++)
    free (v->host_keep[i]);
  free (v);
}

static void
log_config (const struct vae_config *cfg)
{
  const struct vae_coder_config *d = &cfg->decoder;
  sd35_log ("VAE: z %d, %d levels, widths %d,%d,%d,%d..., decoder %d res blocks/level, "
            "encoder %s", cfg->z_channels, d->n_levels, d->width[0],
            d->n_levels > 1 ? d->width[1] : 0, d->n_levels > 2 ? d->width[2] : 0,
            d->n_levels > 3 ? d->width[3] : 0, d->n_blocks, cfg->has_encoder ? "loaded" : "not loaded");
}

enum sd35_status
vae_load (struct backend *be, struct st_file *file, const char *prefix, int need_encoder,
          struct vae **out, struct sd35_error *err)
{
  struct vae      *v;
  enum sd35_status st;

  *out = NULL;
  v = sd35_calloc (1, sizeof *v, "VAE", err);
  if (v == NULL)
    return SD35_ERR_OOM;
  v->be = be;
  st = load_coder (v, file, prefix, 1, err);
  if (st == SD35_OK && need_encoder)
    {
      v->cfg.has_encoder = 1;
      st = load_coder (v, file, prefix, 0, err);
      if (st == SD35_OK && v->cfg.encoder.n_levels != v->cfg.decoder.n_levels)
        st = sd35_set_error (err, SD35_ERR_SHAPE, "%s: VAE encoder has %d levels but the "
                             "decoder %d", st_path (file), v->cfg.encoder.n_levels,
                             v->cfg.decoder.n_levels);
    }
  if (st != SD35_OK)
    {
      vae_free (v);
      return st;
    }
  log_config (&v->cfg);
  *out = v;
  return SD35_OK;
}

enum sd35_status
vae_new_random (struct backend *be, const struct vae_config *cfg, uint64_t seed,
                struct vae **out, struct sd35_error *err)
{
  struct vae_src src = { 0 };
  struct vae    *v;
  size_t         n_pool = 0;
  uint16_t      *pool;
  const struct vae_coder_config *ccs[2] = { &cfg->decoder, &cfg->encoder };

  *out = NULL;
  for (int k = 0; k < (cfg->has_encoder ? 2 : 1); k++)
    {
      if (ccs[k]->n_levels < 1 || ccs[k]->n_levels > VAE_MAX_LEVELS || ccs[k]->n_blocks < 1)
        return sd35_set_error (err, SD35_ERR_ARG, "vae_new_random: bad level/block counts");
      for (int i = 0; i < ccs[k]->n_levels; i++)
        if ((size_t) ccs[k]->width[i] * ccs[k]->width[i] * 9 > n_pool)
          n_pool = (size_t) ccs[k]->width[i] * ccs[k]->width[i] * 9;
      if ((size_t) ccs[k]->conv_in * ccs[k]->conv_in * 9 > n_pool)
        n_pool = (size_t) ccs[k]->conv_in * ccs[k]->conv_in * 9;
    }
  v = sd35_calloc (1, sizeof *v, "VAE", err);
  pool = sd35_malloc (n_pool * sizeof *pool, "random VAE weights", err);
  if (v == NULL || pool == NULL)
    {
      free (v);
      free (pool);
      return SD35_ERR_OOM;
    }
  weights_random_bf16 (pool, n_pool, seed);
  v->be = be;
  v->cfg = *cfg;
  v->host_keep[v->n_host_keep++] = pool;
  src.be = be;
  src.v = v;
  src.pool = pool;
  build_decoder (&src, &v->decoder, &v->cfg);
  if (cfg->has_encoder)
    build_encoder (&src, &v->encoder, &v->cfg);
  if (src.failed)
    {
      enum sd35_status st = backend_check (be, err);
      vae_free (v);
      return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_OOM, "out of memory building "
                                                  "a random VAE");
    }
  *out = v;
  return SD35_OK;
}

const struct vae_config *
vae_get_config (const struct vae *v)
{
  return &v->cfg;
}

int
vae_factor (const struct vae *v)
{
  return 1 << (v->cfg.decoder.n_levels - 1);
}

/* --- entry points ------------------------------------------------------------------------- */

enum sd35_status
vae_decode (struct vae *v, const float *latent, int h, int w, float *image,
            struct sd35_error *err)
{
  if (h < 1 || w < 1)
    return sd35_set_error (err, SD35_ERR_ARG, "VAE decode: empty latent %dx%d", h, w);
  return vae_decoder_forward (v, latent, h, w, image, err);
}

/* SDVAE.encode without the sampling: mean, std = exp(0.5·clamp(logvar, −30, 20)). */
enum sd35_status
vae_encode (struct vae *v, const float *image, int H, int W, float *mean, float *std,
            struct sd35_error *err)
{
  const int        f = vae_factor (v), z = v->cfg.z_channels;
  size_t           n;
  float           *moments;
  enum sd35_status st;

  if (!v->cfg.has_encoder)
    return sd35_set_error (err, SD35_ERR_INTERNAL, "VAE encode: the encoder was not loaded");
  if (H < f || W < f || H % f != 0 || W % f != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "VAE encode: image %dx%d (W×H) is not a positive "
                           "multiple of %d", W, H, f);
  n = (size_t) z * (H / f) * (W / f);
  moments = sd35_malloc (2 * n * sizeof *moments, "VAE moments", err);
  if (moments == NULL)
    return SD35_ERR_OOM;
  st = vae_encoder_forward (v, image, H, W, moments, err);
  if (st == SD35_OK)
    for (size_t i = 0; i < n; i++)
      {
        float logvar = moments[n + i];
        logvar = logvar < -30.0f ? -30.0f : logvar > 20.0f ? 20.0f : logvar;
        mean[i] = moments[i];
        std[i] = expf (0.5f * logvar);
      }
  free (moments);
  return st;
}

void
vae_image_to_u8 (const float *image, int H, int W, uint8_t *rgb_hwc)
{
  const size_t hw = (size_t) H * W;

  for (size_t i = 0; i < hw; i++)
    for (int c = 0; c < 3; c++)
      {
        /* torch: clamp((x + 1) / 2, 0, 1) · 255 → uint8 truncates */
        float x = (image[c * hw + i] + 1.0f) / 2.0f;
        x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
        rgb_hwc[i * 3 + c] = (uint8_t) (x * 255.0f);
      }
}

void
vae_u8_to_image (const uint8_t *rgb_hwc, int H, int W, float *image)
{
  const size_t hw = (size_t) H * W;

  /* sd3_infer.vae_encode: np.array(image).astype(np.float32) / 255.0, then 2x − 1 (float32) */
  for (size_t i = 0; i < hw; i++)
    for (int c = 0; c < 3; c++)
      image[c * hw + i] = 2.0f * ((float) rgb_hwc[i * 3 + c] / 255.0f) - 1.0f;
}

void
latent_process_in (float *z, size_t n)
{
  for (size_t i = 0; i < n; i++)
    z[i] = (z[i] - SD35_LATENT_SHIFT) * SD35_LATENT_SCALE;
}

void
latent_process_out (float *z, size_t n)
{
  for (size_t i = 0; i < n; i++)
    z[i] = z[i] / SD35_LATENT_SCALE + SD35_LATENT_SHIFT;
}
