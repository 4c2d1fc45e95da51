/* sd35-dialog.c — the dialog window: its widgets, and their bindings to the config.
 *
 * The GimpProcedureConfig is the model and every widget a view of one of its properties,
 * bound with g_object_bind_property (BIDIRECTIONAL | SYNC_CREATE), as GIMP's own plug-ins
 * connect the config to their previews (plug-ins/common/grid.c).  Where the dialog shows
 * something the PDB argument does not hold (the size of the selection for width 0, a seed
 * for "random"), a transform function translates.  Layout: settings on the left in a
 * scrolled column (usable at 1366×768), preview and progress on the right, errors in a
 * revealer above the buttons.  Actions and the run live in sd35-dialog-actions.c.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"
#include "sd35-models.h"

G_DEFINE_FINAL_TYPE (Sd35Dialog, sd35_dialog, GTK_TYPE_WINDOW)

/* SD 3.5 was trained around one megapixel; these are the usual ~1 MP sizes per aspect
 * ratio (multiples of 64), as offered by the Stability AI reference UIs. */
static const struct
{
  const gchar *label;
  gint         width, height;
} size_presets[] = {
  { N_("From the selection or image"), 0, 0 },
  { N_("Square 1:1 (1024 × 1024)"), 1024, 1024 },
  { N_("Landscape 4:3 (1152 × 896)"), 1152, 896 },
  { N_("Portrait 3:4 (896 × 1152)"), 896, 1152 },
  { N_("Landscape 3:2 (1216 × 832)"), 1216, 832 },
  { N_("Portrait 2:3 (832 × 1216)"), 832, 1216 },
  { N_("Wide 16:9 (1344 × 768)"), 1344, 768 },
  { N_("Tall 9:16 (768 × 1344)"), 768, 1344 },
  { N_("Custom"), -1, -1 },
};
#define SIZE_FROM_SELECTION 0
#define SIZE_CUSTOM         (G_N_ELEMENTS (size_presets) - 1)

static const gchar *sampler_ids[] = { "default", "euler", "dpmpp-2m" };
static const gchar *backend_ids[] = { "auto", "cuda", "cpu" };

/* ---- small builders ---- */

static GtkWidget *
row_label (GtkGrid     *grid,
           gint         row,
           const gchar *mnemonic,
           GtkWidget   *target)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);

  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), target);
  gtk_grid_attach (grid, label, 0, row, 1, 1);
  return label;
}

static GtkWidget *
spin_new (GtkAdjustment **adj_out,
          gdouble         lower,
          gdouble         upper,
          gdouble         step,
          guint           digits)
{
  GtkAdjustment *adj = gtk_adjustment_new (lower, lower, upper, step, step * 10, 0);
  GtkWidget     *spin = gtk_spin_button_new (adj, step, digits);

  gtk_spin_button_set_numeric (GTK_SPIN_BUTTON (spin), FALSE);
  gtk_widget_set_hexpand (spin, TRUE);
  if (adj_out != NULL)
    *adj_out = adj;
  return spin;
}

static GtkWidget *
text_view_new (gint min_height)
{
  GtkWidget *view = gtk_text_view_new ();
  GtkWidget *scroll = gtk_scrolled_window_new ();

  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_accepts_tab (GTK_TEXT_VIEW (view), FALSE);
  gtk_widget_add_css_class (view, "sd35-prompt");
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), view);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll), min_height);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_has_frame (GTK_SCROLLED_WINDOW (scroll), TRUE);
  return scroll;
}

