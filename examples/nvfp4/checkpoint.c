/* checkpoint.c - sharded checkpoints and NVFP4 layer detection. */
#include "checkpoint.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nvfp4/nvfp4.h"



char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

char *read_text_file(const char *path, size_t max)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= max) {
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, fp);
        n += r;
        if (r == 0)
            break;
    }
    if (buf && ferror(fp)) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf)
        buf[n] = '\0';
    return buf;
}

char *path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return st_strdup(".");
    if (slash == path)
        return st_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
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

static int add_shard(ckpt *c, const char *name)
{
    for (int i = 0; i < c->nshards; i++)
        if (strcmp(c->shard_names[i], name) == 0)
            return 0;
    char **n = realloc(c->shard_names, (size_t)(c->nshards + 1) * sizeof *n);
    if (!n)
        return -1;
    c->shard_names = n;
    n[c->nshards] = st_strdup(name);
    if (!n[c->nshards])
        return -1;
    c->nshards++;
    return 0;
}

static int open_index(ckpt *c, const char *index_path, char *err, size_t errlen)
{
    c->index_path = st_strdup(index_path);
    c->dir = path_dirname(index_path);
    char *text = read_text_file(index_path, (size_t)256 << 20);
    if (!text)
        return st_fail(err, errlen, "%s: cannot read the index file", index_path);
    c->index = cJSON_Parse(text);
    free(text);
    if (!c->index || !cJSON_IsObject(c->index))
        return st_fail(err, errlen, "%s: index is not valid JSON", index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(c->index, "weight_map");
    if (!cJSON_IsObject(wm))
        return st_fail(err, errlen, "%s: index has no \"weight_map\" object", index_path);
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring[0])
            return st_fail(err, errlen, "%s: tensor '%s': weight_map entry is not a file name", index_path,
                        e->string ? e->string : "");
        if (strchr(e->valuestring, '/') || strcmp(e->valuestring, "..") == 0 || strcmp(e->valuestring, ".") == 0)
            return st_fail(err, errlen, "%s: tensor '%s': shard name '%s' is not a plain file name", index_path,
                        e->string, e->valuestring);
        if (add_shard(c, e->valuestring) != 0)
            return st_fail(err, errlen, "%s: out of memory", index_path);
    }
    if (c->nshards == 0)
        return st_fail(err, errlen, "%s: weight_map is empty", index_path);
    return 0;
}

int ckpt_open(ckpt *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int rc = 0;
    if (is_dir(path)) {
        char *idx = path_join(path, "model.safetensors.index.json");
        struct stat st;
        if (idx && stat(idx, &st) == 0) {
            rc = open_index(c, idx, err, errlen);
        } else {
            /* exactly one .safetensors file */
            c->dir = st_strdup(path);
            DIR *d = opendir(path);
            if (!d) {
                rc = st_fail(err, errlen, "%s: cannot list the directory", path);
            } else {
                struct dirent *de;
                while ((de = readdir(d)) != NULL)
                    if (ends_with(de->d_name, ".safetensors") && add_shard(c, de->d_name) != 0)
                        rc = st_fail(err, errlen, "%s: out of memory", path);
                closedir(d);
                if (!rc && c->nshards != 1)
                    rc = st_fail(err, errlen, "%s: expected model.safetensors.index.json or exactly one .safetensors file, found %d",
                              path, c->nshards);
            }
        }
        free(idx);
    } else if (ends_with(path, ".json")) {
        rc = open_index(c, path, err, errlen);
    } else {
        c->dir = path_dirname(path);
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (add_shard(c, base) != 0)
            rc = st_fail(err, errlen, "%s: out of memory", path);
    }
    if (rc) {
        ckpt_close(c);
        return -1;
    }
    c->shards = calloc((size_t)c->nshards, sizeof *c->shards);
    if (!c->shards) {
        ckpt_close(c);
        return st_fail(err, errlen, "%s: out of memory", path);
    }
    for (int i = 0; i < c->nshards; i++) {
        char *p = path_join(c->dir, c->shard_names[i]);
        if (!p || st_open(&c->shards[i], p, err, errlen) != 0) {
            if (!p)
                st_fail(err, errlen, "%s: out of memory", path);
            free(p);
            ckpt_close(c);
            return -1;
        }
        free(p);
    }
    /* The index must agree with the shards, and a name may live in one shard only. */
    if (c->index) {
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(c->index, "weight_map");
        const cJSON *e;
        cJSON_ArrayForEach(e, wm) {
            int found = 0;
            for (int i = 0; i < c->nshards; i++)
                if (strcmp(c->shard_names[i], e->valuestring) == 0 && st_find(&c->shards[i], e->string))
                    found = 1;
            if (!found) {
                st_fail(err, errlen, "%s: tensor '%s': listed in the index for shard %s but not in it", c->index_path,
                     e->string, e->valuestring);
                ckpt_close(c);
                return -1;
            }
        }
    }
    for (int i = 0; i < c->nshards; i++)
        for (int k = 0; k < c->shards[i].n; k++)
            for (int j = i + 1; j < c->nshards; j++)
                if (st_find(&c->shards[j], c->shards[i].tensors[k].name)) {
                    st_fail(err, errlen, "%s: tensor '%s': present in two shards (%s and %s)", path,
                         c->shards[i].tensors[k].name, c->shard_names[i], c->shard_names[j]);
                    ckpt_close(c);
                    return -1;
                }
    return 0;
}

