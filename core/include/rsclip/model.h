/*
 * rsclip/model.h -- the SigLIP (Git-RSCLIP) model: checkpoint loading, image preprocessing, the
 * vision and text towers, and SigLIP's sigmoid scoring. Numerically the same model as
 * transformers' SiglipModel + SiglipProcessor (v4.44.2).
 *
 * Two objects, as in whisper.cpp:
 *   rsclip_model    read-only after load (float32 weights, mapped or converted once; config,
 *                   tokenizer); shared by any number of threads.
 *   rsclip_encoder  per-thread state: one activation arena sized for max_batch at creation; a
 *                   forward pass allocates nothing.
 *
 *     rsclip_model *m;
 *     if (rsclip_model_load("tests/fixtures/siglip-tiny", NULL, &m) != RSCLIP_OK) ...
 *     const rsclip_model_info *mi = rsclip_model_get_info(m);
 *     rsclip_encoder *enc;
 *     rsclip_encoder_params ep = rsclip_encoder_default_params();
 *     rsclip_encoder_new(m, &ep, &enc);
 *     float *px = malloc(sizeof(float) * 3 * mi->image_size * mi->image_size);
 *     rsclip_preprocess_rgb8(m, rgb, w, h, w * 3, px);      // HWC uint8 -> [3,S,S]
 *     float emb[mi->embed_dim];
 *     rsclip_encode_images(enc, 1, px, emb, NULL);
 *     int32_t ids[64];
 *     rsclip_model_tokenize(m, "a remote sensing image of river", -1, ids, NULL);
 *     float temb[mi->embed_dim];
 *     rsclip_encode_texts(enc, 1, ids, temb, NULL);
 *     float p = rsclip_model_prob(m, rsclip_cosine(emb, temb, mi->embed_dim));
 *
 * Threading: one level of parallelism at a time. An encoder splits each step of its forward pass
 * into rsclip_encoder_params.n_threads parts run on the process's one worker pool (the caller
 * runs part 0; the workers are started once and shared with the search scan, so no thread is
 * created per encode). While another thread uses the pool, a caller runs its parts itself. To
 * run several encoders at once, give each n_threads = 1. An encoder on a GPU
 * (rsclip_encoder_params.device) owns its CUDA streams and buffers; like any encoder it is used
 * by one thread at a time.
 */
#ifndef RSCLIP_MODEL_H
#define RSCLIP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rsclip_tower_info {
    int hidden;       /* D */
    int intermediate; /* MLP width */
    int layers;
    int heads;
    double layer_norm_eps;
} rsclip_tower_info;

typedef struct rsclip_model_info {
    char name[256];       /* repo id or folder name the model was loaded from */
    char fingerprint[80]; /* identity of the weights: "sha256:" + 64 hex digits, the SHA-256 of
                             model.safetensors (the hub's LFS oid), or for a sharded checkpoint
                             of the lines "<sha256>  <shard name>\n" in name order */
    char fingerprint_legacy[17]; /* the fingerprint earlier indexes recorded (16 hex: FNV-1a over
                                    the header and 64 sampled 4 KiB blocks; see
                                    rsclip_model_fingerprint_for) */
    char weights_dtype[8]; /* dtype of the checkpoint's floating tensors: "F32", "F16", "BF16" */
    int embed_dim;         /* length of image and text embeddings */
    rsclip_tower_info text;
    rsclip_tower_info vision;
    int vocab_size;
    int text_ctx;      /* text positions = tokens per text (64) */
    int image_size;    /* S: model input is S x S */
    int patch_size;    /* P */
    int n_patches;     /* (S/P)^2 = vision tokens */
    float logit_scale; /* raw checkpoint value; logits use exp(logit_scale) */
    float logit_bias;
    /* preprocessor_config.json */
    int do_resize, do_rescale, do_normalize;
    double rescale_factor;
    float image_mean[3], image_std[3];
} rsclip_model_info;

