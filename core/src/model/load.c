/*
 * Loading a Hugging Face SigLIP snapshot folder:
 *   config.json                      (required; SiglipConfig defaults for missing keys)
 *   model.safetensors                or model.safetensors.index.json ("weight_map") + shards
 *   spiece.model                     (required; the tokenizer)
 *   tokenizer_config.json            (optional: do_lower_case, model_max_length, special tokens)
 *   preprocessor_config.json         (optional: SiglipImageProcessor defaults)
 *
 * Every tensor the model uses is listed from the config (name, shape, destination field, tower),
 * checked in the checkpoint for presence, floating dtype and exact shape. Then, for the towers
 * asked for (rsclip_model_params.towers): little-endian F32 tensors at a 4-byte-aligned address
 * are used in place in the read-only mapping of the checkpoint (no copy: a one-shot search touches
 * only the pages it reads); the others (F16, BF16, misaligned F32) are converted to float32 once
 * into one 64-byte-aligned buffer. The checkpoint files stay open (mapped) until
 * rsclip_model_free.
 */
#include "base/base.h"
#include "model/model_internal.h"

#include "json/json.h"
#include "model/checkpoint.h"
#include "rsclip/safetensors.h"
#include "status/status_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_CAP 4096
#define NAME_CAP 128

/* ---------------------------------------------------------------------------------------------
 * The list of expected tensors */

typedef struct tensor_req {
    char name[NAME_CAP];
    int nd;
    int64_t shape[4];
    const float **dst;
    int tower; /* RSCLIP_MODEL_TEXT / RSCLIP_MODEL_VISION, 0 = shared (logit scale and bias) */
} tensor_req;

typedef struct req_list {
    tensor_req *v;
    int n, cap;
    int tower; /* tower of the requests being added */
} req_list;

static void req_add(req_list *r, const float **dst, int nd, const int64_t *shape, const char *fmt,
                    ...) RSCLIP_PRINTF(5, 6);

