/* cli.h — the small declarative option parser shared by every `sd35` subcommand, and the
 * model options most subcommands take.  Each subcommand lives in cli/cmd_<name>.c with its own
 * option table (stable-diffusion.cpp's ArgOptions idea, in C). */
#ifndef SD35_CLI_H
#define SD35_CLI_H

#include <stdint.h>
#include "sd35.h"

enum cli_opt_type
{
  CLI_STR,     /* const char **dest */
  CLI_INT,     /* int *dest */
  CLI_DOUBLE,  /* double *dest */
  CLI_U64,     /* uint64_t *dest (accepts any non-negative integer up to 2^64−1) */
  CLI_FLAG,    /* int *dest = 1, takes no value */
  CLI_INT_LIST, /* struct cli_int_list *dest, "7,8,9" */
  CLI_STR_LIST  /* struct cli_str_list *dest: repeatable, every value appended */
};

struct cli_int_list
{
  int values[64];
  int n;
};

struct cli_str_list
{
  const char *values[32];
  int         n;
};

/* Option tables name the range fields only where a range applies (zeros = none). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct cli_opt
{
  const char       *name;   /* without the leading "--" */
  enum cli_opt_type type;
  void             *dest;
  const char       *help;   /* "" hides nothing; shown in --help */
  int              *seen;   /* optional: set to 1 when given */
  double            min, max;  /* CLI_INT, CLI_DOUBLE, CLI_INT_LIST: the valid range when
                                  min < max (named in the message); CLI_DOUBLE is always
                                  finite */
};

/* Parses argv[1..] ("--name value" or "--name=value").  Returns 0 on success, 1 when --help
 * was shown (caller exits 0), -1 after printing a one-line error to stderr (exit 2). */
int cli_parse (int argc, char **argv, const char *cmd, const char *summary,
               const struct cli_opt *opts, int n_opts);

/* Prints "sd35 CMD: MESSAGE" to stderr and returns 1 (for `return cli_fail (...)`). */
int cli_fail (const char *cmd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Prints "sd35 CMD: <error message>" for an engine error, returns 1 (or 130 if cancelled). */
int cli_fail_err (const char *cmd, const struct sd35_error *err);

struct st_writer;
/* Saves w to out and frees it; `bad` is nonzero when one of the st_writer_add calls that
 * built it failed (then nothing is written).  Returns 0, or 1 after printing the error. */
int cli_save (const char *cmd, struct st_writer *w, int bad, const char *out);

/* The options of the model every engine-using subcommand shares. */
struct cli_model_opts
{
  const char *model;
  const char *tokenizers;
  const char *text_encoders;
  const char *backend;     /* "auto", "cpu", "cuda" */
  int         no_t5;
  int         turbo;
  int         threads;
  int         verbose;
};

#define CLI_MODEL_OPTS(m)                                                                      \
  { "model", CLI_STR, &(m).model, "MMDiT file, release folder or HF snapshot (default: $SD35_MODEL, HF cache)", NULL }, \
  { "tokenizers", CLI_STR, &(m).tokenizers, "folder holding clip/ and t5/ tokenizer files", NULL }, \
  { "text-encoders", CLI_STR, &(m).text_encoders, "folder holding clip_l/clip_g/t5xxl safetensors", NULL }, \
  { "backend", CLI_STR, &(m).backend, "auto (default), cpu or cuda", NULL },                  \
  { "no-t5", CLI_FLAG, &(m).no_t5, "do not load T5; its context part is 77 tokens of zeros", NULL }, \
  { "turbo", CLI_FLAG, &(m).turbo, "treat the model as SD3.5 Large Turbo", NULL },             \
  { "threads", CLI_INT, &(m).threads, "CPU threads, 1-1024 (default: all cores)", NULL, 1, 1024 },              \
  { "verbose", CLI_FLAG, &(m).verbose, "log loading details", NULL }

/* --prompt-weights, the same text in every subcommand that encodes prompts */
#define CLI_PROMPT_WEIGHTS_HELP                                                                 \
  "what (word:1.3) in a prompt does: comfy (default) = ComfyUI's rule, each token's "          \
  "encoding moved away from the empty prompt's by its weight (1.3 = stronger, 0.5 = weaker, "    \
  "(word) = 1.1, ((word)) = 1.21, \\( \\) = literal parentheses; weights must be finite "       \
  "numbers); ignore = parsed and ignored, as the official reference"

/* "comfy"/"ignore" (NULL = comfy) → mode; returns -1 after printing the error. */
int cli_prompt_weights (const char *cmd, const char *name, enum sd35_prompt_weights *out);

/* --lora FILE[:STRENGTH] values → out[0..list->n) (strength 1 when absent; the part after
 * the last ':' is a strength only when it is a number, so "C:/x.safetensors" stays a path).
 * Returns 0, or -1 after printing an error. */
int cli_parse_loras (const char *cmd, const struct cli_str_list *list, struct sd35_lora *out);

/* model opts → engine options; returns -1 (after printing) on a bad --backend. */
int cli_engine_options (const char *cmd, const struct cli_model_opts *m,
                        struct sd35_engine_options *opts);

/* "1,16,12,16" → dims; returns ndim or -1. */
int cli_parse_shape (const char *s, int64_t *shape, int max_dims);

#endif
