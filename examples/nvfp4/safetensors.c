/* safetensors.c - validated safetensors reader and a streaming, crash-safe writer. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation refuses headers above 100 MB. */
#define ST_MAX_HEADER 100000000ull

static const struct {
    const char *name;
    size_t size;
} dtype_table[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1},       [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E8M0] = {"F8_E8M0", 1},
    [ST_U16] = {"U16", 2},         [ST_I16] = {"I16", 2},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},       [ST_U32] = {"U32", 4},   [ST_I32] = {"I32", 4},
    [ST_F32] = {"F32", 4},         [ST_U64] = {"U64", 8},   [ST_I64] = {"I64", 8},
    [ST_F64] = {"F64", 8},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_DTYPE_COUNT ? dtype_table[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return (unsigned)d < ST_DTYPE_COUNT ? dtype_table[d].size : 0; }

int st_dtype_parse(const char *name, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    }
    return -1;
}

int st_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* Keep messages on one line whatever a tensor name contains. */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return -1;
}

char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* A JSON number that is an exact integer in [0, 2^53]. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || floor(d) != d)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static void free_tensors(st_file *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n = 0;
    cJSON_Delete(f->metadata);
    f->metadata = NULL;
}

static int cmp_begin(const void *a, const void *b)
{
    const st_tensor *const *x = a, *const *y = b;
    if ((*x)->begin != (*y)->begin)
        return (*x)->begin < (*y)->begin ? -1 : 1;
    return (*x)->end < (*y)->end ? -1 : (*x)->end > (*y)->end;
}