static void req_add(req_list *r, const float **dst, int nd, const int64_t *shape, const char *fmt,
                    ...) {
    if (r->n >= r->cap) return; /* cap is computed exactly; never reached */
    tensor_req *t = &r->v[r->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    t->nd = nd;
    for (int i = 0; i < nd; i++) t->shape[i] = shape[i];
    t->dst = dst;
    t->tower = r->tower;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define REQ1(dst, a, ...) req_add(r, (dst), 1, SHAPE(a), __VA_ARGS__)
#define REQ2(dst, a, b, ...) req_add(r, (dst), 2, SHAPE(a, b), __VA_ARGS__)

static void req_layers(req_list *r, const char *prefix, rsclip__layer *layers,
                       const rsclip_tower_info *t) {
    const int64_t D = t->hidden, I = t->intermediate;
    for (int i = 0; i < t->layers; i++) {
        rsclip__layer *L = &layers[i];
        REQ1(&L->ln1_w, D, "%s.encoder.layers.%d.layer_norm1.weight", prefix, i);
        REQ1(&L->ln1_b, D, "%s.encoder.layers.%d.layer_norm1.bias", prefix, i);
        REQ2(&L->q_w, D, D, "%s.encoder.layers.%d.self_attn.q_proj.weight", prefix, i);
        REQ1(&L->q_b, D, "%s.encoder.layers.%d.self_attn.q_proj.bias", prefix, i);
        REQ2(&L->k_w, D, D, "%s.encoder.layers.%d.self_attn.k_proj.weight", prefix, i);
        REQ1(&L->k_b, D, "%s.encoder.layers.%d.self_attn.k_proj.bias", prefix, i);
        REQ2(&L->v_w, D, D, "%s.encoder.layers.%d.self_attn.v_proj.weight", prefix, i);
        REQ1(&L->v_b, D, "%s.encoder.layers.%d.self_attn.v_proj.bias", prefix, i);
        REQ2(&L->o_w, D, D, "%s.encoder.layers.%d.self_attn.out_proj.weight", prefix, i);
        REQ1(&L->o_b, D, "%s.encoder.layers.%d.self_attn.out_proj.bias", prefix, i);
        REQ1(&L->ln2_w, D, "%s.encoder.layers.%d.layer_norm2.weight", prefix, i);
        REQ1(&L->ln2_b, D, "%s.encoder.layers.%d.layer_norm2.bias", prefix, i);
        REQ2(&L->fc1_w, I, D, "%s.encoder.layers.%d.mlp.fc1.weight", prefix, i);
        REQ1(&L->fc1_b, I, "%s.encoder.layers.%d.mlp.fc1.bias", prefix, i);
        REQ2(&L->fc2_w, D, I, "%s.encoder.layers.%d.mlp.fc2.weight", prefix, i);
        REQ1(&L->fc2_b, D, "%s.encoder.layers.%d.mlp.fc2.bias", prefix, i);
    }
}

/* Fill r with every tensor of SIGLIP_SPEC.md section 2 for m's config. */
static void req_build(req_list *r, rsclip_model *m, const float **scale, const float **bias) {
    const rsclip_model_info *mi = &m->info;
    rsclip__text_weights *tw = &m->text;
    rsclip__vision_weights *vw = &m->vision;
    const int64_t Dt = mi->text.hidden, Dv = mi->vision.hidden, Iv = mi->vision.intermediate;
    const int64_t P = mi->patch_size;

    r->tower = 0;
    REQ1(scale, 1, "logit_scale");
    REQ1(bias, 1, "logit_bias");

    r->tower = RSCLIP_MODEL_TEXT;
    REQ2(&tw->tok_emb, mi->vocab_size, Dt, "text_model.embeddings.token_embedding.weight");
    REQ2(&tw->pos_emb, mi->text_ctx, Dt, "text_model.embeddings.position_embedding.weight");
    req_layers(r, "text_model", tw->layers, &mi->text);
    REQ1(&tw->ln_w, Dt, "text_model.final_layer_norm.weight");
    REQ1(&tw->ln_b, Dt, "text_model.final_layer_norm.bias");
    REQ2(&tw->head_w, Dt, Dt, "text_model.head.weight");
    REQ1(&tw->head_b, Dt, "text_model.head.bias");

    r->tower = RSCLIP_MODEL_VISION;
    req_add(r, &vw->patch_w, 4, SHAPE(Dv, m->channels, P, P),
            "vision_model.embeddings.patch_embedding.weight");
    REQ1(&vw->patch_b, Dv, "vision_model.embeddings.patch_embedding.bias");
    REQ2(&vw->pos_emb, mi->n_patches, Dv, "vision_model.embeddings.position_embedding.weight");
    req_layers(r, "vision_model", vw->layers, &mi->vision);
    REQ1(&vw->post_ln_w, Dv, "vision_model.post_layernorm.weight");
    REQ1(&vw->post_ln_b, Dv, "vision_model.post_layernorm.bias");
    req_add(r, &vw->probe, 3, SHAPE(1, 1, Dv), "vision_model.head.probe");
    REQ2(&vw->in_proj_w, 3 * Dv, Dv, "vision_model.head.attention.in_proj_weight");
    REQ1(&vw->in_proj_b, 3 * Dv, "vision_model.head.attention.in_proj_bias");
    REQ2(&vw->out_w, Dv, Dv, "vision_model.head.attention.out_proj.weight");
    REQ1(&vw->out_b, Dv, "vision_model.head.attention.out_proj.bias");
    REQ1(&vw->head_ln_w, Dv, "vision_model.head.layernorm.weight");
    REQ1(&vw->head_ln_b, Dv, "vision_model.head.layernorm.bias");
    REQ2(&vw->head_fc1_w, Iv, Dv, "vision_model.head.mlp.fc1.weight");
    REQ1(&vw->head_fc1_b, Iv, "vision_model.head.mlp.fc1.bias");
    REQ2(&vw->head_fc2_w, Dv, Iv, "vision_model.head.mlp.fc2.weight");
    REQ1(&vw->head_fc2_b, Dv, "vision_model.head.mlp.fc2.bias");
}

/* ---------------------------------------------------------------------------------------------
 * Tensors of the checkpoint (checkpoint.c holds the files) */

typedef rsclip__ckpt ckpt;

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void format_shape(char *buf, size_t cap, int nd, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, cap - used, "[");
    for (int i = 0; i < nd && used < cap; i++)
        used +=
            (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

/* An F32 tensor that can be used where it lies in the mapping: little-endian host, 4-byte aligned
 * (the mapping is page-aligned, so this is the tensor's file offset). */
static int use_in_place(const rsclip_st_tensor *t) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return t->dtype == RSCLIP_DTYPE_F32 && ((uintptr_t)t->data & (sizeof(float) - 1)) == 0;
#else
    (void)t;
    return 0;
#endif
}

/* Check every requested tensor; point the ones of the wanted towers into the mapping or convert
 * them into one aligned float32 buffer; leave the others NULL. */
static int load_weights(rsclip_model *m, const ckpt *c, req_list *r, int towers) {
    const rsclip_st_tensor **found = rsclip__calloc((size_t)r->n, sizeof(*found));
    if (!found) return rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    size_t total = 0;
    int rc = RSCLIP_OK, dtype = -1, mixed = 0;
    for (int i = 0; i < r->n && rc == RSCLIP_OK; i++) {
        const tensor_req *q = &r->v[i];
        const char *file = NULL;
        const rsclip_st_tensor *t = rsclip__ckpt_find(c, q->name, &file);
        if (!t) {
            rc = rsclip_last_status();
            break;
        }
        if (t->dtype != RSCLIP_DTYPE_F32 && t->dtype != RSCLIP_DTYPE_F16 &&
            t->dtype != RSCLIP_DTYPE_BF16) {
            rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                               "%s: tensor '%s': dtype %s is not a floating type (F32, F16, BF16)",
                               file, q->name, rsclip_dtype_name(t->dtype));
            break;
        }
        int same = t->n_dims == q->nd;
        for (int d = 0; same && d < q->nd; d++) same = t->shape[d] == q->shape[d];
        if (!same) {
            char want[128], got[128];
            format_shape(want, sizeof(want), q->nd, q->shape);
            format_shape(got, sizeof(got), t->n_dims, t->shape);
            rc = rsclip__error(RSCLIP_ERR_MISMATCH, "%s: tensor '%s': expected shape %s, found %s",
                               file, q->name, want, got);
            break;
        }
        if (dtype >= 0 && dtype != (int)t->dtype) mixed = 1;
        dtype = (int)t->dtype;
        found[i] = t;
        if ((q->tower && !(q->tower & towers)) || use_in_place(t)) continue;
        /* every converted tensor starts on a 64-byte boundary */
        size_t n16 = ((size_t)t->n_elements + 15) & ~(size_t)15;
        if (rsclip__add_size(total, n16, &total)) {
            rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: weights too large", file);
            break;
        }
    }
    size_t bytes = 0;
    if (rc == RSCLIP_OK && rsclip__mul_size(total, sizeof(float), &bytes))
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "weights too large");
    if (rc == RSCLIP_OK && total > 0) {
        m->weights = rsclip__alloc_huge(bytes); /* big and long-lived: huge pages */
        if (!m->weights)
            rc =
                rsclip__error(RSCLIP_ERR_NOMEM, "cannot allocate %zu bytes for the weights", bytes);
    }
    if (rc == RSCLIP_OK) {
        m->weights_n = total;
        float *cur = m->weights;
        for (int i = 0; i < r->n && rc == RSCLIP_OK; i++) {
            const tensor_req *q = &r->v[i];
            if (q->tower && !(q->tower & towers)) {
                *q->dst = NULL;
                continue;
            }
            if (use_in_place(found[i])) {
                *q->dst = (const float *)found[i]->data;
                continue;
            }
            size_t n = (size_t)found[i]->n_elements;
            rc = rsclip_st_to_f32(found[i], cur, n);
            memset(cur + n, 0, sizeof(float) * (((n + 15) & ~(size_t)15) - n));
            *q->dst = cur;
            cur += (n + 15) & ~(size_t)15;
        }
        snprintf(m->info.weights_dtype, sizeof(m->info.weights_dtype), "%s",
                 mixed ? "mixed" : rsclip_dtype_name((rsclip_dtype)dtype));
    }
    free(found);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Tokenizer */

/* A special token in tokenizer_config.json is a string or an AddedToken object {"content": ..}. */
static int token_param(const char *path, const rsclip_json *root, const char *key, char *dst,
                       size_t cap) {
    const rsclip_json *j = rsclip_json_get(root, key);
    if (!j || j->type == RSCLIP_JSON_NULL) return RSCLIP_OK;
    const char *s = j->type == RSCLIP_JSON_STRING ? j->str : rsclip_json_get_str(j, "content");
    if (!s || strlen(s) == 0 || strlen(s) >= cap)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s must be a token string (< %zu bytes)", path,
                             key, cap);
    snprintf(dst, cap, "%s", s);
    return RSCLIP_OK;
}

