/* mmdit_internal.h — the MMDiT weights and scratch shared by mmdit.c, mmdit_block.c and
 * mmdit_random.c (engine-internal).  Field names mirror the checkpoint keys below
 * "model.diffusion_model.". */
#ifndef SD35_MMDIT_INTERNAL_H
#define SD35_MMDIT_INTERNAL_H

#include "mmdit.h"
#include "weights.h"

#define MMDIT_HEAD_DIM 64    /* BaseModel: hidden = 64·depth, heads = depth */
#define MMDIT_FREQ_DIM 256   /* TimestepEmbedder frequency_embedding_size */
#define MMDIT_EPS      1e-6f /* norm1/norm2/final LayerNorm and qk RMSNorm eps */
#define MMDIT_MAX_CHUNKS 9   /* adaLN chunks of an MMDiT-X x_block */

/* SelfAttention: attn / attn2 */
struct mmdit_attn
{
  struct linear  qkv;         /* [3D, D] + bias */
  struct tensor *ln_q, *ln_k; /* RMSNorm weight [64] (NULL without qk_norm) */
  struct linear  proj;        /* [D, D] + bias (absent in the pre_only block) */
};

/* DismantledBlock: joint_blocks.{i}.{context_block,x_block} */
struct mmdit_stream
{
  struct linear     adaln;     /* adaLN_modulation.1: [n_chunks·D, D] */
  struct mmdit_attn attn;
  struct mmdit_attn attn2;     /* MMDiT-X x-only self-attention (has_attn2) */
  struct linear     fc1, fc2;  /* mlp.fc1 [4D, D], mlp.fc2 [D, 4D] (not pre_only) */
  int               pre_only;  /* last context block: 2 chunks, qkv only */
  int               has_attn2;
  int               n_chunks;  /* 6, 2 (pre_only) or 9 (attn2) */
};

struct mmdit_joint_block
{
  struct mmdit_stream context_block;
  struct mmdit_stream x_block;
};

/* Activations of one forward, allocated once for a (B, N, n_ctx) and kept until the size
 * changes or the model is freed (the sampler calls the same size every step). */
struct mmdit_scratch
{
  int64_t        B, H, W, n_ctx;
  struct tensor *x_in;       /* [B, 16, H, W] input latent, then v */
  struct tensor *patches;    /* [B, N, C·p·p] */
  struct tensor *pos;        /* [N, D] cropped pos_embed */
  struct tensor *ctx_in;     /* [B, n_ctx, context_dim] */
  struct tensor *y_in;       /* [B, adm] */
  struct tensor *t_freq;     /* [B, 256] */
  struct tensor *emb_h;      /* [B, D] embedder hidden */
  struct tensor *t_emb;      /* [B, D] */
  struct tensor *c_silu;     /* [B, D] SiLU(t_emb + y_emb) */
  struct tensor *x;          /* [B, N, D] image stream */
  struct tensor *ctx;        /* [B, n_ctx, D] context stream */
  struct tensor *mod_x[MMDIT_MAX_CHUNKS + 1]; /* [B, k·D] x_block adaLN output, by k */
  struct tensor *mod_c[MMDIT_MAX_CHUNKS + 1]; /* [B, k·D] context_block adaLN output */
  struct tensor *mod_f;      /* [B, 2·D] final layer shift, scale */
  struct tensor *xn;         /* [B, N, D] modulated x (GEMM input) */
  struct tensor *cn;         /* [B, n_ctx, D] */
  struct tensor *yx;         /* [B, N, D] fp32: proj / fc2 outputs added to x */
  struct tensor *yc;         /* [B, n_ctx, D] fp32: the same for ctx */
  struct tensor *qkv_x;      /* [B, N, 3D] */
  struct tensor *qkv_c;      /* [B, n_ctx, 3D] */
  struct tensor *qkv;        /* [B, n_ctx + N, 3D] joint, context first */
  struct tensor *att;        /* [B, n_ctx + N, D] */
  struct tensor *att_x;      /* [B, N, D] */
  struct tensor *att_c;      /* [B, n_ctx, D] */
  struct tensor *att2;       /* [B, N, D] MMDiT-X self-attention (only with attn2) */
  struct tensor *mlp_hx;     /* [B, N, 4D] */
  struct tensor *mlp_hc;     /* [B, n_ctx, 4D] */
  struct tensor *final_out;  /* [B, N, p·p·C] */
  /* Host copies of the context and pooled vector last uploaded into ctx_in / y_in: they are
   * the same at every step of an image, so a step whose inputs match uploads nothing (the
   * device keeps them), NULL until the first upload after (re)allocation. */
  float         *ctx_kept, *y_kept;
};

struct mmdit
{
  struct backend          *be;
  struct mmdit_config      cfg;
  struct
  {
    struct tensor *w;  /* proj.weight [D, C, p, p], used as [D, C·p·p] */
    struct tensor *b;
  } x_embedder;
  struct tensor           *pos_embed;  /* [1, M², D] */
  struct
  {
    struct linear mlp_0, mlp_2;
  } t_embedder, y_embedder;
  struct linear            context_embedder;
  struct mmdit_joint_block *blocks;    /* [depth] */
  struct
  {
    struct linear adaln;   /* adaLN_modulation.1 [2D, D]: shift, scale */
    struct linear linear;  /* [p·p·C, D] */
  } final_layer;

  struct mmdit_scratch scratch;
  mmdit_debug_fn       debug;
  void                *debug_user;
  void                *host_pool;  /* random weights (mmdit_new_random) alias this */
};

/* mmdit_block.c */
enum sd35_status mmdit_scratch_ensure (struct mmdit *m, int64_t B, int64_t H, int64_t W,
                                       int64_t n_ctx, struct sd35_error *err);
void mmdit_scratch_free (struct mmdit *m);
/* One JointBlock in place on scratch.x / scratch.ctx (scratch.c_silu holds SiLU(c)). */
void mmdit_joint_block (struct mmdit *m, const struct mmdit_joint_block *blk, int64_t B,
                        int64_t N, int64_t n_ctx);

/* mmdit.c */
void mmdit_debug_tensor (struct mmdit *m, const char *name, const struct tensor *t, int ndim,
                         int64_t d0, int64_t d1, int64_t d2);
void mmdit_log_config (const struct mmdit_config *cfg);

#endif
