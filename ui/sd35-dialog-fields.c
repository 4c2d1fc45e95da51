/* sd35-dialog-fields.c — the dialog's compound fields, each a view of config properties:
 *   size   presets by aspect ratio, "from the selection or image" (width = height = 0 in
 *          the config, the rounded selection size shown) or custom, multiples of 16 only;
 *   seed   the number that will be used, or "Random" (the config's -1: the engine draws
 *          one per try); typing a number or the dice locks that number; after a try, its
 *          seed is offered for one-click reuse ("Reuse 1234"), so the seed shown is always
 *          the seed used;
 *   model  the models found (sd35-models.c) + Browse… (GtkFileDialog), the detected variant,
 *          and that variant's steps and guidance (Turbo: 4 and 1) unless the user set them.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"
#include "sd35-models.h"
#include "sd35-spin-scale.h"

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

/* A wheel-safe spin button with its adjustment (lower is also the start value). */
GtkWidget *
sd35_dialog_spin_new (GtkAdjustment **adj_out,
                      gdouble         lower,
                      gdouble         upper,
                      gdouble         step,
                      guint           digits)
{
  GtkAdjustment *adj = gtk_adjustment_new (lower, lower, upper, step, step * 10, 0);
  GtkWidget     *spin = gtk_spin_button_new (adj, step, digits);

  gtk_spin_button_set_numeric (GTK_SPIN_BUTTON (spin), FALSE);
  gtk_widget_set_hexpand (spin, TRUE);
  sd35_wheel_safe (spin);
  if (adj_out != NULL)
    *adj_out = adj;
  return spin;
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

GtkWidget *
sd35_dialog_size_row_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *spins = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget *times = gtk_label_new ("×");
  const gchar *labels[G_N_ELEMENTS (size_presets) + 1];
  gint       w, h;

  selection_size (self);
  for (guint i = 0; i < G_N_ELEMENTS (size_presets); i++)
    labels[i] = _(size_presets[i].label);
  labels[G_N_ELEMENTS (size_presets)] = NULL;
  self->size_drop = gtk_drop_down_new_from_strings (labels);
  g_object_get (self->config, "width", &w, "height", &h, NULL);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->size_drop), size_preset_for (w, h));

  /* only multiples of 16 (the VAE's 8 × the MMDiT's 2×2 patches) */
  self->width_spin = sd35_dialog_spin_new (&self->width_adj, 16, SD35_MAX_SIDE, 16, 0);
  self->height_spin = sd35_dialog_spin_new (&self->height_adj, 16, SD35_MAX_SIDE, 16, 0);
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

/* ---- seed: the number that will be used or "Random", a dice, a lock, and reuse ---- */

gboolean
sd35_dialog_seed_locked (Sd35Dialog *self)
{
  return gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->seed_lock));
}

static gboolean seed_output (GtkSpinButton *spin,
                             Sd35Dialog    *self);

static void
seed_store (Sd35Dialog *self)
{
  gboolean locked = sd35_dialog_seed_locked (self);

  /* the argument's -1 means "a new random seed every time" */
  g_object_set (self->config, "seed",
                locked ? (gint) gtk_adjustment_get_value (self->seed_adj) : -1, NULL);
  gtk_button_set_icon_name (GTK_BUTTON (self->seed_lock),
                            locked ? "changes-prevent-symbolic" : "changes-allow-symbolic");
  gtk_widget_set_tooltip_text (self->seed_lock,
                               locked ? _("Seed locked: every try uses this seed") :
                                        _("Seed unlocked: every try gets a new random seed"));
  /* "Random" instead of a number that would not be used */
  seed_output (GTK_SPIN_BUTTON (self->seed_spin), self);
}

static gboolean
seed_output (GtkSpinButton *spin,
             Sd35Dialog    *self)
{
  gchar *text;

  if (self->seed_lock == NULL)
    return FALSE;
  if (sd35_dialog_seed_locked (self))
    text = g_strdup_printf ("%u", (guint) gtk_adjustment_get_value (self->seed_adj));
  else
    text = g_strdup (_("Random"));
  if (g_strcmp0 (gtk_editable_get_text (GTK_EDITABLE (spin)), text) != 0)
    gtk_editable_set_text (GTK_EDITABLE (spin), text);
  g_free (text);
  return TRUE;
}

