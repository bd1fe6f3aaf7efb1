/* rounder_faar.c - FAAR (format-aware adaptive rounding, SPEC §4) and the second, format-alignment
 * stage that re-fits the block scales (and the global scale) to fixed codes.
 *
 * Stage 1 is AdaRound on the signed E2M1 grid: every weight w with u = w / (s_dec·f(S_b)) strictly
 * between two grid points lo < u < hi gets a variable V; its soft value is
 * W̃ = s_dec·f(S_b)·(lo + gap·h(V)), h(V) = clip(1.2·σ(V) − 0.1, 0, 1), starting at h = (u − lo)/gap
 * so that W̃ = w. The objective is L_rec = tr((W̃ − W) H (W̃ − W)ᵀ)/out plus λ Σ (1 − |2h − 1|^β)
 * after the warm-up; its gradient with respect to W̃ is 2 (W̃ − W) H / out (one matrix product per
 * iteration, the only heavy operation), chained through h by hand. Adam updates V. At the end
 * h ≥ 0.5 picks hi, otherwise lo; a row whose hardened loss exceeds its starting loss keeps its
 * starting codes.
 *
 * The iteration loop is float32; sums over a row (losses, gradient norms) are float64.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "rounder_impl.h"

#define FROZEN 0xFF

static const float SGRID[15] = {-6.0f, -4.0f, -3.0f, -2.0f, -1.5f, -1.0f, -0.5f, 0.0f,
                                0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f};

static float scale_inv(float fS, float s_dec)
{
    if (fS == 0.0f)
        return 0.0f;
    float inv = 1.0f / (fS * s_dec);
    return inv <= NVFP4I_FLT_MAX ? inv : NVFP4I_FLT_MAX;
}

/* Index k of the grid interval (SGRID[k], SGRID[k+1]) holding u strictly, or FROZEN. */
static uint8_t interval_of(float u)
{
    if (!(u > -6.0f && u < 6.0f))
        return FROZEN;
    int k = 0;
    while (k < 13 && SGRID[k + 1] <= u)
        k++;
    if (SGRID[k] == u)
        return FROZEN;
    return (uint8_t)k;
}

typedef struct {
    const nvfp4i_rjob *job;
    const uint8_t *scales;
    float s_dec;
    uint8_t *lo;     /* [out, in] interval index or FROZEN */
    uint8_t *fcode;  /* [out, in] codes of frozen weights (nearest grid point) */
    float *V, *m, *v;
    float *sg;       /* σ(V), kept so that each step evaluates one exponential */
    double *rowsum;  /* [out] */
    /* this iteration */
    float gs;        /* 2/out */
    int reg_on;
    float lambda, beta, lr_t, b1, b2, eps;
    int grad_only;   /* 1: only Σ g_rec² (for the ε scale), no update */
} faar_state;

static float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

static void init_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    faar_state *s = arg;
    const nvfp4i_rjob *j = s->job;
    (void)tid;
    for (int64_t r = begin; r < end; r++) {
        for (int64_t i = 0; i < j->in; i++) {
            int64_t x = r * j->in + i;
            float w = j->W[x];
            float fS = nvfp4i_e4m3_to_float(s->scales[r * j->nblk + i / 16]);
            float u = w * scale_inv(fS, s->s_dec);
            uint8_t k = interval_of(u);
            s->lo[x] = k;
            s->m[x] = 0.0f;
            s->v[x] = 0.0f;
            if (k == FROZEN) {
                uint8_t c = nvfp4i_e2m1_from_float(u);
                s->fcode[x] = c;
                s->V[x] = 0.0f;
                s->sg[x] = 0.5f;
                j->E[x] = nvfp4i_decode(c, fS, s->s_dec) - w;
                continue;
            }
            float lo = SGRID[k], gap = SGRID[k + 1] - SGRID[k];
            float h0 = (u - lo) / gap;
            float p = (h0 + 0.1f) / 1.2f;
            s->V[x] = logf(p / (1.0f - p));
            s->fcode[x] = 0;
            s->sg[x] = sigmoidf_(s->V[x]);
            float h = 1.2f * s->sg[x] - 0.1f;
            h = h < 0.0f ? 0.0f : h > 1.0f ? 1.0f : h;
            j->E[x] = ((lo + gap * h) * fS) * s->s_dec - w;
        }
    }
}

