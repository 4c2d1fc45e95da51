/* cmd_txt2img.c — `sd35 txt2img` and `sd35 img2img`: one image through the public API,
 * written as PNG, optionally with the run's tensors (noise, sigmas, final latent, image) as
 * safetensors for comparison with the reference. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "cli.h"
#include "commands.h"
#include "dtype.h"
#include "image_png.h"
#include "image_resize.h"
#include "safe_file.h"
#include "safetensors.h"
#include "sd35.h"

struct gen_opts
{
  struct cli_model_opts model;
  const char           *prompt, *negative, *sampler, *noise, *out, *tensors_out;
  const char           *init, *mask;
  const char           *offload, *vae_tiles;  /* "auto" | "on" | "off" */
  const char           *prompt_weights;       /* "comfy" | "ignore" */
  int                   steps, width, height, quiet;
  double                cfg, shift, slg_scale, slg_start, slg_end, strength;
  uint64_t              seed, vae_seed;
  int                   seen_vae_seed, seen_slg_layers, seen_width, seen_height;
  struct cli_int_list   slg_layers;
  struct cli_str_list   loras;      /* --lora FILE[:STRENGTH], repeatable */

  /* progress: one rewritten line on a terminal, a line per step otherwise */
  int                   tty;
  int                   line_open;    /* a progress line without its newline is shown */
  struct timespec       t_sampling;   /* start of the sampling stage: the ETA's clock */
};

static volatile sig_atomic_t interrupted;

static void
on_sigint (int sig)
{
  (void) sig;
  interrupted = 1;
}

static int
is_cancelled (void *user)
{
  (void) user;
  return interrupted;
}

