/* rounder_gptq.c - GPTQ with fixed block scales (MR-GPTQ style), the baseline FAAR is compared with.
 *
 * The scales come from the starting quantisation and never change. H is damped by
 * damping·mean(diag H) on the diagonal (a zero diagonal entry, a dead input, becomes 1), the
 * columns are optionally reordered by decreasing diag(H) (act-order), and U, the upper Cholesky
 * factor of H⁻¹ (H⁻¹ = UᵀU), is computed without forming H⁻¹: factor H = R·Rᵀ with R upper
 * ("reverse" Cholesky, from the last column back), then U = R⁻¹. Columns are processed in blocks:
 * within a block each row quantises column j with its block's fixed scale, and the scaled error
 * (w − q)/U_jj is fed into the block's remaining columns through row j of U; the later columns get
 * the whole block's correction at once as a matrix product (the "lazy batch" update).
 * Factorisation in float64, the sweep in float32.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "rounder_impl.h"

typedef struct {
    double *R;       /* [n, n], in: H (upper triangle used), out: R (upper) */
    int64_t n, j;
} rchol_args;

/* Column j of R for rows i in [begin, end) (all i < j): R_ij = (H_ij − Σ_{k>j} R_ik R_jk) / R_jj. */
static void rchol_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const rchol_args *a = arg;
    const int64_t n = a->n, j = a->j;
    const double *Rj = a->R + j * n;
    (void)tid;
    for (int64_t i = begin; i < end; i++) {
        double *Ri = a->R + i * n;
        double s = Ri[j];
        for (int64_t k = j + 1; k < n; k++)
            s -= Ri[k] * Rj[k];
        Ri[j] = s / Rj[j];
    }
}

typedef struct {
    const double *R;
    float *U;
    double *acc; /* per thread n */
    int64_t n;
} rinv_args;

/* Row i of U = R⁻¹ from U R = I: U_ii = 1/R_ii, U_ic = −Σ_{i≤k<c} U_ik R_kc / R_cc. */
static void rinv_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const rinv_args *a = arg;
    const int64_t n = a->n;
    double *acc = a->acc + (int64_t)tid * n;
    for (int64_t i = begin; i < end; i++) {
        float *Ui = a->U + i * n;
        for (int64_t c = 0; c < i; c++)
            Ui[c] = 0.0f;
        for (int64_t c = i; c < n; c++)
            acc[c] = c == i ? 1.0 : 0.0;
        for (int64_t k = i; k < n; k++) {
            double u = acc[k] / a->R[k * n + k];
            Ui[k] = (float)u;
            const double *Rk = a->R + k * n;
            for (int64_t c = k + 1; c < n; c++)
                acc[c] -= u * Rk[c];
        }
    }
}

typedef struct {
    const nvfp4i_rjob *job;
    const uint8_t *scales;
    float s_dec;
    const int64_t *perm;
    float *Wp;       /* [out, n] permuted, updated in place */
    const float *U;  /* [n, n] */
    float *Err;      /* [out, B] */
    uint8_t *codes;  /* [out, in] original order */
    int64_t b0, b1, B;
    double *rowerr;  /* [out] running Σ (w−q)²/U_jj² */
} sweep_args;

static void sweep_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const sweep_args *a = arg;
    const nvfp4i_rjob *j = a->job;
    const int64_t n = j->in;
    (void)tid;
    for (int64_t r = begin; r < end; r++) {
        float *w = a->Wp + r * n;
        float *err = a->Err + r * a->B;
        double acc = a->rowerr[r];
        for (int64_t c = a->b0; c < a->b1; c++) {
            int64_t oc = a->perm[c];
            float fS = nvfp4i_e4m3_to_float(a->scales[r * j->nblk + oc / 16]);
            float inv = fS == 0.0f ? 0.0f : 1.0f / (fS * a->s_dec);
            if (!(inv <= NVFP4I_FLT_MAX))
                inv = NVFP4I_FLT_MAX;
            uint8_t code = nvfp4i_encode(w[c], inv);
            float q = nvfp4i_decode(code, fS, a->s_dec);
            a->codes[r * n + oc] = code;
            const float *Uc = a->U + c * n;
            float e = (w[c] - q) / Uc[c];
            acc += (double)e * (double)e;
            err[c - a->b0] = e;
            for (int64_t k = c + 1; k < a->b1; k++)
                w[k] -= e * Uc[k];
        }
        a->rowerr[r] = acc;
    }
}

typedef struct {
    float *Wp;
    const float *T;
    int64_t n, b1, w;
} sub_args;

static void sub_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const sub_args *a = arg;
    (void)tid;
    for (int64_t r = begin; r < end; r++)
        for (int64_t k = 0; k < a->w; k++)
            a->Wp[r * a->n + a->b1 + k] -= a->T[r * a->w + k];
}

typedef struct {
    double d;
    int64_t i;
} keyed;

static int by_diag_desc(const void *pa, const void *pb)
{
    const keyed *a = pa, *b = pb;
    if (a->d != b->d)
        return a->d > b->d ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i; /* ties keep the natural order */
}

