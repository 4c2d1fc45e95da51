/* test_model_tok.c — synthetic tokenizer files for the random test model (no download, no
 * copy of the real vocabularies), in the real formats and sizes the loaders check:
 *
 *   CLIP vocab.json: 49408 entries — the 256 byte symbols of GPT-2's bytes_to_unicode in
 *     CLIP's order (ids 0..255, the same ids as the real vocabulary), the same with "</w>"
 *     (256..511), one token per merge (512..49405), <|startoftext|> 49406, <|endoftext|>
 *     49407.
 *   CLIP merges.txt: "#version: 0.2" + 48894 merges of lowercase letters: "a b", "a b</w>",
 *     "ab c", "ab c</w>", then "abc d</w>" … until the count is reached.
 *   T5 tokenizer.json: a Unigram model (Hugging Face tokenizers format) with <pad> 0, </s> 1,
 *     <unk> 2, "▁" and single letters/digits/punctuation with and without "▁", padded with
 *     unused pieces to the 32100 pieces of t5-v1_1 (32128 rows in the embedding).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "test_model.h"

#define CLIP_VOCAB    49408
#define CLIP_N_MERGES (49152 - 256 - 2)

/* GPT-2 / CLIP bytes_to_unicode: byte → code point, in vocab order (bs list order). */
static void
bytes_to_unicode (int order_bytes[256], int cp[256])
{
  int n = 0, extra = 0;

  for (int b = 0; b < 256; b++)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
      {
        order_bytes[n++] = b;
        cp[b] = b;
      }
  for (int b = 0; b < 256; b++)
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)))
      {
        order_bytes[n++] = b;
        cp[b] = 256 + extra++;
      }
}

/* code point → UTF-8, JSON-escaped for '"' and '\\' */
static void
put_json_cp (FILE *f, int c)
{
  if (c == '"' || c == '\\')
    fprintf (f, "\\%c", c);
  else if (c < 0x80)
    fputc (c, f);
  else if (c < 0x800)
    {
      fputc (0xC0 | (c >> 6), f);
      fputc (0x80 | (c & 0x3F), f);
    }
  else
    {
      fputc (0xE0 | (c >> 12), f);
      fputc (0x80 | ((c >> 6) & 0x3F), f);
      fputc (0x80 | (c & 0x3F), f);
    }
}

/* The i-th merge (0-based): left piece, right piece (both ASCII letters; right may end in
 * "</w>").  Returns the merged token in `tok`. */
static void
nth_merge (int i, char *left, char *right, char *tok)
{
  static const int level[] = { 676, 676, 17576, 17576 };
  int              lv = 0, k = i;
  int              word_end;

  while (lv < 4 && k >= level[lv])
    k -= level[lv++];
  word_end = lv == 1 || lv == 3 || lv == 4;
  if (lv <= 1)
    {
      sprintf (left, "%c", 'a' + k / 26);
      sprintf (right, "%c", 'a' + k % 26);
    }
  else if (lv <= 3)
    {
      sprintf (left, "%c%c", 'a' + k / 676, 'a' + k / 26 % 26);
      sprintf (right, "%c", 'a' + k % 26);
    }
  else
    {
      sprintf (left, "%c%c%c", 'a' + k / 17576 % 26, 'a' + k / 676 % 26, 'a' + k / 26 % 26);
      sprintf (right, "%c", 'a' + k % 26);
    }
  if (word_end)
    strcat (right, "</w>");
  sprintf (tok, "%s%s", left, right);
}

static enum sd35_status
write_clip (const char *dir, struct sd35_error *err)
{
  char  path[4096], l[16], r[16], t[32];
  int   order[256], cp[256], id = 0;
  FILE *f;

  bytes_to_unicode (order, cp);
  snprintf (path, sizeof path, "%s/vocab.json", dir);
  f = fopen (path, "w");
  if (f == NULL)
    return sd35_set_error (err, SD35_ERR_IO, "cannot write %s", path);
  fputc ('{', f);
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < 256; i++)
      {
        fputs (id ? ",\"" : "\"", f);
        put_json_cp (f, cp[order[i]]);
        fprintf (f, "%s\":%d", pass ? "</w>" : "", id++);
      }
  for (int i = 0; i < CLIP_N_MERGES; i++)
    {
      nth_merge (i, l, r, t);
      fprintf (f, ",\"%s\":%d", t, id++);
    }
  fprintf (f, ",\"<|startoftext|>\":%d,\"<|endoftext|>\":%d}\n", id, id + 1);
  if (fclose (f) != 0 || id + 2 != CLIP_VOCAB)
    return sd35_set_error (err, SD35_ERR_IO, "writing %s failed", path);

  snprintf (path, sizeof path, "%s/merges.txt", dir);
  f = fopen (path, "w");
  if (f == NULL)
    return sd35_set_error (err, SD35_ERR_IO, "cannot write %s", path);
  fputs ("#version: 0.2\n", f);
  for (int i = 0; i < CLIP_N_MERGES; i++)
    {
      nth_merge (i, l, r, t);
      fprintf (f, "%s %s\n", l, r);
    }
  if (fclose (f) != 0)
    return sd35_set_error (err, SD35_ERR_IO, "writing %s failed", path);
  return SD35_OK;
}

