/*
 * config.json (SiglipConfig) and preprocessor_config.json (SiglipImageProcessor).
 *
 * transformers writes only the values that differ from the class defaults, so every missing key
 * takes the SiglipTextConfig / SiglipVisionConfig default (SIGLIP_SPEC.md section 1). Unknown keys
 * (e.g. "_provenance") are ignored.
 */
#include "model/model_internal.h"

#include "json/json.h"
#include "status/status_internal.h"

#include <string.h>

#define CONFIG_MAX_BYTES (4u << 20)

void rsclip__config_defaults(rsclip_model_info *mi) {
    memset(mi, 0, sizeof(*mi));
    rsclip_tower_info def = {768, 3072, 12, 12, 1e-6};
    mi->text = def;
    mi->vision = def;
    mi->vocab_size = 32000;
    mi->text_ctx = 64;
    mi->image_size = 224;
    mi->patch_size = 16;
    mi->logit_scale = 0.0f;
    mi->logit_bias = 0.0f;
    mi->do_resize = mi->do_rescale = mi->do_normalize = 1;
    mi->rescale_factor = 1.0 / 255.0;
    for (int c = 0; c < 3; c++) mi->image_mean[c] = mi->image_std[c] = 0.5f;
}

/* Read an integer key into *v if present; it must be an integer in [lo, hi]. */
static int get_int(const char *path, const rsclip_json *obj, const char *section, const char *key,
                   int lo, int hi, int *v) {
    const rsclip_json *j = rsclip_json_get(obj, key);
    if (!j) return RSCLIP_OK;
    if (j->type != RSCLIP_JSON_NUMBER || !j->is_int || j->inum < lo || j->inum > hi)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s.%s must be an integer in [%d, %d]", path,
                             section, key, lo, hi);
    *v = (int)j->inum;
    return RSCLIP_OK;
}

static int get_act(const char *path, const rsclip_json *obj, const char *section) {
    const rsclip_json *j = rsclip_json_get(obj, "hidden_act");
    if (!j) return RSCLIP_OK;
    if (j->type != RSCLIP_JSON_STRING ||
        (strcmp(j->str, "gelu_pytorch_tanh") != 0 && strcmp(j->str, "gelu_new") != 0))
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                             "%s: %s.hidden_act: only gelu_pytorch_tanh is supported", path,
                             section);
    return RSCLIP_OK;
}

static int read_tower(const char *path, const rsclip_json *obj, const char *section,
                      rsclip_tower_info *t) {
    if (obj && obj->type != RSCLIP_JSON_OBJECT)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s is not an object", path, section);
    if (!obj) return RSCLIP_OK;
    int rc;
    if ((rc = get_int(path, obj, section, "hidden_size", 1, RSCLIP__MAX_HIDDEN, &t->hidden)) ||
        (rc = get_int(path, obj, section, "intermediate_size", 1, 4 * RSCLIP__MAX_HIDDEN,
                      &t->intermediate)) ||
        (rc =
             get_int(path, obj, section, "num_hidden_layers", 0, RSCLIP__MAX_LAYERS, &t->layers)) ||
        (rc = get_int(path, obj, section, "num_attention_heads", 1, RSCLIP__MAX_HIDDEN,
                      &t->heads)) ||
        (rc = get_act(path, obj, section)))
        return rc;
    const rsclip_json *eps = rsclip_json_get(obj, "layer_norm_eps");
    if (eps) {
        if (eps->type != RSCLIP_JSON_NUMBER || !(eps->num > 0.0) || eps->num > 1.0)
            return rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s.layer_norm_eps must be in (0, 1]", path,
                                 section);
        t->layer_norm_eps = eps->num;
    }
    if (t->hidden % t->heads != 0)
        return rsclip__error(RSCLIP_ERR_FORMAT,
                             "%s: %s: hidden_size %d is not divisible by num_attention_heads %d",
                             path, section, t->hidden, t->heads);
    return RSCLIP_OK;
}

