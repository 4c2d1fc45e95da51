/* t5_unigram.c — T5 tokenisation of one word as the reference gets it (T5TokenizerFast of
 * google/t5-v1_1-xxl; for the single space-free words it is fed this equals SentencePiece
 * `encode` with spiece.model, sd35-facts.md §1.1):
 *   1. added tokens (</s>, <pad>, <unk>, <extra_id_N>) split out of the raw word;
 *   2. each other piece: SentencePiece Normalizer::Normalize (precompiled nmt_nfkc charsmap,
 *      longest match in a darts-clone double array; extra whitespace removed; ' ' → "▁";
 *      "▁" prefix);
 *   3. unigram_model.cc EncodeOptimized: Viterbi over the piece scores in float, unknown
 *      characters scored min_score − 10, then consecutive <unk> fused into one (id 2).
 * No byte fallback (T5 has none). */
#include "t5_unigram.h"

#include <string.h>

#include "error.h"

#define T5_UNK_PENALTY 10.0f       /* unigram_model.cc kUnkPenalty */
#define T5_MAX_TRIE_RESULTS 32     /* normalizer.cc kMaxTrieResultsSize */
static const char space_symbol[] = "\xe2\x96\x81";  /* U+2581 */

/* darts-clone DoubleArrayUnit */
static inline int
unit_has_leaf (uint32_t u)
{
  return (u >> 8) & 1;
}

static inline uint32_t
unit_value (uint32_t u)
{
  return u & ((1u << 31) - 1);
}

static inline uint32_t
unit_label (uint32_t u)
{
  return u & ((1u << 31) | 0xff);
}

static inline uint32_t
unit_offset (uint32_t u)
{
  return (u >> 10) << ((u & (1u << 9)) >> 6);
}

/* Normalizer::NormalizePrefix: the replacement of the longest charsmap rule matching a prefix
 * of in[0..n), or one UTF-8 character unchanged (U+FFFD for a malformed byte).  Returns the
 * replacement (NUL-terminated, maybe "") and sets *consumed. */
static const char *
normalize_prefix (const struct t5_tokenizer *tok, const char *in, size_t n, size_t *consumed,
                  size_t *out_len)
{
  size_t   longest = 0, n_results = 0;
  uint32_t longest_value = 0;
  uint32_t pos = 0;

  if (tok->n_trie > 0)
    {
      pos ^= unit_offset (tok->trie[0]);
      for (size_t i = 0; i < n; i++)
        {
          uint8_t  c = (uint8_t) in[i];
          uint32_t u;
          pos ^= c;
          if (pos >= tok->n_trie)
            break;
          u = tok->trie[pos];
          if (unit_label (u) != c)
            break;
          pos ^= unit_offset (u);
          if (pos >= tok->n_trie)
            break;
          if (unit_has_leaf (u))
            {
              if (n_results < T5_MAX_TRIE_RESULTS)
                {
                  longest = i + 1;
                  longest_value = unit_value (tok->trie[pos]);
                }
              n_results++;
            }
        }
    }
  if (longest > 0 && longest_value < tok->n_norm)
    {
      const char *r = tok->norm + longest_value;  /* NUL-terminated within the blob */
      *consumed = longest;
      *out_len = strlen (r);
      return r;
    }
  {
    const char *end = NULL;
    size_t      len = (size_t) (g_utf8_next_char (in) - in);
    if (len > n || !g_utf8_validate (in, (gssize) len, &end))
      {
        *consumed = 1;
        *out_len = 3;
        return "\xef\xbf\xbd";
      }
    *consumed = len;
    *out_len = len;
    return in;
  }
}

/* Normalizer::Normalize (normalizer.cc), without the offsets. */
static void
t5_normalize (const struct t5_tokenizer *tok, const char *in, size_t n, GString *out)
{
  size_t      consumed, len;
  const char *r;
  int         is_prev_space;

  g_string_truncate (out, 0);
  /* heading spaces */
  while (tok->remove_extra_ws && n > 0)
    {
      r = normalize_prefix (tok, in, n, &consumed, &len);
      if (!(len == 1 && r[0] == ' '))
        break;
      in += consumed, n -= consumed;
    }
  if (n == 0)
    return;
  if (tok->add_dummy_prefix)
    g_string_append (out, tok->escape_ws ? space_symbol : " ");
  is_prev_space = tok->remove_extra_ws;
  while (n > 0)
    {
      r = normalize_prefix (tok, in, n, &consumed, &len);
      while (is_prev_space && len > 0 && r[0] == ' ')
        r++, len--;
      if (len > 0)
        {
          for (size_t k = 0; k < len; k++)
            if (tok->escape_ws && r[k] == ' ')
              g_string_append (out, space_symbol);
            else
              g_string_append_c (out, r[k]);
          is_prev_space = r[len - 1] == ' ';
        }
      in += consumed, n -= consumed;
      if (!tok->remove_extra_ws)
        is_prev_space = 0;
    }
  /* tailing spaces */
  if (tok->remove_extra_ws)
    {
      const char *sp = tok->escape_ws ? space_symbol : " ";
      size_t      sl = strlen (sp);
      while (out->len >= sl && memcmp (out->str + out->len - sl, sp, sl) == 0)
        g_string_truncate (out, out->len - sl);
    }
}

