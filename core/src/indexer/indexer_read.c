/* The indexer's reader thread: for each input, decide what the run does with it (skip an
 * unchanged scene, resume an interrupted one, replace one whose file or settings changed), then
 * read and preprocess its tiles into batches for the writer. Every failure here belongs to one
 * scene: it is reported (MSG_SCENE_FAIL) and the next input is read. */
#include "base/base.h"
#include "indexer/indexer_internal.h"
#include "rsclip/time.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dupstr(const char *s) {
    return rsclip__strdup(s ? s : "");
}

static msg *msg_new(int kind, int scene_no) {
    msg *m = rsclip__calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
        m->scene_no = scene_no;
    }
    return m;
}

/* Outcomes (fail, skip, end) that cannot be sent for want of memory are not lost: the writer
 * reports every scene whose outcome never arrived once the reader is done. The message names
 * the scene (an error of the index names the index). */
static void send_fail(pipeline *pl, int scene_no, const char *path, const char *err) {
    msg *m = msg_new(MSG_SCENE_FAIL, scene_no);
    if (!m) return;
    char buf[1536];
    if (!strstr(err, path)) {
        snprintf(buf, sizeof buf, "%s: %s", path, err);
        err = buf;
    }
    m->path = dupstr(path);
    m->error = dupstr(err);
    rsclip__q_push(&pl->to_writer, m);
}

static int cmp_window(const void *a, const void *b) {
    const rsclip_tile_window *x = a, *y = b;
    if (x->yoff != y->yoff) return x->yoff < y->yoff ? -1 : 1;
    if (x->xoff != y->xoff) return x->xoff < y->xoff ? -1 : 1;
    if (x->ysize != y->ysize) return x->ysize < y->ysize ? -1 : 1;
    if (x->xsize != y->xsize) return x->xsize < y->xsize ? -1 : 1;
    return 0;
}

/* ---- what to do with a scene ----------------------------------------------------------------- */

typedef struct decision {
    int state; /* RSCLIP_SCENE_NEW / UNCHANGED / RESUMED / CHANGED */
    int64_t sid;
    char note[768]; /* why a stored scene is replaced ("" when it is not) */
} decision;

/* The smallest positive step between consecutive distinct offsets, leaving out the last one (the
 * edge column or row is shifted back to end at the raster's edge): the stride a schema-1 scene
 * was cut with. 0 when fewer than three distinct offsets exist. */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int inferred_step(const rsclip_tile_window *w, size_t n, int horizontal) {
    int *o = rsclip__malloc((n ? n : 1) * sizeof *o);
    if (!o) return 0;
    for (size_t i = 0; i < n; i++) o[i] = horizontal ? w[i].xoff : w[i].yoff;
    qsort(o, n, sizeof *o, cmp_int);
    size_t k = 0; /* distinct offsets in o[0..k) */
    for (size_t i = 0; i < n; i++)
        if (k == 0 || o[k - 1] != o[i]) o[k++] = o[i];
    int step = 0;
    for (size_t i = 1; i + 1 < k; i++) /* the last distinct offset is left out */
        if (step == 0 || o[i] - o[i - 1] < step) step = o[i] - o[i - 1];
    free(o);
    return step;
}

/* A scene indexed under schema 1 recorded no settings: compare what it did record (grid size,
 * bands, tile size and stride seen in its windows) with what this run would make. */
static void legacy_compare(pipeline *pl, rsclip_index *ro, const rsclip_scene_info *old,
                           const rsclip_raster_info *si, decision *d) {
    char why[256] = "";
    size_t len = 0;
    if (old->width != si->width || old->height != si->height)
        len += (size_t)snprintf(why + len, sizeof why - len, "grid %dx%d \xe2\x86\x92 %dx%d, ",
                                old->width, old->height, si->width, si->height);
    if (len < sizeof why && (!old->bands || strcmp(old->bands, si->bands_text) != 0))
        len += (size_t)snprintf(why + len, sizeof why - len, "bands %s \xe2\x86\x92 %s, ",
                                old->bands ? old->bands : "?", si->bands_text);
    rsclip_tile_window *w = NULL;
    size_t n = 0;
    if (len < sizeof why && rsclip_index_scene_windows(ro, d->sid, &w, &n) == RSCLIP_OK && n) {
        int size = 0;
        for (size_t i = 0; i < n; i++) {
            if (w[i].xsize > size) size = w[i].xsize;
            if (w[i].ysize > size) size = w[i].ysize;
        }
        int sx = inferred_step(w, n, 1), sy = inferred_step(w, n, 0);
        int step = sx ? sx : sy;
        int want_size =
            si->width < si->tile_size || si->height < si->tile_size ? size : si->tile_size;
        if (size != want_size || (step && step != si->stride))
            len += (size_t)snprintf(why + len, sizeof why - len,
                                    "tiles %d px stride %d \xe2\x86\x92 %d px stride %d, ", size,
                                    step ? step : size, si->tile_size, si->stride);
    }
    rsclip_clear_error();
    rsclip_free(w);
    if (len == 0) return; /* same as far as schema 1 can tell */
    if (len >= 2 && len < sizeof why) why[len - 2] = 0;
    d->state = RSCLIP_SCENE_CHANGED;
    snprintf(d->note, sizeof d->note, "settings changed: %s (indexed by an older rsclip)", why);
    (void)pl;
}

