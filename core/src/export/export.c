/* Hits and regions to OGR data sources; merging touching hits into regions. Where an output may
 * be written is decided here (plan_output) after the rules of rsclip/export.h; the file-system
 * side (protected paths, the temporary folder and the rename) is in output.c. */
#include "base/base.h"
#include "rsclip/export.h"
#include "export/export_internal.h"
#include "export/output_internal.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

rsclip_export_params rsclip_export_default_params(void) {
    rsclip_export_params p;
    memset(&p, 0, sizeof p);
    p.format = "GeoJSON";
    return p;
}

static const struct {
    const char *alias, *driver, *ext;
} k_formats[] = {
    {"geojson", "GeoJSON", ".geojson"},
    {"json", "GeoJSON", ".json"},
    {"gpkg", "GPKG", ".gpkg"},
    {"csv", "CSV", ".csv"},
    {"kml", "KML", ".kml"},
    {"flatgeobuf", "FlatGeobuf", ".fgb"},
    {"fgb", "FlatGeobuf", ".fgb"},
    {"shp", "ESRI Shapefile", ".shp"},
    {"shapefile", "ESRI Shapefile", ""},
};

static int is_vector_writer(GDALDriverH d) {
    return d && GDALGetMetadataItem(d, GDAL_DCAP_VECTOR, NULL) &&
           GDALGetMetadataItem(d, GDAL_DCAP_CREATE, NULL);
}

/* GDAL's own answer: the vector drivers that can create files and list the name's extension
 * (the longest matching extension wins: "x.shp.zip" is a zipped shapefile, not a zip). */
static const char *driver_by_extension(const char *name) {
    const char *best = NULL;
    size_t best_len = 0, n = strlen(name);
    for (int i = 0; i < GDALGetDriverCount(); i++) {
        GDALDriverH d = GDALGetDriver(i);
        if (!is_vector_writer(d)) continue;
        const char *exts = GDALGetMetadataItem(d, GDAL_DMD_EXTENSIONS, NULL);
        if (!exts) exts = GDALGetMetadataItem(d, GDAL_DMD_EXTENSION, NULL);
        char **list = exts ? CSLTokenizeString(exts) : NULL;
        for (int k = 0; list && list[k]; k++) {
            size_t m = strlen(list[k]);
            if (m == 0 || m + 1 > n || m <= best_len) continue;
            if (name[n - m - 1] == '.' && strcasecmp(name + n - m, list[k]) == 0) {
                best = GDALGetDriverShortName(d);
                best_len = m;
            }
        }
        CSLDestroy(list);
    }
    return best;
}