/* dL/dV of one free weight: the reconstruction part (2/out)·G·∂W̃/∂h·h'(V) plus, when reg_on,
 * λ·∂(1 − |2h − 1|^β)/∂h·h'(V). sg = σ(V). Shared by the loop and nvfp4i_faar_eval(). */
static inline float elem_grad(float g, float sg, float gap, float step, float gs, int reg_on, float lambda,
                              float beta, float *h_out)
{
    float hr = 1.2f * sg - 0.1f;
    float dh = (hr > 0.0f && hr < 1.0f) ? 1.2f * sg * (1.0f - sg) : 0.0f;
    float h = hr < 0.0f ? 0.0f : hr > 1.0f ? 1.0f : hr;
    float grad = gs * g * (gap * step) * dh;
    if (reg_on && dh != 0.0f) {
        float t = 2.0f * h - 1.0f, at = fabsf(t);
        float d = at > 0.0f ? -2.0f * beta * powf(at, beta - 1.0f) : 0.0f;
        grad += lambda * (t < 0.0f ? -d : d) * dh;
    }
    *h_out = h;
    return grad;
}

/* One pass over rows after G = E·H: the row losses, and (unless grad_only) the Adam step and the
 * new soft weights' errors E.
 * A weight whose h sits on a clip edge (h'(V) = 0) has a zero gradient, so Adam's momentum only
 * carries V further out and h never changes again: such weights are skipped, which gives the same
 * result as updating them and saves most of the work once the rounding has hardened. */
static void step_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    faar_state *s = arg;
    const nvfp4i_rjob *j = s->job;
    const int reg_on = s->reg_on && !s->grad_only;
    (void)tid;
    for (int64_t r = begin; r < end; r++) {
        double loss = 0.0, g2 = 0.0;
        const int64_t row = r * j->in;
        for (int64_t i = 0; i < j->in; i++)
            loss += (double)j->E[row + i] * (double)j->G[row + i];
        for (int64_t b0 = 0; b0 < j->in; b0 += 16) {
            const int64_t b1 = b0 + 16 < j->in ? b0 + 16 : j->in;
            const float fS = nvfp4i_e4m3_to_float(s->scales[r * j->nblk + b0 / 16]);
            const float step = fS * s->s_dec;
            for (int64_t x = row + b0; x < row + b1; x++) {
                uint8_t k = s->lo[x];
                if (k == FROZEN)
                    continue;
                float hr = 1.2f * s->sg[x] - 0.1f;
                if (!(hr > 0.0f && hr < 1.0f))
                    continue; /* locked on a clip edge: zero gradient from now on */
                float lo = SGRID[k], gap = SGRID[k + 1] - SGRID[k], h;
                float grad = elem_grad(j->G[x], s->sg[x], gap, step, s->gs, reg_on, s->lambda, s->beta, &h);
                if (s->grad_only) {
                    g2 += (double)grad * (double)grad;
                    continue;
                }
                float mm = s->b1 * s->m[x] + (1.0f - s->b1) * grad;
                float vv = s->b2 * s->v[x] + (1.0f - s->b2) * grad * grad;
                s->m[x] = mm;
                s->v[x] = vv;
                float V = s->V[x] - s->lr_t * mm / (sqrtf(vv) + s->eps);
                s->V[x] = V;
                float sn = sigmoidf_(V);
                s->sg[x] = sn;
                float hn = 1.2f * sn - 0.1f;
                hn = hn < 0.0f ? 0.0f : hn > 1.0f ? 1.0f : hn;
                j->E[x] = ((lo + gap * hn) * fS) * s->s_dec - j->W[x];
            }
        }
        s->rowsum[r] = s->grad_only ? g2 : loss;
    }
}

