/* errors.c — the plug-in's error domain and the headlines of its errors.  One set for every
 * front end: the dialog, the progress bar and a script's PDB error say the same words. */
#include <glib/gi18n-lib.h>

#include "sd35-core.h"

G_DEFINE_QUARK (gimp-sd35-error-quark, sd35_plugin_error)

const gchar *
sd35_headline_text (Sd35Headline headline)
{
  switch (headline)
    {
    case SD35_HEADLINE_LOAD:     return _("Could not load the model");
    case SD35_HEADLINE_GENERATE: return _("The image could not be made");
    }
  return _("The image could not be made");
}

void
sd35_plugin_set_error (GError                  **error,
                       Sd35Headline              headline,
                       const struct sd35_error  *e)
{
  g_set_error (error, SD35_PLUGIN_ERROR, (gint) e->status, "%s: %s",
               sd35_headline_text (headline),
               e->message[0] != '\0' ? e->message : sd35_status_name (e->status));
}

Sd35Mode
sd35_mode_of_procedure (GimpProcedure *procedure)
{
  return g_str_has_suffix (gimp_procedure_get_name (procedure), "img2img") ?
         SD35_MODE_IMG2IMG : SD35_MODE_TXT2IMG;
}
