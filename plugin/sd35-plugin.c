/* sd35-plugin.c — the gimp-sd35 GimpPlugIn: which procedures exist and who serves a call.
 *
 * GIMP ends a plug-in process when its procedure returns, so a model loaded by
 * plug-in-sd35-txt2img would be loaded again on every call.  To keep the weights in memory
 * the binary also registers extension-sd35, a persistent procedure without arguments, which
 * GIMP starts with itself (as it does Script-Fu's).  It serves temporary twins of the two
 * procedures and the process's resident engine (core/engine-holder.c), which it empties
 * after SD35_IDLE_TIMEOUT_S seconds without a call ($SD35_IDLE_TIMEOUT overrides).  The
 * public procedures stay ordinary plug-in procedures (menus, pluginrc) and hand each call to
 * the resident twin when it is there — an interactive call too: the dialog then opens in the
 * resident process and its Generates run on the same engine as the scripts' calls.  When the
 * extension is not there (killed, or $SD35_NO_RESIDENT set) they do the work themselves,
 * loading the model per call (per dialog).
 *
 * The progress of a forwarded call: GIMP ends the process that owns a progress bar when the
 * user cancels it.  The forwarder owns it (gimp_progress_init) and serves a temporary
 * procedure through which the resident twin reports; a cancel ends the forwarder, the next
 * report fails and the resident stops the job, the engine still loaded (core/run.c).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "sd35-plugin.h"
#ifdef SD35_HAVE_UI
#include "sd35-dialog.h"  /* ui/: the GTK 4 dialog of interactive runs */
#endif

typedef struct _Sd35PlugIn
{
  GimpPlugIn        parent_instance;
  Sd35EngineHolder *holder;   /* the resident engine (extension process only) */
  guint             idle_id;
  gboolean          dialog_open;
} Sd35PlugIn;

typedef struct _Sd35PlugInClass
{
  GimpPlugInClass parent_class;
} Sd35PlugInClass;

#define SD35_TYPE_PLUG_IN (sd35_plug_in_get_type ())
#define SD35_PLUG_IN(obj) (G_TYPE_CHECK_INSTANCE_CAST ((obj), SD35_TYPE_PLUG_IN, Sd35PlugIn))

GType sd35_plug_in_get_type (void);
G_DEFINE_TYPE (Sd35PlugIn, sd35_plug_in, GIMP_TYPE_PLUG_IN)

static GList         *sd35_plug_in_query_procedures (GimpPlugIn  *plug_in);
static GimpProcedure *sd35_plug_in_create_procedure (GimpPlugIn  *plug_in,
                                                     const gchar *name);
static gboolean       sd35_plug_in_set_i18n         (GimpPlugIn  *plug_in,
                                                     const gchar *name,
                                                     gchar      **gettext_domain,
                                                     gchar      **catalog_dir);

static void
sd35_plug_in_finalize (GObject *object)
{
  Sd35PlugIn *self = SD35_PLUG_IN (object);

  if (self->idle_id != 0)
    g_source_remove (self->idle_id);
  sd35_engine_holder_unref (self->holder);
  G_OBJECT_CLASS (sd35_plug_in_parent_class)->finalize (object);
}

static void
sd35_plug_in_class_init (Sd35PlugInClass *klass)
{
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = sd35_plug_in_finalize;
  plug_in_class->query_procedures = sd35_plug_in_query_procedures;
  plug_in_class->create_procedure = sd35_plug_in_create_procedure;
  plug_in_class->set_i18n = sd35_plug_in_set_i18n;
}

static void
sd35_plug_in_init (Sd35PlugIn *self)
{
}

/* ---- the forwarder's progress procedure ---- */

typedef struct
{
  gdouble fraction;  /* the last one: a report with text only keeps it */
} ForwardProgress;

