/* t5_unigram.h — the T5 SentencePiece unigram tokenizer's internals, shared by t5_unigram_load.c
 * (reading spiece.model / tokenizer.json) and t5_unigram.c (normalizer + Viterbi). */
#ifndef SD35_TOK_T5_H
#define SD35_TOK_T5_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* sentencepiece_model.proto SentencePiece.Type */
enum t5_piece_type
{
  T5_PIECE_NORMAL = 1,
  T5_PIECE_UNKNOWN = 2,
  T5_PIECE_CONTROL = 3,
  T5_PIECE_USER_DEFINED = 4,
  T5_PIECE_UNUSED = 5,
  T5_PIECE_BYTE = 6
};

struct t5_added
{
  char  *text;
  size_t len;
  int    id;
};

struct t5_tokenizer
{
  int         n_pieces;
  char      **pieces;
  float      *scores;
  uint8_t    *types;        /* enum t5_piece_type */
  GHashTable *piece_ids;    /* lattice pieces (normal, user-defined, unused) → id + 1 */
  int         max_piece_len;  /* bytes */
  float       min_score, max_score;  /* over normal pieces */
  int         unk_id;
  /* normalizer (NormalizerSpec; nmt_nfkc precompiled charsmap) */
  void       *charsmap;     /* the whole blob (+ a NUL) */
  uint32_t   *trie;         /* darts-clone double array units */
  size_t      n_trie;
  const char *norm;         /* NUL-separated replacement strings */
  size_t      n_norm;
  int         add_dummy_prefix, remove_extra_ws, escape_ws;
  /* added tokens, split out of the raw text first (HF added-token matching) */
  struct t5_added *added;
  int              n_added;
};

#endif