typedef struct {
    const faar_state *s;
    uint8_t *codes;
} harden_args;

static void harden_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const harden_args *a = arg;
    const faar_state *s = a->s;
    const nvfp4i_rjob *j = s->job;
    (void)tid;
    for (int64_t r = begin; r < end; r++)
        for (int64_t i = 0; i < j->in; i++) {
            int64_t x = r * j->in + i;
            uint8_t k = s->lo[x];
            if (k == FROZEN) {
                a->codes[x] = s->fcode[x];
                continue;
            }
            float h = 1.2f * s->sg[x] - 0.1f;
            float v = h >= 0.5f ? SGRID[k + 1] : SGRID[k];
            a->codes[x] = nvfp4i_code_of_value(v, j->W[x]);
        }
}

nvfp4_status nvfp4i_faar_round(const nvfp4i_rjob *job, uint8_t *codes, const uint8_t *scales, float s_dec,
                               const double *start_rowloss, int64_t *iterations_run, int64_t *rows_fallback)
{
    nvfp4_context *ctx = job->ctx;
    nvfp4_rounder *r = job->r;
    const size_t nw = (size_t)(job->out * job->in);
    faar_state s;
    memset(&s, 0, sizeof s);
    s.job = job;
    s.scales = scales;
    s.s_dec = s_dec;
    s.lo = nvfp4i_alloc(ctx, nw);
    s.fcode = nvfp4i_alloc(ctx, nw);
    s.V = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.m = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.v = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.sg = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.rowsum = nvfp4i_alloc(ctx, (size_t)job->out * sizeof(double));
    uint8_t *hard = nvfp4i_alloc(ctx, nw);
    double *hard_loss = nvfp4i_alloc(ctx, (size_t)job->out * sizeof(double));
    nvfp4_status st = NVFP4_OK;
    if (!s.lo || !s.fcode || !s.V || !s.m || !s.v || !s.sg || !s.rowsum || !hard || !hard_loss) {
        st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate FAAR state");
        goto done;
    }
    nvfp4i_parallel_for(ctx, job->out, init_rows, &s);
    s.gs = (float)(2.0 / (double)job->out);
    s.b1 = (float)r->adam_b1;
    s.b2 = (float)r->adam_b2;
    s.lambda = (float)r->lambda;

    const int64_t T = r->iterations;
    const int64_t warm = (int64_t)floor(r->warmup * (double)T);
    int64_t t = 0;
    double b1t = 1.0, b2t = 1.0;
    if (T > 0) {
        /* Adam's ε in units of the first reconstruction gradient: the loss scales with W² and H,
         * so a fixed ε would switch the optimiser off for small weights. */
        nvfp4i_matmul(ctx, job->out, job->in, job->in, job->E, job->in, job->H, job->in, job->G, job->in);
        s.grad_only = 1;
        nvfp4i_parallel_for(ctx, job->out, step_rows, &s);
        s.grad_only = 0;
        double g2 = 0.0;
        int64_t nfree = 0;
        for (int64_t row = 0; row < job->out; row++)
            g2 += s.rowsum[row];
        for (size_t x = 0; x < nw; x++)
            nfree += s.lo[x] != FROZEN;
        double rms = nfree > 0 ? sqrt(g2 / (double)nfree) : 0.0;
        s.eps = (float)(rms > 0.0 ? r->adam_eps * rms : r->adam_eps);
        if (!(s.eps > 0.0f))
            s.eps = 1e-30f;
    }
    for (t = 0; t < T; t++) {
        if (t > 0)
            nvfp4i_matmul(ctx, job->out, job->in, job->in, job->E, job->in, job->H, job->in, job->G, job->in);
        s.reg_on = t >= warm && r->lambda > 0.0;
        if (s.reg_on) {
            double span = (double)(T - warm);
            double p = span > 1.0 ? (double)(t - warm) / (span - 1.0) : 1.0;
            s.beta = (float)(r->beta_start + (r->beta_end - r->beta_start) * p);
        }
        b1t *= r->adam_b1;
        b2t *= r->adam_b2;
        s.lr_t = (float)(r->lr * sqrt(1.0 - b2t) / (1.0 - b1t));
        nvfp4i_parallel_for(ctx, job->out, step_rows, &s);
        if (r->progress && ((t + 1) % r->progress_interval == 0 || t + 1 == T)) {
            double loss = 0.0;
            for (int64_t row = 0; row < job->out; row++)
                loss += s.rowsum[row];
            if (r->progress(t + 1, loss / (double)job->out, r->progress_user) != 0) {
                st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_CANCELLED, "cancelled by the progress callback at iteration %lld",
                                         (long long)(t + 1));
                goto done;
            }
        }
    }

    harden_args ha = {&s, hard};
    nvfp4i_parallel_for(ctx, job->out, harden_rows, &ha);
    nvfp4i_rounder_loss(job, hard, scales, s_dec, hard_loss);
    int64_t fb = 0;
    for (int64_t row = 0; row < job->out; row++) {
        if (hard_loss[row] > start_rowloss[row]) {
            fb++;
            continue;
        }
        memcpy(codes + row * job->in, hard + row * job->in, (size_t)job->in);
    }
    *iterations_run = T;
    *rows_fallback = fb;
