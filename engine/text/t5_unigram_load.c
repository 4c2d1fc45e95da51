/* t5_unigram_load.c — loading the T5 SentencePiece unigram model (google/t5-v1_1-xxl) from
 * spiece.model (the SentencePiece ModelProto, read with a minimal protobuf reader) or from the
 * HF tokenizer.json (Unigram vocab + Precompiled charsmap).  Both give the same pieces, scores,
 * nmt_nfkc charsmap and added tokens (<pad> 0, </s> 1, <unk> 2, <extra_id_N> = 32099 − N). */
#include "t5_unigram.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <math.h>

#include "json_file.h"
#include "safe_file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define T5_EXTRA_IDS 100  /* T5Tokenizer(extra_ids=100) */

void
t5_tokenizer_free (struct t5_tokenizer *tok)
{
  if (tok == NULL)
    return;
  for (int i = 0; i < tok->n_pieces; i++)
    g_free (tok->pieces[i]);
  g_free (tok->pieces);
  g_free (tok->scores);
  g_free (tok->types);
  if (tok->piece_ids)
    g_hash_table_destroy (tok->piece_ids);
  g_free (tok->charsmap);
  g_free (tok->trie);
  for (int i = 0; i < tok->n_added; i++)
    g_free (tok->added[i].text);
  g_free (tok->added);
  g_free (tok);
}

static void
add_added (struct t5_tokenizer *tok, const char *text, int id)
{
  tok->added = g_renew (struct t5_added, tok->added, tok->n_added + 1);
  tok->added[tok->n_added].text = g_strdup (text);
  tok->added[tok->n_added].len = strlen (text);
  tok->added[tok->n_added].id = id;
  tok->n_added++;
}

/* Charsmap blob: uint32 LE trie size, darts-clone double array, NUL-separated strings. */
static enum sd35_status
set_charsmap (struct t5_tokenizer *tok, const uint8_t *blob, size_t len, const char *path,
              struct sd35_error *err)
{
  uint32_t trie_size;

  if (len < 4)
    return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: precompiled charsmap of "
                           "%zu bytes is too short", path, len);
  trie_size = (uint32_t) blob[0] | (uint32_t) blob[1] << 8 | (uint32_t) blob[2] << 16 |
              (uint32_t) blob[3] << 24;
  if (trie_size % 4 != 0 || trie_size < 4 || trie_size > len - 4)
    return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: precompiled charsmap trie "
                           "size %u does not fit its %zu bytes", path, trie_size, len);
  /* a protobuf field given twice: the last one wins, as in SentencePiece (fuzz finding: the
   * first blob leaked) */
  g_free (tok->charsmap);
  g_free (tok->trie);
  tok->charsmap = g_malloc (len + 1);
  memcpy (tok->charsmap, blob, len);
  ((uint8_t *) tok->charsmap)[len] = 0;  /* the last string is NUL-terminated */
  tok->n_trie = trie_size / 4;
  tok->trie = g_new (uint32_t, tok->n_trie);
  for (size_t i = 0; i < tok->n_trie; i++)
    {
      const uint8_t *u = blob + 4 + 4 * i;
      tok->trie[i] = (uint32_t) u[0] | (uint32_t) u[1] << 8 | (uint32_t) u[2] << 16 |
                     (uint32_t) u[3] << 24;
    }
  tok->norm = (const char *) tok->charsmap + 4 + trie_size;
  tok->n_norm = len - 4 - trie_size;
  return SD35_OK;
}

