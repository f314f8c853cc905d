/* Scenes and the tile writer: incremental state, begin/replace, resume windows, batches of tiles +
 * embeddings in one transaction, completion. */
#include "base/base.h"
#include "index/index_internal.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCENE_COLS                                                                                 \
    "id, path, file_size, mtime_ns, checksum, crs_wkt, epsg, gt0, gt1, gt2, gt3, gt4, gt5, "       \
    "width, height, bands, scaling, tiles_planned, status, tiles_stored, tiles_skipped, "          \
    "started_at, indexed_at, settings, tile_size, stride, src_width, src_height, src_bands, "      \
    "georef, gsd, datetime, start_datetime, end_datetime, datetime_source, stac_item, "            \
    "stac_collection, stac_asset"

static int opt_strcmp(const char *a, const char *b) {
    if (!a || !b) return 0; /* a side that did not compute a checksum does not disagree */
    return strcmp(a, b);
}

/* Look the path up: *id (0 if absent), *state. */
static int scene_state_impl(rsclip_index *idx, const rsclip_scene_info *s, int64_t *id,
                            int *state) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx,
                                 "SELECT id, file_size, mtime_ns, checksum, status, settings FROM "
                                 "scenes WHERE path = ?1",
                                 &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, s->path, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    *id = 0;
    *state = RSCLIP_SCENE_NEW;
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        int same = sqlite3_column_int64(st, 1) == s->file_size &&
                   sqlite3_column_int64(st, 2) == s->mtime_ns &&
                   opt_strcmp((const char *)sqlite3_column_text(st, 3), s->checksum) == 0 &&
                   opt_strcmp((const char *)sqlite3_column_text(st, 5), s->settings) == 0;
        const char *status = (const char *)sqlite3_column_text(st, 4);
        int complete = status && strcmp(status, "complete") == 0;
        *state = !same      ? RSCLIP_SCENE_CHANGED
                 : complete ? RSCLIP_SCENE_UNCHANGED
                            : RSCLIP_SCENE_RESUMED;
    } else if (r != SQLITE_DONE) {
        rc = rsclip__idx_db_error(idx, "looking up a scene");
    }
    sqlite3_finalize(st);
    return rc;
}

