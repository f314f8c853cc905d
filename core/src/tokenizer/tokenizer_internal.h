/* Private to the tokenizer module: the loaded sentencepiece model and the encoder stages.
 *
 * Layers (each file ports one piece of the reference stack):
 *   spiece_model.c   ModelProto parsing (protobuf wire format by hand), validation as
 *                    sentencepiece 0.1.97 ModelInterface::InitializePieces does it, the piece trie,
 *                    and a load-time walk of the precompiled charsmap trie.
 *   spiece_encode.c  sentencepiece's Normalizer::Normalize, unigram Model::EncodeOptimized and
 *                    SentencePieceProcessor::PopulateSentencePieceText (unknown-run merging,
 *                    byte fallback): what `sp.encode(text, out_type=str)` returns.
 *   tokenizer.c      transformers' SiglipTokenizer around it (lower-casing, special tokens,
 *                    canonicalize_text, the "<unk>" prefix, EOS, truncation, padding).
 */
#ifndef RSCLIP_TOKENIZER_INTERNAL_H
#define RSCLIP_TOKENIZER_INTERNAL_H

#include "rsclip/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* Sanity limits: real spiece.model files are a few MiB at most; a normalized text is a small
 * multiple of its input unless a hostile charsmap expands every character. */
#define RSCLIP__SPM_MAX_FILE (256 << 20)
#define RSCLIP__MAX_NORMALIZED ((size_t)1 << 28)

/* ModelProto.SentencePiece.Type */
enum {
    RSCLIP__PIECE_NORMAL = 1,
    RSCLIP__PIECE_UNKNOWN = 2,
    RSCLIP__PIECE_CONTROL = 3,
    RSCLIP__PIECE_USER_DEFINED = 4,
    RSCLIP__PIECE_UNUSED = 5,
    RSCLIP__PIECE_BYTE = 6
};

typedef struct rsclip__piece {
    const char *str; /* NUL-terminated copy (may also contain NULs; len is authoritative) */
    uint32_t len;
    float score;
    int type;
    int32_t hf_id; /* PieceToId(str): a reserved (control/unknown/byte) piece of the same
                      string shadows a normal one, as in sentencepiece */
} rsclip__piece;

/* Byte trie over the pieces sentencepiece matches (NORMAL, USER_DEFINED, UNUSED). Node 0 is the
 * root; a node's children are edges [edge_first, edge_first + edge_count), sorted by label. */
typedef struct rsclip__ptrie {
    int32_t *value; /* [n_nodes] piece id ending here, or -1 */
    uint32_t *edge_first;
    uint16_t *edge_count;
    uint8_t *label;  /* [n_edges] */
    uint32_t *child; /* [n_edges] */
    size_t n_nodes, n_edges;
} rsclip__ptrie;

struct rsclip_tokenizer {
    char *label; /* file name used in error messages */
    rsclip_tokenizer_params params;

    /* vocabulary */
    int n_pieces;
    rsclip__piece *pieces;
    char *strings;     /* arena of the piece strings */
    int32_t *reserved; /* ids of non-matchable pieces sorted by string (PieceToId lookup) */
    int n_reserved;
    rsclip__ptrie trie;
    int sp_unk_id; /* the UNKNOWN piece (sentencepiece unk_id_) */
    float min_score, max_score;
    int has_user_defined;
    int byte_fallback;
    int32_t byte_ids[256]; /* PieceToId("<0xXX>") when byte_fallback */

    /* normalizer (NormalizerSpec) */
    int add_dummy_prefix; /* forced to 0, as transformers patches the proto */
    int remove_extra_whitespaces;
    int escape_whitespaces;
    int treat_whitespace_as_suffix;
    uint32_t *cm_units; /* precompiled charsmap: Darts-clone double-array units */
    size_t cm_n_units;
    char *cm_strings; /* NUL-terminated replacement strings */
    size_t cm_strings_size;
    size_t cm_strings_end; /* one past the last NUL: valid string offsets are below it */

    /* SiglipTokenizer */
    int32_t eos_id, pad_id, unk_id;
    size_t unk_token_length; /* number of pieces of unk_token encoded alone */
};

/* Growable byte buffer. */
typedef struct rsclip__buf {
    char *data;
    size_t len, cap;
} rsclip__buf;

int rsclip__buf_append(rsclip__buf *b, const void *p, size_t n);

/* One piece of sentencepiece's output: a span of the normalized string (or, for byte fallback,
 * a byte piece) and the id transformers gets back from piece_to_id(piece string). */
typedef struct rsclip__sp_piece {
    size_t begin, len; /* span in the normalized string; len 0 for byte pieces */
    int32_t id;
    int byte; /* byte value of a byte-fallback piece, else -1 */
} rsclip__sp_piece;

typedef struct rsclip__sp_result {
    rsclip__buf normalized;
    rsclip__sp_piece *pieces;
    size_t n, cap;
    /* scratch of the Viterbi pass, kept to be reused */
    void *lattice;
    size_t lattice_cap;
} rsclip__sp_result;

void rsclip__sp_result_free(rsclip__sp_result *r);

/* sentencepiece Encode(text) with this model (normalizer included). */
int rsclip__sp_encode(const rsclip_tokenizer *tok, const char *text, size_t len,
                      rsclip__sp_result *out);

/* Parse a ModelProto image into tok (tok->label and tok->params already set); errors name
 * tok->label. On failure tok may hold partial allocations: release them with rsclip__spm_release.
 */
int rsclip__spm_parse(rsclip_tokenizer *tok, const uint8_t *buf, size_t size);
void rsclip__spm_release(rsclip_tokenizer *tok);

/* PieceToId(s): reserved pieces first, then matchable ones, else the unknown id. */
int32_t rsclip__piece_to_id(const rsclip_tokenizer *tok, const char *s, size_t len);
/* Child of node by byte, or -1. */
static inline int64_t rsclip__ptrie_child(const rsclip__ptrie *t, uint32_t node, uint8_t c) {
    uint32_t lo = t->edge_first[node], hi = lo + t->edge_count[node];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->label[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->edge_first[node] + t->edge_count[node] && t->label[lo] == c) return t->child[lo];
    return -1;
}

/* Darts-clone unit accessors (darts.h DoubleArrayUnit). */
static inline int rsclip__da_has_leaf(uint32_t u) {
    return (u >> 8) & 1;
}
static inline uint32_t rsclip__da_value(uint32_t u) {
    return u & ((1U << 31) - 1);
}
static inline uint32_t rsclip__da_label(uint32_t u) {
    return u & ((1U << 31) | 0xFF);
}
static inline uint32_t rsclip__da_offset(uint32_t u) {
    return (u >> 10) << ((u & (1U << 9)) >> 6);
}

/* UTF-8 helpers. rsclip__utf8_check returns the offset of the first invalid byte, or len. */
size_t rsclip__utf8_check(const char *s, size_t len);
/* Decode one code point of valid UTF-8; returns its length. */
size_t rsclip__utf8_decode(const char *s, uint32_t *cp);
size_t rsclip__utf8_encode(uint32_t cp, char out[4]);

#endif
