/* test_text_encoders.c — CLIP-L, CLIP-G, T5 and the SD3 conditioning against the reference's
 * fp32 outputs (golden/text_*.safetensors, made by sd3.5 other_impls.py + get_cond on the tiny
 * golden models).  The golden ids are fed directly, so this does not depend on the
 * tokenizers; the CLI path (`sd35 encode`, tokenizers included) is checked at the end when the
 * binary can find the golden models.  Tolerance: max|Δ| ≤ 1e-4·max|ref|. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "discover.h"
#include "ops.h"
#include "text_encoders.h"
#include "testutil.h"

#define TOL 1e-4

static const char *const goldens[] = { "text_cat", "text_empty", "text_long",
                                       "text_many_t5_tokens" };

/* num_attention_heads of an HF config.json under shared/ (sd35-facts.md §10), read the way
 * the engine reads it */
static int
config_heads (const char *rel)
{
  char *path = test_shared_path_or_skip (rel);
  int   heads = model_config_heads (path, NULL);

  test_check (heads > 0, "num_attention_heads = %d in %s", heads, rel);
  free (path);
  return heads;
}

static struct st_file *
open_model (const char *rel)
{
  return test_open_golden (rel);
}

/* int64 golden ids → int32; returns the count */
static int
golden_ids (struct st_file *g, const char *name, int32_t **out)
{
  const struct st_tensor *t = st_find (g, name);
  struct sd35_error       err = { 0 };
  int64_t                *v;

  if (t == NULL || (v = st_read_i64 (t, &err)) == NULL)
    {
      printf ("FAIL: golden %s: no ids '%s' %s\n", st_path (g), name, err.message);
      exit (1);
    }
  *out = malloc (t->numel * sizeof (int32_t));
  for (size_t i = 0; i < t->numel; i++)
    (*out)[i] = (int32_t) v[i];
  free (v);
  return (int) t->numel;
}

static void
compare (struct st_file *g, const char *golden, const char *name, const float *got, size_t n)
{
  size_t n_ref;
  float *ref = test_golden_f32 (g, name, &n_ref);
  char   what[128];

  snprintf (what, sizeof what, "%s %s", golden, name);
  if (test_check (n == n_ref, "%s: %zu values, golden has %zu", what, n, n_ref))
    test_close (what, got, ref, n, TOL);
  free (ref);
}

static void
check_golden (struct clip_model *cl, struct clip_model *cg, struct t5_model *t5,
              const char *name)
{
  char               rel[128];
  struct st_file    *g;
  struct sd35_tokens tok = { 0 };
  struct sd35_cond   c = { 0 }, c0 = { 0 };
  struct sd35_error  err = { 0 };
  int32_t           *ids_l, *ids_g;

  snprintf (rel, sizeof rel, "golden/%s.safetensors", name);
  g = test_open_golden (rel);
  golden_ids (g, "ids_clip_l", &ids_l);
  golden_ids (g, "ids_clip_g", &ids_g);
  memcpy (tok.clip_l, ids_l, sizeof tok.clip_l);
  memcpy (tok.clip_g, ids_g, sizeof tok.clip_g);
  tok.n_t5 = golden_ids (g, "ids_t5", &tok.t5);

  if (!test_check (sd3_condition (cl, cg, t5, &tok, 0, &c, &err) == SD35_OK,
                   "%s: sd3_condition: %s", name, err.message))
    goto done;
  compare (g, name, "clip_l_hidden", c.clip_l_hidden, (size_t) 77 * c.clip_l_dim);
  compare (g, name, "clip_l_pooled", c.clip_l_pooled, (size_t) c.clip_l_dim);
  compare (g, name, "clip_g_hidden", c.clip_g_hidden, (size_t) 77 * c.clip_g_dim);
  compare (g, name, "clip_g_pooled", c.clip_g_pooled, (size_t) c.clip_g_dim);
  compare (g, name, "t5_hidden", c.t5_hidden, (size_t) c.n_t5 * c.ctx_dim);
  compare (g, name, "context", c.context, (size_t) c.n_ctx * c.ctx_dim);
  compare (g, name, "pooled", c.pooled, (size_t) c.pooled_dim);

  /* --no-t5: the same CLIP rows, then 77 rows of zeros (sd35-facts.md §9) */
  if (test_check (sd3_condition (cl, cg, NULL, &tok, c.ctx_dim, &c0, &err) == SD35_OK,
                  "%s: sd3_condition without T5: %s", name, err.message))
    {
      size_t clip_part = (size_t) 77 * c.ctx_dim;
      float *zeros = calloc (clip_part, sizeof (float));
      char   what[128];
      test_check (c0.n_ctx == 154 && c0.ctx_dim == c.ctx_dim && c0.t5_hidden == NULL,
                  "%s without T5: context %d×%d (expected 154×%d)", name, c0.n_ctx, c0.ctx_dim,
                  c.ctx_dim);
      snprintf (what, sizeof what, "%s no-t5 context[0:77]", name);
      test_close (what, c0.context, c.context, clip_part, 0.0);
      snprintf (what, sizeof what, "%s no-t5 context[77:154] = 0", name);
      test_close (what, c0.context + clip_part, zeros, clip_part, 0.0);
      free (zeros);
    }
done:
  sd35_cond_clear (&c);
  sd35_cond_clear (&c0);
  free (ids_l);
  free (ids_g);
  free (tok.t5);
  st_close (g);
}