static int scene_args(rsclip_index *idx, const rsclip_scene_info *s, const char *fn) {
    if (!idx || !s || !s->path || !*s->path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: index, scene or path missing", fn);
    if (s->width < 0 || s->height < 0 || s->file_size < 0 || s->tiles_planned < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: %s: negative size or count", idx->path,
                             s->path);
    return RSCLIP_OK;
}

int rsclip_index_scene_state(rsclip_index *idx, const rsclip_scene_info *scene, int64_t *scene_id,
                             int *state) {
    int rc = scene_args(idx, scene, "rsclip_index_scene_state");
    if (rc) return rc;
    if (!state)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_scene_state: state is NULL");
    int64_t id;
    rc = scene_state_impl(idx, scene, &id, state);
    if (scene_id) *scene_id = rc ? 0 : id;
    return rc;
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s) {
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* The time and STAC columns, 7 from first (datetime .. stac_asset). */
static void bind_time(sqlite3_stmt *st, int first, const rsclip_scene_info *s) {
    const char *v[7] = {s->datetime,  s->start_datetime,  s->end_datetime, s->datetime_source,
                        s->stac_item, s->stac_collection, s->stac_asset};
    for (int k = 0; k < 7; k++) bind_opt_text(st, first + k, v[k]);
}

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v) {
    if (v > 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Bind the descriptive columns ?1..?32 (SCENE_BIND_COLS); the scene id is ?33 where used. */
#define SCENE_BIND_COLS                                                                            \
    "path, file_size, mtime_ns, checksum, crs_wkt, epsg, gt0, gt1, gt2, gt3, gt4, gt5, width, "    \
    "height, bands, scaling, tiles_planned, settings, tile_size, stride, src_width, src_height, "  \
    "src_bands, georef, gsd, datetime, start_datetime, end_datetime, datetime_source, "            \
    "stac_item, stac_collection, stac_asset"
#define SCENE_BIND_VALUES                                                                          \
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "  \
    "?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32"
static void bind_scene(sqlite3_stmt *st, const rsclip_scene_info *s) {
    sqlite3_bind_text(st, 1, s->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->file_size);
    sqlite3_bind_int64(st, 3, s->mtime_ns);
    bind_opt_text(st, 4, s->checksum);
    bind_opt_text(st, 5, s->crs_wkt);
    if (s->epsg > 0)
        sqlite3_bind_int(st, 6, s->epsg);
    else
        sqlite3_bind_null(st, 6);
    for (int i = 0; i < 6; i++) sqlite3_bind_double(st, 7 + i, s->geotransform[i]);
    sqlite3_bind_int(st, 13, s->width);
    sqlite3_bind_int(st, 14, s->height);
    bind_opt_text(st, 15, s->bands);
    bind_opt_text(st, 16, s->scaling);
    sqlite3_bind_int64(st, 17, s->tiles_planned);
    bind_opt_text(st, 18, s->settings);
    bind_opt_int(st, 19, s->tile_size);
    bind_opt_int(st, 20, s->stride);
    bind_opt_int(st, 21, s->src_width);
    bind_opt_int(st, 22, s->src_height);
    bind_opt_int(st, 23, s->src_bands);
    sqlite3_bind_int(st, 24, s->georef);
    if (s->gsd > 0 && isfinite(s->gsd))
        sqlite3_bind_double(st, 25, s->gsd);
    else
        sqlite3_bind_null(st, 25);
    bind_time(st, 26, s);
}

static int step_done(rsclip_index *idx, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st) == SQLITE_DONE ? RSCLIP_OK : rsclip__idx_db_error(idx, what);
    sqlite3_finalize(st);
    return rc;
}

/* Delete every tile of a scene (the triggers drop R-tree rows and embeddings) and recompute the
 * layer extent in gpkg_contents. */
static int delete_tiles(rsclip_index *idx, int64_t scene_id) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, "DELETE FROM tiles WHERE scene_id = ?1", &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    if ((rc = step_done(idx, st, "deleting tiles"))) return rc;
    return rsclip__idx_exec(
        idx,
        "UPDATE gpkg_contents SET min_x = (SELECT min(ST_MinX(geom)) FROM tiles), "
        "min_y = (SELECT min(ST_MinY(geom)) FROM tiles), "
        "max_x = (SELECT max(ST_MaxX(geom)) FROM tiles), "
        "max_y = (SELECT max(ST_MaxY(geom)) FROM tiles), "
        "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
        "WHERE table_name = 'tiles'",
        "updating gpkg_contents");
}

static int begin_impl(rsclip_index *idx, const rsclip_scene_info *s, int force, int64_t *id,
                      int *state) {
    int rc = scene_state_impl(idx, s, id, state);
    if (rc) return rc;
    if (force && *state != RSCLIP_SCENE_NEW) *state = RSCLIP_SCENE_CHANGED;
    sqlite3_stmt *st;
    switch (*state) {
    case RSCLIP_SCENE_UNCHANGED:
        return RSCLIP_OK;
    case RSCLIP_SCENE_NEW:
        rc = rsclip__idx_prepare(idx,
                                 "INSERT INTO scenes (" SCENE_BIND_COLS
                                 ", status, id) VALUES (" SCENE_BIND_VALUES ", 'indexing', ?33)",
                                 &st);
        if (rc) return rc;
        bind_scene(st, s);
        bind_opt_int(st, 33, s->id);
        if ((rc = step_done(idx, st, "inserting a scene"))) return rc;
        *id = sqlite3_last_insert_rowid(idx->db);
        break;
    case RSCLIP_SCENE_RESUMED:
        /* same file: refresh the description, keep the tiles */
        rc = rsclip__idx_prepare(
            idx,
            "UPDATE scenes SET (" SCENE_BIND_COLS ") = (" SCENE_BIND_VALUES
            ") WHERE id = ?33 AND path = ?1 AND file_size = ?2 AND mtime_ns = ?3 AND "
            "(?4 IS NULL OR checksum IS NULL OR checksum = ?4)",
            &st);
        if (rc) return rc;
        bind_scene(st, s);
        sqlite3_bind_int64(st, 33, *id);
        if ((rc = step_done(idx, st, "updating a scene"))) return rc;
        break;
    default: /* CHANGED or forced */
        if ((rc = delete_tiles(idx, *id))) return rc;
        rc = rsclip__idx_prepare(
            idx,
            "UPDATE scenes SET (" SCENE_BIND_COLS ") = (" SCENE_BIND_VALUES
            "), status = 'indexing', tiles_stored = 0, tiles_skipped = 0, "
            "indexed_at = NULL, started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE id = ?33",
            &st);
        if (rc) return rc;
        bind_scene(st, s);
        sqlite3_bind_int64(st, 33, *id);
        if ((rc = step_done(idx, st, "replacing a scene"))) return rc;
    }
    return rsclip__idx_touch(idx);
}

int rsclip_index_begin_scene(rsclip_index *idx, const rsclip_scene_info *scene, int force,
                             int64_t *scene_id, int *state) {
    int rc = scene_args(idx, scene, "rsclip_index_begin_scene");
    if (rc) return rc;
    if (!scene_id || !state)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_begin_scene: NULL output");
    *scene_id = 0;
    if ((rc = rsclip__idx_writable(idx, "begin scene"))) return rc;
    if ((rc = rsclip__idx_begin_write(idx))) return rc;
    int64_t id = 0;
    rc = rsclip__idx_end(idx, begin_impl(idx, scene, force, &id, state));
    if (!rc) *scene_id = id;
    return rc;
}

/* Scene must exist: RSCLIP_ERR_NOT_FOUND otherwise. */
static int scene_exists(rsclip_index *idx, int64_t scene_id) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, "SELECT 1 FROM scenes WHERE id = ?1", &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE)
        rc = rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no scene with id %lld", idx->path,
                           (long long)scene_id);
    else if (r != SQLITE_ROW)
        rc = rsclip__idx_db_error(idx, "looking up a scene");
    sqlite3_finalize(st);
    return rc;
}

