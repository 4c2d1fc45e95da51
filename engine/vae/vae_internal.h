/* vae_internal.h — the SD3 VAE weights (sd3_impls.py SDVAE, LDM key names below
 * "first_stage_model.") shared by vae.c (loading) and vae_forward.c (engine-internal). */
#ifndef SD35_VAE_INTERNAL_H
#define SD35_VAE_INTERNAL_H

#include "vae.h"
#include "weights.h"

#define VAE_GROUPS 32     /* Normalize: GroupNorm(32, C, eps=1e-6, affine=True) */
#define VAE_EPS    1e-6f

/* ResnetBlock */
struct vae_resnet
{
  struct norm   norm1, norm2;
  struct conv2d conv1, conv2;   /* 3×3, padding 1 */
  struct conv2d nin_shortcut;   /* 1×1 when cin ≠ cout (w NULL otherwise) */
  int64_t       cin, cout;
};

/* AttnBlock: single head over channels; q, k, v, proj_out are 1×1 convs, used as linears on
 * the transposed [HW, C] tokens */
struct vae_attn
{
  struct norm   norm;
  struct linear qkv;       /* q, k, v packed at load into [3C, C] + [3C] */
  struct linear proj_out;  /* [C, C, 1, 1] used as [C, C] */
  int64_t       c;
};

struct vae_mid
{
  struct vae_resnet block_1;
  struct vae_attn   attn_1;
  struct vae_resnet block_2;
};

/* down.{i} / up.{i} */
struct vae_level
{
  struct vae_resnet *block;   /* [n_blocks] */
  struct conv2d      sample;  /* downsample.conv / upsample.conv (w NULL at the last/first) */
};

struct vae_coder
{
  struct conv2d     conv_in;
  struct vae_level *level;    /* [n_levels]: encoder down.{i}, decoder up.{i} */
  struct vae_mid    mid;
  struct norm       norm_out;
  struct conv2d     conv_out;
};

struct vae
{
  struct backend   *be;
  struct vae_config cfg;
  struct vae_coder  encoder;
  struct vae_coder  decoder;
  void             *host_keep[4];  /* host buffers the backend may alias (packed qkv, pool) */
  int               n_host_keep;
};

/* vae_forward.c */
enum sd35_status vae_decoder_forward (struct vae *v, const float *latent, int h, int w,
                                      float *image, struct sd35_error *err);
enum sd35_status vae_encoder_forward (struct vae *v, const float *image, int H, int W,
                                      float *moments, struct sd35_error *err);

#endif
