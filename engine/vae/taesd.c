/* taesd.c — the TAESD3 decoder over ops.h (taesd.py Decoder(latent_channels=16)).
 *
 *   [0]  Clamp        x = tanh(x/3)·3                (on the host: the input is tiny)
 *   [1]  conv 16→64 + bias, [2] ReLU
 *   [3-5]   Block ×3, [6]  Upsample ×2 nearest, [7]  conv 64→64 no bias
 *   [8-10]  Block ×3, [11] Upsample,            [12] conv no bias
 *   [13-15] Block ×3, [16] Upsample,            [17] conv no bias
 *   [18]    Block,    [19] conv 64→3 + bias (no activation, no clamp)
 *   Block(x) = ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(x))))) + x)    every conv 3×3, padding 1
 *
 * layer[i] holds the weights of Sequential index i, so the checkpoint key "i.conv.2.weight" is
 * layer[i].conv[1].w.  Memory: a Block holds three activations of its level (x and two conv
 * outputs), never more. */
#include "taesd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "weights.h"

#define TAESD_Z   16  /* latent channels (SD3) */
#define TAESD_C   64  /* every hidden layer */

enum taesd_kind
{
  K_CLAMP,
  K_CONV,       /* with bias */
  K_CONV_NB,    /* without bias (after an upsample) */
  K_RELU,
  K_BLOCK,
  K_UPSAMPLE
};

static const enum taesd_kind layout[TAESD_LAYERS] = {
  K_CLAMP, K_CONV, K_RELU,
  K_BLOCK, K_BLOCK, K_BLOCK, K_UPSAMPLE, K_CONV_NB,
  K_BLOCK, K_BLOCK, K_BLOCK, K_UPSAMPLE, K_CONV_NB,
  K_BLOCK, K_BLOCK, K_BLOCK, K_UPSAMPLE, K_CONV_NB,
  K_BLOCK, K_CONV
};

struct taesd_layer
{
  struct conv2d conv;     /* K_CONV, K_CONV_NB: "<i>.weight" (+ "<i>.bias") */
  struct conv2d block[3]; /* K_BLOCK: "<i>.conv.0", "<i>.conv.2", "<i>.conv.4" */
};

struct taesd
{
  struct backend    *be;
  struct st_file    *file;
  char              *path;
  struct taesd_layer layer[TAESD_LAYERS];
};

/* --- loading ---------------------------------------------------------------------------- */

/* key index of Sequential index i: taesd.py / ComfyUI use i; diffusers' DecoderTiny has no
 * Clamp module, so its decoder.layers.{i−1} is our i. */
static void
load_layers (struct taesd *t, struct weights_loader *wl, int shift)
{
  const int64_t wnb[4] = { TAESD_C, TAESD_C, 3, 3 };

  for (int i = 0; i < TAESD_LAYERS; i++)
    {
      struct taesd_layer *l = &t->layer[i];
      int                 k = i - shift;

      switch (layout[i])
        {
        case K_CONV:
          wl_conv2d (wl, &l->conv, i == 19 ? 3 : TAESD_C, i == 1 ? TAESD_Z : TAESD_C, 3, 3,
                     "%d", k);
          break;
        case K_CONV_NB:
          l->conv.co = l->conv.ci = TAESD_C;
          l->conv.kh = l->conv.kw = 3;
          l->conv.w = wl_tensor (wl, WEIGHT_MATRIX, 4, wnb, "%d.weight", k);
          l->conv.b = NULL;
          break;
        case K_BLOCK:
          for (int j = 0; j < 3; j++)
            wl_conv2d (wl, &l->block[j], TAESD_C, TAESD_C, 3, 3, "%d.conv.%d", k, 2 * j);
          break;
        default:
          break;
        }
    }
}

