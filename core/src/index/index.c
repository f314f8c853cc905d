/* The index file: open/create (schema from sql/), identification and version refusal, errors,
 * transactions, meta, model binding, summary and verification. */
#include "base/base.h"
#include "index/index_internal.h"
#include "status/status_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Embedding rows are 3-4 KiB: 64 KiB pages hold 15-21 of them with little slack and make the
 * bulk scan mostly sequential reads (4 KiB pages would hold one 768-d row each, 25% empty). */
#define IDX_PAGE_SIZE 65536
#define IDX_GPKG_APPLICATION_ID 0x47504B47

int rsclip__idx_db_error(rsclip_index *idx, const char *what) {
    int ext = sqlite3_extended_errcode(idx->db);
    int code;
    switch (ext & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        code = RSCLIP_ERR_IO;
        break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        code = RSCLIP_ERR_FORMAT;
        break;
    case SQLITE_NOMEM:
        code = RSCLIP_ERR_NOMEM;
        break;
    default:
        code = RSCLIP_ERR_DB;
    }
    int sys = code == RSCLIP_ERR_IO ? sqlite3_system_errno(idx->db) : 0;
    if (sys)
        return rsclip__error(code, "%s: %s: %s (%s)", idx->path, what, sqlite3_errmsg(idx->db),
                             strerror(sys));
    if ((ext & 0xff) == SQLITE_FULL || ext == SQLITE_IOERR_WRITE)
        return rsclip__error(code, "%s: %s: %s (disk full or file size limit?)", idx->path, what,
                             sqlite3_errmsg(idx->db));
    return rsclip__error(code, "%s: %s: %s", idx->path, what, sqlite3_errmsg(idx->db));
}

int rsclip__idx_exec(rsclip_index *idx, const char *sql, const char *what) {
    if (sqlite3_exec(idx->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return rsclip__idx_db_error(idx, what);
    return RSCLIP_OK;
}

int rsclip__idx_prepare(rsclip_index *idx, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v2(idx->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return rsclip__idx_db_error(idx, "preparing a query");
    }
    return RSCLIP_OK;
}

int rsclip__idx_cached(rsclip_index *idx, int slot, const char *sql, sqlite3_stmt **st) {
    if (!idx->st[slot]) {
        if (sqlite3_prepare_v3(idx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &idx->st[slot], NULL) !=
            SQLITE_OK) {
            idx->st[slot] = NULL;
            return rsclip__idx_db_error(idx, "preparing a query");
        }
    } else {
        sqlite3_reset(idx->st[slot]);
        sqlite3_clear_bindings(idx->st[slot]);
    }
    *st = idx->st[slot];
    return RSCLIP_OK;
}

int rsclip__idx_begin_write(rsclip_index *idx) {
    return rsclip__idx_exec(idx, "BEGIN IMMEDIATE", "starting a write transaction");
}

int rsclip__idx_begin_read(rsclip_index *idx) {
    return rsclip__idx_exec(idx, "BEGIN", "starting a read transaction");
}

int rsclip__idx_end(rsclip_index *idx, int rc) {
    if (sqlite3_get_autocommit(idx->db)) return rc; /* nothing open (SQLite may have rolled back) */
    if (rc == RSCLIP_OK) {
        rc = rsclip__idx_exec(idx, "COMMIT", "committing");
        /* what an immutable (lock-free) read saw must not have changed under it */
        if (rc == RSCLIP_OK && idx->immutable) rc = rsclip__idx_immutable_check(idx);
        if (rc == RSCLIP_OK) return rc;
    }
    /* keep the first error: the rollback's own status is secondary */
    for (int i = 0; i < IDX_ST_COUNT; i++)
        if (idx->st[i]) sqlite3_reset(idx->st[i]);
    sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int rsclip__idx_writable(rsclip_index *idx, const char *what) {
    if (idx->readonly)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: %s: index opened read-only", idx->path,
                             what);
    return RSCLIP_OK;
}

static int meta_put(rsclip_index *idx, const char *key, const char *value) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(
        idx, "INSERT OR REPLACE INTO rsclip_meta (key, value) VALUES (?1, ?2)", &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "writing rsclip_meta");
    sqlite3_finalize(st);
    return rc;
}

int rsclip__idx_touch(rsclip_index *idx) {
    return rsclip__idx_exec(idx,
                            "INSERT OR REPLACE INTO rsclip_meta (key, value) VALUES "
                            "('tool_version', 'rsclip " RSCLIP_VERSION_STRING "'), "
                            "('updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                            "writing rsclip_meta");
}

/* Meta value as a new string; *v NULL when absent. */
static int meta_get(rsclip_index *idx, const char *key, char **v) {
    sqlite3_stmt *st;
    *v = NULL;
    int rc = rsclip__idx_prepare(idx, "SELECT value FROM rsclip_meta WHERE key = ?1", &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        *v = rsclip__strdup(t ? t : "");
        if (!*v) rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    } else if (s != SQLITE_DONE) {
        rc = rsclip__idx_db_error(idx, "reading rsclip_meta");
    }
    sqlite3_finalize(st);
    return rc;
}

int rsclip__idx_meta_int(rsclip_index *idx, const char *key, int64_t *v) {
    char *s;
    *v = 0;
    int rc = meta_get(idx, key, &s);
    if (rc || !s) return rc;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: rsclip_meta %s is not an integer: '%s'",
                           idx->path, key, s);
    } else {
        *v = x;
    }
    free(s);
    return rc;
}