void ckpt_close(ckpt *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nshards; i++) {
        if (c->shards)
            st_close(&c->shards[i]);
        free(c->shard_names[i]);
    }
    free(c->shards);
    free(c->shard_names);
    free(c->dir);
    free(c->index_path);
    cJSON_Delete(c->index);
    memset(c, 0, sizeof *c);
}

const st_tensor *ckpt_find(const ckpt *c, const char *name, int *shard)
{
    for (int i = 0; i < c->nshards; i++) {
        const st_tensor *t = st_find(&c->shards[i], name);
        if (t) {
            if (shard)
                *shard = i;
            return t;
        }
    }
    return NULL;
}

int64_t ckpt_tensor_count(const ckpt *c)
{
    int64_t n = 0;
    for (int i = 0; i < c->nshards; i++)
        n += c->shards[i].n;
    return n;
}

const char *fmt_name(int fmt) { return fmt == FMT_COMPRESSED_TENSORS ? "compressed-tensors" : "modelopt"; }

int is_float_dtype(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16; }

int tensor_to_float(const st_tensor *t, float *dst)
{
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == ST_F32) {
            memcpy(&dst[i], p + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == ST_F16 ? nvfp4_f16_to_float(h) : nvfp4_bf16_to_float(h);
        }
    }
    return 0;
}

int read_scalar_f32(const ckpt *c, const st_tensor *t, float *out, char *err, size_t errlen)
{
    (void)c;
    if (t->dtype != ST_F32)
        return st_fail(err, errlen, "tensor '%s': dtype %s, expected F32", t->name, st_dtype_name(t->dtype));
    if (t->numel != 1 || t->ndim > 1)
        return st_fail(err, errlen, "tensor '%s': expected a scalar (shape [] or [1])", t->name);
    memcpy(out, t->data, 4);
    return 0;
}

static char *concat(const char *a, const char *b)
{
    size_t x = strlen(a), y = strlen(b);
    char *s = malloc(x + y + 1);
    if (s) {
        memcpy(s, a, x);
        memcpy(s + x, b, y + 1);
    }
    return s;
}