static GimpValueArray *
run_progress (GimpProcedure        *procedure,
              GimpProcedureConfig  *config,
              gpointer              run_data)
{
  ForwardProgress *p = run_data;
  gchar           *text = NULL;
  gdouble          fraction = -1.0;

  g_object_get (config, "text", &text, "fraction", &fraction, NULL);
  if (fraction >= 0.0)
    p->fraction = fraction;
  /* update first: it attaches this call to the progress, so that the end of this short
   * temporary call does not end the bar */
  gimp_progress_update (p->fraction);
  if (text != NULL && *text != '\0')
    gimp_progress_set_text (text);
  g_free (text);
  return gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
}

static gchar *
add_progress_procedure (GimpPlugIn      *plug_in,
                        ForwardProgress *progress)
{
  gchar         *name = g_strdup_printf ("plug-in-sd35-progress-%d", (int) getpid ());
  GimpProcedure *procedure = gimp_procedure_new (plug_in, name, GIMP_PDB_PROC_TYPE_TEMPORARY,
                                                 run_progress, progress, NULL);

  gimp_procedure_set_documentation (procedure, "Progress of a Stable Diffusion call",
                                    "Shows the resident engine's progress on the caller's "
                                    "progress bar", name);
  gimp_procedure_set_attribution (procedure, "gimp-sd35 contributors",
                                  "gimp-sd35 contributors", "2026");
  gimp_procedure_add_string_argument (procedure, "text", "Text", "Progress text", "",
                                      G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "fraction", "Fraction",
                                      "Done so far (< 0: keep)", -1.0, 1.0, -1.0,
                                      G_PARAM_READWRITE);
  gimp_plug_in_add_temp_procedure (plug_in, procedure);
  g_object_unref (procedure);
  return name;
}

/* ---- the public procedures ---- */

/* The dialog's last values from the resident (GimpConfig text of the public arguments) back
 * into the caller's config, so that GIMP keeps them as this procedure's last values. */
static void
take_dialog_values (GimpProcedureConfig *config,
                    const gchar         *text)
{
  GError *error = NULL;

  if (text == NULL || *text == '\0')
    return;
  if (! gimp_config_deserialize_string (GIMP_CONFIG (config), text, -1, NULL, &error))
    {
      g_printerr ("gimp-sd35: could not keep the dialog's values: %s\n", error->message);
      g_clear_error (&error);
    }
}

