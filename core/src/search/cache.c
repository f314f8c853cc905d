/* The .rsvec cache file: a derived, memory-mappable copy of a vecset (see rsclip/search.h).
 *
 * Layout (little-endian), every section 64-byte aligned and placed exactly where the canonical
 * layout puts it (so a reader never has to trust an offset it did not compute itself):
 *   0   char[8]  magic "RSVECSET"
 *   8   u32      version (2)
 *   12  u32      header size (192)
 *   16  u32      dim
 *   20  u32      stride (dim rounded up to 128)
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
 *   112 u64      offset of the block checksums  u64[n_blocks]
 *   120 u32      block size (16384)
 *   124 u32      reserved, 0
 *   128 u64      XXH3-64 (seed 0) of the block checksum table
 *   136 ...      reserved, 0
 *   184 u64      FNV-1a 64 of bytes 0..183
 * Sections in file order: ids, scales, scales4, codes, codes4, floats, block checksums. Each data
 * section is cut into blocks of `block size` bytes (its last block shorter; padding between
 * sections is not covered); the table holds the XXH3-64 (seed 0) of every block, section by
 * section in file order. Version 1 (no block checksums) is refused, so old caches are rebuilt.
 * The code formats are those of core/src/search/search_internal.h.
 *
 * Verification: the header checksum, every header field and the table's hash when the file is
 * opened; the ids, scales and floats (which every search reads) then too; the int8 and int4 codes
 * of a large set (one without floats) block by block the first time a scan reads them, so a
 * one-shot search over a large mapped cache reads (and checks) only what it touches; a small set
 * (with floats) is checked whole at load. XXH3 (libxxhash, inlined) hashes ~11 GB/s per core
 * here, about twice the one-stream CRC32C instruction.
 */
#include "base/base.h"
#include "search/vecset_internal.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define RSCLIP_BIG_ENDIAN 1
#endif

#define HDR_SIZE 192
#define HDR_SUM_AT 184
#define CACHE_VERSION 2
#define CODE_INT8 1
#define FLAG_FLOATS 1u
#define BLOCK_SIZE 16384u
static const char k_magic[8] = {'R', 'S', 'V', 'E', 'C', 'S', 'E', 'T'};

static uint64_t block_hash(const void *p, size_t n) {
    return XXH3_64bits(p, n);
}

/* ---- layout ---------------------------------------------------------------------------------- */

enum { S_IDS, S_SCALES, S_SCALES4, S_CODES, S_CODES4, S_FLOATS, N_SEC };
static const char *const k_sec_name[N_SEC] = {"ids",   "scales",     "int4 scales",
                                              "codes", "int4 codes", "float vectors"};

typedef struct layout {
    size_t off[N_SEC], len[N_SEC]; /* off[S_FLOATS] = 0 without floats */
    size_t blk0[N_SEC];            /* index of each section's first block in the table */
    size_t n_blocks;
    size_t off_sums, size;
} layout;

static int align64(size_t x, size_t *out) {
    return rsclip__add_size(x, 63, out) ? 1 : (*out &= ~(size_t)63, 0);
}

/* Canonical section offsets; non-zero on overflow. */
static int compute_layout(size_t count, size_t dim, size_t stride, int floats, layout *L) {
    memset(L, 0, sizeof *L);
    size_t per_row[N_SEC] = {8, 4, 4, stride, stride / 2, 0};
    size_t pos = HDR_SIZE;
    for (int s = 0; s < N_SEC; s++) {
        if (s == S_FLOATS) {
            if (!floats) break;
            if (rsclip__mul_size(dim, 4, &per_row[s])) return 1;
        }
        if (align64(pos, &L->off[s]) || rsclip__mul_size(count, per_row[s], &L->len[s]) ||
            rsclip__add_size(L->off[s], L->len[s], &pos))
            return 1;
        L->blk0[s] = L->n_blocks;
        L->n_blocks += L->len[s] / BLOCK_SIZE + (L->len[s] % BLOCK_SIZE != 0);
    }
    size_t tb;
    if (align64(pos, &L->off_sums) || rsclip__mul_size(L->n_blocks, 8, &tb) ||
        rsclip__add_size(L->off_sums, tb, &L->size))
        return 1;
    return 0;
}

