/* rsclip_index_merge: parts of a sharded index (or any indexes of one model) into one file,
 * streamed row by row, deduplicated by (scene path, window), one transaction per chunk, so that a
 * merge killed at any moment and run again ends with the same file as one that was never
 * interrupted, and merging an input twice adds nothing. */
#include "base/base.h"
#include "index/index_internal.h"
#include "index/index_files.h"
#include "status/status_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MERGE_CHUNK 8192 /* tiles per transaction */

/* src scene id -> dst scene id (ids are small and dense in practice: a sorted array). */
typedef struct scene_map {
    int64_t *src, *dst;
    size_t n, cap;
} scene_map;

static int map_put(rsclip_index *out, scene_map *m, int64_t s, int64_t d) {
    if (m->n == m->cap) {
        size_t cap = m->cap, cap2 = m->cap;
        if (rsclip__idx_grow(out, &m->src, &cap, sizeof *m->src, 64) ||
            rsclip__idx_grow(out, &m->dst, &cap2, sizeof *m->dst, 64))
            return rsclip_last_status();
        m->cap = cap;
    }
    m->src[m->n] = s;
    m->dst[m->n] = d;
    m->n++;
    return RSCLIP_OK;
}

static int64_t map_get(const scene_map *m, int64_t s) {
    for (size_t i = 0; i < m->n; i++) /* a few scenes per part */
        if (m->src[i] == s) return m->dst[i];
    return 0;
}

/* The meta facts two inputs must share, compared to the output's; the message names both. */
static int same_model(rsclip_index *out, rsclip_index *in) {
    static const char *const keys[] = {"model_fingerprint", "embed_dim"};
    for (int k = 0; k < 2; k++) {
        char *a = NULL, *b = NULL;
        rsclip_index_get_meta(out, keys[k], &a);
        rsclip_index_get_meta(in, keys[k], &b);
        rsclip_clear_error();
        int same = a && b && strcmp(a, b) == 0;
        int rc =
            same ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_MISMATCH,
                                 "cannot merge %s into %s: %s %s, not %s (another model)", in->path,
                                 out->path, keys[k], b ? b : "(none)", a ? a : "(none)");
        rsclip_free(a);
        rsclip_free(b);
        if (rc) return rc;
    }
    return RSCLIP_OK;
}

/* Copy the model binding (and its calibration) into a fresh output. */
static int bind_from(rsclip_index *out, rsclip_index *in) {
    char *id = NULL, *fp = NULL, *dim = NULL, *prep = NULL;
    int rc = rsclip_index_get_meta(in, "model_fingerprint", &fp);
    if (!rc) rc = rsclip_index_get_meta(in, "embed_dim", &dim);
    if (!rc && rsclip_index_get_meta(in, "model_id", &id) != RSCLIP_OK) rsclip_clear_error();
    if (!rc && rsclip_index_get_meta(in, "preprocessing", &prep) != RSCLIP_OK) rsclip_clear_error();
    if (!rc) rc = rsclip_index_bind_model(out, id, fp, atoi(dim), prep);
    static const char *const cal[] = {"logit_scale", "logit_bias"};
    for (int k = 0; k < 2 && !rc; k++) {
        char *v = NULL;
        if (rsclip_index_get_meta(in, cal[k], &v) == RSCLIP_OK)
            rc = rsclip_index_set_meta(out, cal[k], v);
        else
            rsclip_clear_error();
        rsclip_free(v);
    }
    rsclip_free(id);
    rsclip_free(fp);
    rsclip_free(dim);
    rsclip_free(prep);
    return rc;
}

static int scene_differs(const rsclip_scene_info *a, const rsclip_scene_info *b) {
    if (a->file_size != b->file_size || a->mtime_ns != b->mtime_ns) return 1;
    if (a->checksum && b->checksum && strcmp(a->checksum, b->checksum) != 0) return 1;
    if (a->settings && b->settings && strcmp(a->settings, b->settings) != 0) return 1;
    return 0;
}

/* Scenes of one input into the output (one transaction): new paths are added (keeping their id
 * when it is free), known paths must be the same file with the same settings. */
