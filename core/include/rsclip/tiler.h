/*
 * rsclip/tiler.h -- cut any GDAL raster into model-sized 8-bit RGB tiles with exact footprints.
 *
 * The tiler knows nothing about the model or the index: it opens one raster (GeoTIFF, COG, VRT
 * mosaic, JPEG2000, /vsicurl/ URL, anything GDAL reads), lays a grid of tile windows over it,
 * and for each window gives the pixel window, the footprint (scene CRS and WGS84 lon/lat) and,
 * on request, the pixels as interleaved 8-bit RGB plus the fraction of valid pixels.
 *
 *     rsclip_tiler_params tp = rsclip_tiler_default_params();   // 256 x 256, no overlap
 *     rsclip_tiler *t;
 *     if (rsclip_tiler_open("scene.tif", &tp, &t) != RSCLIP_OK)
 *         fprintf(stderr, "rsclip: %s\n", rsclip_last_error());  // names the file
 *     const rsclip_raster_info *si = rsclip_tiler_scene(t);        // CRS, size, scaling, checksum
 *     uint8_t *rgb = malloc(rsclip_tiler_buffer_size(t));         // tile_size^2 * 3 bytes
 *     rsclip_tile tile;
 *     for (int64_t i = 0; i < si->n_tiles; i++) {
 *         if (rsclip_tiler_read(t, i, rgb, rsclip_tiler_buffer_size(t), &tile) != RSCLIP_OK) ...
 *         if (tile.skipped) continue;                 // valid_fraction < params.min_valid
 *         // rgb holds tile.out_width x tile.out_height pixels, row stride out_width * 3:
 *         rsclip_preprocess_rgb8(model, rgb, tile.out_width, tile.out_height,
 *                                (size_t)tile.out_width * 3, pixels);
 *         // footprint: tile.ring[0 .. n_ring) lon,lat; centre tile.center_lon/lat
 *     }
 *     free(rgb);
 *     rsclip_tiler_close(t);
 *
 * Design (the choices the index records or relies on):
 *  - Grid: row-major tiles (index = row * tiles_x + col) of tile_size pixels every stride pixels.
 *    A raster edge that cuts a tile does NOT produce a padded tile: the last column (row) of
 *    tiles is shifted back so that it ends exactly at the raster edge and overlaps its neighbour.
 *    Every tile thus shows tile_size x tile_size real pixels; padding would feed the model fake
 *    content and a padded tile's footprint would cover ground it never saw.
 *  - A raster narrower (shorter) than tile_size gives one column (row) whose window is the whole
 *    width (height): the tile is delivered at native size (out_width/out_height < tile_size)
 *    and the model's processor resizes it, exactly what Git-RSCLIP's SiglipProcessor does with
 *    any image. No upsampling happens in the tiler, so no fake pixels exist anywhere.
 *  - Masks: GDAL's mask band of each selected band (nodata, alpha band, internal/.msk mask;
 *    GDALGetMaskBand) decides validity; a pixel is valid when it is valid in every selected
 *    band (mask value != 0: a partially transparent alpha pixel is valid). Non-finite float
 *    values (NaN, +-Inf) are invalid pixels, and they never enter the scaling statistics.
 *    Invalid pixels are filled with 0 (black) in all three channels: deterministic, what every
 *    viewer shows for a nodata collar and what remote-sensing training sets contain around
 *    rotated scenes (a per-band mean would be a flat grey patch the model has never seen).
 *  - min_valid (default 0.5): tiles whose valid fraction is below it are reported as skipped
 *    (still enumerated, with footprint, so callers can count them) and their pixels not read.
 *    One half keeps tiles that are mostly real imagery while dropping collar slivers whose
 *    embedding would mostly describe black fill.
 *  - Alpha trust: an alpha band is trusted (GDAL semantics), with the "non-zero is valid" rule;
 *    a band mislabelled Alpha (e.g. NIR, as in samples/naip_milwaukee...) then only marks its
 *    zero pixels invalid. RSCLIP_TILER_MASK_NO_ALPHA ignores alpha-derived masks.
 *  - Values: 8-bit (Byte) bands are passed through unchanged (exactly the bytes GDAL reads).
 *    Other types are scaled linearly to 0..255 with clamping and rounding to nearest:
 *    v8 = clamp(round((v - lo) / (hi - lo) * 255)). With RSCLIP_TILER_SCALE_AUTO, lo and hi are
 *    per band the pct_low / pct_high (2 / 98) percentiles of the valid pixels of the whole
 *    scene, computed ONCE at open from a nearest-neighbour decimated read of the band and its
 *    mask to at most stats_size x stats_size pixels (GDAL serves it from overviews when there
 *    are some; exact for scenes up to stats_size), percentile interpolated linearly between
 *    order statistics (numpy's default). This deliberately does not use GDAL's approximate
 *    histogram, which samples a sqrt of the blocks or the smallest overview >= 2500 pixels and
 *    ignores alpha/internal masks. The lo/hi used are in rsclip_raster_info. Costs: averaged
 *    overviews pull the percentiles slightly inwards; a large raster WITHOUT overviews has every
 *    block read once for the decimated read (memory stays bounded; build overviews for speed).
 *  - GSD: params.gsd > 0 resamples to that ground resolution (metres, measured on the ground at
 *    the scene centre through PROJ, so it is right for degrees and Web Mercator too) through a
 *    GDAL VRT (gdal_translate -of VRT -outsize -r), which reads overviews when downsampling.
 *    Windows then refer to the resampled grid (width/height/geotransform of the scene info);
 *    tile.src_window gives the same window in source pixels.
 *  - Bands: params.bands, else red/green/blue by colour interpretation, else the first three
 *    non-alpha bands, else the first band replicated; a single palette (colour-table) band is
 *    expanded to RGB through a VRT (gdal_translate -expand rgb) and passed through.
 *  - Rasters georeferenced only by ground control points are warped to the GCPs' CRS
 *    (GDALAutoCreateWarpedVRT, bilinear); "source" then means that warped grid.
 *  - Checksum (rsclip_file_fingerprint): 64-bit FNV-1a over the file size, the first and the
 *    last MiB of the main file, and the name, size and mtime of every other file GDAL lists for
 *    the dataset (VRT sources, .ovr, .msk; not .aux.xml, a metadata cache). Cost: two 1 MiB
 *    reads and a few stats, whatever the raster size (range requests on /vsicurl/). An edit in
 *    the middle of a large file that keeps its size is not seen: compare mtime_ns as well.
 *
 * Threads: a tiler wraps one GDAL dataset handle and is NOT thread-safe: use it from one thread
 * at a time (it may be opened on one thread and read on another, e.g. a reader thread feeding an
 * encoder thread). Several tilers, even on the same file, may be used concurrently. Memory is
 * bounded whatever the raster size: a read touches only its window (plus GDAL's block cache,
 * process-wide, see rsclip_tiler_set_cache_max); open reads at most stats_size^2 pixels per band.
 * All GDAL errors are captured (never printed) and returned as one rsclip error naming the file.
 */
