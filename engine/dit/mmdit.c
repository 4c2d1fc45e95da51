/* mmdit.c — the SD3/SD3.5 MMDiT and MMDiT-X denoiser over ops.h (mmditx.py:MMDiTX,
 * sd3_impls.py:BaseModel; sd35-facts.md §2).  Loading, the embedders, the final layer and the
 * forward loop live here; one joint block is mmdit_block.c. */
#include "mmdit_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "weights.h"

/* --- loading --------------------------------------------------------------------------- */

static void
load_attn (struct weights_loader *wl, struct mmdit_attn *a, int64_t D, int qk_norm,
           int pre_only, int i, const char *stream, const char *name)
{
  const int64_t dh[1] = { MMDIT_HEAD_DIM };

  wl_linear (wl, &a->qkv, 3 * D, D, 1, "joint_blocks.%d.%s.%s.qkv", i, stream, name);
  if (qk_norm)
    {
      a->ln_q = wl_tensor (wl, WEIGHT_VECTOR, 1, dh, "joint_blocks.%d.%s.%s.ln_q.weight", i,
                           stream, name);
      a->ln_k = wl_tensor (wl, WEIGHT_VECTOR, 1, dh, "joint_blocks.%d.%s.%s.ln_k.weight", i,
                           stream, name);
    }
  if (!pre_only)
    wl_linear (wl, &a->proj, D, D, 1, "joint_blocks.%d.%s.%s.proj", i, stream, name);
}

static void
load_stream (struct weights_loader *wl, struct mmdit_stream *s, const struct mmdit_config *cfg,
             int i, const char *stream, int pre_only, int has_attn2)
{
  int64_t D = cfg->hidden_size;

  s->pre_only = pre_only;
  s->has_attn2 = has_attn2;
  s->n_chunks = pre_only ? 2 : has_attn2 ? 9 : 6;
  wl_linear (wl, &s->adaln, s->n_chunks * D, D, 1, "joint_blocks.%d.%s.adaLN_modulation.1", i,
             stream);
  load_attn (wl, &s->attn, D, cfg->qk_norm, pre_only, i, stream, "attn");
  if (has_attn2)
    load_attn (wl, &s->attn2, D, cfg->qk_norm, 0, i, stream, "attn2");
  if (!pre_only)
    {
      wl_linear (wl, &s->fc1, 4 * D, D, 1, "joint_blocks.%d.%s.mlp.fc1", i, stream);
      wl_linear (wl, &s->fc2, D, 4 * D, 1, "joint_blocks.%d.%s.mlp.fc2", i, stream);
    }
}

/* BaseModel.__init__: every dimension from a tensor shape. */
static enum sd35_status
read_config (struct weights_loader *wl, struct mmdit_config *cfg, const char *path,
             const char *prefix, struct sd35_error *err)
{
  int64_t s[ST_MAX_DIMS];
  int     n;

  memset (cfg, 0, sizeof *cfg);
  n = wl_shape (wl, s, "x_embedder.proj.weight");
  if (n != 4 || s[0] % MMDIT_HEAD_DIM != 0 || s[0] <= 0 || s[2] != s[3] || s[2] <= 0)
    return sd35_set_error (err, n == 0 ? SD35_ERR_MISSING : SD35_ERR_SHAPE,
                           "%s: no MMDiT here: %sx_embedder.proj.weight is %s (expected "
                           "[64·depth, 16, 2, 2]); is this an SD3.5 single-file checkpoint?",
                           path, prefix, n == 0 ? "absent" : "of an unexpected shape");
  cfg->depth = (int) (s[0] / MMDIT_HEAD_DIM);
  cfg->hidden_size = (int) s[0];
  cfg->num_heads = cfg->depth;
  cfg->in_channels = (int) s[1];
  cfg->patch_size = (int) s[2];
  if (cfg->depth > (int) sizeof cfg->attn2)
    return sd35_set_error (err, SD35_ERR_SHAPE, "%s: MMDiT depth %d is larger than the %d "
                           "supported", path, cfg->depth, (int) sizeof cfg->attn2);

  n = wl_shape (wl, s, "pos_embed");
  if (n != 3 || s[0] != 1 || s[2] != cfg->hidden_size)
    return sd35_set_error (err, n == 0 ? SD35_ERR_MISSING : SD35_ERR_SHAPE,
                           "%s: %spos_embed is %s (expected [1, M², %d])", path, prefix,
                           n == 0 ? "absent" : "of an unexpected shape", cfg->hidden_size);
  cfg->pos_embed_max_size = (int) lround (sqrt ((double) s[1]));
  if ((int64_t) cfg->pos_embed_max_size * cfg->pos_embed_max_size != s[1])
    return sd35_set_error (err, SD35_ERR_SHAPE, "%s: %spos_embed has %lld positions, not a "
                           "square number", path, prefix, (long long) s[1]);

  n = wl_shape (wl, s, "y_embedder.mlp.0.weight");
  if (n != 2)
    return sd35_set_error (err, SD35_ERR_MISSING, "%s: %sy_embedder.mlp.0.weight is absent "
                           "or not a matrix", path, prefix);
  cfg->adm_in_channels = (int) s[1];
  n = wl_shape (wl, s, "context_embedder.weight");
  if (n != 2)
    return sd35_set_error (err, SD35_ERR_MISSING, "%s: %scontext_embedder.weight is absent "
                           "or not a matrix", path, prefix);
  cfg->context_dim = (int) s[1];
  cfg->qk_norm = wl_find (wl, "joint_blocks.0.context_block.attn.ln_k.weight") != NULL;
  for (int i = 0; i < cfg->depth; i++)
    cfg->attn2[i] = wl_find (wl, "joint_blocks.%d.x_block.attn2.ln_k.weight", i) != NULL
                    || wl_find (wl, "joint_blocks.%d.x_block.attn2.qkv.weight", i) != NULL;
  return SD35_OK;
}