/* ---- open ------------------------------------------------------------------------------------ */

/* Apply sql files with versions in (from, to] in one transaction. */
static int apply_schema(rsclip_index *idx, int64_t from) {
    for (size_t i = 0; i < rsclip_sql_file_count; i++) {
        int64_t v = strtoll(rsclip_sql_files[i].name, NULL, 10);
        if (v <= from) continue;
        char what[128];
        snprintf(what, sizeof what, "applying schema %s", rsclip_sql_files[i].name);
        int rc = rsclip__idx_exec(idx, rsclip_sql_files[i].text, what);
        if (rc) return rc;
    }
    int64_t now = 0;
    int rc = rsclip__idx_meta_int(idx, "schema_version", &now);
    if (rc) return rc;
    if (now != RSCLIP_INDEX_SCHEMA_VERSION)
        return rsclip__error(RSCLIP_ERR_INTERNAL,
                             "%s: schema files end at version %lld, library expects %d", idx->path,
                             (long long)now, RSCLIP_INDEX_SCHEMA_VERSION);
    return rsclip__idx_touch(idx);
}

static int query_int(rsclip_index *idx, const char *sql, int64_t *v, const char *what) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, sql, &st);
    if (rc) return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE)
        *v = 0;
    else
        rc = rsclip__idx_db_error(idx, what);
    sqlite3_finalize(st);
    return rc;
}

/* The file is an rsclip index of a version we read: refuse anything else, naming the file. */
static int identify(rsclip_index *idx, int64_t *version) {
    int64_t has_meta = 0, app_id = 0;
    int rc = query_int(idx,
                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                       "name = 'rsclip_meta'",
                       &has_meta, "reading the schema");
    if (rc) return rc;
    char *format = NULL;
    if (has_meta) {
        rc = meta_get(idx, "format", &format);
        if (rc) return rc;
    }
    if (!format || strcmp(format, "rsclip-index") != 0) {
        free(format);
        rc = query_int(idx, "PRAGMA application_id", &app_id, "reading the header");
        if (rc) return rc;
        return rsclip__error(
            RSCLIP_ERR_FORMAT, "%s: not an rsclip index (%s without rsclip tables)", idx->path,
            app_id == IDX_GPKG_APPLICATION_ID ? "a GeoPackage" : "an SQLite database");
    }
    free(format);
    rc = rsclip__idx_meta_int(idx, "schema_version", version);
    if (rc) return rc;
    if (*version > RSCLIP_INDEX_SCHEMA_VERSION)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: index schema version %lld is newer than this rsclip (%s) "
                             "supports (%d): upgrade rsclip",
                             idx->path, (long long)*version, RSCLIP_VERSION_STRING,
                             RSCLIP_INDEX_SCHEMA_VERSION);
    if (*version < 1)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: invalid index schema version %lld", idx->path,
                             (long long)*version);
    return RSCLIP_OK;
}

