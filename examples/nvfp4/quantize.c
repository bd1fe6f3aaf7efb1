/* quantize.c - `nvfp4 quantize IN OUT`: every 2-D weight of a safetensors checkpoint to NVFP4,
 * written in the ModelOpt layout (or compressed-tensors), streaming one tensor at a time. */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "cmd.h"
#include "nvfp4/nvfp4.h"
#ifdef NVFP4_CMD_HAVE_ROUNDER
#include "nvfp4/rounder.h"
#endif

#define ERRLEN ST_ERR_LEN

#ifdef NVFP4_CMD_HAVE_CUDA
/* The three CUDA runtime calls the command needs to move tensors to the device. The library
 * links the CUDA runtime statically; its C interface is stable, so the command declares them
 * itself rather than needing the CUDA headers (cudaError_t and cudaMemcpyKind are enums). */
extern int cudaMalloc(void **ptr, size_t size);
extern int cudaFree(void *ptr);
extern int cudaMemcpy(void *dst, const void *src, size_t count, int kind);
#define CMD_H2D 1
#define CMD_D2H 2
#endif

void cmd_error(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "nvfp4: error: %s\n", buf);
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const struct {
    const char *name;
    int32_t lib_method; /* NVFP4_METHOD_* or, for rounder methods, NVFP4_ROUNDER_* */
    int rounder;
} methods[M_COUNT] = {
    [M_MAX] = {"max", NVFP4_METHOD_MAX, 0},
    [M_4OVER6] = {"4over6", NVFP4_METHOD_4OVER6, 0},
    [M_SOAR] = {"soar", NVFP4_METHOD_SOAR, 0},
    [M_SOAR_CJSO] = {"soar_cjso", NVFP4_METHOD_SOAR_CJSO, 0},
    [M_SOAR_DSS] = {"soar_dss", NVFP4_METHOD_SOAR_DSS, 0},
    [M_SWEEP] = {"sweep", NVFP4_METHOD_SWEEP, 0},
    [M_FAAR] = {"faar", 0, 1},
    [M_GPTQ] = {"gptq", 1, 1},
};

const char *method_name(int m) { return m >= 0 && m < M_COUNT ? methods[m].name : "?"; }

int method_parse(const char *s)
{
    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(s, methods[i].name) == 0)
            return i;
    return -1;
}

int method_available(int m)
{
    if (m < 0 || m >= M_COUNT)
        return 0;
    if (methods[m].rounder) {
#ifdef NVFP4_CMD_HAVE_ROUNDER
        nvfp4_rounder *r = NULL;
        if (nvfp4_rounder_create(&r, methods[m].lib_method, 16, 16) != NVFP4_OK)
            return 0;
        nvfp4_rounder_destroy(r);
        return 1;
#else
        return 0;
#endif
    }
    nvfp4_quantizer *q = NULL;
    if (nvfp4_quantizer_create(&q, methods[m].lib_method) != NVFP4_OK)
        return 0;
    nvfp4_quantizer_destroy(q);
    return 1;
}

void q_opts_free_results(q_opts *o)
{
    for (int i = 0; i < o->nres; i++)
        free(o->res[i].name);
    free(o->res);
    o->res = NULL;
    o->nres = 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */



static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static const char *human_bytes(double b, char *buf, size_t n)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000.0 && i < 4) {
        b /= 1000.0;
        i++;
    }
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
    return buf;
}

/* A 2-D weight named "...weight" (or "weight"). Returns the prefix length (up to the "weight"). */
static int weight_prefix(const char *name, size_t *plen)
{
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 6, "weight") != 0)
        return 0;
    if (n > 6 && name[n - 7] != '.')
        return 0;
    *plen = n - 6;
    return 1;
}

static char *module_of(const char *name, size_t plen)
{
    char *m = malloc(plen + 1);
    if (!m)
        return NULL;
    memcpy(m, name, plen);
    m[plen] = '\0';
    if (plen && m[plen - 1] == '.')
        m[plen - 1] = '\0';
    return m;
}

static const char *default_excludes[] = {"*embed*", "*lm_head*"};

static const char *excluded_by(const q_opts *o, const char *module, const char *name)
{
    for (int i = 0; i < o->nexclude; i++)
        if (fnmatch(o->exclude[i], module, 0) == 0 || fnmatch(o->exclude[i], name, 0) == 0)
            return o->exclude[i];
    if (o->default_excludes)
        for (size_t i = 0; i < sizeof default_excludes / sizeof *default_excludes; i++)
            if (fnmatch(default_excludes[i], module, 0) == 0 || fnmatch(default_excludes[i], name, 0) == 0)
                return default_excludes[i];
    return NULL;
}

/* ---- progress --------------------------------------------------------------------------- */

typedef struct progress {
    int bar;
    int quiet;
    uint64_t total, done;
    int nquant, iquant;
    double t0;
} progress;

static void progress_bar(progress *p, const char *name)
{
    if (!p->bar || p->quiet)
        return;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    double el = now_seconds() - p->t0;
    char rate[32];
    human_bytes(el > 0 ? (double)p->done / el : 0.0, rate, sizeof rate);
    char bar[31];
    int fill = (int)(frac * 30.0 + 0.5);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    char nm[41];
    snprintf(nm, sizeof nm, "%s", name ? name : "");
    fprintf(stderr, "\r\033[K[%s] %3.0f%%  %d/%d weights  %s/s  %s", bar, 100.0 * frac, p->iquant, p->nquant, rate, nm);
    fflush(stderr);
}

static void progress_end(progress *p)
{
    if (p->bar && !p->quiet) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}

/* ---- plan --------------------------------------------------------------------------------- */

enum { A_COPY, A_QUANT };

typedef struct item {
    const st_tensor *src;
    int action;
    char *module;    /* A_QUANT: module name */
    int shard;
} item;

typedef struct out_shard {
    st_file *in;
    const char *name;  /* shard file name */
    char *path;        /* final path inside the output directory (or the OUT file) */
    st_writer w;
    item *items;
    int n;
} out_shard;

static int cmp_item_begin(const void *a, const void *b)
{
    const item *x = a, *y = b;
    return x->src->begin < y->src->begin ? -1 : x->src->begin > y->src->begin;
}

