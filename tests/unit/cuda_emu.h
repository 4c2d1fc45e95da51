/* cuda_emu.h — just enough of CUDA to run the kernels of kernels/ .cuh headers on the host: one std::thread
 * per GPU thread, blocks one after another, __syncthreads as a block barrier, warp
 * collectives (shuffles, ldmatrix, mma.sync m16n8k16 bf16) in lock step from the PTX ISA's
 * fragment layouts, `__shared__` as `static` (one block at a time shares it).  It checks index
 * arithmetic, masking and reductions without a GPU; it says nothing about speed, memory
 * ordering on the real hardware or the CUDA runtime (tests/gpu/test_ops_cuda does, on a GPU).
 * C++20 (<barrier>). */
#ifndef SD35_CUDA_EMU_H
#define SD35_CUDA_EMU_H

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

extern "C" {
#include "ops.h"
}

struct dim3
{
  unsigned x = 1, y = 1, z = 1;
};
static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
#define __align__(n) alignas (n)

struct __nv_bfloat16
{
  uint16_t x;
};
struct __nv_bfloat162
{
  __nv_bfloat16 x, y;
};
struct __half_raw
{
  unsigned short x;
};
struct __half
{
  uint16_t x;
  __half () = default;
  __half (uint16_t v) : x (v) {}
  __half (__half_raw r) : x (r.x) {}
};
struct uint4
{
  unsigned x, y, z, w;
};
struct float2
{
  float x, y;
};
struct alignas (16) float4
{
  float x, y, z, w;
};

static inline uint4 make_uint4 (unsigned a, unsigned b, unsigned c, unsigned d) { return { a, b, c, d }; }
static inline float2 make_float2 (float a, float b) { return { a, b }; }
static inline float4 make_float4 (float a, float b, float c, float d) { return { a, b, c, d }; }
static inline float __uint_as_float (unsigned u) { float f; memcpy (&f, &u, 4); return f; }
static inline int __float_as_int (float f) { int i; memcpy (&i, &f, 4); return i; }
static inline float __int_as_float (int i) { float f; memcpy (&f, &i, 4); return f; }
static inline float rsqrtf (float x) { return 1.f / sqrtf (x); }
#define __expf(x) expf (x)   /* glibc declares __expf but does not export it */
static inline uint16_t emu_f2bf (float f) { return sd35_f32_to_bf16 (f); }
static inline float emu_bf2f (uint16_t h) { return sd35_bf16_to_f32 (h); }
static inline float __bfloat162float (__nv_bfloat16 h) { return emu_bf2f (h.x); }
static inline __nv_bfloat16 __float2bfloat16 (float f) { return { emu_f2bf (f) }; }
static inline unsigned short __bfloat16_as_ushort (__nv_bfloat16 h) { return h.x; }
static inline float __half2float (__half h) { return sd35_f16_to_f32 (h.x); }
static inline __half __float2half (float f) { return { sd35_f32_to_f16 (f) }; }
static inline __nv_bfloat162 __floats2bfloat162_rn (float a, float b)
{
  return { { emu_f2bf (a) }, { emu_f2bf (b) } };
}

/* --- lock-step warps and blocks ----------------------------------------------------------- */

#define EMU_MAX_WARPS 32
struct emu_lane
{
  uint32_t    u[6];
  const void *p;
  float       f;
  uint64_t    q;
};
static emu_lane        emu_slots[EMU_MAX_WARPS][32];
static std::barrier<> *emu_block_bar;
static std::barrier<> *emu_warp_bar[EMU_MAX_WARPS];

static inline int emu_tid () { return (int) (threadIdx.x + threadIdx.y * blockDim.x); }
static inline int emu_wid () { return emu_tid () / 32; }
static inline int emu_lid () { return emu_tid () % 32; }
static inline void emu_warp_sync () { emu_warp_bar[emu_wid ()]->arrive_and_wait (); }
static inline void __syncthreads () { emu_block_bar->arrive_and_wait (); }

static inline float
__shfl_xor_sync (unsigned, float v, int o)
{
  emu_slots[emu_wid ()][emu_lid ()].f = v;
  emu_warp_sync ();
  float r = emu_slots[emu_wid ()][emu_lid () ^ o].f;
  emu_warp_sync ();
  return r;
}

/* the integer overloads (CUDA has int, unsigned, long long, unsigned long long, …) */
template <typename T>
static inline T
__shfl_xor_sync (unsigned, T v, int o)
{
  static_assert (sizeof (T) <= sizeof (uint64_t), "shuffle of at most 8 bytes");
  T r;
  memcpy (&emu_slots[emu_wid ()][emu_lid ()].q, &v, sizeof v);
  emu_warp_sync ();
  memcpy (&r, &emu_slots[emu_wid ()][emu_lid () ^ o].q, sizeof r);
  emu_warp_sync ();
  return r;
}

/* Runs fn on every thread of every block; block = (bx, by) threads, bx·by a multiple of 32. */
static void
emu_launch (dim3 grid, dim3 block, const std::function<void ()> &fn)
{
  const unsigned threads = block.x * block.y;
  std::barrier<> bb ((std::ptrdiff_t) threads);
  emu_block_bar = &bb;
  for (unsigned w = 0; w < (threads + 31) / 32; w++)
    emu_warp_bar[w] = new std::barrier<> (32);
  /* one host thread per GPU thread, reused for every block; a block barrier between blocks
   * keeps `static` shared memory from being overwritten while the previous block reads it */
  std::vector<std::thread> th;
  for (unsigned t = 0; t < threads; t++)
    th.emplace_back ([&, t] {
      threadIdx = { t % block.x, t / block.x, 0 };
      blockDim = { block.x, block.y, 1 };
      gridDim = grid;
      for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
          for (unsigned x = 0; x < grid.x; x++)
            {
              blockIdx = { x, y, z };
              fn ();
              bb.arrive_and_wait ();
            }
    });
  for (auto &t : th)
    t.join ();
  for (unsigned w = 0; w < (threads + 31) / 32; w++)
    delete emu_warp_bar[w];
}

