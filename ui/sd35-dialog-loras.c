/* sd35-dialog-loras.c — the LoRA field: every LoRA file found for the chosen model
 * (sd35_find_loras: loras/ beside it or in its folder, ComfyUI's models/loras/), each with a
 * switch and a strength.  The config's "loras" (the PDB argument: a list of "FILE:STRENGTH")
 * holds the ones switched on; a LoRA the config names that is not in those folders (from the
 * settings of an earlier layer, or a script) is listed too. */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"
#include "sd35-spin-scale.h"

typedef struct
{
  gchar         *path;
  GtkWidget     *check;
  GtkAdjustment *strength;
} LoraRow;

typedef struct
{
  Sd35Dialog *dialog;
  GtkWidget  *list;     /* one row per LoRA */
  GtkWidget  *empty;    /* "none found" */
  GPtrArray  *rows;     /* LoraRow * */
  gchar      *model;    /* the model the list was made for */
  gint        filling;  /* no config writes while the list is rebuilt */
} LoraField;

static void
lora_row_free (gpointer p)
{
  LoraRow *row = p;

  g_free (row->path);
  g_free (row);
}

static void
lora_field_free (gpointer p)
{
  LoraField *f = p;

  g_ptr_array_unref (f->rows);
  g_free (f->model);
  g_free (f);
}

/* The rows switched on → config "loras" ("FILE:STRENGTH", '.' as the decimal point). */
static void
loras_store (LoraField *f)
{
  GStrvBuilder *b = g_strv_builder_new ();
  GStrv         strv;
  GString      *line = g_string_new ("loras");

  for (guint i = 0; i < f->rows->len; i++)
    {
      LoraRow *row = g_ptr_array_index (f->rows, i);
      gchar    num[G_ASCII_DTOSTR_BUF_SIZE];

      if (! gtk_check_button_get_active (GTK_CHECK_BUTTON (row->check)))
        continue;
      g_ascii_formatd (num, sizeof num, "%.2f", gtk_adjustment_get_value (row->strength));
      g_strv_builder_take (b, g_strdup_printf ("%s:%s", row->path, num));
      g_string_append_printf (line, " %s:%s", row->path, num);
    }
  strv = g_strv_builder_end (b);
  g_object_set (f->dialog->config, "loras", strv, NULL);
  sd35_dialog_dump (f->dialog, "%s", line->len > 5 ? line->str : "loras none");
  g_string_free (line, TRUE);
  g_strfreev (strv);
  g_strv_builder_unref (b);
}

static void
row_changed (GObject    *object,
             GParamSpec *pspec,
             LoraField  *f)
{
  if (f->filling == 0)
    loras_store (f);
}

static void
row_add (LoraField   *f,
         const gchar *path,
         gboolean     active,
         gdouble      strength)
{
  LoraRow   *row = g_new0 (LoraRow, 1);
  GtkWidget *line = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *spin;
  gchar     *name = g_path_get_basename (path);

  row->path = g_strdup (path);
  row->check = gtk_check_button_new_with_label (name);
  gtk_widget_set_tooltip_text (row->check, path);
  gtk_widget_set_hexpand (row->check, TRUE);
  gtk_check_button_set_active (GTK_CHECK_BUTTON (row->check), active);
  spin = sd35_dialog_spin_new (&row->strength, -2.0, 2.0, 0.05, 2);
  gtk_adjustment_set_value (row->strength, strength);
  gtk_widget_set_hexpand (spin, FALSE);
  gtk_widget_set_tooltip_text (spin, _("Strength: 1 = as trained, 0 = off, negative = the "
                                       "opposite"));
  g_signal_connect (row->check, "notify::active", G_CALLBACK (row_changed), f);
  g_signal_connect (row->strength, "notify::value", G_CALLBACK (row_changed), f);
  gtk_box_append (GTK_BOX (line), row->check);
  gtk_box_append (GTK_BOX (line), spin);
  gtk_box_append (GTK_BOX (f->list), line);
  g_ptr_array_add (f->rows, row);
  g_free (name);
}

