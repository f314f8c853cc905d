/* Readers: tiles by id, spatial queries (R-tree, then exact geometry), the bulk embedding load and
 * the fetch of selected embeddings. */
#include "base/base.h"
#include "index/index_internal.h"
#include "status/status_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int host_is_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* dim little-endian float32 values from src into dst. */
static void copy_vec(float *dst, const void *src, size_t dim) {
    if (host_is_le()) {
        memcpy(dst, src, dim * 4);
        return;
    }
    const uint8_t *s = src;
    for (size_t k = 0; k < dim; k++) {
        uint8_t b[4] = {s[4 * k + 3], s[4 * k + 2], s[4 * k + 1], s[4 * k]};
        memcpy(dst + k, b, 4);
    }
}

/* Parse a tiles.geom blob: exterior ring (new array) and envelope. */
static int tile_geom(rsclip_index *idx, int64_t id, sqlite3_stmt *st, int col, double **xy,
                     size_t *n, double env[4]) {
    const uint8_t *b = sqlite3_column_blob(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    idx_gpkg_geom g;
    *xy = NULL;
    *n = 0;
    if (rsclip__idx_gpkg_parse(b, len, &g) != 0 || g.empty || !g.has_env)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: tile %lld: footprint is not a valid geometry",
                             idx->path, (long long)id);
    int r = rsclip__idx_wkb_polygon_ring(g.wkb, g.wkb_len, xy, n);
    if (r == -2) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    if (r != 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: tile %lld: footprint is not a 2D polygon",
                             idx->path, (long long)id);
    env[0] = g.env[0]; /* minx */
    env[1] = g.env[2]; /* miny */
    env[2] = g.env[1]; /* maxx */
    env[3] = g.env[3]; /* maxy */
    return RSCLIP_OK;
}

/* The window of a stored tile must lie inside its scene's grid: rows come from a file that GIS
 * tools (or anyone) may have edited, and callers index memory with these numbers. */
int rsclip__idx_check_window(rsclip_index *idx, int64_t id, const rsclip_tile_window *w,
                             int64_t width, int64_t height) {
    if (w->xoff < 0 || w->yoff < 0 || w->xsize < 1 || w->ysize < 1 ||
        (int64_t)w->xoff + w->xsize > width || (int64_t)w->yoff + w->ysize > height)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: tile %lld: window %d,%d %dx%d lies outside its %lldx%lld scene",
                             idx->path, (long long)id, w->xoff, w->yoff, w->xsize, w->ysize,
                             (long long)width, (long long)height);
    return RSCLIP_OK;
}

int rsclip__idx_column_window(rsclip_index *idx, int64_t id, sqlite3_stmt *st, int col,
                              rsclip_tile_window *w) {
    int64_t v[4];
    for (int k = 0; k < 4; k++) {
        v[k] = sqlite3_column_int64(st, col + k);
        if (v[k] < INT_MIN || v[k] > INT_MAX) /* sqlite3_column_int would cut it silently */
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: tile %lld: window value %lld out of range",
                                 idx->path, (long long)id, (long long)v[k]);
    }
    *w = (rsclip_tile_window){(int)v[0], (int)v[1], (int)v[2], (int)v[3]};
    return RSCLIP_OK;
}

/* Grid window -> source pixels (schema-1 scenes recorded no source size: native). */
static void source_window(const rsclip_tile_window *w, int64_t width, int64_t height, int64_t src_w,
                          int64_t src_h, double out[4]) {
    double fx = src_w > 0 && width > 0 ? (double)src_w / (double)width : 1.0;
    double fy = src_h > 0 && height > 0 ? (double)src_h / (double)height : 1.0;
    out[0] = w->xoff * fx;
    out[1] = w->yoff * fy;
    out[2] = w->xsize * fx;
    out[3] = w->ysize * fy;
}

