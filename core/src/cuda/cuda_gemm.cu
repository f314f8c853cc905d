/*
 * GEMMs of the CUDA encoder. Row-major y[rows, n] = x[rows, k] W^T with W [n, k] (a Linear's
 * checkpoint layout) is, to column-major cuBLAS, D[n, rows] = op(A) B with A = W stored k x n
 * (op = transpose) and B = x stored k x rows: the "TN" GEMM, no copies or transposes needed.
 *
 * Linear layers go through cuBLASLt with fp32 accumulation (CUBLAS_COMPUTE_32F: never TF32), the
 * bias (and in BF16 mode the GELU) fused in the epilogue, accumulate = beta 1 into the float32
 * residual stream. A matmul description, its layouts and the heuristic's algorithm are built once
 * per shape and kept in a small cache (the towers repeat a handful of shapes). The pointers'
 * actual alignments are part of the key: cuBLASLt otherwise assumes 256-byte alignment.
 *
 * The attention products (scores and values) are strided-batched cuBLAS GEMMs over the items,
 * one call per head.
 */
#include "cuda/cuda_common.cuh"

#include "status/status_internal.h"

#include <stdlib.h>
#include <string.h>

namespace rsclip_cuda {

namespace {
constexpr int kPlans = 64;
constexpr size_t kWorkspace = 32u << 20; /* cuBLASLt's recommendation for Hopper */
} // namespace

struct plan_key {
    int m, n, k, ldb, ldd;
    int act, d_t, epi, acc;
    int align_a, align_b, align_d;
};

struct gemm_plan {
    plan_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
    int gelu_separate; /* GELU asked for, run as gelu_tanh after the GEMM */
    int bias_separate; /* no bias epilogue available: add_bias after the GEMM */
    int valid;
};

namespace {

int align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 1;
    while (al < 256 && (a & (uintptr_t)(2 * al - 1)) == 0) al *= 2;
    return al;
}

void plan_release(gemm_plan *p) {
    if (!p->valid) return;
    cublasLtMatrixLayoutDestroy(p->la);
    cublasLtMatrixLayoutDestroy(p->lb);
    cublasLtMatrixLayoutDestroy(p->ld);
    cublasLtMatmulDescDestroy(p->op);
    p->valid = 0;
}

#define RC_LT(call, what)                                                                          \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) return cublas_fail((int)st_, what);                      \
    } while (0)

/* The heuristic's best algorithm for p's description under epilogue epi (0: none found). */
int find_algo(gemm_ctx *g, gemm_plan *p, cublasLtEpilogue_t epi, int *found) {
    *found = 0;
    RC_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)),
          "matmul epilogue");
    cublasLtMatmulPreference_t pref;
    RC_LT(cublasLtMatmulPreferenceCreate(&pref), "matmul preference");
    uint64_t ws = g->workspace_bytes;
    uint32_t al[3] = {(uint32_t)p->key.align_a, (uint32_t)p->key.align_b, (uint32_t)p->key.align_d};
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    const uint32_t val[4] = {al[0], al[1], al[2], al[2]};
    for (int i = 0; i < 4 && st == CUBLAS_STATUS_SUCCESS; i++)
        st = cublasLtMatmulPreferenceSetAttribute(pref, which[i], &val[i], sizeof(val[i]));
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(g->lt, p->op, p->la, p->lb, p->ld, p->ld, pref, 1, &res,
                                            &n_res);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && n_res == 0))
        return RSCLIP_OK; /* no algorithm: the caller may try another epilogue */
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_fail((int)st, "matmul heuristic");
    p->algo = res.algo;
    *found = 1;
    return RSCLIP_OK;
}

