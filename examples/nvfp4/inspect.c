/* inspect.c - `nvfp4 inspect FILE` and `nvfp4 compare A B`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "nvfp4/nvfp4.h"

#define ERRLEN ST_ERR_LEN

int layer_dequantize(const nvfp4_layer *l, float *dst, char *err, size_t errlen)
{
    nvfp4_context *ctx = NULL;
    nvfp4_status st = nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU);
    if (st == NVFP4_OK)
        st = nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 0);
    if (st == NVFP4_OK)
        st = nvfp4_dequantize(ctx, l->codes->data, l->scales->data, l->s_dec, l->rows, l->cols, NVFP4_DTYPE_F32, dst,
                              l->cols);
    if (st != NVFP4_OK)
        snprintf(err, errlen, "tensor '%s': cannot dequantise: %s%s%s", l->codes->name, nvfp4_status_string(st),
                 ctx && nvfp4_context_last_error_message(ctx)[0] ? ": " : "",
                 ctx ? nvfp4_context_last_error_message(ctx) : "");
    nvfp4_context_destroy(ctx);
    return st == NVFP4_OK ? 0 : -1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static void shape_str(const st_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Which tensors belong to a detected layer. */
typedef struct owner_set {
    const st_tensor **t;
    int n, cap;
} owner_set;

static void own(owner_set *s, const st_tensor *t)
{
    if (!t)
        return;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        const st_tensor **n = realloc(s->t, (size_t)cap * sizeof *n);
        if (!n)
            return;
        s->t = n;
        s->cap = cap;
    }
    s->t[s->n++] = t;
}

static int owned(const owner_set *s, const st_tensor *t)
{
    for (int i = 0; i < s->n; i++)
        if (s->t[i] == t)
            return 1;
    return 0;
}

/* Whether NAME ends in SUFFIX and a packed weight ("weight" or "weight_packed") shares its prefix. */
static int has_codes_for(const ckpt *c, const char *name, const char *suffix)
{
    if (!ends_with(name, suffix))
        return 0;
    size_t plen = strlen(name) - strlen(suffix);
    char buf[4096];
    if (plen + 16 > sizeof buf)
        return 0;
    memcpy(buf, name, plen);
    memcpy(buf + plen, "weight", 7);
    if (ckpt_find(c, buf, NULL))
        return 1;
    memcpy(buf + plen, "weight_packed", 14);
    return ckpt_find(c, buf, NULL) != NULL;
}