int rsclip_index_get_tile(rsclip_index *idx, int64_t tile_id, rsclip_tile_info **out) {
    if (!idx || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_get_tile: NULL argument");
    *out = NULL;
    sqlite3_stmt *st;
    int rc = rsclip__idx_cached(
        idx, IDX_ST_GET_TILE,
        "SELECT t.scene_id, t.xoff, t.yoff, t.xsize, t.ysize, t.valid_fraction, "
        "t.lon, t.lat, t.ul_x, t.ul_y, t.ur_x, t.ur_y, t.lr_x, t.lr_y, t.ll_x, "
        "t.ll_y, t.geom, s.width, s.height, s.src_width, s.src_height FROM tiles t "
        "JOIN scenes s ON s.id = t.scene_id WHERE t.fid = ?1",
        &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, tile_id);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        rc = r == SQLITE_DONE ? rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no tile with id %lld",
                                              idx->path, (long long)tile_id)
                              : rsclip__idx_db_error(idx, "reading a tile");
        sqlite3_reset(st);
        return rc;
    }
    rsclip_tile_window w;
    int wrc = rsclip__idx_column_window(idx, tile_id, st, 1, &w);
    if (wrc) {
        sqlite3_reset(st);
        return wrc;
    }
    int64_t width = sqlite3_column_int64(st, 17), height = sqlite3_column_int64(st, 18);
    double *xy = NULL, env[4] = {NAN, NAN, NAN, NAN};
    size_t np = 0;
    int has_geom = sqlite3_column_type(st, 16) != SQLITE_NULL;
    rc = rsclip__idx_check_window(idx, tile_id, &w, width, height);
    if (!rc && has_geom) rc = tile_geom(idx, tile_id, st, 16, &xy, &np, env);
    if (rc) {
        sqlite3_reset(st);
        return rc;
    }
    rsclip_tile_info *t = rsclip__calloc(1, sizeof *t + np * 2 * sizeof(double));
    if (!t) {
        free(xy);
        sqlite3_reset(st);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    }
    t->id = tile_id;
    t->scene_id = sqlite3_column_int64(st, 0);
    t->window = w;
    source_window(&w, width, height, sqlite3_column_int64(st, 19), sqlite3_column_int64(st, 20),
                  t->src_window);
    t->valid_fraction = sqlite3_column_double(st, 5);
    t->has_lonlat = has_geom && sqlite3_column_type(st, 6) != SQLITE_NULL &&
                    sqlite3_column_type(st, 7) != SQLITE_NULL;
    t->lon = t->has_lonlat ? sqlite3_column_double(st, 6) : NAN;
    t->lat = t->has_lonlat ? sqlite3_column_double(st, 7) : NAN;
    for (int k = 0; k < 8; k++) t->corners[k] = sqlite3_column_double(st, 8 + k);
    memcpy(t->bbox, env, sizeof env);
    t->n_footprint = np;
    t->footprint = np ? (double *)(t + 1) : NULL;
    if (np) memcpy(t->footprint, xy, np * 2 * sizeof(double));
    free(xy);
    sqlite3_reset(st);
    *out = t;
    return RSCLIP_OK;
}

typedef struct cand {
    int64_t id;
    double key;
} cand;

static int cand_by_key(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* R-tree candidates meeting the box, then the exact test on each footprint: mode 0 = envelope
 * meets box, 1 = polygon meets box, 2 = polygon contains the point (box[0], box[1]). Results in
 * *ids: id order for modes 0/1, nearest centre first for mode 2. */
static int spatial_impl(rsclip_index *idx, const double box[4], int mode, int64_t **ids,
                        size_t *n) {
    sqlite3_stmt *st;
    int rc =
        rsclip__idx_prepare(idx,
                            "SELECT t.fid, t.lon, t.lat, t.geom FROM rtree_tiles_geom r "
                            "JOIN tiles t ON t.fid = r.id WHERE r.maxx >= ?1 AND r.minx <= ?3 AND "
                            "r.maxy >= ?2 AND r.miny <= ?4 ORDER BY r.id",
                            &st);
    if (rc) return rc;
    for (int k = 0; k < 4; k++) sqlite3_bind_double(st, k + 1, box[k]);
    cand *a = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        double *xy, env[4];
        size_t np;
        if ((rc = tile_geom(idx, id, st, 3, &xy, &np, env))) break;
        int keep;
        /* the R-tree stores float32 boxes rounded outwards: re-test with the exact envelope */
        if (env[2] < box[0] || env[0] > box[2] || env[3] < box[1] || env[1] > box[3])
            keep = 0;
        else if (mode == 0)
            keep = 1;
        else if (mode == 1)
            keep = rsclip__idx_ring_meets_box(xy, np, box);
        else
            keep = rsclip__idx_ring_contains(xy, np, box[0], box[1]);
        free(xy);
        if (!keep) continue;
        if (cnt == cap && (rc = rsclip__idx_grow(idx, &a, &cap, sizeof *a, 64))) break;
        double dx = sqlite3_column_double(st, 1) - box[0],
               dy = sqlite3_column_double(st, 2) - box[1];
        a[cnt].id = id;
        a[cnt].key = mode == 2 ? dx * dx + dy * dy : 0.0;
        cnt++;
    }
    if (!rc && r != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "querying the R-tree");
    sqlite3_finalize(st);
    if (!rc && cnt > 0) {
        if (mode == 2) qsort(a, cnt, sizeof *a, cand_by_key);
        *ids = rsclip__malloc(cnt * sizeof **ids);
        if (!*ids) rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
        for (size_t i = 0; !rc && i < cnt; i++) (*ids)[i] = a[i].id;
        if (!rc) *n = cnt;
    }
    free(a);
    return rc;
}

