/* A session over a large index (no float vectors in its .rsvec cache, so the codes are checked
 * lazily, block by block, as scans first read them): a tampered code byte in the int4 codes (read
 * by every search's first pass) or in the int8 codes of the best hit (read by the re-scoring) is
 * found by the search that reads it; the session rebuilds the vectors from the index and answers
 * exactly as with the intact cache, and the cache file is rewritten whole. The heatmap path
 * (rsclip_session_scene_probs) likewise. */
#include "index/index_test_util.h"
#include "test_util.h"

#include "rsclip/query.h"

#include <sys/stat.h>

#define DIM 32
#define COLS 200
#define ROWS 200 /* 40000 tiles: above the exact-search threshold (32768), no floats cached */

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    REQUIRE(b && fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

static uint64_t get64(const unsigned char *b, size_t off) {
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

typedef struct answer {
    int n;
    int64_t ids[10];
    float probs[10];
} answer;

static int search(const char *path, int64_t like, answer *a) {
    rsclip_session *s = NULL;
    int rc = rsclip_session_open(path, NULL, &s);
    if (rc) return rc;
    rsclip_query q = rsclip_query_default();
    q.like_tile = like;
    q.k = 10;
    rsclip_results *r = NULL;
    rc = rsclip_session_search(s, &q, &r);
    if (!rc) {
        a->n = r->n;
        for (int i = 0; i < r->n && i < 10; i++) {
            a->ids[i] = r->hits[i].tile_id;
            a->probs[i] = r->hits[i].prob;
        }
    }
    rsclip_results_free(r);
    rsclip_session_close(s);
    return rc;
}

static int heat(const char *path, int64_t like, float **probs, size_t *n) {
    rsclip_session *s = NULL;
    int rc = rsclip_session_open(path, NULL, &s);
    if (rc) return rc;
    rsclip_query q = rsclip_query_default();
    q.like_tile = like;
    int64_t *ids = NULL;
    rc = rsclip_session_scene_probs(s, &q, 1, &ids, probs, n);
    rsclip_free(ids);
    rsclip_session_close(s);
    return rc;
}

int main(void) {
    char dir[512], path[1024], cache[1100];
    snprintf(dir, sizeof dir, "%s", ti_tmpdir("test_query_cache"));
    snprintf(path, sizeof path, "%s/big.gpkg", dir);
    snprintf(cache, sizeof cache, "%s.rsvec", path);
    rsclip_index *idx = NULL;
    CHECK_OK(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx));
    REQUIRE(idx);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", "0123456789abcdef", DIM, NULL));
    CHECK_OK(rsclip_index_set_meta(idx, "logit_scale", "4.5"));
    CHECK_OK(rsclip_index_set_meta(idx, "logit_bias", "-10"));
    rsclip_scene_info si = ti_scene("/data/big.tif", 1, 2, NULL, COLS, ROWS);
    int64_t sid;
    int state;
    CHECK_OK(rsclip_index_begin_scene(idx, &si, 0, &sid, &state));
    for (int b = 0; b < COLS * ROWS; b += 4000)
        CHECK_OK(ti_add_batch(idx, sid, 7, 10.0, 50.0, COLS, b, 4000, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    rsclip_index_close(idx);

    const int64_t like = 20000;
    answer want, got;
    CHECK_OK(search(path, like, &want)); /* builds and writes the cache */
    CHECK(want.n == 10 && want.ids[0] == like);
    size_t n;
    unsigned char *good = slurp(cache, &n);
    CHECK(memcmp(good, "RSVECSET", 8) == 0 && get64(good, 72) == 0); /* no floats */
    const uint64_t count = get64(good, 24), stride = 128;
    CHECK(count == (uint64_t)COLS * ROWS);
    float *want_heat = NULL, *got_heat = NULL;
    size_t nh_want = 0, nh_got = 0;
    CHECK_OK(heat(path, like, &want_heat, &nh_want));

    /* one bit in the int4 codes, in the int8 codes of the best hit's row, then for the heatmap */
    const int64_t ids_sorted_row = like - 1; /* tile ids 1..40000, rows in id order */
    const size_t at[3] = {get64(good, 104) + (count / 2) * (stride / 2) + 7,
                          get64(good, 64) + (size_t)ids_sorted_row * stride + 3,
                          get64(good, 64) + (count / 3) * stride + 11};
    for (int k = 0; k < 3; k++) {
        unsigned char *bad = malloc(n);
        memcpy(bad, good, n);
        bad[at[k]] ^= 0x10;
        spit(cache, bad, n);
        if (k < 2) {
            memset(&got, 0, sizeof got);
            CHECK_OK(search(path, like, &got));
            CHECK(got.n == want.n && memcmp(got.ids, want.ids, sizeof want.ids) == 0 &&
                  memcmp(got.probs, want.probs, sizeof want.probs) == 0);
        } else {
            CHECK_OK(heat(path, like, &got_heat, &nh_got));
            CHECK(nh_got == nh_want && got_heat && want_heat &&
                  memcmp(got_heat, want_heat, nh_want * sizeof(float)) == 0);
            rsclip_free(got_heat);
        }
        size_t n2;
        unsigned char *now = slurp(cache, &n2);
        CHECK(n2 == n && memcmp(now, good, n) == 0); /* rewritten whole */
        free(now);
        free(bad);
    }
    rsclip_free(want_heat);
    free(good);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return tu_finish("test_query_cache");
}
