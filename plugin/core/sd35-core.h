/* sd35-core.h — the plug-in core: everything the PDB procedures (plugin/) and the GTK 4
 * dialog (ui/) share, in one static library (sd35core) that depends on the engine's public
 * API (sd35.h) and libgimp only.  Dependencies run one way:
 *     engine  ←  plug-in core  ←  ui  ←  plug-in binary (plugin/sd35-plugin.c, procedures.c)
 * Per plug-in process there is ONE resident engine (the engine holder: loaded once, kept
 * while model and load options stay the same) and ONE worker thread that runs every job on
 * it, whoever asked: a script through the PDB or a Generate in the dialog.
 *
 * The files:
 *   errors.c         the error domain and the headlines every front end shows
 *   request.c        a call's values (Sd35Request) from a GimpProcedureConfig, and the one
 *                    mapping request → engine options, cache key, sampling parameters
 *   engine-holder.c  the resident engine: ref-counted, keyed by model + load options
 *   worker.c         the worker thread, its queue, the engine callbacks
 *   job.c            one generation: inputs read on the main thread, reports, results,
 *                    layers inserted in one undo group
 *   run.c            a PDB call run to the end (progress through GIMP or a callback)
 *   selection.c, pixels.c, settings.c   where, the pixels, the sd35-settings parasite
 * Everything here is called on the plug-in's main thread unless it says otherwise.
 */
#ifndef SD35_CORE_H
#define SD35_CORE_H

#include <libgimp/gimp.h>

#include "sd35.h"

G_BEGIN_DECLS

#define SD35_PARASITE_NAME    "sd35-settings"
#define SD35_MAX_SIDE         8192
#define SD35_MAX_BATCH        16

typedef enum
{
  SD35_MODE_TXT2IMG,
  SD35_MODE_IMG2IMG
} Sd35Mode;

/* From the procedure's name: …img2img is Image to Image, anything else Text to Image. */
Sd35Mode sd35_mode_of_procedure (GimpProcedure *procedure);

/* ---- errors.c ---- */

#define SD35_PLUGIN_ERROR (sd35_plugin_error_quark ())
GQuark   sd35_plugin_error_quark (void);

typedef enum
{
  SD35_HEADLINE_LOAD,      /* the model could not be opened */
  SD35_HEADLINE_GENERATE   /* the engine failed while making the image */
} Sd35Headline;

/* The headline, translated: the same words in the dialog, the progress bar and the PDB. */
const gchar *sd35_headline_text     (Sd35Headline              headline);
/* One GError in our domain: the headline a user reads first, then the engine's detail. */
void         sd35_plugin_set_error  (GError                  **error,
                                     Sd35Headline              headline,
                                     const struct sd35_error  *e);

/* ---- request.c: the one mapping from the PDB arguments to the engine ---- */

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
  enum sd35_prompt_weights prompt_weights;
  gboolean               native_resolution;  /* img2img with a selection: inpaint.h */
  gint                   context_margin;     /* -1 = automatic */
  gchar                **loras;         /* "FILE:STRENGTH" each, checked; NULL = none */
} Sd35Request;

gboolean sd35_request_from_config   (Sd35Request                *request,
                                     Sd35Mode                    mode,
                                     GimpProcedureConfig        *config,
                                     GError                    **error);
void     sd35_request_clear         (Sd35Request                *request);
gint     sd35_round16               (gint                        side);
/* The engine's load options for the request (strings borrowed from it). */
void     sd35_request_engine_options (const Sd35Request         *request,
                                      struct sd35_engine_options *options);
/* What a loaded engine is reused for: the same model and load options give the same key. */
gchar   *sd35_engine_options_key    (const struct sd35_engine_options *options);
/* The sampling parameters of one generation of gen_w × gen_h from the request (strings and
 * pixels borrowed). */
void     sd35_request_params        (const Sd35Request          *request,
                                     gint                        gen_w,
                                     gint                        gen_h,
                                     guint32                     seed,
                                     const guint8               *init_rgb,
                                     const gfloat               *mask,
                                     struct sd35_params         *params);

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

