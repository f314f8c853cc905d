/* The public tokenizer: transformers v4.44.2 SiglipTokenizer (slow) around the sentencepiece
 * port in spiece_encode.c. The Python steps it reproduces, in order (SIGLIP_SPEC.md section 8):
 *
 *   SiglipTokenizer.tokenize       "▁" + text.replace("▁", " ")
 *   PreTrainedTokenizer.tokenize   re.sub("(specials)|(.+?)", lower): per-character str.lower()
 *                                  outside special-token strings; tokens_trie.split on the special
 *                                  tokens; AddedToken lstrip/rstrip of the neighbouring chunks
 *   SiglipTokenizer._tokenize      canonicalize_text (drop string.punctuation, \s+ -> " ",
 *                                  strip), then sp.encode(unk_token + text)[unk_token_length:]
 *   SiglipTokenizer.tokenize       drop a leading "▁" token that precedes a special token
 *   convert_tokens_to_ids          piece_to_id of every piece string
 *   prepare_for_model              truncate to max_length - 1, add EOS unless already last, pad
 */
#include "base/base.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode_tables.h"

#include "status/status_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPIECE_UNDERLINE "\xe2\x96\x81"
#define MAX_SPECIALS 3

rsclip_tokenizer_params rsclip_tokenizer_default_params(void) {
    rsclip_tokenizer_params p;
    memset(&p, 0, sizeof p);
    p.do_lower_case = 1;
    p.max_length = 64;
    strcpy(p.eos_token, "</s>");
    strcpy(p.unk_token, "<unk>");
    strcpy(p.pad_token, "</s>");
    return p;
}

static int check_token_param(const char *s, const char *what) {
    const char *nul = memchr(s, 0, 32);
    if (!nul)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tokenizer params: %s is not NUL-terminated",
                             what);
    size_t n = (size_t)(nul - s);
    if (n == 0) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tokenizer params: %s is empty", what);
    if (rsclip__utf8_check(s, n) != n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tokenizer params: %s is not valid UTF-8",
                             what);
    return RSCLIP_OK;
}

static int check_params(const rsclip_tokenizer_params *p) {
    int rc;
    if (p->max_length < 1)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "tokenizer params: max_length %d < 1",
                             p->max_length);
    if ((rc = check_token_param(p->eos_token, "eos_token"))) return rc;
    if ((rc = check_token_param(p->unk_token, "unk_token"))) return rc;
    if ((rc = check_token_param(p->pad_token, "pad_token"))) return rc;
    return RSCLIP_OK;
}

/* all_special_tokens in transformers' order (eos, unk, pad), without repeats. */
static int special_tokens(const rsclip_tokenizer *tok, const char *out[MAX_SPECIALS]) {
    const char *all[MAX_SPECIALS] = {tok->params.eos_token, tok->params.unk_token,
                                     tok->params.pad_token};
    int n = 0;
    for (int i = 0; i < MAX_SPECIALS; i++) {
        int dup = 0;
        for (int k = 0; k < n; k++) dup |= strcmp(out[k], all[i]) == 0;
        if (!dup) out[n++] = all[i];
    }
    return n;
}

void rsclip_tokenizer_free(rsclip_tokenizer *tok) {
    if (!tok) return;
    rsclip__spm_release(tok);
    free(tok->label);
    free(tok);
}

