/* A scene's query heatmap (rsclip/query.h): the tile grid read back from the index, checked, and
 * the query's probability per tile placed on it. Only public API below: the session scores, the
 * index stores; this file decides which cell shows which tile. */
#include "base/base.h"
#include "rsclip/index.h"
#include "rsclip/query.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rsclip_heatmap_params rsclip_heatmap_default_params(void) {
    rsclip_heatmap_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void rsclip_heatmap_free(rsclip_heatmap *h) {
    if (!h) return;
    free(h->values);
    free(h);
}

/* The scene row and every window must describe pixels of the scene before any of them positions
 * a cell: an index is a file, and files are damaged or hostile. */
static int check_scene(const char *path, const rsclip_scene_info *si) {
    if (si->width < 1 || si->height < 1)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: scene %lld has no pixels (%d x %d)", path,
                             (long long)si->id, si->width, si->height);
    for (int i = 0; i < 6; i++)
        if (!isfinite(si->geotransform[i]))
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: scene %lld has a non-finite geotransform",
                                 path, (long long)si->id);
    if (si->tile_size < 0 || si->stride < 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: scene %lld has tile size %d, stride %d", path,
                             (long long)si->id, si->tile_size, si->stride);
    return RSCLIP_OK;
}

static int check_windows(const char *path, const rsclip_scene_info *si, const int64_t *ids,
                         const rsclip_tile_window *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const rsclip_tile_window *t = &w[i];
        if (t->xoff < 0 || t->yoff < 0 || t->xsize < 1 || t->ysize < 1 ||
            (int64_t)t->xoff + t->xsize > si->width || (int64_t)t->yoff + t->ysize > si->height)
            return rsclip__error(RSCLIP_ERR_FORMAT,
                                 "%s: tile %lld of scene %lld: window %d,%d %dx%d is not inside "
                                 "the scene's %d x %d pixels",
                                 path, (long long)ids[i], (long long)si->id, t->xoff, t->yoff,
                                 t->xsize, t->ysize, si->width, si->height);
    }
    return RSCLIP_OK;
}

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* T and S (see rsclip/query.h). Schema-1 scenes do not record them: every window the tiler makes
 * is T wide (or the whole extent), and the interior offsets (neither at 0 nor ending at the edge)
 * are all multiples of the stride. */
static void grid_basis(const rsclip_scene_info *si, const rsclip_tile_window *w, size_t n, int step,
                       int *tile, int *stride, const char **from) {
    int t = si->tile_size;
    if (t <= 0) {
        t = 1;
        for (size_t i = 0; i < n; i++) {
            if (w[i].xsize > t) t = w[i].xsize;
            if (w[i].ysize > t) t = w[i].ysize;
        }
    }
    *tile = t;
    if (step > 0) {
        *stride = step;
        *from = "params";
        return;
    }
    if (si->stride > 0) {
        *stride = si->stride;
        *from = "index";
        return;
    }
    int64_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i].xoff > 0 && (int64_t)w[i].xoff + w[i].xsize < si->width) g = gcd64(g, w[i].xoff);
        if (w[i].yoff > 0 && (int64_t)w[i].yoff + w[i].ysize < si->height) g = gcd64(g, w[i].yoff);
    }
    *stride = g > 0 ? (int)g : t;
    *from = g > 0 ? "tile offsets" : "tile size";
}

/* One axis of the grid: extent e, tile t, step s -> *n cells of *cell pixels from pixel *origin. */
static void grid_axis(int e, int t, int s, int *n, double *origin, double *cell) {
    if (e <= t) {
        *n = 1;
        *origin = 0;
        *cell = e;
        return;
    }
    const double a = t > s ? 0.5 * (t - s) : 0.0;
    const double span = e - 2.0 * a; /* > 0: e > t >= 2a */
    const double k = floor(span / s);
    *origin = a;
    *n = k >= 1 ? (int)k : 1;
    *cell = k >= 1 ? s : span;
}

/* The cell holding a window's centre, clamped to the grid. */
static int cell_of(int off, int size, double origin, double cell, int n) {
    const double i = floor((off + 0.5 * size - origin) / cell);
    return i < 0 ? 0 : i >= n ? n - 1 : (int)i;
}

typedef struct grid {
    int nx, ny, step, tile;
    double ox, oy, cx, cy;
    const char *from;
} grid;

static int plan_grid(const char *path, const rsclip_scene_info *si, const rsclip_tile_window *w,
                     size_t n, const rsclip_heatmap_params *p, grid *g) {
    grid_basis(si, w, n, p->step, &g->tile, &g->step, &g->from);
    grid_axis(si->width, g->tile, g->step, &g->nx, &g->ox, &g->cx);
    grid_axis(si->height, g->tile, g->step, &g->ny, &g->oy, &g->cy);
    const int64_t cap = p->max_cells > 0 ? p->max_cells : RSCLIP_HEATMAP_MAX_CELLS;
    const int64_t cells = (int64_t)g->nx * g->ny; /* both <= INT_MAX: no overflow */
    if (cells > cap)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: the heatmap of scene %lld would have %d x %d cells (step %d px "
                             "on %d x %d pixels), more than the limit of %lld cells: use a "
                             "larger step or raise the limit",
                             path, (long long)si->id, g->nx, g->ny, g->step, si->width, si->height,
                             (long long)cap);
    return RSCLIP_OK;
}