/* rsclip_model_params.towers: which towers to make usable (bits; 0 = both). */
#define RSCLIP_MODEL_TEXT 0x1   /* text tower (+ tokenizer): rsclip_encode_texts */
#define RSCLIP_MODEL_VISION 0x2 /* vision tower: rsclip_encode_images */

typedef struct rsclip_model_params {
    int towers;        /* RSCLIP_MODEL_TEXT | RSCLIP_MODEL_VISION; 0 (zero-initialised) = both.
                          Every tensor of both towers is still checked (presence, dtype, shape)
                          and the fingerprint is the same; only the weights of a tower not asked
                          for are left untouched (a text query needs ~45% of a base model). Do
                          not encode with a tower that was not loaded (see rsclip_model_towers). */
    int owned_weights; /* 1: read the checkpoint into memory owned by the model (hashed from that
                          memory, one read for both) instead of mapping it: nothing later done to
                          the files can reach the model. Costs the checkpoint's size in memory and
                          one full read at load; the choice for long-running work (the indexer).
                          0 (default): map it (see rsclip_model_load). */
} rsclip_model_params;

typedef struct rsclip_model rsclip_model;

/* Load a Hugging Face snapshot folder: config.json (missing keys take SiglipConfig defaults),
 * model.safetensors or model.safetensors.index.json + shards, spiece.model,
 * tokenizer_config.json, preprocessor_config.json (both optional: defaults as SigLIP's). Every
 * expected tensor is checked for presence, dtype and shape; errors name the tensor and the file.
 * The checkpoint stays memory-mapped (read-only) for the model's lifetime: little-endian F32
 * tensors are used in place, without a copy (so loading costs no time proportional to the
 * model); F16/BF16 (and misaligned F32) tensors are converted to float32 once, here.
 * params may be NULL (= both towers, mapped).
 *
 * Identity: info.fingerprint is the SHA-256 of the whole checkpoint. A mapped file is hashed once
 * per file version (device, inode, size, mtime, ctime), the digest being kept in a small cache
 * file in the rsclip cache folder ($RSCLIP_CACHE, else $XDG_CACHE_HOME/rsclip, else
 * ~/.cache/rsclip: .sha256-digests); later loads of the same version only stat it.
 *
 * Weights that change underneath: a file replaced by rename (what downloaders do) is another
 * file; the model keeps the one it opened. A file written in place while it is being hashed or
 * read fails the load (RSCLIP_ERR_MISMATCH); written while a mapped model uses it, the next
 * rsclip_encode_* call fails with RSCLIP_ERR_MISMATCH naming the file, after its forward pass,
 * so no result computed from a mix of versions is returned (a file truncated while mapped can
 * still kill the process with SIGBUS: use owned_weights where that matters). */
int rsclip_model_load(const char *dir, const rsclip_model_params *params, rsclip_model **out);
void rsclip_model_free(rsclip_model *m); /* NULL-safe */

/* The fingerprint of m to compare with one recorded earlier (e.g. by an index): a recorded
 * "sha256:..." fingerprint is compared with info.fingerprint, a legacy one (16 hex digits,
 * recorded by earlier rsclip builds) with info.fingerprint_legacy; NULL or "" (nothing recorded
 * yet) gives info.fingerprint. NULL for a NULL model. */
const char *rsclip_model_fingerprint_for(const rsclip_model *m, const char *recorded);

/* The towers that were loaded: RSCLIP_MODEL_TEXT and/or RSCLIP_MODEL_VISION bits (0 for NULL). */
int rsclip_model_towers(const rsclip_model *m);

const rsclip_model_info *rsclip_model_get_info(const rsclip_model *m);

/* Replace info->name (default: the folder's base name), e.g. with the hub repo id the folder was
 * downloaded from. Call it right after load, before the model is shared between threads.
 * RSCLIP_ERR_INVALID_ARG if name does not fit (255 bytes). */
int rsclip_model_set_name(rsclip_model *m, const char *name);

/* The model's tokenizer (owned by the model). */
const struct rsclip_tokenizer *rsclip_model_tokenizer(const rsclip_model *m);

