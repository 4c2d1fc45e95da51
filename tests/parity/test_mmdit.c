/* test_mmdit.c — the MMDiT forward against the reference (golden mmdit_forward_*: sd3_impls
 * BaseModel.apply_model in fp32 on the CPU): v, denoised = x − v·sigma, and every dbg_*
 * intermediate (to bisect a failure), within 1e-4·max|ref|.  Also once through the `sd35 mmdit`
 * CLI, and the errors for bad sizes and a mis-shaped weight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmdit.h"
#include "testutil.h"

#define PREFIX "model.diffusion_model."
#define TOL    1e-4

struct golden
{
  const char *file;
  const char *model;
  int         skip[4];
  int         n_skip;
};

static const struct golden goldens[] = {
  { "golden/mmdit_forward_tiny_large_16x16.safetensors", "sd3.5_tiny_large", { 0 }, 0 },
  { "golden/mmdit_forward_tiny_large_10x14.safetensors", "sd3.5_tiny_large", { 0 }, 0 },
  { "golden/mmdit_forward_tiny_medium_16x16.safetensors", "sd3.5_tiny_medium", { 0 }, 0 },
  { "golden/mmdit_forward_tiny_medium_10x14.safetensors", "sd3.5_tiny_medium", { 0 }, 0 },
  { "golden/mmdit_forward_tiny_medium_16x16_skip1.safetensors", "sd3.5_tiny_medium", { 1 }, 1 },
};

struct dbg_ctx
{
  struct st_file *golden;
  const char     *label;
  int             n_seen;
};

/* every dbg_* the forward reports is compared with the golden's tensor of that name */
static void
on_debug (void *user, const char *name, const float *data, const int64_t *shape, int ndim)
{
  struct dbg_ctx         *c = user;
  const struct st_tensor *t = st_find (c->golden, name);
  size_t                  n = 1;
  char                    what[128];
  float                  *ref;

  for (int i = 0; i < ndim; i++)
    n *= (size_t) shape[i];
  if (t == NULL)
    return;  /* not every golden stores every intermediate (10x14 has no per-block ones) */
  if (!test_check (t->numel == n, "%s: %s has %zu values (golden %zu)", c->label, name, n,
                   t->numel))
    return;
  ref = test_golden_f32 (c->golden, name, NULL);
  snprintf (what, sizeof what, "%s %s", c->label, name);
  test_close (what, data, ref, n, TOL);
  free (ref);
  c->n_seen++;
}

static struct st_file *
open_model (const char *name)
{
  char rel[128];
  snprintf (rel, sizeof rel, "golden/models/%s.safetensors", name);
  return test_open_golden (rel);
}

static void
run_golden (struct backend *be, const struct golden *g)
{
  struct st_file         *gf = test_open_golden (g->file);
  struct st_file         *mf = open_model (g->model);
  const struct st_tensor *xt = st_find (gf, "x"), *ct = st_find (gf, "context");
  struct sd35_error       err = { 0 };
  struct mmdit           *m = NULL;
  struct dbg_ctx          dc = { gf, strrchr (g->file, '/') + 1, 0 };
  float *x, *sigma, *ctx, *y, *v_ref, *den_ref, *v, *den;
  size_t n;
  int    B, H, W, n_ctx, n_dbg = 0;

  if (!test_check (xt && ct && xt->ndim == 4 && ct->ndim == 3, "%s: has x and context", dc.label))
    return;
  B = (int) xt->shape[0];
  H = (int) xt->shape[2];
  W = (int) xt->shape[3];
  n_ctx = (int) ct->shape[1];
  x = test_golden_f32 (gf, "x", &n);
  sigma = test_golden_f32 (gf, "sigma", NULL);
  ctx = test_golden_f32 (gf, "context", NULL);
  y = test_golden_f32 (gf, "y", NULL);
  v_ref = test_golden_f32 (gf, "v", NULL);
  den_ref = test_golden_f32 (gf, "denoised", NULL);
  v = calloc (n, sizeof *v);
  den = calloc (n, sizeof *den);

  if (test_check (mmdit_load (be, mf, PREFIX, &m, &err) == SD35_OK, "%s: load %s: %s",
                  dc.label, g->model, err.message))
    {
      mmdit_set_debug (m, on_debug, &dc);
      if (test_check (mmdit_forward (m, x, sigma, ctx, y, B, H, W, n_ctx, g->skip, g->n_skip,
                                     NULL, v, &err) == SD35_OK,
                      "%s: forward: %s", dc.label, err.message))
        {
          char what[128];
          size_t per = n / (size_t) B;
          for (size_t i = 0; i < n; i++)
            den[i] = x[i] - v[i] * sigma[i / per];
          snprintf (what, sizeof what, "%s v", dc.label);
          test_close (what, v, v_ref, n, TOL);
          snprintf (what, sizeof what, "%s denoised", dc.label);
          test_close (what, den, den_ref, n, TOL);
          for (size_t i = 0; i < st_count (gf); i++)
            n_dbg += strncmp (st_at (gf, i)->name, "dbg_", 4) == 0;
          test_check (dc.n_seen == n_dbg, "%s: %d of the golden's %d dbg_* tensors compared",
                      dc.label, dc.n_seen, n_dbg);
        }
    }
  mmdit_free (m);
  free (x); free (sigma); free (ctx); free (y); free (v_ref); free (den_ref); free (v);
  free (den);
  st_close (mf);
  st_close (gf);
}

