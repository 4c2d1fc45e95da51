/* clip_bpe.c — the CLIP BPE tokenizer exactly as the reference runs it: HF transformers 4.x
 * *slow* CLIPTokenizer without ftfy (sd35-facts.md §1.1).  Per word:
 *   1. literal "<|startoftext|>" / "<|endoftext|>" split out (HF added-token trie) → 49406/49407;
 *   2. BasicTokenizer(strip_accents=False, do_split_on_punc=False): chars of category C* (but
 *      \t\n\r), U+0000 and U+FFFD deleted, whitespace → ' ', spaces around CJK ideographs, NFC,
 *      str.split(), str.lower(), " ".join (clip_bpe_text.c);
 *   3. the regex <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
 *      [^\s\p{L}\p{N}]+ (IGNORECASE), scanned by hand below;
 *   4. bytes → unicode map, BPE with "</w>" (merges 1..48894 = merges.txt[1:49152-256-2+1]),
 *      unknown pieces → 49407. */
#include "tokenizer.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "clip_bpe.h"
#include "json_file.h"
#include "safe_file.h"

#define CLIP_VOCAB    49408
#define CLIP_BOS      49406
#define CLIP_EOS      49407  /* also unk_token */
#define CLIP_N_MERGES (49152 - 256 - 2)  /* CLIPTokenizer: merges[1 : 49152 - 256 - 2 + 1] */
#define CLIP_CACHE_MAX 200000

struct clip_tokenizer
{
  GHashTable *vocab;        /* piece (owned) → id + 1 */
  GHashTable *ranks;        /* "first second" (owned) → rank + 1 */
  GHashTable *cache;        /* byte-encoded token (owned) → GArray of int32 ids */
  GMutex      cache_lock;
  char        byte_enc[256][4];  /* bytes_to_unicode(), as UTF-8 */
};

/* bytes_to_unicode() of openai/CLIP: printable bytes map to themselves, the others to 256+n. */
static void
init_byte_encoder (struct clip_tokenizer *tok)
{
  int n = 0;
  for (int b = 0; b < 256; b++)
    {
      gunichar c;
      int      len;
      if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
        c = (gunichar) b;
      else
        c = (gunichar) (256 + n++);
      len = g_unichar_to_utf8 (c, tok->byte_enc[b]);
      tok->byte_enc[b][len] = '\0';
    }
}

void
clip_tokenizer_free (struct clip_tokenizer *tok)
{
  if (tok == NULL)
    return;
  if (tok->vocab)
    g_hash_table_destroy (tok->vocab);
  if (tok->ranks)
    g_hash_table_destroy (tok->ranks);
  if (tok->cache)
    g_hash_table_destroy (tok->cache);
  g_mutex_clear (&tok->cache_lock);
  g_free (tok);
}

static enum sd35_status
load_vocab (struct clip_tokenizer *tok, const char *path, struct sd35_error *err)
{
  JsonParser      *parser = NULL;
  JsonObject      *root;
  JsonObjectIter   it;
  const char      *key;
  JsonNode        *val;
  const char     **owner = NULL;   /* id → the piece that has it, to catch a duplicate id */
  enum sd35_status st;

  st = sd35_json_load (path, "CLIP vocabulary", &parser, err);
  if (st != SD35_OK)
    return st;
  root = sd35_json_node_object (json_parser_get_root (parser));
  if (root == NULL)
    {
      g_object_unref (parser);
      return sd35_set_error (err, SD35_ERR_FORMAT,
                             "CLIP vocabulary %s: not a JSON object of piece → id", path);
    }
  owner = g_new0 (const char *, CLIP_VOCAB);
  json_object_iter_init (&it, root);
  while (json_object_iter_next (&it, &key, &val))
    {
      gint64 id = -1;
      if (!sd35_json_node_int (val, &id) || id < 0 || id >= CLIP_VOCAB)
        {
          st = sd35_set_error (err, SD35_ERR_FORMAT,
                               "CLIP vocabulary %s: entry '%s' has no id in 0..%d", path, key,
                               CLIP_VOCAB - 1);
          break;
        }
      if (owner[id] != NULL)
        {
          st = sd35_set_error (err, SD35_ERR_FORMAT, "CLIP vocabulary %s: id %d is given to "
                               "both '%s' and '%s' (each id must name one piece)", path,
                               (int) id, owner[id], key);
          break;
        }
      owner[id] = key;
      g_hash_table_insert (tok->vocab, g_strdup (key), GINT_TO_POINTER ((int) id + 1));
    }
  if (st == SD35_OK && g_hash_table_size (tok->vocab) != CLIP_VOCAB)
    st = sd35_set_error (err, SD35_ERR_FORMAT,
                         "CLIP vocabulary %s: %u entries, expected %d (openai/clip-vit-large-"
                         "patch14)", path, g_hash_table_size (tok->vocab), CLIP_VOCAB);
  g_free (owner);
  g_object_unref (parser);
  return st;
}

