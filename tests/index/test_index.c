/* Index module: create, write, reopen and read back; incremental scene states; spatial queries
 * against brute force; R-tree contents read with plain SQLite; refusals (future schema, files that
 * are not an index, model mismatch, bad input); verify. */
#include "index_test_util.h"
#include "test_util.h"

#include <sqlite3.h>
#include <sys/stat.h>

#define DIM 32

static const char *fp_a = "0123456789abcdef";
static const char *fp_b = "fedcba9876543210";

static char path_buf[1024];
static const char *tmp_path(const char *dir, const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}

static void sql_exec(const char *path, const char *sql) {
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sql_exec(%s): %s\n", sql, err);
        tu_failures++;
    }
    sqlite3_free(err);
    sqlite3_close(db);
}

/* ---- independent geometry for the brute-force checks ---- */

static void envelope(const double *xy, int n, double env[4]) {
    env[0] = env[2] = xy[0];
    env[1] = env[3] = xy[1];
    for (int i = 1; i < n; i++) {
        env[0] = fmin(env[0], xy[2 * i]);
        env[2] = fmax(env[2], xy[2 * i]);
        env[1] = fmin(env[1], xy[2 * i + 1]);
        env[3] = fmax(env[3], xy[2 * i + 1]);
    }
}

/* Separating axis test: convex polygon vs axis-aligned box. */
static int sat_poly_box(const double *xy, int n, const double b[4]) {
    double env[4];
    envelope(xy, n, env);
    if (env[2] < b[0] || env[0] > b[2] || env[3] < b[1] || env[1] > b[3]) return 0;
    const double bx[4] = {b[0], b[2], b[2], b[0]}, by[4] = {b[1], b[1], b[3], b[3]};
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        double nx = -(xy[2 * j + 1] - xy[2 * i + 1]), ny = xy[2 * j] - xy[2 * i];
        if (nx == 0 && ny == 0) continue;
        double pmin = INFINITY, pmax = -INFINITY, qmin = INFINITY, qmax = -INFINITY;
        for (int k = 0; k < n; k++) {
            double p = nx * xy[2 * k] + ny * xy[2 * k + 1];
            pmin = fmin(pmin, p);
            pmax = fmax(pmax, p);
        }
        for (int k = 0; k < 4; k++) {
            double q = nx * bx[k] + ny * by[k];
            qmin = fmin(qmin, q);
            qmax = fmax(qmax, q);
        }
        if (pmax < qmin || qmax < pmin) return 0;
    }
    return 1;
}

/* Convex polygon (counter-clockwise) contains a point: left of every edge. */
static int convex_contains(const double *xy, int n, double x, double y) {
    int pos = 0, neg = 0;
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        double cr = (xy[2 * j] - xy[2 * i]) * (y - xy[2 * i + 1]) -
                    (xy[2 * j + 1] - xy[2 * i + 1]) * (x - xy[2 * i]);
        if (cr > 0) pos++;
        if (cr < 0) neg++;
    }
    return pos == 0 || neg == 0;
}

/* ---- the scenario ---- */

#define COLS 12
#define ROWS 9
static const double LON0 = 7.0, LAT0 = 46.0;   /* scene 1 */
static const double LON1 = 7.05, LAT1 = 45.96; /* scene 2 overlaps scene 1 */

typedef struct expect_tile {
    int seed, col, row;
    double lon0, lat0;
} expect_tile;

/* The index every reading test below reads: two scenes (one complete, one still indexing) and
 * the tiles the writing test stored, with what each tile must read back as. */
typedef struct written {
    char path[1024];
    rsclip_scene_info s1;
    int64_t sid1, sid2;
    int n1, n_total;
    expect_tile *ex; /* [n_total], in insertion (= id) order */
    double ext[4];   /* the extent of every footprint */
} written;

