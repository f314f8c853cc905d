/*
 * rsclip/index.h -- the index file: scenes, tile footprints and tile embeddings in one SQLite file
 * that is also a valid GeoPackage (GIS tools open its `tiles` layer and `scenes` table directly).
 *
 * Writing (the indexer: one writer per file):
 *
 *     rsclip_index *idx;
 *     if (rsclip_index_open("city.gpkg", RSCLIP_INDEX_CREATE, &idx) != RSCLIP_OK)
 *         fprintf(stderr, "rsclip: %s\n", rsclip_last_error());
 *     char *fp = NULL;                           // a fingerprint recorded already, if any
 *     rsclip_index_get_meta(idx, "model_fingerprint", &fp);
 *     rsclip_index_bind_model(idx, mi->name, rsclip_model_fingerprint_for(model, fp),
 *                             mi->embed_dim, "resize 384 ...");   // sha256 (or legacy) identity
 *     rsclip_free(fp);
 *     rsclip_scene_info s = {0};                 // path, file_size, mtime_ns, checksum, crs...
 *     int64_t sid; int state;
 *     rsclip_index_begin_scene(idx, &s, force, &sid, &state);
 *     if (state != RSCLIP_SCENE_UNCHANGED) {
 *         rsclip_tile_window *done; size_t n_done;   // resume: windows already stored
 *         rsclip_index_scene_windows(idx, sid, &done, &n_done);
 *         ... for each batch of new tiles: rsclip_index_add_tiles(idx, sid, n, recs, vecs, NULL);
 *         rsclip_index_complete_scene(idx, sid, n_skipped);
 *         rsclip_free(done);
 *     }
 *     rsclip_index_close(idx);
 *
 * Every write call is one SQLite transaction: a process killed at any moment (kill -9) leaves a
 * valid index holding every batch whose add call returned (after a power loss the index is still
 * valid but may lack the last batches: WAL with synchronous=NORMAL); the next run sees the scene
 * still 'indexing' (RSCLIP_SCENE_RESUMED) and skips the windows already stored. A failed write
 * (disk full: RSCLIP_ERR_IO; other SQLite errors: RSCLIP_ERR_DB) is rolled back whole, and the
 * message names the file and keeps SQLite's words.
 *
 * Searching (any number of readers, also while a writer runs):
 *
 *     rsclip_index_open("city.gpkg", RSCLIP_INDEX_READONLY, &idx);
 *     rsclip_index_check_model(idx, rsclip_model_fingerprint_for(model, info.model_fingerprint),
 *                              mi->embed_dim);                   // same model?
 *     rsclip_embeddings *e;
 *     rsclip_index_load_embeddings(idx, &e);     // e->vecs: [e->n, e->dim], e->ids: [e->n]
 *     ... score, top-k ...
 *     rsclip_tile_info *t;
 *     rsclip_index_get_tile(idx, e->ids[best], &t);  // window, scene, lon/lat, footprint
 *     rsclip_free(t);
 *     rsclip_embeddings_free(e);
 *
 * File format: GeoPackage 1.3 (application_id 'GPKG', user_version 10300; those two header fields
 * belong to GeoPackage), with the R-tree extension on tiles.geom. rsclip's own schema version is
 * the rsclip_meta row 'schema_version' (beside 'format' = 'rsclip-index'). Opening refuses, naming
 * the file: a newer schema version (RSCLIP_ERR_UNSUPPORTED), and anything that is not an rsclip
 * index -- random bytes, a plain SQLite file, a GeoPackage without rsclip tables
 * (RSCLIP_ERR_FORMAT); a file refused is left byte for byte as it was (its journal mode is set
 * only once it is known to be an index). An older schema is upgraded on a writable open. Tables:
 * rsclip_meta(key, value); scenes; tiles (fid, geom POLYGON EPSG:4326, scene_id, xoff, yoff, xsize,
 * ysize, valid_fraction, lon, lat, ul_x..ll_y); embeddings(tile_id -> tiles.fid, vec = embed_dim
 * little-endian float32, L2 norm 1).
 *
 * Threading: an rsclip_index handle is one SQLite connection: use it from one thread at a time.
 * Open one handle per thread. The file is in WAL mode: readers (in this or other processes) run
 * concurrently with one writer and see only committed batches; a second writer waits up to the
 * busy timeout (RSCLIP_INDEX_BUSY_TIMEOUT_MS) and then fails with RSCLIP_ERR_DB. Do not carry a
 * handle across fork().
 *
 * Read-only access: RSCLIP_INDEX_READONLY never needs write access to the file or its folder (a
 * read-only folder or mount, another user's file). A writer handle that closes while no other
 * connection has the file open leaves it in rollback-journal mode, which any reader opens as it
 * is (the next writer switches back to WAL). A file still in WAL mode whose -shm file is missing
 * and cannot be created (no WAL connection can be running then) is read without locks (SQLite's
 * immutable=1); every read transaction of such a handle then checks that the file is unchanged
 * and fails with RSCLIP_ERR_IO ("changed while it was read") otherwise. A -wal file holding
 * changes that cannot be folded in without write access is refused (RSCLIP_ERR_IO, naming it).
 *
 * Spatial queries treat lon/lat as a plane: a footprint that crosses the antimeridian should be
 * split (or shifted) by the caller before it is stored.
 */
