/* fuzz_checkpoint.c - libFuzzer harness: the nvfp4 command's checkpoint reader
 * (examples/nvfp4/safetensors.c and checkpoint.c): the 8-byte header length, the JSON header,
 * the data buffer, model.safetensors.index.json, NVFP4 layer detection, scale reports, scalar and
 * float reads, and decoding a detected layer with the library.
 *
 * The input becomes files in a private directory on tmpfs: a .safetensors file (raw bytes, or a
 * fuzzed JSON header with a correct length prefix, or a well-formed header whose fields the
 * fuzzer perturbs) and, in some inputs, an index JSON naming shards.
 *
 * Invariants: ckpt_open() returns 0 or -1; on -1 the error is one non-empty line and the ckpt is
 * empty; on 0 every tensor's [begin, end) lies in its shard's data buffer, spans exactly
 * numel·dtype_size bytes, the ranges tile the buffer with no gap, overlap or trailing byte, names
 * are unique and findable; layer detection returns -1/0/1 with consistent shapes; decoding a
 * detected layer through nvfp4_dequantize() reads only the tensors' bytes (ASan) and returns OK
 * or NVFP4_ERR_INVALID_SCALE exactly when a scale byte is ≥ 0x7F. Leaks on any path are reported
 * by LeakSanitizer.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fuzz_common.h"

static char dir[64];

static void write_file(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        abort();
    if (n && write(fd, p, n) != (ssize_t)n)
        abort();
    close(fd);
}

static void remove_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static const char *dtypes[] = {"F32", "F16", "BF16", "U8", "F8_E4M3", "I64", "BOOL", "F64", "X"};

/* A header naming an NVFP4 layer (codes, scales, global and input scale) and a float tensor,
 * with the fuzzer choosing the numbers that are most likely to be wrong. */
static size_t make_structured(fz_in *in, uint8_t *buf, size_t cap)
{
    int rows = 1 + fz_u8(in) % 4, sc = 1 + fz_u8(in) % 3; /* scale columns: cols = 16·sc */
    int fmt = fz_u8(in) & 1;
    const char *w = fmt ? "l.weight_packed" : "l.weight";
    const char *g = fmt ? "l.weight_global_scale" : "l.weight_scale_2";
    const char *is = fmt ? "l.input_global_scale" : "l.input_scale";
    int64_t ncodes = (int64_t)rows * sc * 8, nsc = (int64_t)rows * sc, fl = 1 + fz_u8(in) % 5;
    uint8_t tweak = fz_u8(in);
    int64_t shape0 = rows, shape1 = sc * 8, sshape1 = sc;
    if ((tweak & 7) == 1)
        shape1 += 1;
    if ((tweak & 7) == 2)
        sshape1 += 1;
    const char *sdt = (tweak & 0x38) == 0x38 ? dtypes[fz_u8(in) % 9] : "F8_E4M3";
    const char *gdt = (tweak & 0xC0) == 0xC0 ? dtypes[fz_u8(in) % 9] : "F32";
    int64_t o0 = 0, o1 = ncodes, o2 = o1 + nsc, o3 = o2 + 4, o4 = o3 + 4, o5 = o4 + 4 * fl;
    if ((tweak & 7) == 3)
        o2 -= 1; /* overlap */
    if ((tweak & 7) == 4)
        o5 += 2; /* size mismatch */
    int n = snprintf((char *)buf + 8, cap - 8,
                     "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"%s\":{\"dtype\":\"U8\",\"shape\":[%lld,%lld],\"data_offsets\":[%lld,%lld]},"
                     "\"l.weight_scale\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%lld,%lld]},"
                     "\"%s\":{\"dtype\":\"%s\",\"shape\":[],\"data_offsets\":[%lld,%lld]},"
                     "\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%lld,%lld]},"
                     "\"f\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%lld,%lld]}}",
                     w, (long long)shape0, (long long)shape1, (long long)o0, (long long)o1, sdt, (long long)rows,
                     (long long)sshape1, (long long)o1, (long long)o2, g, gdt, (long long)o2, (long long)o3, is,
                     (long long)o3, (long long)o4, (tweak & 0x20) ? "F16" : "F32",
                     (long long)((tweak & 0x20) ? 2 * fl : fl), (long long)o4, (long long)o5);
    if (n < 0 || (size_t)n + 8 >= cap)
        return 0;
    uint64_t hl = (uint64_t)n;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hl >> (8 * i));
    size_t pos = 8 + (size_t)n;
    size_t data = (size_t)(o5 > o4 + 4 * fl ? o5 : o4 + 4 * fl);
    if ((tweak & 7) == 5)
        data += 3; /* trailing bytes */
    if ((tweak & 7) == 6 && data > 0)
        data -= 1; /* truncated */
    for (size_t i = 0; i < data && pos < cap; i++) {
        uint8_t b = fz_u8(in);
        /* global/input scales default to 1.0f so that layers get detected */
        if (i >= (size_t)o2 && i < (size_t)o4 && !(tweak & 0x10))
            b = (uint8_t)(0x3F800000u >> (8 * ((i - (size_t)o2) % 4)));
        buf[pos++] = b;
    }
    return pos;
}

