/* Devices an encoder can run on: parsing "cpu" / "cuda" / "cuda:N" and counting CUDA devices (the
 * CUDA encoder itself is core/src/cuda/). */
#include "cuda/cuda_encoder.h"
#include "rsclip/model.h"
#include "status/status_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int rsclip_device_parse(const char *s, rsclip_device *out) {
    if (!s || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "device: NULL argument");
    if (!strcmp(s, "cpu")) {
        out->kind = RSCLIP_DEVICE_CPU;
        out->index = 0;
        return RSCLIP_OK;
    }
    if (!strncmp(s, "cuda", 4) && (s[4] == 0 || s[4] == ':')) {
        long idx = 0;
        if (s[4] == ':') {
            const char *d = s + 5;
            char *end = NULL;
            if (!isdigit((unsigned char)*d) || strlen(d) > 4) goto bad;
            idx = strtol(d, &end, 10);
            if (*end) goto bad;
        }
        out->kind = RSCLIP_DEVICE_CUDA;
        out->index = (int)idx;
        return RSCLIP_OK;
    }
bad:
    return rsclip__error(RSCLIP_ERR_INVALID_ARG, "device '%s' is not one of cpu, cuda, cuda:N", s);
}

int rsclip_cuda_device_count(int *n) {
    if (!n) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "cuda_device_count: n is NULL");
    return rsclip__cuda_device_count(n);
}