static int complete_impl(rsclip_index *idx, int64_t scene_id, int64_t skipped) {
    int rc = scene_exists(idx, scene_id);
    if (rc) return rc;
    sqlite3_stmt *st;
    rc = rsclip__idx_prepare(idx,
                             "UPDATE scenes SET status = 'complete', tiles_skipped = ?2, "
                             "indexed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
                             &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    sqlite3_bind_int64(st, 2, skipped);
    if ((rc = step_done(idx, st, "completing a scene"))) return rc;
    return rsclip__idx_touch(idx);
}

int rsclip_index_complete_scene(rsclip_index *idx, int64_t scene_id, int64_t tiles_skipped) {
    if (!idx || tiles_skipped < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_complete_scene: bad argument");
    int rc = rsclip__idx_writable(idx, "complete scene");
    if (rc || (rc = rsclip__idx_begin_write(idx))) return rc;
    return rsclip__idx_end(idx, complete_impl(idx, scene_id, tiles_skipped));
}

static int delete_impl(rsclip_index *idx, int64_t scene_id) {
    int rc = scene_exists(idx, scene_id);
    if (rc || (rc = delete_tiles(idx, scene_id))) return rc;
    sqlite3_stmt *st;
    if ((rc = rsclip__idx_prepare(idx, "DELETE FROM scenes WHERE id = ?1", &st))) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    if ((rc = step_done(idx, st, "deleting a scene"))) return rc;
    return rsclip__idx_touch(idx);
}

static int set_time_impl(rsclip_index *idx, int64_t scene_id, const rsclip_scene_info *s) {
    int rc = scene_exists(idx, scene_id);
    if (rc) return rc;
    sqlite3_stmt *st;
    if ((rc = rsclip__idx_prepare(
             idx,
             "UPDATE scenes SET (datetime, start_datetime, end_datetime, "
             "datetime_source, stac_item, stac_collection, stac_asset) = (?2, ?3, "
             "?4, ?5, ?6, ?7, ?8) WHERE id = ?1",
             &st)))
        return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    bind_time(st, 2, s);
    if ((rc = step_done(idx, st, "updating a scene's time"))) return rc;
    return rsclip__idx_touch(idx);
}

int rsclip_index_set_scene_time(rsclip_index *idx, int64_t scene_id,
                                const rsclip_scene_info *scene) {
    if (!idx || !scene)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_scene_time: NULL argument");
    int rc = rsclip__idx_writable(idx, "set scene time");
    if (rc || (rc = rsclip__idx_begin_write(idx))) return rc;
    return rsclip__idx_end(idx, set_time_impl(idx, scene_id, scene));
}

int rsclip_index_delete_scene(rsclip_index *idx, int64_t scene_id) {
    return rsclip_index_delete_scenes(idx, &scene_id, 1);
}

int rsclip_index_delete_scenes(rsclip_index *idx, const int64_t *scene_ids, size_t n) {
    if (!idx || (n > 0 && !scene_ids))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_delete_scenes: NULL argument");
    int rc = rsclip__idx_writable(idx, "delete scenes");
    if (rc || (rc = rsclip__idx_begin_write(idx))) return rc;
    for (size_t i = 0; i < n && !rc; i++) rc = delete_impl(idx, scene_ids[i]);
    return rsclip__idx_end(idx, rc);
}

/* Run a query whose rows are int64 ids into a new array. */
static int collect_ids(rsclip_index *idx, sqlite3_stmt *st, int64_t **ids, size_t *n) {
    size_t cap = 0, cnt = 0;
    int64_t *a = NULL;
    int rc = RSCLIP_OK, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap && (rc = rsclip__idx_grow(idx, &a, &cap, sizeof *a, 64))) break;
        a[cnt++] = sqlite3_column_int64(st, 0);
    }
    if (!rc && r != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "reading ids");
    if (rc) {
        free(a);
        return rc;
    }
    *ids = a;
    *n = cnt;
    return RSCLIP_OK;
}

