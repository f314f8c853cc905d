/* libFuzzer target: the .rsvec vector cache. The input is written to a memfd and opened with both
 * loaders (mmap and read); an accepted set must survive a full scan, a search and score_all. */
#define _GNU_SOURCE /* memfd_create */
#include "rsclip/search.h"
#include "rsclip/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fetch_unit(void *user, size_t n, const int64_t *ids, float *out) {
    int dim = *(const int *)user;
    (void)ids;
    for (size_t i = 0; i < n * (size_t)dim; i++) out[i] = i % (size_t)dim == 0 ? 1.0f : 0.0f;
    return RSCLIP_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("rsvec", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rcs[2];
    for (int copy = 0; copy < 2; copy++) {
        rsclip_vecset *vs = NULL;
        rcs[copy] = copy ? rsclip_vecset_read(path, &vs) : rsclip_vecset_load(path, &vs);
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
            if (rsclip_vecset_score_all(vs, q, NULL, all) != RSCLIP_OK) abort();
            rsclip_search_params sp = rsclip_search_default_params();
            sp.fetch = fetch_unit;
            sp.fetch_user = &dim;
            sp.n_candidates = 8;
            rsclip_vecset_hit hits[10];
            int nh;
            if (rsclip_vecset_search(vs, q, &sp, hits, &nh) != RSCLIP_OK) abort();
            if (nh > 10 || (size_t)nh > n) abort();
        }
        free(q);
        free(all);
        rsclip_vecset_free(vs);
    }
    if (rcs[0] != rcs[1]) abort(); /* both loaders judge alike */
    close(fd);
    return 0;
}
