/* sd35-dialog.c — the dialog window: its widgets, and their bindings to the config.
 *
 * The GimpProcedureConfig is the model and every widget a view of one of its properties,
 * bound with g_object_bind_property (BIDIRECTIONAL | SYNC_CREATE), as GIMP's own plug-ins
 * connect the config to their previews (plug-ins/common/grid.c).  Where the dialog shows
 * something the PDB argument does not hold (the size of the selection for width 0, a seed
 * for "random"), sd35-dialog-fields.c translates.  Layout: settings on the left in a
 * scrolled column (usable at 1366×768), preview and progress on the right, errors in a
 * revealer above the buttons.  Actions and the run live in sd35-dialog-actions.c.
 */
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"
#include "sd35-spin-scale.h"

G_DEFINE_FINAL_TYPE (Sd35Dialog, sd35_dialog, GTK_TYPE_WINDOW)

static const gchar *sampler_ids[] = { "default", "euler", "dpmpp-2m" };
static const gchar *backend_ids[] = { "auto", "cuda", "cpu" };
static const gchar *prompt_weights_ids[] = { "comfy", "ignore" };

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

/* GtkTextView has no placeholder: a dim label over it while the buffer is empty. */
static void
placeholder_update (GtkTextBuffer *buffer,
                    GtkWidget     *placeholder)
{
  gtk_widget_set_visible (placeholder, gtk_text_buffer_get_char_count (buffer) == 0);
}

static GtkWidget *
placeholder_add (GtkWidget    *scroll,
                 const gchar  *text,
                 GtkWidget   **label_out)
{
  GtkWidget     *overlay = gtk_overlay_new ();
  GtkWidget     *label = gtk_label_new (text);
  GtkWidget     *view = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (scroll));
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (view));

  gtk_widget_add_css_class (label, "dim-label");
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_widget_set_halign (label, GTK_ALIGN_FILL);
  gtk_widget_set_valign (label, GTK_ALIGN_START);
  gtk_widget_set_can_target (label, FALSE);  /* clicks go to the text view below */
  gtk_widget_set_margin_start (label, 8);
  gtk_widget_set_margin_end (label, 8);
  gtk_widget_set_margin_top (label, 6);
  gtk_overlay_set_child (GTK_OVERLAY (overlay), scroll);
  gtk_overlay_add_overlay (GTK_OVERLAY (overlay), label);
  g_signal_connect (buffer, "changed", G_CALLBACK (placeholder_update), label);
  placeholder_update (buffer, label);
  if (label_out != NULL)
    *label_out = label;
  return overlay;
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
  gtk_text_view_set_left_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_right_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_top_margin (GTK_TEXT_VIEW (view), 4);
  gtk_text_view_set_bottom_margin (GTK_TEXT_VIEW (view), 4);
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

static void
value_touched (GtkAdjustment *adj,
               Sd35Dialog    *self)
{
  if (adj == self->steps_adj)
    sd35_dialog_update_steps_run (self);
  if (self->building || self->setting_default > 0)
    return;
  if (adj == self->steps_adj)
    self->steps_touched = TRUE;
  else
    self->guidance_touched = TRUE;
}

/* The procedure's default prompt is an example for scripts; a person starts from an empty
 * field with a hint (the last prompt typed comes back through the config). */
static void
prompt_start_empty (Sd35Dialog *self)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (self->config),
                                                    "prompt");
  gchar      *prompt = NULL;

  g_object_get (self->config, "prompt", &prompt, NULL);
  if (pspec != NULL && G_IS_PARAM_SPEC_STRING (pspec) && prompt != NULL &&
      g_strcmp0 (prompt, G_PARAM_SPEC_STRING (pspec)->default_value) == 0)
    g_object_set (self->config, "prompt", "", NULL);
  g_free (prompt);
}

/* Opening Advanced scrolls it into view (it is below the fold on small screens). */
static void
advanced_expanded (GtkExpander *expander,
                   GParamSpec  *pspec,
                   Sd35Dialog  *self)
{
  GtkWidget *viewport = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (self->form_scroll));

  if (gtk_expander_get_expanded (expander) && GTK_IS_VIEWPORT (viewport))
    gtk_viewport_scroll_to (GTK_VIEWPORT (viewport), GTK_WIDGET (expander), NULL);
}

