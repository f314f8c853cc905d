/* The vecset object, shared by vecset.c (build, search) and cache.c (save, load). */
#ifndef RSCLIP_VECSET_INTERNAL_H
#define RSCLIP_VECSET_INTERNAL_H

#include "base/base.h"
#include "search/search_internal.h"

#include <stddef.h>
#include <stdint.h>

struct rsclip_vecset {
    int dim;
    size_t stride; /* int8 code row bytes: dim rounded up to RSCLIP__DIM_ALIGN; int4 rows: half */
    size_t count;
    size_t cap; /* rows allocated (built sets) */
    int keep_floats;
    int sorted;      /* ids strictly ascending so far */
    int finalized;   /* read-only from here on */
    int64_t *ids;    /* [count] ascending once finalized */
    float *scales;   /* [count] int8 code scale: v ~ scale * c */
    float *scales4;  /* [count] int4 code scale */
    uint8_t *codes;  /* [count, stride] offset-binary int8, 64-byte aligned */
    uint8_t *codes4; /* [count, stride / 2] offset-binary int4 pairs, 64-byte aligned */
    float *floats;   /* [count, dim] or NULL */
    double max_norm; /* largest |v| (error margin of the exact path) */
    uint64_t stamp;
    void *map; /* loaded sets: the file mapping that the arrays point into */
    size_t map_size;
    struct rsclip__vcheck *check; /* loaded sets: the file's block checksums (cache.c) */
};

size_t rsclip__vecset_stride(int dim);
void rsclip__vecset_unmap(rsclip_vecset *vs);

/* Block checksums of a loaded set (cache.c). The ids, scales and floats are verified when the file
 * is loaded; the int8 and int4 codes, which a search mostly does not read in full, block by block
 * the first time a scan reads them (each block once, whichever thread gets there first).
 * rsclip__vecset_check_rows: 0 if the code rows [first, first + n) of the int8 (int4 != 0) codes
 * pass their checksums, 1 if a block is damaged (the set is then marked damaged for good). Sets no
 * error (scan threads call it); always 0 for a set built in memory. Thread-safe. */
int rsclip__vecset_check_rows(const rsclip_vecset *vs, int int4, size_t first, size_t n);
/* Record the error for a damaged set in the calling thread: RSCLIP_ERR_FORMAT naming the file and
 * the block; returns the code. */
int rsclip__vecset_damage_error(const rsclip_vecset *vs);
void rsclip__vcheck_free(struct rsclip__vcheck *c);

#endif