static int cmp_name(const void *a, const void *b)
{
    const st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static const char *fname(const st_file *f) { return f->path ? f->path : "<header>"; }

int st_parse_header(st_file *f, const char *json, size_t len, uint64_t data_size, char *err, size_t errlen)
{
    f->data_size = data_size;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        return st_fail(err, errlen, "%s: header is not valid JSON (near byte %ld of %zu)", fname(f), off, len);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return st_fail(err, errlen, "%s: header is not a JSON object", fname(f));
    }
    int count = cJSON_GetArraySize(root);
    f->tensors = calloc(count > 0 ? (size_t)count : 1, sizeof *f->tensors);
    if (!f->tensors) {
        cJSON_Delete(root);
        return st_fail(err, errlen, "%s: out of memory reading the header", fname(f));
    }
    int rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *name = it->string ? it->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) {
                rc = st_fail(err, errlen, "%s: __metadata__ is not an object", fname(f));
                break;
            }
            const cJSON *m;
            cJSON_ArrayForEach(m, it) {
                if (!cJSON_IsString(m)) {
                    rc = st_fail(err, errlen, "%s: __metadata__ value '%s' is not a string", fname(f),
                              m->string ? m->string : "");
                    break;
                }
            }
            if (rc)
                break;
            if (f->metadata) {
                rc = st_fail(err, errlen, "%s: __metadata__ appears twice", fname(f));
                break;
            }
            f->metadata = cJSON_Duplicate(it, 1);
            continue;
        }
        if (!cJSON_IsObject(it)) {
            rc = st_fail(err, errlen, "%s: tensor '%s': header entry is not an object", fname(f), name);
            break;
        }
        st_tensor *t = &f->tensors[f->n];
        t->name = st_strdup(name);
        if (!t->name) {
            rc = st_fail(err, errlen, "%s: out of memory", fname(f));
            break;
        }
        f->n++;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || st_dtype_parse(dt->valuestring, &t->dtype) != 0) {
            rc = st_fail(err, errlen, "%s: tensor '%s': missing or unknown dtype%s%s%s", fname(f), name,
                      cJSON_IsString(dt) ? " '" : "", cJSON_IsString(dt) ? dt->valuestring : "",
                      cJSON_IsString(dt) ? "'" : "");
            break;
        }
        if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > ST_MAX_DIMS) {
            rc = st_fail(err, errlen, "%s: tensor '%s': shape is missing, not an array or has more than %d dims",
                      fname(f), name, ST_MAX_DIMS);
            break;
        }
        t->ndim = cJSON_GetArraySize(sh);
        uint64_t numel = 1;
        int k = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, sh) {
            uint64_t v;
            if (json_uint(d, &v) != 0 || v > (uint64_t)INT64_MAX) {
                rc = st_fail(err, errlen, "%s: tensor '%s': shape[%d] is not a non-negative integer", fname(f), name, k);
                break;
            }
            t->shape[k++] = (int64_t)v;
            if (v != 0 && numel > UINT64_MAX / v) {
                rc = st_fail(err, errlen, "%s: tensor '%s': shape overflows", fname(f), name);
                break;
            }
            numel *= v;
        }
        if (rc)
            break;
        if (numel > (uint64_t)INT64_MAX / 8) {
            rc = st_fail(err, errlen, "%s: tensor '%s': shape overflows", fname(f), name);
            break;
        }
        t->numel = (int64_t)numel;
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || json_uint(cJSON_GetArrayItem(of, 0), &t->begin) != 0 ||
            json_uint(cJSON_GetArrayItem(of, 1), &t->end) != 0) {
            rc = st_fail(err, errlen, "%s: tensor '%s': data_offsets is not a pair of non-negative integers", fname(f), name);
            break;
        }
        if (t->begin > t->end || t->end > data_size) {
            rc = st_fail(err, errlen,
                      "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data buffer is %llu bytes%s)",
                      fname(f), name, (unsigned long long)t->begin, (unsigned long long)t->end,
                      (unsigned long long)data_size, t->end > data_size ? "; file truncated?" : "");
            break;
        }
        uint64_t need = numel * st_dtype_size(t->dtype);
        if (t->end - t->begin != need) {
            rc = st_fail(err, errlen, "%s: tensor '%s': shape/size mismatch: %s with %llu elements needs %llu bytes, data_offsets span %llu",
                      fname(f), name, st_dtype_name(t->dtype), (unsigned long long)numel, (unsigned long long)need,
                      (unsigned long long)(t->end - t->begin));
            break;
        }
    }
    cJSON_Delete(root);
    if (rc) {
        free_tensors(f);
        return -1;
    }
    /* Overlap, gaps and trailing bytes, then duplicate names. */
    st_tensor **ord = malloc((size_t)(f->n > 0 ? f->n : 1) * sizeof *ord);
    if (!ord) {
        free_tensors(f);
        return st_fail(err, errlen, "%s: out of memory", fname(f));
    }
    for (int i = 0; i < f->n; i++)
        ord[i] = &f->tensors[i];
    qsort(ord, (size_t)f->n, sizeof *ord, cmp_begin);
    uint64_t pos = 0;
    for (int i = 0; i < f->n && !rc; i++) {
        if (ord[i]->begin < pos)
            rc = st_fail(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'", fname(f),
                      ord[i]->name, (unsigned long long)ord[i]->begin, (unsigned long long)ord[i]->end, ord[i - 1]->name);
        else if (ord[i]->begin > pos)
            rc = st_fail(err, errlen, "%s: tensor '%s': gap of %llu bytes before its data_offsets [%llu, %llu]", fname(f),
                      ord[i]->name, (unsigned long long)(ord[i]->begin - pos), (unsigned long long)ord[i]->begin,
                      (unsigned long long)ord[i]->end);
        pos = ord[i]->end;
    }
    if (!rc && pos != data_size)
        rc = st_fail(err, errlen, "%s: %s%s%s: %llu bytes after the last tensor's data (data buffer is %llu bytes)", fname(f),
                  f->n ? "tensor '" : "no tensors", f->n ? ord[f->n - 1]->name : "", f->n ? "'" : "",
                  (unsigned long long)(data_size - pos), (unsigned long long)data_size);
    if (!rc) {
        qsort(ord, (size_t)f->n, sizeof *ord, cmp_name);
        for (int i = 1; i < f->n && !rc; i++)
            if (strcmp(ord[i]->name, ord[i - 1]->name) == 0)
                rc = st_fail(err, errlen, "%s: tensor '%s': name appears twice in the header", fname(f), ord[i]->name);
    }
    free(ord);
    if (rc) {
        free_tensors(f);
        return -1;
    }
    return 0;
}

