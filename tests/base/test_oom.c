/* Out-of-memory injection, SQLite-style (base/base.h: rsclip__alloc_fail_at). Each path below is
 * run once to count the library's allocations A, then again with the n-th allocation failing, for
 * n = 1..A (every allocation of the small paths; evenly spaced points where A is large), once
 * with that allocation alone failing and once with it and every later one failing. Each run must
 * return an error with its message set, or succeed (a documented fallback, or a failure that was
 * retried), never crash; the state must stay usable (an index already written keeps its tiles and
 * passes rsclip_index_verify, the next run without failures works); LeakSanitizer (the ASan
 * build) finds no leak at exit. Paths: tokenizer (load + encode), loader (model load, encoder,
 * both towers), vector set (build, finalize, save, load, search), index (open, create, scenes,
 * tiles, reads), session (open with a cache rebuild, tile and text queries), indexer (a run over
 * two small rasters: no scene vanishes without a report). */
#include "base/base.h"
#include "rsclip/rsclip.h"
#include "test_util.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef RSCLIP_TEST_MODEL_ONLY
#include "gdal_test_util.h"
#include "index/index_test_util.h"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define RSCLIP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSCLIP_TEST_SANITIZED 1
#endif
#endif

static char g_dir[512], g_model[1024];
static int g_quiet_points; /* failures to describe at most, per path */
static int g_verbose;      /* RSCLIP_OOM_VERBOSE: every run's outcome */
static int g_full;         /* RSCLIP_OOM_FULL: every allocation of every path (minutes) */

#ifndef RSCLIP_TEST_MODEL_ONLY
static const char *in_dir(const char *name) {
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}
#endif

/* ---- the driver ------------------------------------------------------------------------------ */

typedef struct oom_path {
    const char *name;
    int (*run)(void *ctx);            /* the operation: a status */
    void (*check)(void *ctx, int rc); /* the state after a run that returned rc */
    void *ctx;
    long max_points; /* at most this many injection points per mode (0: every allocation) */
} oom_path;

static void inject(const oom_path *p) {
    /* a first run fills what later runs find ready (the digest cache of the model's weights) */
    int rc = p->run(p->ctx);
    if (rc == RSCLIP_OK) p->check(p->ctx, rc);
    rsclip__alloc_fail_at(LONG_MAX, 0); /* count, fail nothing */
    rsclip_clear_error();
    rc = p->run(p->ctx);
    rsclip__alloc_fail_at(0, 0);
    long a = rsclip__alloc_count();
    if (rc != RSCLIP_OK)
        fprintf(stderr, "%s: the run without failures: %s\n", p->name, rsclip_last_error());
    REQUIRE(rc == RSCLIP_OK);
    p->check(p->ctx, rc);
    REQUIRE(a > 0);
    long cap = g_full ? 0 : p->max_points;
#if RSCLIP_TEST_SANITIZED
    cap = (cap + 1) / 2; /* ~7x slower there: coarser steps keep the test in the -LE slow set */
#endif
    long step = cap > 0 && a > cap ? (a + cap - 1) / cap : 1;
    long points = 0, errors = 0, survived = 0, bad = 0;
    long first = 1, last = a; /* RSCLIP_OOM_AT=n: that point alone (debugging) */
    if (getenv("RSCLIP_OOM_AT")) first = last = atol(getenv("RSCLIP_OOM_AT"));
    for (int every_later = 0; every_later < 2; every_later++) {
        for (long n = first; n <= last; n += step) {
            rsclip_clear_error();
            rsclip__alloc_fail_at(n, every_later);
            rc = p->run(p->ctx);
            rsclip__alloc_fail_at(0, 0);
            int hit = rsclip__alloc_count() >= n; /* threads may allocate in another order */
            if (g_verbose)
                printf("%s: allocation %ld%s%s: %s %s\n", p->name, n, every_later ? "+" : "",
                       hit ? "" : " (not reached)", rsclip_status_name(rc), rsclip_last_error());
            points += hit;
            const char *msg = rsclip_last_error();
            if (rc != RSCLIP_OK) {
                errors++;
                if (!msg[0] || rsclip_last_status() != rc) {
                    if (bad++ < g_quiet_points)
                        fprintf(stderr,
                                "%s: allocation %ld failed (%s): returned %s, last error %s "
                                "\"%s\"\n",
                                p->name, n, every_later ? "and later" : "alone",
                                rsclip_status_name(rc), rsclip_status_name(rsclip_last_status()),
                                msg);
                    tu_failures++;
                }
            } else if (hit) {
                survived++;
            }
            p->check(p->ctx, rc);
        }
    }
    printf("%s: %ld allocations, %ld injection points (step %ld, alone and with every later one): "
           "%ld errors, %ld runs that went through\n",
           p->name, a, points, step, errors, survived);
    CHECK(points > 0);
}

