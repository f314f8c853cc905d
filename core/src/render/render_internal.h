/* Private to the render module: the imagery handle (imagery.c), the views of hits and regions
 * shared by chips (chips.c) and sheets (sheet.c), and the output rules (output.c). */
#ifndef RSCLIP_RENDER_INTERNAL_H
#define RSCLIP_RENDER_INTERNAL_H

#include "rsclip/index.h"
#include "rsclip/render.h"
#include "rsclip/tiler.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rsclip__im_scene {
    int64_t id;
    char *path;
    char *checksum;         /* as recorded (NULL when not) */
    rsclip_tiler_params tp; /* reopens the scene as it was indexed */
    int has_ll;             /* a CRS and a WGS84 box */
    double ll[4];           /* west, south, east, north */
    double merc[4];         /* the same box in EPSG:3857 metres (latitudes clamped to +-85.05) */
    int warned;             /* a failure to draw it was logged */
} rsclip__im_scene;

typedef struct rsclip__pooled {
    int64_t scene_id;
    rsclip_tiler *t;
    struct rsclip__pooled *next;
} rsclip__pooled;

struct rsclip_imagery {
    char *path;
    rsclip_index_set *set;    /* under mu */
    pthread_mutex_t mu;       /* the set, the pool and the scenes' warned flags */
    rsclip__im_scene *scenes; /* by id, ascending */
    size_t n_scenes;
    rsclip__pooled *idle;
    int n_idle, max_open;
    int has_extent;
    double extent[4];
};

/* The scene of id, NULL (RSCLIP_ERR_NOT_FOUND naming the index) when absent. */
const rsclip__im_scene *rsclip__im_scene_get(rsclip_imagery *im, int64_t id);

/* A tiler on the scene for this thread alone (from the pool or opened); give it back with
 * rsclip__im_put (or close it on error: rsclip__im_put(im, id, NULL) is a no-op). */
int rsclip__im_take(rsclip_imagery *im, const rsclip__im_scene *sc, rsclip_tiler **t);
void rsclip__im_put(rsclip_imagery *im, int64_t scene_id, rsclip_tiler *t);

/* The model's view of a grid window of a scene: *rgb [*h][*w][3] (rsclip_free). */
int rsclip__im_view(rsclip_imagery *im, int64_t scene_id, const int grid_window[4], uint8_t **rgb,
                    int *w, int *h);

/* A region's window in the scene of its best tile (whose hit is best): src_window in source
 * pixels and grid_window in grid pixels, both fractional, clipped to the scene; *rgba its view
 * (*w x *h, longest side at most max_side, rsclip_free) when rgba is not NULL. */
int rsclip__im_region(rsclip_imagery *im, const rsclip_region *r, const rsclip_hit *best,
                      int max_side, double src_window[4], uint8_t **rgba, int *w, int *h);

/* The hit of hits[0..n) with tile id, NULL when none. */
const rsclip_hit *rsclip__hit_find(const rsclip_hit *hits, int n, int64_t tile_id);

/* Output rules: files go through the export module's rule (export/output_internal.h); chips
 * folders are checked here (output.c). */
typedef struct rsclip__out_rules {
    int overwrite;
    const char *const *protected_paths;
    int n_protected;
} rsclip__out_rules;

/* May dir receive chips? It may be missing (its parent must exist), empty, or with overwrite
 * hold other files; never a protected folder. RSCLIP_ERR_EXISTS for a folder that is not empty. */
int rsclip__out_check_dir(const char *dir, const rsclip__out_rules *r);

#endif
