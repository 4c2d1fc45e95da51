/* json_file.h — every JSON the program reads goes through here (HF config.json, tokenizer.json,
 * vocab.json, *.safetensors.index.json, model_index.json, the plug-in's settings parasite).
 *
 * json-glib's parser recurses once per nesting level, so a file of a million '[' overflows the
 * stack.  The text is first scanned (no recursion) and refused when it nests deeper than
 * SD35_JSON_MAX_DEPTH; only then does json-glib see it.  The typed getters return NULL / 0
 * when a member is absent OR of another type, so no caller reaches strcmp (NULL, ...). */
#ifndef SD35_JSON_FILE_H
#define SD35_JSON_FILE_H

#include <json-glib/json-glib.h>
#include <stddef.h>

#include "sd35.h"

#define SD35_JSON_MAX_DEPTH 64                       /* real files nest 5 levels at most */
#define SD35_JSON_MAX_BYTES ((size_t) 256 << 20)     /* tokenizer.json is 2.4 MB */

/* 0 when text[0..len) nests at most max_depth arrays/objects, else the offset (≥ 1) of the
 * bracket that goes one level too deep. */
size_t sd35_json_depth_exceeded (const char *text, size_t len, int max_depth);

/* Parses text (len bytes) after the depth check.  On success *parser holds the document (the
 * caller unrefs it).  `what` starts every message ("T5 tokenizer x/tokenizer.json"). */
enum sd35_status sd35_json_parse (const char *text, size_t len, const char *what,
                                  JsonParser **parser, struct sd35_error *err);
/* The same for a file: a regular file (sd35_read_file) of at most SD35_JSON_MAX_BYTES. */
enum sd35_status sd35_json_load (const char *path, const char *what, JsonParser **parser,
                                 struct sd35_error *err);

/* Typed members: NULL / FALSE when o is NULL, the member is absent or of another type. */
JsonObject *sd35_json_object (JsonObject *o, const char *key);
JsonArray  *sd35_json_array (JsonObject *o, const char *key);
const char *sd35_json_string (JsonObject *o, const char *key);
/* An integer member (a JSON number without fraction) → *out. */
gboolean    sd35_json_int (JsonObject *o, const char *key, gint64 *out);
/* Any number (integer or not) → *out. */
gboolean    sd35_json_number (JsonObject *o, const char *key, double *out);
/* The same for an element of an array node / a node itself. */
JsonObject *sd35_json_node_object (JsonNode *n);
JsonArray  *sd35_json_node_array (JsonNode *n);
const char *sd35_json_node_string (JsonNode *n);
gboolean    sd35_json_node_number (JsonNode *n, double *out);
gboolean    sd35_json_node_int (JsonNode *n, gint64 *out);

#endif
