/* vae_forward.c — the SD3 VAE layers over ops.h (sd3_impls.py ResnetBlock, AttnBlock,
 * Downsample, Upsample, VAEEncoder.forward, VAEDecoder.forward).
 *
 * Memory: activations are allocated when a layer needs them and freed as soon as the next one
 * has consumed them, so a decode holds at most ~4 tensors of the current level's size (input,
 * normed, conv output, residual) — never the whole pyramid.  Batch is 1. */
#include "vae_internal.h"

#include <math.h>

#include "error.h"

struct vae_run
{
  struct backend *be;
  int64_t         C, H, W;  /* shape of the current activation x [1, C, H, W] */
};

static struct tensor *
act (struct vae_run *r, int64_t C, int64_t H, int64_t W)
{
  return tensor_new_act4 (r->be, 1, C, H, W);
}

/* The residual stream (conv_in, each ResnetBlock's sum, the attention sum, up/downsample
 * outputs) and the output convs are fp32 whatever the activation dtype (ops.h): in the bf16
 * emulation (tests/gpu/bf16_emu.c) bf16 storage there put the decode at 84 % of its 2e-2
 * budget, fp32 at 57 %.  Norm outputs and conv1 outputs only feed convs (bf16 operands) and
 * stay act_dtype.  On CUDA this doubles the bytes of those tensors (memory estimates beware). */
static struct tensor *
act_f32 (struct vae_run *r, int64_t C, int64_t H, int64_t W)
{
  return tensor_new (r->be, SD35_F32, 4, (int64_t[]) { 1, C, H, W });
}

/* 3×3 (padding 1) or 1×1 (padding 0) conv, stride 1: new tensor [1, co, H, W], fp32 if f32 */
static struct tensor *
conv_same_dt (struct vae_run *r, const struct conv2d *c, const struct tensor *in, int64_t H,
              int64_t W, int f32)
{
  struct tensor *out = f32 ? act_f32 (r, c->co, H, W) : act (r, c->co, H, W);
  int64_t        p = c->kh / 2;

  if (out != NULL)
    op_conv2d (r->be, out, in, c->w, c->b, 1, c->ci, H, W, c->co, c->kh, c->kw, 1, p, p, p, p);
  return out;
}

static struct tensor *
conv_same (struct vae_run *r, const struct conv2d *c, const struct tensor *in, int64_t H,
           int64_t W)
{
  return conv_same_dt (r, c, in, H, W, 0);
}

/* ResnetBlock: h = conv1(silu(norm1(x))); h = conv2(silu(norm2(h))); nin_shortcut(x) + h.
 * Consumes x, returns the new activation (NULL on failure, error in be->err). */
static struct tensor *
resnet_forward (struct vae_run *r, const struct vae_resnet *rb, struct tensor *x)
{
  struct backend *be = r->be;
  const int64_t   H = r->H, W = r->W, HW = r->H * r->W;
  struct tensor  *h, *h2, *out;

  h = act (r, rb->cin, H, W);
  if (h == NULL)
    goto fail;
  op_groupnorm (be, h, x, rb->norm1.w, rb->norm1.b, 1, rb->cin, HW, VAE_GROUPS, VAE_EPS, 1);
  h2 = conv_same (r, &rb->conv1, h, H, W);
  tensor_free (h);
  if (h2 == NULL)
    goto fail;
  op_groupnorm (be, h2, h2, rb->norm2.w, rb->norm2.b, 1, rb->cout, HW, VAE_GROUPS, VAE_EPS, 1);
  out = conv_same_dt (r, &rb->conv2, h2, H, W, 1);
  tensor_free (h2);
  if (out == NULL)
    goto fail;
  if (rb->nin_shortcut.w != NULL)
    {
      struct tensor *sc = conv_same (r, &rb->nin_shortcut, x, H, W);
      if (sc != NULL)
        op_add (be, out, out, sc, rb->cout * HW);
      tensor_free (sc);
    }
  else
    op_add (be, out, out, x, rb->cout * HW);
  tensor_free (x);
  r->C = rb->cout;
  return out;

fail:
  tensor_free (x);
  return NULL;
}

