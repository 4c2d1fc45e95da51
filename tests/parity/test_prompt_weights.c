/* test_prompt_weights.c — `(word:1.3)` applied as ComfyUI does for SD3
 * (SD35_PROMPT_WEIGHTS_COMFY), on the golden tiny text encoders and the real tokenizers:
 *   - sd3_condition of weighted tokens equals the formula z_empty + w·(z − z_empty) applied by
 *     this test to the engine's own unweighted encodings (the same tokens with the weights
 *     dropped) and to the engine's encodings of the empty prompt, row by row, bit for bit;
 *     rows of weight 1 and the pooled vectors stay those of the unweighted prompt;
 *   - the empty-prompt ids the formula uses are exactly sd3_tokenize("")'s;
 *   - non-finite weights are refused (tokens, prompt_check_weights, sd35_generate, CLI);
 *   - through the public API: `ignore` on a weighted prompt gives the image of the same prompt
 *     without weights bit for bit (so every reference golden, run with `ignore`, is
 *     unaffected), `comfy` changes it. */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "error.h"
#include "ops.h"
#include "sd35.h"
#include "testutil.h"
#include "text_encoders.h"
#include "tokenizer.h"

#define CLIP_BOS 49406
#define CLIP_EOS 49407

static struct clip_tokenizer *clip_tok;
static struct t5_tokenizer   *t5_tok;
static struct clip_model     *clip_l, *clip_g;
static struct t5_model       *t5;

/* The formula, written out here independently of cond.c: rows j with weight w != 1 become
 * (z − e)·w + e in fp32 (torch: fp32 tensor × Python float). */
static void
formula (float *z, const float *e, const double *w, int rows, int dim)
{
  for (int j = 0; j < rows; j++)
    if (w[j] != 1.0)
      for (int c = 0; c < dim; c++)
        {
          size_t i = (size_t) j * dim + c;
          float  d = z[i] - e[i];
          float  s = d * (float) w[j];
          z[i] = s + e[i];
        }
}

static float *
dup_f32 (const float *v, size_t n)
{
  float *c = malloc (n * sizeof *c);
  memcpy (c, v, n * sizeof *c);
  return c;
}

/* max |a − b| over the rows of weight w (want_weighted) or of weight 1 */
static double
row_diff (const float *a, const float *b, const double *w, int rows, int dim, int want_weighted)
{
  double m = 0;
  for (int j = 0; j < rows; j++)
    if ((w[j] != 1.0) == want_weighted)
      for (int c = 0; c < dim; c++)
        m = fmax (m, fabs ((double) a[(size_t) j * dim + c] - b[(size_t) j * dim + c]));
  return m;
}

