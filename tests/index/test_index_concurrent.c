/* WAL concurrency: while a writer thread commits batches, a reader (its own read-only handle) keeps
 * loading; it never fails or blocks, sees whole batches only (counts are multiples of the batch
 * size, never decreasing), and finally sees everything. A second writer handle waits for the lock
 * (busy timeout) instead of failing. Halfway the writer waits (bounded) for one load, so that the
 * reader is seen to read a partial index however the two threads are scheduled. */
#include "index_test_util.h"
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define DIM 64
#define COLS 40
#define BATCH 10
#define NBATCH 60
static const double LON0 = 20.0, LAT0 = 60.0;

static char path[1024];
static int64_t scene_id;
static atomic_int writer_done;
static atomic_int writer_rc;
static atomic_int half_done;    /* the writer committed half its batches and waits */
static atomic_int read_in_half; /* the reader loaded while the writer waited */

static void *writer(void *arg) {
    (void)arg;
    rsclip_index *idx;
    int rc = rsclip_index_open(path, 0, &idx);
    for (int b = 0; rc == RSCLIP_OK && b < NBATCH; b++) {
        rc = ti_add_batch(idx, scene_id, 1, LON0, LAT0, COLS, b * BATCH, BATCH, DIM);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        if (b == NBATCH / 2 - 1) {
            atomic_store(&half_done, 1);
            for (int w = 0; w < 60000 && !atomic_load(&read_in_half); w++) { /* at most ~60 s */
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
            }
        }
    }
    if (rc != RSCLIP_OK) fprintf(stderr, "writer: %s\n", rsclip_last_error());
    rsclip_index_close(idx);
    atomic_store(&writer_rc, rc);
    atomic_store(&writer_done, 1);
    return NULL;
}

int main(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", ti_tmpdir("test_index_concurrent"));
    snprintf(path, sizeof path, "%s/wal.gpkg", dir);
    rsclip_index *idx;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", "0123456789abcdef", DIM, NULL));
    rsclip_scene_info s = ti_scene("/data/wal.tif", 1, 2, NULL, COLS, NBATCH * BATCH / COLS);
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &scene_id, &state));
    rsclip_index_close(idx);

    rsclip_index *reader, *other;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &reader));
    CHECK_OK(rsclip_index_open(path, 0, &other));
    REQUIRE(reader && other);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, writer, NULL) == 0);
    size_t last = 0, reads = 0, partial_views = 0;
    int meta_writes = 0;
    const double world[4] = {-180, -90, 180, 90};
    while (!atomic_load(&writer_done)) {
        const int in_half = atomic_load(&half_done);
        rsclip_embeddings *e = NULL;
        CHECK_OK(rsclip_index_load_embeddings(reader, &e));
        if (!e) break;
        CHECK(e->n % BATCH == 0 && e->n >= last);
        for (size_t i = 1; i < e->n; i++) CHECK(e->ids[i] > e->ids[i - 1]);
        if (e->n > 0 && e->n < NBATCH * BATCH) partial_views++;
        last = e->n;
        rsclip_embeddings_free(e);
        if (in_half) atomic_store(&read_in_half, 1);
        rsclip_index_info info;
        CHECK_OK(rsclip_index_get_info(reader, &info));
        CHECK(info.n_tiles % BATCH == 0 && (size_t)info.n_tiles >= last);
        int64_t *ids;
        size_t n;
        CHECK_OK(rsclip_index_tiles_in_bbox(reader, world, 0, &ids, &n));
        CHECK(n % BATCH == 0);
        rsclip_free(ids);
        if (reads % 8 == 0) { /* a second writer: waits for the lock, then commits */
            char v[32];
            snprintf(v, sizeof v, "%zu", reads);
            CHECK_OK(rsclip_index_set_meta(other, "progress", v));
            meta_writes++;
        }
        reads++;
    }
    pthread_join(th, NULL);
    CHECK(atomic_load(&writer_rc) == RSCLIP_OK);
    rsclip_embeddings *e = NULL;
    CHECK_OK(rsclip_index_load_embeddings(reader, &e));
    CHECK(e && e->n == NBATCH * BATCH);
    rsclip_embeddings_free(e);
    CHECK(partial_views > 0); /* the reader really ran while the writer committed */
    CHECK_OK(rsclip_index_verify(reader));
    rsclip_index_close(reader);
    rsclip_index_close(other);
    printf("concurrent: %zu reads, %zu saw a partial index, %d meta writes\n", reads, partial_views,
           meta_writes);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!tu_failures && !getenv("RSCLIP_TEST_KEEP") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_index_concurrent");
}