int rsclip_index_list_scenes(rsclip_index *idx, int64_t **ids, size_t *n) {
    if (!idx || !ids || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_list_scenes: NULL argument");
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, "SELECT id FROM scenes ORDER BY id", &st);
    if (rc) return rc;
    rc = collect_ids(idx, st, ids, n);
    sqlite3_finalize(st);
    return rc;
}

/* Copy the current row (SCENE_COLS) into one allocation. */
static int scene_from_row(rsclip_index *idx, sqlite3_stmt *st, rsclip_scene_info **out) {
    static const int text_cols[] = {1, 4, 5, 15, 16, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37};
    size_t total = sizeof(rsclip_scene_info);
    for (size_t i = 0; i < sizeof text_cols / sizeof text_cols[0]; i++)
        if (sqlite3_column_type(st, text_cols[i]) != SQLITE_NULL)
            total += (size_t)sqlite3_column_bytes(st, text_cols[i]) + 1;
    rsclip_scene_info *s = rsclip__calloc(1, total);
    if (!s) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    char *p = (char *)(s + 1);
    const char *strs[15];
    for (size_t i = 0; i < 15; i++) {
        strs[i] = NULL;
        if (sqlite3_column_type(st, text_cols[i]) == SQLITE_NULL) continue;
        const unsigned char *t = sqlite3_column_text(st, text_cols[i]);
        size_t len = (size_t)sqlite3_column_bytes(st, text_cols[i]);
        if (t) memcpy(p, t, len);
        p[len] = 0;
        strs[i] = p;
        p += len + 1;
    }
    s->id = sqlite3_column_int64(st, 0);
    s->path = strs[0];
    s->file_size = sqlite3_column_int64(st, 2);
    s->mtime_ns = sqlite3_column_int64(st, 3);
    s->checksum = strs[1];
    s->crs_wkt = strs[2];
    s->epsg = sqlite3_column_int(st, 6);
    for (int i = 0; i < 6; i++) s->geotransform[i] = sqlite3_column_double(st, 7 + i);
    s->width = sqlite3_column_int(st, 13);
    s->height = sqlite3_column_int(st, 14);
    s->bands = strs[3];
    s->scaling = strs[4];
    s->tiles_planned = sqlite3_column_int64(st, 17);
    const char *status = (const char *)sqlite3_column_text(st, 18);
    s->status =
        status && strcmp(status, "complete") == 0 ? RSCLIP_SCENE_COMPLETE : RSCLIP_SCENE_INDEXING;
    s->tiles_stored = sqlite3_column_int64(st, 19);
    s->tiles_skipped = sqlite3_column_int64(st, 20);
    s->started_at = strs[5];
    s->indexed_at = strs[6];
    s->settings = strs[7];
    s->tile_size = sqlite3_column_int(st, 24);
    s->stride = sqlite3_column_int(st, 25);
    s->src_width = sqlite3_column_int(st, 26);
    s->src_height = sqlite3_column_int(st, 27);
    s->src_bands = sqlite3_column_int(st, 28);
    /* schema 1 indexed georeferenced scenes only */
    s->georef = sqlite3_column_type(st, 29) == SQLITE_NULL ? 2 : sqlite3_column_int(st, 29);
    s->gsd = sqlite3_column_double(st, 30);
    s->datetime = strs[8];
    s->start_datetime = strs[9];
    s->end_datetime = strs[10];
    s->datetime_source = strs[11];
    s->stac_item = strs[12];
    s->stac_collection = strs[13];
    s->stac_asset = strs[14];
    *out = s;
    return RSCLIP_OK;
}