static int merge_scenes(rsclip_index *out, rsclip_index *in, scene_map *map) {
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = rsclip_index_list_scenes(in, &ids, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        rsclip_scene_info *s = NULL, *d = NULL;
        if ((rc = rsclip_index_get_scene(in, ids[i], &s))) break;
        if (rsclip_index_find_scene(out, s->path, &d) == RSCLIP_OK) {
            if (scene_differs(s, d))
                rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                                   "cannot merge %s into %s: scene %s was indexed from another "
                                   "file state or with other settings in each",
                                   in->path, out->path, s->path);
            else
                rc = map_put(out, map, s->id, d->id);
        } else {
            rsclip_clear_error();
            rsclip_scene_info add = *s;
            int64_t free_id = 0, sid = 0;
            int state = 0;
            rsclip_scene_info *taken = NULL;
            if (rsclip_index_get_scene(out, s->id, &taken) != RSCLIP_OK)
                free_id = s->id; /* else the id is another path's here: take a new one */
            rsclip_clear_error();
            rsclip_free(taken);
            add.id = free_id;
            rc = rsclip_index_begin_scene(out, &add, 0, &sid, &state);
            if (!rc) rc = map_put(out, map, s->id, sid);
        }
        rsclip_free(s);
        rsclip_free(d);
    }
    rsclip_free(ids);
    return rc;
}

typedef struct merge_stmts {
    sqlite3_stmt *read, *dup, *taken, *ins_tile, *ins_vec;
} merge_stmts;

static void stmts_free(merge_stmts *m) {
    sqlite3_finalize(m->read);
    sqlite3_finalize(m->dup);
    sqlite3_finalize(m->taken);
    sqlite3_finalize(m->ins_tile);
    sqlite3_finalize(m->ins_vec);
}

static int stmts_prepare(rsclip_index *out, rsclip_index *in, merge_stmts *m) {
    memset(m, 0, sizeof *m);
    int rc = rsclip__idx_prepare(
        in,
        "SELECT t.fid, t.geom, t.scene_id, t.xoff, t.yoff, t.xsize, t.ysize, "
        "t.valid_fraction, t.lon, t.lat, t.ul_x, t.ul_y, t.ur_x, t.ur_y, t.lr_x, "
        "t.lr_y, t.ll_x, t.ll_y, e.vec FROM tiles t JOIN embeddings e ON "
        "e.tile_id = t.fid WHERE t.fid > ?1 ORDER BY t.fid LIMIT ?2",
        &m->read);
    if (!rc)
        rc = rsclip__idx_prepare(
            out,
            "SELECT 1 FROM tiles WHERE scene_id = ?1 AND xoff = ?2 AND yoff = ?3 "
            "AND xsize = ?4 AND ysize = ?5",
            &m->dup);
    if (!rc) rc = rsclip__idx_prepare(out, "SELECT 1 FROM tiles WHERE fid = ?1", &m->taken);
    if (!rc)
        rc = rsclip__idx_prepare(
            out,
            "INSERT INTO tiles (fid, geom, scene_id, xoff, yoff, xsize, ysize, "
            "valid_fraction, lon, lat, ul_x, ul_y, ur_x, ur_y, lr_x, lr_y, ll_x, "
            "ll_y) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
            "?14, ?15, ?16, ?17, ?18)",
            &m->ins_tile);
    if (!rc)
        rc = rsclip__idx_prepare(out, "INSERT INTO embeddings (tile_id, vec) VALUES (?1, ?2)",
                                 &m->ins_vec);
    if (rc) stmts_free(m);
    return rc;
}