static void check_file(const st_file *f)
{
    FZ_CHECK(f->n >= 0 && f->data_size + 8 <= f->map_size, "sizes");
    uint8_t *cover = f->data_size ? fz_malloc((size_t)f->data_size) : NULL;
    if (cover)
        memset(cover, 0, (size_t)f->data_size);
    for (int i = 0; i < f->n; i++) {
        const st_tensor *t = &f->tensors[i];
        FZ_CHECK(t->name && t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "tensor %d", i);
        int64_t numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            FZ_CHECK(t->shape[k] >= 0, "shape");
            numel *= t->shape[k];
        }
        FZ_CHECK(numel == t->numel, "'%s': numel %lld, shape product %lld", t->name, (long long)t->numel,
                 (long long)numel);
        FZ_CHECK(t->begin <= t->end && t->end <= f->data_size, "'%s': range", t->name);
        FZ_CHECK(t->end - t->begin == (uint64_t)t->numel * st_dtype_size(t->dtype), "'%s': byte count", t->name);
        FZ_CHECK(t->data == f->data + t->begin, "'%s': data pointer", t->name);
        for (uint64_t b = t->begin; b < t->end; b++) {
            FZ_CHECK(!cover[b], "'%s': byte %llu covered twice", t->name, (unsigned long long)b);
            cover[b] = 1;
        }
        FZ_CHECK(st_find(f, t->name) == t, "'%s': st_find", t->name);
    }
    for (uint64_t b = 0; b < f->data_size; b++)
        FZ_CHECK(cover[b], "data byte %llu belongs to no tensor", (unsigned long long)b);
    free(cover);
}

static nvfp4_context *ctx;

