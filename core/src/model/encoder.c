/*
 * The encoder object: parameters, the path its products take (precision x ISA, gemm/isa.h), the
 * activation arena, the packed weights of each tower (built at the tower's first use), and the
 * encode entry points. The forward pass itself is forward.c. An encoder on a CUDA device holds
 * the CUDA encoder (cuda/cuda_encoder.h) instead of an arena and packed weights, and the entry
 * points hand it the checked arguments.
 */
#include "base/base.h"
#include "model/encoder_internal.h"

#include "cuda/cuda_encoder.h"
#include "status/status_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rsclip_encoder_params rsclip_encoder_default_params(void) {
    rsclip_encoder_params p;
    memset(&p, 0, sizeof(p)); /* device: the CPU */
    p.max_batch = 8;
    p.n_threads = 0;
    p.precision = RSCLIP_PRECISION_AUTO;
    p.in_place = 0;
    return p;
}

rsclip_precision rsclip_encoder_precision(const rsclip_encoder *e) {
    return e ? e->precision : RSCLIP_PRECISION_F32;
}

rsclip_isa rsclip_encoder_isa(const rsclip_encoder *e, const char **why) {
    if (why) *why = e ? e->isa_reason : NULL;
    return e ? (rsclip_isa)e->isa : RSCLIP_ISA_SCALAR;
}

const char *rsclip_encoder_device_name(const rsclip_encoder *e) {
    return e && e->cuda ? rsclip__cuda_name(e->cuda) : "cpu";
}

static void tower_pack_free(tower_pack *tp) {
    if (tp->lw)
        for (int i = 0; i < tp->n_layers * PK_PER_LAYER; i++) rsclip__packed_w_free(tp->lw[i]);
    free(tp->lw);
    for (int i = 0; i < PX_N; i++) rsclip__packed_w_free(tp->extra[i]);
    free(tp->mem);
    memset(tp, 0, sizeof(*tp));
}

/* The Linear weights of one tower as packing jobs: [n, k] matrices (row stride k). */
typedef struct pack_job {
    const float *w;
    size_t n, k;
    rsclip__packed_w **out;
} pack_job;

static int tower_jobs(const rsclip_model *m, int vision, tower_pack *tp, pack_job *jobs) {
    const rsclip_tower_info *ti = vision ? &m->info.vision : &m->info.text;
    const rsclip__layer *L = vision ? m->vision.layers : m->text.layers;
    const size_t D = (size_t)ti->hidden, F = (size_t)ti->intermediate;
    int nj = 0;
    for (int l = 0; l < ti->layers; l++) {
        rsclip__packed_w **o = tp->lw + (size_t)l * PK_PER_LAYER;
        const float *w[PK_PER_LAYER] = {L[l].q_w, L[l].k_w,   L[l].v_w,
                                        L[l].o_w, L[l].fc1_w, L[l].fc2_w};
        const size_t nn[PK_PER_LAYER] = {D, D, D, D, F, D}, kk[PK_PER_LAYER] = {D, D, D, D, D, F};
        for (int j = 0; j < PK_PER_LAYER; j++) jobs[nj++] = (pack_job){w[j], nn[j], kk[j], &o[j]};
    }
    if (vision) {
        const rsclip__vision_weights *V = &m->vision;
        const size_t K = (size_t)m->channels * m->info.patch_size * m->info.patch_size;
        const float *wk = V->in_proj_w + D * D, *wv = wk + D * D;
        jobs[nj++] = (pack_job){V->patch_w, D, K, &tp->extra[PX_PATCH]};
        jobs[nj++] = (pack_job){wk, D, D, &tp->extra[PX_MAP_K]};
        jobs[nj++] = (pack_job){wv, D, D, &tp->extra[PX_MAP_V]};
        jobs[nj++] = (pack_job){V->out_w, D, D, &tp->extra[PX_MAP_O]};
        jobs[nj++] = (pack_job){V->head_fc1_w, F, D, &tp->extra[PX_MAP_FC1]};
        jobs[nj++] = (pack_job){V->head_fc2_w, D, F, &tp->extra[PX_MAP_FC2]};
    } else {
        jobs[nj++] = (pack_job){m->text.head_w, D, D, &tp->extra[PX_TEXT_HEAD]};
    }
    return nj;
}

