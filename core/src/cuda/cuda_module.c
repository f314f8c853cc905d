/* The CUDA module's side of the seam (cuda_module.h): its one exported entry, and rsclip__error
 * as the .cu files call it, which here keeps the message for the library to collect. Built into
 * librsclip_cuda.so only, with every other symbol hidden. */
#include "cuda/cuda_module.h"

#include "model/model_internal.h"
#include "status/status_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char t_error[1024];

int rsclip__error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_error, sizeof t_error, fmt, ap);
    va_end(ap);
    return code;
}

static const char *last_error(void) {
    return t_error;
}

static const rsclip__cuda_api g_api = {
    .device_count = rsclip__cuda_device_count,
    .create = rsclip__cuda_new,
    .destroy = rsclip__cuda_free,
    .precision = rsclip__cuda_precision,
    .name = rsclip__cuda_name,
    .encode_images = rsclip__cuda_encode_images,
    .encode_texts = rsclip__cuda_encode_texts,
    .last_error = last_error,
};

__attribute__((visibility("default"))) const rsclip__cuda_api *
rsclip_cuda_module_open(const rsclip__cuda_host *host) {
    if (!host || host->abi != RSCLIP_CUDA_ABI || host->model_size != sizeof(rsclip_model) ||
        !host->build_id || strcmp(host->build_id, RSCLIP_CUDA_BUILD_ID))
        return NULL;
    return &g_api;
}
