/* spiece.model (sentencepiece ModelProto) parsing without protobuf libraries, and the model checks
 * sentencepiece 0.1.97 applies when it loads one (model_interface.cc InitializePieces,
 * unigram_model.cc Model::Model, normalizer.cc DecodePrecompiledCharsMap).
 *
 * Only the fields the encoder needs are read; everything else is skipped by wire type. The input
 * is untrusted: every read is bounds-checked, every size overflow-checked, and the precompiled
 * charsmap's double-array trie is walked once here so that no reachable transition or replacement
 * string can point outside the blob (lookups also stay bounds-checked). */
#include "base/base.h"
#include "tokenizer/tokenizer_internal.h"

#include "status/status_internal.h"

#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(rsclip__buf *b, size_t extra) {
    size_t need;
    if (rsclip__add_size(b->len, extra, &need)) return RSCLIP_ERR_NOMEM;
    if (need <= b->cap) return RSCLIP_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = rsclip__realloc(b->data, cap);
    if (!p) return RSCLIP_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return RSCLIP_OK;
}

int rsclip__buf_append(rsclip__buf *b, const void *p, size_t n) {
    int rc = buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return RSCLIP_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Protobuf wire format */

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

typedef struct pb_reader {
    const uint8_t *base; /* start of the file, for offsets in messages */
    const uint8_t *p, *end;
} pb_reader;

typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t u; /* VARINT, I64, I32 */
    const uint8_t *data;
    size_t len; /* LEN */
} pb_field;

typedef struct parse_ctx {
    const char *label;
    const uint8_t *base;
} parse_ctx;

static int pb_fail(const parse_ctx *c, const uint8_t *at, const char *what) {
    return rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: %s at byte %zu", c->label, what,
                         (size_t)(at - c->base));
}