static void check_layers(const ckpt *c)
{
    for (int s = 0; s < c->nshards; s++)
        for (int i = 0; i < c->shards[s].n; i++) {
            const st_tensor *t = &c->shards[s].tensors[i];
            int sh = -1;
            FZ_CHECK(ckpt_find(c, t->name, &sh) == t && sh == s, "ckpt_find '%s'", t->name);
            if (is_float_dtype(t->dtype) && t->numel <= 4096) {
                float *v = fz_malloc((size_t)t->numel * sizeof(float) + 1);
                tensor_to_float(t, v);
                free(v);
            }
            if (t->dtype == ST_F32 && t->numel == 1) {
                float g;
                char err[ST_ERR_LEN];
                int rc = read_scalar_f32(c, t, &g, err, sizeof err);
                FZ_CHECK(rc == (t->ndim <= 1 ? 0 : -1), "read_scalar_f32 '%s' = %d", t->name, rc);
            }
            nvfp4_layer l;
            char err[ST_ERR_LEN] = "";
            int rc = nvfp4_layer_detect(c, t, &l, err, sizeof err);
            FZ_CHECK(rc >= -1 && rc <= 1, "layer_detect = %d", rc);
            if (rc == -1)
                FZ_CHECK(err[0] && !strchr(err, '\n'), "layer error '%s'", err);
            if (rc != 1)
                continue;
            FZ_CHECK(l.codes == t && l.scales && l.gscale && l.base, "layer fields");
            FZ_CHECK(l.rows == t->shape[0] && l.cols == 2 * t->shape[1] && l.cols % 16 == 0, "layer shape");
            FZ_CHECK((uint64_t)(l.rows * l.cols / 2) == t->end - t->begin, "codes bytes");
            FZ_CHECK((uint64_t)(l.rows * (l.cols / 16)) == l.scales->end - l.scales->begin, "scales bytes");
            FZ_CHECK(isfinite(l.s_dec) && l.s_dec > 0.0f, "s_dec");
            scale_report rep;
            nvfp4_layer_scales(&l, &rep);
            FZ_CHECK(rep.count == l.scales->numel && rep.zero + rep.invalid <= rep.count, "scale report");
            if (l.rows * l.cols <= 1 << 16) {
                float *x = fz_malloc((size_t)(l.rows * l.cols) * sizeof(float));
                nvfp4_status st = nvfp4_dequantize(ctx, l.codes->data, l.scales->data, l.s_dec, l.rows, l.cols,
                                                   NVFP4_DTYPE_F32, x, l.cols);
                FZ_CHECK(st == (rep.invalid ? NVFP4_ERR_INVALID_SCALE : NVFP4_OK), "dequantize layer = %d (invalid %lld)",
                         st, (long long)rep.invalid);
                free(x);
            }
            free(l.base);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/dev/shm/nvfp4-fuzz-XXXXXX");
        if (!mkdtemp(dir)) {
            snprintf(dir, sizeof dir, "/tmp/nvfp4-fuzz-XXXXXX");
            if (!mkdtemp(dir))
                abort();
        }
        if (nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK)
            abort();
    }
    fz_in in = {data, size, 0};
    uint8_t mode = fz_u8(&in);
    static uint8_t buf[1 << 16];
    size_t n = 0;
    switch (mode % 3) {
    case 0: /* raw bytes: a 16-bit length, then the file */
        n = fz_u16(&in);
        n = n < fz_left(&in) ? n : fz_left(&in);
        memcpy(buf, data + in.pos, n);
        in.pos += n;
        break;
    case 1: { /* a fuzzed header with a correct length prefix, then data */
        size_t hl = fz_u16(&in) % 4096;
        if (hl > fz_left(&in))
            hl = fz_left(&in);
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, data + in.pos, hl);
        in.pos += hl;
        n = 8 + hl;
        size_t dl = fz_left(&in) < sizeof buf - n ? fz_left(&in) : sizeof buf - n;
        memcpy(buf + n, data + in.pos, dl);
        in.pos += dl;
        n += dl;
        break;
    }
    default:
        n = make_structured(&in, buf, sizeof buf);
        break;
    }
    write_file("model.safetensors", buf, n);

    const char *target = "model.safetensors";
    if (mode & 0x10u) { /* an index naming shards: the rest of the input is its text */
        size_t tl = fz_left(&in);
        write_file("model.safetensors.index.json", data + in.pos, tl);
        target = (mode & 0x20u) ? "" : "model.safetensors.index.json"; /* "": the directory */
    } else {
        remove_file("model.safetensors.index.json");
    }
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, target);

    ckpt c;
    char err[ST_ERR_LEN] = "";
    int rc = ckpt_open(&c, path, err, sizeof err);
    FZ_CHECK(rc == 0 || rc == -1, "ckpt_open = %d", rc);
    if (rc != 0) {
        FZ_CHECK(err[0] && !strchr(err, '\n') && !strchr(err, '\r'), "error message '%s'", err);
        FZ_CHECK(c.nshards == 0 && c.shards == NULL && c.index == NULL, "ckpt not empty after an error");
        return 0;
    }
    FZ_CHECK(c.nshards >= 1, "no shards");
    int64_t total = 0;
    for (int s = 0; s < c.nshards; s++) {
        check_file(&c.shards[s]);
        total += c.shards[s].n;
    }
    FZ_CHECK(ckpt_tensor_count(&c) == total, "tensor count");
    check_layers(&c);
    ckpt_close(&c);
    return 0;
}