#ifndef RSCLIP_TILER_H
#define RSCLIP_TILER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP_TILER_MAX_DENSIFY 32
/* Default limit on the windows of one scene (rsclip_tiler_params.max_tiles): 100 million tiles of
 * 256 px at 1 m is 6.5 million km2; a larger "scene" is almost surely a broken header. */
#define RSCLIP_TILER_MAX_TILES ((int64_t)100000000)
/* Footprint points at most this many degrees past +-180 / +-90 are clamped onto the edge (pixel
 * edges of global EPSG:4326 rasters overshoot by half a pixel); further is an error. */
#define RSCLIP_TILER_LONLAT_SLACK 1.0
/* Points of a closed WGS84 ring: 4 edges x densify points + the closing point. */
#define RSCLIP_TILER_MAX_RING (4 * RSCLIP_TILER_MAX_DENSIFY + 1)

typedef enum rsclip_tiler_scale_mode {
    RSCLIP_TILER_SCALE_AUTO = 0,      /* Byte: NONE; other types: PERCENTILE */
    RSCLIP_TILER_SCALE_NONE = 1,      /* values rounded and clamped to 0..255 (Byte unchanged) */
    RSCLIP_TILER_SCALE_RANGE = 2,     /* scale_min[c]..scale_max[c] -> 0..255 */
    RSCLIP_TILER_SCALE_PERCENTILE = 3 /* per band pct_low..pct_high percentiles -> 0..255 */
} rsclip_tiler_scale_mode;