static int pb_varint(pb_reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* 1 = a field was read, 0 = end of message, <0 = error (already reported). */
static int pb_next(const parse_ctx *c, pb_reader *r, pb_field *f) {
    memset(f, 0, sizeof *f); /* every member defined whatever the wire type */
    if (r->p >= r->end) return 0;
    const uint8_t *at = r->p;
    uint64_t key;
    if (pb_varint(r, &key)) return pb_fail(c, at, "truncated or overlong varint (field key)");
    if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return pb_fail(c, at, "invalid field number");
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    f->data = NULL;
    f->len = 0;
    f->u = 0;
    switch (f->wire) {
    case PB_VARINT:
        if (pb_varint(r, &f->u)) return pb_fail(c, at, "truncated or overlong varint");
        return 1;
    case PB_I64:
        if (r->end - r->p < 8) return pb_fail(c, at, "truncated 64-bit field");
        for (int i = 7; i >= 0; i--) f->u = (f->u << 8) | r->p[i];
        r->p += 8;
        return 1;
    case PB_I32:
        if (r->end - r->p < 4) return pb_fail(c, at, "truncated 32-bit field");
        for (int i = 3; i >= 0; i--) f->u = (f->u << 8) | r->p[i];
        r->p += 4;
        return 1;
    case PB_LEN: {
        uint64_t n;
        if (pb_varint(r, &n)) return pb_fail(c, at, "truncated or overlong varint (length)");
        if (n > (uint64_t)(r->end - r->p)) return pb_fail(c, at, "field length past the end");
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        return pb_fail(c, at, "unsupported wire type (group or reserved)");
    }
}

static pb_reader pb_sub(const parse_ctx *c, const pb_field *f) {
    pb_reader r = {c->base, f->data, f->data + f->len};
    return r;
}

static float f32_from_bits(uint32_t u) {
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * ModelProto */

typedef struct raw_piece {
    const uint8_t *str;
    size_t len;
    float score;
    int type;
} raw_piece;

typedef struct model_raw {
    raw_piece *pieces;
    size_t n, cap;
    int model_type; /* TrainerSpec.ModelType: UNIGRAM = 1 */
    int byte_fallback;
    int treat_whitespace_as_suffix;
    const uint8_t *charsmap;
    size_t charsmap_len;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} model_raw;

static int parse_piece(const parse_ctx *c, const pb_field *msg, raw_piece *out) {
    pb_reader r = pb_sub(c, msg);
    pb_field f;
    int rc;
    out->str = (const uint8_t *)"";
    out->len = 0;
    out->score = 0.0f;
    out->type = RSCLIP__PIECE_NORMAL;
    while ((rc = pb_next(c, &r, &f)) > 0) {
        if (f.num == 1 && f.wire == PB_LEN) {
            out->str = f.data;
            out->len = f.len;
        } else if (f.num == 2 && f.wire == PB_I32) {
            out->score = f32_from_bits((uint32_t)f.u);
        } else if (f.num == 3 && f.wire == PB_VARINT) {
            /* proto2 closed enum: an unknown value leaves the field as it was */
            if (f.u >= 1 && f.u <= 6) out->type = (int)f.u;
        }
    }
    return rc;
}

static int parse_trainer_spec(const parse_ctx *c, const pb_field *msg, model_raw *m) {
    pb_reader r = pb_sub(c, msg);
    pb_field f;
    int rc;
    while ((rc = pb_next(c, &r, &f)) > 0) {
        if (f.wire != PB_VARINT) continue;
        if (f.num == 3) {
            if (f.u >= 1 && f.u <= 4) m->model_type = (int)f.u;
        } else if (f.num == 24) {
            m->treat_whitespace_as_suffix = f.u != 0;
        } else if (f.num == 35) {
            m->byte_fallback = f.u != 0;
        }
    }
    return rc;
}

static int parse_normalizer_spec(const parse_ctx *c, const pb_field *msg, model_raw *m) {
    pb_reader r = pb_sub(c, msg);
    pb_field f;
    int rc;
    while ((rc = pb_next(c, &r, &f)) > 0) {
        if (f.num == 2 && f.wire == PB_LEN) {
            m->charsmap = f.data;
            m->charsmap_len = f.len;
        } else if (f.wire == PB_VARINT && f.num == 3) {
            m->add_dummy_prefix = f.u != 0;
        } else if (f.wire == PB_VARINT && f.num == 4) {
            m->remove_extra_whitespaces = f.u != 0;
        } else if (f.wire == PB_VARINT && f.num == 5) {
            m->escape_whitespaces = f.u != 0;
        }
    }
    return rc;
}

static int parse_model(const parse_ctx *c, const uint8_t *buf, size_t size, model_raw *m) {
    pb_reader r = {buf, buf, buf + size};
    pb_field f;
    int rc;
    m->model_type = 1;
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = 1;
    while ((rc = pb_next(c, &r, &f)) > 0) {
        if (f.wire != PB_LEN) continue;
        if (f.num == 1) {
            if (m->n == m->cap && rsclip__grow(&m->pieces, &m->cap, sizeof *m->pieces, 1024))
                return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", c->label);
            rc = parse_piece(c, &f, &m->pieces[m->n]);
            if (rc < 0) return rc;
            m->n++;
        } else if (f.num == 2) {
            rc = parse_trainer_spec(c, &f, m);
            if (rc < 0) return rc;
        } else if (f.num == 3) {
            rc = parse_normalizer_spec(c, &f, m);
            if (rc < 0) return rc;
        }
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Vocabulary checks and lookup structures */

static int cmp_bytes(const char *a, size_t na, const char *b, size_t nb) {
    size_t n = na < nb ? na : nb;
    int d = n ? memcmp(a, b, n) : 0;
    if (d) return d;
    return (na > nb) - (na < nb);
}

static int is_matchable(int type) {
    return type == RSCLIP__PIECE_NORMAL || type == RSCLIP__PIECE_USER_DEFINED ||
           type == RSCLIP__PIECE_UNUSED;
}

/* Sort piece ids by string. A merge sort (no global state, thread-safe, stable). */
static void sort_ids(const rsclip__piece *pieces, int32_t *ids, int32_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_ids(pieces, ids, tmp, h);
    sort_ids(pieces, ids + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        const rsclip__piece *a = &pieces[ids[i]], *b = &pieces[ids[j]];
        if (cmp_bytes(a->str, a->len, b->str, b->len) <= 0)
            tmp[k++] = ids[i++];
        else
            tmp[k++] = ids[j++];
    }
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, n * sizeof *ids);
}

/* Exact trie lookup of a matchable piece; -1 if absent. */
static int32_t ptrie_find(const rsclip__ptrie *t, const char *s, size_t len) {
    if (!t->n_nodes) return -1;
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        int64_t ch = rsclip__ptrie_child(t, node, (uint8_t)s[i]);
        if (ch < 0) return -1;
        node = (uint32_t)ch;
    }
    return t->value[node];
}

static int32_t reserved_find(const rsclip_tokenizer *tok, const char *s, size_t len) {
    int lo = 0, hi = tok->n_reserved;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const rsclip__piece *p = &tok->pieces[tok->reserved[mid]];
        int d = cmp_bytes(p->str, p->len, s, len);
        if (d == 0) return tok->reserved[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int32_t rsclip__piece_to_id(const rsclip_tokenizer *tok, const char *s, size_t len) {
    int32_t id = reserved_find(tok, s, len);
    if (id >= 0) return id;
    id = ptrie_find(&tok->trie, s, len);
    if (id >= 0) return id;
    return tok->sp_unk_id;
}

/* Build the byte trie from the matchable ids sorted by string (no duplicates), breadth first so
 * that hostile piece lengths cannot exhaust the stack. */
static int build_trie(rsclip_tokenizer *tok, const int32_t *sorted, size_t m, size_t total_len) {
    rsclip__ptrie *t = &tok->trie;
    size_t max_nodes;
    if (rsclip__add_size(total_len, 1, &max_nodes) || max_nodes > UINT32_MAX)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: spiece.model: vocabulary too large",
                             tok->label);
    t->value = rsclip__malloc(max_nodes * sizeof *t->value);
    t->edge_first = rsclip__malloc(max_nodes * sizeof *t->edge_first);
    t->edge_count = rsclip__malloc(max_nodes * sizeof *t->edge_count);
    t->label = rsclip__malloc(max_nodes);
    t->child = rsclip__malloc(max_nodes * sizeof *t->child);
    size_t *range = rsclip__malloc(max_nodes * 2 * sizeof *range); /* lo, hi per node */
    uint32_t *depth = rsclip__malloc(max_nodes * sizeof *depth);
    int rc = RSCLIP_OK;
    if (!t->value || !t->edge_first || !t->edge_count || !t->label || !t->child || !range ||
        !depth) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", tok->label);
        goto done;
    }
    t->n_nodes = 1;
    t->n_edges = 0;
    range[0] = 0;
    range[1] = m;
    depth[0] = 0;
    for (size_t node = 0; node < t->n_nodes; node++) {
        size_t lo = range[2 * node], hi = range[2 * node + 1];
        uint32_t d = depth[node];
        t->value[node] = -1;
        if (lo < hi && tok->pieces[sorted[lo]].len == d) t->value[node] = sorted[lo++];
        t->edge_first[node] = (uint32_t)t->n_edges;
        size_t j = lo;
        while (j < hi) {
            uint8_t ch = (uint8_t)tok->pieces[sorted[j]].str[d];
            size_t k = j + 1;
            while (k < hi && (uint8_t)tok->pieces[sorted[k]].str[d] == ch) k++;
            size_t child = t->n_nodes++;
            range[2 * child] = j;
            range[2 * child + 1] = k;
            depth[child] = d + 1;
            t->label[t->n_edges] = ch;
            t->child[t->n_edges] = (uint32_t)child;
            t->n_edges++;
            j = k;
        }
        t->edge_count[node] = (uint16_t)(t->n_edges - t->edge_first[node]);
    }
done:
    free(range);
    free(depth);
    return rc;
}

static int piece_to_byte(const rsclip__piece *p) {
    static const char hex[] = "0123456789ABCDEF";
    if (p->len != 6 || memcmp(p->str, "<0x", 3) != 0 || p->str[5] != '>') return -1;
    const char *a = strchr(hex, p->str[3]), *b = strchr(hex, p->str[4]);
    if (!p->str[3] || !p->str[4] || !a || !b) return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

/* Walk every state of the charsmap double array reachable from the root and check that
 * reachable leaves hold offsets of NUL-terminated strings inside the blob.
 *
 * A lookup at a state with base b moves on byte c to unit j = b ^ c if label(u[j]) == c. So unit j
 * can only ever be entered from the state whose base is j ^ (u[j] & 0xFF) (and never when bit 31,
 * part of the label, is set). Grouping units by that base once gives every state's children in
 * O(units), instead of probing 256 candidates per state. */
static int check_charsmap(const rsclip_tokenizer *tok) {
    const uint32_t *u = tok->cm_units;
    size_t nu = tok->cm_n_units;
    if (nu == 0) return RSCLIP_OK;
    size_t nb = (nu + 255) & ~(size_t)255; /* bases b ^ c stay in b's 256-block */
    uint32_t *start = rsclip__calloc(nb + 1, sizeof *start);
    uint32_t *kids = rsclip__malloc(nu * sizeof *kids);
    uint32_t *queue = rsclip__malloc(nu * sizeof *queue);
    uint32_t *mark = rsclip__calloc((nu + 31) / 32, sizeof *mark);
    int rc = RSCLIP_OK;
    if (!start || !kids || !queue || !mark) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", tok->label);
        goto done;
    }
    for (size_t j = 0; j < nu; j++)
        if (!(u[j] & 0x80000000u)) start[(j ^ (u[j] & 0xFF)) + 1]++;
    for (size_t b = 0; b < nb; b++) start[b + 1] += start[b];
    for (size_t j = 0; j < nu; j++)
        if (!(u[j] & 0x80000000u)) kids[start[j ^ (u[j] & 0xFF)]++] = (uint32_t)j;
    for (size_t b = nb; b > 0; b--) start[b] = start[b - 1]; /* undo the fill's shift */
    start[0] = 0;

    /* Breadth first over states; a state is identified by the unit it was entered through, and
     * the root by unit 0. Every unit is queued at most once. */
    size_t head = 0, tail = 0;
    queue[tail++] = 0;
    mark[0] |= 1;
    while (head < tail) {
        uint32_t idx = queue[head++];
        uint32_t base = idx ^ rsclip__da_offset(u[idx]);
        if (base >= nb) continue; /* no child inside the array */
        for (uint32_t k = start[base]; k < start[base + 1]; k++) {
            uint32_t cid = kids[k];
            if (rsclip__da_has_leaf(u[cid])) {
                uint32_t cbase = cid ^ rsclip__da_offset(u[cid]), v;
                if (cbase >= nu || (v = rsclip__da_value(u[cbase])) >= tok->cm_strings_end) {
                    rc = rsclip__error(RSCLIP_ERR_FORMAT,
                                       "%s: spiece.model: precompiled charsmap trie points "
                                       "outside its data (unit %u)",
                                       tok->label, (unsigned)cid);
                    goto done;
                }
            }
            if (!(mark[cid / 32] & (1u << (cid % 32)))) {
                mark[cid / 32] |= 1u << (cid % 32);
                queue[tail++] = cid;
            }
        }
    }
done:
    free(mark);
    free(start);
    free(kids);
    free(queue);
    return rc;
}

static int load_charsmap(rsclip_tokenizer *tok, const model_raw *m) {
    if (m->charsmap_len == 0) return RSCLIP_OK;
    const uint8_t *b = m->charsmap;
    if (m->charsmap_len <= 4)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: spiece.model: precompiled charsmap is broken (%zu bytes)",
                             tok->label, m->charsmap_len);
    uint32_t trie_size =
        (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if (trie_size >= m->charsmap_len)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: spiece.model: precompiled charsmap trie size %u exceeds "
                             "the blob (%zu bytes)",
                             tok->label, (unsigned)trie_size, m->charsmap_len);
    if (m->charsmap_len - 4 - trie_size > UINT32_MAX)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: precompiled charsmap too big",
                             tok->label);
    tok->cm_n_units = trie_size / 4;
    tok->cm_strings_size = m->charsmap_len - 4 - trie_size;
    tok->cm_units = rsclip__malloc(tok->cm_n_units ? tok->cm_n_units * 4 : 1);
    tok->cm_strings = rsclip__malloc(tok->cm_strings_size ? tok->cm_strings_size : 1);
    if (!tok->cm_units || !tok->cm_strings)
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", tok->label);
    for (size_t i = 0; i < tok->cm_n_units; i++) {
        const uint8_t *q = b + 4 + 4 * i;
        tok->cm_units[i] =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    }
    if (tok->cm_strings_size) memcpy(tok->cm_strings, b + 4 + trie_size, tok->cm_strings_size);
    /* offsets below the last NUL are NUL-terminated strings */
    tok->cm_strings_end = 0;
    for (size_t i = tok->cm_strings_size; i > 0; i--) {
        if (tok->cm_strings[i - 1] == '\0') {
            tok->cm_strings_end = i;
            break;
        }
    }
    return check_charsmap(tok);
}

void rsclip__spm_release(rsclip_tokenizer *tok) {
    free(tok->pieces);
    free(tok->strings);
    free(tok->reserved);
    free(tok->trie.value);
    free(tok->trie.edge_first);
    free(tok->trie.edge_count);
    free(tok->trie.label);
    free(tok->trie.child);
    free(tok->cm_units);
    free(tok->cm_strings);
}

/* The pieces of m into tok (strings copied), checked one by one: *n_match and *match_len count
 * the pieces the matcher will hold. */
static int copy_pieces(rsclip_tokenizer *tok, const model_raw *m, size_t *n_match,
                       size_t *match_len) {
    const char *L = tok->label;
    char *w = tok->strings;
    *n_match = *match_len = 0;
    tok->sp_unk_id = -1;
    tok->min_score = FLT_MAX;
    tok->max_score = FLT_MIN;
    for (size_t i = 0; i < m->n; i++) {
        rsclip__piece *p = &tok->pieces[i];
        memcpy(w, m->pieces[i].str, m->pieces[i].len);
        w[m->pieces[i].len] = '\0';
        p->str = w;
        p->len = (uint32_t)m->pieces[i].len;
        w += m->pieces[i].len + 1;
        p->score = m->pieces[i].score;
        p->type = m->pieces[i].type;
        p->hf_id = (int32_t)i;
        if (is_matchable(p->type)) {
            (*n_match)++;
            *match_len += p->len;
        }
        if (p->type == RSCLIP__PIECE_USER_DEFINED) tok->has_user_defined = 1;
        if (p->type == RSCLIP__PIECE_NORMAL) {
            /* std::min / std::max argument order, so NaN scores are skipped the same way */
            if (p->score < tok->min_score) tok->min_score = p->score;
            if (tok->max_score < p->score) tok->max_score = p->score;
        }
        if (p->type == RSCLIP__PIECE_UNKNOWN) {
            if (tok->sp_unk_id >= 0)
                return rsclip__error(RSCLIP_ERR_FORMAT,
                                     "%s: spiece.model: unk is already defined (pieces %d and %zu)",
                                     L, tok->sp_unk_id, i);
            tok->sp_unk_id = (int)i;
        }
        if (p->type == RSCLIP__PIECE_BYTE && !m->byte_fallback)
            return rsclip__error(RSCLIP_ERR_FORMAT,
                                 "%s: spiece.model: byte piece %zu found although byte_fallback "
                                 "is false",
                                 L, i);
        if (p->type == RSCLIP__PIECE_BYTE && piece_to_byte(p) < 0)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: byte piece %zu is invalid",
                                 L, i);
    }
    if (tok->sp_unk_id < 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: unk is not defined", L);
    if (*n_match == 0)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: spiece.model: no normal, user-defined or unused piece", L);
    return RSCLIP_OK;
}

/* Reserved (PieceToId shadowing) and matchable pieces, each sorted by string; a duplicate
 * within either set is an error, as sentencepiece's InsertIfNotPresent makes it. Then the
 * matcher's trie, and the hf ids of matchable pieces a reserved one shadows. ids, tmp: [n]. */
static int index_pieces(rsclip_tokenizer *tok, size_t n, size_t n_match, size_t match_len,
                        int32_t *ids, int32_t *tmp) {
    const char *L = tok->label;
    size_t n_res = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_matchable(tok->pieces[i].type)) ids[n_res++] = (int32_t)i;
    size_t k = n_res;
    for (size_t i = 0; i < n; i++)
        if (is_matchable(tok->pieces[i].type)) ids[k++] = (int32_t)i;
    sort_ids(tok->pieces, ids, tmp, n_res);
    sort_ids(tok->pieces, ids + n_res, tmp, n_match);
    for (size_t i = 1; i < n; i++) {
        if (i == n_res) continue;
        const rsclip__piece *a = &tok->pieces[ids[i - 1]], *b = &tok->pieces[ids[i]];
        if (cmp_bytes(a->str, a->len, b->str, b->len) == 0)
            return rsclip__error(RSCLIP_ERR_FORMAT,
                                 "%s: spiece.model: piece %d is already defined (piece %d)", L,
                                 ids[i], ids[i - 1]);
    }
    tok->reserved = rsclip__malloc((n_res ? n_res : 1) * sizeof *tok->reserved);
    if (!tok->reserved) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", L);
    if (n_res) memcpy(tok->reserved, ids, n_res * sizeof *ids);
    tok->n_reserved = (int)n_res;
    int rc = build_trie(tok, ids + n_res, n_match, match_len);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        rsclip__piece *p = &tok->pieces[i];
        if (is_matchable(p->type)) {
            int32_t r = reserved_find(tok, p->str, p->len);
            if (r >= 0) p->hf_id = r;
        }
    }
    return RSCLIP_OK;
}