/* AttnBlock: x + proj_out(attention(q, k, v)) over the HW positions, one head of width C,
 * scale C^-½ (F.scaled_dot_product_attention on "b c h w -> b 1 (h w) c").  In place on x. */
static struct tensor *
attn_forward (struct vae_run *r, const struct vae_attn *a, struct tensor *x)
{
  struct backend *be = r->be;
  const int64_t   C = a->c, N = r->H * r->W;
  struct tensor  *hn, *tok, *qkv, *proj;

  hn = act (r, C, r->H, r->W);
  tok = tensor_new_act3 (be, 1, N, C);
  if (hn == NULL || tok == NULL)
    goto fail;
  op_groupnorm (be, hn, x, a->norm.w, a->norm.b, 1, C, N, VAE_GROUPS, VAE_EPS, 0);
  op_transpose (be, tok, hn, 1, C, N);                       /* [1, N, C] */
  tensor_free (hn);
  hn = NULL;
  qkv = tensor_new_act3 (be, 1, N, 3 * C);                   /* [1, N, 3, 1, C] */
  if (qkv == NULL)
    goto fail;
  op_linear (be, qkv, tok, a->qkv.w, a->qkv.b, N, 3 * C, C, ACT_NONE);
  op_attention (be, tok, qkv, NULL, 1, N, 1, C, 1.0f / sqrtf ((float) C), 0);
  tensor_free (qkv);
  proj = tensor_new_act3 (be, 1, N, C);
  if (proj == NULL)
    goto fail;
  op_linear (be, proj, tok, a->proj_out.w, a->proj_out.b, N, C, C, ACT_NONE);
  op_transpose (be, tok, proj, 1, N, C);                     /* back to [1, C, N] */
  tensor_free (proj);
  op_add (be, x, x, tok, C * N);
  tensor_free (tok);
  return x;

fail:
  tensor_free (hn);
  tensor_free (tok);
  tensor_free (x);
  return NULL;
}

static struct tensor *
mid_forward (struct vae_run *r, const struct vae_mid *mid, struct tensor *x)
{
  x = resnet_forward (r, &mid->block_1, x);
  if (x != NULL)
    x = attn_forward (r, &mid->attn_1, x);
  if (x != NULL)
    x = resnet_forward (r, &mid->block_2, x);
  return x;
}

/* Upsample: nearest ×2, then 3×3 conv (padding 1). */
static struct tensor *
upsample_forward (struct vae_run *r, const struct conv2d *c, struct tensor *x)
{
  struct tensor *up = act (r, r->C, 2 * r->H, 2 * r->W), *out = NULL;

  if (up != NULL)
    {
      op_upsample2x (r->be, up, x, 1, r->C, r->H, r->W);
      out = conv_same_dt (r, c, up, 2 * r->H, 2 * r->W, 1);
    }
  tensor_free (up);
  tensor_free (x);
  r->H *= 2;
  r->W *= 2;
  return out;
}

/* Downsample: pad (0, 1, 0, 1) (right and bottom, zeros), 3×3 conv stride 2, padding 0. */
static struct tensor *
downsample_forward (struct vae_run *r, const struct conv2d *c, struct tensor *x)
{
  const int64_t  Ho = (r->H + 1 - 3) / 2 + 1, Wo = (r->W + 1 - 3) / 2 + 1;
  struct tensor *out = act_f32 (r, c->co, Ho, Wo);

  if (out != NULL)
    op_conv2d (r->be, out, x, c->w, c->b, 1, c->ci, r->H, r->W, c->co, 3, 3, 2, 0, 0, 1, 1);
  tensor_free (x);
  r->H = Ho;
  r->W = Wo;
  return out;
}

