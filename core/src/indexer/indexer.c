/* The indexing pipeline: a reader thread (tiler + preprocessing) feeds batches to the calling
 * thread, which encodes them and stores each batch in one index transaction. */
#include "base/base.h"
#include "index/index_files.h"
#include "indexer/indexer_internal.h"
#include "rsclip/plan.h"
#include "rsclip/hub.h"
#include "status/status_internal.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

rsclip_indexer_params rsclip_indexer_default_params(void) {
    rsclip_indexer_params p;
    memset(&p, 0, sizeof p);
    p.model = "base";
    p.tiler = rsclip_tiler_default_params();
    p.batch = 8;
    return p;
}

void rsclip__msg_free(msg *m) {
    if (!m) return;
    free(m->path);
    free(m->checksum);
    free(m->crs_wkt);
    free(m->bands);
    free(m->scaling);
    free(m->settings);
    for (int k = 0; k < 7; k++) free(m->time[k]);
    free(m->error);
    free(m->note);
    free(m);
}

/* ---- the queue between the threads ------------------------------------------------------- */

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

void rsclip__q_push(queue *q, void *p) {
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
    q->items[(q->head + q->count) % q->cap] = p;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

void *rsclip__q_pop(queue *q) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0) pthread_cond_wait(&q->not_empty, &q->mu);
    void *p = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return p;
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
    batch *b = rsclip__calloc(1, sizeof *b);
    if (!b) return NULL;
    size_t npx;
    if (rsclip__mul_size(px_per_tile, (size_t)cap, &npx)) {
        free(b);
        return NULL;
    }
    b->pixels = rsclip__malloc(npx * sizeof(float));
    b->recs = rsclip__calloc((size_t)cap, sizeof *b->recs);
    b->rings = rsclip__malloc(sizeof(double) * 2 * RSCLIP_TILER_MAX_RING * (size_t)cap);
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

/* The writer's view of the scene being stored. */
typedef struct writer {
    const rsclip_indexer_params *p;
    pipeline *pl;
    rsclip_encoder *enc;
    rsclip_index *idx;
    float *emb;
    rsclip_indexer_report rep;
    int64_t sid, tiles_total;
    int scene, ok;          /* current scene number and whether its tiles are being stored */
    int failed_no;          /* the last scene counted as failed (-1: none) */
    unsigned char *settled; /* [n_jobs]: the scene's outcome (skipped, failed, complete) is in */
} writer;

/* A failure that concerns one scene: report it once, stop storing (and reading) that scene. */
static void scene_failed(writer *w, int scene_no, const char *path, const char *message) {
    if (w->failed_no == scene_no) return;
    w->failed_no = scene_no;
    w->settled[scene_no] = 1;
    w->rep.scenes_failed++;
    const char *item = w->pl->jobs[scene_no].stac_item;
    if (w->p->on_error && item) { /* say which STAC item the file came from */
        char buf[1536];
        const char *asset = w->pl->jobs[scene_no].stac_asset;
        snprintf(buf, sizeof buf, "%s (STAC item %s, asset %s)", message, item,
                 asset ? asset : "?");
        w->p->on_error(path, buf, w->p->user);
    } else if (w->p->on_error) {
        w->p->on_error(path, message, w->p->user);
    }
    if (scene_no == w->scene) {
        w->ok = 0;
        atomic_store(&w->pl->dropped, scene_no + 1);
    }
    rsclip_clear_error();
}

/* Errors of the scene's own data (a record the index refuses) fail the scene; anything else
 * (disk full, a database or encoder error) stops the run. */
static int is_scene_error(int rc) {
    return rc == RSCLIP_ERR_INVALID_ARG;
}