/* Tokenize into exactly info->text_ctx ids (EOS, truncation, padding as SiglipProcessor with
 * padding="max_length", truncation=True). len = -1 for NUL-terminated text. A text longer than
 * text_ctx tokens is cut as the reference cuts it, and a warning saying so goes to the log. */
int rsclip_model_tokenize(const rsclip_model *m, const char *text, ptrdiff_t len, int32_t *ids,
                          int *n_tokens);

/* SiglipImageProcessor: rgb is 8-bit interleaved RGB, width x height, row stride in bytes.
 * Resizes to S x S with Pillow-exact bicubic when the size differs (aspect not kept), rescales,
 * normalises; out: [3, S, S] float32 (CHW). Bit-identical to the reference pixel_values. */
int rsclip_preprocess_rgb8(const rsclip_model *m, const uint8_t *rgb, int width, int height,
                           size_t stride, float *out);

/* Pillow 9.4 BICUBIC resize of 8-bit interleaved images with `channels` channels (exposed for the
 * tiler and tests). dst has dst_w * dst_h * channels bytes, tightly packed. channels is 1..4,
 * each resampled independently (as Pillow's L / RGB; no alpha premultiplication as Pillow does for
 * RGBA). Same size: an exact copy. Allocates a temporary row buffer when both axes change. */
int rsclip_resize_bicubic_u8(const uint8_t *src, int src_w, int src_h, size_t src_stride,
                             int channels, uint8_t *dst, int dst_w, int dst_h);

/* Arithmetic of the Linear layers (the GEMMs that hold ~95% of the work).
 * - F32: float32 weights and activations; matches transformers' float32 model within ~1e-6.
 * - BF16: weights rounded to bfloat16 once (when a tower is first used), activations rounded to
 *   bfloat16 at each GEMM (and, for self-attention, Q, K, V and the softmax probabilities),
 *   products summed in float32 (AMX tiles, or AVX512_BF16 vdpbf16ps); layer norms, softmax,
 *   GELU and residuals stay float32. Embeddings within cosine ~0.999+ of F32. Only taken on CPUs
 *   with AMX-BF16 or AVX512_BF16: elsewhere BF16 runs as F32.
 * - AUTO: the fastest path measured or known to be faster on this CPU, never slower than F32:
 *   AMX-BF16 where the CPU and OS allow it; else bf16 dot products only on CPUs where they beat
 *   f32 FMA (AMD Zen 4 and later: 1.85x measured on Zen 5; not Intel Sapphire / Emerald / Granite
 *   Rapids, where they measured 0.6x); else F32. rsclip_precision_isa() says which, and why.
 * - INT8 (opt-in, never chosen by AUTO): W8A8, weights quantised to int8 per output feature
 *   once, activations per row at each GEMM (symmetric, max |x| / 127), products summed exactly
 *   in int32 (AVX512-VNNI vpdpbusd); self-attention, layer norms, softmax, GELU and residuals as
 *   in F32 / BF16. Embeddings within cosine 0.9994+ of F32 on random-weight models of the real
 *   shapes; real checkpoints with outlier activations may lose more, hence opt-in. Only on CPUs
 *   with AVX512-VNNI (and RSCLIP_ISA at avx512 or above): elsewhere INT8 runs as F32.
 * rsclip_encoder_precision() says which one an encoder runs. */
typedef enum rsclip_precision {
    RSCLIP_PRECISION_AUTO = 0,
    RSCLIP_PRECISION_F32 = 1,
    RSCLIP_PRECISION_BF16 = 2,
    RSCLIP_PRECISION_INT8 = 3
} rsclip_precision;

/* Compute paths of the encoder's matrix products, slowest to fastest. A path is used only when
 * CPUID reports its instructions AND the OS enables their registers (XCR0); AMX also needs
 * Linux's per-process tile-data permission (kernel >= 5.16), which rsclip requests once.
 * The environment variable RSCLIP_ISA=amx|avx512bf16|avx512|avx2|scalar forces a path for
 * tests and bug reports (the highest any kernel may use; `auto` runs exactly it);
 * rsclip_encoder_new fails with RSCLIP_ERR_UNSUPPORTED when it names a path this CPU cannot run
 * or no path at all. RSCLIP_GEMM_SCALAR=1 is the older spelling of RSCLIP_ISA=scalar. */