int plan_build(gemm_ctx *g, const plan_key &k, gemm_plan *p) {
    memset(p, 0, sizeof(*p));
    p->key = k;
    RC_LT(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasStatus_t st =
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
    const cudaDataType_t at = dtype_cuda((dtype)k.act), dt = dtype_cuda((dtype)k.d_t);
    /* A: W stored k x m (ld k); B: x stored k x n (ld ldb); C = D: m x n (ld ldd) */
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&p->la, at, k.k, k.m, k.k);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&p->lb, at, k.k, k.n, k.ldb);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&p->ld, dt, k.m, k.n, k.ldd);
    p->valid = 1; /* from here on plan_release frees what was made (destroying NULL is fine) */
    if (st != CUBLAS_STATUS_SUCCESS) {
        plan_release(p);
        return cublas_fail((int)st, "matmul layouts");
    }
    int found = 0, rc = RSCLIP_OK;
    if (k.epi == EPI_GELU_BIAS && g->gelu_epilogue)
        rc = find_algo(g, p, CUBLASLT_EPILOGUE_GELU_BIAS, &found);
    if (rc == RSCLIP_OK && !found) {
        p->gelu_separate = k.epi == EPI_GELU_BIAS;
        rc = find_algo(g, p, CUBLASLT_EPILOGUE_BIAS, &found);
    }
    if (rc == RSCLIP_OK && !found) {
        p->bias_separate = 1;
        rc = find_algo(g, p, CUBLASLT_EPILOGUE_DEFAULT, &found);
    }
    if (rc == RSCLIP_OK && !found)
        rc = rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                           "cuBLASLt has no algorithm for a %d x %d x %d %s GEMM on this device",
                           k.m, k.n, k.k, k.act == DT_F32 ? "f32" : "bf16");
    if (rc != RSCLIP_OK) plan_release(p);
    return rc;
}

/* The cached plan for k, built (evicting round-robin when full) if new. */
int plan_get(gemm_ctx *g, const plan_key &k, gemm_plan **out) {
    for (int i = 0; i < g->n_plans; i++)
        if (g->plans[i].valid && !memcmp(&g->plans[i].key, &k, sizeof(k))) {
            *out = &g->plans[i];
            return RSCLIP_OK;
        }
    gemm_plan *p;
    if (g->n_plans < kPlans) {
        p = &g->plans[g->n_plans++];
    } else {
        p = &g->plans[g->next_evict];
        g->next_evict = (g->next_evict + 1) % kPlans;
        plan_release(p);
    }
    int rc = plan_build(g, k, p);
    if (rc == RSCLIP_OK) *out = p;
    return rc;
}

} // namespace

