/* sd35-plugin.c — the gimp-sd35 GimpPlugIn: which procedures exist and who serves a call.
 *
 * GIMP ends a plug-in process when its procedure returns, so a model loaded by
 * plug-in-sd35-txt2img would be loaded again on every call.  To keep the weights in memory
 * the binary also registers extension-sd35, a persistent procedure without arguments, which
 * GIMP starts with itself (as it does Script-Fu's).  It serves temporary twins of the two
 * procedures and an engine cache that it empties after SD35_IDLE_TIMEOUT_S seconds without
 * a call ($SD35_IDLE_TIMEOUT overrides).  The public procedures stay ordinary plug-in
 * procedures (menus, pluginrc) and hand each call to the resident twin when it is there;
 * when it is not (extension killed, or $SD35_NO_RESIDENT set) they load the model
 * themselves, per call.
 */
#include <stdlib.h>
#include <string.h>

#include <glib/gi18n.h>

#include "sd35-plugin.h"
#ifdef SD35_HAVE_UI
#include "sd35-dialog.h"  /* ui/: the GTK 4 dialog of interactive runs */
#endif

typedef struct _Sd35PlugIn
{
  GimpPlugIn       parent_instance;
  Sd35EngineCache *cache;    /* the resident engine (extension process only) */
  guint            idle_id;
} Sd35PlugIn;

typedef struct _Sd35PlugInClass
{
  GimpPlugInClass parent_class;
} Sd35PlugInClass;

#define SD35_TYPE_PLUG_IN (sd35_plug_in_get_type ())
#define SD35_PLUG_IN(obj) (G_TYPE_CHECK_INSTANCE_CAST ((obj), SD35_TYPE_PLUG_IN, Sd35PlugIn))

GType sd35_plug_in_get_type (void);
G_DEFINE_TYPE (Sd35PlugIn, sd35_plug_in, GIMP_TYPE_PLUG_IN)

G_DEFINE_QUARK (gimp-sd35-error-quark, sd35_plugin_error)

static GList         *sd35_plug_in_query_procedures (GimpPlugIn  *plug_in);
static GimpProcedure *sd35_plug_in_create_procedure (GimpPlugIn  *plug_in,
                                                     const gchar *name);
static gboolean       sd35_plug_in_set_i18n         (GimpPlugIn  *plug_in,
                                                     const gchar *name,
                                                     gchar      **gettext_domain,
                                                     gchar      **catalog_dir);

void
sd35_plugin_set_error (GError                  **error,
                       const gchar              *headline,
                       const struct sd35_error  *e)
{
  g_set_error (error, SD35_PLUGIN_ERROR, (gint) e->status, "%s: %s", headline,
               e->message[0] != '\0' ? e->message : sd35_status_name (e->status));
}

static void
sd35_plug_in_finalize (GObject *object)
{
  Sd35PlugIn *self = SD35_PLUG_IN (object);

  if (self->idle_id != 0)
    g_source_remove (self->idle_id);
  sd35_engine_cache_free (self->cache);
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

static Sd35Mode
mode_of (GimpProcedure *procedure)
{
  return g_str_has_suffix (gimp_procedure_get_name (procedure), "img2img") ?
         SD35_MODE_IMG2IMG : SD35_MODE_TXT2IMG;
}

/* ---- the public procedures ---- */

/* Runs the call in the resident extension with the same values; NULL when there is none. */
static GimpValueArray *
forward_to_resident (GimpProcedure        *procedure,
                     GimpImage            *image,
                     GimpDrawable        **drawables,
                     GimpProcedureConfig  *config)
{
  const gchar         *name = mode_of (procedure) == SD35_MODE_IMG2IMG ?
                              PROC_RESIDENT_IMG2IMG : PROC_RESIDENT_TXT2IMG;
  GimpProcedure       *resident;
  GimpProcedureConfig *rc;
  GParamSpec         **specs;
  GimpValueArray      *ret;
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
  g_object_set (rc, "run-mode", GIMP_RUN_NONINTERACTIVE, "image", image, NULL);
  if (drawables != NULL && drawables[0] != NULL)
    {
      GObject **objects = (GObject **) drawables;

      gimp_procedure_config_set_core_object_array (rc, "drawables", objects,
                                                   gimp_core_object_array_get_length (objects));
    }
  g_printerr ("gimp-sd35: handing the call to the resident engine (%s)\n", name);
  ret = gimp_procedure_run_config (resident, rc);
  g_object_unref (rc);

  /* GIMP ends a plug-in whose progress the user cancels: say what happened, not GIMP's
   * "returned no return values" */
  if (GIMP_VALUES_GET_ENUM (ret, 0) != GIMP_PDB_SUCCESS &&
      ! gimp_pdb_procedure_exists (gimp_get_pdb (), name))
    {
      gimp_value_array_unref (ret);
      ret = gimp_procedure_new_return_values
        (procedure, GIMP_PDB_EXECUTION_ERROR,
         g_error_new_literal (SD35_PLUGIN_ERROR, 0,
                              _("The resident Stable Diffusion process ended during the call "
                                "(cancelled, or it crashed); nothing was added.  The next call "
                                "loads the model by itself.")));
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
  Sd35EngineCache *cache;
  GimpValueArray  *ret;
  GError          *error = NULL;

  gegl_init (NULL, NULL);
  if (run_mode == GIMP_RUN_INTERACTIVE)
    sd35_settings_apply (image, config);  /* start from how the image was last made */
#ifdef SD35_HAVE_UI
  /* ui/ hook: an interactive call opens the dialog, which runs its own tries (engine kept
   * loaded while it is open, live preview, one undo step per try) and returns the layers of
   * the last one, or CANCEL when none was kept */
  if (run_mode == GIMP_RUN_INTERACTIVE)
    return sd35_dialog_run (procedure, config, image, drawables);
#endif

  /* the twin runs NONINTERACTIVE (an interactive run would replace our values by its
   * last-used ones), so the displays are flushed here */
  ret = forward_to_resident (procedure, image, drawables, config);
  if (ret != NULL)
    {
      if (run_mode != GIMP_RUN_NONINTERACTIVE)
        gimp_displays_flush ();
      return ret;
    }

  if (! sd35_request_from_config (&request, mode_of (procedure), config, &error))
    return gimp_procedure_new_return_values (procedure, GIMP_PDB_CALLING_ERROR, error);
  cache = sd35_engine_cache_new ();
  ret = sd35_run_request (procedure, run_mode, image, drawables, &request, cache);
  sd35_engine_cache_free (cache);
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
  sd35_engine_cache_unload (self->cache);
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

  if (self->idle_id != 0)
    {
      g_source_remove (self->idle_id);
      self->idle_id = 0;
    }
  if (! sd35_request_from_config (&request, mode_of (procedure), config, &error))
    ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_CALLING_ERROR, error);
  else
    ret = sd35_run_request (procedure, run_mode, image, drawables, &request, self->cache);
  sd35_request_clear (&request);
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
    sd35_engine_cache_unload (self->cache);
  ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_TAKE_STRING (ret, 1, sd35_engine_cache_describe (self->cache));
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
  self->cache = sd35_engine_cache_new ();

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