typedef enum rsclip_tiler_mask_mode {
    RSCLIP_TILER_MASK_AUTO = 0,     /* GDAL's mask band: nodata, alpha, internal/.msk masks */
    RSCLIP_TILER_MASK_NO_ALPHA = 1, /* as AUTO but masks derived from an alpha band are ignored */
    RSCLIP_TILER_MASK_NONE = 2      /* every pixel valid (non-finite floats still invalid) */
} rsclip_tiler_mask_mode;

typedef enum rsclip_georef {
    RSCLIP_GEOREF_NONE = 0,  /* no geotransform: pixel coordinates (x right, y down) */
    RSCLIP_GEOREF_LOCAL = 1, /* a geotransform but no CRS: no lon/lat */
    RSCLIP_GEOREF_CRS = 2    /* geotransform + CRS: lon/lat footprints */
} rsclip_georef;

typedef struct rsclip_tiler_params {
    int tile_size;    /* window side in (resampled) pixels = model input size; default 256 */
    int stride;       /* distance between windows; 0 (default) = tile_size, no overlap */
    int n_bands;      /* 0 (default) = from colour interpretation, else 1 (replicated) or 3 */
    int bands[3];     /* 1-based source band numbers when n_bands > 0 */
    double min_valid; /* tiles with a valid fraction below this are skipped; default 0.5 */
    rsclip_tiler_scale_mode scale_mode; /* default AUTO */
    double scale_min[3]; /* RANGE: per output channel (set all three alike for "all bands") */
    double scale_max[3];
    double pct_low;         /* PERCENTILE/AUTO: default 2 */
    double pct_high;        /* default 98 */
    int stats_size;         /* max side of the decimated read for percentiles; default 1024 */
    double gsd;             /* target ground resolution in metres; 0 (default) = native */
    const char *resampling; /* GDAL method for gsd ("average", "cubic", ...); NULL = average
                               when downsampling, cubic when upsampling. Copied at open. */
    rsclip_tiler_mask_mode mask_mode; /* default AUTO */
    int allow_pixel_coords; /* accept rasters without CRS (no lon/lat footprints); default 0 */
    int densify;            /* WGS84 ring points per edge, 1..RSCLIP_TILER_MAX_DENSIFY; default 8 */
    int64_t max_tiles;      /* refuse scenes with more windows; 0 = RSCLIP_TILER_MAX_TILES */
    int defer_stats;        /* 1: open reads no pixels (grid, bands, CRS, fingerprint only); scaling
                               statistics and buffers come with rsclip_tiler_prepare or the first read.
                               Default 0: open prepares at once. */
} rsclip_tiler_params;

rsclip_tiler_params rsclip_tiler_default_params(void);

/* The settings that decide a scene's tiles, as canonical JSON (same settings, same text): what
 * the index records per scene, so that a run with other settings re-indexes the scene.
 * {"tile_size":256,"stride":256,"bands":"auto","scale":"auto","pct":"2,98","gsd":"native",
 *  "resampling":"auto","min_valid":0.5,"mask":"auto","densify":8,"stats_size":1024}
 * (stride 0 is written as the tile size). Writes at most cap bytes with the NUL;
 * RSCLIP_ERR_INVALID_ARG if it does not fit (RSCLIP_TILER_SETTINGS_MAX always does). */
#define RSCLIP_TILER_SETTINGS_MAX 512
int rsclip_tiler_settings(const rsclip_tiler_params *p, char *buf, size_t cap);

/* Parameters back from a settings text (what a worker indexing from a plan file uses): every
 * key must be present and valid; RSCLIP_ERR_FORMAT otherwise. Fields a settings text does not
 * hold (allow_pixel_coords, max_tiles, defer_stats) keep the defaults. */
int rsclip_tiler_settings_parse(const char *text, rsclip_tiler_params *out);

/* The band and scale options as text, one grammar for the command line and the settings texts:
 * bands "auto" or "R,G,B" or one band "B" (1-based, up to 65535); scale "auto", "none",
 * "percentile", "MIN,MAX" (all bands) or "MIN1,MAX1,MIN2,MAX2,MIN3,MAX3" (MAX > MIN each). Set
 * the fields of p they decide; RSCLIP_ERR_INVALID_ARG (p unchanged) otherwise. */
int rsclip_tiler_parse_bands(const char *text, rsclip_tiler_params *p);
int rsclip_tiler_parse_scale(const char *text, rsclip_tiler_params *p);