static LoraField *
field_of (Sd35Dialog *self)
{
  return self->loras_field != NULL ? g_object_get_data (G_OBJECT (self->loras_field),
                                                        "sd35-loras") : NULL;
}

void
sd35_dialog_loras_refresh (Sd35Dialog  *self,
                           const gchar *model_path)
{
  LoraField *f = field_of (self);
  GStrv      current = NULL;
  gchar    **found;
  GtkWidget *child;

  if (f == NULL)
    return;
  g_object_get (self->config, "loras", &current, NULL);
  f->filling++;
  while ((child = gtk_widget_get_first_child (f->list)) != NULL)
    gtk_box_remove (GTK_BOX (f->list), child);
  g_ptr_array_set_size (f->rows, 0);
  g_free (f->model);
  f->model = g_strdup (model_path);

  found = sd35_find_loras (model_path);
  for (gchar **p = found; *p != NULL; p++)
    {
      gboolean on = FALSE;
      gdouble  strength = 1.0;
      for (gchar **c = current; c != NULL && *c != NULL; c++)
        {
          gchar  path[4096];
          double s;
          if (sd35_lora_spec_parse (*c, path, sizeof path, &s) == 0 && ! strcmp (path, *p))
            {
              on = TRUE;
              strength = s;
            }
        }
      row_add (f, *p, on, strength);
    }
  /* named by the settings or a script but not in the folders: listed, switched on */
  for (gchar **c = current; c != NULL && *c != NULL; c++)
    {
      gchar    path[4096];
      double   s;
      gboolean listed = FALSE;
      if (sd35_lora_spec_parse (*c, path, sizeof path, &s) != 0)
        continue;
      for (gchar **p = found; *p != NULL; p++)
        listed |= ! strcmp (path, *p);
      if (! listed)
        row_add (f, path, TRUE, s);
    }
  sd35_strv_free (found);
  g_strfreev (current);
  gtk_widget_set_visible (f->empty, f->rows->len == 0);
  f->filling--;
  sd35_dialog_dump (self, "loras-found %u for %s", f->rows->len,
                    model_path != NULL ? model_path : "(automatic)");
  loras_store (f);
}

GtkWidget *
sd35_dialog_loras_new (Sd35Dialog *self)
{
  LoraField *f = g_new0 (LoraField, 1);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);

  f->dialog = self;
  f->rows = g_ptr_array_new_with_free_func (lora_row_free);
  f->list = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  f->empty = gtk_label_new (_("None found: put LoRA files (.safetensors) in a “loras” folder "
                              "beside the model"));
  gtk_label_set_xalign (GTK_LABEL (f->empty), 0.0);
  gtk_label_set_wrap (GTK_LABEL (f->empty), TRUE);
  gtk_widget_add_css_class (f->empty, "dim-label");
  gtk_box_append (GTK_BOX (box), f->list);
  gtk_box_append (GTK_BOX (box), f->empty);
  g_object_set_data_full (G_OBJECT (box), "sd35-loras", f, lora_field_free);
  self->loras_field = box;
  /* the model chosen now (automatic: the first one found); later changes refresh it too */
  {
    guint        i = gtk_drop_down_get_selected (GTK_DROP_DOWN (self->model_drop));
    const gchar *path = i < self->model_paths->len ? g_ptr_array_index (self->model_paths, i)
                                                   : NULL;
    if (path == NULL && self->model_paths->len > 1)
      path = g_ptr_array_index (self->model_paths, 1);
    sd35_dialog_loras_refresh (self, path);
  }
  return box;
}

/* For the tests: where the first LoRA's switch is ("lora0"), beside the other fields' bounds. */
void
sd35_dialog_loras_dump_bounds (Sd35Dialog *self,
                               GString    *line)
{
  LoraField *f = field_of (self);

  if (f != NULL && f->rows->len > 0)
    sd35_dialog_dump_bounds_of (self, line, "lora0",
                                ((LoraRow *) g_ptr_array_index (f->rows, 0))->check);
}
