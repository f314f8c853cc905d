/*
 * rsclip/tokenizer.h -- SigLIP's text tokenizer: a SentencePiece unigram model read from
 * spiece.model, wrapped exactly as transformers' SiglipTokenizer (slow) does it.
 *
 * Pipeline for one text (see SIGLIP_SPEC.md section 8):
 *   U+2581 -> space, prepend U+2581; lower-case (Python str.lower, per character) except the
 *   special-token strings; split out literal special tokens; per chunk: delete ASCII punctuation,
 *   collapse Unicode whitespace runs to one space, strip; NFKC via the model's precompiled
 *   charsmap; unigram Viterbi over "<unk>"+chunk (float32-stored best scores, so exact score ties
 *   break as sentencepiece 0.1.97 does); merge consecutive <unk>; append EOS; truncate to
 *   max_length (keeping EOS last); right-pad with pad_id to max_length.
 *
 *     rsclip_tokenizer *tok;
 *     rsclip_tokenizer_params p = rsclip_tokenizer_default_params();
 *     if (rsclip_tokenizer_load("spiece.model", &p, &tok) != RSCLIP_OK) ...
 *     int32_t ids[64]; int n;
 *     rsclip_tokenizer_encode(tok, "solar farms", -1, ids, 64, &n);
 *
 * The tokenizer is immutable after load and may be shared by threads.
 */
#ifndef RSCLIP_TOKENIZER_H
#define RSCLIP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rsclip_tokenizer_params {
    int do_lower_case;  /* 1 (tokenizer_config.json "do_lower_case") */
    int max_length;     /* 64 ("model_max_length"); encode pads/truncates to this */
    char eos_token[32]; /* "</s>" */
    char unk_token[32]; /* "<unk>" */
    char pad_token[32]; /* "</s>" */
} rsclip_tokenizer_params;

rsclip_tokenizer_params rsclip_tokenizer_default_params(void);

typedef struct rsclip_tokenizer rsclip_tokenizer;

/* Load spiece.model (a sentencepiece ModelProto, parsed here without protobuf libraries).
 * params may be NULL (defaults). Errors name the file. */
int rsclip_tokenizer_load(const char *path, const rsclip_tokenizer_params *params,
                          rsclip_tokenizer **out);
/* Same from a memory image (the fuzzer's entry point); label names it in errors. */
int rsclip_tokenizer_load_memory(const void *buf, size_t size, const char *label,
                                 const rsclip_tokenizer_params *params, rsclip_tokenizer **out);
void rsclip_tokenizer_free(rsclip_tokenizer *tok); /* NULL-safe */

int rsclip_tokenizer_vocab_size(const rsclip_tokenizer *tok);
int rsclip_tokenizer_eos_id(const rsclip_tokenizer *tok);
int rsclip_tokenizer_pad_id(const rsclip_tokenizer *tok);
int rsclip_tokenizer_unk_id(const rsclip_tokenizer *tok);
/* params.max_length given at load (the usual `cap` of rsclip_tokenizer_encode). */
int rsclip_tokenizer_max_length(const rsclip_tokenizer *tok);
/* Piece string of an id (NUL-terminated UTF-8), NULL if out of range. */
const char *rsclip_tokenizer_piece(const rsclip_tokenizer *tok, int id);

/* Encode text (UTF-8, len bytes or -1 for NUL-terminated) into exactly `cap` ids: the token ids,
 * EOS, then padding. `cap` is normally params.max_length; longer texts are truncated to cap-1 ids
 * + EOS as the reference does with truncation=True. *n_tokens (may be NULL) receives the number of
 * ids before padding (EOS included). Invalid UTF-8 is RSCLIP_ERR_INVALID_ARG ("text is not valid
 * UTF-8 at byte N"); empty text is valid (EOS + padding). */
int rsclip_tokenizer_encode(const rsclip_tokenizer *tok, const char *text, ptrdiff_t len,
                            int32_t *ids, int cap, int *n_tokens);

#ifdef __cplusplus
}
#endif
#endif