static double
seconds_since (const struct timespec *t0)
{
  struct timespec t;

  clock_gettime (CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* Ends a rewritten progress line before anything else is printed on stderr. */
static void
progress_end (struct gen_opts *o)
{
  if (o->line_open)
    fputc ('\n', stderr);
  o->line_open = 0;
}

static void
on_stage (void *user, const char *stage)
{
  struct gen_opts *o = user;

  if (strcmp (stage, "sampling") == 0)
    clock_gettime (CLOCK_MONOTONIC, &o->t_sampling);
  if (o->quiet)
    return;
  progress_end (o);
  fprintf (stderr, "%s…\n", stage);
}

/* "m:ss" (or "h:mm:ss") for a duration in seconds. */
static void
format_duration (double s, char *buf, size_t size)
{
  long t = s > 0 ? (long) (s + 0.5) : 0;

  if (t >= 3600)
    snprintf (buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf (buf, size, "%ld:%02ld", t / 60, t % 60);
}

static void
on_step (void *user, int step, int n_steps, float sigma, const uint8_t *rgb, int w, int h)
{
  struct gen_opts *o = user;
  int              done = step + 1, filled, width = 24;
  double           elapsed;
  char             bar[32], el[32], left[32];

  (void) rgb, (void) w, (void) h;
  if (o->quiet)
    return;
  if (!o->tty)
    {
      fprintf (stderr, "  step %d/%d  sigma %.4f\n", done, n_steps, sigma);
      return;
    }
  /* the time per step so far × the steps to go (the first step includes warm-up, so the
   * estimate is a little pessimistic at first) */
  elapsed = seconds_since (&o->t_sampling);
  filled = n_steps > 0 ? done * width / n_steps : 0;
  for (int i = 0; i < width; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[width] = '\0';
  format_duration (elapsed, el, sizeof el);
  format_duration (elapsed / done * (n_steps - done), left, sizeof left);
  fprintf (stderr, "\r  step %d/%d [%s] %s elapsed, %s left\033[K", done, n_steps, bar, el,
           left);
  fflush (stderr);
  o->line_open = 1;
  if (done == n_steps)
    progress_end (o);
}

/* The `noise` tensor of a safetensors file, 16·h·w floats. */
static float *
read_noise (const char *cmd, const char *path, int h, int w)
{
  struct st_file         *f = NULL;
  struct sd35_error       err = { 0 };
  const struct st_tensor *t;
  float                  *v = NULL;

  if (st_open (path, &f, &err) != SD35_OK)
    {
      cli_fail_err (cmd, &err);
      return NULL;
    }
  t = st_find (f, "noise");
  if (t == NULL)
    cli_fail (cmd, "%s has no tensor named 'noise'", path);
  else if (t->numel != (size_t) 16 * h * w)
    cli_fail (cmd, "the noise in %s has %zu values; a %d×%d image needs [1, 16, %d, %d] = %d",
              path, t->numel, w * 8, h * 8, h, w, 16 * h * w);
  else if ((v = st_read_f32 (t, &err)) == NULL)
    cli_fail_err (cmd, &err);
  st_close (f);
  return v;
}

static int
write_tensors (const char *cmd, const char *path, const struct sd35_result *r)
{
  struct st_writer *w = st_writer_new ();
  int64_t           lat[4] = { 1, 16, r->height / 8, r->width / 8 };
  int64_t           img[4] = { 1, 3, r->height, r->width };
  int64_t           u8[3] = { r->height, r->width, 3 };
  int64_t           ns[1] = { r->n_sigmas };
  int               bad;

  bad = st_writer_add_f32 (w, "noise", 4, lat, r->noise) ||
        st_writer_add_f32 (w, "sigmas", 1, ns, r->sigmas) ||
        st_writer_add_f32 (w, "final_latent", 4, lat, r->final_latent) ||
        st_writer_add_f32 (w, "image_float", 4, img, r->image_float) ||
        st_writer_add (w, "image_uint8", SD35_U8, 3, u8, r->rgb);
  return cli_save (cmd, w, bad, path);
}

/* "on" / "off" / "auto" (or NULL = auto) → the engine option's values. */
static int
tri_state (const char *cmd, const char *opt, const char *v, int on, int off, int aut, int *dst)
{
  if (v == NULL || strcmp (v, "auto") == 0)
    *dst = aut;
  else if (strcmp (v, "on") == 0)
    *dst = on;
  else if (strcmp (v, "off") == 0)
    *dst = off;
  else
    return cli_fail (cmd, "%s must be auto, on or off, not '%s'", opt, v), -1;
  return 0;
}

/* The nearest multiple of 16 (at least 16): the VAE's 8 × the MMDiT's 2×2 patches. */
static int
round16 (int side)
{
  int r = (side + 8) / 16 * 16;

  return r < 16 ? 16 : r;
}

/* Reads the init image and the mask.  Without --width/--height the image keeps the init
 * image's size, rounded to a multiple of 16; otherwise (or when rounding changed it) the
 * init image is resized to width×height. */
static int
read_init (const char *cmd, struct gen_opts *o, uint8_t **rgb, float **mask)
{
  struct sd35_error err = { 0 };
  uint8_t          *img = NULL;
  int               w, h, init_w, init_h;

  if (png_read_rgb (o->init, &img, &w, &h, &err) != SD35_OK)
    return cli_fail_err (cmd, &err);
  init_w = w;
  init_h = h;
  if (!o->seen_width)
    o->width = round16 (w);
  if (!o->seen_height)
    o->height = round16 (h);
  if (o->width % 16 != 0 || o->height % 16 != 0 || o->width <= 0 || o->height <= 0)
    {
      free (img);
      return 0;  /* sd35_generate names the nearest valid sizes */
    }
  if (w != o->width || h != o->height)
    {
      uint8_t *resized = NULL;
      fprintf (stderr, "sd35 %s: resizing the init image from %d×%d to %d×%d (Lanczos)\n", cmd,
               w, h, o->width, o->height);
      if (image_resize_rgb (img, w, h, o->width, o->height, &resized, &err) != SD35_OK)
        {
          free (img);
          return cli_fail_err (cmd, &err);
        }
      free (img);
      img = resized;
    }
  *rgb = img;
  if (o->mask == NULL)
    return 0;
  {
    uint8_t *m = NULL;
    size_t   n = (size_t) o->width * o->height;

    if (png_read_rgb (o->mask, &m, &w, &h, &err) != SD35_OK)
      return cli_fail_err (cmd, &err);
    if (w == init_w && h == init_h && (w != o->width || h != o->height))
      {
        /* drawn over the init image: scaled with it */
        uint8_t *resized = NULL;

        if (image_resize_rgb (m, w, h, o->width, o->height, &resized, &err) != SD35_OK)
          {
            free (m);
            return cli_fail_err (cmd, &err);
          }
        free (m);
        m = resized;
      }
    else if (w != o->width || h != o->height)
      {
        free (m);
        return cli_fail (cmd, "the mask %s is %d×%d; it must be the size of the init image "
                         "(%d×%d) or of the output (%d×%d)", o->mask, w, h, init_w, init_h,
                         o->width, o->height);
      }
    *mask = malloc (n * sizeof **mask);
    if (*mask == NULL)
      {
        free (m);
        return cli_fail (cmd, "out of memory");
      }
    for (size_t i = 0; i < n; i++)
      (*mask)[i] = m[3 * i] / 255.0f;  /* white = regenerate */
    free (m);
  }
  return 0;
}

static int
run (int argc, char **argv, int img2img)
{
  const char                *cmd = img2img ? "img2img" : "txt2img";
  struct gen_opts            o;
  struct sd35_engine_options eo;
  struct sd35_params         p;
  struct sd35_callbacks      cb;
  struct sd35_result         r;
  struct sd35_error          err = { 0 };
  sd35_engine               *engine = NULL;
  float                     *noise = NULL, *mask = NULL;
  uint8_t                   *init = NULL;
  int                        rc, seen_seed = 0;
  struct timespec            t0, t1;
  struct sd35_lora           loras[32];

  memset (&o, 0, sizeof o);
  o.width = o.height = 1024;
  o.cfg = -1;
  o.slg_start = 0.01;
  o.slg_end = 0.20;
  o.strength = 0.8;
  {
    const struct cli_opt opts[] = {
      CLI_MODEL_OPTS (o.model),
      { "prompt", CLI_STR, &o.prompt, "the prompt (required)", NULL },
      { "negative", CLI_STR, &o.negative, "negative prompt (default: empty)", NULL },
      { "prompt-weights", CLI_STR, &o.prompt_weights, CLI_PROMPT_WEIGHTS_HELP, NULL },
      { "steps", CLI_INT, &o.steps, "sampling steps, 1-1000 (default: the model's: Large 40, "
        "Turbo 4, Medium 50)", NULL, 1, 1000 },
      { "cfg", CLI_DOUBLE, &o.cfg, "guidance scale (default: the model's: Large 4.5, Turbo 1, "
        "Medium 5). Below 1 means no guidance (conditional prediction only, as diffusers); "
        "exactly 1 gives the same and skips the unconditional pass; 0-100", NULL, 0, 100 },
      { "seed", CLI_U64, &o.seed, "noise seed, torch.manual_seed semantics (default: random)",
        &seen_seed },
      { "width", CLI_INT, &o.width, img2img ? "image width, a multiple of 16 (default: the "
        "init image's, rounded to a multiple of 16)" : "image width, a multiple of 16 "
        "(default 1024)", &o.seen_width, 16, 8192 },
      { "height", CLI_INT, &o.height, img2img ? "image height, a multiple of 16 (default: the "
        "init image's, rounded to a multiple of 16)" : "image height, a multiple of 16 "
        "(default 1024)", &o.seen_height, 16, 8192 },
      { "sampler", CLI_STR, &o.sampler, "euler or dpmpp_2m (default: the model's)", NULL },
      { "shift", CLI_DOUBLE, &o.shift, "flow shift, 0.01-1000 (default: the model's, 3)", NULL,
        0.01, 1000 },
      { "slg-scale", CLI_DOUBLE, &o.slg_scale, "skip-layer guidance scale, 0-100 (default 0 = "
        "off; Medium's reference config: 2.5)", NULL, 0, 100 },
      { "slg-layers", CLI_INT_LIST, &o.slg_layers, "MMDiT blocks skipped by SLG, each from 0 "
        "to the model's depth − 1 (default 7,8,9)", &o.seen_slg_layers, 0, 999 },
      { "slg-start", CLI_DOUBLE, &o.slg_start, "SLG from this fraction of the steps, 0-1 "
        "(0.01)", NULL, 0, 1 },
      { "slg-end", CLI_DOUBLE, &o.slg_end, "SLG up to this fraction of the steps, 0-1 (0.2)",
        NULL, 0, 1 },
      { "noise", CLI_STR, &o.noise, "safetensors file with a tensor 'noise' [1,16,H/8,W/8] "
        "used instead of the seeded noise", NULL },
      { "out", CLI_STR, &o.out, "output PNG (required)", NULL },
      { "tensors-out", CLI_STR, &o.tensors_out, "also write noise, sigmas, final_latent, "
        "image_float, image_uint8 to this safetensors file", NULL },
      { "quiet", CLI_FLAG, &o.quiet, "no progress on stderr", NULL },
      { "offload-text-encoders", CLI_STR, &o.offload, "auto (default: on for CUDA), on or "
        "off: free CLIP/T5 from the backend once the prompts are encoded", NULL },
      { "vae-tiles", CLI_STR, &o.vae_tiles, "auto (default: when the decode would exceed the "
        "memory budget), on or off: VAE decode in 512×512 tiles, blended", NULL },
      { "lora", CLI_STR_LIST, &o.loras, "FILE[:STRENGTH]: merge this LoRA (safetensors: "
        "diffusers/PEFT, kohya or official keys; MMDiT and text encoders) with this strength "
        "(default 1, negative subtracts); repeatable, one strength each", NULL },
      { "init", CLI_STR, &o.init, "img2img: the init image (PNG); the output keeps "
        "its size (rounded to a multiple of 16) unless --width/--height say otherwise, and "
        "it is resized to that (Lanczos)", NULL },
      { "strength", CLI_DOUBLE, &o.strength, "img2img: how much to change, in (0, 1] "
        "(default 0.8)", NULL },
      { "vae-seed", CLI_U64, &o.vae_seed, "img2img: seed of the VAE-encode sample (default: "
        "--seed)", &o.seen_vae_seed },
      { "mask", CLI_STR, &o.mask, "img2img: PNG of the init image's or the output's size, "
        "white = regenerate, black = keep", NULL },
    };
    int n_opts = (int) (sizeof opts / sizeof opts[0]) - (img2img ? 0 : 4);

    rc = cli_parse (argc, argv, cmd,
                    img2img ? "Generate an image from a prompt and an init image (SD3.5)."
                            : "Generate an image from a prompt (SD3.5).",
                    opts, n_opts);
  }
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  if (o.prompt == NULL)
    return cli_fail (cmd, "--prompt is required"), 2;
  if (o.out == NULL)
    return cli_fail (cmd, "--out is required"), 2;
  /* before minutes of loading and sampling: can the outputs be written at all? */
  if (sd35_out_check (o.out, &err) != SD35_OK
      || (o.tensors_out != NULL && sd35_out_check (o.tensors_out, &err) != SD35_OK))
    return cli_fail_err (cmd, &err);
  if (img2img && o.init == NULL)
    return cli_fail (cmd, "--init IMAGE.png is required"), 2;
  if (cli_engine_options (cmd, &o.model, &eo) != 0 ||
      cli_parse_loras (cmd, &o.loras, loras) != 0)
    return 2;
  if (tri_state (cmd, "--offload-text-encoders", o.offload, 1, 0, -1,
                 &eo.offload_text_encoders) != 0 ||
      tri_state (cmd, "--vae-tiles", o.vae_tiles, 1, -1, 0, &eo.vae_tiling) != 0)
    return 2;

  /* img2img: the init image first, it gives the size unless --width/--height do */
  if (img2img && read_init (cmd, &o, &init, &mask) != 0)
    {
      free (init);
      return 1;
    }
  sd35_params_init (&p);
  p.prompt = o.prompt;
  p.negative_prompt = o.negative ? o.negative : "";
  /* the weights themselves are checked by sd35_params_check below */
  if (cli_prompt_weights (cmd, o.prompt_weights, &p.prompt_weights) != 0)
    {
      free (init);
      free (mask);
      return 2;
    }
  p.width = o.width;
  p.height = o.height;
  p.steps = o.steps;
  p.cfg = o.cfg;
  p.shift = o.shift;
  if (o.sampler && sd35_sampler_from_name (o.sampler, &p.sampler) != 0)
    {
      free (init);
      free (mask);
      return cli_fail (cmd, "--sampler must be euler or dpmpp_2m, not '%s'", o.sampler), 2;
    }
  /* GLib's generator is seeded from /dev/urandom: two runs in the same second differ */
  if (!seen_seed)
    o.seed = g_random_int ();
  p.seed = o.seed;
  p.slg_scale = o.slg_scale;
  p.slg_start = o.slg_start;
  p.slg_end = o.slg_end;
  if (o.seen_slg_layers)
    {
      p.n_slg_layers = o.slg_layers.n;
      memcpy (p.slg_layers, o.slg_layers.values, (size_t) o.slg_layers.n * sizeof (int));
    }
  if (o.width % 16 == 0 && o.height % 16 == 0 && o.width > 0 && o.height > 0 && o.noise &&
      (noise = read_noise (cmd, o.noise, o.height / 8, o.width / 8)) == NULL)
    {
      free (init);
      free (mask);
      return 1;
    }
  p.noise = noise;
  if (img2img)
    {
      p.init_rgb = init;
      p.mask = mask;
      p.strength = o.strength;
      p.vae_seed = o.vae_seed;
      p.has_vae_seed = o.seen_vae_seed;
      if (init == NULL)
        {
          static const uint8_t dummy[3];
          p.init_rgb = dummy;  /* size error reported by sd35_generate before any use */
        }
    }

  /* every number and the size, before the model loads (the skip-layer indices against the
   * model's depth are checked by sd35_generate) */
  if (sd35_params_check (&p, &err) != SD35_OK)
    {
      free (noise);
      free (init);
      free (mask);
      return cli_fail_err (cmd, &err), 2;
    }
  if (!seen_seed)
    fprintf (stderr, "sd35 %s: seed %llu\n", cmd, (unsigned long long) o.seed);

  memset (&cb, 0, sizeof cb);
  cb.on_stage = on_stage;
  cb.on_step = on_step;
  cb.is_cancelled = is_cancelled;
  cb.user = &o;
  o.tty = isatty (STDERR_FILENO);
  clock_gettime (CLOCK_MONOTONIC, &o.t_sampling);
  signal (SIGINT, on_sigint);

  clock_gettime (CLOCK_MONOTONIC, &t0);
  rc = 1;
  if (sd35_engine_open (&eo, &engine, &err) != SD35_OK)
    {
      rc = cli_fail_err (cmd, &err);
      goto done;
    }
  if (!o.quiet)
    {
      const struct sd35_model_info *mi = sd35_engine_info (engine);
      fprintf (stderr, "model: %s (%s), backend %s%s\n", mi->variant_name, mi->mmdit_path,
               mi->backend_name, mi->t5_path ? "" : ", T5 off");
    }
  if (o.loras.n > 0)
    {
      if (sd35_engine_set_loras (engine, loras, o.loras.n, &err) != SD35_OK)
        {
          rc = cli_fail_err (cmd, &err);
          goto done;
        }
      if (!o.quiet)
        fprintf (stderr, "%s\n", sd35_engine_lora_report (engine));
    }
  memset (&r, 0, sizeof r);
  rc = sd35_generate (engine, &p, &cb, &r, &err) != SD35_OK;
  progress_end (&o);  /* a cancelled or failed run leaves the line open */
  if (rc != 0)
    {
      rc = cli_fail_err (cmd, &err);
      goto done;
    }
  if (png_write_rgb (o.out, r.rgb, r.width, r.height, &err) != SD35_OK)
    rc = cli_fail_err (cmd, &err);
  else if (o.tensors_out && write_tensors (cmd, o.tensors_out, &r) != 0)
    rc = 1;
  else
    {
      clock_gettime (CLOCK_MONOTONIC, &t1);
      rc = 0;
      if (!o.quiet)
        fprintf (stderr, "wrote %s (%d×%d, seed %llu) in %.1f s\n", o.out, r.width, r.height,
                 (unsigned long long) r.seed,
                 (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
  sd35_result_clear (&r);

done:
  if (engine != NULL && o.model.verbose)
    {
      size_t in_use = 0, peak = 0;
      sd35_engine_memory (engine, &in_use, &peak);
      fprintf (stderr, "backend memory (%s): %.1f MiB in use, peak %.1f MiB\n",
               sd35_engine_info (engine)->backend_name, in_use / 1048576.0, peak / 1048576.0);
    }
  sd35_engine_free (engine);
  free (noise);
  free (init);
  free (mask);
  return rc;
}

int
cmd_txt2img (int argc, char **argv)
{
  return run (argc, argv, 0);
}

int
cmd_img2img (int argc, char **argv)
{
  return run (argc, argv, 1);
}
