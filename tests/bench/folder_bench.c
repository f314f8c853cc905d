/* Query latency of a sharded index (a folder of parts) against the file merged from it, in one
 * process, as a server, the GDAL driver in QGIS or any long-lived caller sees it: each index is
 * opened once (its .rsvec caches mapped and checked), one pass of the queries warms it, then
 * every query runs RUNS times and the median of each query's times is kept. The queries are
 * "more like this tile" ones (the tile's stored vector is the query: no model, no text encoder),
 * for Q tiles drawn with a fixed seed; both indexes get the same queries and must return the same
 * hits (tile ids, scores, order). Prints each index's median and p90 latency and the ratio.
 *
 *   folder_bench FOLDER MERGED [--queries Q] [--runs R] [-k K] [-j THREADS]
 */
#include "rsclip/query.h"
#include "rsclip/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(double *v, int n, double q) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

typedef struct {
    const char *path;
    rsclip_session *s;
    double *lat; /* [queries]: median over the runs */
} bench_index;

/* One query: its hits' ids and scores into ids/scores (k each), the count into *n. */
static int run_query(rsclip_session *s, int64_t tile, int k, int64_t *ids, float *scores, int *n) {
    rsclip_query q = rsclip_query_default();
    q.like_tile = tile;
    q.k = k;
    rsclip_results *r = NULL;
    if (rsclip_session_search(s, &q, &r) != RSCLIP_OK) {
        fprintf(stderr, "folder_bench: search like tile %lld: %s\n", (long long)tile,
                rsclip_last_error());
        return 1;
    }
    *n = r->n;
    for (int i = 0; i < r->n && i < k; i++) {
        ids[i] = r->hits[i].tile_id;
        scores[i] = r->hits[i].score;
    }
    rsclip_results_free(r);
    return 0;
}

int main(int argc, char **argv) {
    int queries = 20, runs = 5, k = 20, threads = 0;
    const char *paths[2] = {NULL, NULL};
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            queries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-k") && i + 1 < argc)
            k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-j") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (np < 2 && argv[i][0] != '-')
            paths[np++] = argv[i];
        else {
            fprintf(stderr, "usage: folder_bench FOLDER MERGED [--queries Q] [--runs R] [-k K] "
                            "[-j THREADS]\n");
            return 2;
        }
    }
    if (np != 2 || queries < 1 || runs < 1 || k < 1) {
        fprintf(stderr, "usage: folder_bench FOLDER MERGED [--queries Q] [--runs R] [-k K] "
                        "[-j THREADS]\n");
        return 2;
    }
    bench_index ix[2];
    rsclip_session_params sp = rsclip_session_default_params();
    sp.n_threads = threads;
    for (int b = 0; b < 2; b++) {
        ix[b].path = paths[b];
        double t0 = now_ms();
        if (rsclip_session_open(paths[b], &sp, &ix[b].s) != RSCLIP_OK) {
            fprintf(stderr, "folder_bench: %s: %s\n", paths[b], rsclip_last_error());
            return 1;
        }
        printf("open %-40s %8.1f ms (%zu tiles)\n", paths[b], now_ms() - t0,
               rsclip_session_count(ix[b].s));
        ix[b].lat = calloc((size_t)queries, sizeof(double));
    }
    /* The query tiles: ids of the merged file's tiles (ids are the same in the folder), drawn
     * with a fixed seed among those that exist. */
    int64_t *tiles = calloc((size_t)queries, sizeof *tiles);
    int64_t *ids[2] = {calloc((size_t)k, 8), calloc((size_t)k, 8)};
    float *sc[2] = {calloc((size_t)k, 4), calloc((size_t)k, 4)};
    double *t = calloc((size_t)runs, sizeof *t);
    if (!tiles || !ids[0] || !ids[1] || !sc[0] || !sc[1] || !t || !ix[0].lat || !ix[1].lat)
        return 1;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    size_t count = rsclip_session_count(ix[1].s);
    if (count == 0) {
        fprintf(stderr, "folder_bench: %s holds no tiles\n", paths[1]);
        return 1;
    }
    /* ids 1..count exist in an index written in one go (the benchmark's); in another, ids freed
     * by removed scenes are skipped, and the draw gives up rather than loop for ever */
    long attempts = 0;
    for (int i = 0; i < queries;) {
        if (++attempts > 1000L * queries) {
            fprintf(stderr, "folder_bench: %s: too few tile ids in 1..%zu\n", paths[1], count);
            return 1;
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int64_t id = 1 + (int64_t)((seed >> 33) % count);
        int n = 0;
        rsclip_query q = rsclip_query_default();
        q.like_tile = id;
        q.k = 1;
        rsclip_results *r = NULL;
        if (rsclip_session_search(ix[1].s, &q, &r) == RSCLIP_OK) n = r->n;
        rsclip_results_free(r);
        if (n > 0) tiles[i++] = id;
    }
    int differ = 0;
    for (int i = 0; i < queries; i++) { /* warm both, and compare the hits */
        int n[2];
        for (int b = 0; b < 2; b++)
            if (run_query(ix[b].s, tiles[i], k, ids[b], sc[b], &n[b])) return 1;
        if (n[0] != n[1] || memcmp(ids[0], ids[1], (size_t)n[0] * 8) ||
            memcmp(sc[0], sc[1], (size_t)n[0] * 4)) {
            fprintf(stderr, "folder_bench: different hits for tile %lld\n", (long long)tiles[i]);
            differ++;
        }
    }
    for (int i = 0; i < queries; i++)
        for (int b = 0; b < 2; b++) {
            for (int r = 0; r < runs; r++) {
                int n;
                double t0 = now_ms();
                if (run_query(ix[b].s, tiles[i], k, ids[b], sc[b], &n)) return 1;
                t[r] = now_ms() - t0;
            }
            ix[b].lat[i] = quantile(t, runs, 0.5);
        }
    double med[2];
    for (int b = 0; b < 2; b++) {
        double p90 = quantile(ix[b].lat, queries, 0.9);
        med[b] = quantile(ix[b].lat, queries, 0.5);
        printf("%-40s median %7.2f ms   p90 %7.2f ms   (%d queries x %d runs, k %d)\n", ix[b].path,
               med[b], p90, queries, runs, k);
    }
    printf("same hits: %s\n", differ ? "NO" : "yes");
    printf("folder / merged latency: %.2fx (target <= 1.5x; medians are nearest-rank)\n",
           med[0] / med[1]);
    for (int b = 0; b < 2; b++) {
        rsclip_session_close(ix[b].s);
        free(ix[b].lat);
    }
    free(tiles);
    free(t);
    for (int b = 0; b < 2; b++) {
        free(ids[b]);
        free(sc[b]);
    }
    return differ ? 1 : 0;
}