/* Pieces, scores, types set: index the lattice pieces and the score range. */
static enum sd35_status
finish (struct t5_tokenizer *tok, const char *path, struct sd35_error *err)
{
  int have_score = 0;

  tok->piece_ids = g_hash_table_new (g_str_hash, g_str_equal);
  for (int i = 0; i < tok->n_pieces; i++)
    {
      if (tok->types[i] == T5_PIECE_NORMAL || tok->types[i] == T5_PIECE_USER_DEFINED ||
          tok->types[i] == T5_PIECE_UNUSED)
        {
          size_t n = strlen (tok->pieces[i]);
          if (n == 0)
            return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: piece %d is "
                                   "empty", path, i);
          if (!g_hash_table_contains (tok->piece_ids, tok->pieces[i]))
            g_hash_table_insert (tok->piece_ids, tok->pieces[i], GINT_TO_POINTER (i + 1));
          if ((int) n > tok->max_piece_len)
            tok->max_piece_len = (int) n;
        }
      if (tok->types[i] == T5_PIECE_NORMAL)
        {
          if (!have_score || tok->scores[i] < tok->min_score)
            tok->min_score = tok->scores[i];
          if (!have_score || tok->scores[i] > tok->max_score)
            tok->max_score = tok->scores[i];
          have_score = 1;
        }
      if (tok->types[i] == T5_PIECE_UNKNOWN)
        tok->unk_id = i;
    }
  /* a missing precompiled charsmap (a test model's tokenizer.json) = identity normalizer */
  if (!have_score || tok->unk_id < 0)
    return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: no %s", path,
                           !have_score ? "pieces" : "<unk> piece");
  return SD35_OK;
}

/* ---- spiece.model (protobuf) ---- */

struct pb
{
  const uint8_t *p, *end;
  int            bad;
};

static uint64_t
pb_varint (struct pb *b)
{
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7)
    {
      if (b->p >= b->end)
        break;
      uint8_t c = *b->p++;
      v |= (uint64_t) (c & 0x7f) << shift;
      if (!(c & 0x80))
        return v;
    }
  b->bad = 1;
  return 0;
}

/* Reads the next field; for length-delimited ones sets *sub to the payload. */
static int
pb_field (struct pb *b, int *field, int *wire, uint64_t *val, struct pb *sub)
{
  uint64_t key;
  if (b->bad || b->p >= b->end)
    return 0;
  key = pb_varint (b);
  *field = (int) (key >> 3);
  *wire = (int) (key & 7);
  switch (*wire)
    {
    case 0:
      *val = pb_varint (b);
      break;
    case 1:
    case 5:
      {
        size_t n = *wire == 1 ? 8 : 4;
        if ((size_t) (b->end - b->p) < n)
          return b->bad = 1, 0;
        *val = 0;
        for (size_t i = 0; i < n; i++)
          *val |= (uint64_t) b->p[i] << (8 * i);
        b->p += n;
        break;
      }
    case 2:
      *val = pb_varint (b);
      if (b->bad || *val > (uint64_t) (b->end - b->p))
        return b->bad = 1, 0;
      sub->p = b->p;
      sub->end = b->p + *val;
      sub->bad = 0;
      b->p += *val;
      break;
    default:
      return b->bad = 1, 0;
    }
  return !b->bad;
}

