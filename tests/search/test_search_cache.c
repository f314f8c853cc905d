/* The .rsvec cache: save/load round trip (with and without floats), identical search results after
 * a load, and hostile files: truncated, wrong magic, newer and older versions, bad checksum,
 * counts that overflow the file, offsets that disagree with the layout, unsorted ids, NaN scales;
 * tampered bodies (every section, the block checksum table): refused at load or, for the codes,
 * by the first search that reads the block. */
#include "rsclip/search.h"
#include "rsclip/status.h"
#include "search_testutil.h"
#include "test_util.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static void path_of(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", g_dir, name);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    REQUIRE(fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(b, 1, n, f) == n);
    fclose(f);
}

#define HDR 192
#define BLK 16384

/* The header checksum as the format defines it (FNV-1a 64 over bytes 0..183), computed here. */
static void fix_checksum(unsigned char *h) {
    uint64_t x = 0xcbf29ce484222325ull;
    for (int i = 0; i < 184; i++) {
        x ^= h[i];
        x *= 0x100000001b3ull;
    }
    memcpy(h + 184, &x, 8);
}

/* The block checksum as the format defines it: XXH3-64, seed 0 (libxxhash). */
static uint64_t sum_of(const unsigned char *p, size_t n) {
    return XXH3_64bits(p, n);
}

/* Section offsets and lengths of a cache of n vectors of dim 40 (stride 128), no floats. */
typedef struct lay {
    size_t off[5], len[5], sums, nblk, size;
} lay;
static lay layout_of(size_t n) {
    lay L;
    size_t per[5] = {8, 4, 4, 128, 64}, pos = HDR;
    L.nblk = 0;
    for (int s = 0; s < 5; s++) {
        L.off[s] = (pos + 63) / 64 * 64;
        L.len[s] = per[s] * n;
        pos = L.off[s] + L.len[s];
        L.nblk += (L.len[s] + BLK - 1) / BLK;
    }
    L.sums = (pos + 63) / 64 * 64;
    L.size = L.sums + 8 * L.nblk;
    return L;
}

/* Recompute every block checksum, the table's and the header's (a tamperer who knows the format:
 * what remains to be judged is the content itself). */
static void fix_blocks(unsigned char *b, const lay *L) {
    size_t k = 0;
    for (int s = 0; s < 5; s++)
        for (size_t o = 0; o < L->len[s]; o += BLK, k++) {
            uint64_t c = sum_of(b + L->off[s] + o, L->len[s] - o < BLK ? L->len[s] - o : BLK);
            memcpy(b + L->sums + 8 * k, &c, 8);
        }
    uint64_t t = sum_of(b + L->sums, 8 * L->nblk);
    memcpy(b + 128, &t, 8);
    fix_checksum(b);
}

static int load_status(const unsigned char *b, size_t n) {
    char p[300];
    path_of(p, sizeof p, "hostile.rsvec");
    spit(p, b, n);
    int rcs[2];
    for (int copy = 0; copy < 2; copy++) {
        rsclip_vecset *vs = NULL;
        int rc = copy ? rsclip_vecset_read(p, &vs) : rsclip_vecset_load(p, &vs);
        if (rc == RSCLIP_OK) {
            /* must still be usable: the scan reads every code, so a damaged block is found */
            float q[40] = {1.0f};
            float *all = malloc(rsclip_vecset_count(vs) * sizeof(float) + 4);
            int rs = rsclip_vecset_score_all(vs, q, NULL, all);
            if (rs != RSCLIP_OK) {
                CHECK(rs == RSCLIP_ERR_FORMAT && rsclip_vecset_damaged(vs));
                CHECK(strstr(rsclip_last_error(), "hostile.rsvec: vector cache damaged") != NULL);
            }
            /* the int4 codes too */
            int rv = rsclip_vecset_verify(vs);
            if (rs != RSCLIP_OK || rv != RSCLIP_OK) {
                CHECK(rv == RSCLIP_ERR_FORMAT && rsclip_vecset_damaged(vs));
                rc = -1000; /* accepted at load, refused when read */
            }
            free(all);
            rsclip_vecset_free(vs);
        } else {
            CHECK(vs == NULL);
            CHECK(strstr(rsclip_last_error(), "hostile.rsvec") != NULL);
        }
        rcs[copy] = rc;
    }
    CHECK(rcs[0] == rcs[1]); /* load and read judge alike */
    return rcs[0];
}

