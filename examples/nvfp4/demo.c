/* demo.c - `nvfp4 demo` (and `nvfp4` without arguments): a deterministic synthetic checkpoint
 * with heavy-tailed weights, quantised with every method this build has, checked with
 * `inspect` and measured with `compare`. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "cmd.h"
#include "nvfp4/nvfp4.h"

#define ERRLEN ST_ERR_LEN

/* splitmix64: small, seedable, the same on every platform. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next_u64(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(rng *r) { return ((double)(next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double normal(rng *r)
{
    /* Box-Muller, one value per call (simple and deterministic). */
    double u = uniform(r), v = uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Student-t with 3 degrees of freedom: heavy tails like trained LLM weights. */
static double student_t3(rng *r)
{
    double z = normal(r);
    double c = 0;
    for (int i = 0; i < 3; i++) {
        double g = normal(r);
        c += g * g;
    }
    return z / sqrt(c / 3.0);
}

typedef struct demo_tensor {
    char name[96];
    st_dtype dtype;
    int ndim;
    int64_t shape[2];
} demo_tensor;

static int write_synthetic(const char *path, uint64_t seed, int hidden, int inter, int layers, char *err)
{
    demo_tensor ts[64];
    int n = 0;
    snprintf(ts[n].name, sizeof ts[n].name, "model.embed_tokens.weight");
    ts[n].dtype = ST_BF16, ts[n].ndim = 2, ts[n].shape[0] = 512, ts[n].shape[1] = hidden, n++;
    for (int l = 0; l < layers; l++) {
        const struct {
            const char *nm;
            int rows, cols;
        } lin[] = {{"self_attn.q_proj", hidden, hidden}, {"self_attn.k_proj", hidden / 4, hidden},
                   {"self_attn.v_proj", hidden / 4, hidden}, {"self_attn.o_proj", hidden, hidden},
                   {"mlp.gate_proj", inter, hidden}, {"mlp.up_proj", inter, hidden}, {"mlp.down_proj", hidden, inter}};
        snprintf(ts[n].name, sizeof ts[n].name, "model.layers.%d.input_layernorm.weight", l);
        ts[n].dtype = ST_F32, ts[n].ndim = 1, ts[n].shape[0] = hidden, n++;
        for (size_t k = 0; k < sizeof lin / sizeof *lin; k++) {
            snprintf(ts[n].name, sizeof ts[n].name, "model.layers.%d.%s.weight", l, lin[k].nm);
            ts[n].dtype = ST_BF16, ts[n].ndim = 2, ts[n].shape[0] = lin[k].rows, ts[n].shape[1] = lin[k].cols, n++;
        }
        snprintf(ts[n].name, sizeof ts[n].name, "model.layers.%d.post_attention_layernorm.weight", l);
        ts[n].dtype = ST_F32, ts[n].ndim = 1, ts[n].shape[0] = hidden, n++;
    }
    snprintf(ts[n].name, sizeof ts[n].name, "model.norm.weight");
    ts[n].dtype = ST_F32, ts[n].ndim = 1, ts[n].shape[0] = hidden, n++;
    snprintf(ts[n].name, sizeof ts[n].name, "lm_head.weight");
    ts[n].dtype = ST_BF16, ts[n].ndim = 2, ts[n].shape[0] = 512, ts[n].shape[1] = hidden, n++;

    st_writer w;
    if (st_writer_init(&w, path, err, ERRLEN) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (st_writer_add(&w, ts[i].name, ts[i].dtype, ts[i].ndim, ts[i].shape, err, ERRLEN) != 0) {
            st_writer_free(&w);
            return -1;
        }
    st_writer_set_metadata(&w, "format", "pt");
    if (st_writer_begin(&w, err, ERRLEN) != 0) {
        st_writer_free(&w);
        return -1;
    }
    rng r = {seed};
    for (int i = 0; i < n; i++) {
        int64_t rows = ts[i].shape[0], cols = ts[i].ndim == 2 ? ts[i].shape[1] : 1;
        if (ts[i].ndim == 1) {
            float *v = malloc((size_t)rows * sizeof *v);
            if (!v)
                goto oom;
            for (int64_t j = 0; j < rows; j++)
                v[j] = (float)(1.0 + 0.1 * normal(&r));
            int bad = st_writer_write(&w, v, (size_t)rows * 4, err, ERRLEN);
            free(v);
            if (bad)
                goto fail;
            continue;
        }
        /* Per-row scales vary (log-normal); about 1% of input columns are outlier channels. */
        double *colscale = malloc((size_t)cols * sizeof *colscale);
        uint16_t *row = malloc((size_t)cols * sizeof *row);
        if (!colscale || !row) {
            free(colscale);
            free(row);
            goto oom;
        }
        for (int64_t c = 0; c < cols; c++)
            colscale[c] = uniform(&r) < 0.01 ? 8.0 : 1.0;
        int bad = 0;
        for (int64_t q = 0; q < rows && !bad; q++) {
            double rs = 0.02 * exp(0.3 * normal(&r));
            for (int64_t c = 0; c < cols; c++)
                row[c] = nvfp4_float_to_bf16((float)(rs * colscale[c] * student_t3(&r)));
            bad = st_writer_write(&w, row, (size_t)cols * 2, err, ERRLEN);
        }
        free(colscale);
        free(row);
        if (bad)
            goto fail;
    }
    if (st_writer_finish(&w, err, ERRLEN) != 0 || st_writer_rename(&w, err, ERRLEN) != 0)
        goto fail;
    st_writer_free(&w);
    return 0;
oom:
    snprintf(err, ERRLEN, "%s: out of memory", path);
fail:
    st_writer_free(&w);
    return -1;
}

/* Synthetic calibration statistics: for each linear layer the Gram matrix H = E[x xᵀ] of its
 * inputs, modelled as 8 latent factors plus noise with uneven (partly outlier) channel scales:
 * H_ij = c_i c_j (Σ_k λ_k M_ki M_kj + σ² δ_ij). Layers that read the same activations share H. */
static float *make_gram(rng *r, int d)
{
    enum { K = 8 };
    double *M = malloc((size_t)K * (size_t)d * sizeof *M), *c = malloc((size_t)d * sizeof *c);
    float *H = malloc((size_t)d * (size_t)d * sizeof *H);
    if (!M || !c || !H) {
        free(M);
        free(c);
        free(H);
        return NULL;
    }
    double lam[K];
    for (int k = 0; k < K; k++)
        lam[k] = 4.0 / (1.0 + k);
    for (int i = 0; i < K * d; i++)
        M[i] = normal(r);
    for (int i = 0; i < d; i++)
        c[i] = exp(0.5 * normal(r)) * (uniform(r) < 0.02 ? 10.0 : 1.0);
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double v = i == j ? 0.3 : 0.0;
            for (int k = 0; k < K; k++)
                v += lam[k] * M[k * d + i] * M[k * d + j];
            H[(size_t)i * d + j] = H[(size_t)j * d + i] = (float)(c[i] * c[j] * v);
        }
    free(M);
    free(c);
    return H;
}