/* ---- tokenizer: load spiece.model, encode texts ---------------------------------------------- */

static int run_tokenizer(void *ctx) {
    (void)ctx;
    char path[1200];
    snprintf(path, sizeof path, "%s/spiece.model", g_model);
    rsclip_tokenizer *tok = NULL;
    int rc = rsclip_tokenizer_load(path, NULL, &tok);
    static const char *const texts[] = {
        "a remote sensing image of solar farms", "", "Ünïcødé   spaces\tand 東京 🚀 text",
        "a long text: fields fields fields fields fields fields fields fields fields fields "
        "fields fields fields fields fields fields fields fields fields fields fields fields "
        "fields fields fields fields fields fields fields fields fields fields fields fields "
        "fields fields fields fields fields fields fields fields fields fields fields fields"};
    int32_t ids[64];
    for (size_t i = 0; !rc && i < sizeof texts / sizeof *texts; i++)
        rc = rsclip_tokenizer_encode(tok, texts[i], -1, ids, 64, NULL);
    rsclip_tokenizer_free(tok);
    return rc;
}

static void check_nothing(void *ctx, int rc) {
    (void)ctx, (void)rc;
}

/* ---- loader: the model, an encoder, both towers ---------------------------------------------- */

static int run_loader(void *ctx) {
    int owned = ctx != NULL;
    rsclip_model_params mp = {0};
    mp.owned_weights = owned;
    rsclip_model *m = NULL;
    rsclip_encoder *e = NULL;
    int rc = rsclip_model_load(g_model, &mp, &m);
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.n_threads = 1;
    ep.max_batch = 2;
    if (!rc) rc = rsclip_encoder_new(m, &ep, &e);
    float *px = NULL, *emb = NULL;
    int32_t *ids = NULL;
    if (!rc) {
        const rsclip_model_info *mi = rsclip_model_get_info(m);
        size_t npx = (size_t)3 * (size_t)mi->image_size * (size_t)mi->image_size;
        px = calloc(npx, sizeof *px);
        emb = calloc((size_t)mi->embed_dim, sizeof *emb);
        ids = calloc((size_t)mi->text_ctx, sizeof *ids);
        REQUIRE(px && emb && ids);
        for (size_t i = 0; i < npx; i++) px[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
        rc = rsclip_model_tokenize(m, "solar farms", -1, ids, NULL);
        if (!rc) rc = rsclip_encode_texts(e, 1, ids, emb, NULL);
        if (!rc) rc = rsclip_encode_images(e, 1, px, emb, NULL);
    }
    free(px);
    free(emb);
    free(ids);
    rsclip_encoder_free(e);
    rsclip_model_free(m);
    return rc;
}

#ifndef RSCLIP_TEST_MODEL_ONLY
/* ---- vector set: build, finalize, save, load, search ----------------------------------------- */

#define VS_DIM 48
#define VS_N 700

typedef struct vs_ctx {
    float *vecs; /* [VS_N, VS_DIM] */
    int64_t ids[VS_N];
    int64_t hits[5]; /* the reference answer */
    int have_ref;
} vs_ctx;

static int fetch_vecs(void *user, size_t n, const int64_t *ids, float *out) {
    vs_ctx *c = user;
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * VS_DIM, c->vecs + (size_t)(ids[i] / 3) * VS_DIM, sizeof(float) * VS_DIM);
    return RSCLIP_OK;
}

static int keep_even(void *user, int64_t id) {
    (void)user;
    return (id & 1) == 0;
}

