/* Contact sheets: the hits (or regions) in rank order as thumbnails with their numbers, the query
 * as a title and an overview map of the footprints, drawn with cairo to PNG or PDF. */
#include "base/base.h"
#include "render/render_internal.h"
#include "export/output_internal.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <ogr_api.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHEET_MARGIN 24
#define SHEET_GAP 16
#define SHEET_LINE 15   /* text line height under a thumbnail */
#define SHEET_HEADER 52 /* title and subtitle */
#define SHEET_MIN_WIDTH 560
#define SHEET_MAX_PNG 32000 /* pixels per side: cairo's limit is 32767 */
#define SHEET_MAX_PDF 14400 /* points per side: the PDF limit */
#define SHEET_FONT "DejaVu Sans"

rsclip_sheet_params rsclip_sheet_default_params(void) {
    rsclip_sheet_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static int is_pdf(const char *path, const rsclip_sheet_params *p, int *pdf) {
    const char *f = p->format;
    const char *dot = strrchr(path, '.');
    if (!f && dot) f = dot + 1;
    if (f && strcasecmp(f, "pdf") == 0)
        *pdf = 1;
    else if (f && strcasecmp(f, "png") == 0)
        *pdf = 0;
    else
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: a contact sheet is .png or .pdf (or give the format)", path);
    return RSCLIP_OK;
}

static int layout(int n, const rsclip_sheet_params *p, int with_map, int max_side,
                  rsclip_sheet_layout *L) {
    memset(L, 0, sizeof *L);
    if (n < 1) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "a contact sheet needs hits");
    int t = p->thumb ? p->thumb : 192;
    if (t < 64 || t > 1024)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "thumbnail size %d out of range 64..1024", t);
    int c = p->columns ? p->columns : (n < 5 ? n : 5);
    if (c < 1 || c > 64) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%d columns: 1..64", c);
    if (c > n) c = n;
    L->thumb = t;
    L->columns = c;
    L->rows = (n + c - 1) / c;
    L->cell_w = t;
    L->cell_h = t + 6 + 3 * SHEET_LINE;
    int64_t grid_w = (int64_t)c * t + (int64_t)(c - 1) * SHEET_GAP;
    int64_t w = 2 * SHEET_MARGIN + (grid_w > SHEET_MIN_WIDTH ? grid_w : SHEET_MIN_WIDTH);
    L->map_x = SHEET_MARGIN;
    L->map_y = SHEET_MARGIN + SHEET_HEADER;
    L->map_w = with_map ? (int)(w - 2 * SHEET_MARGIN) : 0;
    L->map_h = with_map ? (int)fmin(320.0, fmax(160.0, L->map_w * 0.4)) : 0;
    L->grid_x = SHEET_MARGIN + (int)((w - 2 * SHEET_MARGIN - grid_w) / 2);
    L->grid_y = L->map_y + (with_map ? L->map_h + SHEET_GAP : 0);
    int64_t h = L->grid_y + (int64_t)L->rows * L->cell_h + (int64_t)(L->rows - 1) * SHEET_GAP +
                SHEET_MARGIN;
    if (w > max_side || h > max_side)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "a contact sheet of %d hits would be %lld x %lld: at most %d per side "
                             "(fewer hits, more columns or smaller thumbnails)",
                             n, (long long)w, (long long)h, max_side);
    L->width = (int)w;
    L->height = (int)h;
    return RSCLIP_OK;
}

int rsclip_sheet_layout_for(int n, const rsclip_sheet_params *params, rsclip_sheet_layout *out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_sheet_layout_for: NULL");
    rsclip_sheet_params p = params ? *params : rsclip_sheet_default_params();
    return layout(n, &p, 1, SHEET_MAX_PNG, out);
}

/* ---- cells ----------------------------------------------------------------------------------- */

typedef struct cell {
    uint8_t *px; /* the view: w x h x channels */
    int w, h, channels;
    char line[3][320];
    double prob, lon, lat;
    int label;
    OGRGeometryH geom; /* WGS84 footprint, NULL when none */
} cell;

static const char *base_name(const char *path) {
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "";
}

static OGRGeometryH hit_geom(const rsclip_hit *h) {
    if (!h->has_lonlat || !h->footprint || h->n_footprint < 4) return NULL;
    return rsclip__ring_polygon(h->footprint, h->n_footprint);
}

static void lonlat_text(char *buf, size_t cap, double lon, double lat) {
    if (isfinite(lon) && isfinite(lat))
        snprintf(buf, cap, "%.5f, %.5f", lon, lat);
    else
        snprintf(buf, cap, "pixel coordinates");
}