/* ---- settings.c: the sd35-settings parasite ---- */

gchar   *sd35_settings_to_json  (const Sd35Request   *request,
                                 guint32              seed,
                                 const gchar         *model_name);
gboolean sd35_settings_attach   (GimpItem            *item,
                                 GimpImage           *image,
                                 const gchar         *json);
gboolean sd35_settings_apply    (GimpImage           *image,
                                 GimpProcedureConfig *config);

/* ---- engine-holder.c: the resident engine of this process ---- */

typedef struct _Sd35EngineHolder Sd35EngineHolder;

/* The process's one holder (created on first use), with a new reference.  It keeps the
 * engine loaded while anyone holds a reference; the last unref frees it. */
Sd35EngineHolder *sd35_engine_holder_get      (void);
Sd35EngineHolder *sd35_engine_holder_ref      (Sd35EngineHolder *holder);
void              sd35_engine_holder_unref    (Sd35EngineHolder *holder);
/* Frees the model now, or right after the job that is using it. */
void              sd35_engine_holder_unload   (Sd35EngineHolder *holder);
/* One line for scripts and tests: "loaded=0|1 loads=N calls=N last-load-s=S pid=PID
 * model=NAME". */
gchar            *sd35_engine_holder_describe (Sd35EngineHolder *holder);
/* How many times a model was loaded in this process. */
guint             sd35_engine_holder_loads    (Sd35EngineHolder *holder);

/* ---- job.c + worker.c: one generation on the worker thread ---- */

typedef struct _Sd35Job Sd35Job;

typedef enum
{
  SD35_JOB_STAGE,    /* stage (and text: the engine's own word for an unknown stage) */
  SD35_JOB_STEP,     /* step, n_steps, image, n_images, elapsed_s, maybe rgb */
  SD35_JOB_DONE      /* the job's status, results and error are final */
} Sd35JobReportKind;

typedef enum
{
  SD35_STAGE_LOADING,   /* loading the model (only when the resident engine has none fit) */
  SD35_STAGE_ENCODING,  /* encoding the prompt */
  SD35_STAGE_SAMPLING,
  SD35_STAGE_DECODING,
  SD35_STAGE_OTHER      /* text says which */
} Sd35Stage;

typedef struct
{
  Sd35JobReportKind kind;
  Sd35Stage         stage;
  const gchar      *text;
  gint              step, n_steps;   /* 1-based step of n_steps */
  gint              image, n_images; /* 0-based image of the batch */
  gdouble           elapsed_s;       /* since the first step of the first image */
  const guint8     *rgb;             /* x0 estimate, RGB HWC, or NULL (skipped: GTK is busy) */
  gint              rgb_width, rgb_height;
} Sd35JobReport;

/* Called on the thread (main context) that started the job, in order. */
typedef void (*Sd35JobReportFunc) (Sd35Job             *job,
                                   const Sd35JobReport *report,
                                   gpointer             user_data);

/* Everything one generation needs, read from the image on the main thread (pixels and
 * selection included; the image is re-read for every job: the selection may have changed).
 * Takes over *request (cleared).  NULL with *error for an impossible call (a selection
 * outside the drawable, not one drawable for img2img, out of memory); *calling_error is
 * then TRUE when the arguments were at fault (may be NULL). */
Sd35Job      *sd35_job_new_from_request (Sd35Request          *request,
                                         GimpImage            *image,
                                         GimpDrawable        **drawables,
                                         gboolean             *calling_error,
                                         GError              **error);
/* The same, the values read from config. */
Sd35Job      *sd35_job_new              (GimpProcedureConfig  *config,
                                         Sd35Mode              mode,
                                         GimpImage            *image,
                                         GimpDrawable        **drawables,
                                         GError              **error);
Sd35Job      *sd35_job_ref              (Sd35Job              *job);
void          sd35_job_unref            (Sd35Job              *job);