const char *rsclip_export_format_from_path(const char *path) {
    const char *slash = path ? strrchr(path, '/') : NULL;
    const char *name = slash ? slash + 1 : path;
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (!dot) return NULL;
    for (size_t i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
        if (k_formats[i].ext[0] && strcasecmp(dot, k_formats[i].ext) == 0)
            return k_formats[i].driver;
    rsclip__gdal_init();
    return driver_by_extension(name);
}

static const char *driver_name(const char *format) {
    for (size_t i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
        if (strcasecmp(format, k_formats[i].alias) == 0) return k_formats[i].driver;
    return format;
}

OGRSpatialReferenceH rsclip__export_srs(const char *def) {
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (OSRSetFromUserInput(srs, def) != OGRERR_NONE) {
        OSRDestroySpatialReference(srs);
        return NULL;
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    return srs;
}

OGRGeometryH rsclip__hit_lonlat_polygon(const rsclip_hit *h) {
    if (!h->footprint || h->n_footprint < 3) return NULL;
    return rsclip__ring_polygon(h->footprint, h->n_footprint);
}

/* What one export writes: its layer's default name, geometry type, fields, and the field that
 * names KML placemarks. */
typedef struct layer_spec {
    const char *default_name;
    OGRwkbGeometryType gtype;
    const char *name_field;
    const rsclip_export_field *fields; /* rsclip_export_fields (fields.c) */
    int n_fields;
} layer_spec;

/* Where an output goes (see rsclip/export.h):
 *   OUT_STDOUT  streamed to /vsistdout/;
 *   OUT_FILE    a new file (or, with overwrite, a replacement) written in a temporary folder
 *               beside it, read back, and renamed into place;
 *   OUT_LAYER   a layer added to (or replacing its namesake in) an existing multi-layer file,
 *               in one dataset transaction. */
typedef enum { OUT_STDOUT, OUT_FILE, OUT_LAYER } out_mode;

typedef struct out_plan {
    out_mode mode;
    GDALDriverH drv;
    const char *dname;
    const char *layer; /* layer to write */
    int replace_layer; /* OUT_LAYER: an existing layer of that name is deleted first */
    char **old_files;  /* OUT_FILE replacing a file: the old dataset's files (same driver),
                          stale SQLite companions; removed after the new files are in place */
    rsclip__dest dest; /* OUT_FILE, OUT_LAYER */
} out_plan;

static void plan_free(out_plan *pl) {
    CSLDestroy(pl->old_files);
    pl->old_files = NULL;
    rsclip__dest_free(&pl->dest);
}

/* Look, read-only, at the existing file: does it open with the output's driver as a dataset
 * with (native: SQLite's) transactions, and has it the layer already? Its own error scope: a file
 * that does not open is an answer here, not an error. Emulated transactions (FileGDB's copy of
 * the folder) are not enough: what such a driver writes when closed after a failure is not
 * known to be undone. */
static void probe_existing(out_plan *pl, int *capable, int *has_layer) {
    *capable = *has_layer = 0;
    rsclip__gdal_errors quiet;
    rsclip__gdal_errors_push(&quiet);
    const char *const allowed[] = {pl->dname, NULL};
    GDALDatasetH ds =
        GDALOpenEx(pl->dest.real, GDAL_OF_VECTOR | GDAL_OF_READONLY, allowed, NULL, NULL);
    if (ds) {
        *capable = GDALDatasetTestCapability(ds, ODsCTransactions);
        *has_layer = GDALDatasetGetLayerByName(ds, pl->layer) != NULL;
        if (!*capable && !pl->dest.is_dir) pl->old_files = GDALGetFileList(ds);
        GDALClose(ds);
    }
    rsclip__gdal_errors_pop(&quiet);
}

/* Decide where and how path is written, or refuse. Writes nothing. */
static int plan_output(const char *path, const rsclip_export_params *p, const layer_spec *ls,
                       out_plan *pl) {
    memset(pl, 0, sizeof *pl);
    int to_stdout = !path || strcmp(path, "-") == 0;
    const char *format = p->format;
    if (!format) format = to_stdout ? "GeoJSON" : rsclip_export_format_from_path(path);
    if (!format) format = "GeoJSON";
    pl->dname = driver_name(format);
    pl->layer = p->layer_name && p->layer_name[0] ? p->layer_name : ls->default_name;
    const char *shown = to_stdout ? "<stdout>" : path;
    pl->drv = GDALGetDriverByName(pl->dname);
    if (!is_vector_writer(pl->drv))
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: output format '%s' is not an OGR vector format that can be "
                             "created (try GeoJSON, GPKG, CSV, KML, FlatGeobuf, ESRI Shapefile)",
                             shown, format);
    pl->dname = GDALGetDriverShortName(pl->drv);
    if (to_stdout) {
        pl->mode = OUT_STDOUT;
        if (strcmp(pl->dname, "GeoJSON") != 0 && strcmp(pl->dname, "CSV") != 0)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "format %s cannot be written to stdout: give an output file (-o)",
                                 pl->dname);
        return RSCLIP_OK;
    }
    int rc = rsclip__dest_resolve(path, &pl->dest);
    if (!rc) rc = rsclip__dest_check_protected(&pl->dest, p->protected_paths, p->n_protected);
    /* Before any open: opening a FIFO would block. */
    if (!rc && pl->dest.is_special) rc = rsclip__dest_check_replaceable(&pl->dest);
    if (rc || !pl->dest.exists) {
        pl->mode = OUT_FILE;
        return rc;
    }
    int capable, has_layer;
    probe_existing(pl, &capable, &has_layer);
    if (capable) {
        pl->mode = OUT_LAYER;
        pl->replace_layer = has_layer;
        if (has_layer && !p->overwrite)
            return rsclip__error(RSCLIP_ERR_EXISTS,
                                 "%s: has a layer '%s' already; give --overwrite to replace that "
                                 "layer (the other layers are kept), or -nln NAME to add another",
                                 path, pl->layer);
        if (!has_layer && !p->overwrite && !(p->layer_name && p->layer_name[0]))
            return rsclip__error(RSCLIP_ERR_EXISTS,
                                 "%s: exists; give -nln NAME to add a layer to it, or --overwrite "
                                 "to write its layer '%s' (the other layers are kept)",
                                 path, pl->layer);
        return RSCLIP_OK;
    }
    pl->mode = OUT_FILE;
    if (pl->dest.is_dir)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: is a folder that does not open as a %s dataset taking new "
                             "layers; rsclip never replaces a folder",
                             path, pl->dname);
    if (!p->overwrite)
        return rsclip__error(RSCLIP_ERR_EXISTS, "%s: exists; give --overwrite to replace it%s",
                             path,
                             p->layer_name && p->layer_name[0]
                                 ? " (-nln adds a layer only to a file of a multi-layer format "
                                   "with transactions, e.g. GeoPackage)"
                                 : "");
    /* A SQLite file replaced whole (the old one did not open as one) must not inherit the old
     * file's -wal or hot -journal: SQLite would replay them into the new file. */
    if (strcmp(pl->dname, "GPKG") == 0 || strcmp(pl->dname, "SQLite") == 0) {
        static const char *const k_sqlite[] = {"-wal", "-shm", "-journal"};
        for (size_t i = 0; i < sizeof k_sqlite / sizeof k_sqlite[0]; i++)
            pl->old_files =
                CSLAddString(pl->old_files, CPLSPrintf("%s%s", pl->dest.real, k_sqlite[i]));
    }
    return RSCLIP_OK;
}