static int load_tokenizer(rsclip_model *m, const char *dir) {
    char path[PATH_CAP];
    rsclip_tokenizer_params tp = rsclip_tokenizer_default_params();
    tp.max_length = m->info.text_ctx;
    snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
    if (file_exists(path)) {
        rsclip_json *root = NULL;
        int rc = rsclip_json_parse_file(path, 16u << 20, &root);
        if (rc != RSCLIP_OK) return rc;
        int64_t mml;
        if (root->type != RSCLIP_JSON_OBJECT)
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a JSON object", path);
        else if (rsclip_json_get(root, "do_lower_case") &&
                 !rsclip_json_get_bool(root, "do_lower_case", &tp.do_lower_case))
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: do_lower_case must be a boolean", path);
        else if (rsclip_json_get_int(root, "model_max_length", &mml) && mml > 0 &&
                 mml < m->info.text_ctx)
            rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                               "%s: model_max_length %lld is below the model's %d text positions "
                               "(the text tower pools the last position of a %d-token input)",
                               path, (long long)mml, m->info.text_ctx, m->info.text_ctx);
        if (rc == RSCLIP_OK)
            rc = token_param(path, root, "eos_token", tp.eos_token, sizeof(tp.eos_token));
        if (rc == RSCLIP_OK)
            rc = token_param(path, root, "unk_token", tp.unk_token, sizeof(tp.unk_token));
        if (rc == RSCLIP_OK)
            rc = token_param(path, root, "pad_token", tp.pad_token, sizeof(tp.pad_token));
        rsclip_json_free(root);
        if (rc != RSCLIP_OK) return rc;
    }
    snprintf(path, sizeof(path), "%s/spiece.model", dir);
    if (!file_exists(path))
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: missing (the SigLIP tokenizer model)",
                             path);
    int rc = rsclip_tokenizer_load(path, &tp, &m->tok);
    if (rc != RSCLIP_OK) return rc;
    int tv = rsclip_tokenizer_vocab_size(m->tok);
    if (tv > m->info.vocab_size)
        return rsclip__error(RSCLIP_ERR_MISMATCH,
                             "%s: %d pieces but the text tower has vocab_size %d", path, tv,
                             m->info.vocab_size);
    return RSCLIP_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Public entry points */

