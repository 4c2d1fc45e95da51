/* probe.c — the public face of model discovery (sd35.h): what a path holds without loading
 * a weight, and the candidates discovery considers.  Both are discover.c's own rules (the
 * same layouts, $SD35_MODEL, the same Hugging Face hubs in the same order), so a model
 * picker shows exactly what the engine would load. */
#include <glib.h>
#include <string.h>

#include "discover.h"
#include "error.h"
#include "names_diffusers.h"
#include "safetensors.h"

void
sd35_model_probe_clear (struct sd35_model_probe *p)
{
  char **fields[] = { &p->mmdit_path, &p->vae_path, &p->clip_l_path, &p->clip_g_path,
                      &p->t5_path, &p->missing, &p->message };

  for (size_t i = 0; i < G_N_ELEMENTS (fields); i++)
    g_clear_pointer (fields[i], g_free);
  memset (p, 0, sizeof *p);
}

enum sd35_status
sd35_model_probe (const char              *path,
                  struct sd35_model_probe *out,
                  struct sd35_error       *err)
{
  struct model_find_options opts = { 0 };
  struct sd35_model_files   files;
  struct sd35_error         e = { 0 };
  struct st_file           *st = NULL;
  enum sd35_status          status;

  memset (out, 0, sizeof *out);
  opts.model_path = path;
  opts.need_t5 = 0;
  status = model_find_partial (&opts, &files, &e);
  if (files.mmdit == NULL)
    {
      out->message = g_strdup (e.message);
      if (err != NULL)
        *err = e;
      return status;
    }
  out->mmdit_path = g_strdup (files.mmdit);
  out->vae_path = g_strdup (files.vae);
  out->clip_l_path = g_strdup (files.clip_l);
  out->clip_g_path = g_strdup (files.clip_g);
  out->t5_path = g_strdup (files.t5);
  out->has_clip_tokenizer = files.clip_vocab != NULL && files.clip_merges != NULL;
  out->has_t5_tokenizer = files.t5_spiece != NULL || files.t5_tokenizer_json != NULL;
  out->missing = g_strdup (files.missing);

  /* the variant from the MMDiT's header alone (no weight is read) */
  /* a diffusers transformer/ file under the reference names, as the engine reads it */
  if (st_open (files.mmdit, &st, status == SD35_OK ? &e : NULL) == SD35_OK &&
      names_diffusers_canonical (&st, status == SD35_OK ? &e : NULL) == SD35_OK)
    {
      out->variant = model_detect_variant (st, files.mmdit, 0);
      st_close (st);
      if (out->variant == SD35_VARIANT_UNKNOWN && status == SD35_OK)
        status = sd35_set_error (&e, SD35_ERR_FORMAT, "%s is not a Stable Diffusion 3 model "
                                 "(no joint_blocks in its tensors)", files.mmdit);
    }
  else
    {
      st_close (st);
      if (status == SD35_OK)
        status = e.status;
    }

  if (status == SD35_OK)
    out->message = g_strdup_printf ("%s in %s%s", sd35_variant_name (out->variant),
                                    files.mmdit, out->t5_path == NULL ?
                                    " (no T5-XXL found: runs without T5)" : "");
  else
    out->message = g_strdup (e.message);
  if (err != NULL)
    *err = e;
  model_files_clear (&files);
  return status;
}

char **
sd35_model_candidates (void)
{
  return model_candidates ();
}
