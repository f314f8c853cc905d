/*
 * rsclip/indexer.h -- the indexing pipeline: rasters -> tiler -> model -> index.
 *
 * rsclip_indexer_run indexes a list of rasters into one index file. A reader thread opens each
 * raster (rsclip/tiler.h), reads and preprocesses its tiles into batches while the calling
 * thread encodes the previous batch (rsclip/model.h) and stores it (rsclip/index.h) in one
 * transaction per batch. So:
 *   - kill -9 at any moment leaves a valid index; the next run resumes each interrupted scene
 *     from the tiles it already stored (no tile duplicated or missing);
 *   - a scene is skipped when its file (size, mtime, checksum, VRT sources included) AND the
 *     tiling settings (rsclip_tiler_settings: stride, bands, scale, gsd, resampling, min_valid,
 *     ...) are those it was indexed with; when either differs it is re-indexed and the reason is
 *     logged as a warning ("settings changed: stride 256 -> 128"); force re-indexes everything.
 *     Settings that are invalid for a raster (a band it does not have) fail that scene even when
 *     its file is unchanged;
 *   - every failure inside one scene (cannot open or read it, a degenerate geotransform, a
 *     footprint PROJ cannot transform, a record the index refuses, memory that runs out while it
 *     is read) fails that scene only: it is reported through on_error, left in a state the next
 *     run retries, and the others are indexed; no scene ends a run that went through without
 *     being counted as indexed, unchanged or failed;
 *   - a write failure (full disk), an encoder error or a cancel stops the run with nothing
 *     already stored lost;
 *   - a run that creates the index and stores no scene removes the file again.
 *
 *     rsclip_indexer_params ip = rsclip_indexer_default_params();
 *     ip.model = "base";
 *     rsclip_indexer_report rep;
 *     int rc = rsclip_indexer_run("city.gpkg", paths, n_paths, &ip, &rep);
 *     // rc == RSCLIP_OK even when some inputs failed: check rep.scenes_failed
 */
#ifndef RSCLIP_INDEXER_H
#define RSCLIP_INDEXER_H

#include <stddef.h>
#include <stdint.h>

#include "rsclip/model.h"
#include "rsclip/plan.h"
#include "rsclip/tiler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rsclip_indexer_progress {
    int scene; /* 1-based number of the scene being indexed */
    int n_scenes;
    const char *path;    /* scene path */
    int64_t tiles_done;  /* tiles encoded and stored in this run (all scenes) */
    int64_t tiles_total; /* tiles to encode in this run, over the scenes opened so far */
    double tiles_per_s;  /* encoding rate so far */
    double eta_s;        /* estimated seconds left (< 0: unknown) */
    double elapsed_s;    /* seconds since the run started (monotonic clock) */
} rsclip_indexer_progress;

/* Called from the calling thread after each stored batch and at scene boundaries; return 0 to
 * stop (the run then ends with RSCLIP_ERR_CANCELLED, the index valid and resumable). */
typedef int (*rsclip_indexer_progress_fn)(const rsclip_indexer_progress *p, void *user);
/* Called once per input that could not be indexed (message names the file). */
typedef void (*rsclip_indexer_error_fn)(const char *path, const char *message, void *user);

typedef struct rsclip_indexer_params {
    const char *model;          /* model folder, "base", "large" or a repo id (rsclip/hub.h) */
    rsclip_tiler_params tiler;  /* tile_size is taken from the model's image size */
    int force;                  /* re-index unchanged scenes */
    int batch;                  /* tiles per encoder batch; default 8 */
    int n_threads;              /* encoder threads; 0 = all cores */
    rsclip_precision precision; /* 0 = RSCLIP_PRECISION_AUTO */
    /* The acquisition time of each scene, first found of: the input's own (a STAC item's),
     * datetime (one time for every input of the run, rsclip/time.h text), the raster's
     * metadata (rsclip_raster_info.datetime), the file name through datetime_from_name (a
     * pattern with named groups or a preset, rsclip_time_from_name). Unknown stays NULL: never
     * guessed from the file's mtime. A scene found unchanged but with another time has its time
     * updated without re-indexing. */
    const char *datetime;
    const char *datetime_from_name;
    const char *device; /* where the encoder runs: NULL or "cpu" (default), "cuda",
                           "cuda:N" (rsclip_device_parse; a GPU wants batch 128-256) */
    rsclip_indexer_progress_fn progress;
    rsclip_indexer_error_fn on_error;
    void *user;
} rsclip_indexer_params;

rsclip_indexer_params rsclip_indexer_default_params(void);

typedef struct rsclip_indexer_report {
    int scenes_total;
    int scenes_indexed;   /* indexed (new, changed or resumed) and now complete */
    int scenes_unchanged; /* skipped: already complete and unchanged */
    int scenes_failed;    /* could not be read; see on_error */
    int64_t tiles_added;
    int64_t tiles_skipped; /* below min_valid */
    double seconds;        /* whole run */
    double setup_seconds;  /* of which: model load, index open (before the first tile) */
    double encode_seconds; /* time spent in the encoder */
} rsclip_indexer_report;

/* Index paths[0..n) (already expanded: rsclip_inputs_expand) into index_path (created if
 * missing). Returns RSCLIP_OK when the run went through, even if some inputs failed (see the
 * report); an error when the run could not go on (model cannot load or differs from the index's,
 * index not writable, disk full, cancelled). report may be NULL. */
int rsclip_indexer_run(const char *index_path, const char *const *paths, int n_paths,
                       const rsclip_indexer_params *params, rsclip_indexer_report *report);

/* The same for inputs that carry catalogue facts (rsclip_input: a STAC item's time, ids and
 * asset key, recorded with the scene). */
int rsclip_indexer_run_inputs(const char *index_path, const rsclip_input *inputs, int n_inputs,
                              const rsclip_indexer_params *params, rsclip_indexer_report *report);

/* Index the scenes of a plan (rsclip/plan.h) with the plan's tiling settings (params->tiler
 * gives only allow_pixel_coords and max_tiles). shard_count = 0: the whole plan, like
 * rsclip_indexer_run. shard_count = N > 0: only the tiles of shard shard_index, into index_path
 * as one part of a sharded index: scene ids are plan ordinal + 1 and tile ids global tile number
 * + 1 (so parts never collide and merge keeps them), and the part records shard_index,
 * shard_count, plan_digest and settings in its meta (a part that holds others is refused with
 * RSCLIP_ERR_MISMATCH naming both), and shard_complete = 1 once every scene of its share is in.
 * A scene whose file changed since the plan was made fails (the split would disagree). Killed and
 * rerun, a part resumes from the tiles it stored; rerun when complete, it does nothing. */
int rsclip_indexer_run_plan(const char *index_path, const rsclip_plan *plan, int shard_index,
                            int shard_count, const rsclip_indexer_params *params,
                            rsclip_indexer_report *report);

#ifdef __cplusplus
}
#endif
#endif
