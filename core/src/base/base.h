/*
 * base/base.h -- private: the small utilities every module shares, in one place: a hash for
 * identities and checksums of headers, the monotonic clock, the library's allocation entry
 * points (with out-of-memory injection for tests), the allocators for big blocks, the qsort
 * comparators, and the rename that never replaces. The process's one worker pool is
 * base/pool.h.
 */
#ifndef RSCLIP_BASE_H
#define RSCLIP_BASE_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, 64 bits: h = RSCLIP__FNV_OFFSET to start, then chained over any number of buffers.
 * Not cryptographic: identities of plans and settings, header checksums, legacy fingerprints. */
#define RSCLIP__FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t rsclip__fnv1a(uint64_t h, const void *p, size_t n);

/* Seconds on CLOCK_MONOTONIC (timings, deadlines). */
double rsclip__mono_s(void);

/* The library's allocations: every malloc, calloc, realloc, strdup, strndup and aligned_alloc in
 * core/src goes through these (base/ itself and the CUDA .cu files excepted; GDAL, SQLite and
 * libc's own allocations such as realpath() and getline() are outside). Same contracts as libc's;
 * what they return is freed with plain free(), so memory the public API hands out stays
 * free()-able. Each call first asks the fault injector below: off, that is one relaxed atomic
 * load. */
void *rsclip__malloc(size_t n);
void *rsclip__calloc(size_t n, size_t size);
void *rsclip__realloc(void *p, size_t n); /* on failure p is untouched, as with realloc */
char *rsclip__strdup(const char *s);
/* NULL for NULL, else rsclip__strdup: optional strings (a failure is s != NULL, result NULL). */
char *rsclip__strdup_opt(const char *s);
char *rsclip__strndup(const char *s, size_t n);
void *rsclip__aligned_alloc(size_t align, size_t n);

/* Out-of-memory injection, SQLite-style (tests/base/test_oom.c): after
 * rsclip__alloc_fail_at(n, every_later), the n-th allocation call from now, counted over all
 * threads, returns NULL, and with every_later each call after it too; n <= 0 turns injection off.
 * rsclip__alloc_count() is the number of calls since the last rsclip__alloc_fail_at() with n > 0
 * (calls are counted only while armed: rsclip__alloc_fail_at(LONG_MAX, 0) counts a run's
 * allocations without failing any). rsclip__alloc_huge counts as one allocation too. Always
 * compiled in; thread-safe; meant for tests only (one arming at a time). */
void rsclip__alloc_fail_at(long n, int every_later);
long rsclip__alloc_count(void);

/* Big, long-lived blocks (packed weights, activation arenas, vector codes, a checkpoint read
 * whole): 64-byte aligned; from 2 MiB up, 2 MiB aligned, rounded up to whole 2 MiB and advised
 * as transparent huge pages (MADV_HUGEPAGE), because first touching 4 KiB pages costs ~16 us
 * each on the VMs measured, more than the work done on them. NULL on failure; free() it. */
void *rsclip__alloc_huge(size_t bytes);

/* Big blocks that grow (bulk reads of unknown size): mapped directly, huge pages advised from
 * 2 MiB, grown in place or moved by the kernel (mremap) without copying. rsclip__map_grow(NULL,
 * 0, n) maps a new block; on failure NULL and the old block is kept. rsclip__map_free(NULL, 0) is
 * a no-op. */
void *rsclip__map_grow(void *p, size_t old_bytes, size_t new_bytes);
void rsclip__map_free(void *p, size_t bytes);

/* Growable arrays: make room in *(T **)arr (with *cap slots) for one more T: the capacity
 * doubles, or is first when empty; elem = sizeof(T), overflow-checked. 0, or -1 (out of memory,
 * or a size past SIZE_MAX) with *arr and *cap untouched. Callers say what ran out. */
int rsclip__grow(void *arr, size_t *cap, size_t elem, size_t first);

/* qsort/bsearch comparators: int64_t ascending; char * ascending by strcmp. */
int rsclip__cmp_i64(const void *a, const void *b);
int rsclip__cmp_str(const void *a, const void *b);

/* The order of ranked rows everywhere (hits, candidates, merged parts): score descending, then
 * id ascending, so ties rank the same in a file and in the parts it was merged from. */
static inline int rsclip__cmp_score_id(float sa, int64_t ida, float sb, int64_t idb) {
    if (sa != sb) return sa > sb ? -1 : 1;
    return (ida > idb) - (ida < idb);
}

/* rename(src, dst), but when replace is 0 only if dst does not exist (RENAME_NOREPLACE, or
 * link + unlink where the file system lacks it): 0, or -1 with errno (EEXIST: dst exists). */
int rsclip__rename(const char *src, const char *dst, int replace);

#endif