void
mmdit_log_config (const struct mmdit_config *cfg)
{
  char attn2[128] = "none";
  int  first = -1, last = -1, n = 0;

  for (int i = 0; i < cfg->depth; i++)
    if (cfg->attn2[i])
      {
        if (first < 0)
          first = i;
        last = i;
        n++;
      }
  if (n > 0 && n == last - first + 1)
    snprintf (attn2, sizeof attn2, "blocks %d-%d", first, last);
  else if (n > 0)
    snprintf (attn2, sizeof attn2, "%d blocks", n);
  sd35_log ("MMDiT: depth %d, hidden %d, heads %d, patch %d, pos_embed %d², adm %d, "
            "context %d, qk_norm %s, attn2 %s", cfg->depth, cfg->hidden_size, cfg->num_heads,
            cfg->patch_size, cfg->pos_embed_max_size, cfg->adm_in_channels, cfg->context_dim,
            cfg->qk_norm ? "rms" : "none", attn2);
}

enum sd35_status
mmdit_load (struct backend *be, struct st_file *file, const char *prefix, struct mmdit **out,
            struct sd35_error *err)
{
  struct weights_loader *wl;
  struct mmdit          *m;
  enum sd35_status       st;
  int64_t                D, C, p, M;

  *out = NULL;
  wl = wl_new (be, &file, 1, prefix, "MMDiT");
  if (wl == NULL)
    return backend_check (be, err) != SD35_OK
             ? err->status
             : sd35_set_error (err, SD35_ERR_OOM, "out of memory starting the MMDiT loader");
  m = sd35_calloc (1, sizeof *m, "MMDiT", err);
  if (m == NULL)
    {
      wl_free (wl);
      return SD35_ERR_OOM;
    }
  m->be = be;
  st = read_config (wl, &m->cfg, st_path (file), prefix, err);
  if (st != SD35_OK)
    goto fail;
  m->blocks = sd35_calloc ((size_t) m->cfg.depth, sizeof *m->blocks, "MMDiT blocks", err);
  if (m->blocks == NULL)
    {
      st = SD35_ERR_OOM;
      goto fail;
    }
  D = m->cfg.hidden_size;
  C = m->cfg.in_channels;
  p = m->cfg.patch_size;
  M = m->cfg.pos_embed_max_size;
  {
    const int64_t xe[4] = { D, C, p, p };
    const int64_t d1[1] = { D };
    const int64_t pe[3] = { 1, M * M, D };
    /* the conv weight [hidden, C, p, p] is used as a linear [hidden, C·p·p] on patches */
    m->x_embedder.w = wl_tensor (wl, WEIGHT_MATRIX, 4, xe, "x_embedder.proj.weight");
    m->x_embedder.b = wl_tensor (wl, WEIGHT_VECTOR, 1, d1, "x_embedder.proj.bias");
    /* read through op_embedding like a table: may stay in the file's compact dtype */
    m->pos_embed = wl_tensor (wl, WEIGHT_MATRIX, 3, pe, "pos_embed");
  }
  wl_linear (wl, &m->t_embedder.mlp_0, D, MMDIT_FREQ_DIM, 1, "t_embedder.mlp.0");
  wl_linear (wl, &m->t_embedder.mlp_2, D, D, 1, "t_embedder.mlp.2");
  wl_linear (wl, &m->y_embedder.mlp_0, D, m->cfg.adm_in_channels, 1, "y_embedder.mlp.0");
  wl_linear (wl, &m->y_embedder.mlp_2, D, D, 1, "y_embedder.mlp.2");
  wl_linear (wl, &m->context_embedder, D, m->cfg.context_dim, 1, "context_embedder");
  for (int i = 0; i < m->cfg.depth; i++)
    {
      int last = i == m->cfg.depth - 1;
      load_stream (wl, &m->blocks[i].context_block, &m->cfg, i, "context_block", last, 0);
      load_stream (wl, &m->blocks[i].x_block, &m->cfg, i, "x_block", 0, m->cfg.attn2[i]);
    }
  wl_linear (wl, &m->final_layer.adaln, 2 * D, D, 1, "final_layer.adaLN_modulation.1");
  wl_linear (wl, &m->final_layer.linear, p * p * C, D, 1, "final_layer.linear");
  st = wl_finish (wl, err);
  wl = NULL;
  if (st != SD35_OK)
    goto fail;
  mmdit_log_config (&m->cfg);
  *out = m;
  return SD35_OK;

fail:
  if (wl)
    wl_free (wl);
  mmdit_free (m);
  return st;
}

