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

#endif
