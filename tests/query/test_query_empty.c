/* Searches that find nothing say why (rsclip_results.why_empty): an area of interest or bbox
 * outside the index extent or between its scenes, lon/lat swapped, filters that exclude each
 * other, a scene without tiles, min_prob above every hit. An unknown scene id is an error, not
 * an empty result. Empty filters take no undefined path (qsort(NULL, 0) under UBSan). A query
 * text longer than the model's 64 tokens is cut with a warning in the log. */
#include "index/index_test_util.h"
#include "test_util.h"

#include "rsclip/rsclip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TILES 6

static char g_warn[2048];
static void sink(int level, const char *msg, void *user) {
    (void)user;
    if (level >= RSCLIP_LOG_WARN) snprintf(g_warn, sizeof g_warn, "%s", msg);
}

/* Scene A: tiles 0-2 at lon 10.00-10.03; scene B: tiles 3-5 at lon 10.10-10.13 (a gap between);
 * scene C: no tiles. All at lat 50.00-50.01. Vectors: random unit vectors. */
static void build(const char *path, const char *model_dir, int64_t *scene_ids) {
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(model_dir, NULL, &m));
    REQUIRE(m);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int dim = mi->embed_dim;
    rsclip_index *idx = NULL;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, model_dir, mi->fingerprint, dim, NULL));
    char v[32];
    snprintf(v, sizeof v, "%.9g", (double)mi->logit_scale);
    CHECK_OK(rsclip_index_set_meta(idx, "logit_scale", v));
    snprintf(v, sizeof v, "%.9g", (double)mi->logit_bias);
    CHECK_OK(rsclip_index_set_meta(idx, "logit_bias", v));
    float *vecs = malloc(sizeof(float) * (size_t)dim * N_TILES);
    REQUIRE(vecs);
    srand(7);
    for (int i = 0; i < dim * N_TILES; i++) vecs[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    static const char *const names[3] = {"/synthetic/a.tif", "/synthetic/b.tif",
                                         "/synthetic/c.tif"};
    for (int sc = 0; sc < 3; sc++) {
        rsclip_scene_info s;
        memset(&s, 0, sizeof s);
        s.path = names[sc];
        s.file_size = 1;
        s.width = 64 * 3;
        s.height = 64;
        int state = 0;
        CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &scene_ids[sc], &state));
        if (sc < 2) {
            rsclip_tile_record rec[3];
            double ring[3][8];
            ti_strip(10 + 0.1 * sc, 3, rec, ring);
            CHECK_OK(rsclip_index_add_tiles(idx, scene_ids[sc], 3, rec, vecs + (size_t)sc * 3 * dim,
                                            NULL));
        }
        CHECK_OK(rsclip_index_complete_scene(idx, scene_ids[sc], 0));
    }
    rsclip_index_close(idx);
    rsclip_model_free(m);
    free(vecs);
}

/* Run q; expect success with no hits and a why_empty holding every needle. */
static void expect_empty(rsclip_session *s, const rsclip_query *q, const char *n1, const char *n2) {
    rsclip_results *r = NULL;
    CHECK_OK(rsclip_session_search(s, q, &r));
    REQUIRE(r);
    CHECK(r->n == 0);
    CHECK(r->why_empty != NULL);
    if (r->why_empty) {
        printf("why_empty: %s\n", r->why_empty);
        CHECK(strstr(r->why_empty, n1) != NULL);
        CHECK(!n2 || strstr(r->why_empty, n2) != NULL);
    }
    rsclip_results_free(r);
}