enum sd35_status
taesd_open (struct backend *be, const char *path, struct taesd **out, struct sd35_error *err)
{
  struct taesd          *t;
  struct weights_loader *wl;
  const char            *prefix = "";
  int                    shift = 0;

  *out = NULL;
  t = sd35_calloc (1, sizeof *t, "the TAESD decoder", err);
  if (t == NULL)
    return err->status;
  t->be = be;
  t->path = strdup (path);
  if (t->path == NULL)
    {
      free (t);
      return sd35_set_error (err, SD35_ERR_OOM, "out of memory");
    }
  if (st_open (path, &t->file, err) != SD35_OK)
    {
      sd35_error_prefix (err, "opening the TAESD preview decoder");
      goto fail;
    }
  if (st_find (t->file, "decoder.layers.0.weight") != NULL)
    {
      prefix = "decoder.layers.";  /* diffusers AutoencoderTiny */
      shift = 1;
    }
  else if (st_find (t->file, "1.weight") == NULL)
    {
      sd35_set_error (err, SD35_ERR_FORMAT, "%s is not a TAESD decoder: it has no \"1.weight\" "
                      "(taesd.py) or \"decoder.layers.0.weight\" (diffusers) tensor; use "
                      "taesd3_decoder.safetensors from madebyollin/taesd", path);
      goto fail;
    }
  wl = wl_new (be, &t->file, 1, prefix, "TAESD");
  if (wl == NULL)
    {
      sd35_set_error (err, SD35_ERR_OOM, "out of memory loading %s", path);
      goto fail;
    }
  load_layers (t, wl, shift);
  if (wl_finish (wl, err) != SD35_OK)
    {
      int64_t s[ST_MAX_DIMS];
      const struct st_tensor *c1 = st_find (t->file, shift ? "decoder.layers.0.weight"
                                                            : "1.weight");
      memcpy (s, c1->shape, sizeof s);
      if (c1->ndim == 4 && s[1] != TAESD_Z)
        sd35_error_prefix (err, "this TAESD decodes %lld latent channels, SD3 needs %d "
                           "(use taesd3_decoder.safetensors)", (long long) s[1], TAESD_Z);
      sd35_error_prefix (err, "loading the TAESD preview decoder");
      goto fail;
    }
  sd35_log ("TAESD preview decoder: %s", path);
  *out = t;
  return SD35_OK;

fail:
  taesd_free (t);
  return err->status;
}

void
taesd_free (struct taesd *t)
{
  if (t == NULL)
    return;
  for (int i = 0; i < TAESD_LAYERS; i++)
    {
      conv2d_free (&t->layer[i].conv);
      for (int j = 0; j < 3; j++)
        conv2d_free (&t->layer[i].block[j]);
    }
  st_close (t->file);  /* after the weights: a CPU backend aliases the mapping */
  free (t->path);
  free (t);
}

const char *
taesd_path (const struct taesd *t)
{
  return t ? t->path : NULL;
}

/* --- forward ------------------------------------------------------------------------------ */

void
taesd_layer_shape (int h, int w, int last, int64_t chw[3])
{
  int64_t c = TAESD_Z, H = h, W = w;

  for (int i = 0; i <= last && i < TAESD_LAYERS; i++)
    {
      if (layout[i] == K_CONV)
        c = i == 19 ? 3 : TAESD_C;
      else if (layout[i] == K_UPSAMPLE)
        {
          H *= 2;
          W *= 2;
        }
    }
  chw[0] = c;
  chw[1] = H;
  chw[2] = W;
}

struct run
{
  struct backend *be;
  int64_t         C, H, W;  /* current activation [1, C, H, W] */
};

/* 3×3 conv, padding 1: new [1, co, H, W] (NULL on failure, error in be->err) */
static struct tensor *
conv3 (struct run *r, const struct conv2d *c, const struct tensor *in)
{
  struct tensor *out = tensor_new_act4 (r->be, 1, c->co, r->H, r->W);

  if (out != NULL)
    op_conv2d (r->be, out, in, c->w, c->b, 1, c->ci, r->H, r->W, c->co, 3, 3, 1, 1, 1, 1, 1);
  return out;
}

static void
relu (struct run *r, struct tensor *x)
{
  op_activation (r->be, x, x, r->C * r->H * r->W, ACT_RELU);
}

/* Block: consumes x, returns ReLU(c3(ReLU(c2(ReLU(c1(x))))) + x) */
static struct tensor *
block_forward (struct run *r, const struct conv2d c[3], struct tensor *x)
{
  struct tensor *a, *b = NULL;

  a = conv3 (r, &c[0], x);
  if (a != NULL)
    {
      relu (r, a);
      b = conv3 (r, &c[1], a);
    }
  if (b != NULL)
    {
      relu (r, b);
      op_conv2d (r->be, a, b, c[2].w, c[2].b, 1, c[2].ci, r->H, r->W, c[2].co, 3, 3, 1,
                 1, 1, 1, 1);  /* a is free again: reuse it for conv.4 */
      op_add (r->be, a, a, x, r->C * r->H * r->W);
      relu (r, a);
    }
  else
    {
      tensor_free (a);
      a = NULL;
    }
  tensor_free (b);
  tensor_free (x);
  return a;
}