int rsclip_tokenizer_load_memory(const void *buf, size_t size, const char *label,
                                 const rsclip_tokenizer_params *params, rsclip_tokenizer **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tokenizer_load_memory: out");
    *out = NULL;
    if (!buf && size)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tokenizer_load_memory: buf");
    if (!label) label = "<memory>";
    rsclip_tokenizer_params p = params ? *params : rsclip_tokenizer_default_params();
    int rc = check_params(&p);
    if (rc) return rc;
    rsclip_tokenizer *tok = rsclip__calloc(1, sizeof *tok);
    if (!tok) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", label);
    tok->label = rsclip__malloc(strlen(label) + 1);
    if (!tok->label) {
        free(tok);
        return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", label);
    }
    strcpy(tok->label, label);
    tok->params = p;
    rc = rsclip__spm_parse(tok, (const uint8_t *)(buf ? buf : ""), size);
    if (rc) goto fail;

    tok->eos_id = rsclip__piece_to_id(tok, p.eos_token, strlen(p.eos_token));
    tok->pad_id = rsclip__piece_to_id(tok, p.pad_token, strlen(p.pad_token));
    tok->unk_id = rsclip__piece_to_id(tok, p.unk_token, strlen(p.unk_token));

    /* unk_token_length = len(sp_model.encode(unk_token)) */
    rsclip__sp_result r;
    memset(&r, 0, sizeof r);
    rc = rsclip__sp_encode(tok, p.unk_token, strlen(p.unk_token), &r);
    tok->unk_token_length = r.n;
    rsclip__sp_result_free(&r);
    if (rc) {
        rc = rsclip__error(rc, "%s: encoding unk_token failed", label);
        goto fail;
    }
    *out = tok;
    return RSCLIP_OK;
fail:
    rsclip_tokenizer_free(tok);
    return rc;
}

int rsclip_tokenizer_load(const char *path, const rsclip_tokenizer_params *params,
                          rsclip_tokenizer **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tokenizer_load: out");
    *out = NULL;
    if (!path) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_tokenizer_load: path");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return rsclip__error(e == ENOENT ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_IO,
                             "%s: cannot open: %s", path, strerror(e));
    }
    rsclip__buf b = {NULL, 0, 0};
    int rc = RSCLIP_OK;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > RSCLIP__SPM_MAX_FILE) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: spiece.model: larger than %d MiB", path,
                               RSCLIP__SPM_MAX_FILE >> 20);
            break;
        }
        if (rsclip__buf_append(&b, chunk, got)) {
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
    }
    if (!rc && ferror(f)) rc = rsclip__error(RSCLIP_ERR_IO, "%s: read error", path);
    fclose(f);
    if (!rc) rc = rsclip_tokenizer_load_memory(b.data ? b.data : "", b.len, path, params, out);
    free(b.data);
    return rc;
}

int rsclip_tokenizer_vocab_size(const rsclip_tokenizer *tok) {
    return tok ? tok->n_pieces : 0;
}
int rsclip_tokenizer_eos_id(const rsclip_tokenizer *tok) {
    return tok ? tok->eos_id : -1;
}
int rsclip_tokenizer_pad_id(const rsclip_tokenizer *tok) {
    return tok ? tok->pad_id : -1;
}
int rsclip_tokenizer_unk_id(const rsclip_tokenizer *tok) {
    return tok ? tok->unk_id : -1;
}
int rsclip_tokenizer_max_length(const rsclip_tokenizer *tok) {
    return tok ? tok->params.max_length : 0;
}

const char *rsclip_tokenizer_piece(const rsclip_tokenizer *tok, int id) {
    if (!tok || id < 0 || id >= tok->n_pieces) return NULL;
    return tok->pieces[id].str;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding */

/* Token list of one text: ids plus what tokenize()'s final check needs to know of the strings. */
typedef struct tok_list {
    int32_t *ids;
    uint8_t *flags; /* TF_* */
    size_t n, cap;
} tok_list;

enum { TF_UNDERLINE = 1, TF_SPECIAL = 2 }; /* string == "▁", string in all_special_tokens */

static int tl_push(tok_list *l, int32_t id, uint8_t flags) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 128;
        int32_t *ids = rsclip__realloc(l->ids, cap * sizeof *ids);
        if (!ids) return RSCLIP_ERR_NOMEM;
        l->ids = ids;
        uint8_t *fl = rsclip__realloc(l->flags, cap);
        if (!fl) return RSCLIP_ERR_NOMEM;
        l->flags = fl;
        l->cap = cap;
    }
    l->ids[l->n] = id;
    l->flags[l->n] = flags;
    l->n++;
    return RSCLIP_OK;
}

typedef struct enc_state {
    const rsclip_tokenizer *tok;
    const char *specials[MAX_SPECIALS];
    int n_specials;
    rsclip__buf canon, prefixed;
    rsclip__sp_result sp;
    tok_list out;
} enc_state;