typedef enum rsclip_isa {
    RSCLIP_ISA_SCALAR = 0,     /* portable C, f32 */
    RSCLIP_ISA_AVX2 = 1,       /* AVX2 + FMA, f32 */
    RSCLIP_ISA_AVX512 = 2,     /* AVX-512F, f32 */
    RSCLIP_ISA_AVX512BF16 = 3, /* AVX512_BF16 dot products, bf16 */
    RSCLIP_ISA_AMX = 4         /* AMX-BF16 tiles, bf16 */
} rsclip_isa;

/* "scalar", "avx2", "avx512", "avx512bf16", "amx" (static string; "?" for an unknown value). */
const char *rsclip_isa_name(rsclip_isa isa);
/* The path an encoder asked for precision p runs its products on, on this CPU and OS under
 * RSCLIP_ISA (INT8 reports avx512: its vpdpbusd kernel is an AVX-512 extension); *why (may be
 * NULL) receives a static sentence giving the reason (for `auto`, the measurement behind the
 * choice). */
rsclip_isa rsclip_precision_isa(rsclip_precision p, const char **why);
/* A few lines of text describing the CPU, what CPUID and the OS allow, each path (usable or why
 * not), RSCLIP_ISA, and what each precision runs and why -- the text of `rsclip --version
 * --verbose`. Writes at most size bytes (NUL-terminated when size > 0) and returns the length of
 * the whole text, as snprintf. */
size_t rsclip_cpu_report(char *buf, size_t size);
/* Where an encoder runs (rsclip_encoder_params.device). The zero value is the CPU: a GPU is only
 * used when a caller asks for one. */
typedef enum rsclip_device_kind {
    RSCLIP_DEVICE_CPU = 0,
    RSCLIP_DEVICE_CUDA = 1 /* an NVIDIA GPU, through the CUDA encoder (builds with RSCLIP_CUDA) */
} rsclip_device_kind;

typedef struct rsclip_device {
    rsclip_device_kind kind;
    int index; /* CUDA device ordinal (cuda:N); 0 for "cuda" */
} rsclip_device;

/* "cpu", "cuda" (= cuda:0) or "cuda:N" -> *out; RSCLIP_ERR_INVALID_ARG for anything else. Only the
 * spelling is checked: rsclip_encoder_new says whether this build and machine have the device. */
int rsclip_device_parse(const char *s, rsclip_device *out);
/* Usable CUDA devices: RSCLIP_OK with *n (0 when the driver finds none);
 * RSCLIP_ERR_UNSUPPORTED when this library was built without the CUDA encoder. */
int rsclip_cuda_device_count(int *n);

typedef struct rsclip_encoder_params {
    int max_batch; /* images or texts per internal batch (arena sized for it); default 8;
                      <= 0 means the default. On a GPU use 128-512 */
    int n_threads; /* threads for this encoder's forward passes; default 0 = all cores. The
                      work is split into n_threads parts run on the process's one worker pool
                      (shared with the search scan; OpenBLAS is not used by the encoder) */
    rsclip_precision precision; /* default RSCLIP_PRECISION_AUTO */
    int in_place; /* 0 (default): each tower's Linear weights are packed at its first use into
                     a copy for rsclip's GEMM kernels, made once per model and precision and
                     shared by all the model's encoders until rsclip_model_free (fastest per
                     item; costs a copy of the tower: ~340 MB f32 / ~170 MB bf16 / ~85 MB int8
                     for the base text tower).
                     1: float32 only (precision is ignored), the Linear layers read the model's
                     weights where they are, each product packing the panels it needs as it
                     goes: for a process that encodes a few texts and exits, e.g. a one-shot
                     search */
    rsclip_device device; /* default (zero): the CPU. RSCLIP_DEVICE_CUDA: the encoder runs on that
                             GPU: each tower's weights are uploaded once, at its first use (bf16
                             copies for BF16, f32 for F32), activations live on the GPU; n_threads
                             and in_place are ignored. Precision there: AUTO = BF16 (bf16 tensor
                             cores, products summed in f32; cosine >= 0.999 to F32) on compute
                             capability >= 8.0, else F32; F32 = float32 GEMMs with TF32 off
                             (within 1e-5 of the reference, as the CPU); INT8 runs as F32
                             there (no GPU int8 kernel). Fails with
                             RSCLIP_ERR_UNSUPPORTED in a build without CUDA and
                             RSCLIP_ERR_NOT_FOUND when the device does not exist */
} rsclip_encoder_params;