static int write_calibration(const char *path, uint64_t seed, int hidden, int inter, int layers, char *err)
{
    static const char *mods[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    static const int group[7] = {0, 0, 0, 1, 2, 2, 3}; /* which activations each reads */
    st_writer w;
    if (st_writer_init(&w, path, err, ERRLEN) != 0)
        return -1;
    for (int l = 0; l < layers; l++)
        for (int m = 0; m < 7; m++) {
            char name[128];
            int64_t d = group[m] == 3 ? inter : hidden, shape[2] = {d, d};
            snprintf(name, sizeof name, "model.layers.%d.%s.gram", l, mods[m]);
            if (st_writer_add(&w, name, ST_F32, 2, shape, err, ERRLEN) != 0)
                goto fail;
        }
    if (st_writer_begin(&w, err, ERRLEN) != 0)
        goto fail;
    rng r = {seed ^ 0x5DEECE66Dull};
    for (int l = 0; l < layers; l++) {
        float *H[4];
        for (int g = 0; g < 4; g++)
            H[g] = make_gram(&r, g == 3 ? inter : hidden);
        int bad = !H[0] || !H[1] || !H[2] || !H[3];
        for (int m = 0; m < 7 && !bad; m++) {
            size_t d = (size_t)(group[m] == 3 ? inter : hidden);
            bad = st_writer_write(&w, H[group[m]], d * d * sizeof(float), err, ERRLEN) != 0;
        }
        for (int g = 0; g < 4; g++)
            free(H[g]);
        if (bad) {
            if (!err[0])
                snprintf(err, ERRLEN, "%s: out of memory", path);
            goto fail;
        }
    }
    if (st_writer_finish(&w, err, ERRLEN) != 0 || st_writer_rename(&w, err, ERRLEN) != 0)
        goto fail;
    st_writer_free(&w);
    return 0;
fail:
    st_writer_free(&w);
    return -1;
}

/* Output error over all NVFP4 layers: Σ tr(D H Dᵀ) / Σ tr(W H Wᵀ), D = Ŵ − W, H from the
 * calibration file (what FAAR and GPTQ minimise). Returns -1 on error. */
static double output_error(const char *orig, const char *quant, const char *calib)
{
    char err[ERRLEN];
    ckpt a, b, c;
    if (ckpt_open(&a, orig, err, sizeof err) != 0)
        return -1;
    if (ckpt_open(&b, quant, err, sizeof err) != 0) {
        ckpt_close(&a);
        return -1;
    }
    if (ckpt_open(&c, calib, err, sizeof err) != 0) {
        ckpt_close(&a);
        ckpt_close(&b);
        return -1;
    }
    double num = 0, den = 0;
    int ok = 1;
    for (int i = 0; i < b.nshards && ok; i++)
        for (int k = 0; k < b.shards[i].n && ok; k++) {
            nvfp4_layer l;
            if (nvfp4_layer_detect(&b, &b.shards[i].tensors[k], &l, err, sizeof err) != 1)
                continue;
            char name[4200];
            snprintf(name, sizeof name, "%s.weight", l.base);
            const st_tensor *tw = ckpt_find(&a, name, NULL);
            snprintf(name, sizeof name, "%s.gram", l.base);
            const st_tensor *th = ckpt_find(&c, name, NULL);
            int64_t R = l.rows, C = l.cols;
            float *W = tw && th ? malloc((size_t)(R * C) * sizeof *W) : NULL;
            float *Q = W ? malloc((size_t)(R * C) * sizeof *Q) : NULL;
            float *H = Q ? malloc((size_t)(C * C) * sizeof *H) : NULL;
            if (!H || tw->numel != R * C || th->numel != C * C || layer_dequantize(&l, Q, err, sizeof err) != 0) {
                ok = 0;
            } else {
                tensor_to_float(tw, W);
                tensor_to_float(th, H);
                for (int64_t r = 0; r < R; r++) {
                    const float *w = W + r * C, *q = Q + r * C;
                    for (int pass = 0; pass < 2; pass++) {
                        /* pass 0: d = q - w (error), pass 1: d = w (reference) */
                        double acc = 0;
                        for (int64_t x = 0; x < C; x++) {
                            double s = 0;
                            const float *hr = H + x * C;
                            for (int64_t y = 0; y < C; y++)
                                s += (double)hr[y] * (pass ? (double)w[y] : (double)q[y] - (double)w[y]);
                            acc += s * (pass ? (double)w[x] : (double)q[x] - (double)w[x]);
                        }
                        if (pass)
                            den += acc;
                        else
                            num += acc;
                    }
                }
            }
            free(W);
            free(Q);
            free(H);
            free(l.base);
        }
    ckpt_close(&a);
    ckpt_close(&b);
    ckpt_close(&c);
    return ok && den > 0 ? num / den : -1;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = path_join(path, de->d_name);
        if (p)
            remove_tree(p);
        free(p);
    }
    closedir(d);
    rmdir(path);
}