int rsclip_index_tiles_at(rsclip_index *idx, double lon, double lat, int64_t **ids, size_t *n) {
    if (!idx || !ids || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_tiles_at: NULL argument");
    *ids = NULL;
    *n = 0;
    if (!isfinite(lon) || !isfinite(lat))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tiles_at: coordinates not finite",
                             idx->path);
    const double box[4] = {lon, lat, lon, lat};
    int rc = rsclip__idx_begin_read(idx);
    if (rc) return rc;
    return rsclip__idx_end(idx, spatial_impl(idx, box, 2, ids, n));
}

int rsclip_index_tiles_in_bbox(rsclip_index *idx, const double bbox[4], int exact, int64_t **ids,
                               size_t *n) {
    if (!idx || !bbox || !ids || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_tiles_in_bbox: NULL argument");
    *ids = NULL;
    *n = 0;
    if (!(bbox[0] <= bbox[2] && bbox[1] <= bbox[3]))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: bbox must be min lon, min lat, max lon, max lat", idx->path);
    int rc = rsclip__idx_begin_read(idx);
    if (rc) return rc;
    return rsclip__idx_end(idx, spatial_impl(idx, bbox, exact ? 1 : 0, ids, n));
}

/* ---- embeddings ------------------------------------------------------------------------------ */

/* The bulk arrays are large (300 MB for 100k x 768): they are mapped directly, with transparent
 * huge pages requested, so that first touching them costs a fault per 2 MiB rather than per 4 KiB
 * (in VMs a 4 KiB fault can cost more than the SQLite scan itself). */
typedef struct emb_priv {
    rsclip_embeddings pub;
    size_t vec_bytes, id_bytes; /* mapped sizes */
} emb_priv;

void rsclip_embeddings_free(rsclip_embeddings *e) {
    if (!e) return;
    emb_priv *ep = (emb_priv *)e;
    rsclip__map_free(e->vecs, ep->vec_bytes);
    rsclip__map_free(e->ids, ep->id_bytes);
    free(ep);
}

/* Make room for want rows (want >= 1). */
static int grow(rsclip_index *idx, emb_priv *ep, size_t *cap, size_t want) {
    rsclip_embeddings *e = &ep->pub;
    size_t vbytes, ibytes, vcount;
    if (rsclip__mul_size(want, (size_t)e->dim, &vcount) ||
        rsclip__mul_size(vcount, sizeof(float), &vbytes) ||
        rsclip__mul_size(want, sizeof(int64_t), &ibytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: %zu embeddings do not fit in memory", idx->path,
                             want);
    float *v = rsclip__map_grow(e->vecs, ep->vec_bytes, vbytes);
    if (!v)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory loading %zu embeddings",
                             idx->path, want);
    e->vecs = v;
    ep->vec_bytes = vbytes;
    int64_t *ids = rsclip__map_grow(e->ids, ep->id_bytes, ibytes);
    if (!ids)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory loading %zu embeddings",
                             idx->path, want);
    e->ids = ids;
    ep->id_bytes = ibytes;
    *cap = want;
    return RSCLIP_OK;
}

