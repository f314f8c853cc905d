/*
 * rsclip/search.h -- the search core: an in-memory set of embedding vectors with a fast top-k.
 *
 * An rsclip_vecset holds (id, vector) pairs of one dimension. Each vector is kept as a compact
 * int8 code (symmetric quantisation with one float scale per vector, 1 byte per dimension);
 * optionally the float32 vectors too. A search scans the codes with SIMD (AVX-512 VNNI or AVX2
 * when the CPU has them, a portable scalar kernel otherwise: all give bit-identical results),
 * keeps the best n_candidates by approximate score, then re-scores those candidates EXACTLY with
 * their float32 vectors (from the set, or from the caller's fetch callback: the SQLite index
 * reads them by id) and returns the k best. Small sets that hold their floats are searched
 * exactly: sgemv scores, then a provable error margin around the k-th score and an exact
 * re-score, so the result is the exact top-k.
 *
 *     rsclip_vecset *vs;
 *     rsclip_vecset_new(768, NULL, &vs);                 // params NULL: codes only
 *     rsclip_vecset_add(vs, n, ids, vecs);              // any number of times; vecs: [n, 768]
 *     rsclip_vecset_finalize(vs);                       // sorts by id, rejects duplicate ids
 *     rsclip_vecset_save(vs, "index.gpkg.rsvec", stamp); // optional cache beside the index
 *     ...
 *     rsclip_vecset_load("index.gpkg.rsvec", &vs);      // mmap, validated; compare the stamp:
 *     if (rsclip_vecset_source_stamp(vs) != stamp) ...   // stale: rebuild from the index
 *     rsclip_search_params sp = rsclip_search_default_params();
 *     sp.k = 10;
 *     sp.fetch = my_fetch;  sp.fetch_user = db;         // float32 vectors by id for the rerank
 *     rsclip_vecset_hit hits[10];
 *     int n;
 *     rsclip_vecset_search(vs, text_embedding, &sp, hits, &n);
 *
 * Scores. Queries (and negatives) are L2-normalised by the search; stored vectors are used as
 * given and should be L2-normalised (embeddings are). cosine(q, v) is then the dot product of the
 * normalised float32 query with the float32 vector, accumulated in double. Without negatives the
 * score is that cosine. With negative queries n_1..n_m:
 *
 *     score(v) = cos(q, v) - neg_weight * max_j cos(n_j, v)
 *
 * i.e. a tile is pushed down by the negative it resembles most (a tile that looks like any one
 * unwanted concept is unwanted); neg_weight (default 0.5) sets how hard. Hits are ranked by score,
 * higher first, ties by smaller id; each hit also reports the plain positive cosine.
 *
 * Filters. allow_ids restricts the search to a set of ids (ids not in the set are ignored); the
 * filter callback keeps or drops ids one by one (spatial filters such as --bbox/--aoi). Both may
 * be combined. When no more than n_candidates vectors pass an allow list, all of them are
 * re-scored, so the result is exact.
 *
 * Recall. The int8 scan is an approximation; with n_candidates = max(10 k, 256) the exact top-10
 * is recovered for >= 99% of queries even on 1M random 768-d unit vectors (the hardest case: all
 * scores bunched together). Raise n_candidates for more margin.
 *
 * Cache file (".rsvec"): a derived file, rebuildable from the index at any time. Little-endian;
 * a 192-byte header (magic "RSVECSET", version 2, dim, count, the caller's 64-bit source stamp,
 * section offsets, a header checksum) then 64-byte aligned sections: ids (int64, ascending),
 * scales (float32), int4 scales, int8 codes (count x stride bytes, stride = dim rounded up to
 * 128), int4 codes, optionally the float32 vectors, and a table of XXH3-64 checksums, one per
 * 16 KiB block of every section. Loading memory-maps the file read-only and checks every header
 * field, the file size, the table's own checksum, the id order and the scales; the blocks are
 * verified as described at rsclip_vecset_verify. A damaged or hostile file is rejected with
 * RSCLIP_ERR_FORMAT, never trusted; an older version (1, without block checksums) too, so that
 * it is rebuilt. Saving writes a temporary file and renames it into place,
 * never over a file that is not a cache (INDEX.rsvec may be a user's file: it is left alone).
 *
 * Threading: a finalized or loaded vecset is read-only; any number of threads may search it at
 * once. One search splits its scan into n_threads parts (default 1; the CLI passes the core
 * count) run on the process's one worker pool, which the encoder shares (no thread is created per
 * query; while another thread holds the pool, the caller scans alone); the exact float path uses
 * OpenBLAS' own threads instead (one level of parallelism at a time). The filter callback is
 * called from the scan threads (concurrently when n_threads > 1), the fetch callback from the
 * calling thread only.
 */
