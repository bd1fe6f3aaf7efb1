/* cmd.h - shared pieces of the nvfp4 command's subcommands. */
#ifndef NVFP4_CMD_H
#define NVFP4_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "checkpoint.h"

/* Scale methods the command offers (the library's quantizer methods plus the rounder's). */
enum {
    M_MAX, M_4OVER6, M_SOAR, M_SOAR_CJSO, M_SOAR_DSS, M_SWEEP, M_FAAR, M_GPTQ, M_COUNT
};
const char *method_name(int m);
int method_parse(const char *s);      /* -1 if unknown */
int method_available(int m);          /* faar/gptq need the rounder in this build */

typedef struct layer_result {
    char *name;
    int64_t rows, cols;
    double sse, sum_sq;               /* Σ(x̂−x)², Σx² (rel.err = sse/sum_sq) */
    double seconds;
} layer_result;

typedef struct q_opts {
    const char *in, *out;
    int method;
    const char **exclude;
    int nexclude;
    int default_excludes;             /* 1: also exclude *embed* and *lm_head* */
    int threads;                      /* 0 = one per CPU */
    int backend;                      /* NVFP4_BACKEND_CPU / _CUDA */
    int format;                       /* FMT_MODELOPT / FMT_COMPRESSED_TENSORS */
    int recipe;                       /* NVFP4_RECIPE_EXACT / _MODELOPT (max only) */
    double input_scale;               /* > 0: write input_scale for every layer */
    int rounder_iters;                /* 0 = the rounder's default */
    const char *calib;                /* faar/gptq: safetensors with <module>.gram or <module>.inputs */
    int progress;                     /* -1 auto (tty), 0 plain lines, 1 bar */
    int quiet;                        /* no per-tensor lines and no table */
    /* results */
    layer_result *res;
    int nres;
    int64_t kept;
    int identity_layers;              /* faar/gptq layers without calibration data */
    double seconds;
    uint64_t bytes_in, bytes_out;
} q_opts;

int cmd_quantize_run(q_opts *o);      /* 0 on success; prints one-line errors */
void q_opts_free_results(q_opts *o);

typedef struct cmp_summary {
    int n_quant, n_plain, n_missing;
    double sse_quant, sum_sq_quant;   /* totals over NVFP4 tensors */
    double mean_rel, worst_rel;       /* over NVFP4 tensors */
} cmp_summary;
int cmd_compare_run(const char *a, const char *b, int print, cmp_summary *sum);
int cmd_inspect_run(const char *path, int print);

int cmd_quantize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Messages: "nvfp4: error: ..." on stderr, always one line. */
void cmd_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
double now_seconds(void);
/* Dequantises an NVFP4 layer to float (rows*cols). Returns 0, or -1 with an error. */
int layer_dequantize(const nvfp4_layer *l, float *dst, char *err, size_t errlen);

#endif
