/* The vecset object, shared by vecset.c (build, search) and cache.c (save, load). */
#ifndef RSCLIP_VECSET_INTERNAL_H
#define RSCLIP_VECSET_INTERNAL_H

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
};

size_t rsclip__vecset_stride(int dim);
void *rsclip__aligned_alloc(size_t size);
int rsclip__vecset_reserve(rsclip_vecset *vs, size_t want);
void rsclip__vecset_unmap(rsclip_vecset *vs);

#endif