/* An output being written: data source, layer, optional reprojection. */
typedef struct out_ctx {
    out_plan plan;
    GDALDatasetH ds;
    OGRLayerH layer;
    OGRCoordinateTransformationH ct; /* WGS84 -> t_srs, NULL when writing WGS84 */
    OGRSpatialReferenceH wgs84, dst, local;
    OGRSpatialReferenceH layer_srs; /* the layer's (one of the three, borrowed); NULL: none */
    int pixel;                      /* footprints in pixel coordinates: no CRS, no reprojection */
    const char *path;
    char *tmpdir;            /* OUT_FILE: the private folder the file is written in */
    int in_tx;               /* OUT_LAYER: a transaction is open */
    int overwrite;           /* params.overwrite */
    const char *const *prot; /* params.protected_paths */
    int n_prot;
    rsclip__gdal_errors *err; /* GDAL failures of this export (the caller's scope) */
    OGRFeatureDefnH canon;    /* the fields under their own names (rsclip_export_set_*) */
    int *map;                 /* canon field i -> layer field map[i] */
} out_ctx;

/* Release everything; an unfinished output is abandoned: transaction rolled back, temporary
 * folder removed. */
static void out_close(out_ctx *o) {
    if (o->in_tx) GDALDatasetRollbackTransaction(o->ds);
    if (o->ds) GDALClose(o->ds);
    rsclip__tmpdir_remove(o->tmpdir);
    free(o->tmpdir);
    if (o->ct) OCTDestroyCoordinateTransformation(o->ct);
    if (o->wgs84) OSRDestroySpatialReference(o->wgs84);
    if (o->dst) OSRDestroySpatialReference(o->dst);
    if (o->local) OSRDestroySpatialReference(o->local);
    if (o->canon) OGR_FD_Release(o->canon);
    free(o->map);
    plan_free(&o->plan);
    memset(o, 0, sizeof *o);
}

static int out_fail(out_ctx *o, int code, const char *what) {
    int rc =
        rsclip__error(code, "%s: %s: %s", o->path, what, rsclip__gdal_msg(o->err, "unknown error"));
    out_close(o);
    return rc;
}

/* Formats whose coordinates are WGS84 lon/lat by definition: footprints in pixels have no place
 * there. */
static int lonlat_only(const char *dname) {
    return strcmp(dname, "KML") == 0 || strcmp(dname, "LIBKML") == 0 || strcmp(dname, "GPX") == 0;
}

/* A layer in pixel coordinates has no CRS. GeoPackage stores "no CRS" as a reference too: its
 * "Undefined Cartesian SRS" (srs_id -1); left without one, GDAL files the layer under the
 * "Undefined geographic SRS" (srs_id 0), i.e. as lon/lat. */
