/* safetensors.h - reading and writing safetensors files for the nvfp4 command.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
 * N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {"k": "v"}}, then the data buffer; offsets are relative to the buffer.
 *
 * The reader validates every header field before any tensor is used: dtype names, integral
 * non-negative shapes, offsets inside the buffer, byte counts that match the shape, no overlap,
 * no gap and no trailing bytes (the same rules as the reference implementation), unique names.
 * Every error is one line that names the file and, where there is one, the tensor.
 */
#ifndef NVFP4_CMD_SAFETENSORS_H
#define NVFP4_CMD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define ST_MAX_DIMS 8
#define ST_ERR_LEN 512

typedef enum st_dtype {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E4M3, ST_F8_E5M2, ST_F8_E8M0, ST_U16, ST_I16, ST_F16, ST_BF16,
    ST_U32, ST_I32, ST_F32, ST_U64, ST_I64, ST_F64, ST_DTYPE_COUNT
} st_dtype;

/* Formats a one-line message into err (newlines in names become spaces) and returns -1. */
int st_fail(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* strdup for C11 (NULL when out of memory). */
char *st_strdup(const char *s);

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
/* Returns 0 and sets *out for a known name, -1 otherwise. */
int st_dtype_parse(const char *name, st_dtype *out);

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;        /* relative to the data buffer */
    const unsigned char *data;  /* into the mapping */
} st_tensor;

typedef struct st_file {
    char *path;
    void *map;
    size_t map_size;
    const unsigned char *data;
    uint64_t data_size;
    st_tensor *tensors;         /* in header order */
    int n;
    cJSON *metadata;            /* "__metadata__" (detached copy) or NULL */
} st_file;

/* Opens, maps and validates a file. On error fills err (one line) and returns -1 with *f empty. */
int st_open(st_file *f, const char *path, char *err, size_t errlen);
/* Parses a header buffer (exposed for tests and for the writer's self-check). */
int st_parse_header(st_file *f, const char *json, size_t len, uint64_t data_size, char *err, size_t errlen);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct st_out_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t nbytes;
} st_out_tensor;

/* Declare every tensor with st_writer_add(), then st_writer_begin() writes the header, then
 * st_writer_write() the data of each tensor in declaration order (in any number of pieces),
 * then st_writer_commit() renames the temporary file onto the final path. st_writer_abort()
 * (also safe after commit or on an unopened writer) removes the temporary file. */
typedef struct st_writer {
    char *final_path;
    char *tmp_path;
    FILE *fp;
    st_out_tensor *t;
    int n, cap;
    int cur;                    /* tensor being written */
    uint64_t cur_written;
    int begun, committed;
    cJSON *metadata;            /* owned; may be NULL */
} st_writer;

int st_writer_init(st_writer *w, const char *final_path, char *err, size_t errlen);
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  char *err, size_t errlen);
void st_writer_set_metadata(st_writer *w, const char *key, const char *value);
int st_writer_begin(st_writer *w, char *err, size_t errlen);
int st_writer_write(st_writer *w, const void *data, size_t len, char *err, size_t errlen);
/* Flushes and syncs; rename happens in st_writer_rename() so that several files of one output
 * can be renamed together at the very end. */
int st_writer_finish(st_writer *w, char *err, size_t errlen);
int st_writer_rename(st_writer *w, char *err, size_t errlen);
void st_writer_abort(st_writer *w);
void st_writer_free(st_writer *w);
uint64_t st_writer_total(const st_writer *w);

/* Creates a temporary file next to final_path ("<final>.tmp.XXXXXX"), mode 0644 & ~umask.
 * Returns the open stream and a malloc'd name in *tmp_out. The temporary name is registered so
 * that SIGINT/SIGTERM remove it. */
FILE *st_create_temp(const char *final_path, char **tmp_out, char *err, size_t errlen);
/* Writes a whole small file (JSON) through a temporary name; the rename is done by the caller
 * with st_commit_temp() (so that an output is published all at once). */
int st_write_temp_text(const char *final_path, const char *text, char **tmp_out, char *err, size_t errlen);
int st_commit_temp(const char *tmp, const char *final_path, char *err, size_t errlen);
void st_forget_temp(const char *tmp);
/* Registers a path (file or directory) for removal on SIGINT/SIGTERM/SIGHUP. */
void st_remember_temp(char *p);
void st_install_signal_cleanup(void);

#endif
