/*
 * SiglipImageProcessor in C: Pillow 9.4 BICUBIC resize (bit-exact fixed point, as
 * libImaging/Resample.c computes it), rescale and normalise into CHW float32.
 *
 * Resize, per axis (horizontal pass first, then vertical; a pass runs only when that axis
 * changes size; the intermediate image is uint8 like Pillow's):
 *   scale = in/out, fs = max(scale, 1), support = 2 fs (antialiasing when shrinking);
 *   output i covers input [xmin, xmax) around center = (i + 0.5) scale with weights
 *   K((x - center + 0.5) / fs) (Keys cubic, a = -0.5), normalised to sum 1 in double, then
 *   rounded to 22-bit fixed point; out = clamp((2^21 + sum p c) >> 22, 0, 255).
 */
#include "base/base.h"
#include "model/model_internal.h"

#include "status/status_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

/* Pillow's bicubic_filter with a = -0.5, written in the same operation order (the coefficients
 * are rounded to fixed point, so the double arithmetic must match to be bit-exact). */
static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Fixed-point coefficients of one axis: for output i, taps bounds[2i] .. bounds[2i]+bounds[2i+1]-1
 * with coefficients kk[i * ksize + j]. Returns ksize, or 0 on allocation failure. */
static int precompute_coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    size_t nk;
    if (rsclip__mul_size((size_t)out_size, (size_t)ksize, &nk)) return 0;
    double *pre = rsclip__malloc(nk * sizeof(double));
    int32_t *kk = rsclip__malloc(nk * sizeof(int32_t));
    int *bounds = rsclip__malloc((size_t)out_size * 2 * sizeof(int));
    if (!pre || !kk || !bounds) {
        free(pre), free(kk), free(bounds);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = &pre[(size_t)xx * ksize];
        for (int x = 0; x < xmax; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (int x = xmax; x < ksize; x++) k[x] = 0;
        bounds[xx * 2 + 0] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < nk; i++) {
        double v = pre[i] * (1 << PRECISION_BITS);
        kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + v) : (int32_t)(0.5 + v);
    }
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static inline uint8_t clip8(int32_t in) {
    if (in >= (1 << PRECISION_BITS << 8)) return 255;
    if (in <= 0) return 0;
    return (uint8_t)(in >> PRECISION_BITS);
}

/* src: h rows of w pixels (stride bytes apart) -> dst: h rows of out_w pixels, tightly packed. */
static int resample_horizontal(const uint8_t *src, int w, int h, size_t stride, int ch,
                               uint8_t *dst, int out_w) {
    int *bounds;
    int32_t *kk;
    int ksize = precompute_coeffs(w, out_w, &bounds, &kk);
    if (!ksize) return RSCLIP_ERR_NOMEM;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * stride;
        uint8_t *orow = dst + (size_t)y * out_w * ch;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
            const int32_t *k = &kk[(size_t)xx * ksize];
            for (int c = 0; c < ch; c++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += row[(size_t)(x + xmin) * ch + c] * k[x];
                orow[(size_t)xx * ch + c] = clip8(ss);
            }
        }
    }
    free(bounds);
    free(kk);
    return RSCLIP_OK;
}

/* src: h rows of w pixels (stride bytes apart) -> dst: out_h rows of w pixels, tightly packed. */
static int resample_vertical(const uint8_t *src, int w, int h, size_t stride, int ch, uint8_t *dst,
                             int out_h) {
    int *bounds;
    int32_t *kk;
    int ksize = precompute_coeffs(h, out_h, &bounds, &kk);
    if (!ksize) return RSCLIP_ERR_NOMEM;
    size_t row_bytes = (size_t)w * ch;
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
        const int32_t *k = &kk[(size_t)yy * ksize];
        uint8_t *orow = dst + (size_t)yy * row_bytes;
        for (size_t i = 0; i < row_bytes; i++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * stride + i] * k[y];
            orow[i] = clip8(ss);
        }
    }
    free(bounds);
    free(kk);
    return RSCLIP_OK;
}

