/* safetensors.h — read-only, mmap-backed safetensors files (and sharded sets through
 * `*.safetensors.index.json`).  The header is validated strictly before any tensor is
 * touched: length bound, well-formed JSON, every tensor's offsets inside the data area and
 * non-overlapping, shape × dtype size == byte length, no overflow.  A hostile or truncated
 * file yields SD35_ERR_FORMAT with the file name and reason, never a crash.
 * Pickle checkpoints (.ckpt/.pt/.pth/.bin) are refused with a message. */
#ifndef SD35_SAFETENSORS_H
#define SD35_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "sd35.h"
#include "dtype.h"

#define ST_MAX_DIMS 8

struct st_tensor
{
  const char     *name;        /* full key, e.g. "model.diffusion_model.pos_embed" */
  enum sd35_dtype dtype;
  int             ndim;
  int64_t         shape[ST_MAX_DIMS];
  size_t          numel;
  size_t          nbytes;
  const void     *data;        /* into the mapping; valid while the file is open; aligned
                                * only as the writer made it (ours: to the element size) */
  const char     *file;        /* path of the file holding it */
};

struct st_file;  /* one or more mapped files with one key namespace */

/* Opens path: a .safetensors file, a .safetensors.index.json (all shards mapped) or a GGUF
 * file (*.gguf or the "GGUF" magic: gguf.h). */
enum sd35_status st_open (const char *path, struct st_file **out, struct sd35_error *err);
/* Validates a header held in memory (used by st_open and the fuzz target): buf is the whole
 * file (8-byte length + JSON + data, or a GGUF file).  On success the tensor table is returned (free with
 * st_close).  `name` is used in messages only. */
enum sd35_status st_open_memory (const void *buf, size_t len, const char *name,
                                 struct st_file **out, struct sd35_error *err);
void st_close (struct st_file *f);

size_t                  st_count (const struct st_file *f);
const struct st_tensor *st_at (const struct st_file *f, size_t i);
/* exact key lookup; NULL if absent */
const struct st_tensor *st_find (const struct st_file *f, const char *name);
/* any key starting with prefix? */
int                     st_has_prefix (const struct st_file *f, const char *prefix);
const char             *st_path (const struct st_file *f);
/* __metadata__ string value or NULL */
const char             *st_metadata (const struct st_file *f, const char *key);

/* Keeps a malloc'd buffer alive as long as f (freed by st_close): data derived from the
 * file (e.g. a packed qkv built by weights.c) that a backend may alias like mapped data. */
int         st_file_adopt (struct st_file *f, void *buf);
/* The weights registry (weights.h) that loaders of this file record their linear weights in
 * (LoRA merging finds them there); NULL = none.  Not owned by the file. */
struct weight_registry;
void                    st_file_set_registry (struct st_file *f, struct weight_registry *r);
struct weight_registry *st_file_registry (const struct st_file *f);
/* "[a, b, c]" into buf; returns buf. */
const char *st_shape_string (int ndim, const int64_t *shape, char *buf, size_t size);

/* Writing (CLI outputs, test models).  Builds in memory, writes atomically (tmp + rename). */
struct st_writer;
struct st_writer *st_writer_new (void);
/* Copies data.  Returns 0, or -1 on a duplicate name / overflow / OOM / a GGUF block dtype. */
int  st_writer_add (struct st_writer *w, const char *name, enum sd35_dtype dtype, int ndim,
                    const int64_t *shape, const void *data);
int  st_writer_add_f32 (struct st_writer *w, const char *name, int ndim, const int64_t *shape,
                        const float *data);
void st_writer_set_metadata (struct st_writer *w, const char *key, const char *value);
enum sd35_status st_writer_save (struct st_writer *w, const char *path, struct sd35_error *err);
/* The whole file in a new malloc'd buffer (tests, fuzz seeds). */
enum sd35_status st_writer_to_memory (struct st_writer *w, void **buf, size_t *len,
                                      struct sd35_error *err);
void st_writer_free (struct st_writer *w);

/* Reads a whole tensor as fp32 (float dtypes) into a new malloc'd array (caller frees). */
float   *st_read_f32 (const struct st_tensor *t, struct sd35_error *err);
/* Reads an integer tensor (I64/I32/U8) as int64 into a new malloc'd array. */
int64_t *st_read_i64 (const struct st_tensor *t, struct sd35_error *err);

#endif