static int run_vecset(void *ctx) {
    vs_ctx *c = ctx;
    const char *path = in_dir("set.rsvec");
    rsclip_vecset *vs = NULL, *ld = NULL, *rd = NULL;
    rsclip_vecset_params vp = rsclip_vecset_default_params();
    vp.capacity_hint = 100; /* the arrays grow */
    int rc = rsclip_vecset_new(VS_DIM, &vp, &vs);
    /* ids given in reverse order in two batches: finalize sorts */
    if (!rc) rc = rsclip_vecset_add(vs, VS_N / 2, c->ids + VS_N / 2, c->vecs + VS_N / 2 * VS_DIM);
    if (!rc) rc = rsclip_vecset_add(vs, VS_N / 2, c->ids, c->vecs);
    if (!rc) rc = rsclip_vecset_finalize(vs);
    if (!rc) rc = rsclip_vecset_save(vs, path, 42);
    if (!rc) rc = rsclip_vecset_load(path, &ld);
    if (!rc) rc = rsclip_vecset_read(path, &rd);
    rsclip_vecset_hit hits[5];
    int n = 0;
    rsclip_search_params sp = rsclip_search_default_params();
    sp.k = 5;
    sp.n_candidates = 40;
    sp.mode = RSCLIP_SEARCH_QUANT;
    sp.fetch = fetch_vecs;
    sp.fetch_user = c;
    sp.negatives = c->vecs + 5 * VS_DIM;
    sp.n_negatives = 1;
    if (!rc) rc = rsclip_vecset_search(ld, c->vecs + 7 * VS_DIM, &sp, hits, &n);
    if (!rc && c->have_ref)
        for (int i = 0; i < 5; i++) CHECK(i < n && hits[i].id == c->hits[i]);
    if (!rc && !c->have_ref) {
        REQUIRE(n == 5);
        for (int i = 0; i < 5; i++) c->hits[i] = hits[i].id;
        c->have_ref = 1;
    }
    sp.negatives = NULL;
    sp.n_negatives = 0;
    sp.filter = keep_even;
    sp.n_threads = 2;
    if (!rc) rc = rsclip_vecset_search(rd, c->vecs + 9 * VS_DIM, &sp, hits, &n);
    int64_t cids[64];
    float cs[64];
    size_t nc = 0;
    sp.filter = NULL;
    sp.allow_ids = c->ids;
    sp.n_allow = 100;
    if (!rc) rc = rsclip_vecset_candidates(ld, c->vecs, &sp, cids, cs, 64, &nc);
    float *all = calloc(VS_N, sizeof *all);
    REQUIRE(all);
    if (!rc) rc = rsclip_vecset_score_all(vs, c->vecs, NULL, all);
    free(all);
    rsclip_vecset_free(rd);
    rsclip_vecset_free(ld);
    rsclip_vecset_free(vs);
    return rc;
}

/* Nothing but the cache file stays in the folder (a failed save removes its temporary file), and
 * the file, when there is one, loads. */
static void check_vecset(void *ctx, int rc) {
    (void)ctx, (void)rc;
    DIR *d = opendir(g_dir);
    REQUIRE(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "set.rsvec", 9) == 0 && strcmp(e->d_name, "set.rsvec") != 0) {
            fprintf(stderr, "vecset: left behind: %s\n", e->d_name);
            tu_failures++;
        }
    }
    closedir(d);
    rsclip_vecset *vs = NULL;
    struct stat st;
    if (stat(in_dir("set.rsvec"), &st) == 0) {
        CHECK_OK(rsclip_vecset_load(in_dir("set.rsvec"), &vs));
        CHECK(vs && rsclip_vecset_count(vs) == VS_N);
        rsclip_vecset_free(vs);
    }
    unlink(in_dir("set.rsvec"));
}

/* ---- index: create, bind, scenes, tiles, reads ----------------------------------------------- */

#define IX_TILES 3

typedef struct ix_ctx {
    int dim;
    char fingerprint[128];
    float *vecs;    /* [2 * IX_TILES, dim] */
    int64_t n_base; /* tiles of base.gpkg */
} ix_ctx;

