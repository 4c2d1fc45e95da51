/* clip_bpe.h — internals shared by clip_bpe.c (BPE) and clip_bpe_text.c (text cleaning). */
#ifndef SD35_TOK_CLIP_H
#define SD35_TOK_CLIP_H

#include <glib.h>
#include <stddef.h>

/* BasicTokenizer.tokenize + str.lower + " ".join of text[0..len) (valid UTF-8): the string
 * CLIPTokenizer._tokenize runs its regex over.  Free with g_string_free (s, TRUE). */
GString *clip_clean_text (const char *text, size_t len);

#endif