done:
    nvfp4i_free(ctx, s.lo);
    nvfp4i_free(ctx, s.fcode);
    nvfp4i_free(ctx, s.V);
    nvfp4i_free(ctx, s.m);
    nvfp4i_free(ctx, s.v);
    nvfp4i_free(ctx, s.sg);
    nvfp4i_free(ctx, s.rowsum);
    nvfp4i_free(ctx, hard);
    nvfp4i_free(ctx, hard_loss);
    return st;
}

double nvfp4i_faar_eval(const nvfp4i_rjob *job, const uint8_t *scales, float s_dec, const float *V, int reg_on,
                        float lambda, float beta, float *grad, uint8_t *frozen)
{
    nvfp4_context *ctx = job->ctx;
    const size_t nw = (size_t)(job->out * job->in);
    faar_state s;
    double total = NAN;
    memset(&s, 0, sizeof s);
    s.job = job;
    s.scales = scales;
    s.s_dec = s_dec;
    s.lo = nvfp4i_alloc(ctx, nw);
    s.fcode = nvfp4i_alloc(ctx, nw);
    s.V = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.m = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.v = nvfp4i_alloc(ctx, nw * sizeof(float));
    s.sg = nvfp4i_alloc(ctx, nw * sizeof(float));
    if (!s.lo || !s.fcode || !s.V || !s.m || !s.v || !s.sg)
        goto done;
    nvfp4i_parallel_for(ctx, job->out, init_rows, &s);
    double reg = 0.0;
    for (int64_t r = 0; r < job->out; r++)
        for (int64_t i = 0; i < job->in; i++) {
            size_t x = (size_t)(r * job->in + i);
            frozen[x] = s.lo[x] == FROZEN;
            if (s.lo[x] == FROZEN)
                continue;
            uint8_t k = s.lo[x];
            float fS = nvfp4i_e4m3_to_float(scales[r * job->nblk + i / 16]);
            float lo = SGRID[k], gap = SGRID[k + 1] - SGRID[k];
            s.sg[x] = sigmoidf_(V[x]);
            float h = 1.2f * s.sg[x] - 0.1f;
            h = h < 0.0f ? 0.0f : h > 1.0f ? 1.0f : h;
            job->E[x] = ((lo + gap * h) * fS) * s_dec - job->W[x];
            reg += 1.0 - pow(fabs(2.0 * (double)h - 1.0), (double)beta);
        }
    nvfp4i_matmul(ctx, job->out, job->in, job->in, job->E, job->in, job->H, job->in, job->G, job->in);
    double rec = 0.0;
    float gs = (float)(2.0 / (double)job->out);
    for (int64_t r = 0; r < job->out; r++)
        for (int64_t i = 0; i < job->in; i++) {
            size_t x = (size_t)(r * job->in + i);
            rec += (double)job->E[x] * (double)job->G[x];
            grad[x] = 0.0f;
            if (frozen[x])
                continue;
            uint8_t k = s.lo[x];
            float fS = nvfp4i_e4m3_to_float(scales[r * job->nblk + i / 16]);
            float h;
            grad[x] = elem_grad(job->G[x], s.sg[x], SGRID[k + 1] - SGRID[k], fS * s_dec, gs, reg_on, lambda, beta, &h);
        }
    total = rec / (double)job->out + (reg_on ? (double)lambda * reg : 0.0);
done:
    nvfp4i_free(ctx, s.lo);
    nvfp4i_free(ctx, s.fcode);
    nvfp4i_free(ctx, s.V);
    nvfp4i_free(ctx, s.m);
    nvfp4i_free(ctx, s.v);
    nvfp4i_free(ctx, s.sg);
    return total;
}

