/*
 * base/base.h -- private: the small utilities every module shares, in one place: a hash for
 * identities and checksums of headers, the monotonic clock, and the allocator for big blocks.
 * The process's one worker pool is base/pool.h.
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

/* Big, long-lived blocks (packed weights, activation arenas, vector codes, a checkpoint read
 * whole): 64-byte aligned; from 2 MiB up, 2 MiB aligned, rounded up to whole 2 MiB and advised
 * as transparent huge pages (MADV_HUGEPAGE), because first touching 4 KiB pages costs ~16 us
 * each on the VMs measured, more than the work done on them. NULL on failure; free() it. */
void *rsclip__alloc_huge(size_t bytes);

#endif