static int get_scene_where(rsclip_index *idx, const char *where, int64_t id, const char *path,
                           rsclip_scene_info **out) {
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " SCENE_COLS " FROM scenes WHERE %s", where);
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, sql, &st);
    if (rc) return rc;
    if (path)
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = scene_from_row(idx, st, out);
    else if (r == SQLITE_DONE)
        rc = path ? rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no scene %s", idx->path, path)
                  : rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no scene with id %lld", idx->path,
                                  (long long)id);
    else
        rc = rsclip__idx_db_error(idx, "reading a scene");
    sqlite3_finalize(st);
    return rc;
}

int rsclip_index_get_scene(rsclip_index *idx, int64_t scene_id, rsclip_scene_info **out) {
    if (!idx || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_get_scene: NULL argument");
    *out = NULL;
    return get_scene_where(idx, "id = ?1", scene_id, NULL, out);
}

int rsclip_index_find_scene(rsclip_index *idx, const char *path, rsclip_scene_info **out) {
    if (!idx || !out || !path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_find_scene: NULL argument");
    *out = NULL;
    return get_scene_where(idx, "path = ?1", 0, path, out);
}

int rsclip_index_scene_windows(rsclip_index *idx, int64_t scene_id, rsclip_tile_window **out,
                               size_t *n) {
    if (!idx || !out || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_scene_windows: NULL argument");
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx,
                                 "SELECT xoff, yoff, xsize, ysize FROM tiles WHERE scene_id = ?1 "
                                 "ORDER BY yoff, xoff, ysize, xsize",
                                 &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    size_t cap = 0, cnt = 0;
    rsclip_tile_window *a = NULL;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap && (rc = rsclip__idx_grow(idx, &a, &cap, sizeof *a, 256))) break;
        if ((rc = rsclip__idx_column_window(idx, scene_id, st, 0, &a[cnt]))) break;
        cnt++;
    }
    if (!rc && r != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "reading tile windows");
    sqlite3_finalize(st);
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    *n = cnt;
    return RSCLIP_OK;
}

int rsclip_index_scene_tiles(rsclip_index *idx, int64_t scene_id, int64_t **ids,
                             rsclip_tile_window **windows, size_t *n) {
    if (!idx || !ids || !n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_scene_tiles: NULL argument");
    *ids = NULL;
    if (windows) *windows = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(
        idx,
        "SELECT t.fid, t.xoff, t.yoff, t.xsize, t.ysize, s.width, s.height FROM "
        "tiles t JOIN scenes s ON s.id = t.scene_id WHERE t.scene_id = ?1 "
        "ORDER BY t.fid",
        &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    size_t cap = 0, cnt = 0;
    int64_t *a = NULL;
    rsclip_tile_window *w = NULL;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t wcap = cap; /* both arrays grow in step */
            if ((rc = rsclip__idx_grow(idx, &w, &wcap, sizeof *w, 256)) ||
                (rc = rsclip__idx_grow(idx, &a, &cap, sizeof *a, 256)))
                break;
        }
        a[cnt] = sqlite3_column_int64(st, 0);
        if ((rc = rsclip__idx_column_window(idx, a[cnt], st, 1, &w[cnt]))) break;
        if ((rc = rsclip__idx_check_window(idx, a[cnt], &w[cnt], sqlite3_column_int64(st, 5),
                                           sqlite3_column_int64(st, 6))))
            break;
        cnt++;
    }
    if (!rc && r != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "reading the tiles of a scene");
    sqlite3_finalize(st);
    if (rc) {
        free(a);
        free(w);
        return rc;
    }
    *ids = a;
    if (windows)
        *windows = w;
    else
        free(w);
    *n = cnt;
    return RSCLIP_OK;
}

/* ---- the tile writer ------------------------------------------------------------------------- */

static int check_record(rsclip_index *idx, const rsclip_tile_record *t, size_t i) {
    const rsclip_tile_window *w = &t->window;
    if (w->xoff < 0 || w->yoff < 0 || w->xsize <= 0 || w->ysize <= 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile %zu: bad window %d,%d %dx%d",
                             idx->path, i, w->xoff, w->yoff, w->xsize, w->ysize);
    if (!(t->valid_fraction >= 0.0 && t->valid_fraction <= 1.0))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile %zu: valid_fraction out of range",
                             idx->path, i);
    for (int k = 0; k < 8; k++)
        if (!isfinite(t->corners[k]))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile %zu: corner not finite",
                                 idx->path, i);
    if (!t->footprint && t->n_footprint == 0) return RSCLIP_OK; /* pixel coordinates */
    if (!(t->lon >= -180.0 && t->lon <= 180.0 && t->lat >= -90.0 && t->lat <= 90.0))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile %zu: centre (%g, %g) is not lon/lat",
                             idx->path, i, t->lon, t->lat);
    if (!t->footprint || t->n_footprint < 3 || t->n_footprint > (1u << 20))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: tile %zu: footprint needs >= 3 points",
                             idx->path, i);
    for (size_t k = 0; k < t->n_footprint; k++) {
        double x = t->footprint[2 * k], y = t->footprint[2 * k + 1];
        if (!(x >= -180.0 && x <= 180.0 && y >= -90.0 && y <= 90.0))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "%s: tile %zu: footprint point %zu (%g, %g) is not lon/lat",
                                 idx->path, i, k, x, y);
    }
    return RSCLIP_OK;
}

