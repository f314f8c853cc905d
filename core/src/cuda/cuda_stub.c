/* The CUDA encoder's entry points in a build without CUDA (RSCLIP_CUDA=OFF, or no nvcc/cuBLAS
 * found at configure time): every device request fails with one clear message. */
#include "cuda/cuda_encoder.h"

#include "status/status_internal.h"

#include <stddef.h>

static int no_cuda(void) {
    return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                         "this rsclip was built without CUDA support: rebuild with nvcc and "
                         "cuBLAS installed (cmake -DRSCLIP_CUDA=ON) to use --device cuda");
}

int rsclip__cuda_built(void) {
    return 0;
}

int rsclip__cuda_device_count(int *n) {
    if (n) *n = 0;
    return no_cuda();
}

int rsclip__cuda_new(const rsclip_model *m, int device, int max_batch, rsclip_precision precision,
                     rsclip__cuda **out) {
    (void)m, (void)device, (void)max_batch, (void)precision;
    if (out) *out = NULL;
    return no_cuda();
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
    return "cuda (not built)";
}

int rsclip__cuda_encode_images(rsclip__cuda *c, int n, const float *pixels, float *embeds,
                               float *last_hidden) {
    (void)c, (void)n, (void)pixels, (void)embeds, (void)last_hidden;
    return no_cuda();
}

int rsclip__cuda_encode_texts(rsclip__cuda *c, int n, const int32_t *ids, float *embeds,
                              float *last_hidden) {
    (void)c, (void)n, (void)ids, (void)embeds, (void)last_hidden;
    return no_cuda();
}