/* Writing: model binding, batches, refusals of bad records and windows already stored, meta. */
static void write_index(const char *dir, written *w) {
    const char *p = tmp_path(dir, "a.gpkg");
    snprintf(w->path, sizeof w->path, "%s", p);
    const char *path = w->path;
    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK(strcmp(rsclip_index_path(idx), path) == 0);

    /* no model yet: adding tiles is refused, check_model says NOT_FOUND */
    CHECK(rsclip_index_check_model(idx, fp_a, DIM) == RSCLIP_ERR_NOT_FOUND);
    w->s1 = ti_scene("/data/s1.tif", 1000, 111, "c1", COLS, ROWS);
    int64_t sid1 = 0, sid2 = 0;
    int state = -1;
    CHECK_OK(rsclip_index_scene_state(idx, &w->s1, &sid1, &state));
    CHECK(state == RSCLIP_SCENE_NEW && sid1 == 0);
    CHECK_OK(rsclip_index_begin_scene(idx, &w->s1, 0, &sid1, &state));
    CHECK(state == RSCLIP_SCENE_NEW && sid1 > 0);
    CHECK(ti_add_batch(idx, sid1, 1, LON0, LAT0, COLS, 0, 4, DIM) == RSCLIP_ERR_INVALID_ARG);

    CHECK_OK(rsclip_index_bind_model(idx, "tiny", fp_a, DIM, "resize 32 bicubic"));
    CHECK_OK(rsclip_index_bind_model(idx, "tiny-again", fp_a, DIM, NULL)); /* same: OK */
    CHECK(rsclip_index_bind_model(idx, "other", fp_b, DIM, NULL) == RSCLIP_ERR_MISMATCH);
    CHECK(strstr(rsclip_last_error(), path) && strstr(rsclip_last_error(), "tiny") &&
          strstr(rsclip_last_error(), fp_a) && strstr(rsclip_last_error(), fp_b));
    CHECK(rsclip_index_bind_model(idx, "tiny", fp_a, DIM + 1, NULL) == RSCLIP_ERR_MISMATCH);
    CHECK_OK(rsclip_index_check_model(idx, fp_a, DIM));
    CHECK(rsclip_index_check_model(idx, fp_b, DIM) == RSCLIP_ERR_MISMATCH);

    /* scene 1 in batches of 10 (last one short), scene 2 in one batch */
    int n1 = COLS * ROWS;
    for (int first = 0; first < n1; first += 10)
        CHECK_OK(ti_add_batch(idx, sid1, 1, LON0, LAT0, COLS, first,
                              first + 10 <= n1 ? 10 : n1 - first, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid1, 3));
    rsclip_scene_info s2 = ti_scene("/data/s2.tif", 2000, 222, NULL, 8, 8);
    CHECK_OK(rsclip_index_begin_scene(idx, &s2, 0, &sid2, &state));
    CHECK(state == RSCLIP_SCENE_NEW && sid2 != sid1);
    CHECK_OK(ti_add_batch(idx, sid2, 2, LON1, LAT1, 5, 0, 20, DIM));

    /* a window already stored: refused, the whole batch rolled back */
    CHECK(ti_add_batch(idx, sid2, 2, LON1, LAT1, 5, 19, 1, DIM) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "already has the tile window") != NULL);
    /* bad records are refused before anything is written */
    {
        rsclip_tile_record r;
        double xy[2 * TI_NPTS];
        float v[DIM];
        ti_record(3, LON1, LAT1, 7, 7, DIM, &r, xy, v);
        memset(v, 0, sizeof v);
        CHECK(rsclip_index_add_tiles(idx, sid2, 1, &r, v, NULL) == RSCLIP_ERR_INVALID_ARG);
        ti_record(3, LON1, LAT1, 7, 7, DIM, &r, xy, v);
        v[3] = NAN;
        CHECK(rsclip_index_add_tiles(idx, sid2, 1, &r, v, NULL) == RSCLIP_ERR_INVALID_ARG);
        ti_record(3, LON1, LAT1, 7, 7, DIM, &r, xy, v);
        xy[0] = 500000.0; /* projected coordinates by mistake */
        CHECK(rsclip_index_add_tiles(idx, sid2, 1, &r, v, NULL) == RSCLIP_ERR_INVALID_ARG);
        ti_record(3, LON1, LAT1, 7, 7, DIM, &r, xy, v);
        r.n_footprint = 2;
        CHECK(rsclip_index_add_tiles(idx, sid2, 1, &r, v, NULL) == RSCLIP_ERR_INVALID_ARG);
        ti_record(3, LON1, LAT1, 7, 7, DIM, &r, xy, v);
        CHECK(rsclip_index_add_tiles(idx, 999, 1, &r, v, NULL) == RSCLIP_ERR_NOT_FOUND);
        int64_t tid = 0;
        CHECK_OK(rsclip_index_add_tiles(idx, sid2, 1, &r, v, &tid)); /* and it works */
        CHECK(tid > 0);
    }

    /* meta */
    CHECK_OK(rsclip_index_set_meta(idx, "note", "hello"));
    CHECK(rsclip_index_set_meta(idx, "schema_version", "7") == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_index_set_meta(idx, "embed_dim", "7") == RSCLIP_ERR_INVALID_ARG);
    CHECK_OK(rsclip_index_set_meta(idx, "gone", "x"));
    CHECK_OK(rsclip_index_set_meta(idx, "gone", NULL));
    CHECK_OK(rsclip_index_verify(idx));
    rsclip_index_close(idx);

    w->sid1 = sid1;
    w->sid2 = sid2;
    w->n1 = n1;
    w->n_total = n1 + 20 + 1;
    const int n_total = w->n_total;
    expect_tile *ex = calloc((size_t)n_total, sizeof *ex);
    REQUIRE(ex);
    /* expected tiles, in insertion (= id) order */
    for (int t = 0; t < n1; t++) ex[t] = (expect_tile){1, t % COLS, t / COLS, LON0, LAT0};
    for (int t = 0; t < 20; t++) ex[n1 + t] = (expect_tile){2, t % 5, t / 5, LON1, LAT1};
    ex[n1 + 20] = (expect_tile){3, 7, 7, LON1, LAT1};
    double *ext = w->ext;
    ext[0] = ext[1] = INFINITY;
    ext[2] = ext[3] = -INFINITY;
    for (int t = 0; t < n_total; t++) {
        double xy[2 * TI_NPTS], cl, ca, e[4];
        ti_footprint(ex[t].lon0, ex[t].lat0, ex[t].col, ex[t].row, xy, &cl, &ca);
        envelope(xy, TI_NPTS, e);
        ext[0] = fmin(ext[0], e[0]);
        ext[1] = fmin(ext[1], e[1]);
        ext[2] = fmax(ext[2], e[2]);
        ext[3] = fmax(ext[3], e[3]);
    }

    w->ex = ex;
}