static void
size_to_preview (Sd35Dialog *self)
{
  sd35_preview_set_aspect (SD35_PREVIEW (self->preview),
                           (gint) gtk_adjustment_get_value (self->width_adj),
                           (gint) gtk_adjustment_get_value (self->height_adj));
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
  GtkWidget *w, *label, *steps, *seed_spin, *spin;
  GtkAdjustment *adj;
  gint       row = 0;

  self->prompt_view = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (prompt));
  self->negative_view = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (negative));
  prompt_start_empty (self);
  bind (self->config, "prompt",
        gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompt_view)), "text");
  bind (self->config, "negative-prompt",
        gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->negative_view)), "text");

  label = gtk_label_new_with_mnemonic (_("_Prompt"));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->prompt_view);
  gtk_box_append (GTK_BOX (box), label);
  prompt = placeholder_add (prompt, _("Describe the picture, e.g. “a lighthouse at dusk, oil "
                                      "painting”"), &self->prompt_placeholder);
  gtk_box_append (GTK_BOX (box), prompt);
  label = gtk_label_new_with_mnemonic (_("_Negative prompt"));
  gtk_label_set_xalign (GTK_LABEL (label), 0.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->negative_view);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), placeholder_add (negative, _("Optional: what to keep out"),
                                                    NULL));

  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  w = sd35_dialog_model_row_new (self);
  row_label (GTK_GRID (grid), row, _("_Model"), self->model_drop);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);

  w = sd35_dialog_size_row_new (self);
  row_label (GTK_GRID (grid), row, _("Si_ze"), self->size_drop);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);

  steps = sd35_dialog_spin_new (&self->steps_adj, 0, 1000, 1, 0);
  self->steps_spin = steps;
  spin_allow_auto (steps, FALSE);
  bind (self->config, "steps", self->steps_adj, "value");
  row_label (GTK_GRID (grid), row, _("_Steps"), steps);
  if (self->mode == SD35_MODE_IMG2IMG)
    {
      /* img2img skips the first steps of the schedule: say how many will run */
      w = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
      self->steps_run_label = gtk_label_new (NULL);
      gtk_label_set_xalign (GTK_LABEL (self->steps_run_label), 0.0);
      gtk_label_set_wrap (GTK_LABEL (self->steps_run_label), TRUE);
      gtk_widget_add_css_class (self->steps_run_label, "dim-label");
      gtk_box_append (GTK_BOX (w), steps);
      gtk_box_append (GTK_BOX (w), self->steps_run_label);
      gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
    }
  else
    gtk_grid_attach (GTK_GRID (grid), steps, 1, row++, 1, 1);

  /* img2img: Strength right under Steps, whose "steps that run" depend on it */
  if (self->mode == SD35_MODE_IMG2IMG)
    {
      self->strength_adj = gtk_adjustment_new (0.8, 0.01, 1.0, 0.01, 0.1, 0);
      w = sd35_spin_scale_new (self->strength_adj, 0.01, 1.0, 2, &spin);
      bind (self->config, "strength", self->strength_adj, "value");
      g_signal_connect_swapped (self->strength_adj, "value-changed",
                                G_CALLBACK (sd35_dialog_update_steps_run), self);
      gtk_widget_set_tooltip_text (w, _("How much to change: low keeps the layer, 1 ignores it"));
      row_label (GTK_GRID (grid), row, _("St_rength"), spin);
      gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
      w = gtk_check_button_new_with_mnemonic (_("Change only the _selection (soft edges kept)"));
      bind (self->config, "use-selection-mask", w, "active");
      gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
    }

  self->guidance_adj = gtk_adjustment_new (-1, -1, 50, 0.1, 1, 0);
  w = sd35_spin_scale_new (self->guidance_adj, 0, 15, 1, &spin);
  self->guidance_spin = spin;
  spin_allow_auto (spin, TRUE);
  bind (self->config, "guidance", self->guidance_adj, "value");
  gtk_widget_set_tooltip_text (w, _("How closely to follow the prompt; higher is stricter "
                                    "but less natural"));
  row_label (GTK_GRID (grid), row, _("_Guidance"), spin);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
  g_signal_connect (self->steps_adj, "value-changed", G_CALLBACK (value_touched), self);
  g_signal_connect (self->guidance_adj, "value-changed", G_CALLBACK (value_touched), self);

  w = sd35_dialog_seed_row_new (self, &seed_spin);
  row_label (GTK_GRID (grid), row, _("S_eed"), seed_spin);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);

  self->sampler_drop = choice_drop_new (self, "sampler", sampler_ids, _("Model default"),
                                        _("Euler"), _("DPM++ 2M"));
  row_label (GTK_GRID (grid), row, _("Sa_mpler"), self->sampler_drop);
  gtk_grid_attach (GTK_GRID (grid), self->sampler_drop, 1, row++, 1, 1);

  w = sd35_dialog_spin_new (&adj, 1, SD35_MAX_BATCH, 1, 0);
  self->batch_spin = w;
  bind (self->config, "batch-count", adj, "value");
  gtk_widget_set_tooltip_text (w, _("Number of images, seeds s, s+1, …; shown side by side "
                                    "to choose from"));
  row_label (GTK_GRID (grid), row, _("_Batch count"), w);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), sd35_dialog_results_choice_new (self), 1, row++, 1, 1);
  /* below the numbers the form opens on (they stay in view without scrolling) */
  w = sd35_dialog_loras_new (self);
  row_label (GTK_GRID (grid), row, _("LoRAs"), NULL);
  gtk_grid_attach (GTK_GRID (grid), w, 1, row++, 1, 1);
  gtk_box_append (GTK_BOX (box), grid);

  /* Advanced */
  row = 0;
  gtk_grid_set_row_spacing (GTK_GRID (adv), 6);
  gtk_grid_set_column_spacing (GTK_GRID (adv), 12);
  gtk_widget_set_margin_top (adv, 6);
  w = sd35_dialog_spin_new (&adj, 0, 100, 0.1, 2);
  spin_allow_auto (w, FALSE);
  bind (self->config, "shift", adj, "value");
  gtk_widget_set_tooltip_text (w, _("Timestep shift; Auto uses the model's (3)"));
  row_label (GTK_GRID (adv), row, _("S_hift"), w);
  gtk_grid_attach (GTK_GRID (adv), w, 1, row++, 1, 1);
  w = sd35_dialog_spin_new (&adj, 0, 50, 0.1, 1);
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
  w = choice_drop_new (self, "prompt-weights", prompt_weights_ids, _("Applied (as ComfyUI)"),
                       _("Ignored (as the reference)"), NULL);
  gtk_widget_set_tooltip_text (w, _("(word:1.3) makes a word count more, (word:0.7) less, "
                                    "(word) is 1.1"));
  row_label (GTK_GRID (adv), row, _("Prompt _weights"), w);
  gtk_grid_attach (GTK_GRID (adv), w, 1, row++, 1, 1);
  if (self->mode == SD35_MODE_IMG2IMG)
    {
      GtkWidget *native, *margin;

      native = gtk_check_button_new_with_mnemonic (_("Work at the model's _native resolution"));
      gtk_widget_set_tooltip_text (native, _("With a selection: generate it with context "
                                             "around it at about 1 megapixel, then blend it "
                                             "in under the feathered selection"));
      bind (self->config, "native-resolution", native, "active");
      gtk_grid_attach (GTK_GRID (adv), native, 1, row++, 1, 1);
      margin = sd35_dialog_spin_new (&adj, -1, 4096, 8, 0);
      spin_allow_auto (margin, TRUE);
      bind (self->config, "context-margin", adj, "value");
      gtk_widget_set_tooltip_text (margin, _("Pixels of context around the selection; Auto: "
                                             "half its larger side"));
      row_label (GTK_GRID (adv), row, _("Conte_xt margin"), margin);
      gtk_grid_attach (GTK_GRID (adv), margin, 1, row++, 1, 1);
      g_object_bind_property (native, "active", margin, "sensitive", G_BINDING_SYNC_CREATE);
    }
  gtk_expander_set_child (GTK_EXPANDER (expander), adv);
  gtk_box_append (GTK_BOX (box), expander);
  self->advanced = expander;
  g_signal_connect (expander, "notify::expanded", G_CALLBACK (advanced_expanded), self);

  /* fill the model's defaults where the call left "Auto" (0 steps, guidance < 0) */
  {
    gint    s;
    gdouble g;

    g_object_get (self->config, "steps", &s, "guidance", &g, NULL);
    self->steps_touched = s > 0;
    self->guidance_touched = g >= 0.0;
    sd35_dialog_model_changed (self);
  }
  return box;
}