typedef struct qstate {
    q_opts *o;
    nvfp4_context *ctx;
    nvfp4_quantizer *q;
    uint8_t *codes, *scales;
    size_t codes_cap, scales_cap;
    void *aligned;
    size_t aligned_cap;
    const ckpt *calib;
    void *d_src, *d_codes, *d_scales, *d_gs; /* --backend cuda */
    size_t d_src_cap, d_codes_cap, d_scales_cap;
    char err[ERRLEN];
} qstate;

static int grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    void *n = realloc(*p, need);
    if (!n)
        return -1;
    *p = n;
    *cap = need;
    return 0;
}

static int32_t lib_dtype(st_dtype d)
{
    return d == ST_F32 ? NVFP4_DTYPE_F32 : d == ST_F16 ? NVFP4_DTYPE_F16 : NVFP4_DTYPE_BF16;
}

/* Σ(x̂ − x)² and Σx² of a quantised layer, decoding in one pass (SPEC §2: x̂ =
 * RN32(RN32(value·f(S))·s_dec)) beside the source. This costs a fraction of the library's
 * statistics switch, which evaluates its error per block during quantisation. */
static float f16_lut_value(uint16_t h) { return nvfp4_f16_to_float(h); }

static void measure_error(qstate *s, const st_tensor *t, const void *src, float gs, layer_result *r)
{
    int64_t rows = t->shape[0], cols = t->shape[1], nb = cols / 16;
    float scale_lut[256], grid[16];
    for (int i = 0; i < 256; i++)
        scale_lut[i] = nvfp4_e4m3_to_float((uint8_t)i);
    for (int i = 0; i < 16; i++)
        grid[i] = nvfp4_e2m1_to_float((uint8_t)i);
    double sse = 0, ss = 0;
    const unsigned char *base = src;
    size_t es = st_dtype_size(t->dtype);
    for (int64_t rr = 0; rr < rows; rr++) {
        const unsigned char *row = base + (size_t)rr * (size_t)cols * es;
        const uint8_t *crow = s->codes + rr * (cols / 2);
        const uint8_t *srow = s->scales + rr * nb;
        double rse = 0, rss = 0;
        for (int64_t b = 0; b < nb; b++) {
            float sv = scale_lut[srow[b]];
            float bse = 0, bss = 0; /* 16 terms: float is plenty, rows and tensors sum in double */
            for (int j = 0; j < 16; j++) {
                int64_t c = b * 16 + j;
                float x;
                if (t->dtype == ST_BF16) {
                    uint16_t h;
                    memcpy(&h, row + 2 * c, 2);
                    uint32_t u = (uint32_t)h << 16;
                    memcpy(&x, &u, 4);
                } else if (t->dtype == ST_F16) {
                    uint16_t h;
                    memcpy(&h, row + 2 * c, 2);
                    x = f16_lut_value(h);
                } else {
                    memcpy(&x, row + 4 * c, 4);
                }
                uint8_t code = (uint8_t)((crow[c >> 1] >> ((c & 1) * 4)) & 0xF);
                float xh = (grid[code] * sv) * gs;
                float d = xh - x;
                bse += d * d;
                bss += x * x;
            }
            rse += bse;
            rss += bss;
        }
        sse += rse;
        ss += rss;
    }
    r->sse = sse;
    r->sum_sq = ss;
}

#ifdef NVFP4_CMD_HAVE_ROUNDER
/* Calibration for the rounder: "<module>.gram" F32 [in, in] (H = XᵀX/n) or "<module>.inputs"
 * [n, in] samples (F32/F16/BF16) from the --calibration file; without either the identity Gram
 * matrix, which makes the loss the plain squared error of the weights. */
static nvfp4_status set_calibration(qstate *s, nvfp4_rounder *r, const char *module, int64_t cols, int *identity)
{
    char name[4200];
    const st_tensor *t = NULL;
    *identity = 0;
    if (s->calib) {
        snprintf(name, sizeof name, "%s.gram", module);
        t = ckpt_find(s->calib, name, NULL);
        if (t) {
            if (t->dtype != ST_F32 || t->ndim != 2 || t->shape[0] != cols || t->shape[1] != cols) {
                snprintf(s->err, sizeof s->err, "calibration tensor '%.300s': expected F32 [%lld, %lld]", name,
                         (long long)cols, (long long)cols);
                return NVFP4_ERR_SHAPE;
            }
        } else {
            snprintf(name, sizeof name, "%s.inputs", module);
            t = ckpt_find(s->calib, name, NULL);
            if (t && (!is_float_dtype(t->dtype) || t->ndim != 2 || t->shape[1] != cols || t->shape[0] < 1)) {
                snprintf(s->err, sizeof s->err, "calibration tensor '%.300s': expected [n, %lld] F32/F16/BF16", name,
                         (long long)cols);
                return NVFP4_ERR_SHAPE;
            }
        }
    }
    nvfp4_status st;
    if (t) {
        float *buf = malloc((size_t)t->numel * sizeof *buf);
        if (!buf)
            return NVFP4_ERR_OUT_OF_MEMORY;
        tensor_to_float(t, buf);
        if (t->shape[0] == t->shape[1] && strstr(t->name, ".gram"))
            st = nvfp4_rounder_set_gram(r, buf, cols, cols);
        else
            st = nvfp4_rounder_add_samples(r, s->ctx, NVFP4_DTYPE_F32, buf, t->shape[0], cols);
        free(buf);
        if (st != NVFP4_OK)
            snprintf(s->err, sizeof s->err, "calibration tensor '%.200s': %.200s", t->name, nvfp4_rounder_last_error_message(r));
        return st;
    }
    float *H = calloc((size_t)(cols * cols), sizeof(float));
    if (!H)
        return NVFP4_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < cols; i++)
        H[i * cols + i] = 1.0f;
    st = nvfp4_rounder_set_gram(r, H, cols, cols);
    free(H);
    *identity = 1;
    return st;
}

static nvfp4_status run_rounder(qstate *s, const st_tensor *t, const char *module, const void *src, float *gs)
{
    int64_t rows = t->shape[0], cols = t->shape[1];
    nvfp4_rounder *r = NULL;
    nvfp4_status st = nvfp4_rounder_create(&r, methods[s->o->method].lib_method, rows, cols);
    if (st != NVFP4_OK) {
        snprintf(s->err, sizeof s->err, "%s", "nvfp4_rounder_create failed");
        return st;
    }
    int identity = 0;
    st = set_calibration(s, r, module, cols, &identity);
    s->o->identity_layers += identity;
    if (st == NVFP4_OK && s->o->rounder_iters > 0 && s->o->method == M_FAAR)
        st = nvfp4_rounder_set_int(r, NVFP4_R_ITERATIONS, s->o->rounder_iters);
    if (st == NVFP4_OK)
        st = nvfp4_rounder_set_quantizer(r, s->q);
    if (st == NVFP4_OK)
        st = nvfp4_rounder_run(r, s->ctx, lib_dtype(t->dtype), src, cols, s->codes, s->scales, gs);
    if (st != NVFP4_OK && !s->err[0])
        snprintf(s->err, sizeof s->err, "%s", nvfp4_rounder_last_error_message(r));
    nvfp4_rounder_destroy(r);
    return st;
}
#endif