#ifndef RSCLIP_SEARCH_H
#define RSCLIP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP_VECSET_MAX_DIM 16384
#define RSCLIP_SEARCH_MAX_NEGATIVES 16

typedef struct rsclip_vecset rsclip_vecset;

typedef struct rsclip_vecset_params {
    int keep_floats;      /* also keep the float32 vectors: exact search and rerank without a
                             fetch callback; saved into the cache file. Default 0 */
    size_t capacity_hint; /* expected number of vectors (reserves memory once); default 0 */
} rsclip_vecset_params;

rsclip_vecset_params rsclip_vecset_default_params(void);

/* Create an empty set for vectors of dimension dim (1..RSCLIP_VECSET_MAX_DIM). params may be NULL
 * (defaults). *out is freed with rsclip_vecset_free. */
int rsclip_vecset_new(int dim, const rsclip_vecset_params *params, rsclip_vecset **out);

/* Free a set (created or loaded); NULL is a no-op. */
void rsclip_vecset_free(rsclip_vecset *vs);

/* Append n vectors. ids: [n]; vecs: [n, dim] float32 (copied, quantised at once). Every element
 * must be finite. Ids may come in any order; duplicates are reported by finalize. Not allowed on
 * a finalized or loaded set. */
int rsclip_vecset_add(rsclip_vecset *vs, size_t n, const int64_t *ids, const float *vecs);

/* End the adding phase: order the vectors by id (RSCLIP_ERR_INVALID_ARG on a duplicate id). Must
 * be called before search and save; calling it again is a no-op. */
int rsclip_vecset_finalize(rsclip_vecset *vs);

size_t rsclip_vecset_count(const rsclip_vecset *vs);
int rsclip_vecset_dim(const rsclip_vecset *vs);
int rsclip_vecset_has_floats(const rsclip_vecset *vs); /* 1 if it holds float32 vectors */
/* Ids of a finalized set in ascending order ([count], owned by the set; NULL before finalize). */
const int64_t *rsclip_vecset_ids(const rsclip_vecset *vs);
/* Source stamp of a loaded set (0 for a set built in memory). */
uint64_t rsclip_vecset_source_stamp(const rsclip_vecset *vs);

/* Write the finalized set to path (a temporary file in the same folder, then renamed over path).
 * source_stamp is any 64-bit value that identifies the state of the source (e.g. the index's
 * change counter): it is stored and returned by rsclip_vecset_source_stamp after a load. Only a
 * cache file is ever replaced: when path exists and is anything else (a file without the cache's
 * magic, a folder, a symbolic link, a device), nothing is written, the reason is logged as a
 * warning and RSCLIP_ERR_EXISTS returned. */
int rsclip_vecset_save(const rsclip_vecset *vs, const char *path, uint64_t source_stamp);

/* Map a cache file written by rsclip_vecset_save. The set is finalized and read-only; it keeps the
 * file mapped until rsclip_vecset_free. RSCLIP_ERR_FORMAT for a malformed file,
 * RSCLIP_ERR_UNSUPPORTED for a newer version, RSCLIP_ERR_IO if it cannot be read. */
int rsclip_vecset_load(const char *path, rsclip_vecset **out);

/* The same checks as rsclip_vecset_load, but the file is read into private memory (transparent
 * huge pages) and closed. Loading costs a full read; each later scan is faster than over a mapped
 * file (page walks): the choice for long-lived processes that run many queries (the GDAL plugin, a
 * server); rsclip_vecset_load is the choice for a one-shot search. */
int rsclip_vecset_read(const char *path, rsclip_vecset **out);

/* A loaded set verifies its file's block checksums (XXH3-64 per 16 KiB block): the ids, scales and
 * float vectors when it is loaded (a set holding floats, i.e. a small one, whole); the int8 and
 * int4 codes of a set without floats lazily, each block the first time a search reads it (a
 * one-shot search over a large cache thus reads only what it scans). A search
 * that meets a damaged block fails with RSCLIP_ERR_FORMAT naming the file and the block, and
 * rsclip_vecset_damaged returns 1 from then on: rebuild the set from its source.
 * rsclip_vecset_verify checks every block now (RSCLIP_OK or RSCLIP_ERR_FORMAT). Sets built in
 * memory have no checksums: verify returns RSCLIP_OK, damaged 0. */
int rsclip_vecset_verify(const rsclip_vecset *vs);
int rsclip_vecset_damaged(const rsclip_vecset *vs);

/* Float32 vectors of the given ids, for the exact rerank. ids: [n] ascending; out: [n, dim].
 * Return RSCLIP_OK, or a negative rsclip status (with rsclip__error-style detail if you like):
 * the search fails with it. */
