/* libFuzzer target: parse arbitrary bytes as JSON; on success walk the tree checking the
 * documented invariants (NUL-terminated strings without embedded NUL, keys on objects only). */
#include "json/json.h"
#include "rsclip/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const rsclip_json *v, int depth) {
    if (depth > RSCLIP_JSON_MAX_DEPTH) abort();
    switch (v->type) {
    case RSCLIP_JSON_STRING:
        if (strlen(v->str) != v->len) abort();
        break;
    case RSCLIP_JSON_NUMBER:
        if (v->is_int && (double)v->inum != v->num) abort();
        break;
    case RSCLIP_JSON_OBJECT:
        for (size_t i = 0; i < v->len; i++) {
            (void)strlen(v->keys[i]);
            if (rsclip_json_get(v, v->keys[i]) == NULL) abort();
        }
        /* fall through */
    case RSCLIP_JSON_ARRAY:
        for (size_t i = 0; i < v->len; i++) walk(&v->items[i], depth + 1);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy (not NUL-terminated) so over-reads are caught at the end of the input. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    rsclip_json *root = NULL;
    if (rsclip_json_parse(buf, size, &root) == RSCLIP_OK) {
        walk(root, 0);
        rsclip_json_free(root);
    } else if (root != NULL || strncmp(rsclip_last_error(), "json: offset ", 13) != 0) {
        abort();
    }
    free(buf);
    return 0;
}
