/* Private declarations of the tiler module. GDAL registration and error capture come from the
 * shared GDAL glue (gdal/gdal_util.h). */
#ifndef RSCLIP_TILER_INTERNAL_H
#define RSCLIP_TILER_INTERNAL_H

#include "rsclip/tiler.h"
#include "gdal/gdal_util.h"

#include <gdal.h>
#include <ogr_srs_api.h>

struct rsclip_tiler {
    rsclip_tiler_params p;
    char *path;
    char *resampling;
    GDALDatasetH opened; /* the raster as opened */
    GDALDatasetH warped; /* GCP-georeferenced rasters: warped to their GCP CRS, else NULL */
    GDALDatasetH src;    /* warped ? warped : opened: the source grid */
    int palette;         /* the chosen single band is a colour-table index: expand to RGB */
    GDALDatasetH vrt;    /* resampled view (params.gsd), NULL at native resolution */
    GDALDatasetH ds;     /* what tiles are read from: vrt ? vrt : src */
    GDALDatasetH view;   /* the selected bands of src as a VRT, made when a picture is warped */
    GDALRasterBandH band[3];
    int dup_of[3];      /* channel c is a copy of channel dup_of[c] (-1: read it) */
    int passthrough[3]; /* Byte band without scaling: read straight into the RGB buffer */
    int is_float[3];    /* NaN is invalid */
    double lo[3], k[3]; /* v8 = clamp(round((v - lo) * k)) */
    GDALRasterBandH mask[3];
    int n_mask;
    OGRSpatialReferenceH srs;        /* scene CRS, traditional GIS axis order */
    OGRCoordinateTransformationH ct; /* scene CRS -> WGS84 lon,lat */
    char *wkt, *wkt2;
    rsclip_raster_info info;
    int prepared;   /* statistics computed and tile buffers allocated (rsclip_tiler_prepare) */
    uint8_t *valid; /* [tile_size^2] 1 = valid pixel of the current tile */
    uint8_t *mtmp;  /* [tile_size^2] one mask band's window */
    double *vbuf;   /* [tile_size^2] one band's window as float64 */
};

/* Masks of the selected bands (GDAL mask flags; cheap: no pixel read). */
void rsclip__tiler_setup_masks(rsclip_tiler *t);

/* Resolve the scale mode, compute per-band percentiles when asked (reads a decimated view of the
 * bands and masks), fill info.scale_*, info.scaling_json and the per-channel lo/k. */
int rsclip__tiler_setup_scaling(rsclip_tiler *t, rsclip__gdal_errors *e);

/* Channel c of n values v scaled to 8 bits as a tile is (v8 = clamp(round((v - lo) * k))) into
 * out[i * px_stride + c]; a non-finite value gives 0 and clears valid[i]. Returns 1 when some value
 * was not finite. Shared by tile reads and pictures (tiler_render.c), so both scale alike. */
int rsclip__tiler_scale(const rsclip_tiler *t, int c, const double *v, size_t n, uint8_t *out,
                        int px_stride, uint8_t *valid);

/* Fingerprint of path (see rsclip_file_fingerprint); ds (may be NULL) lists the other files of
 * the dataset. The caller has pushed a GDAL error capture. */
int rsclip__fingerprint(const char *path, GDALDatasetH ds, rsclip_fingerprint *fp);

#endif
