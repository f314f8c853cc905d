/* sentencepiece 0.1.97 encoding, ported step for step because exact score ties depend on it:
 *   normalize()  = Normalizer::Normalize / NormalizePrefix (normalizer.cc)
 *   viterbi()    = unigram Model::EncodeOptimized (unigram_model.cc): best score per end
 *                  position stored as float, piece candidates formed in double, the <unk>
 *                  candidate in float, strict '>' so the first-found best stays
 *   populate()   = SentencePieceProcessor::PopulateSentencePieceText: consecutive unknown
 *                  pieces merged into one, or split into byte pieces under byte_fallback.
 * The result is what transformers gets from sp_model.encode(text, out_type=str), with each
 * piece's id as piece_to_id(piece string) gives it back. */
#include "base/base.h"
#include "tokenizer/tokenizer_internal.h"

#include "status/status_internal.h"

#include <stdlib.h>
#include <string.h>

static const char k_space_symbol[] = "\xe2\x96\x81"; /* U+2581 */

/* string_util::OneCharLen */
static size_t one_char_len(uint8_t b) {
    return (size_t) "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[b >> 4];
}

static int is_trail(uint8_t b) {
    return (b & 0xC0) == 0x80;
}

static int valid_cp(uint32_t c) {
    return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);
}

/* string_util::IsValidDecodeUTF8: DecodeUTF8 did not fail (a literal U+FFFD counts as valid). */
static int sp_valid_decode_utf8(const uint8_t *s, size_t n, size_t *mblen) {
    uint32_t c;
    if (s[0] < 0x80) {
        *mblen = 1;
        return 1;
    } else if (n >= 2 && (s[0] & 0xE0) == 0xC0) {
        c = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        if (is_trail(s[1]) && c >= 0x80 && valid_cp(c)) {
            *mblen = 2;
            return 1;
        }
    } else if (n >= 3 && (s[0] & 0xF0) == 0xE0) {
        c = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && c >= 0x800 && valid_cp(c)) {
            *mblen = 3;
            return 1;
        }
    } else if (n >= 4 && (s[0] & 0xF8) == 0xF0) {
        c = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && c >= 0x10000 && valid_cp(c)) {
            *mblen = 4;
            return 1;
        }
    }
    *mblen = 1;
    return 0;
}

/* Normalizer::NormalizePrefix: the replacement for the longest rule matching a prefix of in. */
static void normalize_prefix(const rsclip_tokenizer *tok, const uint8_t *in, size_t n,
                             const char **rep, size_t *rep_len, size_t *consumed) {
    /* user-defined symbols pass through untouched (PrefixMatcher, longest match) */
    if (tok->has_user_defined) {
        uint32_t node = 0;
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t ch = rsclip__ptrie_child(&tok->trie, node, in[i]);
            if (ch < 0) break;
            node = (uint32_t)ch;
            int32_t v = tok->trie.value[node];
            if (v >= 0 && tok->pieces[v].type == RSCLIP__PIECE_USER_DEFINED) best = i + 1;
        }
        if (best) {
            *rep = (const char *)in;
            *rep_len = *consumed = best;
            return;
        }
    }

    /* Darts-clone commonPrefixSearch; the longest result wins */
    size_t longest = 0;
    uint32_t value = 0;
    const uint32_t *u = tok->cm_units;
    size_t nu = tok->cm_n_units;
    if (nu) {
        uint32_t id = rsclip__da_offset(u[0]);
        for (size_t i = 0; i < n; i++) {
            id ^= in[i];
            if (id >= nu) break;
            uint32_t unit = u[id];
            if (rsclip__da_label(unit) != in[i]) break;
            id ^= rsclip__da_offset(unit);
            if (rsclip__da_has_leaf(unit)) {
                /* checked at load for every reachable leaf; kept as a guard */
                if (id >= nu) break;
                uint32_t v = rsclip__da_value(u[id]);
                if (v >= tok->cm_strings_end) break;
                longest = i + 1;
                value = v;
            }
        }
    }
    if (longest == 0) {
        size_t len;
        if (!sp_valid_decode_utf8(in, n, &len)) {
            /* malformed: U+FFFD, consuming one byte */
            *rep = "\xEF\xBF\xBD";
            *rep_len = 3;
            *consumed = 1;
        } else {
            *rep = (const char *)in;
            *rep_len = *consumed = len;
        }
    } else {
        *rep = tok->cm_strings + value;
        *rep_len = strlen(*rep);
        *consumed = longest;
    }
}

