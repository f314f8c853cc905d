/* GeoPackage geometry blobs (GeoPackage 1.3 clause 2.1.3): encoding of the tile footprints, the
 * header parser behind the ST_* SQL functions that the R-tree triggers call, and the small planar
 * predicates used by the spatial queries. Blobs come from files other programs may have written,
 * so every read is bounds-checked. */
#include "base/base.h"
#include "index/index_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int host_is_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static uint32_t rd_u32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static double rd_f64(const uint8_t *p, int le) {
    uint8_t t[8];
    if (le == host_is_le()) {
        memcpy(t, p, 8);
    } else {
        for (int i = 0; i < 8; i++) t[i] = p[7 - i];
    }
    double d;
    memcpy(&d, t, 8);
    return d;
}

static void wr_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void wr_f64le(uint8_t *p, double d) {
    uint8_t t[8];
    memcpy(t, &d, 8);
    if (host_is_le()) {
        memcpy(p, t, 8);
    } else {
        for (int i = 0; i < 8; i++) p[i] = t[7 - i];
    }
}

/* WKB geometry type -> base type (1..7) and coordinate count (2..4); ISO (1000/2000/3000) and
 * EWKB-style high-bit flags are both accepted. -1 if unknown. */
static int wkb_type(uint32_t t, int *ncoord) {
    int z = 0, m = 0;
    if (t & 0x80000000u) z = 1;
    if (t & 0x40000000u) m = 1;
    t &= 0x0fffffffu;
    if (t >= 3000) {
        z = m = 1;
        t -= 3000;
    } else if (t >= 2000) {
        m = 1;
        t -= 2000;
    } else if (t >= 1000) {
        z = 1;
        t -= 1000;
    }
    if (t < 1 || t > 7) return -1;
    *ncoord = 2 + z + m;
    return (int)t;
}

typedef struct wkb_env {
    double minx, maxx, miny, maxy;
    size_t npts;
} wkb_env;

static void env_add(wkb_env *e, double x, double y) {
    if (isnan(x) || isnan(y)) return; /* NaN coordinates mark empty points */
    if (e->npts == 0 || x < e->minx) e->minx = x;
    if (e->npts == 0 || x > e->maxx) e->maxx = x;
    if (e->npts == 0 || y < e->miny) e->miny = y;
    if (e->npts == 0 || y > e->maxy) e->maxy = y;
    e->npts++;
}

/* Walk one WKB geometry at p[0..len), accumulating its envelope; returns bytes consumed or 0 on
 * malformed input. depth bounds the recursion of collections. */
static size_t wkb_walk(const uint8_t *p, size_t len, wkb_env *e, int depth) {
    if (depth > 32 || len < 5 || p[0] > 1) return 0;
    int le = p[0] == 1, nc;
    int type = wkb_type(rd_u32(p + 1, le), &nc);
    if (type < 0) return 0;
    size_t off = 5, psz = (size_t)nc * 8;
    if (type == 1) {
        if (len - off < psz) return 0;
        env_add(e, rd_f64(p + off, le), rd_f64(p + off + 8, le));
        return off + psz;
    }
    if (len - off < 4) return 0;
    uint32_t cnt = rd_u32(p + off, le);
    off += 4;
    if (type == 2 || type == 3) {
        uint32_t nrings = type == 3 ? cnt : 1;
        for (uint32_t r = 0; r < nrings; r++) {
            uint32_t np = cnt;
            if (type == 3) {
                if (len - off < 4) return 0;
                np = rd_u32(p + off, le);
                off += 4;
            }
            if ((len - off) / psz < np) return 0;
            for (uint32_t i = 0; i < np; i++, off += psz)
                env_add(e, rd_f64(p + off, le), rd_f64(p + off + 8, le));
        }
        return off;
    }
    for (uint32_t i = 0; i < cnt; i++) { /* multi* and collections */
        size_t used = wkb_walk(p + off, len - off, e, depth + 1);
        if (used == 0) return 0;
        off += used;
    }
    return off;
}

int rsclip__idx_gpkg_parse(const uint8_t *b, size_t n, idx_gpkg_geom *g) {
    static const int env_doubles[5] = {0, 4, 6, 6, 8};
    memset(g, 0, sizeof *g);
    if (!b || n < 8 || b[0] != 'G' || b[1] != 'P' || b[2] != 0) return -1;
    int flags = b[3], le = flags & 1, ei = (flags >> 1) & 7;
    if (flags & 0x20) return -1; /* extended geometry types: not ours */
    if (ei > 4) return -1;
    size_t hdr = 8 + (size_t)env_doubles[ei] * 8;
    if (n < hdr) return -1;
    g->srs_id = (int32_t)rd_u32(b + 4, le);
    g->empty = (flags >> 4) & 1;
    g->wkb = b + hdr;
    g->wkb_len = n - hdr;
    if (ei > 0) {
        /* header order: minx, maxx, miny, maxy */
        for (int i = 0; i < 4; i++) g->env[i] = rd_f64(b + 8 + 8 * i, le);
        g->has_env = !(isnan(g->env[0]) || isnan(g->env[2]));
    }
    if (g->wkb_len > 0) {
        wkb_env e = {0, 0, 0, 0, 0};
        size_t used = wkb_walk(g->wkb, g->wkb_len, &e, 0);
        if (used == 0) return -1;
        if (!g->has_env && !g->empty && e.npts > 0) {
            g->env[0] = e.minx;
            g->env[1] = e.maxx;
            g->env[2] = e.miny;
            g->env[3] = e.maxy;
            g->has_env = 1;
        }
        if (e.npts == 0) g->empty = 1;
    } else if (!g->empty) {
        return -1;
    }
    return 0;
}

