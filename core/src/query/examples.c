/* Queries by example: like and unlike tiles combined with the query (rsclip/query.h, "Examples"),
 * looked up in whichever part of the session holds them. */
#include "base/base.h"
#include "query/examples.h"
#include "query/query_internal.h"
#include "rsclip/search.h"
#include "status/status_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rsclip__query_has_main(const rsclip_query *q) {
    return q->text != NULL || q->like_tile > 0 || q->has_like_point || q->like_image != NULL;
}

int rsclip__query_examples_check(const rsclip_query *q) {
    if (q->n_like_tiles < 0 || q->n_like_tiles > RSCLIP_QUERY_MAX_EXAMPLES ||
        q->n_unlike_tiles < 0 || q->n_unlike_tiles > RSCLIP_QUERY_MAX_EXAMPLES)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "at most %d like and %d unlike tiles",
                             RSCLIP_QUERY_MAX_EXAMPLES, RSCLIP_QUERY_MAX_EXAMPLES);
    if ((q->n_like_tiles && !q->like_tiles) || (q->n_unlike_tiles && !q->unlike_tiles))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "example tiles counted but not given");
    if (q->n_negatives + q->n_unlike_tiles > RSCLIP_SEARCH_MAX_NEGATIVES)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "at most %d negatives (texts and unlike tiles together), not %d",
                             RSCLIP_SEARCH_MAX_NEGATIVES, q->n_negatives + q->n_unlike_tiles);
    if (!rsclip__query_has_main(q) && q->n_like_tiles == 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "give a query: a text, a tile id, a point, an image or like tiles");
    return RSCLIP_OK;
}

/* Embeddings of n tiles into out [n, dim] from the parts that hold them (tile ids are unique over
 * the parts of a set); NOT_FOUND names the first missing tile. */
static int fetch_tiles(rsclip_session *s, const int64_t *ids, int n, float *out) {
    const size_t dim = (size_t)s->info.embed_dim;
    for (int i = 0; i < n; i++) {
        if (ids[i] <= 0)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: %lld is not a tile id", s->path,
                                 (long long)ids[i]);
        int rc = RSCLIP_ERR_NOT_FOUND;
        for (int p = 0; p < s->n_parts && rc == RSCLIP_ERR_NOT_FOUND; p++)
            rc = rsclip_index_get_embeddings(s->parts[p].idx, &ids[i], 1, out + (size_t)i * dim);
        if (rc == RSCLIP_ERR_NOT_FOUND)
            return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no tile %lld in the index", s->path,
                                 (long long)ids[i]);
        if (rc) return rc;
    }
    return RSCLIP_OK;
}

static void normalize(float *v, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++) s += (double)v[i] * v[i];
    if (s > 0) {
        float k = (float)(1.0 / sqrt(s));
        for (int i = 0; i < dim; i++) v[i] *= k;
    }
}

int rsclip__query_examples(rsclip_session *s, const rsclip_query *q, float *qv, float *neg) {
    const int dim = s->info.embed_dim, n_like = q->n_like_tiles;
    int rc = RSCLIP_OK;
    if (n_like > 0) {
        float *v = rsclip__malloc(sizeof(float) * (size_t)dim * (size_t)n_like);
        if (!v) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
        rc = fetch_tiles(s, q->like_tiles, n_like, v);
        if (!rc) {
            /* mean of unit vectors: the query itself counts as one example among them */
            if (rsclip__query_has_main(q))
                normalize(qv, dim);
            else
                memset(qv, 0, sizeof(float) * (size_t)dim);
            for (int k = 0; k < n_like; k++) {
                normalize(v + (size_t)k * dim, dim);
                for (int i = 0; i < dim; i++) qv[i] += v[(size_t)k * dim + i];
            }
            normalize(qv, dim);
        }
        free(v);
    }
    if (!rc && neg && q->n_unlike_tiles > 0)
        rc = fetch_tiles(s, q->unlike_tiles, q->n_unlike_tiles, neg);
    return rc;
}