/* Meta and the index summary, read back read-only (and writes refused there). */
static void test_read_meta_info(const written *w) {
    const char *path = w->path;
    rsclip_index *idx;
    int state;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    char *v = NULL;
    CHECK_OK(rsclip_index_get_meta(idx, "note", &v));
    CHECK(v && strcmp(v, "hello") == 0);
    rsclip_free(v);
    CHECK(rsclip_index_get_meta(idx, "gone", &v) == RSCLIP_ERR_NOT_FOUND && v == NULL);
    CHECK_OK(rsclip_index_get_meta(idx, "preprocessing", &v));
    CHECK(v && strcmp(v, "resize 32 bicubic") == 0);
    rsclip_free(v);
    CHECK_OK(rsclip_index_get_meta(idx, "format", &v));
    CHECK(v && strcmp(v, "rsclip-index") == 0);
    rsclip_free(v);
    CHECK(rsclip_index_set_meta(idx, "x", "y") == RSCLIP_ERR_INVALID_ARG);
    int64_t dummy;
    CHECK(rsclip_index_begin_scene(idx, &w->s1, 0, &dummy, &state) == RSCLIP_ERR_INVALID_ARG);

    rsclip_index_info info;
    CHECK_OK(rsclip_index_get_info(idx, &info));
    CHECK(info.schema_version == RSCLIP_INDEX_SCHEMA_VERSION);
    CHECK(info.embed_dim == DIM);
    CHECK(strcmp(info.model_id, "tiny") == 0 && strcmp(info.model_fingerprint, fp_a) == 0);
    CHECK(strcmp(info.dtype, "float32") == 0);
    CHECK(strncmp(info.tool_version, "rsclip ", 7) == 0);
    CHECK(info.created_at[0] == '2' && info.updated_at[0] == '2');
    CHECK(info.n_scenes == 2 && info.n_scenes_complete == 1);
    CHECK(info.n_tiles == w->n_total);
    CHECK(info.n_embeddings == w->n_total);

    CHECK(info.has_extent);
    for (int k = 0; k < 4; k++) CHECK(info.extent[k] == w->ext[k]);
    rsclip_index_close(idx);
}