/* What differs between two settings texts, for people: "stride 256 → 128, bands auto → 1,2,3"
 * (keys in the order of b). Returns the number of differing keys (0: same), or a negative
 * status when a text is not a settings object. buf may be NULL. */
int rsclip_tiler_settings_diff(const char *a, const char *b, char *buf, size_t cap);

/* Cheap change detection for the index (see "Checksum" above); fields map one to one onto the
 * index's scene (file_size, mtime_ns, checksum text). size: -1 if the path is not a file (e.g. a
 * GDAL connection string). mtime_ns: nanoseconds since the epoch (local files; whole seconds
 * for /vsi... files; 0 if unknown). */
typedef struct rsclip_fingerprint {
    int64_t size;
    int64_t mtime_ns;
    uint64_t checksum;
    char checksum_hex[17]; /* checksum as 16 lower-case hex digits */
    char legacy_hex[17];   /* the checksum rsclip wrote before index schema 2 (other files by
                              name, size and whole-second mtime only, VRTs one level deep), to
                              recognise scenes indexed then */
} rsclip_fingerprint;

/* Fingerprint a raster without computing statistics (opens the header to list its files).
 * Errors: RSCLIP_ERR_NOT_FOUND, RSCLIP_ERR_IO, RSCLIP_ERR_FORMAT, naming the path. */
int rsclip_file_fingerprint(const char *path, rsclip_fingerprint *out);

/* Everything known about the opened scene. Strings are owned by the tiler, valid until close. */
typedef struct rsclip_raster_info {
    const char *path;   /* as given to rsclip_tiler_open */
    const char *driver; /* GDAL driver short name, e.g. "GTiff", "VRT" */
    int src_width, src_height, src_bands;
    const char *data_type; /* GDAL name of the selected bands' type, e.g. "Byte", "UInt16" */
    rsclip_georef georef;
    const char *crs_wkt;  /* WKT1 (as GeoPackage's definition column wants); "" if none */
    const char *crs_wkt2; /* WKT2:2019; "" if none */
    int epsg;             /* EPSG code when the CRS is (or matches exactly) one; else 0 */
    double src_geotransform[6];
    /* The tiling grid: equals the source unless params.gsd resampled it. Footprints follow
     * geotransform: X = gt[0] + px * gt[1] + py * gt[2], Y = gt[3] + px * gt[4] + py * gt[5]. */
    int width, height;
    double geotransform[6];
    double native_gsd;   /* metres per source pixel at the scene centre (0 if unknown) */
    double gsd_x, gsd_y; /* the same along a row and along a column of source pixels */
    double gsd;          /* metres per grid pixel (= native_gsd unless resampled) */
    int n_bands;         /* 1 (replicated to R, G, B) or 3 */
    int bands[3];        /* 1-based source bands feeding R, G, B */
    int bands_assumed;   /* 1: more than three bands and no red/green/blue colour interpretation:
                            the first three were taken (callers should warn: give bands) */
    char bands_text[48]; /* "3,2,1" (or "1" for a replicated band), for the index */
    rsclip_tiler_scale_mode scale_mode; /* applied: NONE, RANGE or PERCENTILE (never AUTO) */
    double scale_min[3], scale_max[3];  /* per output channel, in source units (RANGE/PERCENTILE) */
    char scaling_json[512]; /* the same for the index, e.g. {"mode":"percentile","pct":[2,98],
                               "min":[22,52,30],"max":[128,122,103],"fill":0}; mode "none" for
                               8-bit pass-through */
    int mask_flags;         /* GDAL mask flags of the first selected band (0x01 ALL_VALID, 0x02
                               PER_DATASET, 0x04 ALPHA, 0x08 NODATA); 0x01 after MASK_NONE */
    rsclip_fingerprint fingerprint;
    /* The acquisition time the raster's metadata carries (GDAL metadata, .aux.xml sidecars
     * included: IMAGERY ACQUISITIONDATETIME, ACQUISITIONDATETIME, DATE_ACQUIRED (+
     * SCENE_CENTER_TIME), SENSING_TIME, DATATAKE_1_DATATAKE_SENSING_START, PRODUCT_START_TIME,
     * ACQUISITION_DATE, DATETIME, TIFFTAG_DATETIME, in that order), as ISO 8601 UTC
     * (rsclip_time_format), with the key it came from; "" when none parses. */
    char datetime[64];
    char datetime_key[64];
    int tile_size, stride;
    int tiles_x, tiles_y;
    int64_t n_tiles; /* tiles_x * tiles_y */
} rsclip_raster_info;