#ifdef NVFP4_CMD_HAVE_CUDA
static int dgrow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap && *p)
        return 0;
    if (*p)
        cudaFree(*p);
    *p = NULL;
    *cap = 0;
    if (cudaMalloc(p, need) != 0) {
        *p = NULL;
        return -1;
    }
    *cap = need;
    return 0;
}

/* Quantises on the GPU: copy the source in, run the library on device pointers, copy out. */
static nvfp4_status run_cuda(qstate *s, const st_tensor *t, const void *src, size_t csz, size_t ssz, float *gs)
{
    size_t n = (size_t)(t->end - t->begin);
    size_t one = sizeof(float);
    if (dgrow(&s->d_src, &s->d_src_cap, n) || dgrow(&s->d_codes, &s->d_codes_cap, csz) ||
        dgrow(&s->d_scales, &s->d_scales_cap, ssz) || (!s->d_gs && cudaMalloc(&s->d_gs, one) != 0)) {
        snprintf(s->err, sizeof s->err, "cudaMalloc failed");
        return NVFP4_ERR_BACKEND;
    }
    if (cudaMemcpy(s->d_src, src, n, CMD_H2D) != 0) {
        snprintf(s->err, sizeof s->err, "cudaMemcpy to the device failed");
        return NVFP4_ERR_BACKEND;
    }
    nvfp4_status st = nvfp4_quantize(s->ctx, s->q, lib_dtype(t->dtype), s->d_src, t->shape[0], t->shape[1], t->shape[1],
                                     s->d_codes, s->d_scales, s->d_gs);
    if (st != NVFP4_OK) {
        snprintf(s->err, sizeof s->err, "%s", nvfp4_context_last_error_message(s->ctx));
        return st;
    }
    if (cudaMemcpy(s->codes, s->d_codes, csz, CMD_D2H) != 0 || cudaMemcpy(s->scales, s->d_scales, ssz, CMD_D2H) != 0 ||
        cudaMemcpy(gs, s->d_gs, one, CMD_D2H) != 0) {
        snprintf(s->err, sizeof s->err, "cudaMemcpy from the device failed");
        return NVFP4_ERR_BACKEND;
    }
    return NVFP4_OK;
}

static void free_device(qstate *s)
{
    void *p[4] = {s->d_src, s->d_codes, s->d_scales, s->d_gs};
    for (int i = 0; i < 4; i++)
        if (p[i])
            cudaFree(p[i]);
}
#endif

static int quantize_item(qstate *s, out_shard *sh, const item *it, progress *pg)
{
    q_opts *o = s->o;
    const st_tensor *t = it->src;
    int64_t rows = t->shape[0], cols = t->shape[1];
    size_t es = st_dtype_size(t->dtype);
    const void *src = t->data;
    if (((uintptr_t)src) % es != 0) { /* safetensors does not promise alignment */
        if (grow(&s->aligned, &s->aligned_cap, (size_t)(t->end - t->begin)) != 0) {
            cmd_error("tensor '%s': out of memory", t->name);
            return -1;
        }
        memcpy(s->aligned, src, (size_t)(t->end - t->begin));
        src = s->aligned;
    }
    int64_t csz = 0, ssz = 0;
    if (nvfp4_codes_size(NVFP4_FORMAT_NVFP4, rows, cols, &csz) != NVFP4_OK ||
        nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, rows, cols, &ssz) != NVFP4_OK) {
        cmd_error("tensor '%s': shape [%lld, %lld] cannot be quantised", t->name, (long long)rows, (long long)cols);
        return -1;
    }
    if (grow((void **)&s->codes, &s->codes_cap, (size_t)csz) != 0 ||
        grow((void **)&s->scales, &s->scales_cap, (size_t)ssz) != 0) {
        cmd_error("tensor '%s': out of memory", t->name);
        return -1;
    }
    double t0 = now_seconds();
    float gs = 0.0f;
    nvfp4_status st;
    s->err[0] = '\0';
    if (methods[o->method].rounder) {
#ifdef NVFP4_CMD_HAVE_ROUNDER
        st = run_rounder(s, t, it->module, src, &gs);
#else
        st = NVFP4_ERR_UNSUPPORTED;
#endif
    } else if (o->backend == NVFP4_BACKEND_CUDA) {
#ifdef NVFP4_CMD_HAVE_CUDA
        st = run_cuda(s, t, src, (size_t)csz, (size_t)ssz, &gs);
#else
        st = NVFP4_ERR_UNSUPPORTED;
#endif
    } else {
        st = nvfp4_quantize(s->ctx, s->q, lib_dtype(t->dtype), src, rows, cols, cols, s->codes, s->scales, &gs);
        if (st != NVFP4_OK)
            snprintf(s->err, sizeof s->err, "%s", nvfp4_context_last_error_message(s->ctx));
    }
    if (st != NVFP4_OK) {
        cmd_error("tensor '%s': quantisation failed: %s%s%s", t->name, nvfp4_status_string(st), s->err[0] ? ": " : "", s->err);
        return -1;
    }
    layer_result r;
    memset(&r, 0, sizeof r);
    r.rows = rows;
    r.cols = cols;
    r.seconds = now_seconds() - t0; /* the quantisation itself */
    measure_error(s, t, src, gs, &r);
    r.name = st_strdup(it->module);
    layer_result *nr = realloc(o->res, (size_t)(o->nres + 1) * sizeof *nr);
    if (!r.name || !nr) {
        free(r.name);
        cmd_error("tensor '%s': out of memory", t->name);
        return -1;
    }
    o->res = nr;
    o->res[o->nres++] = r;

    /* codes, block scales, global scale, [input scale] — the order st_writer_add declared. */
    float g = o->format == FMT_COMPRESSED_TENSORS ? 1.0f / gs : gs;
    char *e = s->err;
    if (st_writer_write(&sh->w, s->codes, (size_t)csz, e, ERRLEN) != 0 ||
        st_writer_write(&sh->w, s->scales, (size_t)ssz, e, ERRLEN) != 0 || st_writer_write(&sh->w, &g, 4, e, ERRLEN) != 0) {
        cmd_error("%s", e);
        return -1;
    }
    if (o->input_scale > 0) {
        float is = (float)o->input_scale;
        if (o->format == FMT_COMPRESSED_TENSORS)
            is = 1.0f / is;
        if (st_writer_write(&sh->w, &is, 4, e, ERRLEN) != 0) {
            cmd_error("%s", e);
            return -1;
        }
    }
    o->bytes_out += (uint64_t)csz + (uint64_t)ssz + 4;
    pg->iquant++;
    if (!pg->bar && !pg->quiet) {
        double rel = r.sum_sq > 0 ? r.sse / r.sum_sq : 0.0;
        fprintf(stderr, "[%d/%d] %s [%lld x %lld] rel.err %.3e  %.2f s\n", pg->iquant, pg->nquant, it->module,
                (long long)rows, (long long)cols, rel, r.seconds);
    }
    return 0;
}