/* ST_IsEmpty(geom) and ST_MinX/MaxX/MinY/MaxY(geom), as GeoPackage's Annex F.3 defines them:
 * NULL in, NULL out; a malformed blob is an SQL error (so a trigger never indexes garbage). */
static void st_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const uint8_t *b = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    idx_gpkg_geom g;
    if (rsclip__idx_gpkg_parse(b, n, &g) != 0) {
        sqlite3_result_error(ctx, "invalid GeoPackage geometry blob", -1);
        return;
    }
    intptr_t which = (intptr_t)sqlite3_user_data(ctx);
    if (which < 0) {
        sqlite3_result_int(ctx, g.empty || !g.has_env);
        return;
    }
    if (g.empty || !g.has_env) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_result_double(ctx, g.env[which]);
}

int rsclip__idx_register_gpkg_functions(sqlite3 *db) {
    static const struct {
        const char *name;
        intptr_t which;
    } fn[] = {{"ST_IsEmpty", -1}, {"ST_MinX", 0}, {"ST_MaxX", 1}, {"ST_MinY", 2}, {"ST_MaxY", 3}};
    for (size_t i = 0; i < sizeof fn / sizeof fn[0]; i++) {
        int rc = sqlite3_create_function_v2(db, fn[i].name, 1,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                            (void *)fn[i].which, st_func, NULL, NULL, NULL);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

static int ring_needs_close(const double *xy, size_t n) {
    return !(xy[0] == xy[2 * (n - 1)] && xy[1] == xy[2 * (n - 1) + 1]);
}

size_t rsclip__idx_gpkg_polygon_size(const double *xy, size_t n) {
    size_t np = n + (size_t)ring_needs_close(xy, n);
    return 8 + 32 + 1 + 4 + 4 + 4 + np * 16;
}

size_t rsclip__idx_gpkg_polygon_encode(const double *xy, size_t n, int32_t srs_id, uint8_t *out) {
    int close = ring_needs_close(xy, n);
    double minx = xy[0], maxx = xy[0], miny = xy[1], maxy = xy[1];
    for (size_t i = 1; i < n; i++) {
        if (xy[2 * i] < minx) minx = xy[2 * i];
        if (xy[2 * i] > maxx) maxx = xy[2 * i];
        if (xy[2 * i + 1] < miny) miny = xy[2 * i + 1];
        if (xy[2 * i + 1] > maxy) maxy = xy[2 * i + 1];
    }
    uint8_t *p = out;
    p[0] = 'G';
    p[1] = 'P';
    p[2] = 0;    /* version 1 */
    p[3] = 0x03; /* little endian, envelope [minx, maxx, miny, maxy], not empty, standard */
    wr_u32le(p + 4, (uint32_t)srs_id);
    wr_f64le(p + 8, minx);
    wr_f64le(p + 16, maxx);
    wr_f64le(p + 24, miny);
    wr_f64le(p + 32, maxy);
    p += 40;
    *p++ = 1; /* WKB little endian */
    wr_u32le(p, 3);
    wr_u32le(p + 4, 1);
    wr_u32le(p + 8, (uint32_t)(n + (size_t)close));
    p += 12;
    for (size_t i = 0; i < n; i++, p += 16) {
        wr_f64le(p, xy[2 * i]);
        wr_f64le(p + 8, xy[2 * i + 1]);
    }
    if (close) {
        wr_f64le(p, xy[0]);
        wr_f64le(p + 8, xy[1]);
        p += 16;
    }
    return (size_t)(p - out);
}

int rsclip__idx_wkb_polygon_ring(const uint8_t *wkb, size_t len, double **xy, size_t *n) {
    *xy = NULL;
    *n = 0;
    if (len < 13 || wkb[0] > 1) return -1;
    int le = wkb[0] == 1, nc;
    if (wkb_type(rd_u32(wkb + 1, le), &nc) != 3 || nc != 2) return -1;
    uint32_t nrings = rd_u32(wkb + 5, le);
    if (nrings < 1) return -1;
    uint32_t np = rd_u32(wkb + 9, le);
    if (np < 3 || (len - 13) / 16 < np) return -1;
    double *out = rsclip__malloc((size_t)np * 2 * sizeof(double));
    if (!out) return -2;
    for (uint32_t i = 0; i < 2 * np; i++) out[i] = rd_f64(wkb + 13 + 8 * (size_t)i, le);
    *xy = out;
    *n = np;
    return 0;
}

int rsclip__idx_ring_contains(const double *xy, size_t n, double x, double y) {
    int in = 0;
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
        double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
        if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

/* Liang-Barsky: does the segment (x0,y0)-(x1,y1) have a part inside the box? */
static int segment_meets_box(double x0, double y0, double x1, double y1, const double b[4]) {
    double t0 = 0.0, t1 = 1.0, dx = x1 - x0, dy = y1 - y0;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {x0 - b[0], b[2] - x0, y0 - b[1], b[3] - y0};
    for (int k = 0; k < 4; k++) {
        if (p[k] == 0.0) {
            if (q[k] < 0.0) return 0;
        } else {
            double t = q[k] / p[k];
            if (p[k] < 0.0) {
                if (t > t1) return 0;
                if (t > t0) t0 = t;
            } else {
                if (t < t0) return 0;
                if (t < t1) t1 = t;
            }
        }
    }
    return 1;
}

int rsclip__idx_ring_meets_box(const double *xy, size_t n, const double box[4]) {
    for (size_t i = 0, j = n - 1; i < n; j = i++)
        if (segment_meets_box(xy[2 * j], xy[2 * j + 1], xy[2 * i], xy[2 * i + 1], box)) return 1;
    /* no edge touches the box: either disjoint or the box lies inside the polygon */
    return rsclip__idx_ring_contains(xy, n, box[0], box[1]);
}