static enum sd35_status
load_spiece (struct t5_tokenizer *tok, const char *path, struct sd35_error *err)
{
  char      *data = NULL;
  size_t     len = 0;
  struct pb  top, sub, s2;
  int        field, wire, cap = 0;
  int        has_normalizer = 0;
  uint64_t   val;
  enum sd35_status st = SD35_OK;

  st = sd35_read_file (path, 64u << 20, "T5 tokenizer", &data, &len, err);
  if (st != SD35_OK)
    return st;
  top = (struct pb) { (const uint8_t *) data, (const uint8_t *) data + len, 0 };
  while (st == SD35_OK && pb_field (&top, &field, &wire, &val, &sub))
    {
      if (field == 1 && wire == 2)  /* SentencePiece pieces */
        {
          char  *piece = NULL;
          size_t piece_len = 0;
          float  score = 0;
          int    type = T5_PIECE_NORMAL;
          while (pb_field (&sub, &field, &wire, &val, &s2))
            if (field == 1 && wire == 2)
              {
                g_free (piece);
                piece = g_strndup ((const char *) s2.p, (gsize) (s2.end - s2.p));
                piece_len = (size_t) (s2.end - s2.p);
              }
            else if (field == 2 && wire == 5)
              {
                uint32_t u = (uint32_t) val;
                memcpy (&score, &u, 4);
              }
            else if (field == 3 && wire == 0)
              type = (int) val;
          /* SentencePiece refuses empty pieces; a NUL inside one would make it shorter
           * than its bytes (and an empty added token matches everywhere without moving) */
          if (sub.bad || piece == NULL || piece[0] == '\0' ||
              strlen (piece) != piece_len || !g_utf8_validate (piece, -1, NULL))
            {
              g_free (piece);
              st = sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: piece %d is "
                                   "malformed", path, tok->n_pieces);
              break;
            }
          if (tok->n_pieces == cap)
            {
              cap = cap ? 2 * cap : 1024;
              tok->pieces = g_renew (char *, tok->pieces, cap);
              tok->scores = g_renew (float, tok->scores, cap);
              tok->types = g_renew (uint8_t, tok->types, cap);
            }
          tok->pieces[tok->n_pieces] = piece;
          tok->scores[tok->n_pieces] = score;
          tok->types[tok->n_pieces] = (uint8_t) type;
          tok->n_pieces++;
        }
      else if (field == 2 && wire == 2)  /* TrainerSpec: model_type (3) must be UNIGRAM (1) */
        {
          while (pb_field (&sub, &field, &wire, &val, &s2))
            if (field == 3 && wire == 0 && val != 1)
              st = sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: not a unigram "
                                   "SentencePiece model (model_type %d)", path, (int) val);
        }
      else if (field == 3 && wire == 2)  /* NormalizerSpec */
        {
          has_normalizer = 1;
          while (st == SD35_OK && pb_field (&sub, &field, &wire, &val, &s2))
            if (field == 2 && wire == 2)
              st = set_charsmap (tok, s2.p, (size_t) (s2.end - s2.p), path, err);
            else if (field == 3 && wire == 0)
              tok->add_dummy_prefix = val != 0;
            else if (field == 4 && wire == 0)
              tok->remove_extra_ws = val != 0;
            else if (field == 5 && wire == 0)
              tok->escape_ws = val != 0;
        }
    }
  if (st == SD35_OK && top.bad)
    st = sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: not a SentencePiece model "
                         "(malformed protobuf)", path);
  /* The trainer always writes the NormalizerSpec after the pieces: without it the file was cut
   * on a piece boundary and would silently give wrong ids. */
  if (st == SD35_OK && !has_normalizer)
    st = sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: no normalizer section "
                         "(truncated or not a SentencePiece model)", path);
  free (data);
  if (st != SD35_OK)
    return st;
  st = finish (tok, path, err);
  if (st != SD35_OK)
    return st;
  /* T5Tokenizer's added tokens: the control/unknown pieces and 100 sentinels after the pieces */
  for (int i = 0; i < tok->n_pieces; i++)
    if (tok->types[i] == T5_PIECE_CONTROL || tok->types[i] == T5_PIECE_UNKNOWN)
      add_added (tok, tok->pieces[i], i);
  for (int n = 0; n < T5_EXTRA_IDS; n++)
    {
      char name[32];
      snprintf (name, sizeof name, "<extra_id_%d>", n);
      add_added (tok, name, tok->n_pieces + T5_EXTRA_IDS - 1 - n);
    }
  return SD35_OK;
}

/* ---- tokenizer.json (HF) ---- */

/* The Precompiled normalizer, directly or inside a Sequence (nested Sequences are walked to
 * the JSON depth bound at most: the text was depth-checked before parsing). */
static JsonObject *
find_precompiled (JsonObject *norm)
{
  const char *type = sd35_json_string (norm, "type");
  JsonArray  *a;

  if (type == NULL)
    return NULL;
  if (strcmp (type, "Precompiled") == 0)
    return norm;
  a = strcmp (type, "Sequence") == 0 ? sd35_json_array (norm, "normalizers") : NULL;
  for (guint i = 0; a != NULL && i < json_array_get_length (a); i++)
    {
      JsonObject *o = find_precompiled (sd35_json_node_object (json_array_get_element (a, i)));
      if (o != NULL)
        return o;
    }
  return NULL;
}

