/* safetensors_internal.h — internals shared by safetensors.c (reader, header validation) and
 * safetensors_index.c (sharded sets).  Not part of the engine's interface. */
#ifndef SD35_IO_SAFETENSORS_H
#define SD35_IO_SAFETENSORS_H

#include <glib.h>

#include "safetensors.h"
#include "error.h"

/* Largest header accepted: the reference library's MAX_HEADER_SIZE (100 MB). */
#define ST_MAX_HEADER ((uint64_t) 100000000)

struct st_map
{
  void  *addr;   /* read-only mapping of the whole file */
  size_t len;
  char  *path;
};

struct st_file
{
  char             *path;       /* what was opened (file, index or st_open_memory name) */
  struct st_map    *maps;
  int               n_maps;
  struct st_tensor *tensors;    /* header order, shard after shard */
  size_t            n_tensors, cap_tensors;
  GHashTable       *by_name;    /* name → index + 1 */
  GHashTable       *metadata;   /* __metadata__ key → value (first shard wins) */
  GPtrArray        *adopted;    /* buffers freed by st_close (st_file_adopt) */
  struct weight_registry *registry; /* st_file_set_registry; not owned */
};

struct st_file *st_file_new (const char *path, struct sd35_error *err);
/* Maps path read-only and appends it to f->maps; returns the map or NULL (err set). */
struct st_map  *st_map_file (struct st_file *f, const char *path, struct sd35_error *err);
/* Validates buf (a whole safetensors file) and appends its tensors to f; tensor `file`
 * fields point at `file` (must outlive f).  `name` is used in messages. */
enum sd35_status st_parse_into (struct st_file *f, const uint8_t *buf, size_t len,
                                const char *name, const char *file, struct sd35_error *err);
/* Appends t (its name owned by f from now on) to the table and the name index; -1 on OOM. */
int st_file_append (struct st_file *f, const struct st_tensor *t, struct sd35_error *err);
/* SD35_ERR_FORMAT "<name>: invalid safetensors file: <why>". */
enum sd35_status st_invalid (struct sd35_error *err, const char *name, const char *fmt, ...)
  SD35_PRINTF (3, 4);
/* One tensor's shape and data_offsets against the data area; fills numel, nbytes, data. */
enum sd35_status st_check_tensor (struct st_tensor *t, const int64_t off[2], const uint8_t *data,
                                  size_t data_len, const char *name, struct sd35_error *err);
/* No two non-empty tensors from index `first` on share a byte. */
enum sd35_status st_check_overlap (struct st_file *f, size_t first, const uint8_t *data,
                                   const char *name, struct sd35_error *err);
/* "*.safetensors.index.json" → every shard mapped into f (safetensors_index.c). */
enum sd35_status st_open_index (const char *path, struct st_file **out, struct sd35_error *err);
/* 1 if path names a pickle checkpoint by extension. */
int st_is_pickle_name (const char *path);
enum sd35_status st_refuse_pickle (const char *name, struct sd35_error *err);

#endif