/* Normalise v[dim] into out as little-endian float32 bytes. */
static int pack_vector(const float *v, int dim, uint8_t *out) {
    double ss = 0.0;
    for (int k = 0; k < dim; k++) ss += (double)v[k] * v[k];
    if (!(ss > 0.0) || !isfinite(ss)) return -1;
    double inv = 1.0 / sqrt(ss);
    const uint16_t one = 1;
    uint8_t le;
    memcpy(&le, &one, 1);
    for (int k = 0; k < dim; k++) {
        float f = (float)(v[k] * inv);
        uint8_t b[4];
        memcpy(b, &f, 4);
        if (le) {
            memcpy(out + 4 * k, b, 4);
        } else {
            for (int j = 0; j < 4; j++) out[4 * k + j] = b[3 - j];
        }
    }
    return 0;
}

typedef struct add_ctx {
    int64_t scene_id;
    size_t n;
    const rsclip_tile_record *tiles;
    const float *vecs;
    int dim;
    int64_t *ids;
    uint8_t *vbuf; /* [dim * 4] */
    uint8_t *gbuf; /* geometry scratch */
    size_t gcap;
    double env[4]; /* batch extent: minx, miny, maxx, maxy */
} add_ctx;

/* The scene's grid size (NOT_FOUND if there is no such scene). */
static int scene_grid(rsclip_index *idx, int64_t scene_id, int64_t *w, int64_t *h) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, "SELECT width, height FROM scenes WHERE id = ?1", &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, scene_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *w = sqlite3_column_int64(st, 0);
        *h = sqlite3_column_int64(st, 1);
    } else if (r == SQLITE_DONE) {
        rc = rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no scene with id %lld", idx->path,
                           (long long)scene_id);
    } else {
        rc = rsclip__idx_db_error(idx, "looking up a scene");
    }
    sqlite3_finalize(st);
    return rc;
}

