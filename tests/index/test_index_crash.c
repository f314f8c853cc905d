/* Crash safety and full disk.
 * 1. A child process indexes a scene batch by batch and is killed with SIGKILL at a random moment,
 *    several times; after each kill the index passes PRAGMA integrity_check and rsclip's verify,
 *    holds no duplicate window, every tile has its embedding (with the right values), every batch
 *    the child saw committed is there; the next child resumes and the last one completes.
 * 2. A child whose file size is capped (setrlimit RLIMIT_FSIZE, SIGXFSZ ignored) fails to add a
 *    large batch with RSCLIP_ERR_IO naming the file; afterwards the earlier data is intact. */
#include "index_test_util.h"
#include "test_util.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define DIM 256
#define COLS 30
#define ROWS 20
#define BATCH 16
static const double LON0 = 10.0, LAT0 = 50.0;
static const char *FP = "0011223344556677";

/* Child: resume the scene and index what is missing; one byte on fd per committed batch. */
static void child_indexer(const char *path, int fd) {
    rsclip_index *idx;
    if (rsclip_index_open(path, 0, &idx) != RSCLIP_OK) _exit(10);
    if (rsclip_index_bind_model(idx, "tiny", FP, DIM, NULL) != RSCLIP_OK) _exit(11);
    rsclip_scene_info s = ti_scene("/data/crash.tif", 77, 88, "sum", COLS, ROWS);
    int64_t sid;
    int state;
    if (rsclip_index_begin_scene(idx, &s, 0, &sid, &state) != RSCLIP_OK) _exit(12);
    rsclip_tile_window *done;
    size_t n_done;
    if (rsclip_index_scene_windows(idx, sid, &done, &n_done) != RSCLIP_OK) _exit(13);
    char *stored = calloc(COLS * ROWS, 1);
    for (size_t i = 0; i < n_done; i++)
        stored[(done[i].yoff / TI_TILE) * COLS + done[i].xoff / TI_TILE] = 1;
    rsclip_free(done);
    rsclip_tile_record r[BATCH];
    static double xy[BATCH][2 * TI_NPTS];
    static float v[BATCH * DIM];
    int nb = 0;
    for (int t = 0; t <= COLS * ROWS; t++) {
        if (t < COLS * ROWS && !stored[t]) {
            ti_record(1, LON0, LAT0, t % COLS, t / COLS, DIM, &r[nb], xy[nb], v + nb * DIM);
            nb++;
        }
        if (nb == BATCH || (t == COLS * ROWS && nb > 0)) {
            if (rsclip_index_add_tiles(idx, sid, (size_t)nb, r, v, NULL) != RSCLIP_OK) _exit(14);
            if (write(fd, "b", 1) != 1) _exit(15);
            nb = 0;
        }
    }
    if (rsclip_index_complete_scene(idx, sid, 0) != RSCLIP_OK) _exit(16);
    rsclip_index_close(idx);
    free(stored);
    _exit(0);
}

static int64_t sql_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Everything a crash must not break; returns the number of stored tiles. */
static int64_t check_index(const char *path, int64_t *scene_status) {
    sqlite3 *db;
    REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW &&
          strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0);
    sqlite3_finalize(st);
    CHECK(sql_int(db, "SELECT count(*) FROM (SELECT 1 FROM tiles GROUP BY scene_id, xoff, yoff, "
                      "xsize, ysize HAVING count(*) > 1)") == 0);
    CHECK(sql_int(db, "SELECT count(*) FROM tiles t LEFT JOIN embeddings e ON e.tile_id = t.fid "
                      "WHERE e.tile_id IS NULL") == 0);
    CHECK(sql_int(db, "SELECT count(*) FROM embeddings") ==
          sql_int(db, "SELECT count(*) FROM tiles"));
    CHECK(sql_int(db, "SELECT count(*) FROM rtree_tiles_geom") ==
          sql_int(db, "SELECT count(*) FROM tiles"));
    int64_t n = sql_int(db, "SELECT count(*) FROM tiles");
    *scene_status = sql_int(db, "SELECT status = 'complete' FROM scenes");
    sqlite3_close(db);

    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_verify(idx));
    rsclip_embeddings *e;
    CHECK_OK(rsclip_index_load_embeddings(idx, &e));
    REQUIRE(e);
    CHECK((int64_t)e->n == n);
    float want[DIM];
    for (size_t i = 0; i < e->n; i++) {
        rsclip_tile_info *t;
        CHECK_OK(rsclip_index_get_tile(idx, e->ids[i], &t));
        if (!t) continue;
        ti_normalised(1, t->window.xoff / TI_TILE, t->window.yoff / TI_TILE, DIM, want);
        double err = 0;
        for (int k = 0; k < DIM; k++) err = fmax(err, fabs(want[k] - e->vecs[i * DIM + k]));
        CHECK(err < 1e-6);
        rsclip_free(t);
    }
    rsclip_embeddings_free(e);
    rsclip_index_close(idx);
    return n;
}