static int out_srs_pixel(out_ctx *o, const rsclip_export_params *p) {
    if (p->t_srs && p->t_srs[0])
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: the hits are in pixel coordinates (their scenes were indexed "
                             "without a CRS): they cannot be reprojected to '%s'; export them "
                             "without a target SRS",
                             o->path, p->t_srs);
    if (lonlat_only(o->plan.dname))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: %s holds WGS84 lon/lat only, and the hits are in pixel "
                             "coordinates (their scenes have no CRS): use GeoJSON, GPKG, CSV, "
                             "FlatGeobuf or a shapefile",
                             o->path, o->plan.dname);
    if (strcmp(o->plan.dname, "GPKG") == 0) {
        o->local = rsclip__export_srs("LOCAL_CS[\"Undefined Cartesian SRS\"]");
        if (!o->local) return rsclip__error(RSCLIP_ERR_GDAL, "%s: no Cartesian SRS", o->path);
    }
    o->layer_srs = o->local;
    return RSCLIP_OK;
}

static int out_srs(out_ctx *o, const rsclip_export_params *p) {
    if (o->pixel) return out_srs_pixel(o, p);
    o->wgs84 = rsclip__export_srs("EPSG:4326");
    o->layer_srs = o->wgs84;
    if (!p->t_srs || !p->t_srs[0]) return RSCLIP_OK;
    o->dst = rsclip__export_srs(p->t_srs);
    if (!o->dst)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: invalid target SRS '%s'", o->path,
                             p->t_srs);
    o->layer_srs = o->dst;
    if (OSRIsSame(o->dst, o->wgs84)) return RSCLIP_OK;
    o->ct = OCTNewCoordinateTransformation(o->wgs84, o->dst);
    if (!o->ct)
        return rsclip__error(RSCLIP_ERR_GDAL, "cannot transform EPSG:4326 to '%s': %s", p->t_srs,
                             rsclip__gdal_msg(o->err, "no transformation"));
    return RSCLIP_OK;
}

/* Open the data source the plan names: a new one (stdout, or in the temporary folder), or the
 * existing file in update mode inside a transaction, its old layer of that name deleted. */
static int out_open_ds(out_ctx *o, const layer_spec *ls) {
    out_plan *pl = &o->plan;
    if (pl->mode == OUT_LAYER) {
        const char *const allowed[] = {pl->dname, NULL};
        o->ds = GDALOpenEx(pl->dest.real, GDAL_OF_VECTOR | GDAL_OF_UPDATE, allowed, NULL, NULL);
        if (!o->ds) return out_fail(o, RSCLIP_ERR_IO, "cannot open for update");
        if (!GDALDatasetTestCapability(o->ds, ODsCCreateLayer) ||
            (pl->replace_layer && !GDALDatasetTestCapability(o->ds, ODsCDeleteLayer)))
            return out_fail(o, RSCLIP_ERR_UNSUPPORTED, "cannot add or replace a layer in it");
        if (GDALDatasetStartTransaction(o->ds, FALSE) != OGRERR_NONE)
            return out_fail(o, RSCLIP_ERR_IO, "cannot start a transaction");
        o->in_tx = 1;
        for (int i = 0; pl->replace_layer && i < GDALDatasetGetLayerCount(o->ds); i++) {
            OGRLayerH l = GDALDatasetGetLayer(o->ds, i);
            if (strcasecmp(OGR_L_GetName(l), pl->layer) != 0) continue;
            if (GDALDatasetDeleteLayer(o->ds, i) != OGRERR_NONE)
                return out_fail(o, RSCLIP_ERR_IO, "cannot delete the old layer");
            break;
        }
        return RSCLIP_OK;
    }
    char *target = NULL;
    if (pl->mode == OUT_FILE) {
        int rc = rsclip__tmpdir_new(&pl->dest, &o->tmpdir);
        if (rc) {
            out_close(o);
            return rc;
        }
        target = CPLStrdup(CPLFormFilename(o->tmpdir, pl->dest.name, NULL));
    }
    char **dsco = NULL;
    /* KML placemarks are named from the rank (region number) instead of left unnamed. */
    if (strcmp(pl->dname, "KML") == 0) dsco = CSLSetNameValue(dsco, "NameField", ls->name_field);
    o->ds = GDALCreate(pl->drv, target ? target : "/vsistdout/", 0, 0, 0, GDT_Unknown, dsco);
    CSLDestroy(dsco);
    CPLFree(target);
    if (!o->ds) return out_fail(o, RSCLIP_ERR_IO, "cannot create the output");
    return RSCLIP_OK;
}

