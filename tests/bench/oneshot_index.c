/* Builds a synthetic but real rsclip index for the one-shot search benchmark
 * (tests/bench/oneshot_search.sh): N tiles with footprints on a lon/lat grid, spread over scenes
 * of 10000 tiles, each with a random L2-normalised embedding, bound to the model of MODEL_DIR
 * (its name, fingerprint, embedding size and logit scale/bias, as rsclip index records them) so
 * that `rsclip search INDEX TEXT -m MODEL_DIR` accepts it.
 *
 *     oneshot_index MODEL_DIR INDEX N [SEED]
 *
 * With --profile it instead splits the model side of a one-shot text query inside one process:
 * model load (text tower only, and both towers), encoder setup, the first text encoding (which
 * packs the text tower's weights) and a second one (the forward pass alone):
 *
 *     oneshot_index --profile MODEL_DIR [auto|f32|bf16 [MAX_BATCH]]
 *
 * (MAX_BATCH: the encoder's, default 1 as rsclip search uses for one text.)
 *
 * With --parts P it writes the same tiles (same seed: same vectors) as a sharded index instead:
 * INDEX is a folder of P parts part-IIIII-of-PPPPP.gpkg, split by tiles as `rsclip index --shard`
 * splits them (tile ids = global tile number + 1, scene ids = scene number + 1, shard meta), for
 * the sharded-search and merge benchmarks (tests/bench/scale_bench.sh):
 *
 *     oneshot_index --parts P MODEL_DIR FOLDER N [SEED]
 */
#include "rsclip/rsclip.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PER_SCENE 10000
#define COLS 100
#define BATCH 2000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* xorshift64* + Box-Muller: a reproducible normal stream without libm's rand. */
static uint64_t rng_state;
static double uniform01(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}
static float normal(void) {
    double u = uniform01(), v = uniform01();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static int fail(const char *what) {
    fprintf(stderr, "oneshot_index: %s: %s\n", what, rsclip_last_error());
    return 1;
}

static int profile(const char *dir, const char *prec, int max_batch) {
    rsclip_precision p = RSCLIP_PRECISION_AUTO;
    if (prec && rsclip_precision_parse(prec, &p) != RSCLIP_OK) return fail("precision");
    for (int towers = RSCLIP_MODEL_TEXT; towers <= 3; towers += 2) {
        rsclip_model_params mp = {.towers = towers};
        rsclip_model *m = NULL;
        double t0 = now_s();
        if (rsclip_model_load(dir, &mp, &m) != RSCLIP_OK) return fail(dir);
        double t1 = now_s();
        rsclip_encoder_params ep = rsclip_encoder_default_params();
        ep.max_batch = max_batch;
        ep.precision = p;
        rsclip_encoder *e = NULL;
        if (rsclip_encoder_new(m, &ep, &e) != RSCLIP_OK) return fail("encoder_new");
        double t2 = now_s();
        const rsclip_model_info *mi = rsclip_model_get_info(m);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)mi->text_ctx);
        float *emb = malloc(sizeof(float) * (size_t)mi->embed_dim);
        if (!ids || !emb) return 1;
        if (rsclip_model_tokenize(m, "a satellite image of solar farms.", -1, ids, NULL) !=
            RSCLIP_OK)
            return fail("tokenize");
        double t3 = now_s();
        if (rsclip_encode_texts(e, 1, ids, emb, NULL) != RSCLIP_OK) return fail("encode");
        double t4 = now_s();
        if (rsclip_encode_texts(e, 1, ids, emb, NULL) != RSCLIP_OK) return fail("encode");
        double t5 = now_s();
        printf("profile %-5s batch %d towers %-11s: model load %7.1f ms, encoder setup %6.1f ms, "
               "tokenize %5.2f ms, 1st text encode (packs weights) %7.1f ms, 2nd %6.1f ms\n",
               rsclip_precision_name(rsclip_encoder_precision(e)), max_batch,
               towers == RSCLIP_MODEL_TEXT ? "text" : "text+vision", (t1 - t0) * 1e3,
               (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3, (t5 - t4) * 1e3);
        free(ids);
        free(emb);
        rsclip_encoder_free(e);
        rsclip_model_free(m);
    }
    return 0;
}

