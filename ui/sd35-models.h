/* sd35-models.h — the models the dialog offers: where to look, and which variant each is. */
#pragma once

#include <glib.h>

#include "sd35.h"

G_BEGIN_DECLS

/* Paths of the SD 3.5 models found on this machine, without duplicates: `extra` (the
 * config's current model; may be NULL), then what the engine's discovery considers
 * (sd35_model_candidates: $SD35_MODEL, the Hugging Face cache).  Free with g_strfreev. */
gchar           **sd35_models_find   (const gchar        *extra);

/* sd35_model_probe: reads only the MMDiT's header (no weights).  Returns the variant, or
 * UNKNOWN with *error set to a message for the user (files missing, not a model). */
enum sd35_variant sd35_models_detect (const gchar        *path,
                                      GError            **error);

G_END_DECLS