int main(void) {
    char model_dir[4096], path[4200];
    snprintf(model_dir, sizeof model_dir, "%s/siglip-tiny", tu_fixtures());
    char dir[] = "/tmp/rsclip_query_empty_XXXXXX";
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/idx.gpkg", dir);
    int64_t scene[3];
    build(path, model_dir, scene);

    rsclip_session_params sp = rsclip_session_default_params();
    sp.n_threads = 1;
    sp.use_cache = 0;
    rsclip_session *s = NULL;
    CHECK_OK(rsclip_session_open(path, &sp, &s));
    REQUIRE(s);

    /* A query that finds something has no why_empty. */
    rsclip_query q = rsclip_query_default();
    q.like_tile = 1;
    q.k = 3;
    rsclip_results *r = NULL;
    CHECK_OK(rsclip_session_search(s, &q, &r));
    CHECK(r && r->n == 3 && r->why_empty == NULL);
    rsclip_results_free(r);

    /* An area of interest that meets no tile: far away, and in the gap between the scenes. */
    q.aoi_wkt = "POLYGON ((100 -40,101 -40,101 -39,100 -39,100 -40))";
    expect_empty(s, &q, "area of interest", "outside the index extent");
    q.aoi_wkt = "POLYGON ((10.05 50.002,10.06 50.002,10.06 50.008,10.05 50.008,10.05 50.002))";
    expect_empty(s, &q, "between its scenes", NULL);
    /* ... and with lon/lat swapped it would meet tiles: say so. */
    q.aoi_wkt = "POLYGON ((50 10,50.01 10,50.01 10.02,50 10.02,50 10))";
    expect_empty(s, &q, "outside the index extent", "lon/lat swapped?");
    q.aoi_wkt = NULL;

    /* The same for a bbox. */
    q.has_bbox = 1;
    const double far[4] = {100, -40, 101, -39}, swapped[4] = {50, 10, 50.01, 10.02},
                 gap[4] = {10.05, 50.002, 10.06, 50.008}, only_a[4] = {10, 50, 10.02, 50.01};
    memcpy(q.bbox, far, sizeof far);
    expect_empty(s, &q, "the bbox", "outside the index extent");
    memcpy(q.bbox, swapped, sizeof swapped);
    expect_empty(s, &q, "lon/lat swapped?", "it meets 3 tiles");
    memcpy(q.bbox, gap, sizeof gap);
    expect_empty(s, &q, "between its scenes", NULL);
    /* Filters that each meet tiles, but not the same ones. */
    memcpy(q.bbox, only_a, sizeof only_a);
    q.scene_id = scene[1];
    expect_empty(s, &q, "all the filters", "the bbox meets 3");
    q.has_bbox = 0;

    /* A scene without tiles; an unknown scene is an error (search and heatmap). */
    q.scene_id = scene[2];
    expect_empty(s, &q, "has no tiles", NULL);
    q.scene_id = 999;
    CHECK(rsclip_session_search(s, &q, &r) == RSCLIP_ERR_NOT_FOUND && r == NULL);
    CHECK(strstr(rsclip_last_error(), "no such scene: 999") != NULL);
    int64_t *ids = NULL;
    float *probs = NULL;
    size_t n = 0;
    q.scene_id = 0;
    CHECK(rsclip_session_scene_probs(s, &q, 999, &ids, &probs, &n) == RSCLIP_ERR_NOT_FOUND);
    CHECK_OK(rsclip_session_scene_probs(s, &q, scene[2], &ids, &probs, &n));
    CHECK(n == 0);
    rsclip_free(ids);
    rsclip_free(probs);

    /* min_prob above every hit. */
    q.min_prob = 1.0f;
    expect_empty(s, &q, "minimum probability", "3 hits");
    q.min_prob = 0;

    /* A text longer than the model's 64 tokens: cut, with a warning; a short one: none. */
    rsclip_set_log(sink, NULL);
    char longq[2000] = "";
    for (int i = 0; i < 80; i++) strcat(longq, "lake ");
    q = rsclip_query_default();
    q.text = longq;
    CHECK_OK(rsclip_session_search(s, &q, &r));
    rsclip_results_free(r);
    printf("warning: %s\n", g_warn);
    CHECK(strstr(g_warn, "tokens long") && strstr(g_warn, "the model reads 64"));
    g_warn[0] = '\0';
    q.text = "lake";
    CHECK_OK(rsclip_session_search(s, &q, &r));
    rsclip_results_free(r);
    CHECK(g_warn[0] == '\0');
    rsclip_set_log(NULL, NULL);

    rsclip_session_close(s);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_query_empty");
}