/* Scenes, their tile ids and windows. */
static void test_read_scenes(const written *w) {
    rsclip_index *idx;
    const int64_t sid1 = w->sid1, sid2 = w->sid2;
    const int n1 = w->n1;
    const rsclip_scene_info s1 = w->s1;
    CHECK_OK(rsclip_index_open(w->path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    /* scenes */
    int64_t *sids = NULL;
    size_t ns = 0;
    CHECK_OK(rsclip_index_list_scenes(idx, &sids, &ns));
    CHECK(ns == 2 && sids[0] == sid1 && sids[1] == sid2);
    rsclip_free(sids);
    rsclip_scene_info *si = NULL;
    CHECK_OK(rsclip_index_get_scene(idx, sid1, &si));
    REQUIRE(si);
    CHECK(si->id == sid1 && strcmp(si->path, "/data/s1.tif") == 0 && si->file_size == 1000 &&
          si->mtime_ns == 111 && strcmp(si->checksum, "c1") == 0 && si->epsg == 32632 &&
          strcmp(si->crs_wkt, s1.crs_wkt) == 0 && si->width == COLS * TI_TILE &&
          si->height == ROWS * TI_TILE && strcmp(si->bands, "3,2,1") == 0 &&
          strcmp(si->scaling, s1.scaling) == 0 && si->tiles_planned == n1 &&
          si->status == RSCLIP_SCENE_COMPLETE && si->tiles_stored == n1 && si->tiles_skipped == 3 &&
          si->started_at && si->indexed_at);
    for (int k = 0; k < 6; k++) CHECK(si->geotransform[k] == s1.geotransform[k]);
    rsclip_free(si);
    CHECK_OK(rsclip_index_find_scene(idx, "/data/s2.tif", &si));
    REQUIRE(si);
    CHECK(si->id == sid2 && si->checksum == NULL && si->status == RSCLIP_SCENE_INDEXING &&
          si->tiles_stored == 21 && si->indexed_at == NULL);
    rsclip_free(si);
    CHECK(rsclip_index_find_scene(idx, "/data/none.tif", &si) == RSCLIP_ERR_NOT_FOUND && !si);
    CHECK(rsclip_index_get_scene(idx, 12345, &si) == RSCLIP_ERR_NOT_FOUND);

    /* tile ids by scene */
    int64_t *st_ids = NULL;
    size_t nst = 0;
    rsclip_tile_window *st_w = NULL;
    CHECK_OK(rsclip_index_scene_tiles(idx, sid2, &st_ids, &st_w, &nst));
    CHECK(nst == 21 && st_w);
    for (size_t i = 1; i < nst; i++) CHECK(st_ids[i] > st_ids[i - 1]);
    for (size_t i = 0; i < nst && i < 20 && st_w; i++)
        CHECK(st_w[i].xoff == (int)(i % 5) * TI_TILE && st_w[i].yoff == (int)(i / 5) * TI_TILE);
    rsclip_free(st_ids);
    rsclip_free(st_w);
    CHECK_OK(rsclip_index_scene_tiles(idx, 777, &st_ids, NULL, &nst));
    CHECK(nst == 0 && st_ids == NULL);

    /* windows of scene 2: sorted by (yoff, xoff) */
    rsclip_tile_window *win = NULL;
    size_t nw = 0;
    CHECK_OK(rsclip_index_scene_windows(idx, sid2, &win, &nw));
    CHECK(nw == 21);
    for (size_t i = 1; i < nw; i++)
        CHECK(win[i - 1].yoff < win[i].yoff ||
              (win[i - 1].yoff == win[i].yoff && win[i - 1].xoff < win[i].xoff));
    rsclip_free(win);

    rsclip_index_close(idx);
}

/* Embeddings in bulk and by id, tiles by id: what was written, exactly. */
static void test_read_tiles(const written *w) {
    rsclip_index *idx;
    const int64_t sid1 = w->sid1, sid2 = w->sid2;
    const int n_total = w->n_total;
    const expect_tile *ex = w->ex;
    CHECK_OK(rsclip_index_open(w->path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    /* bulk load: ids ascending, vectors = normalised expectations */
    rsclip_embeddings *emb = NULL;
    CHECK_OK(rsclip_index_load_embeddings(idx, &emb));
    REQUIRE(emb);
    CHECK(emb->n == (size_t)n_total && emb->dim == DIM);
    float want[DIM];
    double maxerr = 0;
    for (size_t i = 0; i < emb->n && i < (size_t)n_total; i++) {
        if (i > 0) CHECK(emb->ids[i] > emb->ids[i - 1]);
        ti_normalised(ex[i].seed, ex[i].col, ex[i].row, DIM, want);
        for (int k = 0; k < DIM; k++)
            maxerr = fmax(maxerr, fabs((double)want[k] - emb->vecs[i * DIM + k]));
    }
    CHECK(maxerr < 1e-6);

    /* tile by id + selected embeddings */
    for (size_t i = 0; i < emb->n; i += 17) {
        rsclip_tile_info *t = NULL;
        CHECK_OK(rsclip_index_get_tile(idx, emb->ids[i], &t));
        if (!t) continue;
        rsclip_tile_record r;
        double xy[2 * TI_NPTS];
        float vv[DIM];
        ti_record(ex[i].seed, ex[i].lon0, ex[i].lat0, ex[i].col, ex[i].row, DIM, &r, xy, vv);
        CHECK(t->id == emb->ids[i]);
        CHECK(t->scene_id == (ex[i].seed == 1 ? sid1 : sid2));
        CHECK(t->window.xoff == r.window.xoff && t->window.yoff == r.window.yoff &&
              t->window.xsize == r.window.xsize && t->window.ysize == r.window.ysize);
        CHECK(t->valid_fraction == r.valid_fraction && t->lon == r.lon && t->lat == r.lat);
        for (int k = 0; k < 8; k++) CHECK(t->corners[k] == r.corners[k]);
        CHECK(t->n_footprint == TI_NPTS + 1); /* closed */
        for (int k = 0; k < 2 * TI_NPTS; k++) CHECK(t->footprint[k] == xy[k]);
        CHECK(t->footprint[2 * TI_NPTS] == xy[0] && t->footprint[2 * TI_NPTS + 1] == xy[1]);
        double e[4];
        envelope(xy, TI_NPTS, e);
        for (int k = 0; k < 4; k++) CHECK(t->bbox[k] == e[k]);
        rsclip_free(t);
    }
    rsclip_tile_info *t = NULL;
    CHECK(rsclip_index_get_tile(idx, 99999, &t) == RSCLIP_ERR_NOT_FOUND && !t);
    int64_t pick[3] = {emb->ids[5], emb->ids[0], emb->ids[emb->n - 1]};
    float got[3 * DIM];
    CHECK_OK(rsclip_index_get_embeddings(idx, pick, 3, got));
    CHECK(memcmp(got, emb->vecs + 5 * DIM, DIM * sizeof(float)) == 0);
    CHECK(memcmp(got + DIM, emb->vecs, DIM * sizeof(float)) == 0);
    CHECK(memcmp(got + 2 * DIM, emb->vecs + (emb->n - 1) * DIM, DIM * sizeof(float)) == 0);
    int64_t bad[2] = {emb->ids[1], 99999};
    CHECK(rsclip_index_get_embeddings(idx, bad, 2, got) == RSCLIP_ERR_NOT_FOUND);

    rsclip_embeddings_free(emb);
    rsclip_index_close(idx);
}

/* Bbox and point queries against brute force over the expected footprints. */
static void test_spatial(const written *w) {
    rsclip_index *idx;
    const int n_total = w->n_total;
    const expect_tile *ex = w->ex;
    const double *ext = w->ext;
    CHECK_OK(rsclip_index_open(w->path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    rsclip_embeddings *emb = NULL;
    CHECK_OK(rsclip_index_load_embeddings(idx, &emb));
    REQUIRE(emb);
    /* ---- spatial queries vs brute force ---- */
    uint64_t rs = 42;
    for (int q = 0; q < 200; q++) {
        double b[4];
        rs = ti_mix(rs);
        double cx =
            ext[0] - 0.01 + (ext[2] - ext[0] + 0.02) * (double)(rs >> 11) / 9007199254740992.0;
        rs = ti_mix(rs);
        double cy =
            ext[1] - 0.01 + (ext[3] - ext[1] + 0.02) * (double)(rs >> 11) / 9007199254740992.0;
        rs = ti_mix(rs);
        double hw = q % 4 == 0 ? 0.0 : 0.0005 + 0.03 * (double)(rs >> 11) / 9007199254740992.0;
        b[0] = cx - hw;
        b[1] = cy - hw * 0.7;
        b[2] = cx + hw;
        b[3] = cy + hw * 0.7;
        for (int exact = 0; exact < 2; exact++) {
            int64_t *ids = NULL;
            size_t n = 0;
            CHECK_OK(rsclip_index_tiles_in_bbox(idx, b, exact, &ids, &n));
            size_t j = 0;
            int ok = 1;
            for (int i = 0; i < n_total; i++) {
                double xy[2 * TI_NPTS], cl, ca, e[4];
                ti_footprint(ex[i].lon0, ex[i].lat0, ex[i].col, ex[i].row, xy, &cl, &ca);
                envelope(xy, TI_NPTS, e);
                int hit = exact ? sat_poly_box(xy, TI_NPTS, b)
                                : !(e[2] < b[0] || e[0] > b[2] || e[3] < b[1] || e[1] > b[3]);
                if (hit) {
                    if (j >= n || ids[j] != emb->ids[i]) ok = 0;
                    j++;
                }
            }
            if (!ok || j != n) {
                fprintf(stderr, "bbox query %d (exact %d): %zu hits, brute force %zu\n", q, exact,
                        n, j);
                tu_failures++;
            }
            rsclip_free(ids);
        }
        /* point query at the box centre */
        int64_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(rsclip_index_tiles_at(idx, cx, cy, &ids, &n));
        size_t want_n = 0;
        for (int i = 0; i < n_total; i++) {
            double xy[2 * TI_NPTS], cl, ca;
            ti_footprint(ex[i].lon0, ex[i].lat0, ex[i].col, ex[i].row, xy, &cl, &ca);
            if (!convex_contains(xy, TI_NPTS, cx, cy)) continue;
            want_n++;
            int found = 0;
            for (size_t k = 0; k < n; k++) found |= ids[k] == emb->ids[i];
            CHECK(found);
        }
        CHECK(n == want_n);
        double prev = -1;
        for (size_t k = 0; k < n; k++) { /* nearest centre first */
            rsclip_tile_info *ti = NULL;
            CHECK_OK(rsclip_index_get_tile(idx, ids[k], &ti));
            if (!ti) continue;
            double d = (ti->lon - cx) * (ti->lon - cx) + (ti->lat - cy) * (ti->lat - cy);
            CHECK(d >= prev);
            prev = d;
            rsclip_free(ti);
        }
        rsclip_free(ids);
    }
    rsclip_embeddings_free(emb);
    rsclip_index_close(idx);
}

/* The file as any GeoPackage reader sees it (plain SQLite, no rsclip code): R-tree, ids, pragmas;
 * then a lying size hint of the bulk load changes nothing loaded. */
static void test_file_level(const written *w) {
    const char *path = w->path;
    const int n_total = w->n_total;
    const expect_tile *ex = w->ex;
    rsclip_index *idx;
    rsclip_embeddings *emb = NULL;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_load_embeddings(idx, &emb));
    rsclip_index_close(idx);
    REQUIRE(emb);
    /* ---- R-tree contents through plain SQLite (no rsclip code) ---- */
    sqlite3 *db;
    REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT t.fid, r.minx, r.maxx, r.miny, r.maxy FROM tiles t "
                               "LEFT JOIN rtree_tiles_geom r ON r.id = t.fid ORDER BY t.fid",
                               -1, &st, NULL) == SQLITE_OK);
    int i = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        REQUIRE(i < n_total);
        CHECK(sqlite3_column_int64(st, 0) == emb->ids[i]);
        CHECK(sqlite3_column_type(st, 1) != SQLITE_NULL);
        double xy[2 * TI_NPTS], cl, ca, e[4];
        ti_footprint(ex[i].lon0, ex[i].lat0, ex[i].col, ex[i].row, xy, &cl, &ca);
        envelope(xy, TI_NPTS, e);
        /* float32 boxes, rounded outwards */
        double minx = sqlite3_column_double(st, 1), maxx = sqlite3_column_double(st, 2);
        double miny = sqlite3_column_double(st, 3), maxy = sqlite3_column_double(st, 4);
        CHECK(minx <= e[0] && e[0] - minx < 1e-5 && maxx >= e[2] && maxx - e[2] < 1e-5);
        CHECK(miny <= e[1] && e[1] - miny < 1e-5 && maxy >= e[3] && maxy - e[3] < 1e-5);
        i++;
    }
    CHECK(i == n_total);
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM rtree_tiles_geom", -1, &st, NULL) ==
            SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == n_total);
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0x47504B47);
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 10300);
    sqlite3_finalize(st);
    /* a writer that closed alone left rollback-journal mode (readable without write access) */
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW &&
          strcmp((const char *)sqlite3_column_text(st, 0), "delete") == 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* a wrong n_embeddings (the size hint of the bulk load) changes nothing loaded */
    const char *lies[2] = {"UPDATE rsclip_meta SET value = '0' WHERE key = 'n_embeddings'",
                           "UPDATE rsclip_meta SET value = '1000000000000000' "
                           "WHERE key = 'n_embeddings'"};
    for (int k = 0; k < 2; k++) {
        sql_exec(path, lies[k]);
        rsclip_embeddings *e2 = NULL;
        CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
        CHECK_OK(rsclip_index_load_embeddings(idx, &e2));
        CHECK(e2 && e2->n == emb->n && memcmp(e2->ids, emb->ids, emb->n * sizeof(int64_t)) == 0 &&
              memcmp(e2->vecs, emb->vecs, emb->n * DIM * sizeof(float)) == 0);
        CHECK(rsclip_index_verify(idx) == RSCLIP_ERR_FORMAT);
        rsclip_embeddings_free(e2);
        rsclip_index_close(idx);
    }

    rsclip_embeddings_free(emb);
}

