/* Test helper: open a raster with the tiler and print the scene and every tile as JSON lines, so
 * that Python checks (test_tiler_geo.py) can compare them with independent GDAL/OSR/numpy
 * computations. Optionally writes the RGB bytes of the read tiles to a folder.
 *
 *   tiler_dump [-ts N] [-stride N] [-b 3,2,1] [-minvalid F] [-gsd M] [-r alg] [-range lo,hi]
 *              [-pct lo,hi] [-scale none|pct] [-mask none|noalpha] [-allow] [-densify N]
 *              [-stats N] [-noread] [-raw DIR] raster
 */
#include "rsclip/tiler.h"
#include "rsclip/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_doubles(const double *v, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf("%s%.17g", i ? "," : "", v[i]);
    putchar(']');
}

int main(int argc, char **argv) {
    rsclip_tiler_params p = rsclip_tiler_default_params();
    const char *raw = NULL, *path = NULL;
    int noread = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "-ts"))
            p.tile_size = atoi(v), i++;
        else if (!strcmp(a, "-stride"))
            p.stride = atoi(v), i++;
        else if (!strcmp(a, "-b")) {
            p.n_bands = sscanf(v, "%d,%d,%d", &p.bands[0], &p.bands[1], &p.bands[2]);
            i++;
        } else if (!strcmp(a, "-minvalid"))
            p.min_valid = atof(v), i++;
        else if (!strcmp(a, "-gsd"))
            p.gsd = atof(v), i++;
        else if (!strcmp(a, "-r"))
            p.resampling = v, i++;
        else if (!strcmp(a, "-range")) {
            double lo, hi;
            if (sscanf(v, "%lf,%lf", &lo, &hi) != 2) return 2;
            p.scale_mode = RSCLIP_TILER_SCALE_RANGE;
            for (int c = 0; c < 3; c++) p.scale_min[c] = lo, p.scale_max[c] = hi;
            i++;
        } else if (!strcmp(a, "-pct")) {
            if (sscanf(v, "%lf,%lf", &p.pct_low, &p.pct_high) != 2) return 2;
            i++;
        } else if (!strcmp(a, "-scale")) {
            p.scale_mode =
                !strcmp(v, "none") ? RSCLIP_TILER_SCALE_NONE : RSCLIP_TILER_SCALE_PERCENTILE;
            i++;
        } else if (!strcmp(a, "-mask")) {
            p.mask_mode = !strcmp(v, "none") ? RSCLIP_TILER_MASK_NONE : RSCLIP_TILER_MASK_NO_ALPHA;
            i++;
        } else if (!strcmp(a, "-allow"))
            p.allow_pixel_coords = 1;
        else if (!strcmp(a, "-densify"))
            p.densify = atoi(v), i++;
        else if (!strcmp(a, "-stats"))
            p.stats_size = atoi(v), i++;
        else if (!strcmp(a, "-noread"))
            noread = 1;
        else if (!strcmp(a, "-raw"))
            raw = v, i++;
        else
            path = a;
    }
    if (!path) {
        fprintf(stderr, "usage: tiler_dump [options] raster\n");
        return 2;
    }
    rsclip_tiler *t;
    int rc = rsclip_tiler_open(path, &p, &t);
    if (rc) {
        printf("{\"error\":\"%s\",\"message\":", rsclip_status_name(rc));
        print_json_string(rsclip_last_error());
        printf("}\n");
        return 1;
    }
    const rsclip_raster_info *s = rsclip_tiler_scene(t);
    printf("{\"scene\":1,\"driver\":\"%s\",\"src_width\":%d,\"src_height\":%d,\"src_bands\":%d,"
           "\"data_type\":\"%s\",\"georef\":%d,\"epsg\":%d,\"width\":%d,\"height\":%d,",
           s->driver, s->src_width, s->src_height, s->src_bands, s->data_type, s->georef, s->epsg,
           s->width, s->height);
    printf("\"gt\":");
    print_doubles(s->geotransform, 6);
    printf(",\"src_gt\":");
    print_doubles(s->src_geotransform, 6);
    printf(",\"native_gsd\":%.17g,\"gsd\":%.17g,\"n_bands\":%d,\"bands\":[%d,%d,%d],",
           s->native_gsd, s->gsd, s->n_bands, s->bands[0], s->bands[1], s->bands[2]);
    printf("\"scale_mode\":%d,\"scale_min\":", s->scale_mode);
    print_doubles(s->scale_min, 3);
    printf(",\"scale_max\":");
    print_doubles(s->scale_max, 3);
    printf(",\"mask_flags\":%d,\"size\":%lld,\"mtime_ns\":%lld,\"checksum\":\"%016llx\",",
           s->mask_flags, (long long)s->fingerprint.size, (long long)s->fingerprint.mtime_ns,
           (unsigned long long)s->fingerprint.checksum);
    printf("\"tiles_x\":%d,\"tiles_y\":%d,\"n_tiles\":%lld,\"wkt\":", s->tiles_x, s->tiles_y,
           (long long)s->n_tiles);
    print_json_string(s->crs_wkt);
    printf(",\"wkt2_len\":%zu,\"bands_text\":\"%s\",\"scaling\":%s}\n", strlen(s->crs_wkt2),
           s->bands_text, s->scaling_json);

    uint8_t *rgb = (uint8_t *)malloc(rsclip_tiler_buffer_size(t));
    rsclip_tile *tile = (rsclip_tile *)malloc(sizeof *tile);
    int status = 0;
    for (int64_t i = 0; rgb && tile && i < s->n_tiles; i++) {
        rc = noread ? rsclip_tiler_tile(t, i, tile)
                    : rsclip_tiler_read(t, i, rgb, rsclip_tiler_buffer_size(t), tile);
        if (rc) {
            printf("{\"error\":\"%s\",\"message\":", rsclip_status_name(rc));
            print_json_string(rsclip_last_error());
            printf("}\n");
            status = 1;
            break;
        }
        printf("{\"tile\":%lld,\"col\":%d,\"row\":%d,\"win\":[%d,%d,%d,%d],\"src_win\":",
               (long long)tile->index, tile->col, tile->row, tile->xoff, tile->yoff, tile->xsize,
               tile->ysize);
        print_doubles(tile->src_window, 4);
        printf(",\"out\":[%d,%d],\"corners\":", tile->out_width, tile->out_height);
        putchar('[');
        for (int k = 0; k < 4; k++) {
            if (k) putchar(',');
            print_doubles(tile->corners[k], 2);
        }
        printf("],\"has_lonlat\":%d,\"ring\":[", tile->has_lonlat);
        for (int k = 0; k < tile->n_ring; k++) {
            if (k) putchar(',');
            print_doubles(tile->ring[k], 2);
        }
        printf("],\"center\":[%.17g,%.17g],\"valid\":%.17g,\"skipped\":%d}\n", tile->center_lon,
               tile->center_lat, tile->valid_fraction, tile->skipped);
        if (raw && !noread && !tile->skipped) {
            char fn[4096];
            snprintf(fn, sizeof fn, "%s/tile_%lld.rgb", raw, (long long)i);
            FILE *f = fopen(fn, "wb");
            if (!f) {
                status = 1;
                break;
            }
            fwrite(rgb, 3, (size_t)tile->out_width * tile->out_height, f);
            fclose(f);
        }
    }
    free(tile);
    free(rgb);
    rsclip_tiler_close(t);
    return status;
}