static enum sd35_status
load_merges (struct clip_tokenizer *tok, const char *path, struct sd35_error *err)
{
  char            *text = NULL;
  size_t           len = 0;
  char            *line, *next;
  int              rank = 0, lineno = 0;
  enum sd35_status st;

  st = sd35_read_file (path, 64u << 20, "CLIP merges", &text, &len, err);
  if (st != SD35_OK)
    return st;
  /* HF: merges_handle.read().strip().split("\n")[1:48895]: line 0 is "#version: 0.2" */
  for (line = text; line != NULL && rank < CLIP_N_MERGES; line = next)
    {
      char *a, *b, *sp, *joined;
      next = strchr (line, '\n');
      if (next != NULL)
        *next++ = '\0';
      if (lineno++ == 0)
        continue;
      a = g_strstrip (line);
      sp = strpbrk (a, " \t");
      if (sp == NULL)
        {
          if (*a == '\0' && next == NULL)
            break;
          free (text);
          return sd35_set_error (err, SD35_ERR_FORMAT,
                                 "CLIP merges %s line %d: expected two pieces 'a b'", path,
                                 lineno);
        }
      *sp = '\0';
      b = g_strchug (sp + 1);
      if (strpbrk (b, " \t") != NULL)
        {
          free (text);
          return sd35_set_error (err, SD35_ERR_FORMAT, "CLIP merges %s line %d: three or more "
                                 "fields; expected two pieces 'a b'", path, lineno);
        }
      /* a merge of pieces the vocabulary does not know could never produce an id */
      joined = g_strconcat (a, b, NULL);
      if (!g_hash_table_contains (tok->vocab, a) || !g_hash_table_contains (tok->vocab, b)
          || !g_hash_table_contains (tok->vocab, joined))
        {
          const char *unknown = !g_hash_table_contains (tok->vocab, a) ? a
                              : !g_hash_table_contains (tok->vocab, b) ? b : joined;
          st = sd35_set_error (err, SD35_ERR_FORMAT, "CLIP merges %s line %d: '%s' is not in "
                               "the vocabulary (merges.txt and vocab.json do not belong "
                               "together)", path, lineno, unknown);
          g_free (joined);
          free (text);
          return st;
        }
      g_free (joined);
      g_hash_table_insert (tok->ranks, g_strconcat (a, " ", b, NULL),
                           GINT_TO_POINTER (rank + 1));
      rank++;
    }
  free (text);
  if (rank < CLIP_N_MERGES)
    return sd35_set_error (err, SD35_ERR_FORMAT,
                           "CLIP merges %s: %d merges, expected %d (bpe_simple_vocab_16e6)",
                           path, rank, CLIP_N_MERGES);
  return SD35_OK;
}

enum sd35_status
clip_tokenizer_load (const char *vocab_json, const char *merges_txt,
                     struct clip_tokenizer **out, struct sd35_error *err)
{
  struct clip_tokenizer *tok = g_new0 (struct clip_tokenizer, 1);
  enum sd35_status       st;

  *out = NULL;
  g_mutex_init (&tok->cache_lock);
  tok->vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  tok->ranks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_array_unref);
  init_byte_encoder (tok);
  st = load_vocab (tok, vocab_json, err);
  if (st == SD35_OK)
    st = load_merges (tok, merges_txt, err);
  if (st != SD35_OK)
    {
      clip_tokenizer_free (tok);
      return st;
    }
  *out = tok;
  return SD35_OK;
}

/* ---- BPE ---- */

static int
vocab_id (const struct clip_tokenizer *tok, const char *piece)
{
  gpointer v = g_hash_table_lookup (tok->vocab, piece);
  return v ? GPOINTER_TO_INT (v) - 1 : CLIP_EOS;
}

/* rank of the merge (a, b), or INT_MAX */
static int
pair_rank (const struct clip_tokenizer *tok, GString *key, const char *a, const char *b)
{
  int r;
  g_string_assign (key, a);
  g_string_append_c (key, ' ');
  g_string_append (key, b);
  r = GPOINTER_TO_INT (g_hash_table_lookup (tok->ranks, key->str));
  return r > 0 ? r - 1 : INT_MAX;
}

