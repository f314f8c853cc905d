/* One search session that asks for the text tower first and the vision tower later: a text
 * query loads only the text tower, a --like-image query then reloads the model with both, and
 * both kinds of query keep giving the right answers. The index holds the (full-model) embeddings
 * of the fixture images, so an image query must find its own image first, with cosine ~1, and a
 * text query must rank the tiles exactly as the cosines to the text's full-model embedding. */
#include "index/index_test_util.h"
#include "test_util.h"

#include "rsclip/rsclip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_IMG 6

/* The session's "model load" log lines (RSCLIP_LOG_INFO), to see which towers it loaded when. */
static char g_loads[8][512], g_encs[8][512];
static int g_n_loads, g_n_encs;
static void sink(int level, const char *msg, void *user) {
    (void)user;
    if (level == RSCLIP_LOG_INFO && strstr(msg, "search timing: model load ") && g_n_loads < 8)
        snprintf(g_loads[g_n_loads++], sizeof g_loads[0], "%s", msg);
    if (level == RSCLIP_LOG_INFO && strstr(msg, "search timing: encoder setup ") && g_n_encs < 8)
        snprintf(g_encs[g_n_encs++], sizeof g_encs[0], "%s", msg);
}

static float *embed_image(const rsclip_model *m, rsclip_encoder *e, const char *png) {
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    CHECK_OK(rsclip_image_read_rgb8(png, &rgb, &w, &h));
    REQUIRE(rgb);
    float *px = malloc(sizeof(float) * 3 * (size_t)mi->image_size * mi->image_size);
    float *v = malloc(sizeof(float) * (size_t)mi->embed_dim);
    REQUIRE(px && v);
    CHECK_OK(rsclip_preprocess_rgb8(m, rgb, w, h, (size_t)w * 3, px));
    CHECK_OK(rsclip_encode_images(e, 1, px, v, NULL));
    rsclip_l2_normalize(v, mi->embed_dim);
    rsclip_free(rgb);
    free(px);
    return v;
}

int main(void) {
    char model_dir[4096], path[4200], png[N_IMG][4200];
    snprintf(model_dir, sizeof model_dir, "%s/siglip-tiny", tu_fixtures());
    for (int i = 0; i < N_IMG; i++) snprintf(png[i], sizeof png[i], "%s/img%d.png", model_dir, i);
    char dir[] = "/tmp/rsclip_query_towers_XXXXXX";
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/idx.gpkg", dir);

    /* the index: one tile per fixture image, with its full-model embedding */
    rsclip_model *m = NULL;
    CHECK_OK(rsclip_model_load(model_dir, NULL, &m));
    REQUIRE(m);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    const int dim = mi->embed_dim;
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.n_threads = 1;
    ep.precision = RSCLIP_PRECISION_F32;
    rsclip_encoder *e = NULL;
    CHECK_OK(rsclip_encoder_new(m, &ep, &e));
    REQUIRE(e);
    float *vecs = malloc(sizeof(float) * (size_t)dim * N_IMG);
    REQUIRE(vecs);
    for (int i = 0; i < N_IMG; i++) {
        float *v = embed_image(m, e, png[i]);
        memcpy(vecs + (size_t)i * dim, v, sizeof(float) * (size_t)dim);
        free(v);
    }
    /* the text query's embedding, full model, f32, default template */
    char *full = rsclip_prompt_format(NULL, "river");
    REQUIRE(full);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)mi->text_ctx);
    float *tv = malloc(sizeof(float) * (size_t)dim);
    REQUIRE(ids && tv);
    CHECK_OK(rsclip_model_tokenize(m, full, -1, ids, NULL));
    CHECK_OK(rsclip_encode_texts(e, 1, ids, tv, NULL));
    rsclip_l2_normalize(tv, dim);
    free(full);
    free(ids);

    rsclip_index *idx = NULL;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, model_dir, mi->fingerprint, dim, NULL));
    rsclip_scene_info s;
    memset(&s, 0, sizeof s);
    s.path = "/synthetic/a.tif";
    s.file_size = 1;
    s.width = 64 * N_IMG;
    s.height = 64;
    int64_t sid = 0, tile_ids[N_IMG];
    int state = 0;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    rsclip_tile_record rec[N_IMG];
    double ring[N_IMG][8];
    ti_strip(10, N_IMG, rec, ring);
    CHECK_OK(rsclip_index_add_tiles(idx, sid, N_IMG, rec, vecs, tile_ids));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    rsclip_index_close(idx);

    rsclip_session_params sp = rsclip_session_default_params();
    sp.n_threads = 1;
    sp.precision = RSCLIP_PRECISION_F32;
    sp.use_cache = 0;
    rsclip_session *ss = NULL;
    rsclip_set_log(sink, NULL);
    CHECK_OK(rsclip_session_open(path, &sp, &ss));
    REQUIRE(ss);
    for (int round = 0; round < 2; round++) {
        /* text (round 0: loads the text tower only; round 1: the both-tower model) */
        rsclip_query q = rsclip_query_default();
        q.text = "river";
        q.k = N_IMG;
        rsclip_results *r = NULL;
        CHECK_OK(rsclip_session_search(ss, &q, &r));
        REQUIRE(r);
        CHECK(r->n == N_IMG);
        for (int i = 0; i < r->n; i++) {
            int t = (int)(r->hits[i].tile_id - tile_ids[0]);
            REQUIRE(t >= 0 && t < N_IMG);
            double c = 0;
            for (int k = 0; k < dim; k++) c += (double)tv[k] * vecs[(size_t)t * dim + k];
            CHECK(fabs(c - r->hits[i].score) < 1e-5);
            if (i > 0) CHECK(r->hits[i].score <= r->hits[i - 1].score);
        }
        rsclip_results_free(r);
        if (round == 0) {
            /* the first (f32) encode reads the weights in place, without packing them */
            CHECK(g_n_loads == 1 && strstr(g_loads[0], "(text tower of "));
            CHECK(g_n_encs == 1 && strstr(g_encs[0], "(f32, weights in place)"));
        }
        /* every image finds itself (round 0: the first image query reloads with both towers) */
        for (int i = 0; i < N_IMG; i++) {
            q = rsclip_query_default();
            q.like_image = png[i];
            q.k = 1;
            CHECK_OK(rsclip_session_search(ss, &q, &r));
            REQUIRE(r);
            CHECK(r->n == 1 && r->hits[0].score > 0.9999f);
            if (r->n == 1) CHECK(r->hits[0].tile_id == tile_ids[i]);
            rsclip_results_free(r);
        }
    }
    for (int i = 0; i < g_n_loads; i++) printf("%s\n", g_loads[i]);
    for (int i = 0; i < g_n_encs; i++) printf("%s\n", g_encs[i]);
    CHECK(g_n_loads == 2 && strstr(g_loads[1], "(text and vision towers of "));
    /* later encodes (the image queries, the second text) use one packed encoder */
    CHECK(g_n_encs == 2 && strstr(g_encs[1], "(f32, packed weights)"));
    rsclip_set_log(NULL, NULL);
    rsclip_session_close(ss);
    rsclip_encoder_free(e);
    rsclip_model_free(m);
    free(vecs);
    free(tv);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_query_towers");
}