static int add_outputs(const q_opts *o, out_shard *sh, const item *it, char *err)
{
    const st_tensor *t = it->src;
    if (it->action == A_COPY)
        return st_writer_add(&sh->w, t->name, t->dtype, t->ndim, t->shape, err, ERRLEN);
    size_t plen = 0;
    weight_prefix(t->name, &plen);
    char prefix[4096];
    if (plen >= sizeof prefix - 32) {
        snprintf(err, ERRLEN, "tensor '%.200s...': name too long", t->name);
        return -1;
    }
    memcpy(prefix, t->name, plen);
    int64_t rows = t->shape[0], cols = t->shape[1];
    int64_t cshape[2] = {rows, cols / 2}, sshape[2] = {rows, cols / 16}, one[1] = {1};
    int ct = o->format == FMT_COMPRESSED_TENSORS;
    const char *names[4] = {ct ? "weight_packed" : "weight", "weight_scale", ct ? "weight_global_scale" : "weight_scale_2",
                            ct ? "input_global_scale" : "input_scale"};
    const st_dtype dts[4] = {ST_U8, ST_F8_E4M3, ST_F32, ST_F32};
    for (int k = 0; k < (o->input_scale > 0 ? 4 : 3); k++) {
        snprintf(prefix + plen, sizeof prefix - plen, "%s", names[k]);
        /* ModelOpt writes scalar global scales (shape []); compressed-tensors writes [1]. */
        int nd = k < 2 ? 2 : (ct ? 1 : 0);
        const int64_t *shp = k == 0 ? cshape : k == 1 ? sshape : one;
        if (st_writer_add(&sh->w, prefix, dts[k], nd, shp, err, ERRLEN) != 0)
            return -1;
    }
    return 0;
}

/* ModelOpt's names: NVFP4 is W4A4 and needs every layer's input_scale; without activation
 * scales the checkpoint is weight-only, W4A16_NVFP4. */
static const char *quant_algo(const q_opts *o) { return o->input_scale > 0 ? "NVFP4" : "W4A16_NVFP4"; }

static cJSON *quant_config(const q_opts *o, cJSON *ignore)
{
    cJSON *qc = cJSON_CreateObject();
    cJSON *groups = cJSON_AddObjectToObject(qc, "config_groups");
    cJSON *g0 = cJSON_AddObjectToObject(groups, "group_0");
    int ct = o->format == FMT_COMPRESSED_TENSORS;
    cJSON *w = cJSON_AddObjectToObject(g0, "weights");
    cJSON_AddBoolToObject(w, "dynamic", 0);
    cJSON_AddNumberToObject(w, "num_bits", 4);
    cJSON_AddStringToObject(w, "type", "float");
    cJSON_AddNumberToObject(w, "group_size", 16);
    if (ct) {
        cJSON_AddStringToObject(w, "strategy", "tensor_group");
        cJSON_AddBoolToObject(w, "symmetric", 1);
    }
    if (o->input_scale > 0) {
        cJSON *a = cJSON_AddObjectToObject(g0, "input_activations");
        if (ct)
            cJSON_AddStringToObject(a, "dynamic", "local");
        else
            cJSON_AddBoolToObject(a, "dynamic", 0);
        cJSON_AddNumberToObject(a, "num_bits", 4);
        cJSON_AddStringToObject(a, "type", "float");
        cJSON_AddNumberToObject(a, "group_size", 16);
        if (ct) {
            cJSON_AddStringToObject(a, "strategy", "tensor_group");
            cJSON_AddBoolToObject(a, "symmetric", 1);
        }
    } else {
        cJSON_AddNullToObject(g0, "input_activations");
    }
    cJSON *targets = cJSON_AddArrayToObject(g0, "targets");
    cJSON_AddItemToArray(targets, cJSON_CreateString("Linear"));
    cJSON_AddItemToObject(qc, "ignore", cJSON_Duplicate(ignore, 1));
    if (ct) {
        cJSON_AddStringToObject(qc, "format", "nvfp4-pack-quantized");
        cJSON_AddStringToObject(qc, "quant_method", "compressed-tensors");
        cJSON_AddStringToObject(qc, "quantization_status", "compressed");
    } else {
        cJSON_AddStringToObject(qc, "quant_algo", quant_algo(o));
        cJSON_AddNullToObject(qc, "kv_cache_scheme");
        cJSON *p = cJSON_AddObjectToObject(qc, "producer");
        cJSON_AddStringToObject(p, "name", "libnvfp4");
        cJSON_AddStringToObject(p, "version", nvfp4_version_string());
        cJSON_AddStringToObject(qc, "quant_method", "modelopt");
    }
    return qc;
}

static cJSON *hf_quant_config(const q_opts *o, cJSON *ignore)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *p = cJSON_AddObjectToObject(root, "producer");
    cJSON_AddStringToObject(p, "name", "libnvfp4");
    cJSON_AddStringToObject(p, "version", nvfp4_version_string());
    cJSON *q = cJSON_AddObjectToObject(root, "quantization");
    cJSON_AddStringToObject(q, "quant_algo", quant_algo(o));
    cJSON_AddNullToObject(q, "kv_cache_quant_algo");
    cJSON_AddNumberToObject(q, "group_size", 16);
    cJSON_AddItemToObject(q, "exclude_modules", cJSON_Duplicate(ignore, 1));
    (void)o;
    return root;
}