/* Handle one message; returns a fatal error, or RSCLIP_OK. */
static int on_message(writer *w, msg *m) {
    const char *path = w->pl->jobs[m->scene_no].path;
    int r = RSCLIP_OK;
    switch (m->kind) {
    case MSG_SCENE_SKIP:
        w->rep.scenes_unchanged++;
        w->settled[m->scene_no] = 1;
        break;
    case MSG_SCENE_TIME:
        w->rep.scenes_unchanged++;
        w->settled[m->scene_no] = 1;
        r = rsclip_index_set_scene_time(w->idx, m->scene_id, &m->scene);
        break;
    case MSG_SCENE_FAIL: /* the reader's copies of the strings may be missing (out of memory) */
        scene_failed(w, m->scene_no, path, m->error ? m->error : "cannot be indexed");
        break;
    case MSG_SCENE_BEGIN: {
        int state = 0;
        w->scene = m->scene_no;
        w->ok = 0;
        if (m->note) rsclip__log(RSCLIP_LOG_WARN, "%s: %s", path, m->note);
        r = rsclip_index_begin_scene(w->idx, &m->scene, m->force, &w->sid, &state);
        if (r && is_scene_error(r)) {
            scene_failed(w, m->scene_no, path, rsclip_last_error());
            return RSCLIP_OK;
        }
        w->ok = r == RSCLIP_OK;
        w->tiles_total += m->tiles_to_do;
        break;
    }
    case MSG_BATCH: {
        batch *b = m->b;
        if (m->scene_no == w->scene && w->ok) {
            double te = rsclip__mono_s();
            r = rsclip_encode_images(w->enc, b->n, b->pixels, w->emb, NULL);
            w->rep.encode_seconds += rsclip__mono_s() - te;
            if (!r) r = rsclip_index_add_tiles(w->idx, w->sid, (size_t)b->n, b->recs, w->emb, NULL);
            if (!r) w->rep.tiles_added += b->n;
            if (r && is_scene_error(r)) {
                scene_failed(w, m->scene_no, path, rsclip_last_error());
                r = RSCLIP_OK;
            }
        }
        rsclip__q_push(&w->pl->free_batches, b);
        break;
    }
    case MSG_SCENE_END:
        if (m->scene_no == w->scene && w->ok) {
            r = rsclip_index_complete_scene(w->idx, w->sid, m->skipped);
            if (!r) {
                w->rep.scenes_indexed++;
                w->rep.tiles_skipped += m->skipped;
                w->settled[m->scene_no] = 1;
            }
        }
        break;
    }
    return r;
}

/* After a run that went through: a scene whose outcome never arrived lost its message to a failed
 * allocation in the reader. It is not indexed (an interrupted scene resumes next run): report it
 * like any scene that failed. */
static void report_unsettled(writer *w) {
    for (int i = 0; i < w->pl->n_jobs; i++) {
        if (w->settled[i]) continue;
        const char *path = w->pl->jobs[i].path;
        rsclip__error(RSCLIP_ERR_NOMEM, "%s: not indexed: out of memory while reading it", path);
        scene_failed(w, i, path, rsclip_last_error());
    }
}

static int report_progress(writer *w, const msg *m, double t0) {
    rsclip_indexer_progress pr;
    double el = rsclip__mono_s() - t0;
    pr.scene = m->scene_no + 1;
    pr.n_scenes = w->pl->n_jobs;
    pr.path = w->pl->jobs[m->scene_no].path;
    pr.tiles_done = w->rep.tiles_added;
    pr.tiles_total = w->tiles_total;
    pr.tiles_per_s = el > 0 ? (double)w->rep.tiles_added / el : 0;
    pr.eta_s =
        pr.tiles_per_s > 0 ? (double)(w->tiles_total - w->rep.tiles_added) / pr.tiles_per_s : -1;
    pr.elapsed_s = el;
    if (!w->p->progress(&pr, w->p->user))
        return rsclip__error(RSCLIP_ERR_CANCELLED, "indexing cancelled");
    return RSCLIP_OK;
}

/* The reader thread feeds this thread, which encodes each batch and stores it in one transaction.
 * Returns the first fatal error (the report counts everything done until then). */