/* ---- stage 2: format alignment of the scales ------------------------------------------------ */

typedef struct {
    const nvfp4i_rjob *job;
    const uint8_t *codes;
    const uint8_t *scales; /* current */
    uint8_t *cand;         /* candidate scales [out, nblk] */
    float s_dec;
    int radius;
    float *tbuf;   /* per thread: (S2_ROWS + 1)·in floats */
    double *mbuf;  /* per thread: S2_ROWS·(nblk² + nblk) + nblk² + 3·nblk doubles */
    int64_t per_t_m;
} s2_args;

/* Cholesky solve of the SPD system M x = y (n×n, row-major) in place in L; 0 if not SPD. */
static int chol_solve(double *L, const double *M, const double *y, double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = M[i * n + j];
            for (int64_t k = 0; k < j; k++)
                s -= L[i * n + k] * L[j * n + k];
            if (i == j) {
                if (!(s > 0.0))
                    return 0;
                L[i * n + i] = sqrt(s);
            } else {
                L[i * n + j] = s / L[j * n + j];
            }
        }
    for (int64_t i = 0; i < n; i++) {
        double s = y[i];
        for (int64_t k = 0; k < i; k++)
            s -= L[i * n + k] * x[k];
        x[i] = s / L[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        double s = x[i];
        for (int64_t k = i + 1; k < n; k++)
            s -= L[k * n + i] * x[k];
        x[i] = s / L[i * n + i];
    }
    return 1;
}

/* Quadratic model of a row's loss in the block scale values d: Q(d) = dᵀMd − 2yᵀd. */
static double qform(const double *M, const double *y, const double *d, int64_t n)
{
    double q = 0.0;
    for (int64_t b = 0; b < n; b++) {
        double s = 0.0;
        for (int64_t c = 0; c < n; c++)
            s += M[b * n + c] * d[c];
        q += d[b] * (s - 2.0 * y[b]);
    }
    return q;
}

#define S2_ROWS 8 /* rows whose systems are built together, so that each 16-row slab of H is read once per chunk */