int cmd_demo(int argc, char **argv)
{
    const char *keep = NULL;
    unsigned long long seed = 20260401ull;
    int threads = 0, iters = 100, small = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--keep") == 0 && v) {
            keep = v;
            i++;
        } else if (strcmp(argv[i], "--seed") == 0 && v) {
            seed = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(argv[i], "--threads") == 0 && v) {
            threads = atoi(v);
            i++;
        } else if (strcmp(argv[i], "--iterations") == 0 && v) {
            iters = atoi(v);
            i++;
        } else if (strcmp(argv[i], "--small") == 0) {
            small = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: nvfp4 demo [--seed N] [--threads N] [--iterations N] [--small] [--keep DIR]\n"
                   "  writes a synthetic checkpoint (heavy-tailed BF16 weights, seeded), quantises it with\n"
                   "  every method this build has, checks each output with inspect and prints the error\n"
                   "  of each against the original. --keep DIR keeps the files (DIR must not exist);\n"
                   "  faar and gptq get a synthetic calibration file (--calibration); FAAR runs\n"
                   "  --iterations iterations (default 100). --small halves the model.\n");
            return 0;
        } else {
            cmd_error("demo: unknown argument '%s' (see nvfp4 demo --help)", argv[i]);
            return 2;
        }
    }
    char err[ERRLEN];
    char dir[4096];
    if (keep) {
        if (mkdir(keep, 0777) != 0) {
            cmd_error("%s: cannot create: %s", keep, strerror(errno));
            return 1;
        }
        snprintf(dir, sizeof dir, "%s", keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/nvfp4-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            cmd_error("%s: cannot create a temporary directory: %s", dir, strerror(errno));
            return 1;
        }
    }
    st_install_signal_cleanup();
    int hidden = small ? 128 : 256, inter = small ? 256 : 512, layers = 2;
    char *src_dir = path_join(dir, "original");
    char *src = src_dir ? path_join(src_dir, "model.safetensors") : NULL;
    char *calib = NULL;
    int rc = 1;
    if (!src || mkdir(src_dir, 0777) != 0) {
        cmd_error("%s: cannot create", src_dir ? src_dir : dir);
        goto done;
    }
    calib = path_join(dir, "calibration.safetensors");
    if (!calib || write_synthetic(src, seed, hidden, inter, layers, err) != 0 ||
        write_calibration(calib, seed, hidden, inter, layers, err) != 0) {
        cmd_error("%s", calib ? err : "out of memory");
        goto done;
    }
    {
        char *cfgp = path_join(src_dir, "config.json");
        FILE *f = cfgp ? fopen(cfgp, "w") : NULL;
        if (f) {
            fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d, "
                       "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": 4, "
                       "\"num_key_value_heads\": 1, \"vocab_size\": 512, \"torch_dtype\": \"bfloat16\"}\n",
                    hidden, inter, layers);
            fclose(f);
        }
        free(cfgp);
    }
    printf("libnvfp4 %s demo: synthetic checkpoint, %d layers (hidden %d, intermediate %d), BF16 weights drawn\n"
           "from a Student-t(3) with log-normal row scales and 1%% outlier input columns (seed %llu),\n"
           "embed_tokens and lm_head kept in BF16.\n\n",
           nvfp4_version_string(), layers, hidden, inter, (unsigned long long)seed);
    printf("%-10s %12s %12s %12s %9s %13s %9s  %s\n", "method", "mean rel.err", "worst", "whole model", "SQNR dB",
           "output error", "time s", "inspect");
    int failures = 0;
    double max_rel = -1;
    for (int m = 0; m < M_COUNT; m++) {
        if (!method_available(m)) {
            printf("%-10s not available in this build\n", method_name(m));
            continue;
        }
        char sub[4200], out[4300];
        snprintf(sub, sizeof sub, "%s/%s", dir, method_name(m));
        snprintf(out, sizeof out, "%s/model.safetensors", sub);
        if (mkdir(sub, 0777) != 0) {
            cmd_error("%s: cannot create", sub);
            failures++;
            continue;
        }
        q_opts o;
        memset(&o, 0, sizeof o);
        o.in = src;
        o.out = out;
        o.method = m;
        o.default_excludes = 1;
        o.threads = threads;
        o.backend = NVFP4_BACKEND_CPU;
        o.format = FMT_MODELOPT;
        o.recipe = NVFP4_RECIPE_EXACT;
        o.rounder_iters = iters;
        if (m == M_FAAR || m == M_GPTQ)
            o.calib = calib;
        o.progress = 0;
        o.quiet = 1;
        if (cmd_quantize_run(&o) != 0) {
            failures++;
            q_opts_free_results(&o);
            continue;
        }
        int ins = cmd_inspect_run(out, 0);
        cmp_summary cs;
        if (cmd_compare_run(src, out, 0, &cs) != 0) {
            failures++;
            q_opts_free_results(&o);
            continue;
        }
        double all = cs.sum_sq_quant > 0 ? cs.sse_quant / cs.sum_sq_quant : 0;
        if (m == M_MAX)
            max_rel = all;
        double oe = output_error(src, out, calib);
        printf("%-10s %12.4e %12.4e %12.4e %9.2f %13.4e %9.2f  %s\n", method_name(m), cs.mean_rel, cs.worst_rel, all,
               all > 0 ? -10.0 * log10(all) : INFINITY, oe, o.seconds, ins ? "FAILED" : "ok");
        if (oe < 0)
            failures++;
        if (ins)
            failures++;
        q_opts_free_results(&o);
    }
    if (max_rel >= 0)
        printf("\nLower is better; 'max' is the plain NVFP4 round-to-nearest baseline. The rel.err columns are the\n"
               "weight error ||W_hat - W||^2 / ||W||^2; 'output error' is what a layer's output loses,\n"
               "tr(D H D^T) / tr(W H W^T) with D = W_hat - W and H the synthetic calibration Gram matrix of the\n"
               "layer's inputs, which faar and gptq (--calibration) minimise instead of the weight error.\n");
    if (keep)
        printf("files kept in %s (original/ and one directory per method; try: nvfp4 inspect %s/max/model.safetensors)\n",
               dir, dir);
    rc = failures ? 1 : 0;
done:
    if (!keep)
        remove_tree(dir);
    free(src);
    free(src_dir);
    free(calib);
    return rc;
}