struct best_node
{
  int   id;
  float score;
  int   starts_at;
};

/* unigram_model.cc Model::EncodeOptimized + the <unk> fusing of the processor. */
static enum sd35_status
t5_viterbi (const struct t5_tokenizer *tok, const char *s, size_t size, struct tok_ids *out,
            struct sd35_error *err)
{
  struct best_node *best;
  const float       unk_score = tok->min_score - T5_UNK_PENALTY;
  char              key[256];
  GArray           *path;
  enum sd35_status  st = SD35_OK;

  if (size == 0)
    return SD35_OK;
  best = sd35_calloc (size + 1, sizeof *best, "T5 lattice", err);
  if (best == NULL)
    return SD35_ERR_OOM;
  for (size_t i = 0; i <= size; i++)
    best[i].starts_at = -1;
  for (size_t at = 0; at < size;)
    {
      const float score_here = best[at].score;
      size_t      mblen = (size_t) (g_utf8_next_char (s + at) - (s + at));
      int         has_single = 0;
      if (mblen > size - at)
        mblen = size - at;
      for (size_t len = 1; len <= size - at && len <= (size_t) tok->max_piece_len &&
                           len < sizeof key; len++)
        {
          gpointer v;
          int      id;
          memcpy (key, s + at, len);
          key[len] = '\0';
          v = g_hash_table_lookup (tok->piece_ids, key);
          if (v == NULL)
            continue;
          id = GPOINTER_TO_INT (v) - 1;
          if (tok->types[id] == T5_PIECE_UNUSED)
            continue;
          {
            struct best_node *t = &best[at + len];
            float sc = tok->types[id] == T5_PIECE_USER_DEFINED ?
                       (float) len * tok->max_score - 0.1f : tok->scores[id];
            float cand = sc + score_here;
            if (t->starts_at == -1 || cand > t->score)
              {
                t->score = cand;
                t->starts_at = (int) at;
                t->id = id;
              }
          }
          if (len == mblen)
            has_single = 1;
        }
      if (!has_single)
        {
          struct best_node *t = &best[at + mblen];
          float cand = unk_score + score_here;
          if (t->starts_at == -1 || cand > t->score)
            {
              t->score = cand;
              t->starts_at = (int) at;
              t->id = tok->unk_id;
            }
        }
      at += mblen;
    }
  /* backtrack, then emit in order with runs of <unk> fused */
  path = g_array_new (FALSE, FALSE, sizeof (int32_t));
  for (size_t end = size; end > 0; end = (size_t) best[end].starts_at)
    {
      int32_t id = best[end].id;
      g_array_append_val (path, id);
    }
  for (guint k = path->len; k-- > 0 && st == SD35_OK;)
    {
      int32_t id = g_array_index (path, int32_t, k);
      if (id == tok->unk_id && k + 1 < path->len &&
          g_array_index (path, int32_t, k + 1) == tok->unk_id)
        continue;
      if (tok_ids_push (out, id, err) != 0)
        st = SD35_ERR_OOM;
    }
  g_array_free (path, TRUE);
  g_free (best);
  return st;
}

static enum sd35_status
t5_encode_piece (const struct t5_tokenizer *tok, const char *s, size_t n, struct tok_ids *out,
                 struct sd35_error *err)
{
  GString *norm = g_string_sized_new (n * 2 + 4);
  enum sd35_status st;

  t5_normalize (tok, s, n, norm);
  st = t5_viterbi (tok, norm->str, norm->len, out, err);
  g_string_free (norm, TRUE);
  return st;
}

enum sd35_status
t5_tokenize_word (const struct t5_tokenizer *tok, const char *word, struct tok_ids *out,
                  struct sd35_error *err)
{
  const char *p = word, *seg = word;

  if (!g_utf8_validate (word, -1, NULL))
    return sd35_set_error (err, SD35_ERR_ARG, "T5 tokenizer: text is not valid UTF-8");
  /* leftmost-longest added-token matching, as HF's AddedVocabulary */
  while (*p)
    {
      const struct t5_added *hit = NULL;
      for (int k = 0; k < tok->n_added; k++)
        if (tok->added[k].len > 0 && strncmp (p, tok->added[k].text, tok->added[k].len) == 0 &&
            (hit == NULL || tok->added[k].len > hit->len))
          hit = &tok->added[k];
      if (hit == NULL)
        {
          p++;
          continue;
        }
      if (p > seg)
        {
          enum sd35_status st = t5_encode_piece (tok, seg, (size_t) (p - seg), out, err);
          if (st != SD35_OK)
            return st;
        }
      if (tok_ids_push (out, hit->id, err) != 0)
        return SD35_ERR_OOM;
      p += hit->len;
      seg = p;
    }
  if (p > seg)
    return t5_encode_piece (tok, seg, (size_t) (p - seg), out, err);
  return SD35_OK;
}
