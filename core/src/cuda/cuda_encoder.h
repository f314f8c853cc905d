/*
 * Private interface of the CUDA encoder: implemented by the .cu files of core/src/cuda, built
 * into the CUDA module, and forwarded to it by cuda_load.c in the library (cuda_module.h).
 * rsclip_encoder (model/encoder.c) holds one of these when its params name a CUDA device and
 * forwards encode calls to it after checking the arguments; the numerics are those of forward.c
 * (same layer sequence, same weights: uploaded from the rsclip_model structs).
 *
 * Errors: RSCLIP_ERR_UNSUPPORTED (built without CUDA, or its module cannot be loaded: the message
 * says why), RSCLIP_ERR_NOT_FOUND (no such device, no driver), RSCLIP_ERR_NOMEM (device memory),
 * RSCLIP_ERR_INTERNAL (any other CUDA/cuBLAS failure, with its message); rsclip__error has been
 * called.
 */
#ifndef RSCLIP_CUDA_ENCODER_H
#define RSCLIP_CUDA_ENCODER_H

#include "rsclip/model.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rsclip__cuda rsclip__cuda;

/* Devices the driver reports (RSCLIP_OK with 0 when there is no driver or GPU). */
int rsclip__cuda_device_count(int *n);

/* An encoder on device `device` for batches of up to max_batch items, at precision (AUTO, F32 or
 * BF16; AUTO and BF16 run BF16 where the device has bf16 tensor cores). Allocates the activation
 * buffers now; each tower's weights are uploaded at its first encode. */
int rsclip__cuda_new(const rsclip_model *m, int device, int max_batch, rsclip_precision precision,
                     rsclip__cuda **out);
void rsclip__cuda_free(rsclip__cuda *c); /* NULL-safe */
rsclip_precision rsclip__cuda_precision(const rsclip__cuda *c);
const char *rsclip__cuda_name(const rsclip__cuda *c);

/* As rsclip_encode_images / rsclip_encode_texts (arguments already checked by the caller). */
int rsclip__cuda_encode_images(rsclip__cuda *c, int n, const float *pixels, float *embeds,
                               float *last_hidden);
int rsclip__cuda_encode_texts(rsclip__cuda *c, int n, const int32_t *ids, float *embeds,
                              float *last_hidden);

#ifdef __cplusplus
}
#endif
#endif
