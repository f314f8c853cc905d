/* libFuzzer target: GeoPackage geometry blobs as the index reads them from files other programs
 * may have written (GIS edits): header + envelope parse, WKB walk, exterior ring decode, and the
 * point/box predicates on whatever ring comes out. Checks the documented invariants. */
#include "index/index_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    idx_gpkg_geom g;
    if (rsclip__idx_gpkg_parse(data, size, &g) != 0) return 0;
    if (g.wkb < data || g.wkb + g.wkb_len != data + size) abort();
    double *xy = NULL;
    size_t n = 0;
    int r = rsclip__idx_wkb_polygon_ring(g.wkb, g.wkb_len, &xy, &n);
    if (r == 0) {
        if (n < 3 || !xy) abort();
        double box[4] = {g.env[0], g.env[2], g.env[1], g.env[3]};
        (void)rsclip__idx_ring_contains(xy, n, box[0], box[1]);
        if (box[0] <= box[2] && box[1] <= box[3]) (void)rsclip__idx_ring_meets_box(xy, n, box);
        /* re-encoding the ring gives a blob that parses to the same ring */
        uint8_t *out = malloc(rsclip__idx_gpkg_polygon_size(xy, n));
        if (!out) abort();
        size_t len = rsclip__idx_gpkg_polygon_encode(xy, n, 4326, out);
        idx_gpkg_geom g2;
        double *xy2 = NULL;
        size_t n2 = 0;
        if (rsclip__idx_gpkg_parse(out, len, &g2) != 0) abort();
        if (rsclip__idx_wkb_polygon_ring(g2.wkb, g2.wkb_len, &xy2, &n2) != 0) abort();
        if (n2 < n || memcmp(xy2, xy, n * 2 * sizeof(double)) != 0) abort();
        free(xy2);
        free(out);
    } else if (r != -1 && r != -2) {
        abort();
    }
    free(xy);
    return 0;
}
