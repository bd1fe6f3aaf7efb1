/* main.c - the nvfp4 command: quantise, inspect and compare safetensors checkpoints. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "nvfp4/nvfp4.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nvfp4 [COMMAND] [ARGS]\n"
            "  demo                   (the default) quantise a synthetic checkpoint with every method\n"
            "  quantize IN OUT [...]  quantise every 2-D weight of a safetensors checkpoint to NVFP4\n"
            "                         (ModelOpt layout; --format compressed-tensors for llm-compressor's)\n"
            "  inspect FILE           list an NVFP4 checkpoint's tensors and check shapes, dtypes, scales\n"
            "  compare A B            per-tensor error of B (dequantised where NVFP4) against A\n"
            "  version                print the library version\n"
            "Run 'nvfp4 COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_demo(1, argv);
    const char *c = argv[1];
    if (strcmp(c, "demo") == 0)
        return cmd_demo(argc - 1, argv + 1);
    if (strcmp(c, "quantize") == 0 || strcmp(c, "quantise") == 0)
        return cmd_quantize(argc - 1, argv + 1);
    if (strcmp(c, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(c, "compare") == 0)
        return cmd_compare(argc - 1, argv + 1);
    if (strcmp(c, "version") == 0 || strcmp(c, "--version") == 0) {
        printf("nvfp4 (libnvfp4 %s)\n", nvfp4_version_string());
        return 0;
    }
    if (strcmp(c, "help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    cmd_error("unknown command '%s'", c);
    usage(stderr);
    return 2;
}
