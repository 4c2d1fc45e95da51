/* discover.c — finding the files of an SD3.5 model (see discover.h for the layouts) and telling
 * its variant from the MMDiT keys.  Every place looked at is remembered, so a missing file is
 * one message naming what is missing and where it was looked for. */
#include "discover.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors_internal.h"
#include "json_file.h"
#include "safe_file.h"

struct finder
{
  const struct model_find_options *opts;
  char      *model_dir;   /* folder of the MMDiT file (diffusers: the folder above transformer/) */
  int        diffusers;   /* model_dir is a diffusers layout (transformer/, vae/ ...) */
  GString   *searched;    /* every folder looked in, for sd35_model_files.searched */
  GString   *missing;     /* "what (names; looked in ...)" items */
  GPtrArray *dirs;        /* folders of the current search, shown in the message */
};

static int
is_file (const char *p)
{
  return g_file_test (p, G_FILE_TEST_IS_REGULAR);
}

static int
is_dir (const char *p)
{
  return g_file_test (p, G_FILE_TEST_IS_DIR);
}

static int
is_gguf_name (const char *path)
{
  return g_str_has_suffix (path, ".gguf") || g_str_has_suffix (path, ".GGUF");
}

static void
note_dir (struct finder *fd, const char *dir)
{
  for (guint i = 0; i < fd->dirs->len; i++)
    if (strcmp (fd->dirs->pdata[i], dir) == 0)
      return;
  g_ptr_array_add (fd->dirs, g_strdup (dir));
  if (strstr (fd->searched->str, dir) == NULL)
    g_string_append_printf (fd->searched, fd->searched->len ? ", %s" : "%s", dir);
}

/* First dir/name that is a regular file, over dirs × names (dirs may hold NULLs). */
static char *
find_file (struct finder *fd, const char *const *dirs, int n_dirs, const char *const *names)
{
  for (int d = 0; d < n_dirs; d++)
    {
      if (dirs[d] == NULL)
        continue;
      note_dir (fd, dirs[d]);
      for (int k = 0; names[k] != NULL; k++)
        {
          char *p = g_build_filename (dirs[d], names[k], NULL);
          if (is_file (p))
            return p;
          g_free (p);
        }
    }
  return NULL;
}

/* Adds "what (names; looked in A, B)" to the missing list; the model folder is written
 * MODEL to keep the message short. */
static void
add_missing (struct finder *fd, const char *what, const char *names)
{
  size_t ml = fd->model_dir != NULL ? strlen (fd->model_dir) : 0;

  g_string_append_printf (fd->missing, "%s%s (%s; looked in ", fd->missing->len ? "; " : "",
                          what, names);
  for (guint i = 0; i < fd->dirs->len; i++)
    {
      const char *d = fd->dirs->pdata[i];
      if (i)
        g_string_append (fd->missing, ", ");
      if (ml > 0 && strncmp (d, fd->model_dir, ml) == 0 && (d[ml] == '/' || d[ml] == '\0'))
        g_string_append_printf (fd->missing, "MODEL%s", d + ml);
      else
        g_string_append (fd->missing, d);
    }
  g_string_append_c (fd->missing, ')');
}

static void
reset_dirs (struct finder *fd)
{
  g_ptr_array_set_size (fd->dirs, 0);
}

