/* The GDAL glue: registration, error capture, rings as polygons (see gdal_util.h). */
#include "gdal/gdal_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cpl_error.h>
#include <gdal.h>

static pthread_once_t g_gdal_once = PTHREAD_ONCE_INIT;

static void register_all(void) {
    GDALAllRegister();
}

void rsclip__gdal_init(void) {
    pthread_once(&g_gdal_once, register_all);
}

static void CPL_STDCALL capture(CPLErr cls, CPLErrorNum num, const char *msg) {
    rsclip__gdal_errors *e = CPLGetErrorHandlerUserData();
    (void)num;
    if (!msg) msg = "";
    if (cls == CE_Warning) {
        rsclip__log(RSCLIP_LOG_WARN, "GDAL: %s", msg);
    } else if (cls == CE_Failure || cls == CE_Fatal) {
        if (e && e->n_failures++ == 0) {
            snprintf(e->msg, sizeof e->msg, "%s", msg);
            for (char *p = e->msg; *p; p++)
                if (*p == '\n' || *p == '\r') *p = ' ';
        }
    }
}

void rsclip__gdal_errors_push(rsclip__gdal_errors *e) {
    e->msg[0] = '\0';
    e->n_failures = 0;
    CPLPushErrorHandlerEx(capture, e);
}

void rsclip__gdal_errors_pop(rsclip__gdal_errors *e) {
    (void)e;
    CPLPopErrorHandler();
}

int rsclip__gdal_error(const rsclip__gdal_errors *e, int code, const char *fmt, ...) {
    char head[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    if (e && e->msg[0]) return rsclip__error(code, "%s: %s", head, e->msg);
    return rsclip__error(code, "%s", head);
}

OGRGeometryH rsclip__ring_polygon(const double *xy, int n) {
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    for (int i = 0; i < n; i++) OGR_G_AddPoint_2D(ring, xy[2 * i], xy[2 * i + 1]);
    if (n > 0 && (xy[0] != xy[2 * (n - 1)] || xy[1] != xy[2 * (n - 1) + 1]))
        OGR_G_AddPoint_2D(ring, xy[0], xy[1]);
    OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
    OGR_G_AddGeometryDirectly(poly, ring);
    return poly;
}