static void
emu_launch (dim3 grid, unsigned threads, const std::function<void ()> &fn)
{
  emu_launch (grid, dim3 { threads, 1, 1 }, fn);
}

/* Runs only the listed blocks of a grid (gridDim stays the whole grid): real-size launches
 * whose every block would cost too much to emulate, checked at the blocks where the index
 * arithmetic is at its limits (first, last, partial). */
static void
emu_launch_blocks (dim3 grid, unsigned threads, const std::vector<dim3> &blocks,
                   const std::function<void ()> &fn)
{
  std::barrier<> bb ((std::ptrdiff_t) threads);
  emu_block_bar = &bb;
  for (unsigned w = 0; w < (threads + 31) / 32; w++)
    emu_warp_bar[w] = new std::barrier<> (32);
  std::vector<std::thread> th;
  for (unsigned t = 0; t < threads; t++)
    th.emplace_back ([&, t] {
      threadIdx = { t, 0, 0 };
      blockDim = { threads, 1, 1 };
      gridDim = grid;
      for (const dim3 &bi : blocks)
        {
          blockIdx = bi;
          fn ();
          bb.arrive_and_wait ();
        }
    });
  for (auto &t : th)
    t.join ();
  for (unsigned w = 0; w < (threads + 31) / 32; w++)
    delete emu_warp_bar[w];
}

/* --- tensor-core primitives (flash_attn.cuh) ------------------------------------------------- */

static inline void
cp_async16 (void *s, const void *g, int valid)
{
  if (valid)
    memcpy (s, g, 16);
  else
    memset (s, 0, 16);
}
static inline void cp_async_commit () {}
static inline void cp_async_wait_1 () {}
static inline void cp_async_wait_0 () {}

static inline uint16_t
emu_ld16 (const void *row, int e)
{
  uint16_t v;
  memcpy (&v, (const char *) row + 2 * e, 2);
  return v;
}

/* ldmatrix .x4: lanes 8i..8i+7 give the row addresses of matrix i; lane t receives
 * M_i[t/4][2(t%4) .. +1] (non-trans) or M_i[2(t%4) .. +1][t/4] (trans) in register i */
static inline void
emu_ldmatrix (unsigned r[4], const void *smem, int trans)
{
  const int w = emu_wid (), t = emu_lid (), g = t / 4, q = t % 4;
  emu_slots[w][t].p = smem;
  emu_warp_sync ();
  for (int i = 0; i < 4; i++)
    {
      uint16_t lo, hi;
      if (!trans)
        {
          lo = emu_ld16 (emu_slots[w][8 * i + g].p, 2 * q);
          hi = emu_ld16 (emu_slots[w][8 * i + g].p, 2 * q + 1);
        }
      else
        {
          lo = emu_ld16 (emu_slots[w][8 * i + 2 * q].p, g);
          hi = emu_ld16 (emu_slots[w][8 * i + 2 * q + 1].p, g);
        }
      r[i] = lo | ((unsigned) hi << 16);
    }
  emu_warp_sync ();
}
static inline void ldmatrix_x4 (unsigned r[4], const void *s) { emu_ldmatrix (r, s, 0); }
static inline void ldmatrix_x4_trans (unsigned r[4], const void *s) { emu_ldmatrix (r, s, 1); }

static inline float
emu_half_of (uint32_t reg, int hi)
{
  return emu_bf2f ((uint16_t) (hi ? reg >> 16 : reg & 0xffff));
}

/* mma.m16n8k16.row.col (g = lane/4, q = lane%4): a0 = A[g][2q..], a1 = A[g+8][2q..],
 * a2 = A[g][2q+8..], a3 = A[g+8][2q+8..]; b0 = B[2q..][g], b1 = B[2q+8..][g];
 * c0,c1 = C[g][2q..], c2,c3 = C[g+8][2q..] */
static inline void
mma_bf16 (float c[4], const unsigned a[4], unsigned b0, unsigned b1)
{
  const int w = emu_wid (), t = emu_lid (), g = t / 4, q = t % 4;
  for (int i = 0; i < 4; i++)
    emu_slots[w][t].u[i] = a[i];
  emu_slots[w][t].u[4] = b0;
  emu_slots[w][t].u[5] = b1;
  emu_warp_sync ();
  auto A = [&] (int row, int k) {
    int reg = (k >= 8 ? 2 : 0) + (row >= 8 ? 1 : 0);
    return emu_half_of (emu_slots[w][(row % 8) * 4 + (k % 8) / 2].u[reg], k % 2);
  };
  auto B = [&] (int k, int n) {
    return emu_half_of (emu_slots[w][n * 4 + (k % 8) / 2].u[4 + (k >= 8)], k % 2);
  };
  float out[4];
  for (int j = 0; j < 4; j++)
    {
      int   row = g + (j >= 2 ? 8 : 0), col = 2 * q + (j & 1);
      float acc = c[j];
      for (int k = 0; k < 16; k++)
        acc += A (row, k) * B (k, col);
      out[j] = acc;
    }
  emu_warp_sync ();
  for (int j = 0; j < 4; j++)
    c[j] = out[j];
}

static inline unsigned
pack_bf16 (float lo, float hi)
{
  return emu_f2bf (lo) | ((unsigned) emu_f2bf (hi) << 16);
}

#endif
