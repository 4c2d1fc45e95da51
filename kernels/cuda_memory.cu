/* cuda_memory.cu — how much device memory this engine could still get (vae_tiled.c's budget
 * for choosing a tiled VAE decode): the device's free memory plus the blocks our caching
 * pool holds (pool_get trims the pool and retries when cudaMalloc runs out). */
#include "cuda_common.h"

extern "C" size_t
backend_cuda_free_bytes (struct backend *be)
{
  size_t free_b = 0, total_b = 0;

  if (be == NULL || be->impl == NULL || cudaMemGetInfo (&free_b, &total_b) != cudaSuccess)
    {
      cudaGetLastError ();  /* not sticky: with no budget known the VAE decodes in tiles */
      return 0;
    }
  return free_b + cuda_impl_of (be)->cached_bytes;
}
