/* rsclip_session_heatmap: the grid laid over the tiler's windows (exact steps, cells centred on
 * the tiles, nothing outside the scene), the probability of each tile in the cell that holds its
 * centre, the step read back or inferred, and hostile rows (windows outside the scene, scenes
 * without pixels, absurd sizes) refused with errors that name the index -- never memory
 * corruption, never an allocation sized by the file. The index is synthetic (windows laid out as
 * the tiler lays them out, pseudo-random vectors, calibration in the meta table): no model. */
#include "test_util.h"

#include "index/index_test_util.h"
#include "rsclip/rsclip.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 16

static char g_path[1024];

/* The tiler's offsets along one axis (rsclip/tiler.h: the last tile ends at the edge). */
static int offsets(int e, int t, int s, int *off) {
    if (e <= t) {
        off[0] = 0;
        return 1;
    }
    int n = (e - t + s - 1) / s + 1;
    for (int i = 0; i < n; i++) off[i] = i * s > e - t ? e - t : i * s;
    return n;
}

/* A scene of w x h pixels tiled with tile t, stride s; returns its id and the tile ids. */
static int64_t add_scene(rsclip_index *idx, const char *name, int w, int h, int t, int s,
                         int record, int seed, int64_t *tile_ids, rsclip_tile_window *wins,
                         size_t *n) {
    rsclip_scene_info si = ti_scene(name, 1000 + seed, 1, NULL, 1, 1);
    si.width = w;
    si.height = h;
    if (record) { /* schema 2 records the grid; schema-1 scenes read back 0 */
        si.tile_size = t;
        si.stride = s;
    }
    const double gt[6] = {500000.0, 2.0, 0.0, 4000000.0, 0.0, -2.0};
    memcpy(si.geotransform, gt, sizeof gt);
    int64_t sid = 0;
    int state = -1;
    CHECK_OK(rsclip_index_begin_scene(idx, &si, 0, &sid, &state));
    int xo[64], yo[64];
    int nx = offsets(w, t, s, xo), ny = offsets(h, t, s, yo);
    size_t cnt = (size_t)nx * ny;
    rsclip_tile_record *r = calloc(cnt, sizeof *r);
    double *xy = calloc(cnt * 2 * TI_NPTS, sizeof *xy);
    float *v = calloc(cnt * DIM, sizeof *v);
    REQUIRE(r && xy && v);
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            size_t k = (size_t)j * nx + i;
            r[k].window.xoff = xo[i];
            r[k].window.yoff = yo[j];
            r[k].window.xsize = w < t ? w : t;
            r[k].window.ysize = h < t ? h : t;
            r[k].valid_fraction = 1.0;
            ti_footprint(seed, 40.0, i, j, xy + k * 2 * TI_NPTS, &r[k].lon, &r[k].lat);
            r[k].footprint = xy + k * 2 * TI_NPTS;
            r[k].n_footprint = TI_NPTS;
            ti_normalised(seed, i, j, DIM, v + k * DIM);
            wins[k] = r[k].window;
        }
    CHECK_OK(rsclip_index_add_tiles(idx, sid, cnt, r, v, tile_ids));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    free(r);
    free(xy);
    free(v);
    *n = cnt;
    return sid;
}

static void sql(const char *stmt) {
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(g_path, &db) == SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", stmt, err);
        exit(1);
    }
    sqlite3_close(db);
}

static rsclip_query like(int64_t tile) {
    rsclip_query q = rsclip_query_default();
    q.like_tile = tile;
    return q;
}

/* Every cell: the largest probability of the tiles whose centre is in it (cell index given by the
 * caller's expectation), NaN elsewhere. */
static void check_values(rsclip_session *s, const rsclip_query *q, const rsclip_heatmap *h,
                         int64_t sid, const int64_t *ids, const int *cell, size_t n) {
    int64_t *pid = NULL;
    float *pr = NULL;
    size_t np = 0;
    CHECK_OK(rsclip_session_scene_probs(s, q, sid, &pid, &pr, &np));
    CHECK(np == n);
    size_t cells = (size_t)h->width * h->height;
    float *want = malloc(cells * sizeof *want);
    REQUIRE(want);
    for (size_t c = 0; c < cells; c++) want[c] = NAN;
    for (size_t i = 0; i < n && i < np; i++) {
        CHECK(pid[i] == ids[i]);
        REQUIRE(cell[i] >= 0 && (size_t)cell[i] < cells);
        if (isnan(want[cell[i]]) || pr[i] > want[cell[i]]) want[cell[i]] = pr[i];
    }
    int bad = 0;
    for (size_t c = 0; c < cells; c++)
        if (isnan(want[c]) ? !isnan(h->values[c]) : h->values[c] != want[c]) {
            fprintf(stderr, "scene %lld cell %zu: %g, expected %g\n", (long long)sid, c,
                    h->values[c], want[c]);
            bad++;
        }
    CHECK(bad == 0);
    CHECK(h->n_tiles == (int64_t)n);
    free(want);
    rsclip_free(pid);
    rsclip_free(pr);
}

