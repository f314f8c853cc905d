/* The checkpoint files of a model: model.safetensors, or model.safetensors.index.json and its
 * shards (private to the model module).
 *
 * Two ways to hold them (rsclip_model_params.owned_weights):
 *  - mapped (default): each file is mapped read-only and its tensors used where they lie; the file
 *    stays open so that rsclip__ckpt_unchanged can tell whether it was written since (fstat of
 *    the open file: a file replaced by rename is not ours any more and cannot affect us);
 *  - owned: each file is read once into memory owned by the model, and hashed from that memory;
 *    nothing done to the file afterwards reaches the model.
 * Identity: fingerprint = "sha256:" + the SHA-256 of model.safetensors (what the hub lists as its
 * LFS oid), or for a sharded checkpoint the SHA-256 of the lines "<sha256 hex>  <shard name>\n" in
 * shard-name order (sha256sum's format). Mapped files take their digest from the digest cache
 * when it knows the file version (digest.h), else hash the file once (and remember it).
 * legacy = the sampled 64-bit FNV fingerprint earlier indexes recorded (rsclip_st_fingerprint,
 * combined over shards), still computed to check indexes that recorded it. */
#ifndef RSCLIP_MODEL_CHECKPOINT_H
#define RSCLIP_MODEL_CHECKPOINT_H

#include "json/json.h"
#include "rsclip/safetensors.h"

#include <stddef.h>
#include <sys/stat.h>

typedef struct rsclip__shard {
    char *name;         /* relative to the folder */
    rsclip_st_file *st; /* views into mem */
    void *mem;          /* the mapping or the owned copy */
    size_t size;
    int mapped;     /* mem is a mapping (munmap) rather than owned memory (free) */
    int fd;         /* mapped files: kept open for rsclip__ckpt_unchanged; else -1 */
    struct stat id; /* the file version that was read */
    char sha256[65];
} rsclip__shard;

typedef struct rsclip__ckpt {
    rsclip__shard *shards; /* in sorted file-name order */
    int n;
    rsclip_json *index;            /* model.safetensors.index.json, NULL for one file */
    const rsclip_json *weight_map; /* its "weight_map" object */
    char index_path[4096];
    char fingerprint[80]; /* "sha256:<64 hex>" */
    char legacy[17];      /* sampled FNV fingerprint (16 hex) */
} rsclip__ckpt;

/* Open the checkpoint of folder dir (owned: read into memory, else map) and compute both
 * fingerprints. On failure c is left closed. */
int rsclip__ckpt_open(rsclip__ckpt *c, const char *dir, int owned);
void rsclip__ckpt_close(rsclip__ckpt *c);

/* Find a tensor; on failure sets the error ("<file>: missing tensor '<name>'"). *file receives the
 * path of the file it was looked up in. */
const rsclip_st_tensor *rsclip__ckpt_find(const rsclip__ckpt *c, const char *name,
                                          const char **file);

/* RSCLIP_OK if no mapped file of c was written since it was opened; RSCLIP_ERR_MISMATCH naming the
 * file otherwise (results computed from it must not be used). */
int rsclip__ckpt_unchanged(const rsclip__ckpt *c);

#endif