static int run_pipeline(const char *index_path, const idx_job *jobs, int n_jobs,
                        const rsclip_indexer_params *params, const rsclip_model *model,
                        rsclip_encoder *enc, rsclip_index *idx, double t0,
                        rsclip_indexer_report *report) {
    const rsclip_indexer_params p = *params;
    const rsclip_model_info *mi = rsclip_model_get_info(model);
    int rc = RSCLIP_OK;
    pipeline pl;
    memset(&pl, 0, sizeof pl);
    pl.index_path = index_path;
    pl.jobs = jobs;
    pl.n_jobs = n_jobs;
    pl.params = &p;
    pl.tp = p.tiler;
    pl.tp.tile_size = mi->image_size;
    if (p.tiler.stride <= 0) pl.tp.stride = 0;
    pl.tp.defer_stats = 1; /* statistics only for scenes that will be read */
    if (pl.tp.stride == 0) pl.tp.stride = pl.tp.tile_size;
    rc = rsclip_tiler_settings(&pl.tp, pl.settings, sizeof pl.settings);
    pl.model = model;
    pl.image_size = mi->image_size;
    pl.batch_cap = p.batch;
    atomic_init(&pl.stop, 0);
    atomic_init(&pl.dropped, 0);
    q_init(&pl.to_writer, 16);
    q_init(&pl.free_batches, N_BATCH_BUFFERS);
    const size_t px_per_tile = (size_t)3 * (size_t)mi->image_size * (size_t)mi->image_size;
    batch *buffers[N_BATCH_BUFFERS] = {0};
    for (int i = 0; i < N_BATCH_BUFFERS && !rc; i++) {
        buffers[i] = batch_new(p.batch, px_per_tile);
        if (!buffers[i])
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
        else
            rsclip__q_push(&pl.free_batches, buffers[i]);
    }
    writer w = {&p, &pl, enc, idx, NULL, *report, 0, 0, -1, 0, -1, NULL};
    w.emb = rc ? NULL : rsclip__malloc(sizeof(float) * (size_t)p.batch * (size_t)mi->embed_dim);
    w.settled = rc ? NULL : rsclip__calloc((size_t)n_jobs, 1);
    pl.done = rc ? NULL : rsclip__calloc(1, sizeof *pl.done);
    if (pl.done) pl.done->kind = MSG_DONE;
    if (!rc && (!w.emb || !w.settled || !pl.done))
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
    pthread_t reader;
    int reader_started = 0;
    if (!rc) {
        if (pthread_create(&reader, NULL, rsclip__indexer_reader, &pl) != 0)
            rc = rsclip__error(RSCLIP_ERR_INTERNAL, "indexer: cannot start the reader thread");
        else
            reader_started = 1;
    }
    int fatal = rc;
    while (reader_started) {
        msg *m = rsclip__q_pop(&pl.to_writer);
        if (m->kind == MSG_DONE) {
            rsclip__msg_free(m);
            break;
        }
        if (fatal) { /* drain: give batches back so the reader can finish */
            if (m->kind == MSG_BATCH) rsclip__q_push(&pl.free_batches, m->b);
            rsclip__msg_free(m);
            continue;
        }
        fatal = on_message(&w, m);
        if (!fatal && p.progress && m->kind != MSG_SCENE_FAIL && m->kind != MSG_SCENE_SKIP &&
            m->kind != MSG_SCENE_TIME)
            fatal = report_progress(&w, m, t0);
        if (fatal) atomic_store(&pl.stop, 1);
        rsclip__msg_free(m);
    }
    if (reader_started) pthread_join(reader, NULL);
    if (reader_started && !fatal) report_unsettled(&w);
    rc = fatal;
    for (int i = 0; i < N_BATCH_BUFFERS; i++) batch_free(buffers[i]);
    q_destroy(&pl.to_writer);
    q_destroy(&pl.free_batches);
    if (!reader_started) rsclip__msg_free(pl.done); /* else the writer freed it */
    free(w.emb);
    free(w.settled);
    *report = w.rep;
    return rc;
}

/* What a part of a sharded index records about itself; a run into an existing part must agree. */
typedef struct part_meta {
    int index, count;
    const char *digest;   /* the plan's */
    const char *settings; /* the run's tiler settings */
} part_meta;

static int check_part(rsclip_index *idx, const part_meta *pm) {
    char want[4][RSCLIP_TILER_SETTINGS_MAX];
    snprintf(want[0], sizeof want[0], "%d", pm->index);
    snprintf(want[1], sizeof want[1], "%d", pm->count);
    snprintf(want[2], sizeof want[2], "%s", pm->digest);
    snprintf(want[3], sizeof want[3], "%s", pm->settings);
    static const char *const keys[4] = {"shard_index", "shard_count", "plan_digest", "settings"};
    for (int k = 0; k < 4; k++) {
        char *have = NULL;
        int rc = rsclip_index_get_meta(idx, keys[k], &have);
        if (rc == RSCLIP_ERR_NOT_FOUND) {
            rsclip_clear_error();
            int64_t n_scenes = 0;
            rsclip_index_info info;
            if (rsclip_index_get_info(idx, &info) == RSCLIP_OK) n_scenes = info.n_scenes;
            if (n_scenes > 0)
                return rsclip__error(RSCLIP_ERR_MISMATCH,
                                     "%s is an index of its own, not shard %d/%d of plan %s: "
                                     "index the shard into another folder",
                                     rsclip_index_path(idx), pm->index, pm->count, pm->digest);
            if ((rc = rsclip_index_set_meta(idx, keys[k], want[k]))) return rc;
            continue;
        }
        if (rc) return rc;
        int same = strcmp(have, want[k]) == 0;
        if (!same)
            rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                               "%s holds %s %s, this run has %s (another plan, shard count or "
                               "settings: index into another folder)",
                               rsclip_index_path(idx), keys[k], have, want[k]);
        rsclip_free(have);
        if (rc) return rc;
    }
    return RSCLIP_OK;
}

