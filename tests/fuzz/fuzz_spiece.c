/* libFuzzer target: load arbitrary bytes as a spiece.model (rsclip_tokenizer_load_memory); when
 * that succeeds, encode a few fixed texts and texts made from the input and from the model's own
 * pieces, checking the documented invariants (ids inside the vocabulary, EOS + padding layout,
 * errors only for invalid UTF-8 or memory). Seed corpus: the fixture spiece.model. */
#include "rsclip/status.h"
#include "rsclip/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 24

static void encode_check(const rsclip_tokenizer *tok, const char *text, size_t len) {
    int32_t ids[CAP];
    int n = -1;
    int rc = rsclip_tokenizer_encode(tok, text, (ptrdiff_t)len, ids, CAP, &n);
    if (rc == RSCLIP_ERR_INVALID_ARG || rc == RSCLIP_ERR_NOMEM) return;
    if (rc != RSCLIP_OK) abort();
    int vocab = rsclip_tokenizer_vocab_size(tok);
    if (n < 1 || n > CAP) abort();
    for (int i = 0; i < CAP; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    for (int i = n; i < CAP; i++)
        if (ids[i] != rsclip_tokenizer_pad_id(tok)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy so that reads past the end are caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    rsclip_tokenizer *tok = NULL;
    int rc = rsclip_tokenizer_load_memory(buf, size, "fuzz.model", NULL, &tok);
    if (rc != RSCLIP_OK) {
        if (tok || rsclip_last_error()[0] == '\0') abort();
        free(buf);
        return 0;
    }
    free(buf); /* the tokenizer must not keep pointers into the input */

    static const char *fixed[] = {"", "a remote sensing image of a river",
                                  "Dense </s> FOREST <unk> \xef\xbc\x81 \xe2\x80\xa6 1000000",
                                  " \t\xe2\x96\x81 \xc4\xb0 \xe6\xb0\xb4 "};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        encode_check(tok, fixed[i], strlen(fixed[i]));

    /* the last bytes of the input as text (often invalid UTF-8: then refused) */
    size_t k = size < 48 ? size : 48;
    encode_check(tok, (const char *)data + size - k, k);

    /* a text made of pieces chosen by the first input bytes */
    char text[256];
    size_t len = 0;
    int vocab = rsclip_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < 8 && i < size && vocab > 0; i++) {
        const char *p = rsclip_tokenizer_piece(tok, data[i] % vocab);
        size_t pl = p ? strlen(p) : 0;
        if (len + pl + 1 >= sizeof text) break;
        memcpy(text + len, p, pl);
        len += pl;
        if (data[i] & 1) text[len++] = ' ';
    }
    encode_check(tok, text, len);
    rsclip_tokenizer_free(tok);
    return 0;
}
