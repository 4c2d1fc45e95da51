/* backend.c — choosing a backend (AUTO: CUDA, else CPU with a notice) and the backend-neutral
 * tensor helpers of ops.h (tensor_new, tensor_from_f32, tensor_to_f32, ...). */
#include "ops.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "error.h"

#ifndef SD35_HAVE_CUDA
enum sd35_status
backend_cuda_new (struct backend **out, struct sd35_error *err)
{
  *out = NULL;
  return sd35_set_error (err, SD35_ERR_CUDA,
                         "this build has no CUDA backend (built with -Dcuda=disabled); "
                         "use the CPU backend or rebuild with CUDA");
}
#endif

static enum sd35_status backend_pick (enum sd35_backend_kind kind, int n_threads,
                                      struct backend **out, struct sd35_error *err);

enum sd35_status
backend_new (enum sd35_backend_kind kind, int n_threads, struct backend **out,
             struct sd35_error *err)
{
  enum sd35_status st = backend_pick (kind, n_threads, out, err);

  /* the threads asked for bound the host-side work too (LoRA merges), on every backend */
  if (st == SD35_OK)
    (*out)->host_threads = n_threads > 0 ? MIN (n_threads, 64)
                                         : MAX (1, MIN ((int) g_get_num_processors (), 64));
  return st;
}

static enum sd35_status
backend_pick (enum sd35_backend_kind kind, int n_threads, struct backend **out,
              struct sd35_error *err)
{
  struct sd35_error cuda_err = { 0 };

  *out = NULL;
  switch (kind)
    {
    case SD35_BACKEND_CPU:
      return backend_cpu_new (n_threads, out, err);
    case SD35_BACKEND_CUDA:
      return backend_cuda_new (out, err);
    case SD35_BACKEND_AUTO:
    default:
#ifdef SD35_HAVE_CUDA
      if (backend_cuda_new (out, &cuda_err) == SD35_OK)
        return SD35_OK;
      {
        /* one short line: the reason up to its parenthesised detail (--verbose has it all) */
        const char *detail = strstr (cuda_err.message, " (");
        int         len = detail ? (int) (detail - cuda_err.message)
                                 : (int) strlen (cuda_err.message);

        if (strstr (cuda_err.message, "no usable GPU") != NULL)
          sd35_notice ("no usable GPU, using the CPU");
        else
          sd35_notice ("no usable GPU, using the CPU (%.*s)", len, cuda_err.message);
        sd35_log ("%s", cuda_err.message);
      }
#else
      (void) cuda_err;  /* a build without CUDA: the CPU is the only choice, nothing to say */
#endif
      return backend_cpu_new (n_threads, out, err);
    }
}

void
backend_free (struct backend *be)
{
  if (be != NULL)
    be->ops->destroy (be);
}

enum sd35_status
backend_check (struct backend *be, struct sd35_error *err)
{
  if (be->err.status != SD35_OK && err != NULL && err->status == SD35_OK)
    *err = be->err;
  return be->err.status;
}

size_t
backend_free_bytes (struct backend *be)
{
  if (be->ops->free_bytes == NULL)
    return SIZE_MAX;
  return be->ops->free_bytes (be);
}

size_t
backend_work_budget (struct backend *be)
{
  long   pages, page_size;
  size_t free_b;

  if (be->device_memory)
    {
      free_b = backend_free_bytes (be);
      return free_b == SIZE_MAX ? SIZE_MAX : free_b / 10 * 8;  /* room for cuBLAS, driver */
    }
  pages = sysconf (_SC_PHYS_PAGES);
  page_size = sysconf (_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0)
    return SIZE_MAX;
  return (size_t) pages / 4 * (size_t) page_size;  /* a quarter of the RAM */
}

enum sd35_status
op_weight_from_host (struct backend *be, struct tensor *t, const void *src,
                     enum sd35_dtype src_dtype, enum weight_use use)
{
  if (backend_failed (be))
    return be->err.status;
  if (be->ops->weight_from_host (be, t, src, src_dtype, use) != SD35_OK
      && be->err.status == SD35_OK)
    sd35_set_error (&be->err, SD35_ERR_INTERNAL, "the %s backend could not load a weight",
                    be->name);
  return be->err.status;
}

struct tensor *
tensor_new (struct backend *be, enum sd35_dtype dtype, int ndim, const int64_t *shape)
{
  struct tensor *t;
  size_t         numel = 1;

  if (backend_failed (be))
    return NULL;
  if (ndim < 1 || ndim > 4)
    {
      sd35_set_error (&be->err, SD35_ERR_INTERNAL, "tensor with %d dims (1..4 allowed)", ndim);
      return NULL;
    }
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || sd35_mul_size (numel, (size_t) shape[i], &numel) != 0)
      {
        sd35_set_error (&be->err, SD35_ERR_OOM,
                        "tensor shape [%lld, ...] is too large for this machine",
                        (long long) shape[0]);
        return NULL;
      }
  t = sd35_calloc (1, sizeof *t, "a tensor", &be->err);
  if (t == NULL)
    return NULL;
  t->be = be;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  t->numel = numel;
  if (be->ops->alloc (be, t) != SD35_OK)
    {
      if (be->err.status == SD35_OK)
        sd35_set_error (&be->err, SD35_ERR_OOM, "could not allocate a tensor of %zu elements",
                        numel);
      free (t);
      return NULL;
    }
  return t;
}

struct tensor *
tensor_new_act1 (struct backend *be, int64_t d0)
{
  return tensor_new (be, be->act_dtype, 1, (int64_t[]) { d0 });
}

struct tensor *
tensor_new_act2 (struct backend *be, int64_t d0, int64_t d1)
{
  return tensor_new (be, be->act_dtype, 2, (int64_t[]) { d0, d1 });
}

struct tensor *
tensor_new_act3 (struct backend *be, int64_t d0, int64_t d1, int64_t d2)
{
  return tensor_new (be, be->act_dtype, 3, (int64_t[]) { d0, d1, d2 });
}

struct tensor *
tensor_new_act4 (struct backend *be, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
  return tensor_new (be, be->act_dtype, 4, (int64_t[]) { d0, d1, d2, d3 });
}

struct tensor *
tensor_from_f32 (struct backend *be, const float *src, int ndim, const int64_t *shape)
{
  struct tensor *t = tensor_new (be, be->act_dtype, ndim, shape);
  if (t != NULL)
    op_upload_f32 (be, t, src);
  return t;
}

void
tensor_free (struct tensor *t)
{
  if (t == NULL)
    return;
  if (t->be != NULL)
    t->be->ops->release (t->be, t);
  free (t);
}

void
tensor_to_f32 (const struct tensor *t, float *dst)
{
  op_download_f32 (t->be, dst, t);
}
