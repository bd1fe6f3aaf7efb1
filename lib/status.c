/* status.c - status names and version queries. */
#include "internal.h"

const char *nvfp4_status_string(nvfp4_status s)
{
    switch (s) {
    case NVFP4_OK: return "NVFP4_OK";
    case NVFP4_ERR_NULL_POINTER: return "NVFP4_ERR_NULL_POINTER";
    case NVFP4_ERR_INVALID_VALUE: return "NVFP4_ERR_INVALID_VALUE";
    case NVFP4_ERR_UNKNOWN_KEY: return "NVFP4_ERR_UNKNOWN_KEY";
    case NVFP4_ERR_SHAPE: return "NVFP4_ERR_SHAPE";
    case NVFP4_ERR_NONFINITE: return "NVFP4_ERR_NONFINITE";
    case NVFP4_ERR_INVALID_SCALE: return "NVFP4_ERR_INVALID_SCALE";
    case NVFP4_ERR_OUT_OF_MEMORY: return "NVFP4_ERR_OUT_OF_MEMORY";
    case NVFP4_ERR_UNSUPPORTED: return "NVFP4_ERR_UNSUPPORTED";
    case NVFP4_ERR_CANCELLED: return "NVFP4_ERR_CANCELLED";
    case NVFP4_ERR_BACKEND: return "NVFP4_ERR_BACKEND";
    case NVFP4_ERR_STATE: return "NVFP4_ERR_STATE";
    case NVFP4_ERR_NUMERICAL: return "NVFP4_ERR_NUMERICAL";
    default: return "NVFP4_ERR_UNKNOWN_STATUS";
    }
}

#define NVFP4I_STR2(x) #x
#define NVFP4I_STR(x) NVFP4I_STR2(x)

const char *nvfp4_version_string(void)
{
    return NVFP4I_STR(NVFP4_VERSION_MAJOR) "." NVFP4I_STR(NVFP4_VERSION_MINOR) "." NVFP4I_STR(NVFP4_VERSION_PATCH);
}

uint32_t nvfp4_version_number(void) { return (uint32_t)NVFP4_VERSION_NUMBER; }