static uint8_t string_flags(const enc_state *st, const char *s, size_t n) {
    uint8_t f = 0;
    if (n == 3 && memcmp(s, SPIECE_UNDERLINE, 3) == 0) f |= TF_UNDERLINE;
    for (int i = 0; i < st->n_specials; i++)
        if (strlen(st->specials[i]) == n && memcmp(st->specials[i], s, n) == 0) f |= TF_SPECIAL;
    return f;
}

static int is_ascii_punct(uint32_t cp) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
           (cp >= 123 && cp <= 126);
}

/* SiglipTokenizer._tokenize of one chunk (valid UTF-8). */
static int tokenize_chunk(enc_state *st, const char *s, size_t n) {
    const rsclip_tokenizer *tok = st->tok;
    int rc;
    /* canonicalize_text: delete string.punctuation, each \s+ run -> " ", strip */
    rsclip__buf *c = &st->canon;
    c->len = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = rsclip__utf8_decode(s + i, &cp);
        if (is_ascii_punct(cp)) {
            /* deleted before the whitespace pass, so it never separates two spaces */
        } else if (rsclip__unicode_isspace(cp)) {
            pending_space = 1;
        } else {
            if (pending_space && c->len && (rc = rsclip__buf_append(c, " ", 1))) return rc;
            pending_space = 0;
            if ((rc = rsclip__buf_append(c, s + i, k))) return rc;
        }
        i += k;
    }
    /* sp.encode(unk_token + text), minus the pieces of unk_token alone */
    rsclip__buf *pre = &st->prefixed;
    pre->len = 0;
    if ((rc = rsclip__buf_append(pre, tok->params.unk_token, strlen(tok->params.unk_token))) ||
        (rc = rsclip__buf_append(pre, c->data, c->len)))
        return rc;
    if ((rc = rsclip__sp_encode(tok, pre->data, pre->len, &st->sp))) return rc;
    size_t first = st->sp.n >= tok->unk_token_length ? tok->unk_token_length : 0;
    for (size_t i = first; i < st->sp.n; i++) {
        const rsclip__sp_piece *p = &st->sp.pieces[i];
        uint8_t f = p->byte >= 0 ? 0 : string_flags(st, st->sp.normalized.data + p->begin, p->len);
        if ((rc = tl_push(&st->out, p->id, f))) return rc;
    }
    return RSCLIP_OK;
}

/* Length of the special token that text[pos..] starts with (the first listed wins, as in the
 * lower-casing regex), or 0. */
static size_t special_at_first(const enc_state *st, const char *s, size_t n, int *which) {
    for (int i = 0; i < st->n_specials; i++) {
        size_t k = strlen(st->specials[i]);
        if (k <= n && memcmp(s, st->specials[i], k) == 0) {
            *which = i;
            return k;
        }
    }
    return 0;
}

/* Same, longest match (tokens_trie.split). */
static size_t special_at_longest(const enc_state *st, const char *s, size_t n, int *which) {
    size_t best = 0;
    for (int i = 0; i < st->n_specials; i++) {
        size_t k = strlen(st->specials[i]);
        if (k > best && k <= n && memcmp(s, st->specials[i], k) == 0) {
            best = k;
            *which = i;
        }
    }
    return best;
}

static size_t lstrip_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = rsclip__utf8_decode(s + i, &cp);
        if (!rsclip__unicode_isspace(cp)) break;
        i += k;
    }
    return i;
}

static size_t rstrip_end(const char *s, size_t n) {
    /* walk forward remembering the end of the last non-space character */
    size_t i = 0, end = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = rsclip__utf8_decode(s + i, &cp);
        i += k;
        if (!rsclip__unicode_isspace(cp)) end = i;
    }
    return end;
}