static int out_open(out_ctx *o, rsclip__gdal_errors *err, const char *path,
                    const rsclip_export_params *params, const layer_spec *ls, int pixel) {
    memset(o, 0, sizeof *o);
    o->err = err;
    o->pixel = pixel;
    rsclip_export_params p = params ? *params : rsclip_export_default_params();
    o->overwrite = p.overwrite;
    o->prot = p.protected_paths;
    o->n_prot = p.n_protected;
    int rc = plan_output(path, &p, ls, &o->plan);
    o->path = o->plan.mode == OUT_STDOUT ? "<stdout>" : path;
    if (!rc) rc = out_srs(o, &p);
    if (rc) {
        out_close(o);
        return rc;
    }
    if ((rc = out_open_ds(o, ls))) return rc;
    const char *dname = o->plan.dname;
    char **lco = NULL;
    if (strcmp(dname, "CSV") == 0) lco = CSLSetNameValue(lco, "GEOMETRY", "AS_WKT");
    /* FlatGeobuf's spatial index sorts features along a curve: keep them in rank order. */
    if (strcmp(dname, "FlatGeobuf") == 0) lco = CSLSetNameValue(lco, "SPATIAL_INDEX", "NO");
    o->layer = GDALDatasetCreateLayer(o->ds, o->plan.layer, o->layer_srs, ls->gtype, lco);
    CSLDestroy(lco);
    if (!o->layer) return out_fail(o, RSCLIP_ERR_IO, "cannot create the layer");
    const int shp = strcmp(dname, "ESRI Shapefile") == 0;
    o->canon = OGR_FD_Create("rsclip");
    OGR_FD_Reference(o->canon);
    if (!(o->map = rsclip__malloc(sizeof *o->map * (size_t)(ls->n_fields ? ls->n_fields : 1))))
        return out_fail(o, RSCLIP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ls->n_fields; i++) {
        const OGRFieldType type = (OGRFieldType)ls->fields[i].ogr_type;
        OGRFieldDefnH cd = OGR_Fld_Create(ls->fields[i].name, type);
        OGR_FD_AddFieldDefn(o->canon, cd);
        OGR_Fld_Destroy(cd);
        /* A shapefile's field names have 10 characters: cut them here, uniquely, rather than
         * have the driver launder them with a warning each. */
        char name[16];
        snprintf(name, sizeof name, "%.10s", ls->fields[i].name);
        if (shp && OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(o->layer), name) >= 0)
            name[9] = (char)('0' + i % 10); /* a cut name already taken */
        OGRFieldDefnH fd = OGR_Fld_Create(shp ? name : ls->fields[i].name, type);
        if (type == OFTReal) OGR_Fld_SetPrecision(fd, 0);
        /* A shapefile's text fields are 80 characters unless told: scene paths are longer. */
        if (type == OFTString && shp) OGR_Fld_SetWidth(fd, 254);
        OGRErr oe = OGR_L_CreateField(o->layer, fd, TRUE);
        OGR_Fld_Destroy(fd);
        if (oe != OGRERR_NONE) return out_fail(o, RSCLIP_ERR_IO, "cannot create a field");
        /* where the driver put it (KML puts its Name and Description first) */
        o->map[i] =
            OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(o->layer), shp ? name : ls->fields[i].name);
    }
    /* GeoPackage creates a new table lazily; have it created inside the transaction now, so that
     * a rollback has nothing left to do at close. */
    if (o->plan.mode == OUT_LAYER && OGR_L_SyncToDisk(o->layer) != OGRERR_NONE)
        return out_fail(o, RSCLIP_ERR_IO, "cannot create the layer");
    return RSCLIP_OK;
}

/* A feature to fill with rsclip_export_set_* (the fields under their own names). */
static OGRFeatureH out_feature(out_ctx *o) {
    return OGR_F_Create(o->canon);
}

/* Copy the attributes of c (out_feature) into a feature of the layer, reproject geom (if asked)
 * and attach it; takes ownership of geom. */