static void
bind (gpointer     config,
      const gchar *property,
      gpointer     target,
      const gchar *target_property)
{
  g_object_bind_property (config, property, target, target_property,
                          G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
}

/* "Auto" for the argument's "model default" value (0 steps, guidance < 0, shift 0). */
static gboolean
spin_output_auto (GtkSpinButton *spin,
                  gpointer       data)
{
  gdouble value = gtk_adjustment_get_value (gtk_spin_button_get_adjustment (spin));
  gchar  *text;

  if (GPOINTER_TO_INT (data) ? value >= 0.0 : value > 0.0)
    return FALSE;
  text = g_strdup (_("Auto"));
  if (g_strcmp0 (gtk_editable_get_text (GTK_EDITABLE (spin)), text) != 0)
    gtk_editable_set_text (GTK_EDITABLE (spin), text);
  g_free (text);
  return TRUE;
}

static gint
spin_input_auto (GtkSpinButton *spin,
                 gdouble       *new_value,
                 gpointer       data)
{
  const gchar *text = gtk_editable_get_text (GTK_EDITABLE (spin));

  if (g_ascii_strcasecmp (text, _("Auto")) != 0 && g_ascii_strcasecmp (text, "auto") != 0)
    return FALSE;
  *new_value = gtk_adjustment_get_lower (gtk_spin_button_get_adjustment (spin));
  return TRUE;
}

static void
spin_allow_auto (GtkWidget *spin,
                 gboolean   auto_below_zero)
{
  g_signal_connect (spin, "output", G_CALLBACK (spin_output_auto),
                    GINT_TO_POINTER (auto_below_zero));
  g_signal_connect (spin, "input", G_CALLBACK (spin_input_auto), NULL);
}

/* ---- choice arguments <-> drop-down positions ---- */

static gboolean
choice_to_position (GBinding     *binding,
                    const GValue *from,
                    GValue       *to,
                    gpointer      ids)
{
  const gchar **list = ids;
  const gchar  *id = g_value_get_string (from);

  for (guint i = 0; i < 3; i++)
    if (! g_strcmp0 (id, list[i]))
      {
        g_value_set_uint (to, i);
        return TRUE;
      }
  g_value_set_uint (to, 0);
  return TRUE;
}

static gboolean
position_to_choice (GBinding     *binding,
                    const GValue *from,
                    GValue       *to,
                    gpointer      ids)
{
  const gchar **list = ids;
  guint         i = g_value_get_uint (from);

  g_value_set_string (to, list[i < 3 ? i : 0]);
  return TRUE;
}

static GtkWidget *
choice_drop_new (Sd35Dialog   *self,
                 const gchar  *property,
                 const gchar **ids,
                 const gchar  *label0,
                 const gchar  *label1,
                 const gchar  *label2)
{
  const gchar *labels[] = { label0, label1, label2, NULL };
  GtkWidget   *drop = gtk_drop_down_new_from_strings (labels);

  gtk_widget_set_hexpand (drop, TRUE);
  g_object_bind_property_full (self->config, property, drop, "selected",
                               G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE,
                               choice_to_position, position_to_choice, ids, NULL);
  return drop;
}

/* ---- size ---- */

static gboolean
size_to_adjustment (GBinding     *binding,
                    const GValue *from,
                    GValue       *to,
                    gpointer      data)
{
  Sd35Dialog *self = data;
  gint        v = g_value_get_int (from);
  gboolean    is_width = ! strcmp (g_binding_get_source_property (binding), "width");

  if (v <= 0)
    v = is_width ? self->selection_w : self->selection_h;
  g_value_set_double (to, sd35_round16 (v));
  return TRUE;
}

static gboolean
adjustment_to_size (GBinding     *binding,
                    const GValue *from,
                    GValue       *to,
                    gpointer      data)
{
  Sd35Dialog *self = data;

  if (gtk_drop_down_get_selected (GTK_DROP_DOWN (self->size_drop)) == SIZE_FROM_SELECTION)
    g_value_set_int (to, 0);
  else
    g_value_set_int (to, sd35_round16 ((gint) g_value_get_double (from)));
  return TRUE;
}

static void
size_preset_changed (GtkDropDown *drop,
                     GParamSpec  *pspec,
                     Sd35Dialog  *self)
{
  guint    i = gtk_drop_down_get_selected (drop);
  gboolean custom = (i == SIZE_CUSTOM);

  gtk_widget_set_sensitive (self->width_spin, custom);
  gtk_widget_set_sensitive (self->height_spin, custom);
  if (self->building || i >= G_N_ELEMENTS (size_presets))
    return;
  self->setting_default++;
  if (i == SIZE_FROM_SELECTION)
    g_object_set (self->config, "width", 0, "height", 0, NULL);
  else if (! custom)
    g_object_set (self->config, "width", size_presets[i].width,
                  "height", size_presets[i].height, NULL);
  else
    g_object_set (self->config,
                  "width", (gint) gtk_adjustment_get_value (self->width_adj),
                  "height", (gint) gtk_adjustment_get_value (self->height_adj), NULL);
  self->setting_default--;
}

static guint
size_preset_for (gint width,
                 gint height)
{
  if (width <= 0 && height <= 0)
    return SIZE_FROM_SELECTION;
  for (guint i = 1; i < SIZE_CUSTOM; i++)
    if (size_presets[i].width == width && size_presets[i].height == height)
      return i;
  return SIZE_CUSTOM;
}

static void
selection_size (Sd35Dialog *self)
{
  Sd35Box box = { 0 };

  if (self->mode == SD35_MODE_IMG2IMG && self->drawables[0] != NULL)
    {
      if (! sd35_selection_drawable_box (self->drawables[0], &box))
        box.width = box.height = 0;
    }
  else if (! sd35_selection_image_box (self->image, &box))
    {
      box.width = gimp_image_get_width (self->image);
      box.height = gimp_image_get_height (self->image);
    }
  self->selection_w = sd35_round16 (MAX (box.width, 16));
  self->selection_h = sd35_round16 (MAX (box.height, 16));
}

static GtkWidget *
size_row_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *spins = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget *times = gtk_label_new ("×");
  const gchar *labels[G_N_ELEMENTS (size_presets) + 1];
  gint       w, h;

  for (guint i = 0; i < G_N_ELEMENTS (size_presets); i++)
    labels[i] = _(size_presets[i].label);
  labels[G_N_ELEMENTS (size_presets)] = NULL;
  self->size_drop = gtk_drop_down_new_from_strings (labels);
  g_object_get (self->config, "width", &w, "height", &h, NULL);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->size_drop), size_preset_for (w, h));

  /* only multiples of 16 (the VAE's 8 × the MMDiT's 2×2 patches) */
  self->width_spin = spin_new (&self->width_adj, 16, SD35_MAX_SIDE, 16, 0);
  self->height_spin = spin_new (&self->height_adj, 16, SD35_MAX_SIDE, 16, 0);
  gtk_spin_button_set_snap_to_ticks (GTK_SPIN_BUTTON (self->width_spin), TRUE);
  gtk_spin_button_set_snap_to_ticks (GTK_SPIN_BUTTON (self->height_spin), TRUE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->width_spin),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Width"), -1);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->height_spin),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Height"), -1);
  g_object_bind_property_full (self->config, "width", self->width_adj, "value",
                               G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE,
                               size_to_adjustment, adjustment_to_size, self, NULL);
  g_object_bind_property_full (self->config, "height", self->height_adj, "value",
                               G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE,
                               size_to_adjustment, adjustment_to_size, self, NULL);
  g_signal_connect (self->size_drop, "notify::selected", G_CALLBACK (size_preset_changed),
                    self);
  size_preset_changed (GTK_DROP_DOWN (self->size_drop), NULL, self);

  gtk_box_append (GTK_BOX (spins), self->width_spin);
  gtk_box_append (GTK_BOX (spins), times);
  gtk_box_append (GTK_BOX (spins), self->height_spin);
  gtk_box_append (GTK_BOX (box), self->size_drop);
  gtk_box_append (GTK_BOX (box), spins);
  return box;
}

