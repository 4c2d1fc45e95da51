/* vae_tiled.c — the VAE decode of large latents in overlapping tiles, linearly blended, and
 * the rule that chooses it (sd35_engine_options.vae_tiling).
 *
 * A full decode of an H×W image holds a few activations of the last level's size (128
 * channels × H × W and 256 channels at the first block's input; the residual stream is fp32
 * even on CUDA): a few GB at 1024², 4× that at 2048².  Tiles bound it by the tile size.
 *
 * Tile size 64×64 latent pixels (512×512 image pixels, the size SD VAEs are trained at),
 * overlap 16 latent pixels (128 image pixels, 25%, diffusers' AutoencoderKL tiling ratio):
 * the decoder's 3×3 convolutions see about 17 latent pixels on each side (11 convs at latent
 * size, 7 at ×2, 7 at ×4, 8 at ×8 → 11 + 3.5 + 1.75 + 1), so in the middle of the overlap
 * both tiles have most of their context.  What a tile cannot see — the group norms' image
 * statistics and the mid attention over the whole latent — makes a tiled decode differ
 * slightly from a full one; the linear ramps over each overlap hide the difference (no seam
 * steps).  Blending weights are separable, w(x)·w(y), each a ramp over the overlap with
 * the neighbour, normalised by their per-axis sums, so every pixel is a convex combination.
 * In auto mode a full decode that runs out of memory anyway is retried in tiles. */
#include "vae_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

#define VAE_TILE         64  /* latent pixels */
#define VAE_TILE_OVERLAP 16  /* latent pixels */

/* Activation bytes of a full decode: per level, ~5 fp32 tensors of the widest channel count
 * at that level's size (input, normed, conv output, shortcut, residual; vae_forward.c frees
 * the rest as it goes), and at an upsample the input plus two tensors of 4× its size. */
size_t
vae_decode_act_bytes (const struct vae *v, int h, int w)
{
  const struct vae_coder_config *cc = &v->cfg.decoder;
  const double                   es = 4.0;  /* vae_forward.c keeps the residual stream fp32 */
  double                         cells = (double) h * w, best = 5.0 * cc->conv_in * cells;

  for (int i = cc->n_levels - 1; i >= 0; i--)
    {
      int    cin = i == cc->n_levels - 1 ? cc->conv_in : cc->width[i + 1];
      int    c = cin > cc->width[i] ? cin : cc->width[i];
      double b = 5.0 * c * cells;

      if (b > best)
        best = b;
      if (i != 0)
        {
          b = (double) cc->width[i] * (cells + 8.0 * cells);
          if (b > best)
            best = b;
          cells *= 4.0;
        }
    }
  best *= es;
  return best >= (double) SIZE_MAX ? SIZE_MAX : (size_t) best;
}

size_t
vae_memory_budget (struct backend *be)
{
  return backend_work_budget (be);  /* the backend knows its memory (ops.h) */
}

/* Starts of n tiles of size t covering [0, len) with overlaps ≥ ov, spread evenly: step
 * (len − t)/(n − 1) ≤ t − ov for n = ⌈(len − ov)/(t − ov)⌉.  Returns n (start[] holds
 * len entries). */
static int
tile_starts (int len, int t, int ov, int *start)
{
  int n;

  if (len <= t)
    {
      start[0] = 0;
      return 1;
    }
  n = (len - ov + (t - ov) - 1) / (t - ov);
  for (int k = 0; k < n; k++)
    start[k] = (int) ((int64_t) k * (len - t) / (n - 1));
  return n;
}

/* Blend weight along one axis of pixel p (image pixels) in tile k of n: a ramp up over the
 * overlap with tile k − 1 and down over the overlap with tile k + 1, 1 elsewhere; a hard
 * cut (0/1, by tile halves) where tiles only touch. */
static float
axis_weight (const int *start, int n, int t, int f, int k, int p)
{
  float w = 1.0f;

  if (k > 0)
    {
      int ov = f * (start[k - 1] + t - start[k]);
      if (ov > 0)
        {
          float r = (p - f * start[k] + 0.5f) / ov;
          w = r < w ? r : w;
        }
    }
  if (k < n - 1)
    {
      int ov = f * (start[k] + t - start[k + 1]);
      if (ov > 0)
        {
          float r = (f * (start[k] + t) - p - 0.5f) / ov;
          w = r < w ? r : w;
        }
    }
  return w > 0.0f ? w : 0.0f;
}

/* sum[p] = Σ_k weight of p in tile k (every covered pixel gets > 0) */
static void
axis_sums (const int *start, int n, int t, int f, float *sum, int len_px)
{
  memset (sum, 0, (size_t) len_px * sizeof *sum);
  for (int k = 0; k < n; k++)
    for (int p = f * start[k]; p < f * (start[k] + t) && p < len_px; p++)
      sum[p] += axis_weight (start, n, t, f, k, p);
}

