/*
 * rsclip/safetensors.h -- read-only, memory-mapped safetensors checkpoints.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of JSON describing each
 * tensor ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__":
 * {...}}), then the raw little-endian data block. rsclip_st_open maps the file read-only and
 * validates everything before handing out a single view: header length within the file, valid
 * JSON, known dtypes, shapes whose element count times dtype size equals the byte range (checked
 * for overflow), ranges inside the data block, no two tensors overlapping. A hostile file yields
 * RSCLIP_ERR_FORMAT with a message naming the file and the tensor, never a crash.
 *
 *     rsclip_st_file *f;
 *     if (rsclip_st_open("model.safetensors", &f) != RSCLIP_OK) ...
 *     const rsclip_st_tensor *t = rsclip_st_find(f, "logit_scale");
 *     float v; rsclip_st_to_f32(t, &v, 1);
 *     rsclip_st_close(f);
 *
 * Views point into the mapping and stay valid until rsclip_st_close. The file object is immutable
 * after open and may be shared by threads.
 *
 * Alignment: `data` is the mapping base + 8 + N + begin. Writers usually pad N so that the data
 * block is 8-byte aligned, but nothing guarantees it: read elements with memcpy (or convert with
 * rsclip_st_to_f32, which does), never by casting `data` to float* / int64_t*. The mapping is
 * MAP_PRIVATE read-only: truncating the file on disk while it is open is not defended against.
 * Empty tensors (a 0 in the shape) are valid; their `data` may point anywhere in the data block.
 */
#ifndef RSCLIP_SAFETENSORS_H
#define RSCLIP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP_ST_MAX_DIMS 8

typedef enum rsclip_dtype {
    RSCLIP_DTYPE_F32 = 0,
    RSCLIP_DTYPE_F16,
    RSCLIP_DTYPE_BF16,
    RSCLIP_DTYPE_F64,
    RSCLIP_DTYPE_I64,
    RSCLIP_DTYPE_I32,
    RSCLIP_DTYPE_I16,
    RSCLIP_DTYPE_I8,
    RSCLIP_DTYPE_U8,
    RSCLIP_DTYPE_BOOL
} rsclip_dtype;

/* Name as written in safetensors headers ("F32"), size in bytes of one element. */
const char *rsclip_dtype_name(rsclip_dtype t);
size_t rsclip_dtype_size(rsclip_dtype t);

typedef struct rsclip_st_tensor {
    const char *name;
    rsclip_dtype dtype;
    int n_dims;
    int64_t shape[RSCLIP_ST_MAX_DIMS];
    int64_t n_elements;
    const void *data; /* points into the read-only mapping; may be unaligned for the dtype */
    size_t nbytes;
} rsclip_st_tensor;

typedef struct rsclip_st_file rsclip_st_file;

/* Map and validate `path`; on success *out owns the mapping (free with rsclip_st_close). On
 * failure *out is NULL and the message starts with the path: RSCLIP_ERR_IO (missing, unreadable,
 * not a regular file) or RSCLIP_ERR_FORMAT ("<path>: tensor '<name>': <problem>"). Header length
 * is capped at 100 MB. */
int rsclip_st_open(const char *path, rsclip_st_file **out);
/* Parse an in-memory image of a file (the buffer must outlive the object; used by the fuzzer).
 * `label` names the buffer in error messages. */
int rsclip_st_open_memory(const void *buf, size_t size, const char *label, rsclip_st_file **out);
void rsclip_st_close(rsclip_st_file *f); /* NULL-safe */

/* Accessors: returned pointers are owned by f. Tensors are numbered in header order;
 * rsclip_st_get returns NULL when i is out of range. Names are unique (duplicates are refused). */
const char *rsclip_st_path(const rsclip_st_file *f);
int rsclip_st_count(const rsclip_st_file *f);
const rsclip_st_tensor *rsclip_st_get(const rsclip_st_file *f, int i);
/* Tensor by exact name (binary search), NULL if absent. */
const rsclip_st_tensor *rsclip_st_find(const rsclip_st_file *f, const char *name);
/* Value of a string entry of "__metadata__", NULL if absent. */
const char *rsclip_st_metadata(const rsclip_st_file *f, const char *key);

/* Convert a floating tensor (F32, F16, BF16, F64) to float32 into the caller's dst[n]: exact
 * widening for F16/BF16 (subnormals, infinities, NaN payloads kept), F64 rounded to nearest.
 * n must equal t->n_elements (else RSCLIP_ERR_INVALID_ARG); integer/bool dtypes give
 * RSCLIP_ERR_UNSUPPORTED. Messages name the tensor, not the file: callers add the path. */
int rsclip_st_to_f32(const rsclip_st_tensor *t, float *dst, size_t n);

/* Convenience for loaders: find `name` in f, check that its shape is exactly shape[0..n_dims)
 * (shape == NULL: any shape), and convert it into the caller's dst[n] (n must equal its element
 * count). Errors name the file and the tensor: RSCLIP_ERR_NOT_FOUND (absent), RSCLIP_ERR_MISMATCH
 * (shape or n differ), RSCLIP_ERR_UNSUPPORTED (not a floating dtype). */
int rsclip_st_read_f32(const rsclip_st_file *f, const char *name, int n_dims, const int64_t *shape,
                       float *dst, size_t n);

/* 64-bit fingerprint (hex, 16 chars + NUL) of the file: FNV-1a over the header bytes and 64
 * evenly spaced 4 KiB blocks of the data. Cheap (no full read), but blind to changes between the
 * samples: the model's identity is now the SHA-256 of the whole checkpoint (rsclip/model.h); this
 * one is kept to check indexes that recorded it (rsclip_model_info.fingerprint_legacy).
 * Exactly: FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the first 8 + N
 * bytes of the file, then over the data block (size D): all of it if D <= 64 * 4096, else the 64
 * blocks of 4096 bytes starting at floor(k * (D - 4096) / 63), k = 0..63; printed as "%016llx".
 * f == NULL gives the hash of nothing. */
void rsclip_st_fingerprint(const rsclip_st_file *f, char out[17]);

/* Half-precision helpers (exposed for tests and other modules). */
float rsclip_f16_to_f32(uint16_t h);
float rsclip_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif
