/* Private to the query module: queries by example (examples.c; see rsclip/query.h, "Examples"). */
#ifndef RSCLIP_QUERY_EXAMPLES_H
#define RSCLIP_QUERY_EXAMPLES_H

#include "rsclip/query.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when q has a query of its own (text, tile, point or image), besides any like tiles. */
int rsclip__query_has_main(const rsclip_query *q);

/* The examples of q are well formed: counts in range, negatives (texts and unlike tiles) at most
 * RSCLIP_SEARCH_MAX_NEGATIVES, and some positive query. */
int rsclip__query_examples_check(const rsclip_query *q);

/* Combine q's examples into the query: qv [dim] holds the query's own vector when it has one and
 * receives the normalised mean of it and the like tiles' embeddings (unchanged without like
 * tiles); neg (may be NULL) receives the unlike tiles' embeddings [n_unlike_tiles, dim]. The
 * tiles are looked up in every part of the session. */
int rsclip__query_examples(rsclip_session *s, const rsclip_query *q, float *qv, float *neg);

#endif