typedef struct rsclip_tile {
    int64_t index; /* row * tiles_x + col */
    int col, row;
    int xoff, yoff, xsize, ysize; /* window in grid pixels (source pixels at native gsd) */
    double src_window[4];         /* the same window in source pixels: xoff, yoff, xsize, ysize */
    int out_width, out_height;    /* pixels written by rsclip_tiler_read (= xsize, ysize) */
    double corners[4][2];         /* x,y in the scene CRS: upper-left, upper-right,
                                     lower-right, lower-left corner of the window */
    int has_lonlat;               /* 0 for rasters without CRS (or a failed transform) */
    int n_ring;                   /* closed ring: ring[n_ring - 1] == ring[0] */
    double ring[RSCLIP_TILER_MAX_RING][2]; /* lon,lat (traditional GIS order), densified edges,
                                              UL -> LL -> LR -> UR -> UL (counter-clockwise on a
                                              north-up image, as OGC/GeoJSON want) */
    double center_lon, center_lat;         /* window centre through PROJ */
    double valid_fraction; /* 0..1 after rsclip_tiler_read; -1 from rsclip_tiler_tile */
    int skipped;           /* valid_fraction < min_valid: rgb was not written */
} rsclip_tile;

typedef struct rsclip_tiler rsclip_tiler;

/* Open a raster and prepare its grid, masks, scaling statistics and footprint transform.
 * params may be NULL (defaults). On success *out must be closed with rsclip_tiler_close.
 * Errors (each message names the path): RSCLIP_ERR_INVALID_ARG (bad params, band out of range),
 * RSCLIP_ERR_NOT_FOUND (no such file), RSCLIP_ERR_FORMAT (GDAL cannot open it: corrupt or
 * unknown format), RSCLIP_ERR_UNSUPPORTED (no georeferencing without allow_pixel_coords,
 * complex data, a degenerate geotransform (zero pixel size), more than max_tiles windows),
 * RSCLIP_ERR_GDAL (GDAL failed while reading), RSCLIP_ERR_NOMEM. */
int rsclip_tiler_open(const char *path, const rsclip_tiler_params *params, rsclip_tiler **out);
void rsclip_tiler_close(rsclip_tiler *t); /* NULL-safe */

/* Compute the scaling statistics and allocate the tile buffers, if open did not (defer_stats).
 * Idempotent; rsclip_tiler_read calls it. Until then the scaling fields of the scene info are
 * not set. */
int rsclip_tiler_prepare(rsclip_tiler *t);

/* Scene description, owned by the tiler (valid until close). */
const rsclip_raster_info *rsclip_tiler_scene(const rsclip_tiler *t);

/* Bytes an RGB tile buffer needs: tile_size * tile_size * 3. */
size_t rsclip_tiler_buffer_size(const rsclip_tiler *t);

/* Geometry of tile i (window, footprints) without reading pixels. valid_fraction = -1.
 * RSCLIP_ERR_UNSUPPORTED when PROJ cannot transform the footprint of a georeferenced scene to
 * WGS84, or it lies more than RSCLIP_TILER_LONLAT_SLACK degrees outside the world (points
 * within that slack are clamped onto +-180 / +-90). */
int rsclip_tiler_tile(rsclip_tiler *t, int64_t i, rsclip_tile *tile);

/* Geometry of tile i plus its pixels: the mask is read first; if valid_fraction < min_valid the
 * tile is skipped (tile->skipped = 1, rgb contents unspecified). Otherwise rgb receives out_width x
 * out_height pixels of interleaved 8-bit R,G,B, tightly packed (stride out_width * 3), invalid
 * pixels filled with 0. rgb_size must be >= rsclip_tiler_buffer_size(t). A read error (corrupt
 * block, network) returns RSCLIP_ERR_GDAL naming the file and the tile; the tiler stays usable. */
int rsclip_tiler_read(rsclip_tiler *t, int64_t i, uint8_t *rgb, size_t rgb_size, rsclip_tile *tile);

/* ---- pictures and copies of the scene (for people, not for the model) ------------------------ */