int st_open(st_file *f, const char *path, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) != 0 || !S_ISREG(stt.st_mode)) {
        close(fd);
        return st_fail(err, errlen, "%s: not a regular file", path);
    }
    if (stt.st_size < 8) {
        close(fd);
        return st_fail(err, errlen, "%s: truncated: %lld bytes, shorter than the 8-byte header length", path,
                    (long long)stt.st_size);
    }
    size_t size = (size_t)stt.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return st_fail(err, errlen, "%s: cannot map: %s", path, strerror(errno));
    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > ST_MAX_HEADER || hlen > size - 8) {
        munmap(map, size);
        return st_fail(err, errlen, "%s: header length %llu exceeds the file (%zu bytes) or the 100 MB limit; truncated or not safetensors",
                    path, (unsigned long long)hlen, size);
    }
    if (hlen < 2 || p[8] != '{') {
        munmap(map, size);
        return st_fail(err, errlen, "%s: header does not start with '{'; not a safetensors file", path);
    }
    f->path = st_strdup(path);
    if (!f->path) {
        munmap(map, size);
        return st_fail(err, errlen, "%s: out of memory", path);
    }
    if (st_parse_header(f, (const char *)p + 8, (size_t)hlen, size - 8 - hlen, err, errlen) != 0) {
        free(f->path);
        f->path = NULL;
        munmap(map, size);
        return -1;
    }
    f->map = map;
    f->map_size = size;
    f->data = p + 8 + hlen;
    for (int i = 0; i < f->n; i++)
        f->tensors[i].data = f->data + f->tensors[i].begin;
    return 0;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    free_tensors(f);
    if (f->map)
        munmap(f->map, f->map_size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

/* ---- temporary files and signal cleanup ------------------------------------------------------ */

#define MAX_TEMPS 1024
static char *volatile temps[MAX_TEMPS];
static volatile sig_atomic_t ntemps;

static void on_signal(int sig)
{
    /* unlink() and rmdir() are async-signal-safe; a directory is removed after its files. */
    for (int i = (int)ntemps - 1; i >= 0; i--) {
        char *p = temps[i];
        if (p && unlink(p) != 0)
            rmdir(p);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void st_install_signal_cleanup(void)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

void st_remember_temp(char *p)
{
    if (ntemps < MAX_TEMPS) {
        temps[ntemps] = p;
        ntemps = ntemps + 1;
    }
}

void st_forget_temp(const char *tmp)
{
    for (int i = 0; i < (int)ntemps; i++)
        if (temps[i] == tmp)
            temps[i] = NULL;
}

FILE *st_create_temp(const char *final_path, char **tmp_out, char *err, size_t errlen)
{
    size_t n = strlen(final_path) + 16;
    char *tmp = malloc(n);
    if (!tmp) {
        st_fail(err, errlen, "%s: out of memory", final_path);
        return NULL;
    }
    snprintf(tmp, n, "%s.tmp.XXXXXX", final_path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st_fail(err, errlen, "%s: cannot create a temporary file: %s", final_path, strerror(errno));
        free(tmp);
        return NULL;
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0) { /* mkstemp makes 0600; give the usual mode */
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        st_fail(err, errlen, "%s: fdopen: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return NULL;
    }
    st_remember_temp(tmp);
    *tmp_out = tmp;
    return fp;
}

int st_write_temp_text(const char *final_path, const char *text, char **tmp_out, char *err, size_t errlen)
{
    char *tmp = NULL;
    FILE *fp = st_create_temp(final_path, &tmp, err, errlen);
    if (!fp)
        return -1;
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, fp) != len || fputc('\n', fp) == EOF;
    bad |= fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    bad |= fclose(fp) != 0;
    if (bad) {
        st_fail(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        st_forget_temp(tmp);
        free(tmp);
        return -1;
    }
    *tmp_out = tmp;
    return 0;
}

int st_commit_temp(const char *tmp, const char *final_path, char *err, size_t errlen)
{
    if (rename(tmp, final_path) != 0)
        return st_fail(err, errlen, "%s: cannot rename %s into place: %s", final_path, tmp, strerror(errno));
    st_forget_temp(tmp);
    return 0;
}

/* ---- writer ------------------------------------------------------------------------------- */

int st_writer_init(st_writer *w, const char *final_path, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->final_path = st_strdup(final_path);
    if (!w->final_path)
        return st_fail(err, errlen, "%s: out of memory", final_path);
    return 0;
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, char *err,
                  size_t errlen)
{
    if (w->begun || ndim < 0 || ndim > ST_MAX_DIMS)
        return st_fail(err, errlen, "%s: tensor '%s': internal error adding tensor", w->final_path, name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return st_fail(err, errlen, "%s: tensor '%s': output name would appear twice", w->final_path, name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        st_out_tensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t)
            return st_fail(err, errlen, "%s: out of memory", w->final_path);
        w->t = t;
        w->cap = cap;
    }
    st_out_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = st_strdup(name);
    if (!t->name)
        return st_fail(err, errlen, "%s: out of memory", w->final_path);
    t->dtype = dtype;
    t->ndim = ndim;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        numel *= (uint64_t)shape[i];
    }
    t->nbytes = numel * st_dtype_size(dtype);
    w->n++;
    return 0;
}

void st_writer_set_metadata(st_writer *w, const char *key, const char *value)
{
    if (!w->metadata)
        w->metadata = cJSON_CreateObject();
    if (!w->metadata)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(w->metadata, key);
    cJSON_AddStringToObject(w->metadata, key, value);
}

uint64_t st_writer_total(const st_writer *w)
{
    uint64_t s = 0;
    for (int i = 0; i < w->n; i++)
        s += w->t[i].nbytes;
    return s;
}

int st_writer_begin(st_writer *w, char *err, size_t errlen)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return st_fail(err, errlen, "%s: out of memory", w->final_path);
    if (w->metadata)
        cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->metadata, 1));
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(root, w->t[i].name, e);
        cJSON_AddStringToObject(e, "dtype", st_dtype_name(w->t[i].dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < w->t[i].ndim; k++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)w->t[i].shape[k]));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        off += w->t[i].nbytes;
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json)
        return st_fail(err, errlen, "%s: out of memory building the header", w->final_path);
    size_t len = strlen(json);
    size_t padded = (len + 7) & ~(size_t)7; /* keep the data buffer 8-byte aligned */

    /* Check what we are about to write with our own reader: the header must round-trip. */
    {
        st_file chk;
        memset(&chk, 0, sizeof chk);
        chk.path = w->final_path;
        if (st_parse_header(&chk, json, len, off, err, errlen) != 0) {
            chk.path = NULL;
            free(json);
            return -1;
        }
        chk.path = NULL;
        st_close(&chk);
    }
    w->fp = st_create_temp(w->final_path, &w->tmp_path, err, errlen);
    if (!w->fp) {
        free(json);
        return -1;
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int bad = fwrite(lenbuf, 1, 8, w->fp) != 8 || fwrite(json, 1, len, w->fp) != len;
    for (size_t i = len; i < padded && !bad; i++)
        bad = fputc(' ', w->fp) == EOF;
    free(json);
    if (bad)
        return st_fail(err, errlen, "%s: write failed: %s", w->tmp_path, strerror(errno));
    w->begun = 1;
    w->cur = 0;
    w->cur_written = 0;
    while (w->cur < w->n && w->t[w->cur].nbytes == 0)
        w->cur++;
    return 0;
}

