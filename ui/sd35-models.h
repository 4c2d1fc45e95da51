/* sd35-models.h — the models the dialog offers: where to look, and which variant each is. */
#pragma once

#include <glib.h>

#include "sd35.h"

G_BEGIN_DECLS

/* Paths of the SD 3.5 models found on this machine, without duplicates: $SD35_MODEL, the
 * Hugging Face cache ($HF_HOME/hub or ~/.cache/huggingface/hub, stabilityai
 * stable-diffusion-3.5-* snapshots) and `extra` (the config's current model; may be NULL).
 * Free with g_strfreev. */
gchar           **sd35_models_find   (const gchar        *extra);

/* Reads only the MMDiT's header (no weights).  Returns the variant, or UNKNOWN with
 * *error set to a message for the user (files missing, not a model). */
enum sd35_variant sd35_models_detect (const gchar        *path,
                                      GError            **error);

G_END_DECLS