/* Runs the call in the resident extension with the same values; NULL when there is none. */
static GimpValueArray *
forward_to_resident (GimpProcedure        *procedure,
                     GimpRunMode           run_mode,
                     GimpImage            *image,
                     GimpDrawable        **drawables,
                     GimpProcedureConfig  *config)
{
  const gchar         *name = sd35_mode_of_procedure (procedure) == SD35_MODE_IMG2IMG ?
                              PROC_RESIDENT_IMG2IMG : PROC_RESIDENT_TXT2IMG;
  GimpPlugIn          *plug_in = gimp_procedure_get_plug_in (procedure);
  GimpProcedure       *resident;
  GimpProcedureConfig *rc;
  GParamSpec         **specs;
  GimpValueArray      *ret;
  ForwardProgress      progress = { 0.0 };
  gchar               *progress_name = NULL;
  gboolean             dialog = FALSE;
  gint                 n_specs = 0;

  if (g_getenv ("SD35_NO_RESIDENT") != NULL)
    return NULL;
  resident = gimp_pdb_lookup_procedure (gimp_get_pdb (), name);
  if (resident == NULL)
    return NULL;

  rc = gimp_procedure_create_config (resident);
  specs = gimp_procedure_get_arguments (procedure, &n_specs);
  for (gint i = 0; i < n_specs; i++)
    {
      const gchar *prop = specs[i]->name;
      GValue       value = G_VALUE_INIT;

      if (! strcmp (prop, "run-mode") || ! strcmp (prop, "image") ||
          ! strcmp (prop, "drawables") ||
          ! g_object_class_find_property (G_OBJECT_GET_CLASS (config), prop))
        continue;
      g_value_init (&value, specs[i]->value_type);
      g_object_get_property (G_OBJECT (config), prop, &value);
      g_object_set_property (G_OBJECT (rc), prop, &value);
      g_value_unset (&value);
    }
  /* the twin runs NONINTERACTIVE (an interactive run would replace our values by its
   * last-used ones); an interactive call asks it for the dialog instead */
  g_object_set (rc, "run-mode", GIMP_RUN_NONINTERACTIVE, "image", image, NULL);
  if (drawables != NULL && drawables[0] != NULL)
    {
      GObject **objects = (GObject **) drawables;

      gimp_procedure_config_set_core_object_array (rc, "drawables", objects,
                                                   gimp_core_object_array_get_length (objects));
    }
#ifdef SD35_HAVE_UI
  dialog = run_mode == GIMP_RUN_INTERACTIVE;
  if (dialog)
    {
      GBytes *parent = sd35_dialog_parent_window ();

      g_object_set (rc, ARG_DIALOG, TRUE, ARG_PARENT, parent, NULL);
      g_clear_pointer (&parent, g_bytes_unref);
    }
  else
#endif
    {
      progress_name = add_progress_procedure (plug_in, &progress);
      g_object_set (rc, ARG_PROGRESS, progress_name, NULL);
      gimp_progress_init ("Stable Diffusion 3.5");
    }
  g_printerr ("gimp-sd35: handing the call to the resident engine (%s%s)\n", name,
              dialog ? ", dialog" : "");
  ret = gimp_procedure_run_config (resident, rc);
  g_object_unref (rc);
  if (progress_name != NULL)
    {
      /* uninstalling is a message without an answer: the round trip of progress_end makes
       * sure GIMP has read it before our return value (GIMP reads one message per wake-up
       * and closes a plug-in whose pipe has hung up, return value unread) */
      gimp_plug_in_remove_temp_procedure (plug_in, progress_name);
      gimp_progress_end ();
      g_free (progress_name);
    }

  /* the resident process ended during the call (killed, crashed): say what happened, not
   * GIMP's "returned no return values" */
  if (GIMP_VALUES_GET_ENUM (ret, 0) != GIMP_PDB_SUCCESS &&
      ! gimp_pdb_procedure_exists (gimp_get_pdb (), name))
    {
      gimp_value_array_unref (ret);
      return gimp_procedure_new_return_values
        (procedure, GIMP_PDB_EXECUTION_ERROR,
         g_error_new_literal (SD35_PLUGIN_ERROR, 0,
                              _("The resident Stable Diffusion process ended during the call "
                                "(cancelled, or it crashed); nothing was added.  The next call "
                                "loads the model by itself.")));
    }
  if (GIMP_VALUES_GET_ENUM (ret, 0) == GIMP_PDB_SUCCESS)
    {
      /* the public procedure returns layers and seed; the twin also its dialog's values */
      GimpValueArray *out = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS,
                                                              NULL);

      g_value_copy (gimp_value_array_index (ret, 1), gimp_value_array_index (out, 1));
      g_value_copy (gimp_value_array_index (ret, 2), gimp_value_array_index (out, 2));
      if (gimp_value_array_length (ret) > 3)
        take_dialog_values (config, GIMP_VALUES_GET_STRING (ret, 3));
      gimp_value_array_unref (ret);
      ret = out;
    }
  return ret;
}