static void scene_tiles(int sc, rsclip_scene_info *s, rsclip_tile_record *rec, double ring[][8]) {
    static char names[8][64];
    snprintf(names[sc], sizeof names[sc], "/synthetic/scene%d.tif", sc);
    memset(s, 0, sizeof *s);
    s->path = names[sc];
    s->file_size = 1 + sc;
    s->width = 64 * IX_TILES;
    s->height = 64;
    s->bands = "1,2,3";
    s->datetime = sc & 1 ? "2021-05-01T00:00:00Z" : "2020-05-01T00:00:00Z";
    s->datetime_source = "option";
    ti_strip(10 + 0.1 * sc, IX_TILES, rec, ring);
}

/* Add scene sc with its tiles to an open index. */
static int add_scene(rsclip_index *idx, int sc, const float *vecs) {
    rsclip_scene_info s;
    rsclip_tile_record rec[IX_TILES];
    double ring[IX_TILES][8];
    scene_tiles(sc, &s, rec, ring);
    int64_t id = 0;
    int state = 0;
    int rc = rsclip_index_begin_scene(idx, &s, 0, &id, &state);
    if (!rc) rc = rsclip_index_add_tiles(idx, id, IX_TILES, rec, vecs, NULL);
    if (!rc) rc = rsclip_index_complete_scene(idx, id, 0);
    return rc;
}

static int bind(rsclip_index *idx, const ix_ctx *c) {
    int rc = rsclip_index_bind_model(idx, g_model, c->fingerprint, c->dim, NULL);
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_scale", "2.30258509");
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_bias", "-2.5");
    return rc;
}

