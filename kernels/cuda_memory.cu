/* cuda_memory.cu — how much device memory this engine could still get (ops->free_bytes, behind
 * backend_work_budget: vae_tiled.c's choice of a tiled VAE decode): the device's free memory
 * plus the blocks our caching pool holds (pool_get trims the pool and retries when cudaMalloc
 * runs out). */
#include "cuda_common.h"

size_t
cuda_free_bytes (struct backend *be)
{
  size_t free_b = 0, total_b = 0;

  if (be == NULL || be->impl == NULL || cudaMemGetInfo (&free_b, &total_b) != cudaSuccess)
    {
      cudaGetLastError ();  /* not sticky: with nothing known the VAE decodes in tiles */
      return 0;
    }
  return free_b + cuda_impl_of (be)->cached_bytes;
}