/* Typing a number locks it; "Random" (or nothing) unlocks. */
static gint
seed_input (GtkSpinButton *spin,
            gdouble       *new_value,
            Sd35Dialog    *self)
{
  const gchar *text = gtk_editable_get_text (GTK_EDITABLE (spin));
  gchar       *end = NULL;
  guint64      v;

  while (g_ascii_isspace (*text))
    text++;
  if (*text == '\0' || g_utf8_collate (text, _("Random")) == 0 ||
      g_ascii_strcasecmp (text, "random") == 0)
    {
      *new_value = gtk_adjustment_get_value (self->seed_adj);
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), FALSE);
      return TRUE;
    }
  v = g_ascii_strtoull (text, &end, 10);
  if (end == text)
    return GTK_INPUT_ERROR;
  *new_value = MIN (v, (guint64) G_MAXINT);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), TRUE);
  return TRUE;
}

/* A number chosen by any means (typed, +/−, dice, reuse) is the seed of the next try. */
static void
seed_value_changed (GtkAdjustment *adj,
                    Sd35Dialog    *self)
{
  if (! self->building && ! sd35_dialog_seed_locked (self))
    gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), TRUE);
  seed_store (self);
}

void
sd35_dialog_new_random_seed (Sd35Dialog *self)
{
  gtk_adjustment_set_value (self->seed_adj, g_random_int_range (0, G_MAXINT));
}

/* The dice picks a number and locks it: the number shown is the one the next try uses. */
static void
seed_dice_clicked (GtkButton  *button,
                   Sd35Dialog *self)
{
  sd35_dialog_new_random_seed (self);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), TRUE);
  seed_store (self);
}

static void
seed_reuse_clicked (GtkButton  *button,
                    Sd35Dialog *self)
{
  gtk_adjustment_set_value (self->seed_adj, self->last_seed);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), TRUE);
  seed_store (self);
  sd35_dialog_dump (self, "seed reused %u", self->last_seed);
}

void
sd35_dialog_offer_seed (Sd35Dialog *self,
                        guint32     seed)
{
  gchar *text = g_strdup_printf (_("Reuse %u"), seed);

  gtk_button_set_label (GTK_BUTTON (self->seed_reuse), text);
  gtk_widget_set_visible (self->seed_reuse, TRUE);
  sd35_dialog_dump (self, "seed offered %u shown %s", seed,
                    gtk_editable_get_text (GTK_EDITABLE (self->seed_spin)));
  g_free (text);
}

GtkWidget *
sd35_dialog_seed_row_new (Sd35Dialog  *self,
                          GtkWidget  **spin_out)
{
  GtkWidget *outer = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget *spin = sd35_dialog_spin_new (&self->seed_adj, 0, G_MAXINT, 1, 0);
  GtkWidget *dice = gtk_button_new_from_icon_name ("media-playlist-shuffle-symbolic");
  gint       seed;

  self->seed_spin = spin;
  self->seed_lock = gtk_toggle_button_new ();
  self->seed_reuse = gtk_button_new ();
  g_object_get (self->config, "seed", &seed, NULL);
  gtk_adjustment_set_value (self->seed_adj, seed >= 0 ? seed : 0);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->seed_lock), seed >= 0);
  gtk_widget_set_tooltip_text (spin, _("The seed of the next try; “Random”: a new one each "
                                       "time. Type a number to keep it."));
  gtk_widget_set_tooltip_text (dice, _("Pick a random seed and keep it"));
  gtk_widget_set_tooltip_text (self->seed_reuse, _("Use the seed of the last image again"));
  gtk_widget_add_css_class (self->seed_reuse, "flat");
  gtk_widget_set_halign (self->seed_reuse, GTK_ALIGN_START);
  gtk_widget_set_visible (self->seed_reuse, FALSE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (dice), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Random seed"), -1);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->seed_lock),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Lock the seed"), -1);
  g_signal_connect (spin, "output", G_CALLBACK (seed_output), self);
  g_signal_connect (spin, "input", G_CALLBACK (seed_input), self);
  g_signal_connect (dice, "clicked", G_CALLBACK (seed_dice_clicked), self);
  g_signal_connect (self->seed_reuse, "clicked", G_CALLBACK (seed_reuse_clicked), self);
  g_signal_connect (self->seed_adj, "value-changed", G_CALLBACK (seed_value_changed), self);
  g_signal_connect_swapped (self->seed_lock, "toggled", G_CALLBACK (seed_store), self);
  seed_store (self);

  gtk_box_append (GTK_BOX (box), spin);
  gtk_box_append (GTK_BOX (box), dice);
  gtk_box_append (GTK_BOX (box), self->seed_lock);
  gtk_box_append (GTK_BOX (outer), box);
  gtk_box_append (GTK_BOX (outer), self->seed_reuse);
  *spin_out = spin;
  return outer;
}