static void
attn_free (struct mmdit_attn *a)
{
  linear_free (&a->qkv);
  tensor_free (a->ln_q);
  tensor_free (a->ln_k);
  linear_free (&a->proj);
}

static void
stream_free (struct mmdit_stream *s)
{
  linear_free (&s->adaln);
  attn_free (&s->attn);
  attn_free (&s->attn2);
  linear_free (&s->fc1);
  linear_free (&s->fc2);
}

void
mmdit_free (struct mmdit *m)
{
  if (m == NULL)
    return;
  mmdit_scratch_free (m);
  if (m->blocks)
    for (int i = 0; i < m->cfg.depth; i++)
      {
        stream_free (&m->blocks[i].context_block);
        stream_free (&m->blocks[i].x_block);
      }
  free (m->blocks);
  tensor_free (m->x_embedder.w);
  tensor_free (m->x_embedder.b);
  tensor_free (m->pos_embed);
  linear_free (&m->t_embedder.mlp_0);
  linear_free (&m->t_embedder.mlp_2);
  linear_free (&m->y_embedder.mlp_0);
  linear_free (&m->y_embedder.mlp_2);
  linear_free (&m->context_embedder);
  linear_free (&m->final_layer.adaln);
  linear_free (&m->final_layer.linear);
  free (m->host_pool);
  free (m);
}

const struct mmdit_config *
mmdit_get_config (const struct mmdit *m)
{
  return &m->cfg;
}

void
mmdit_set_debug (struct mmdit *m, mmdit_debug_fn fn, void *user)
{
  m->debug = fn;
  m->debug_user = user;
}

void
mmdit_debug_tensor (struct mmdit *m, const char *name, const struct tensor *t, int ndim,
                    int64_t d0, int64_t d1, int64_t d2)
{
  int64_t shape[3] = { d0, d1, d2 };
  float  *host;

  if (m->debug == NULL || backend_failed (m->be))
    return;
  host = malloc (t->numel * sizeof *host);
  if (host == NULL)
    return;
  tensor_to_f32 (t, host);
  m->debug (m->debug_user, name, host, shape, ndim);
  free (host);
}

/* --- forward ----------------------------------------------------------------------------- */

/* TimestepEmbedder.timestep_embedding (t, 256): freqs = exp(−ln(10000)·arange(128)/128),
 * cat(cos(t·f), sin(t·f)), each step in float32 like the reference. */
void
mmdit_timestep_embedding (const float *t, int B, float *out /* [B, 256] */)
{
  const int   half = MMDIT_FREQ_DIM / 2;
  const float neg_log_period = (float) -log (10000.0);

  for (int b = 0; b < B; b++)
    for (int i = 0; i < half; i++)
      {
        float e = neg_log_period * (float) i;
        float arg = t[b] * expf (e / (float) half);
        out[(size_t) b * MMDIT_FREQ_DIM + i] = cosf (arg);
        out[(size_t) b * MMDIT_FREQ_DIM + half + i] = sinf (arg);
      }
}

static int
is_skipped (int i, const int *skip_layers, int n_skip)
{
  for (int k = 0; k < n_skip; k++)
    if (skip_layers[k] == i)
      return 1;
  return 0;
}

