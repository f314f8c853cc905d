/* The tiler's masks and value scaling: which mask bands decide validity, and the per-band
 * percentile statistics that map non-8-bit data to 0..255 (design in rsclip/tiler.h). */
#include "base/base.h"
#include "rsclip/tiler.h"
#include "status/status_internal.h"
#include "tiler_internal.h"

#include <gdal.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- masks and scaling statistics ---------------------------------------------------------- */

void rsclip__tiler_setup_masks(rsclip_tiler *t) {
    int have_per_dataset = 0;
    t->info.mask_flags = GMF_ALL_VALID;
    for (int c = 0; c < 3; c++) {
        if (t->dup_of[c] >= 0) continue;
        int flags = GDALGetMaskFlags(t->band[c]);
        if (c == 0) t->info.mask_flags = flags;
        if (t->p.mask_mode == RSCLIP_TILER_MASK_NONE) continue;
        if (flags & GMF_ALL_VALID) continue;
        if ((flags & GMF_ALPHA) && t->p.mask_mode == RSCLIP_TILER_MASK_NO_ALPHA) continue;
        if (flags & GMF_PER_DATASET) {
            if (have_per_dataset) continue;
            have_per_dataset = 1;
        }
        t->mask[t->n_mask++] = GDALGetMaskBand(t->band[c]);
    }
    if (t->p.mask_mode == RSCLIP_TILER_MASK_NONE) t->info.mask_flags = GMF_ALL_VALID;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's default ("linear"): interpolate between the order statistics around
 * (n - 1) * q / 100. s is sorted, n > 0. */
static double percentile(const double *s, size_t n, double q) {
    double pos = (double)(n - 1) * q / 100.0;
    size_t i = (size_t)floor(pos);
    if (i >= n - 1) return s[n - 1];
    double f = pos - (double)i;
    return s[i] + (s[i + 1] - s[i]) * f;
}

static int compute_percentiles(rsclip_tiler *t, rsclip__gdal_errors *e) {
    int w = t->info.width, h = t->info.height, S = t->p.stats_size;
    int sw = w, sh = h;
    if (w > S || h > S) {
        double f = (double)(w > h ? w : h) / S;
        sw = (int)ceil(w / f);
        sh = (int)ceil(h / f);
        if (sw > w) sw = w;
        if (sh > h) sh = h;
        if (sw < 1) sw = 1;
        if (sh < 1) sh = 1;
    }
    size_t n = (size_t)sw * (size_t)sh, nb_vals, nb_sorted;
    if (rsclip__mul_size(n, sizeof(double), &nb_vals) ||
        rsclip__mul_size(n, sizeof(double), &nb_sorted))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: statistics buffer too large", t->path);
    double *vals = (double *)rsclip__malloc(nb_vals);
    double *sorted = (double *)rsclip__malloc(nb_sorted);
    uint8_t *valid = (uint8_t *)rsclip__malloc(n), *tmp = (uint8_t *)rsclip__malloc(n);
    int rc = RSCLIP_OK;
    if (!vals || !sorted || !valid || !tmp) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory for statistics", t->path);
        goto done;
    }
    memset(valid, 1, n);
    for (int m = 0; m < t->n_mask; m++) {
        if (GDALRasterIO(t->mask[m], GF_Read, 0, 0, w, h, tmp, sw, sh, GDT_Byte, 0, 0) != CE_None) {
            rc = rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path, "cannot read the mask");
            goto done;
        }
        for (size_t i = 0; i < n; i++) valid[i] &= tmp[i] != 0;
    }
    for (int c = 0; c < 3; c++) {
        if (t->dup_of[c] >= 0) {
            t->info.scale_min[c] = t->info.scale_min[t->dup_of[c]];
            t->info.scale_max[c] = t->info.scale_max[t->dup_of[c]];
            continue;
        }
        if (GDALRasterIO(t->band[c], GF_Read, 0, 0, w, h, vals, sw, sh, GDT_Float64, 0, 0) !=
            CE_None) {
            rc = rsclip__gdal_error(e, RSCLIP_ERR_GDAL, "%s: %s", t->path,
                                    "cannot read band statistics");
            goto done;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (valid[i] && isfinite(vals[i])) sorted[k++] = vals[i]; /* +-Inf, NaN: invalid */
        double lo = 0.0, hi = 255.0;
        if (k > 0) {
            qsort(sorted, k, sizeof(double), cmp_double);
            lo = percentile(sorted, k, t->p.pct_low);
            hi = percentile(sorted, k, t->p.pct_high);
        }
        t->info.scale_min[c] = lo;
        t->info.scale_max[c] = hi;
    }
done:
    free(vals);
    free(sorted);
    free(valid);
    free(tmp);
    return rc;
}

int rsclip__tiler_setup_scaling(rsclip_tiler *t, rsclip__gdal_errors *e) {
    rsclip_raster_info *si = &t->info;
    int all_byte = 1;
    for (int c = 0; c < 3; c++) {
        GDALDataType dt = GDALGetRasterDataType(t->band[c]);
        t->is_float[c] = GDALDataTypeIsFloating(dt);
        if (dt != GDT_Byte) all_byte = 0;
    }
    int mode = t->p.scale_mode;
    if (mode == RSCLIP_TILER_SCALE_AUTO)
        mode = all_byte ? RSCLIP_TILER_SCALE_NONE : RSCLIP_TILER_SCALE_PERCENTILE;
    si->scale_mode = mode;
    if (mode == RSCLIP_TILER_SCALE_NONE) {
        for (int c = 0; c < 3; c++) {
            si->scale_min[c] = 0.0;
            si->scale_max[c] = 255.0;
        }
    } else if (mode == RSCLIP_TILER_SCALE_RANGE) {
        for (int c = 0; c < 3; c++) {
            si->scale_min[c] = t->p.scale_min[c];
            si->scale_max[c] = t->p.scale_max[c];
        }
    } else {
        int rc = compute_percentiles(t, e);
        if (rc) return rc;
    }
    static const char *const names[] = {"auto", "none", "range", "percentile"};
    char *js = si->scaling_json;
    size_t cap = sizeof si->scaling_json;
    int n = snprintf(js, cap, "{\"mode\":\"%s\",\"data_type\":\"%s\"", names[mode],
                     si->data_type ? si->data_type : "");
    if (mode == RSCLIP_TILER_SCALE_PERCENTILE)
        n += snprintf(js + n, cap - (size_t)n, ",\"pct\":[%.17g,%.17g]", t->p.pct_low,
                      t->p.pct_high);
    if (mode != RSCLIP_TILER_SCALE_NONE)
        n += snprintf(js + n, cap - (size_t)n,
                      ",\"min\":[%.17g,%.17g,%.17g],\"max\":[%.17g,%.17g,%.17g]", si->scale_min[0],
                      si->scale_min[1], si->scale_min[2], si->scale_max[0], si->scale_max[1],
                      si->scale_max[2]);
    snprintf(js + n, cap - (size_t)n, ",\"fill\":0}");
    for (int c = 0; c < 3; c++) {
        double lo = si->scale_min[c], hi = si->scale_max[c];
        t->lo[c] = lo;
        t->k[c] = hi > lo ? 255.0 / (hi - lo) : 255.0; /* a constant band maps to 0 */
        t->passthrough[c] =
            mode == RSCLIP_TILER_SCALE_NONE && GDALGetRasterDataType(t->band[c]) == GDT_Byte;
    }
    return RSCLIP_OK;
}