int cmd_inspect_run(const char *path, int print)
{
    char err[ERRLEN];
    ckpt c;
    if (ckpt_open(&c, path, err, sizeof err) != 0) {
        cmd_error("%s", err);
        return 1;
    }
    int problems = 0, nlayers = 0, nother = 0, fmt_seen[2] = {0, 0};
    owner_set os;
    memset(&os, 0, sizeof os);
    if (print)
        printf("%s: %lld tensors in %d shard%s\n", path, (long long)ckpt_tensor_count(&c), c.nshards, c.nshards == 1 ? "" : "s");
    /* First the layers, so that their companion tensors are known. */
    for (int i = 0; i < c.nshards; i++) {
        for (int k = 0; k < c.shards[i].n; k++) {
            const st_tensor *t = &c.shards[i].tensors[k];
            nvfp4_layer l;
            int r = nvfp4_layer_detect(&c, t, &l, err, sizeof err);
            if (r < 0) {
                cmd_error("%s", err);
                problems++;
                continue;
            }
            if (r == 0)
                continue;
            nlayers++;
            fmt_seen[l.format] = 1;
            own(&os, l.codes);
            own(&os, l.scales);
            own(&os, l.gscale);
            own(&os, l.input_scale);
            scale_report sr;
            nvfp4_layer_scales(&l, &sr);
            /* Blocks whose scale is zero but whose codes are not: the block decodes to zero. */
            int64_t zero_nonzero = 0, nb = l.cols / 16;
            for (int64_t b = 0; b < sr.count; b++) {
                if (l.scales->data[b] != 0)
                    continue;
                const unsigned char *cb = l.codes->data + (b / nb) * (l.cols / 2) + (b % nb) * 8;
                for (int j = 0; j < 8; j++)
                    if ((cb[j] & 0x77) != 0) {
                        zero_nonzero++;
                        break;
                    }
            }
            if (sr.invalid) {
                cmd_error("tensor '%s': %lld of %lld scale bytes are invalid (0x7F or above: NaN or negative)",
                          l.scales->name, (long long)sr.invalid, (long long)sr.count);
                problems++;
            }
            if (print) {
                float is = 0;
                if (l.input_scale)
                    memcpy(&is, l.input_scale->data, 4);
                printf("  %-52s NVFP4 %-18s [%lld, %lld]  global %.4e  scales %.4g..%.4g (%lld zero%s)%s", l.base,
                       l.format == FMT_MODELOPT ? "(modelopt)" : "(compressed-t.)", (long long)l.rows, (long long)l.cols,
                       (double)l.s_dec, (double)sr.min_nonzero, (double)sr.max, (long long)sr.zero,
                       zero_nonzero ? ", some with nonzero codes" : "", l.input_scale ? "" : "\n");
                if (l.input_scale)
                    printf("  input %.4e\n", (double)(l.format == FMT_COMPRESSED_TENSORS ? 1.0f / is : is));
            }
            free(l.base);
        }
    }
    for (int i = 0; i < c.nshards; i++) {
        for (int k = 0; k < c.shards[i].n; k++) {
            const st_tensor *t = &c.shards[i].tensors[k];
            if (owned(&os, t))
                continue;
            nother++;
            /* Scales with no packed weight at all (a layer that failed its checks has already
             * been reported once through its packed weight). */
            if (!has_codes_for(&c, t->name, "weight_scale") && !has_codes_for(&c, t->name, "weight_scale_2") &&
                !has_codes_for(&c, t->name, "weight_global_scale")) {
                if (t->dtype == ST_F8_E4M3 && ends_with(t->name, "weight_scale")) {
                    cmd_error("tensor '%s': block scales without a packed weight next to them", t->name);
                    problems++;
                } else if (ends_with(t->name, "weight_scale_2") || ends_with(t->name, "weight_global_scale")) {
                    cmd_error("tensor '%s': global scale without a packed weight next to it", t->name);
                    problems++;
                }
            }
            if (print) {
                char sh[128];
                shape_str(t, sh, sizeof sh);
                printf("  %-52s %-7s %s\n", t->name, st_dtype_name(t->dtype), sh);
            }
        }
    }
    if (print) {
        char *cfg = path_join(c.dir, "hf_quant_config.json");
        char *text = cfg ? read_text_file(cfg, 1 << 20) : NULL;
        if (text)
            printf("hf_quant_config.json present\n");
        free(text);
        free(cfg);
        printf("%s: %d NVFP4 layers (%s%s%s), %d other tensors, %d problem%s\n", problems ? "FAILED" : "OK", nlayers,
               fmt_seen[0] ? "modelopt" : "", fmt_seen[0] && fmt_seen[1] ? ", " : "",
               fmt_seen[1] ? "compressed-tensors" : (fmt_seen[0] ? "" : "none"), nother, problems, problems == 1 ? "" : "s");
    }
    free(os.t);
    ckpt_close(&c);
    return problems ? 1 : 0;
}

int cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            printf("usage: nvfp4 inspect FILE|DIR|INDEX.json\n"
                   "  lists the tensors of a checkpoint, checks the NVFP4 layers (shapes, dtypes, scale\n"
                   "  bytes, global scales) and exits 1 if anything is wrong\n");
            return 0;
        }
        fprintf(stderr, "usage: nvfp4 inspect FILE\n");
        return 2;
    }
    return cmd_inspect_run(argv[1], 1);
}

/* ---- compare ------------------------------------------------------------------------------ */

static int find_layer(const ckpt *b, const char *name, nvfp4_layer *l, char *err, size_t errlen)
{
    const st_tensor *t = ckpt_find(b, name, NULL);
    if (t && t->dtype == ST_U8)
        return nvfp4_layer_detect(b, t, l, err, errlen);
    if (ends_with(name, "weight")) {
        size_t n = strlen(name);
        char *alt = malloc(n + 8);
        if (!alt)
            return -1;
        memcpy(alt, name, n);
        memcpy(alt + n, "_packed", 8);
        t = ckpt_find(b, alt, NULL);
        free(alt);
        if (t)
            return nvfp4_layer_detect(b, t, l, err, errlen);
    }
    return 0;
}

