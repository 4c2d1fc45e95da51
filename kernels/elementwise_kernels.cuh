/* elementwise_kernels.cuh — the kernels of elementwise.cu (launchers there).  Apart so that
 * the host emulation test (tests/unit/test_cuda_emu.cc) runs the same code without a GPU. */
#ifndef SD35_ELEMENTWISE_KERNELS_CUH
#define SD35_ELEMENTWISE_KERNELS_CUH

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); \
       i += (size_t) gridDim.x * blockDim.x)

__global__ void
activation_kernel (void *out, int odt, const void *in, int idt, size_t n, int act)
{
  GRID_LOOP (i, n)
    st_f32 (out, odt, i, act_apply (ld_f32 (in, idt, i), act));
}

/* op 0: a + b, op 1: a · b */
__global__ void
binary_kernel (void *out, int odt, const void *a, int adt, const void *b, int bdt, size_t n,
               int op)
{
  GRID_LOOP (i, n)
    {
      float x = ld_f32 (a, adt, i), y = ld_f32 (b, bdt, i);
      st_f32 (out, odt, i, op ? x * y : x + y);
    }
}

__global__ void
add_broadcast_kernel (void *out, int odt, const void *in, int idt, const void *vec, int vdt,
                      size_t total, int64_t n)
{
  GRID_LOOP (i, total)
    st_f32 (out, odt, i, ld_f32 (in, idt, i) + ld_f32 (vec, vdt, i % n));
}

/* out[b, l, :] = l < L1 ? a[b, l, :] : b[b, l − L1, :] */
__global__ void
concat_rows_kernel (void *out, int odt, const void *a, int adt, const void *b, int bdt,
                    int64_t L1, int64_t L2, int64_t C, size_t total)
{
  GRID_LOOP (i, total)
    {
      size_t  c = i % C, row = i / C;
      int64_t l = row % (L1 + L2), bi = row / (L1 + L2);
      float   v = l < L1 ? ld_f32 (a, adt, ((size_t) bi * L1 + l) * C + c)
                         : ld_f32 (b, bdt, ((size_t) bi * L2 + (l - L1)) * C + c);
      st_f32 (out, odt, i, v);
    }
}

/* dst[b, l, :] = in[b, off + l, :] for l < Ld (Ltot rows per batch in `in`) */
__global__ void
slice_rows_kernel (void *dst, int ddt, const void *in, int idt, int64_t Ltot, int64_t off,
                   int64_t Ld, int64_t C, size_t total)
{
  GRID_LOOP (i, total)
    {
      size_t  c = i % C, row = i / C;
      int64_t l = row % Ld, bi = row / Ld;
      st_f32 (dst, ddt, i, ld_f32 (in, idt, ((size_t) bi * Ltot + off + l) * C + c));
    }
}

/* out[b, n, c] = in[b, c, n]: 32×32 tiles through shared memory */
__global__ void
transpose_kernel (void *out, int odt, const void *in, int idt, int64_t C, int64_t N)
{
  __shared__ float tile[32][33];
  const int64_t b = blockIdx.z, c0 = blockIdx.y * 32, n0 = blockIdx.x * 32;
  const size_t  base = (size_t) b * C * N;
  for (int k = threadIdx.y; k < 32; k += blockDim.y)
    {
      int64_t c = c0 + k, n = n0 + threadIdx.x;
      if (c < C && n < N)
        tile[k][threadIdx.x] = ld_f32 (in, idt, base + (size_t) c * N + n);
    }
  __syncthreads ();
  for (int k = threadIdx.y; k < 32; k += blockDim.y)
    {
      int64_t n = n0 + k, c = c0 + threadIdx.x;
      if (c < C && n < N)
        st_f32 (out, odt, base + (size_t) n * C + c, tile[threadIdx.x][k]);
    }
}

__global__ void
embedding_kernel (void *out, int odt, const void *table, int tdt, const int32_t *ids,
                  int64_t D, size_t total)
{
  GRID_LOOP (i, total)
    st_f32 (out, odt, i, ld_f32 (table, tdt, (size_t) ids[i / D] * D + i % D));
}

/* grid.y = channel plane (b·C + c); 32-bit pixel math inside a plane (4·H·W < 2³¹) */
__global__ void
upsample2x_kernel (void *out, int odt, const void *in, int idt, int H, int W)
{
  const size_t plane = blockIdx.y;
  const int    W2 = 2 * W, n = 4 * H * W;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
      int y = i / W2, x = i - y * W2;
      st_f32 (out, odt, plane * n + i, ld_f32 (in, idt, plane * H * W + (y >> 1) * W + (x >> 1)));
    }
}

/* out[b, r·(W/p) + c, ci·p² + pr·p + pc] = in[b, ci, r·p + pr, c·p + pc] */
__global__ void
patchify_kernel (void *out, int odt, const void *in, int idt, int64_t C, int64_t H, int64_t W,
                 int64_t p, size_t total)
{
  const int64_t vec = C * p * p, Wp = W / p, T = (H / p) * Wp;
  GRID_LOOP (i, total)
    {
      int64_t v = i % vec, t = (i / vec) % T, b = i / ((size_t) vec * T);
      int64_t ci = v / (p * p), pr = (v / p) % p, pc = v % p;
      int64_t y = (t / Wp) * p + pr, x = (t % Wp) * p + pc;
      st_f32 (out, odt, i, ld_f32 (in, idt, (((size_t) b * C + ci) * H + y) * W + x));
    }
}

/* out[b, ci, y, x] = in[b, (y/p)·(W/p) + x/p, ((y%p)·p + x%p)·C + ci] */
__global__ void
unpatchify_kernel (void *out, int odt, const void *in, int idt, int64_t C, int64_t H, int64_t W,
                   int64_t p, size_t total)
{
  const int64_t Wp = W / p, T = (H / p) * Wp;
  GRID_LOOP (i, total)
    {
      int64_t x = i % W, y = (i / W) % H, ci = (i / ((size_t) W * H)) % C;
      int64_t b = i / ((size_t) W * H * C);
      int64_t t = (y / p) * Wp + x / p, v = ((y % p) * p + x % p) * C + ci;
      st_f32 (out, odt, i, ld_f32 (in, idt, ((size_t) b * T + t) * p * p * C + v));
    }
}

#endif
