/*
 * rsclip/hub.h -- fetching model snapshots from the Hugging Face hub, and resolving model names.
 *
 * Files are downloaded from <endpoint>/<repo>/resolve/main/<file>, where endpoint is $HF_ENDPOINT
 * when set (as the hub's own clients do) and https://huggingface.co otherwise. The default cache
 * is $RSCLIP_CACHE/<repo>, else $XDG_CACHE_HOME/rsclip/models/<repo>, else
 * ~/.cache/rsclip/models/<repo>.
 *
 * Nothing a server sends is trusted:
 *  - each file is written to "<file>.part" beside its destination, created with
 *    O_CREAT|O_EXCL|O_NOFOLLOW (a planted symbolic link or hard link there is removed, never
 *    followed), with "<file>.part.meta" recording the upstream version it holds;
 *  - a partial file is resumed only with "Range" + "If-Range: <ETag it was started with>", and
 *    only when the hub still lists the same version (X-Linked-Etag / ETag); a 200 answer to a
 *    ranged request (the file changed) starts it over: two versions are never spliced;
 *  - before the atomic rename into place a file must have the size the hub announced
 *    (X-Linked-Size, else Content-Length), the SHA-256 it announced for LFS files (X-Linked-Etag,
 *    or an ETag of 64 hex digits) and must parse: a safetensors header whose tensors fit the
 *    file, a JSON object (model.safetensors.index.json: with a weight_map), a loadable
 *    spiece.model. A file that fails is deleted, never installed, and downloaded again by the
 *    next run (an HTML error page served with 200, a body cut short without Content-Length);
 *  - a file already present is kept only if it parses; otherwise it is downloaded again;
 *  - a size cap per file and an overall deadline bound every fetch (rsclip_hub_fetch_params; a
 *    transfer slower than 1 KiB/s for 60 s is also abandoned, GDAL_HTTP_LOW_SPEED_* override).
 * The SHA-256 of every weight file downloaded is remembered for the model loader (rsclip/model.h:
 * the model's fingerprint), so the first use of a fetched model does not hash it again.
 *
 * Short names: "base" = lcybuaa/Git-RSCLIP-base, "large" = lcybuaa/Git-RSCLIP.
 */
#ifndef RSCLIP_HUB_H
#define RSCLIP_HUB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Progress callback, GDAL style: frac in [0,1], msg may be NULL; return non-zero to go on,
 * 0 to cancel (the call then fails with RSCLIP_ERR_CANCELLED, keeping the .part for resume). */
typedef int (*rsclip_progress_fn)(double frac, const char *msg, void *user);

/* Map "base"/"large" to their repo ids; other names are returned unchanged. */
const char *rsclip_hub_repo_id(const char *name);

/* Cache folder of a repo id (not created). */
int rsclip_hub_cache_dir(const char *repo_id, char *out, size_t out_size);

typedef struct rsclip_hub_fetch_params {
    rsclip_progress_fn progress; /* or NULL */
    void *user;                  /* passed to progress */
    uint64_t max_bytes;          /* size cap of one file; 0 = $RSCLIP_FETCH_MAX_BYTES (bytes, or
                                    with a K, M, G or T suffix), else 64 GiB */
    double timeout_s;            /* deadline of the whole fetch in seconds; 0 =
                                    $RSCLIP_FETCH_TIMEOUT, else 24 hours; < 0: none */
} rsclip_hub_fetch_params;

rsclip_hub_fetch_params rsclip_hub_fetch_default_params(void);

/* Download a snapshot (config.json, model.safetensors or its sharded index and shards,
 * spiece.model, preprocessor_config.json, tokenizer_config.json, special_tokens_map.json) into
 * dest_dir (NULL: the cache folder), verified as described above. The resulting folder is
 * written to out_dir. RSCLIP_ERR_NETWORK (transfer failed or interrupted: run again to resume;
 * deadline passed), RSCLIP_ERR_FORMAT (a file failed verification: not installed),
 * RSCLIP_ERR_NOT_FOUND (404), RSCLIP_ERR_IO (local files), RSCLIP_ERR_CANCELLED. params may be
 * NULL (defaults). */
int rsclip_hub_fetch_ex(const char *name, const char *dest_dir,
                        const rsclip_hub_fetch_params *params, char *out_dir, size_t out_size);

/* rsclip_hub_fetch_ex with the default cap and deadline. */
int rsclip_hub_fetch(const char *name, const char *dest_dir, rsclip_progress_fn progress,
                     void *user, char *out_dir, size_t out_size);

/* Resolve what `-m` names: an existing folder, "base", "large", or a repo id present in the
 * cache. RSCLIP_ERR_NOT_FOUND with a hint to run `rsclip model fetch` otherwise. */
int rsclip_hub_resolve(const char *name, char *out_dir, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
