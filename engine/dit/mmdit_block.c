/* mmdit_block.c — one MMDiT joint block over ops.h (mmditx.py:JointBlock, block_mixing,
 * DismantledBlock.pre_attention / post_attention and the MMDiT-X *_x variants), and the
 * scratch activations of a forward. */
#include "mmdit_internal.h"

#include <stdlib.h>

#include "error.h"

void
mmdit_scratch_free (struct mmdit *m)
{
  struct mmdit_scratch *s = &m->scratch;
  struct tensor       **all[] = {
    &s->x_in, &s->patches, &s->pos, &s->ctx_in, &s->y_in, &s->t_freq, &s->emb_h, &s->t_emb,
    &s->c_silu, &s->x, &s->ctx, &s->mod_f, &s->xn, &s->cn, &s->yx, &s->yc, &s->qkv_x,
    &s->qkv_c, &s->qkv, &s->att, &s->att_x, &s->att_c, &s->att2, &s->mlp_hx, &s->mlp_hc,
    &s->final_out
  };

  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    {
      tensor_free (*all[i]);
      *all[i] = NULL;
    }
  for (int k = 0; k < MMDIT_MAX_CHUNKS + 1; k++)
    {
      tensor_free (s->mod_x[k]);
      tensor_free (s->mod_c[k]);
      s->mod_x[k] = s->mod_c[k] = NULL;
    }
  free (s->ctx_kept);
  free (s->y_kept);
  s->ctx_kept = s->y_kept = NULL;
  s->B = s->H = s->W = s->n_ctx = 0;
}

/* An fp32 activation whatever the backend's act_dtype (ops.h: tensors carry their dtype). */
static struct tensor *
f32_new (struct backend *be, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
  const int64_t shape[4] = { d0, d1, d2, d3 };
  return tensor_new (be, SD35_F32, ndim, shape);
}

/* Every activation of a forward for (B, H, W, n_ctx), allocated once and reused while the
 * size stays the same.  Sizes are exact: ops may check numel against their arguments.
 * Precision: what accumulates across the blocks or scales every value of a stream is fp32
 * even where activations are bf16 (CUDA): the residual streams x and ctx (each block adds to
 * them; bf16 storage would round them ~2·depth times), what is added to them (yx, yc: the
 * proj / fc2 outputs, written in fp32 by the GEMM), the adaLN vectors (mod_*: shift, scale,
 * gate of every value; tiny) and the embedder path to SiLU(c), the pos-embed, the input
 * latent and the output v (the sampler steps with v directly).  The bf16 emulation
 * (tests/gpu/bf16_emu.c) measured the whole-run error this keeps under the bar.  The
 * rest (norm outputs, qkv, attention, MLP hidden) only feeds GEMMs with bf16 operands. */
enum sd35_status
mmdit_scratch_ensure (struct mmdit *m, int64_t B, int64_t H, int64_t W, int64_t n_ctx,
                      struct sd35_error *err)
{
  struct backend       *be = m->be;
  struct mmdit_scratch *s = &m->scratch;
  const int64_t         D = m->cfg.hidden_size, C = m->cfg.in_channels, p = m->cfg.patch_size;
  const int64_t         N = (H / p) * (W / p), L = n_ctx + N;
  int                   any_attn2 = 0;
  enum sd35_status      st;

  if (s->x != NULL && s->B == B && s->H == H && s->W == W && s->n_ctx == n_ctx)
    return SD35_OK;
  mmdit_scratch_free (m);
  for (int i = 0; i < m->cfg.depth; i++)
    any_attn2 |= m->blocks[i].x_block.has_attn2;