/* The MAP head's query: pq = (probe Wq^T + bq) / sqrt(hd), [D] (torch's MultiheadAttention
 * scales q); the same for every image. */
static void map_query(rsclip_encoder *e) {
    const rsclip_model *m = e->m;
    const int D = m->info.vision.hidden, hd = D / m->info.vision.heads;
    rsclip__linear(e->pq, m->vision.probe, m->vision.in_proj_w, m->vision.in_proj_b, 1, D, D, 0);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < D; i++) e->pq[i] *= scale;
}

/* Pack the Linear weights of one tower (vision != 0: the vision tower) into *tp: one huge-page
 * block of panels in format fmt, or in place direct handles on the model's f32 weights. */
static int tower_pack_make(const rsclip_model *m, int vision, rsclip__gemm_format fmt, int in_place,
                           tower_pack *tp) {
    const rsclip_tower_info *ti = vision ? &m->info.vision : &m->info.text;
    const size_t n_jobs = (size_t)ti->layers * PK_PER_LAYER + PX_N;
    tp->n_layers = ti->layers;
    tp->lw = rsclip__calloc((size_t)ti->layers * PK_PER_LAYER, sizeof(*tp->lw));
    pack_job *jobs = rsclip__calloc(n_jobs, sizeof(*jobs));
    int rc = tp->lw && jobs ? RSCLIP_OK : RSCLIP_ERR_NOMEM;
    int nj = rc == RSCLIP_OK ? tower_jobs(m, vision, tp, jobs) : 0;
    size_t total = 0;
    for (int i = 0; i < nj && rc == RSCLIP_OK && !in_place; i++) {
        const size_t b = rsclip__pack_weights_bytes(jobs[i].n, jobs[i].k, fmt);
        if (b == 0 || rsclip__add_size(total, b, &total)) rc = RSCLIP_ERR_NOMEM;
    }
    if (rc == RSCLIP_OK && !in_place && !(tp->mem = rsclip__alloc_huge(total)))
        rc = RSCLIP_ERR_NOMEM;
    char *cur = tp->mem;
    for (int i = 0; i < nj && rc == RSCLIP_OK; i++) {
        if (in_place) {
            rc = rsclip__packed_w_direct(jobs[i].w, jobs[i].n, jobs[i].k, jobs[i].k, jobs[i].out);
            continue;
        }
        rc = rsclip__pack_weights_at(jobs[i].w, jobs[i].n, jobs[i].k, jobs[i].k, fmt, cur,
                                     jobs[i].out);
        cur += rsclip__pack_weights_bytes(jobs[i].n, jobs[i].k, fmt);
    }
    free(jobs);
    if (rc != RSCLIP_OK) {
        tower_pack_free(tp);
        return rsclip__error(RSCLIP_ERR_NOMEM, "encoder: cannot pack the %s tower's weights",
                             vision ? "vision" : "text");
    }
    tp->ready = 1;
    return RSCLIP_OK;
}

/* Packed towers are kept by the model, one per (tower, format), built by the first encoder that
 * needs it and shared read-only by every encoder of the model (the model outlives them). One
 * process-wide lock guards the building (the model's other fields are never written). */
struct rsclip__pack_cache {
    tower_pack tp[2][3]; /* [vision][rsclip__gemm_format] */
};
static pthread_mutex_t g_pack_mu = PTHREAD_MUTEX_INITIALIZER;

void rsclip__model_packs_free(rsclip_model *m) {
    if (!m || !m->packs) return;
    for (int v = 0; v < 2; v++)
        for (int f = 0; f < 3; f++) tower_pack_free(&m->packs->tp[v][f]);
    free(m->packs);
    m->packs = NULL;
}

/* The encoder's packed weights of one tower, built on first use (in place: its own direct
 * handles), and for the vision tower the MAP head's query in its arena. */
