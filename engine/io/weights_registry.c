/* weights_registry.c — which backend tensor holds which linear weight of a file (weights.h).
 * Filled by the weights loader, read by LoRA merging (engine/dit/lora.c). */
#include "weights.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

struct weight_registry
{
  GPtrArray  *slots;    /* struct weight_slot * */
  GHashTable *by_name;  /* part name → (slot index << 2 | part) + 1 */
};

static void
slot_free (gpointer p)
{
  struct weight_slot *s = p;

  if (s == NULL)
    return;
  for (int i = 0; i < s->n_parts; i++)
    g_free (s->parts[i].name);
  free (s->owned_host);
  g_free (s);
}

struct weight_registry *
weight_registry_new (void)
{
  struct weight_registry *r = g_new0 (struct weight_registry, 1);

  r->slots = g_ptr_array_new_with_free_func (slot_free);
  r->by_name = g_hash_table_new (g_str_hash, g_str_equal);  /* keys owned by the slots */
  return r;
}

void
weight_registry_clear (struct weight_registry *r)
{
  if (r == NULL)
    return;
  g_hash_table_remove_all (r->by_name);
  g_ptr_array_set_size (r->slots, 0);
}

void
weight_registry_free (struct weight_registry *r)
{
  if (r == NULL)
    return;
  g_hash_table_destroy (r->by_name);
  g_ptr_array_free (r->slots, TRUE);
  g_free (r);
}

size_t
weight_registry_count (const struct weight_registry *r)
{
  return r != NULL ? r->slots->len : 0;
}

struct weight_slot *
weight_registry_at (struct weight_registry *r, size_t i)
{
  return r != NULL && i < r->slots->len ? r->slots->pdata[i] : NULL;
}

struct weight_slot *
weight_registry_find (struct weight_registry *r, const char *name, int64_t *row0,
                      int64_t *rows)
{
  gpointer            v;
  guintptr            code;
  struct weight_slot *s;

  if (r == NULL || !g_hash_table_lookup_extended (r->by_name, name, NULL, &v))
    return NULL;
  code = GPOINTER_TO_SIZE (v) - 1;
  s = r->slots->pdata[code >> 2];
  if (s == NULL)
    return NULL;
  *row0 = s->parts[code & 3].row0;
  *rows = s->parts[code & 3].rows;
  return s;
}

int
weight_registry_add (struct weight_registry *r, struct tensor *t, int n_parts,
                     const char *const names[3], const struct st_tensor *const src[3])
{
  struct weight_slot *s;
  int64_t             row0 = 0, r0, nr;
  guint               index;

  if (r == NULL || t == NULL || t->ndim != 2 || n_parts < 1 || n_parts > 3)
    return 0;
  /* a reload registers the same names again: the stale slot goes */
  if ((s = weight_registry_find (r, names[0], &r0, &nr)) != NULL)
    for (guint i = 0; i < r->slots->len; i++)
      if (r->slots->pdata[i] == s)
        {
          for (int p = 0; p < s->n_parts; p++)
            g_hash_table_remove (r->by_name, s->parts[p].name);
          slot_free (s);
          r->slots->pdata[i] = NULL;
        }
  s = g_new0 (struct weight_slot, 1);
  s->t = t;
  s->rows = t->shape[0];
  s->cols = t->shape[1];
  s->n_parts = n_parts;
  for (int p = 0; p < n_parts; p++)
    {
      s->parts[p].name = g_strdup (names[p]);
      s->parts[p].src = src[p];
      s->parts[p].row0 = row0;
      s->parts[p].rows = src[p]->ndim >= 1 ? src[p]->shape[0] : 0;
      row0 += s->parts[p].rows;
    }
  if (row0 != s->rows)
    {
      slot_free (s);
      return -1;
    }
  index = r->slots->len;
  g_ptr_array_add (r->slots, s);
  for (int p = 0; p < n_parts; p++)
    g_hash_table_insert (r->by_name, s->parts[p].name,
                         GSIZE_TO_POINTER ((((gsize) index << 2) | (gsize) p) + 1));
  return 0;
}