static void
check_prompt (const char *prompt, int expect_t5_weighted)
{
  struct sd35_tokens tk, tu;
  struct sd35_cond   cw = { 0 }, cu = { 0 };
  struct sd35_error  err = { 0 };
  int32_t            ids_l[SD35_CLIP_TOKENS], ids_g[SD35_CLIP_TOKENS], *ids_t;
  float             *el, *eg, *et, *pool, *want;
  char               what[160];
  int                wl, wg, D, T;

  printf ("prompt \"%.60s\"\n", prompt);
  if (!test_check (sd3_tokenize (clip_tok, t5_tok, prompt, &tk, &err) == SD35_OK,
                   "tokenize: %s", err.message))
    return;
  test_check (tk.clip_weighted && tk.t5_weighted == expect_t5_weighted,
              "tokens carry weights (clip %d, t5 %d; expected 1, %d)", tk.clip_weighted,
              tk.t5_weighted, expect_t5_weighted);
  tu = tk;  /* same ids, weights dropped (the struct copy shares t5/t5_weight) */
  sd35_tokens_drop_weights (&tu);
  if (!test_check (sd3_condition (clip_l, clip_g, t5, &tk, 0, &cw, &err) == SD35_OK,
                   "weighted sd3_condition: %s", err.message) ||
      !test_check (sd3_condition (clip_l, clip_g, t5, &tu, 0, &cu, &err) == SD35_OK,
                   "unweighted sd3_condition: %s", err.message))
    goto done;
  wl = cu.clip_l_dim, wg = cu.clip_g_dim, D = cu.ctx_dim, T = cu.n_t5;

  /* the engine's encodings of the empty prompt of the same lengths */
  ids_l[0] = ids_g[0] = CLIP_BOS;
  ids_l[1] = ids_g[1] = CLIP_EOS;
  for (int k = 2; k < SD35_CLIP_TOKENS; k++)
    ids_l[k] = CLIP_EOS, ids_g[k] = 0;
  ids_t = calloc ((size_t) T, sizeof *ids_t);
  ids_t[0] = 1;
  el = malloc ((size_t) 77 * wl * sizeof (float));
  eg = malloc ((size_t) 77 * wg * sizeof (float));
  et = malloc ((size_t) T * D * sizeof (float));
  pool = malloc ((size_t) (wl > wg ? wl : wg) * sizeof (float));
  test_check (clip_encode (clip_l, ids_l, el, pool, &err) == SD35_OK &&
              clip_encode (clip_g, ids_g, eg, pool, &err) == SD35_OK &&
              t5_encode (t5, ids_t, T, et, &err) == SD35_OK, "empty encodings: %s",
              err.message);

  want = dup_f32 (cu.clip_l_hidden, (size_t) 77 * wl);
  formula (want, el, tk.clip_weight, 77, wl);
  test_close ("CLIP-L hidden = formula (exact)", cw.clip_l_hidden, want, (size_t) 77 * wl, 0.0);
  test_check (row_diff (cw.clip_l_hidden, cu.clip_l_hidden, tk.clip_weight, 77, wl, 1) > 0 &&
              row_diff (cw.clip_l_hidden, cu.clip_l_hidden, tk.clip_weight, 77, wl, 0) == 0,
              "CLIP-L: weighted rows changed, rows of weight 1 identical");
  free (want);
  want = dup_f32 (cu.clip_g_hidden, (size_t) 77 * wg);
  formula (want, eg, tk.clip_weight, 77, wg);
  test_close ("CLIP-G hidden = formula (exact)", cw.clip_g_hidden, want, (size_t) 77 * wg, 0.0);
  free (want);
  want = dup_f32 (cu.t5_hidden, (size_t) T * D);
  if (tk.t5_weighted)
    formula (want, et, tk.t5_weight, T, D);
  snprintf (what, sizeof what, "T5 hidden (%d tokens) = formula (exact)", T);
  test_close (what, cw.t5_hidden, want, (size_t) T * D, 0.0);
  if (tk.t5_weighted)
    test_check (row_diff (cw.t5_hidden, cu.t5_hidden, tk.t5_weight, T, D, 1) > 0,
                "T5: weighted rows changed");
  free (want);

  /* the context is assembled from the weighted outputs; pooled is the prompt's, unweighted */
  want = calloc ((size_t) cw.n_ctx * D, sizeof (float));
  for (int r = 0; r < 77; r++)
    {
      memcpy (want + (size_t) r * D, cw.clip_l_hidden + (size_t) r * wl, wl * sizeof (float));
      memcpy (want + (size_t) r * D + wl, cw.clip_g_hidden + (size_t) r * wg,
              wg * sizeof (float));
    }
  memcpy (want + (size_t) 77 * D, cw.t5_hidden, (size_t) T * D * sizeof (float));
  test_close ("context = [weighted L | weighted G | 0; weighted T5]", cw.context, want,
              (size_t) cw.n_ctx * D, 0.0);
  free (want);
  test_close ("pooled = the unweighted prompt's", cw.pooled, cu.pooled, (size_t) cw.pooled_dim,
              0.0);

  free (ids_t), free (el), free (eg), free (et), free (pool);
done:
  sd35_cond_clear (&cw);
  sd35_cond_clear (&cu);
  sd35_tokens_clear (&tk);
}

/* The empty-token lists of the formula are the engine's own tokens of "" */
static void
check_empty_tokens (void)
{
  struct sd35_tokens te;
  struct sd35_error  err = { 0 };
  int                ok;

  if (!test_check (sd3_tokenize (clip_tok, t5_tok, "", &te, &err) == SD35_OK, "tokenize \"\""))
    return;
  ok = te.clip_l[0] == CLIP_BOS && te.clip_l[1] == CLIP_EOS && te.clip_g[0] == CLIP_BOS &&
       te.clip_g[1] == CLIP_EOS && te.n_t5 == 77 && te.t5[0] == 1 && !te.clip_weighted &&
       !te.t5_weighted;
  for (int k = 2; k < 77; k++)
    ok &= te.clip_l[k] == CLIP_EOS && te.clip_g[k] == 0 && te.t5[k] == 0;
  test_check (ok, "the empty prompt's tokens are [BOS, EOS, EOS…] / [BOS, EOS, 0…] / [1, 0…]");
  sd35_tokens_clear (&te);
}

