/* sd35-dialog-host.c — sd35_dialog_run: the dialog inside a GIMP 3 plug-in process.
 *
 * GTK 4 is started here (libgimp-3.0 links no GTK; libgimpui-3.0 is never linked).  What a
 * GTK 3 plug-in gets from gimp_ui_init we do by hand, as far as GTK 4 allows:
 *  - the message catalogue: GIMP's convention, locale/ beside the plug-in binary;
 *  - the theme: libgimp 3.0 has no "is dark" call, so we read GIMP's gimprc setting
 *    theme-color-scheme (light / gray / dark) through the PDB (gimp_gimprc_query) and set
 *    GTK's gtk-application-prefer-dark-theme accordingly (GTK's own Default theme, not
 *    GIMP's CSS, which is written for GTK 3);
 *  - the transient parent: libgimp hands the window of the call's progress (or of the
 *    default display) as a handle: an X11 window id on X11, an xdg-foreign handle string on
 *    Wayland.  GTK 4 has no foreign GdkSurface, so on X11 we set WM_TRANSIENT_FOR with Xlib
 *    once our window is realized, and on Wayland use gdk_wayland_toplevel_set_transient_for
 *    _exported.  Without a handle (gimp-console, batch calls) the window stands alone.
 */
#include <locale.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "sd35-dialog-private.h"

#ifdef GDK_WINDOWING_X11
#include <gdk/x11/gdkx.h>
#endif
#ifdef GDK_WINDOWING_WAYLAND
#include <gdk/wayland/gdkwayland.h>
#endif