static void put64(unsigned char *b, size_t off, uint64_t v) {
    memcpy(b + off, &v, 8);
}
static void put32(unsigned char *b, size_t off, uint32_t v) {
    memcpy(b + off, &v, 4);
}

static int fetch_none(void *user, size_t n, const int64_t *ids, float *out) {
    (void)user, (void)n, (void)ids, (void)out;
    return RSCLIP_ERR_INTERNAL;
}

typedef struct fctx {
    const float *vecs;
    int dim;
} fctx;
static int fetch_rows(void *user, size_t n, const int64_t *ids, float *out) {
    fctx *f = user;
    for (size_t i = 0; i < n; i++) /* ids are 10 * row */
        memcpy(out + i * f->dim, f->vecs + (size_t)(ids[i] / 10) * f->dim, f->dim * sizeof(float));
    return RSCLIP_OK;
}

static int g_warnings;
static char g_warning[512];

static void on_log(int level, const char *msg, void *user) {
    (void)user;
    if (level < RSCLIP_LOG_WARN) return;
    g_warnings++;
    snprintf(g_warning, sizeof g_warning, "%s", msg);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* INDEX.rsvec is only a name: a user's file there (any content but a cache's, a folder, a symbolic
 * link) is never replaced; saving says why (a warning) and writes nothing. A cache is replaced. */