/* Sizes the model cannot take are SD35_ERR_ARG with a message saying why. */
static void
test_bad_sizes (struct backend *be)
{
  struct st_file   *mf = open_model ("sd3.5_tiny_large");  /* pos_embed 12² → latent ≤ 24 */
  struct mmdit     *m = NULL;
  struct sd35_error err = { 0 };
  const int         n_ctx = 4, B = 1, big = 26, skip = 7;
  float            *x = calloc ((size_t) 16 * big * big, sizeof *x);
  float            *ctx = calloc ((size_t) n_ctx * 128, sizeof *ctx);
  float            *y = calloc (112, sizeof *y);
  float            *v = calloc ((size_t) 16 * big * big, sizeof *v);
  float             sigma = 0.5f;
  enum sd35_status  st;

  if (!test_check (mmdit_load (be, mf, PREFIX, &m, &err) == SD35_OK, "load: %s", err.message))
    goto out;
  st = mmdit_forward (m, x, &sigma, ctx, y, B, big, big, n_ctx, NULL, 0, NULL, v, &err);
  test_check (st == SD35_ERR_ARG && strstr (err.message, "192x192"),
              "latent 26x26 on a 12² pos_embed → SD35_ERR_ARG naming the 192x192 maximum "
              "(got %d: %s)", st, err.message);
  memset (&err, 0, sizeof err);
  st = mmdit_forward (m, x, &sigma, ctx, y, B, 15, 16, n_ctx, NULL, 0, NULL, v, &err);
  test_check (st == SD35_ERR_ARG && strstr (err.message, "multiple"),
              "odd latent 15x16 → SD35_ERR_ARG (got %d: %s)", st, err.message);
  memset (&err, 0, sizeof err);
  st = mmdit_forward (m, x, &sigma, ctx, y, B, 16, 16, n_ctx, &skip, 1, NULL, v, &err);
  test_check (st == SD35_ERR_ARG && strstr (err.message, "skip layer 7"),
              "skip layer 7 of 2 blocks → SD35_ERR_ARG (got %d: %s)", st, err.message);
  /* a good size still works after the refusals */
  memset (&err, 0, sizeof err);
  st = mmdit_forward (m, x, &sigma, ctx, y, B, 8, 8, n_ctx, NULL, 0, NULL, v, &err);
  test_check (st == SD35_OK, "latent 8x8 after the refusals: %s", err.message);
out:
  mmdit_free (m);
  free (x); free (ctx); free (y); free (v);
  st_close (mf);
}

static int
is_cancelled (void *user)
{
  return ++*(int *) user > 1;  /* let block 0 run, stop before block 1 */
}

static void
test_cancel (struct backend *be)
{
  struct st_file     *mf = open_model ("sd3.5_tiny_medium");
  struct mmdit       *m = NULL;
  struct sd35_error   err = { 0 };
  int                 polls = 0;
  struct mmdit_cancel cancel = { is_cancelled, &polls };
  float               x[16 * 8 * 8] = { 0 }, ctx[4 * 128] = { 0 }, y[112] = { 0 };
  float               v[16 * 8 * 8], sigma = 1.0f;
  enum sd35_status    st;

  if (test_check (mmdit_load (be, mf, PREFIX, &m, &err) == SD35_OK, "load: %s", err.message))
    {
      st = mmdit_forward (m, x, &sigma, ctx, y, 1, 8, 8, 4, NULL, 0, &cancel, v, &err);
      test_check (st == SD35_CANCELLED && polls == 2, "cancel between blocks → SD35_CANCELLED "
                  "after %d polls (got %d)", polls, st);
    }
  mmdit_free (m);
  st_close (mf);
}

