/*
 * rsclip/plan.h -- the work of an indexing run, counted once: the scenes (in a deterministic
 * order), their tile counts and the settings, and the split of its TILES into shards.
 *
 * An array job (Slurm, a Kubernetes Indexed Job, AWS Batch) runs N workers that never talk to
 * each other. Each computes the same plan from the same inputs and indexes only its shard: the
 * tiles with global numbers in [floor(I T / N), floor((I + 1) T / N)) of the T tiles in plan order
 * (scenes sorted by path, tiles row-major within a scene). So one 100 000^2 mosaic spreads over all
 * shards, shard sizes differ by at most one tile, and every tile is in exactly one shard.
 *
 *     rsclip_plan *p;
 *     rsclip_plan_make(paths, n_paths, &tiler_params, on_error, user, &p);   // opens each header
 *     rsclip_plan_write(p, "plan.json");             // once, e.g. on a login node
 *     ...
 *     rsclip_plan_read("plan.json", 3, 16, &p);      // a worker: only the scenes of shard 3/16
 *     int64_t first, end;
 *     rsclip_plan_shard(p, 3, 16, &first, &end);     // its global tile numbers
 *
 * File: JSON Lines, so that a worker reads a million-scene plan in bounded memory, keeping only
 * its share. Line 1: {"rsclip_plan": 1, "digest": "...", "settings": {...}, "scenes": S,
 * "tiles": T, "failed": F}; then one line per scene in order: {"path": "...", "size": B,
 * "mtime_ns": M, "width": W, "height": H, "tiles": n, "first": t0} (plus "datetime",
 * "stac_item", "stac_collection", "stac_asset" when the input had them). The digest identifies the
 * plan (settings, every path and tile count): parts of a sharded index record it, and parts of
 * different plans are never mixed.
 *
 * Threading: a plan is immutable after make/read; share it freely.
 */
#ifndef RSCLIP_PLAN_H
#define RSCLIP_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "rsclip/tiler.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP_PLAN_VERSION 1

/* One input of an indexing run: a raster, with what a catalogue says about it (all NULL for a
 * plain file). */
typedef struct rsclip_input {
    const char *path;
    const char *datetime; /* acquisition time from the catalogue (rsclip/time.h text) */
    const char *stac_item, *stac_collection, *stac_asset; /* STAC ids and asset key */
} rsclip_input;

typedef struct rsclip_plan_scene {
    const char *path;
    int64_t file_size, mtime_ns; /* as when planned: a worker refuses a scene that changed */
    int width, height;           /* the tile grid (resampled size after a gsd) */
    int64_t n_tiles;             /* windows of the grid */
    int64_t first_tile;          /* global number of its tile 0 */
    int64_t ordinal;             /* 0-based position of the scene in the whole plan */
    const char *datetime, *stac_item, *stac_collection, *stac_asset; /* as the input's */
} rsclip_plan_scene;

typedef struct rsclip_plan {
    char digest[17];                          /* 16 hex digits */
    char settings[RSCLIP_TILER_SETTINGS_MAX]; /* rsclip_tiler_settings of the run */
    int64_t n_scenes_total;                   /* scenes in the whole plan */
    int64_t n_tiles;                          /* tiles in the whole plan */
    int64_t n_failed;                         /* inputs that could not be planned */
    int n_scenes;                             /* scenes held here (all, or one shard's) */
    rsclip_plan_scene *scenes;
} rsclip_plan;

/* Open the header of each raster (no pixels: rsclip_tiler_open with defer_stats) and count its
 * tiles with params. paths should come from rsclip_inputs_expand (sorted, unique); the plan keeps
 * their order. An input that cannot be opened is passed to on_error (may be NULL) and left out
 * (n_failed counts it). *out: rsclip_plan_free. */
int rsclip_plan_make(const char *const *paths, int n_paths, const rsclip_tiler_params *params,
                     void (*on_error)(const char *path, const char *message, void *user),
                     void *user, rsclip_plan **out);
/* The same for inputs that carry catalogue facts (STAC), kept with their scenes. */
int rsclip_plan_make_inputs(const rsclip_input *inputs, int n_inputs,
                            const rsclip_tiler_params *params,
                            void (*on_error)(const char *path, const char *message, void *user),
                            void *user, rsclip_plan **out);

/* Read STAC (1.0.0): an Item, an ItemCollection (e.g. a saved search result) or a static
 * Catalog/Collection whose "item" and "child" links are followed (relative hrefs resolved against
 * the document's own href; cycles and the same document twice are read once), local or over
 * http(s) through GDAL's /vsicurl/. Each item gives one input: the asset asset_key (NULL: "visual"
 * when the item has it, else its first raster asset whose roles say data or visual, else its
 * first raster asset; thumbnails and overviews never), with the item's datetime (or
 * start_datetime/end_datetime), id, collection and asset key. An item or document that cannot be
 * used (not JSON, wrong type, no such asset, a bad datetime, unreachable) is passed to on_error
 * (may be NULL) and left out. *items: *n_items inputs in href order (one per href; the order
 * every worker of an array job computes), freed with rsclip_stac_free. */
int rsclip_stac_read(const char *href, const char *asset_key,
                     void (*on_error)(const char *where, const char *message, void *user),
                     void *user, rsclip_input **items, int *n_items);
void rsclip_stac_free(rsclip_input *items, int n_items);
/* 1 if an input names a STAC document (.json / .geojson), else 0. */
int rsclip_stac_is_name(const char *input);

/* Write the plan (a temporary file in the same folder, then renamed over path). */
int rsclip_plan_write(const rsclip_plan *p, const char *path);

/* Read a plan file. shard_count = 0: every scene; else only the scenes that hold tiles of shard
 * shard_index of shard_count (memory bounded by the share). Errors name the file and line. */
int rsclip_plan_read(const char *path, int shard_index, int shard_count, rsclip_plan **out);

void rsclip_plan_free(rsclip_plan *p); /* NULL-safe */

/* Global tile numbers [*first, *end) of shard index of count (0 <= index < count). */
int rsclip_plan_shard(const rsclip_plan *p, int index, int count, int64_t *first, int64_t *end);

#ifdef __cplusplus
}
#endif
#endif