static struct tensor *
upsample_forward (struct run *r, struct tensor *x)
{
  struct tensor *up = tensor_new_act4 (r->be, 1, r->C, 2 * r->H, 2 * r->W);

  if (up != NULL)
    op_upsample2x (r->be, up, x, 1, r->C, r->H, r->W);
  tensor_free (x);
  r->H *= 2;
  r->W *= 2;
  return up;
}

/* Sequential index i on x (consumed); returns the new activation or NULL */
static struct tensor *
layer_forward (struct run *r, const struct taesd_layer *l, enum taesd_kind kind,
               struct tensor *x)
{
  struct tensor *y;

  switch (kind)
    {
    case K_CONV:
    case K_CONV_NB:
      y = conv3 (r, &l->conv, x);
      tensor_free (x);
      r->C = l->conv.co;
      return y;
    case K_RELU:
      relu (r, x);
      return x;
    case K_BLOCK:
      return block_forward (r, l->block, x);
    case K_UPSAMPLE:
      return upsample_forward (r, x);
    case K_CLAMP:
    default:
      return x;  /* done on the host before the upload */
    }
}

enum sd35_status
taesd_forward (struct taesd *t, const float *latent, int h, int w, int last, float *out,
               struct sd35_error *err)
{
  const int64_t  shape[4] = { 1, TAESD_Z, h, w };
  struct run     r = { t->be, TAESD_Z, h, w };
  struct tensor *x = NULL;
  size_t         n;
  float         *z;
  int            ok;

  if (h <= 0 || w <= 0 || last < 0 || last >= TAESD_LAYERS)
    return sd35_set_error (err, SD35_ERR_ARG, "TAESD decode: bad latent size %d×%d or layer "
                           "%d", h, w, last);
  if (sd35_mul_size ((size_t) TAESD_Z * (size_t) h, (size_t) w, &n) != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "TAESD decode: latent %d×%d too large", h, w);
  z = sd35_malloc (n * sizeof *z, "the TAESD input", err);
  if (z == NULL)
    return err->status;
  /* [0] Clamp: tanh(x / 3) · 3, the decoder's only input scaling */
  for (size_t i = 0; i < n; i++)
    z[i] = tanhf (latent[i] / 3.0f) * 3.0f;
  x = tensor_from_f32 (t->be, z, 4, shape);
  free (z);
  for (int i = 1; i <= last && x != NULL; i++)
    x = layer_forward (&r, &t->layer[i], layout[i], x);

  ok = x != NULL;
  if (ok && !backend_failed (t->be))
    {
      op_download_f32 (t->be, out, x);
      op_synchronize (t->be);
    }
  tensor_free (x);
  if (backend_check (t->be, err) != SD35_OK)
    {
      sd35_error_prefix (err, "TAESD decode (%d×%d latent)", h, w);
      return err->status;
    }
  if (!ok)
    return sd35_set_error (err, SD35_ERR_INTERNAL, "TAESD decode failed without an error");
  return SD35_OK;
}

enum sd35_status
taesd_decode (struct taesd *t, const float *latent, int h, int w, float *image,
              struct sd35_error *err)
{
  return taesd_forward (t, latent, h, w, TAESD_LAYERS - 1, image, err);
}

void
taesd_image_to_u8 (const float *image, int H, int W, uint8_t *rgb)
{
  size_t hw = (size_t) H * (size_t) W;

  for (size_t p = 0; p < hw; p++)
    for (int c = 0; c < 3; c++)
      {
        float v = image[(size_t) c * hw + p];
        /* ((x_sample + 1)/2).clamp(0, 1)·255 → uint8 (truncates); !(v > 0) also takes NaN */
        v = !(v > 0.0f) ? 0.0f : v > 1.0f ? 1.0f : v;
        rgb[3 * p + c] = (uint8_t) (v * 255.0f);
      }
}