static int tower_pack_build(rsclip_encoder *e, int vision) {
    const tower_pack **slot = vision ? &e->vision_pack : &e->text_pack;
    if (*slot) return RSCLIP_OK;
    int rc = RSCLIP_OK;
    if (e->in_place) {
        tower_pack *own = vision ? &e->own_vision : &e->own_text;
        rc = tower_pack_make(e->m, vision, RSCLIP__GEMM_F32, 1, own);
        if (rc == RSCLIP_OK) *slot = own;
    } else {
        const rsclip__gemm_format fmt = e->precision == RSCLIP_PRECISION_BF16   ? RSCLIP__GEMM_BF16
                                        : e->precision == RSCLIP_PRECISION_INT8 ? RSCLIP__GEMM_INT8
                                                                                : RSCLIP__GEMM_F32;
        rsclip_model *m = (rsclip_model *)e->m; /* the cache only: logically const */
        pthread_mutex_lock(&g_pack_mu);
        if (!m->packs && !(m->packs = rsclip__calloc(1, sizeof *m->packs))) rc = RSCLIP_ERR_NOMEM;
        tower_pack *tp = rc == RSCLIP_OK ? &m->packs->tp[vision != 0][fmt] : NULL;
        if (tp && !tp->ready) rc = tower_pack_make(m, vision, fmt, 0, tp);
        pthread_mutex_unlock(&g_pack_mu);
        if (rc == RSCLIP_ERR_NOMEM && !tp)
            return rsclip__error(rc, "encoder: out of memory for the packed weights");
        if (rc == RSCLIP_OK) *slot = tp;
    }
    if (rc == RSCLIP_OK && vision) map_query(e);
    return rc;
}

/* An encoder that forwards to the CUDA encoder on p->device. INT8 has no GPU kernel: there it
 * runs as F32, as on a CPU without AVX512-VNNI. */
static int encoder_new_cuda(const rsclip_model *m, const rsclip_encoder_params *p,
                            rsclip_encoder **out) {
    if (p->device.kind != RSCLIP_DEVICE_CUDA || p->device.index < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: unknown device (kind %d, %d)",
                             (int)p->device.kind, p->device.index);
    const rsclip_precision prec =
        p->precision == RSCLIP_PRECISION_INT8 ? RSCLIP_PRECISION_F32 : p->precision;
    rsclip_encoder *e = rsclip__calloc(1, sizeof(*e));
    if (!e) return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: out of memory");
    int rc = rsclip__cuda_new(m, p->device.index, p->max_batch, prec, &e->cuda);
    if (rc != RSCLIP_OK) {
        free(e);
        return rc;
    }
    e->m = m;
    e->max_batch = p->max_batch;
    e->n_threads = 1;
    e->precision = rsclip__cuda_precision(e->cuda);
    e->isa = RSCLIP__ISA_SCALAR; /* no CPU path: the products run on the GPU */
    e->isa_reason = "the encoder runs on a CUDA device: its products run on the GPU";
    *out = e;
    return RSCLIP_OK;
}

static size_t round16(size_t n) {
    return (n + 15) & ~(size_t)15; /* 16 floats = 64 bytes: every buffer starts aligned */
}

/* The GEMM path and attention kernel for precision p (AUTO resolved by the ISA table). */
static void choose_path(rsclip_encoder *e, rsclip_precision p, int in_place) {
    e->precision = in_place ? RSCLIP_PRECISION_F32 : rsclip_precision_effective(p);
    e->isa = (rsclip__isa)rsclip_precision_isa(e->precision, &e->isa_reason);
    if (in_place) e->isa_reason = "in place: f32 on the model's own weights";
    /* bf16 attention through the GEMM kernels: 1.4-1.8x the f32 kernel per head on Zen 5 (T =
     * 64..256, hd = 64), for the bf16 paths and int8 where the CPU has bf16 dot products */
    const int low = e->precision == RSCLIP_PRECISION_BF16 || e->precision == RSCLIP_PRECISION_INT8;
    e->attn = e->isa == RSCLIP__ISA_AVX2                               ? ATTN_GEMM_F32
              : low && rsclip__isa_ceiling() >= RSCLIP__ISA_AVX512BF16 ? ATTN_GEMM_BF16
                                                                       : ATTN_KERNEL;
}

