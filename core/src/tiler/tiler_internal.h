/* Private declarations of the tiler module. GDAL registration and error capture are shared with
 * imageio (imageio/gdal_util.h). */
#ifndef RSCLIP_TILER_INTERNAL_H
#define RSCLIP_TILER_INTERNAL_H

#include "rsclip/tiler.h"
#include "imageio/gdal_util.h"

#include <gdal.h>

/* Fingerprint of path (see rsclip_file_fingerprint); ds (may be NULL) lists the other files of
 * the dataset. The caller has pushed a GDAL error capture. */
int rsclip__fingerprint(const char *path, GDALDatasetH ds, rsclip_fingerprint *fp);

#endif
