/* libFuzzer target: the .rsvec vector cache. The input is written to a memfd and opened with both
 * loaders (mmap and read); an accepted set must survive a full scan, a search and score_all: each
 * either succeeds or, when it read a block whose checksum fails, returns RSCLIP_ERR_FORMAT with
 * the set marked damaged (codes are verified lazily, block by block); both loaders judge alike. */
#define _GNU_SOURCE /* memfd_create */
#include "rsclip/search.h"
#include "rsclip/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fetch_unit(void *user, size_t n, const int64_t *ids, float *out) {
    int dim = *(const int *)user;
    (void)ids;
    for (size_t i = 0; i < n * (size_t)dim; i++) out[i] = i % (size_t)dim == 0 ? 1.0f : 0.0f;
    return RSCLIP_OK;
}

/* Mutations almost never keep the checksums right, which would stop every input at the first
 * check: the second run of each input has the header's FNV-1a and the block table's XXH3 (at
 * the offsets the header claims) recomputed, so that what follows them is fuzzed too. */
static void fix_sums(uint8_t *b, size_t size) {
    if (size < 192) return;
    uint64_t off;
    memcpy(&off, b + 112, 8);
    if (off <= size && size - off <= ((size_t)1 << 30)) {
        uint64_t c = XXH3_64bits(b + off, size - off);
        memcpy(b + 128, &c, 8);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 184; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    memcpy(b + 184, &h, 8);
}

static int one_input(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one_input(data, size);
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    fix_sums(b, size);
    one_input(b, size);
    free(b);
    return 0;
}

static int one_input(const uint8_t *data, size_t size) {
    int fd = memfd_create("rsvec", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rcs[2], dmg[2];
    for (int copy = 0; copy < 2; copy++) {
        rsclip_vecset *vs = NULL;
        rcs[copy] = copy ? rsclip_vecset_read(path, &vs) : rsclip_vecset_load(path, &vs);
        dmg[copy] = 0;
        if (rcs[copy] != RSCLIP_OK) {
            if (vs) abort();
            continue;
        }
        int dim = rsclip_vecset_dim(vs);
        size_t n = rsclip_vecset_count(vs);
        float *q = calloc((size_t)dim, sizeof(float));
        float *all = malloc((n ? n : 1) * sizeof(float));
        if (q && all) {
            q[0] = 1.0f;
            int rc = rsclip_vecset_score_all(vs, q, NULL, all);
            if (rc != RSCLIP_OK && (rc != RSCLIP_ERR_FORMAT || !rsclip_vecset_damaged(vs))) abort();
            rsclip_search_params sp = rsclip_search_default_params();
            sp.fetch = fetch_unit;
            sp.fetch_user = &dim;
            sp.n_candidates = 8;
            rsclip_vecset_hit hits[10];
            int nh;
            rc = rsclip_vecset_search(vs, q, &sp, hits, &nh);
            if (rc != RSCLIP_OK && (rc != RSCLIP_ERR_FORMAT || !rsclip_vecset_damaged(vs))) abort();
            if (rc == RSCLIP_OK && (nh > 10 || (size_t)nh > n)) abort();
            rc = rsclip_vecset_verify(vs);
            if (rc != (rsclip_vecset_damaged(vs) ? RSCLIP_ERR_FORMAT : RSCLIP_OK)) abort();
            dmg[copy] = rsclip_vecset_damaged(vs);
        }
        free(q);
        free(all);
        rsclip_vecset_free(vs);
    }
    if (rcs[0] != rcs[1]) abort(); /* both loaders judge alike */
    if (rcs[0] == RSCLIP_OK && dmg[0] != dmg[1]) abort();
    close(fd);
    return 0;
}