static void
test_bad_ids (struct clip_model *cl, struct t5_model *t5)
{
  int32_t           ids[77] = { 0 };
  float            *h = calloc ((size_t) 77 * clip_width (cl), sizeof (float));
  float            *p = calloc ((size_t) clip_width (cl), sizeof (float));
  float            *th = calloc ((size_t) 77 * t5_width (t5), sizeof (float));
  struct sd35_error err = { 0 };

  ids[5] = 49408;
  test_check (clip_encode (cl, ids, h, p, &err) == SD35_ERR_ARG, "CLIP rejects id 49408: %s",
              err.message);
  sd35_error_clear (&err);
  ids[5] = 40000;
  test_check (t5_encode (t5, ids, 77, th, &err) == SD35_ERR_ARG, "T5 rejects id 40000: %s",
              err.message);
  free (h), free (p), free (th);
}

/* `sd35 encode` end to end (tokenizers + discovery), compared with the text_cat golden */
static void
test_cli (void)
{
  const char     *cli = getenv ("SD35_CLI");
  const char     *shared = test_shared_dir ();
  char            cmd[4096], out[512];
  struct st_file *f = NULL, *g;
  struct sd35_error err = { 0 };
  int             rc;

  if (cli == NULL || shared == NULL)
    return;
  snprintf (out, sizeof out, "%s/test_text_encoders_cli.safetensors",
            getenv ("SD35_BUILD_DIR") ? getenv ("SD35_BUILD_DIR") : ".");
  snprintf (cmd, sizeof cmd, "'%s' encode --backend cpu --model '%s/golden/models/"
            "sd3.5_tiny_large.safetensors' --text-encoders '%s/golden/models' --tokenizers "
            "'%s/tokenizers' --prompt 'a photo of a cat' --out '%s'", cli, shared, shared,
            shared, out);
  rc = system (cmd);
  if (!test_check (rc == 0, "sd35 encode exited with %d: %s", rc, cmd))
    return;
  if (!test_check (st_open (out, &f, &err) == SD35_OK, "open %s: %s", out, err.message))
    return;
  g = test_open_golden ("golden/text_cat.safetensors");
  static const char *const ids[] = { "ids_clip_l", "ids_clip_g", "ids_t5" };
  for (int i = 0; i < 3; i++)
    {
      const struct st_tensor *a = st_find (f, ids[i]), *b = st_find (g, ids[i]);
      int64_t *va = a ? st_read_i64 (a, &err) : NULL, *vb = b ? st_read_i64 (b, &err) : NULL;
      test_check (va != NULL && vb != NULL && a->numel == b->numel &&
                  memcmp (va, vb, a->numel * sizeof (int64_t)) == 0, "cli %s equal", ids[i]);
      free (va), free (vb);
    }
  static const char *const names[] = { "clip_l_hidden", "clip_l_pooled", "clip_g_hidden",
                                        "clip_g_pooled", "t5_hidden", "context", "pooled" };
  for (int i = 0; i < 7; i++)
    {
      size_t n;
      const struct st_tensor *t = st_find (f, names[i]);
      if (!test_check (t != NULL, "cli output has %s", names[i]))
        continue;
      float *got = st_read_f32 (t, &err);
      float *ref = test_golden_f32 (g, names[i], &n);
      char   what[64];
      snprintf (what, sizeof what, "cli %s", names[i]);
      if (test_check (got != NULL && t->numel == n, "cli %s size", names[i]))
        test_close (what, got, ref, n, TOL);
      free (got), free (ref);
    }
  st_close (f);

  /* --no-t5: no t5_hidden, the CLIP rows unchanged, then 77 rows of zeros */
  snprintf (cmd, sizeof cmd, "'%s' encode --backend cpu --no-t5 --model '%s/golden/models/"
            "sd3.5_tiny_large.safetensors' --text-encoders '%s/golden/models' --tokenizers "
            "'%s/tokenizers' --prompt 'a photo of a cat' --out '%s'", cli, shared, shared,
            shared, out);
  rc = system (cmd);
  f = NULL;
  if (test_check (rc == 0, "sd35 encode --no-t5 exited with %d", rc) &&
      test_check (st_open (out, &f, &err) == SD35_OK, "open %s: %s", out, err.message))
    {
      const struct st_tensor *t = st_find (f, "context");
      size_t n;
      float *ref = test_golden_f32 (g, "context", &n);
      float *got = t != NULL ? st_read_f32 (t, &err) : NULL;
      test_check (st_find (f, "t5_hidden") == NULL && st_find (f, "ids_t5") == NULL,
                  "cli --no-t5 writes no T5 tensors");
      if (test_check (got != NULL && t->numel == n && t->ndim == 3 && t->shape[1] == 154,
                      "cli --no-t5 context is [1, 154, 128]"))
        {
          memset (ref + n / 2, 0, n / 2 * sizeof (float));  /* golden T5 rows → zeros */
          test_close ("cli --no-t5 context", got, ref, n, TOL);
        }
      free (ref), free (got);
      st_close (f);
    }
  st_close (g);
  remove (out);
}