/* norm_out → SiLU → conv_out */
static struct tensor *
out_forward (struct vae_run *r, const struct vae_coder *cd, struct tensor *x)
{
  struct tensor *h = act (r, r->C, r->H, r->W), *out = NULL;

  if (h != NULL)
    {
      op_groupnorm (r->be, h, x, cd->norm_out.w, cd->norm_out.b, 1, r->C, r->H * r->W,
                    VAE_GROUPS, VAE_EPS, 1);
      tensor_free (x);
      x = NULL;
      out = conv_same_dt (r, &cd->conv_out, h, r->H, r->W, 1);
    }
  tensor_free (h);
  tensor_free (x);
  r->C = cd->conv_out.co;
  return out;
}

static enum sd35_status
finish (struct vae_run *r, struct tensor *x, float *dst, const char *what,
        struct sd35_error *err)
{
  enum sd35_status st;

  if (x != NULL && !backend_failed (r->be))
    {
      op_download_f32 (r->be, dst, x);
      op_synchronize (r->be);
    }
  tensor_free (x);
  st = backend_check (r->be, err);
  if (st == SD35_OK && x == NULL)
    st = sd35_set_error (err, SD35_ERR_INTERNAL, "%s failed without an error", what);
  if (st != SD35_OK && st != SD35_CANCELLED)
    sd35_error_prefix (err, "%s", what);
  return st;
}

enum sd35_status
vae_decoder_forward (struct vae *v, const float *latent, int h, int w, float *image,
                     struct sd35_error *err)
{
  const struct vae_coder        *d = &v->decoder;
  const struct vae_coder_config *cc = &v->cfg.decoder;
  const int64_t                  shape[4] = { 1, v->cfg.z_channels, h, w };
  struct vae_run                 r = { v->be, v->cfg.z_channels, h, w };
  struct tensor                 *z, *x;

  z = tensor_from_f32 (v->be, latent, 4, shape);
  x = z ? conv_same_dt (&r, &d->conv_in, z, h, w, 1) : NULL;
  tensor_free (z);
  r.C = d->conv_in.co;
  if (x != NULL)
    x = mid_forward (&r, &d->mid, x);
  for (int i = cc->n_levels - 1; i >= 0 && x != NULL; i--)
    {
      for (int j = 0; j < cc->n_blocks && x != NULL; j++)
        x = resnet_forward (&r, &d->level[i].block[j], x);
      if (i != 0 && x != NULL)
        x = upsample_forward (&r, &d->level[i].sample, x);
    }
  if (x != NULL)
    x = out_forward (&r, d, x);
  return finish (&r, x, image, "VAE decode", err);
}

enum sd35_status
vae_encoder_forward (struct vae *v, const float *image, int H, int W, float *moments,
                     struct sd35_error *err)
{
  const struct vae_coder        *e = &v->encoder;
  const struct vae_coder_config *cc = &v->cfg.encoder;
  const int64_t                  shape[4] = { 1, 3, H, W };
  struct vae_run                 r = { v->be, 3, H, W };
  struct tensor                 *img, *x;

  img = tensor_from_f32 (v->be, image, 4, shape);
  x = img ? conv_same_dt (&r, &e->conv_in, img, H, W, 1) : NULL;
  tensor_free (img);
  r.C = e->conv_in.co;
  for (int i = 0; i < cc->n_levels && x != NULL; i++)
    {
      for (int j = 0; j < cc->n_blocks && x != NULL; j++)
        x = resnet_forward (&r, &e->level[i].block[j], x);
      if (i != cc->n_levels - 1 && x != NULL)
        x = downsample_forward (&r, &e->level[i].sample, x);
    }
  if (x != NULL)
    x = mid_forward (&r, &e->mid, x);
  if (x != NULL)
    x = out_forward (&r, e, x);
  return finish (&r, x, moments, "VAE encode", err);
}