/* ---- preview, progress, errors, buttons ---- */

static GtkWidget *
error_area_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *text = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-warning-symbolic");
  GtkWidget *dismiss = gtk_button_new_from_icon_name ("window-close-symbolic");

  self->error_revealer = gtk_revealer_new ();
  self->error_label = gtk_label_new (NULL);
  gtk_label_set_wrap (GTK_LABEL (self->error_label), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->error_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->error_label), 0.0);
  gtk_widget_set_hexpand (self->error_label, TRUE);
  /* the technical words (file names, the engine's message, variables) only on request */
  self->error_details = gtk_expander_new_with_mnemonic (_("_Details"));
  self->error_detail_label = gtk_label_new (NULL);
  gtk_label_set_wrap (GTK_LABEL (self->error_detail_label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (self->error_detail_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_selectable (GTK_LABEL (self->error_detail_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->error_detail_label), 0.0);
  gtk_widget_add_css_class (self->error_detail_label, "dim-label");
  gtk_expander_set_child (GTK_EXPANDER (self->error_details), self->error_detail_label);
  gtk_widget_add_css_class (box, "sd35-error");
  gtk_widget_add_css_class (self->error_label, "error");
  gtk_widget_add_css_class (dismiss, "flat");
  gtk_widget_set_valign (icon, GTK_ALIGN_START);
  gtk_widget_set_valign (dismiss, GTK_ALIGN_START);
  gtk_widget_set_tooltip_text (dismiss, _("Hide this message"));
  g_signal_connect_swapped (dismiss, "clicked", G_CALLBACK (gtk_revealer_set_reveal_child),
                            self->error_revealer);
  gtk_box_append (GTK_BOX (text), self->error_label);
  gtk_box_append (GTK_BOX (text), self->error_details);
  gtk_box_append (GTK_BOX (box), icon);
  gtk_box_append (GTK_BOX (box), text);
  gtk_box_append (GTK_BOX (box), dismiss);
  gtk_revealer_set_child (GTK_REVEALER (self->error_revealer), box);
  return self->error_revealer;
}

static GtkWidget *
run_area_new (Sd35Dialog *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *line = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);

  self->preview = sd35_preview_new ();
  self->step_label = gtk_label_new (_("Ready"));
  gtk_label_set_xalign (GTK_LABEL (self->step_label), 0.0);
  gtk_label_set_wrap (GTK_LABEL (self->step_label), TRUE);
  gtk_widget_set_hexpand (self->step_label, TRUE);
  self->eta_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->eta_label), 1.0);
  gtk_widget_add_css_class (self->eta_label, "dim-label");
  gtk_widget_add_css_class (self->eta_label, "numeric");
  self->progress = gtk_progress_bar_new ();

  gtk_box_append (GTK_BOX (box), self->preview);
  gtk_box_append (GTK_BOX (box), sd35_dialog_results_new (self));
  gtk_box_append (GTK_BOX (line), self->step_label);
  gtk_box_append (GTK_BOX (line), self->eta_label);
  gtk_box_append (GTK_BOX (box), line);
  gtk_box_append (GTK_BOX (box), self->progress);
  gtk_box_append (GTK_BOX (box), error_area_new (self));
  return box;
}