static void set_name_from_dir(rsclip_model_info *mi, const char *dir) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t n = len - start;
    if (n >= sizeof(mi->name)) n = sizeof(mi->name) - 1;
    memcpy(mi->name, dir + start, n);
    mi->name[n] = '\0';
}

int rsclip_model_load(const char *dir, const rsclip_model_params *params, rsclip_model **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "model_load: out is NULL");
    *out = NULL;
    if (!dir || !*dir) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "model_load: no folder");
    const int all = RSCLIP_MODEL_TEXT | RSCLIP_MODEL_VISION;
    int towers = params ? params->towers : 0;
    if (towers & ~all)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "model_load: towers 0x%x: unknown bits",
                             (unsigned)towers);
    if (towers == 0) towers = all;
    if (strlen(dir) > PATH_CAP - 64)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "%s: path too long", dir);
    struct stat st;
    if (stat(dir, &st) != 0)
        return rsclip__error(RSCLIP_ERR_NOT_FOUND, "%s: no such model folder", dir);
    if (!S_ISDIR(st.st_mode))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "%s: not a folder (expected a Hugging Face SigLIP snapshot folder)",
                             dir);
    char path[PATH_CAP];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    if (!file_exists(path))
        return rsclip__error(RSCLIP_ERR_NOT_FOUND,
                             "%s: no config.json: not a Hugging Face SigLIP checkpoint folder",
                             dir);

    rsclip_model *m = rsclip__calloc(1, sizeof(*m));
    if (!m) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", dir);
    rsclip__config_defaults(&m->info);
    set_name_from_dir(&m->info, dir);
    req_list r = {NULL, 0, 0, 0};
    const float *scale = NULL, *bias = NULL;

    int rc = rsclip__config_read(path, m);
    if (rc != RSCLIP_OK) goto fail;
    snprintf(path, sizeof(path), "%s/preprocessor_config.json", dir);
    if (file_exists(path) && (rc = rsclip__preprocessor_read(path, m)) != RSCLIP_OK) goto fail;

    m->layer_mem = rsclip__calloc((size_t)m->info.text.layers + m->info.vision.layers + 1,
                                  sizeof(rsclip__layer));
    r.cap = 64 + 16 * (m->info.text.layers + m->info.vision.layers);
    r.v = rsclip__calloc((size_t)r.cap, sizeof(tensor_req));
    if (!m->layer_mem || !r.v) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    m->text.layers = m->layer_mem;
    m->vision.layers = m->layer_mem + m->info.text.layers;
    req_build(&r, m, &scale, &bias);

    m->ckpt = rsclip__calloc(1, sizeof(*m->ckpt));
    if (!m->ckpt) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if ((rc = rsclip__ckpt_open(m->ckpt, dir, params && params->owned_weights)) != RSCLIP_OK) {
        free(m->ckpt);
        m->ckpt = NULL;
        goto fail;
    }
    if ((rc = load_weights(m, m->ckpt, &r, towers)) != RSCLIP_OK) goto fail;
    m->towers = towers;
    snprintf(m->info.fingerprint, sizeof m->info.fingerprint, "%s", m->ckpt->fingerprint);
    snprintf(m->info.fingerprint_legacy, sizeof m->info.fingerprint_legacy, "%s", m->ckpt->legacy);
    m->info.logit_scale = *scale;
    m->info.logit_bias = *bias;
    free(r.v);
    r.v = NULL;

    if ((rc = load_tokenizer(m, dir)) != RSCLIP_OK) goto fail;
    *out = m;
    return RSCLIP_OK;