static int bind_model(rsclip_index *idx, const char *name, const rsclip_model *model) {
    const rsclip_model_info *mi = rsclip_model_get_info(model);
    char model_id[4096], prep[512], v[64];
    model_id_of(name, model_id, sizeof model_id);
    snprintf(prep, sizeof prep,
             "SiglipImageProcessor: bicubic (Pillow) resize to %dx%d, rescale %.9g, "
             "mean %.4g,%.4g,%.4g std %.4g,%.4g,%.4g; tiles %d px",
             mi->image_size, mi->image_size, mi->rescale_factor, mi->image_mean[0],
             mi->image_mean[1], mi->image_mean[2], mi->image_std[0], mi->image_std[1],
             mi->image_std[2], mi->image_size);
    /* an index that recorded a legacy fingerprint is checked against the legacy one */
    char *recorded = NULL;
    if (rsclip_index_get_meta(idx, "model_fingerprint", &recorded) != RSCLIP_OK)
        rsclip_clear_error();
    int rc = rsclip_index_bind_model(idx, model_id, rsclip_model_fingerprint_for(model, recorded),
                                     mi->embed_dim, prep);
    rsclip_free(recorded);
    snprintf(v, sizeof v, "%.9g", mi->logit_scale);
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_scale", v);
    snprintf(v, sizeof v, "%.9g", mi->logit_bias);
    if (!rc) rc = rsclip_index_set_meta(idx, "logit_bias", v);
    return rc;
}

/* Load the model, open (create) the index, run the jobs; a part also records and checks what it
 * is (part may be NULL). */
static int index_jobs(const char *index_path, const idx_job *jobs, int n_jobs,
                      const rsclip_indexer_params *params, const part_meta *part,
                      rsclip_indexer_report *report) {
    rsclip_indexer_report rep;
    memset(&rep, 0, sizeof rep);
    rsclip_indexer_params p = *params;
    if (p.batch < 1) p.batch = 8;
    if (p.batch > 256) p.batch = 256;
    const double t0 = rsclip__mono_s();
    rep.scenes_total = n_jobs;

    /* A first run that stores no scene leaves no empty index file behind. */
    struct stat sb;
    int existed = stat(index_path, &sb) == 0;
    char model_dir[4096];
    int rc = rsclip_hub_resolve(p.model, model_dir, sizeof model_dir);
    rsclip_model *model = NULL;
    rsclip_encoder *enc = NULL;
    rsclip_index *idx = NULL;
    /* Owned weights: an indexing run lasts hours, and a checkpoint rewritten meanwhile must
     * neither crash it (SIGBUS) nor mix two versions into one index. */
    rsclip_model_params mp = {.owned_weights = 1};
    if (!rc) rc = rsclip_model_load(model_dir, &mp, &model);
    const rsclip_model_info *mi = model ? rsclip_model_get_info(model) : NULL;
    if (!rc && p.tiler.tile_size > 0 && p.tiler.tile_size != mi->image_size)
        rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                           "the plan was made for %d px tiles, the model %s takes %d px",
                           p.tiler.tile_size, p.model, mi->image_size);
    if (!rc) rc = rsclip_index_open(index_path, RSCLIP_INDEX_CREATE, &idx);
    if (!rc) rc = bind_model(idx, p.model, model);
    if (!rc && part) rc = check_part(idx, part);
    if (!rc && part) rc = rsclip_index_set_meta(idx, "shard_complete", "0");
    if (!rc) {
        rsclip_encoder_params ep = rsclip_encoder_default_params();
        ep.max_batch = p.batch;
        ep.n_threads = p.n_threads;
        ep.precision = p.precision;
        if (p.device) rc = rsclip_device_parse(p.device, &ep.device);
        if (!rc) rc = rsclip_encoder_new(model, &ep, &enc);
    }
    rep.setup_seconds = rsclip__mono_s() - t0;
    if (!rc && n_jobs > 0)
        rc = run_pipeline(index_path, jobs, n_jobs, &p, model, enc, idx, t0, &rep);
    if (!rc && part && rep.scenes_failed == 0)
        rc = rsclip_index_set_meta(idx, "shard_complete", "1");
    rsclip_encoder_free(enc);
    rsclip_index_info info;
    int remove_it = !existed && idx && rsclip_index_get_info(idx, &info) == RSCLIP_OK &&
                    info.n_scenes == 0 && !part;
    rsclip_index_close(idx);
    if (remove_it) rsclip__idx_remove_files(index_path);
    rsclip_model_free(model);
    rep.seconds = rsclip__mono_s() - t0;
    if (report) *report = rep;
    return rc;
}

