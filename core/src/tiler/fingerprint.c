/* The cheap file fingerprint used by the index's incremental check, and the cache setting. */
#include "base/base.h"
#include "rsclip/tiler.h"
#include "status/status_internal.h"
#include "tiler_internal.h"

#include <gdal.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void rsclip_tiler_set_cache_max(int64_t bytes) {
    if (bytes > 0) GDALSetCacheMax64((GIntBig)bytes);
}

/* ---- fingerprint ------------------------------------------------------------------------ */

#define FP_CHUNK (1024 * 1024)
#define FP_MAX_DEPTH 8
#define FP_MAX_FILES 1000000

/* Integers are hashed as 8 little-endian bytes so the checksum does not depend on the host. */
static uint64_t fnv_i64(uint64_t h, int64_t v) {
    unsigned char b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(u >> (8 * i));
    return rsclip__fnv1a(h, b, 8);
}

static int ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && EQUAL(s + n - m, suffix);
}

static int hash_range(VSILFILE *f, uint64_t off, size_t n, unsigned char *buf, uint64_t *h) {
    if (n == 0) return 0;
    if (VSIFSeekL(f, (vsi_l_offset)off, SEEK_SET) != 0) return -1;
    if (VSIFReadL(buf, 1, n, f) != n) return -1;
    *h = rsclip__fnv1a(*h, buf, n);
    return 0;
}

/* One other file of a dataset (a VRT source, an .ovr, a .msk): its name, size, mtime in
 * nanoseconds and inode (a file replaced by `mv` keeps its size and often its mtime, never its
 * inode); a VRT source that is itself a VRT adds its own sources, FP_MAX_DEPTH levels deep and
 * FP_MAX_FILES files in all (a hostile VRT cannot make this loop forever). */
static uint64_t hash_member(uint64_t h, const char *file, int depth, int *budget) {
    if (--*budget < 0) return fnv_i64(h, -2);
    const char *base = CPLGetFilename(file);
    h = rsclip__fnv1a(h, base, strlen(base) + 1);
    VSIStatBufL vs;
    struct stat ls;
    if (strncmp(file, "/vsi", 4) != 0 && stat(file, &ls) == 0) {
        h = fnv_i64(h, (int64_t)ls.st_size);
        h = fnv_i64(h, (int64_t)ls.st_mtim.tv_sec * 1000000000 + ls.st_mtim.tv_nsec);
        h = fnv_i64(h, (int64_t)ls.st_ino);
    } else if (VSIStatL(file, &vs) == 0) {
        h = fnv_i64(h, (int64_t)vs.st_size);
        h = fnv_i64(h, (int64_t)vs.st_mtime);
    } else {
        return fnv_i64(h, -1);
    }
    if (depth >= FP_MAX_DEPTH || !ends_with_ci(file, ".vrt")) return h;
    GDALDatasetH ds = GDALOpenEx(file, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds) return fnv_i64(h, -3);
    char **files = GDALGetFileList(ds);
    for (int i = 0; files && files[i]; i++) {
        if (i == 0 && strcmp(CPLGetFilename(files[i]), base) == 0) continue;
        if (ends_with_ci(files[i], ".aux.xml")) continue;
        h = hash_member(h, files[i], depth + 1, budget);
    }
    CSLDestroy(files);
    GDALClose(ds);
    return h;
}

/* Fingerprint of path; ds (may be NULL) supplies the dataset's other files. Caller has pushed a
 * GDAL error capture. checksum covers the other files precisely (hash_member); legacy_hex is
 * the schema-1 checksum (name, size, whole-second mtime, one level). */
int rsclip__fingerprint(const char *path, GDALDatasetH ds, rsclip_fingerprint *fp) {
    uint64_t h = RSCLIP__FNV_OFFSET;
    VSIStatBufL st;
    fp->size = -1;
    fp->mtime_ns = 0;
    if (VSIStatL(path, &st) == 0 && VSI_ISREG(st.st_mode)) {
        fp->size = (int64_t)st.st_size;
        fp->mtime_ns = (int64_t)st.st_mtime * 1000000000;
        struct stat lst; /* local files: nanoseconds */
        if (strncmp(path, "/vsi", 4) != 0 && stat(path, &lst) == 0)
            fp->mtime_ns = (int64_t)lst.st_mtim.tv_sec * 1000000000 + lst.st_mtim.tv_nsec;
        h = fnv_i64(h, fp->size);
        VSILFILE *f = VSIFOpenL(path, "rb");
        if (!f) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open for reading", path);
        unsigned char *buf = (unsigned char *)rsclip__malloc(FP_CHUNK);
        if (!buf) {
            VSIFCloseL(f);
            return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
        }
        uint64_t size = (uint64_t)fp->size;
        size_t head = size < FP_CHUNK ? (size_t)size : FP_CHUNK;
        uint64_t tail_off = size > 2 * (uint64_t)FP_CHUNK ? size - FP_CHUNK : head;
        int bad = hash_range(f, 0, head, buf, &h) ||
                  hash_range(f, tail_off, (size_t)(size - tail_off), buf, &h);
        free(buf);
        VSIFCloseL(f);
        if (bad) return rsclip__error(RSCLIP_ERR_IO, "%s: read error while hashing", path);
    } else {
        h = rsclip__fnv1a(h, path, strlen(path));
    }
    uint64_t legacy = h;
    if (ds) {
        char **files = GDALGetFileList(ds);
        const char *main_name = CPLGetFilename(path);
        int budget = FP_MAX_FILES;
        for (int i = 0; files && files[i]; i++) {
            /* File 0 is the main file (already hashed); .aux.xml is GDAL's metadata cache. */
            if (i == 0 && strcmp(CPLGetFilename(files[i]), main_name) == 0) continue;
            if (ends_with_ci(files[i], ".aux.xml")) continue;
            const char *base = CPLGetFilename(files[i]);
            legacy = rsclip__fnv1a(legacy, base, strlen(base) + 1);
            VSIStatBufL s2;
            if (VSIStatL(files[i], &s2) == 0) {
                legacy = fnv_i64(legacy, (int64_t)s2.st_size);
                legacy = fnv_i64(legacy, (int64_t)s2.st_mtime);
            } else {
                legacy = fnv_i64(legacy, -1);
            }
            h = hash_member(h, files[i], 0, &budget);
        }
        CSLDestroy(files);
    }
    fp->checksum = h;
    snprintf(fp->checksum_hex, sizeof fp->checksum_hex, "%016llx", (unsigned long long)h);
    snprintf(fp->legacy_hex, sizeof fp->legacy_hex, "%016llx", (unsigned long long)legacy);
    return RSCLIP_OK;
}

int rsclip_file_fingerprint(const char *path, rsclip_fingerprint *out) {
    if (!path || !*path || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_file_fingerprint: NULL argument");
    memset(out, 0, sizeof *out);
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    VSIStatBufL st;
    int exists = VSIStatL(path, &st) == 0;
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    int rc;
    if (!ds) {
        rc = exists
                 ? rsclip__gdal_error(&e, RSCLIP_ERR_FORMAT, "%s: %s", path, "GDAL cannot open it")
                 : rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no such file", path);
    } else {
        rc = rsclip__fingerprint(path, ds, out);
        GDALClose(ds);
    }
    rsclip__gdal_errors_pop(&e);
    return rc;
}
