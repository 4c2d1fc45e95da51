/* sd35.c — the `sd35` command-line front end: dispatches to cli/cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "sd35.h"

/* Subcommands (prototypes; keep alphabetical within groups). */

const struct sd35_command sd35_commands[] = {
  { "randn", cmd_randn, "torch.manual_seed + torch.randn noise, bit-identical, as safetensors" },
  { "make-test-model", cmd_make_test_model, "write a tiny SD3.5-shaped model with random weights (tests, demos)" },
  { "tokenize", cmd_tokenize, "print the CLIP-L, CLIP-G and T5 token ids of a prompt (JSON)" },
  { "encode", cmd_encode, "tokenise and encode a prompt (CLIP-L, CLIP-G, T5) to context + pooled" },
  { "mmdit", cmd_mmdit, "one MMDiT forward on safetensors inputs (v, denoised)" },
  { "vae-decode", cmd_vae_decode, "SD3 VAE decode of a latent (safetensors) to an image" },
  { "vae-encode", cmd_vae_encode, "SD3 VAE encode of an image (safetensors) to a latent" },
  { "taesd-decode", cmd_taesd_decode, "TAESD3 preview decode of a latent (safetensors) to a PNG" },
  { "txt2img", cmd_txt2img, "generate an image from a prompt" },
  { "img2img", cmd_img2img, "generate an image from a prompt and an init image" },
  { "bench", cmd_bench, "time SD3.5 stages with real-size random-weight models (no files)" },
  { NULL, NULL, NULL }
};

static void
usage (FILE *f)
{
  fprintf (f, "usage: sd35 COMMAND [options]   (sd35 COMMAND --help for its options)\n\n"
              "Stable Diffusion 3.5 in C (engine " SD35_VERSION ").  Commands:\n");
  for (const struct sd35_command *c = sd35_commands; c->name; c++)
    fprintf (f, "  %-16s %s\n", c->name, c->summary);
}

int
main (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("sd35 %s\n", SD35_VERSION);
      return 0;
    }
  for (const struct sd35_command *c = sd35_commands; c->name; c++)
    if (strcmp (c->name, argv[1]) == 0)
      return c->run (argc - 1, argv + 1);
  fprintf (stderr, "sd35: unknown command '%s' (sd35 --help lists them)\n", argv[1]);
  return 2;
}
