/* sd35-dialog.h — the GTK 4 dialog of plug-in-sd35-txt2img / -img2img (interactive runs).
 *
 * The plug-in's run function hands an INTERACTIVE call to sd35_dialog_run () and returns
 * what it returns.  The dialog is one GtkWindow (not GtkDialog, deprecated since GTK 4.10)
 * whose widgets are views of the GimpProcedureConfig (bound properties), so interactive and
 * scripted runs read the same values.  Generate runs the engine on a worker thread with a
 * live preview and inserts the layer(s) in one undo step, then keeps the window open; Close
 * ends the call.  Links libgimp-3.0 and GTK 4 only: libgimpui-3.0 is GTK 3, and GTK 4 aborts
 * in a process that has GTK 3 symbols.
 */
#pragma once

#include <gtk/gtk.h>
#include <libgimp/gimp.h>

G_BEGIN_DECLS

/* Runs the dialog until it is closed, transient for parent_window (NULL: the one of this
 * call, sd35_dialog_parent_window).  Returns SUCCESS with the layers of the last try and its
 * seed when at least one try inserted layers, CANCEL when none did (nothing was inserted),
 * EXECUTION_ERROR when GTK cannot start (no display).  Call from the plug-in's main thread. */
GimpValueArray *sd35_dialog_run (GimpProcedure        *procedure,
                                 GimpProcedureConfig  *config,
                                 GimpImage            *image,
                                 GimpDrawable        **drawables,
                                 GBytes               *parent_window);

/* The window the dialog should be transient for, as libgimp hands it (the window of the
 * call's progress, else of the default display), or NULL.  A process that forwards an
 * interactive call to the resident one passes it on: the resident process has no display of
 * its own.  Free with g_bytes_unref. */
GBytes         *sd35_dialog_parent_window (void);

#define SD35_TYPE_DIALOG (sd35_dialog_get_type ())
G_DECLARE_FINAL_TYPE (Sd35Dialog, sd35_dialog, SD35, DIALOG, GtkWindow)

Sd35Dialog *sd35_dialog_new (GimpProcedure        *procedure,
                             GimpProcedureConfig  *config,
                             GimpImage            *image,
                             GimpDrawable        **drawables);

G_END_DECLS