/* Queues the job on the worker thread of this process.  report runs on the thread-default
 * main context of the caller, and only while owner (when not NULL) is alive.  FALSE with
 * *error if the worker thread could not be started. */
gboolean      sd35_job_start            (Sd35Job              *job,
                                         Sd35JobReportFunc     report,
                                         gpointer              user_data,
                                         GObject              *owner,
                                         GError              **error);
/* Runs the job to the end: starts it with report on a private main context and spins that
 * context until SD35_JOB_DONE (no other call of this process is dispatched meanwhile).
 * FALSE with *error if no worker thread could be started. */
gboolean      sd35_job_run              (Sd35Job              *job,
                                         Sd35JobReportFunc     report,
                                         gpointer              user_data,
                                         GError              **error);
/* Asks the engine to stop: it does so within one step (between MMDiT blocks).  Any thread. */
void          sd35_job_cancel           (Sd35Job              *job);

/* After SD35_JOB_DONE: */
gboolean      sd35_job_cancelled        (Sd35Job              *job);
/* FALSE with *error (headline + detail) when the engine failed. */
gboolean      sd35_job_succeeded        (Sd35Job              *job,
                                         GError              **error);
/* Whether this job had to load the model (FALSE: it reused the resident engine). */
gboolean      sd35_job_loaded_model     (Sd35Job              *job);
/* Seconds the worker spent on the job (model load included) and on loading the model. */
gdouble       sd35_job_run_seconds      (Sd35Job              *job);
gdouble       sd35_job_load_seconds     (Sd35Job              *job);
const Sd35Request *sd35_job_request     (Sd35Job              *job);
guint32       sd35_job_seed             (Sd35Job              *job);
gint          sd35_job_width            (Sd35Job              *job);
gint          sd35_job_height           (Sd35Job              *job);
const Sd35Box *sd35_job_box             (Sd35Job              *job);
/* The first image of a successful job, RGB u8 HWC (owned by the job), or NULL. */
const guint8 *sd35_job_result_rgb       (Sd35Job              *job,
                                         gint                 *width,
                                         gint                 *height);
/* The detected variant of the model the job ran ("SD3.5 Large", …), or NULL. */
const gchar  *sd35_job_variant          (Sd35Job              *job);
/* The number of images (the batch count) and image i of a successful job (owned by it). */
gint          sd35_job_n_images         (Sd35Job              *job);
const struct sd35_result *sd35_job_result (Sd35Job            *job,
                                         gint                  i);
/* Inserts one layer per result, in one undo group (one undo step), with the settings
 * parasite.  Returns the new layers (NULL-terminated, free with g_free) or NULL with
 * *error; on an error nothing stays. */
GimpLayer   **sd35_job_insert           (Sd35Job              *job,
                                         GError              **error);
/* The same for the results whose chosen[i] is TRUE (chosen has sd35_job_n_images
 * entries; NULL = all).  None chosen: an empty list. */
GimpLayer   **sd35_job_insert_chosen    (Sd35Job              *job,
                                         const gboolean       *chosen,
                                         GError              **error);

/* ---- run.c: one PDB call, run to the end ---- */

/* Where the progress of a PDB call goes.  NULL callback: GIMP's progress of this call
 * (gimp_progress_*; GIMP kills the process that owns it when the user cancels).  Else the
 * name of a temporary procedure of the caller taking (text, fraction): the resident engine
 * reports through the short-lived process that called it, and a failed report (the caller
 * is gone: its progress was cancelled) cancels the job while the engine stays loaded. */
GimpValueArray *sd35_run_request (GimpProcedure   *procedure,
                                  GimpRunMode      run_mode,
                                  GimpImage       *image,
                                  GimpDrawable   **drawables,
                                  Sd35Request     *request,
                                  const gchar     *progress_callback);

/* Text of a stage for the progress bar ("Stable Diffusion: sampling …"). */
gchar          *sd35_run_stage_text (const Sd35JobReport *report);

G_END_DECLS

#endif /* SD35_CORE_H */
