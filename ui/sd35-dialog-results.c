/* sd35-dialog-results.c — the results of a batch as thumbnails (as Krita AI Diffusion's
 * history strip shows them), the artist's choice of which become layers, and the layers'
 * insertion.
 *
 * A batch (batch count > 1) ends with its images side by side under the preview, each a
 * toggle with its seed.  "Add selected" inserts the chosen ones, "Add all" every one not
 * added yet, each press one undo step.  "Always add all images" (remembered in the GIMP
 * profile, sd35-dialog.ini) adds the whole batch at once, as a plain PDB call does; the
 * thumbnails then only show what was added.  A single image is added at once, as before.
 * The images of a batch stay here until the next Generate or Close.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"

#define SETTINGS_FILE  "sd35-dialog.ini"
#define SETTINGS_GROUP "dialog"
#define KEY_ADD_ALL    "batch-add-all"
#define THUMB_SIZE     96

gint
sd35_dialog_results_n_images (Sd35Job *job)
{
  return sd35_job_n_images (job);
}

/* ---- the remembered choice ---- */

static gchar *
settings_path (void)
{
  return g_build_filename (gimp_directory (), SETTINGS_FILE, NULL);
}

static gboolean
remembered_add_all (void)
{
  GKeyFile *kf = g_key_file_new ();
  gchar    *path = settings_path ();
  gboolean  add_all = FALSE;

  if (g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    add_all = g_key_file_get_boolean (kf, SETTINGS_GROUP, KEY_ADD_ALL, NULL);
  g_key_file_unref (kf);
  g_free (path);
  return add_all;
}

static void
remember_add_all (gboolean add_all)
{
  GKeyFile *kf = g_key_file_new ();
  gchar    *path = settings_path ();
  GError   *error = NULL;

  g_key_file_load_from_file (kf, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  g_key_file_set_boolean (kf, SETTINGS_GROUP, KEY_ADD_ALL, add_all);
  if (! g_key_file_save_to_file (kf, path, &error))
    {
      /* not worth an error bar: the choice holds for this dialog all the same */
      g_printerr ("gimp-sd35: %s\n", error->message);
      g_clear_error (&error);
    }
  g_key_file_unref (kf);
  g_free (path);
}

gboolean
sd35_dialog_results_add_all (Sd35Dialog *self)
{
  return gtk_check_button_get_active (GTK_CHECK_BUTTON (self->results_always_all));
}

static void
always_all_toggled (GtkCheckButton *check,
                    Sd35Dialog     *self)
{
  if (self->building)
    return;
  remember_add_all (gtk_check_button_get_active (check));
  sd35_dialog_dump (self, "batch-add-all %s",
                    gtk_check_button_get_active (check) ? "yes" : "no");
}

/* The choice, for the form (under Batch count). */
GtkWidget *
sd35_dialog_results_choice_new (Sd35Dialog *self)
{
  self->results_always_all = gtk_check_button_new_with_mnemonic (
    _("Alwa_ys add all images of a batch"));
  gtk_widget_set_tooltip_text (self->results_always_all,
                               _("On: every image of a batch becomes a layer at once. Off: "
                                 "the images are shown, and you add the ones you want "
                                 "(remembered)"));
  gtk_check_button_set_active (GTK_CHECK_BUTTON (self->results_always_all),
                               remembered_add_all ());
  g_signal_connect (self->results_always_all, "toggled", G_CALLBACK (always_all_toggled),
                    self);
  return self->results_always_all;
}

/* ---- inserting ---- */

static gint
n_chosen (Sd35Dialog *self)
{
  gint n = 0;

  for (guint i = 0; i < self->results_toggles->len; i++)
    {
      GtkWidget *t = g_ptr_array_index (self->results_toggles, i);

      n += gtk_widget_get_sensitive (t) && gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (t));
    }
  return n;
}

static void
update_buttons (Sd35Dialog *self)
{
  gboolean any_left = FALSE;

  for (guint i = 0; i < self->results_toggles->len; i++)
    any_left |= gtk_widget_get_sensitive (g_ptr_array_index (self->results_toggles, i));
  gtk_widget_set_sensitive (self->results_add_selected, n_chosen (self) > 0);
  gtk_widget_set_sensitive (self->results_add_all, any_left);
}

GimpLayer **
sd35_dialog_results_insert (Sd35Dialog     *self,
                            Sd35Job        *job,
                            const gboolean *chosen,
                            GError        **error)
{
  gint        n_total = sd35_job_n_images (job), n = 0;
  GimpLayer **layers;
  GString    *seeds;

  for (gint i = 0; i < n_total; i++)
    n += chosen == NULL || chosen[i];
  if (n == 0)
    return g_new0 (GimpLayer *, 1);
  layers = sd35_job_insert_chosen (job, chosen, error);
  if (layers == NULL)
    return NULL;
  gimp_displays_flush ();
  g_free (self->last_layers);
  self->last_layers = layers;
  self->n_inserted += n;
  seeds = g_string_new (NULL);
  for (gint i = 0; i < n_total; i++)
    if (chosen == NULL || chosen[i])
      g_string_append_printf (seeds, "%s%u", seeds->len ? "," : "",
                              (guint) sd35_job_result (job, i)->seed);
  sd35_dialog_dump (self, "event inserted %d size %dx%d seed %u total %d seeds %s", n,
                    sd35_job_width (job), sd35_job_height (job),
                    (guint) sd35_job_result (job, 0)->seed, self->n_inserted, seeds->str);
  g_string_free (seeds, TRUE);
  return layers;
}

static void
add_chosen (Sd35Dialog *self,
            gboolean    all)
{
  guint     n = self->results_toggles->len;
  gboolean *chosen = g_new0 (gboolean, n);
  GError   *error = NULL;
  gint      count = 0;
  gchar    *text;

  if (self->results_job == NULL || self->job != NULL)
    {
      g_free (chosen);
      return;
    }
  for (guint i = 0; i < n; i++)
    {
      GtkWidget *t = g_ptr_array_index (self->results_toggles, i);

      chosen[i] = gtk_widget_get_sensitive (t) &&
                  (all || gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (t)));
      count += chosen[i];
    }
  if (count > 0 && sd35_dialog_results_insert (self, self->results_job, chosen, &error) == NULL)
    {
      sd35_dialog_show_gerror (self, error);
      g_clear_error (&error);
      g_free (chosen);
      return;
    }
  /* added ones stay visible, marked, and cannot be added twice */
  for (guint i = 0; i < n; i++)
    if (chosen[i])
      {
        GtkWidget *t = g_ptr_array_index (self->results_toggles, i);

        gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (t), TRUE);
        gtk_widget_set_sensitive (t, FALSE);
      }
  text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Added %d layer", "Added %d layers",
                                       count), count);
  gtk_label_set_text (GTK_LABEL (self->step_label), text);
  g_free (text);
  g_free (chosen);
  update_buttons (self);
}