#define T5_PIECES 32100  /* t5-v1_1: 32000 sentencepiece pieces + 100 <extra_id_N> */

static void
t5_piece (FILE *f, int *id, const char *piece, double score)
{
  fprintf (f, "%s[\"%s\",%.1f]", *id ? "," : "", piece, score);
  (*id)++;
}

/* A Hugging Face tokenizers Unigram tokenizer.json (the t5-v1_1 structure, tiny vocabulary). */
static enum sd35_status
write_t5 (const char *dir, struct sd35_error *err)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789.,:;!?'-()/&+";
  char  path[4096], piece[64];
  int   id = 0;
  FILE *f;

  snprintf (path, sizeof path, "%s/tokenizer.json", dir);
  f = fopen (path, "w");
  if (f == NULL)
    return sd35_set_error (err, SD35_ERR_IO, "cannot write %s", path);
  fputs ("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[", f);
  fputs ("{\"id\":0,\"content\":\"<pad>\",\"single_word\":false,\"lstrip\":false,"
         "\"rstrip\":false,\"normalized\":false,\"special\":true},"
         "{\"id\":1,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,"
         "\"rstrip\":false,\"normalized\":false,\"special\":true},"
         "{\"id\":2,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,"
         "\"rstrip\":false,\"normalized\":false,\"special\":true}", f);
  for (int i = 0; i < 100; i++)
    fprintf (f, ",{\"id\":%d,\"content\":\"<extra_id_%d>\",\"single_word\":false,"
             "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}",
             32099 - i, i);
  fputs ("],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
         "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}]},"
         "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\","
         "\"prepend_scheme\":\"always\",\"split\":true},"
         "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":"
         "{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],"
         "\"pair\":[],\"special_tokens\":{\"</s>\":{\"id\":\"</s>\",\"ids\":[1],"
         "\"tokens\":[\"</s>\"]}}},"
         "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\","
         "\"prepend_scheme\":\"always\",\"split\":true},"
         "\"model\":{\"type\":\"Unigram\",\"unk_id\":2,\"byte_fallback\":false,\"vocab\":[", f);
  t5_piece (f, &id, "<pad>", 0.0);
  t5_piece (f, &id, "</s>", 0.0);
  t5_piece (f, &id, "<unk>", 0.0);
  t5_piece (f, &id, "\xe2\x96\x81", -3.0);  /* "▁" */
  for (const char *c = chars; *c; c++)
    {
      snprintf (piece, sizeof piece, "\xe2\x96\x81%s%c", *c == '"' ? "\\" : "", *c);
      t5_piece (f, &id, piece, -6.0);
      snprintf (piece, sizeof piece, "%c", *c);
      t5_piece (f, &id, piece, -5.0);
    }
  while (id < 32000)
    {
      snprintf (piece, sizeof piece, "<synthetic_%d>", id);
      t5_piece (f, &id, piece, -100.0);
    }
  for (int i = 99; i >= 0; i--)
    {
      snprintf (piece, sizeof piece, "<extra_id_%d>", i);
      t5_piece (f, &id, piece, 0.0);
    }
  fputs ("]}}\n", f);
  if (fclose (f) != 0 || id != T5_PIECES)
    return sd35_set_error (err, SD35_ERR_IO, "writing %s failed", path);
  return SD35_OK;
}

enum sd35_status
test_model_write_tokenizers (const char *clip_dir, const char *t5_dir, struct sd35_error *err)
{
  if (write_clip (clip_dir, err) != SD35_OK)
    return err->status;
  return write_t5 (t5_dir, err);
}