/* bpe() of openai/CLIP / HF CLIPTokenizer on one byte-encoded token; ids appended to ids.
 * Each round merges every occurrence of the lowest-ranked adjacent pair, left to right and
 * non-overlapping, as the reference's while loop; pair ranks are kept and only looked up
 * again next to merged symbols (so a long word costs O(n) lookups per round, not O(n)
 * string builds). */
static void
bpe (const struct clip_tokenizer *tok, const char *token, GArray *ids)
{
  GPtrArray *w = g_ptr_array_new_with_free_func (g_free);
  GArray    *rank = g_array_new (FALSE, FALSE, sizeof (int));  /* rank[i]: pair (i, i+1) */
  GString   *key = g_string_new (NULL);

  for (const char *p = token; *p; p = g_utf8_next_char (p))
    {
      const char *q = g_utf8_next_char (p);
      g_ptr_array_add (w, *q ? g_strndup (p, (gsize) (q - p)) : g_strconcat (p, "</w>", NULL));
    }
  for (guint i = 0; i + 1 < w->len; i++)
    {
      int r = pair_rank (tok, key, w->pdata[i], w->pdata[i + 1]);
      g_array_append_val (rank, r);
    }
  while (w->len > 1)
    {
      int   best = INT_MAX;
      guint n = 0;
      for (guint i = 0; i < rank->len; i++)
        if (g_array_index (rank, int, i) < best)
          best = g_array_index (rank, int, i);
      if (best == INT_MAX)
        break;
      /* merge in place: read index i, write index n; merged[] marks the new symbols */
      {
        gboolean *merged = g_new0 (gboolean, w->len);
        guint     i = 0;
        while (i < w->len)
          {
            if (i + 1 < w->len && g_array_index (rank, int, i) == best)
              {
                char *m = g_strconcat (w->pdata[i], w->pdata[i + 1], NULL);
                g_free (w->pdata[i]);
                g_free (w->pdata[i + 1]);
                w->pdata[n] = m;
                merged[n] = TRUE;
                g_array_index (rank, int, n) = INT_MAX;  /* fixed below */
                i += 2;
              }
            else
              {
                w->pdata[n] = w->pdata[i];
                merged[n] = FALSE;
                if (i + 1 < w->len)
                  g_array_index (rank, int, n) = g_array_index (rank, int, i);
                i++;
              }
            n++;
          }
        /* drop the merged-away pointers without freeing them (they were freed above) */
        g_ptr_array_set_free_func (w, NULL);
        g_ptr_array_set_size (w, n);
        g_ptr_array_set_free_func (w, g_free);
        g_array_set_size (rank, n > 0 ? n - 1 : 0);
        for (guint j = 0; j + 1 < n; j++)
          if (merged[j] || merged[j + 1])
            g_array_index (rank, int, j) = pair_rank (tok, key, w->pdata[j], w->pdata[j + 1]);
        g_free (merged);
      }
    }
  for (guint i = 0; i < w->len; i++)
    {
      int32_t id = vocab_id (tok, w->pdata[i]);
      g_array_append_val (ids, id);
    }
  g_string_free (key, TRUE);
  g_array_unref (rank);
  g_ptr_array_unref (w);
}

/* ids of one regex match (bytes m[0..len)), through the cache */
static enum sd35_status
bpe_token (const struct clip_tokenizer *ctok, const char *m, size_t len, struct tok_ids *out,
           struct sd35_error *err)
{
  struct clip_tokenizer *tok = (struct clip_tokenizer *) ctok;  /* the cache is mutable */
  GString *enc = g_string_sized_new (len * 2 + 1);
  GArray  *ids;
  enum sd35_status st = SD35_OK;

  for (size_t i = 0; i < len; i++)
    g_string_append (enc, tok->byte_enc[(unsigned char) m[i]]);
  g_mutex_lock (&tok->cache_lock);
  ids = g_hash_table_lookup (tok->cache, enc->str);
  if (ids != NULL)
    g_array_ref (ids);
  g_mutex_unlock (&tok->cache_lock);
  if (ids == NULL)
    {
      ids = g_array_new (FALSE, FALSE, sizeof (int32_t));
      bpe (tok, enc->str, ids);
      g_mutex_lock (&tok->cache_lock);
      if (g_hash_table_size (tok->cache) >= CLIP_CACHE_MAX)
        g_hash_table_remove_all (tok->cache);
      g_hash_table_replace (tok->cache, g_strdup (enc->str), g_array_ref (ids));
      g_mutex_unlock (&tok->cache_lock);
    }
  for (guint i = 0; i < ids->len && st == SD35_OK; i++)
    if (tok_ids_push (out, g_array_index (ids, int32_t, i), err) != 0)
      st = SD35_ERR_OOM;
  g_array_unref (ids);
  g_string_free (enc, TRUE);
  return st;
}