static void
add_selected_clicked (GtkButton  *button,
                      Sd35Dialog *self)
{
  add_chosen (self, FALSE);
}

static void
add_all_clicked (GtkButton  *button,
                 Sd35Dialog *self)
{
  add_chosen (self, TRUE);
}

/* ---- the strip ---- */

static void
thumb_toggled (GtkToggleButton *toggle,
               Sd35Dialog      *self)
{
  update_buttons (self);
  sd35_dialog_dump (self, "thumb %s %s", (const gchar *) g_object_get_data (G_OBJECT (toggle),
                                                                            "sd35-seed"),
                    gtk_toggle_button_get_active (toggle) ? "chosen" : "not-chosen");
}

void
sd35_dialog_results_clear (Sd35Dialog *self)
{
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (self->results_flow)) != NULL)
    gtk_flow_box_remove (GTK_FLOW_BOX (self->results_flow), child);
  g_ptr_array_set_size (self->results_toggles, 0);
  g_clear_pointer (&self->results_job, sd35_job_unref);
  gtk_widget_set_visible (self->results_area, FALSE);
}

static GtkWidget *
thumbnail_new (const struct sd35_result *r)
{
  GBytes     *bytes = g_bytes_new (r->rgb, (gsize) r->width * r->height * 3);
  GdkTexture *texture = gdk_memory_texture_new (r->width, r->height, GDK_MEMORY_R8G8B8,
                                                bytes, (gsize) r->width * 3);
  GtkWidget  *picture = gtk_picture_new_for_paintable (GDK_PAINTABLE (texture));

  gtk_picture_set_content_fit (GTK_PICTURE (picture), GTK_CONTENT_FIT_CONTAIN);
  gtk_widget_set_size_request (picture, THUMB_SIZE, THUMB_SIZE);
  g_object_unref (texture);
  g_bytes_unref (bytes);
  return picture;
}