int cmd_compare_run(const char *pa, const char *pb, int print, cmp_summary *sum)
{
    char err[ERRLEN];
    ckpt a, b;
    cmp_summary s;
    memset(&s, 0, sizeof s);
    if (ckpt_open(&a, pa, err, sizeof err) != 0) {
        cmd_error("%s", err);
        return 1;
    }
    if (ckpt_open(&b, pb, err, sizeof err) != 0) {
        cmd_error("%s", err);
        ckpt_close(&a);
        return 1;
    }
    int rc = 0;
    double sum_rel = 0;
    if (print)
        printf("%-56s %-6s %-13s %11s %11s %8s\n", "tensor", "kind", "shape", "rel.err", "max|err|", "SQNR dB");
    for (int i = 0; i < a.nshards && !rc; i++) {
        for (int k = 0; k < a.shards[i].n && !rc; k++) {
            const st_tensor *ta = &a.shards[i].tensors[k];
            if (!is_float_dtype(ta->dtype))
                continue;
            nvfp4_layer l;
            const st_tensor *tb = ckpt_find(&b, ta->name, NULL);
            int is_layer = 0;
            if (!tb || !is_float_dtype(tb->dtype)) {
                is_layer = find_layer(&b, ta->name, &l, err, sizeof err);
                if (is_layer < 0) {
                    cmd_error("%s", err);
                    rc = 1;
                    break;
                }
            }
            if (!is_layer && (!tb || !is_float_dtype(tb->dtype))) {
                s.n_missing++;
                if (print)
                    printf("%-56s %-6s (not in B, or not a float or NVFP4 tensor there)\n", ta->name, "-");
                continue;
            }
            int64_t n = ta->numel;
            float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x), *y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
            if (!x || !y) {
                free(x);
                free(y);
                if (is_layer)
                    free(l.base);
                cmd_error("tensor '%s': out of memory", ta->name);
                rc = 1;
                break;
            }
            tensor_to_float(ta, x);
            int bad = 0;
            if (is_layer) {
                if (ta->ndim != 2 || ta->shape[0] != l.rows || ta->shape[1] != l.cols) {
                    cmd_error("tensor '%s': shape mismatch: A has %d-D [%lld, %lld], B's NVFP4 layer is [%lld, %lld]", ta->name,
                              ta->ndim, (long long)(ta->ndim > 0 ? ta->shape[0] : 0),
                              (long long)(ta->ndim > 1 ? ta->shape[1] : 0), (long long)l.rows, (long long)l.cols);
                    bad = 1;
                } else if (layer_dequantize(&l, y, err, sizeof err) != 0) {
                    cmd_error("%s", err);
                    bad = 1;
                }
                free(l.base);
            } else {
                int same = tb->ndim == ta->ndim;
                for (int d = 0; same && d < ta->ndim; d++)
                    same = tb->shape[d] == ta->shape[d];
                if (!same) {
                    cmd_error("tensor '%s': shape mismatch between A and B", ta->name);
                    bad = 1;
                } else {
                    tensor_to_float(tb, y);
                }
            }
            if (bad) {
                free(x);
                free(y);
                rc = 1;
                break;
            }
            double sse = 0, ss = 0, mx = 0;
            for (int64_t j = 0; j < n; j++) {
                double d = (double)y[j] - (double)x[j];
                sse += d * d;
                ss += (double)x[j] * (double)x[j];
                if (fabs(d) > mx || d != d)
                    mx = fabs(d);
            }
            double rel = ss > 0 ? sse / ss : (sse > 0 ? INFINITY : 0.0);
            if (is_layer) {
                s.n_quant++;
                s.sse_quant += sse;
                s.sum_sq_quant += ss;
                sum_rel += rel;
                if (rel > s.worst_rel)
                    s.worst_rel = rel;
            } else {
                s.n_plain++;
            }
            if (print) {
                char sh[64];
                shape_str(ta, sh, sizeof sh);
                printf("%-56s %-6s %-13s %11.4e %11.4e %8.2f\n", ta->name, is_layer ? "nvfp4" : "same", sh, rel, mx,
                       rel > 0 ? -10.0 * log10(rel) : INFINITY);
            }
            free(x);
            free(y);
        }
    }
    if (!rc) {
        s.mean_rel = s.n_quant ? sum_rel / s.n_quant : 0.0;
        if (print) {
            double all = s.sum_sq_quant > 0 ? s.sse_quant / s.sum_sq_quant : 0.0;
            printf("%d NVFP4 tensors: mean rel.err %.4e, worst %.4e, all together %.4e (SQNR %.2f dB); %d compared "
                   "as they are; %d not found in B\n",
                   s.n_quant, s.mean_rel, s.worst_rel, all, all > 0 ? -10.0 * log10(all) : INFINITY, s.n_plain, s.n_missing);
        }
        if (sum)
            *sum = s;
    }
    ckpt_close(&a);
    ckpt_close(&b);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: nvfp4 compare A B\n"
               "  per-tensor error of checkpoint B (e.g. NVFP4, dequantised) against checkpoint A\n");
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: nvfp4 compare A B\n");
        return 2;
    }
    return cmd_compare_run(argv[1], argv[2], 1, NULL);
}