int nvfp4_layer_detect(const ckpt *c, const st_tensor *t, nvfp4_layer *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    if (t->dtype != ST_U8)
        return 0;
    int fmt;
    size_t n = strlen(t->name);
    const char *suffix;
    if (ends_with(t->name, "weight_packed")) {
        fmt = FMT_COMPRESSED_TENSORS;
        suffix = "weight_packed";
    } else if (ends_with(t->name, "weight")) {
        fmt = FMT_MODELOPT;
        suffix = "weight";
    } else {
        return 0;
    }
    size_t plen = n - strlen(suffix);
    char *prefix = malloc(plen + 1);
    if (!prefix)
        return st_fail(err, errlen, "out of memory");
    memcpy(prefix, t->name, plen);
    prefix[plen] = '\0';
    char *sname = concat(prefix, "weight_scale");
    char *gname = concat(prefix, fmt == FMT_MODELOPT ? "weight_scale_2" : "weight_global_scale");
    char *iname = concat(prefix, fmt == FMT_MODELOPT ? "input_scale" : "input_global_scale");
    int rc = 0;
    if (!sname || !gname || !iname) {
        rc = st_fail(err, errlen, "out of memory");
        goto done;
    }
    l->scales = ckpt_find(c, sname, NULL);
    if (!l->scales) {
        if (fmt == FMT_COMPRESSED_TENSORS)
            rc = st_fail(err, errlen, "tensor '%s': its block scales '%s' are missing", t->name, sname);
        goto done; /* a plain uint8 "weight" without scales is not NVFP4 */
    }
    l->format = fmt;
    l->codes = t;
    l->gscale = ckpt_find(c, gname, NULL);
    l->input_scale = ckpt_find(c, iname, NULL);
    if (!l->gscale) {
        rc = st_fail(err, errlen, "tensor '%s': its global scale '%s' is missing", t->name, gname);
        goto done;
    }
    if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0) {
        rc = st_fail(err, errlen, "tensor '%s': packed codes must be 2-D and non-empty, got %d-D", t->name, t->ndim);
        goto done;
    }
    if (l->scales->dtype != ST_F8_E4M3) {
        rc = st_fail(err, errlen, "tensor '%s': dtype %s, expected F8_E4M3", l->scales->name, st_dtype_name(l->scales->dtype));
        goto done;
    }
    if (l->scales->ndim != 2 || l->scales->shape[0] != t->shape[0] || l->scales->shape[1] * 8 != t->shape[1]) {
        rc = st_fail(err, errlen, "tensor '%s': shape mismatch: scales [%lld, %lld] do not fit codes [%lld, %lld] (expected [%lld, %lld])",
                  l->scales->name, l->scales->ndim > 0 ? (long long)l->scales->shape[0] : -1LL,
                  l->scales->ndim > 1 ? (long long)l->scales->shape[1] : -1LL, (long long)t->shape[0],
                  (long long)t->shape[1], (long long)t->shape[0], (long long)(t->shape[1] / 8));
        goto done;
    }
    float g;
    if (read_scalar_f32(c, l->gscale, &g, err, errlen) != 0) {
        rc = -1;
        goto done;
    }
    if (!isfinite(g) || !(g > 0.0f)) {
        rc = st_fail(err, errlen, "tensor '%s': global scale %g is not finite and positive", l->gscale->name, (double)g);
        goto done;
    }
    /* compressed-tensors stores the encode scale (a divisor); the library wants the decode one. */
    l->s_dec = fmt == FMT_COMPRESSED_TENSORS ? 1.0f / g : g;
    if (!isfinite(l->s_dec) || !(l->s_dec > 0.0f)) {
        rc = st_fail(err, errlen, "tensor '%s': global scale %g cannot be inverted", l->gscale->name, (double)g);
        goto done;
    }
    if (l->input_scale) {
        float s;
        if (read_scalar_f32(c, l->input_scale, &s, err, errlen) != 0) {
            rc = -1;
            goto done;
        }
        if (!isfinite(s) || !(s > 0.0f)) {
            rc = st_fail(err, errlen, "tensor '%s': input scale %g is not finite and positive", l->input_scale->name, (double)s);
            goto done;
        }
    }
    l->rows = t->shape[0];
    l->cols = t->shape[1] * 2;
    l->base = malloc(plen + 1);
    if (!l->base) {
        rc = st_fail(err, errlen, "out of memory");
        goto done;
    }
    memcpy(l->base, prefix, plen + 1);
    if (plen && l->base[plen - 1] == '.')
        l->base[plen - 1] = '\0';
    rc = 1;
done:
    free(prefix);
    free(sname);
    free(gname);
    free(iname);
    if (rc != 1) {
        free(l->base);
        memset(l, 0, sizeof *l);
    }
    return rc;
}

void nvfp4_layer_scales(const nvfp4_layer *l, scale_report *r)
{
    memset(r, 0, sizeof *r);
    r->min_nonzero = INFINITY;
    const unsigned char *s = l->scales->data;
    r->count = l->scales->numel;
    for (int64_t i = 0; i < r->count; i++) {
        unsigned char b = s[i];
        if (b >= 0x7F) {
            r->invalid++;
            continue;
        }
        if (b == 0) {
            r->zero++;
            continue;
        }
        float v = nvfp4_e4m3_to_float(b);
        if (v < r->min_nonzero)
            r->min_nonzero = v;
        if (v > r->max)
            r->max = v;
    }
    if (r->min_nonzero == INFINITY)
        r->min_nonzero = 0;
}