int rsclip_indexer_run(const char *index_path, const char *const *paths, int n_paths,
                       const rsclip_indexer_params *params, rsclip_indexer_report *report) {
    if (report) memset(report, 0, sizeof *report);
    if (!index_path || (n_paths > 0 && !paths) || n_paths < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "indexer: no index or inputs");
    rsclip_input *in = rsclip__calloc((size_t)(n_paths ? n_paths : 1), sizeof *in);
    if (!in) return rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
    for (int i = 0; i < n_paths; i++) in[i].path = paths[i];
    int rc = rsclip_indexer_run_inputs(index_path, in, n_paths, params, report);
    free(in);
    return rc;
}

int rsclip_indexer_run_inputs(const char *index_path, const rsclip_input *inputs, int n_inputs,
                              const rsclip_indexer_params *params, rsclip_indexer_report *report) {
    if (report) memset(report, 0, sizeof *report);
    if (!index_path || (n_inputs > 0 && !inputs) || n_inputs < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "indexer: no index or inputs");
    rsclip_indexer_params p = params ? *params : rsclip_indexer_default_params();
    p.tiler.tile_size = 0; /* from the model */
    idx_job *jobs = rsclip__calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *jobs);
    if (!jobs) return rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
    for (int i = 0; i < n_inputs; i++) {
        const rsclip_input *in = &inputs[i];
        jobs[i] = (idx_job){
            in->path,      0, -1, 0, 0, -1, 0, 0, in->datetime, in->stac_item, in->stac_collection,
            in->stac_asset};
    }
    int rc = index_jobs(index_path, jobs, n_inputs, &p, NULL, report);
    free(jobs);
    return rc;
}

int rsclip_indexer_run_plan(const char *index_path, const rsclip_plan *plan, int shard_index,
                            int shard_count, const rsclip_indexer_params *params,
                            rsclip_indexer_report *report) {
    if (report) memset(report, 0, sizeof *report);
    if (!index_path || !plan || shard_count < 0 ||
        (shard_count > 0 && (shard_index < 0 || shard_index >= shard_count)))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "indexer: bad plan or shard %d/%d",
                             shard_index, shard_count);
    rsclip_indexer_params p = params ? *params : rsclip_indexer_default_params();
    /* the plan's settings, not the caller's: every worker tiles alike */
    rsclip_tiler_params tp;
    int rc = rsclip_tiler_settings_parse(plan->settings, &tp);
    if (rc) return rc;
    tp.allow_pixel_coords = p.tiler.allow_pixel_coords;
    tp.max_tiles = p.tiler.max_tiles;
    p.tiler = tp;
    int64_t first = 0, end = plan->n_tiles;
    if (shard_count > 0 && (rc = rsclip_plan_shard(plan, shard_index, shard_count, &first, &end)))
        return rc;
    idx_job *jobs = rsclip__calloc((size_t)(plan->n_scenes ? plan->n_scenes : 1), sizeof *jobs);
    if (!jobs) return rsclip__error(RSCLIP_ERR_NOMEM, "indexer: out of memory");
    int n = 0;
    for (int i = 0; i < plan->n_scenes; i++) {
        const rsclip_plan_scene *sc = &plan->scenes[i];
        int64_t a = first - sc->first_tile, b = end - sc->first_tile;
        if (a < 0) a = 0;
        if (b > sc->n_tiles) b = sc->n_tiles;
        if (a >= b) continue;
        idx_job *j = &jobs[n++];
        *j = (idx_job){sc->path,
                       a,
                       b,
                       0,
                       0,
                       sc->file_size,
                       sc->mtime_ns,
                       sc->n_tiles,
                       sc->datetime,
                       sc->stac_item,
                       sc->stac_collection,
                       sc->stac_asset};
        if (shard_count > 0) {
            j->scene_id = sc->ordinal + 1;
            j->first_fid = sc->first_tile + 1;
        }
    }
    part_meta pm = {shard_index, shard_count, plan->digest, plan->settings};
    rc = index_jobs(index_path, jobs, n, &p, shard_count > 0 ? &pm : NULL, report);
    free(jobs);
    return rc;
}