/* Row r's block b of the stage-2 system: M[b][·] and y[b], with t (in floats) as scratch. */
static void build_block(const s2_args *a, int64_t r, int64_t b, const float *av_row, float *t, double *M, double *y)
{
    const nvfp4i_rjob *j = a->job;
    const int64_t in = j->in, nb = j->nblk;
    const float *w = j->W + r * in;
    int64_t i0 = b * 16, i1 = i0 + 16 < in ? i0 + 16 : in;
    int any = 0;
    for (int64_t k = 0; k < in; k++)
        t[k] = 0.0f;
    /* t = Σ_{i∈b} a_i H_i, four rows of H at a time in fixed-width chunks (so that the
     * compiler vectorises it at -O2 too) */
    const float *hr[4];
    float av[4];
    int na = 0;
    for (int64_t i = i0; i <= i1; i++) {
        if (i < i1) {
            float ai = av_row[i];
            if (ai == 0.0f)
                continue;
            any = 1;
            hr[na] = j->H + i * in;
            av[na++] = ai;
            if (na < 4)
                continue;
        }
        if (na == 0)
            break;
        for (int q = na; q < 4; q++) {
            hr[q] = hr[0];
            av[q] = 0.0f;
        }
        const float *h0 = hr[0], *h1 = hr[1], *h2 = hr[2], *h3 = hr[3];
        const float a0 = av[0], a1 = av[1], a2 = av[2], a3 = av[3];
        int64_t k = 0;
        for (; k + 8 <= in; k += 8)
            for (int q = 0; q < 8; q++)
                t[k + q] += a0 * h0[k + q] + a1 * h1[k + q] + a2 * h2[k + q] + a3 * h3[k + q];
        for (; k < in; k++)
            t[k] += a0 * h0[k] + a1 * h1[k] + a2 * h2[k] + a3 * h3[k];
        na = 0;
    }
    for (int64_t cb = 0; cb < nb; cb++) {
        double s = 0.0;
        if (any) {
            int64_t k0 = cb * 16, k1 = k0 + 16 < in ? k0 + 16 : in;
            for (int64_t k = k0; k < k1; k++)
                s += (double)t[k] * (double)av_row[k];
        }
        M[b * nb + cb] = s;
    }
    double sy = 0.0;
    if (any)
        for (int64_t k = 0; k < in; k++)
            sy += (double)t[k] * (double)w[k];
    y[b] = sy;
}