static int hit_cells(rsclip_imagery *im, const rsclip_hit *hits, int n, cell *cells) {
    for (int i = 0; i < n; i++) {
        const rsclip_hit *h = &hits[i];
        cell *c = &cells[i];
        int rc = rsclip__im_view(im, h->scene_id, h->grid_window, &c->px, &c->w, &c->h);
        if (rc) return rc;
        c->channels = 3;
        c->prob = h->prob;
        c->lon = h->lon;
        c->lat = h->lat;
        c->label = h->rank;
        c->geom = hit_geom(h);
        snprintf(c->line[0], sizeof c->line[0], "#%d   p=%.4f", h->rank, h->prob);
        lonlat_text(c->line[1], sizeof c->line[1], h->lon, h->lat);
        snprintf(c->line[2], sizeof c->line[2], "%s", base_name(h->scene));
    }
    return RSCLIP_OK;
}

static int region_cells(rsclip_imagery *im, const rsclip_region *rg, int n, const rsclip_hit *hits,
                        int n_hits, int max_side, cell *cells) {
    for (int i = 0; i < n; i++) {
        const rsclip_region *r = &rg[i];
        cell *c = &cells[i];
        const rsclip_hit *best = rsclip__hit_find(hits, n_hits, r->best_tile_id);
        if (!best)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "region %d: its best tile %lld is not among the hits", r->id,
                                 (long long)r->best_tile_id);
        double win[4];
        int rc = rsclip__im_region(im, r, best, max_side, win, &c->px, &c->w, &c->h);
        if (rc) return rc;
        c->channels = 4;
        c->prob = r->max_prob;
        c->lon = r->lon;
        c->lat = r->lat;
        c->label = r->id;
        char *w = r->wkt;
        if (!w || OGR_G_CreateFromWkt(&w, NULL, &c->geom) != OGRERR_NONE) c->geom = NULL;
        snprintf(c->line[0], sizeof c->line[0], "#%d   p=%.4f", r->id, r->max_prob);
        lonlat_text(c->line[1], sizeof c->line[1], r->lon, r->lat);
        snprintf(c->line[2], sizeof c->line[2], "%d tile%s  %s", r->n_tiles,
                 r->n_tiles == 1 ? "" : "s", base_name(best->scene));
    }
    return RSCLIP_OK;
}

/* ---- drawing --------------------------------------------------------------------------------- */

/* A colour for t in 0..1 (dark blue -> teal -> yellow, as viridis). */
static void ramp(double t, double rgb[3]) {
    static const double stops[5][3] = {{0.267, 0.005, 0.329},
                                       {0.230, 0.322, 0.546},
                                       {0.128, 0.567, 0.551},
                                       {0.369, 0.789, 0.383},
                                       {0.993, 0.906, 0.144}};
    t = !(t > 0) ? 0 : t > 1 ? 1 : t;
    double f = t * 4;
    int i = f >= 4 ? 3 : (int)f;
    f -= i;
    for (int k = 0; k < 3; k++) rgb[k] = stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f;
}

/* Text that fits in width: cut on a UTF-8 character boundary and end with an ellipsis. */
static void fit_text(cairo_t *cr, const char *s, double width, char *out, size_t cap) {
    snprintf(out, cap, "%s", s);
    cairo_text_extents_t te;
    cairo_text_extents(cr, out, &te);
    size_t n = strlen(out);
    while (te.x_advance > width && n > 0) {
        do n--;
        while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80);
        if (n + 4 > cap) continue;
        memcpy(out + n, "\xe2\x80\xa6", 4); /* U+2026 and the NUL */
        cairo_text_extents(cr, out, &te);
    }
}

static void draw_text(cairo_t *cr, double x, double y, double size, int bold, const char *s,
                      double width) {
    char buf[512];
    cairo_select_font_face(cr, SHEET_FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    fit_text(cr, s, width, buf, sizeof buf);
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, buf);
}

/* The view as a cairo surface (premultiplied ARGB32). */
static cairo_surface_t *view_surface(const cell *c) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, c->w, c->h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) return s;
    cairo_surface_flush(s);
    unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < c->h; y++) {
        uint32_t *row = (uint32_t *)(void *)(d + (size_t)y * stride);
        const uint8_t *in = c->px + (size_t)y * c->w * c->channels;
        for (int x = 0; x < c->w; x++, in += c->channels) {
            uint32_t a = c->channels == 4 ? in[3] : 255;
            row[x] = a << 24 | ((in[0] * a + 127) / 255) << 16 | ((in[1] * a + 127) / 255) << 8 |
                     ((in[2] * a + 127) / 255);
        }
    }
    cairo_surface_mark_dirty(s);
    return s;
}

