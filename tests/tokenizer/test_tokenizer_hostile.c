/* The real spiece.model, damaged: truncated at many lengths and with random bytes flipped.
 * Each load must either succeed (then encoding must work and give ids inside the vocabulary) or
 * fail with RSCLIP_ERR_FORMAT / RSCLIP_ERR_UNSUPPORTED and a message naming the file; never
 * crash (run under ASan/UBSan in CI).
 * Usage: test_tokenizer_hostile [FLIPS [TRUNCATIONS]]: the default is a quick sweep (200 flips,
 * ~250 truncations); ctest also runs the full one (2000 flips, ~1300 truncations, label slow). */
#include "rsclip/status.h"
#include "rsclip/tokenizer.h"
#include "test_util.h"

#include <stdint.h>

static const char *texts[] = {
    "a remote sensing image of a river",
    "Aerial View Of Dense RESIDENTIAL Buildings",
    "\xef\xbd\x86\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c \xef\xac\x81"
    "eld\xef\xbc\x81 \xe2\x80\xa6",
    "dense forest </s> with a lake <unk>",
    "the port of Z\xc3\xbcrich \xe2\x80\x94 45\xc2\xb0 \xe6\xb0\xb4\xe5\xba\x93 1000000",
    "",
};

static int n_ok, n_fail;

static void try_image(const uint8_t *buf, size_t n) {
    rsclip_tokenizer *tok = NULL;
    int rc = rsclip_tokenizer_load_memory(buf, n, "damaged.model", NULL, &tok);
    if (rc != RSCLIP_OK) {
        n_fail++;
        CHECK(tok == NULL);
        CHECK(rc == RSCLIP_ERR_FORMAT || rc == RSCLIP_ERR_UNSUPPORTED);
        if (strncmp(rsclip_last_error(), "damaged.model: spiece.model: ", 29) != 0) {
            fprintf(stderr, "message does not name the file: %s\n", rsclip_last_error());
            tu_failures++;
        }
        return;
    }
    n_ok++;
    int vocab = rsclip_tokenizer_vocab_size(tok);
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        int32_t ids[64];
        int nt = 0;
        rc = rsclip_tokenizer_encode(tok, texts[t], -1, ids, 64, &nt);
        /* a damaged charsmap may expand text enormously: running out of memory is allowed */
        CHECK(rc == RSCLIP_OK || rc == RSCLIP_ERR_NOMEM);
        if (rc) continue;
        CHECK(nt >= 1 && nt <= 64);
        for (int k = 0; k < 64; k++) CHECK(ids[k] >= 0 && ids[k] < vocab);
    }
    rsclip_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    int flips = argc > 1 ? atoi(argv[1]) : 200;
    size_t spread = argc > 2 ? (size_t)atoi(argv[2]) : 100;
    size_t dense = spread >= 500 ? 512 : 128;
    char path[1024];
    snprintf(path, sizeof path, "%s/siglip-tiny/spiece.model", tu_fixtures());
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    static uint8_t orig[1 << 20];
    size_t size = fread(orig, 1, sizeof orig, f);
    fclose(f);
    REQUIRE(size > 1000 && size < sizeof orig);
    uint8_t *buf = malloc(size);
    REQUIRE(buf);

    /* the intact file loads */
    try_image(orig, size);
    CHECK(n_ok == 1);

    /* truncations: every length of the first `dense` bytes and of the last 256, `spread` more
     * over the file. Each prefix gets its own allocation so ASan sees any read past its end. */
    for (size_t n = 0; n < size; n += (n < dense || n > size - 256) ? 1 : size / spread + 1) {
        uint8_t *p = malloc(n ? n : 1);
        REQUIRE(p);
        memcpy(p, orig, n);
        try_image(p, n);
        free(p);
    }

    /* random byte flips (1..8 bytes; half of the time inside the first 12 KiB, where the pieces
     * and specs are, otherwise anywhere, mostly the charsmap) */
    uint64_t s = 0x243F6A8885A308D3ull;
#define NEXT() (s ^= s << 13, s ^= s >> 7, s ^= s << 17)
    for (int it = 0; it < flips; it++) {
        memcpy(buf, orig, size);
        int k = 1 + (int)(NEXT() % 8);
        for (int j = 0; j < k; j++) {
            size_t span = (it & 1) ? size : (size < 12288 ? size : 12288);
            size_t at = (size_t)(NEXT() % span);
            buf[at] ^= (uint8_t)(1 + NEXT() % 255);
        }
        try_image(buf, size);
    }
    printf("loads: %d ok, %d refused\n", n_ok, n_fail);
    free(buf);
    return tu_finish("test_tokenizer_hostile");
}