static int step_exists(sqlite3_stmt *st) {
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

/* One row of the input's read cursor into the output; *added when it was new. */
static int copy_row(rsclip_index *out, merge_stmts *m, const scene_map *map, int dim, int *added) {
    sqlite3_stmt *r = m->read;
    *added = 0;
    int64_t fid = sqlite3_column_int64(r, 0), dst_scene = map_get(map, sqlite3_column_int64(r, 2));
    if (!dst_scene)
        return rsclip__error(RSCLIP_ERR_FORMAT, "tile %lld has no scene", (long long)fid);
    if (sqlite3_column_bytes(r, 18) != dim * 4)
        return rsclip__error(RSCLIP_ERR_FORMAT, "tile %lld: embedding of %d bytes", (long long)fid,
                             sqlite3_column_bytes(r, 18));
    sqlite3_bind_int64(m->dup, 1, dst_scene);
    for (int k = 0; k < 4; k++) sqlite3_bind_value(m->dup, 2 + k, sqlite3_column_value(r, 3 + k));
    int e = step_exists(m->dup);
    if (e) return e < 0 ? rsclip__idx_db_error(out, "looking up a window") : RSCLIP_OK;
    sqlite3_bind_int64(m->taken, 1, fid);
    int taken = step_exists(m->taken);
    if (taken < 0) return rsclip__idx_db_error(out, "looking up a tile id");
    sqlite3_stmt *t = m->ins_tile;
    if (taken)
        sqlite3_bind_null(t, 1);
    else
        sqlite3_bind_int64(t, 1, fid);
    sqlite3_bind_value(t, 2, sqlite3_column_value(r, 1));
    sqlite3_bind_int64(t, 3, dst_scene);
    for (int k = 3; k < 18; k++) sqlite3_bind_value(t, k + 1, sqlite3_column_value(r, k));
    int s = sqlite3_step(t);
    sqlite3_reset(t);
    if (s != SQLITE_DONE) return rsclip__idx_db_error(out, "inserting a tile");
    sqlite3_bind_int64(m->ins_vec, 1, sqlite3_last_insert_rowid(out->db));
    sqlite3_bind_value(m->ins_vec, 2, sqlite3_column_value(r, 18));
    s = sqlite3_step(m->ins_vec);
    sqlite3_reset(m->ins_vec);
    if (s != SQLITE_DONE) return rsclip__idx_db_error(out, "inserting an embedding");
    *added = 1;
    return RSCLIP_OK;
}

/* The tiles of one input, in chunks of MERGE_CHUNK per output transaction. */
static int merge_tiles(rsclip_index *out, rsclip_index *in, const scene_map *map, int dim,
                       rsclip_merge_report *rep, rsclip_merge_progress_fn progress, void *user) {
    merge_stmts m;
    int rc = stmts_prepare(out, in, &m);
    if (rc) return rc;
    int64_t last = 0;
    for (;;) {
        if ((rc = rsclip__idx_begin_read(in)) || (rc = rsclip__idx_begin_write(out))) break;
        sqlite3_bind_int64(m.read, 1, last);
        sqlite3_bind_int64(m.read, 2, MERGE_CHUNK);
        int n = 0, r;
        while (!rc && (r = sqlite3_step(m.read)) == SQLITE_ROW) {
            int added;
            last = sqlite3_column_int64(m.read, 0);
            if ((rc = copy_row(out, &m, map, dim, &added))) break;
            n++;
            if (added)
                rep->tiles_added++;
            else
                rep->tiles_duplicate++;
        }
        if (!rc && r != SQLITE_DONE) rc = rsclip__idx_db_error(in, "reading tiles");
        sqlite3_reset(m.read);
        if (!rc) rc = rsclip__idx_touch(out);
        rc = rsclip__idx_end(out, rc);
        rsclip__idx_end(in, RSCLIP_OK);
        if (rc || n == 0) break;
        if (progress && !progress(rep->tiles_added + rep->tiles_duplicate, user)) {
            rc = rsclip__error(RSCLIP_ERR_CANCELLED, "merge cancelled");
            break;
        }
    }
    stmts_free(&m);
    if (rc) rsclip__error_prefix(in->path);
    return rc;
}

/* Scene states after the tiles are in: complete once every planned window is stored or was
 * skipped by the inputs (skipped counts summed over the inputs of this merge). */
typedef struct skip_sum {
    char *path;
    int64_t skipped;
} skip_sum;

static int finish_scenes(rsclip_index *out, const skip_sum *sums, size_t n_sums) {
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = rsclip_index_list_scenes(out, &ids, &n);
    if (!rc) rc = rsclip__idx_begin_write(out);
    for (size_t i = 0; i < n && !rc; i++) {
        rsclip_scene_info *s = NULL;
        if ((rc = rsclip_index_get_scene(out, ids[i], &s))) break;
        int64_t skipped = -1;
        for (size_t k = 0; k < n_sums; k++)
            if (strcmp(sums[k].path, s->path) == 0) skipped = sums[k].skipped;
        if (skipped >= 0) {
            int done = s->tiles_planned > 0 && s->tiles_stored + skipped >= s->tiles_planned;
            int64_t sk = done ? s->tiles_planned - s->tiles_stored
                              : (skipped > s->tiles_skipped ? skipped : s->tiles_skipped);
            sqlite3_stmt *st;
            if (!(rc = rsclip__idx_prepare(
                      out,
                      "UPDATE scenes SET tiles_skipped = ?2, status = CASE WHEN ?3 "
                      "THEN 'complete' ELSE status END, indexed_at = CASE WHEN ?3 "
                      "THEN coalesce(indexed_at, strftime('%Y-%m-%dT%H:%M:%fZ', "
                      "'now')) ELSE indexed_at END WHERE id = ?1",
                      &st))) {
                sqlite3_bind_int64(st, 1, s->id);
                sqlite3_bind_int64(st, 2, sk);
                sqlite3_bind_int(st, 3, done);
                if (sqlite3_step(st) != SQLITE_DONE)
                    rc = rsclip__idx_db_error(out, "updating a scene");
                sqlite3_finalize(st);
            }
        }
        rsclip_free(s);
    }
    if (!rc)
        rc = rsclip__idx_exec(
            out,
            "UPDATE gpkg_contents SET min_x = (SELECT min(minx) FROM rtree_tiles_geom), "
            "min_y = (SELECT min(miny) FROM rtree_tiles_geom), "
            "max_x = (SELECT max(maxx) FROM rtree_tiles_geom), "
            "max_y = (SELECT max(maxy) FROM rtree_tiles_geom) "
            "WHERE table_name = 'tiles'",
            "updating the layer extent");
    if (!rc) rc = rsclip__idx_touch(out);
    rc = rsclip__idx_end(out, rc);
    rsclip_free(ids);
    return rc;
}

static int add_skips(rsclip_index *in, skip_sum **sums, size_t *n, size_t *cap) {
    int64_t *ids = NULL;
    size_t m = 0;
    int rc = rsclip_index_list_scenes(in, &ids, &m);
    for (size_t i = 0; i < m && !rc; i++) {
        rsclip_scene_info *s = NULL;
        if ((rc = rsclip_index_get_scene(in, ids[i], &s))) break;
        size_t k = 0;
        while (k < *n && strcmp((*sums)[k].path, s->path) != 0) k++;
        if (k == *n) {
            if (*n == *cap && (rc = rsclip__idx_grow(in, sums, cap, sizeof **sums, 64))) {
                rsclip_free(s);
                break;
            }
            (*sums)[k].path = rsclip__strdup(s->path);
            (*sums)[k].skipped = 0;
            if (!(*sums)[k].path) rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
            (*n)++;
        }
        if (!rc) (*sums)[k].skipped += s->tiles_skipped;
        rsclip_free(s);
    }
    rsclip_free(ids);
    return rc;
}

/* Same file: device and inode (symlinks, other paths, hard links). */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Part p of input i is a file an earlier input or part already is. */
static int seen_before(rsclip_index_set **sets, int i, int p) {
    const char *me = rsclip_index_path(rsclip_index_set_part(sets[i], p));
    for (int j = 0; j <= i; j++)
        for (int q = 0; q < (j < i ? rsclip_index_set_count(sets[j]) : p); q++)
            if (same_file(rsclip_index_path(rsclip_index_set_part(sets[j], q)), me)) return 1;
    return 0;
}

/* The output is never one of the inputs nor one of their companion files (-wal, -shm, -journal,
 * .rsvec), whatever path names it. */
static int check_output(const char *out_path, rsclip_index_set **sets, int n_inputs) {
    char *real = rsclip__path_canon(out_path);
    if (!real) return RSCLIP_OK; /* its folder does not exist: the open says so */
    struct stat st;
    int exists = stat(out_path, &st) == 0;
    int rc = RSCLIP_OK;
    for (int i = 0; i < n_inputs && !rc; i++)
        for (int p = 0; p < rsclip_index_set_count(sets[i]) && !rc; p++) {
            const char *pp = rsclip_index_path(rsclip_index_set_part(sets[i], p));
            if (rsclip__path_is_index_file(real, exists ? &st : NULL, pp))
                rc = rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                   "%s: refusing to write over %s, an input of the merge, or its "
                                   "-wal/-shm/-journal/.rsvec files",
                                   out_path, pp);
        }
    free(real);
    return rc;
}