/* For the tests ($SD35_DIALOG_DUMP): where the fields are on the screen, written whenever
 * it changes (the window is resized, the form scrolled). */
void
sd35_dialog_dump_bounds_of (Sd35Dialog  *self,
                            GString     *line,
                            const gchar *name,
                            GtkWidget   *widget)
{
  graphene_rect_t r;
  double          sx = 0, sy = 0;

  if (widget == NULL || ! gtk_widget_get_mapped (widget) ||
      ! gtk_widget_compute_bounds (widget, GTK_WIDGET (self), &r))
    return;
  gtk_native_get_surface_transform (GTK_NATIVE (self), &sx, &sy);
  g_string_append_printf (line, " %s %d %d %d %d", name, (gint) (r.origin.x + sx),
                          (gint) (r.origin.y + sy), (gint) r.size.width,
                          (gint) r.size.height);
}

static gboolean
dump_bounds_tick (GtkWidget     *widget,
                  GdkFrameClock *clock,
                  gpointer       data)
{
  Sd35Dialog *self = SD35_DIALOG (widget);
  GString    *line = g_string_new ("bounds");
  GtkAdjustment *v = gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (self->form_scroll));

  sd35_dialog_dump_bounds_of (self, line, "guidance", self->guidance_spin);
  sd35_dialog_dump_bounds_of (self, line, "steps", self->steps_spin);
  sd35_dialog_dump_bounds_of (self, line, "seed", self->seed_spin);
  sd35_dialog_dump_bounds_of (self, line, "batch", self->batch_spin);
  sd35_dialog_dump_bounds_of (self, line, "prompt", self->prompt_view);
  sd35_dialog_dump_bounds_of (self, line, "form", self->form_scroll);
  sd35_dialog_dump_bounds_of (self, line, "preview", self->preview);
  sd35_dialog_results_dump_bounds (self, line);
  sd35_dialog_loras_dump_bounds (self, line);
  g_string_append_printf (line, " scroll %d/%d", (gint) gtk_adjustment_get_value (v),
                          (gint) (gtk_adjustment_get_upper (v) - gtk_adjustment_get_page_size (v)));
  if (g_strcmp0 (line->str, self->last_bounds) != 0)
    {
      sd35_dialog_dump (self, "%s", line->str);
      g_free (self->last_bounds);
      self->last_bounds = g_string_free (line, FALSE);
    }
  else
    g_string_free (line, TRUE);
  return G_SOURCE_CONTINUE;
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
  /* fits a 1366×768 screen with GIMP's panels; resizable, the settings column scrolls */
  gtk_window_set_default_size (GTK_WINDOW (self), 900, 640);
  gtk_window_set_resizable (GTK_WINDOW (self), TRUE);

  settings = settings_new (self);
  gtk_widget_set_margin_end (settings, 12);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), settings);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_width (GTK_SCROLLED_WINDOW (scroll), TRUE);
  gtk_widget_set_size_request (scroll, 360, 160);
  self->form_scroll = scroll;
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
  gtk_box_append (GTK_BOX (outer), buttons);
  gtk_window_set_child (GTK_WINDOW (self), outer);
  gtk_window_set_default_widget (GTK_WINDOW (self), self->generate_button);
  gtk_window_set_focus (GTK_WINDOW (self), self->prompt_view);
  sd35_dialog_add_shortcuts (self);
  sd35_dialog_set_running (self, FALSE);
  g_signal_connect_swapped (self->width_adj, "value-changed", G_CALLBACK (size_to_preview),
                            self);
  g_signal_connect_swapped (self->height_adj, "value-changed", G_CALLBACK (size_to_preview),
                            self);
  size_to_preview (self);
  if (self->dump != NULL)
    gtk_widget_add_tick_callback (GTK_WIDGET (self), dump_bounds_tick, NULL, NULL);
  self->building = FALSE;
  sd35_dialog_update_steps_run (self);
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
      sd35_job_cancel (self->job);
      g_clear_pointer (&self->job, sd35_job_unref);
    }
  g_clear_handle_id (&self->tick_id, g_source_remove);
  g_clear_pointer (&self->engine, sd35_engine_holder_unref);
  g_clear_pointer (&self->model_paths, g_ptr_array_unref);
  g_clear_pointer (&self->last_layers, g_free);
  g_clear_pointer (&self->drawables, g_free);
  g_clear_pointer (&self->last_bounds, g_free);
  g_clear_pointer (&self->results_job, sd35_job_unref);
  g_clear_pointer (&self->results_toggles, g_ptr_array_unref);
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
  self->engine = sd35_engine_holder_get ();
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
  self->mode = sd35_mode_of_procedure (procedure);
  if (g_getenv ("SD35_DIALOG_DUMP") != NULL && *g_getenv ("SD35_DIALOG_DUMP") != '\0')
    self->dump = fopen (g_getenv ("SD35_DIALOG_DUMP"), "a");
  sd35_dialog_build (self);
  return self;
}