/* Compare the scene on disk and the settings of this run with what the index holds. An error
 * other than "not there" (out of memory) is the scene's: taken for NEW, a stored scene would be
 * read again in full. */
static int decide(pipeline *pl, rsclip_index *ro, const rsclip_raster_info *si, decision *d,
                  rsclip_scene_info **stored) {
    memset(d, 0, sizeof *d);
    d->state = RSCLIP_SCENE_NEW;
    rsclip_scene_info *old = NULL;
    *stored = NULL;
    int rc = ro ? rsclip_index_find_scene(ro, si->path, &old) : RSCLIP_ERR_NOT_FOUND;
    if (rc == RSCLIP_ERR_NOT_FOUND) {
        rsclip_clear_error(); /* not there (or no index yet) */
        return RSCLIP_OK;
    }
    if (rc) return rc;
    d->sid = old->id;
    const rsclip_fingerprint *fp = &si->fingerprint;
    int legacy = old->settings == NULL;
    const char *sum = legacy ? fp->legacy_hex : fp->checksum_hex;
    if (old->file_size != fp->size || old->mtime_ns != fp->mtime_ns ||
        (old->checksum && strcmp(old->checksum, sum) != 0)) {
        d->state = RSCLIP_SCENE_CHANGED;
        snprintf(d->note, sizeof d->note, "file changed");
    } else if (legacy && old->status != RSCLIP_SCENE_COMPLETE) {
        d->state = RSCLIP_SCENE_CHANGED;
        snprintf(d->note, sizeof d->note,
                 "interrupted under an older rsclip that did not record its settings: starting "
                 "over");
    } else if (legacy) {
        d->state = RSCLIP_SCENE_UNCHANGED;
        legacy_compare(pl, ro, old, si, d);
    } else if (strcmp(old->settings, pl->settings) != 0) {
        char diff[600];
        d->state = RSCLIP_SCENE_CHANGED;
        if (rsclip_tiler_settings_diff(old->settings, pl->settings, diff, sizeof diff) > 0)
            snprintf(d->note, sizeof d->note, "settings changed: %s", diff);
        else
            snprintf(d->note, sizeof d->note, "settings changed");
        rsclip_clear_error();
    } else {
        d->state =
            old->status == RSCLIP_SCENE_COMPLETE ? RSCLIP_SCENE_UNCHANGED : RSCLIP_SCENE_RESUMED;
    }
    if (pl->params->force && d->state != RSCLIP_SCENE_CHANGED) {
        d->state = RSCLIP_SCENE_CHANGED;
        snprintf(d->note, sizeof d->note, "forced");
    }
    *stored = old;
    return RSCLIP_OK;
}

/* ---- when it was taken ------------------------------------------------------------------- */

/* The scene's time and STAC fields (7 strings, NULL when unknown: datetime, start, end,
 * source, item, collection, asset), first found of: the input's own (a STAC item's), the run's
 * --datetime, the raster's metadata, the file name pattern. */