static int add_impl(rsclip_index *idx, add_ctx *c) {
    int64_t gw = 0, gh = 0;
    int rc = scene_grid(idx, c->scene_id, &gw, &gh);
    if (rc) return rc;
    for (size_t i = 0; i < c->n; i++) /* windows read back index memory: none outside the grid */
        if ((rc = rsclip__idx_check_window(idx, (int64_t)i, &c->tiles[i].window, gw, gh)))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s", rsclip_last_error());
    sqlite3_stmt *ti = NULL, *ve = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const rsclip_tile_record *t = &c->tiles[i];
        size_t gsz = 0;
        if (t->footprint) {
            gsz = rsclip__idx_gpkg_polygon_size(t->footprint, t->n_footprint);
            if (gsz > c->gcap) {
                uint8_t *nb = rsclip__realloc(c->gbuf, gsz);
                if (!nb) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
                c->gbuf = nb;
                c->gcap = gsz;
            }
            gsz = rsclip__idx_gpkg_polygon_encode(t->footprint, t->n_footprint, 4326, c->gbuf);
        }
        for (size_t k = 0; t->footprint && k < t->n_footprint; k++) {
            double x = t->footprint[2 * k], y = t->footprint[2 * k + 1];
            if (x < c->env[0]) c->env[0] = x;
            if (y < c->env[1]) c->env[1] = y;
            if (x > c->env[2]) c->env[2] = x;
            if (y > c->env[3]) c->env[3] = y;
        }
        if ((rc = rsclip__idx_cached(
                 idx, IDX_ST_INSERT_TILE,
                 "INSERT INTO tiles (geom, scene_id, xoff, yoff, xsize, ysize, "
                 "valid_fraction, lon, lat, ul_x, ul_y, ur_x, ur_y, lr_x, lr_y, "
                 "ll_x, ll_y, fid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                 "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                 &ti)))
            return rc;
        if (t->footprint)
            sqlite3_bind_blob(ti, 1, c->gbuf, (int)gsz, SQLITE_STATIC);
        else
            sqlite3_bind_null(ti, 1);
        sqlite3_bind_int64(ti, 2, c->scene_id);
        sqlite3_bind_int(ti, 3, t->window.xoff);
        sqlite3_bind_int(ti, 4, t->window.yoff);
        sqlite3_bind_int(ti, 5, t->window.xsize);
        sqlite3_bind_int(ti, 6, t->window.ysize);
        sqlite3_bind_double(ti, 7, t->valid_fraction);
        if (t->footprint) {
            sqlite3_bind_double(ti, 8, t->lon);
            sqlite3_bind_double(ti, 9, t->lat);
        } else { /* no WGS84 position: stays NULL */
            sqlite3_bind_null(ti, 8);
            sqlite3_bind_null(ti, 9);
        }
        for (int k = 0; k < 8; k++) sqlite3_bind_double(ti, 10 + k, t->corners[k]);
        if (t->id > 0)
            sqlite3_bind_int64(ti, 18, t->id);
        else
            sqlite3_bind_null(ti, 18);
        int r = sqlite3_step(ti);
        if (r != SQLITE_DONE) {
            if (sqlite3_extended_errcode(idx->db) == SQLITE_CONSTRAINT_UNIQUE)
                return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                     "%s: scene %lld already has the tile window %d,%d %dx%d",
                                     idx->path, (long long)c->scene_id, t->window.xoff,
                                     t->window.yoff, t->window.xsize, t->window.ysize);
            return rsclip__idx_db_error(idx, "inserting a tile");
        }
        int64_t id = sqlite3_last_insert_rowid(idx->db);
        if (c->ids) c->ids[i] = id;
        pack_vector(c->vecs + i * (size_t)c->dim, c->dim, c->vbuf);
        if ((rc = rsclip__idx_cached(idx, IDX_ST_INSERT_VEC,
                                     "INSERT INTO embeddings (tile_id, vec) VALUES (?1, ?2)", &ve)))
            return rc;
        sqlite3_bind_int64(ve, 1, id);
        sqlite3_bind_blob(ve, 2, c->vbuf, c->dim * 4, SQLITE_STATIC);
        if (sqlite3_step(ve) != SQLITE_DONE)
            return rsclip__idx_db_error(idx, "inserting an embedding");
    }
    sqlite3_reset(ti);
    sqlite3_reset(ve);
    if (!(c->env[0] <= c->env[2])) return rsclip__idx_touch(idx); /* no footprint in this batch */
    sqlite3_stmt *st; /* scenes.tiles_stored follows by trigger */
    if ((rc = rsclip__idx_prepare(idx,
                                  "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?1), ?1), "
                                  "min_y = min(coalesce(min_y, ?2), ?2), "
                                  "max_x = max(coalesce(max_x, ?3), ?3), "
                                  "max_y = max(coalesce(max_y, ?4), ?4), "
                                  "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                                  "WHERE table_name = 'tiles'",
                                  &st)))
        return rc;
    for (int k = 0; k < 4; k++) sqlite3_bind_double(st, k + 1, c->env[k]);
    if ((rc = step_done(idx, st, "updating gpkg_contents"))) return rc;
    return rsclip__idx_touch(idx);
}