static void refit_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const s2_args *a = arg;
    const nvfp4i_rjob *j = a->job;
    const int64_t in = j->in, nb = j->nblk;
    float *t = a->tbuf + (int64_t)tid * in * (S2_ROWS + 1), *avs = t + in;
    double *Mall = a->mbuf + (int64_t)tid * a->per_t_m;
    double *L = Mall + S2_ROWS * (nb * nb + nb), *d = L + nb * nb, *d0 = d + nb, *g = d0 + nb;
    for (int64_t r0 = begin; r0 < end; r0 += S2_ROWS) {
        const int64_t rr = end - r0 < S2_ROWS ? end - r0 : S2_ROWS;
        /* M_bc = Σ_{i∈b, k∈c} a_i H_ik a_k, y_b = Σ_{i∈b} a_i (H w)_i, a_i = s_dec·value(code_i) */
        for (int64_t q = 0; q < rr; q++)
            for (int64_t k = 0; k < in; k++)
                avs[q * in + k] = nvfp4i_e2m1_to_float(a->codes[(r0 + q) * in + k]) * a->s_dec;
        for (int64_t b = 0; b < nb; b++)
            for (int64_t q = 0; q < rr; q++) {
                double *Mq = Mall + q * (nb * nb + nb);
                build_block(a, r0 + q, b, avs + q * in, t, Mq, Mq + nb * nb);
            }
        for (int64_t q = 0; q < rr; q++) {
            const int64_t r = r0 + q;
            double *M = Mall + q * (nb * nb + nb), *y = M + nb * nb;
            const uint8_t *S = a->scales + r * nb;
            uint8_t *out = a->cand + r * nb;
            memcpy(out, S, (size_t)nb);
            /* symmetrise (float products make M slightly asymmetric) */
            for (int64_t b = 0; b < nb; b++)
                for (int64_t cb = 0; cb < b; cb++) {
                    double m = 0.5 * (M[b * nb + cb] + M[cb * nb + b]);
                    M[b * nb + cb] = m;
                    M[cb * nb + b] = m;
                }
            for (int64_t b = 0; b < nb; b++)
                d0[b] = nvfp4i_e4m3_to_float(S[b]);
            double q0 = qform(M, y, d0, nb);
            /* least squares over the active blocks (M_bb > 0); inactive ones keep their scale */
            double maxdiag = 0.0;
            for (int64_t b = 0; b < nb; b++)
                maxdiag = M[b * nb + b] > maxdiag ? M[b * nb + b] : maxdiag;
            if (!(maxdiag > 0.0))
                continue;
            double ridge = 1e-9 * maxdiag;
            for (int64_t b = 0; b < nb; b++)
                for (int64_t cb = 0; cb < nb; cb++)
                    L[b * nb + cb] = M[b * nb + cb] + (b == cb ? (M[b * nb + b] > 0.0 ? ridge : 1.0) : 0.0);
            /* right-hand side with inactive blocks' (zero) columns contributing nothing */
            for (int64_t b = 0; b < nb; b++)
                g[b] = M[b * nb + b] > 0.0 ? y[b] : 0.0;
            int solved = chol_solve(L, L, g, d, nb); /* in place: reads M's lower triangle before writing it */
            uint8_t *cur = out;
            /* start of the search: the LS solution projected to E4M3, or the current scales */
            double qls = INFINITY;
            if (solved) {
                for (int64_t b = 0; b < nb; b++) {
                    if (!(M[b * nb + b] > 0.0)) {
                        cur[b] = S[b];
                        d[b] = d0[b];
                        continue;
                    }
                    double v = d[b] > 0.0 ? d[b] : 0.0;
                    cur[b] = nvfp4i_e4m3_from_float((float)v);
                    d[b] = nvfp4i_e4m3_to_float(cur[b]);
                }
                qls = qform(M, y, d, nb);
            }
            if (!(qls < q0)) {
                memcpy(cur, S, (size_t)nb);
                memcpy(d, d0, (size_t)nb * sizeof(double));
            }
            /* coordinate search over neighbouring E4M3 codes, with g = M d − y kept current */
            for (int64_t b = 0; b < nb; b++) {
                double s = 0.0;
                for (int64_t cb = 0; cb < nb; cb++)
                    s += M[b * nb + cb] * d[cb];
                g[b] = s - y[b];
            }
            for (int sweep = 0; sweep < 8; sweep++) {
                int changed = 0;
                for (int64_t b = 0; b < nb; b++) {
                    double mbb = M[b * nb + b];
                    if (!(mbb > 0.0))
                        continue;
                    int best = cur[b];
                    double bestd = 0.0;
                    for (int k = -a->radius; k <= a->radius; k++) {
                        int cb = (int)cur[b] + k;
                        if (k == 0 || cb < 0 || cb > 0x7E)
                            continue;
                        double delta = (double)nvfp4i_e4m3_to_float((uint8_t)cb) - d[b];
                        double dq = delta * delta * mbb + 2.0 * delta * g[b];
                        if (dq < bestd) {
                            bestd = dq;
                            best = cb;
                        }
                    }
                    if (best != cur[b]) {
                        double delta = (double)nvfp4i_e4m3_to_float((uint8_t)best) - d[b];
                        for (int64_t q = 0; q < nb; q++)
                            g[q] += delta * M[q * nb + b];
                        d[b] += delta;
                        cur[b] = (uint8_t)best;
                        changed = 1;
                    }
                }
                if (!changed)
                    break;
            }
            if (!(qform(M, y, d, nb) < q0))
                memcpy(cur, S, (size_t)nb);
        }
    }
}

typedef struct {
    const nvfp4i_rjob *job;
    const uint8_t *codes, *scales;
    float *P;
} unit_args;

static void unit_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const unit_args *a = arg;
    const nvfp4i_rjob *j = a->job;
    (void)tid;
    for (int64_t r = begin; r < end; r++)
        for (int64_t i = 0; i < j->in; i++)
            a->P[r * j->in + i] = nvfp4i_e2m1_to_float(a->codes[r * j->in + i]) *
                                  nvfp4i_e4m3_to_float(a->scales[r * j->nblk + i / 16]);
}