nvfp4_status nvfp4i_gptq_round(const nvfp4i_rjob *job, uint8_t *codes, const uint8_t *scales, float s_dec,
                               int64_t *columns_done)
{
    nvfp4_context *ctx = job->ctx;
    nvfp4_rounder *r = job->r;
    const int64_t n = job->in, out = job->out;
    const int64_t B = r->block_size < n ? r->block_size : n;
    const int nt = nvfp4i_nthreads(ctx, n);
    double *R = nvfp4i_alloc(ctx, (size_t)(n * n) * sizeof(double));
    double *diag = nvfp4i_alloc(ctx, (size_t)n * sizeof(double));
    double *acc = nvfp4i_alloc(ctx, (size_t)(nt * n) * sizeof(double));
    int64_t *perm = nvfp4i_alloc(ctx, (size_t)n * sizeof(int64_t));
    float *U = nvfp4i_alloc(ctx, (size_t)(n * n) * sizeof(float));
    float *Wp = nvfp4i_alloc(ctx, (size_t)(out * n) * sizeof(float));
    float *Err = nvfp4i_alloc(ctx, (size_t)(out * B) * sizeof(float));
    float *T = nvfp4i_alloc(ctx, (size_t)(out * n) * sizeof(float));
    double *rowerr = nvfp4i_alloc(ctx, (size_t)out * sizeof(double));
    uint8_t *cw = nvfp4i_alloc(ctx, (size_t)(out * n));
    nvfp4_status st = NVFP4_OK;
    if (!R || !diag || !acc || !perm || !U || !Wp || !Err || !T || !rowerr || !cw) {
        st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate GPTQ state for %lld inputs",
                                 (long long)n);
        goto done;
    }
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diag[i] = job->H[i * n + i];
        mean += diag[i];
    }
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    if (r->act_order) {
        keyed *kd = nvfp4i_alloc(ctx, (size_t)n * sizeof(keyed));
        if (!kd) {
            st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate the act-order permutation");
            goto done;
        }
        for (int64_t i = 0; i < n; i++) {
            kd[i].d = diag[i];
            kd[i].i = i;
        }
        qsort(kd, (size_t)n, sizeof *kd, by_diag_desc);
        for (int64_t i = 0; i < n; i++)
            perm[i] = kd[i].i;
        nvfp4i_free(ctx, kd);
    }
    /* damped, permuted H */
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) {
            double h = job->H[perm[i] * n + perm[k]];
            if (i == k)
                h = diag[perm[i]] == 0.0 ? 1.0 : h + r->damping * mean;
            R[i * n + k] = h;
        }
    for (int64_t j = n - 1; j >= 0; j--) {
        double *Rj = R + j * n;
        double s = Rj[j];
        for (int64_t k = j + 1; k < n; k++)
            s -= Rj[k] * Rj[k];
        if (!(s > 0.0)) {
            st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NUMERICAL,
                                     "damped H is not positive definite (column %lld); raise NVFP4_R_DAMPING",
                                     (long long)perm[j]);
            goto done;
        }
        Rj[j] = sqrt(s);
        rchol_args ra = {R, n, j};
        if (j > 0)
            nvfp4i_parallel_for(ctx, j, rchol_rows, &ra);
    }
    rinv_args ia = {R, U, acc, n};
    nvfp4i_parallel_for(ctx, n, rinv_rows, &ia);

    for (int64_t row = 0; row < out; row++) {
        for (int64_t c = 0; c < n; c++)
            Wp[row * n + c] = job->W[row * n + perm[c]];
        rowerr[row] = 0.0;
    }
    for (int64_t b0 = 0; b0 < n; b0 += B) {
        int64_t b1 = b0 + B < n ? b0 + B : n;
        sweep_args sa = {job, scales, s_dec, perm, Wp, U, Err, cw, b0, b1, B, rowerr};
        nvfp4i_parallel_for(ctx, out, sweep_rows, &sa);
        /* The feedback multiplies errors by ratios of U's entries, which an ill-conditioned damped
         * H makes huge: once an updated weight or a scaled error leaves float32 (an overflowed
         * U_jk, j < k, included), the row's running error is no longer finite. Every column is
         * swept after all its updates, so a finite error sum means every updated weight and every
         * fed-back error so far was finite (an overflowed U_jj only makes the error fed back 0). */
        for (int64_t row = 0; row < out; row++)
            if (!isfinite(rowerr[row])) {
                st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NUMERICAL,
                                         "GPTQ's error feedback left float32's range (row %lld, columns up to %lld): "
                                         "H is too ill-conditioned for its damping; raise NVFP4_R_DAMPING",
                                         (long long)row, (long long)b1);
                goto done;
            }
        if (b1 < n) {
            /* T = Err[:, 0:b1−b0] · U[b0:b1, b1:n] */
            nvfp4i_matmul(ctx, out, n - b1, b1 - b0, Err, B, U + b0 * n + b1, n, T, n - b1);
            sub_args su = {Wp, T, n, b1, n - b1};
            nvfp4i_parallel_for(ctx, out, sub_rows, &su);
        }
        if (r->progress) {
            double e = 0.0;
            for (int64_t row = 0; row < out; row++)
                e += rowerr[row];
            if (r->progress(b1, e / (double)out, r->progress_user) != 0) {
                st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_CANCELLED, "cancelled by the progress callback at column %lld",
                                         (long long)b1);
                goto done;
            }
        }
    }
    memcpy(codes, cw, (size_t)(out * n));
    *columns_done = n;
done:
    nvfp4i_free(ctx, R);
    nvfp4i_free(ctx, diag);
    nvfp4i_free(ctx, acc);
    nvfp4i_free(ctx, perm);
    nvfp4i_free(ctx, U);
    nvfp4i_free(ctx, Wp);
    nvfp4i_free(ctx, Err);
    nvfp4i_free(ctx, T);
    nvfp4i_free(ctx, rowerr);
    nvfp4i_free(ctx, cw);
    return st;
}