/* Per-part attention scratch (floats) for the larger of the two towers. */
static size_t attn_scratch(const rsclip_model_info *mi, int attn) {
    const int f = attn == ATTN_GEMM_BF16 ? RSCLIP__GEMM_BF16 : RSCLIP__GEMM_F32;
    const int Tv = mi->n_patches, Tt = mi->text_ctx;
    const int hv = mi->vision.hidden / mi->vision.heads, ht = mi->text.hidden / mi->text.heads;
    size_t a = attn == ATTN_KERNEL ? rsclip__attention_scratch_floats(Tv, hv)
                                   : rsclip__attention_gemm_scratch_floats(Tv, hv, f);
    const size_t b = attn == ATTN_KERNEL ? rsclip__attention_scratch_floats(Tt, ht)
                                         : rsclip__attention_gemm_scratch_floats(Tt, ht, f);
    a = a > b ? a : b;
    return round16(a > (size_t)Tv ? a : (size_t)Tv); /* the MAP head's scores too */
}

int rsclip_encoder_new(const rsclip_model *m, const rsclip_encoder_params *params,
                       rsclip_encoder **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: out is NULL");
    *out = NULL;
    if (!m) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: model is NULL");
    rsclip_encoder_params p = params ? *params : rsclip_encoder_default_params();
    if (p.max_batch <= 0) p.max_batch = 8;
    if (p.max_batch > 65536)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: max_batch %d too large",
                             p.max_batch);
    if (p.n_threads < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: n_threads %d < 0", p.n_threads);
    if (p.precision != RSCLIP_PRECISION_AUTO && p.precision != RSCLIP_PRECISION_F32 &&
        p.precision != RSCLIP_PRECISION_BF16 && p.precision != RSCLIP_PRECISION_INT8)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encoder_new: unknown precision %d",
                             (int)p.precision);
    if (p.device.kind != RSCLIP_DEVICE_CPU) return encoder_new_cuda(m, &p, out);
    const char *isa_err = rsclip__isa_env_error();
    if (isa_err) return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "encoder_new: %s", isa_err);
    if (p.n_threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = nc > 0 ? (nc > 64 ? 64 : (int)nc) : 1;
    }
    if (p.n_threads > 64) p.n_threads = 64;

    const rsclip_model_info *mi = &m->info;
    const size_t B = (size_t)p.max_batch;
    const size_t Tv = (size_t)mi->n_patches, Tt = (size_t)mi->text_ctx;
    const size_t T = Tv > Tt ? Tv : Tt;
    const size_t D =
        (size_t)(mi->text.hidden > mi->vision.hidden ? mi->text.hidden : mi->vision.hidden);
    size_t F = (size_t)(mi->text.intermediate > mi->vision.intermediate ? mi->text.intermediate
                                                                        : mi->vision.intermediate);
    const size_t K = (size_t)m->channels * mi->patch_size * mi->patch_size;
    if (K > F) F = K;

    /* Sizes (floats) of each buffer, overflow-checked: the config bounds keep them modest, but a
     * huge max_batch must fail cleanly. */
    rsclip_encoder probe;
    memset(&probe, 0, sizeof probe);
    choose_path(&probe, p.precision, p.in_place);
    size_t rows = 0, rd = 0, ri = 0, bd = 0, bi = 0, total = 0;
    int bad = rsclip__mul_size(B, T, &rows) || rsclip__mul_size(rows, D, &rd) ||
              rsclip__mul_size(rows, F, &ri) || rsclip__mul_size(B, D, &bd) ||
              rsclip__mul_size(B, F, &bi);
    /* per-part attention scratch: the larger of the two towers' needs */
    const size_t at1 = attn_scratch(mi, probe.attn);
    size_t at = 0;
    bad = bad || rsclip__mul_size(at1, (size_t)p.n_threads, &at);
    /* x, xn, q, k, v, ao, h, pq, pa, pn, ph, attn_tmp */
    const size_t sizes[12] = {rd, rd, rd, rd, rd, rd, ri, D, bd, bd, bi, at};
    for (int i = 0; i < 12 && !bad; i++) bad = rsclip__add_size(total, round16(sizes[i]), &total);
    size_t bytes;
    if (bad || rsclip__mul_size(total, sizeof(float), &bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: arena size overflows (max_batch %d)",
                             p.max_batch);

    rsclip_encoder *e = rsclip__calloc(1, sizeof(*e));
    if (!e) return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: out of memory");
    e->arena = rsclip__alloc_huge(bytes);
    if (!e->arena) {
        free(e);
        return rsclip__error(RSCLIP_ERR_NOMEM, "encoder_new: cannot allocate %zu bytes", bytes);
    }
    memset(e->arena, 0, bytes); /* touch every page once, here, not in the first forward */
    e->m = m;
    e->max_batch = p.max_batch;
    e->n_threads = p.n_threads;
    e->arena_n = total;
    choose_path(e, p.precision, p.in_place);
    e->in_place = p.in_place != 0;
    int rc = rsclip__gemm_ctx_new(p.n_threads, &e->g);
    if (rc != RSCLIP_OK) {
        free(e->arena);
        free(e);
        return rsclip__error(rc, "encoder_new: cannot allocate scratch for %d threads",
                             p.n_threads);
    }

    float *cur = e->arena;
    float **slots[12] = {&e->x, &e->xn, &e->q,  &e->k,  &e->v,  &e->ao,
                         &e->h, &e->pq, &e->pa, &e->pn, &e->ph, &e->attn_tmp};
    e->attn_tmp_n = at1;
    for (int i = 0; i < 12; i++) {
        *slots[i] = cur;
        cur += round16(sizes[i]);
    }
    *out = e;
    return RSCLIP_OK;
}