/* Cheap look at the first bytes so random files get a clear message before SQLite sees them. */
static int sniff(const char *path, int create, int *empty) {
    struct stat sb;
    *empty = 0;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) {
            if (create) {
                *empty = 1;
                return RSCLIP_OK;
            }
            return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no such index file", path);
        }
        return rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: is a directory, not an index file", path);
    if (!S_ISREG(sb.st_mode)) /* a FIFO or device would block or mislead SQLite */
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: not a regular file", path);
    if (sb.st_size == 0) {
        if (create) {
            *empty = 1;
            return RSCLIP_OK;
        }
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not an rsclip index (empty file)", path);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(errno));
    char head[16] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got != sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not an rsclip index (not an SQLite file)",
                             path);
    return RSCLIP_OK;
}

/* No row of foreign_key_check: the schema files keep every reference intact. */
static int check_foreign_keys(rsclip_index *idx) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, "PRAGMA foreign_key_check", &st);
    if (rc) return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: foreign_key_check failed: table %s row %lld",
                           idx->path, (const char *)sqlite3_column_text(st, 0),
                           (long long)sqlite3_column_int64(st, 1));
    else if (s != SQLITE_DONE)
        rc = rsclip__idx_db_error(idx, "foreign_key_check");
    sqlite3_finalize(st);
    return rc;
}

/* Upgrade an older schema in place, in one transaction: all of it or none of it. Foreign keys are
 * off while the schema files run (rebuilding a table drops it, which with foreign keys on would
 * cascade into the tables that refer to it) and are checked before the commit. */
static int migrate(rsclip_index *idx) {
    int rc = rsclip__idx_exec(idx, "PRAGMA foreign_keys = OFF", "disabling foreign keys");
    if (!rc) rc = rsclip__idx_begin_write(idx);
    if (rc) return rc;
    int64_t version = 0;
    rc = identify(idx, &version);
    if (!rc && version < RSCLIP_INDEX_SCHEMA_VERSION) rc = apply_schema(idx, version);
    if (!rc) rc = check_foreign_keys(idx);
    rc = rsclip__idx_end(idx, rc);
    int fk = rsclip__idx_exec(idx, "PRAGMA foreign_keys = ON", "enabling foreign keys");
    return rc ? rc : fk;
}