static int out_write(out_ctx *o, OGRFeatureH c, OGRGeometryH geom) {
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(o->layer));
    OGR_F_SetFromWithMap(f, c, TRUE, o->map);
    int rc = RSCLIP_OK;
    if (geom) {
        OGR_G_AssignSpatialReference(geom, o->pixel ? o->layer_srs : o->wgs84);
        if (o->ct && OGR_G_Transform(geom, o->ct) != OGRERR_NONE) {
            OGR_G_DestroyGeometry(geom);
            OGR_F_Destroy(f);
            return rsclip__error(RSCLIP_ERR_GDAL, "%s: cannot reproject a footprint: %s", o->path,
                                 rsclip__gdal_msg(o->err, "transformation failed"));
        }
        OGR_F_SetGeometryDirectly(f, geom);
    }
    if (OGR_L_CreateFeature(o->layer, f) != OGRERR_NONE)
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot write a feature: %s", o->path,
                           rsclip__gdal_msg(o->err, "write failed"));
    OGR_F_Destroy(f);
    return rc;
}

/* Read the new file back: drivers do not all report a short write (a full disk), but a file cut
 * short does not reopen with all its features. */
static int out_verify(out_ctx *o, int n_expected) {
    char *file = CPLStrdup(CPLFormFilename(o->tmpdir, o->plan.dest.name, NULL));
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    const char *const allowed[] = {o->plan.dname, NULL};
    GDALDatasetH ds = GDALOpenEx(file, GDAL_OF_VECTOR | GDAL_OF_READONLY, allowed, NULL, NULL);
    OGRLayerH l = ds ? GDALDatasetGetLayer(ds, 0) : NULL;
    long long n = -1;
    if (l) {
        n = 0;
        OGRFeatureH f;
        OGR_L_ResetReading(l);
        while ((f = OGR_L_GetNextFeature(l)) != NULL) {
            n++;
            OGR_F_Destroy(f);
        }
    }
    if (ds) GDALClose(ds);
    rsclip__gdal_errors_pop(&e);
    CPLFree(file);
    if (n == n_expected && e.n_failures == 0) return RSCLIP_OK;
    if (n < 0 || e.n_failures)
        return rsclip__error(RSCLIP_ERR_IO,
                             "%s: the file written does not read back (disk full?)%s%s", o->path,
                             e.msg[0] ? ": " : "", e.msg);
    return rsclip__error(RSCLIP_ERR_IO,
                         "%s: the file written reads back with %lld of %d features (disk full?)",
                         o->path, n, n_expected);
}

/* Finish an output whose features were all written (ok = RSCLIP_OK) or abandon it. Closing
 * flushes (a full disk shows there); a new file is read back, synced and renamed into place; a
 * layer's transaction is committed. */
static int out_finish(out_ctx *o, int ok, int n_expected) {
    if (ok != RSCLIP_OK) {
        out_close(o);
        return ok;
    }
    int before = o->err->n_failures;
    if (o->in_tx) {
        /* Have GeoPackage write what it keeps for later (the layer's feature count in
         * gpkg_ogr_contents) inside the transaction: after a failed COMMIT, SQLite has rolled
         * back, and the same write at close would land, stale, outside any transaction. */
        if (OGR_L_SyncToDisk(o->layer) != OGRERR_NONE)
            return out_fail(o, RSCLIP_ERR_IO, "cannot write the new layer");
        o->in_tx = 0;
        if (GDALDatasetCommitTransaction(o->ds) != OGRERR_NONE) {
            GDALDatasetRollbackTransaction(o->ds);
            return out_fail(o, RSCLIP_ERR_IO, "cannot commit the new layer");
        }
    }
    GDALClose(o->ds);
    o->ds = NULL;
    int rc = o->err->n_failures > before
                 ? rsclip__error(RSCLIP_ERR_IO, "%s: error while closing the output: %s", o->path,
                                 rsclip__gdal_msg(o->err, "write failed"))
                 : RSCLIP_OK;
    if (!rc && o->plan.mode == OUT_FILE) rc = out_verify(o, n_expected);
    if (!rc && o->plan.mode == OUT_FILE) {
        rc = rsclip__tmpdir_commit(o->tmpdir, &o->plan.dest, o->overwrite, o->prot, o->n_prot,
                                   o->plan.old_files);
        free(o->tmpdir);
        o->tmpdir = NULL; /* removed by the commit, whatever its outcome */
    }
    out_close(o);
    return rc;
}

