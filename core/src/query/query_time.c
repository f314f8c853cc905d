/* Time in queries, after the ranking: --latest (the most recent tile at each place among the
 * hits). The time filters themselves are allow lists (filter.c); change queries: change.c. */
#include "base/base.h"
#include "query/query_internal.h"
#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <ogr_api.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Two footprints show the same place when they overlap by at least this share of the smaller
 * one: neighbours that only touch (a shared edge, a sliver of resampling) do not count. */
#define SAME_PLACE_SHARE 0.1

static int same_place(const rsclip_hit *a, const rsclip_hit *b) {
    if (!a->footprint || !b->footprint || a->n_footprint < 3 || b->n_footprint < 3) return 0;
    double ea[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY}, eb[4];
    memcpy(eb, ea, sizeof eb);
    for (int i = 0; i < a->n_footprint; i++) {
        ea[0] = fmin(ea[0], a->footprint[2 * i]), ea[2] = fmax(ea[2], a->footprint[2 * i]);
        ea[1] = fmin(ea[1], a->footprint[2 * i + 1]), ea[3] = fmax(ea[3], a->footprint[2 * i + 1]);
    }
    for (int i = 0; i < b->n_footprint; i++) {
        eb[0] = fmin(eb[0], b->footprint[2 * i]), eb[2] = fmax(eb[2], b->footprint[2 * i]);
        eb[1] = fmin(eb[1], b->footprint[2 * i + 1]), eb[3] = fmax(eb[3], b->footprint[2 * i + 1]);
    }
    if (ea[2] <= eb[0] || eb[2] <= ea[0] || ea[3] <= eb[1] || eb[3] <= ea[1]) return 0;
    OGRGeometryH pa = rsclip__ring_polygon(a->footprint, a->n_footprint);
    OGRGeometryH pb = rsclip__ring_polygon(b->footprint, b->n_footprint);
    OGRGeometryH x = OGR_G_Intersection(pa, pb);
    double ax = x ? OGR_G_Area(x) : 0, aa = OGR_G_Area(pa), ab = OGR_G_Area(pb);
    OGR_G_DestroyGeometry(x);
    OGR_G_DestroyGeometry(pa);
    OGR_G_DestroyGeometry(pb);
    double smaller = aa < ab ? aa : ab;
    return smaller > 0 && ax >= SAME_PLACE_SHARE * smaller;
}

/* The hit's time for "most recent": the end of its span; unknown is older than any known. */
static int64_t recency(const rsclip_hit *h) {
    rsclip_time t;
    if (h->datetime && rsclip_time_parse(h->datetime, &t) == RSCLIP_OK) return t.end_ms;
    rsclip_clear_error();
    return INT64_MIN;
}

int rsclip__latest_filter(rsclip_hit *hits, int n, int k, int *n_dropped) {
    *n_dropped = 0;
    if (n <= 1) return n < k ? n : k;
    int64_t *when = rsclip__malloc((size_t)n * sizeof *when);
    char *drop = rsclip__calloc((size_t)n, 1);
    if (!when || !drop) {
        free(when);
        free(drop);
        return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) when[i] = recency(&hits[i]);
    rsclip__gdal_errors e;
    rsclip__gdal_errors_push(&e);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n && !drop[i]; j++)
            if (j != i && when[j] > when[i] && same_place(&hits[i], &hits[j]))
                drop[i] = 1; /* a later tile shows this place */
    rsclip__gdal_errors_pop(&e);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (drop[i]) {
            (*n_dropped)++;
            continue;
        }
        if (kept < k) {
            if (kept != i) {
                rsclip_hit tmp = hits[kept];
                hits[kept] = hits[i];
                hits[i] = tmp;
            }
            hits[kept].rank = kept + 1;
            kept++;
        }
    }
    free(when);
    free(drop);
    return kept;
}
