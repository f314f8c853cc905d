/*
 * The seam between the library and its CUDA module.
 *
 * The CUDA encoder (the .cu files of this folder) is built as a module of its own,
 * librsclip_cuda.so, which alone links cuBLASLt, cuBLAS and the CUDA runtime. The library
 * (cuda_load.c) opens it with dlopen on the first CUDA request, so that a program using rsclip on
 * the CPU (every `rsclip` command, every GDAL tool loading the RSCLIP plugin) never maps the
 * half-gigabyte of cuBLAS, and runs on machines without the CUDA libraries at all.
 *
 * The module exports one symbol, RSCLIP_CUDA_MODULE_ENTRY: given the host's identity it returns
 * its table, or NULL when the host comes from another build (the check below). Everything else in
 * the module is hidden, and it holds no pointer into the library: a process may hold two copies
 * of the library (the CLI and the GDAL plugin it loads) sharing one module. Its failures are
 * return codes with a message kept per thread in the module (last_error), which the library's
 * side turns into its own rsclip__error.
 */
#ifndef RSCLIP_CUDA_MODULE_H
#define RSCLIP_CUDA_MODULE_H

#include "cuda/cuda_encoder.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump when the table changes. RSCLIP_CUDA_BUILD_ID (a compile definition of both sides, a hash
 * of the headers whose structs the module reads: core/CMakeLists.txt) changes with them. */
#define RSCLIP_CUDA_ABI 2
#define RSCLIP_CUDA_MODULE_ENTRY "rsclip_cuda_module_open"
#define RSCLIP_CUDA_MODULE_FILE "librsclip_cuda.so"

/* Who the library is: the module serves only its own build. */
typedef struct rsclip__cuda_host {
    int abi;              /* RSCLIP_CUDA_ABI */
    size_t model_size;    /* sizeof(rsclip_model) in the library */
    const char *build_id; /* RSCLIP_CUDA_BUILD_ID of the library */
} rsclip__cuda_host;

/* What the module gives the library: the entry points of cuda_encoder.h, and the message of the
 * calling thread's last failure (a non-OK return of any of them). */
typedef struct rsclip__cuda_api {
    int (*device_count)(int *n);
    int (*create)(const rsclip_model *m, int device, int max_batch, rsclip_precision precision,
                  rsclip__cuda **out);
    void (*destroy)(rsclip__cuda *c);
    rsclip_precision (*precision)(const rsclip__cuda *c);
    const char *(*name)(const rsclip__cuda *c);
    int (*encode_images)(rsclip__cuda *c, int n, const float *pixels, float *embeds,
                         float *last_hidden);
    int (*encode_texts)(rsclip__cuda *c, int n, const int32_t *ids, float *embeds,
                        float *last_hidden);
    const char *(*last_error)(void);
} rsclip__cuda_api;

/* The module's entry (named RSCLIP_CUDA_MODULE_ENTRY). NULL when host's abi, model_size or
 * build_id differ from the module's own: a module from another build is never used. */
typedef const rsclip__cuda_api *(*rsclip__cuda_module_open_fn)(const rsclip__cuda_host *host);

#ifdef __cplusplus
}
#endif
#endif