static int expect_error(rsclip_session *s, int64_t sid, const rsclip_heatmap_params *p, int code,
                        const char *needle) {
    rsclip_query q = like(1);
    rsclip_heatmap *h = (rsclip_heatmap *)1;
    int rc = rsclip_session_heatmap(s, &q, sid, p, &h);
    const char *msg = rsclip_last_error();
    int ok = rc == code && h == NULL && strstr(msg, g_path) && (!needle || strstr(msg, needle));
    if (!ok) fprintf(stderr, "heatmap of scene %lld: rc %d, '%s'\n", (long long)sid, rc, msg);
    return ok;
}

int main(void) {
    char *dir = ti_tmpdir("query_heatmap");
    snprintf(g_path, sizeof g_path, "%s/idx.gpkg", dir);
    rsclip_index *idx = NULL;
    CHECK_OK(rsclip_index_open(g_path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "synthetic", "fp-synthetic", DIM, NULL));
    CHECK_OK(rsclip_index_set_meta(idx, "logit_scale", "2.3"));
    CHECK_OK(rsclip_index_set_meta(idx, "logit_bias", "-4"));

    /* A: 1000 x 600, tile = stride = 256 (x: 0 256 512 744; y: 0 256 344), no overlap.
     * B: 700 x 300, tile 256, stride 128 (x: 0 128 256 384 444; y: 0 44), overlapping.
     * C: 200 x 900, narrower than a tile: one column. */
    int64_t ia[64], ib[64], ic[64], id[64];
    rsclip_tile_window wa[64], wb[64], wc[64], wd[64];
    size_t na, nb, nc, nd;
    int64_t sa = add_scene(idx, "a.tif", 1000, 600, 256, 256, 0, 1, ia, wa, &na);
    int64_t sb = add_scene(idx, "b.tif", 700, 300, 256, 128, 0, 2, ib, wb, &nb);
    int64_t sc = add_scene(idx, "c.tif", 200, 900, 256, 256, 0, 3, ic, wc, &nc);
    /* D: 300 x 300, tile 256, stride 128 recorded: offsets 0 and 44 only, from which the stride
     * cannot be inferred (no interior tile) */
    int64_t sd = add_scene(idx, "d.tif", 300, 300, 256, 128, 1, 4, id, wd, &nd);
    CHECK(na == 12 && nb == 10 && nc == 4 && nd == 4);
    rsclip_index_close(idx);

    rsclip_session_params sp = rsclip_session_default_params();
    sp.use_cache = 0;
    sp.n_threads = 1;
    rsclip_session *s = NULL;
    CHECK_OK(rsclip_session_open(g_path, &sp, &s));
    REQUIRE(s);

    /* A: step from the interior offsets (schema 1 records none); 3 x 2 whole cells of 256 px
     * inside 1000 x 600; the shifted tiles (x 744, y 344) count in the last cell. */
    rsclip_query q = like(ia[0]);
    rsclip_heatmap *h = NULL;
    CHECK_OK(rsclip_session_heatmap(s, &q, sa, NULL, &h));
    REQUIRE(h);
    CHECK(h->width == 3 && h->height == 2 && h->step == 256 && h->tile_size == 256);
    CHECK(strcmp(h->step_from, "tile offsets") == 0);
    CHECK(h->origin[0] == 0 && h->origin[1] == 0 && h->cell[0] == 256 && h->cell[1] == 256);
    CHECK(h->scene_id == sa && strcmp(h->scene, "a.tif") == 0);
    CHECK(strstr(h->crs_wkt, "UTM zone 32N") != NULL);
    const double gta[6] = {500000.0, 512.0, 0.0, 4000000.0, 0.0, -512.0};
    CHECK(memcmp(h->geotransform, gta, sizeof gta) == 0);
    /* no cell outside the scene: the grid ends inside 1000 x 600 */
    CHECK(h->origin[0] + h->width * h->cell[0] <= 1000 &&
          h->origin[1] + h->height * h->cell[1] <= 600);
    int cell_a[12];
    for (size_t k = 0; k < na; k++) {
        const int colx[] = {0, 1, 2, 2}, rowy[] = {0, 1, 1};
        cell_a[k] = rowy[k / 4] * 3 + colx[k % 4];
    }
    check_values(s, &q, h, sa, ia, cell_a, na);
    rsclip_heatmap_free(h);

    /* B: stride 128 < tile 256: cells of 128 centred on the tiles, from pixel 64; y (300 px):
     * one cell of 128 from 64. */
    h = NULL;
    CHECK_OK(rsclip_session_heatmap(s, &q, sb, NULL, &h));
    REQUIRE(h);
    CHECK(h->width == 4 && h->height == 1 && h->step == 128);
    CHECK(h->origin[0] == 64 && h->origin[1] == 64 && h->cell[0] == 128 && h->cell[1] == 128);
    const double gtb[6] = {500128.0, 256.0, 0.0, 3999872.0, 0.0, -256.0};
    CHECK(memcmp(h->geotransform, gtb, sizeof gtb) == 0);
    int cell_b[10];
    for (size_t k = 0; k < nb; k++) {
        const int colx[] = {0, 1, 2, 3, 3};
        cell_b[k] = colx[k % 5];
    }
    check_values(s, &q, h, sb, ib, cell_b, nb);
    rsclip_heatmap_free(h);

    /* C: one column as wide as the scene; rows of 256 (900: 3 whole cells, tile 644 in the last) */
    h = NULL;
    CHECK_OK(rsclip_session_heatmap(s, &q, sc, NULL, &h));
    REQUIRE(h);
    CHECK(h->width == 1 && h->height == 3 && h->cell[0] == 200 && h->cell[1] == 256);
    CHECK(strcmp(h->step_from, "tile offsets") == 0);
    int cell_c[4] = {0, 1, 2, 2};
    check_values(s, &q, h, sc, ic, cell_c, nc);
    rsclip_heatmap_free(h);

    /* D: the recorded stride: one cell of 128 centred on the scene (the tiles' centres are at
     * 128 and 172: both in it) */
    h = NULL;
    CHECK_OK(rsclip_session_heatmap(s, &q, sd, NULL, &h));
    REQUIRE(h);
    CHECK(h->step == 128 && h->tile_size == 256 && strcmp(h->step_from, "index") == 0);
    CHECK(h->width == 1 && h->height == 1 && h->origin[0] == 64 && h->cell[0] == 128);
    int cell_d[4] = {0, 0, 0, 0};
    check_values(s, &q, h, sd, id, cell_d, nd);
    rsclip_heatmap_free(h);

    /* A with a coarser step: one cell of 512 x 512 holding the best tile of the scene */
    rsclip_heatmap_params hp = rsclip_heatmap_default_params();
    hp.step = 512;
    h = NULL;
    CHECK_OK(rsclip_session_heatmap(s, &q, sa, &hp, &h));
    REQUIRE(h);
    CHECK(h->width == 1 && h->height == 1 && h->cell[0] == 512 &&
          strcmp(h->step_from, "params") == 0);
    int cell_one[12] = {0};
    check_values(s, &q, h, sa, ia, cell_one, na);
    rsclip_heatmap_free(h);

    /* A tiny step makes a big grid: within the default cap it is built, beyond a cap refused */
    hp.step = 1;
    h = NULL;
    CHECK_OK(rsclip_session_heatmap(s, &q, sa, &hp, &h));
    CHECK(h && h->width == 1000 - 255 && h->height == 600 - 255 && h->origin[0] == 127.5);
    rsclip_heatmap_free(h);
    hp.max_cells = 1000;
    CHECK(expect_error(s, sa, &hp, RSCLIP_ERR_UNSUPPORTED, "limit of 1000 cells"));
    hp.step = -1;
    hp.max_cells = 0;
    rsclip_query qa = like(ia[0]);
    h = (rsclip_heatmap *)1;
    CHECK(rsclip_session_heatmap(s, &qa, sa, &hp, &h) == RSCLIP_ERR_INVALID_ARG && !h);
    CHECK(rsclip_session_heatmap(NULL, &qa, sa, NULL, &h) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_session_heatmap(s, &qa, sa, NULL, NULL) == RSCLIP_ERR_INVALID_ARG);
    /* the query's own rules hold for heatmaps too; k and min_prob are not its business */
    rsclip_query qt = rsclip_query_default();
    qt.text = " \t";
    CHECK(rsclip_session_heatmap(s, &qt, sa, NULL, &h) == RSCLIP_ERR_INVALID_ARG && !h);
    CHECK(strstr(rsclip_last_error(), "empty") != NULL);
    qt = like(ia[0]);
    qt.like_lon = 1, qt.has_like_point = 1; /* two queries at once */
    CHECK(rsclip_session_heatmap(s, &qt, sa, NULL, &h) == RSCLIP_ERR_INVALID_ARG && !h);
    qt = like(ia[0]);
    qt.k = 0;
    qt.min_prob = 5;
    CHECK_OK(rsclip_session_heatmap(s, &qt, sa, NULL, &h));
    rsclip_heatmap_free(h);
    h = NULL;
    CHECK(expect_error(s, 9999, NULL, RSCLIP_ERR_NOT_FOUND, "no scene 9999"));
    rsclip_heatmap_free(NULL);
    rsclip_session_close(s);

    /* Hostile rows, one at a time, each undone after: an error naming the index and the tile,
     * never a write outside the grid (the ASan build runs this) nor an unbounded allocation. */
    char stmt[2048];
    struct {
        const char *set;
        int code;
        const char *needle;
    } bad[] = {
        {"UPDATE tiles SET xoff = -300 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "tile"},
        {"UPDATE tiles SET yoff = -1 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "tile"},
        {"UPDATE tiles SET xoff = 2000000000 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "tile"},
        {"UPDATE tiles SET xoff = 900 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "window"},
        {"UPDATE tiles SET xsize = 0 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "tile"},
        {"UPDATE tiles SET ysize = -256 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "tile"},
        {"UPDATE tiles SET xsize = 2147483647 WHERE fid = %lld", RSCLIP_ERR_FORMAT, "tile"},
        {"UPDATE scenes SET width = 0 WHERE id = (SELECT scene_id FROM tiles WHERE fid = %lld)",
         RSCLIP_ERR_FORMAT, "no pixels"},
        {"UPDATE scenes SET height = -5 WHERE id = (SELECT scene_id FROM tiles WHERE fid = %lld)",
         RSCLIP_ERR_FORMAT, "no pixels"},
        {"UPDATE scenes SET gt1 = 9e999 WHERE id = (SELECT scene_id FROM tiles WHERE fid = %lld)",
         RSCLIP_ERR_FORMAT, "geotransform"},
        /* a scene of 2^31 - 1 pixels square: every window inside, the grid too large */
        {"UPDATE scenes SET width = 2147483647, height = 2147483647 WHERE id = (SELECT scene_id "
         "FROM tiles WHERE fid = %lld)",
         RSCLIP_ERR_UNSUPPORTED, "limit of"},
    };
    const char *good = strdup(g_path);
    REQUIRE(good);
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        /* damage a copy of the index: the good one stays for the next case */
        snprintf(g_path, sizeof g_path, "%s/bad%zu.gpkg", dir, b);
        snprintf(stmt, sizeof stmt, "cp '%s' '%s'", good, g_path);
        REQUIRE(system(stmt) == 0);
        /* plain SQLite cannot run the R-tree triggers (no ST_ functions); no geometry changes */
        sql("DROP TRIGGER rtree_tiles_geom_update1; DROP TRIGGER rtree_tiles_geom_update2; "
            "DROP TRIGGER rtree_tiles_geom_update3; DROP TRIGGER rtree_tiles_geom_update4");
        snprintf(stmt, sizeof stmt, bad[b].set, (long long)ia[5]);
        sql(stmt);
        s = NULL;
        CHECK_OK(rsclip_session_open(g_path, &sp, &s));
        REQUIRE(s);
        int ok = expect_error(s, sa, NULL, bad[b].code, bad[b].needle);
        if (!ok) fprintf(stderr, "case %zu: %s\n", b, stmt);
        CHECK(ok);
        /* the other scenes of the damaged index are still fine */
        h = NULL;
        CHECK_OK(rsclip_session_heatmap(s, &qa, sb, NULL, &h));
        CHECK(h && h->width == 4);
        rsclip_heatmap_free(h);
        rsclip_session_close(s);
    }
    free((void *)good);

    snprintf(stmt, sizeof stmt, "rm -rf '%s'", dir);
    if (system(stmt) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return tu_finish("test_query_heatmap");
}