static void remove_index(const char *path) {
    char p[1200];
    unlink(path);
    static const char *const sfx[] = {"-wal", "-shm", "-journal", ".rsvec"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static int index_reads(rsclip_index *idx, int dim) {
    int64_t *ids = NULL, *tids = NULL, *bids = NULL;
    size_t n = 0, nt = 0, nb = 0;
    rsclip_tile_window *win = NULL;
    rsclip_scene_info *si = NULL, *sf = NULL;
    rsclip_tile_info *ti = NULL;
    rsclip_embeddings *emb = NULL;
    rsclip_index_info info;
    char *meta = NULL;
    float *v = calloc((size_t)dim * 2, sizeof *v);
    REQUIRE(v);
    const double bbox[4] = {9.9, 49.9, 10.5, 50.1};
    int rc = rsclip_index_list_scenes(idx, &ids, &n);
    if (!rc) rc = n ? RSCLIP_OK : RSCLIP_ERR_INTERNAL;
    if (!rc) rc = rsclip_index_get_scene(idx, ids[n - 1], &si);
    if (!rc) rc = rsclip_index_find_scene(idx, si->path, &sf);
    if (!rc) rc = rsclip_index_scene_tiles(idx, ids[n - 1], &tids, &win, &nt);
    if (!rc) rc = rsclip_index_get_tile(idx, tids[0], &ti);
    if (!rc) rc = rsclip_index_tiles_in_bbox(idx, bbox, 1, &bids, &nb);
    if (!rc) rc = rsclip_index_get_embeddings(idx, tids, 2, v);
    if (!rc) rc = rsclip_index_load_embeddings(idx, &emb);
    if (!rc) rc = rsclip_index_get_info(idx, &info);
    if (!rc) rc = rsclip_index_get_meta(idx, "logit_bias", &meta);
    rsclip_free(meta);
    rsclip_embeddings_free(emb);
    rsclip_free(bids);
    rsclip_free(ti);
    rsclip_free(win);
    rsclip_free(tids);
    rsclip_free(sf);
    rsclip_free(si);
    rsclip_free(ids);
    free(v);
    return rc;
}

/* On a copy of base.gpkg (two scenes): add a third scene and read everything back; then a new
 * index from nothing. */
static int run_index(void *ctx) {
    ix_ctx *c = ctx;
    const char *work = in_dir("work.gpkg"), *fresh = in_dir("fresh.gpkg");
    remove_index(work);
    remove_index(fresh);
    tu_copy_file(in_dir("base.gpkg"), work);
    rsclip_index *idx = NULL;
    int rc = rsclip_index_open(work, RSCLIP_INDEX_READWRITE, &idx);
    if (!rc) rc = add_scene(idx, 2, c->vecs);
    if (!rc) rc = index_reads(idx, c->dim);
    if (!rc) rc = rsclip_index_verify(idx);
    rsclip_index_close(idx);
    idx = NULL;
    if (!rc) rc = rsclip_index_open(fresh, RSCLIP_INDEX_CREATE, &idx);
    if (!rc) rc = bind(idx, c);
    if (!rc) rc = add_scene(idx, 0, c->vecs);
    rsclip_index_close(idx);
    return rc;
}

static int64_t tile_count(const char *path) {
    rsclip_index *idx = NULL;
    rsclip_index_info info;
    int rc = rsclip_index_open(path, RSCLIP_INDEX_READONLY, &idx);
    if (!rc) rc = rsclip_index_verify(idx);
    if (!rc) rc = rsclip_index_get_info(idx, &info);
    rsclip_index_close(idx);
    if (rc) fprintf(stderr, "%s: %s\n", path, rsclip_last_error());
    return rc ? -1 : info.n_tiles;
}

/* The copy holds its two scenes, and the third one all or nothing; the base is untouched; the
 * new index, when one was made, opens and verifies. */
static void check_index(void *ctx, int rc) {
    ix_ctx *c = ctx;
    int64_t n = tile_count(in_dir("work.gpkg"));
    if (rc == RSCLIP_OK)
        CHECK(n == c->n_base + IX_TILES);
    else
        CHECK(n == c->n_base || n == c->n_base + IX_TILES);
    CHECK(tile_count(in_dir("base.gpkg")) == c->n_base);
    struct stat st;
    if (stat(in_dir("fresh.gpkg"), &st) == 0) {
        rsclip_index *idx = NULL;
        int orc = rsclip_index_open(in_dir("fresh.gpkg"), RSCLIP_INDEX_READWRITE, &idx);
        /* a file created before its schema was complete may be refused, never crash */
        if (!orc) CHECK_OK(rsclip_index_verify(idx));
        rsclip_index_close(idx);
    }
}

/* ---- session: open (the cache rebuilt), queries by tile and by text -------------------------- */

typedef struct ses_ctx {
    int64_t hits[4];
    int have_ref;
} ses_ctx;

static int run_session(void *ctx) {
    ses_ctx *c = ctx;
    const char *base = in_dir("base.gpkg");
    char cache[1200];
    snprintf(cache, sizeof cache, "%s.rsvec", base);
    unlink(cache); /* the session rebuilds it */
    rsclip_session_params sp = rsclip_session_default_params();
    sp.n_threads = 1;
    rsclip_session *s = NULL;
    rsclip_results *r = NULL, *r2 = NULL;
    int rc = rsclip_session_open(base, &sp, &s);
    rsclip_query q = rsclip_query_default();
    q.like_tile = 2;
    q.k = 4;
    if (!rc) rc = rsclip_session_search(s, &q, &r);
    if (!rc) {
        REQUIRE(r->n == 4);
        for (int i = 0; i < 4; i++) {
            if (c->have_ref)
                CHECK(r->hits[i].tile_id == c->hits[i]);
            else
                c->hits[i] = r->hits[i].tile_id;
        }
        c->have_ref = 1;
    }
    /* a text with a negative, a bbox and a time filter: the model and tokenizer load here */
    static const char *const neg[1] = {"clouds"};
    rsclip_query t = rsclip_query_default();
    t.text = "solar farms";
    t.negatives = neg;
    t.n_negatives = 1;
    t.k = 3;
    t.has_bbox = 1;
    t.bbox[0] = 9.9, t.bbox[1] = 49.9, t.bbox[2] = 10.5, t.bbox[3] = 50.1;
    t.after = "2020";
    if (!rc) rc = rsclip_session_search(s, &t, &r2);
    rsclip_results_free(r2);
    rsclip_results_free(r);
    rsclip_session_close(s);
    return rc;
}

/* The index is untouched and a session without failures answers as before. */
static void check_session(void *ctx, int rc) {
    ses_ctx *c = ctx;
    (void)rc;
    CHECK(tile_count(in_dir("base.gpkg")) == 2 * IX_TILES);
    rsclip_session *s = NULL;
    rsclip_results *r = NULL;
    rsclip_session_params sp = rsclip_session_default_params();
    sp.n_threads = 1;
    CHECK_OK(rsclip_session_open(in_dir("base.gpkg"), &sp, &s));
    rsclip_query q = rsclip_query_default();
    q.like_tile = 2;
    q.k = 4;
    if (s) CHECK_OK(rsclip_session_search(s, &q, &r));
    CHECK(r && r->n == 4);
    for (int i = 0; r && i < r->n && i < 4; i++) CHECK(r->hits[i].tile_id == c->hits[i]);
    rsclip_results_free(r);
    rsclip_session_close(s);
}

/* ---- indexer: a run over two small rasters --------------------------------------------------- */

typedef struct ixr_ctx {
    int again; /* 0: a new index each run; 1: the complete index again (nothing to do) */
    const char *scenes[2];
    int n_err;
    char err_path[4][1024];
    rsclip_indexer_report rep;
} ixr_ctx;

static void on_error(const char *path, const char *message, void *user) {
    ixr_ctx *c = user;
    if (c->n_err < 4) snprintf(c->err_path[c->n_err], sizeof c->err_path[0], "%s", path);
    if (!message || !message[0] || !strstr(message, path)) {
        fprintf(stderr, "indexer: %s reported with \"%s\"\n", path, message ? message : "(null)");
        tu_failures++;
    }
    c->n_err++;
}

static rsclip_indexer_params indexer_params(ixr_ctx *c) {
    rsclip_indexer_params p = rsclip_indexer_default_params();
    p.model = g_model;
    p.batch = 2;
    p.n_threads = 1;
    p.on_error = on_error;
    p.user = c;
    return p;
}

static int run_indexer(void *ctx) {
    ixr_ctx *c = ctx;
    const char *index = in_dir("run.gpkg");
    if (!c->again) remove_index(index);
    c->n_err = 0;
    memset(&c->rep, 0, sizeof c->rep);
    rsclip_indexer_params p = indexer_params(c);
    return rsclip_indexer_run(index, c->scenes, 2, &p, &c->rep);
}

/* No scene vanishes: each is indexed or reported; the index verifies and a second run completes it
 * (3 tiles). */
static void check_indexer(void *ctx, int rc) {
    ixr_ctx *c = ctx;
    const char *index = in_dir("run.gpkg");
    if (rc == RSCLIP_OK) {
        if (c->rep.scenes_indexed + c->rep.scenes_unchanged + c->rep.scenes_failed != 2 ||
            c->n_err != c->rep.scenes_failed) {
            fprintf(stderr, "indexer: %d indexed, %d unchanged, %d failed, %d reported\n",
                    c->rep.scenes_indexed, c->rep.scenes_unchanged, c->rep.scenes_failed, c->n_err);
            tu_failures++;
        }
    }
    struct stat st;
    if (stat(index, &st) == 0) {
        rsclip_index *idx = NULL;
        if (rsclip_index_open(index, RSCLIP_INDEX_READONLY, &idx) == RSCLIP_OK)
            CHECK_OK(rsclip_index_verify(idx));
        rsclip_index_close(idx);
    }
    if (rc == RSCLIP_OK && c->rep.scenes_failed == 0) {
        CHECK(tile_count(index) == 3);
        return;
    }
    /* what failed is done by the next run */
    c->n_err = 0;
    rsclip_indexer_params p = indexer_params(c);
    rsclip_indexer_report rep;
    CHECK_OK(rsclip_indexer_run(index, c->scenes, 2, &p, &rep));
    CHECK(rep.scenes_failed == 0 && c->n_err == 0);
    CHECK(tile_count(index) == 3);
}
#endif /* !RSCLIP_TEST_MODEL_ONLY */

int main(void) {
    snprintf(g_model, sizeof g_model, "%s/siglip-tiny", tu_fixtures());
    tu_abs_tmpdir(g_dir, sizeof g_dir, "test_oom");
    /* the model's digest cache lives here, not in the user's cache */
    REQUIRE(setenv("RSCLIP_CACHE", g_dir, 1) == 0);
    setvbuf(stdout, NULL, _IOLBF, 0); /* in order with stderr */
    g_quiet_points = 20;
    g_verbose = getenv("RSCLIP_OOM_VERBOSE") != NULL;
    g_full = getenv("RSCLIP_OOM_FULL") != NULL;
    const char *only = getenv("RSCLIP_OOM_PATH"); /* run one path (debugging) */
#define WANT(name) (!only || strcmp(only, name) == 0)

    if (WANT("tokenizer")) inject(&(oom_path){"tokenizer", run_tokenizer, check_nothing, NULL, 0});
    if (WANT("loader")) {
        inject(&(oom_path){"loader (mapped)", run_loader, check_nothing, NULL, 250});
        inject(&(oom_path){"loader (owned)", run_loader, check_nothing, g_model, 60});
    }
#ifndef RSCLIP_TEST_MODEL_ONLY
    GDALAllRegister();
    if (WANT("vecset")) {
        vs_ctx *c = calloc(1, sizeof *c);
        REQUIRE(c && (c->vecs = malloc(sizeof(float) * VS_N * VS_DIM)));
        uint32_t x = 12345;
        for (int i = 0; i < VS_N * VS_DIM; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            c->vecs[i] = (float)(x % 2001) / 1000.0f - 1.0f;
        }
        for (int i = 0; i < VS_N; i++) c->ids[i] = 3 * (int64_t)i;
        inject(&(oom_path){"vecset", run_vecset, check_vecset, c, 0});
        free(c->vecs);
        free(c);
    }
    /* base.gpkg: two scenes of IX_TILES tiles, bound to the tiny model */
    ix_ctx ix = {0};
    {
        rsclip_model *m = NULL;
        REQUIRE(rsclip_model_load(g_model, NULL, &m) == RSCLIP_OK);
        const rsclip_model_info *mi = rsclip_model_get_info(m);
        ix.dim = mi->embed_dim;
        snprintf(ix.fingerprint, sizeof ix.fingerprint, "%s", mi->fingerprint);
        rsclip_model_free(m);
        ix.vecs = malloc(sizeof(float) * (size_t)ix.dim * 2 * IX_TILES);
        REQUIRE(ix.vecs);
        uint32_t x = 777;
        for (int i = 0; i < ix.dim * 2 * IX_TILES; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            ix.vecs[i] = (float)(x % 2001) / 1000.0f - 1.0f;
        }
        rsclip_index *idx = NULL;
        REQUIRE(rsclip_index_open(in_dir("base.gpkg"), RSCLIP_INDEX_CREATE, &idx) == RSCLIP_OK);
        CHECK_OK(bind(idx, &ix));
        CHECK_OK(add_scene(idx, 0, ix.vecs));
        CHECK_OK(add_scene(idx, 1, ix.vecs + (size_t)ix.dim * IX_TILES));
        rsclip_index_close(idx);
        ix.n_base = tile_count(in_dir("base.gpkg"));
        REQUIRE(ix.n_base == 2 * IX_TILES);
    }
    if (WANT("index")) inject(&(oom_path){"index", run_index, check_index, &ix, 400});
    if (WANT("session")) {
        ses_ctx sc = {0};
        inject(&(oom_path){"session", run_session, check_session, &sc, 150});
    }
    if (WANT("indexer")) {
        ixr_ctx c = {0};
        char paths[2][1200];
        snprintf(paths[0], sizeof paths[0], "%s", in_dir("scene0.tif"));
        snprintf(paths[1], sizeof paths[1], "%s", in_dir("scene1.tif"));
        tu_write_raster(paths[0], 256, 512, 0); /* 1 x 2 tiles of 256 px (the tiny model's size) */
        tu_write_raster(paths[1], 256, 256, 1);
        c.scenes[0] = paths[0];
        c.scenes[1] = paths[1];
        inject(&(oom_path){"indexer", run_indexer, check_indexer, &c, 50});
        c.again = 1;
        inject(&(oom_path){"indexer (again)", run_indexer, check_indexer, &c, 40});
    }
    free(ix.vecs);
    GDALDestroyDriverManager();
#endif
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!tu_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tu_finish("test_oom");
}