static int scene_time(const pipeline *pl, const idx_job *job, const rsclip_raster_info *si,
                      char *out[7]) {
    memset(out, 0, 7 * sizeof *out);
    const char *text = NULL, *source = NULL;
    rsclip_time t;
    int have = 0;
    if (job->datetime) {
        text = job->datetime;
        source = "stac";
    } else if (pl->params->datetime) {
        text = pl->params->datetime;
        source = "option";
    } else if (si->datetime[0]) {
        text = si->datetime;
        source = "metadata";
    } else if (pl->params->datetime_from_name) {
        int r = rsclip_time_from_name(si->path, pl->params->datetime_from_name, &t);
        if (r < 0) return r;
        have = r == 1;
        source = "name";
    }
    if (text) {
        if (rsclip_time_parse(text, &t) != RSCLIP_OK)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: its time '%s' (%s): %s", si->path,
                                 text, source, rsclip_last_error());
        have = 1;
    }
    char buf[3][RSCLIP_TIME_TEXT_MAX];
    if (have) {
        rsclip_time a = {t.start_ms, t.start_ms}, b = {t.end_ms, t.end_ms};
        int span = t.end_ms != t.start_ms;
        if (rsclip_time_format(span ? &a : &t, buf[span ? 1 : 0], RSCLIP_TIME_TEXT_MAX) ||
            (span && rsclip_time_format(&b, buf[2], RSCLIP_TIME_TEXT_MAX)))
            return rsclip_last_status();
        out[span ? 1 : 0] = rsclip__strdup(buf[span ? 1 : 0]);
        if (span) out[2] = rsclip__strdup(buf[2]);
        out[3] = rsclip__strdup(source);
    }
    const char *stac[3] = {job->stac_item, job->stac_collection, job->stac_asset};
    for (int k = 0; k < 3; k++)
        if (stac[k]) out[4 + k] = rsclip__strdup(stac[k]);
    return RSCLIP_OK;
}

static void time_strings_to_scene(char *const v[7], rsclip_scene_info *sc) {
    sc->datetime = v[0];
    sc->start_datetime = v[1];
    sc->end_datetime = v[2];
    sc->datetime_source = v[3];
    sc->stac_item = v[4];
    sc->stac_collection = v[5];
    sc->stac_asset = v[6];
}