void
sd35_dialog_bind_textdomain (void)
{
  const gchar *prog = gimp_get_progname ();
  gchar       *exe = NULL, *dir, *localedir;

  if (prog != NULL && g_path_is_absolute (prog))
    exe = g_strdup (prog);
  else
    exe = g_file_read_link ("/proc/self/exe", NULL);
  dir = exe != NULL ? g_path_get_dirname (exe) : g_strdup (".");
  localedir = g_build_filename (dir, "locale", NULL);
  if (! g_file_test (localedir, G_FILE_TEST_IS_DIR))
    {
      g_free (localedir);
      localedir = g_strdup (SD35_LOCALEDIR);
    }
  bindtextdomain (GETTEXT_PACKAGE, localedir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  g_free (localedir);
  g_free (dir);
  g_free (exe);
}

static gboolean
gimprc_says_yes (const gchar *value)
{
  return value != NULL && (! g_ascii_strcasecmp (value, "yes") ||
                           ! g_ascii_strcasecmp (value, "true") || ! strcmp (value, "1"));
}

/* Follows GIMP's choice of a dark or light theme; leaves GTK's default when GIMP says
 * nothing (gimp_gimprc_query returns NULL for a token it does not know).  GIMP 3.0 has
 * theme-color-scheme (light, gray, dark: Preferences > Interface > Theme); 2.99 had
 * prefer-dark-theme (yes/no).  Gray has light text on grey, closest to GTK's dark variant. */
static void
apply_gimp_theme (Sd35Dialog *self)
{
  gchar    *scheme = gimp_gimprc_query ("theme-color-scheme");
  gchar    *prefer_dark = scheme == NULL ? gimp_gimprc_query ("prefer-dark-theme") : NULL;
  gchar    *theme = gimp_gimprc_query ("theme");
  gchar    *lower = theme != NULL ? g_ascii_strdown (theme, -1) : NULL;
  gboolean  known = TRUE, dark = FALSE;

  if (scheme != NULL)
    dark = g_ascii_strcasecmp (scheme, "light") != 0;
  else if (prefer_dark != NULL)
    dark = gimprc_says_yes (prefer_dark);
  else if (lower != NULL && strstr (lower, "light") != NULL)
    dark = FALSE;
  else if (lower != NULL && strstr (lower, "dark") != NULL)
    dark = TRUE;
  else
    known = FALSE;
  if (known)
    g_object_set (gtk_settings_get_default (), "gtk-application-prefer-dark-theme", dark,
                  NULL);
  sd35_dialog_dump (self, "theme gimprc theme-color-scheme=%s prefer-dark-theme=%s theme=%s"
                    " -> %s", scheme != NULL ? scheme : "(none)",
                    prefer_dark != NULL ? prefer_dark : "(none)",
                    theme != NULL ? theme : "(none)",
                    known ? (dark ? "dark" : "light") : "gtk default");
  g_free (scheme);
  g_free (prefer_dark);
  g_free (theme);
  g_free (lower);
}

static void
parent_realized (GtkWidget *widget,
                 gpointer   data)
{
  Sd35Dialog   *self = SD35_DIALOG (widget);
  GBytes       *handle = data;
  GdkDisplay   *display = gtk_widget_get_display (widget);
  GdkSurface   *surface = gtk_native_get_surface (GTK_NATIVE (widget));
  gsize         size = 0;
  const guint8 *bytes = g_bytes_get_data (handle, &size);

#ifdef GDK_WINDOWING_X11
  if (GDK_IS_X11_DISPLAY (display))
    {
      unsigned long parent = 0;

      /* libgimp: the bytes of an X11 Window (unsigned long) */
      if (size == sizeof (unsigned long))
        memcpy (&parent, bytes, size);
      else if (size == sizeof (guint32))
        {
          guint32 xid32;

          memcpy (&xid32, bytes, sizeof xid32);
          parent = xid32;
        }
      if (parent != 0)
        {
          G_GNUC_BEGIN_IGNORE_DEPRECATIONS
          Display *xdisplay = gdk_x11_display_get_xdisplay (display);
          Window   xid = gdk_x11_surface_get_xid (surface), check = 0;

          XSetTransientForHint (xdisplay, xid, (Window) parent);
          XGetTransientForHint (xdisplay, xid, &check);
          G_GNUC_END_IGNORE_DEPRECATIONS
          sd35_dialog_dump (self, "parent x11 0x%lx (WM_TRANSIENT_FOR now 0x%lx)", parent,
                            (unsigned long) check);
        }
    }
#endif
#ifdef GDK_WINDOWING_WAYLAND
  if (GDK_IS_WAYLAND_DISPLAY (display) && GDK_IS_WAYLAND_TOPLEVEL (surface) && size > 0)
    {
      gchar *exported = g_strndup ((const gchar *) bytes, size);

      gdk_wayland_toplevel_set_transient_for_exported (GDK_WAYLAND_TOPLEVEL (surface),
                                                       exported);
      sd35_dialog_dump (self, "parent wayland %s", exported);
      g_free (exported);
    }
#endif
  (void) display;
  (void) surface;
  (void) bytes;
  (void) self;
}

GBytes *
sd35_dialog_parent_window (void)
{
  GBytes      *handle = gimp_progress_get_window_handle ();
  GimpDisplay *display;

  if ((handle == NULL || g_bytes_get_size (handle) == 0) &&
      (display = gimp_default_display ()) != NULL)
    {
      g_clear_pointer (&handle, g_bytes_unref);
      handle = gimp_display_get_window_handle (display);
    }
  if (handle != NULL && g_bytes_get_size (handle) == 0)
    g_clear_pointer (&handle, g_bytes_unref);
  return handle;
}

static void
set_transient_parent (Sd35Dialog *self,
                      GBytes     *parent_window)
{
  GBytes *handle = parent_window != NULL && g_bytes_get_size (parent_window) > 0 ?
                   g_bytes_ref (parent_window) : sd35_dialog_parent_window ();

  if (handle == NULL)
    {
      sd35_dialog_dump (self, "parent none");
      return;
    }
  g_signal_connect_data (self, "realize", G_CALLBACK (parent_realized), handle,
                         (GClosureNotify) (void (*) (void)) g_bytes_unref, 0);
}

GimpValueArray *
sd35_dialog_run (GimpProcedure        *procedure,
                 GimpProcedureConfig  *config,
                 GimpImage            *image,
                 GimpDrawable        **drawables,
                 GBytes               *parent_window)
{
  Sd35Dialog     *dialog;
  GimpValueArray *ret;

  g_return_val_if_fail (GIMP_IS_PROCEDURE (procedure), NULL);

  sd35_dialog_bind_textdomain ();
  if (! gtk_init_check ())
    return gimp_procedure_new_return_values (
      procedure, GIMP_PDB_EXECUTION_ERROR,
      g_error_new_literal (SD35_PLUGIN_ERROR, 0,
                           _("The Stable Diffusion dialog cannot open here (no display). "
                             "Call the procedure non-interactively instead.")));

  dialog = sd35_dialog_new (procedure, config, image, drawables);
  g_object_ref_sink (dialog);
  apply_gimp_theme (dialog);
  sd35_dialog_dump (dialog, "locale LC_MESSAGES=%s LANGUAGE=%s catalogue=%s",
                    setlocale (LC_MESSAGES, NULL), g_getenv ("LANGUAGE"),
                    bindtextdomain (GETTEXT_PACKAGE, NULL));
  set_transient_parent (dialog, parent_window);
  dialog->loop = g_main_loop_new (NULL, FALSE);
  gtk_window_present (GTK_WINDOW (dialog));
  sd35_dialog_dump_labels (dialog);
  g_main_loop_run (dialog->loop);
  g_clear_pointer (&dialog->loop, g_main_loop_unref);

  if (dialog->last_layers != NULL)
    {
      ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
      GIMP_VALUES_TAKE_CORE_OBJECT_ARRAY (ret, 1, g_steal_pointer (&dialog->last_layers));
      GIMP_VALUES_SET_INT (ret, 2, (gint) dialog->last_seed);
    }
  else
    ret = gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);
  gtk_window_destroy (GTK_WINDOW (dialog));
  g_object_unref (dialog);
  return ret;
}