  s->x_in = f32_new (be, 4, B, C, H, W);
  s->patches = tensor_new_act3 (be, B, N, C * p * p);
  s->pos = f32_new (be, 2, N, D, 0, 0);
  s->ctx_in = tensor_new_act3 (be, B, n_ctx, m->cfg.context_dim);
  s->y_in = f32_new (be, 2, B, m->cfg.adm_in_channels, 0, 0);
  s->t_freq = f32_new (be, 2, B, MMDIT_FREQ_DIM, 0, 0);
  s->emb_h = f32_new (be, 2, B, D, 0, 0);
  s->t_emb = f32_new (be, 2, B, D, 0, 0);
  s->c_silu = f32_new (be, 2, B, D, 0, 0);
  s->x = f32_new (be, 3, B, N, D, 0);
  s->ctx = f32_new (be, 3, B, n_ctx, D, 0);
  s->mod_f = f32_new (be, 2, B, 2 * D, 0, 0);
  for (int i = 0; i < m->cfg.depth; i++)
    {
      int kx = m->blocks[i].x_block.n_chunks, kc = m->blocks[i].context_block.n_chunks;
      if (s->mod_x[kx] == NULL)
        s->mod_x[kx] = f32_new (be, 2, B, kx * D, 0, 0);
      if (s->mod_c[kc] == NULL)
        s->mod_c[kc] = f32_new (be, 2, B, kc * D, 0, 0);
    }
  s->xn = tensor_new_act3 (be, B, N, D);
  s->cn = tensor_new_act3 (be, B, n_ctx, D);
  s->yx = f32_new (be, 3, B, N, D, 0);
  s->yc = f32_new (be, 3, B, n_ctx, D, 0);
  s->qkv_x = tensor_new_act3 (be, B, N, 3 * D);
  s->qkv_c = tensor_new_act3 (be, B, n_ctx, 3 * D);
  s->qkv = tensor_new_act3 (be, B, L, 3 * D);
  s->att = tensor_new_act3 (be, B, L, D);
  s->att_x = tensor_new_act3 (be, B, N, D);
  s->att_c = tensor_new_act3 (be, B, n_ctx, D);
  if (any_attn2)
    s->att2 = tensor_new_act3 (be, B, N, D);
  s->mlp_hx = tensor_new_act3 (be, B, N, 4 * D);
  s->mlp_hc = tensor_new_act3 (be, B, n_ctx, 4 * D);
  s->final_out = f32_new (be, 3, B, N, p * p * C, 0);
  st = backend_check (be, err);
  if (st != SD35_OK)
    {
      mmdit_scratch_free (m);
      sd35_error_prefix (err, "MMDiT activations for batch %lld, latent %lldx%lld",
                         (long long) B, (long long) H, (long long) W);
      return st;
    }
  s->B = B;
  s->H = H;
  s->W = W;
  s->n_ctx = n_ctx;
  return SD35_OK;
}

/* SelfAttention.pre_attention on the modulated input: qkv linear, then RMSNorm of q and k over
 * the head dim (in place on the packed [rows, 3, H, 64] layout). */
static void
pre_attention (struct backend *be, struct tensor *qkv, const struct tensor *in,
               const struct mmdit_attn *a, int64_t rows, int64_t D, int64_t heads)
{
  op_linear (be, qkv, in, a->qkv.w, a->qkv.b, rows, 3 * D, D, ACT_NONE);
  if (a->ln_q != NULL)
    op_qk_rmsnorm (be, qkv, a->ln_q, a->ln_k, rows, heads, MMDIT_HEAD_DIM, MMDIT_EPS);
}

/* DismantledBlock.post_attention (+ post_attention_x): gated residuals and the MLP.
 * stream/y/tmp/mlp_h: [B, n, D] (fp32), [B, n, D] (fp32), [B, n, D], [B, n, 4D];
 * mod: [B, n_chunks·D]. */