static void test_write_read(const char *dir) {
    written w;
    memset(&w, 0, sizeof w);
    write_index(dir, &w);
    if (!w.ex) return;
    test_read_meta_info(&w);
    test_read_scenes(&w);
    test_read_tiles(&w);
    test_spatial(&w);
    test_file_level(&w);
    free(w.ex);
}

static void test_scene_states(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path(dir, "states.gpkg"));
    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", fp_a, DIM, NULL));
    rsclip_scene_info s = ti_scene("s.tif", 10, 20, "abc", 4, 3);
    int64_t sid = 0, sid_again = 0;
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    CHECK(state == RSCLIP_SCENE_NEW);
    CHECK_OK(ti_add_batch(idx, sid, 1, LON0, LAT0, 4, 0, 5, DIM));
    /* same file, not complete: resumed, tiles kept */
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid_again, &state));
    CHECK(state == RSCLIP_SCENE_RESUMED && sid_again == sid);
    rsclip_tile_window *w;
    size_t nw;
    CHECK_OK(rsclip_index_scene_windows(idx, sid, &w, &nw));
    CHECK(nw == 5);
    rsclip_free(w);
    CHECK_OK(ti_add_batch(idx, sid, 1, LON0, LAT0, 4, 5, 7, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    CHECK_OK(rsclip_index_scene_state(idx, &s, &sid_again, &state));
    CHECK(state == RSCLIP_SCENE_UNCHANGED && sid_again == sid);
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid_again, &state));
    CHECK(state == RSCLIP_SCENE_UNCHANGED);
    /* no checksum computed this time: size + mtime decide */
    rsclip_scene_info s_nock = s;
    s_nock.checksum = NULL;
    CHECK_OK(rsclip_index_scene_state(idx, &s_nock, NULL, &state));
    CHECK(state == RSCLIP_SCENE_UNCHANGED);
    rsclip_scene_info s_ck = s;
    s_ck.checksum = "different";
    CHECK_OK(rsclip_index_scene_state(idx, &s_ck, NULL, &state));
    CHECK(state == RSCLIP_SCENE_CHANGED);
    /* file changed: replaced, tiles and embeddings gone, same id */
    rsclip_scene_info s2 = s;
    s2.mtime_ns = 21;
    CHECK_OK(rsclip_index_begin_scene(idx, &s2, 0, &sid_again, &state));
    CHECK(state == RSCLIP_SCENE_CHANGED && sid_again == sid);
    rsclip_index_info info;
    CHECK_OK(rsclip_index_get_info(idx, &info));
    CHECK(info.n_tiles == 0 && info.n_embeddings == 0 && info.n_scenes == 1 &&
          info.n_scenes_complete == 0 && !info.has_extent);
    rsclip_embeddings *e;
    CHECK_OK(rsclip_index_load_embeddings(idx, &e));
    CHECK(e && e->n == 0 && e->dim == DIM);
    rsclip_embeddings_free(e);
    rsclip_scene_info *si;
    CHECK_OK(rsclip_index_get_scene(idx, sid, &si));
    CHECK(si && si->mtime_ns == 21 && si->tiles_stored == 0 && si->status == RSCLIP_SCENE_INDEXING);
    rsclip_free(si);
    CHECK_OK(ti_add_batch(idx, sid, 4, LON0, LAT0, 4, 0, 12, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    /* force on an unchanged scene */
    CHECK_OK(rsclip_index_begin_scene(idx, &s2, 1, &sid_again, &state));
    CHECK(state == RSCLIP_SCENE_CHANGED);
    CHECK_OK(rsclip_index_get_info(idx, &info));
    CHECK(info.n_tiles == 0);
    CHECK_OK(ti_add_batch(idx, sid, 4, LON0, LAT0, 4, 0, 3, DIM));
    CHECK_OK(rsclip_index_verify(idx));
    /* delete */
    CHECK_OK(rsclip_index_delete_scene(idx, sid));
    CHECK(rsclip_index_delete_scene(idx, sid) == RSCLIP_ERR_NOT_FOUND);
    CHECK_OK(rsclip_index_get_info(idx, &info));
    CHECK(info.n_tiles == 0 && info.n_scenes == 0);
    CHECK_OK(rsclip_index_verify(idx));
    rsclip_index_close(idx);

    /* verify notices damage done behind its back */
    CHECK_OK(rsclip_index_open(path, 0, &idx));
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    CHECK_OK(ti_add_batch(idx, sid, 1, LON0, LAT0, 4, 0, 6, DIM));
    rsclip_index_close(idx);
    sql_exec(path, "DELETE FROM embeddings WHERE tile_id = (SELECT max(tile_id) FROM embeddings)");
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    CHECK(rsclip_index_verify(idx) == RSCLIP_ERR_FORMAT);
    CHECK(strstr(rsclip_last_error(), "tiles without an embedding") != NULL);
    rsclip_index_close(idx);
}

static void expect_refusal(const char *path, unsigned flags, int code, const char *words) {
    rsclip_index *idx = (rsclip_index *)1;
    int rc = rsclip_index_open(path, flags, &idx);
    if (rc != code || idx != NULL || !strstr(rsclip_last_error(), path) ||
        (words && !strstr(rsclip_last_error(), words))) {
        fprintf(stderr, "open(%s): rc %d (want %d), message '%s' (want '%s')\n", path, rc, code,
                rsclip_last_error(), words ? words : "");
        tu_failures++;
    }
    rsclip_index_close(rc == RSCLIP_OK ? idx : NULL);
}

/* The whole file, or NULL (free()). */
static unsigned char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n > 0 ? (size_t)*n : 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* A database that is not an index is refused and left byte for byte as it was, with no -wal or
 * -shm beside it (switching the journal mode rewrites its header). */
static void expect_untouched_refusal(const char *path, unsigned flags, const char *words) {
    long n0 = 0, n1 = 0;
    unsigned char *before = slurp(path, &n0);
    REQUIRE(before);
    expect_refusal(path, flags, RSCLIP_ERR_FORMAT, words);
    unsigned char *after = slurp(path, &n1);
    CHECK(after && n1 == n0 && memcmp(before, after, (size_t)n0) == 0);
    char side[1100];
    struct stat sb;
    snprintf(side, sizeof side, "%s-wal", path);
    CHECK(stat(side, &sb) != 0);
    snprintf(side, sizeof side, "%s-shm", path);
    CHECK(stat(side, &sb) != 0);
    free(before);
    free(after);
}

static void test_refusals(const char *dir) {
    char path[1024];
    rsclip_index *idx;

    /* newer schema */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "future.gpkg"));
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    rsclip_index_close(idx);
    sql_exec(path, "UPDATE rsclip_meta SET value = '99' WHERE key = 'schema_version'");
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_UNSUPPORTED, "schema version 99");
    expect_refusal(path, 0, RSCLIP_ERR_UNSUPPORTED, "newer than this rsclip");
    sql_exec(path, "UPDATE rsclip_meta SET value = 'x1' WHERE key = 'schema_version'");
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_FORMAT, "schema_version");

    /* plain SQLite */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "plain.sqlite"));
    sql_exec(path, "CREATE TABLE foo (a INTEGER); INSERT INTO foo VALUES (1)");
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_FORMAT, "not an rsclip index");
    expect_untouched_refusal(path, RSCLIP_INDEX_CREATE, "an SQLite database");
    expect_untouched_refusal(path, 0, "an SQLite database");
    /* a meta table that is not ours */
    sql_exec(path, "CREATE TABLE rsclip_meta (key TEXT, value TEXT)");
    expect_refusal(path, 0, RSCLIP_ERR_FORMAT, "not an rsclip index");

    /* random bytes */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "random.gpkg"));
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    uint64_t x = 7;
    for (int i = 0; i < 4096; i++) {
        x = ti_mix(x);
        fputc((int)(x & 0xff), f);
    }
    fclose(f);
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_FORMAT, "not an rsclip index");
    expect_refusal(path, RSCLIP_INDEX_CREATE, RSCLIP_ERR_FORMAT, "not an rsclip index");

    /* the SQLite magic followed by garbage */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "fake.gpkg"));
    f = fopen(path, "wb");
    REQUIRE(f);
    fwrite("SQLite format 3", 1, 16, f);
    for (int i = 0; i < 4096; i++) {
        x = ti_mix(x);
        fputc((int)(x & 0xff), f);
    }
    fclose(f);
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_FORMAT, "not an rsclip index");

    /* empty file, missing file */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "empty.gpkg"));
    f = fopen(path, "wb");
    REQUIRE(f);
    fclose(f);
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_FORMAT, "empty");
    snprintf(path, sizeof path, "%s", tmp_path(dir, "missing.gpkg"));
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_NOT_FOUND, "no such index file");
    expect_refusal(path, 0, RSCLIP_ERR_NOT_FOUND, "no such index file");
    struct stat sb;
    CHECK(stat(path, &sb) != 0); /* and nothing was created */

    /* a real GeoPackage (written by GDAL) without rsclip tables */
    char cmd[4096], src[1024];
    snprintf(src, sizeof src, "%s", tmp_path(dir, "pts.csv"));
    f = fopen(src, "w");
    REQUIRE(f);
    fputs("id,WKT\n1,POINT (1 2)\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s", tmp_path(dir, "gdal.gpkg"));
    snprintf(cmd, sizeof cmd, "ogr2ogr -q -f GPKG '%s' '%s' -a_srs EPSG:4326", path, src);
    if (system(cmd) == 0) {
        expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_FORMAT,
                       "a GeoPackage without rsclip tables");
        expect_untouched_refusal(path, 0, "a GeoPackage without rsclip tables");
        expect_untouched_refusal(path, RSCLIP_INDEX_CREATE, "a GeoPackage without rsclip tables");
    } else {
        fprintf(stderr, "ogr2ogr failed: %s\n", cmd);
        tu_failures++;
    }

    /* a FIFO must not block the open */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "fifo.gpkg"));
    CHECK(mkfifo(path, 0600) == 0);
    expect_refusal(path, RSCLIP_INDEX_READONLY, RSCLIP_ERR_INVALID_ARG, "not a regular file");

    /* a directory */
    expect_refusal(dir, RSCLIP_INDEX_READONLY, RSCLIP_ERR_INVALID_ARG, "directory");

    /* bad arguments */
    CHECK(rsclip_index_open(NULL, 0, &idx) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_index_open("x", RSCLIP_INDEX_READONLY | RSCLIP_INDEX_CREATE, &idx) ==
          RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_index_open("x", 0x80, &idx) == RSCLIP_ERR_INVALID_ARG);
    rsclip_index_close(NULL);
    rsclip_embeddings_free(NULL);

    /* model mismatch across runs */
    snprintf(path, sizeof path, "%s", tmp_path(dir, "model.gpkg"));
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    CHECK_OK(rsclip_index_bind_model(idx, "google/base", fp_a, 768, NULL));
    rsclip_index_close(idx);
    CHECK_OK(rsclip_index_open(path, 0, &idx));
    CHECK(rsclip_index_bind_model(idx, "google/large", fp_b, 1024, NULL) == RSCLIP_ERR_MISMATCH);
    CHECK(strstr(rsclip_last_error(), path) && strstr(rsclip_last_error(), "google/base") &&
          strstr(rsclip_last_error(), "google/large") && strstr(rsclip_last_error(), "1024"));
    rsclip_index_close(idx);
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    CHECK(rsclip_index_check_model(idx, fp_b, 768) == RSCLIP_ERR_MISMATCH);
    CHECK_OK(rsclip_index_bind_model(idx, "google/base", fp_a, 768, NULL)); /* read-only: check */
    rsclip_index_close(idx);

    /* a truncated copy of a real index: an error, not a crash */
    char trunc[1024];
    snprintf(trunc, sizeof trunc, "%s", tmp_path(dir, "trunc.gpkg"));
    snprintf(cmd, sizeof cmd, "head -c 70000 '%s' > '%s'", path, trunc);
    CHECK(system(cmd) == 0);
    idx = NULL;
    int rc = rsclip_index_open(trunc, RSCLIP_INDEX_READONLY, &idx);
    if (rc == RSCLIP_OK) {
        rsclip_embeddings *e = NULL;
        rsclip_index_info info;
        rsclip_index_get_info(idx, &info);
        if (rsclip_index_load_embeddings(idx, &e) == RSCLIP_OK) rsclip_embeddings_free(e);
        CHECK(rsclip_index_verify(idx) != RSCLIP_OK);
        rsclip_index_close(idx);
    }
}