/* ---- seed: a number, a dice and a lock ---- */

static void
seed_store (Sd35Dialog *self)
{
  gboolean locked = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->seed_lock));

  /* the argument's -1 means "a new random seed every time" */
  g_object_set (self->config, "seed",
                locked ? (gint) gtk_adjustment_get_value (self->seed_adj) : -1, NULL);
  gtk_button_set_icon_name (GTK_BUTTON (self->seed_lock),
                            locked ? "changes-prevent-symbolic" : "changes-allow-symbolic");
  gtk_widget_set_tooltip_text (self->seed_lock,
                               locked ? _("Seed locked: every try uses this seed") :
                                        _("Seed unlocked: every try gets a new random seed"));
}

void
sd35_dialog_new_random_seed (Sd35Dialog *self)
{
  gtk_adjustment_set_value (self->seed_adj, g_random_int_range (0, G_MAXINT));
}

static void
seed_dice_clicked (GtkButton  *button,
                   Sd35Dialog *self)
{
  sd35_dialog_new_random_seed (self);
}

static GtkWidget *
seed_row_new (Sd35Dialog *self,
              GtkWidget **spin_out)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget *spin = spin_new (&self->seed_adj, 0, G_MAXINT, 1, 0);
  GtkWidget *dice = gtk_button_new_from_icon_name ("media-playlist-shuffle-symbolic");
  gint       seed;

  self->seed_lock = gtk_toggle_button_new ();
  g_object_get (self->config, "seed", &seed, NULL);
  gtk_adjustment_set_value (self->seed_adj, seed >= 0 ? seed : g_random_int_range (0, G_MAXINT));
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), seed >= 0);
  gtk_widget_set_tooltip_text (dice, _("Pick a random seed"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (dice), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Random seed"), -1);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->seed_lock),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Lock the seed"), -1);
  g_signal_connect (dice, "clicked", G_CALLBACK (seed_dice_clicked), self);
  g_signal_connect_swapped (self->seed_adj, "value-changed", G_CALLBACK (seed_store), self);
  g_signal_connect_swapped (self->seed_lock, "toggled", G_CALLBACK (seed_store), self);
  seed_store (self);

  gtk_box_append (GTK_BOX (box), spin);
  gtk_box_append (GTK_BOX (box), dice);
  gtk_box_append (GTK_BOX (box), self->seed_lock);
  *spin_out = spin;
  return box;
}

