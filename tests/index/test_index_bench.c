/* Bulk-load benchmark (ctest label "slow"): write N tiles x DIM embeddings (default 100000 x 768,
 * ~300 MB of vectors), then time rsclip_index_load_embeddings and report rows/s. It also checks
 * that the load returns every row, in id order, with the vectors written.
 *     test_index_bench [N [DIM [BATCH]]] */
#include "index_test_util.h"
#include "test_util.h"

#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int dim = argc > 2 ? atoi(argv[2]) : 768;
    int batch = argc > 3 ? atoi(argv[3]) : 256;
    REQUIRE(n > 0 && dim > 0 && batch > 0);
    const int cols = 400;
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s", ti_tmpdir("test_index_bench"));
    snprintf(path, sizeof path, "%s/bench.gpkg", dir);

    rsclip_index *idx;
    double t_write = 0;
    if (getenv("RSCLIP_BENCH_FILE")) { /* time the load of an existing bench file only */
        snprintf(path, sizeof path, "%s", getenv("RSCLIP_BENCH_FILE"));
        goto load;
    }
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "bench", "feedfacecafebeef", dim, NULL));
    rsclip_scene_info s = ti_scene("/data/big.tif", 1, 1, NULL, cols, (n + cols - 1) / cols);
    int64_t sid;
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    double t0 = now_s();
    for (int first = 0; first < n; first += batch) {
        int cnt = first + batch <= n ? batch : n - first;
        int rc = ti_add_batch(idx, sid, 1, -100.0, 40.0, cols, first, cnt, dim);
        CHECK_OK(rc);
        if (rc) break;
    }
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    t_write = now_s() - t0;
    rsclip_index_close(idx);
load:

    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx));
    REQUIRE(idx);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        rsclip_embeddings *e = NULL;
        t0 = now_s();
        CHECK_OK(rsclip_index_load_embeddings(idx, &e));
        double t = now_s() - t0;
        if (t < best) best = t;
        REQUIRE(e);
        CHECK(e->n == (size_t)n && e->dim == dim);
        if (rep == 0) {
            float *want = malloc((size_t)dim * sizeof(float));
            REQUIRE(want);
            for (size_t i = 0; i < e->n; i += 997) {
                if (i > 0) CHECK(e->ids[i] > e->ids[i - 997]);
                ti_normalised(1, (int)(i % cols), (int)(i / cols), dim, want);
                double err = 0;
                for (int k = 0; k < dim; k++)
                    err = fmax(err, fabs((double)want[k] - e->vecs[i * (size_t)dim + k]));
                CHECK(err < 1e-6);
            }
            free(want);
        }
        rsclip_embeddings_free(e);
    }
    rsclip_index_close(idx);
    double mb = (double)n * dim * 4 / 1e6;
    printf("index bench: %d x %d, batch %d: write %.2f s (%.0f tiles/s); "
           "load_embeddings best of 3 %.3f s = %.0f rows/s, %.0f MB/s\n",
           n, dim, batch, t_write, n / t_write, best, n / best, mb / best);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ls -l '%s'; rm -rf '%s'", dir, dir);
    if (!getenv("RSCLIP_TEST_KEEP") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_index_bench");
}
