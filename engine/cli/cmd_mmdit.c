/* cmd_mmdit.c — `sd35 mmdit`: one MMDiT forward (sd3_impls.py BaseModel.apply_model) on
 * tensors from a safetensors file: x [B, 16, H, W] (model space), sigma [B], context
 * [B, L, context_dim], y [B, adm] → v (velocity) and denoised = x − v·sigma, F32.  Any batch.
 * For checking the denoiser alone against a PyTorch run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "mmdit.h"
#include "safetensors.h"
#include "stage_util.h"

int
cmd_mmdit (int argc, char **argv)
{
  const char         *cmd = "mmdit";
  const char         *model = NULL, *in = NULL, *out = NULL, *backend = NULL;
  int                 threads = 0, verbose = 0, status = 1;
  struct cli_int_list skip = { { 0 }, 0 };
  const struct cli_opt opts[] = {
    { "model", CLI_STR, &model, "SD3.5 .safetensors file (keys model.diffusion_model.*)", NULL },
    { "in", CLI_STR, &in, "input .safetensors with x [B,16,H,W], sigma [B], context [B,L,D], "
      "y [B,adm]", NULL },
    { "out", CLI_STR, &out, "output .safetensors (v, denoised; F32)", NULL },
    { "skip-layers", CLI_INT_LIST, &skip, "blocks to bypass, e.g. 7,8,9", NULL },
    { "backend", CLI_STR, &backend, "auto (default), cpu or cuda", NULL },
    { "threads", CLI_INT, &threads, "CPU threads (default: all cores)", NULL },
    { "verbose", CLI_FLAG, &verbose, "log loading details", NULL },
  };
  struct stage        st = { 0 };
  struct mmdit       *m = NULL;
  const struct mmdit_config *cfg;
  float              *x = NULL, *sigma = NULL, *ctx = NULL, *y = NULL, *v = NULL, *den = NULL;
  int64_t             xs[4], ss[1], cs[3], ys[2];
  size_t              n, per;
  int                 bad;
  struct st_writer   *w = NULL;
  int r = cli_parse (argc, argv, cmd, "One MMDiT forward: v and denoised = x − v·sigma from x, "
                     "sigma, context and y.", opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if ((r = stage_require (cmd, model, in, out)) != 0)
    return r;
  if (stage_open (&st, cmd, model, in, backend, threads, verbose) != 0)
    goto done;
  if (mmdit_load (st.be, st.model, "model.diffusion_model.", &m, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  cfg = mmdit_get_config (m);
  /* shapes: B from x; every other input must agree with it and with the model */
  xs[0] = -1;
  xs[1] = cfg->in_channels;
  xs[2] = xs[3] = -1;
  x = stage_read (&st, "x", 4, xs);
  if (x == NULL)
    goto done;
  ss[0] = xs[0];
  cs[0] = xs[0];
  cs[1] = -1;
  cs[2] = cfg->context_dim;
  ys[0] = xs[0];
  ys[1] = cfg->adm_in_channels;
  sigma = stage_read (&st, "sigma", 1, ss);
  ctx = sigma ? stage_read (&st, "context", 3, cs) : NULL;
  y = ctx ? stage_read (&st, "y", 2, ys) : NULL;
  if (y == NULL)
    goto done;
  n = (size_t) xs[0] * xs[1] * xs[2] * xs[3];
  v = sd35_malloc (n * sizeof *v, "v", &st.err);
  den = sd35_malloc (n * sizeof *den, "denoised", &st.err);
  if (v == NULL || den == NULL)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  if (mmdit_forward (m, x, sigma, ctx, y, (int) xs[0], (int) xs[2], (int) xs[3], (int) cs[1],
                     skip.values, skip.n, NULL, v, &st.err) != SD35_OK)
    {
      status = cli_fail_err (cmd, &st.err);
      goto done;
    }
  /* BaseModel.apply_model: denoised = x − v·sigma (sigma per batch item) */
  per = n / (size_t) xs[0];
  for (size_t i = 0; i < n; i++)
    den[i] = x[i] - v[i] * sigma[i / per];
  w = st_writer_new ();
  bad = st_writer_add_f32 (w, "v", 4, xs, v) != 0
        || st_writer_add_f32 (w, "denoised", 4, xs, den) != 0;
  status = cli_save (cmd, w, bad, out);

done:
  free (x);
  free (sigma);
  free (ctx);
  free (y);
  free (v);
  free (den);
  mmdit_free (m);
  stage_close (&st);
  return status;
}