/* Content damaged by other programs: every read path fails with a message naming the tile, no
 * crash (this runs under the sanitizers in CI). */
static void test_hostile_content(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path(dir, "hostile.gpkg"));
    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", fp_a, DIM, NULL));
    rsclip_scene_info s = ti_scene("h.tif", 1, 1, NULL, 4, 4);
    int64_t sid, ids[16];
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    rsclip_tile_record r[16];
    double xy[16][2 * TI_NPTS];
    float v[16 * DIM];
    for (int i = 0; i < 16; i++)
        ti_record(1, LON0, LAT0, i % 4, i / 4, DIM, &r[i], xy[i], v + i * DIM);
    CHECK_OK(rsclip_index_add_tiles(idx, sid, 16, r, v, ids));
    rsclip_index_close(idx);
    /* plain SQLite cannot run the R-tree triggers (no ST_ functions): drop them to write garbage */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "DROP TRIGGER rtree_tiles_geom_update1; DROP TRIGGER rtree_tiles_geom_update2; "
             "DROP TRIGGER rtree_tiles_geom_update3; DROP TRIGGER rtree_tiles_geom_update4; "
             "UPDATE tiles SET geom = x'47500003E6100000' WHERE fid = %lld; "
             "UPDATE tiles SET geom = x'4750000100000000010300000001000000FFFFFF7F' WHERE fid = "
             "%lld; UPDATE embeddings SET vec = x'0000' WHERE tile_id = %lld",
             (long long)ids[3], (long long)ids[4], (long long)ids[5]);
    sql_exec(path, sql);
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    rsclip_tile_info *t = NULL;
    char want[64];
    for (int k = 3; k <= 4; k++) {
        CHECK(rsclip_index_get_tile(idx, ids[k], &t) == RSCLIP_ERR_FORMAT && !t);
        snprintf(want, sizeof want, "tile %lld", (long long)ids[k]);
        CHECK(strstr(rsclip_last_error(), want) != NULL);
    }
    CHECK_OK(rsclip_index_get_tile(idx, ids[2], &t));
    rsclip_free(t);
    const double world[4] = {-180, -90, 180, 90};
    int64_t *hits = NULL;
    size_t n = 0;
    CHECK(rsclip_index_tiles_in_bbox(idx, world, 1, &hits, &n) == RSCLIP_ERR_FORMAT && !hits);
    rsclip_embeddings *e = NULL;
    CHECK(rsclip_index_load_embeddings(idx, &e) == RSCLIP_ERR_FORMAT && !e);
    snprintf(want, sizeof want, "tile %lld has 2 bytes", (long long)ids[5]);
    CHECK(strstr(rsclip_last_error(), want) != NULL);
    float out[DIM];
    CHECK(rsclip_index_get_embeddings(idx, &ids[5], 1, out) == RSCLIP_ERR_FORMAT);
    CHECK_OK(rsclip_index_get_embeddings(idx, &ids[6], 1, out));
    CHECK(rsclip_index_verify(idx) == RSCLIP_ERR_FORMAT);
    rsclip_index_close(idx);
    /* absurd or non-numeric embed_dim */
    const char *dims[2] = {"UPDATE rsclip_meta SET value = '99999999999' WHERE key = 'embed_dim'",
                           "UPDATE rsclip_meta SET value = '7x' WHERE key = 'embed_dim'"};
    for (int k = 0; k < 2; k++) {
        sql_exec(path, dims[k]);
        CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
        REQUIRE(idx);
        CHECK(rsclip_index_load_embeddings(idx, &e) == RSCLIP_ERR_FORMAT && !e);
        CHECK(strstr(rsclip_last_error(), path) != NULL);
        rsclip_index_info info;
        int rc = rsclip_index_get_info(idx, &info);
        CHECK(k == 0 ? rc == RSCLIP_OK : rc == RSCLIP_ERR_FORMAT);
        rsclip_index_close(idx);
    }
}

int main(void) {
    const char *dir = ti_tmpdir("test_index");
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    test_write_read(d);
    test_scene_states(d);
    test_refusals(d);
    test_hostile_content(d);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (!tu_failures && !getenv("RSCLIP_TEST_KEEP") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d);
    return tu_finish("test_index");
}