int gemm_ctx_init(gemm_ctx *g, cudaStream_t stream, dtype act) {
    memset(g, 0, sizeof(*g));
    g->stream = stream;
    g->act = act;
    g->gelu_epilogue = act == DT_BF16; /* F32 keeps tanhf: the epilogue's GELU may approximate */
    g->plans = (gemm_plan *)calloc(kPlans, sizeof(gemm_plan));
    if (!g->plans) return rsclip__error(RSCLIP_ERR_NOMEM, "cuda: out of memory");
    RC_LT(cublasLtCreate(&g->lt), "cublasLtCreate");
    RC_LT(cublasCreate(&g->blas), "cublasCreate");
    RC_LT(cublasSetStream(g->blas, stream), "cublasSetStream");
    /* default math: no TF32 for float32 products (that needs CUBLAS_TF32_TENSOR_OP_MATH) */
    RC_LT(cublasSetMathMode(g->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    RC_CUDA(cudaMalloc(&g->workspace, kWorkspace), "GEMM workspace");
    g->workspace_bytes = kWorkspace;
    return RSCLIP_OK;
}

void gemm_ctx_free(gemm_ctx *g) {
    if (g->plans)
        for (int i = 0; i < g->n_plans; i++) plan_release(&g->plans[i]);
    free(g->plans);
    if (g->blas) cublasDestroy(g->blas);
    if (g->lt) cublasLtDestroy(g->lt);
    cudaFree(g->workspace);
    memset(g, 0, sizeof(*g));
}

int linear(gemm_ctx *g, int rows, const void *x, int ldx, const dlinear &L, void *y, int ldy,
           dtype y_t, int epi, int accumulate) {
    if (rows <= 0) return RSCLIP_OK;
    if (L.bias_t != y_t)
        return rsclip__error(RSCLIP_ERR_INTERNAL, "cuda: bias type differs from the output type");
    plan_key k;
    memset(&k, 0, sizeof(k)); /* the key is compared bytewise */
    k.m = L.n, k.n = rows, k.k = L.k, k.ldb = ldx, k.ldd = ldy;
    k.act = g->act, k.d_t = y_t, k.epi = epi, k.acc = accumulate;
    k.align_a = align_of(L.w), k.align_b = align_of(x), k.align_d = align_of(y);
    gemm_plan *p;
    int rc = plan_get(g, k, &p);
    if (rc != RSCLIP_OK) return rc;
    if (!p->bias_separate)
        RC_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &L.b,
                                             sizeof(L.b)),
              "matmul bias");
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    RC_LT(cublasLtMatmul(g->lt, p->op, &alpha, L.w, p->la, x, p->lb, &beta, y, p->ld, y, p->ld,
                         &p->algo, g->workspace, g->workspace_bytes, g->stream),
          "cublasLtMatmul");
    if (p->bias_separate) {
        int rc2 = add_bias(g->stream, y_t, y, ldy, L.b, rows, L.n);
        if (rc2 != RSCLIP_OK) return rc2;
    }
    if (p->gelu_separate) {
        if (ldy != L.n) return rsclip__error(RSCLIP_ERR_INTERNAL, "cuda: GELU on a strided output");
        return gelu_tanh(g->stream, y_t, y, (size_t)rows * L.n);
    }
    return RSCLIP_OK;
}

int attention_scores(gemm_ctx *g, int nc, int T, int D, int H, const void *qkv, float *S,
                     float scale) {
    const int hd = D / H;
    const size_t es = dtype_size(g->act);
    const cudaDataType_t at = dtype_cuda(g->act);
    const float beta = 0.0f;
    for (int h = 0; h < H; h++) {
        const char *q = (const char *)qkv + (size_t)h * hd * es;
        const char *k = (const char *)qkv + ((size_t)D + (size_t)h * hd) * es;
        /* column-major S_h(j, i) = sum_d K(j, d) Q(i, d): m = n = T, k = hd */
        RC_LT(cublasGemmStridedBatchedEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &scale, k, at,
                                         3 * D, (long long)T * 3 * D, q, at, 3 * D,
                                         (long long)T * 3 * D, &beta, S + (size_t)h * T * T,
                                         CUDA_R_32F, T, (long long)H * T * T, nc,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "attention scores");
    }
    return RSCLIP_OK;
}

int attention_values(gemm_ctx *g, int nc, int T, int D, int H, const void *qkv, const void *P,
                     void *ao) {
    const int hd = D / H;
    const size_t es = dtype_size(g->act);
    const cudaDataType_t at = dtype_cuda(g->act);
    const float alpha = 1.0f, beta = 0.0f;
    for (int h = 0; h < H; h++) {
        const char *v = (const char *)qkv + (2 * (size_t)D + (size_t)h * hd) * es;
        const char *ph = (const char *)P + (size_t)h * T * T * es;
        char *o = (char *)ao + (size_t)h * hd * es;
        /* column-major O(d, i) = sum_j V(j, d) P(i, j): m = hd, n = T, k = T */
        RC_LT(cublasGemmStridedBatchedEx(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &alpha, v, at,
                                         3 * D, (long long)T * 3 * D, ph, at, T,
                                         (long long)H * T * T, &beta, o, at, D, (long long)T * D,
                                         nc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "attention values");
    }
    return RSCLIP_OK;
}

} // namespace rsclip_cuda