/* ---- model: list, browse, detected variant and its defaults ---- */

static void
model_apply_defaults (Sd35Dialog *self,
                      const gchar *path)
{
  GError               *error = NULL;
  enum sd35_variant     variant = sd35_models_detect (path, &error);
  struct sd35_defaults  d;
  gchar                *text;

  if (variant == SD35_VARIANT_UNKNOWN)
    {
      text = g_strdup_printf (_("No usable model here: %s"), error->message);
      gtk_label_set_text (GTK_LABEL (self->variant_label), text);
      g_free (text);
      g_clear_error (&error);
      return;
    }
  text = g_strdup_printf (_("Detected: %s"), sd35_variant_name (variant));
  gtk_label_set_text (GTK_LABEL (self->variant_label), text);
  g_free (text);

  /* a model brings its own steps and guidance (Turbo: 4 and 1) unless the user set them */
  sd35_variant_defaults (variant, &d);
  self->setting_default++;
  if (! self->steps_touched)
    g_object_set (self->config, "steps", d.steps, NULL);
  if (! self->guidance_touched)
    g_object_set (self->config, "guidance", d.cfg, NULL);
  self->setting_default--;
}

static void
model_selected (GtkDropDown *drop,
                GParamSpec  *pspec,
                Sd35Dialog  *self)
{
  guint        i = gtk_drop_down_get_selected (drop);
  const gchar *path;
  GFile       *file;

  if (i >= self->model_paths->len)
    return;
  path = g_ptr_array_index (self->model_paths, i);
  file = path != NULL ? g_file_new_for_path (path) : NULL;
  g_object_set (self->config, "model", file, NULL);
  g_clear_object (&file);
  model_apply_defaults (self, path);
}

static guint
model_add (Sd35Dialog  *self,
           const gchar *path)
{
  gchar *base, *name;

  for (guint i = 1; i < self->model_paths->len; i++)
    if (! g_strcmp0 (g_ptr_array_index (self->model_paths, i), path))
      return i;
  /* the folder or file name, then where it is, so that two snapshots can be told apart */
  base = g_path_get_basename (path);
  name = g_strdup_printf ("%s — %s", base, path);
  g_free (base);
  g_ptr_array_add (self->model_paths, g_strdup (path));
  gtk_string_list_append (self->model_names, name);
  g_free (name);
  return self->model_paths->len - 1;
}

static void
browse_done (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  Sd35Dialog *self = data;
  GFile      *file = gtk_file_dialog_open_finish (GTK_FILE_DIALOG (source), result, NULL);
  gchar      *path;

  if (file != NULL && (path = g_file_get_path (file)) != NULL)
    {
      gtk_drop_down_set_selected (GTK_DROP_DOWN (self->model_drop), model_add (self, path));
      g_free (path);
    }
  g_clear_object (&file);
  g_object_unref (self);
}

static void
browse_clicked (GtkButton  *button,
                Sd35Dialog *self)
{
  GtkFileDialog *dialog = gtk_file_dialog_new ();
  GtkFileFilter *filter = gtk_file_filter_new ();
  GListStore    *filters = g_list_store_new (GTK_TYPE_FILE_FILTER);

  gtk_file_dialog_set_title (dialog, _("Choose a Stable Diffusion 3.5 model"));
  gtk_file_filter_set_name (filter, _("Safetensors models"));
  gtk_file_filter_add_pattern (filter, "*.safetensors");
  gtk_file_filter_add_pattern (filter, "*.safetensors.index.json");
  g_list_store_append (filters, filter);
  gtk_file_dialog_set_filters (dialog, G_LIST_MODEL (filters));
  gtk_file_dialog_open (dialog, GTK_WINDOW (self), NULL, browse_done, g_object_ref (self));
  g_object_unref (filters);
  g_object_unref (filter);
  g_object_unref (dialog);
}