static GimpValueArray *
run_public (GimpProcedure        *procedure,
            GimpRunMode           run_mode,
            GimpImage            *image,
            GimpDrawable        **drawables,
            GimpProcedureConfig  *config,
            gpointer              run_data)
{
  Sd35Request      request;
  GimpValueArray  *ret;
  GError          *error = NULL;

  gegl_init (NULL, NULL);
  if (run_mode == GIMP_RUN_INTERACTIVE)
    sd35_settings_apply (image, config);  /* start from how the image was last made */

  ret = forward_to_resident (procedure, run_mode, image, drawables, config);
  if (ret != NULL)
    {
      if (run_mode != GIMP_RUN_NONINTERACTIVE)
        gimp_displays_flush ();
      return ret;
    }

#ifdef SD35_HAVE_UI
  /* no resident process: the dialog runs here, on this process's own engine */
  if (run_mode == GIMP_RUN_INTERACTIVE)
    return sd35_dialog_run (procedure, config, image, drawables, NULL);
#endif
  if (! sd35_request_from_config (&request, sd35_mode_of_procedure (procedure), config,
                                  &error))
    {
      sd35_request_clear (&request);
      return gimp_procedure_new_return_values (procedure, GIMP_PDB_CALLING_ERROR, error);
    }
  ret = sd35_run_request (procedure, run_mode, image, drawables, &request, NULL);
  sd35_request_clear (&request);
  return ret;
}

/* ---- the resident extension ---- */

static gboolean
idle_unload_cb (gpointer data)
{
  Sd35PlugIn *self = data;

  self->idle_id = 0;
  g_printerr ("gimp-sd35: no call for a while, freeing the model\n");
  sd35_engine_holder_unload (self->holder);
  return G_SOURCE_REMOVE;
}

static guint
idle_timeout_s (void)
{
  const gchar *s = g_getenv ("SD35_IDLE_TIMEOUT");
  gint64       v;

  if (s == NULL || *s == '\0')
    return SD35_IDLE_TIMEOUT_S;
  v = g_ascii_strtoll (s, NULL, 10);
  return (guint) CLAMP (v, 1, 7 * 24 * 3600);
}

#ifdef SD35_HAVE_UI
/* The public arguments of config as GimpConfig text, for the forwarder's config. */
static gchar *
dialog_values (GimpProcedure       *procedure,
               GimpProcedureConfig *config)
{
  GString          *text = g_string_new (NULL);
  GimpConfigWriter *writer = gimp_config_writer_new_from_string (text);
  GParamSpec      **specs;
  gint              n_specs = 0;

  specs = gimp_procedure_get_arguments (procedure, &n_specs);
  for (gint i = 0; i < n_specs; i++)
    {
      const gchar *prop = specs[i]->name;

      if (! strcmp (prop, "run-mode") || ! strcmp (prop, "image") ||
          ! strcmp (prop, "drawables") || ! strcmp (prop, ARG_PROGRESS) ||
          ! strcmp (prop, ARG_DIALOG) || ! strcmp (prop, ARG_PARENT))
        continue;
      gimp_config_serialize_property_by_name (GIMP_CONFIG (config), prop, writer);
    }
  gimp_config_writer_finish (writer, NULL, NULL);
  return g_string_free (text, FALSE);
}

static GimpValueArray *
run_resident_dialog (Sd35PlugIn           *self,
                     GimpProcedure        *procedure,
                     GimpImage            *image,
                     GimpDrawable        **drawables,
                     GimpProcedureConfig  *config)
{
  GimpValueArray *ret;
  GBytes         *parent = NULL;

  if (self->dialog_open)
    return gimp_procedure_new_return_values (
      procedure, GIMP_PDB_EXECUTION_ERROR,
      g_error_new_literal (SD35_PLUGIN_ERROR, 0,
                           _("The Stable Diffusion dialog is already open.")));
  self->dialog_open = TRUE;
  g_object_get (config, ARG_PARENT, &parent, NULL);
  ret = sd35_dialog_run (procedure, config, image, drawables, parent);
  g_clear_pointer (&parent, g_bytes_unref);
  self->dialog_open = FALSE;
  if (GIMP_VALUES_GET_ENUM (ret, 0) == GIMP_PDB_SUCCESS)
    GIMP_VALUES_TAKE_STRING (ret, 3, dialog_values (procedure, config));
  return ret;
}
#endif

