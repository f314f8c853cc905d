/* Pictures of the hits for `rsclip search --chips DIR --sheet FILE`, and the query-by-example
 * rule that `search` and `serve` share (see app.h). */
#include "app.h"

#include <stdio.h>
#include <string.h>

void app_query_examples(rsclip_query *q, const int64_t *likes, int n_like, const int64_t *unlikes,
                        int n_unlike) {
    int has_main = q->text || q->like_tile > 0 || q->has_like_point || q->like_image;
    if (!has_main && n_like > 0) {
        /* one like tile alone is the plain query by example */
        q->like_tile = likes[0];
        likes++;
        n_like--;
    }
    q->like_tiles = n_like > 0 ? likes : NULL;
    q->n_like_tiles = n_like;
    q->unlike_tiles = n_unlike > 0 ? unlikes : NULL;
    q->n_unlike_tiles = n_unlike;
}

void app_query_title(const rsclip_query *q, char *buf, size_t cap) {
    size_t n = 0;
#define ADD(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
    buf[0] = '\0';
    if (q->text)
        ADD("%s", q->text);
    else if (q->like_image)
        ADD("like %s", q->like_image);
    else if (q->has_like_point)
        ADD("like the tile at %.6f, %.6f", q->like_lon, q->like_lat);
    else if (q->like_tile > 0)
        ADD("like tile %lld", (long long)q->like_tile);
    for (int i = 0; i < q->n_like_tiles; i++)
        ADD("%s%lld", i == 0 ? (n ? "  + like tiles " : "like tiles ") : ", ",
            (long long)q->like_tiles[i]);
    for (int i = 0; i < q->n_negatives; i++) ADD("%s%s", i ? ", " : "  - not ", q->negatives[i]);
    for (int i = 0; i < q->n_unlike_tiles; i++)
        ADD("%s%lld", i ? ", " : "  - unlike tiles ", (long long)q->unlike_tiles[i]);
#undef ADD
}

int app_render_check(const app_render_opts *o) {
    if (o->chips) {
        rsclip_chips_params cp = rsclip_chips_default_params();
        cp.overwrite = o->overwrite;
        cp.protected_paths = &o->index;
        cp.n_protected = 1;
        if (rsclip_chips_check(o->chips, &cp) != RSCLIP_OK) return app_fail();
    }
    if (o->sheet) {
        rsclip_sheet_params sp = rsclip_sheet_default_params();
        sp.overwrite = o->overwrite;
        sp.protected_paths = &o->index;
        sp.n_protected = 1;
        if (rsclip_sheet_check(o->sheet, &sp) != RSCLIP_OK) return app_fail();
    }
    return APP_OK;
}

int app_render_outputs(const app_render_opts *o, const rsclip_results *r, int merged,
                       const rsclip_region *regions, int n_regions) {
    if (!o->chips && !o->sheet) return APP_OK;
    int n = merged ? n_regions : r->n;
    if (n == 0) {
        fprintf(stderr, "rsclip: no %s: no chips or contact sheet written\n",
                merged ? "regions" : "hits");
        return APP_OK;
    }
    rsclip_imagery *im = NULL;
    if (rsclip_imagery_open(o->index, NULL, &im) != RSCLIP_OK) return app_fail();
    int rc = APP_OK;
    if (o->chips) {
        rsclip_chips_params cp = rsclip_chips_default_params();
        cp.overwrite = o->overwrite;
        cp.protected_paths = &o->index;
        cp.n_protected = 1;
        int e = merged ? rsclip_chips_write_regions(im, regions, n_regions, r->hits, r->n, o->chips,
                                                    &cp)
                       : rsclip_chips_write(im, r->hits, r->n, o->chips, &cp);
        rc = e == RSCLIP_OK ? APP_OK : app_fail();
    }
    if (rc == APP_OK && o->sheet) {
        rsclip_sheet_params sp = rsclip_sheet_default_params();
        sp.title = o->title;
        sp.overwrite = o->overwrite;
        sp.protected_paths = &o->index;
        sp.n_protected = 1;
        int e = merged ? rsclip_sheet_write_regions(im, regions, n_regions, r->hits, r->n, o->sheet,
                                                    &sp)
                       : rsclip_sheet_write(im, r->hits, r->n, o->sheet, &sp);
        rc = e == RSCLIP_OK ? APP_OK : app_fail();
    }
    rsclip_imagery_close(im);
    return rc;
}