int rsclip_export_check(const char *path, const rsclip_export_params *params,
                        const char *default_layer) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    rsclip_export_params p = params ? *params : rsclip_export_default_params();
    layer_spec ls = {default_layer ? default_layer : "hits", wkbPolygon, NULL, NULL, 0};
    out_plan pl;
    int rc = plan_output(path, &p, &ls, &pl);
    plan_free(&pl);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

/* A hit in pixel coordinates: its window's corners (pixels x right / y down, or the scene's own
 * coordinates), as a polygon wound counter-clockwise in those numbers; NULL when a corner is not
 * finite. */
static OGRGeometryH pixel_polygon(const rsclip_hit *h) {
    const double *c = h->corners; /* UL, UR, LR, LL */
    double area2 = 0;
    for (int k = 0; k < 4; k++) {
        if (!isfinite(c[2 * k]) || !isfinite(c[2 * k + 1])) return NULL;
        int j = (k + 1) % 4;
        area2 += c[2 * k] * c[2 * j + 1] - c[2 * j] * c[2 * k + 1];
    }
    if (area2 >= 0) return rsclip__ring_polygon(c, 4);
    const double ccw[8] = {c[0], c[1], c[6], c[7], c[4], c[5], c[2], c[3]};
    return rsclip__ring_polygon(ccw, 4);
}

/* Does the driver keep a feature without a geometry, as it reads its own file back? (In GDAL 3.6
 * the FlatGeobuf writer and the KML reader drop it.) Asked of the driver itself, in memory; a
 * driver that cannot write there is trusted (the export reads its file back anyway). */
static int keeps_null_geometry(GDALDriverH drv) {
    char name[64];
    snprintf(name, sizeof name, "/vsimem/rsclip_null_geom_%p", (void *)&name);
    const char *ext = GDALGetMetadataItem(drv, GDAL_DMD_EXTENSION, NULL);
    char *file = CPLStrdup(CPLFormFilename(name, "probe", ext && *ext ? ext : NULL));
    rsclip__gdal_errors quiet;
    rsclip__gdal_errors_push(&quiet);
    int kept = 1;
    VSIMkdir(name, 0700);
    GDALDatasetH ds = GDALCreate(drv, file, 0, 0, 0, GDT_Unknown, NULL);
    OGRLayerH l = ds ? GDALDatasetCreateLayer(ds, "probe", NULL, wkbPolygon, NULL) : NULL;
    if (l) {
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
        int written = OGR_L_CreateFeature(l, f) == OGRERR_NONE;
        OGR_F_Destroy(f);
        GDALClose(ds);
        const char *const same[] = {GDALGetDriverShortName(drv), NULL};
        ds = written ? GDALOpenEx(file, GDAL_OF_VECTOR, same, NULL, NULL) : NULL;
        OGRLayerH r = ds ? GDALDatasetGetLayer(ds, 0) : NULL;
        if (r) kept = OGR_L_GetFeatureCount(r, TRUE) == 1;
    }
    if (ds) GDALClose(ds);
    VSIRmdirRecursive(name);
    rsclip__gdal_errors_pop(&quiet);
    CPLFree(file);
    return kept;
}

static OGRFeatureH hit_feature(out_ctx *o, const rsclip_hit *h) {
    OGRFeatureH f = out_feature(o);
    rsclip_export_set_hit(f, h);
    return f;
}

/* Hits in pixel coordinates (see rsclip/export.h): all of them -> a layer without CRS, footprints
 * from the window corners; some of them -> the georeferenced ones as usual, these without a
 * geometry, and a warning that counts them. */