int
main (void)
{
  struct backend    *be = NULL;
  struct st_file    *fl, *fg, *ft;
  struct clip_model *cl = NULL, *cg = NULL;
  struct t5_model   *t5 = NULL;
  struct sd35_error  err = { 0 };
  int                hl, hg;

  fl = open_model ("golden/models/clip_l.safetensors");
  fg = open_model ("golden/models/clip_g.safetensors");
  ft = open_model ("golden/models/t5xxl.safetensors");
  hl = config_heads ("golden/models/text_encoder/config.json");
  hg = config_heads ("golden/models/text_encoder_2/config.json");
  if (backend_cpu_new (0, &be, &err) != SD35_OK ||
      clip_load (be, fl, CLIP_KIND_L, hl, &cl, &err) != SD35_OK ||
      clip_load (be, fg, CLIP_KIND_G, hg, &cg, &err) != SD35_OK ||
      t5_load (be, ft, &t5, &err) != SD35_OK)
    {
      printf ("FAIL loading the golden text encoders: %s\n", err.message);
      return 1;
    }
  for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
    check_golden (cl, cg, t5, goldens[i]);
  test_bad_ids (cl, t5);
  clip_free (cl);
  clip_free (cg);
  t5_free (t5);
  backend_free (be);
  st_close (fl);
  st_close (fg);
  st_close (ft);
  test_cli ();
  return test_exit ();
}
