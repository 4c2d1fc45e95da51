/* mmdit_random.c — an MMDiT of any shape with random weights, for benchmarks (no file).
 * Every weight is a slice of one shared bf16 pool: the CPU backend aliases bf16 matrices, so
 * a depth-24 Medium fits in the memory of its largest matrix; the arithmetic is the same as
 * with real weights. */
#include "mmdit_internal.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

static void
rand_linear (struct weights_random *r, struct linear *l, int64_t n_out, int64_t n_in)
{
  l->w = weights_random_tensor (r, WEIGHT_MATRIX, 2, n_out, n_in, 0, 0);
  l->b = weights_random_tensor (r, WEIGHT_VECTOR, 1, n_out, 0, 0, 0);
}

static void
rand_attn (struct weights_random *r, struct mmdit_attn *a, int64_t D, int qk_norm, int pre_only)
{
  rand_linear (r, &a->qkv, 3 * D, D);
  if (qk_norm)
    {
      a->ln_q = weights_random_tensor (r, WEIGHT_VECTOR, 1, MMDIT_HEAD_DIM, 0, 0, 0);
      a->ln_k = weights_random_tensor (r, WEIGHT_VECTOR, 1, MMDIT_HEAD_DIM, 0, 0, 0);
    }
  if (!pre_only)
    rand_linear (r, &a->proj, D, D);
}

static void
rand_stream (struct weights_random *r, struct mmdit_stream *s, const struct mmdit_config *cfg,
             int pre_only, int has_attn2)
{
  int64_t D = cfg->hidden_size;

  s->pre_only = pre_only;
  s->has_attn2 = has_attn2;
  s->n_chunks = pre_only ? 2 : has_attn2 ? 9 : 6;
  rand_linear (r, &s->adaln, s->n_chunks * D, D);
  rand_attn (r, &s->attn, D, cfg->qk_norm, pre_only);
  if (has_attn2)
    rand_attn (r, &s->attn2, D, cfg->qk_norm, 0);
  if (!pre_only)
    {
      rand_linear (r, &s->fc1, 4 * D, D);
      rand_linear (r, &s->fc2, D, 4 * D);
    }
}

enum sd35_status
mmdit_new_random (struct backend *be, const struct mmdit_config *cfg, uint64_t seed,
                  struct mmdit **out, struct sd35_error *err)
{
  struct weights_random r = { be, NULL, 0 };
  struct mmdit     *m;
  const int64_t     D = cfg->hidden_size, C = cfg->in_channels, p = cfg->patch_size;
  const int64_t     M = cfg->pos_embed_max_size;
  size_t            n_pool;
  uint16_t         *pool;

  *out = NULL;
  if (cfg->depth < 1 || cfg->depth > (int) sizeof cfg->attn2 || D != (int64_t) 64 * cfg->depth
      || cfg->num_heads != cfg->depth || p < 1 || C < 1 || M < 1 || cfg->adm_in_channels < 1
      || cfg->context_dim < 1)
    return sd35_set_error (err, SD35_ERR_ARG, "mmdit_new_random: inconsistent config (depth "
                           "%d, hidden %d, heads %d)", cfg->depth, cfg->hidden_size,
                           cfg->num_heads);
  /* the largest weight: the 9-chunk adaLN, fc1/fc2, pos_embed or the input linears */
  n_pool = (size_t) (9 * D * D);
  if ((size_t) (M * M * D) > n_pool)
    n_pool = (size_t) (M * M * D);
  if ((size_t) (cfg->context_dim * D) > n_pool)
    n_pool = (size_t) (cfg->context_dim * D);
  if ((size_t) (cfg->adm_in_channels * D) > n_pool)
    n_pool = (size_t) (cfg->adm_in_channels * D);
  pool = sd35_malloc (n_pool * sizeof *pool, "random MMDiT weights", err);
  m = sd35_calloc (1, sizeof *m, "MMDiT", err);
  if (pool == NULL || m == NULL)
    {
      free (pool);
      free (m);
      return SD35_ERR_OOM;
    }
  weights_random_bf16 (pool, n_pool, seed);
  m->be = be;
  m->cfg = *cfg;
  m->host_pool = pool;
  r.pool = pool;
  m->blocks = sd35_calloc ((size_t) cfg->depth, sizeof *m->blocks, "MMDiT blocks", err);
  if (m->blocks == NULL)
    {
      mmdit_free (m);
      return SD35_ERR_OOM;
    }
  m->x_embedder.w = weights_random_tensor (&r, WEIGHT_MATRIX, 4, D, C, p, p);
  m->x_embedder.b = weights_random_tensor (&r, WEIGHT_VECTOR, 1, D, 0, 0, 0);
  m->pos_embed = weights_random_tensor (&r, WEIGHT_MATRIX, 3, 1, M * M, D, 0);
  rand_linear (&r, &m->t_embedder.mlp_0, D, MMDIT_FREQ_DIM);
  rand_linear (&r, &m->t_embedder.mlp_2, D, D);
  rand_linear (&r, &m->y_embedder.mlp_0, D, cfg->adm_in_channels);
  rand_linear (&r, &m->y_embedder.mlp_2, D, D);
  rand_linear (&r, &m->context_embedder, D, cfg->context_dim);
  for (int i = 0; i < cfg->depth; i++)
    {
      rand_stream (&r, &m->blocks[i].context_block, cfg, i == cfg->depth - 1, 0);
      rand_stream (&r, &m->blocks[i].x_block, cfg, 0, cfg->attn2[i]);
    }
  rand_linear (&r, &m->final_layer.adaln, 2 * D, D);
  rand_linear (&r, &m->final_layer.linear, p * p * C, D);
  if (r.failed)
    {
      enum sd35_status st = backend_check (be, err);
      mmdit_free (m);
      return st != SD35_OK ? st : sd35_set_error (err, SD35_ERR_OOM, "out of memory building "
                                                  "a random MMDiT");
    }
  mmdit_log_config (&m->cfg);
  *out = m;
  return SD35_OK;
}