void rsclip_encoder_free(rsclip_encoder *e) {
    if (!e) return;
    rsclip__cuda_free(e->cuda);
    tower_pack_free(&e->own_text); /* the shared packs belong to the model */
    tower_pack_free(&e->own_vision);
    rsclip__gemm_ctx_free(e->g);
    free(e->arena);
    free(e);
}

int rsclip_encode_images(rsclip_encoder *e, int n, const float *pixels, float *embeds,
                         float *last_hidden) {
    if (!e || n <= 0 || !pixels || !embeds)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encode_images: invalid arguments");
    if (!(rsclip_model_towers(e->m) & RSCLIP_MODEL_VISION))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "encode_images: the model was loaded without its vision tower");
    const rsclip_model_info *mi = &e->m->info;
    const size_t per_img = (size_t)e->m->channels * mi->image_size * mi->image_size;
    const size_t per_hidden = (size_t)mi->n_patches * mi->vision.hidden;
    if (e->cuda) return rsclip__cuda_encode_images(e->cuda, n, pixels, embeds, last_hidden);
    int rc = tower_pack_build(e, 1);
    if (rc != RSCLIP_OK) return rc;
    for (int i = 0; i < n; i += e->max_batch) {
        int nb = n - i < e->max_batch ? n - i : e->max_batch;
        rsclip__vision_forward(e, nb, pixels + (size_t)i * per_img,
                               embeds + (size_t)i * mi->embed_dim,
                               last_hidden ? last_hidden + (size_t)i * per_hidden : NULL);
    }
    return rsclip__model_unchanged(e->m); /* the weights read were those loaded */
}

int rsclip_encode_texts(rsclip_encoder *e, int n, const int32_t *ids, float *embeds,
                        float *last_hidden) {
    if (!e || n <= 0 || !ids || !embeds)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "encode_texts: invalid arguments");
    if (!(rsclip_model_towers(e->m) & RSCLIP_MODEL_TEXT))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "encode_texts: the model was loaded without its text tower");
    const rsclip_model_info *mi = &e->m->info;
    const size_t T = (size_t)mi->text_ctx;
    for (size_t i = 0; i < (size_t)n * T; i++) {
        if (ids[i] < 0 || ids[i] >= mi->vocab_size)
            return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                                 "encode_texts: text %zu position %zu: token id %d outside the "
                                 "vocabulary [0, %d)",
                                 i / T, i % T, (int)ids[i], mi->vocab_size);
    }
    const size_t per_hidden = T * mi->text.hidden;
    if (e->cuda) return rsclip__cuda_encode_texts(e->cuda, n, ids, embeds, last_hidden);
    int rc = tower_pack_build(e, 0);
    if (rc != RSCLIP_OK) return rc;
    for (int i = 0; i < n; i += e->max_batch) {
        int nb = n - i < e->max_batch ? n - i : e->max_batch;
        rsclip__text_forward(e, nb, ids + (size_t)i * T, embeds + (size_t)i * mi->embed_dim,
                             last_hidden ? last_hidden + (size_t)i * per_hidden : NULL);
    }
    return rsclip__model_unchanged(e->m); /* the weights read were those loaded */
}
