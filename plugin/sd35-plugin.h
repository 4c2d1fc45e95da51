/* sd35-plugin.h — internal declarations shared by the files of the gimp-sd35 plug-in.
 *
 * The plug-in is one binary, gimp-sd35, with:
 *   plug-in-sd35-txt2img, plug-in-sd35-img2img   image procedures (menus, pluginrc); each
 *       forwards to the resident copy below when it runs, else does the work itself;
 *   extension-sd35                               a persistent procedure GIMP starts with
 *       itself; it serves plug-in-sd35-resident-{txt2img,img2img,status} as temporary
 *       procedures and keeps the engine (the weights) loaded between calls.
 * Not here: the dialog (ui/, GTK 4; libgimpui is GTK 3 and is never linked).
 */
#ifndef SD35_PLUGIN_H
#define SD35_PLUGIN_H

#include <libgimp/gimp.h>

#include "sd35.h"

G_BEGIN_DECLS

#define PLUG_IN_BINARY        "gimp-sd35"
#define PLUG_IN_ROLE          "gimp-sd35"
#define PROC_TXT2IMG          "plug-in-sd35-txt2img"
#define PROC_IMG2IMG          "plug-in-sd35-img2img"
#define PROC_EXTENSION        "extension-sd35"
#define PROC_RESIDENT_TXT2IMG "plug-in-sd35-resident-txt2img"
#define PROC_RESIDENT_IMG2IMG "plug-in-sd35-resident-img2img"
#define PROC_RESIDENT_STATUS  "plug-in-sd35-resident-status"
#define SD35_PARASITE_NAME    "sd35-settings"
#define SD35_MAX_SIDE         8192
#define SD35_MAX_BATCH        16
#define SD35_IDLE_TIMEOUT_S   600  /* free the engine after 10 min without a call */

typedef enum
{
  SD35_MODE_TXT2IMG,
  SD35_MODE_IMG2IMG
} Sd35Mode;

#define SD35_PLUGIN_ERROR (sd35_plugin_error_quark ())
GQuark   sd35_plugin_error_quark (void);

/* One GError in our domain: a headline a user reads first, then the engine's detail. */
void     sd35_plugin_set_error   (GError                  **error,
                                  const gchar              *headline,
                                  const struct sd35_error  *e);

/* ---- procedures.c: names, menus, documentation, arguments ---- */

GimpProcedure *sd35_procedure_new (GimpPlugIn       *plug_in,
                                   const gchar      *name,
                                   Sd35Mode          mode,
                                   GimpPDBProcType   proc_type,
                                   GimpRunImageFunc  run_func);

/* Every value of one call, copied out of the config on the main thread. */
typedef struct
{
  Sd35Mode               mode;
  gchar                 *prompt;
  gchar                 *negative;
  gchar                 *model;         /* local path; NULL = let the engine discover */
  gint                   steps;
  gdouble                guidance;
  gint                   seed;          /* -1 = random */
  gint                   width, height; /* 0 = from the selection / image */
  enum sd35_sampler      sampler;
  gdouble                shift;
  gdouble                slg_scale;
  gboolean               use_t5;
  gint                   batch_count;
  enum sd35_backend_kind backend;
  gdouble                strength;
  gboolean               use_selection_mask;
} Sd35Request;

gboolean sd35_request_from_config (Sd35Request          *request,
                                   Sd35Mode              mode,
                                   GimpProcedureConfig  *config,
                                   GError              **error);
void     sd35_request_clear       (Sd35Request          *request);
gint     sd35_round16             (gint                  side);

/* ---- selection.c ---- */

/* A rectangle in image coordinates. */
typedef struct
{
  gint x, y, width, height;
} Sd35Box;

gboolean sd35_selection_image_box    (GimpImage     *image,
                                      Sd35Box       *box);
gboolean sd35_selection_drawable_box (GimpDrawable  *drawable,
                                      Sd35Box       *box);
gfloat  *sd35_selection_read_mask    (GimpImage     *image,
                                      const Sd35Box *box,
                                      GError       **error);

/* ---- pixels.c ---- */