/* Temporary files of this run, renamed into place together at the end. */
typedef struct pending {
    char *tmp, *final;
} pending;

typedef struct run_files {
    pending *p;
    int n;
    char *tmpdir;     /* directory output: everything goes here first */
} run_files;

static int add_pending(run_files *rf, char *tmp, const char *final)
{
    pending *p = realloc(rf->p, (size_t)(rf->n + 1) * sizeof *p);
    if (!p)
        return -1;
    rf->p = p;
    rf->p[rf->n].tmp = tmp;
    rf->p[rf->n].final = st_strdup(final);
    rf->n++;
    return 0;
}

static int write_json_file(run_files *rf, const char *path, cJSON *j, char *err)
{
    char *text = cJSON_Print(j);
    if (!text) {
        snprintf(err, ERRLEN, "%s: out of memory", path);
        return -1;
    }
    char *tmp = NULL;
    int rc = st_write_temp_text(path, text, &tmp, err, ERRLEN);
    free(text);
    if (rc == 0 && add_pending(rf, tmp, path) != 0) {
        snprintf(err, ERRLEN, "%s: out of memory", path);
        return -1;
    }
    return rc;
}

static int copy_file(run_files *rf, const char *src, const char *dst, char *err)
{
    FILE *in = fopen(src, "rb");
    if (!in) {
        snprintf(err, ERRLEN, "%s: cannot open: %s", src, strerror(errno));
        return -1;
    }
    char *tmp = NULL;
    FILE *out = st_create_temp(dst, &tmp, err, ERRLEN);
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t r;
    int bad = 0;
    while (!bad && (r = fread(buf, 1, sizeof buf, in)) > 0)
        bad = fwrite(buf, 1, r, out) != r;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    if (bad) {
        snprintf(err, ERRLEN, "%s: copy failed", dst);
        unlink(tmp);
        st_forget_temp(tmp);
        free(tmp);
        return -1;
    }
    return add_pending(rf, tmp, dst);
}