static int ends_with(const rsclip__buf *b, const char *s, size_t n) {
    return b->len >= n && memcmp(b->data + b->len - n, s, n) == 0;
}

/* Normalizer::Normalize. */
static int normalize(const rsclip_tokenizer *tok, const uint8_t *in, size_t n, rsclip__buf *out) {
    int rc;
    out->len = 0;
    if (n == 0) return RSCLIP_OK;
    const char *rep;
    size_t rep_len, consumed;
    size_t pos = 0;
    if (tok->remove_extra_whitespaces) {
        while (pos < n) {
            normalize_prefix(tok, in + pos, n - pos, &rep, &rep_len, &consumed);
            if (!(rep_len == 1 && rep[0] == ' ')) break;
            pos += consumed;
        }
    }
    if (pos == n) return RSCLIP_OK;
    const char *ws = tok->escape_whitespaces ? k_space_symbol : " ";
    size_t ws_len = tok->escape_whitespaces ? 3 : 1;
    if (!tok->treat_whitespace_as_suffix && tok->add_dummy_prefix) {
        if ((rc = rsclip__buf_append(out, ws, ws_len))) return rc;
    }
    int is_prev_space = tok->remove_extra_whitespaces;
    while (pos < n) {
        normalize_prefix(tok, in + pos, n - pos, &rep, &rep_len, &consumed);
        if (is_prev_space)
            while (rep_len && rep[0] == ' ') rep++, rep_len--;
        if (rep_len) {
            if (out->len + 3 * rep_len > RSCLIP__MAX_NORMALIZED) return RSCLIP_ERR_NOMEM;
            for (size_t k = 0; k < rep_len; k++) {
                if (tok->escape_whitespaces && rep[k] == ' ')
                    rc = rsclip__buf_append(out, k_space_symbol, 3);
                else
                    rc = rsclip__buf_append(out, &rep[k], 1);
                if (rc) return rc;
            }
            is_prev_space = rep[rep_len - 1] == ' ';
        }
        pos += consumed;
        if (!tok->remove_extra_whitespaces) is_prev_space = 0;
    }
    if (tok->remove_extra_whitespaces)
        while (ends_with(out, ws, ws_len)) out->len -= ws_len;
    if (tok->treat_whitespace_as_suffix && tok->add_dummy_prefix) {
        if ((rc = rsclip__buf_append(out, ws, ws_len))) return rc;
    }
    return RSCLIP_OK;
}

typedef struct best_path_node {
    float score;  /* best path score ending here, stored as float as the reference does */
    int32_t id;   /* last piece of that path */
    size_t start; /* where that piece starts; (size_t)-1 = no path yet */
} best_path_node;

static int push_piece(rsclip__sp_result *r, size_t begin, size_t len, int32_t id, int byte) {
    if (r->n == r->cap && rsclip__grow(&r->pieces, &r->cap, sizeof *r->pieces, 64))
        return RSCLIP_ERR_NOMEM;
    rsclip__sp_piece *p = &r->pieces[r->n++];
    p->begin = begin;
    p->len = len;
    p->id = id;
    p->byte = byte;
    return RSCLIP_OK;
}