int rsclip__idx_connect(rsclip_index *idx, const char *name, int oflags) {
    if (sqlite3_open_v2(name, &idx->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        if (!idx->db) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
        return rsclip__idx_db_error(idx, "opening");
    }
    sqlite3_extended_result_codes(idx->db, 1);
    sqlite3_busy_timeout(idx->db, RSCLIP_INDEX_BUSY_TIMEOUT_MS);
    if (rsclip__idx_register_gpkg_functions(idx->db) != SQLITE_OK)
        return rsclip__idx_db_error(idx, "registering SQL functions");
    return rsclip__idx_exec(idx, "PRAGMA foreign_keys = ON", "enabling foreign keys");
}

static int open_impl(rsclip_index *idx, unsigned flags) {
    int create = (flags & RSCLIP_INDEX_CREATE) != 0, empty;
    int rc = sniff(idx->path, create, &empty);
    if (rc) return rc;
    int oflags = idx->readonly ? SQLITE_OPEN_READONLY
                               : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    rc = rsclip__idx_connect(idx, idx->path, oflags);
    if (rc) return rc;

    int64_t n_objects = 0;
    rc = query_int(idx, "SELECT count(*) FROM sqlite_master", &n_objects, "reading the schema");
    /* a read-only open SQLite cannot serve with locks (index_readonly.c) */
    if (rc && idx->readonly && rsclip__idx_readonly_fallback(idx) == RSCLIP_OK)
        rc = query_int(idx, "SELECT count(*) FROM sqlite_master", &n_objects, "reading the schema");
    if (rc) {
        if (rsclip_last_status() == RSCLIP_ERR_FORMAT)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not an rsclip index (%s)", idx->path,
                                 sqlite3_errmsg(idx->db));
        return rc;
    }
    if (n_objects == 0) {
        if (!create)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not an rsclip index (empty database)",
                                 idx->path);
        /* page size must be chosen before the first table; WAL cannot change inside a txn */
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d", IDX_PAGE_SIZE);
        rc = rsclip__idx_exec(idx, sql, "setting the page size");
        if (rc) return rc;
    }
    int64_t version = 0;
    /* A database that is not an index is refused before anything is written to it: switching
     * the journal mode rewrites the header of the user's file. */
    if (n_objects > 0 && (rc = identify(idx, &version))) return rc;
    if (!idx->readonly) {
        rc = rsclip__idx_exec(idx, "PRAGMA journal_mode = WAL", "switching to WAL");
        if (rc) return rc;
        rc = rsclip__idx_exec(idx, "PRAGMA synchronous = NORMAL", "setting synchronous");
        if (rc) return rc;
        /* SQLite's default cache is 2000 KiB: ~30 of these 64 KiB pages. A writer's transaction
         * (a batch of tiles, a merge chunk: the tiles, their R-tree and the window index) then
         * spills pages to the WAL again and again; 64 MiB holds a transaction's working set. */
        rc = rsclip__idx_exec(idx, "PRAGMA cache_size = -65536", "setting the cache size");
        if (rc) return rc;
        /* An INSERT into tiles fires the GeoPackage R-tree triggers, so SQLite keeps a statement
         * journal for it: in a temporary file that is one 64 KiB pwrite per page touched per
         * row (18 per tile in a merge). In memory it costs a few pages per statement. */
        rc = rsclip__idx_exec(idx, "PRAGMA temp_store = MEMORY", "setting temp_store");
        if (rc) return rc;
    }
    if (n_objects == 0) {
        rc = rsclip__idx_exec(idx, "PRAGMA foreign_keys = OFF", "disabling foreign keys");
        if (!rc) rc = rsclip__idx_begin_write(idx);
        if (rc) return rc;
        /* another process may have created it meanwhile */
        rc = query_int(idx, "SELECT count(*) FROM sqlite_master", &n_objects, "reading the schema");
        if (!rc && n_objects == 0) rc = apply_schema(idx, 0);
        rc = rsclip__idx_end(idx, rc);
        if (!rc) rc = rsclip__idx_exec(idx, "PRAGMA foreign_keys = ON", "enabling foreign keys");
        if (rc) return rc;
    }
    rc = identify(idx, &version);
    if (rc) return rc;
    if (version < RSCLIP_INDEX_SCHEMA_VERSION) {
        if (!idx->readonly) return migrate(idx);
        /* A reader of an older file upgrades it through a short-lived writer when it may, then
         * reads the new schema (SQLite notices the change). */
        rsclip_index *w = NULL;
        if (rsclip_index_open(idx->path, RSCLIP_INDEX_READWRITE, &w) != RSCLIP_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", rsclip_last_error());
            return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                                 "%s: index schema version %lld is older than %d and could not "
                                 "be upgraded (%s): upgrade a writable copy",
                                 idx->path, (long long)version, RSCLIP_INDEX_SCHEMA_VERSION, why);
        }
        rsclip_index_close(w);
        rc = identify(idx, &version);
        if (!rc && version != RSCLIP_INDEX_SCHEMA_VERSION)
            rc =
                rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: index schema version %lld after upgrade",
                              idx->path, (long long)version);
    }
    return rc;
}

int rsclip_index_open(const char *path, unsigned flags, rsclip_index **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_open: no path given");
    if ((flags & RSCLIP_INDEX_READONLY) && (flags & RSCLIP_INDEX_CREATE))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: READONLY and CREATE exclude each other",
                             path);
    if (flags & ~(unsigned)(RSCLIP_INDEX_READONLY | RSCLIP_INDEX_CREATE))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: unknown open flags 0x%x", path, flags);
    rsclip_index *idx = rsclip__calloc(1, sizeof *idx);
    if (!idx || !(idx->path = rsclip__strdup(path))) {
        free(idx);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    }
    idx->readonly = (flags & RSCLIP_INDEX_READONLY) != 0;
    int rc = open_impl(idx, flags);
    if (rc) {
        rsclip_index_close(idx);
        return rc;
    }
    *out = idx;
    return RSCLIP_OK;
}

void rsclip_index_close(rsclip_index *idx) {
    if (!idx) return;
    for (int i = 0; i < IDX_ST_COUNT; i++) sqlite3_finalize(idx->st[i]);
    if (idx->db && !idx->readonly) rsclip__idx_leave_wal(idx);
    if (idx->db) sqlite3_close_v2(idx->db);
    free(idx->path);
    free(idx);
}

const char *rsclip_index_path(const rsclip_index *idx) {
    return idx ? idx->path : NULL;
}

/* ---- meta ------------------------------------------------------------------------------------ */

