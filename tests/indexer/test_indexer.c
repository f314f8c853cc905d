/* rsclip_indexer_run and rsclip_indexer_run_plan on the tiny fixture model and small rasters
 * written here with GDAL: a cancel through the progress callback leaves a valid index that a
 * second run completes with no tile duplicated or missing; on_error is called once per input
 * that fails (a message naming it) while the others are indexed; a plan split into shards gives
 * parts whose tiles are exactly the whole run's. Failed allocations (no scene dropped without a
 * report) are tests/base/test_oom.c's. */
#include "rsclip/index.h"
#include "rsclip/indexer.h"
#include "rsclip/plan.h"
#include "rsclip/status.h"
#include "gdal_test_util.h"
#include "test_util.h"

#include <sqlite3.h>

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];
static char g_model[1024];

static const char *in_dir(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Every stored tile as "scene:xoff,yoff,xsizexysize" in order, its count in *n; also checks that
 * each tile has exactly one embedding. */
static char **tile_list(const char *index, int *n) {
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open_v2(index, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT s.path || ':' || t.xoff || ',' || t.yoff || ' ' || t.xsize "
                               "|| 'x' || t.ysize, (SELECT count(*) FROM embeddings e WHERE "
                               "e.tile_id = t.fid) FROM tiles t JOIN scenes s ON s.id = "
                               "t.scene_id ORDER BY 1",
                               -1, &st, NULL) == SQLITE_OK);
    char **v = NULL;
    *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        v = realloc(v, sizeof *v * (size_t)(*n + 1));
        REQUIRE(v);
        v[(*n)++] = strdup((const char *)sqlite3_column_text(st, 0));
        CHECK(sqlite3_column_int(st, 1) == 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void list_free(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* The index holds exactly the tiles of ref (each once). */
static void expect_tiles(const char *index, char **ref, int n_ref) {
    int n = 0;
    char **v = tile_list(index, &n);
    int same = n == n_ref;
    for (int i = 0; same && i < n; i++) same = strcmp(v[i], ref[i]) == 0;
    if (!same) {
        fprintf(stderr, "%s: %d tiles, want %d:\n", index, n, n_ref);
        for (int i = 0; i < n || i < n_ref; i++)
            fprintf(stderr, "  %-40s %s\n", i < n ? v[i] : "-", i < n_ref ? ref[i] : "-");
        tu_failures++;
    }
    list_free(v, n);
}

static int verify(const char *index) {
    rsclip_index *idx = NULL;
    int rc = rsclip_index_open(index, RSCLIP_INDEX_READONLY, &idx);
    if (!rc) rc = rsclip_index_verify(idx);
    rsclip_index_close(idx);
    return rc;
}

static rsclip_indexer_params params(void) {
    rsclip_indexer_params p = rsclip_indexer_default_params();
    p.model = g_model;
    p.batch = 2;
    p.n_threads = 1;
    return p;
}

/* ---- errors ---------------------------------------------------------------------------------- */

typedef struct errors {
    int n;
    char path[8][512], msg[8][1024];
} errors;

static void on_error(const char *path, const char *message, void *user) {
    errors *e = user;
    if (e->n < 8) {
        snprintf(e->path[e->n], sizeof e->path[0], "%s", path ? path : "(null)");
        snprintf(e->msg[e->n], sizeof e->msg[0], "%s", message ? message : "(null)");
    }
    e->n++;
}

static void test_on_error(const char *const *scenes, char **ref, int n_ref) {
    const char *missing = in_dir("missing.tif"), *garbage = in_dir("garbage.tif");
    FILE *f = fopen(garbage, "w");
    REQUIRE(f);
    fputs("not a raster\n", f);
    fclose(f);
    const char *inputs[5] = {scenes[0], missing, scenes[1], garbage, scenes[2]};
    errors e = {0};
    rsclip_indexer_params p = params();
    p.on_error = on_error;
    p.user = &e;
    rsclip_indexer_report rep;
    const char *index = in_dir("errors.gpkg");
    CHECK_OK(rsclip_indexer_run(index, inputs, 5, &p, &rep));
    CHECK(e.n == 2 && rep.scenes_failed == 2 && rep.scenes_indexed == 3);
    for (int i = 0; i < e.n && i < 2; i++) {
        const char *want = i == 0 ? missing : garbage;
        CHECK(strcmp(e.path[i], want) == 0 && strstr(e.msg[i], want));
    }
    expect_tiles(index, ref, n_ref);
    /* again: the failures again (once each), the others unchanged */
    memset(&e, 0, sizeof e);
    CHECK_OK(rsclip_indexer_run(index, inputs, 5, &p, &rep));
    CHECK(e.n == 2 && rep.scenes_failed == 2 && rep.scenes_unchanged == 3 && rep.tiles_added == 0);
}

/* ---- cancel and resume ----------------------------------------------------------------------- */

typedef struct cancel_at {
    int64_t after;  /* cancel once this many tiles are stored (< 0: never) */
    int calls;      /* progress calls */
    int64_t last;   /* tiles_done of the last call */
    int monotonic;  /* tiles_done and elapsed_s never went down, scene numbers in range */
    double elapsed; /* elapsed_s of the last call */
} cancel_at;

static int on_progress(const rsclip_indexer_progress *pr, void *user) {
    cancel_at *c = user;
    if (pr->tiles_done < c->last || pr->scene < 1 || pr->scene > pr->n_scenes || !pr->path ||
        !(pr->elapsed_s >= c->elapsed) || pr->elapsed_s > 3600)
        c->monotonic = 0;
    c->last = pr->tiles_done;
    c->elapsed = pr->elapsed_s;
    c->calls++;
    return !(c->after >= 0 && pr->tiles_done >= c->after);
}

static void test_cancel_resume(const char *const *scenes, char **ref, int n_ref) {
    const char *index = in_dir("cancel.gpkg");
    rsclip_indexer_params p = params();
    for (int64_t after = 1; after < n_ref; after += 4) {
        unlink(index);
        cancel_at c = {after, 0, 0, 1, 0};
        p.progress = on_progress;
        p.user = &c;
        rsclip_indexer_report rep;
        CHECK(rsclip_indexer_run(index, scenes, 3, &p, &rep) == RSCLIP_ERR_CANCELLED);
        CHECK(strstr(rsclip_last_error(), "cancel") != NULL);
        CHECK(c.monotonic && rep.tiles_added >= after && rep.tiles_added < n_ref);
        CHECK(verify(index) == RSCLIP_OK); /* valid as it stands */
        int n_part = 0;
        char **part = tile_list(index, &n_part);
        CHECK(n_part == rep.tiles_added);
        list_free(part, n_part);
        /* resumed: only the missing tiles are added */
        c = (cancel_at){-1, 0, 0, 1, 0};
        rsclip_indexer_report rep2;
        CHECK_OK(rsclip_indexer_run(index, scenes, 3, &p, &rep2));
        CHECK(rep2.tiles_added == n_ref - n_part && rep2.scenes_failed == 0);
        CHECK(rep2.scenes_indexed + rep2.scenes_unchanged == 3 && c.monotonic && c.calls > 0);
        expect_tiles(index, ref, n_ref);
        CHECK(verify(index) == RSCLIP_OK);
        /* and a third run has nothing to do */
        CHECK_OK(rsclip_indexer_run(index, scenes, 3, &p, &rep2));
        CHECK(rep2.scenes_unchanged == 3 && rep2.tiles_added == 0);
    }
}

/* ---- plans and shards ------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_shards(const char *const *scenes, char **ref, int n_ref) {
    rsclip_tiler_params tp = rsclip_tiler_default_params();
    tp.tile_size = 256;
    rsclip_plan *plan = NULL;
    CHECK_OK(rsclip_plan_make(scenes, 3, &tp, NULL, NULL, &plan));
    REQUIRE(plan);
    CHECK(plan->n_tiles == n_ref);
    rsclip_indexer_params p = params();
    /* the whole plan: the same tiles as the plain run */
    const char *whole = in_dir("plan.gpkg");
    CHECK_OK(rsclip_indexer_run_plan(whole, plan, 0, 0, &p, NULL));
    expect_tiles(whole, ref, n_ref);
    /* N shards: parts are disjoint and together hold exactly the run's tiles, with tile ids the
     * global tile numbers + 1 */
    for (int n = 2; n <= 5; n += 3) {
        char **all = NULL;
        int n_all = 0;
        for (int i = 0; i < n; i++) {
            char name[64];
            snprintf(name, sizeof name, "part-%d-of-%d.gpkg", i, n);
            const char *part = in_dir(name);
            rsclip_indexer_report rep;
            CHECK_OK(rsclip_indexer_run_plan(part, plan, i, n, &p, &rep));
            int64_t first = 0, end = 0;
            CHECK_OK(rsclip_plan_shard(plan, i, n, &first, &end));
            CHECK(rep.tiles_added == end - first && rep.scenes_failed == 0);
            int k = 0;
            char **v = tile_list(part, &k);
            all = realloc(all, sizeof *all * (size_t)(n_all + k + 1));
            REQUIRE(all);
            for (int j = 0; j < k; j++) all[n_all++] = v[j];
            free(v);
            rsclip_index *idx = NULL;
            CHECK_OK(rsclip_index_open(part, RSCLIP_INDEX_READONLY, &idx));
            char *done = NULL;
            CHECK_OK(rsclip_index_get_meta(idx, "shard_complete", &done));
            CHECK(done && strcmp(done, "1") == 0);
            rsclip_free(done);
            rsclip_embeddings *e = NULL;
            CHECK_OK(rsclip_index_load_embeddings(idx, &e));
            for (size_t j = 0; e && j < e->n; j++) CHECK(e->ids[j] > first && e->ids[j] <= end);
            rsclip_embeddings_free(e);
            rsclip_index_close(idx);
            /* rerun when complete: nothing to do */
            CHECK_OK(rsclip_indexer_run_plan(part, plan, i, n, &p, &rep));
            CHECK(rep.tiles_added == 0);
        }
        qsort(all, (size_t)n_all, sizeof *all, cmp_str);
        int same = n_all == n_ref;
        for (int j = 0; same && j < n_all; j++) same = strcmp(all[j], ref[j]) == 0;
        CHECK(same);
        list_free(all, n_all);
    }
    rsclip_plan_free(plan);
}

int main(void) {
    GDALAllRegister();
    snprintf(g_model, sizeof g_model, "%s/siglip-tiny", tu_fixtures());
    tu_abs_tmpdir(g_dir, sizeof g_dir, "test_indexer");
    /* 3 x 2, 2 x 2 and 1 x 2 tiles of 256 px (the tiny model's size) */
    static const int sizes[3][2] = {{768, 512}, {512, 400}, {256, 512}};
    char paths[3][512];
    const char *scenes[3];
    for (int i = 0; i < 3; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/scene%d.tif", g_dir, i);
        tu_write_raster(paths[i], sizes[i][0], sizes[i][1], i);
        scenes[i] = paths[i];
    }
    /* the reference: one uninterrupted run */
    const char *ref_index = in_dir("ref.gpkg");
    rsclip_indexer_params p = params();
    rsclip_indexer_report rep;
    CHECK_OK(rsclip_indexer_run(ref_index, scenes, 3, &p, &rep));
    CHECK(rep.scenes_indexed == 3 && rep.tiles_added == 12 && rep.scenes_failed == 0);
    int n_ref = 0;
    char **ref = tile_list(ref_index, &n_ref);
    CHECK(n_ref == 12);

    test_on_error(scenes, ref, n_ref);
    test_cancel_resume(scenes, ref, n_ref);
    test_shards(scenes, ref, n_ref);
    list_free(ref, n_ref);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!tu_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    GDALDestroyDriverManager();
    return tu_finish("test_indexer");
}
