/* sd35-plugin.h — internal declarations of the gimp-sd35 plug-in binary (sd35-plugin.c,
 * procedures.c).  The work itself is in the plug-in core (core/sd35-core.h), the dialog in
 * ui/ (sd35-dialog.h); this binary only registers procedures and routes calls.
 *
 * The plug-in is one binary, gimp-sd35, with:
 *   plug-in-sd35-txt2img, plug-in-sd35-img2img   image procedures (menus, pluginrc); each
 *       forwards to the resident copy below when it runs (the dialog included), else does
 *       the work itself;
 *   extension-sd35                               a persistent procedure GIMP starts with
 *       itself; it serves plug-in-sd35-resident-{txt2img,img2img,status} as temporary
 *       procedures and keeps the engine (the weights) loaded between calls, for scripts and
 *       for the dialog alike.
 */
#ifndef SD35_PLUGIN_H
#define SD35_PLUGIN_H

#include <libgimp/gimp.h>

#include "sd35-core.h"

G_BEGIN_DECLS

#define PLUG_IN_BINARY        "gimp-sd35"
#define PLUG_IN_ROLE          "gimp-sd35"
#define PROC_TXT2IMG          "plug-in-sd35-txt2img"
#define PROC_IMG2IMG          "plug-in-sd35-img2img"
#define PROC_EXTENSION        "extension-sd35"
#define PROC_RESIDENT_TXT2IMG "plug-in-sd35-resident-txt2img"
#define PROC_RESIDENT_IMG2IMG "plug-in-sd35-resident-img2img"
#define PROC_RESIDENT_STATUS  "plug-in-sd35-resident-status"
#define SD35_IDLE_TIMEOUT_S   600  /* free the engine after 10 min without a call */

/* The resident twins' own arguments, after the public ones (the forwarder sets them):
 *   sd35-progress  name of the caller's temporary progress procedure ("" = gimp_progress)
 *   sd35-dialog    open the dialog in the resident process (an interactive call)
 *   sd35-parent    the window the dialog is transient for (the resident has no display)
 * and their own return value, after layers and seed:
 *   sd35-config    the dialog's last values (GimpConfig text), for the caller's config */
#define ARG_PROGRESS          "sd35-progress"
#define ARG_DIALOG            "sd35-dialog"
#define ARG_PARENT            "sd35-parent"
#define RET_CONFIG            "sd35-config"

/* ---- procedures.c: names, menus, documentation, arguments ---- */

GimpProcedure *sd35_procedure_new (GimpPlugIn       *plug_in,
                                   const gchar      *name,
                                   Sd35Mode          mode,
                                   GimpPDBProcType   proc_type,
                                   GimpRunImageFunc  run_func);


G_END_DECLS

#endif /* SD35_PLUGIN_H */
