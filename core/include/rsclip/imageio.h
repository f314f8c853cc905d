/*
 * rsclip/imageio.h -- reading whole small images (PNG, JPEG, 8-bit GeoTIFF, anything GDAL opens)
 * as interleaved 8-bit RGB, ready for rsclip_preprocess_rgb8().
 *
 *     uint8_t *rgb; int w, h;
 *     if (rsclip_image_read_rgb8("tile.png", &rgb, &w, &h) != RSCLIP_OK)
 *         fprintf(stderr, "rsclip: %s\n", rsclip_last_error());
 *     rsclip_preprocess_rgb8(model, rgb, w, h, (size_t)w * 3, pixels);
 *     rsclip_free(rgb);
 *
 * Band mapping: 8-bit images with three or more bands give bands 1, 2, 3 as R, G, B, unless the
 * bands carry red/green/blue colour interpretations, which are then used wherever they are; one
 * band is grey (replicated to R = G = B) or, with a colour table, palette indices expanded through
 * it. Two bands and any sample type other than 8-bit unsigned are RSCLIP_ERR_UNSUPPORTED: scaling
 * of 16-bit or float imagery belongs to the tiler (`rsclip index --scale`). Large scenes are the
 * tiler's job too: images over RSCLIP_IMAGE_MAX_PIXELS pixels are refused.
 *
 * Thread-safe: GDAL is registered once per process; GDAL errors are captured per call and
 * reported through rsclip_last_error() with the file name.
 */
#ifndef RSCLIP_IMAGEIO_H
#define RSCLIP_IMAGEIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest image (width * height) rsclip_image_read_rgb8 accepts: 2^28 pixels (768 MiB of RGB). */
#define RSCLIP_IMAGE_MAX_PIXELS ((size_t)1 << 28)

/* Read the whole image at path as tightly packed RGB (row stride = 3 * width). On success *rgb is
 * allocated (free with rsclip_free) and *width, *height are set; on failure *rgb is NULL and the
 * error names the file: RSCLIP_ERR_NOT_FOUND / RSCLIP_ERR_IO (missing or unreadable),
 * RSCLIP_ERR_GDAL (GDAL cannot open or read it), RSCLIP_ERR_UNSUPPORTED (band type or count),
 * RSCLIP_ERR_NOMEM. */
int rsclip_image_read_rgb8(const char *path, uint8_t **rgb, int *width, int *height);

#ifdef __cplusplus
}
#endif
#endif