typedef int (*rsclip_fetch_fn)(void *user, size_t n, const int64_t *ids, float *out);
/* Return non-zero to keep id. Must be deterministic; may be called more than once per id, from
 * several threads at once (see Threading). */
typedef int (*rsclip_filter_fn)(void *user, int64_t id);

typedef enum rsclip_search_mode {
    RSCLIP_SEARCH_AUTO = 0,  /* exact if the set holds floats and count <= exact_below */
    RSCLIP_SEARCH_EXACT = 1, /* float32 scores over every vector (needs floats in the set) */
    RSCLIP_SEARCH_QUANT = 2  /* int8 scan + exact rerank of the candidates */
} rsclip_search_mode;

typedef enum rsclip_kernel {
    RSCLIP_KERNEL_AUTO = 0, /* the best one this CPU runs */
    RSCLIP_KERNEL_SCALAR = 1,
    RSCLIP_KERNEL_AVX2 = 2,
    RSCLIP_KERNEL_AVX512VNNI = 3
} rsclip_kernel;

typedef struct rsclip_search_params {
    int k;                    /* hits wanted (>= 1); default 10 */
    int n_candidates;         /* int8 scan keeps this many for the exact rerank; 0 = max(10k,256) */
    int n_prefilter;          /* large sets: a first pass over 4-bit codes keeps this many for
                                 the int8 pass; 0 = max(4 n_candidates, 1024), -1 = no 4-bit
                                 pass (used when the set has >= 8x as many vectors) */
    size_t exact_below;       /* AUTO mode: exact search for sets of at most this many vectors
                                 that hold floats; default 32768 */
    rsclip_search_mode mode;  /* default AUTO */
    rsclip_kernel kernel;     /* for the int8 scan; default AUTO (benchmarks/tests
                                 may force one; RSCLIP_ERR_UNSUPPORTED if the CPU lacks it) */
    int n_threads;            /* scan threads; default 1 */
    const float *negatives;   /* [n_negatives, dim] negative queries, or NULL */
    int n_negatives;          /* 0..RSCLIP_SEARCH_MAX_NEGATIVES */
    float neg_weight;         /* weight of the strongest negative cosine; default 0.5 */
    const int64_t *allow_ids; /* [n_allow] ids to search among (any order), or NULL for all */
    size_t n_allow;
    rsclip_filter_fn filter; /* or NULL */
    void *filter_user;
    rsclip_fetch_fn fetch; /* float32 vectors for the rerank; required unless the set has floats */
    void *fetch_user;
    int coarse; /* rsclip_vecset_candidates only: 1 = the candidates of the 4-bit pass alone, with
                   their 4-bit scores (the first cut of a search over several sets) */
} rsclip_search_params;

rsclip_search_params rsclip_search_default_params(void);

typedef struct rsclip_vecset_hit {
    int64_t id;
    float score;  /* ranking score (= cosine without negatives) */
    float cosine; /* cosine with the positive query */
} rsclip_vecset_hit;

/* The k best vectors for query ([dim] float32, need not be normalised; not all zero). hits: a
 * caller buffer of params->k entries; *n_hits receives how many were filled (fewer than k when
 * fewer vectors pass the filters). params may be NULL (defaults: k = 10, needs floats in the set).
 * The set must be finalized. */
int rsclip_vecset_search(const rsclip_vecset *vs, const float *query,
                         const rsclip_search_params *params, rsclip_vecset_hit *hits, int *n_hits);

/* The first stage of rsclip_vecset_search without its exact rerank: up to cap (id, approximate
 * score) pairs, score descending then id ascending, from the 4-bit/int8 scans (filters, negatives,
 * kernel and n_threads of params apply; n_candidates, when set, lowers cap). For a search spread
 * over several sets (the parts of a sharded index): merge the sets' candidates, keep the best
 * n_candidates of them, then rsclip_vecset_search each set with allow_ids = its share and
 * n_candidates >= that share, so that exactly what one merged set would rerank is reranked, once.
 * ids and scores: [cap]. */
int rsclip_vecset_candidates(const rsclip_vecset *vs, const float *query,
                             const rsclip_search_params *params, int64_t *ids, float *scores,
                             size_t cap, size_t *n);

/* Approximate score of every vector, in id order (heatmaps, histograms): out: [count]. Uses the
 * int8 codes (scores within ~1e-3 of the exact ones for unit vectors), or the exact float path
 * when the set holds floats. Honours negatives, neg_weight, kernel and n_threads of params; k,
 * filters and fetch are ignored. params may be NULL. */
int rsclip_vecset_score_all(const rsclip_vecset *vs, const float *query,
                            const rsclip_search_params *params, float *out);

#ifdef __cplusplus
}
#endif
#endif
