/* clip_bpe_text.c — the text cleaning the reference's CLIP tokenizer applies before its regex
 * (sd35-facts.md §1.1): HF transformers 4.x BasicTokenizer(strip_accents=False,
 * do_split_on_punc=False), used by the slow CLIPTokenizer when ftfy is not installed —
 *   _clean_text: U+0000, U+FFFD and category C* (but \t \n \r) deleted, whitespace → ' ';
 *   _tokenize_chinese_chars: spaces around CJK ideographs; NFC; whitespace_tokenize;
 * then str.lower() per token and " ".join (CLIPTokenizer._tokenize). */
#include "clip_bpe.h"

#include <string.h>

#include "tokenizer.h"

static int
is_cjk (gunichar c)
{
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* unicodedata.category(c).startswith("C") */
static int
is_category_c (gunichar c)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_UNASSIGNED:
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_SURROGATE:
      return 1;
    default:
      return 0;
    }
}

/* Unicode Cased, approximately (Lu/Ll/Lt and the Other_* letters that matter). */
static int
is_cased (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  return t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_LOWERCASE_LETTER ||
         t == G_UNICODE_TITLECASE_LETTER || c == 0xaa || c == 0xba ||
         (c >= 0x2160 && c <= 0x217f) || (c >= 0x24b6 && c <= 0x24e9);
}

/* Unicode Case_Ignorable, approximately (Mn Me Cf Lm Sk + Word_Break MidLetter/MidNumLet). */
static int
is_case_ignorable (gunichar c)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_FORMAT:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_MODIFIER_SYMBOL:
      return 1;
    default:
      return c == '\'' || c == '.' || c == ':' || c == 0xb7 || c == 0x387 || c == 0x55f || c == 0x5f4 ||
             c == 0x2018 || c == 0x2019 || c == 0x2024 || c == 0x2027 || c == 0xfe13 ||
             c == 0xfe52 || c == 0xfe55 || c == 0xff07 || c == 0xff0e || c == 0xff1a;
    }
}

/* Python str.lower() of s[0..n): full lowercase mapping, locale-independent (GLib's
 * g_utf8_strdown follows the locale), Final_Sigma as in unicodeobject.c handle_capital_sigma,
 * and the Nl/So letters (Roman numerals, circled letters) GLib leaves alone. */
static void
py_lower_append (GString *out, const gunichar *s, long n)
{
  for (long i = 0; i < n; i++)
    {
      gunichar c = s[i], l;
      if (c == 0x130)
        {
          g_string_append (out, "i\xcc\x87");
          continue;
        }
      if (c == 0x3a3)
        {
          long j;
          int  final = 0;
          for (j = i - 1; j >= 0 && is_case_ignorable (s[j]); j--)
            ;
          final = j >= 0 && is_cased (s[j]);
          if (final)
            {
              for (j = i + 1; j < n && is_case_ignorable (s[j]); j++)
                ;
              final = j == n || !is_cased (s[j]);
            }
          l = final ? 0x3c2 : 0x3c3;
        }
      else if (c >= 0x2160 && c <= 0x216f)
        l = c + 0x10;
      else if (c >= 0x24b6 && c <= 0x24cf)
        l = c + 26;
      else
        l = g_unichar_tolower (c);
      g_string_append_unichar (out, l);
    }
}

GString *
clip_clean_text (const char *text, size_t len)
{
  GString  *clean = g_string_sized_new (len + 8);
  GString  *out = g_string_sized_new (len + 8);
  gunichar *u;
  glong     n = 0;
  char     *nfc;

  for (const char *p = text; p < text + len; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == 0 || c == 0xfffd || (is_category_c (c) && c != '\t' && c != '\n' && c != '\r'))
        continue;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
          g_unichar_type (c) == G_UNICODE_SPACE_SEPARATOR)
        g_string_append_c (clean, ' ');
      else if (is_cjk (c))
        {
          g_string_append_c (clean, ' ');
          g_string_append_unichar (clean, c);
          g_string_append_c (clean, ' ');
        }
      else
        g_string_append_unichar (clean, c);
    }
  nfc = g_utf8_normalize (clean->str, (gssize) clean->len, G_NORMALIZE_NFC);
  g_string_free (clean, TRUE);
  u = nfc ? g_utf8_to_ucs4_fast (nfc, -1, &n) : NULL;
  g_free (nfc);
  for (glong i = 0; i < n;)
    {
      glong j;
      if (tok_py_isspace (u[i]))
        {
          i++;
          continue;
        }
      for (j = i; j < n && !tok_py_isspace (u[j]); j++)
        ;
      if (out->len > 0)
        g_string_append_c (out, ' ');
      py_lower_append (out, u + i, j - i);
      i = j;
    }
  g_free (u);
  return out;
}