nvfp4_status nvfp4i_stage2(const nvfp4i_rjob *job, const uint8_t *codes, uint8_t *scales, float *s_dec,
                           double *rowloss, int64_t *rows_changed, int32_t *global_changed)
{
    nvfp4_context *ctx = job->ctx;
    nvfp4_rounder *r = job->r;
    const int64_t out = job->out, in = job->in, nb = job->nblk;
    const int nt = nvfp4i_nthreads(ctx, out);
    const int64_t per_t_m = S2_ROWS * (nb * nb + nb) + nb * nb + 3 * nb;
    double *cand_loss = nvfp4i_alloc(ctx, (size_t)out * sizeof(double));
    uint8_t *cand = nvfp4i_alloc(ctx, (size_t)(out * nb));
    float *P = nvfp4i_alloc(ctx, (size_t)(out * in) * sizeof(float));
    float *tbuf = nvfp4i_alloc(ctx, (size_t)(nt * in * (S2_ROWS + 1)) * sizeof(float));
    double *mbuf = nvfp4i_alloc(ctx, (size_t)(nt * per_t_m) * sizeof(double));
    nvfp4_status st = NVFP4_OK;
    *rows_changed = 0;
    *global_changed = 0;
    if (!cand_loss || !cand || !P || !tbuf || !mbuf) {
        st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate stage-2 state");
        goto done;
    }
    double cur = 0.0;
    for (int64_t row = 0; row < out; row++)
        cur += rowloss[row];

    /* (a) the global scale: L(α) = α²·tr(PHPᵀ) − 2α·tr(PHWᵀ) + const for P = value·f(S) */
    /* a caller-supplied global scale (NVFP4_Q_GLOBAL_SCALE) is the caller's choice: keep it */
    if (r->stage2_global && r->scale_q->global_scale == 0.0) {
        unit_args ua = {job, codes, scales, P};
        nvfp4i_parallel_for(ctx, out, unit_rows, &ua);
        nvfp4i_matmul(ctx, out, in, in, P, in, job->H, in, job->G, in);
        double A = 0.0, B = 0.0;
        for (int64_t row = 0; row < out; row++) {
            double ar = 0.0, br = 0.0;
            for (int64_t i = 0; i < in; i++) {
                double gv = job->G[row * in + i];
                ar += (double)P[row * in + i] * gv;
                br += (double)job->W[row * in + i] * gv;
            }
            A += ar;
            B += br;
        }
        float alpha = A > 0.0 ? (float)(B / A) : 0.0f;
        if (alpha > 0.0f && nvfp4i_isfinite(alpha) && alpha != *s_dec) {
            double l = 0.0;
            nvfp4i_rounder_loss(job, codes, scales, alpha, cand_loss);
            for (int64_t row = 0; row < out; row++)
                l += cand_loss[row];
            /* the candidate leaves the starting grid, whose float32 range nvfp4_rounder_run checked:
             * a loss that overflowed (±Inf, NaN) is not a loss, and the candidate is not taken */
            if (isfinite(l) && l < cur) {
                *s_dec = alpha;
                memcpy(rowloss, cand_loss, (size_t)out * sizeof(double));
                cur = l;
                *global_changed = 1;
            }
        }
    }

    /* (b) per row: the block scales */
    s2_args sa = {job, codes, scales, cand, *s_dec, r->stage2_radius, tbuf, mbuf, per_t_m};
    nvfp4i_parallel_for(ctx, out, refit_rows, &sa);
    if (memcmp(cand, scales, (size_t)(out * nb)) != 0) {
        nvfp4i_rounder_loss(job, codes, cand, *s_dec, cand_loss);
        for (int64_t row = 0; row < out; row++)
            if (isfinite(cand_loss[row]) && cand_loss[row] < rowloss[row] &&
                memcmp(cand + row * nb, scales + row * nb, (size_t)nb) != 0) {
                memcpy(scales + row * nb, cand + row * nb, (size_t)nb);
                rowloss[row] = cand_loss[row];
                (*rows_changed)++;
            }
    }
done:
    nvfp4i_free(ctx, cand_loss);
    nvfp4i_free(ctx, cand);
    nvfp4i_free(ctx, P);
    nvfp4i_free(ctx, tbuf);
    nvfp4i_free(ctx, mbuf);
    return st;
}
