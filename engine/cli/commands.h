/* commands.h — every `sd35` subcommand (one cli/cmd_<name>.c each).  Each takes the argv
 * after the subcommand name (argv[0] = the subcommand) and returns the process exit status. */
#ifndef SD35_COMMANDS_H
#define SD35_COMMANDS_H

struct sd35_command
{
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
};

/* The table lives in cli/sd35.c.  Add a line there and a prototype here for a new command. */
extern const struct sd35_command sd35_commands[];

/* cli/cmd_txt2img.c */
int cmd_txt2img (int argc, char **argv);
int cmd_img2img (int argc, char **argv);
/* cli/cmd_make_test_model.c */
int cmd_make_test_model (int argc, char **argv);

/* cli/cmd_encode.c */
int cmd_encode (int argc, char **argv);

/* cli/cmd_tokenize.c */
int cmd_tokenize (int argc, char **argv);

/* cli/cmd_randn.c */
int cmd_randn (int argc, char **argv);

/* cli/cmd_mmdit.c, cli/cmd_vae.c (single stages on safetensors inputs) */
int cmd_mmdit (int argc, char **argv);
int cmd_vae_decode (int argc, char **argv);
int cmd_vae_encode (int argc, char **argv);

/* cli/cmd_taesd.c */
int cmd_taesd_decode (int argc, char **argv);

/* cli/cmd_bench.c */
int cmd_bench (int argc, char **argv);

#endif