#ifndef RSCLIP_INDEX_H
#define RSCLIP_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "rsclip/tiler.h" /* rsclip_georef */

#ifdef __cplusplus
extern "C" {
#endif

/* Schema version written by this library (the highest sql/NNN_*.sql file). */
#define RSCLIP_INDEX_SCHEMA_VERSION 3
/* How long a call waits for another connection's lock before failing with RSCLIP_ERR_DB. */
#define RSCLIP_INDEX_BUSY_TIMEOUT_MS 30000

/* rsclip_index_open flags */
#define RSCLIP_INDEX_READWRITE 0x0 /* existing index, read and write */
#define RSCLIP_INDEX_READONLY 0x1  /* existing index, no writes (searching) */
#define RSCLIP_INDEX_CREATE 0x2    /* read-write; create the file (and schema) if missing */

typedef struct rsclip_index rsclip_index;

/* Open (or with RSCLIP_INDEX_CREATE create) an index file. On success *out owns the connection;
 * release it with rsclip_index_close. On failure *out is NULL and the message names the path. */
int rsclip_index_open(const char *path, unsigned flags, rsclip_index **out);

/* Close the connection (checkpoints the WAL; a writer alone on the file leaves it in
 * rollback-journal mode, see "Read-only access"). NULL is a no-op. */
void rsclip_index_close(rsclip_index *idx);

/* The path given to rsclip_index_open (owned by idx). */
const char *rsclip_index_path(const rsclip_index *idx);

/* ---- meta ------------------------------------------------------------------------------------ */

/* Set a meta key (value NULL deletes it). Keys owned by the library (format, schema_version,
 * model_id, model_fingerprint, embed_dim, dtype, n_embeddings) are refused with
 * RSCLIP_ERR_INVALID_ARG. */
int rsclip_index_set_meta(rsclip_index *idx, const char *key, const char *value);

/* Get a meta value: *value is a new string (free with rsclip_free); RSCLIP_ERR_NOT_FOUND (and
 * *value NULL) when the key is absent. */
int rsclip_index_get_meta(rsclip_index *idx, const char *key, char **value);

/* ---- model ----------------------------------------------------------------------------------- */

/* Tie the index to a model. The first call on an index records model_id, fingerprint, dim and
 * the preprocessing description (may be NULL); later calls succeed if fingerprint and dim match
 * and fail with RSCLIP_ERR_MISMATCH ("INDEX was built with model X (fingerprint F, dim D), not
 * Y (fingerprint G, dim E)") otherwise. Must precede rsclip_index_add_tiles. */
int rsclip_index_bind_model(rsclip_index *idx, const char *model_id, const char *fingerprint,
                            int dim, const char *preprocessing);

/* Read-only check of the same rule: RSCLIP_OK if the index was built with this fingerprint and
 * dim, RSCLIP_ERR_MISMATCH if not, RSCLIP_ERR_NOT_FOUND if no model is recorded yet. */
int rsclip_index_check_model(rsclip_index *idx, const char *fingerprint, int dim);

/* ---- summary --------------------------------------------------------------------------------- */

typedef struct rsclip_index_info {
    int schema_version;
    int embed_dim;               /* 0 while no model is bound */
    char model_id[256];          /* "" while no model is bound */
    char model_fingerprint[128]; /* "" while no model is bound */
    char dtype[16];              /* "float32" */
    char tool_version[32];       /* rsclip version that last wrote the index */
    char created_at[32];         /* ISO 8601 UTC */
    char updated_at[32];         /* ISO 8601 UTC of the last write ("" if none) */
    int64_t n_scenes;
    int64_t n_scenes_complete;
    int64_t n_tiles;
    int64_t n_embeddings; /* kept by triggers: no scan of the vectors */
    int has_extent;       /* 0 when there are no tiles */
    double extent[4];     /* min lon, min lat, max lon, max lat over all tile footprints */
} rsclip_index_info;

/* Fill *info from one consistent snapshot of the file. */
int rsclip_index_get_info(rsclip_index *idx, rsclip_index_info *info);

/* Full consistency check: SQLite integrity_check and foreign_key_check, the R-tree against the
 * tiles (rtreecheck + one entry per tile with matching bounds), one embedding of the right size
 * per tile, scenes' tiles_stored against their tiles. RSCLIP_OK or RSCLIP_ERR_FORMAT naming the
 * first problem. Reads the whole file. */
int rsclip_index_verify(rsclip_index *idx);

/* ---- scenes ---------------------------------------------------------------------------------- */

typedef enum rsclip_scene_status {
    RSCLIP_SCENE_INDEXING = 0, /* started, not all tiles stored yet */
    RSCLIP_SCENE_COMPLETE = 1
} rsclip_scene_status;

/* Outcome of rsclip_index_begin_scene / rsclip_index_scene_state */
enum {
    RSCLIP_SCENE_NEW = 0,       /* not in the index (begin: inserted, no tiles) */
    RSCLIP_SCENE_UNCHANGED = 1, /* same file, complete: nothing to do */
    RSCLIP_SCENE_RESUMED = 2,   /* same file, interrupted: stored tiles kept, add the rest */
    RSCLIP_SCENE_CHANGED = 3    /* file changed (or forced): begin replaced it, no tiles left */
};

/* One scene. As input (begin_scene) the caller fills the descriptive fields; pointers may be NULL
 * except path. As output (get_scene/find_scene) every field is set and the strings live in the
 * same allocation as the struct. */
typedef struct rsclip_scene_info {
    int64_t id;             /* output; as input to begin_scene, > 0 asks for this id when the
                               scene is NEW (parts of a sharded index: plan ordinal + 1) */
    const char *path;       /* as given by the caller (the identity of a scene) */
    int64_t file_size;      /* bytes */
    int64_t mtime_ns;       /* modification time, nanoseconds since the epoch */
    const char *checksum;   /* any text the caller computes; NULL = not computed */
    const char *crs_wkt;    /* scene CRS, WKT */
    int epsg;               /* 0 if none */
    double geotransform[6]; /* GDAL geotransform */
    int width, height;      /* pixels */
    const char *bands;      /* bands used, e.g. "4,3,2" */
    const char *scaling;    /* scaling description (JSON text) */
    int64_t tiles_planned;  /* windows the tiler will produce (0 = unknown) */
    /* Schema 2 (0 / NULL in scenes indexed by schema 1, which did not record them): */
    const char *settings;  /* the tiling settings asked for (rsclip_tiler_settings: canonical
                              JSON); part of the scene's identity, see rsclip_index_scene_state */
    int tile_size, stride; /* the tile grid, in grid pixels */
    int src_width, src_height, src_bands; /* the source raster; the grid (width, height) differs
                                             from it after resampling to a gsd */
    rsclip_georef georef;                 /* what the footprints were made with */
    double gsd;                           /* metres per grid pixel (0 = unknown) */
    /* Schema 3 (NULL when unknown; not part of the scene's identity): when it was taken, ISO
     * 8601 UTC (rsclip/time.h): an instant in datetime, or an interval in start_datetime and
     * end_datetime (end exclusive); datetime_source is "stac", "option", "metadata" or "name".
     * stac_*: the STAC item, collection and asset key the scene was read from. */
    const char *datetime, *start_datetime, *end_datetime, *datetime_source;
    const char *stac_item, *stac_collection, *stac_asset;
    rsclip_scene_status status; /* output */
    int64_t tiles_stored;       /* output: tiles in the index */
    int64_t tiles_skipped;      /* output: as given to rsclip_index_complete_scene */
    const char *started_at;     /* output: ISO 8601 UTC */
    const char *indexed_at;     /* output: ISO 8601 UTC of completion, NULL while indexing */
} rsclip_scene_info;

/* Where the scene (path, file_size, mtime_ns, checksum, settings of *scene) stands in the index,
 * without writing: *state is one of RSCLIP_SCENE_NEW/UNCHANGED/RESUMED/CHANGED and *scene_id the
 * stored scene (0 when NEW). The scene is the same when size and mtime_ns match and, when both
 * the caller's and the stored value are non-NULL, the checksums match and the settings match.
 * scene_id may be NULL. */
int rsclip_index_scene_state(rsclip_index *idx, const rsclip_scene_info *scene, int64_t *scene_id,
                             int *state);

/* Make the scene ready to receive tiles, in one transaction, and report *state as above:
 *   NEW        a new scene row ('indexing');
 *   UNCHANGED  nothing written (pass force to re-index it anyway: then CHANGED);
 *   RESUMED    the descriptive fields are updated, stored tiles are kept;
 *   CHANGED    (or force) its tiles and embeddings are deleted and the row rewritten ('indexing').
 * *scene_id receives the scene id (kept across replacement). */
int rsclip_index_begin_scene(rsclip_index *idx, const rsclip_scene_info *scene, int force,
                             int64_t *scene_id, int *state);

/* Mark a scene complete (indexed_at = now) and record how many windows the caller skipped
 * (no data). */
int rsclip_index_complete_scene(rsclip_index *idx, int64_t scene_id, int64_t tiles_skipped);

/* Replace a scene's time and STAC fields (scene->datetime .. stac_asset; NULL clears) without
 * touching its tiles: they are not part of its identity. NOT_FOUND if absent. */
int rsclip_index_set_scene_time(rsclip_index *idx, int64_t scene_id,
                                const rsclip_scene_info *scene);

/* Delete a scene with its tiles and embeddings (one transaction). NOT_FOUND if absent. */
int rsclip_index_delete_scene(rsclip_index *idx, int64_t scene_id);

/* Delete n scenes in ONE transaction: all of them, or (any absent: NOT_FOUND; any error) none.
 * The vector cache (INDEX.rsvec) is rebuilt by the next session, as after any write. */
int rsclip_index_delete_scenes(rsclip_index *idx, const int64_t *scene_ids, size_t n);

/* Scene ids in id order: *ids is a new array of *n entries (rsclip_free; NULL when n = 0). */
int rsclip_index_list_scenes(rsclip_index *idx, int64_t **ids, size_t *n);

/* One scene by id or by path: *out is one allocation (rsclip_free). NOT_FOUND if absent. */
int rsclip_index_get_scene(rsclip_index *idx, int64_t scene_id, rsclip_scene_info **out);
int rsclip_index_find_scene(rsclip_index *idx, const char *path, rsclip_scene_info **out);

/* ---- tiles ----------------------------------------------------------------------------------- */

/* A pixel window of a scene. */
typedef struct rsclip_tile_window {
    int xoff, yoff, xsize, ysize;
} rsclip_tile_window;

/* The windows stored for a scene, sorted by (yoff, xoff, ysize, xsize): *out is a new array
 * (rsclip_free; NULL when n = 0). The resume step skips these. */
int rsclip_index_scene_windows(rsclip_index *idx, int64_t scene_id, rsclip_tile_window **out,
                               size_t *n);

/* The tiles of a scene in id order: *ids (and, if windows is not NULL, *windows) are new arrays
 * of *n entries (rsclip_free; NULL when n = 0). */
int rsclip_index_scene_tiles(rsclip_index *idx, int64_t scene_id, int64_t **ids,
                             rsclip_tile_window **windows, size_t *n);

/* One tile to store. */
typedef struct rsclip_tile_record {
    int64_t id; /* > 0: store with this tile id (a part of a sharded index: global tile number
                   + 1); 0: the next free id */
    rsclip_tile_window window;
    double valid_fraction;   /* share of valid (not nodata) pixels, 0..1 */
    double lon, lat;         /* tile centre, WGS 84 */
    double corners[8];       /* window corners in the scene CRS: UL, UR, LR, LL as x,y pairs */
    const double *footprint; /* WGS 84 footprint ring: n_footprint lon,lat pairs (closing point
                                optional; the stored polygon is closed). NULL (with n_footprint
                                0) for a scene in pixel coordinates: no geometry, lon/lat NULL */
    size_t n_footprint;      /* >= 3, or 0 with footprint NULL */
} rsclip_tile_record;

/* Store n tiles of a scene with their embeddings in ONE transaction: all or nothing.
 * vecs: [n, dim] float32 (dim = the bound model's); each vector is stored L2-normalised. A zero or
 * non-finite vector, a bad footprint, or a window already stored for the scene is refused
 * (RSCLIP_ERR_INVALID_ARG) before anything is written. tile_ids (may be NULL): [n] receives the
 * new tile ids. */
int rsclip_index_add_tiles(rsclip_index *idx, int64_t scene_id, size_t n,
                           const rsclip_tile_record *tiles, const float *vecs, int64_t *tile_ids);

/* A stored tile, one allocation (rsclip_free). footprint points inside it. */
typedef struct rsclip_tile_info {
    int64_t id;
    int64_t scene_id;
    rsclip_tile_window window; /* in the scene's tile grid (resampled pixels after a gsd) */
    double src_window[4];      /* the same window in the source raster's pixels: xoff, yoff,
                                  xsize, ysize (= window at native resolution; fractional after
                                  resampling; gdal_translate -srcwin takes it as is) */
    double valid_fraction;
    int has_lonlat; /* 0: a tile in pixel coordinates (no footprint; lon, lat NaN) */
    double lon, lat;
    double corners[8];  /* scene CRS: UL, UR, LR, LL */
    double bbox[4];     /* min lon, min lat, max lon, max lat of the footprint */
    size_t n_footprint; /* points in footprint, closing point included; 0 without lon/lat */
    double *footprint;  /* [n_footprint][2] lon, lat; NULL without lon/lat */
} rsclip_tile_info;

/* One tile by id: NOT_FOUND if absent. The row is checked against its scene (window inside the
 * scene's grid, positive sizes, a valid footprint): a damaged or hostile row is RSCLIP_ERR_FORMAT
 * naming the index and the tile, never a window outside the raster. */
int rsclip_index_get_tile(rsclip_index *idx, int64_t tile_id, rsclip_tile_info **out);

/* Tiles whose footprint contains (lon, lat) (R-tree, then point in polygon), nearest tile centre
 * first: *ids new array (rsclip_free; NULL when n = 0). */
int rsclip_index_tiles_at(rsclip_index *idx, double lon, double lat, int64_t **ids, size_t *n);

/* Tiles whose footprint intersects the box bbox = {min lon, min lat, max lon, max lat}, in id
 * order. exact = 0: every tile whose footprint envelope meets the box (the R-tree answer);
 * exact = 1: only footprints that really meet the box (polygon-rectangle test). */
int rsclip_index_tiles_in_bbox(rsclip_index *idx, const double bbox[4], int exact, int64_t **ids,
                               size_t *n);

/* ---- embeddings ------------------------------------------------------------------------------ */

/* Every embedding in one contiguous array, in tile-id order. */
typedef struct rsclip_embeddings {
    size_t n;     /* rows */
    int dim;      /* columns */
    int64_t *ids; /* [n] tile ids, ascending */
    float *vecs;  /* [n, dim] row-major, L2-normalised */
} rsclip_embeddings;

/* Load all embeddings (one snapshot, one sequential scan). *out: free with rsclip_embeddings_free.
 * With no model bound the result has n = 0 and dim = 0. */
int rsclip_index_load_embeddings(rsclip_index *idx, rsclip_embeddings **out);

/* Free a loaded set; NULL is a no-op. */
void rsclip_embeddings_free(rsclip_embeddings *e);

/* Fetch the embeddings of n tiles into out: [n, dim] (caller-allocated, dim from
 * rsclip_index_get_info). NOT_FOUND naming the first tile without one. */
int rsclip_index_get_embeddings(rsclip_index *idx, const int64_t *tile_ids, size_t n, float *out);

/* ---- index sets: a file, or a folder of parts ------------------------------------------------ */

/* A sharded index is a folder of parts, part-IIIII-of-NNNNN.gpkg, each a complete index written
 * by one worker of an array job (rsclip/plan.h, rsclip_indexer_run_plan). A set is either one
 * index file or such a folder; readers treat it as one index. Opening a folder refuses, naming both
 * files, parts that do not belong together (another shard count, plan, settings or model) and any
 * other .gpkg in the folder; missing parts (a job still running or failed) are allowed and counted
 * (rsclip_index_set_shards). Tile ids of parts are global (plan tile number + 1) and scene ids the
 * plan's (ordinal + 1), so they agree across parts and with a merge of them. */
typedef struct rsclip_index_set rsclip_index_set;

/* flags: RSCLIP_INDEX_READONLY or RSCLIP_INDEX_READWRITE (a set is never created). */
int rsclip_index_set_open(const char *path, unsigned flags, rsclip_index_set **out);
void rsclip_index_set_close(rsclip_index_set *s); /* NULL-safe */
const char *rsclip_index_set_path(const rsclip_index_set *s);
int rsclip_index_set_count(const rsclip_index_set *s);           /* parts (1 for a file) */
rsclip_index *rsclip_index_set_part(rsclip_index_set *s, int i); /* owned by the set */
/* *count: N of the parts' names (0 for a file); *missing: parts of 0..N-1 absent; *incomplete:
 * parts whose worker has not finished. Any pointer may be NULL. */
int rsclip_index_set_shards(const rsclip_index_set *s, int *count, int *missing, int *incomplete);
/* Before a worker writes shard index/count into folder (which may not exist yet): RSCLIP_OK, or
 * RSCLIP_ERR_MISMATCH naming a part of another shard count already there (the folder would no
 * longer open; another plan or settings are caught when the part itself exists). */
int rsclip_index_set_check_shard(const char *folder, int index, int count);
/* Summary over the parts (counts summed, extent united, times spanned; n_scenes counts a scene
 * once per part that holds some of it: see rsclip_index_set_scenes). */
int rsclip_index_set_info(rsclip_index_set *s, rsclip_index_info *info);
/* The scenes, one per path, in id order: a scene spread over parts has its tile counts summed
 * and is complete once every planned window is stored or skipped. *out: an array of *n scenes,
 * freed with rsclip_index_set_scenes_free. */
int rsclip_index_set_scenes(rsclip_index_set *s, rsclip_scene_info ***out, size_t *n);
void rsclip_index_set_scenes_free(rsclip_scene_info **v, size_t n);

/* ---- merge ---------------------------------------------------------------------------------- */

typedef struct rsclip_merge_report {
    int64_t tiles_added;     /* new in the output */
    int64_t tiles_duplicate; /* already there (same scene path and window): skipped */
    double seconds;
} rsclip_merge_report;

/* Called after each chunk with the tiles read so far; return 0 to stop (RSCLIP_ERR_CANCELLED). */
typedef int (*rsclip_merge_progress_fn)(int64_t tiles_read, void *user);

/* Merge index sets (parts of a sharded index, folders of them, or any indexes of the same model)
 * into out_path (created if missing; else it must be an index of the same model). Streams row by
 * row (memory bounded whatever the size), one transaction per chunk of tiles. Deduplicates: a
 * (scene path, window) already in the output is skipped, so merging an input twice adds nothing
 * and a merge killed at any moment and run again ends with the same content as one never
 * interrupted. Tile and scene ids are kept where they are free (parts of one plan never collide),
 * else new ones are given. Scenes spread over parts become complete once every planned window is
 * in. Refused (nothing written, the message naming both): inputs of another model, a scene path
 * indexed from another file state or with other settings, an output that is one of the inputs
 * or one of their companion files (-wal, -shm, -journal, .rsvec), by any path (symbolic or hard
 * link). rsclip_output_check (rsclip/export.h) with the inputs protected adds the rest of the
 * output rule (an index file inside an input folder, a device); the CLI applies both.
 * The R-tree follows every insert; the vector cache (.rsvec) is rebuilt by the next session. */
int rsclip_index_merge(const char *out_path, const char *const *inputs, int n_inputs,
                       rsclip_merge_progress_fn progress, void *user, rsclip_merge_report *report);

#ifdef __cplusplus
}
#endif
#endif
