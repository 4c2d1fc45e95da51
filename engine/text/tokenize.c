/* tokenize.c — SD3Tokenizer.tokenize_with_weights of the reference (other_impls.py), i.e.
 * SDTokenizer.tokenize_with_weights three times:
 *   CLIP-L / CLIP-G: weight parser → words (split on ' ' after '\n' → ' ') → each word
 *     tokenised alone → 77-token chunks [BOS, …, EOS, pad…]; a word that does not fit starts a
 *     new chunk unless it has ≥ 8 tokens (then it is split).  Only chunk 0 is ever encoded.
 *     CLIP-L pads with EOS 49407, CLIP-G with 0.
 *   T5: the same on prompt[:226] (code points), no chunking, EOS 1 appended, padded with 0 to
 *     at least 77, never truncated. */
#include "tokenizer.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define CLIP_BOS 49406
#define CLIP_EOS 49407
#define CLIP_MAX_WORD_LENGTH 8   /* SDTokenizer.max_word_length */
#define T5_EOS 1
#define T5_PAD 0
#define T5_MIN_LENGTH 77         /* T5XXLTokenizer min_length */
#define T5_MAX_CHARS 226         /* SD3Tokenizer: text[:226] */

int
tok_ids_push (struct tok_ids *b, int32_t id, struct sd35_error *err)
{
  if (b->n == b->cap)
    {
      size_t   cap = b->cap ? 2 * b->cap : 64;
      int32_t *ids = cap < b->cap ? NULL : realloc (b->ids, cap * sizeof *ids);
      if (ids == NULL)
        {
          sd35_set_error (err, SD35_ERR_OOM, "out of memory growing a token list to %zu ids",
                          cap);
          return -1;
        }
      b->ids = ids;
      b->cap = cap;
    }
  b->ids[b->n++] = id;
  return 0;
}

void
tok_ids_clear (struct tok_ids *b)
{
  free (b->ids);
  b->ids = NULL;
  b->n = b->cap = 0;
}