int rsclip_index_add_tiles(rsclip_index *idx, int64_t scene_id, size_t n,
                           const rsclip_tile_record *tiles, const float *vecs, int64_t *tile_ids) {
    if (!idx) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_add_tiles: no index");
    if (n == 0) return RSCLIP_OK;
    if (!tiles || !vecs)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: add_tiles: tiles or vectors missing",
                             idx->path);
    int rc = rsclip__idx_writable(idx, "add tiles");
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = check_record(idx, &tiles[i], i))) return rc;
    int64_t dim = 0;
    if ((rc = rsclip__idx_meta_int(idx, "embed_dim", &dim))) return rc;
    if (dim <= 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: no model bound: call rsclip_index_bind_model before adding "
                             "tiles",
                             idx->path);
    add_ctx c = {scene_id, n,    tiles, vecs, (int)dim,
                 tile_ids, NULL, NULL,  0,    {INFINITY, INFINITY, -INFINITY, -INFINITY}};
    c.vbuf = rsclip__malloc((size_t)dim * 4);
    if (!c.vbuf) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    for (size_t i = 0; i < n; i++) {
        if (pack_vector(vecs + i * (size_t)dim, (int)dim, c.vbuf) != 0) {
            free(c.vbuf);
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "%s: tile %zu: embedding is zero or not finite", idx->path, i);
        }
    }
    rc = rsclip__idx_begin_write(idx);
    if (!rc) rc = rsclip__idx_end(idx, add_impl(idx, &c));
    free(c.vbuf);
    free(c.gbuf);
    return rc;
}