static int export_hits(rsclip__gdal_errors *err, const char *path,
                       const rsclip_export_params *params, const rsclip_hit *hits, int n) {
    layer_spec spec = {"hits", wkbPolygon, "rank", NULL, 0};
    spec.fields = rsclip_export_fields(RSCLIP_LAYER_HITS, 0, &spec.n_fields);
    if (n < 0 || (n > 0 && !hits)) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "export: no hits");
    int n_pixel = 0;
    for (int i = 0; i < n; i++) n_pixel += rsclip__hit_is_pixel(&hits[i]);
    const int pixel = n > 0 && n_pixel == n;
    out_ctx o;
    int rc = out_open(&o, err, path, params, &spec, pixel);
    if (rc) return rc;
    if (n_pixel && !pixel && !keeps_null_geometry(o.plan.drv)) {
        rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                           "%s: %d of %d hits are in pixel coordinates (their scenes have no CRS) "
                           "and have no geometry in a layer with a CRS, but %s drops features "
                           "without a geometry: write GPKG, GeoJSON, CSV or a shapefile, or export "
                           "those hits alone (--scene ID)",
                           o.path, n_pixel, n, o.plan.dname);
        out_close(&o);
        return rc;
    }
    if (n_pixel && !pixel)
        rsclip__log(RSCLIP_LOG_WARN,
                    "%s: %d of %d hits are in pixel coordinates (their scenes have no CRS): "
                    "written without a geometry beside the georeferenced ones; export them alone "
                    "(--scene ID) for their footprints in pixels",
                    o.path, n_pixel, n);
    for (int i = 0; i < n && rc == RSCLIP_OK; i++) {
        OGRFeatureH f = hit_feature(&o, &hits[i]);
        OGRGeometryH g = pixel ? pixel_polygon(&hits[i]) : rsclip__hit_lonlat_polygon(&hits[i]);
        rc = out_write(&o, f, g);
        OGR_F_Destroy(f);
    }
    return out_finish(&o, rc, n);
}

static int export_regions(rsclip__gdal_errors *err, const char *path,
                          const rsclip_export_params *params, const rsclip_region *regions, int n) {
    int with_rise = 0;
    for (int i = 0; i < n && regions; i++) with_rise |= regions[i].has_rise;
    /* MultiPolygon: tiles touching only at a corner dissolve into two parts of one region. */
    layer_spec spec = {"regions", wkbMultiPolygon, "region", NULL, 0};
    spec.fields = rsclip_export_fields(RSCLIP_LAYER_REGIONS, with_rise, &spec.n_fields);
    if (n < 0 || (n > 0 && !regions))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "export: no regions");
    out_ctx o;
    int rc = out_open(&o, err, path, params, &spec, 0);
    if (rc) return rc;
    for (int i = 0; i < n && rc == RSCLIP_OK; i++) {
        const rsclip_region *r = &regions[i];
        OGRFeatureH f = out_feature(&o);
        rsclip_export_set_region(f, r);
        OGRGeometryH g = NULL;
        if (r->wkt) {
            char *w = r->wkt;
            if (OGR_G_CreateFromWkt(&w, NULL, &g) != OGRERR_NONE) g = NULL;
            if (g) g = OGR_G_ForceToMultiPolygon(g);
        }
        rc = out_write(&o, f, g);
        OGR_F_Destroy(f);
    }
    return out_finish(&o, rc, n);
}

static int export_changes(rsclip__gdal_errors *err, const char *path,
                          const rsclip_export_params *params, const rsclip_change *ch, int n) {
    layer_spec spec = {"changes", wkbPolygon, "rank", NULL, 0};
    spec.fields = rsclip_export_fields(RSCLIP_LAYER_CHANGES, 0, &spec.n_fields);
    if (n < 0 || (n > 0 && !ch)) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "export: no changes");
    out_ctx o;
    int rc = out_open(&o, err, path, params, &spec, 0);
    if (rc) return rc;
    for (int i = 0; i < n && rc == RSCLIP_OK; i++) {
        const rsclip_change *c = &ch[i];
        OGRFeatureH f = out_feature(&o);
        rsclip_export_set_change(f, c);
        rc = out_write(&o, f, rsclip__hit_lonlat_polygon(&c->to));
        OGR_F_Destroy(f);
    }
    return out_finish(&o, rc, n);
}

int rsclip_export_changes(const char *path, const rsclip_export_params *params,
                          const rsclip_change *changes, int n) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = export_changes(&e, path, params, changes, n);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

/* Every GDAL call of an export runs inside one error scope: nothing is printed, the first failure
 * message goes into the rsclip error. */
int rsclip_export_hits(const char *path, const rsclip_export_params *params, const rsclip_hit *hits,
                       int n) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = export_hits(&e, path, params, hits, n);
    rsclip__gdal_errors_pop(&e);
    return rc;
}

int rsclip_export_regions(const char *path, const rsclip_export_params *params,
                          const rsclip_region *regions, int n) {
    rsclip__gdal_init();
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    int rc = export_regions(&e, path, params, regions, n);
    rsclip__gdal_errors_pop(&e);
    return rc;
}
