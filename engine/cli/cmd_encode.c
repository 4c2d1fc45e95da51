/* cmd_encode.c — `sd35 encode`: the SD3 conditioning of one prompt (sd3_infer.py get_cond)
 * written as safetensors, for checking the tokenizers and text encoders against PyTorch:
 *   ids_clip_l, ids_clip_g [1,77], ids_t5 [1,T] (I64);
 *   clip_l_hidden [1,77,wl], clip_l_pooled [1,wl], clip_g_hidden [1,77,wg], clip_g_pooled [1,wg],
 *   t5_hidden [1,T,d] (not with --no-t5), context [1,77+T,d], pooled [1,wl+wg] (F32).
 * The MMDiT file is only read for its context width (context_embedder input) when T5 is off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "discover.h"
#include "safetensors.h"
#include "text_encoders.h"
#include "tokenizer.h"

struct encode_state
{
  struct sd35_model_files files;
  struct backend         *be;
  struct clip_tokenizer  *clip_tok;
  struct t5_tokenizer    *t5_tok;
  struct st_file         *f_l, *f_g, *f_t5;
  struct clip_model      *clip_l, *clip_g;
  struct t5_model        *t5;
  struct sd35_tokens      tokens;
  struct sd35_cond        cond;
  struct sd35_error       err;
};

static void
encode_state_clear (struct encode_state *s)
{
  sd35_cond_clear (&s->cond);
  sd35_tokens_clear (&s->tokens);
  clip_free (s->clip_l);
  clip_free (s->clip_g);
  t5_free (s->t5);
  st_close (s->f_l);
  st_close (s->f_g);
  st_close (s->f_t5);
  clip_tokenizer_free (s->clip_tok);
  t5_tokenizer_free (s->t5_tok);
  if (s->be != NULL)
    backend_free (s->be);
  model_files_clear (&s->files);
}

static enum sd35_status
open_st (const char *path, const char *what, struct st_file **out, struct sd35_error *err)
{
  if (st_open (path, out, err) != SD35_OK)
    sd35_error_prefix (err, "opening the %s", what);
  return err->status;
}

/* context_embedder input width of the MMDiT (the T5 width it was trained with) */
static int
mmdit_context_dim (const char *path, struct sd35_error *err)
{
  static const char *const keys[] = { "model.diffusion_model.context_embedder.weight",
                                      "context_embedder.weight" };
  struct st_file *f = NULL;
  int             dim = 0;

  if (open_st (path, "MMDiT", &f, err) != SD35_OK)
    return 0;
  for (int i = 0; i < 2 && dim == 0; i++)
    {
      const struct st_tensor *t = st_find (f, keys[i]);
      if (t != NULL && t->ndim == 2)
        dim = (int) t->shape[1];
    }
  if (dim == 0)
    sd35_set_error (err, SD35_ERR_MISSING, "%s has no context_embedder.weight: cannot tell the "
                    "context width without T5", path);
  st_close (f);
  return dim;
}

static enum sd35_status
encode_load (struct encode_state *s, const struct cli_model_opts *m,
             const struct sd35_engine_options *eo)
{
  struct model_find_options fo = { m->model, m->text_encoders, m->tokenizers, !m->no_t5 };
  const struct sd35_model_files *f = &s->files;
  struct sd35_error *err = &s->err;
  int                heads_l, heads_g;

  if (model_find (&fo, &s->files, err) != SD35_OK)
    return err->status;
  if (clip_tokenizer_load (f->clip_vocab, f->clip_merges, &s->clip_tok, err) != SD35_OK)
    return err->status;
  if (!m->no_t5 &&
      t5_tokenizer_load (f->t5_spiece, f->t5_tokenizer_json, &s->t5_tok, err) != SD35_OK)
    return err->status;
  if (backend_new (eo->backend, eo->n_threads, &s->be, err) != SD35_OK)
    return err->status;
  heads_l = model_config_heads (f->clip_l_config, err);
  heads_g = heads_l < 0 ? -1 : model_config_heads (f->clip_g_config, err);
  if (heads_l < 0 || heads_g < 0)
    return err->status;
  if (open_st (f->clip_l, "CLIP-L text encoder", &s->f_l, err) != SD35_OK ||
      clip_load (s->be, s->f_l, CLIP_KIND_L, heads_l, &s->clip_l, err) != SD35_OK)
    return err->status;
  if (open_st (f->clip_g, "CLIP-G text encoder", &s->f_g, err) != SD35_OK ||
      clip_load (s->be, s->f_g, CLIP_KIND_G, heads_g, &s->clip_g, err) != SD35_OK)
    return err->status;
  if (!m->no_t5 && (open_st (f->t5, "T5-XXL text encoder", &s->f_t5, err) != SD35_OK ||
                    t5_load (s->be, s->f_t5, &s->t5, err) != SD35_OK
                    || t5_check_config (s->t5, f->t5_config, err) != SD35_OK))
    return err->status;
  return SD35_OK;
}