/* The hash of every block of section s (bytes p) into sums. */
static void section_sums(const layout *L, int s, const unsigned char *p, uint64_t *sums) {
    for (size_t o = 0, b = L->blk0[s]; o < L->len[s]; o += BLOCK_SIZE, b++)
        sums[b] = block_hash(p + o, L->len[s] - o < BLOCK_SIZE ? L->len[s] - o : BLOCK_SIZE);
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

/* ---- lazy verification ----------------------------------------------------------------------- */

struct rsclip__vcheck {
    char *path;
    layout L;
    uint64_t *sums;                   /* [n_blocks], owned */
    const unsigned char *base[N_SEC]; /* the bytes of each section */
    atomic_uchar *state;              /* [n_blocks]: 0 unchecked, 1 good, 2 damaged */
    atomic_size_t bad_block;          /* first damaged block seen + 1, 0 if none */
};

void rsclip__vcheck_free(struct rsclip__vcheck *c) {
    if (!c) return;
    free(c->path);
    free(c->sums);
    free((void *)c->state);
    free(c);
}

/* Blocks [b0, b1] of the table: 0 if all good. */
static int check_blocks(struct rsclip__vcheck *c, int s, size_t b0, size_t b1) {
    for (size_t b = b0; b <= b1; b++) {
        unsigned char st = atomic_load_explicit(&c->state[b], memory_order_relaxed);
        if (st == 1) continue;
        if (st == 0) {
            size_t o = (b - c->L.blk0[s]) * BLOCK_SIZE, n = c->L.len[s] - o;
            st = block_hash(c->base[s] + o, n < BLOCK_SIZE ? n : BLOCK_SIZE) == c->sums[b] ? 1 : 2;
            atomic_store_explicit(&c->state[b], st, memory_order_relaxed);
        }
        if (st == 2) {
            size_t none = 0;
            atomic_compare_exchange_strong(&c->bad_block, &none, b + 1);
            return 1;
        }
    }
    return 0;
}

/* Bytes [off, off + n) of section s. */
static int check_range(struct rsclip__vcheck *c, int s, size_t off, size_t n) {
    if (n == 0) return 0;
    return check_blocks(c, s, c->L.blk0[s] + off / BLOCK_SIZE,
                        c->L.blk0[s] + (off + n - 1) / BLOCK_SIZE);
}

int rsclip__vecset_check_rows(const rsclip_vecset *vs, int int4, size_t first, size_t n) {
    struct rsclip__vcheck *c = vs->check;
    if (!c) return 0;
    size_t rb = int4 ? vs->stride / 2 : vs->stride;
    return check_range(c, int4 ? S_CODES4 : S_CODES, first * rb, n * rb);
}

int rsclip_vecset_damaged(const rsclip_vecset *vs) {
    return vs && vs->check && atomic_load(&vs->check->bad_block) != 0;
}

int rsclip__vecset_damage_error(const rsclip_vecset *vs) {
    const struct rsclip__vcheck *c = vs->check;
    size_t b = c ? atomic_load(&((struct rsclip__vcheck *)c)->bad_block) : 0;
    if (!b) return rsclip__error(RSCLIP_ERR_INTERNAL, "vector set: no damaged block");
    b--;
    int s = N_SEC - 1;
    while (s > 0 && (c->L.len[s] == 0 || c->L.blk0[s] > b)) s--;
    size_t off = c->L.off[s] + (b - c->L.blk0[s]) * BLOCK_SIZE;
    return rsclip__error(RSCLIP_ERR_FORMAT,
                         "%s: vector cache damaged: the %s block at byte %zu fails its checksum",
                         c->path, k_sec_name[s], off);
}

int rsclip_vecset_verify(const rsclip_vecset *vs) {
    if (!vs) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_verify: NULL set");
    struct rsclip__vcheck *c = vs->check;
    if (!c) return RSCLIP_OK;
    for (int s = 0; s < N_SEC; s++)
        if (c->L.len[s] && check_range(c, s, 0, c->L.len[s])) break;
    return rsclip_vecset_damaged(vs) ? rsclip__vecset_damage_error(vs) : RSCLIP_OK;
}

/* ---- save ------------------------------------------------------------------------------------ */

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

/* The set's arrays, in section order. */
static void section_ptrs(const rsclip_vecset *vs, const unsigned char *p[N_SEC]) {
    p[S_IDS] = (const unsigned char *)vs->ids;
    p[S_SCALES] = (const unsigned char *)vs->scales;
    p[S_SCALES4] = (const unsigned char *)vs->scales4;
    p[S_CODES] = vs->codes;
    p[S_CODES4] = vs->codes4;
    p[S_FLOATS] = (const unsigned char *)vs->floats;
}

static void fill_header(unsigned char *h, const rsclip_vecset *vs, const layout *L,
                        uint64_t source_stamp, uint64_t table_sum) {
    memset(h, 0, HDR_SIZE);
    memcpy(h, k_magic, 8);
    put32(h, 8, CACHE_VERSION);
    put32(h, 12, HDR_SIZE);
    put32(h, 16, (uint32_t)vs->dim);
    put32(h, 20, (uint32_t)vs->stride);
    put64(h, 24, vs->count);
    put64(h, 32, source_stamp);
    put32(h, 40, vs->floats ? FLAG_FLOATS : 0);
    put32(h, 44, CODE_INT8);
    put64(h, 48, L->off[S_IDS]);
    put64(h, 56, L->off[S_SCALES]);
    put64(h, 64, L->off[S_CODES]);
    put64(h, 72, L->off[S_FLOATS]);
    put64(h, 80, L->size);
    memcpy(h + 88, &vs->max_norm, 8);
    put64(h, 96, L->off[S_SCALES4]);
    put64(h, 104, L->off[S_CODES4]);
    put64(h, 112, L->off_sums);
    put32(h, 120, BLOCK_SIZE);
    put64(h, 128, table_sum);
    put64(h, HDR_SUM_AT, rsclip__fnv1a(RSCLIP__FNV_OFFSET, h, HDR_SUM_AT));
}

static int write_file(FILE *f, const unsigned char *h, const layout *L,
                      const unsigned char *const p[N_SEC], const uint64_t *sums) {
    size_t pos = 0;
    if (write_section(f, h, HDR_SIZE, &pos, L->off[S_IDS])) return 1;
    for (int s = 0; s < N_SEC; s++) {
        if (s == S_FLOATS && !L->off[S_FLOATS]) break;
        size_t next = s + 1 < N_SEC && L->off[s + 1] ? L->off[s + 1] : L->off_sums;
        if (write_section(f, p[s], L->len[s], &pos, next)) return 1;
    }
    return write_section(f, sums, L->n_blocks * 8, &pos, L->size);
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

int rsclip_vecset_save(const rsclip_vecset *vs, const char *path, uint64_t source_stamp) {
#ifdef RSCLIP_BIG_ENDIAN
    return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: cache files need a little-endian host", path);
#else
    if (!vs || !path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_vecset_save: NULL argument");
    if (!vs->finalized)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: the set is not finalized", path);
    int exists;
    int rc = check_target(path, &exists);
    if (rc) return rc;
    layout L;
    if (compute_layout(vs->count, (size_t)vs->dim, vs->stride, vs->floats != NULL, &L))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: cache size overflows", path);
    const unsigned char *p[N_SEC];
    section_ptrs(vs, p);
    uint64_t *sums = rsclip__malloc(L.n_blocks ? L.n_blocks * 8 : 8);
    if (!sums) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    for (int s = 0; s < N_SEC; s++)
        if (L.len[s]) section_sums(&L, s, p[s], sums);
    unsigned char h[HDR_SIZE];
    fill_header(h, vs, &L, source_stamp, block_hash(sums, L.n_blocks * 8));

    size_t plen = strlen(path);
    char *tmp = rsclip__malloc(plen + 16);
    int fd = -1, e = 0;
    if (tmp) {
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp.XXXXXX", 12);
        fd = mkstemp(tmp);
        e = errno;
    }
    if (fd < 0) {
        free(tmp);
        free(sums);
        if (!tmp) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot create a temporary file: %s", path,
                             strerror(e));
    }
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    int bad = !f || write_file(f, h, &L, p, sums);
    e = errno;
    free(sums);
    if (!f) close(fd);
    if (f && fflush(f) != 0) bad = 1, e = errno;
    if (f && fclose(f) != 0) bad = 1, e = errno;
    if (!bad && rsclip__rename(tmp, path, exists) != 0) bad = 1, e = errno;
    if (bad) {
        unlink(tmp);
        free(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write the cache: %s", path, strerror(e));
    }
    free(tmp);
    return RSCLIP_OK;
#endif
}

/* ---- load ------------------------------------------------------------------------------------ */

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

/* What the header says, once every field has been checked against the canonical layout. */
typedef struct cache_hdr {
    uint32_t dim, stride;
    uint64_t count, stamp;
    int floats;
    double max_norm;
    uint64_t table_sum;
    layout L;
} cache_hdr;

static int parse_header(const char *path, const unsigned char *h, uint64_t file_size,
                        cache_hdr *o) {
    if (memcmp(h, k_magic, 8) != 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a vector cache (magic)", path);
    uint32_t version = get32(h, 8);
    if (version > CACHE_VERSION)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: cache version %u is newer than this rsclip (%d)", path, version,
                             CACHE_VERSION);
    if (version < CACHE_VERSION)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: cache version %u (without block checksums) is older than this "
                             "rsclip's (%d)",
                             path, version, CACHE_VERSION);
    if (get64(h, HDR_SUM_AT) != rsclip__fnv1a(RSCLIP__FNV_OFFSET, h, HDR_SUM_AT))
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: cache header checksum mismatch", path);
    uint32_t hsize = get32(h, 12), flags = get32(h, 40), ctype = get32(h, 44);
    o->dim = get32(h, 16);
    o->stride = get32(h, 20);
    o->count = get64(h, 24);
    o->stamp = get64(h, 32);
    o->table_sum = get64(h, 128);
    if (hsize != HDR_SIZE)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: header size %u", path, hsize);
    if (o->dim < 1 || o->dim > RSCLIP_VECSET_MAX_DIM)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: dim %u out of range", path, o->dim);
    if (o->stride != rsclip__vecset_stride((int)o->dim))
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: stride %u does not match dim %u", path,
                             o->stride, o->dim);
    if (o->count > UINT32_MAX)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: count %llu too large", path,
                             (unsigned long long)o->count);
    if (ctype != CODE_INT8)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: code type %u", path, (unsigned)ctype);
    if (flags & ~FLAG_FLOATS) return rsclip__error(RSCLIP_ERR_FORMAT, "%s: unknown flags", path);
    if (get32(h, 120) != BLOCK_SIZE)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: checksum block size %u (expected %u)", path,
                             get32(h, 120), BLOCK_SIZE);
    for (size_t i = 124; i < HDR_SUM_AT; i += i == 127 ? 9 : 1) /* all but 128..135 */
        if (h[i]) return rsclip__error(RSCLIP_ERR_FORMAT, "%s: reserved header bytes not 0", path);
    memcpy(&o->max_norm, h + 88, 8);
    if (!isfinite(o->max_norm) || o->max_norm < 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: bad largest norm", path);
    o->floats = (flags & FLAG_FLOATS) != 0;
    layout *L = &o->L;
    if (compute_layout((size_t)o->count, o->dim, o->stride, o->floats, L))
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: count %llu overflows", path,
                             (unsigned long long)o->count);
    if (get64(h, 48) != L->off[S_IDS] || get64(h, 56) != L->off[S_SCALES] ||
        get64(h, 64) != L->off[S_CODES] || get64(h, 72) != L->off[S_FLOATS] ||
        get64(h, 96) != L->off[S_SCALES4] || get64(h, 104) != L->off[S_CODES4] ||
        get64(h, 112) != L->off_sums)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: section offsets do not match the layout",
                             path);
    if (get64(h, 80) != L->size || file_size != L->size)
        return rsclip__error(
            RSCLIP_ERR_FORMAT, "%s: file is %llu bytes, the header says %llu (needs %zu)", path,
            (unsigned long long)file_size, (unsigned long long)get64(h, 80), L->size);
    return RSCLIP_OK;
}