static GtkWidget *
model_row_new (Sd35Dialog *self)
{
  GtkWidget  *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget  *line = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget  *browse = gtk_button_new_with_mnemonic (_("_Browse…"));
  GFile      *file = NULL;
  gchar      *current = NULL, **found;
  guint       selected = 0;

  g_object_get (self->config, "model", &file, NULL);
  if (file != NULL)
    current = g_file_get_path (file);
  g_clear_object (&file);

  self->model_paths = g_ptr_array_new_with_free_func (g_free);
  self->model_names = gtk_string_list_new (NULL);
  g_ptr_array_add (self->model_paths, NULL);
  gtk_string_list_append (self->model_names, _("Automatic (first model found)"));
  found = sd35_models_find (current);
  for (gchar **p = found; *p != NULL; p++)
    model_add (self, *p);
  if (current != NULL)
    selected = model_add (self, current);
  g_strfreev (found);
  g_free (current);

  self->model_drop = gtk_drop_down_new (G_LIST_MODEL (self->model_names), NULL);
  gtk_widget_set_hexpand (self->model_drop, TRUE);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->model_drop), selected);
  self->variant_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->variant_label), 0.0);
  gtk_label_set_wrap (GTK_LABEL (self->variant_label), TRUE);
  gtk_widget_add_css_class (self->variant_label, "dim-label");
  gtk_widget_set_tooltip_text (browse, _("Pick an MMDiT .safetensors file"));
  g_signal_connect (browse, "clicked", G_CALLBACK (browse_clicked), self);
  g_signal_connect (self->model_drop, "notify::selected", G_CALLBACK (model_selected), self);

  gtk_box_append (GTK_BOX (line), self->model_drop);
  gtk_box_append (GTK_BOX (line), browse);
  gtk_box_append (GTK_BOX (box), line);
  gtk_box_append (GTK_BOX (box), self->variant_label);
  return box;
}

static void
value_touched (GtkAdjustment *adj,
               Sd35Dialog    *self)
{
  if (self->building || self->setting_default > 0)
    return;
  if (adj == self->steps_adj)
    self->steps_touched = TRUE;
  else
    self->guidance_touched = TRUE;
}

/* ---- the settings column ---- */