static int encode_text(enc_state *st, const char *text, size_t len) {
    const rsclip_tokenizer *tok = st->tok;
    int rc;
    rsclip__buf a = {NULL, 0, 0}, b = {NULL, 0, 0};

    /* "▁" + text.replace("▁", " ") */
    if ((rc = rsclip__buf_append(&a, SPIECE_UNDERLINE, 3))) goto done;
    for (size_t i = 0; i < len;) {
        if (len - i >= 3 && memcmp(text + i, SPIECE_UNDERLINE, 3) == 0) {
            rc = rsclip__buf_append(&a, " ", 1);
            i += 3;
        } else {
            rc = rsclip__buf_append(&a, text + i, 1);
            i++;
        }
        if (rc) goto done;
    }

    /* lower-case every character outside the special-token strings */
    const rsclip__buf *low = &a;
    if (tok->params.do_lower_case) {
        for (size_t i = 0; i < a.len;) {
            int which;
            size_t k = special_at_first(st, a.data + i, a.len - i, &which);
            if (k) {
                rc = rsclip__buf_append(&b, a.data + i, k);
                i += k;
            } else {
                uint32_t cp, lo[3];
                k = rsclip__utf8_decode(a.data + i, &cp);
                int m = rsclip__unicode_lower(cp, lo);
                for (int j = 0; j < m && !rc; j++) {
                    char u8[4];
                    rc = rsclip__buf_append(&b, u8, rsclip__utf8_encode(lo[j], u8));
                }
                i += k;
            }
            if (rc) goto done;
        }
        low = &b;
    }

    /* split on special tokens; chunks next to one lose their whitespace on that side */
    const char *s = low->data;
    size_t n = low->len, chunk = 0, i = 0;
    int prev_special = 0;
    while (i <= n) {
        int which = -1;
        size_t k = i < n ? special_at_longest(st, s + i, n - i, &which) : 0;
        if (i < n && !k) {
            i++;
            continue;
        }
        /* chunk [chunk, i) ends here: at a special token or at the end of the text */
        size_t cb = chunk, ce = i;
        if (prev_special) cb += lstrip_len(s + cb, ce - cb);
        if (k) ce = cb + rstrip_end(s + cb, ce - cb);
        if (ce > cb && (rc = tokenize_chunk(st, s + cb, ce - cb))) goto done;
        if (!k) break;
        if ((rc = tl_push(&st->out, rsclip__piece_to_id(tok, s + i, k), TF_SPECIAL))) goto done;
        i += k;
        chunk = i;
        prev_special = 1;
    }

    /* tokenize(): a lone leading "▁" before a special token is dropped */
    if (st->out.n > 1 && (st->out.flags[0] & TF_UNDERLINE) && (st->out.flags[1] & TF_SPECIAL)) {
        memmove(st->out.ids, st->out.ids + 1, (st->out.n - 1) * sizeof *st->out.ids);
        memmove(st->out.flags, st->out.flags + 1, st->out.n - 1);
        st->out.n--;
    }
done:
    free(a.data);
    free(b.data);
    return rc;
}

int rsclip_tokenizer_encode(const rsclip_tokenizer *tok, const char *text, ptrdiff_t len,
                            int32_t *ids, int cap, int *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    if (!tok || !ids || cap < 1 || (!text && len != 0))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "rsclip_tokenizer_encode: invalid argument (tok, text, ids or cap)");
    size_t n = len < 0 ? strlen(text) : (size_t)len;
    if (!text) text = "";
    size_t bad = rsclip__utf8_check(text, n);
    if (bad != n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "text is not valid UTF-8 at byte %zu", bad);

    enc_state st;
    memset(&st, 0, sizeof st);
    st.tok = tok;
    st.n_specials = special_tokens(tok, st.specials);
    int rc = encode_text(&st, text, n);
    if (rc == RSCLIP_ERR_NOMEM) {
        rc = rsclip__error(
            rc, "%s: out of memory (or normalized text over 256 MiB) encoding a text of %zu bytes",
            tok->label, n);
    } else if (rc) {
        rc = rsclip__error(rc, "%s: internal error while encoding", tok->label);
    } else {
        /* prepare_for_model: truncation counts the EOS to come, EOS is added only if not last */
        size_t m = st.out.n;
        if (m > (size_t)cap - 1) m = (size_t)cap - 1;
        size_t k = 0;
        for (; k < m; k++) ids[k] = st.out.ids[k];
        if (k == 0 || ids[k - 1] != tok->eos_id) ids[k++] = tok->eos_id;
        if (n_tokens) *n_tokens = (int)k;
        for (; k < (size_t)cap; k++) ids[k] = tok->pad_id;
    }
    rsclip__sp_result_free(&st.sp);
    free(st.canon.data);
    free(st.prefixed.data);
    free(st.out.ids);
    free(st.out.flags);
    return rc;
}
