/* The shared utilities of base/base.h. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

uint64_t rsclip__fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

double rsclip__mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- allocation entry points and out-of-memory injection ----------------------------------- */

/* g_armed is the only thing an allocation reads when injection is off. While armed, each call
 * takes a ticket from g_calls; ticket g_fail_at fails, and with g_every_later every later one. */
static atomic_int g_armed;
static atomic_long g_calls, g_fail_at;
static atomic_int g_every_later;

void rsclip__alloc_fail_at(long n, int every_later) {
    atomic_store(&g_armed, 0);
    if (n <= 0) return; /* off: the count of the last armed run stays readable */
    atomic_store(&g_calls, 0);
    atomic_store(&g_fail_at, n);
    atomic_store(&g_every_later, every_later != 0);
    atomic_store(&g_armed, 1);
}

long rsclip__alloc_count(void) {
    return atomic_load(&g_calls);
}

static int alloc_fails(void) {
    if (!atomic_load_explicit(&g_armed, memory_order_relaxed)) return 0;
    long k = atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&g_fail_at, memory_order_relaxed);
    return k == at || (k > at && atomic_load_explicit(&g_every_later, memory_order_relaxed));
}

void *rsclip__malloc(size_t n) {
    return alloc_fails() ? NULL : malloc(n);
}

void *rsclip__calloc(size_t n, size_t size) {
    return alloc_fails() ? NULL : calloc(n, size);
}

void *rsclip__realloc(void *p, size_t n) {
    return alloc_fails() ? NULL : realloc(p, n);
}

char *rsclip__strndup(const char *s, size_t n) {
    if (alloc_fails()) return NULL;
    size_t len = strnlen(s, n);
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *rsclip__strdup(const char *s) {
    return rsclip__strndup(s, SIZE_MAX);
}

char *rsclip__strdup_opt(const char *s) {
    return s ? rsclip__strndup(s, SIZE_MAX) : NULL;
}

void *rsclip__aligned_alloc(size_t align, size_t n) {
    return alloc_fails() ? NULL : aligned_alloc(align, n);
}

void *rsclip__alloc_huge(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (alloc_fails()) return NULL;
    if (bytes >= huge && bytes <= SIZE_MAX - huge) {
        size_t rounded = (bytes + huge - 1) / huge * huge;
        if (posix_memalign(&p, huge, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
        return p;
    }
    if (posix_memalign(&p, 64, bytes ? (bytes + 63) & ~(size_t)63 : 64) != 0) return NULL;
    return p;
}

void *rsclip__map_grow(void *p, size_t old_bytes, size_t new_bytes) {
    void *q;
    if (alloc_fails()) return NULL;
    if (!p) {
        q = mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    } else {
        q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE);
    }
    if (q == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (new_bytes >= ((size_t)2 << 20)) (void)madvise(q, new_bytes, MADV_HUGEPAGE);
#endif
    return q;
}

void rsclip__map_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes);
}

int rsclip__grow(void *arr, size_t *cap, size_t elem, size_t first) {
    void **pa = arr;
    size_t nc = *cap ? *cap * 2 : first, bytes;
    if (nc <= *cap || elem == 0 || nc > SIZE_MAX / elem) return -1;
    bytes = nc * elem;
    void *na = rsclip__realloc(*pa, bytes);
    if (!na) return -1;
    *pa = na;
    *cap = nc;
    return 0;
}

int rsclip__cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int rsclip__cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rsclip__rename(const char *src, const char *dst, int replace) {
    if (replace) return rename(src, dst);
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
#endif
    /* no RENAME_NOREPLACE on this file system: link() refuses an existing name as well */
    if (link(src, dst) != 0) return -1;
    unlink(src);
    return 0;
}