int rsclip_index_merge(const char *out_path, const char *const *inputs, int n_inputs,
                       rsclip_merge_progress_fn progress, void *user, rsclip_merge_report *report) {
    rsclip_merge_report rep;
    memset(&rep, 0, sizeof rep);
    if (report) *report = rep;
    if (!out_path || !inputs || n_inputs < 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_merge: no output or inputs");
    double t0 = rsclip__mono_s();
    rsclip_index_set **sets = rsclip__calloc((size_t)n_inputs, sizeof *sets);
    if (!sets) return rsclip__error(RSCLIP_ERR_NOMEM, "merge: out of memory");
    int rc = RSCLIP_OK;
    for (int i = 0; i < n_inputs && !rc; i++) {
        rc = rsclip_index_set_open(inputs[i], RSCLIP_INDEX_READONLY, &sets[i]);
        int count = 0, missing = 0, incomplete = 0;
        if (!rc && rsclip_index_set_shards(sets[i], &count, &missing, &incomplete) == RSCLIP_OK &&
            (missing || incomplete)) /* an array job still running, or a failed task */
            rsclip__log(RSCLIP_LOG_WARN,
                        "%s: %d of %d parts missing and %d unfinished: the merge holds only the "
                        "tiles stored so far (merge again when the job is done)",
                        inputs[i], missing, count, incomplete);
    }
    if (!rc) rc = check_output(out_path, sets, n_inputs);
    rsclip_index *out = NULL;
    struct stat ost;
    const int created = stat(out_path, &ost) != 0 && errno == ENOENT; /* a new output */
    if (!rc) rc = rsclip_index_open(out_path, RSCLIP_INDEX_CREATE, &out);
    rsclip_index *first = rc ? NULL : rsclip_index_set_part(sets[0], 0);
    int64_t dim = 0;
    char *bound = NULL;
    if (!rc && rsclip_index_get_meta(out, "model_fingerprint", &bound) == RSCLIP_ERR_NOT_FOUND) {
        rsclip_clear_error();
        rc = bind_from(out, first); /* a new output takes the inputs' model */
    }
    rsclip_free(bound);
    if (!rc) rc = rsclip__idx_meta_int(out, "embed_dim", &dim);
    skip_sum *sums = NULL;
    size_t n_sums = 0, cap_sums = 0;
    for (int i = 0; i < n_inputs && !rc; i++) {
        for (int p = 0; p < rsclip_index_set_count(sets[i]) && !rc; p++) {
            rsclip_index *in = rsclip_index_set_part(sets[i], p);
            if (seen_before(sets, i, p)) continue; /* the same file named twice counts once */
            scene_map map = {0};
            rc = same_model(out, in);
            if (!rc) rc = merge_scenes(out, in, &map);
            if (!rc) rc = merge_tiles(out, in, &map, (int)dim, &rep, progress, user);
            if (!rc) rc = add_skips(in, &sums, &n_sums, &cap_sums);
            free(map.src);
            free(map.dst);
        }
    }
    if (!rc) rc = finish_scenes(out, sums, n_sums);
    for (size_t k = 0; k < n_sums; k++) free(sums[k].path);
    free(sums);
    rsclip_index_close(out);
    /* a new output that failed part-way is no index of its inputs: it goes (an existing one keeps
     * what its committed chunks added: merging is incremental) */
    if (rc && out && created) rsclip__idx_remove_files(out_path);
    for (int i = 0; i < n_inputs; i++) rsclip_index_set_close(sets[i]);
    free(sets);
    rep.seconds = rsclip__mono_s() - t0;
    if (report) *report = rep;
    return rc;
}
