/* Private GDAL glue, its own module, shared by every module that uses GDAL (tiler, imageio, query,
 * export, render, hub, plan): one-time driver registration, a scoped GDAL error handler whose
 * captured message is translated once into rsclip's per-thread error, and footprints as OGR
 * polygons. */
#ifndef RSCLIP_GDAL_UTIL_H
#define RSCLIP_GDAL_UTIL_H

#include "status/status_internal.h"

#include <ogr_api.h>

/* GDALAllRegister() exactly once per process (pthread_once). */
void rsclip__gdal_init(void);

/* Captures GDAL failures raised on this thread between push and pop (CPLPushErrorHandlerEx is
 * per thread); warnings go to the rsclip log sink, debug messages are dropped. */
typedef struct rsclip__gdal_errors {
    char msg[512]; /* first failure message, "" if none */
    int n_failures;
} rsclip__gdal_errors;

void rsclip__gdal_errors_push(rsclip__gdal_errors *e);
void rsclip__gdal_errors_pop(rsclip__gdal_errors *e);

/* rsclip__error(code, fmt, ...) with ": <GDAL message>" appended when one was captured. */
int rsclip__gdal_error(const rsclip__gdal_errors *e, int code, const char *fmt, ...)
    RSCLIP_PRINTF(3, 4);

/* Polygon from a ring of n (x, y) points (closed here if the caller did not). */
OGRGeometryH rsclip__ring_polygon(const double *xy, int n);

#endif