/* ---- the pre-tokenizer regex ---- */

static int
is_letter (gunichar c)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return 1;
    default:
      return 0;
    }
}

static int
is_number (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  return t == G_UNICODE_DECIMAL_NUMBER || t == G_UNICODE_LETTER_NUMBER ||
         t == G_UNICODE_OTHER_NUMBER;
}

/* Characters no alternative of the pattern matches, so findall skips them: \s of the `regex`
 * module (Unicode White_Space) and U+0345 COMBINING GREEK YPOGEGRAMMENI, which IGNORECASE
 * keeps out of [^\s\p{L}\p{N}] (it case-folds to ι) but not into [\p{L}] (checked over all
 * code points against the `regex` module). */
static int
is_regex_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         c == 0x345 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

/* length of a contraction match ('s 't 're 've 'm 'll 'd, IGNORECASE) at p, or 0 */
static size_t
match_contraction (const char *p)
{
  static const char *const alts[] = { "s", "t", "re", "ve", "m", "ll", "d" };
  if (p[0] != '\'')
    return 0;
  if (strncmp (p + 1, "\xc5\xbf", 2) == 0)  /* U+017F LONG S case-folds to 's' */
    return 3;
  for (size_t k = 0; k < G_N_ELEMENTS (alts); k++)
    {
      size_t n = strlen (alts[k]);
      if (g_ascii_strncasecmp (p + 1, alts[k], n) == 0)
        return n + 1;
    }
  return 0;
}

/* re.findall(pat, text) → BPE ids */
static enum sd35_status
clip_pretokenize (const struct clip_tokenizer *tok, const char *text, struct tok_ids *out,
                  struct sd35_error *err)
{
  const char *p = text;

  while (*p)
    {
      gunichar    c = g_utf8_get_char (p);
      const char *q = g_utf8_next_char (p);
      size_t      n;
      enum sd35_status st;

      if (g_ascii_strncasecmp (p, "<|startoftext|>", 15) == 0 ||
          g_ascii_strncasecmp (p, "<|endoftext|>", 13) == 0)
        {
          int start = g_ascii_strncasecmp (p, "<|startoftext|>", 15) == 0;
          if (tok_ids_push (out, start ? CLIP_BOS : CLIP_EOS, err) != 0)
            return SD35_ERR_OOM;
          p += start ? 15 : 13;
          continue;
        }
      if ((n = match_contraction (p)) > 0)
        q = p + n;
      else if (is_letter (c))
        while (*q && is_letter (g_utf8_get_char (q)))
          q = g_utf8_next_char (q);
      else if (is_number (c))
        ;
      else if (is_regex_space (c))
        {
          p = q;
          continue;
        }
      else
        while (*q)
          {
            gunichar d = g_utf8_get_char (q);
            if (is_regex_space (d) || is_letter (d) || is_number (d))
              break;
            q = g_utf8_next_char (q);
          }
      st = bpe_token (tok, p, (size_t) (q - p), out, err);
      if (st != SD35_OK)
        return st;
      p = q;
    }
  return SD35_OK;
}

/* cleaning + regex + BPE of a piece free of literal special tokens */
static enum sd35_status
clip_tokenize_plain (const struct clip_tokenizer *tok, const char *text, size_t len,
                     struct tok_ids *out, struct sd35_error *err)
{
  GString *clean = clip_clean_text (text, len);
  enum sd35_status st = clip_pretokenize (tok, clean->str, out, err);
  g_string_free (clean, TRUE);
  return st;
}

enum sd35_status
clip_tokenize_word (const struct clip_tokenizer *tok, const char *word, struct tok_ids *out,
                    struct sd35_error *err)
{
  const char *p = word;

  if (!g_utf8_validate (word, -1, NULL))
    return sd35_set_error (err, SD35_ERR_ARG, "CLIP tokenizer: text is not valid UTF-8");
  /* the added-token trie: exact "<|startoftext|>" / "<|endoftext|>" split out first */
  while (*p)
    {
      const char *s = strstr (p, "<|startoftext|>");
      const char *e = strstr (p, "<|endoftext|>");
      const char *hit = s && (!e || s < e) ? s : e;
      enum sd35_status st;

      if (hit == NULL)
        return clip_tokenize_plain (tok, p, strlen (p), out, err);
      st = clip_tokenize_plain (tok, p, (size_t) (hit - p), out, err);
      if (st != SD35_OK)
        return st;
      if (tok_ids_push (out, hit == s ? CLIP_BOS : CLIP_EOS, err) != 0)
        return SD35_ERR_OOM;
      p = hit + (hit == s ? 15 : 13);
    }
  return SD35_OK;
}
