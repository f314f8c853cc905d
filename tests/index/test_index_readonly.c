/* Read-only indexes: searching never needs write access.
 * - A writer that closes cleanly (and alone) leaves the file in rollback-journal mode; one that
 *   closes while a reader is open leaves it in WAL mode, as before.
 * - A reader without write access to the folder (a child process that drops to uid 65534 when the
 *   test runs as root, root ignoring permissions) opens both kinds: the rollback-mode file as it
 * is, the WAL-mode one (-shm missing, not creatable) immutable; and reads everything.
 * - Immutable reads are guarded: when the folder's owner changes the file while it is open, the
 * next read fails with RSCLIP_ERR_IO ("changed while it was read") instead of returning stale data.
 * - A -wal file holding changes that cannot be folded in without write access is refused with a
 *   message naming it, never skipped. */
#include "index_test_util.h"
#include "test_util.h"

#include <errno.h>
#include <grp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DIM 16
#define COLS 6
#define ROWS 4

static char dir[512], path[1024];

/* File format read/write versions in the SQLite header: 1 rollback journal, 2 WAL. */
static int header_mode(const char *p) {
    unsigned char h[20] = {0};
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    return n == sizeof h && h[18] == h[19] ? h[18] : -1;
}

static int exists(const char *suffix) {
    char p[1100];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    struct stat st;
    return stat(p, &st) == 0;
}

/* Switch the file to WAL and close, as an older rsclip did: no -wal/-shm left, header WAL. */
static void make_wal(void) {
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(header_mode(path) == 2 && !exists("-wal") && !exists("-shm"));
}

static void build(void) {
    rsclip_index *idx = NULL;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", "0123456789abcdef", DIM, NULL));
    rsclip_scene_info s = ti_scene("/data/ro.tif", 1, 2, NULL, COLS, ROWS);
    int64_t sid;
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    CHECK_OK(ti_add_batch(idx, sid, 1, 8.0, 47.0, COLS, 0, COLS * ROWS, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    rsclip_index_close(idx);
}

/* Everything a search reads. Returns a status; on success the tile count in *n. */
static int read_all(rsclip_index *idx, size_t *n) {
    rsclip_index_info info;
    int rc = rsclip_index_get_info(idx, &info);
    if (rc) return rc;
    rc = rsclip_index_check_model(idx, "0123456789abcdef", DIM);
    if (rc) return rc;
    rsclip_embeddings *e = NULL;
    rc = rsclip_index_load_embeddings(idx, &e);
    if (rc) return rc;
    *n = e->n;
    rsclip_tile_info *t = NULL;
    if (e->n) rc = rsclip_index_get_tile(idx, e->ids[e->n - 1], &t);
    rsclip_free(t);
    rsclip_embeddings_free(e);
    return rc;
}

/* Give up root (which ignores permissions) in a child: uid/gid 65534. */
static void drop_root(void) {
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
        _exit(99);
}

/* Run fn in a child without write access to dir; its exit status. */
static int as_reader(int (*fn)(int), int arg) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        drop_root();
        _exit(fn(arg));
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code) fprintf(stderr, "reader child exited with %d\n", code);
    return code;
}

/* Child: the index opens read-only and reads whole; nothing is created beside it (unless
 * side_files: the -wal and -shm files were there before). */
static int child_reads(int side_files) {
    if (access(dir, W_OK) == 0) return 98; /* the test would prove nothing */
    rsclip_index *idx = NULL;
    if (rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx) != RSCLIP_OK) {
        fprintf(stderr, "child: open: %s\n", rsclip_last_error());
        return 1;
    }
    size_t n = 0;
    int rc = read_all(idx, &n);
    if (rc) fprintf(stderr, "child: read: %s\n", rsclip_last_error());
    rsclip_index_close(idx);
    if (rc) return 2;
    if (n != COLS * ROWS) return 3;
    if (exists("-journal") || (!side_files && (exists("-wal") || exists("-shm")))) return 4;
    return 0;
}

/* Child: the -wal holding changes is refused, naming it. */
static int child_refuses_wal(int unused) {
    (void)unused;
    rsclip_index *idx = NULL;
    int rc = rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx);
    if (rc == RSCLIP_OK) {
        rsclip_index_close(idx);
        return 1;
    }
    if (!strstr(rsclip_last_error(), "-wal holds changes")) {
        fprintf(stderr, "child: %s\n", rsclip_last_error());
        return 2;
    }
    return 0;
}

static int sync_pipe[2][2]; /* [0]: child -> parent "opened", [1]: parent -> child "changed" */