static GtkWidget *
settings_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *grid = gtk_grid_new ();
  GtkWidget *adv = gtk_grid_new ();
  GtkWidget *expander = gtk_expander_new_with_mnemonic (_("_Advanced"));
  GtkWidget *prompt = text_view_new (80), *negative = text_view_new (40);
  GtkWidget *w, *label, *steps, *seed_spin;
  GtkAdjustment *adj;
  gint       row = 0;

  self->prompt_view = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (prompt));
  self->negative_view = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (negative));
  bind (self->config, "prompt",
        gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompt_view)), "text");
  bind (self->config, "negative-prompt",
        gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->negative_view)), "text");

  label = gtk_label_new_with_mnemonic (_("_Prompt"));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->prompt_view);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), prompt);
  label = gtk_label_new_with_mnemonic (_("_Negative prompt"));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->negative_view);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), negative);

  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  w = model_row_new (self);
  row_label (GTK_GRID (grid), row, _("_Model"), self->model_drop);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);

  selection_size (self);
  w = size_row_new (self);
  row_label (GTK_GRID (grid), row, _("Si_ze"), self->size_drop);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);

  steps = spin_new (&self->steps_adj, 0, 1000, 1, 0);
  spin_allow_auto (steps, FALSE);
  bind (self->config, "steps", self->steps_adj, "value");
  row_label (GTK_GRID (grid), row, _("_Steps"), steps);
  gtk_grid_attach (GTK_GRID (grid), steps, 1, row++, 1, 1);

  w = spin_new (&self->guidance_adj, -1, 50, 0.5, 1);
  spin_allow_auto (w, TRUE);
  bind (self->config, "guidance", self->guidance_adj, "value");
  row_label (GTK_GRID (grid), row, _("_Guidance"), w);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
  g_signal_connect (self->steps_adj, "value-changed", G_CALLBACK (value_touched), self);
  g_signal_connect (self->guidance_adj, "value-changed", G_CALLBACK (value_touched), self);

  w = seed_row_new (self, &seed_spin);
  row_label (GTK_GRID (grid), row, _("S_eed"), seed_spin);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);

  self->sampler_drop = choice_drop_new (self, "sampler", sampler_ids, _("Model default"),
                                        _("Euler"), _("DPM++ 2M"));
  row_label (GTK_GRID (grid), row, _("Sa_mpler"), self->sampler_drop);
  gtk_grid_attach (GTK_GRID (grid), self->sampler_drop, 1, row++, 1, 1);

  if (self->mode == SD35_MODE_IMG2IMG)
    {
      w = gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, 0.01, 1.0, 0.01);
      gtk_scale_set_digits (GTK_SCALE (w), 2);
      gtk_scale_set_draw_value (GTK_SCALE (w), TRUE);
      gtk_widget_set_hexpand (w, TRUE);
      bind (self->config, "strength", gtk_range_get_adjustment (GTK_RANGE (w)), "value");
      gtk_widget_set_tooltip_text (w, _("How much to change: low keeps the layer, 1 ignores it"));
      row_label (GTK_GRID (grid), row, _("St_rength"), w);
      gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
      w = gtk_check_button_new_with_mnemonic (_("Change only the _selection (soft edges kept)"));
      bind (self->config, "use-selection-mask", w, "active");
      gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
    }

  w = spin_new (&adj, 1, SD35_MAX_BATCH, 1, 0);
  bind (self->config, "batch-count", adj, "value");
  gtk_widget_set_tooltip_text (w, _("Number of images: one layer each, seeds s, s+1, …"));
  row_label (GTK_GRID (grid), row, _("_Batch count"), w);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
  gtk_box_append (GTK_BOX (box), grid);

  /* Advanced */
  row = 0;
  gtk_grid_set_row_spacing (GTK_GRID (adv), 6);
  gtk_grid_set_column_spacing (GTK_GRID (adv), 12);
  gtk_widget_set_margin_top (adv, 6);
  w = spin_new (&adj, 0, 100, 0.1, 2);
  spin_allow_auto (w, FALSE);
  bind (self->config, "shift", adj, "value");
  gtk_widget_set_tooltip_text (w, _("Timestep shift; Auto uses the model's (3)"));
  row_label (GTK_GRID (adv), row, _("S_hift"), w);
  gtk_grid_attach (GTK_GRID (adv), w, 1, row++, 1, 1);
  w = spin_new (&adj, 0, 50, 0.1, 1);
  bind (self->config, "slg-scale", adj, "value");
  gtk_widget_set_tooltip_text (w, _("0 = off; SD 3.5 Medium works best with 2.5"));
  row_label (GTK_GRID (adv), row, _("Skip-_layer guidance"), w);
  gtk_grid_attach (GTK_GRID (adv), w, 1, row++, 1, 1);
  w = gtk_check_button_new_with_mnemonic (_("Use the _T5 text encoder"));
  gtk_widget_set_tooltip_text (w, _("Off: less memory, but the prompt is followed less "
                                    "closely"));
  bind (self->config, "use-t5", w, "active");
  gtk_grid_attach (GTK_GRID (adv), w, 1, row++, 1, 1);
  self->backend_drop = choice_drop_new (self, "backend", backend_ids, _("Automatic"),
                                        _("NVIDIA GPU (CUDA)"), _("CPU"));
  row_label (GTK_GRID (adv), row, _("Bac_kend"), self->backend_drop);
  gtk_grid_attach (GTK_GRID (adv), self->backend_drop, 1, row++, 1, 1);
  gtk_expander_set_child (GTK_EXPANDER (expander), adv);
  gtk_box_append (GTK_BOX (box), expander);

  /* fill the model's defaults where the call left "Auto" (0 steps, guidance < 0) */
  {
    gint    s;
    gdouble g;

    g_object_get (self->config, "steps", &s, "guidance", &g, NULL);
    self->steps_touched = s > 0;
    self->guidance_touched = g >= 0.0;
    model_selected (GTK_DROP_DOWN (self->model_drop), NULL, self);
  }
  return box;
}

/* ---- preview, progress, errors, buttons ---- */