fail:
    free(r.v);
    rsclip_model_free(m);
    return rc;
}

void rsclip_model_free(rsclip_model *m) {
    if (!m) return;
    rsclip__model_packs_free(m);
    rsclip_tokenizer_free(m->tok);
    free(m->weights);
    if (m->ckpt) rsclip__ckpt_close(m->ckpt); /* unmaps the weights used in place */
    free(m->ckpt);
    free(m->layer_mem);
    free(m);
}

int rsclip__model_unchanged(const rsclip_model *m) {
    return m && m->ckpt ? rsclip__ckpt_unchanged(m->ckpt) : RSCLIP_OK;
}

const char *rsclip_model_fingerprint_for(const rsclip_model *m, const char *recorded) {
    if (!m) return NULL;
    if (recorded && recorded[0] && strncmp(recorded, "sha256:", 7) != 0)
        return m->info.fingerprint_legacy;
    return m->info.fingerprint;
}

int rsclip_model_towers(const rsclip_model *m) {
    return m ? m->towers : 0;
}

const rsclip_model_info *rsclip_model_get_info(const rsclip_model *m) {
    return m ? &m->info : NULL;
}

int rsclip_model_set_name(rsclip_model *m, const char *name) {
    if (!m || !name) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "model_set_name: NULL argument");
    if (strlen(name) >= sizeof(m->info.name))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "model_set_name: name longer than %zu bytes",
                             sizeof(m->info.name) - 1);
    snprintf(m->info.name, sizeof(m->info.name), "%s", name);
    return RSCLIP_OK;
}

const struct rsclip_tokenizer *rsclip_model_tokenizer(const rsclip_model *m) {
    return m ? m->tok : NULL;
}

/* A text that fills the model's text length may have been cut: encode it again with room to
 * tell, and warn (the tokenizer truncates silently, as the reference does). */
static void warn_if_cut(const rsclip_model *m, const char *text, ptrdiff_t len) {
    const int ctx = m->info.text_ctx;
    size_t bytes = len < 0 ? strlen(text) : (size_t)len;
    /* Enough room for any text of a command line; a longer one is reported as "more than". */
    size_t cap = bytes + 2 < (size_t)ctx + 1 ? (size_t)ctx + 1 : bytes + 2;
    if (cap > 65536) cap = 65536;
    int32_t *tmp = rsclip__malloc(cap * sizeof *tmp);
    int n = 0;
    if (tmp && rsclip_tokenizer_encode(m->tok, text, len, tmp, (int)cap, &n) != RSCLIP_OK)
        rsclip_clear_error(); /* only the warning is lost */
    else if (n > ctx) {
        size_t shown = bytes < 48 ? bytes : 48;
        while (shown < bytes && shown > 0 && ((unsigned char)text[shown] & 0xC0) == 0x80)
            shown--; /* not inside a UTF-8 sequence */
        rsclip__log(RSCLIP_LOG_WARN,
                    "text \"%.*s%s\" is %s%d tokens long; the model reads %d: everything after its "
                    "first %d tokens is ignored",
                    (int)shown, text, shown < bytes ? "..." : "", (size_t)n == cap ? "over " : "",
                    n, ctx, ctx - 1);
    }
    free(tmp);
}

int rsclip_model_tokenize(const rsclip_model *m, const char *text, ptrdiff_t len, int32_t *ids,
                          int *n_tokens) {
    if (!m || !text || !ids)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "model_tokenize: NULL argument");
    int n = 0;
    int rc = rsclip_tokenizer_encode(m->tok, text, len, ids, m->info.text_ctx, &n);
    if (n_tokens) *n_tokens = n;
    if (rc == RSCLIP_OK && n == m->info.text_ctx) warn_if_cut(m, text, len);
    return rc;
}
