/* The .rsvec cache file: a derived, memory-mappable copy of a vecset (see rsclip/search.h).
 *
 * Layout (little-endian), every section 64-byte aligned and placed exactly where the canonical
 * layout puts it (so a reader never has to trust an offset it did not compute itself):
 *   0   char[8]  magic "RSVECSET"
 *   8   u32      version (1)
 *   12  u32      header size (128)
 *   16  u32      dim
 *   20  u32      stride (dim rounded up to 64)
 *   24  u64      count
 *   32  u64      source stamp (caller's)
 *   40  u32      flags (bit 0: float32 vectors present)
 *   44  u32      code type (1: int8 offset-binary, one float32 scale per vector)
 *   48  u64      offset of ids      int64[count], strictly ascending
 *   56  u64      offset of scales   float32[count], finite, >= 0 (int8 codes)
 *   64  u64      offset of codes    u8[count * stride] (int8 codes)
 *   72  u64      offset of floats   float32[count * dim], or 0
 *   80  u64      file size
 *   88  f64      largest vector norm
 *   96  u64      offset of scales4  float32[count], finite, >= 0 (int4 codes)
 *   104 u64      offset of codes4   u8[count * stride / 2] (int4 codes)
 *   112 u64      FNV-1a 64 of bytes 0..111
 *   120 u64      reserved, 0
 * Sections in file order: ids, scales, scales4, codes, codes4, floats. The code formats are those
 * of core/src/search/search_internal.h; stride is dim rounded up to 128.
 */
#include "search/vecset_internal.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define RSCLIP_BIG_ENDIAN 1
#endif

#define HDR_SIZE 128
#define CACHE_VERSION 1
#define CODE_INT8 1
#define FLAG_FLOATS 1u
static const char k_magic[8] = {'R', 'S', 'V', 'E', 'C', 'S', 'E', 'T'};

typedef struct layout {
    size_t off_ids, off_scales, off_scales4, off_codes, off_codes4, off_floats, size;
} layout;

static int align64(size_t x, size_t *out) {
    return rsclip__add_size(x, 63, out) ? 1 : (*out &= ~(size_t)63, 0);
}

/* Canonical section offsets; non-zero on overflow. */
static int compute_layout(size_t count, size_t dim, size_t stride, int floats, layout *L) {
    size_t b, end;
    L->off_ids = HDR_SIZE;
    if (rsclip__mul_size(count, 8, &b) || rsclip__add_size(L->off_ids, b, &end) ||
        align64(end, &L->off_scales))
        return 1;
    if (rsclip__mul_size(count, 4, &b) || rsclip__add_size(L->off_scales, b, &end) ||
        align64(end, &L->off_scales4))
        return 1;
    if (rsclip__mul_size(count, 4, &b) || rsclip__add_size(L->off_scales4, b, &end) ||
        align64(end, &L->off_codes))
        return 1;
    if (rsclip__mul_size(count, stride, &b) || rsclip__add_size(L->off_codes, b, &end) ||
        align64(end, &L->off_codes4))
        return 1;
    if (rsclip__mul_size(count, stride / 2, &b) || rsclip__add_size(L->off_codes4, b, &end))
        return 1;
    L->off_floats = 0;
    L->size = end;
    if (floats) {
        if (align64(end, &L->off_floats) || rsclip__mul_size(count, dim, &b) ||
            rsclip__mul_size(b, 4, &b) || rsclip__add_size(L->off_floats, b, &L->size))
            return 1;
    }
    return 0;
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void put32(unsigned char *h, size_t off, uint32_t v) {
    memcpy(h + off, &v, 4);
}
static void put64(unsigned char *h, size_t off, uint64_t v) {
    memcpy(h + off, &v, 8);
}
static uint32_t get32(const unsigned char *h, size_t off) {
    uint32_t v;
    memcpy(&v, h + off, 4);
    return v;
}
static uint64_t get64(const unsigned char *h, size_t off) {
    uint64_t v;
    memcpy(&v, h + off, 8);
    return v;
}

/* Write n bytes, then zero padding up to the next section start. */
static int write_section(FILE *f, const void *p, size_t n, size_t *pos, size_t next) {
    static const unsigned char zeros[64];
    if (n && fwrite(p, 1, n, f) != n) return 1;
    *pos += n;
    while (*pos < next) {
        size_t z = next - *pos < sizeof zeros ? next - *pos : sizeof zeros;
        if (fwrite(zeros, 1, z, f) != z) return 1;
        *pos += z;
    }
    return 0;
}

/* May path be written? *exists tells whether something is there. A cache's name may be a user's
 * file (INDEX.rsvec is only a name): whatever is there is replaced only when it is a cache itself
 * (a regular file that starts with the magic); anything else is refused (RSCLIP_ERR_EXISTS) and
 * the refusal logged, so the user learns why no cache is kept. */
static int check_target(const char *path, int *exists) {
    struct stat st;
    *exists = 0;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return RSCLIP_OK;
        return rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(errno));
    }
    *exists = 1;
    const char *what = NULL;
    char head[8];
    if (S_ISLNK(st.st_mode))
        what = "a symbolic link";
    else if (!S_ISREG(st.st_mode))
        what = S_ISDIR(st.st_mode) ? "a folder" : "not a regular file";
    else {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(errno));
        ssize_t got = pread(fd, head, sizeof head, 0);
        close(fd);
        if (got != (ssize_t)sizeof head || memcmp(head, k_magic, sizeof head) != 0)
            what = "a file that is not an rsclip vector cache";
    }
    if (!what) return RSCLIP_OK;
    int rc = rsclip__error(RSCLIP_ERR_EXISTS,
                           "%s: is %s: not replaced, no vector cache written (move it away to let "
                           "rsclip keep its cache there)",
                           path, what);
    rsclip__log(RSCLIP_LOG_WARN, "%s", rsclip_last_error());
    return rc;
}