static enum sd35_status
check_sizes (const struct mmdit *m, int B, int H, int W, int n_ctx, const int *skip_layers,
             int n_skip, struct sd35_error *err)
{
  const int p = m->cfg.patch_size, M = m->cfg.pos_embed_max_size;

  if (B < 1 || n_ctx < 1 || H < 1 || W < 1)
    return sd35_set_error (err, SD35_ERR_ARG, "MMDiT: empty input (batch %d, latent %dx%d, "
                           "%d context tokens)", B, H, W, n_ctx);
  if (H % p != 0 || W % p != 0)
    return sd35_set_error (err, SD35_ERR_ARG, "MMDiT: latent %dx%d (H×W) is not a multiple of "
                           "the patch size %d; image sizes must be multiples of %d",
                           H, W, p, 8 * p);
  if (H / p > M || W / p > M)
    return sd35_set_error (err, SD35_ERR_ARG, "MMDiT: latent %dx%d is larger than this "
                           "model's position table allows (%dx%d latent, i.e. images up to "
                           "%dx%d pixels)", H, W, M * p, M * p, M * p * 8, M * p * 8);
  for (int k = 0; k < n_skip; k++)
    if (skip_layers[k] < 0 || skip_layers[k] >= m->cfg.depth)
      return sd35_set_error (err, SD35_ERR_ARG, "MMDiT: skip layer %d does not exist (the "
                             "model has blocks 0..%d)", skip_layers[k], m->cfg.depth - 1);
  return SD35_OK;
}

/* Position rows of cropped_pos_embed: the centred h×w window of the M×M grid, row-major. */
static int32_t *
pos_rows (int M, int h, int w, struct sd35_error *err)
{
  int32_t *ids = sd35_malloc ((size_t) h * w * sizeof *ids, "MMDiT position ids", err);
  int      top = (M - h) / 2, left = (M - w) / 2;

  if (ids == NULL)
    return NULL;
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++)
      ids[r * w + c] = (top + r) * M + left + c;
  return ids;
}

/* Uploads src (n floats) into t unless t already holds it from an earlier step (*kept: the
 * host copy of what was uploaded; made on first use). */
static void
upload_once (struct backend *be, struct tensor *t, const float *src, size_t n, float **kept)
{
  if (*kept != NULL && memcmp (*kept, src, n * sizeof *src) == 0)
    return;   /* the device still holds it */
  op_upload_f32 (be, t, src);
  if (backend_failed (be))
    return;
  if (*kept == NULL)
    *kept = malloc (n * sizeof **kept);   /* no copy: upload every step, still correct */
  if (*kept != NULL)
    memcpy (*kept, src, n * sizeof *src);
}