static void test_foreign_target(int dim) {
    char dir[300], p[400], target[400];
    path_of(dir, sizeof dir, "foreign");
    REQUIRE(mkdir(dir, 0755) == 0);
    rsclip_vecset *vs = NULL;
    REQUIRE(rsclip_vecset_new(dim, NULL, &vs) == RSCLIP_OK);
    float v[64] = {1.0f};
    int64_t id = 5;
    CHECK_OK(rsclip_vecset_add(vs, 1, &id, v));
    CHECK_OK(rsclip_vecset_finalize(vs));
    rsclip_set_log(on_log, NULL);

    static const char *const contents[] = {"my notes\n", "", "RSVECSE"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/user%d.rsvec", dir, i);
        spit(p, (const unsigned char *)contents[i], strlen(contents[i]));
        g_warnings = 0;
        CHECK(rsclip_vecset_save(vs, p, 1) == RSCLIP_ERR_EXISTS);
        CHECK(strstr(rsclip_last_error(), p) && strstr(rsclip_last_error(), "not replaced"));
        CHECK(g_warnings == 1 && strstr(g_warning, p));
        size_t n = 0;
        unsigned char *b = slurp(p, &n);
        CHECK(n == strlen(contents[i]) && memcmp(b, contents[i], n) == 0);
        free(b);
    }
    /* a symbolic link (to a file, dangling) and a folder stay what they are */
    snprintf(target, sizeof target, "%s/user0.rsvec", dir);
    snprintf(p, sizeof p, "%s/link.rsvec", dir);
    REQUIRE(symlink(target, p) == 0);
    CHECK(rsclip_vecset_save(vs, p, 1) == RSCLIP_ERR_EXISTS);
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
    snprintf(p, sizeof p, "%s/dangling.rsvec", dir);
    REQUIRE(symlink("nowhere", p) == 0);
    CHECK(rsclip_vecset_save(vs, p, 1) == RSCLIP_ERR_EXISTS);
    CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
    snprintf(p, sizeof p, "%s/folder.rsvec", dir);
    REQUIRE(mkdir(p, 0755) == 0);
    CHECK(rsclip_vecset_save(vs, p, 1) == RSCLIP_ERR_EXISTS);
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    /* nothing else was left in the folder (no temporary file) */
    CHECK(count_entries(dir) == 6);

    /* a cache (even a damaged one: the magic says it is ours) is replaced */
    snprintf(p, sizeof p, "%s/cache.rsvec", dir);
    CHECK_OK(rsclip_vecset_save(vs, p, 1));
    FILE *f = fopen(p, "r+b");
    REQUIRE(f);
    fseek(f, 40, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    g_warnings = 0;
    CHECK_OK(rsclip_vecset_save(vs, p, 2));
    CHECK(g_warnings == 0);
    rsclip_vecset *ld = NULL;
    CHECK_OK(rsclip_vecset_load(p, &ld));
    CHECK(ld && rsclip_vecset_source_stamp(ld) == 2);
    rsclip_vecset_free(ld);
    rsclip_set_log(NULL, NULL);
    rsclip_vecset_free(vs);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/rsclip_test_cache_%d", (int)getpid());
    REQUIRE(mkdir(g_dir, 0755) == 0 || 1);
    const int dim = 40;
    const size_t n = 5000;
    st_rng r = {11};
    float *vecs = malloc(n * dim * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    st_unit_vectors(&r, n, dim, vecs);
    for (size_t i = 0; i < n; i++) ids[i] = 10 * (int64_t)i;
    char p1[300], p2[300];
    path_of(p1, sizeof p1, "codes.rsvec");
    path_of(p2, sizeof p2, "floats.rsvec");

    for (int floats = 0; floats < 2; floats++) {
        rsclip_vecset_params vp = rsclip_vecset_default_params();
        vp.keep_floats = floats;
        vp.capacity_hint = 100;
        rsclip_vecset *vs;
        REQUIRE(rsclip_vecset_new(dim, &vp, &vs) == RSCLIP_OK);
        CHECK_OK(rsclip_vecset_add(vs, n, ids, vecs));
        const char *path = floats ? p2 : p1;
        CHECK(rsclip_vecset_save(vs, path, 7) == RSCLIP_ERR_INVALID_ARG); /* not finalized */
        CHECK_OK(rsclip_vecset_finalize(vs));
        uint64_t stamp = 0xfedcba9876543210ull + (uint64_t)floats;
        CHECK_OK(rsclip_vecset_save(vs, path, stamp));
        for (int copy = 0; copy < 2; copy++) {
            rsclip_vecset *ld = NULL;
            CHECK_OK(copy ? rsclip_vecset_read(path, &ld) : rsclip_vecset_load(path, &ld));
            REQUIRE(ld);
            CHECK(rsclip_vecset_count(ld) == n && rsclip_vecset_dim(ld) == dim);
            CHECK(rsclip_vecset_source_stamp(ld) == stamp);
            CHECK(rsclip_vecset_source_stamp(vs) == 0);
            CHECK(rsclip_vecset_has_floats(ld) == floats);
            CHECK(memcmp(rsclip_vecset_ids(ld), ids, n * sizeof(int64_t)) == 0);
            CHECK(rsclip_vecset_add(ld, 1, ids, vecs) == RSCLIP_ERR_INVALID_ARG); /* read-only */
            fctx fc = {vecs, dim};
            float q[40];
            int diff = 0;
            for (int it = 0; it < 10; it++) {
                st_unit_vectors(&r, 1, dim, q);
                rsclip_search_params sp = rsclip_search_default_params();
                sp.k = 15;
                sp.fetch = fetch_rows;
                sp.fetch_user = &fc;
                sp.mode = it % 2 ? RSCLIP_SEARCH_QUANT : RSCLIP_SEARCH_AUTO;
                rsclip_vecset_hit h1[15], h2[15];
                int n1, n2;
                CHECK_OK(rsclip_vecset_search(vs, q, &sp, h1, &n1));
                CHECK_OK(rsclip_vecset_search(ld, q, &sp, h2, &n2));
                diff += n1 != n2 || memcmp(h1, h2, (size_t)n1 * sizeof(rsclip_vecset_hit)) != 0;
                st_scored o[15];
                size_t no = st_oracle(vecs, ids, n, dim, q, NULL, 0, 0, NULL, NULL, 15, o);
                diff += st_compare(h2, n2, o, no) != 0;
                float *a1 = malloc(n * sizeof(float)), *a2 = malloc(n * sizeof(float));
                CHECK_OK(rsclip_vecset_score_all(vs, q, &sp, a1));
                CHECK_OK(rsclip_vecset_score_all(ld, q, &sp, a2));
                diff += memcmp(a1, a2, n * sizeof(float)) != 0;
                free(a1);
                free(a2);
            }
            CHECK(diff == 0);
            /* a set with floats needs no fetch callback after loading */
            if (floats) {
                rsclip_search_params sp = rsclip_search_default_params();
                sp.fetch = fetch_none;
                rsclip_vecset_hit h[10];
                int nh;
                CHECK_OK(rsclip_vecset_search(ld, q, &sp, h, &nh));
                CHECK(nh == 10);
            }
            rsclip_vecset_free(ld);
        }
        rsclip_vecset_free(vs);
    }

    /* an empty set round-trips */
    {
        rsclip_vecset *vs, *ld = NULL;
        char pe[300];
        path_of(pe, sizeof pe, "empty.rsvec");
        REQUIRE(rsclip_vecset_new(dim, NULL, &vs) == RSCLIP_OK);
        CHECK_OK(rsclip_vecset_finalize(vs));
        CHECK_OK(rsclip_vecset_save(vs, pe, 1));
        CHECK_OK(rsclip_vecset_load(pe, &ld));
        CHECK(ld && rsclip_vecset_count(ld) == 0);
        rsclip_vecset_free(ld);
        ld = NULL;
        CHECK_OK(rsclip_vecset_read(pe, &ld));
        CHECK(ld && rsclip_vecset_count(ld) == 0);
        rsclip_vecset_free(ld);
        rsclip_vecset_free(vs);
        unlink(pe);
    }

    /* hostile files, derived from a valid one */
    size_t sz;
    unsigned char *good = slurp(p1, &sz);
    unsigned char *b = malloc(sz + 4096);
    CHECK(load_status(good, sz) == RSCLIP_OK);
    /* the layout the format promises, computed here */
    const lay L = layout_of(n);
    enum { IDS, SC, SC4, CODES, CODES4 };
    CHECK(sz == L.size);
    /* the checksums the format promises, computed here */
    memcpy(b, good, sz);
    fix_blocks(b, &L);
    CHECK(memcmp(b, good, sz) == 0);
    /* truncated anywhere */
    size_t cuts[] = {0,   1,    7,         64,           127,           128,    191,
                     192, 1000, L.off[SC], L.off[CODES], L.off[CODES4], L.sums, sz - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        CHECK(load_status(good, cuts[i]) == RSCLIP_ERR_FORMAT);
    /* trailing junk */
    memcpy(b, good, sz);
    memset(b + sz, 0, 64);
    CHECK(load_status(b, sz + 64) == RSCLIP_ERR_FORMAT);
    /* wrong magic */
    memcpy(b, good, sz);
    b[0] = 'X';
    CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
    /* newer version (checksum fixed so that the version is what is judged) */
    memcpy(b, good, sz);
    put32(b, 8, 3);
    fix_checksum(b);
    CHECK(load_status(b, sz) == RSCLIP_ERR_UNSUPPORTED);
    /* version 1 (no block checksums): refused, so that old caches are rebuilt */
    memcpy(b, good, sz);
    put32(b, 8, 1);
    fix_checksum(b);
    CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
    CHECK(strstr(rsclip_last_error(), "older") != NULL);
    /* any header byte after the version flipped without fixing the checksum */
    for (int i = 12; i < HDR; i += 5) {
        memcpy(b, good, sz);
        b[i] ^= 0x40;
        CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
    }
    /* counts that overflow the file, with a valid checksum */
    uint64_t counts[] = {n + 1,          n * 2,     (uint64_t)UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                         UINT64_MAX / 8, UINT64_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        memcpy(b, good, sz);
        put64(b, 24, counts[i]);
        fix_checksum(b);
        CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
    }
    /* a smaller count with the file size in the header consistent but the file longer */
    memcpy(b, good, sz);
    put64(b, 24, n - 1);
    fix_checksum(b);
    CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
    /* dim / stride / offsets / flags / file size / block size disagreeing with the layout */
    struct {
        size_t off;
        int is64;
        uint64_t v;
    } edits[] = {{16, 0, 0},
                 {16, 0, 129},
                 {16, 0, 1u << 20},
                 {20, 0, 64},
                 {20, 0, 40},
                 {48, 1, 192 + 64},
                 {56, 1, 0},
                 {64, 1, L.off[CODES] + 64},
                 {72, 1, L.off[CODES]},
                 {80, 1, sz + 1},
                 {40, 0, 1},
                 {40, 0, 4},
                 {44, 0, 2},
                 {12, 0, 128},
                 {96, 1, 1},
                 {104, 1, L.off[CODES4] + 64},
                 {112, 1, L.sums + 64},
                 {112, 1, 0},
                 {120, 0, 4096},
                 {120, 0, 0},
                 {124, 0, 12345},
                 {128, 1, 1},
                 {176, 1, 1},
                 {88, 1, 0x7ff8000000000000ull}};
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, good, sz);
        if (edits[i].is64)
            put64(b, edits[i].off, edits[i].v);
        else
            put32(b, edits[i].off, (uint32_t)edits[i].v);
        fix_checksum(b);
        int rc = load_status(b, sz);
        if (rc == RSCLIP_OK) fprintf(stderr, "edit %zu accepted\n", i);
        CHECK(rc == RSCLIP_ERR_FORMAT || rc == RSCLIP_ERR_UNSUPPORTED);
    }
    /* content, with every checksum made to fit: ids out of order, a NaN / negative / infinite
     * scale */
    memcpy(b, good, sz);
    put64(b, L.off[IDS] + 8 * 100, 10 * 99);
    fix_blocks(b, &L);
    CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
    CHECK(strstr(rsclip_last_error(), "ascending") != NULL);
    float badf[3] = {NAN, -1.0f, INFINITY};
    for (int i = 0; i < 6; i++) {
        memcpy(b, good, sz);
        memcpy(b + L.off[i < 3 ? SC : SC4] + 4 * 17, &badf[i % 3], 4);
        fix_blocks(b, &L);
        CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
        CHECK(strstr(rsclip_last_error(), "bad scale") != NULL);
    }
    /* random code bytes with the checksums made to fit are fine (any byte is a valid code) */
    memcpy(b, good, sz);
    for (size_t i = L.off[CODES]; i < L.sums; i += 3) b[i] = (unsigned char)st_next(&r);
    fix_blocks(b, &L);
    CHECK(load_status(b, sz) == RSCLIP_OK);

    /* tampering: one bit anywhere in a section, or in the checksum table, is found. Ids, scales
     * and the table at load; codes by the scan that reads them (-1000: load_status's "accepted at
     * load, refused when read"). Offsets: first, middle and last byte of each section. */
    for (int s = 0; s < 5; s++)
        for (int w = 0; w < 3; w++) {
            size_t at = L.off[s] + (w == 0 ? 0 : w == 1 ? L.len[s] / 2 : L.len[s] - 1);
            memcpy(b, good, sz);
            b[at] ^= 0x01;
            int rc = load_status(b, sz);
            if (rc != (s >= CODES ? -1000 : RSCLIP_ERR_FORMAT))
                fprintf(stderr, "tamper at section %d byte %zu: %d\n", s, at, rc);
            CHECK(rc == (s >= CODES ? -1000 : RSCLIP_ERR_FORMAT));
        }
    for (size_t at = L.sums; at < sz; at += 8 * (L.nblk / 3) + 1) {
        memcpy(b, good, sz);
        b[at] ^= 0x80;
        CHECK(load_status(b, sz) == RSCLIP_ERR_FORMAT);
        CHECK(strstr(rsclip_last_error(), "checksum table") != NULL);
    }
    /* padding between sections is not data: changing it is harmless */
    int n_pad = 0;
    for (int s = 0; s < 5; s++) {
        size_t end = L.off[s] + L.len[s], next = s < 4 ? L.off[s + 1] : L.sums;
        if (next == end) continue;
        memcpy(b, good, sz);
        b[end] = 0x55;
        CHECK(load_status(b, sz) == RSCLIP_OK);
        n_pad++;
    }
    CHECK(n_pad > 0);
    /* a damaged int8 code block is found by the search that reads it: only the blocks of the
     * candidates are read, so damage elsewhere goes unnoticed until a scan reads it */
    {
        char pt[300];
        path_of(pt, sizeof pt, "tampered.rsvec");
        memcpy(b, good, sz);
        size_t row = 4321;
        b[L.off[CODES] + row * 128 + 5] ^= 0x10;
        spit(pt, b, sz);
        rsclip_vecset *vs = NULL;
        CHECK_OK(rsclip_vecset_load(pt, &vs));
        REQUIRE(vs);
        CHECK(!rsclip_vecset_damaged(vs));
        fctx fc = {vecs, dim};
        rsclip_search_params sp = rsclip_search_default_params();
        sp.fetch = fetch_rows;
        sp.fetch_user = &fc;
        sp.mode = RSCLIP_SEARCH_QUANT;
        sp.n_prefilter = -1; /* the int8 codes are scanned in full */
        rsclip_vecset_hit h[10];
        int nh = -1;
        CHECK(rsclip_vecset_search(vs, vecs + row * dim, &sp, h, &nh) == RSCLIP_ERR_FORMAT);
        CHECK(strstr(rsclip_last_error(),
                     "tampered.rsvec: vector cache damaged: the codes block") != NULL);
        CHECK(rsclip_vecset_damaged(vs));
        /* the next search fails at once, whatever it reads */
        CHECK(rsclip_vecset_search(vs, vecs + row * dim, &sp, h, &nh) == RSCLIP_ERR_FORMAT);
        rsclip_vecset_free(vs);
        /* a search restricted to rows far from the damage does not read it */
        CHECK_OK(rsclip_vecset_load(pt, &vs));
        int64_t allow[300];
        for (int i = 0; i < 300; i++) allow[i] = 10 * (int64_t)i;
        sp.allow_ids = allow;
        sp.n_allow = 300;
        sp.n_candidates = 20;
        CHECK_OK(rsclip_vecset_search(vs, vecs, &sp, h, &nh));
        CHECK(nh == 10 && h[0].id == 0 && !rsclip_vecset_damaged(vs));
        CHECK(rsclip_vecset_verify(vs) == RSCLIP_ERR_FORMAT && rsclip_vecset_damaged(vs));
        rsclip_vecset_free(vs);
        /* a damaged int4 block is found by the first pass over the int4 codes */
        memcpy(b, good, sz);
        b[L.off[CODES4] + row * 64 + 3] ^= 0x02;
        spit(pt, b, sz);
        CHECK_OK(rsclip_vecset_load(pt, &vs));
        sp.allow_ids = NULL;
        sp.n_allow = 0;
        sp.n_candidates = 32;
        sp.n_prefilter = 64;
        CHECK(rsclip_vecset_search(vs, vecs, &sp, h, &nh) == RSCLIP_ERR_FORMAT);
        CHECK(strstr(rsclip_last_error(), "int4 codes block") != NULL);
        CHECK(rsclip_vecset_damaged(vs));
        rsclip_vecset_free(vs);
        /* the undamaged file gives the same int4-pass search without complaint */
        spit(pt, good, sz);
        CHECK_OK(rsclip_vecset_load(pt, &vs));
        CHECK_OK(rsclip_vecset_search(vs, vecs, &sp, h, &nh));
        CHECK(nh == 10 && h[0].id == 0 && !rsclip_vecset_damaged(vs));
        rsclip_vecset_free(vs);
        unlink(pt);
    }
    /* missing file, a directory */
    rsclip_vecset *vs = NULL;
    char pm[300];
    path_of(pm, sizeof pm, "missing.rsvec");
    CHECK(rsclip_vecset_load(pm, &vs) == RSCLIP_ERR_NOT_FOUND && vs == NULL);
    CHECK(rsclip_vecset_read(pm, &vs) == RSCLIP_ERR_NOT_FOUND && vs == NULL);
    CHECK(rsclip_vecset_load(g_dir, &vs) != RSCLIP_OK && vs == NULL);
    CHECK(rsclip_vecset_load(NULL, &vs) == RSCLIP_ERR_INVALID_ARG);
    /* save into a folder that does not exist */
    REQUIRE(rsclip_vecset_new(dim, NULL, &vs) == RSCLIP_OK);
    CHECK_OK(rsclip_vecset_finalize(vs));
    CHECK(rsclip_vecset_save(vs, "/nonexistent-dir/x.rsvec", 0) == RSCLIP_ERR_IO);
    rsclip_vecset_free(vs);

    test_foreign_target(dim);

    free(good);
    free(b);
    free(vecs);
    free(ids);
    char ph[300];
    path_of(ph, sizeof ph, "hostile.rsvec");
    unlink(ph);
    unlink(p1);
    unlink(p2);
    rmdir(g_dir);
    return tu_finish("test_search_cache");
}