/* Draw part of the scene as 8-bit RGBA with the tiler's bands, masks and scaling (the values its
 * tiles hold), resampled by GDAL: previews, web map tiles, views of merged regions.
 *  - crs NULL: area = {xoff, yoff, xsize, ysize}, a window in grid pixels (fractional allowed, it
 *    may reach past the scene: those pixels are transparent), read at out_w x out_h. With
 *    resampling "near" and out_w x out_h = the window's size, a tile's window gives exactly the
 *    RGB of rsclip_tiler_read.
 *  - crs set (e.g. "EPSG:3857": anything OSRSetFromUserInput takes): area = {min x, min y, max x,
 *    max y} in that CRS; the selected bands of the source (native resolution; GDAL takes overviews
 *    when zoomed out) are warped into it with GDALWarp, which honours nodata and mask bands.
 *    RSCLIP_ERR_UNSUPPORTED for a scene without CRS.
 * resampling: a GDAL method name ("near", "bilinear", "cubic", "average", ...; NULL = bilinear).
 * rgba: out_w * out_h * 4 bytes (rgba_size), sides 1..8192; alpha 255 where a pixel is valid
 * (every mask band valid, values finite), else the pixel is 0,0,0,0. *n_valid (may be NULL): the
 * valid pixels. Computes the scaling statistics first if open deferred them. */
int rsclip_tiler_render(rsclip_tiler *t, const char *crs, const double area[4], int out_w,
                        int out_h, const char *resampling, uint8_t *rgba, size_t rgba_size,
                        int64_t *n_valid);

/* Copy a window of the source raster (source pixels: tile.src_window; fractional allowed) with all
 * its bands, data type, CRS, nodata and mask to a new raster file through GDAL (format: a GDAL
 * driver name, NULL = "GTiff"). The copy is round(xsize) x round(ysize) pixels and its geotransform
 * makes its bounds exactly the window's ground, so a chip covers exactly a tile's footprint (also
 * after a gsd, where the window is fractional; whole windows copy the pixels unchanged). "Source"
 * is the raster as opened (after a GCP warp). The window must lie inside the source
 * (RSCLIP_ERR_INVALID_ARG). path is written as GDAL writes it: the caller chooses a fresh name. */
int rsclip_tiler_save_window(rsclip_tiler *t, const double src_window[4], const char *path,
                             const char *format);

/* Set GDAL's process-wide block cache limit in bytes (GDAL_CACHEMAX); <= 0 leaves it alone.
 * Call once at start-up, before opening tilers. */
void rsclip_tiler_set_cache_max(int64_t bytes);

/* Expand command-line inputs into a sorted (strcmp), de-duplicated list of rasters:
 *  - a folder is searched recursively for files whose extension (case-insensitive) is one of
 *    .tif .tiff .vrt .jp2 .j2k .img .png .jpg .jpeg .webp .ntf .nitf .bil;
 *    entries whose name starts with '.' are skipped and symbolic links to folders are not
 *    followed (no cycles);
 *  - a file is taken whatever its extension (the user named it);
 *  - /vsi... paths and GDAL connection strings are kept as given; http://, https:// and
 *    ftp:// URLs get the /vsicurl/ prefix;
 *  - list_file (may be NULL): one input per line, leading/trailing blanks trimmed, empty lines
 *    and lines starting with '#' ignored; relative entries are relative to the list file's
 *    folder; entries may themselves be folders.
 * Local paths are made absolute and canonical (realpath), so the same file named twice appears
 * once. *paths receives n_paths strings (the array and the strings are freed together with
 * rsclip_inputs_free). A missing input is an error (RSCLIP_ERR_NOT_FOUND naming it); an empty
 * result is not. */
int rsclip_inputs_expand(const char *const *inputs, int n_inputs, const char *list_file,
                         char ***paths, int *n_paths);
void rsclip_inputs_free(char **paths, int n_paths); /* NULL-safe */

/* The same, but an input that cannot be used (missing path, unreadable folder or subfolder,
 * unreadable list file) is passed to on_error(input, message, user) and skipped instead of failing
 * the expansion: a run over many inputs goes on without it. Out of memory still fails. */
typedef void (*rsclip_inputs_error_fn)(const char *input, const char *message, void *user);
int rsclip_inputs_expand_ex(const char *const *inputs, int n_inputs, const char *list_file,
                            rsclip_inputs_error_fn on_error, void *user, char ***paths,
                            int *n_paths);

/* 1 if name ends with one of the raster extensions listed above, else 0. */
int rsclip_inputs_is_raster_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