static int same_text(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Do the stored scene's time and STAC fields differ from v? */
static int time_differs(const rsclip_scene_info *old, char *const v[7]) {
    const char *o[7] = {old->datetime,        old->start_datetime, old->end_datetime,
                        old->datetime_source, old->stac_item,      old->stac_collection,
                        old->stac_asset};
    for (int k = 0; k < 7; k++)
        if (!same_text(o[k], v[k])) return 1;
    return 0;
}

/* ---- reading a scene ------------------------------------------------------------------------- */

/* End of the job's tile range in the opened scene. */
static int64_t job_end(const idx_job *job, const rsclip_raster_info *si) {
    return job->end < 0 || job->end > si->n_tiles ? si->n_tiles : job->end;
}

/* The message that opens a scene in the index, with what the index records about it. */
static msg *begin_msg(pipeline *pl, int scene_no, const rsclip_raster_info *si, const decision *d,
                      int64_t to_do) {
    msg *m = msg_new(MSG_SCENE_BEGIN, scene_no);
    if (!m) return NULL;
    char note[1024] = "";
    if (d->note[0]) snprintf(note, sizeof note, "%s", d->note);
    if (si->bands_assumed) {
        size_t len = strlen(note);
        snprintf(note + len, sizeof note - len,
                 "%s%d bands without red/green/blue colour interpretation: bands %s are used as "
                 "red, green, blue (choose them with --bands)",
                 len ? "; " : "", si->src_bands, si->bands_text);
    }
    m->path = dupstr(si->path);
    m->checksum = dupstr(si->fingerprint.checksum_hex);
    m->crs_wkt = dupstr(si->crs_wkt);
    m->bands = dupstr(si->bands_text);
    m->scaling = dupstr(si->scaling_json);
    m->settings = dupstr(pl->settings);
    m->note = note[0] ? dupstr(note) : NULL;
    if (!m->path || !m->checksum || !m->crs_wkt || !m->bands || !m->scaling || !m->settings ||
        (note[0] && !m->note)) {
        rsclip__msg_free(m);
        return NULL;
    }
    rsclip_scene_info *sc = &m->scene;
    sc->path = m->path;
    sc->file_size = si->fingerprint.size;
    sc->mtime_ns = si->fingerprint.mtime_ns;
    sc->checksum = m->checksum;
    sc->crs_wkt = m->crs_wkt;
    sc->epsg = si->epsg;
    memcpy(sc->geotransform, si->geotransform, sizeof sc->geotransform);
    sc->width = si->width;
    sc->height = si->height;
    sc->bands = m->bands;
    sc->scaling = m->scaling;
    sc->tiles_planned = si->n_tiles;
    sc->settings = m->settings;
    sc->tile_size = si->tile_size;
    sc->stride = si->stride;
    sc->src_width = si->src_width;
    sc->src_height = si->src_height;
    sc->src_bands = si->src_bands;
    sc->georef = si->georef;
    sc->gsd = si->gsd;
    m->force = d->state == RSCLIP_SCENE_CHANGED;
    m->tiles_to_do = to_do;
    return m;
}

/* One tile into the batch being filled (preprocessed pixels, record, footprint). */
static int add_to_batch(pipeline *pl, batch *b, const rsclip_tile *tile, const uint8_t *rgb) {
    const size_t px_per_tile = (size_t)3 * (size_t)pl->image_size * (size_t)pl->image_size;
    int k = b->n;
    int rc =
        rsclip_preprocess_rgb8(pl->model, rgb, tile->out_width, tile->out_height,
                               (size_t)tile->out_width * 3, b->pixels + (size_t)k * px_per_tile);
    if (rc) return rc;
    rsclip_tile_record *r = &b->recs[k];
    memset(r, 0, sizeof *r);
    r->window = (rsclip_tile_window){tile->xoff, tile->yoff, tile->xsize, tile->ysize};
    r->valid_fraction = tile->valid_fraction;
    for (int c = 0; c < 4; c++) {
        r->corners[2 * c] = tile->corners[c][0];
        r->corners[2 * c + 1] = tile->corners[c][1];
    }
    if (tile->has_lonlat) {
        double *ring = b->rings + (size_t)k * RSCLIP_TILER_MAX_RING * 2;
        memcpy(ring, tile->ring, sizeof(double) * 2 * (size_t)tile->n_ring);
        r->footprint = ring;
        r->n_footprint = (size_t)tile->n_ring;
        r->lon = tile->center_lon;
        r->lat = tile->center_lat;
    } else { /* pixel coordinates: no WGS84 footprint */
        r->lon = r->lat = NAN;
    }
    b->n++;
    return RSCLIP_OK;
}

static int send_batch(pipeline *pl, int scene_no, batch **b) {
    msg *m = msg_new(MSG_BATCH, scene_no);
    if (!m) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", pl->jobs[scene_no].path);
    m->b = *b;
    *b = NULL;
    rsclip__q_push(&pl->to_writer, m);
    return RSCLIP_OK;
}

/* Read the tiles of an opened scene that are not in done[0..n_done) into batches. Returns the
 * scene's first error (already reported to nobody: the caller sends it). */
static int read_tiles(pipeline *pl, rsclip_tiler *t, const idx_job *job, int scene_no,
                      const rsclip_tile_window *done, size_t n_done, int64_t *skipped) {
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    const size_t rgb_size = rsclip_tiler_buffer_size(t);
    uint8_t *rgb = rsclip__malloc(rgb_size);
    if (!rgb) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", si->path);
    batch *b = NULL;
    rsclip_tile tile;
    int rc = RSCLIP_OK;
    for (int64_t i = job->first, end = job_end(job, si); i < end && !rc; i++) {
        if (atomic_load(&pl->stop) || atomic_load(&pl->dropped) == scene_no + 1) break;
        if ((rc = rsclip_tiler_tile(t, i, &tile))) break;
        rsclip_tile_window w = {tile.xoff, tile.yoff, tile.xsize, tile.ysize};
        if (n_done && bsearch(&w, done, n_done, sizeof w, cmp_window)) continue;
        if ((rc = rsclip_tiler_read(t, i, rgb, rgb_size, &tile))) break;
        if (tile.skipped) {
            (*skipped)++;
            continue;
        }
        if (!b) {
            b = rsclip__q_pop(&pl->free_batches);
            b->n = 0;
        }
        if ((rc = add_to_batch(pl, b, &tile, rgb))) break;
        b->recs[b->n - 1].id = job->first_fid > 0 ? job->first_fid + i : 0;
        if (b->n == pl->batch_cap) rc = send_batch(pl, scene_no, &b);
    }
    if (!rc && b && b->n > 0) rc = send_batch(pl, scene_no, &b);
    if (b) rsclip__q_push(&pl->free_batches, b);
    free(rgb);
    return rc;
}

/* One scene: open it (cheaply: no pixels), decide, then read its tiles. */
static void read_scene(pipeline *pl, rsclip_index *ro, int scene_no) {
    const idx_job *job = &pl->jobs[scene_no];
    const char *path = job->path;
    rsclip_tiler *t = NULL;
    if (rsclip_tiler_open(path, &pl->tp, &t) != RSCLIP_OK) {
        send_fail(pl, scene_no, path, rsclip_last_error());
        return;
    }
    const rsclip_raster_info *si = rsclip_tiler_scene(t);
    if (job->plan_size >= 0 &&
        (si->fingerprint.size != job->plan_size || si->fingerprint.mtime_ns != job->plan_mtime ||
         si->n_tiles != job->plan_tiles)) {
        rsclip__error(RSCLIP_ERR_MISMATCH,
                      "%s: changed since the plan was made (%lld bytes, %lld tiles; the plan has "
                      "%lld bytes, %lld tiles): make the plan again",
                      path, (long long)si->fingerprint.size, (long long)si->n_tiles,
                      (long long)job->plan_size, (long long)job->plan_tiles);
        send_fail(pl, scene_no, path, rsclip_last_error());
        rsclip_tiler_close(t);
        return;
    }
    decision d;
    rsclip_scene_info *stored = NULL;
    if (decide(pl, ro, si, &d, &stored) != RSCLIP_OK) {
        send_fail(pl, scene_no, path, rsclip_last_error());
        rsclip_tiler_close(t);
        return;
    }
    char *tv[7];
    if (scene_time(pl, job, si, tv) != RSCLIP_OK) {
        send_fail(pl, scene_no, path, rsclip_last_error());
        for (int k = 0; k < 7; k++) free(tv[k]);
        rsclip_free(stored);
        rsclip_tiler_close(t);
        return;
    }
    if (d.state == RSCLIP_SCENE_UNCHANGED) {
        /* the same tiles; only a time or catalogue fact that changed is written */
        int update = stored && time_differs(stored, tv);
        msg *m = msg_new(update ? MSG_SCENE_TIME : MSG_SCENE_SKIP, scene_no);
        if (m && update) {
            memcpy(m->time, tv, sizeof tv);
            time_strings_to_scene(m->time, &m->scene);
            m->scene_id = stored->id;
        } else {
            for (int k = 0; k < 7; k++) free(tv[k]);
        }
        if (m) rsclip__q_push(&pl->to_writer, m);
        rsclip_free(stored);
        rsclip_tiler_close(t);
        return;
    }
    rsclip_free(stored);
    rsclip_tile_window *done = NULL;
    size_t n_done = 0;
    int rc = RSCLIP_OK;
    if (d.state == RSCLIP_SCENE_RESUMED && ro)
        rc = rsclip_index_scene_windows(ro, d.sid, &done, &n_done);
    if (!rc) rc = rsclip_tiler_prepare(t); /* scaling statistics: the first pixels read */
    msg *m = NULL;
    if (!rc) {
        /* windows already stored are windows of this grid (other settings re-index) */
        int64_t to_do = job_end(job, si) - job->first - (int64_t)n_done;
        m = begin_msg(pl, scene_no, si, &d, to_do > 0 ? to_do : 0);
        if (m) {
            m->scene.id = job->scene_id;
            memcpy(m->time, tv, sizeof tv);
            memset(tv, 0, sizeof tv);
            time_strings_to_scene(m->time, &m->scene);
        }
        if (!m) rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
    }
    int64_t skipped = 0;
    if (!rc) {
        rsclip__q_push(&pl->to_writer, m);
        rc = read_tiles(pl, t, job, scene_no, done, n_done, &skipped);
    }
    if (rc) {
        send_fail(pl, scene_no, path, rsclip_last_error());
    } else if (!atomic_load(&pl->stop) && atomic_load(&pl->dropped) != scene_no + 1) {
        msg *me = msg_new(MSG_SCENE_END, scene_no);
        if (me) {
            me->skipped = skipped;
            rsclip__q_push(&pl->to_writer, me);
        }
    }
    for (int k = 0; k < 7; k++) free(tv[k]);
    rsclip_free(done);
    rsclip_tiler_close(t);
}

void *rsclip__indexer_reader(void *arg) {
    pipeline *pl = arg;
    rsclip_index *ro = NULL;
    /* The writer created the index before starting us: without this connection no scene can be
     * told unchanged or resumed (taken for NEW, each would be read again and refused), so each
     * fails, reported, and the next run does them. */
    if (rsclip_index_open(pl->index_path, RSCLIP_INDEX_READONLY, &ro) != RSCLIP_OK) {
        char err[1024];
        snprintf(err, sizeof err, "%s", rsclip_last_error());
        for (int i = 0; i < pl->n_jobs && !atomic_load(&pl->stop); i++) {
            rsclip__error(RSCLIP_ERR_IO, "%s: cannot look it up in the index: %s", pl->jobs[i].path,
                          err);
            send_fail(pl, i, pl->jobs[i].path, rsclip_last_error());
        }
        rsclip__q_push(&pl->to_writer, pl->done);
        return NULL;
    }
    for (int i = 0; i < pl->n_jobs && !atomic_load(&pl->stop); i++) read_scene(pl, ro, i);
    rsclip_index_close(ro);
    rsclip__q_push(&pl->to_writer, pl->done);
    return NULL;
}
