/* Private GDAL glue shared by imageio and hub: one-time driver registration and a scoped GDAL
 * error handler whose captured message is translated once into rsclip's per-thread error. */
#ifndef RSCLIP_GDAL_UTIL_H
#define RSCLIP_GDAL_UTIL_H

#include "status/status_internal.h"

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

#endif