static GtkWidget *
run_area_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *frame = gtk_frame_new (NULL);
  GtkWidget *line = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);

  self->preview = sd35_preview_new ();
  gtk_frame_set_child (GTK_FRAME (frame), self->preview);
  gtk_widget_set_size_request (frame, 160, 160);
  self->step_label = gtk_label_new (_("Ready"));
  gtk_label_set_xalign (GTK_LABEL (self->step_label), 0.0);
  gtk_widget_set_hexpand (self->step_label, TRUE);
  self->eta_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->eta_label), 1.0);
  gtk_widget_add_css_class (self->eta_label, "dim-label");
  gtk_widget_add_css_class (self->eta_label, "numeric");
  self->progress = gtk_progress_bar_new ();

  gtk_box_append (GTK_BOX (box), frame);
  gtk_box_append (GTK_BOX (line), self->step_label);
  gtk_box_append (GTK_BOX (line), self->eta_label);
  gtk_box_append (GTK_BOX (box), line);
  gtk_box_append (GTK_BOX (box), self->progress);
  return box;
}

static GtkWidget *
error_area_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-warning-symbolic");
  GtkWidget *dismiss = gtk_button_new_from_icon_name ("window-close-symbolic");

  self->error_revealer = gtk_revealer_new ();
  self->error_label = gtk_label_new (NULL);
  gtk_label_set_wrap (GTK_LABEL (self->error_label), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->error_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->error_label), 0.0);
  gtk_widget_set_hexpand (self->error_label, TRUE);
  gtk_widget_add_css_class (box, "sd35-error");
  gtk_widget_add_css_class (self->error_label, "error");
  gtk_widget_add_css_class (dismiss, "flat");
  gtk_widget_set_tooltip_text (dismiss, _("Hide this message"));
  g_signal_connect_swapped (dismiss, "clicked", G_CALLBACK (gtk_revealer_set_reveal_child),
                            self->error_revealer);
  gtk_box_append (GTK_BOX (box), icon);
  gtk_box_append (GTK_BOX (box), self->error_label);
  gtk_box_append (GTK_BOX (box), dismiss);
  gtk_revealer_set_child (GTK_REVEALER (self->error_revealer), box);
  return self->error_revealer;
}

void
sd35_dialog_set_running (Sd35Dialog *self,
                         gboolean    running)
{
  gtk_widget_set_visible (self->cancel_button, running);
  gtk_widget_set_sensitive (self->generate_button, ! running);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "sd35.generate", ! running);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "sd35.cancel", running);
}

static void
sd35_dialog_build (Sd35Dialog *self)
{
  GtkWidget *outer = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  GtkWidget *paned = gtk_paned_new (GTK_ORIENTATION_HORIZONTAL);
  GtkWidget *scroll = gtk_scrolled_window_new ();
  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *settings, *run;

  self->building = TRUE;
  gtk_window_set_title (GTK_WINDOW (self),
                        self->mode == SD35_MODE_IMG2IMG ?
                        _("Stable Diffusion 3.5 — Image to Image") :
                        _("Stable Diffusion 3.5 — Text to Image"));
  /* fits a 1366×768 screen with GIMP's panels; the settings column scrolls */
  gtk_window_set_default_size (GTK_WINDOW (self), 900, 640);

  settings = settings_new (self);
  gtk_widget_set_margin_end (settings, 12);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), settings);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_width (GTK_SCROLLED_WINDOW (scroll), TRUE);
  gtk_widget_set_size_request (scroll, 360, 200);
  run = run_area_new (self);
  gtk_widget_set_margin_start (run, 12);
  gtk_paned_set_start_child (GTK_PANED (paned), scroll);
  gtk_paned_set_end_child (GTK_PANED (paned), run);
  gtk_paned_set_resize_start_child (GTK_PANED (paned), FALSE);
  gtk_paned_set_shrink_start_child (GTK_PANED (paned), FALSE);
  gtk_paned_set_shrink_end_child (GTK_PANED (paned), FALSE);
  gtk_widget_set_vexpand (paned, TRUE);

  self->close_button = gtk_button_new_with_mnemonic (_("_Close"));
  self->cancel_button = gtk_button_new_with_mnemonic (_("_Cancel"));
  self->generate_button = gtk_button_new_with_mnemonic (_("_Generate"));
  gtk_widget_add_css_class (self->generate_button, "suggested-action");
  gtk_widget_set_tooltip_text (self->generate_button,
                               _("Make the image and add it as a new layer (Ctrl+Return)"));
  gtk_widget_set_tooltip_text (self->cancel_button, _("Stop now; nothing is added (Escape)"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (self->close_button), "sd35.close");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (self->cancel_button), "sd35.cancel");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (self->generate_button), "sd35.generate");
  gtk_widget_set_hexpand (self->close_button, TRUE);
  gtk_widget_set_halign (self->close_button, GTK_ALIGN_START);
  gtk_box_append (GTK_BOX (buttons), self->close_button);
  gtk_box_append (GTK_BOX (buttons), self->cancel_button);
  gtk_box_append (GTK_BOX (buttons), self->generate_button);

  gtk_widget_set_margin_start (outer, 12);
  gtk_widget_set_margin_end (outer, 12);
  gtk_widget_set_margin_top (outer, 12);
  gtk_widget_set_margin_bottom (outer, 12);
  gtk_box_append (GTK_BOX (outer), paned);
  gtk_box_append (GTK_BOX (outer), error_area_new (self));
  gtk_box_append (GTK_BOX (outer), buttons);
  gtk_window_set_child (GTK_WINDOW (self), outer);
  gtk_window_set_default_widget (GTK_WINDOW (self), self->generate_button);
  gtk_window_set_focus (GTK_WINDOW (self), self->prompt_view);
  sd35_dialog_add_shortcuts (self);
  sd35_dialog_set_running (self, FALSE);
  self->building = FALSE;
}