static void
post_attention (struct backend *be, const struct mmdit_stream *st, struct tensor *stream,
                const struct tensor *att, const struct tensor *att2, struct tensor *y,
                struct tensor *tmp, struct tensor *mlp_h, const struct tensor *mod, int64_t B,
                int64_t n, int64_t D)
{
  const int64_t k = st->n_chunks;

  /* x = x + gate_msa·proj(attn) */
  op_linear (be, y, att, st->attn.proj.w, st->attn.proj.b, B * n, D, D, ACT_NONE);
  op_gated_add (be, stream, y, mod, k, 2, B, n, D);
  if (st->has_attn2)
    {
      /* x = x + gate_msa2·proj2(attn2) */
      op_linear (be, y, att2, st->attn2.proj.w, st->attn2.proj.b, B * n, D, D, ACT_NONE);
      op_gated_add (be, stream, y, mod, k, 8, B, n, D);
    }
  /* x = x + gate_mlp·fc2(gelu_tanh(fc1(modulate(norm2(x), shift_mlp, scale_mlp)))) */
  op_ln_modulate (be, tmp, stream, mod, k, 3, 4, B, n, D, MMDIT_EPS);
  op_linear (be, mlp_h, tmp, st->fc1.w, st->fc1.b, B * n, 4 * D, D, ACT_GELU_TANH);
  op_linear (be, y, mlp_h, st->fc2.w, st->fc2.b, B * n, D, 4 * D, ACT_NONE);
  op_gated_add (be, stream, y, mod, k, 5, B, n, D);
}

void
mmdit_joint_block (struct mmdit *m, const struct mmdit_joint_block *blk, int64_t B, int64_t N,
                   int64_t n_ctx)
{
  struct backend            *be = m->be;
  struct mmdit_scratch      *s = &m->scratch;
  const struct mmdit_stream *cb = &blk->context_block, *xb = &blk->x_block;
  const int64_t              D = m->cfg.hidden_size, heads = m->cfg.num_heads;
  const int64_t              L = n_ctx + N;
  const float                scale = 0.125f;  /* 1/sqrt(64): head dim 64 */
  struct tensor             *mod_c = s->mod_c[cb->n_chunks], *mod_x = s->mod_x[xb->n_chunks];

  /* adaLN_modulation = Sequential(SiLU, Linear) on c; SiLU(c) is precomputed */
  op_linear (be, mod_c, s->c_silu, cb->adaln.w, cb->adaln.b, B, cb->n_chunks * D, D, ACT_NONE);
  op_linear (be, mod_x, s->c_silu, xb->adaln.w, xb->adaln.b, B, xb->n_chunks * D, D, ACT_NONE);

  /* pre_attention: modulate(norm1(·), shift_msa, scale_msa) → qkv (chunks 0, 1) */
  op_ln_modulate (be, s->cn, s->ctx, mod_c, cb->n_chunks, 0, 1, B, n_ctx, D, MMDIT_EPS);
  pre_attention (be, s->qkv_c, s->cn, &cb->attn, B * n_ctx, D, heads);
  op_ln_modulate (be, s->xn, s->x, mod_x, xb->n_chunks, 0, 1, B, N, D, MMDIT_EPS);
  pre_attention (be, s->qkv_x, s->xn, &xb->attn, B * N, D, heads);

  /* block_mixing: one attention over cat(context, x) along the sequence */
  op_concat_rows (be, s->qkv, s->qkv_c, s->qkv_x, B, n_ctx, N, 3 * D);
  op_attention (be, s->att, s->qkv, NULL, B, L, heads, MMDIT_HEAD_DIM, scale, 0);
  op_split_rows (be, cb->pre_only ? NULL : s->att_c, s->att_x, s->att, B, n_ctx, N, D);

  if (xb->has_attn2)
    {
      /* MMDiT-X: x-only self-attention on modulate(norm1(x), shift_msa2, scale_msa2); qkv_x
       * is free again after the concat */
      op_ln_modulate (be, s->xn, s->x, mod_x, xb->n_chunks, 6, 7, B, N, D, MMDIT_EPS);
      pre_attention (be, s->qkv_x, s->xn, &xb->attn2, B * N, D, heads);
      op_attention (be, s->att2, s->qkv_x, NULL, B, N, heads, MMDIT_HEAD_DIM, scale, 0);
    }

  /* the pre_only context block's output is discarded (JointBlock returns None) */
  if (!cb->pre_only)
    post_attention (be, cb, s->ctx, s->att_c, NULL, s->yc, s->cn, s->mlp_hc, mod_c, B, n_ctx,
                    D);
  post_attention (be, xb, s->x, s->att_x, s->att2, s->yx, s->xn, s->mlp_hx, mod_x, B, N, D);
}
