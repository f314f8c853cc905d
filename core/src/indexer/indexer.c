/* The indexing pipeline: a reader thread (tiler + preprocessing) feeds batches to the calling
 * thread, which encodes them and stores each batch in one index transaction. */
#include "rsclip/indexer.h"
#include "rsclip/hub.h"
#include "rsclip/index.h"
#include "rsclip/model.h"
#include "status/status_internal.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_BATCH_BUFFERS 3 /* one being filled, one queued, one being encoded */

rsclip_indexer_params rsclip_indexer_default_params(void) {
    rsclip_indexer_params p;
    memset(&p, 0, sizeof p);
    p.model = "base";
    p.tiler = rsclip_tiler_default_params();
    p.batch = 8;
    return p;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- messages from the reader to the writer ------------------------------------------------ */

typedef struct batch {
    int n;
    float *pixels;            /* [cap, 3, S, S] */
    rsclip_tile_record *recs; /* [cap] */
    double *rings;            /* [cap, RSCLIP_TILER_MAX_RING, 2] */
} batch;

enum { MSG_SCENE_BEGIN, MSG_BATCH, MSG_SCENE_END, MSG_SCENE_FAIL, MSG_SCENE_SKIP, MSG_DONE };

typedef struct msg {
    int kind;
    int scene_no; /* 0-based input number */
    batch *b;     /* MSG_BATCH */
    /* MSG_SCENE_BEGIN: what the index records about the scene (strings owned by the message) */
    rsclip_scene_info scene; /* index's scene description */
    char *path, *checksum, *crs_wkt, *bands, *scaling;
    int64_t tiles_to_do; /* tiles this run will read (not yet stored) */
    int64_t skipped;     /* MSG_SCENE_END: tiles below min_valid */
    char *error;         /* MSG_SCENE_FAIL */
} msg;

static void msg_free(msg *m) {
    if (!m) return;
    free(m->path);
    free(m->checksum);
    free(m->crs_wkt);
    free(m->bands);
    free(m->scaling);
    free(m->error);
    free(m);
}

/* A small blocking queue of pointers. */
typedef struct queue {
    void *items[16];
    int head, count, cap;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
} queue;

static void q_init(queue *q, int cap) {
    memset(q, 0, sizeof *q);
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
}

static void q_destroy(queue *q) {
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

static void q_push(queue *q, void *p) {
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
    q->items[(q->head + q->count) % q->cap] = p;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

static void *q_pop(queue *q) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0) pthread_cond_wait(&q->not_empty, &q->mu);
    void *p = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return p;
}

/* ---- shared state ---------------------------------------------------------------------------- */

typedef struct pipeline {
    const char *index_path;
    const char *const *paths;
    int n_paths;
    const rsclip_indexer_params *params;
    rsclip_tiler_params tp;
    const rsclip_model *model;
    int image_size, batch_cap;
    queue to_writer;    /* msg* */
    queue free_batches; /* batch* */
    volatile int stop;  /* writer asks the reader to stop (fatal error or cancel) */
} pipeline;

static char *dupstr(const char *s) {
    return strdup(s ? s : "");
}

static int cmp_window(const void *a, const void *b) {
    const rsclip_tile_window *x = a, *y = b;
    if (x->yoff != y->yoff) return x->yoff < y->yoff ? -1 : 1;
    if (x->xoff != y->xoff) return x->xoff < y->xoff ? -1 : 1;
    if (x->ysize != y->ysize) return x->ysize < y->ysize ? -1 : 1;
    if (x->xsize != y->xsize) return x->xsize < y->xsize ? -1 : 1;
    return 0;
}

static void send_fail(pipeline *pl, int scene_no, const char *path, const char *err) {
    msg *m = calloc(1, sizeof *m);
    if (!m) return; /* out of memory: the scene simply stays unreported as failed */
    m->kind = MSG_SCENE_FAIL;
    m->scene_no = scene_no;
    m->path = dupstr(path);
    m->error = dupstr(err);
    q_push(&pl->to_writer, m);
}

/* Scaling description recorded per scene (JSON). */
static char *scaling_json(const rsclip_raster_info *si) {
    char buf[512];
    const char *mode = si->scale_mode == RSCLIP_TILER_SCALE_NONE    ? "none"
                       : si->scale_mode == RSCLIP_TILER_SCALE_RANGE ? "range"
                                                                    : "percentile";
    if (si->scale_mode == RSCLIP_TILER_SCALE_NONE)
        snprintf(buf, sizeof buf, "{\"mode\":\"none\",\"data_type\":\"%s\"}", si->data_type);
    else
        snprintf(buf, sizeof buf,
                 "{\"mode\":\"%s\",\"data_type\":\"%s\",\"min\":[%.9g,%.9g,%.9g],"
                 "\"max\":[%.9g,%.9g,%.9g]}",
                 mode, si->data_type, si->scale_min[0], si->scale_min[1], si->scale_min[2],
                 si->scale_max[0], si->scale_max[1], si->scale_max[2]);
    return strdup(buf);
}

/* One scene: decide what to read (skip unchanged, resume), then read + preprocess its tiles. */
static void read_scene(pipeline *pl, rsclip_index *ro, int scene_no) {
    const char *path = pl->paths[scene_no];
    rsclip_fingerprint fp;
    if (rsclip_file_fingerprint(path, &fp) != RSCLIP_OK) {
        send_fail(pl, scene_no, path, rsclip_last_error());
        return;
    }
    const char *checksum = fp.checksum_hex;
    rsclip_scene_info probe;
    memset(&probe, 0, sizeof probe);
    probe.path = path;
    probe.file_size = fp.size;
    probe.mtime_ns = fp.mtime_ns;
    probe.checksum = checksum;
    int64_t sid = 0;
    int state = RSCLIP_SCENE_NEW;
    if (ro && rsclip_index_scene_state(ro, &probe, &sid, &state) != RSCLIP_OK) {
        rsclip_clear_error();
        state = RSCLIP_SCENE_NEW;
    }
    if (state == RSCLIP_SCENE_UNCHANGED && !pl->params->force) {
        msg *m = calloc(1, sizeof *m);
        if (!m) return;
        m->kind = MSG_SCENE_SKIP;
        m->scene_no = scene_no;
        m->path = dupstr(path);
        q_push(&pl->to_writer, m);
        return;
    }
    rsclip_tile_window *done = NULL;
    size_t n_done = 0;
    if (state == RSCLIP_SCENE_RESUMED && !pl->params->force && ro &&
        rsclip_index_scene_windows(ro, sid, &done, &n_done) != RSCLIP_OK) {
        send_fail(pl, scene_no, path, rsclip_last_error());
        return;
    }

    rsclip_tiler *t = NULL;
    if (rsclip_tiler_open(path, &pl->tp, &t) != RSCLIP_OK) {
        send_fail(pl, scene_no, path, rsclip_last_error());
        rsclip_free(done);
        return;
    }
    const rsclip_raster_info *si = rsclip_tiler_scene(t);

    /* Count what this run will read: every tile not already stored. */
    int64_t to_do = 0;
    rsclip_tile tile;
    for (int64_t i = 0; i < si->n_tiles; i++) {
        if (rsclip_tiler_tile(t, i, &tile) != RSCLIP_OK) break;
        rsclip_tile_window w = {tile.xoff, tile.yoff, tile.xsize, tile.ysize};
        if (!n_done || !bsearch(&w, done, n_done, sizeof w, cmp_window)) to_do++;
    }

    msg *m = calloc(1, sizeof *m);
    if (!m) {
        rsclip_tiler_close(t);
        rsclip_free(done);
        return;
    }
    char bands[64];
    if (si->n_bands == 1)
        snprintf(bands, sizeof bands, "%d", si->bands[0]);
    else
        snprintf(bands, sizeof bands, "%d,%d,%d", si->bands[0], si->bands[1], si->bands[2]);
    m->kind = MSG_SCENE_BEGIN;
    m->scene_no = scene_no;
    m->path = dupstr(path);
    m->checksum = dupstr(checksum);
    m->crs_wkt = dupstr(si->crs_wkt);
    m->bands = dupstr(bands);
    m->scaling = scaling_json(si);
    m->scene.path = m->path;
    m->scene.file_size = fp.size;
    m->scene.mtime_ns = probe.mtime_ns;
    m->scene.checksum = m->checksum;
    m->scene.crs_wkt = m->crs_wkt;
    m->scene.epsg = si->epsg;
    memcpy(m->scene.geotransform, si->geotransform, sizeof m->scene.geotransform);
    m->scene.width = si->width;
    m->scene.height = si->height;
    m->scene.bands = m->bands;
    m->scene.scaling = m->scaling;
    m->scene.tiles_planned = si->n_tiles;
    m->tiles_to_do = to_do;
    q_push(&pl->to_writer, m);

    const size_t rgb_size = rsclip_tiler_buffer_size(t);
    uint8_t *rgb = malloc(rgb_size);
    const size_t px_per_tile = (size_t)3 * (size_t)pl->image_size * (size_t)pl->image_size;
    int64_t skipped = 0;
    batch *b = NULL;
    int failed = rgb ? 0 : 1;
    if (!rgb) send_fail(pl, scene_no, path, "out of memory");
    for (int64_t i = 0; i < si->n_tiles && !failed && !pl->stop; i++) {
        if (rsclip_tiler_tile(t, i, &tile) != RSCLIP_OK) {
            send_fail(pl, scene_no, path, rsclip_last_error());
            failed = 1;
            break;
        }
        rsclip_tile_window w = {tile.xoff, tile.yoff, tile.xsize, tile.ysize};
        if (n_done && bsearch(&w, done, n_done, sizeof w, cmp_window)) continue;
        if (rsclip_tiler_read(t, i, rgb, rgb_size, &tile) != RSCLIP_OK) {
            send_fail(pl, scene_no, path, rsclip_last_error());
            failed = 1;
            break;
        }
        if (tile.skipped) {
            skipped++;
            continue;
        }
        if (!b) {
            b = q_pop(&pl->free_batches);
            b->n = 0;
        }
        int k = b->n;
        if (rsclip_preprocess_rgb8(pl->model, rgb, tile.out_width, tile.out_height,
                                   (size_t)tile.out_width * 3,
                                   b->pixels + (size_t)k * px_per_tile) != RSCLIP_OK) {
            send_fail(pl, scene_no, path, rsclip_last_error());
            failed = 1;
            break;
        }
        rsclip_tile_record *r = &b->recs[k];
        memset(r, 0, sizeof *r);
        r->window = w;
        r->valid_fraction = tile.valid_fraction;
        r->lon = tile.center_lon;
        r->lat = tile.center_lat;
        for (int c = 0; c < 4; c++) {
            r->corners[2 * c] = tile.corners[c][0];
            r->corners[2 * c + 1] = tile.corners[c][1];
        }
        double *ring = b->rings + (size_t)k * RSCLIP_TILER_MAX_RING * 2;
        memcpy(ring, tile.ring, sizeof(double) * 2 * (size_t)tile.n_ring);
        r->footprint = ring;
        r->n_footprint = (size_t)tile.n_ring;
        b->n++;
        if (b->n == pl->batch_cap) {
            msg *mb = calloc(1, sizeof *mb);
            if (!mb) {
                failed = 1;
                break;
            }
            mb->kind = MSG_BATCH;
            mb->scene_no = scene_no;
            mb->b = b;
            b = NULL;
            q_push(&pl->to_writer, mb);
        }
    }
    if (b && b->n > 0 && !failed) {
        msg *mb = calloc(1, sizeof *mb);
        if (mb) {
            mb->kind = MSG_BATCH;
            mb->scene_no = scene_no;
            mb->b = b;
            b = NULL;
            q_push(&pl->to_writer, mb);
        } else {
            failed = 1;
        }
    }
    if (b) q_push(&pl->free_batches, b);
    if (!failed && !pl->stop) {
        msg *me = calloc(1, sizeof *me);
        if (me) {
            me->kind = MSG_SCENE_END;
            me->scene_no = scene_no;
            me->skipped = skipped;
            q_push(&pl->to_writer, me);
        }
    }
    free(rgb);
    rsclip_free(done);
    rsclip_tiler_close(t);
}

static void *reader_main(void *arg) {
    pipeline *pl = arg;
    rsclip_index *ro = NULL;
    if (rsclip_index_open(pl->index_path, RSCLIP_INDEX_READONLY, &ro) != RSCLIP_OK) ro = NULL;
    for (int i = 0; i < pl->n_paths && !pl->stop; i++) read_scene(pl, ro, i);
    rsclip_index_close(ro);
    msg *m = calloc(1, sizeof *m);
    /* The writer waits for MSG_DONE: spin until memory allows it (never in practice). */
    while (!m) {
        usleep(1000);
        m = calloc(1, sizeof *m);
    }
    m->kind = MSG_DONE;
    q_push(&pl->to_writer, m);
    return NULL;
}

/* ---- the writer (calling thread) ------------------------------------------------------------ */

static void batch_free(batch *b) {
    if (!b) return;
    free(b->pixels);
    free(b->recs);
    free(b->rings);
    free(b);
}

static batch *batch_new(int cap, size_t px_per_tile) {
    batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    size_t npx;
    if (rsclip__mul_size(px_per_tile, (size_t)cap, &npx)) {
        free(b);
        return NULL;
    }
    b->pixels = malloc(npx * sizeof(float));
    b->recs = calloc((size_t)cap, sizeof *b->recs);
    b->rings = malloc(sizeof(double) * 2 * RSCLIP_TILER_MAX_RING * (size_t)cap);
    if (!b->pixels || !b->recs || !b->rings) {
        batch_free(b);
        return NULL;
    }
    memset(b->pixels, 0, npx * sizeof(float)); /* touch the pages once, here */
    return b;
}

/* How the model id is recorded: a folder by its absolute path, a hub name by its repo id. */
static void model_id_of(const char *name, char *out, size_t n) {
    char *abs = realpath(name, NULL);
    if (abs) {
        snprintf(out, n, "%s", abs);
        free(abs);
    } else {
        snprintf(out, n, "%s", rsclip_hub_repo_id(name));
    }
}

/* The reader thread feeds this thread, which encodes each batch and stores it in one transaction.
 * Returns the first fatal error (the report counts everything done until then). */
static int run_pipeline(const char *index_path, const char *const *paths, int n_paths,
                        const rsclip_indexer_params *params, const rsclip_model *model,
                        rsclip_encoder *enc, rsclip_index *idx, double t0,
                        rsclip_indexer_report *report) {
    const rsclip_indexer_params p = *params;
    const rsclip_model_info *mi = rsclip_model_get_info(model);
    rsclip_indexer_report rep = *report;
    int rc = RSCLIP_OK;
    pipeline pl;
    memset(&pl, 0, sizeof pl);
    pl.index_path = index_path;
    pl.paths = paths;
    pl.n_paths = n_paths;
    pl.params = &p;
    pl.tp = p.tiler;
    pl.tp.tile_size = mi->image_size;
    if (p.tiler.stride <= 0) pl.tp.stride = 0;
    pl.model = model;
    pl.image_size = mi->image_size;
    pl.batch_cap = p.batch;
    q_init(&pl.to_writer, 16);
    q_init(&pl.free_batches, N_BATCH_BUFFERS);
    const size_t px_per_tile = (size_t)3 * (size_t)mi->image_size * (size_t)mi->image_size;
    batch *buffers[N_BATCH_BUFFERS] = {0};
    for (int i = 0; i < N_BATCH_BUFFERS && !rc; i++) {
        buffers[i] = batch_new(p.batch, px_per_tile);
        if (!buffers[i])
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
        else
            q_push(&pl.free_batches, buffers[i]);
    }
    float *emb = rc ? NULL : malloc(sizeof(float) * (size_t)p.batch * (size_t)mi->embed_dim);
    if (!rc && !emb) rc = rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
    pthread_t reader;
    int reader_started = 0;
    if (!rc) {
        if (pthread_create(&reader, NULL, reader_main, &pl) != 0)
            rc = rsclip__error(RSCLIP_ERR_INTERNAL, "indexer: cannot start the reader thread");
        else
            reader_started = 1;
    }

    int64_t cur_sid = 0;
    int cur_scene = -1, cur_ok = 0;
    int64_t tiles_total = 0;
    int fatal = rc;
    while (reader_started) {
        msg *m = q_pop(&pl.to_writer);
        if (m->kind == MSG_DONE) {
            msg_free(m);
            break;
        }
        if (fatal) { /* drain: give batches back so the reader can finish */
            if (m->kind == MSG_BATCH) q_push(&pl.free_batches, m->b);
            msg_free(m);
            continue;
        }
        switch (m->kind) {
        case MSG_SCENE_SKIP:
            rep.scenes_unchanged++;
            break;
        case MSG_SCENE_FAIL:
            rep.scenes_failed++;
            if (p.on_error) p.on_error(m->path, m->error, p.user);
            if (m->scene_no == cur_scene) cur_ok = 0;
            break;
        case MSG_SCENE_BEGIN: {
            int state = 0;
            cur_scene = m->scene_no;
            cur_ok = 0;
            int r = rsclip_index_begin_scene(idx, &m->scene, p.force, &cur_sid, &state);
            if (r) {
                fatal = r;
                pl.stop = 1;
                break;
            }
            cur_ok = 1;
            tiles_total += m->tiles_to_do;
            break;
        }
        case MSG_BATCH: {
            batch *b = m->b;
            if (m->scene_no == cur_scene && cur_ok) {
                double te = now_s();
                int r = rsclip_encode_images(enc, b->n, b->pixels, emb, NULL);
                rep.encode_seconds += now_s() - te;
                if (!r) r = rsclip_index_add_tiles(idx, cur_sid, (size_t)b->n, b->recs, emb, NULL);
                if (r) {
                    fatal = r;
                    pl.stop = 1;
                } else {
                    rep.tiles_added += b->n;
                }
            }
            q_push(&pl.free_batches, b);
            break;
        }
        case MSG_SCENE_END:
            if (m->scene_no == cur_scene && cur_ok) {
                int r = rsclip_index_complete_scene(idx, cur_sid, m->skipped);
                if (r) {
                    fatal = r;
                    pl.stop = 1;
                } else {
                    rep.scenes_indexed++;
                    rep.tiles_skipped += m->skipped;
                }
            }
            break;
        }
        if (!fatal && p.progress &&
            (m->kind == MSG_BATCH || m->kind == MSG_SCENE_BEGIN || m->kind == MSG_SCENE_END)) {
            rsclip_indexer_progress pr;
            double el = now_s() - t0;
            pr.scene = m->scene_no + 1;
            pr.n_scenes = n_paths;
            pr.path = paths[m->scene_no];
            pr.tiles_done = rep.tiles_added;
            pr.tiles_total = tiles_total;
            pr.tiles_per_s = el > 0 ? (double)rep.tiles_added / el : 0;
            pr.eta_s =
                pr.tiles_per_s > 0 ? (double)(tiles_total - rep.tiles_added) / pr.tiles_per_s : -1;
            if (!p.progress(&pr, p.user)) {
                fatal = rsclip__error(RSCLIP_ERR_CANCELLED, "indexing cancelled");
                pl.stop = 1;
            }
        }
        msg_free(m);
    }
    if (reader_started) pthread_join(reader, NULL);
    rc = fatal;
    for (int i = 0; i < N_BATCH_BUFFERS; i++) batch_free(buffers[i]);
    q_destroy(&pl.to_writer);
    q_destroy(&pl.free_batches);
    free(emb);
    *report = rep;
    return rc;
}

int rsclip_indexer_run(const char *index_path, const char *const *paths, int n_paths,
                       const rsclip_indexer_params *params, rsclip_indexer_report *report) {
    rsclip_indexer_report rep;
    memset(&rep, 0, sizeof rep);
    if (report) memset(report, 0, sizeof *report);
    if (!index_path || (n_paths > 0 && !paths) || n_paths < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "indexer: no index or inputs");
    rsclip_indexer_params p = params ? *params : rsclip_indexer_default_params();
    if (p.batch < 1) p.batch = 8;
    if (p.batch > 256) p.batch = 256;
    const double t0 = now_s();
    rep.scenes_total = n_paths;

    char model_dir[4096];
    int rc = rsclip_hub_resolve(p.model, model_dir, sizeof model_dir);
    rsclip_model *model = NULL;
    rsclip_encoder *enc = NULL;
    rsclip_index *idx = NULL;
    if (!rc) rc = rsclip_model_load(model_dir, NULL, &model);
    const rsclip_model_info *mi = model ? rsclip_model_get_info(model) : NULL;
    if (!rc) rc = rsclip_index_open(index_path, RSCLIP_INDEX_CREATE, &idx);
    if (!rc) {
        char model_id[4096], prep[512];
        model_id_of(p.model, model_id, sizeof model_id);
        snprintf(prep, sizeof prep,
                 "SiglipImageProcessor: bicubic (Pillow) resize to %dx%d, rescale %.9g, "
                 "mean %.4g,%.4g,%.4g std %.4g,%.4g,%.4g; tiles %d px",
                 mi->image_size, mi->image_size, mi->rescale_factor, mi->image_mean[0],
                 mi->image_mean[1], mi->image_mean[2], mi->image_std[0], mi->image_std[1],
                 mi->image_std[2], mi->image_size);
        rc = rsclip_index_bind_model(idx, model_id, mi->fingerprint, mi->embed_dim, prep);
    }
    if (!rc) {
        char v[64];
        snprintf(v, sizeof v, "%.9g", mi->logit_scale);
        rc = rsclip_index_set_meta(idx, "logit_scale", v);
        snprintf(v, sizeof v, "%.9g", mi->logit_bias);
        if (!rc) rc = rsclip_index_set_meta(idx, "logit_bias", v);
    }
    if (!rc) {
        rsclip_encoder_params ep = rsclip_encoder_default_params();
        ep.max_batch = p.batch;
        ep.n_threads = p.n_threads;
        ep.precision = (rsclip_precision)p.precision;
        rc = rsclip_encoder_new(model, &ep, &enc);
    }
    rep.setup_seconds = now_s() - t0;
    if (!rc && n_paths > 0)
        rc = run_pipeline(index_path, paths, n_paths, &p, model, enc, idx, t0, &rep);
    rsclip_encoder_free(enc);
    rsclip_index_close(idx);
    rsclip_model_free(model);
    rep.seconds = now_s() - t0;
    if (report) *report = rep;
    return rc;
}
