/* Private declarations of the index module (SQLite + GeoPackage geometry helpers). */
#ifndef RSCLIP_INDEX_INTERNAL_H
#define RSCLIP_INDEX_INTERNAL_H

#include "rsclip/index.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Generated from sql/NNN_*.sql by cmake/embed_sql.cmake, sorted by name, {NULL, NULL}-terminated.
 */
struct rsclip_sql_file {
    const char *name;
    const char *text;
};
extern const struct rsclip_sql_file rsclip_sql_files[];
extern const size_t rsclip_sql_file_count;

/* Cached prepared statements (prepared on first use, finalized on close). */
enum { IDX_ST_INSERT_TILE, IDX_ST_INSERT_VEC, IDX_ST_GET_VEC, IDX_ST_GET_TILE, IDX_ST_COUNT };

struct rsclip_index {
    sqlite3 *db;
    char *path;
    int readonly;
    int immutable;       /* opened with immutable=1 (index_readonly.c) */
    uint64_t file_id[5]; /* immutable opens: dev, ino, size, mtime, ctime of the file at open */
    sqlite3_stmt *st[IDX_ST_COUNT];
};

/* Open idx->db on name (a path, or a file: URI with SQLITE_OPEN_URI) with oflags (plus
 * SQLITE_OPEN_NOMUTEX) and set the connection up: extended codes, busy timeout, GeoPackage
 * functions, foreign keys. */
int rsclip__idx_connect(rsclip_index *idx, const char *name, int oflags);

/* ---- read-only access (index_readonly.c) ---- */

/* The first read of a read-only open failed: when SQLite could not serve it because the file is
 * in WAL mode and its -shm file is missing and cannot be created here (a read-only folder or
 * mount, another user's folder), reopen it immutable and return RSCLIP_OK; otherwise (or when
 * that is not safe: a -wal file holding changes) leave the error and return it. */
int rsclip__idx_readonly_fallback(rsclip_index *idx);

/* Immutable opens: RSCLIP_ERR_IO if the file (or its -wal) changed since it was opened. */
int rsclip__idx_immutable_check(rsclip_index *idx);

/* Before a writer's connection closes: switch the file back to rollback-journal mode when no
 * other connection uses it, so readers without write access to the folder can open it. Best
 * effort, never waits. */
void rsclip__idx_leave_wal(rsclip_index *idx);

/* Translate the connection's last SQLite error once: "PATH: WHAT: sqlite message" with
 * RSCLIP_ERR_IO for full disk / I/O errors, RSCLIP_ERR_FORMAT for not-a-database / corruption,
 * RSCLIP_ERR_NOMEM, else RSCLIP_ERR_DB. Returns the code. */
int rsclip__idx_db_error(rsclip_index *idx, const char *what);

/* Run SQL without results; translates errors. */
int rsclip__idx_exec(rsclip_index *idx, const char *sql, const char *what);

/* Prepare (uncached); translates errors. */
int rsclip__idx_prepare(rsclip_index *idx, const char *sql, sqlite3_stmt **st);

/* Grow *arr (an array of elem-byte items with *cap slots) to twice its size, or to first slots
 * when empty; overflow-checked. RSCLIP_ERR_NOMEM naming the index on failure (*arr untouched). */
int rsclip__idx_grow(rsclip_index *idx, void *arr, size_t *cap, size_t elem, size_t first);

/* Cached statement slot (reset and cleared of bindings). */
int rsclip__idx_cached(rsclip_index *idx, int slot, const char *sql, sqlite3_stmt **st);

/* Transactions: begin_write takes the write lock at once (BEGIN IMMEDIATE) so a busy writer fails
 * early; begin_read opens a snapshot. end commits (rc == OK) or rolls back (rc != OK, keeping the
 * error already recorded); returns the final status. */
int rsclip__idx_begin_write(rsclip_index *idx);
int rsclip__idx_begin_read(rsclip_index *idx);
int rsclip__idx_end(rsclip_index *idx, int rc);

/* RSCLIP_ERR_FORMAT naming the index and tile id unless the window lies inside a width x height
 * grid with positive sizes (rows read back are checked before anyone indexes memory by them). */
int rsclip__idx_check_window(rsclip_index *idx, int64_t id, const rsclip_tile_window *w,
                             int64_t width, int64_t height);

/* The four window columns col..col+3 of the current row, refused (RSCLIP_ERR_FORMAT naming the
 * index and id) when a value does not fit an int. */
int rsclip__idx_column_window(rsclip_index *idx, int64_t id, sqlite3_stmt *st, int col,
                              rsclip_tile_window *w);

/* Refuse writes on a read-only handle. */
int rsclip__idx_writable(rsclip_index *idx, const char *what);

/* Stamp tool_version/updated_at in rsclip_meta (inside a write transaction). */
int rsclip__idx_touch(rsclip_index *idx);

/* Read an integer meta value (missing -> *v = 0, RSCLIP_OK). */
int rsclip__idx_meta_int(rsclip_index *idx, const char *key, int64_t *v);

/* ---- GeoPackage geometry (index_gpkg.c) ---- */

/* Register ST_IsEmpty, ST_MinX, ST_MaxX, ST_MinY, ST_MaxY on a connection (the R-tree triggers
 * call them). Returns a SQLite result code. */
int rsclip__idx_register_gpkg_functions(sqlite3 *db);

/* Parsed GeoPackage geometry blob header. */
typedef struct idx_gpkg_geom {
    int empty;
    int has_env;
    double env[4]; /* minx, maxx, miny, maxy (GeoPackage order) */
    int32_t srs_id;
    const uint8_t *wkb;
    size_t wkb_len;
} idx_gpkg_geom;

/* Parse a blob header; when the blob has no envelope and is not empty, the envelope is computed
 * from the WKB. 0 on success, -1 when the blob is malformed. */
int rsclip__idx_gpkg_parse(const uint8_t *b, size_t n, idx_gpkg_geom *g);

/* Bytes needed to encode a polygon with one ring of n points (closing point added when missing). */
size_t rsclip__idx_gpkg_polygon_size(const double *xy, size_t n);

/* Encode xy (n lon,lat pairs) as a GeoPackage POLYGON blob (srs 4326, little endian, envelope)
 * into out (rsclip__idx_gpkg_polygon_size bytes). Returns the bytes written. */
size_t rsclip__idx_gpkg_polygon_encode(const double *xy, size_t n, int32_t srs_id, uint8_t *out);

/* Decode the exterior ring of a 2D polygon WKB: *xy new array (free()) of *n points. 0 on
 * success, -1 malformed or not a 2D polygon, -2 out of memory. */
int rsclip__idx_wkb_polygon_ring(const uint8_t *wkb, size_t len, double **xy, size_t *n);

/* Point in polygon (ring of n points, closed or not): ray casting. */
int rsclip__idx_ring_contains(const double *xy, size_t n, double x, double y);

/* Does the ring (as a polygon) meet the box {minx, miny, maxx, maxy}? */
int rsclip__idx_ring_meets_box(const double *xy, size_t n, const double box[4]);

#endif
