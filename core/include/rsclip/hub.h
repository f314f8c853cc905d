/*
 * rsclip/hub.h -- fetching model snapshots from the Hugging Face hub, and resolving model names.
 *
 * Files are downloaded from <endpoint>/<repo>/resolve/main/<file>, where endpoint is $HF_ENDPOINT
 * when set (as the hub's own clients do) and https://huggingface.co otherwise. Each file is written
 * to "<file>.part" beside its destination, resumed with an HTTP Range request when a partial file
 * exists, and renamed atomically into place when complete. The default cache is
 * $RSCLIP_CACHE or ~/.cache/rsclip/models/<repo>.
 *
 * Short names: "base" = lcybuaa/Git-RSCLIP-base, "large" = lcybuaa/Git-RSCLIP.
 */
#ifndef RSCLIP_HUB_H
#define RSCLIP_HUB_H

#include <stddef.h>

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

/* Download a snapshot (config.json, model.safetensors or its sharded index and shards,
 * spiece.model, preprocessor_config.json, tokenizer_config.json, special_tokens_map.json) into
 * dest_dir (NULL: the cache folder). The resulting folder is written to out_dir. */
int rsclip_hub_fetch(const char *name, const char *dest_dir, rsclip_progress_fn progress,
                     void *user, char *out_dir, size_t out_size);

/* Resolve what `-m` names: an existing folder, "base", "large", or a repo id present in the
 * cache. RSCLIP_ERR_NOT_FOUND with a hint to run `rsclip model fetch` otherwise. */
int rsclip_hub_resolve(const char *name, char *out_dir, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