int
tok_py_isspace (uint32_t c)
{
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

void
sd35_tokens_clear (struct sd35_tokens *tokens)
{
  free (tokens->t5);
  free (tokens->t5_weight);
  tokens->t5 = NULL;
  tokens->t5_weight = NULL;
  tokens->n_t5 = 0;
  tokens->clip_weighted = tokens->t5_weighted = 0;
}

void
sd35_tokens_drop_weights (struct sd35_tokens *tokens)
{
  tokens->clip_weighted = tokens->t5_weighted = 0;
}

typedef enum sd35_status (*word_fn) (const void *tok, const char *word, struct tok_ids *out,
                                     struct sd35_error *err);

/* The reference's word loop: weight parser, '\n' → ' ', split(' '), empty words dropped; calls
 * fn on each word.  word_ends (optional) gets the id count after every word; id_weights (double)
 * the segment weight of every id. */
static enum sd35_status
tokenize_words (const char *text, size_t len, word_fn fn, const void *tok, struct tok_ids *ids,
                GArray *word_ends, GArray *id_weights, struct sd35_error *err)
{
  struct prompt_segment *segs = NULL;
  int                    n_segs = 0;
  enum sd35_status       st;

  st = prompt_parse_weights (text, len, &segs, &n_segs, err);
  for (int i = 0; st == SD35_OK && i < n_segs; i++)
    {
      char *p = segs[i].text;
      for (char *c = p; *c; c++)
        if (*c == '\n')
          *c = ' ';
      while (st == SD35_OK && *p)
        {
          char *sp = strchr (p, ' ');
          if (sp != NULL)
            *sp = '\0';
          if (*p)
            {
              size_t before = ids->n;
              st = fn (tok, p, ids, err);
              for (size_t k = before; st == SD35_OK && k < ids->n; k++)
                g_array_append_val (id_weights, segs[i].weight);
              if (st == SD35_OK && word_ends != NULL)
                {
                  size_t end = ids->n;
                  g_array_append_val (word_ends, end);
                }
            }
          p = sp ? sp + 1 : p + strlen (p);
        }
    }
  prompt_segments_free (segs, n_segs);
  return st;
}

static enum sd35_status
clip_word (const void *tok, const char *word, struct tok_ids *out, struct sd35_error *err)
{
  return clip_tokenize_word (tok, word, out, err);
}

static enum sd35_status
t5_word (const void *tok, const char *word, struct tok_ids *out, struct sd35_error *err)
{
  return t5_tokenize_word (tok, word, out, err);
}

/* Chunk 0 of SDTokenizer's batching, for both pads.  ids: all word ids; word_ends: the
 * id count after each word; id_weights: the weight of each id → weights (BOS, EOS, pad: 1). */
static void
clip_chunk0 (const struct tok_ids *ids, const GArray *word_ends, const GArray *id_weights,
             int32_t *l, int32_t *g, double *weights)
{
  int32_t batch[SD35_CLIP_TOKENS];
  double  bw[SD35_CLIP_TOKENS];
  int     n = 0, n_real;
  size_t  start = 0;

  bw[n] = 1.0;
  batch[n++] = CLIP_BOS;
  for (guint w = 0; w < word_ends->len; w++)
    {
      size_t end = g_array_index (word_ends, size_t, w);
      size_t glen = end - start;
      int    is_large = glen >= CLIP_MAX_WORD_LENGTH;
      while (glen > 0)
        {
          if (glen + (size_t) n > SD35_CLIP_TOKENS - 1)
            {
              /* chunk 0 is full: break the word (large) or push it to the next chunk */
              int remaining = SD35_CLIP_TOKENS - n - 1;
              if (is_large)
                for (int k = 0; k < remaining; k++)
                  {
                    bw[n] = g_array_index (id_weights, double, start + (size_t) k);
                    batch[n++] = ids->ids[start + (size_t) k];
                  }
              bw[n] = 1.0;
              batch[n++] = CLIP_EOS;
              goto done;
            }
          for (size_t k = 0; k < glen; k++)
            {
              bw[n] = g_array_index (id_weights, double, start + k);
              batch[n++] = ids->ids[start + k];
            }
          glen = 0;
        }
      start = end;
    }
  bw[n] = 1.0;
  batch[n++] = CLIP_EOS;
done:
  n_real = n;
  for (int k = 0; k < SD35_CLIP_TOKENS; k++)
    {
      l[k] = k < n_real ? batch[k] : CLIP_EOS;  /* SDClipModel: pad_with_end */
      g[k] = k < n_real ? batch[k] : 0;         /* SDXLClipG: pad 0 */
      weights[k] = k < n_real ? bw[k] : 1.0;
    }
}

/* CLIP ids are needed only until chunk 0 is full: stop tokenising after ~77 tokens. */
struct clip_ctx
{
  const struct clip_tokenizer *tok;
  int                          full;
};

static enum sd35_status
clip_word_bounded (const void *vctx, const char *word, struct tok_ids *out,
                   struct sd35_error *err)
{
  struct clip_ctx *ctx = (struct clip_ctx *) vctx;
  if (ctx->full)
    return SD35_OK;
  if (out->n > 2 * SD35_CLIP_TOKENS)
    ctx->full = 1;
  return clip_word (ctx->tok, word, out, err);
}

enum sd35_status
sd3_tokenize (const struct clip_tokenizer *clip, const struct t5_tokenizer *t5,
              const char *prompt, struct sd35_tokens *tokens, struct sd35_error *err)
{
  struct tok_ids  ids = { 0 };
  GArray         *ends = g_array_new (FALSE, FALSE, sizeof (size_t));
  GArray         *weights = g_array_new (FALSE, FALSE, sizeof (double));
  const char     *bad = NULL;
  size_t          len;
  enum sd35_status st = SD35_OK;

  memset (tokens, 0, sizeof *tokens);
  if (prompt == NULL)
    prompt = "";
  len = strlen (prompt);
  if (!g_utf8_validate (prompt, (gssize) len, &bad))
    {
      g_array_free (ends, TRUE);
      g_array_free (weights, TRUE);
      return sd35_set_error (err, SD35_ERR_ARG, "the prompt is not valid UTF-8 (bad byte "
                             "0x%02x at byte %zu of %zu); save or pass it as UTF-8 text",
                             (unsigned char) *bad, (size_t) (bad - prompt), len);
    }
  if (clip == NULL)
    st = sd35_set_error (err, SD35_ERR_ARG, "sd3_tokenize: no CLIP tokenizer");
  if (st == SD35_OK)
    {
      struct clip_ctx ctx = { clip, 0 };
      /* a word that ends after chunk 0 is full cannot change chunk 0, so words past
       * ~2×77 ids are skipped; the word that crosses the limit is still whole. */
      st = tokenize_words (prompt, len, clip_word_bounded, &ctx, &ids, ends, weights, err);
      if (st == SD35_OK)
        {
          clip_chunk0 (&ids, ends, weights, tokens->clip_l, tokens->clip_g,
                       tokens->clip_weight);
          for (int k = 0; k < SD35_CLIP_TOKENS; k++)
            tokens->clip_weighted |= tokens->clip_weight[k] != 1.0;
        }
    }
  if (st == SD35_OK && t5 != NULL)
    {
      glong       n_chars = g_utf8_strlen (prompt, (gssize) len);
      const char *cut = n_chars > T5_MAX_CHARS ? g_utf8_offset_to_pointer (prompt, T5_MAX_CHARS)
                                               : prompt + len;
      size_t      n_t5;
      ids.n = 0;
      g_array_set_size (weights, 0);
      st = tokenize_words (prompt, (size_t) (cut - prompt), t5_word, t5, &ids, NULL, weights,
                           err);
      if (st == SD35_OK && tok_ids_push (&ids, T5_EOS, err) != 0)
        st = SD35_ERR_OOM;
      n_t5 = ids.n < T5_MIN_LENGTH ? T5_MIN_LENGTH : ids.n;
      if (st == SD35_OK && n_t5 > INT32_MAX)
        st = sd35_set_error (err, SD35_ERR_ARG, "prompt too long: %zu T5 tokens", n_t5);
      if (st == SD35_OK)
        {
          tokens->t5 = sd35_calloc (n_t5, sizeof *tokens->t5, "T5 token ids", err);
          tokens->t5_weight = tokens->t5 == NULL ? NULL
                              : sd35_calloc (n_t5, sizeof *tokens->t5_weight,
                                             "T5 token weights", err);
          if (tokens->t5_weight == NULL)
            st = SD35_ERR_OOM;
        }
      if (st == SD35_OK)
        {
          memcpy (tokens->t5, ids.ids, ids.n * sizeof *ids.ids);
          for (size_t k = ids.n; k < n_t5; k++)
            tokens->t5[k] = T5_PAD;
          tokens->n_t5 = (int) n_t5;
          /* the word ids carry their weights; the EOS and the padding 1 */
          for (size_t k = 0; k < n_t5; k++)
            {
              tokens->t5_weight[k] = k < weights->len ? g_array_index (weights, double, k) : 1.0;
              tokens->t5_weighted |= tokens->t5_weight[k] != 1.0;
            }
        }
    }
  tok_ids_clear (&ids);
  g_array_free (ends, TRUE);
  g_array_free (weights, TRUE);
  if (st != SD35_OK)
    sd35_tokens_clear (tokens);
  return st;
}
