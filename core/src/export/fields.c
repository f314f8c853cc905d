/* The attributes of a result layer -- hits, changes, regions -- in one place: their names, types
 * and order, and how a result fills them. The export (export.c) and the GDAL driver (plugin/)
 * both build their layers from here, so a file written by `rsclip search -o` and a layer opened
 * through GDAL have the same fields. */
#include "rsclip/export.h"
#include "export/export_internal.h"

#include <ogr_api.h>

#include <math.h>
#include <string.h>

static const rsclip_export_field k_hits[] = {
    {"rank", OFTInteger},      {"score", OFTReal},
    {"prob", OFTReal},         {"lon", OFTReal},
    {"lat", OFTReal},          {"scene", OFTString},
    {"xoff", OFTInteger},      {"yoff", OFTInteger},
    {"xsize", OFTInteger},     {"ysize", OFTInteger},
    {"tile_id", OFTInteger64}, {"datetime", OFTString},
    {"stac_item", OFTString},  {"stac_collection", OFTString},
};

static const rsclip_export_field k_changes[] = {
    {"rank", OFTInteger},
    {"rise", OFTReal},
    {"prob", OFTReal},
    {"prob_from", OFTReal},
    {"coverage", OFTReal},
    {"from_tiles", OFTInteger},
    {"tile_id", OFTInteger64},
    {"from_tile_id", OFTInteger64},
    {"datetime", OFTString},
    {"from_datetime", OFTString},
    {"lon", OFTReal},
    {"lat", OFTReal},
    {"scene", OFTString},
    {"from_scene", OFTString},
    {"xoff", OFTInteger},
    {"yoff", OFTInteger},
    {"xsize", OFTInteger},
    {"ysize", OFTInteger},
    {"stac_item", OFTString},
    {"from_stac_item", OFTString},
    {"stac_collection", OFTString},
};

/* the regions of a change query add the last two */
static const rsclip_export_field k_regions[] = {
    {"region", OFTInteger}, {"tiles", OFTInteger},  {"max_prob", OFTReal},
    {"mean_prob", OFTReal}, {"max_score", OFTReal}, {"area_m2", OFTReal},
    {"lon", OFTReal},       {"lat", OFTReal},       {"best_tile", OFTInteger64},
    {"max_rise", OFTReal},  {"mean_rise", OFTReal},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const rsclip_export_field *rsclip_export_fields(rsclip_layer_kind kind, int with_rise, int *n) {
    switch (kind) {
    case RSCLIP_LAYER_CHANGES:
        *n = COUNT(k_changes);
        return k_changes;
    case RSCLIP_LAYER_REGIONS:
        *n = COUNT(k_regions) - (with_rise ? 0 : 2);
        return k_regions;
    case RSCLIP_LAYER_HITS:
    default:
        *n = COUNT(k_hits);
        return k_hits;
    }
}

/* Setters that leave a field alone when the layer does not have it. */
static void set_int(OGRFeatureH f, const char *name, int v) {
    int i = OGR_F_GetFieldIndex(f, name);
    if (i >= 0) OGR_F_SetFieldInteger(f, i, v);
}

static void set_i64(OGRFeatureH f, const char *name, int64_t v) {
    int i = OGR_F_GetFieldIndex(f, name);
    if (i >= 0) OGR_F_SetFieldInteger64(f, i, (GIntBig)v);
}

static void set_real(OGRFeatureH f, const char *name, double v, int have) {
    int i = OGR_F_GetFieldIndex(f, name);
    if (i < 0) return;
    if (have && isfinite(v))
        OGR_F_SetFieldDouble(f, i, v);
    else
        OGR_F_SetFieldNull(f, i);
}

static void set_text(OGRFeatureH f, const char *name, const char *v) {
    int i = OGR_F_GetFieldIndex(f, name);
    if (i < 0) return;
    if (v)
        OGR_F_SetFieldString(f, i, v);
    else
        OGR_F_SetFieldNull(f, i);
}

/* What a hit and the later tile of a change share. */
static void set_tile(OGRFeatureH f, const rsclip_hit *h) {
    int geo = !rsclip__hit_is_pixel(h);
    set_real(f, "prob", h->prob, 1);
    set_real(f, "lon", h->lon, geo);
    set_real(f, "lat", h->lat, geo);
    set_text(f, "scene", h->scene ? h->scene : "");
    set_int(f, "xoff", h->xoff);
    set_int(f, "yoff", h->yoff);
    set_int(f, "xsize", h->xsize);
    set_int(f, "ysize", h->ysize);
    set_i64(f, "tile_id", h->tile_id);
    set_text(f, "datetime", h->datetime);
    set_text(f, "stac_item", h->stac_item);
    set_text(f, "stac_collection", h->stac_collection);
}

void rsclip_export_set_hit(void *feature, const rsclip_hit *h) {
    OGRFeatureH f = feature;
    set_int(f, "rank", h->rank);
    set_real(f, "score", h->score, 1);
    set_tile(f, h);
}

void rsclip_export_set_change(void *feature, const rsclip_change *c) {
    OGRFeatureH f = feature;
    set_int(f, "rank", c->rank);
    set_tile(f, &c->to);
    set_real(f, "rise", c->rise, 1);
    set_real(f, "prob_from", c->prob_from, 1);
    set_real(f, "coverage", c->coverage, 1);
    set_int(f, "from_tiles", c->n_from);
    set_i64(f, "from_tile_id", c->from.tile_id);
    set_text(f, "from_datetime", c->from.datetime);
    set_text(f, "from_scene", c->from.scene ? c->from.scene : "");
    set_text(f, "from_stac_item", c->from.stac_item);
}

void rsclip_export_set_region(void *feature, const rsclip_region *r) {
    OGRFeatureH f = feature;
    set_int(f, "region", r->id);
    set_int(f, "tiles", r->n_tiles);
    set_real(f, "max_prob", r->max_prob, 1);
    set_real(f, "mean_prob", r->mean_prob, 1);
    set_real(f, "max_score", r->max_score, 1);
    set_real(f, "area_m2", r->area_m2, 1);
    set_real(f, "lon", r->lon, 1);
    set_real(f, "lat", r->lat, 1);
    set_i64(f, "best_tile", r->best_tile_id);
    set_real(f, "max_rise", r->max_rise, r->has_rise);
    set_real(f, "mean_rise", r->mean_rise, r->has_rise);
}
