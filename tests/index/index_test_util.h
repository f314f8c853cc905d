/* Shared helpers of the index tests: deterministic synthetic scenes (rotated, densified tile
 * footprints, pseudo-random embeddings) that the tests can recompute independently. */
#ifndef RSCLIP_INDEX_TEST_UTIL_H
#define RSCLIP_INDEX_TEST_UTIL_H

#include "rsclip/index.h"
#include "rsclip/status.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TI_EDGE_PTS 5             /* points per footprint edge (densified) */
#define TI_NPTS (4 * TI_EDGE_PTS) /* footprint points (not closed) */
#define TI_TILE 256               /* tile size in pixels */
#define TI_DEG 0.01               /* tile size in degrees */

/* A fresh directory for one test run: ./<name>.XXXXXX in the working (build) directory. */
static inline char *ti_tmpdir(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s.tmp.XXXXXX", name);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
    return buf;
}

/* splitmix64: deterministic pseudo-random numbers. */
static inline uint64_t ti_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Un-normalised vector of tile (scene_seed, col, row). */
static inline void ti_vector(int scene_seed, int col, int row, int dim, float *v) {
    uint64_t s = ti_mix(((uint64_t)scene_seed << 40) ^ ((uint64_t)col << 20) ^ (uint64_t)row);
    for (int k = 0; k < dim; k++) {
        s = ti_mix(s);
        v[k] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 3.0f;
    }
}

static inline void ti_normalised(int scene_seed, int col, int row, int dim, float *v) {
    ti_vector(scene_seed, col, row, dim, v);
    double ss = 0;
    for (int k = 0; k < dim; k++) ss += (double)v[k] * v[k];
    for (int k = 0; k < dim; k++) v[k] = (float)(v[k] / sqrt(ss));
}

/* Footprint of tile (col, row) of a scene whose upper-left tile centre is (lon0, lat0): a square of
 * TI_DEG rotated by 0.1 rad about its centre, densified to TI_NPTS points. */
static inline void ti_footprint(double lon0, double lat0, int col, int row, double *xy,
                                double *clon, double *clat) {
    double cx = lon0 + col * TI_DEG, cy = lat0 - row * TI_DEG, h = TI_DEG / 2, a = 0.1;
    const double c[5][2] = {{-h, h}, {h, h}, {h, -h}, {-h, -h}, {-h, h}};
    int k = 0;
    for (int e = 0; e < 4; e++)
        for (int i = 0; i < TI_EDGE_PTS; i++, k++) {
            double t = (double)i / TI_EDGE_PTS;
            double x = c[e][0] + t * (c[e + 1][0] - c[e][0]);
            double y = c[e][1] + t * (c[e + 1][1] - c[e][1]);
            xy[2 * k] = cx + x * cos(a) - y * sin(a);
            xy[2 * k + 1] = cy + x * sin(a) + y * cos(a);
        }
    *clon = cx;
    *clat = cy;
}

/* Fill record + vector for tile (col, row); xy must hold 2 * TI_NPTS doubles. */
static inline void ti_record(int seed, double lon0, double lat0, int col, int row, int dim,
                             rsclip_tile_record *r, double *xy, float *v) {
    memset(r, 0, sizeof *r);
    r->window.xoff = col * TI_TILE;
    r->window.yoff = row * TI_TILE;
    r->window.xsize = TI_TILE;
    r->window.ysize = TI_TILE;
    r->valid_fraction = ((col * 7 + row * 3) % 11) / 10.0;
    ti_footprint(lon0, lat0, col, row, xy, &r->lon, &r->lat);
    r->footprint = xy;
    r->n_footprint = TI_NPTS;
    double x0 = 500000.0 + r->window.xoff * 10.0, y0 = 4000000.0 - r->window.yoff * 10.0;
    double s = TI_TILE * 10.0;
    const double corners[8] = {x0, y0, x0 + s, y0, x0 + s, y0 - s, x0, y0 - s};
    memcpy(r->corners, corners, sizeof corners);
    ti_vector(seed, col, row, dim, v);
}

/* n tiles of 64 px side by side: squares of 0.01 degree from longitude lon0 eastwards between
 * latitudes 50 and 50.01, full of valid pixels, their footprints in ring. */
static inline void ti_strip(double lon0, int n, rsclip_tile_record *rec, double (*ring)[8]) {
    memset(rec, 0, sizeof *rec * (size_t)n);
    for (int i = 0; i < n; i++) {
        double w = lon0 + 0.01 * i, x = w + 0.01;
        double r[8] = {w, 50.01, x, 50.01, x, 50, w, 50};
        memcpy(ring[i], r, sizeof r);
        rec[i].window = (rsclip_tile_window){64 * i, 0, 64, 64};
        rec[i].valid_fraction = 1;
        rec[i].lon = (w + x) / 2;
        rec[i].lat = 50.005;
        memcpy(rec[i].corners, r, sizeof r);
        rec[i].footprint = ring[i];
        rec[i].n_footprint = 4;
    }
}

/* Minimal scene description. */
static inline rsclip_scene_info ti_scene(const char *path, int64_t size, int64_t mtime,
                                         const char *checksum, int cols, int rows) {
    rsclip_scene_info s;
    memset(&s, 0, sizeof s);
    s.path = path;
    s.file_size = size;
    s.mtime_ns = mtime;
    s.checksum = checksum;
    s.crs_wkt = "PROJCS[\"WGS 84 / UTM zone 32N\"]";
    s.epsg = 32632;
    const double gt[6] = {500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0};
    memcpy(s.geotransform, gt, sizeof gt);
    s.width = cols * TI_TILE;
    s.height = rows * TI_TILE;
    s.bands = "3,2,1";
    s.scaling = "{\"method\":\"percentile\",\"lo\":2,\"hi\":98}";
    s.tiles_planned = (int64_t)cols * rows;
    return s;
}

/* Add tiles [first, first + count) of a cols-wide grid (row-major order) in one batch. */
static inline int ti_add_batch(rsclip_index *idx, int64_t sid, int seed, double lon0, double lat0,
                               int cols, int first, int count, int dim) {
    rsclip_tile_record *r = calloc((size_t)count, sizeof *r);
    double *xy = calloc((size_t)count * 2 * TI_NPTS, sizeof(double));
    float *v = calloc((size_t)count * dim, sizeof(float));
    if (!r || !xy || !v) exit(2);
    for (int i = 0; i < count; i++) {
        int t = first + i;
        ti_record(seed, lon0, lat0, t % cols, t / cols, dim, &r[i], xy + (size_t)i * 2 * TI_NPTS,
                  v + (size_t)i * dim);
    }
    int rc = rsclip_index_add_tiles(idx, sid, (size_t)count, r, v, NULL);
    free(r);
    free(xy);
    free(v);
    return rc;
}

#endif
