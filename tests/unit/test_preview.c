/* test_preview.c — sd35_latent_preview against pixels computed by hand from ComfyUI's SD3
 * factors and bias (comfy/latent_formats.py SD3; latent_preview.py preview_to_image:
 * round((clamp(x·F + bias, −1, 1) + 1)·127.5)). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sd35.h"
#include "testutil.h"

int
main (void)
{
  enum { h = 2, w = 3, hw = h * w };
  float   lat[16 * hw];
  uint8_t rgb[3 * hw];
  /* expected, by hand:
   * p0: channel 0 = 1 → bias + F[0] = (0.1472, 0.1960, 0.2674) → ·127.5 after +1:
   *     146.268 → 146, 152.490 → 152, 161.594 → 162
   * p1: zeros → bias (0.2394, 0.2135, 0.1925) → 158.02 → 158, 154.72 → 155, 152.04 → 152
   * p2: channel 2 = 100 → (0.2394 + 19.94, ...) all > 1 → 255
   * p3: channel 15 = 100 → all < −1 → 0
   * p4: channel 1 = −2, channel 10 = 3 → R 0.2394 − 0.0622 + 0.2766 = 0.4538 → 185.36 → 185,
   *     G 0.2135 − 0.1266 + 0.2964 = 0.3833 → 176.37 → 176,
   *     B 0.1925 − 0.1908 + 0.2853 = 0.2870 → 164.09 → 164
   * p5: NaN → 0 */
  static const uint8_t expect[3 * hw] = { 146, 152, 162, 158, 155, 152, 255, 255, 255,
                                          0,   0,   0,   185, 176, 164, 0,   0,   0 };

  memset (lat, 0, sizeof lat);
  lat[0 * hw + 0] = 1.0f;
  lat[2 * hw + 2] = 100.0f;
  lat[15 * hw + 3] = 100.0f;
  lat[1 * hw + 4] = -2.0f;
  lat[10 * hw + 4] = 3.0f;
  lat[5 * hw + 5] = NAN;
  memset (rgb, 77, sizeof rgb);
  sd35_latent_preview (lat, h, w, rgb);
  for (int p = 0; p < hw; p++)
    test_check (memcmp (rgb + 3 * p, expect + 3 * p, 3) == 0,
                "pixel %d (row %d, col %d) = (%d, %d, %d), expected (%d, %d, %d)", p, p / w, p % w,
                rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2], expect[3 * p], expect[3 * p + 1],
                expect[3 * p + 2]);
  return test_exit ();
}