static GimpValueArray *
run_resident (GimpProcedure        *procedure,
              GimpRunMode           run_mode,
              GimpImage            *image,
              GimpDrawable        **drawables,
              GimpProcedureConfig  *config,
              gpointer              run_data)
{
  Sd35PlugIn     *self = SD35_PLUG_IN (gimp_procedure_get_plug_in (procedure));
  Sd35Request     request;
  GimpValueArray *ret;
  GError         *error = NULL;
  gchar          *progress = NULL;
  gboolean        dialog = FALSE;

  g_clear_handle_id (&self->idle_id, g_source_remove);
  g_object_get (config, ARG_PROGRESS, &progress, ARG_DIALOG, &dialog, NULL);
#ifdef SD35_HAVE_UI
  if (dialog)
    ret = run_resident_dialog (self, procedure, image, drawables, config);
  else
#endif
  if (! sd35_request_from_config (&request, sd35_mode_of_procedure (procedure), config,
                                  &error))
    {
      sd35_request_clear (&request);
      ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_CALLING_ERROR, error);
    }
  else
    {
      ret = sd35_run_request (procedure, run_mode, image, drawables, &request, progress);
      sd35_request_clear (&request);
    }
  g_free (progress);
  if (self->idle_id == 0 && ! self->dialog_open)  /* a call inside an open dialog */
    self->idle_id = g_timeout_add_seconds (idle_timeout_s (), idle_unload_cb, self);
  return ret;
}

static GimpValueArray *
run_status (GimpProcedure        *procedure,
            GimpProcedureConfig  *config,
            gpointer              run_data)
{
  Sd35PlugIn     *self = SD35_PLUG_IN (gimp_procedure_get_plug_in (procedure));
  GimpValueArray *ret;
  gboolean        unload = FALSE;

  g_object_get (config, "unload", &unload, NULL);
  if (unload)
    sd35_engine_holder_unload (self->holder);
  ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_TAKE_STRING (ret, 1, sd35_engine_holder_describe (self->holder));
  return ret;
}

static void
add_temp (GimpPlugIn    *plug_in,
          GimpProcedure *procedure)
{
  gimp_plug_in_add_temp_procedure (plug_in, procedure);
  g_object_unref (procedure);
}

static GimpValueArray *
run_extension (GimpProcedure        *procedure,
               GimpProcedureConfig  *config,
               gpointer              run_data)
{
  GimpPlugIn    *plug_in = gimp_procedure_get_plug_in (procedure);
  Sd35PlugIn    *self = SD35_PLUG_IN (plug_in);
  GimpProcedure *status;
  GMainLoop     *loop;

  gegl_init (NULL, NULL);
  self->holder = sd35_engine_holder_get ();

  add_temp (plug_in, sd35_procedure_new (plug_in, PROC_RESIDENT_TXT2IMG, SD35_MODE_TXT2IMG,
                                         GIMP_PDB_PROC_TYPE_TEMPORARY, run_resident));
  add_temp (plug_in, sd35_procedure_new (plug_in, PROC_RESIDENT_IMG2IMG, SD35_MODE_IMG2IMG,
                                         GIMP_PDB_PROC_TYPE_TEMPORARY, run_resident));
  status = gimp_procedure_new (plug_in, PROC_RESIDENT_STATUS, GIMP_PDB_PROC_TYPE_TEMPORARY,
                               run_status, NULL, NULL);
  gimp_procedure_set_documentation (status, _("State of the resident Stable Diffusion engine"),
                                    _("Returns one line: loaded=0|1 loads=N calls=N "
                                      "last-load-s=S pid=PID model=NAME.  With unload, frees "
                                      "the model first."), PROC_RESIDENT_STATUS);
  gimp_procedure_set_attribution (status, "gimp-sd35 contributors", "gimp-sd35 contributors",
                                  "2026");
  gimp_procedure_add_boolean_argument (status, "unload", _("Unload"), _("Free the model now"),
                                       FALSE, G_PARAM_READWRITE);
  gimp_procedure_add_string_return_value (status, "status", _("Status"), _("Engine state"),
                                          NULL, G_PARAM_READWRITE);
  add_temp (plug_in, status);

  /* GIMP waits for this acknowledgement while it starts up: send it at once, load later */
  gimp_procedure_persistent_ready (procedure);
  gimp_plug_in_persistent_enable (plug_in);
  loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (loop);  /* until GIMP quits and closes our pipe */
  g_main_loop_unref (loop);
  return gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
}

