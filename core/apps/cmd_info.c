/* rsclip info: what an index holds. */
#include "app.h"
#include "rsclip/time.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char app_usage_info[] = "usage: rsclip info INDEX [--json]\n"
                              "\n"
                              "Print what an index holds: model, embedding dimension, scenes,\n"
                              "tiles, extent (WGS84) and size on disk.\n"
                              "  --json    machine-readable output\n";

static int64_t file_size(const char *path, const char *suffix) {
    char p[4096];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* The scale mode of a stored scaling description ({"mode":"percentile",...}), for the table. */
static void scale_mode(const char *scaling, char *out, size_t cap) {
    const char *m = scaling ? strstr(scaling, "\"mode\":\"") : NULL;
    if (!m) {
        snprintf(out, cap, "?");
        return;
    }
    m += 8;
    size_t n = strcspn(m, "\"");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), m);
}

static const char *georef_name(int g) {
    return g == 2 ? "crs" : g == 1 ? "local" : "pixel";
}

static void print_scene_row(const rsclip_scene_info *si) {
    char scale[16], grid[24], gsd[16];
    scale_mode(si->scaling, scale, sizeof scale);
    if (si->tile_size > 0)
        snprintf(grid, sizeof grid, "%d/%d", si->tile_size, si->stride);
    else
        snprintf(grid, sizeof grid, "?");
    if (si->gsd > 0)
        snprintf(gsd, sizeof gsd, "%.3g", si->gsd);
    else
        snprintf(gsd, sizeof gsd, "%s", si->georef == 2 ? "?" : "-");
    char when[2 * RSCLIP_TIME_TEXT_MAX];
    if (si->datetime)
        snprintf(when, sizeof when, "%s", si->datetime);
    else if (si->start_datetime && si->end_datetime)
        snprintf(when, sizeof when, "%s/%s", si->start_datetime, si->end_datetime);
    else
        snprintf(when, sizeof when, "-");
    printf("  %4lld  %-8s  %6lld  %7lld  %-8s  %-10s  %-10s  %-8s  %-24s  %s\n", (long long)si->id,
           si->status == RSCLIP_SCENE_COMPLETE ? "complete" : "indexing",
           (long long)si->tiles_stored, (long long)si->tiles_skipped, si->bands ? si->bands : "?",
           scale, grid, gsd, when, si->path);
}

/* Text from the index goes out as JSON strings (settings and scaling are JSON texts themselves:
 * parse them again; a damaged file cannot break this output). */
static void json_opt_string(const char *key, const char *v) {
    printf(", \"%s\": ", key);
    if (v)
        app_json_string(stdout, v);
    else
        printf("null");
}

static void print_scene_json(const rsclip_scene_info *si, size_t i) {
    printf("%s{\"id\": %lld, \"path\": ", i ? ", " : "", (long long)si->id);
    app_json_string(stdout, si->path);
    printf(", \"status\": \"%s\", \"tiles\": %lld, \"skipped\": %lld, \"epsg\": %d, "
           "\"width\": %d, \"height\": %d",
           si->status == RSCLIP_SCENE_COMPLETE ? "complete" : "indexing",
           (long long)si->tiles_stored, (long long)si->tiles_skipped, si->epsg, si->width,
           si->height);
    if (si->src_width > 0)
        printf(", \"src_width\": %d, \"src_height\": %d, \"src_bands\": %d", si->src_width,
               si->src_height, si->src_bands);
    if (si->tile_size > 0) printf(", \"tile_size\": %d, \"stride\": %d", si->tile_size, si->stride);
    printf(", \"georef\": \"%s\", \"gsd\": ", georef_name(si->georef));
    if (si->gsd > 0)
        printf("%.9g", si->gsd);
    else
        printf("null");
    json_opt_string("bands", si->bands);
    json_opt_string("scaling", si->scaling);
    json_opt_string("settings", si->settings);
    json_opt_string("datetime", si->datetime);
    json_opt_string("start_datetime", si->start_datetime);
    json_opt_string("end_datetime", si->end_datetime);
    json_opt_string("datetime_source", si->datetime_source);
    json_opt_string("stac_item", si->stac_item);
    json_opt_string("stac_collection", si->stac_collection);
    json_opt_string("stac_asset", si->stac_asset);
    printf("}");
}

/* Bytes of the index files (the set's parts), their WAL and vector caches. */
static void set_sizes(rsclip_index_set *set, int64_t sz[3]) {
    sz[0] = sz[1] = sz[2] = 0;
    for (int i = 0; i < rsclip_index_set_count(set); i++) {
        const char *p = rsclip_index_path(rsclip_index_set_part(set, i));
        sz[0] += file_size(p, "");
        sz[1] += file_size(p, "-wal");
        sz[2] += file_size(p, ".rsvec");
    }
}