static int
encode_write (struct encode_state *s, const char *out)
{
  const struct sd35_cond *c = &s->cond;
  struct st_writer       *w = st_writer_new ();
  int64_t                 ids_l[SD35_CLIP_TOKENS], ids_g[SD35_CLIP_TOKENS], *ids_t5 = NULL;
  int                     bad = w == NULL;

  for (int i = 0; i < SD35_CLIP_TOKENS; i++)
    {
      ids_l[i] = s->tokens.clip_l[i];
      ids_g[i] = s->tokens.clip_g[i];
    }
  if (!bad)
    {
      bad |= st_writer_add (w, "ids_clip_l", SD35_I64, 2, (int64_t[]) { 1, 77 }, ids_l);
      bad |= st_writer_add (w, "ids_clip_g", SD35_I64, 2, (int64_t[]) { 1, 77 }, ids_g);
      if (s->tokens.t5 != NULL)
        {
          ids_t5 = malloc ((size_t) s->tokens.n_t5 * sizeof (int64_t));
          bad |= ids_t5 == NULL;
          for (int i = 0; ids_t5 != NULL && i < s->tokens.n_t5; i++)
            ids_t5[i] = s->tokens.t5[i];
          if (ids_t5 != NULL)
            bad |= st_writer_add (w, "ids_t5", SD35_I64, 2,
                                  (int64_t[]) { 1, s->tokens.n_t5 }, ids_t5);
        }
      bad |= st_writer_add_f32 (w, "clip_l_hidden", 3, (int64_t[]) { 1, 77, c->clip_l_dim },
                                c->clip_l_hidden);
      bad |= st_writer_add_f32 (w, "clip_l_pooled", 2, (int64_t[]) { 1, c->clip_l_dim },
                                c->clip_l_pooled);
      bad |= st_writer_add_f32 (w, "clip_g_hidden", 3, (int64_t[]) { 1, 77, c->clip_g_dim },
                                c->clip_g_hidden);
      bad |= st_writer_add_f32 (w, "clip_g_pooled", 2, (int64_t[]) { 1, c->clip_g_dim },
                                c->clip_g_pooled);
      if (c->t5_hidden != NULL)
        bad |= st_writer_add_f32 (w, "t5_hidden", 3, (int64_t[]) { 1, c->n_t5, c->ctx_dim },
                                  c->t5_hidden);
      bad |= st_writer_add_f32 (w, "context", 3, (int64_t[]) { 1, c->n_ctx, c->ctx_dim },
                                c->context);
      bad |= st_writer_add_f32 (w, "pooled", 2, (int64_t[]) { 1, c->pooled_dim }, c->pooled);
    }
  free (ids_t5);
  return cli_save ("encode", w, bad, out);
}

int
cmd_encode (int argc, char **argv)
{
  const char                *cmd = "encode";
  const char                *prompt = NULL, *out = NULL, *weights_name = NULL;
  enum sd35_prompt_weights   weights;
  struct cli_model_opts      m = { 0 };
  struct sd35_engine_options eo;
  struct encode_state        s = { 0 };
  int                        ctx_dim = 0, status;
  const struct cli_opt       opts[] = {
    CLI_MODEL_OPTS (m),
    { "prompt", CLI_STR, &prompt, "the prompt (\"\" gives the negative/empty conditioning)", NULL },
    { "out", CLI_STR, &out, "output .safetensors (ids, per-encoder outputs, context, pooled)", NULL },
    { "prompt-weights", CLI_STR, &weights_name, CLI_PROMPT_WEIGHTS_HELP, NULL },
  };
  int r = cli_parse (argc, argv, cmd, "Tokenise and encode one prompt with CLIP-L, CLIP-G and "
                     "T5; write the SD3 context and pooled vector.", opts,
                     (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if (prompt == NULL || out == NULL)
    {
      cli_fail (cmd, "--prompt and --out are required (see --help)");
      return 2;
    }
  if (cli_engine_options (cmd, &m, &eo) != 0 ||
      cli_prompt_weights (cmd, weights_name, &weights) != 0)
    return 2;
  if (weights == SD35_PROMPT_WEIGHTS_COMFY)
    {
      struct sd35_error err = { 0 };
      if (prompt_check_weights (prompt, "prompt", &err) != SD35_OK)
        return cli_fail_err (cmd, &err), 2;
    }
  sd35_log_set_verbose (m.verbose);

  if (encode_load (&s, &m, &eo) != SD35_OK)
    {
      status = cli_fail_err (cmd, &s.err);
      goto done;
    }
  if (m.no_t5 && (ctx_dim = mmdit_context_dim (s.files.mmdit, &s.err)) <= 0)
    {
      status = cli_fail_err (cmd, &s.err);
      goto done;
    }
  if (sd3_tokenize (s.clip_tok, s.t5_tok, prompt, &s.tokens, &s.err) == SD35_OK &&
      weights == SD35_PROMPT_WEIGHTS_IGNORE)
    sd35_tokens_drop_weights (&s.tokens);
  if (s.err.status != SD35_OK ||
      sd3_condition (s.clip_l, s.clip_g, s.t5, &s.tokens, ctx_dim, &s.cond, &s.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &s.err);
      goto done;
    }
  status = encode_write (&s, out);
done:
  encode_state_clear (&s);
  return status;
}