static void draw_cell(cairo_t *cr, const rsclip_sheet_layout *L, int i, const cell *c, double lo,
                      double hi) {
    double x = L->grid_x + (i % L->columns) * (L->cell_w + SHEET_GAP);
    double y = L->grid_y + (i / L->columns) * (L->cell_h + SHEET_GAP);
    double t = L->thumb;
    cairo_set_source_rgb(cr, 0.92, 0.92, 0.92);
    cairo_rectangle(cr, x, y, t, t);
    cairo_fill(cr);
    cairo_surface_t *s = view_surface(c);
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        double k = fmin(t / c->w, t / c->h);
        cairo_save(cr);
        cairo_translate(cr, x + (t - c->w * k) / 2, y + (t - c->h * k) / 2);
        cairo_scale(cr, k, k);
        cairo_set_source_surface(cr, s, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
        cairo_paint(cr);
        cairo_restore(cr);
    }
    cairo_surface_destroy(s);
    double rgb[3];
    ramp(hi > lo ? (c->prob - lo) / (hi - lo) : 1.0, rgb);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, 3);
    cairo_rectangle(cr, x + 1.5, y + 1.5, t - 3, t - 3);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    for (int k = 0; k < 3; k++)
        draw_text(cr, x, y + t + 6 + SHEET_LINE * (k + 1) - 4, k ? 10.5 : 11.5, k == 0, c->line[k],
                  t);
}

/* Map of lon/lat into the map box: equirectangular at the mean latitude, centred. */
typedef struct map_xf {
    double cx, cy, k, coslat, lon_c, lat_c;
} map_xf;

static void map_pt(const map_xf *m, double lon, double lat, double *x, double *y) {
    *x = m->cx + (lon - m->lon_c) * m->coslat * m->k;
    *y = m->cy - (lat - m->lat_c) * m->k;
}

static void path_geom(cairo_t *cr, const map_xf *m, OGRGeometryH g) {
    int ng = OGR_G_GetGeometryCount(g);
    for (int i = 0; i < ng; i++) path_geom(cr, m, OGR_G_GetGeometryRef(g, i));
    int np = ng ? 0 : OGR_G_GetPointCount(g);
    for (int i = 0; i < np; i++) {
        double x, y;
        map_pt(m, OGR_G_GetX(g, i), OGR_G_GetY(g, i), &x, &y);
        if (i == 0)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
    }
    if (np) cairo_close_path(cr);
}

/* Meridians and parallels every 1, 2 or 5 x 10^k degrees, about six across the map. */
static double grat_step(const rsclip_sheet_layout *L, const map_xf *m) {
    double span = L->map_w / (m->k * m->coslat), step = pow(10, floor(log10(span / 6)));
    if (span / step > 30) return step * 5;
    if (span / step > 12) return step * 2;
    return step;
}

static void draw_graticule(cairo_t *cr, const rsclip_sheet_layout *L, const map_xf *m) {
    double step = grat_step(L, m);
    double half_w = 0.5 * L->map_w / (m->k * m->coslat), half_h = 0.5 * L->map_h / m->k;
    cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
    cairo_set_line_width(cr, 0.7);
    for (double v = ceil((m->lon_c - half_w) / step) * step; v <= m->lon_c + half_w; v += step) {
        double x, y;
        map_pt(m, v, 0, &x, &y);
        cairo_move_to(cr, x, L->map_y);
        cairo_line_to(cr, x, L->map_y + L->map_h);
    }
    for (double v = ceil((m->lat_c - half_h) / step) * step; v <= m->lat_c + half_h; v += step) {
        double x, y;
        map_pt(m, 0, v, &x, &y);
        cairo_move_to(cr, L->map_x, y);
        cairo_line_to(cr, L->map_x + L->map_w, y);
    }
    cairo_stroke(cr);
}