enum sd35_status
mmdit_forward (struct mmdit *m, const float *x, const float *sigma, const float *context,
               const float *y, int B, int H, int W, int n_ctx, const int *skip_layers,
               int n_skip, const struct mmdit_cancel *cancel, float *v, struct sd35_error *err)
{
  struct backend       *be = m->be;
  struct mmdit_scratch *s;
  enum sd35_status      st;
  const int64_t         D = m->cfg.hidden_size, C = m->cfg.in_channels, p = m->cfg.patch_size;
  int64_t               h, w, N;
  float                *host = NULL;
  int32_t              *ids = NULL;

  st = check_sizes (m, B, H, W, n_ctx, skip_layers, n_skip, err);
  if (st != SD35_OK)
    return st;
  h = H / p;
  w = W / p;
  N = h * w;
  st = mmdit_scratch_ensure (m, B, H, W, n_ctx, err);
  if (st != SD35_OK)
    return st;
  s = &m->scratch;

  /* host side: t = sigma·1000 (ModelSamplingDiscreteFlow.timestep) → sinusoid [B, 256] */
  host = sd35_malloc ((size_t) B * (MMDIT_FREQ_DIM + 1) * sizeof *host, "timestep embedding", err);
  ids = pos_rows (m->cfg.pos_embed_max_size, (int) h, (int) w, err);
  if (host == NULL || ids == NULL)
    {
      free (host);
      free (ids);
      return SD35_ERR_OOM;
    }
  {
    float *t = host + (size_t) B * MMDIT_FREQ_DIM;
    for (int b = 0; b < B; b++)
      t[b] = sigma[b] * 1000.0f;
    mmdit_timestep_embedding (t, B, host);
  }
  op_upload_f32 (be, s->t_freq, host);
  free (host);
  op_upload_f32 (be, s->x_in, x);
  /* context and pooled vector: once per image, then kept in device memory */
  upload_once (be, s->ctx_in, context, (size_t) B * n_ctx * m->cfg.context_dim, &s->ctx_kept);
  upload_once (be, s->y_in, y, (size_t) B * m->cfg.adm_in_channels, &s->y_kept);
  mmdit_debug_tensor (m, "dbg_t_freq", s->t_freq, 2, B, MMDIT_FREQ_DIM, 0);

  /* x_embedder (Conv2d k=p s=p as patchify + linear) + cropped pos_embed */
  op_patchify (be, s->patches, s->x_in, B, C, H, W, p);
  op_linear (be, s->x, s->patches, m->x_embedder.w, m->x_embedder.b, B * N, D, C * p * p,
             ACT_NONE);
  mmdit_debug_tensor (m, "dbg_patch_embed", s->x, 3, B, N, D);
  op_embedding (be, s->pos, m->pos_embed, ids, N, D);
  free (ids);
  mmdit_debug_tensor (m, "dbg_pos_embed_crop", s->pos, 3, 1, N, D);
  op_add_broadcast (be, s->x, s->x, s->pos, B, N * D);

  /* c = t_embedder(t) + y_embedder(y); the adaLN linears all take SiLU(c) */
  op_linear (be, s->emb_h, s->t_freq, m->t_embedder.mlp_0.w, m->t_embedder.mlp_0.b, B, D,
             MMDIT_FREQ_DIM, ACT_SILU);
  op_linear (be, s->t_emb, s->emb_h, m->t_embedder.mlp_2.w, m->t_embedder.mlp_2.b, B, D, D,
             ACT_NONE);
  op_linear (be, s->emb_h, s->y_in, m->y_embedder.mlp_0.w, m->y_embedder.mlp_0.b, B, D,
             m->cfg.adm_in_channels, ACT_SILU);
  op_linear (be, s->c_silu, s->emb_h, m->y_embedder.mlp_2.w, m->y_embedder.mlp_2.b, B, D, D,
             ACT_NONE);
  mmdit_debug_tensor (m, "dbg_t_emb", s->t_emb, 2, B, D, 0);
  mmdit_debug_tensor (m, "dbg_y_emb", s->c_silu, 2, B, D, 0);
  op_add (be, s->c_silu, s->t_emb, s->c_silu, B * D);
  mmdit_debug_tensor (m, "dbg_c_mod", s->c_silu, 2, B, D, 0);
  op_activation (be, s->c_silu, s->c_silu, B * D, ACT_SILU);

  op_linear (be, s->ctx, s->ctx_in, m->context_embedder.w, m->context_embedder.b,
             (int64_t) B * n_ctx, D, m->cfg.context_dim, ACT_NONE);
  mmdit_debug_tensor (m, "dbg_context_embedded", s->ctx, 3, B, n_ctx, D);
  st = backend_check (be, err);
  if (st != SD35_OK)
    return st;

  for (int i = 0; i < m->cfg.depth; i++)
    {
      char name[48];

      if (cancel && cancel->is_cancelled && cancel->is_cancelled (cancel->user))
        return sd35_set_error (err, SD35_CANCELLED, "cancelled");
      if (is_skipped (i, skip_layers, n_skip))
        continue;
      mmdit_joint_block (m, &m->blocks[i], B, N, n_ctx);
      st = backend_check (be, err);
      if (st != SD35_OK)
        return st;
      if (m->debug)
        {
          snprintf (name, sizeof name, "dbg_block%d_context", i);
          if (!m->blocks[i].context_block.pre_only)
            mmdit_debug_tensor (m, name, s->ctx, 3, B, n_ctx, D);
          snprintf (name, sizeof name, "dbg_block%d_x", i);
          mmdit_debug_tensor (m, name, s->x, 3, B, N, D);
        }
    }

  /* FinalLayer: shift, scale = Linear(SiLU(c)).chunk(2) (shift first), LN, modulate, linear */
  op_linear (be, s->mod_f, s->c_silu, m->final_layer.adaln.w, m->final_layer.adaln.b, B,
             2 * D, D, ACT_NONE);
  op_ln_modulate (be, s->xn, s->x, s->mod_f, 2, 0, 1, B, N, D, MMDIT_EPS);
  op_linear (be, s->final_out, s->xn, m->final_layer.linear.w, m->final_layer.linear.b, B * N,
             p * p * C, D, ACT_NONE);
  mmdit_debug_tensor (m, "dbg_final_layer_out", s->final_out, 3, B, N, p * p * C);
  op_unpatchify (be, s->x_in, s->final_out, B, C, H, W, p);
  st = backend_check (be, err);
  if (st != SD35_OK)
    return st;
  op_download_f32 (be, v, s->x_in);
  op_synchronize (be);
  return backend_check (be, err);
}