guint8  *sd35_pixels_read_rgb   (GimpDrawable   *drawable,
                                 const Sd35Box  *box,
                                 GError        **error);
gpointer sd35_pixels_resize     (gconstpointer   src,
                                 gint            src_w,
                                 gint            src_h,
                                 gint            channels,
                                 gboolean        is_float,
                                 gint            dst_w,
                                 gint            dst_h);
gfloat  *sd35_pixels_result_rgba (const struct sd35_result *result,
                                  GError                  **error);
GimpLayer *sd35_pixels_insert_layer (GimpImage     *image,
                                     const gchar   *name,
                                     const gfloat  *rgba,
                                     gint           src_w,
                                     gint           src_h,
                                     const Sd35Box *box,
                                     GError       **error);

/* ---- worker.c: the engine on a worker thread ---- */

typedef struct _Sd35EngineCache Sd35EngineCache;

Sd35EngineCache *sd35_engine_cache_new     (void);
void             sd35_engine_cache_free    (Sd35EngineCache *cache);
void             sd35_engine_cache_unload  (Sd35EngineCache *cache);
gchar           *sd35_engine_cache_describe (Sd35EngineCache *cache);
const gchar     *sd35_engine_cache_model_name (Sd35EngineCache *cache);

/* Opens the engine if the cache holds none for these options, then runs `n_images`
 * generations (seed, seed+1, …) on a worker thread while the main thread shows progress.
 * results[] receives n_images results (cleared by the caller).  Returns FALSE with *error on
 * failure, or FALSE with *cancelled = TRUE and no error when cancellable (may be NULL) was
 * cancelled. */
gboolean sd35_worker_generate (Sd35EngineCache                  *cache,
                               const struct sd35_engine_options *options,
                               const struct sd35_params         *params,
                               gint                              n_images,
                               struct sd35_result               *results,
                               GCancellable                     *cancellable,
                               gboolean                         *cancelled,
                               GError                          **error);

/* ---- settings.c: the sd35-settings parasite ---- */

gchar   *sd35_settings_to_json  (const Sd35Request *request,
                                 guint32            seed,
                                 const gchar       *model_name);
gboolean sd35_settings_attach   (GimpItem          *item,
                                 GimpImage         *image,
                                 const gchar       *json);
gboolean sd35_settings_apply    (GimpImage           *image,
                                 GimpProcedureConfig *config);

/* ---- run.c: one call, in whichever process serves it ---- */

/* The img2img inputs: the pixels of drawable under box and, when use_mask and the image
 * has a selection, the selection as a mask, both scaled to gen_w×gen_h.  *mask stays NULL
 * without a selection (everything would be kept).  FALSE with *error on failure.  The
 * caller frees *init_rgb and *mask (g_free), also after a failure. */
gboolean    sd35_run_read_inputs   (GimpImage                *image,
                                    GimpDrawable             *drawable,
                                    const Sd35Box            *box,
                                    gint                      gen_w,
                                    gint                      gen_h,
                                    gboolean                  use_mask,
                                    guint8                  **init_rgb,
                                    gfloat                  **mask,
                                    GError                  **error);
/* Inserts one layer per result over box (scaled to it), named after the prompt and seed,
 * with the selection as layer mask when add_mask, and records the settings parasite.
 * Returns the layers, NULL-terminated (g_free), or NULL with *error after removing what it
 * had added.  The caller opens the undo group. */
GimpLayer **sd35_run_insert_layers (GimpImage                *image,
                                    const Sd35Request        *request,
                                    const struct sd35_result *results,
                                    gint                      n,
                                    const Sd35Box            *box,
                                    gboolean                  add_mask,
                                    const gchar              *model_name,
                                    GError                  **error);

GimpValueArray *sd35_run_request (GimpProcedure   *procedure,
                                  GimpRunMode      run_mode,
                                  GimpImage       *image,
                                  GimpDrawable   **drawables,
                                  Sd35Request     *request,
                                  Sd35EngineCache *cache);

G_END_DECLS

#endif /* SD35_PLUGIN_H */