rsclip_encoder_params rsclip_encoder_default_params(void);

/* "auto", "f32", "bf16", "int8" -> *out; returns RSCLIP_OK or RSCLIP_ERR_INVALID_ARG. */
int rsclip_precision_parse(const char *s, rsclip_precision *out);
/* "auto", "f32", "bf16", "int8" (static string; "?" for an unknown value). */
const char *rsclip_precision_name(rsclip_precision p);
/* What an encoder asked for p runs on this CPU: F32, BF16 or INT8, never AUTO (BF16 needs
 * AMX-BF16 or AVX512_BF16, INT8 AVX512-VNNI, and AUTO follows rsclip_precision_isa). */
rsclip_precision rsclip_precision_effective(rsclip_precision p);

typedef struct rsclip_encoder rsclip_encoder;

int rsclip_encoder_new(const rsclip_model *m, const rsclip_encoder_params *params,
                       rsclip_encoder **out);
void rsclip_encoder_free(rsclip_encoder *e); /* NULL-safe */
/* The precision this encoder runs (F32, BF16 or INT8, never AUTO), after the CPU (or GPU) check. */
rsclip_precision rsclip_encoder_precision(const rsclip_encoder *e);
/* The path this encoder's products run on; *why (may be NULL) as rsclip_precision_isa. An encoder
 * on a GPU reports RSCLIP_ISA_SCALAR (no CPU path) and says so in *why. */
rsclip_isa rsclip_encoder_isa(const rsclip_encoder *e, const char **why);
/* Where it runs, for messages: "cpu" or e.g. "cuda:0 (NVIDIA H200)". Owned by the encoder. */
const char *rsclip_encoder_device_name(const rsclip_encoder *e);

/* Vision tower. pixels: [n, 3, S, S] preprocessed. embeds: [n, embed_dim], unnormalised
 * (get_image_features). last_hidden (may be NULL): [n, n_patches, vision.hidden], the
 * post-layernorm tokens. Any n >= 1: processed in chunks of max_batch. */
int rsclip_encode_images(rsclip_encoder *e, int n, const float *pixels, float *embeds,
                         float *last_hidden);

/* Text tower. ids: [n, text_ctx]. embeds: [n, embed_dim], unnormalised (get_text_features).
 * last_hidden (may be NULL): [n, text_ctx, text.hidden], the final-layernorm output. */
int rsclip_encode_texts(rsclip_encoder *e, int n, const int32_t *ids, float *embeds,
                        float *last_hidden);

/* Scale v[0..n) to unit L2 norm in place (plain division, as SiglipModel does). */
void rsclip_l2_normalize(float *v, int n);
/* Cosine of two vectors (need not be normalised). */
float rsclip_cosine(const float *a, const float *b, int n);
/* SigLIP logit and probability of a cosine: cos * exp(logit_scale) + logit_bias, sigmoid of it.
 * rsclip_siglip_prob is the one computation (in double) every probability rsclip reports goes
 * through: the model's here, an index's recorded calibration in rsclip/query.h. */
float rsclip_siglip_prob(float cosine, float logit_scale, float logit_bias);
float rsclip_model_logit(const rsclip_model *m, float cosine);
float rsclip_model_prob(const rsclip_model *m, float cosine);

#ifdef __cplusplus
}
#endif
#endif