static enum sd35_status
load_tokenizer_json (struct t5_tokenizer *tok, const char *path, struct sd35_error *err)
{
  JsonParser *parser = NULL;
  JsonObject *root, *model, *pre;
  JsonArray  *vocab, *added;
  const char *type;
  enum sd35_status st;
  guint       n;

  st = sd35_json_load (path, "T5 tokenizer", &parser, err);
  if (st != SD35_OK)
    return st;
  root = sd35_json_node_object (json_parser_get_root (parser));
  model = sd35_json_object (root, "model");
  vocab = sd35_json_array (model, "vocab");
  type = sd35_json_string (model, "type");
  if (vocab == NULL || type == NULL || strcmp (type, "Unigram") != 0)
    {
      g_object_unref (parser);
      return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: no Unigram model with a "
                             "vocab (expected the tokenizer.json of google/t5-v1_1-xxl)", path);
    }
  n = json_array_get_length (vocab);
  tok->pieces = g_new0 (char *, n);
  tok->scores = g_new0 (float, n);
  tok->types = g_new0 (uint8_t, n);
  for (guint i = 0; i < n; i++)
    {
      JsonArray  *pair = sd35_json_node_array (json_array_get_element (vocab, i));
      const char *piece = pair && json_array_get_length (pair) == 2 ?
                          sd35_json_node_string (json_array_get_element (pair, 0)) : NULL;
      double      score = 0;
      if (piece == NULL || !sd35_json_node_number (json_array_get_element (pair, 1), &score)
          || !isfinite (score))
        {
          g_object_unref (parser);
          return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: vocab entry %u is "
                                 "not [piece, score]", path, i);
        }
      tok->pieces[i] = g_strdup (piece);
      tok->scores[i] = (float) score;  /* stored as f32 in spiece.model */
      tok->types[i] = T5_PIECE_NORMAL;
      tok->n_pieces = (int) i + 1;
    }
  /* added tokens are matched on the raw text and never take part in the lattice */
  added = sd35_json_array (root, "added_tokens");
  for (guint i = 0; added && i < json_array_get_length (added); i++)
    {
      JsonObject *o = sd35_json_node_object (json_array_get_element (added, i));
      const char *content = sd35_json_string (o, "content");
      gint64      id = -1;
      if (!sd35_json_int (o, "id", &id) || content == NULL || content[0] == '\0' || id < 0 || id >= n)
        {
          g_object_unref (parser);
          return sd35_set_error (err, SD35_ERR_FORMAT, "T5 tokenizer %s: added token %u has "
                                 "no content or an id outside the vocab", path, i);
        }
      add_added (tok, content, (int) id);
      tok->types[id] = T5_PIECE_CONTROL;
    }
  {
    gint64 unk = -1;
    if (sd35_json_int (model, "unk_id", &unk) && unk >= 0 && unk < n)
      tok->types[unk] = T5_PIECE_UNKNOWN;
  }
  pre = find_precompiled (sd35_json_object (root, "normalizer"));
  if (pre != NULL)
    {
      const char *b64 = sd35_json_string (pre, "precompiled_charsmap");
      gsize   blen = 0;
      guchar *blob = b64 ? g_base64_decode (b64, &blen) : NULL;
      if (blob != NULL)
        st = set_charsmap (tok, blob, blen, path, err);
      g_free (blob);
    }
  g_object_unref (parser);
  if (st != SD35_OK)
    return st;
  return finish (tok, path, err);
}

enum sd35_status
t5_tokenizer_load (const char *spiece_model, const char *tokenizer_json,
                   struct t5_tokenizer **out, struct sd35_error *err)
{
  struct t5_tokenizer *tok;
  enum sd35_status     st;

  *out = NULL;
  if (spiece_model == NULL && tokenizer_json == NULL)
    return sd35_set_error (err, SD35_ERR_MISSING, "T5 tokenizer: neither spiece.model nor "
                           "tokenizer.json given");
  tok = g_new0 (struct t5_tokenizer, 1);
  tok->unk_id = -1;
  tok->add_dummy_prefix = tok->remove_extra_ws = tok->escape_ws = 1;  /* proto defaults */
  /* spiece.model is what the goldens' SentencePiece emulation used; prefer it */
  st = spiece_model ? load_spiece (tok, spiece_model, err)
                    : load_tokenizer_json (tok, tokenizer_json, err);
  if (st != SD35_OK)
    {
      t5_tokenizer_free (tok);
      return st;
    }
  *out = tok;
  return SD35_OK;
}
