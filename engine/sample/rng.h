/* rng.h — torch's CPU generator, bit for bit: manual_seed + randn (float32, contiguous).
 * sd35-facts.md §4. */
#ifndef SD35_RNG_H
#define SD35_RNG_H

#include <stddef.h>
#include <stdint.h>

struct torch_rng;  /* MT19937 + normal cache, like at::CPUGeneratorImpl */

struct torch_rng *torch_rng_new (uint64_t seed);  /* = torch.manual_seed(seed) */
void              torch_rng_free (struct torch_rng *g);
void              torch_rng_seed (struct torch_rng *g, uint64_t seed);
/* torch.randn(n, dtype=float32) from g (the AVX2 16-wide path for n ≥ 16) */
void              torch_randn (struct torch_rng *g, float *out, size_t n);

#endif