/* The result with its strings in one block, values NaN. */
static int new_heatmap(const rsclip_scene_info *si, const grid *g, rsclip_heatmap **out) {
    const char *crs = si->crs_wkt ? si->crs_wkt : "";
    const size_t ls = strlen(si->path) + 1, lc = strlen(crs) + 1;
    const size_t cells = (size_t)g->nx * (size_t)g->ny; /* <= the cap */
    rsclip_heatmap *h = rsclip__calloc(1, sizeof *h + ls + lc);
    float *v = rsclip__malloc(cells * sizeof *v);
    if (!h || !v) {
        free(h);
        free(v);
        return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory for a heatmap of %d x %d cells",
                             g->nx, g->ny);
    }
    char *str = (char *)(h + 1);
    memcpy(str, si->path, ls);
    memcpy(str + ls, crs, lc);
    for (size_t i = 0; i < cells; i++) v[i] = NAN;
    h->scene_id = si->id;
    h->scene = str;
    h->crs_wkt = str + ls;
    h->width = g->nx;
    h->height = g->ny;
    h->origin[0] = g->ox;
    h->origin[1] = g->oy;
    h->cell[0] = g->cx;
    h->cell[1] = g->cy;
    h->step = g->step;
    h->tile_size = g->tile;
    h->step_from = g->from;
    h->values = v;
    /* the scene's geotransform, moved to the grid origin and scaled to one cell */
    const double *gt = si->geotransform;
    h->geotransform[0] = gt[0] + g->ox * gt[1] + g->oy * gt[2];
    h->geotransform[1] = gt[1] * g->cx;
    h->geotransform[2] = gt[2] * g->cy;
    h->geotransform[3] = gt[3] + g->ox * gt[4] + g->oy * gt[5];
    h->geotransform[4] = gt[4] * g->cx;
    h->geotransform[5] = gt[5] * g->cy;
    *out = h;
    return RSCLIP_OK;
}

/* Both lists are in tile-id order (the probabilities skip tiles without an embedding). */
static void place(rsclip_heatmap *h, const int64_t *ids, const rsclip_tile_window *w, size_t n,
                  const int64_t *pid, const float *prob, size_t np) {
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < np && pid[j] < ids[i]) j++;
        if (j == np) break;
        if (pid[j] != ids[i]) continue;
        const int cx = cell_of(w[i].xoff, w[i].xsize, h->origin[0], h->cell[0], h->width);
        const int cy = cell_of(w[i].yoff, w[i].ysize, h->origin[1], h->cell[1], h->height);
        float *v = &h->values[(size_t)cy * (size_t)h->width + (size_t)cx];
        if (isnan(*v) || prob[j] > *v) *v = prob[j];
        h->n_tiles++;
    }
}

int rsclip_session_heatmap(rsclip_session *s, const rsclip_query *q, int64_t scene_id,
                           const rsclip_heatmap_params *params, rsclip_heatmap **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "heatmap: no output");
    *out = NULL;
    if (!s || !q) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "heatmap: no session or query");
    const rsclip_heatmap_params p = params ? *params : rsclip_heatmap_default_params();
    if (p.step < 0 || p.max_cells < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "heatmap: step %d and max_cells %lld must "
                             "not be negative",
                             p.step, (long long)p.max_cells);
    const char *path = rsclip_index_set_path(rsclip_session_set(s));
    rsclip_scene_info *si = NULL;
    int rc = rsclip_session_get_scene(s, scene_id, &si);
    if (rc == RSCLIP_ERR_NOT_FOUND)
        rc = rsclip__error(rc, "%s: no scene %lld", path, (long long)scene_id);
    int64_t *ids = NULL, *pid = NULL;
    rsclip_tile_window *w = NULL;
    float *prob = NULL;
    size_t n = 0, np = 0;
    grid g;
    memset(&g, 0, sizeof g);
    rsclip_heatmap *h = NULL;
    if (!rc) rc = check_scene(path, si);
    if (!rc) rc = rsclip_session_scene_tiles(s, scene_id, &ids, &w, &n);
    if (!rc) rc = check_windows(path, si, ids, w, n);
    if (!rc) rc = plan_grid(path, si, w, n, &p, &g);
    /* the costly part (the model, a scan of every vector) only once the grid is known to be sane */
    if (!rc) rc = rsclip_session_scene_probs(s, q, scene_id, &pid, &prob, &np);
    if (!rc) rc = new_heatmap(si, &g, &h);
    if (!rc) place(h, ids, w, n, pid, prob, np);
    rsclip_free(si);
    rsclip_free(ids);
    rsclip_free(w);
    rsclip_free(pid);
    rsclip_free(prob);
    if (rc) return rc;
    *out = h;
    return RSCLIP_OK;
}