/* ---- registration ---- */

/* GIMP's default (the catalogue in locale/ beside the binary, domain = the binary's name),
 * said explicitly: the domain stays gimp-sd35 whatever the install folder is called.
 * libgimp binds it and makes it the process's textdomain before it queries, creates or
 * runs a procedure, so _() in the plug-in, menu label and argument blurbs included, is
 * translated in the plug-in process, in the language GIMP started it with.  Built without
 * msgfmt there is no locale/: stay in English without libgimp's warning on every call. */
static gboolean
sd35_plug_in_set_i18n (GimpPlugIn   *plug_in,
                       const gchar  *name,
                       gchar       **gettext_domain,
                       gchar       **catalog_dir)
{
  gchar    *dir = g_path_get_dirname (gimp_get_progname ());
  gchar    *locale_dir = g_build_filename (dir, "locale", NULL);
  gboolean  have = g_file_test (locale_dir, G_FILE_TEST_IS_DIR);

  g_free (locale_dir);
  g_free (dir);
  if (! have)
    return FALSE;
  *gettext_domain = g_strdup (GETTEXT_PACKAGE);
  *catalog_dir = NULL;  /* = "locale", relative to the plug-in's folder */
  return TRUE;
}

static GList *
sd35_plug_in_query_procedures (GimpPlugIn *plug_in)
{
  GList *list = NULL;

  list = g_list_append (list, g_strdup (PROC_TXT2IMG));
  list = g_list_append (list, g_strdup (PROC_IMG2IMG));
  list = g_list_append (list, g_strdup (PROC_EXTENSION));
  return list;
}

static GimpProcedure *
sd35_plug_in_create_procedure (GimpPlugIn  *plug_in,
                               const gchar *name)
{
  GimpProcedure *procedure = NULL;

  if (! strcmp (name, PROC_TXT2IMG))
    procedure = sd35_procedure_new (plug_in, name, SD35_MODE_TXT2IMG,
                                    GIMP_PDB_PROC_TYPE_PLUGIN, run_public);
  else if (! strcmp (name, PROC_IMG2IMG))
    procedure = sd35_procedure_new (plug_in, name, SD35_MODE_IMG2IMG,
                                    GIMP_PDB_PROC_TYPE_PLUGIN, run_public);
  else if (! strcmp (name, PROC_EXTENSION))
    {
      procedure = gimp_procedure_new (plug_in, name, GIMP_PDB_PROC_TYPE_PERSISTENT,
                                      run_extension, NULL, NULL);
      /* the names are spelled out: xgettext does not expand macros */
      gimp_procedure_set_documentation (procedure,
                                        _("Keeps the Stable Diffusion 3.5 model loaded"),
                                        _("Started by GIMP; serves "
                                          "plug-in-sd35-resident-txt2img and "
                                          "plug-in-sd35-resident-img2img so that the weights "
                                          "stay in memory between calls (freed after 10 "
                                          "minutes without one)."),
                                        name);
      gimp_procedure_set_attribution (procedure, "gimp-sd35 contributors",
                                      "gimp-sd35 contributors", "2026");
    }
  return procedure;
}

GIMP_MAIN (SD35_TYPE_PLUG_IN)