/* A part of a sharded index: the shard meta `rsclip index --shard` writes. */
static int open_part(const char *folder, int part, int parts, const rsclip_model_info *mi,
                     const char *model_dir, rsclip_index **out) {
    char path[4096], v[64];
    snprintf(path, sizeof path, "%s/part-%05d-of-%05d.gpkg", folder, part, parts);
    if (rsclip_index_open(path, RSCLIP_INDEX_CREATE, out) != RSCLIP_OK) return fail(path);
    rsclip_index *idx = *out;
    if (rsclip_index_bind_model(idx, model_dir, mi->fingerprint, mi->embed_dim,
                                "synthetic benchmark") != RSCLIP_OK)
        return fail("bind_model");
    snprintf(v, sizeof v, "%.9g", mi->logit_scale);
    int rc = rsclip_index_set_meta(idx, "logit_scale", v);
    snprintf(v, sizeof v, "%.9g", mi->logit_bias);
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_bias", v);
    snprintf(v, sizeof v, "%d", part);
    if (!rc) rc = rsclip_index_set_meta(idx, "shard_index", v);
    snprintf(v, sizeof v, "%d", parts);
    if (!rc) rc = rsclip_index_set_meta(idx, "shard_count", v);
    if (!rc) rc = rsclip_index_set_meta(idx, "plan_digest", "synthetic");
    if (!rc) rc = rsclip_index_set_meta(idx, "settings", "synthetic");
    if (!rc) rc = rsclip_index_set_meta(idx, "shard_complete", "1");
    return rc ? fail("set_meta") : 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--profile") == 0)
        return profile(argv[2], argc > 3 ? argv[3] : NULL, argc > 4 ? atoi(argv[4]) : 1);
    int parts = 0;
    if (argc >= 3 && strcmp(argv[1], "--parts") == 0) {
        parts = atoi(argv[2]);
        if (parts < 1 || parts > 100000) {
            fprintf(stderr, "oneshot_index: --parts wants 1..100000\n");
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: oneshot_index MODEL_DIR INDEX N [SEED]\n");
        return 2;
    }
    const char *model_dir = argv[1], *path = argv[2];
    long long n = atoll(argv[3]);
    rng_state = argc > 4 ? strtoull(argv[4], NULL, 10) * 2654435761ULL + 1 : 88172645463325252ULL;
    if (n <= 0) {
        fprintf(stderr, "oneshot_index: N must be positive\n");
        return 2;
    }
    rsclip_model *m = NULL;
    if (rsclip_model_load(model_dir, NULL, &m) != RSCLIP_OK) return fail(model_dir);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int dim = mi->embed_dim;
    rsclip_index *idx = NULL;
    int part = 0;
    if (parts) {
        mkdir(path, 0777);
        if (open_part(path, 0, parts, mi, model_dir, &idx)) return 1;
    } else {
        if (rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx) != RSCLIP_OK) return fail(path);
        if (rsclip_index_bind_model(idx, model_dir, mi->fingerprint, dim, "synthetic benchmark") !=
            RSCLIP_OK)
            return fail("bind_model");
        char v[64];
        snprintf(v, sizeof v, "%.9g", mi->logit_scale);
        if (rsclip_index_set_meta(idx, "logit_scale", v) != RSCLIP_OK) return fail("set_meta");
        snprintf(v, sizeof v, "%.9g", mi->logit_bias);
        if (rsclip_index_set_meta(idx, "logit_bias", v) != RSCLIP_OK) return fail("set_meta");
    }

    rsclip_tile_record *recs = calloc(BATCH, sizeof *recs);
    double *rings = calloc((size_t)BATCH * 10, sizeof *rings);
    float *vecs = malloc(sizeof(float) * (size_t)BATCH * (size_t)dim);
    if (!recs || !rings || !vecs) {
        fprintf(stderr, "oneshot_index: out of memory\n");
        return 1;
    }
    const double step = 0.001; /* degrees per tile (~100 m) */
    double t0 = now_s();
    long long done = 0;
    for (int sc = 0; done < n; sc++) {
        const int rows = PER_SCENE / COLS;
        const double lon0 = -10.0 + (sc % 20) * (COLS + 2) * step;
        const double lat0 = 30.0 + (sc / 20) * (rows + 2) * step;
        char scene_path[256];
        snprintf(scene_path, sizeof scene_path, "/synthetic/scene_%05d.tif", sc);
        rsclip_scene_info s;
        memset(&s, 0, sizeof s);
        s.path = scene_path;
        s.file_size = 1000 + sc;
        s.mtime_ns = 1;
        s.epsg = 4326;
        s.crs_wkt = "EPSG:4326";
        s.geotransform[0] = lon0;
        s.geotransform[1] = step / 256;
        s.geotransform[3] = lat0 + rows * step;
        s.geotransform[5] = -step / 256;
        s.width = COLS * 256;
        s.height = rows * 256;
        s.bands = "1,2,3";
        s.tiles_planned = PER_SCENE;
        int64_t sid = 0;
        int state = 0;
        s.id = parts ? sc + 1 : 0;
        if (rsclip_index_begin_scene(idx, &s, 0, &sid, &state) != RSCLIP_OK)
            return fail("begin_scene");
        long long in_scene = n - done < PER_SCENE ? n - done : PER_SCENE;
        for (long long first = 0; first < in_scene;) {
            int cnt = (int)(in_scene - first < BATCH ? in_scene - first : BATCH);
            if (parts) { /* the tiles of shard `part` are [floor(part n / P), floor((part+1) n / P))
                          */
                long long end = (long long)((__int128)n * (part + 1) / parts) - done;
                if (end <= first) { /* next part: the scene continues there */
                    if (rsclip_index_complete_scene(idx, sid, 0) != RSCLIP_OK)
                        return fail("complete_scene");
                    rsclip_index_close(idx);
                    if (open_part(path, ++part, parts, mi, model_dir, &idx)) return 1;
                    if (rsclip_index_begin_scene(idx, &s, 0, &sid, &state) != RSCLIP_OK)
                        return fail("begin_scene");
                    continue;
                }
                if (end - first < cnt) cnt = (int)(end - first);
            }
            for (int i = 0; i < cnt; i++) {
                long long t = first + i;
                int col = (int)(t % COLS), row = (int)(t / COLS);
                double w = lon0 + col * step, e = w + step;
                double nn = lat0 + (rows - row) * step, so = nn - step;
                double *r = rings + (size_t)i * 10;
                double ring[10] = {w, nn, e, nn, e, so, w, so, w, nn};
                memcpy(r, ring, sizeof ring);
                rsclip_tile_record *rec = &recs[i];
                memset(rec, 0, sizeof *rec);
                rec->window = (rsclip_tile_window){col * 256, row * 256, 256, 256};
                rec->valid_fraction = 1.0;
                rec->lon = (w + e) / 2;
                rec->lat = (nn + so) / 2;
                double corners[8] = {w, nn, e, nn, e, so, w, so};
                memcpy(rec->corners, corners, sizeof corners);
                rec->footprint = r;
                rec->n_footprint = 5;
                rec->id = parts ? done + t + 1 : 0;
                float *vv = vecs + (size_t)i * dim;
                double ss = 0;
                for (int k = 0; k < dim; k++) {
                    vv[k] = normal();
                    ss += (double)vv[k] * vv[k];
                }
                float inv = (float)(1.0 / sqrt(ss));
                for (int k = 0; k < dim; k++) vv[k] *= inv;
            }
            if (rsclip_index_add_tiles(idx, sid, (size_t)cnt, recs, vecs, NULL) != RSCLIP_OK)
                return fail("add_tiles");
            first += cnt;
        }
        if (rsclip_index_complete_scene(idx, sid, 0) != RSCLIP_OK) return fail("complete_scene");
        done += in_scene;
        if (sc % 10 == 9 || done == n)
            fprintf(stderr, "oneshot_index: %lld / %lld tiles, %.0f s\n", done, n, now_s() - t0);
    }
    rsclip_index_close(idx);
    free(recs);
    free(rings);
    free(vecs);
    rsclip_model_free(m);
    printf("oneshot_index: %s: %lld tiles in %.1f s\n", path, n, now_s() - t0);
    return 0;
}