static int
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static GPtrArray *
list_dir (const char *dir)
{
  GPtrArray  *v = g_ptr_array_new_with_free_func (g_free);
  GDir       *d = g_dir_open (dir, 0, NULL);
  const char *e;

  while (d != NULL && (e = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (v, g_strdup (e));
  if (d != NULL)
    g_dir_close (d);
  g_ptr_array_sort (v, cmp_str);
  return v;
}

static int
is_text_encoder_name (const char *n)
{
  return g_str_has_prefix (n, "clip_l") || g_str_has_prefix (n, "clip_g")
         || g_str_has_prefix (n, "t5xxl");
}

/* The weights of one diffusers/transformers component folder (stem "diffusion_pytorch_model"
 * or "model"): the shard index first, then the single file, then the fp16 variants. */
static char *
component_weights (const char *dir, const char *stem)
{
  static const char *const fmt[] = { "%s.safetensors.index.json", "%s.safetensors",
                                     "%s.safetensors.index.fp16.json", "%s.fp16.safetensors" };
  for (size_t i = 0; i < G_N_ELEMENTS (fmt); i++)
    {
      char *leaf = g_strdup_printf (fmt[i], stem);
      char *p = g_build_filename (dir, leaf, NULL);
      g_free (leaf);
      if (is_file (p))
        return p;
      g_free (p);
    }
  return NULL;
}

/* The folder above transformer/ when path is a diffusers transformer file (its folder is
 * named transformer and has vae/ or model_index.json beside it), else NULL. */
static char *
diffusers_root (const char *path)
{
  char *dir = g_path_get_dirname (path), *base = g_path_get_basename (dir);
  char *root = NULL, *vae, *idx;

  if (strcmp (base, "transformer") == 0)
    {
      root = g_path_get_dirname (dir);
      vae = g_build_filename (root, "vae", NULL);
      idx = g_build_filename (root, "model_index.json", NULL);
      if (!is_dir (vae) && !is_file (idx))
        g_clear_pointer (&root, g_free);
      g_free (vae);
      g_free (idx);
    }
  g_free (base);
  g_free (dir);
  return root;
}

/* The MMDiT file at the top of a folder: sd3*.safetensors (or .index.json), else the only
 * .safetensors that is not a text encoder; in a diffusers layout (no such file, a
 * transformer/ folder) transformer/diffusion_pytorch_model*; in a transformer/ folder itself
 * its diffusion_pytorch_model*. */
static enum sd35_status
mmdit_in_dir (const char *dir, char **out, struct sd35_error *err)
{
  GPtrArray *names = list_dir (dir), *sd3 = g_ptr_array_new (), *other = g_ptr_array_new ();
  GPtrArray *pick;
  enum sd35_status st = SD35_OK;

  *out = NULL;
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = names->pdata[i];
      char       *p = g_build_filename (dir, n, NULL);
      int         st_file = g_str_has_suffix (n, ".safetensors")
                            || g_str_has_suffix (n, ".safetensors.index.json")
                            || is_gguf_name (n);
      if (is_file (p) && st_file && !is_text_encoder_name (n))
        g_ptr_array_add (g_ascii_strncasecmp (n, "sd3", 3) == 0 ? sd3 : other, (gpointer) n);
      g_free (p);
    }
  pick = sd3->len > 0 ? sd3 : other;
  if (sd3->len == 0 && (*out = component_weights (dir, "diffusion_pytorch_model")) != NULL)
    ;  /* the transformer/ folder of a diffusers layout (maybe sharded) */
  else if (pick->len == 1)
    *out = g_build_filename (dir, pick->pdata[0], NULL);
  else if (pick->len > 1)
    {
      GString *l = g_string_new (NULL);
      for (guint i = 0; i < pick->len; i++)
        g_string_append_printf (l, i ? ", %s" : "%s", (const char *) pick->pdata[i]);
      st = sd35_set_error (err, SD35_ERR_ARG, "folder %s holds several model files (%s); set "
                           "the model path to one of them (GIMP: the model argument; CLI: "
                           "--model FILE)", dir, l->str);
      g_string_free (l, TRUE);
    }
  else
    {
      char *tr = g_build_filename (dir, "transformer", NULL);
      if (is_dir (tr) && (*out = component_weights (tr, "diffusion_pytorch_model")) == NULL)
        st = sd35_set_error (err, SD35_ERR_MISSING, "%s is a diffusers layout, but %s holds no "
                             "diffusion_pytorch_model.safetensors (or its .index.json with "
                             "every shard); download the transformer/ folder completely",
                             dir, tr);
      g_free (tr);
      for (guint i = 0; st == SD35_OK && i < names->len; i++)
        if (g_ascii_strncasecmp (names->pdata[i], "sd3", 3) == 0
            && st_is_pickle_name (names->pdata[i]))
          {
            char *p = g_build_filename (dir, names->pdata[i], NULL);
            st = st_refuse_pickle (p, err);
            g_free (p);
          }
    }
  g_ptr_array_free (sd3, TRUE);
  g_ptr_array_free (other, TRUE);
  g_ptr_array_free (names, TRUE);
  return st;
}

/* Hugging Face cache: <hub>/models--stabilityai--stable-diffusion-3.5-<name>/snapshots/<rev>/,
 * the revision of refs/main first; hubs $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub
 * in this order.  Every snapshot holding an MMDiT goes to `snapshots` (its folder) and
 * `mmdits` (the file), either may be NULL; with first_only the walk stops at the first.
 * The hubs looked in are appended to `searched` (may be NULL). */
static void
hf_cache_walk (GString *searched, int first_only, GPtrArray *snapshots, GPtrArray *mmdits)
{
  const char *env[3] = { g_getenv ("HF_HUB_CACHE"), g_getenv ("HF_HOME"), g_getenv ("HOME") };
  char       *hubs[3];
  int         done = 0;

  hubs[0] = env[0] && env[0][0] ? g_strdup (env[0]) : NULL;
  hubs[1] = env[1] && env[1][0] ? g_build_filename (env[1], "hub", NULL) : NULL;
  hubs[2] = env[2] && env[2][0] ? g_build_filename (env[2], ".cache", "huggingface", "hub", NULL)
                                : NULL;
  for (int h = 0; h < 3 && !done; h++)
    {
      GPtrArray *repos;
      if (hubs[h] == NULL)
        continue;
      if (searched != NULL)
        g_string_append_printf (searched, "%s%s/models--stabilityai--stable-diffusion-3.5-*",
                                searched->len ? ", " : "", hubs[h]);
      repos = list_dir (hubs[h]);
      for (guint r = 0; r < repos->len && !done; r++)
        {
          char      *snaps, *ref, *main_rev = NULL;
          GPtrArray *revs;
          if (!g_str_has_prefix (repos->pdata[r], "models--stabilityai--stable-diffusion-3.5-"))
            continue;
          snaps = g_build_filename (hubs[h], repos->pdata[r], "snapshots", NULL);
          ref = g_build_filename (hubs[h], repos->pdata[r], "refs", "main", NULL);
          {
            size_t rl;
            if (sd35_read_file (ref, 4096, "HF cache ref", &main_rev, &rl, NULL) == SD35_OK)
              g_strstrip (main_rev);
          }
          revs = list_dir (snaps);
          for (int pass = 0; pass < 2 && !done; pass++)
            for (guint s = 0; s < revs->len && !done; s++)
              {
                int   is_main = main_rev != NULL && strcmp (revs->pdata[s], main_rev) == 0;
                char *dir, *found = NULL;
                if (is_main != (pass == 0))
                  continue;
                dir = g_build_filename (snaps, revs->pdata[s], NULL);
                if (mmdit_in_dir (dir, &found, NULL) == SD35_OK && found != NULL)
                  {
                    if (snapshots != NULL)
                      g_ptr_array_add (snapshots, g_strdup (dir));
                    if (mmdits != NULL)
                      g_ptr_array_add (mmdits, g_strdup (found));
                    done = first_only;
                  }
                g_free (found);
                g_free (dir);
              }
          g_ptr_array_free (revs, TRUE);
          g_free (main_rev);
          g_free (ref);
          g_free (snaps);
        }
      g_ptr_array_free (repos, TRUE);
    }
  for (int h = 0; h < 3; h++)
    g_free (hubs[h]);
}

static char *
mmdit_in_hf_cache (struct finder *fd)
{
  GPtrArray *mmdits = g_ptr_array_new_with_free_func (g_free);
  char      *found = NULL;

  hf_cache_walk (fd->searched, 1, NULL, mmdits);
  if (mmdits->len > 0)
    found = g_strdup (mmdits->pdata[0]);
  g_ptr_array_free (mmdits, TRUE);
  return found;
}

char **
model_candidates (void)
{
  GPtrArray  *v = g_ptr_array_new ();
  GPtrArray  *snaps = g_ptr_array_new_with_free_func (g_free);
  const char *env = g_getenv ("SD35_MODEL");

  if (env != NULL && env[0] != '\0' && (is_file (env) || is_dir (env)))
    g_ptr_array_add (v, g_strdup (env));
  hf_cache_walk (NULL, 0, snaps, NULL);
  for (guint i = 0; i < snaps->len; i++)
    {
      int dup = 0;
      for (guint j = 0; j < v->len && !dup; j++)
        dup = strcmp (v->pdata[j], snaps->pdata[i]) == 0;
      if (!dup)
        g_ptr_array_add (v, g_strdup (snaps->pdata[i]));
    }
  g_ptr_array_free (snaps, TRUE);
  g_ptr_array_add (v, NULL);
  return (char **) g_ptr_array_free (v, FALSE);
}

static enum sd35_status
find_mmdit (struct finder *fd, struct sd35_model_files *out, struct sd35_error *err)
{
  const char *path = fd->opts->model_path;
  const char *from = "model path";

  if (path == NULL || path[0] == '\0')
    {
      path = g_getenv ("SD35_MODEL");
      from = "$SD35_MODEL";
    }
  if (path == NULL || path[0] == '\0')
    {
      g_string_append (fd->searched, "$SD35_MODEL (unset)");
      out->mmdit = mmdit_in_hf_cache (fd);
      if (out->mmdit == NULL)
        return sd35_set_error (err, SD35_ERR_MISSING, "no model given and none found (looked "
                               "in %s); set the model path (GIMP: the model argument; CLI: "
                               "--model) or $SD35_MODEL to the sd3.5_*.safetensors file or its "
                               "folder (download stabilityai/stable-diffusion-3.5-large or "
                               "-medium from Hugging Face)", fd->searched->str);
    }
  else if (is_dir (path))
    {
      if (mmdit_in_dir (path, &out->mmdit, err) != SD35_OK)
        return err != NULL ? err->status : SD35_ERR_ARG;
      if (out->mmdit == NULL)
        return sd35_set_error (err, SD35_ERR_MISSING, "%s %s: no sd3*.safetensors (or .gguf) "
                               "model file in this folder", from, path);
    }
  else if (st_is_pickle_name (path))
    return st_refuse_pickle (path, err);
  else if (is_file (path))
    out->mmdit = g_strdup (path);
  else
    {
      const char *kind = sd35_path_kind (path);
      if (strcmp (kind, "missing") == 0)
        return sd35_set_error (err, SD35_ERR_MISSING, "%s %s: no such file or folder (give the "
                               "sd3.5_*.safetensors file or the folder holding it)", from, path);
      return sd35_set_error (err, SD35_ERR_IO, "%s %s is %s, which cannot be a model (give the "
                             "sd3.5_*.safetensors file or the folder holding it)", from, path,
                             kind);
    }
  fd->model_dir = diffusers_root (out->mmdit);
  fd->diffusers = fd->model_dir != NULL;
  if (fd->model_dir == NULL)
    fd->model_dir = g_path_get_dirname (out->mmdit);
  sd35_log ("model: %s%s", out->mmdit, fd->diffusers ? " (diffusers layout)" : "");
  return SD35_OK;
}

/* For a .gguf MMDiT (ComfyUI-GGUF / stable-diffusion.cpp conversions carry no VAE): a diffusers
 * vae/ folder beside it, else an official single file beside it that holds the VAE. */
static char *
gguf_vae_beside (struct finder *fd)
{
  static const char *const singles[] = { "sd3.5_medium.safetensors", "sd3.5_large.safetensors",
                                         "sd3.5_large_turbo.safetensors",
                                         "sd3_medium.safetensors", NULL };
  char *vd = g_build_filename (fd->model_dir, "vae", NULL);
  char *p = NULL;

  if (is_dir (vd))
    {
      note_dir (fd, vd);
      p = component_weights (vd, "diffusion_pytorch_model");
    }
  g_free (vd);
  for (int k = 0; p == NULL && singles[k] != NULL; k++)
    {
      char           *c = g_build_filename (fd->model_dir, singles[k], NULL);
      struct st_file *f = NULL;
      if (is_file (c) && st_open (c, &f, NULL) == SD35_OK
          && st_has_prefix (f, "first_stage_model.decoder."))
        p = g_strdup (c);
      st_close (f);
      g_free (c);
    }
  return p;
}

/* A separate VAE only when the MMDiT file has none (first_stage_model.*). */
static enum sd35_status
find_vae (struct finder *fd, struct sd35_model_files *out, struct sd35_error *err)
{
  static const char *const names[] = { "vae.safetensors", "sd3_vae.safetensors",
                                       "sd3.5_vae.safetensors", NULL };
  struct st_file *f = NULL;
  int             has_vae;
  const char     *dirs[1] = { fd->model_dir };

  if (fd->diffusers)
    {
      /* the transformer holds no VAE; vae/ beside it does */
      char *vd = g_build_filename (fd->model_dir, "vae", NULL);
      reset_dirs (fd);
      note_dir (fd, vd);
      out->vae = component_weights (vd, "diffusion_pytorch_model");
      if (out->vae == NULL)
        add_missing (fd, "VAE", "diffusion_pytorch_model.safetensors");
      g_free (vd);
      return SD35_OK;
    }
  if (st_open (out->mmdit, &f, err) != SD35_OK)
    return err != NULL ? err->status : SD35_ERR_FORMAT;
  has_vae = st_has_prefix (f, "first_stage_model.");
  st_close (f);
  if (has_vae)
    return SD35_OK;
  reset_dirs (fd);
  out->vae = find_file (fd, dirs, 1, names);
  if (out->vae == NULL && is_gguf_name (out->mmdit))
    out->vae = gguf_vae_beside (fd);
  if (out->vae == NULL && is_gguf_name (out->mmdit))
    add_missing (fd, "VAE (a .gguf conversion holds only the diffusion model, no "
                 "first_stage_model.* VAE: put the SD3.5 VAE beside it, as vae.safetensors "
                 "(e.g. vae/diffusion_pytorch_model.safetensors of "
                 "stabilityai/stable-diffusion-3.5-medium or -large, or ComfyUI's "
                 "sd3.5 VAE file, renamed), in a vae/ folder, or the official single file "
                 "sd3.5_medium.safetensors / sd3.5_large.safetensors, which includes it)",
                 "vae.safetensors, vae/diffusion_pytorch_model.safetensors or "
                 "sd3.5_*.safetensors");
  else if (out->vae == NULL)
    add_missing (fd, "VAE (the MMDiT file has no first_stage_model.* tensors)",
                 "vae.safetensors");
  return SD35_OK;
}

static void
find_text_encoders (struct finder *fd, struct sd35_model_files *out)
{
  static const char *const clip_l[] = { "clip_l.safetensors", NULL };
  static const char *const clip_g[] = { "clip_g.safetensors", NULL };
  static const char *const t5[] = { "t5xxl_fp16.safetensors", "t5xxl.safetensors",
                                    "t5xxl_fp8_e4m3fn.safetensors",
                                    "t5xxl_fp8_e4m3fn_scaled.safetensors", NULL };
  static const char *const hf[] = { "model.safetensors", "model.safetensors.index.json",
                                    "model.fp16.safetensors",
                                    "model.safetensors.index.fp16.json", NULL };
  static const char *const cfg[] = { "config.json", NULL };
  const char *ted = fd->opts->text_encoders_dir;
  char       *dirs[3] = { NULL, NULL, NULL }, *sub[3], *tmp;
  const char *order[4];

  if (ted != NULL && ted[0] != '\0')
    {
      dirs[0] = g_strdup (ted);
      dirs[1] = g_build_filename (ted, "text_encoders", NULL);
    }
  dirs[2] = g_build_filename (fd->model_dir, "text_encoders", NULL);
  order[0] = dirs[0];
  order[1] = dirs[1];
  order[2] = dirs[2];
  order[3] = fd->model_dir;
  for (int i = 0; i < 3; i++)
    sub[i] = g_build_filename (fd->model_dir, i == 0 ? "text_encoder" : i == 1
                               ? "text_encoder_2" : "text_encoder_3", NULL);

  reset_dirs (fd);
  out->clip_l = find_file (fd, order, 4, clip_l);
  if (out->clip_l == NULL)
    out->clip_l = find_file (fd, (const char *const *) &sub[0], 1, hf);
  if (out->clip_l == NULL)
    add_missing (fd, "CLIP-L text encoder", "clip_l.safetensors");
  reset_dirs (fd);
  out->clip_g = find_file (fd, order, 4, clip_g);
  if (out->clip_g == NULL)
    out->clip_g = find_file (fd, (const char *const *) &sub[1], 1, hf);
  if (out->clip_g == NULL)
    add_missing (fd, "CLIP-G text encoder", "clip_g.safetensors");
  reset_dirs (fd);
  out->t5 = find_file (fd, order, 4, t5);
  if (out->t5 == NULL)
    out->t5 = find_file (fd, (const char *const *) &sub[2], 1, hf);
  if (out->t5 == NULL && fd->opts->need_t5)
    add_missing (fd, "T5-XXL text encoder", "t5xxl_fp16.safetensors or "
                 "t5xxl_fp8_e4m3fn.safetensors");

  /* HF config.json of each encoder: beside the model, or in --text-encoders DIR */
  for (int i = 0; i < 3; i++)
    {
      const char *leaf = i == 0 ? "text_encoder" : i == 1 ? "text_encoder_2" : "text_encoder_3";
      char       *cdirs[2] = { ted != NULL && ted[0] ? g_build_filename (ted, leaf, NULL) : NULL,
                               sub[i] };
      tmp = find_file (fd, (const char *const *) cdirs, 2, cfg);
      if (i == 0)
        out->clip_l_config = tmp;
      else if (i == 1)
        out->clip_g_config = tmp;
      else
        out->t5_config = tmp;
      g_free (cdirs[0]);
    }
  for (int i = 0; i < 3; i++)
    {
      g_free (dirs[i]);
      g_free (sub[i]);
    }
}

/* First folder (of leaves under each base) holding all `need` names, or any of `any`. */
static char *
find_tok_dir (struct finder *fd, const char *const *bases, int n_bases,
              const char *const *leaves, const char *const *need, const char *const *any)
{
  for (int b = 0; b < n_bases; b++)
    for (int l = 0; bases[b] != NULL && leaves[l] != NULL; l++)
      {
        char *d = g_build_filename (bases[b], leaves[l], NULL);
        int   ok = need != NULL;
        note_dir (fd, d);
        for (int k = 0; need != NULL && need[k] != NULL; k++)
          {
            char *p = g_build_filename (d, need[k], NULL);
            ok &= is_file (p);
            g_free (p);
          }
        for (int k = 0; any != NULL && any[k] != NULL && !ok; k++)
          {
            char *p = g_build_filename (d, any[k], NULL);
            ok = is_file (p);
            g_free (p);
          }
        if (ok)
          return d;
        g_free (d);
      }
  return NULL;
}

static char *
file_in (const char *dir, const char *name)
{
  char *p = g_build_filename (dir, name, NULL);
  if (!is_file (p))
    {
      g_free (p);
      return NULL;
    }
  return p;
}

static void
find_tokenizers (struct finder *fd, struct sd35_model_files *out)
{
  static const char *const clip_need[] = { "vocab.json", "merges.txt", NULL };
  static const char *const t5_any[] = { "spiece.model", "tokenizer.json", NULL };
  static const char *const tok_leaves_clip[] = { "clip", "tokenizer", "tokenizer_2", ".", NULL };
  static const char *const tok_leaves_t5[] = { "t5", "tokenizer_3", ".", NULL };
  static const char *const model_leaves_clip[] = { "tokenizer", "tokenizer_2", "tokenizers/clip",
                                                   NULL };
  static const char *const model_leaves_t5[] = { "tokenizer_3", "tokenizers/t5", NULL };
  const char *td = fd->opts->tokenizers_dir;
  const char *bases[1] = { td != NULL && td[0] != '\0' ? td : NULL };
  const char *mbase[1] = { fd->model_dir };
  char       *d;

  reset_dirs (fd);
  d = find_tok_dir (fd, bases, 1, tok_leaves_clip, clip_need, NULL);
  if (d == NULL)
    d = find_tok_dir (fd, mbase, 1, model_leaves_clip, clip_need, NULL);
  if (d != NULL)
    {
      out->clip_vocab = file_in (d, "vocab.json");
      out->clip_merges = file_in (d, "merges.txt");
      g_free (d);
    }
  else
    add_missing (fd, "CLIP tokenizer", "vocab.json + merges.txt");

  reset_dirs (fd);
  d = find_tok_dir (fd, bases, 1, tok_leaves_t5, NULL, t5_any);
  if (d == NULL)
    d = find_tok_dir (fd, mbase, 1, model_leaves_t5, NULL, t5_any);
  if (d != NULL)
    {
      out->t5_spiece = file_in (d, "spiece.model");
      out->t5_tokenizer_json = file_in (d, "tokenizer.json");
      g_free (d);
    }
  else if (fd->opts->need_t5)
    add_missing (fd, "T5 tokenizer", "spiece.model or tokenizer.json");
}

static enum sd35_status
find_files (const struct model_find_options *opts, int keep_partial,
            struct sd35_model_files *out, struct sd35_error *err)
{
  struct finder    fd = { 0 };
  enum sd35_status st;

  memset (out, 0, sizeof *out);
  fd.opts = opts;
  fd.searched = g_string_new (NULL);
  fd.missing = g_string_new (NULL);
  fd.dirs = g_ptr_array_new_with_free_func (g_free);
  st = find_mmdit (&fd, out, err);
  if (st == SD35_OK)
    st = find_vae (&fd, out, err);
  if (st == SD35_OK)
    {
      find_text_encoders (&fd, out);
      find_tokenizers (&fd, out);
      if (fd.missing->len > 0)
        st = sd35_set_error (err, SD35_ERR_MISSING, "model %s: missing %s, where MODEL = %s. "
                             "%s, or with the CLI pass --text-encoders DIR and "
                             "--tokenizers DIR%s", out->mmdit, fd.missing->str, fd.model_dir,
                             fd.diffusers ? "This diffusers folder needs vae/, text_encoder/, "
                             "text_encoder_2/, text_encoder_3/ and tokenizer*/ (download the "
                             "whole repository)" : "Put them in MODEL/text_encoders/ and "
                             "MODEL/tokenizers/ (clip/ and t5/)",
                             opts->need_t5 ? "; or run without T5 (GIMP: turn off Use T5; "
                             "CLI: --no-t5)" : "");
    }
  out->searched = g_string_free (fd.searched, FALSE);
  if (fd.missing->len > 0)
    out->missing = g_strdup (fd.missing->str);
  if (st != SD35_OK && !(keep_partial && out->mmdit != NULL))
    {
      model_files_clear (out);
      out->searched = NULL;
    }
  g_string_free (fd.missing, TRUE);
  g_ptr_array_free (fd.dirs, TRUE);
  g_free (fd.model_dir);
  return st;
}

enum sd35_status
model_find (const struct model_find_options *opts, struct sd35_model_files *out,
            struct sd35_error *err)
{
  return find_files (opts, 0, out, err);
}

enum sd35_status
model_find_partial (const struct model_find_options *opts, struct sd35_model_files *out,
                    struct sd35_error *err)
{
  return find_files (opts, 1, out, err);
}

void
model_files_clear (struct sd35_model_files *f)
{
  char **fields[] = { &f->mmdit, &f->vae, &f->clip_l, &f->clip_g, &f->t5, &f->clip_l_config,
                      &f->clip_g_config, &f->t5_config, &f->clip_vocab, &f->clip_merges,
                      &f->t5_spiece, &f->t5_tokenizer_json, &f->searched, &f->missing };
  for (size_t i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      g_free (*fields[i]);
      *fields[i] = NULL;
    }
}

/* The name that tells Turbo: the file's own name; for a diffusers transformer/ file the
 * model folder's name, or for a Hugging Face snapshot the repository's
 * (models--stabilityai--stable-diffusion-3.5-large-turbo/snapshots/REV/transformer/...). */
static char *
variant_name_hint (const char *path)
{
  char *dir = g_path_get_dirname (path), *base = g_path_get_basename (dir), *name;

  if (strcmp (base, "transformer") != 0)
    name = g_path_get_basename (path);
  else
    {
      char *root = g_path_get_dirname (dir), *up = g_path_get_dirname (root);
      char *upb = g_path_get_basename (up);
      if (strcmp (upb, "snapshots") == 0)
        {
          char *repo = g_path_get_dirname (up);
          name = g_path_get_basename (repo);
          g_free (repo);
        }
      else
        name = g_path_get_basename (root);
      g_free (upb);
      g_free (up);
      g_free (root);
    }
  g_free (base);
  g_free (dir);
  return name;
}

enum sd35_variant
model_detect_variant (const struct st_file *mmdit, const char *path, int force_turbo)
{
  const char *prefix = "model.diffusion_model.";
  char       *key, *base;
  int         has_ln_k, turbo;

  if (mmdit == NULL)
    return SD35_VARIANT_UNKNOWN;
  if (!st_has_prefix (mmdit, prefix))
    prefix = "";
  key = g_strconcat (prefix, "joint_blocks.0.", NULL);
  if (!st_has_prefix (mmdit, key))
    {
      g_free (key);
      return SD35_VARIANT_UNKNOWN;
    }
  g_free (key);
  /* MMDiT-X: some x_blocks have a second attention (attn2) */
  for (size_t i = 0; i < st_count (mmdit); i++)
    {
      const char *n = st_at (mmdit, i)->name;
      if (g_str_has_prefix (n, prefix) && strstr (n, ".x_block.attn2.") != NULL)
        return SD35_VARIANT_MEDIUM;
    }
  key = g_strconcat (prefix, "joint_blocks.0.context_block.attn.ln_k.weight", NULL);
  has_ln_k = st_find (mmdit, key) != NULL;
  g_free (key);
  if (!has_ln_k)
    return SD35_VARIANT_SD3_MEDIUM;
  base = path != NULL ? variant_name_hint (path) : g_strdup ("");
  key = g_ascii_strdown (base, -1);
  turbo = force_turbo || strstr (key, "turbo") != NULL;
  g_free (key);
  g_free (base);
  return turbo ? SD35_VARIANT_LARGE_TURBO : SD35_VARIANT_LARGE;
}

int
model_config_heads (const char *config_json_path, struct sd35_error *err)
{
  JsonParser *parser = NULL;
  JsonObject *o;
  gint64      heads = 0;
  const char *keys[2] = { "num_attention_heads", "num_heads" };
  int         k;

  if (config_json_path == NULL)
    return 0;
  if (sd35_json_load (config_json_path, "model config", &parser, err) != SD35_OK)
    return -1;
  o = sd35_json_node_object (json_parser_get_root (parser));
  /* CLIP: num_attention_heads; T5: num_heads */
  for (k = 0; k < 2; k++)
    if (o != NULL && json_object_has_member (o, keys[k]))
      break;
  if (o == NULL || (k < 2 && (!sd35_json_int (o, keys[k], &heads) || heads <= 0
                              || heads > 4096)))
    {
      sd35_set_error (err, SD35_ERR_FORMAT, o == NULL ? "model config %s: not a JSON object"
                      : "model config %s: \"%s\" must be an integer in 1..4096", config_json_path,
                      o == NULL ? "" : keys[k]);
      g_object_unref (parser);
      return -1;
    }
  g_object_unref (parser);
  if (heads > 0)
    sd35_log ("%s: %d attention heads", config_json_path, (int) heads);
  return (int) heads;
}