static int load_impl(rsclip_index *idx, emb_priv *ep) {
    rsclip_embeddings *e = &ep->pub;
    int64_t dim = 0, hint = 0;
    int rc = rsclip__idx_meta_int(idx, "embed_dim", &dim);
    if (rc) return rc;
    if (dim <= 0) return RSCLIP_OK;
    if (dim > (1 << 20))
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: embed_dim %lld is not plausible", idx->path,
                             (long long)dim);
    e->dim = (int)dim;
    /* rsclip_meta n_embeddings is kept by triggers in the same transactions: an exact size without
     * counting the (large) embeddings table */
    sqlite3_stmt *st;
    if ((rc = rsclip__idx_meta_int(idx, "n_embeddings", &hint))) return rc;
    /* a damaged or hostile count cannot make us map more rows than the files could hold */
    uint64_t file_bytes = 0;
    struct stat sb;
    if (stat(idx->path, &sb) == 0) file_bytes += (uint64_t)sb.st_size;
    size_t plen = strlen(idx->path);
    char *wal = rsclip__malloc(plen + 5);
    if (wal) {
        memcpy(wal, idx->path, plen);
        memcpy(wal + plen, "-wal", 5);
        if (stat(wal, &sb) == 0) file_bytes += (uint64_t)sb.st_size;
        free(wal);
    }
    uint64_t max_rows = file_bytes / ((uint64_t)dim * 4) + 1;
    if (hint < 0 || (uint64_t)hint > max_rows) hint = (int64_t)max_rows;
    size_t cap = 0;
    if ((rc = grow(idx, ep, &cap, hint > 0 ? (size_t)hint : 16))) return rc;
    if ((rc =
             rsclip__idx_prepare(idx, "SELECT tile_id, vec FROM embeddings ORDER BY tile_id", &st)))
        return rc;
    const size_t row_bytes = (size_t)dim * 4;
    size_t n = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (len != row_bytes || !b) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT,
                               "%s: embedding of tile %lld has %zu bytes, expected %zu", idx->path,
                               (long long)sqlite3_column_int64(st, 0), len, row_bytes);
            break;
        }
        if (n == cap && (rc = grow(idx, ep, &cap, cap * 2))) break;
        e->ids[n] = sqlite3_column_int64(st, 0);
        copy_vec(e->vecs + n * (size_t)dim, b, (size_t)dim);
        n++;
    }
    if (!rc && r != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "reading embeddings");
    sqlite3_finalize(st);
    e->n = n;
    if (!rc && n < cap && n > 0) {
        size_t dummy;
        rc = grow(idx, ep, &dummy, n); /* give back the slack */
    }
    return rc;
}

int rsclip_index_load_embeddings(rsclip_index *idx, rsclip_embeddings **out) {
    if (!idx || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_load_embeddings: NULL argument");
    *out = NULL;
    emb_priv *ep = rsclip__calloc(1, sizeof *ep);
    if (!ep) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    int rc = rsclip__idx_begin_read(idx);
    if (!rc) rc = rsclip__idx_end(idx, load_impl(idx, ep));
    if (rc) {
        rsclip_embeddings_free(&ep->pub);
        return rc;
    }
    *out = &ep->pub;
    return RSCLIP_OK;
}

static int get_vecs_impl(rsclip_index *idx, const int64_t *ids, size_t n, float *out) {
    int64_t dim = 0;
    int rc = rsclip__idx_meta_int(idx, "embed_dim", &dim);
    if (rc) return rc;
    if (dim <= 0)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: the index holds no embeddings", idx->path);
    sqlite3_stmt *st;
    for (size_t i = 0; i < n; i++) {
        if ((rc = rsclip__idx_cached(idx, IDX_ST_GET_VEC,
                                     "SELECT vec FROM embeddings WHERE tile_id = ?1", &st)))
            return rc;
        sqlite3_bind_int64(st, 1, ids[i]);
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            rc = rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no embedding for tile %lld", idx->path,
                               (long long)ids[i]);
        else if (r != SQLITE_ROW)
            rc = rsclip__idx_db_error(idx, "reading an embedding");
        else if ((size_t)sqlite3_column_bytes(st, 0) != (size_t)dim * 4)
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: embedding of tile %lld has %d bytes",
                               idx->path, (long long)ids[i], sqlite3_column_bytes(st, 0));
        else
            copy_vec(out + i * (size_t)dim, sqlite3_column_blob(st, 0), (size_t)dim);
        sqlite3_reset(st);
        if (rc) return rc;
    }
    return RSCLIP_OK;
}

int rsclip_index_get_embeddings(rsclip_index *idx, const int64_t *tile_ids, size_t n, float *out) {
    if (!idx || (n > 0 && (!tile_ids || !out)))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_get_embeddings: NULL argument");
    if (n == 0) return RSCLIP_OK;
    int rc = rsclip__idx_begin_read(idx);
    if (rc) return rc;
    return rsclip__idx_end(idx, get_vecs_impl(idx, tile_ids, n, out));
}
