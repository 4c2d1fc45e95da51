/* cuda_pool.h — the bookkeeping of the CUDA backend's caching pool (cuda_backend.cu), apart
 * from the CUDA calls so that the host test (tests/unit/test_cuda_emu.cc) runs it.
 *
 * Every block the pool hands out keeps its node: the rounded size it was allocated with (its
 * size class) and, for small fp32 vectors, a bf16 twin (kernels/gemm.cu: biases in the
 * output dtype).  Release looks the node up by pointer and files the block under the size it
 * really has; nothing is recomputed from numel·dtype at release. */
#ifndef SD35_CUDA_POOL_H
#define SD35_CUDA_POOL_H

#include <stddef.h>
#include <stdint.h>

#define CUDA_POOL_BINS    64     /* free lists, by size class */
#define CUDA_POOL_BUCKETS 4096   /* hash buckets of the blocks in use, by pointer */

struct cuda_block
{
  void              *ptr;
  size_t             size;    /* rounded size class: what cudaMalloc gave */
  void              *twin;    /* a bf16 copy of an fp32 vector (its own pool block), or NULL */
  struct cuda_block *next;    /* free list, in-use bucket or spare list */
};

/* Size class: m·2^e with m in [8, 15] (≤ 12.5 % waste), at least 512 bytes; *bin its free
 * list. */
static inline size_t
cuda_pool_class (size_t bytes, unsigned *bin)
{
  size_t m = bytes < 512 ? 512 : bytes;
  int    e = 0;

  while (m > 15)
    {
      m = (m + 1) >> 1;   /* round up while shifting */
      e++;
    }
  if (m < 8)
    m = 8;
  *bin = (unsigned) (e * 8 + (int) (m - 8)) % CUDA_POOL_BINS;
  return m << e;
}

static inline unsigned
cuda_pool_hash (const void *p)
{
  uint64_t x = (uint64_t) (uintptr_t) p;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return (unsigned) (x % CUDA_POOL_BUCKETS);
}

/* Records block b (ptr, size set) as in use. */
static inline void
cuda_pool_track (struct cuda_block **in_use, struct cuda_block *b)
{
  unsigned h = cuda_pool_hash (b->ptr);
  b->next = in_use[h];
  in_use[h] = b;
}

/* The in-use node of ptr, or NULL when the pool did not hand ptr out. */
static inline struct cuda_block *
cuda_pool_find (struct cuda_block *const *in_use, const void *ptr)
{
  for (struct cuda_block *b = in_use[cuda_pool_hash (ptr)]; b; b = b->next)
    if (b->ptr == ptr)
      return b;
  return NULL;
}

/* Removes ptr's node from the in-use table and returns it (NULL when not there). */
static inline struct cuda_block *
cuda_pool_untrack (struct cuda_block **in_use, const void *ptr)
{
  for (struct cuda_block **pp = &in_use[cuda_pool_hash (ptr)]; *pp; pp = &(*pp)->next)
    if ((*pp)->ptr == ptr)
      {
        struct cuda_block *b = *pp;
        *pp = b->next;
        b->next = NULL;
        return b;
      }
  return NULL;
}

#endif