/* A copy of the tiny model with one weight of the wrong shape: the load error names it. */
static void
test_bad_shape (struct backend *be, const char *tmpdir)
{
  static const char *bad = PREFIX "joint_blocks.0.x_block.mlp.fc1.weight";
  struct st_file    *mf = open_model ("sd3.5_tiny_large"), *bf = NULL;
  struct st_writer  *w = st_writer_new ();
  struct sd35_error  err = { 0 };
  struct mmdit      *m = NULL;
  char               path[512];
  enum sd35_status   st;

  snprintf (path, sizeof path, "%s/bad_shape.safetensors", tmpdir);
  for (size_t i = 0; i < st_count (mf); i++)
    {
      const struct st_tensor *t = st_at (mf, i);
      int64_t shape[ST_MAX_DIMS];
      memcpy (shape, t->shape, sizeof shape);
      if (strcmp (t->name, bad) == 0)
        shape[0] -= 1;  /* [511, 128] where [512, 128] is expected; a prefix of the data */
      st_writer_add (w, t->name, t->dtype, t->ndim, shape, t->data);
    }
  st = st_writer_save (w, path, &err);
  st_writer_free (w);
  if (!test_check (st == SD35_OK, "write %s: %s", path, err.message))
    goto out;
  if (!test_check (st_open (path, &bf, &err) == SD35_OK, "open %s: %s", path, err.message))
    goto out;
  st = mmdit_load (be, bf, PREFIX, &m, &err);
  test_check (st != SD35_OK && strstr (err.message, "joint_blocks.0.x_block.mlp.fc1.weight")
              && strstr (err.message, "511") && strstr (err.message, "512"),
              "mis-shaped %s → error naming the key, expected and found (got %d: %s)", bad, st,
              err.message);
out:
  mmdit_free (m);
  st_close (bf);
  st_close (mf);
  unlink (path);
}

/* `sd35 mmdit` once: the skip-layer golden (B = 2, --skip-layers). */
static void
test_cli (const char *tmpdir)
{
  const char       *cli = getenv ("SD35_CLI");
  const struct golden *g = &goldens[4];
  char             *model, *in, cmd[2048], out[512], rel[128];
  struct st_file   *of = NULL, *gf;
  struct sd35_error err = { 0 };
  int               rc;

  if (cli == NULL)
    {
      printf ("SKIP cli: $SD35_CLI not set\n");
      return;
    }
  snprintf (rel, sizeof rel, "golden/models/%s.safetensors", g->model);
  model = test_shared_path_or_skip (rel);
  in = test_shared_path_or_skip (g->file);
  snprintf (out, sizeof out, "%s/mmdit_out.safetensors", tmpdir);
  snprintf (cmd, sizeof cmd, "'%s' mmdit --model '%s' --in '%s' --out '%s' --skip-layers 1 "
            "--backend cpu", cli, model, in, out);
  rc = system (cmd);
  if (test_check (rc == 0, "cli: %s → exit %d", cmd, rc)
      && test_check (st_open (out, &of, &err) == SD35_OK, "cli output: %s", err.message))
    {
      gf = test_open_golden (g->file);
      for (int k = 0; k < 2; k++)
        {
          const char *name = k ? "denoised" : "v";
          size_t      n, n_ref;
          float      *got, *ref = test_golden_f32 (gf, name, &n_ref);
          char        what[64];
          got = test_golden_f32 (of, name, &n);
          snprintf (what, sizeof what, "cli %s", name);
          if (test_check (n == n_ref, "cli %s: %zu values (golden %zu)", name, n, n_ref))
            test_close (what, got, ref, n, TOL);
          free (got);
          free (ref);
        }
      st_close (gf);
    }
  st_close (of);
  unlink (out);
  free (model);
  free (in);
}

int
main (void)
{
  struct backend   *be = NULL;
  struct sd35_error err = { 0 };
  char             *tmpdir;

  free (test_shared_path_or_skip ("golden/models/sd3.5_tiny_large.safetensors"));
  if (backend_cpu_new (0, &be, &err) != SD35_OK)
    {
      printf ("FAIL: CPU backend: %s\n", err.message);
      return 1;
    }
  tmpdir = test_make_tmpdir ("mmdit");
  for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
    run_golden (be, &goldens[i]);
  test_bad_sizes (be);
  test_cancel (be);
  test_bad_shape (be, tmpdir);
  test_cli (tmpdir);
  backend_free (be);
  test_remove_tree (tmpdir);
  free (tmpdir);
  return test_exit ();
}