/* Private copies of every section (rsclip_vecset_read); sizes are bounded by the file size. */
static int read_sections(rsclip_vecset *vs, int fd, const layout *L, const char *path) {
    const size_t n = vs->count;
    vs->ids = rsclip__malloc(n ? n * 8 : 1);
    vs->scales = rsclip__malloc(n ? n * 4 : 1);
    vs->scales4 = rsclip__malloc(n ? n * 4 : 1);
    vs->codes = rsclip__alloc_huge(L->len[S_CODES]);
    vs->codes4 = rsclip__alloc_huge(L->len[S_CODES4]);
    if (L->off[S_FLOATS]) vs->floats = rsclip__malloc(L->len[S_FLOATS] ? L->len[S_FLOATS] : 1);
    if (!vs->ids || !vs->scales || !vs->scales4 || !vs->codes || !vs->codes4 ||
        (L->off[S_FLOATS] && !vs->floats))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory for %zu vectors", path, n);
    unsigned char *p[N_SEC];
    section_ptrs(vs, (const unsigned char **)p);
    for (int s = 0; s < N_SEC; s++)
        if (L->len[s] && read_full(fd, p[s], L->len[s], L->off[s]))
            return rsclip__error(RSCLIP_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    return RSCLIP_OK;
}

static int map_sections(rsclip_vecset *vs, int fd, const layout *L, const char *path) {
    void *map = mmap(NULL, L->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return rsclip__error(RSCLIP_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    vs->map = map;
    vs->map_size = L->size;
    unsigned char *base = map;
    vs->ids = (int64_t *)(void *)(base + L->off[S_IDS]);
    vs->scales = (float *)(void *)(base + L->off[S_SCALES]);
    vs->scales4 = (float *)(void *)(base + L->off[S_SCALES4]);
    vs->codes = base + L->off[S_CODES];
    vs->codes4 = base + L->off[S_CODES4];
    vs->floats = L->off[S_FLOATS] ? (float *)(void *)(base + L->off[S_FLOATS]) : NULL;
    /* The scan reads the codes next: start reading them in while the checks below run. */
    size_t from = L->off[S_CODES] & ~(size_t)4095;
    if (vs->count) (void)madvise(base + from, L->size - from, MADV_WILLNEED);
    return RSCLIP_OK;
}

/* The block table (checked against the header's hash), then the sections every search reads in
 * full: ids, scales and floats. The codes are left to rsclip__vecset_check_rows. */
static int setup_check(rsclip_vecset *vs, int fd, const cache_hdr *H, const char *path) {
    struct rsclip__vcheck *c = rsclip__calloc(1, sizeof *c);
    if (!c) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    vs->check = c;
    c->L = H->L;
    const size_t nb = c->L.n_blocks;
    c->path = rsclip__strdup(path);
    c->sums = rsclip__malloc(nb ? nb * 8 : 8);
    c->state = rsclip__calloc(nb ? nb : 1, sizeof *c->state);
    if (!c->path || !c->sums || !c->state)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    if (read_full(fd, c->sums, nb * 8, c->L.off_sums))
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot read the block checksums", path);
    if (block_hash(c->sums, nb * 8) != H->table_sum)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: the block checksum table is damaged", path);
    section_ptrs(vs, c->base);
    /* A set that holds floats is small (exact search): check it whole, so that a damaged block is
     * found even when no search would read it. */
    for (int s = 0; s < N_SEC; s++) {
        int lazy = (s == S_CODES || s == S_CODES4) && !H->floats;
        if (!lazy && c->L.len[s] && check_range(c, s, 0, c->L.len[s]))
            return rsclip__vecset_damage_error(vs);
    }
    return RSCLIP_OK;
}

/* Content rules the checksums cannot give: ascending ids, finite non-negative scales. */
static int check_content(const rsclip_vecset *vs, const char *path) {
    for (size_t i = 1; i < vs->count; i++)
        if (vs->ids[i - 1] >= vs->ids[i])
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: ids not strictly ascending at row %zu",
                                 path, i);
    for (size_t i = 0; i < vs->count; i++)
        if (!(vs->scales[i] >= 0.0f) || !isfinite(vs->scales[i]) || !(vs->scales4[i] >= 0.0f) ||
            !isfinite(vs->scales4[i]))
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: bad scale at row %zu", path, i);
    return RSCLIP_OK;
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
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return rsclip__error(errno == ENOENT ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_IO, "%s: %s", path,
                             strerror(errno));
    struct stat st;
    unsigned char h[HDR_SIZE];
    cache_hdr H;
    int rc = RSCLIP_OK;
    if (fstat(fd, &st) != 0)
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode) || st.st_size < HDR_SIZE)
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a vector cache (too short)", path);
    else if (read_full(fd, h, HDR_SIZE, 0))
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot read the header", path);
    else
        rc = parse_header(path, h, (uint64_t)st.st_size, &H);
    rsclip_vecset *vs = NULL;
    if (!rc && !(vs = rsclip__calloc(1, sizeof *vs)))
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    if (!rc) {
        vs->dim = (int)H.dim;
        vs->stride = H.stride;
        vs->count = (size_t)H.count;
        vs->cap = vs->count;
        vs->sorted = 1;
        vs->finalized = 1;
        vs->stamp = H.stamp;
        vs->max_norm = H.max_norm;
        rc = copy ? read_sections(vs, fd, &H.L, path) : map_sections(vs, fd, &H.L, path);
    }
    if (!rc) rc = setup_check(vs, fd, &H, path);
    if (!rc) rc = check_content(vs, path);
    close(fd);
    if (rc) {
        rsclip_vecset_free(vs);
        return rc;
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