void
sd35_dialog_results_show (Sd35Dialog *self,
                          Sd35Job    *job,
                          gboolean    all_added)
{
  gint n = sd35_job_n_images (job);

  sd35_dialog_results_clear (self);
  self->results_job = sd35_job_ref (job);
  for (gint i = 0; i < n; i++)
    {
      const struct sd35_result *r = sd35_job_result (job, i);
      GtkWidget *toggle = gtk_toggle_button_new ();
      gchar     *seed = g_strdup_printf ("%u", (guint) r->seed);
      gchar     *tip = g_strdup_printf (_("Seed %u: click to choose it"), (guint) r->seed);

      if (r->rgb == NULL)
        {
          g_free (seed);
          g_free (tip);
          g_object_unref (g_object_ref_sink (toggle));
          continue;
        }
      gtk_button_set_child (GTK_BUTTON (toggle), thumbnail_new (r));
      gtk_widget_add_css_class (toggle, "sd35-thumb");
      gtk_widget_set_tooltip_text (toggle, tip);
      gtk_accessible_update_property (GTK_ACCESSIBLE (toggle), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      tip, -1);
      g_object_set_data_full (G_OBJECT (toggle), "sd35-seed", seed, g_free);
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (toggle), all_added);
      gtk_widget_set_sensitive (toggle, ! all_added);
      g_signal_connect (toggle, "toggled", G_CALLBACK (thumb_toggled), self);
      gtk_flow_box_append (GTK_FLOW_BOX (self->results_flow), toggle);
      g_ptr_array_add (self->results_toggles, toggle);
      g_free (tip);
    }
  gtk_widget_set_visible (self->results_area, TRUE);
  update_buttons (self);
  sd35_dialog_dump (self, "event results %d %s", n, all_added ? "all-added" : "to-choose");
}

/* For the tests: where each thumbnail and the two buttons are on the screen. */
void
sd35_dialog_results_dump_bounds (Sd35Dialog *self,
                                 GString    *line)
{
  if (self->results_toggles == NULL || ! gtk_widget_get_visible (self->results_area))
    return;
  for (guint i = 0; i < self->results_toggles->len; i++)
    {
      gchar *name = g_strdup_printf ("thumb%u", i);

      sd35_dialog_dump_bounds_of (self, line, name,
                                  g_ptr_array_index (self->results_toggles, i));
      g_free (name);
    }
  sd35_dialog_dump_bounds_of (self, line, "add-selected", self->results_add_selected);
  sd35_dialog_dump_bounds_of (self, line, "add-all", self->results_add_all);
}

GtkWidget *
sd35_dialog_results_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *scroll = gtk_scrolled_window_new ();

  self->results_toggles = g_ptr_array_new ();
  self->results_flow = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (self->results_flow), GTK_SELECTION_NONE);
  gtk_flow_box_set_homogeneous (GTK_FLOW_BOX (self->results_flow), TRUE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (self->results_flow), SD35_MAX_BATCH);
  gtk_flow_box_set_min_children_per_line (GTK_FLOW_BOX (self->results_flow), 1);
  gtk_flow_box_set_row_spacing (GTK_FLOW_BOX (self->results_flow), 4);
  gtk_flow_box_set_column_spacing (GTK_FLOW_BOX (self->results_flow), 4);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), self->results_flow);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroll), TRUE);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scroll),
                                              2 * THUMB_SIZE + 40);

  self->results_add_selected = gtk_button_new_with_mnemonic (_("Add selec_ted"));
  self->results_add_all = gtk_button_new_with_mnemonic (_("Add a_ll"));
  gtk_widget_set_tooltip_text (self->results_add_selected,
                               _("Add the chosen images as layers (one undo step)"));
  g_signal_connect (self->results_add_selected, "clicked", G_CALLBACK (add_selected_clicked),
                    self);
  g_signal_connect (self->results_add_all, "clicked", G_CALLBACK (add_all_clicked), self);

  gtk_box_append (GTK_BOX (buttons), self->results_add_selected);
  gtk_box_append (GTK_BOX (buttons), self->results_add_all);
  gtk_box_append (GTK_BOX (box), scroll);
  gtk_box_append (GTK_BOX (box), buttons);
  self->results_area = box;
  gtk_widget_set_visible (box, FALSE);
  return box;
}