/* With byte_fallback, all 256 byte pieces "<0xXX>" must exist: their ids by byte value. */
static int map_bytes(rsclip_tokenizer *tok, size_t n) {
    int found[256] = {0};
    for (size_t i = 0; i < n; i++)
        if (tok->pieces[i].type == RSCLIP__PIECE_BYTE) found[piece_to_byte(&tok->pieces[i])] = 1;
    for (int b = 0; b < 256; b++) {
        if (!found[b])
            return rsclip__error(RSCLIP_ERR_FORMAT,
                                 "%s: spiece.model: byte_fallback is set but there are not 256 "
                                 "byte pieces",
                                 tok->label);
        char name[8];
        static const char hex[] = "0123456789ABCDEF";
        memcpy(name, "<0x", 3);
        name[3] = hex[b >> 4];
        name[4] = hex[b & 15];
        name[5] = '>';
        tok->byte_ids[b] = rsclip__piece_to_id(tok, name, 6);
    }
    return RSCLIP_OK;
}

static int build_vocab(rsclip_tokenizer *tok, const model_raw *m) {
    const char *L = tok->label;
    if (m->n > INT32_MAX - 1)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: too many pieces", L);
    size_t n = m->n, total = 0, bytes;
    for (size_t i = 0; i < n; i++) {
        if (m->pieces[i].len == 0)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: piece %zu is empty", L, i);
        if (rsclip__add_size(total, m->pieces[i].len + 1, &total))
            return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", L);
    }
    tok->n_pieces = (int)n;
    if (rsclip__mul_size(n ? n : 1, sizeof *tok->pieces, &bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", L);
    tok->pieces = rsclip__calloc(1, bytes);
    tok->strings = rsclip__malloc(total ? total : 1);
    int32_t *ids = rsclip__malloc((n ? n : 1) * sizeof *ids);
    int32_t *tmp = rsclip__malloc((n ? n : 1) * sizeof *tmp);
    size_t n_match = 0, match_len = 0;
    int rc = tok->pieces && tok->strings && ids && tmp
                 ? RSCLIP_OK
                 : rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", L);
    if (!rc) rc = copy_pieces(tok, m, &n_match, &match_len);
    if (!rc) rc = index_pieces(tok, n, n_match, match_len, ids, tmp);
    tok->byte_fallback = m->byte_fallback;
    if (!rc && tok->byte_fallback) rc = map_bytes(tok, n);
    free(ids);
    free(tmp);
    return rc;
}

int rsclip__spm_parse(rsclip_tokenizer *tok, const uint8_t *buf, size_t size) {
    parse_ctx c = {tok->label, buf};
    model_raw m;
    memset(&m, 0, sizeof m);
    int rc = parse_model(&c, buf, size, &m);
    if (rc < 0) goto done;
    rc = RSCLIP_OK;
    if (m.model_type != 1) {
        rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                           "%s: spiece.model: model_type %d is not supported (only unigram)",
                           tok->label, m.model_type);
        goto done;
    }
    rc = build_vocab(tok, &m);
    if (rc) goto done;
    tok->add_dummy_prefix = 0; /* transformers' get_spm_processor forces this off */
    tok->remove_extra_whitespaces = m.remove_extra_whitespaces;
    tok->escape_whitespaces = m.escape_whitespaces;
    tok->treat_whitespace_as_suffix = m.treat_whitespace_as_suffix;
    rc = load_charsmap(tok, &m);
done:
    free(m.pieces);
    return rc;
}