static void
check_unweighted (void)
{
  static const char *const prompts[] = { "a photo of a cat", "a (cat:1.0) and (dog:1)",
                                         "escaped \\(not a weight\\)", "[not a weight]" };
  for (size_t i = 0; i < sizeof prompts / sizeof prompts[0]; i++)
    {
      struct sd35_tokens tk;
      struct sd35_error  err = { 0 };
      if (test_check (sd3_tokenize (clip_tok, t5_tok, prompts[i], &tk, &err) == SD35_OK,
                      "tokenize"))
        test_check (!tk.clip_weighted && !tk.t5_weighted, "\"%s\": no weights (as ComfyUI's "
                    "has_weights)", prompts[i]);
      sd35_tokens_clear (&tk);
    }
}

static void
check_non_finite (void)
{
  static const char *const bad[] = { "a (cat:nan)", "a (cat:inf) dog", "((x:-inf))",
                                     "a (cat:1e39)" };
  struct sd35_error err = { 0 };

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      struct sd35_tokens tk;
      struct sd35_cond   c = { 0 };
      sd35_error_clear (&err);
      test_check (prompt_check_weights (bad[i], "prompt", &err) == SD35_ERR_ARG &&
                  strstr (err.message, "must be a finite number") != NULL,
                  "prompt_check_weights refuses \"%s\": %s", bad[i], err.message);
      sd35_error_clear (&err);
      if (sd3_tokenize (clip_tok, t5_tok, bad[i], &tk, &err) != SD35_OK)
        continue;
      test_check (sd3_condition (clip_l, clip_g, t5, &tk, 0, &c, &err) == SD35_ERR_ARG,
                  "sd3_condition refuses \"%s\": %s", bad[i], err.message);
      sd35_cond_clear (&c);
      sd35_error_clear (&err);
      sd35_tokens_drop_weights (&tk);  /* ignore: the reference's behaviour, accepted */
      test_check (sd3_condition (clip_l, clip_g, t5, &tk, 0, &c, &err) == SD35_OK,
                  "ignored weights of \"%s\" encode: %s", bad[i], err.message);
      sd35_cond_clear (&c);
      sd35_tokens_clear (&tk);
    }
  sd35_error_clear (&err);
  test_check (prompt_check_weights ("a (cat:3e38) (dog:-2)", "prompt", &err) == SD35_OK,
              "finite weights (3e38, -2) pass: %s", err.message);
}

/* The public API and the CLI */
static void
check_generate (const char *shared)
{
  struct sd35_engine_options o;
  struct sd35_params         p;
  struct sd35_result         plain, ign, com;
  struct sd35_error          err = { 0 };
  sd35_engine               *e = NULL;
  char                       model[1024], encoders[1024], tokenizers[1024];
  size_t                     n;

  snprintf (model, sizeof model, "%s/golden/models/sd3.5_tiny_large.safetensors", shared);
  snprintf (encoders, sizeof encoders, "%s/golden/models", shared);
  snprintf (tokenizers, sizeof tokenizers, "%s/tokenizers", shared);
  sd35_engine_options_init (&o);
  o.backend = SD35_BACKEND_CPU;
  o.model_path = model;
  o.text_encoders_dir = encoders;
  o.tokenizers_dir = tokenizers;
  if (!test_check (sd35_engine_open (&o, &e, &err) == SD35_OK, "open %s: %s", model,
                   err.message))
    return;
  memset (&plain, 0, sizeof plain), memset (&ign, 0, sizeof ign), memset (&com, 0, sizeof com);
  sd35_params_init (&p);
  test_check (p.prompt_weights == SD35_PROMPT_WEIGHTS_COMFY, "comfy is the default");
  p.width = 64, p.height = 48, p.steps = 2, p.cfg = 4.5, p.seed = 7;
  p.prompt = "a photo of a cat";
  p.negative_prompt = "blurry";
  if (sd35_generate (e, &p, NULL, &plain, &err) == SD35_OK)
    {
      p.prompt = "a (photo:1.6) of a (cat:0.4)";
      p.negative_prompt = "(blurry:2)";
      p.prompt_weights = SD35_PROMPT_WEIGHTS_IGNORE;
      test_check (sd35_generate (e, &p, NULL, &ign, &err) == SD35_OK, "ignore: %s", err.message);
      p.prompt_weights = SD35_PROMPT_WEIGHTS_COMFY;
      test_check (sd35_generate (e, &p, NULL, &com, &err) == SD35_OK, "comfy: %s", err.message);
    }
  else
    test_check (0, "generate: %s", err.message);
  n = (size_t) 16 * 6 * 8;
  if (plain.rgb && ign.rgb && com.rgb)
    {
      test_check (memcmp (plain.rgb, ign.rgb, (size_t) 64 * 48 * 3) == 0 &&
                  memcmp (plain.final_latent, ign.final_latent, n * sizeof (float)) == 0,
                  "ignore: the weighted prompt gives the unweighted prompt's image bit for bit");
      test_check (memcmp (plain.final_latent, com.final_latent, n * sizeof (float)) != 0,
                  "comfy: the weights change the result");
    }
  sd35_result_clear (&plain), sd35_result_clear (&ign), sd35_result_clear (&com);

  p.prompt = "a (cat:nan)";
  sd35_error_clear (&err);
  test_check (sd35_generate (e, &p, NULL, &com, &err) == SD35_ERR_ARG &&
              strstr (err.message, "\"cat\"") && strstr (err.message, "nan"),
              "comfy refuses (cat:nan): %s", err.message);
  sd35_result_clear (&com);
  p.prompt_weights = SD35_PROMPT_WEIGHTS_IGNORE;
  sd35_error_clear (&err);
  test_check (sd35_generate (e, &p, NULL, &com, &err) == SD35_OK, "ignore accepts (cat:nan) "
              "as the reference does: %s", err.message);
  sd35_result_clear (&com);
  sd35_engine_free (e);

  /* CLI: exit 2 before the model loads; ignore accepted */
  {
    const char *cli = getenv ("SD35_CLI");
    char        out[1024];
    if (cli == NULL)
      return;
    snprintf (out, sizeof out, "%s/test_prompt_weights_cli.safetensors",
              getenv ("SD35_BUILD_DIR") ? getenv ("SD35_BUILD_DIR") : ".");
    char *argv[] = { (char *) cli, "encode", "--backend", "cpu", "--model", model,
                     "--text-encoders", encoders, "--tokenizers", tokenizers, "--prompt",
                     "a (cat:inf)", "--out", out, NULL, NULL, NULL };
    test_check (test_run_argv (argv) == 2, "sd35 encode refuses (cat:inf) with exit 2");
    argv[14] = "--prompt-weights", argv[15] = "ignore";
    test_check (test_run_argv (argv) == 0, "sd35 encode --prompt-weights ignore accepts it");
    argv[15] = "bogus";
    test_check (test_run_argv (argv) == 2, "--prompt-weights bogus: exit 2");
    remove (out);
  }
}

