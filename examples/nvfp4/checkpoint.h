/* checkpoint.h - checkpoints made of one or more safetensors shards, and the NVFP4 layouts
 * (ModelOpt and compressed-tensors) inside them. */
#ifndef NVFP4_CMD_CHECKPOINT_H
#define NVFP4_CMD_CHECKPOINT_H

#include "safetensors.h"

/* A checkpoint: a single .safetensors file, or shards listed by model.safetensors.index.json. */
typedef struct ckpt {
    char *dir;          /* directory holding the files (config.json is looked for here) */
    char *index_path;   /* NULL for a single file */
    cJSON *index;       /* parsed index (owned) or NULL */
    int nshards;
    char **shard_names; /* file names relative to dir */
    st_file *shards;
} ckpt;

/* Opens PATH: a .safetensors file, an index .json file, or a directory holding
 * model.safetensors.index.json or exactly one .safetensors file. Every shard is validated. */
int ckpt_open(ckpt *c, const char *path, char *err, size_t errlen);
void ckpt_close(ckpt *c);
/* Finds a tensor in any shard; *shard receives its shard index when not NULL. */
const st_tensor *ckpt_find(const ckpt *c, const char *name, int *shard);
int64_t ckpt_tensor_count(const ckpt *c);

/* NVFP4 layouts */
enum { FMT_MODELOPT = 0, FMT_COMPRESSED_TENSORS = 1 };
const char *fmt_name(int fmt);

/* One NVFP4-quantised linear layer found in a checkpoint. */
typedef struct nvfp4_layer {
    int format;
    char *base;                   /* module name, e.g. "model.layers.0.mlp.up_proj" */
    const st_tensor *codes;       /* weight / weight_packed */
    const st_tensor *scales;      /* weight_scale */
    const st_tensor *gscale;      /* weight_scale_2 / weight_global_scale */
    const st_tensor *input_scale; /* input_scale / input_global_scale, or NULL */
    int64_t rows, cols;
    float s_dec;                  /* decode global scale (inverted for compressed-tensors) */
} nvfp4_layer;

/* If TENSOR is the codes tensor of an NVFP4 layer (by name and its companions), fills L and
 * returns 1; returns 0 if it is not; -1 with a one-line error if the layer is malformed. */
int nvfp4_layer_detect(const ckpt *c, const st_tensor *tensor, nvfp4_layer *l, char *err, size_t errlen);
/* Checks scale bytes: counts of zero and invalid (bit 7 set or 0x7F) bytes, decoded min/max. */
typedef struct scale_report {
    int64_t zero, invalid, count;
    float min_nonzero, max;
} scale_report;
void nvfp4_layer_scales(const nvfp4_layer *l, scale_report *r);
/* Reads a scalar F32 tensor (shape [] or [1]). Returns -1 with an error otherwise. */
int read_scalar_f32(const ckpt *c, const st_tensor *t, float *out, char *err, size_t errlen);
/* Reads a float tensor (F32/F16/BF16) as float; dst holds numel floats. */
int tensor_to_float(const st_tensor *t, float *dst);
int is_float_dtype(st_dtype d);

/* Joins dir and name into a malloc'd path. */
char *path_join(const char *dir, const char *name);
/* The directory part of a path ("." when it has none), malloc'd. */
char *path_dirname(const char *path);
/* Reads a whole small text file (malloc'd, NUL-terminated), or NULL. */
char *read_text_file(const char *path, size_t max);

#endif