/* Model::EncodeOptimized, then PopulateSentencePieceText. */
static int viterbi(const rsclip_tokenizer *tok, rsclip__sp_result *r) {
    const uint8_t *s = (const uint8_t *)r->normalized.data;
    size_t size = r->normalized.len;
    r->n = 0;
    if (size == 0) return RSCLIP_OK;
    size_t need, bytes;
    if (rsclip__add_size(size, 1, &need) || rsclip__mul_size(need, sizeof(best_path_node), &bytes))
        return RSCLIP_ERR_NOMEM;
    if (r->lattice_cap < need) {
        void *p = rsclip__realloc(r->lattice, bytes);
        if (!p) return RSCLIP_ERR_NOMEM;
        r->lattice = p;
        r->lattice_cap = need;
    }
    best_path_node *best = r->lattice;
    for (size_t i = 0; i <= size; i++) {
        best[i].score = 0.0f;
        best[i].id = -1;
        best[i].start = (size_t)-1;
    }
    const float unk_score = tok->min_score - 10.0f; /* kUnkPenalty */
    const rsclip__ptrie *t = &tok->trie;
    size_t start = 0;
    while (start < size) {
        const float till_here = best[start].score;
        int has_single_node = 0;
        size_t mblen = one_char_len(s[start]);
        if (mblen > size - start) mblen = size - start;
        uint32_t node = 0;
        for (size_t key = start; key < size; key++) {
            int64_t ch = rsclip__ptrie_child(t, node, s[key]);
            if (ch < 0) break;
            node = (uint32_t)ch;
            int32_t v = t->value[node];
            if (v < 0) continue;
            const rsclip__piece *p = &tok->pieces[v];
            if (p->type == RSCLIP__PIECE_UNUSED) continue;
            size_t end = key + 1, length = end - start;
            /* user-defined pieces get a bonus so that they always win */
            double score = p->type == RSCLIP__PIECE_USER_DEFINED
                               ? (double)((float)length * tok->max_score) - 0.1
                               : (double)p->score;
            double cand = score + (double)till_here;
            best_path_node *target = &best[end];
            if (target->start == (size_t)-1 || cand > (double)target->score) {
                target->score = (float)cand;
                target->start = start;
                target->id = v;
            }
            if (!has_single_node && length == mblen) has_single_node = 1;
        }
        if (!has_single_node) {
            best_path_node *target = &best[start + mblen];
            const float cand = unk_score + till_here;
            if (target->start == (size_t)-1 || cand > target->score) {
                target->score = cand;
                target->start = start;
                target->id = tok->sp_unk_id;
            }
        }
        start += mblen;
    }

    /* Backtrack (pieces come out last first), then reverse. */
    size_t end = size;
    while (end > 0) {
        const best_path_node *bn = &best[end];
        if (bn->start >= end) return RSCLIP_ERR_INTERNAL; /* cannot happen: every step links back */
        int rc = push_piece(r, bn->start, end - bn->start, bn->id, -1);
        if (rc) return rc;
        end = bn->start;
    }
    for (size_t i = 0, j = r->n ? r->n - 1 : 0; i < j; i++, j--) {
        rsclip__sp_piece tmp = r->pieces[i];
        r->pieces[i] = r->pieces[j];
        r->pieces[j] = tmp;
    }
    return RSCLIP_OK;
}

static int populate(const rsclip_tokenizer *tok, rsclip__sp_result *r) {
    int rc = RSCLIP_OK;
    if (tok->byte_fallback) {
        /* unknown pieces become one byte piece per UTF-8 byte */
        size_t n_path = r->n, n_bytes = 0;
        for (size_t i = 0; i < n_path; i++)
            if (r->pieces[i].id == tok->sp_unk_id) n_bytes += r->pieces[i].len;
        if (n_bytes) {
            rsclip__sp_piece *path = rsclip__malloc(n_path * sizeof *path);
            if (!path) return RSCLIP_ERR_NOMEM;
            memcpy(path, r->pieces, n_path * sizeof *path);
            r->n = 0;
            for (size_t i = 0; i < n_path && !rc; i++) {
                const rsclip__sp_piece *p = &path[i];
                if (p->id != tok->sp_unk_id) {
                    rc = push_piece(r, p->begin, p->len, tok->pieces[p->id].hf_id, -1);
                    continue;
                }
                for (size_t k = 0; k < p->len && !rc; k++) {
                    uint8_t b = (uint8_t)r->normalized.data[p->begin + k];
                    rc = push_piece(r, p->begin + k, 0, tok->byte_ids[b], b);
                }
            }
            free(path);
            return rc;
        }
    }
    /* merge runs of unknown pieces; ids become piece_to_id(piece string) */
    size_t w = 0;
    int is_prev_unk = 0;
    for (size_t i = 0; i < r->n; i++) {
        rsclip__sp_piece p = r->pieces[i];
        int is_unk = p.id == tok->sp_unk_id;
        if (is_prev_unk && is_unk) {
            r->pieces[w - 1].len += p.len;
        } else {
            r->pieces[w++] = p;
        }
        is_prev_unk = is_unk;
    }
    r->n = w;
    for (size_t i = 0; i < r->n; i++) {
        rsclip__sp_piece *p = &r->pieces[i];
        if (p->id == tok->sp_unk_id)
            p->id = rsclip__piece_to_id(tok, r->normalized.data + p->begin, p->len);
        else
            p->id = tok->pieces[p->id].hf_id;
    }
    return rc;
}

int rsclip__sp_encode(const rsclip_tokenizer *tok, const char *text, size_t len,
                      rsclip__sp_result *out) {
    int rc = normalize(tok, (const uint8_t *)text, len, &out->normalized);
    if (!rc) rc = viterbi(tok, out);
    if (!rc) rc = populate(tok, out);
    return rc;
}

void rsclip__sp_result_free(rsclip__sp_result *r) {
    if (!r) return;
    free(r->normalized.data);
    free(r->pieces);
    free(r->lattice);
    memset(r, 0, sizeof *r);
}