static void test_kill9(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/crash.gpkg", dir);
    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    rsclip_index_close(idx);
    srand((unsigned)time(NULL));
    int64_t stored = 0, status = 0;
    int kills = 0, rounds = 0;
    while (!status && rounds < 40) {
        rounds++;
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_indexer(path, fds[1]);
        }
        close(fds[1]);
        /* let it commit a few batches, then kill it at a random moment */
        int want = rounds < 6 ? 1 + rand() % 4 : 1 << 30, seen = 0;
        char c;
        while (seen < want && read(fds[0], &c, 1) == 1) seen++;
        if (seen == want) {
            struct timespec ts = {0, (long)(rand() % 3000) * 1000};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int ws;
        REQUIRE(waitpid(pid, &ws, 0) == pid);
        while (read(fds[0], &c, 1) == 1) seen++; /* batches committed before the kill landed */
        close(fds[0]);
        if (WIFSIGNALED(ws))
            kills++;
        else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            fprintf(stderr, "indexer child failed: status 0x%x\n", ws);
            tu_failures++;
            return;
        }
        int64_t now = check_index(path, &status);
        /* every batch the child saw committed is durable; at most one more slipped in */
        if (now < stored + (int64_t)seen * BATCH && now != COLS * ROWS) {
            fprintf(stderr, "round %d: %lld tiles stored, expected >= %lld\n", rounds,
                    (long long)now, (long long)(stored + (int64_t)seen * BATCH));
            tu_failures++;
        }
        CHECK(now <= stored + ((int64_t)seen + 1) * BATCH);
        stored = now;
    }
    CHECK(status == 1 && stored == COLS * ROWS);
    CHECK(kills >= 3);
    printf("kill -9 test: %d rounds, %d kills, %lld tiles\n", rounds, kills, (long long)stored);
}

static void test_full_disk(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/full.gpkg", dir);
    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", FP, DIM, NULL));
    rsclip_scene_info s = ti_scene("/data/full.tif", 1, 2, NULL, 100, 100);
    int64_t sid;
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    CHECK_OK(ti_add_batch(idx, sid, 1, LON0, LAT0, 100, 0, 100, DIM));
    rsclip_index_close(idx);

    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        rsclip_index *ci;
        if (rsclip_index_open(path, 0, &ci) != RSCLIP_OK) _exit(20);
        /* files may not grow past 4 MiB: a 3000-tile batch (12 MB of WAL) cannot commit */
        struct rlimit rl = {4u << 20, 4u << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(21);
        char msg[1024];
        int rc = ti_add_batch(ci, sid, 1, LON0, LAT0, 100, 100, 3000, DIM);
        int len = snprintf(msg, sizeof msg, "%d|%s", rc, rsclip_last_error());
        if (write(fds[1], msg, (size_t)len + 1) != len + 1) _exit(22);
        /* the connection stays usable: a small batch fits */
        rc = ti_add_batch(ci, sid, 1, LON0, LAT0, 100, 100, 2, DIM);
        rsclip_index_close(ci);
        _exit(rc == RSCLIP_OK ? 0 : 23);
    }
    close(fds[1]);
    char buf[2048] = {0};
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    close(fds[0]);
    int ws;
    REQUIRE(waitpid(pid, &ws, 0) == pid);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    int rc = atoi(buf);
    const char *msg = strchr(buf, '|');
    CHECK(rc == RSCLIP_ERR_IO);
    CHECK(msg && strstr(msg, path) != NULL);
    printf("full disk: rc %d, message: %s\n", rc, msg ? msg + 1 : "(none)");

    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_verify(idx));
    rsclip_embeddings *e;
    CHECK_OK(rsclip_index_load_embeddings(idx, &e));
    REQUIRE(e);
    CHECK(e->n == 102);
    float want[DIM];
    for (size_t i = 0; i < e->n && i < 102; i++) {
        ti_normalised(1, (int)i % 100, (int)i / 100, DIM, want);
        double err = 0;
        for (int k = 0; k < DIM; k++) err = fmax(err, fabs(want[k] - e->vecs[i * DIM + k]));
        CHECK(err < 1e-6);
    }
    rsclip_embeddings_free(e);
    rsclip_index_close(idx);
}

int main(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", ti_tmpdir("test_index_crash"));
    test_kill9(dir);
    test_full_disk(dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!tu_failures && !getenv("RSCLIP_TEST_KEEP") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_index_crash");
}
