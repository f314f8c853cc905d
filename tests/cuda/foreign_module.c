/* The encoder entry points of a CUDA module from another rsclip build, for
 * test_cuda_foreign_module: built with the real cuda_module.c under another RSCLIP_CUDA_BUILD_ID,
 * so that the real identity check is the one that must refuse it. Never reached. */
#include "cuda/cuda_encoder.h"

#include "rsclip/status.h"

#include <stddef.h>

int rsclip__cuda_device_count(int *n) {
    *n = 1;
    return RSCLIP_OK;
}

int rsclip__cuda_new(const rsclip_model *m, int device, int max_batch, rsclip_precision precision,
                     rsclip__cuda **out) {
    (void)m, (void)device, (void)max_batch, (void)precision;
    *out = NULL;
    return RSCLIP_ERR_INTERNAL;
}

void rsclip__cuda_free(rsclip__cuda *c) {
    (void)c;
}

rsclip_precision rsclip__cuda_precision(const rsclip__cuda *c) {
    (void)c;
    return RSCLIP_PRECISION_F32;
}

const char *rsclip__cuda_name(const rsclip__cuda *c) {
    (void)c;
    return "foreign";
}

int rsclip__cuda_encode_images(rsclip__cuda *c, int n, const float *pixels, float *embeds,
                               float *last_hidden) {
    (void)c, (void)n, (void)pixels, (void)embeds, (void)last_hidden;
    return RSCLIP_ERR_INTERNAL;
}

int rsclip__cuda_encode_texts(rsclip__cuda *c, int n, const int32_t *ids, float *embeds,
                              float *last_hidden) {
    (void)c, (void)n, (void)ids, (void)embeds, (void)last_hidden;
    return RSCLIP_ERR_INTERNAL;
}