/* ---- img2img: the steps that will run ---- */

/* The engine starts img2img at int (steps · (1 − strength)) of the schedule
 * (engine/sample/sampler.c, as the reference): the rest are the steps that run. */
void
sd35_dialog_update_steps_run (Sd35Dialog *self)
{
  gint    steps, start, run;
  gdouble strength, v;
  gchar  *text;

  if (self->steps_run_label == NULL || self->strength_adj == NULL)
    return;
  steps = (gint) gtk_adjustment_get_value (self->steps_adj);
  if (steps <= 0)
    steps = self->default_steps > 0 ? self->default_steps : 40;
  strength = gtk_adjustment_get_value (self->strength_adj);
  v = (gdouble) steps * (1.0 - strength);
  start = v > 0.0 ? (v >= steps ? steps : (gint) v) : 0;
  run = steps - start;
  if (run <= 0)
    text = g_strdup (_("No step runs at this strength: raise it or the steps"));
  else
    text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                         "%d of %d step runs at this strength",
                                         "%d of %d steps run at this strength", run),
                            run, steps);
  gtk_label_set_text (GTK_LABEL (self->steps_run_label), text);
  g_free (text);
  sd35_dialog_dump (self, "steps-run %d of %d strength %.2f", run, steps, strength);
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
      /* plain words in the form; the finder's own (English, technical) words on hover */
      gtk_label_set_text (GTK_LABEL (self->variant_label),
                          path == NULL ? _("No model found yet: choose one with “Browse…”") :
                                         _("No usable model in this place"));
      gtk_widget_set_tooltip_text (self->variant_label, error->message);
      sd35_dialog_dump (self, "model %s not usable: %s", path != NULL ? path : "(automatic)",
                        error->message);
      g_clear_error (&error);
      return;
    }
  text = g_strdup_printf (_("Detected: %s"), sd35_variant_name (variant));
  gtk_label_set_text (GTK_LABEL (self->variant_label), text);
  gtk_widget_set_tooltip_text (self->variant_label, NULL);
  g_free (text);

  /* a model brings its own steps and guidance (Turbo: 4 and 1) unless the user set them */
  sd35_variant_defaults (variant, &d);
  self->default_steps = d.steps;
  self->setting_default++;
  if (! self->steps_touched)
    g_object_set (self->config, "steps", d.steps, NULL);
  if (! self->guidance_touched)
    g_object_set (self->config, "guidance", d.cfg, NULL);
  self->setting_default--;
  sd35_dialog_dump (self, "model %s variant %s steps %d (%s) guidance %g (%s)",
                    path != NULL ? path : "(automatic)", sd35_variant_name (variant),
                    (gint) gtk_adjustment_get_value (self->steps_adj),
                    self->steps_touched ? "kept" : "model default",
                    gtk_adjustment_get_value (self->guidance_adj),
                    self->guidance_touched ? "kept" : "model default");
  sd35_dialog_update_steps_run (self);
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
  /* the LoRAs beside this model (automatic: beside the first model found) */
  sd35_dialog_loras_refresh (self, path != NULL ? path
                                   : self->model_paths->len > 1
                                   ? g_ptr_array_index (self->model_paths, 1) : NULL);
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

GtkWidget *
sd35_dialog_model_row_new (Sd35Dialog *self)
{
  GtkWidget  *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget  *line = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget  *browse = gtk_button_new_with_mnemonic (_("Bro_wse…"));
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


void
sd35_dialog_model_changed (Sd35Dialog *self)
{
  model_selected (GTK_DROP_DOWN (self->model_drop), NULL, self);
}