static void cleanup_run(run_files *rf)
{
    for (int i = 0; i < rf->n; i++) {
        if (rf->p[i].tmp) {
            unlink(rf->p[i].tmp);
            st_forget_temp(rf->p[i].tmp);
            free(rf->p[i].tmp);
        }
        free(rf->p[i].final);
    }
    free(rf->p);
    rf->p = NULL;
    rf->n = 0;
    if (rf->tmpdir) {
        /* anything renamed into the temporary directory already */
        DIR *d = opendir(rf->tmpdir);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                    continue;
                char *p = path_join(rf->tmpdir, de->d_name);
                if (p)
                    unlink(p);
                free(p);
            }
            closedir(d);
        }
        rmdir(rf->tmpdir);
        st_forget_temp(rf->tmpdir);
        free(rf->tmpdir);
        rf->tmpdir = NULL;
    }
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int dir_is_empty(const char *p)
{
    DIR *d = opendir(p);
    if (!d)
        return 0;
    struct dirent *de;
    int empty = 1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

int cmd_quantize_run(q_opts *o)
{
    char err[ERRLEN];
    int rc = 1;
    ckpt in;
    out_shard *shards = NULL;
    qstate s;
    run_files rf;
    cJSON *ignore = cJSON_CreateArray();
    char *out_dir = NULL;
    memset(&s, 0, sizeof s);
    memset(&rf, 0, sizeof rf);
    s.o = o;
    o->kept = 0;
    o->bytes_in = o->bytes_out = 0;
    double t_start = now_seconds();

    if (!method_available(o->method)) {
        cmd_error("method '%s' is not available in this build%s", method_name(o->method),
                  methods[o->method].rounder ? " (the library has no rounder)" : "");
        cJSON_Delete(ignore);
        return 1;
    }
    if (o->backend == NVFP4_BACKEND_CUDA) {
        const char *why = NULL;
        if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA))
            why = "CUDA backend not available";
#ifndef NVFP4_CMD_HAVE_CUDA
        else
            why = "CUDA backend not available to this nvfp4 command (built without CUDA)";
#endif
        if (!why && methods[o->method].rounder)
            why = "--backend cuda: faar and gptq run on the CPU only";
        if (why) {
            cmd_error("%s", why);
            cJSON_Delete(ignore);
            return 1;
        }
    }
    if (ckpt_open(&in, o->in, err, sizeof err) != 0) {
        cmd_error("%s", err);
        cJSON_Delete(ignore);
        return 1;
    }
    ckpt calib;
    memset(&calib, 0, sizeof calib);
    if (o->calib) {
        if (!methods[o->method].rounder) {
            cmd_error("--calibration applies to --method faar and gptq only");
            ckpt_close(&in);
            cJSON_Delete(ignore);
            return 1;
        }
        if (ckpt_open(&calib, o->calib, err, sizeof err) != 0) {
            cmd_error("%s", err);
            ckpt_close(&in);
            cJSON_Delete(ignore);
            return 1;
        }
        s.calib = &calib;
    }
    o->identity_layers = 0;
    nvfp4_status st = nvfp4_context_create(&s.ctx, o->backend == NVFP4_BACKEND_CUDA ? NVFP4_BACKEND_CUDA : NVFP4_BACKEND_CPU);
    if (st == NVFP4_OK && o->backend != NVFP4_BACKEND_CUDA)
        st = nvfp4_context_set_int(s.ctx, NVFP4_CTX_THREADS, o->threads);
    if (st == NVFP4_OK)
        st = nvfp4_quantizer_create(&s.q, methods[o->method].rounder ? NVFP4_METHOD_MAX : methods[o->method].lib_method);
    if (st == NVFP4_OK && o->recipe != NVFP4_RECIPE_EXACT)
        st = nvfp4_quantizer_set_int(s.q, NVFP4_Q_RECIPE, o->recipe);
    if (st != NVFP4_OK) {
        cmd_error("cannot set up the library (--backend, --threads %d, --recipe): %s%s%s", o->threads,
                  nvfp4_status_string(st), s.ctx && nvfp4_context_last_error_message(s.ctx)[0] ? ": " : "",
                  s.ctx ? nvfp4_context_last_error_message(s.ctx) : "");
        goto out;
    }

    /* Output shape: a single input file goes to the OUT file, anything sharded (or an OUT that
     * is a directory) to a directory written under a temporary name and renamed at the end. */
    int dir_mode = in.index != NULL || is_dir(o->out) || ends_with(o->out, "/");
    const char *single_name = "model.safetensors";
    if (dir_mode) {
        if (is_dir(o->out) && !dir_is_empty(o->out)) {
            cmd_error("%s: output directory exists and is not empty", o->out);
            goto out;
        }
        char tmpl[PATH_MAX];
        size_t ol = strlen(o->out);
        while (ol > 1 && o->out[ol - 1] == '/')
            ol--;
        snprintf(tmpl, sizeof tmpl, "%.*s.tmp.XXXXXX", (int)ol, o->out);
        if (!mkdtemp(tmpl)) {
            cmd_error("%s: cannot create a temporary directory: %s", tmpl, strerror(errno));
            goto out;
        }
        rf.tmpdir = st_strdup(tmpl);
        if (!rf.tmpdir) {
            rmdir(tmpl);
            goto oom;
        }
        st_remember_temp(rf.tmpdir);
        out_dir = st_strdup(rf.tmpdir);
    } else {
        for (int i = 0; i < in.nshards; i++)
            if (same_file(in.shards[i].path, o->out)) {
                cmd_error("%s: OUT is the input file", o->out);
                goto out;
            }
        out_dir = path_dirname(o->out);
    }
    if (!out_dir)
        goto oom;

    shards = calloc((size_t)in.nshards, sizeof *shards);
    if (!shards)
        goto oom;
    progress pg;
    memset(&pg, 0, sizeof pg);
    pg.bar = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
    pg.quiet = o->quiet;
    for (int i = 0; i < in.nshards; i++) {
        out_shard *sh = &shards[i];
        sh->in = &in.shards[i];
        sh->name = in.nshards == 1 && !in.index ? single_name : in.shard_names[i];
        sh->path = dir_mode ? path_join(out_dir, sh->name) : st_strdup(o->out);
        if (!sh->path || st_writer_init(&sh->w, sh->path, err, sizeof err) != 0)
            goto oom;
        sh->items = calloc((size_t)(sh->in->n > 0 ? sh->in->n : 1), sizeof *sh->items);
        if (!sh->items)
            goto oom;
        for (int k = 0; k < sh->in->n; k++) {
            item *it = &sh->items[sh->n++];
            it->src = &sh->in->tensors[k];
            it->shard = i;
            it->action = A_COPY;
            size_t plen;
            const st_tensor *t = it->src;
            if (!is_float_dtype(t->dtype) || t->ndim != 2 || !weight_prefix(t->name, &plen))
                continue;
            char *module = module_of(t->name, plen);
            if (!module)
                goto oom;
            const char *why = NULL;
            char whybuf[128];
            const char *pat = excluded_by(o, module, t->name);
            if (pat) {
                snprintf(whybuf, sizeof whybuf, "excluded by '%s'", pat);
                why = whybuf;
            } else if (t->shape[0] == 0 || t->shape[1] == 0 || t->shape[1] % 16 != 0) {
                snprintf(whybuf, sizeof whybuf, "in_features %lld is not a positive multiple of 16",
                         (long long)t->shape[1]);
                why = whybuf;
            }
            if (why) {
                cJSON_AddItemToArray(ignore, cJSON_CreateString(module));
                if (!o->quiet)
                    fprintf(stderr, "keeping %s as %s: %s\n", t->name, st_dtype_name(t->dtype), why);
                free(module);
                continue;
            }
            it->action = A_QUANT;
            it->module = module;
            pg.nquant++;
        }
        qsort(sh->items, (size_t)sh->n, sizeof *sh->items, cmp_item_begin);
        for (int k = 0; k < sh->n; k++) {
            if (add_outputs(o, sh, &sh->items[k], err) != 0) {
                cmd_error("%s", err);
                goto out;
            }
            pg.total += sh->items[k].src->end - sh->items[k].src->begin;
            if (sh->items[k].action == A_COPY)
                o->kept++;
        }
        /* Keep the input's metadata; transformers wants "format": "pt". */
        if (sh->in->metadata) {
            const cJSON *m;
            cJSON_ArrayForEach(m, sh->in->metadata)
                st_writer_set_metadata(&sh->w, m->string, m->valuestring);
        }
        if (!sh->in->metadata || !cJSON_GetObjectItemCaseSensitive(sh->in->metadata, "format"))
            st_writer_set_metadata(&sh->w, "format", "pt");
        char qb[96];
        snprintf(qb, sizeof qb, "libnvfp4 %s, method %s", nvfp4_version_string(), method_name(o->method));
        st_writer_set_metadata(&sh->w, "quantized_by", qb);
    }
    if (pg.nquant == 0 && !o->quiet)
        fprintf(stderr, "note: no 2-D F32/F16/BF16 weight to quantise; the output is a copy\n");

    pg.t0 = now_seconds();
    for (int i = 0; i < in.nshards; i++) {
        out_shard *sh = &shards[i];
        if (st_writer_begin(&sh->w, err, sizeof err) != 0) {
            cmd_error("%s", err);
            goto out;
        }
        for (int k = 0; k < sh->n; k++) {
            item *it = &sh->items[k];
            progress_bar(&pg, it->src->name);
            if (it->action == A_QUANT) {
                if (quantize_item(&s, sh, it, &pg) != 0)
                    goto out;
            } else {
                if (st_writer_write(&sh->w, it->src->data, (size_t)(it->src->end - it->src->begin), err, sizeof err) != 0) {
                    cmd_error("%s", err);
                    goto out;
                }
                o->bytes_out += it->src->end - it->src->begin;
            }
            pg.done += it->src->end - it->src->begin;
            o->bytes_in += it->src->end - it->src->begin;
        }
        progress_bar(&pg, "");
        if (st_writer_finish(&sh->w, err, sizeof err) != 0) {
            cmd_error("%s", err);
            goto out;
        }
        if (add_pending(&rf, sh->w.tmp_path, sh->path) != 0)
            goto oom;
        sh->w.tmp_path = NULL; /* now owned by rf */
    }
    progress_end(&pg);

    /* The index of a sharded output. */
    if (in.index) {
        cJSON *idx = cJSON_CreateObject();
        cJSON *meta = cJSON_AddObjectToObject(idx, "metadata");
        uint64_t total = 0;
        for (int i = 0; i < in.nshards; i++)
            total += st_writer_total(&shards[i].w);
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
        for (int i = 0; i < in.nshards; i++)
            for (int k = 0; k < shards[i].w.n; k++)
                cJSON_AddStringToObject(wm, shards[i].w.t[k].name, shards[i].name);
        char *p = path_join(out_dir, "model.safetensors.index.json");
        int r = p ? write_json_file(&rf, p, idx, err) : -1;
        free(p);
        cJSON_Delete(idx);
        if (r != 0) {
            cmd_error("%s", err);
            goto out;
        }
    }

    /* config.json (the input's, with quantization_config) and hf_quant_config.json. */
    int same_dir = !dir_mode && same_file(in.dir, out_dir);
    if (same_dir) {
        if (!o->quiet)
            fprintf(stderr, "note: OUT is in the input's directory: config.json and hf_quant_config.json not written "
                            "(write OUT to another directory to get them)\n");
    } else {
        char *cfg_in = path_join(in.dir, "config.json");
        char *text = cfg_in ? read_text_file(cfg_in, (size_t)64 << 20) : NULL;
        cJSON *cfg = NULL;
        if (text) {
            cfg = cJSON_Parse(text);
            if (!cfg || !cJSON_IsObject(cfg)) {
                cmd_error("%s: not a valid JSON object", cfg_in);
                cJSON_Delete(cfg);
                free(text);
                free(cfg_in);
                goto out;
            }
        } else {
            cfg = cJSON_CreateObject();
        }
        free(text);
        free(cfg_in);
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization_config");
        cJSON_AddItemToObject(cfg, "quantization_config", quant_config(o, ignore));
        char *p = path_join(out_dir, "config.json");
        int r = p ? write_json_file(&rf, p, cfg, err) : -1;
        free(p);
        cJSON_Delete(cfg);
        if (r == 0 && o->format == FMT_MODELOPT) {
            cJSON *h = hf_quant_config(o, ignore);
            p = path_join(out_dir, "hf_quant_config.json");
            r = p ? write_json_file(&rf, p, h, err) : -1;
            free(p);
            cJSON_Delete(h);
        }
        if (r != 0) {
            cmd_error("%s", err);
            goto out;
        }
    }
    /* A directory output also gets the input directory's other files (tokenizer, ...). */
    if (dir_mode) {
        DIR *d = opendir(in.dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            const char *nm = de->d_name;
            if (nm[0] == '.' || ends_with(nm, ".safetensors") || strcmp(nm, "config.json") == 0 ||
                strcmp(nm, "hf_quant_config.json") == 0 || strstr(nm, ".tmp.") ||
                strcmp(nm, "model.safetensors.index.json") == 0)
                continue;
            char *src = path_join(in.dir, nm);
            struct stat sb;
            if (src && stat(src, &sb) == 0 && S_ISREG(sb.st_mode)) {
                char *dst = path_join(out_dir, nm);
                int r = dst ? copy_file(&rf, src, dst, err) : -1;
                free(dst);
                if (r != 0) {
                    free(src);
                    closedir(d);
                    cmd_error("%s", err);
                    goto out;
                }
            }
            free(src);
        }
        if (d)
            closedir(d);
    }

    /* Publish: rename every temporary file, then (directory output) the directory itself. */
    for (int i = 0; i < rf.n; i++) {
        if (st_commit_temp(rf.p[i].tmp, rf.p[i].final, err, sizeof err) != 0) {
            cmd_error("%s", err);
            goto out;
        }
        free(rf.p[i].tmp);
        rf.p[i].tmp = NULL;
    }
    if (dir_mode) {
        if (rename(rf.tmpdir, o->out) != 0) {
            cmd_error("%s: cannot rename %s into place: %s", o->out, rf.tmpdir, strerror(errno));
            goto out;
        }
        st_forget_temp(rf.tmpdir);
        free(rf.tmpdir);
        rf.tmpdir = NULL;
    }
    for (int i = 0; i < in.nshards; i++)
        shards[i].w.committed = 1;
    o->seconds = now_seconds() - t_start;

    if (!o->quiet) {
        printf("%-56s %-13s %11s %8s %8s\n", "layer", "shape", "rel.err", "SQNR dB", "time s");
        double sum_rel = 0, worst = 0, sse = 0, ss = 0;
        for (int i = 0; i < o->nres; i++) {
            layer_result *r = &o->res[i];
            double rel = r->sum_sq > 0 ? r->sse / r->sum_sq : 0.0;
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)r->rows, (long long)r->cols);
            printf("%-56s %-13s %11.4e %8.2f %8.3f\n", r->name, shape, rel, rel > 0 ? -10.0 * log10(rel) : INFINITY,
                   r->seconds);
            sum_rel += rel;
            worst = rel > worst ? rel : worst;
            sse += r->sse;
            ss += r->sum_sq;
        }
        if (o->nres) {
            double all = ss > 0 ? sse / ss : 0.0;
            printf("%d layers (%s): mean rel.err %.4e, worst %.4e, whole model %.4e (SQNR %.2f dB)\n", o->nres,
                   method_name(o->method), sum_rel / o->nres, worst, all, all > 0 ? -10.0 * log10(all) : INFINITY);
        }
        if (o->identity_layers)
            printf("note: %d layer%s had no calibration data (--calibration): %s used the identity Gram matrix, "
                   "i.e. the plain weight error\n", o->identity_layers, o->identity_layers == 1 ? "" : "s",
                   method_name(o->method));
        char a[32], b[32], c[32];
        printf("read %s, wrote %s (%s) in %.2f s (%s/s); %lld tensors kept as they were\n",
               human_bytes((double)o->bytes_in, a, sizeof a), human_bytes((double)o->bytes_out, b, sizeof b),
               fmt_name(o->format), o->seconds, human_bytes(o->seconds > 0 ? (double)o->bytes_in / o->seconds : 0, c, sizeof c),
               (long long)o->kept);
        printf("output: %s\n", o->out);
    }
    rc = 0;
    goto out;