int st_writer_write(st_writer *w, const void *data, size_t len, char *err, size_t errlen)
{
    if (!w->begun)
        return st_fail(err, errlen, "%s: internal error: write before header", w->final_path);
    if (w->cur >= w->n || w->cur_written + len > w->t[w->cur].nbytes)
        return st_fail(err, errlen, "%s: tensor '%s': internal error: more data than declared", w->final_path,
                    w->cur < w->n ? w->t[w->cur].name : "?");
    if (len && fwrite(data, 1, len, w->fp) != len)
        return st_fail(err, errlen, "%s: tensor '%s': write failed: %s", w->tmp_path, w->t[w->cur].name, strerror(errno));
    w->cur_written += len;
    while (w->cur < w->n && w->cur_written == w->t[w->cur].nbytes) {
        w->cur++;
        w->cur_written = 0;
    }
    return 0;
}

int st_writer_finish(st_writer *w, char *err, size_t errlen)
{
    if (!w->begun || w->cur != w->n)
        return st_fail(err, errlen, "%s: tensor '%s': internal error: data incomplete", w->final_path,
                    w->cur < w->n ? w->t[w->cur].name : "?");
    int bad = fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0;
    bad |= fclose(w->fp) != 0;
    w->fp = NULL;
    if (bad)
        return st_fail(err, errlen, "%s: write failed: %s", w->tmp_path, strerror(errno));
    return 0;
}

int st_writer_rename(st_writer *w, char *err, size_t errlen)
{
    if (st_commit_temp(w->tmp_path, w->final_path, err, errlen) != 0)
        return -1;
    w->committed = 1;
    return 0;
}

void st_writer_abort(st_writer *w)
{
    if (w->fp) {
        fclose(w->fp);
        w->fp = NULL;
    }
    if (w->tmp_path && !w->committed) {
        unlink(w->tmp_path);
        st_forget_temp(w->tmp_path);
    }
}

void st_writer_free(st_writer *w)
{
    st_writer_abort(w);
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    if (w->tmp_path)
        st_forget_temp(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    cJSON_Delete(w->metadata);
    memset(w, 0, sizeof *w);
}