static int reserved_key(const char *key) {
    static const char *const keys[] = {
        "format",    "schema_version", "model_id",    "model_fingerprint",
        "embed_dim", "dtype",          "n_embeddings"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0) return 1;
    return 0;
}

int rsclip_index_set_meta(rsclip_index *idx, const char *key, const char *value) {
    if (!idx || !key || !*key)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_set_meta: no index or key");
    if (reserved_key(key))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: meta key '%s' is managed by rsclip",
                             idx->path, key);
    int rc = rsclip__idx_writable(idx, "set meta");
    if (rc) return rc;
    rc = rsclip__idx_begin_write(idx);
    if (rc) return rc;
    if (value) {
        rc = meta_put(idx, key, value);
    } else {
        sqlite3_stmt *st;
        rc = rsclip__idx_prepare(idx, "DELETE FROM rsclip_meta WHERE key = ?1", &st);
        if (!rc) {
            sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = rsclip__idx_db_error(idx, "writing rsclip_meta");
            sqlite3_finalize(st);
        }
    }
    if (!rc) rc = rsclip__idx_touch(idx);
    return rsclip__idx_end(idx, rc);
}

int rsclip_index_get_meta(rsclip_index *idx, const char *key, char **value) {
    if (!value) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_get_meta: value NULL");
    *value = NULL;
    if (!idx || !key)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_get_meta: no index or key");
    int rc = meta_get(idx, key, value);
    if (rc) return rc;
    if (!*value) return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no meta key '%s'", idx->path, key);
    return RSCLIP_OK;
}

/* ---- model ----------------------------------------------------------------------------------- */

typedef struct model_rec {
    char *id, *fingerprint;
    int64_t dim;
} model_rec;

static void model_rec_free(model_rec *m) {
    free(m->id);
    free(m->fingerprint);
}

static int model_read(rsclip_index *idx, model_rec *m) {
    memset(m, 0, sizeof *m);
    int rc = meta_get(idx, "model_fingerprint", &m->fingerprint);
    if (!rc) rc = meta_get(idx, "model_id", &m->id);
    if (!rc) rc = rsclip__idx_meta_int(idx, "embed_dim", &m->dim);
    return rc;
}

static int model_compare(rsclip_index *idx, const model_rec *m, const char *model_id,
                         const char *fingerprint, int dim) {
    if (strcmp(m->fingerprint, fingerprint) == 0 && m->dim == dim) return RSCLIP_OK;
    return rsclip__error(RSCLIP_ERR_MISMATCH,
                         "%s was built with model %s (fingerprint %s, dim %lld), not %s "
                         "(fingerprint %s, dim %d)",
                         idx->path, m->id ? m->id : "?", m->fingerprint, (long long)m->dim,
                         model_id ? model_id : "the given model", fingerprint, dim);
}

static int model_args(rsclip_index *idx, const char *fingerprint, int dim, const char *fn) {
    if (!idx) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: index is NULL", fn);
    if (!fingerprint || !*fingerprint || dim <= 0 || dim > (1 << 20))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: %s: need a fingerprint and 0 < dim",
                             idx->path, fn);
    return RSCLIP_OK;
}

int rsclip_index_check_model(rsclip_index *idx, const char *fingerprint, int dim) {
    int rc = model_args(idx, fingerprint, dim, "rsclip_index_check_model");
    if (rc) return rc;
    model_rec m;
    rc = rsclip__idx_begin_read(idx);
    if (!rc)
        rc = model_read(idx, &m);
    else
        memset(&m, 0, sizeof m);
    rc = rsclip__idx_end(idx, rc);
    if (!rc) {
        if (!m.fingerprint)
            rc = rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no model recorded yet (empty index)",
                               idx->path);
        else
            rc = model_compare(idx, &m, NULL, fingerprint, dim);
    }
    model_rec_free(&m);
    return rc;
}