static int
config_heads (const char *rel)
{
  char *path = test_shared_path_or_skip (rel);
  int   heads = model_config_heads (path, NULL);
  free (path);
  return heads;
}

int
main (void)
{
  char             *vocab = test_shared_path_or_skip ("tokenizers/clip/vocab.json");
  char             *merges = test_shared_path_or_skip ("tokenizers/clip/merges.txt");
  char             *spiece = test_shared_path_or_skip ("tokenizers/t5/spiece.model");
  struct st_file   *fl = test_open_golden ("golden/models/clip_l.safetensors");
  struct st_file   *fg = test_open_golden ("golden/models/clip_g.safetensors");
  struct st_file   *ft = test_open_golden ("golden/models/t5xxl.safetensors");
  int               hl = config_heads ("golden/models/text_encoder/config.json");
  int               hg = config_heads ("golden/models/text_encoder_2/config.json");
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  GString          *longp = g_string_new ("(");

  if (clip_tokenizer_load (vocab, merges, &clip_tok, &err) != SD35_OK ||
      t5_tokenizer_load (spiece, NULL, &t5_tok, &err) != SD35_OK ||
      backend_cpu_new (0, &be, &err) != SD35_OK ||
      clip_load (be, fl, CLIP_KIND_L, hl, &clip_l, &err) != SD35_OK ||
      clip_load (be, fg, CLIP_KIND_G, hg, &clip_g, &err) != SD35_OK ||
      t5_load (be, ft, &t5, &err) != SD35_OK)
    {
      printf ("FAIL loading tokenizers / text encoders: %s\n", err.message);
      return 1;
    }
  check_empty_tokens ();
  check_prompt ("a (photo:1.3) of a (cat:0.5)", 1);
  check_prompt ("(masterpiece:1.2), best quality, (red:0.8) hat, ((very detailed)), [plain]", 1);
  check_prompt ("a (dog:-0.7) and (a cat:0) and (bird:1.0)", 1);
  /* > 77 CLIP tokens (chunk 0 cut inside the weighted group) and > 77 T5 tokens */
  for (int i = 0; i < 40; i++)
    g_string_append_printf (longp, "w%d ", i);
  g_string_append (longp, ":1.4) tail words");
  check_prompt (longp->str, 1);
  check_unweighted ();
  check_non_finite ();
  clip_free (clip_l), clip_free (clip_g), t5_free (t5);
  backend_free (be);
  st_close (fl), st_close (fg), st_close (ft);
  clip_tokenizer_free (clip_tok);
  t5_tokenizer_free (t5_tok);
  free (vocab), free (merges), free (spiece);
  g_string_free (longp, TRUE);
  check_generate (test_shared_dir ());
  return test_exit ();
}
