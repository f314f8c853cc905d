/* rsclip_query_check: every rule a query must meet, checked once, here, before any work; the
 * CLI, the GDAL plugin and the server only convert their inputs into an rsclip_query. */
#include "query/examples.h"
#include "query/query_internal.h"
#include "status/status_internal.h"

#include <math.h>
#include <string.h>

/* Text with something besides white space. */
static int has_text(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v')
            return 1;
    return 0;
}

static int check_bbox(const double b[4]) {
    for (int i = 0; i < 4; i++)
        if (!isfinite(b[i]))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "bbox: a coordinate is not a number");
    if (b[1] < -90 || b[3] > 90 || b[1] > b[3])
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "bbox %g,%g,%g,%g: south and north must be latitudes with south <= "
                             "north (the order is west,south,east,north)",
                             b[0], b[1], b[2], b[3]);
    if (b[0] < -180 || b[2] > 180 || b[0] > b[2])
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "bbox %g,%g,%g,%g: west and east must be longitudes with west <= "
                             "east (the order is west,south,east,north)",
                             b[0], b[1], b[2], b[3]);
    return RSCLIP_OK;
}

/* What is asked (the query's own kind, texts, template, negatives, examples): the rules that
 * scene probabilities and heatmaps, which ignore k, min_prob and the filters, apply too. */
int rsclip__query_check_what(const rsclip_query *q) {
    if (!q) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "no query");
    int n_kinds = (q->text != NULL) + (q->like_tile != 0) + (q->has_like_point != 0) +
                  (q->like_image != NULL);
    if (n_kinds > 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "give only one query: a text, a tile id, a point or an image");
    if (q->text && !has_text(q->text))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "the query text is empty");
    if (q->like_tile < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%lld is not a tile id",
                             (long long)q->like_tile);
    if (q->like_image && !*q->like_image)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "the query image has no file name");
    if (q->has_like_point && (!isfinite(q->like_lon) || !isfinite(q->like_lat) ||
                              fabs(q->like_lat) > 90 || fabs(q->like_lon) > 180))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "point %g,%g is not a WGS84 lon,lat",
                             q->like_lon, q->like_lat);
    if (q->template_str && !strstr(q->template_str, "{}"))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "template '%s' has no {} for the text (use \"{}\" for the text as "
                             "it is)",
                             q->template_str);
    if (q->n_negatives < 0 || q->n_negatives > RSCLIP_SEARCH_MAX_NEGATIVES)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "at most %d negative queries, not %d",
                             RSCLIP_SEARCH_MAX_NEGATIVES, q->n_negatives);
    if (q->n_negatives && !q->negatives)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "negative queries counted but not given");
    for (int i = 0; i < q->n_negatives; i++)
        if (!q->negatives[i] || !has_text(q->negatives[i]))
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "negative query %d is empty", i + 1);
    return rsclip__query_examples_check(q) ? rsclip_last_status() : RSCLIP_OK;
}

int rsclip_query_check(const rsclip_query *q) {
    if (rsclip__query_check_what(q)) return rsclip_last_status();
    if (q->k < 1 || q->k > RSCLIP_QUERY_MAX_K)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "k must be within 1..%d, not %d",
                             RSCLIP_QUERY_MAX_K, q->k);
    if (!(q->min_prob >= 0 && q->min_prob <= 1))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "min_prob must be within 0..1, not %g",
                             (double)q->min_prob);
    if (q->has_bbox && check_bbox(q->bbox)) return rsclip_last_status();
    if (q->aoi_wkt && !*q->aoi_wkt)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "the area of interest is empty");
    if (q->scene_id < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%lld is not a scene id",
                             (long long)q->scene_id);
    rsclip_time w;
    return rsclip__query_time_window(q, &w) < 0 ? rsclip_last_status() : RSCLIP_OK;
}

int rsclip_change_check(const rsclip_query *q, const rsclip_time *from, const rsclip_time *to) {
    if (rsclip_query_check(q)) return rsclip_last_status();
    if (q->after || q->before || q->latest)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "a change query has its own two periods: after, before and latest do "
                             "not apply");
    if (!from || !to)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "a change query needs its two periods");
    if (from->end_ms >= to->start_ms)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "change: the earlier period must end before the later one begins");
    return RSCLIP_OK;
}