static void draw_map(cairo_t *cr, const rsclip_sheet_layout *L, const cell *cells, int n, double lo,
                     double hi) {
    OGREnvelope env = {INFINITY, -INFINITY, INFINITY, -INFINITY}, e;
    for (int i = 0; i < n; i++) {
        if (!cells[i].geom) continue;
        OGR_G_GetEnvelope(cells[i].geom, &e);
        env.MinX = fmin(env.MinX, e.MinX), env.MaxX = fmax(env.MaxX, e.MaxX);
        env.MinY = fmin(env.MinY, e.MinY), env.MaxY = fmax(env.MaxY, e.MaxY);
    }
    cairo_set_source_rgb(cr, 0.95, 0.95, 0.95);
    cairo_rectangle(cr, L->map_x, L->map_y, L->map_w, L->map_h);
    cairo_fill(cr);
    if (!(env.MinX <= env.MaxX)) return; /* no footprints */
    map_xf m;
    m.lon_c = 0.5 * (env.MinX + env.MaxX);
    m.lat_c = 0.5 * (env.MinY + env.MaxY);
    m.coslat = fmax(0.05, cos(m.lat_c * M_PI / 180));
    double w = fmax((env.MaxX - env.MinX) * m.coslat, 1e-9), h = fmax(env.MaxY - env.MinY, 1e-9);
    double pad = 0.08 * fmax(w, h);
    m.k = fmin((L->map_w - 16) / (w + 2 * pad), (L->map_h - 28) / (h + 2 * pad));
    m.cx = L->map_x + 0.5 * L->map_w;
    m.cy = L->map_y + 0.5 * (L->map_h - 16);
    cairo_save(cr);
    cairo_rectangle(cr, L->map_x, L->map_y, L->map_w, L->map_h);
    cairo_clip(cr);
    draw_graticule(cr, L, &m);
    for (int i = n - 1; i >= 0; i--) { /* the best on top */
        if (!cells[i].geom) continue;
        double rgb[3];
        ramp(hi > lo ? (cells[i].prob - lo) / (hi - lo) : 1.0, rgb);
        cairo_new_path(cr);
        path_geom(cr, &m, cells[i].geom);
        cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], 0.55);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, rgb[0] * 0.6, rgb[1] * 0.6, rgb[2] * 0.6);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
    }
    for (int i = n - 1; i >= 0; i--) { /* a dot per hit: footprints may be too small to see */
        if (!cells[i].geom || !isfinite(cells[i].lon)) continue;
        double x, y, rgb[3];
        map_pt(&m, cells[i].lon, cells[i].lat, &x, &y);
        ramp(hi > lo ? (cells[i].prob - lo) / (hi - lo) : 1.0, rgb);
        cairo_new_path(cr);
        cairo_arc(cr, x, y, 3.5, 0, 2 * M_PI);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_set_line_width(cr, 0.8);
        cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int i = 0; i < n && i < 99; i++) {
        if (!cells[i].geom || !isfinite(cells[i].lon)) continue;
        double x, y;
        char s[16];
        map_pt(&m, cells[i].lon, cells[i].lat, &x, &y);
        snprintf(s, sizeof s, "%d", cells[i].label);
        draw_text(cr, x + 5, y - 4, 10, 1, s, 40);
    }
    cairo_restore(cr);
    char s[160];
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    snprintf(s, sizeof s,
             "lon %.4f .. %.4f   lat %.4f .. %.4f   grid %g\xc2\xb0   colour: p %.4f .. %.4f",
             env.MinX, env.MaxX, env.MinY, env.MaxY, grat_step(L, &m), lo, hi);
    draw_text(cr, L->map_x + 6, L->map_y + L->map_h - 6, 10, 0, s, L->map_w - 12);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, L->map_x + 0.5, L->map_y + 0.5, L->map_w - 1, L->map_h - 1);
    cairo_stroke(cr);
}

static void draw_sheet(cairo_t *cr, const rsclip_sheet_layout *L, const cell *cells, int n,
                       const char *title, const char *subtitle) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) lo = fmin(lo, cells[i].prob), hi = fmax(hi, cells[i].prob);
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw_text(cr, SHEET_MARGIN, SHEET_MARGIN + 20, 20, 1, title && *title ? title : "rsclip hits",
              L->width - 2 * SHEET_MARGIN);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    draw_text(cr, SHEET_MARGIN, SHEET_MARGIN + 40, 11, 0, subtitle, L->width - 2 * SHEET_MARGIN);
    if (L->map_h) draw_map(cr, L, cells, n, lo, hi);
    for (int i = 0; i < n; i++) draw_cell(cr, L, i, &cells[i], lo, hi);
}

/* ---- output ---------------------------------------------------------------------------------- */

