/* cmd_make_test_model.c — `sd35 make-test-model`: writes the small random-weight model of
 * test_model.h, so the whole program can run without downloading SD3.5. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "test_model.h"

int
cmd_make_test_model (int argc, char **argv)
{
  const char               *cmd = "make-test-model", *out = NULL, *tok = NULL, *variant = NULL;
  uint64_t                  seed = 0;
  struct test_model_options o;
  struct sd35_error         err = { 0 };
  const struct cli_opt      opts[] = {
    { "out", CLI_STR, &out, "folder to write (created; files in it are replaced)", NULL },
    { "tokenizers", CLI_STR, &tok, "folder with clip/{vocab.json,merges.txt} and "
      "t5/{spiece.model,tokenizer.json} to link in (default: write small synthetic ones)",
      NULL },
    { "variant", CLI_STR, &variant, "large (default) or medium (MMDiT-X blocks)", NULL },
    { "seed", CLI_U64, &seed, "seed of the random weights (default 0)", NULL },
  };
  int rc = cli_parse (argc, argv, cmd,
                      "Write a tiny SD3.5-shaped model with RANDOM weights in the official "
                      "release layout (for tests and trying the program without a download; "
                      "its images are meaningless).", opts, (int) (sizeof opts / sizeof opts[0]));

  if (rc != 0)
    return rc > 0 ? 0 : 2;
  if (out == NULL)
    return cli_fail (cmd, "--out DIR is required"), 2;
  test_model_options_init (&o);
  o.out_dir = out;
  o.tokenizers_dir = tok;
  o.seed = seed;
  if (variant == NULL || strcmp (variant, "large") == 0)
    o.variant = SD35_VARIANT_LARGE;
  else if (strcmp (variant, "medium") == 0)
    o.variant = SD35_VARIANT_MEDIUM;
  else
    return cli_fail (cmd, "--variant must be large or medium, not '%s'", variant), 2;
  if (test_model_write (&o, &err) != SD35_OK)
    return cli_fail_err (cmd, &err);
  printf ("wrote a test model with RANDOM weights (%s) to %s\n",
          o.variant == SD35_VARIANT_MEDIUM ? "medium" : "large", out);
  return 0;
}