oom:
    cmd_error("out of memory");
out:
    if (rc != 0)
        cleanup_run(&rf);
    else {
        for (int i = 0; i < rf.n; i++)
            free(rf.p[i].final);
        free(rf.p);
    }
    if (shards) {
        for (int i = 0; i < in.nshards; i++) {
            st_writer_free(&shards[i].w);
            for (int k = 0; k < shards[i].n; k++)
                free(shards[i].items[k].module);
            free(shards[i].items);
            free(shards[i].path);
        }
        free(shards);
    }
    free(out_dir);
    free(s.codes);
    free(s.scales);
    free(s.aligned);
#ifdef NVFP4_CMD_HAVE_CUDA
    free_device(&s);
#endif
    nvfp4_quantizer_destroy(s.q);
    nvfp4_context_destroy(s.ctx);
    ckpt_close(&in);
    ckpt_close(&calib);
    cJSON_Delete(ignore);
    return rc;
}

static void quantize_usage(FILE *f)
{
    fprintf(f,
            "usage: nvfp4 quantize IN OUT [--method M] [--format modelopt|compressed-tensors]\n"
            "                            [--exclude PATTERN]... [--no-default-excludes] [--threads N]\n"
            "                            [--backend cpu|cuda] [--recipe exact|modelopt] [--input-scale S]\n"
            "                            [--iterations N] [--calibration FILE] [--progress|--no-progress]\n"
            "                            [--quiet]\n"
            "  IN   a .safetensors file, a model.safetensors.index.json, or a directory holding either\n"
            "  OUT  a .safetensors file (single-file input) or a directory (sharded input, or OUT/)\n"
            "  --method      max (default), 4over6, soar, soar_cjso, soar_dss, sweep, faar, gptq\n"
            "  --calibration FILE  (faar, gptq) safetensors holding, per module M, M.gram F32 [in, in]\n"
            "                (H = X^T X / n) or M.inputs [n, in] activation samples; a module without\n"
            "                either uses the identity Gram matrix (the plain weight error)\n"
            "  --exclude     fnmatch pattern on module or tensor names, kept unquantised; by default\n"
            "                *embed* and *lm_head* are kept too (--no-default-excludes quantises them)\n"
            "  --threads     worker threads, 0 = one per CPU (default 0)\n"
            "  --recipe      modelopt: ModelOpt's bit-exact export arithmetic (method max only)\n"
            "  --input-scale write input_scale = S (the static activation decode scale) for every layer\n"
            "  --iterations  FAAR iterations (default: the library's)\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    q_opts o;
    memset(&o, 0, sizeof o);
    o.method = M_MAX;
    o.default_excludes = 1;
    o.progress = -1;
    o.backend = NVFP4_BACKEND_CPU;
    o.format = FMT_MODELOPT;
    o.recipe = NVFP4_RECIPE_EXACT;
    const char **ex = calloc((size_t)argc + 1, sizeof *ex);
    if (!ex) {
        cmd_error("out of memory");
        return 1;
    }
    o.exclude = ex;
    const char *pos[2];
    int npos = 0, rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            quantize_usage(stdout);
            free(ex);
            return 0;
        } else if (strcmp(a, "--method") == 0 || strcmp(a, "-m") == 0) {
            if (!v || (o.method = method_parse(v)) < 0) {
                cmd_error("--method: expected max, 4over6, soar, soar_cjso, soar_dss, sweep, faar or gptq, got '%s'", v ? v : "");
                goto bad;
            }
            i++;
        } else if (strcmp(a, "--format") == 0) {
            if (v && strcmp(v, "modelopt") == 0)
                o.format = FMT_MODELOPT;
            else if (v && strcmp(v, "compressed-tensors") == 0)
                o.format = FMT_COMPRESSED_TENSORS;
            else {
                cmd_error("--format: expected modelopt or compressed-tensors");
                goto bad;
            }
            i++;
        } else if (strcmp(a, "--exclude") == 0) {
            if (!v) {
                cmd_error("--exclude needs a pattern");
                goto bad;
            }
            ex[o.nexclude++] = v;
            i++;
        } else if (strcmp(a, "--no-default-excludes") == 0) {
            o.default_excludes = 0;
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "-j") == 0) {
            if (!v || parse_int(v, 0, 1024, &n) != 0) {
                cmd_error("--threads: expected 0..1024");
                goto bad;
            }
            o.threads = (int)n;
            i++;
        } else if (strcmp(a, "--backend") == 0) {
            if (v && strcmp(v, "cpu") == 0)
                o.backend = NVFP4_BACKEND_CPU;
            else if (v && strcmp(v, "cuda") == 0)
                o.backend = NVFP4_BACKEND_CUDA;
            else {
                cmd_error("--backend: expected cpu or cuda");
                goto bad;
            }
            i++;
        } else if (strcmp(a, "--recipe") == 0) {
            if (v && strcmp(v, "exact") == 0)
                o.recipe = NVFP4_RECIPE_EXACT;
            else if (v && strcmp(v, "modelopt") == 0)
                o.recipe = NVFP4_RECIPE_MODELOPT;
            else {
                cmd_error("--recipe: expected exact or modelopt");
                goto bad;
            }
            i++;
        } else if (strcmp(a, "--input-scale") == 0) {
            char *end;
            double d = v ? strtod(v, &end) : 0;
            if (!v || *end || !(d > 0) || !isfinite(d) || d > 3.0e38) {
                cmd_error("--input-scale: expected a positive number");
                goto bad;
            }
            o.input_scale = d;
            i++;
        } else if (strcmp(a, "--iterations") == 0) {
            if (!v || parse_int(v, 0, 10000000, &n) != 0) {
                cmd_error("--iterations: expected 0..10000000");
                goto bad;
            }
            o.rounder_iters = (int)n;
            i++;
        } else if (strcmp(a, "--calibration") == 0) {
            if (!v) {
                cmd_error("--calibration needs a file");
                goto bad;
            }
            o.calib = v;
            i++;
        } else if (strcmp(a, "--progress") == 0) {
            o.progress = 1;
        } else if (strcmp(a, "--no-progress") == 0) {
            o.progress = 0;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o.quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            cmd_error("quantize: unknown option '%s' (see nvfp4 quantize --help)", a);
            goto bad;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            cmd_error("quantize: unexpected argument '%s'", a);
            goto bad;
        }
    }
    if (npos != 2) {
        quantize_usage(stderr);
        goto bad;
    }
    if (o.recipe == NVFP4_RECIPE_MODELOPT && o.method != M_MAX) {
        cmd_error("--recipe modelopt applies to --method max only");
        goto bad;
    }
    o.in = pos[0];
    o.out = pos[1];
    st_install_signal_cleanup();
    rc = cmd_quantize_run(&o);
    q_opts_free_results(&o);
    free(ex);
    return rc;
bad:
    free(ex);
    return rc;
}