int rsclip_index_bind_model(rsclip_index *idx, const char *model_id, const char *fingerprint,
                            int dim, const char *preprocessing) {
    int rc = model_args(idx, fingerprint, dim, "rsclip_index_bind_model");
    if (rc) return rc;
    if (idx->readonly) return rsclip_index_check_model(idx, fingerprint, dim);
    rc = rsclip__idx_begin_write(idx);
    if (rc) return rc;
    model_rec m;
    rc = model_read(idx, &m);
    if (!rc && m.fingerprint) {
        rc = model_compare(idx, &m, model_id, fingerprint, dim);
    } else if (!rc) {
        char d[32];
        snprintf(d, sizeof d, "%d", dim);
        rc = meta_put(idx, "model_id", model_id ? model_id : "");
        if (!rc) rc = meta_put(idx, "model_fingerprint", fingerprint);
        if (!rc) rc = meta_put(idx, "embed_dim", d);
        if (!rc && preprocessing) rc = meta_put(idx, "preprocessing", preprocessing);
        if (!rc) rc = rsclip__idx_touch(idx);
    }
    model_rec_free(&m);
    return rsclip__idx_end(idx, rc);
}

/* ---- summary --------------------------------------------------------------------------------- */

static int meta_copy(rsclip_index *idx, const char *key, char *dst, size_t cap) {
    char *v;
    int rc = meta_get(idx, key, &v);
    if (rc) return rc;
    snprintf(dst, cap, "%s", v ? v : "");
    free(v);
    return RSCLIP_OK;
}

static int info_impl(rsclip_index *idx, rsclip_index_info *info) {
    int64_t v;
    int rc = rsclip__idx_meta_int(idx, "schema_version", &v);
    if (rc) return rc;
    info->schema_version = (int)v;
    if ((rc = rsclip__idx_meta_int(idx, "embed_dim", &v))) return rc;
    info->embed_dim = (int)v;
    if ((rc = rsclip__idx_meta_int(idx, "n_embeddings", &info->n_embeddings))) return rc;
    if ((rc = meta_copy(idx, "model_id", info->model_id, sizeof info->model_id)) ||
        (rc = meta_copy(idx, "model_fingerprint", info->model_fingerprint,
                        sizeof info->model_fingerprint)) ||
        (rc = meta_copy(idx, "dtype", info->dtype, sizeof info->dtype)) ||
        (rc = meta_copy(idx, "tool_version", info->tool_version, sizeof info->tool_version)) ||
        (rc = meta_copy(idx, "created_at", info->created_at, sizeof info->created_at)) ||
        (rc = meta_copy(idx, "updated_at", info->updated_at, sizeof info->updated_at)))
        return rc;
    if ((rc = query_int(idx, "SELECT count(*) FROM scenes", &info->n_scenes, "counting scenes")) ||
        (rc = query_int(idx, "SELECT count(*) FROM scenes WHERE status = 'complete'",
                        &info->n_scenes_complete, "counting scenes")) ||
        (rc = query_int(idx, "SELECT count(*) FROM tiles", &info->n_tiles, "counting tiles")))
        return rc;
    sqlite3_stmt *st;
    rc = rsclip__idx_prepare(idx,
                             "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents "
                             "WHERE table_name = 'tiles'",
                             &st);
    if (rc) return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && info->n_tiles > 0 && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        info->has_extent = 1;
        for (int i = 0; i < 4; i++) info->extent[i] = sqlite3_column_double(st, i);
    } else if (s != SQLITE_ROW && s != SQLITE_DONE) {
        rc = rsclip__idx_db_error(idx, "reading gpkg_contents");
    }
    sqlite3_finalize(st);
    return rc;
}

int rsclip_index_get_info(rsclip_index *idx, rsclip_index_info *info) {
    if (!idx || !info)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_get_info: NULL argument");
    memset(info, 0, sizeof *info);
    int rc = rsclip__idx_begin_read(idx);
    if (rc) return rc;
    return rsclip__idx_end(idx, info_impl(idx, info));
}

/* ---- verify ---------------------------------------------------------------------------------- */

static int expect_text(rsclip_index *idx, const char *sql, const char *want, const char *what) {
    sqlite3_stmt *st;
    int rc = rsclip__idx_prepare(idx, sql, &st);
    if (rc) return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || strcmp(t, want) != 0)
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s failed: %s", idx->path, what,
                               t ? t : "(null)");
    } else if (s == SQLITE_DONE) {
        if (want[0]) rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s: no answer", idx->path, what);
    } else {
        rc = rsclip__idx_db_error(idx, what);
    }
    sqlite3_finalize(st);
    return rc;
}

