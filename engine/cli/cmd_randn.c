/* cmd_randn.c — `sd35 randn`: torch.manual_seed(seed); torch.randn(shape) (float32, CPU),
 * bit for bit, written as tensor `noise` of a safetensors file.  Lets a user hand the exact
 * noise of a PyTorch run to another tool, or check ours against torch. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "error.h"
#include "rng.h"
#include "safetensors.h"

#define RANDN_MAX_DIMS 8

int
cmd_randn (int argc, char **argv)
{
  const char       *cmd = "randn";
  uint64_t          seed = 0;
  const char       *shape_s = NULL, *out = NULL;
  int               seen_seed = 0;
  int64_t           shape[RANDN_MAX_DIMS];
  int               ndim, bad;
  size_t            numel = 1;
  float            *data;
  struct torch_rng *g;
  struct st_writer *w;
  struct sd35_error err = { 0 };
  char              seed_str[32];
  const struct cli_opt opts[] = {
    { "seed", CLI_U64, &seed, "torch.manual_seed value (as torch: only the low 32 bits count)",
      &seen_seed },
    { "shape", CLI_STR, &shape_s, "tensor shape, e.g. 1,16,128,128 (a 1024×1024 latent)", NULL },
    { "out", CLI_STR, &out, "output .safetensors file (tensor 'noise', F32)", NULL },
  };
  int r = cli_parse (argc, argv, cmd,
                     "Writes torch.manual_seed(SEED); torch.randn(SHAPE) (float32, CPU "
                     "generator), bit-identical to PyTorch.",
                     opts, (int) (sizeof opts / sizeof opts[0]));

  if (r != 0)
    return r > 0 ? 0 : 2;
  if (!seen_seed || shape_s == NULL || out == NULL)
    {
      cli_fail (cmd, "--seed, --shape and --out are required (see --help)");
      return 2;
    }
  ndim = cli_parse_shape (shape_s, shape, RANDN_MAX_DIMS);
  if (ndim < 1)
    {
      cli_fail (cmd, "--shape expects 1 to %d positive sizes like 1,16,128,128, got '%s'",
                RANDN_MAX_DIMS, shape_s);
      return 2;
    }
  for (int i = 0; i < ndim; i++)
    if (shape[i] <= 0 || sd35_mul_size (numel, (size_t) shape[i], &numel) != 0 ||
        numel > ((size_t) 1 << 34) / sizeof (float))
      {
        cli_fail (cmd, "--shape %s is empty or too large (at most 2^32 values)", shape_s);
        return 2;
      }

  data = sd35_malloc (numel * sizeof *data, "the noise", &err);
  g = torch_rng_new (seed);
  if (data == NULL || g == NULL)
    {
      free (data);
      torch_rng_free (g);
      return cli_fail (cmd, "out of memory for %zu values", numel);
    }
  torch_randn (g, data, numel);
  torch_rng_free (g);

  w = st_writer_new ();
  snprintf (seed_str, sizeof seed_str, "%" PRIu64, seed);
  st_writer_set_metadata (w, "seed", seed_str);
  bad = st_writer_add_f32 (w, "noise", ndim, shape, data) != 0;
  free (data);
  return cli_save (cmd, w, bad, out);
}