/* Rename tmp onto path: over an existing cache (replace = 1), else only if path is still free. */
static int install(const char *tmp, const char *path, int replace) {
    if (replace) return rename(tmp, path);
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
#endif
    /* no RENAME_NOREPLACE here: link() refuses an existing name as well */
    if (link(tmp, path) != 0) return -1;
    unlink(tmp);
    return 0;
}

int rsclip_vecset_save(const rsclip_vecset *vs, const char *path, uint64_t source_stamp) {
#ifdef RSCLIP_BIG_ENDIAN
    return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: cache files need a little-endian host", path);
#else
    if (!vs || !path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_save: NULL argument");
    if (!vs->finalized)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: the set is not finalized", path);
    const size_t dim = (size_t)vs->dim;
    layout L;
    if (compute_layout(vs->count, dim, vs->stride, vs->floats != NULL, &L))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: cache size overflows", path);
    unsigned char h[HDR_SIZE];
    memset(h, 0, sizeof h);
    memcpy(h, k_magic, 8);
    put32(h, 8, CACHE_VERSION);
    put32(h, 12, HDR_SIZE);
    put32(h, 16, (uint32_t)vs->dim);
    put32(h, 20, (uint32_t)vs->stride);
    put64(h, 24, vs->count);
    put64(h, 32, source_stamp);
    put32(h, 40, vs->floats ? FLAG_FLOATS : 0);
    put32(h, 44, CODE_INT8);
    put64(h, 48, L.off_ids);
    put64(h, 56, L.off_scales);
    put64(h, 64, L.off_codes);
    put64(h, 72, L.off_floats);
    put64(h, 80, L.size);
    memcpy(h + 88, &vs->max_norm, 8);
    put64(h, 96, L.off_scales4);
    put64(h, 104, L.off_codes4);
    put64(h, 112, fnv1a(h, 112));

    int exists;
    int rc = check_target(path, &exists);
    if (rc) return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create a temporary file: %s", path,
                             strerror(e));
    }
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: fdopen failed", path);
    }
    size_t pos = 0;
    int bad = write_section(f, h, HDR_SIZE, &pos, L.off_ids) ||
              write_section(f, vs->ids, vs->count * 8, &pos, L.off_scales) ||
              write_section(f, vs->scales, vs->count * 4, &pos, L.off_scales4) ||
              write_section(f, vs->scales4, vs->count * 4, &pos, L.off_codes) ||
              write_section(f, vs->codes, vs->count * vs->stride, &pos, L.off_codes4) ||
              write_section(f, vs->codes4, vs->count * vs->stride / 2, &pos,
                            vs->floats ? L.off_floats : L.size) ||
              (vs->floats && write_section(f, vs->floats, vs->count * dim * 4, &pos, L.size));
    int e = errno;
    if (fflush(f) != 0) bad = 1, e = errno;
    if (fclose(f) != 0) bad = 1, e = errno;
    if (!bad && install(tmp, path, exists) != 0) bad = 1, e = errno;
    if (bad) {
        unlink(tmp);
        free(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write the cache: %s", path, strerror(e));
    }
    free(tmp);
    return RSCLIP_OK;
#endif
}