int rsclip__config_read(const char *path, rsclip_model *m) {
    rsclip_json *root = NULL;
    int rc = rsclip_json_parse_file(path, CONFIG_MAX_BYTES, &root);
    if (rc != RSCLIP_OK) return rc;
    rsclip_model_info *mi = &m->info;
    const char *mt;
    if (root->type != RSCLIP_JSON_OBJECT) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    mt = rsclip_json_get_str(root, "model_type");
    if (!mt || strcmp(mt, "siglip") != 0) {
        rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                           "%s: model_type is %s%s%s, not \"siglip\": not a SigLIP checkpoint",
                           path, mt ? "\"" : "", mt ? mt : "missing", mt ? "\"" : "");
        goto done;
    }
    const rsclip_json *tc = rsclip_json_get(root, "text_config");
    const rsclip_json *vc = rsclip_json_get(root, "vision_config");
    if ((rc = read_tower(path, tc, "text_config", &mi->text)) ||
        (rc = read_tower(path, vc, "vision_config", &mi->vision)))
        goto done;
    if (tc && ((rc = get_int(path, tc, "text_config", "vocab_size", 1, RSCLIP__MAX_VOCAB,
                             &mi->vocab_size)) ||
               (rc = get_int(path, tc, "text_config", "max_position_embeddings", 1, RSCLIP__MAX_CTX,
                             &mi->text_ctx))))
        goto done;
    m->channels = 3;
    if (vc && ((rc = get_int(path, vc, "vision_config", "image_size", 1, RSCLIP__MAX_IMAGE,
                             &mi->image_size)) ||
               (rc = get_int(path, vc, "vision_config", "patch_size", 1, RSCLIP__MAX_IMAGE,
                             &mi->patch_size)) ||
               (rc = get_int(path, vc, "vision_config", "num_channels", 1, 64, &m->channels))))
        goto done;
    if (m->channels != 3) {
        rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                           "%s: vision_config.num_channels is %d; only RGB (3) is supported", path,
                           m->channels);
        goto done;
    }
    if (mi->image_size % mi->patch_size != 0) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT,
                           "%s: vision_config.image_size %d is not a multiple of patch_size %d",
                           path, mi->image_size, mi->patch_size);
        goto done;
    }
    {
        int g = mi->image_size / mi->patch_size;
        mi->n_patches = g * g;
        if (mi->n_patches > RSCLIP__MAX_CTX * 4) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: %d vision tokens is too many", path,
                               mi->n_patches);
            goto done;
        }
    }
    if (mi->text.hidden != mi->vision.hidden) {
        rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                           "%s: text hidden_size %d != vision hidden_size %d (embeddings must have "
                           "one length)",
                           path, mi->text.hidden, mi->vision.hidden);
        goto done;
    }
    mi->embed_dim = mi->text.hidden;
    {
        int use_head = 1;
        if (vc && rsclip_json_get(vc, "vision_use_head") &&
            (!rsclip_json_get_bool(vc, "vision_use_head", &use_head) || !use_head)) {
            rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                               "%s: vision_config.vision_use_head is false; SigLIP needs the MAP "
                               "head",
                               path);
            goto done;
        }
    }
done:
    rsclip_json_free(root);
    return rc;
}

int rsclip__preprocessor_read(const char *path, rsclip_model *m) {
    rsclip_json *root = NULL;
    int rc = rsclip_json_parse_file(path, CONFIG_MAX_BYTES, &root);
    if (rc != RSCLIP_OK) return rc;
    rsclip_model_info *mi = &m->info;
    const rsclip_json *size, *j;
    const char *keys[2] = {"image_mean", "image_std"};
    float *dst[2] = {mi->image_mean, mi->image_std};
    if (root->type != RSCLIP_JSON_OBJECT) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    if (rsclip_json_get(root, "do_resize") &&
        !rsclip_json_get_bool(root, "do_resize", &mi->do_resize)) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: do_resize must be a boolean", path);
        goto done;
    }
    if (rsclip_json_get(root, "do_rescale") &&
        !rsclip_json_get_bool(root, "do_rescale", &mi->do_rescale)) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: do_rescale must be a boolean", path);
        goto done;
    }
    if (rsclip_json_get(root, "do_normalize") &&
        !rsclip_json_get_bool(root, "do_normalize", &mi->do_normalize)) {
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: do_normalize must be a boolean", path);
        goto done;
    }
    if ((j = rsclip_json_get(root, "rescale_factor")) != NULL) {
        if (j->type != RSCLIP_JSON_NUMBER || !(j->num > 0.0)) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: rescale_factor must be a positive number",
                               path);
            goto done;
        }
        mi->rescale_factor = j->num;
    }
    if ((j = rsclip_json_get(root, "resample")) != NULL &&
        (j->type != RSCLIP_JSON_NUMBER || j->num != 3.0)) {
        rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                           "%s: resample must be 3 (bicubic), the only filter implemented", path);
        goto done;
    }
    for (int k = 0; k < 2; k++) {
        j = rsclip_json_get(root, keys[k]);
        if (!j) continue;
        int ok = 0;
        if (j->type == RSCLIP_JSON_NUMBER) {
            for (int c = 0; c < 3; c++) dst[k][c] = (float)j->num;
            ok = 1;
        } else if (j->type == RSCLIP_JSON_ARRAY && j->len == 3) {
            ok = 1;
            for (int c = 0; c < 3; c++) {
                if (j->items[c].type != RSCLIP_JSON_NUMBER)
                    ok = 0;
                else
                    dst[k][c] = (float)j->items[c].num;
            }
        }
        if (!ok || (k == 1 && (dst[1][0] == 0 || dst[1][1] == 0 || dst[1][2] == 0))) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: %s must be a number or 3 numbers%s", path,
                               keys[k], k == 1 ? " (non-zero)" : "");
            goto done;
        }
    }
    size = rsclip_json_get(root, "size");
    if (size) {
        int64_t h = -1, w = -1;
        if (size->type != RSCLIP_JSON_OBJECT || !rsclip_json_get_int(size, "height", &h) ||
            !rsclip_json_get_int(size, "width", &w)) {
            rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                               "%s: size must be {\"height\": S, \"width\": S}", path);
            goto done;
        }
        if (h != mi->image_size || w != mi->image_size) {
            rc = rsclip__error(RSCLIP_ERR_MISMATCH,
                               "%s: size %lldx%lld differs from the model's image_size %d", path,
                               (long long)w, (long long)h, mi->image_size);
            goto done;
        }
    }
done:
    rsclip_json_free(root);
    return rc;
}