int rsclip_resize_bicubic_u8(const uint8_t *src, int src_w, int src_h, size_t src_stride,
                             int channels, uint8_t *dst, int dst_w, int dst_h) {
    if (!src || !dst || src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0 || channels <= 0 ||
        channels > 4)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "resize: invalid arguments (%dx%dx%d -> %dx%d)", src_w, src_h,
                             channels, dst_w, dst_h);
    size_t row_bytes, tmp_bytes;
    if (rsclip__mul_size((size_t)src_w, (size_t)channels, &row_bytes) || src_stride < row_bytes)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "resize: stride %zu below row size",
                             src_stride);
    /* The fixed-point sum must not overflow int32: with 22-bit coefficients and 8-bit pixels,
     * Pillow relies on the kernel sums staying near 1; guard absurd scale factors instead. */
    if ((size_t)src_w > (size_t)dst_w * 1024 || (size_t)src_h > (size_t)dst_h * 1024)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "resize: %dx%d -> %dx%d: factor too large",
                             src_w, src_h, dst_w, dst_h);
    int need_h = src_w != dst_w, need_v = src_h != dst_h;
    if (!need_h && !need_v) {
        for (int y = 0; y < src_h; y++)
            memcpy(dst + (size_t)y * row_bytes, src + (size_t)y * src_stride, row_bytes);
        return RSCLIP_OK;
    }
    if (!need_v) return resample_horizontal(src, src_w, src_h, src_stride, channels, dst, dst_w);
    if (!need_h) return resample_vertical(src, src_w, src_h, src_stride, channels, dst, dst_h);
    /* Both: horizontal into a uint8 intermediate of dst_w x src_h, then vertical. */
    if (rsclip__mul_size((size_t)dst_w * channels, (size_t)src_h, &tmp_bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "resize: image too large");
    uint8_t *tmp = rsclip__malloc(tmp_bytes);
    if (!tmp)
        return rsclip__error(RSCLIP_ERR_NOMEM, "resize: out of memory (%zu bytes)", tmp_bytes);
    int rc = resample_horizontal(src, src_w, src_h, src_stride, channels, tmp, dst_w);
    if (rc == RSCLIP_OK)
        rc = resample_vertical(tmp, dst_w, src_h, (size_t)dst_w * channels, channels, dst, dst_h);
    free(tmp);
    if (rc != RSCLIP_OK) return rsclip__error(rc, "resize: out of memory");
    return RSCLIP_OK;
}

int rsclip_preprocess_rgb8(const rsclip_model *m, const uint8_t *rgb, int width, int height,
                           size_t stride, float *out) {
    if (!m || !rgb || !out || width <= 0 || height <= 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "preprocess: invalid arguments");
    const rsclip_model_info *mi = &m->info;
    const int s = mi->image_size;
    if (stride < (size_t)width * 3)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "preprocess: stride %zu below row size %d",
                             stride, width * 3);
    const uint8_t *px = rgb;
    size_t px_stride = stride;
    uint8_t *resized = NULL;
    if (width != s || height != s) {
        if (!mi->do_resize)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "preprocess: image is %dx%d, model needs %dx%d and do_resize is "
                                 "false",
                                 width, height, s, s);
        resized = rsclip__malloc((size_t)s * s * 3);
        if (!resized) return rsclip__error(RSCLIP_ERR_NOMEM, "preprocess: out of memory");
        int rc = rsclip_resize_bicubic_u8(rgb, width, height, stride, 3, resized, s, s);
        if (rc != RSCLIP_OK) {
            free(resized);
            return rc;
        }
        px = resized;
        px_stride = (size_t)s * 3;
    }
    /* Per channel lookup table: the result depends only on the byte value. As transformers:
     * rescale in double then cast to float32; normalise in float32. */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 256; v++) {
            float x = mi->do_rescale ? (float)((double)v * mi->rescale_factor) : (float)v;
            if (mi->do_normalize) x = (x - mi->image_mean[c]) / mi->image_std[c];
            lut[c][v] = x;
        }
    }
    /* out: [3, S, S] (CHW) from HWC bytes. */
    const size_t plane = (size_t)s * s;
    for (int y = 0; y < s; y++) {
        const uint8_t *row = px + (size_t)y * px_stride;
        for (int x = 0; x < s; x++) {
            for (int c = 0; c < 3; c++) out[c * plane + (size_t)y * s + x] = lut[c][row[x * 3 + c]];
        }
    }
    free(resized);
    return RSCLIP_OK;
}