enum sd35_status
vae_decode_tiled (struct vae *v, const float *latent, int h, int w, int tile, int overlap,
                  float *image, struct sd35_error *err)
{
  const int        f = vae_factor (v), zc = v->cfg.z_channels;
  const int        th = tile < h ? tile : h, tw = tile < w ? tile : w;
  const size_t     H = (size_t) h * f, W = (size_t) w * f;
  int             *sy, *sx, ny, nx;
  float           *tl, *ti, *sumy, *sumx;
  enum sd35_status st = SD35_OK;

  if (h < 1 || w < 1 || tile < 1 || overlap < 0 || overlap >= tile)
    return sd35_set_error (err, SD35_ERR_ARG, "VAE tiled decode: latent %dx%d, tile %d, "
                           "overlap %d (need 0 ≤ overlap < tile)", h, w, tile, overlap);
  sy = sd35_malloc ((size_t) h * sizeof *sy, "the VAE tile grid", err);
  sx = sd35_malloc ((size_t) w * sizeof *sx, "the VAE tile grid", err);
  tl = sd35_malloc ((size_t) zc * th * tw * sizeof *tl, "a VAE latent tile", err);
  ti = sd35_malloc ((size_t) 3 * th * tw * f * f * sizeof *ti, "a VAE image tile", err);
  sumy = sd35_malloc (H * sizeof *sumy, "the VAE tile weights", err);
  sumx = sd35_malloc (W * sizeof *sumx, "the VAE tile weights", err);
  if (sy == NULL || sx == NULL || tl == NULL || ti == NULL || sumy == NULL || sumx == NULL)
    {
      st = err->status;
      goto done;
    }
  ny = tile_starts (h, th, overlap < th ? overlap : 0, sy);
  nx = tile_starts (w, tw, overlap < tw ? overlap : 0, sx);
  axis_sums (sy, ny, th, f, sumy, (int) H);
  axis_sums (sx, nx, tw, f, sumx, (int) W);
  memset (image, 0, 3 * H * W * sizeof *image);
  sd35_log ("VAE decode in %d×%d tiles of %d×%d latent pixels (overlap ≥ %d)", nx, ny, tw, th,
            overlap);

  for (int ky = 0; ky < ny && st == SD35_OK; ky++)
    for (int kx = 0; kx < nx && st == SD35_OK; kx++)
      {
        for (int c = 0; c < zc; c++)  /* latent[c, sy.., sx..] → tl[c, th, tw] */
          for (int y = 0; y < th; y++)
            memcpy (tl + ((size_t) c * th + y) * tw,
                    latent + ((size_t) c * h + sy[ky] + y) * w + sx[kx], tw * sizeof *tl);
        st = vae_decoder_forward (v, tl, th, tw, ti, err);
        if (st != SD35_OK)
          break;
        for (int y = 0; y < th * f; y++)
          {
            size_t Y = (size_t) f * sy[ky] + y;
            float  wy = axis_weight (sy, ny, th, f, ky, (int) Y) / sumy[Y];

            for (int x = 0; x < tw * f; x++)
              {
                size_t X = (size_t) f * sx[kx] + x;
                float  wxy = wy * axis_weight (sx, nx, tw, f, kx, (int) X) / sumx[X];

                for (int c = 0; c < 3; c++)
                  image[(c * H + Y) * W + X] +=
                    wxy * ti[((size_t) c * th * f + y) * tw * f + x];
              }
          }
      }

done:
  free (sy);
  free (sx);
  free (tl);
  free (ti);
  free (sumy);
  free (sumx);
  return st;
}

enum sd35_status
vae_decode_auto (struct vae *v, const float *latent, int h, int w, int tiling, float *image,
                 struct sd35_error *err)
{
  size_t           need, budget;
  enum sd35_status st;

  if (h < 1 || w < 1)
    return sd35_set_error (err, SD35_ERR_ARG, "VAE decode: empty latent %dx%d", h, w);
  if (tiling > 0)
    return vae_decode_tiled (v, latent, h, w, VAE_TILE, VAE_TILE_OVERLAP, image, err);
  if (tiling < 0 || (h <= VAE_TILE && w <= VAE_TILE))
    return vae_decoder_forward (v, latent, h, w, image, err);
  need = vae_decode_act_bytes (v, h, w);
  budget = vae_memory_budget (v->be);
  if (need <= budget)
    {
      /* the estimate can be wrong (fragmentation, other programs): out of memory → tiles.
       * An allocation failure leaves the backend usable (the CUDA pool clears it). */
      st = vae_decoder_forward (v, latent, h, w, image, err);
      if (st != SD35_ERR_OOM)
        return st;
      sd35_log ("VAE decode ran out of memory (%s): retrying in tiles", err->message);
      sd35_error_clear (&v->be->err);
      sd35_error_clear (err);
      return vae_decode_tiled (v, latent, h, w, VAE_TILE, VAE_TILE_OVERLAP, image, err);
    }
  sd35_log ("VAE decode needs ~%zu MiB of activations, over the %zu MiB budget: tiling",
            need >> 20, budget >> 20);
  return vae_decode_tiled (v, latent, h, w, VAE_TILE, VAE_TILE_OVERLAP, image, err);
}
