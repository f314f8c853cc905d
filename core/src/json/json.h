/*
 * Private JSON reader (RFC 8259) for the small, possibly hostile JSON documents rsclip reads:
 * safetensors headers, config.json, preprocessor_config.json, tokenizer_config.json,
 * model.safetensors.index.json. Not a public module.
 *
 * The whole document is parsed into one tree owned by the returned root; strings are decoded
 * (escapes, \uXXXX with surrogate pairs) into NUL-terminated UTF-8 (embedded NULs are refused).
 * Nesting depth is limited (RSCLIP_JSON_MAX_DEPTH) so hostile input cannot exhaust the stack.
 * Numbers keep both their double value and, when they are integers that fit, an exact int64.
 */
#ifndef RSCLIP_JSON_H
#define RSCLIP_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP_JSON_MAX_DEPTH 64

typedef enum rsclip_json_type {
    RSCLIP_JSON_NULL,
    RSCLIP_JSON_FALSE,
    RSCLIP_JSON_TRUE,
    RSCLIP_JSON_NUMBER,
    RSCLIP_JSON_STRING,
    RSCLIP_JSON_ARRAY,
    RSCLIP_JSON_OBJECT
} rsclip_json_type;

typedef struct rsclip_json rsclip_json;
struct rsclip_json {
    rsclip_json_type type;
    double num;         /* NUMBER */
    int64_t inum;       /* NUMBER: exact value when is_int */
    int is_int;         /* NUMBER written without fraction/exponent and within int64 */
    char *str;          /* STRING: decoded UTF-8, NUL-terminated */
    size_t len;         /* STRING: byte length; ARRAY/OBJECT: number of children */
    rsclip_json *items; /* ARRAY/OBJECT children, in document order */
    char **keys;        /* OBJECT: keys[i] names items[i] (decoded, NUL-terminated) */
};

/* Parse text[0..len) (need not be NUL-terminated). On error returns RSCLIP_ERR_FORMAT with a
 * message giving the byte offset and the problem ("json: offset 17: expected ':'"); callers prefix
 * the file name. Trailing non-whitespace is an error. */
int rsclip_json_parse(const char *text, size_t len, rsclip_json **out);
void rsclip_json_free(rsclip_json *root); /* NULL-safe */

/* Object member lookup (first match), NULL if obj is not an object or has no such key. */
const rsclip_json *rsclip_json_get(const rsclip_json *obj, const char *key);

/* Typed helpers: return 1 and set *out when the member exists with the right type, else 0. */
int rsclip_json_get_int(const rsclip_json *obj, const char *key, int64_t *out);
int rsclip_json_get_num(const rsclip_json *obj, const char *key, double *out);
int rsclip_json_get_bool(const rsclip_json *obj, const char *key, int *out);
const char *rsclip_json_get_str(const rsclip_json *obj, const char *key); /* NULL if absent */

/* Read a whole file (at most max_bytes) and parse it; errors name the path. */
int rsclip_json_parse_file(const char *path, size_t max_bytes, rsclip_json **out);

#ifdef __cplusplus
}
#endif
#endif
