/* test_mmdit_inputs.c — mmdit_forward keeps the context and pooled vector in backend memory
 * between steps (issue 12 item 7: uploaded once per image): a forward with new inputs must
 * see them (no stale kept copy), and repeating inputs gives the same result as a fresh model
 * (CPU backend, a small random MMDiT). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mmdit.h"
#include "ops.h"
#include "testutil.h"

enum { B = 2, H = 8, W = 8, N_CTX = 5 };

static void
fill (float *v, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    {
      seed = seed * 1664525u + 1013904223u;
      v[i] = (float) (seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
}

static int
forward (struct mmdit *m, const float *x, const float *ctx, const float *y, float *v)
{
  const float       sigma[B] = { 0.7f, 0.7f };
  struct sd35_error err = { 0 };
  int               ok = mmdit_forward (m, x, sigma, ctx, y, B, H, W, N_CTX, NULL, 0, NULL, v,
                                        &err) == SD35_OK;
  if (!ok)
    test_check (0, "mmdit_forward: %s", err.message);
  return ok;
}

int
main (void)
{
  struct backend     *be = NULL, *be2 = NULL;
  struct sd35_error   err = { 0 };
  struct mmdit_config cfg;
  struct mmdit       *m = NULL, *fresh = NULL;
  const size_t        nx = (size_t) B * 16 * H * W;
  float              *x, *ctx_a, *ctx_b, *y_a, *y_b, *v1, *v2, *v3;
  size_t              nc, ny;

  memset (&cfg, 0, sizeof cfg);
  cfg.depth = 2;
  cfg.hidden_size = 128;
  cfg.num_heads = 2;
  cfg.patch_size = 2;
  cfg.in_channels = 16;
  cfg.pos_embed_max_size = 8;
  cfg.adm_in_channels = 32;
  cfg.context_dim = 48;
  nc = (size_t) B * N_CTX * cfg.context_dim;
  ny = (size_t) B * cfg.adm_in_channels;
  if (backend_cpu_new (1, &be, &err) != SD35_OK || backend_cpu_new (1, &be2, &err) != SD35_OK
      || mmdit_new_random (be, &cfg, 7, &m, &err) != SD35_OK
      || mmdit_new_random (be2, &cfg, 7, &fresh, &err) != SD35_OK)
    {
      printf ("FAIL: setup: %s\n", err.message);
      return 1;
    }
  x = malloc (nx * sizeof *x), v1 = malloc (nx * sizeof *v1), v2 = malloc (nx * sizeof *v2);
  v3 = malloc (nx * sizeof *v3);
  ctx_a = malloc (nc * sizeof *ctx_a), ctx_b = malloc (nc * sizeof *ctx_b);
  y_a = malloc (ny * sizeof *y_a), y_b = malloc (ny * sizeof *y_b);
  fill (x, nx, 1), fill (ctx_a, nc, 2), fill (ctx_b, nc, 3), fill (y_a, ny, 4), fill (y_b, ny, 5);

  /* step 1 and 2 of image A (the second uploads no context), then image B */
  if (forward (m, x, ctx_a, y_a, v1) && forward (m, x, ctx_a, y_a, v2))
    test_close ("same inputs, second step (context kept on the backend)", v2, v1, nx, 0.0);
  if (forward (m, x, ctx_b, y_b, v2) && forward (fresh, x, ctx_b, y_b, v3))
    {
      test_close ("new image: new context and pooled vector are used", v2, v3, nx, 0.0);
      test_check (memcmp (v1, v2, nx * sizeof *v1) != 0, "image B differs from image A");
    }
  /* one value of the context changed in place (same buffer): still noticed */
  ctx_b[nc - 1] += 0.5f;
  if (forward (m, x, ctx_b, y_b, v2) && forward (fresh, x, ctx_b, y_b, v3))
    test_close ("a context changed in the same buffer is uploaded again", v2, v3, nx, 0.0);
  y_b[0] -= 0.25f;
  if (forward (m, x, ctx_b, y_b, v2) && forward (fresh, x, ctx_b, y_b, v3))
    test_close ("a changed pooled vector is uploaded again", v2, v3, nx, 0.0);

  free (x), free (v1), free (v2), free (v3), free (ctx_a), free (ctx_b), free (y_a), free (y_b);
  mmdit_free (m);
  mmdit_free (fresh);
  backend_free (be);
  backend_free (be2);
  return test_exit ();
}