void rsclip__vecset_unmap(rsclip_vecset *vs) {
    if (vs->map) munmap(vs->map, vs->map_size);
    vs->map = NULL;
}

static int read_full(int fd, void *buf, size_t n, size_t off) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 1;
        p += r;
        n -= (size_t)r;
        off += (size_t)r;
    }
    return 0;
}

/* Shared by load (copy = 0: map the file) and read (copy = 1: private memory). */
static int open_cache(const char *path, int copy, rsclip_vecset **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_load: out is NULL");
    *out = NULL;
    if (!path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_load: path is NULL");
#ifdef RSCLIP_BIG_ENDIAN
    (void)copy;
    return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: cache files need a little-endian host", path);
#else
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rsclip__error(errno == ENOENT ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_IO, "%s: %s", path,
                             strerror(errno));
    struct stat st;
    unsigned char h[HDR_SIZE];
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size < HDR_SIZE) {
        close(fd);
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a vector cache (too short)", path);
    }
    if (pread(fd, h, HDR_SIZE, 0) != HDR_SIZE) {
        close(fd);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot read the header", path);
    }
#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        close(fd);                                                                                 \
        return rsclip__error(code, __VA_ARGS__);                                                   \
    } while (0)
    if (memcmp(h, k_magic, 8) != 0) FAIL(RSCLIP_ERR_FORMAT, "%s: not a vector cache (magic)", path);
    uint32_t version = get32(h, 8);
    if (version > CACHE_VERSION)
        FAIL(RSCLIP_ERR_UNSUPPORTED, "%s: cache version %u is newer than this rsclip (%d)", path,
             version, CACHE_VERSION);
    if (version == 0) FAIL(RSCLIP_ERR_FORMAT, "%s: bad cache version 0", path);
    if (get64(h, 112) != fnv1a(h, 112))
        FAIL(RSCLIP_ERR_FORMAT, "%s: cache header checksum mismatch", path);
    uint32_t hsize = get32(h, 12), dim = get32(h, 16), stride = get32(h, 20);
    uint64_t count = get64(h, 24), flags = get32(h, 40), ctype = get32(h, 44);
    if (hsize != HDR_SIZE) FAIL(RSCLIP_ERR_FORMAT, "%s: header size %u", path, hsize);
    if (dim < 1 || dim > RSCLIP_VECSET_MAX_DIM)
        FAIL(RSCLIP_ERR_FORMAT, "%s: dim %u out of range", path, dim);
    if (stride != rsclip__vecset_stride((int)dim))
        FAIL(RSCLIP_ERR_FORMAT, "%s: stride %u does not match dim %u", path, stride, dim);
    if (count > UINT32_MAX)
        FAIL(RSCLIP_ERR_FORMAT, "%s: count %llu too large", path, (unsigned long long)count);
    if (ctype != CODE_INT8) FAIL(RSCLIP_ERR_UNSUPPORTED, "%s: code type %u", path, (unsigned)ctype);
    if (flags & ~(uint64_t)FLAG_FLOATS) FAIL(RSCLIP_ERR_FORMAT, "%s: unknown flags", path);
    if (get64(h, 120)) FAIL(RSCLIP_ERR_FORMAT, "%s: reserved header fields are not zero", path);
    double max_norm;
    memcpy(&max_norm, h + 88, 8);
    if (!isfinite(max_norm) || max_norm < 0) FAIL(RSCLIP_ERR_FORMAT, "%s: bad largest norm", path);
    layout L;
    if (compute_layout((size_t)count, dim, stride, (flags & FLAG_FLOATS) != 0, &L))
        FAIL(RSCLIP_ERR_FORMAT, "%s: count %llu overflows", path, (unsigned long long)count);
    if (get64(h, 48) != L.off_ids || get64(h, 56) != L.off_scales || get64(h, 64) != L.off_codes ||
        get64(h, 72) != L.off_floats || get64(h, 96) != L.off_scales4 ||
        get64(h, 104) != L.off_codes4)
        FAIL(RSCLIP_ERR_FORMAT, "%s: section offsets do not match the layout", path);
    if (get64(h, 80) != L.size || (uint64_t)st.st_size != L.size)
        FAIL(RSCLIP_ERR_FORMAT, "%s: file is %lld bytes, the header says %llu (needs %zu)", path,
             (long long)st.st_size, (unsigned long long)get64(h, 80), L.size);
    rsclip_vecset *vs = calloc(1, sizeof *vs);
    if (!vs) FAIL(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    vs->dim = (int)dim;
    vs->stride = stride;
    vs->count = (size_t)count;
    vs->cap = vs->count;
    vs->sorted = 1;
    vs->finalized = 1;
    vs->stamp = get64(h, 32);
    vs->max_norm = max_norm;
    if (copy) {
        const size_t n = vs->count, dim_ = (size_t)dim;
        /* sizes are bounded by the file size checked above */
        vs->ids = malloc(n ? n * 8 : 1);
        vs->scales = malloc(n ? n * 4 : 1);
        vs->scales4 = malloc(n ? n * 4 : 1);
        vs->codes = rsclip__aligned_alloc(n * stride);
        vs->codes4 = rsclip__aligned_alloc(n * stride / 2);
        if (L.off_floats) vs->floats = malloc(n ? n * dim_ * 4 : 1);
        if (!vs->ids || !vs->scales || !vs->scales4 || !vs->codes || !vs->codes4 ||
            (L.off_floats && !vs->floats)) {
            rsclip_vecset_free(vs);
            FAIL(RSCLIP_ERR_NOMEM, "%s: out of memory for %zu vectors", path, n);
        }
        if (read_full(fd, vs->ids, n * 8, L.off_ids) ||
            read_full(fd, vs->scales, n * 4, L.off_scales) ||
            read_full(fd, vs->scales4, n * 4, L.off_scales4) ||
            read_full(fd, vs->codes, n * stride, L.off_codes) ||
            read_full(fd, vs->codes4, n * stride / 2, L.off_codes4) ||
            (L.off_floats && read_full(fd, vs->floats, n * dim_ * 4, L.off_floats))) {
            int e = errno;
            rsclip_vecset_free(vs);
            FAIL(RSCLIP_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        close(fd);
    } else {
        void *map = mmap(NULL, L.size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        close(fd);
        if (map == MAP_FAILED) {
            free(vs);
            return rsclip__error(RSCLIP_ERR_IO, "%s: mmap: %s", path, strerror(e));
        }
        vs->map = map;
        vs->map_size = L.size;
        unsigned char *base = map;
        vs->ids = (int64_t *)(void *)(base + L.off_ids);
        vs->scales = (float *)(void *)(base + L.off_scales);
        vs->scales4 = (float *)(void *)(base + L.off_scales4);
        vs->codes = base + L.off_codes;
        vs->codes4 = base + L.off_codes4;
        vs->floats = L.off_floats ? (float *)(void *)(base + L.off_floats) : NULL;
        /* The scan reads the codes next: start reading them in while the checks below run. */
        size_t from = L.off_codes & ~(size_t)4095;
        if (vs->count) (void)madvise(base + from, L.size - from, MADV_WILLNEED);
    }
#undef FAIL
    for (size_t i = 1; i < vs->count; i++)
        if (vs->ids[i - 1] >= vs->ids[i]) {
            rsclip_vecset_free(vs);
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: ids not strictly ascending at row %zu",
                                 path, i);
        }
    for (size_t i = 0; i < vs->count; i++)
        if (!(vs->scales[i] >= 0.0f) || !isfinite(vs->scales[i]) || !(vs->scales4[i] >= 0.0f) ||
            !isfinite(vs->scales4[i])) {
            rsclip_vecset_free(vs);
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: bad scale at row %zu", path, i);
        }
    *out = vs;
    return RSCLIP_OK;
#endif
}

int rsclip_vecset_load(const char *path, rsclip_vecset **out) {
    return open_cache(path, 0, out);
}

int rsclip_vecset_read(const char *path, rsclip_vecset **out) {
    return open_cache(path, 1, out);
}