static cairo_status_t file_write(void *user, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, user) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static int render_file(const char *tmp_path, const char *path, int pdf,
                       const rsclip_sheet_layout *L, const cell *cells, int n, const char *title,
                       const char *subtitle) {
    FILE *f = fopen(tmp_path, "wb");
    if (!f) return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    cairo_surface_t *s =
        pdf ? cairo_pdf_surface_create_for_stream(file_write, f, L->width, L->height)
            : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, L->width, L->height);
    cairo_t *cr = cairo_create(s);
    draw_sheet(cr, L, cells, n, title, subtitle);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && !pdf)
        st = cairo_surface_write_to_png_stream(s, file_write, f);
    cairo_surface_finish(s);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    int closed = fclose(f) == 0;
    if (st != CAIRO_STATUS_SUCCESS || !closed)
        return rsclip__error(RSCLIP_ERR_IO, "%s: cannot write the contact sheet: %s", path,
                             st != CAIRO_STATUS_SUCCESS ? cairo_status_to_string(st)
                                                        : strerror(errno));
    return RSCLIP_OK;
}

typedef struct sheet_job {
    rsclip_imagery *im;
    const rsclip_hit *hits;
    int n_hits;
    const rsclip_region *regions;
    int n_regions;
    int is_regions;
} sheet_job;

static int sheet_run(const sheet_job *j, const char *path, const rsclip_sheet_params *params) {
    if (!j->im || !path || !*path || j->n_hits < 0 || (j->n_hits && !j->hits) ||
        (j->is_regions && j->n_regions > 0 && !j->regions))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "contact sheet: bad arguments");
    rsclip_sheet_params p = params ? *params : rsclip_sheet_default_params();
    int pdf = 0, n = j->is_regions ? j->n_regions : j->n_hits;
    int rc = is_pdf(path, &p, &pdf);
    int with_map = 0;
    for (int i = 0; i < j->n_hits; i++) with_map |= j->hits[i].has_lonlat;
    rsclip_sheet_layout L;
    if (!rc) rc = layout(n, &p, with_map, pdf ? SHEET_MAX_PDF : SHEET_MAX_PNG, &L);
    if (!rc) rc = rsclip_output_check(path, p.overwrite, p.protected_paths, p.n_protected);
    if (rc) return rc;
    cell *cells = rsclip__calloc((size_t)n, sizeof *cells);
    if (!cells) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    rc = j->is_regions ? region_cells(j->im, j->regions, n, j->hits, j->n_hits, 2 * L.thumb, cells)
                       : hit_cells(j->im, j->hits, n, cells);
    char subtitle[256];
    snprintf(subtitle, sizeof subtitle, "%d %s%s  ·  %s", n, j->is_regions ? "region" : "hit",
             n == 1 ? "" : "s", base_name(j->im->path));
    /* drawn into a private folder beside path, then moved into place by the export rule */
    rsclip__dest dest;
    char *tmp = NULL;
    int resolved = !rc && rsclip__dest_resolve(path, &dest) == RSCLIP_OK;
    if (!rc && !resolved) rc = rsclip_last_status();
    if (!rc) rc = rsclip__tmpdir_new(&dest, &tmp);
    if (!rc) {
        size_t len = strlen(tmp) + strlen(dest.name) + 2;
        char *tp = rsclip__malloc(len);
        if (tp) snprintf(tp, len, "%s/%s", tmp, dest.name);
        rc = tp ? render_file(tp, path, pdf, &L, cells, n, p.title, subtitle)
                : rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        free(tp);
        if (rc) rsclip__tmpdir_remove(tmp);
    }
    if (!rc)
        rc = rsclip__tmpdir_commit(tmp, &dest, p.overwrite, p.protected_paths, p.n_protected, NULL);
    free(tmp);
    if (resolved) rsclip__dest_free(&dest);
    rsclip__gdal_errors_pop(&e);
    for (int i = 0; i < n; i++) {
        free(cells[i].px);
        if (cells[i].geom) OGR_G_DestroyGeometry(cells[i].geom);
    }
    free(cells);
    return rc;
}

int rsclip_sheet_check(const char *path, const rsclip_sheet_params *params) {
    if (!path || !*path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "contact sheet: no file");
    rsclip_sheet_params p = params ? *params : rsclip_sheet_default_params();
    int pdf = 0;
    int rc = is_pdf(path, &p, &pdf);
    return rc ? rc : rsclip_output_check(path, p.overwrite, p.protected_paths, p.n_protected);
}

int rsclip_sheet_write(rsclip_imagery *im, const rsclip_hit *hits, int n, const char *path,
                       const rsclip_sheet_params *params) {
    sheet_job j = {im, hits, n, NULL, 0, 0};
    return sheet_run(&j, path, params);
}

int rsclip_sheet_write_regions(rsclip_imagery *im, const rsclip_region *regions, int n,
                               const rsclip_hit *hits, int n_hits, const char *path,
                               const rsclip_sheet_params *params) {
    sheet_job j = {im, hits, n_hits, regions, n, 1};
    return sheet_run(&j, path, params);
}