static int expect_zero(rsclip_index *idx, const char *sql, const char *what) {
    int64_t n = 0;
    int rc = query_int(idx, sql, &n, what);
    if (rc) return rc;
    if (n != 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s (%lld rows)", idx->path, what,
                             (long long)n);
    return RSCLIP_OK;
}

static int verify_impl(rsclip_index *idx) {
    int rc = expect_text(idx, "PRAGMA integrity_check", "ok", "integrity_check");
    if (rc) return rc;
    if ((rc = check_foreign_keys(idx))) return rc;
    sqlite3_stmt *st;
    int s;
    if ((rc = expect_text(idx, "SELECT rtreecheck('rtree_tiles_geom')", "ok", "rtreecheck")))
        return rc;
    /* every footprint must be a valid 2D polygon blob (GIS tools may have written others) */
    if ((rc = rsclip__idx_prepare(idx, "SELECT fid, geom FROM tiles", &st))) return rc;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        idx_gpkg_geom g;
        double *xy = NULL;
        size_t np = 0;
        const uint8_t *b = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (rsclip__idx_gpkg_parse(b, len, &g) != 0 || g.empty ||
            rsclip__idx_wkb_polygon_ring(g.wkb, g.wkb_len, &xy, &np) != 0) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: tile %lld: footprint is not a 2D polygon",
                               idx->path, (long long)sqlite3_column_int64(st, 0));
            break;
        }
        free(xy);
    }
    if (!rc && s != SQLITE_DONE) rc = rsclip__idx_db_error(idx, "reading footprints");
    sqlite3_finalize(st);
    if (rc) return rc;
    int64_t dim = 0;
    if ((rc = rsclip__idx_meta_int(idx, "embed_dim", &dim))) return rc;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM embeddings WHERE length(vec) != %lld",
             (long long)dim * 4);
    static const struct {
        const char *sql, *what;
    } checks[] = {
        {"SELECT count(*) FROM tiles t WHERE t.geom IS NOT NULL AND NOT ST_IsEmpty(t.geom) AND "
         "NOT EXISTS (SELECT 1 FROM rtree_tiles_geom r WHERE r.id = t.fid)",
         "tiles missing from the R-tree"},
        {"SELECT count(*) FROM rtree_tiles_geom r WHERE NOT EXISTS "
         "(SELECT 1 FROM tiles t WHERE t.fid = r.id)",
         "R-tree entries without a tile"},
        {"SELECT count(*) FROM tiles t JOIN rtree_tiles_geom r ON r.id = t.fid WHERE "
         "r.minx > ST_MinX(t.geom) OR r.maxx < ST_MaxX(t.geom) OR "
         "r.miny > ST_MinY(t.geom) OR r.maxy < ST_MaxY(t.geom)",
         "R-tree boxes that do not cover their tile"},
        {"SELECT count(*) FROM tiles t WHERE NOT EXISTS "
         "(SELECT 1 FROM embeddings e WHERE e.tile_id = t.fid)",
         "tiles without an embedding"},
        {"SELECT count(*) FROM embeddings e WHERE NOT EXISTS "
         "(SELECT 1 FROM tiles t WHERE t.fid = e.tile_id)",
         "embeddings without a tile"},
        {"SELECT count(*) FROM scenes s WHERE tiles_stored != "
         "(SELECT count(*) FROM tiles t WHERE t.scene_id = s.id)",
         "scenes whose tiles_stored disagrees with their tiles"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if ((rc = expect_zero(idx, checks[i].sql, checks[i].what))) return rc;
    if ((rc = expect_zero(idx, sql, "embeddings of the wrong size"))) return rc;
    return expect_zero(idx,
                       "SELECT (SELECT count(*) FROM embeddings) - coalesce((SELECT CAST(value AS "
                       "INTEGER) FROM rsclip_meta WHERE key = 'n_embeddings'), -1)",
                       "rsclip_meta n_embeddings disagrees with the embeddings table");
}

int rsclip_index_verify(rsclip_index *idx) {
    if (!idx) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_index_verify: index is NULL");
    int rc = rsclip__idx_begin_read(idx);
    if (rc) return rc;
    return rsclip__idx_end(idx, verify_impl(idx));
}

int rsclip__idx_grow(rsclip_index *idx, void *arr, size_t *cap, size_t elem, size_t first) {
    if (rsclip__grow(arr, cap, elem, first))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    return RSCLIP_OK;
}