static void print_header_json(const char *path, const rsclip_index_info *in, const int64_t sz[3],
                              int parts, int shards, int missing, int incomplete, size_t n_scenes,
                              size_t n_complete) {
    printf("{\"index\": ");
    app_json_string(stdout, path);
    printf(", \"schema_version\": %d, \"model\": ", in->schema_version);
    app_json_string(stdout, in->model_id);
    printf(", \"fingerprint\": ");
    app_json_string(stdout, in->model_fingerprint);
    printf(", \"dim\": %d, \"dtype\": ", in->embed_dim);
    app_json_string(stdout, in->dtype);
    printf(", \"parts\": %d, \"shards\": %d, \"parts_missing\": %d, \"parts_incomplete\": %d",
           parts, shards, missing, incomplete);
    printf(", \"scenes\": %zu, \"scenes_complete\": %zu, \"tiles\": %lld, \"embeddings\": %lld, ",
           n_scenes, n_complete, (long long)in->n_tiles, (long long)in->n_embeddings);
    if (in->has_extent)
        printf("\"extent\": [%.9g, %.9g, %.9g, %.9g], ", in->extent[0], in->extent[1],
               in->extent[2], in->extent[3]);
    else
        printf("\"extent\": null, ");
    printf("\"bytes\": %lld, \"wal_bytes\": %lld, \"cache_bytes\": %lld, \"created\": ",
           (long long)sz[0], (long long)sz[1], (long long)sz[2]);
    app_json_string(stdout, in->created_at);
    printf(", \"updated\": ");
    app_json_string(stdout, in->updated_at);
    printf(", \"scene_list\": [");
}

static void print_header_text(const char *path, const rsclip_index_info *in, const int64_t sz[3],
                              int parts, int shards, int missing, int incomplete, size_t n_scenes,
                              size_t n_complete) {
    printf("Index:       %s\n", path);
    printf("Format:      rsclip index schema %d (GeoPackage; layer 'tiles' opens in GIS)\n",
           in->schema_version);
    if (shards)
        printf("Parts:       %d of %d (sharded index)%s%s\n", parts, shards,
               missing ? ": some parts missing" : "",
               incomplete ? ": some parts still being indexed" : "");
    printf("Model:       %s\n", in->model_id[0] ? in->model_id : "(none yet)");
    printf("Fingerprint: %s\n", in->model_fingerprint);
    printf("Dimension:   %d (%s, L2-normalised)\n", in->embed_dim, in->dtype);
    printf("Scenes:      %zu (%zu complete)\n", n_scenes, n_complete);
    printf("Tiles:       %lld (%lld embeddings)\n", (long long)in->n_tiles,
           (long long)in->n_embeddings);
    if (in->has_extent)
        printf("Extent:      %.7f, %.7f, %.7f, %.7f (W, S, E, N; WGS84)\n", in->extent[0],
               in->extent[1], in->extent[2], in->extent[3]);
    printf("Size:        %.1f MiB (WAL %.1f MiB, vector cache %.1f MiB)\n",
           (double)sz[0] / 1048576.0, (double)sz[1] / 1048576.0, (double)sz[2] / 1048576.0);
    printf("Created:     %s\nUpdated:     %s\n", in->created_at, in->updated_at);
    if (n_scenes)
        printf("Scenes:\n  %4s  %-8s  %6s  %7s  %-8s  %-10s  %-10s  %-8s  %-24s  %s\n", "id",
               "status", "tiles", "skipped", "bands", "scale", "tile/step", "gsd m", "datetime",
               "path");
}

int cmd_info(int argc, char **argv) {
    static const struct option longopts[] = {{"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
    int json = 0, ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (ch == 'J')
            json = 1;
        else
            return app_bad_option("info", ch, argv);
    }
    if (argc - optind != 1) return app_usage_error("info", "give one index (file or folder)");
    const char *path = argv[optind];
    struct stat st;
    if (stat(path, &st) != 0) return app_error("%s: no such index file or folder", path);
    rsclip_index_set *set = NULL;
    if (rsclip_index_set_open(path, RSCLIP_INDEX_READONLY, &set) != RSCLIP_OK) return app_fail();
    rsclip_index_info in;
    rsclip_scene_info **sc = NULL;
    size_t n_sc = 0, n_complete = 0;
    int shards = 0, missing = 0, incomplete = 0, parts = rsclip_index_set_count(set);
    if (rsclip_index_set_info(set, &in) != RSCLIP_OK ||
        rsclip_index_set_scenes(set, &sc, &n_sc) != RSCLIP_OK) {
        rsclip_index_set_close(set);
        return app_fail();
    }
    rsclip_index_set_shards(set, &shards, &missing, &incomplete);
    for (size_t i = 0; i < n_sc; i++) n_complete += sc[i]->status == RSCLIP_SCENE_COMPLETE;
    int64_t sz[3];
    set_sizes(set, sz);
    if (json)
        print_header_json(path, &in, sz, parts, shards, missing, incomplete, n_sc, n_complete);
    else
        print_header_text(path, &in, sz, parts, shards, missing, incomplete, n_sc, n_complete);
    for (size_t i = 0; i < n_sc; i++) {
        if (json)
            print_scene_json(sc[i], i);
        else
            print_scene_row(sc[i]);
    }
    if (json) printf("]}\n");
    rsclip_index_set_scenes_free(sc, n_sc);
    rsclip_index_set_close(set);
    return APP_OK;
}
