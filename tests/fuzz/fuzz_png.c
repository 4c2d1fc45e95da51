/* fuzz_png.c — libFuzzer target for the PNG reader (engine/dev/image_png.c, the CLI's --init
 * and --mask): any input must decode to w×h RGB within the pixel cap, or be refused with one
 * line; libpng's longjmp paths must free everything (ASan's leak check). */
#include "fuzz_util.h"
#include "image_png.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sd35_error err = { 0 };
  uint8_t          *rgb = NULL;
  int               w = 0, h = 0;
  const char       *p = fuzz_file ("in.png", data, size);

  if (png_read_rgb (p, &rgb, &w, &h, &err) != SD35_OK)
    {
      fuzz_check_refusal (&err);
      if (rgb != NULL)
        __builtin_trap ();
      return 0;
    }
  if (w <= 0 || h <= 0 || (int64_t) w * h > PNG_MAX_PIXELS || rgb == NULL)
    __builtin_trap ();
  /* every byte was written (reading them is what ASan/MSan-style checks need) */
  {
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t) w * h * 3; i++)
      sum += rgb[i];
    (void) sum;
  }
  free (rgb);
  return 0;
}