/* ---- GObject ---- */

static gboolean
sd35_dialog_close_request (GtkWindow *window)
{
  sd35_dialog_request_close (SD35_DIALOG (window));
  return TRUE;  /* sd35_dialog_request_close destroys the window when no job runs */
}

static void
sd35_dialog_dispose (GObject *object)
{
  Sd35Dialog *self = SD35_DIALOG (object);

  if (self->job != NULL)
    {
      sd35_dialog_job_cancel (self->job);
      g_clear_pointer (&self->job, sd35_dialog_job_unref);
    }
  g_clear_handle_id (&self->tick_id, g_source_remove);
  g_clear_pointer (&self->engine, sd35_dialog_engine_unref);
  g_clear_pointer (&self->model_paths, g_ptr_array_unref);
  g_clear_pointer (&self->last_layers, g_free);
  g_clear_pointer (&self->drawables, g_free);
  g_clear_object (&self->config);
  g_clear_object (&self->procedure);
  g_clear_object (&self->image);
  if (self->dump != NULL)
    {
      fclose (self->dump);
      self->dump = NULL;
    }
  G_OBJECT_CLASS (sd35_dialog_parent_class)->dispose (object);
}

static void
sd35_dialog_class_init (Sd35DialogClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = sd35_dialog_dispose;
  GTK_WINDOW_CLASS (klass)->close_request = sd35_dialog_close_request;
  sd35_dialog_install_actions (GTK_WIDGET_CLASS (klass));
}

static void
sd35_dialog_init (Sd35Dialog *self)
{
  self->engine = sd35_dialog_engine_new ();
}

Sd35Dialog *
sd35_dialog_new (GimpProcedure        *procedure,
                 GimpProcedureConfig  *config,
                 GimpImage            *image,
                 GimpDrawable        **drawables)
{
  Sd35Dialog *self;
  gint        n = 0;

  g_return_val_if_fail (GIMP_IS_PROCEDURE (procedure), NULL);
  g_return_val_if_fail (GIMP_IS_PROCEDURE_CONFIG (config), NULL);
  g_return_val_if_fail (GIMP_IS_IMAGE (image), NULL);

  self = g_object_new (SD35_TYPE_DIALOG, NULL);
  self->procedure = g_object_ref (procedure);
  self->config = g_object_ref (config);
  self->image = g_object_ref (image);
  while (drawables != NULL && drawables[n] != NULL)
    n++;
  self->drawables = g_new0 (GimpDrawable *, n + 1);
  if (n > 0)
    memcpy (self->drawables, drawables, n * sizeof (GimpDrawable *));
  self->mode = g_str_has_suffix (gimp_procedure_get_name (procedure), "img2img") ?
               SD35_MODE_IMG2IMG : SD35_MODE_TXT2IMG;
  if (g_getenv ("SD35_DIALOG_DUMP") != NULL && *g_getenv ("SD35_DIALOG_DUMP") != '\0')
    self->dump = fopen (g_getenv ("SD35_DIALOG_DUMP"), "a");
  sd35_dialog_build (self);
  return self;
}