/* Child: open immutable and read; wait while the parent changes the file; the next read fails. */
static int child_sees_change(int unused) {
    (void)unused;
    rsclip_index *idx = NULL;
    size_t n = 0;
    int rc = rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx);
    if (!rc) rc = read_all(idx, &n);
    char c = rc ? 'x' : 'o';
    if (write(sync_pipe[0][1], &c, 1) != 1 || rc) return 1;
    if (read(sync_pipe[1][0], &c, 1) != 1) return 2;
    rsclip_index_info info;
    rc = rsclip_index_get_info(idx, &info);
    int ok = rc == RSCLIP_ERR_IO && strstr(rsclip_last_error(), "changed while it was read");
    if (!ok) fprintf(stderr, "child: after the change: %d %s\n", rc, rsclip_last_error());
    rsclip_index_close(idx);
    return ok ? 0 : 3;
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/rsclip_test_ro.XXXXXX", "/tmp");
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ro.gpkg", dir);
    build();
    /* a clean, lone writer leaves rollback-journal mode behind */
    CHECK(header_mode(path) == 1);
    CHECK(!exists("-wal") && !exists("-shm"));
    /* a writer that closes while a reader is open leaves WAL mode (it cannot switch), and the
     * reader, read-only, cannot fold the log in: -wal and -shm stay */
    {
        rsclip_index *w = NULL, *r = NULL;
        CHECK_OK(rsclip_index_open(path, 0, &w));
        CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &r));
        size_t n = 0;
        CHECK_OK(read_all(r, &n));
        CHECK(header_mode(path) == 2);
        rsclip_index_close(w);
        CHECK(header_mode(path) == 2);
        CHECK_OK(read_all(r, &n));
        rsclip_index_close(r);
        CHECK(exists("-wal") && exists("-shm"));
    }
    REQUIRE(chmod(dir, 0555) == 0 && chmod(path, 0644) == 0);
    if (geteuid() != 0 && access(dir, W_OK) == 0) {
        printf("test_index_readonly: skipped: chmod cannot take write access away here\n");
        return 0;
    }
    /* WAL mode with -wal and -shm, folder read-only: SQLite reads the log with a read-only -shm */
    CHECK(as_reader(child_reads, 1) == 0);
    /* WAL mode without -shm (as an older rsclip left every index), folder read-only: immutable */
    REQUIRE(chmod(dir, 0755) == 0);
    make_wal();
    REQUIRE(chmod(dir, 0555) == 0);
    CHECK(as_reader(child_reads, 0) == 0);
    /* rollback mode, folder read-only: as it is */
    REQUIRE(chmod(dir, 0755) == 0);
    { /* a writer opening and closing alone switches it back */
        rsclip_index *w = NULL;
        CHECK_OK(rsclip_index_open(path, 0, &w));
        rsclip_index_close(w);
    }
    CHECK(header_mode(path) == 1 && !exists("-wal") && !exists("-shm"));
    REQUIRE(chmod(dir, 0555) == 0);
    CHECK(as_reader(child_reads, 0) == 0);

    REQUIRE(chmod(dir, 0755) == 0);
    make_wal();
    REQUIRE(chmod(dir, 0555) == 0);
    /* the owner changes the file while an immutable reader has it open */
    REQUIRE(pipe(sync_pipe[0]) == 0 && pipe(sync_pipe[1]) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        drop_root();
        _exit(child_sees_change(0));
    }
    char c = 0;
    CHECK(read(sync_pipe[0][0], &c, 1) == 1 && c == 'o');
    REQUIRE(chmod(dir, 0755) == 0);
    {
        rsclip_index *w = NULL;
        CHECK_OK(rsclip_index_open(path, 0, &w));
        CHECK_OK(rsclip_index_set_meta(w, "note", "changed"));
        rsclip_index_close(w);
    }
    REQUIRE(chmod(dir, 0555) == 0);
    CHECK(write(sync_pipe[1][1], "c", 1) == 1);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* a -wal holding committed changes, no -shm (a writer killed; folder now read-only) */
    REQUIRE(chmod(dir, 0755) == 0);
    make_wal();
    {
        sqlite3 *db;
        REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db,
                             "PRAGMA wal_autocheckpoint = 0; INSERT OR REPLACE INTO rsclip_meta "
                             "VALUES ('note', 'in the log')",
                             NULL, NULL, NULL) == SQLITE_OK);
        CHECK(exists("-wal") && exists("-shm"));
        /* what a killed writer leaves: copy the log aside, close (which folds it in), restore */
        char wal[1100], keep[1100], shm[1100];
        snprintf(wal, sizeof wal, "%s-wal", path);
        snprintf(keep, sizeof keep, "%s-keep", path);
        snprintf(shm, sizeof shm, "%s-shm", path);
        char cmd[4000];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", wal, keep);
        REQUIRE(system(cmd) == 0);
        sqlite3_close(db);
        make_wal();
        REQUIRE(rename(keep, wal) == 0);
        unlink(shm);
        CHECK(exists("-wal") && !exists("-shm"));
    }
    REQUIRE(chmod(dir, 0555) == 0);
    CHECK(as_reader(child_refuses_wal, 0) == 0);

    REQUIRE(chmod(dir, 0755) == 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return tu_finish("test_index_readonly");
}
