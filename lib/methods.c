/* methods.c - the table of scale-selection methods (one file per method). */
#include "internal.h"

const nvfp4i_method *nvfp4i_method_get(int32_t method)
{
    switch (method) {
    case NVFP4_METHOD_MAX: return &nvfp4i_method_max;
    case NVFP4_METHOD_4OVER6: return &nvfp4i_method_4over6;
    case NVFP4_METHOD_SOAR: return &nvfp4i_method_soar;
    case NVFP4_METHOD_SOAR_CJSO: return &nvfp4i_method_soar_cjso;
    case NVFP4_METHOD_SOAR_DSS: return &nvfp4i_method_soar_dss;
    case NVFP4_METHOD_SWEEP: return &nvfp4i_method_sweep;
    default: return NULL;
    }
}
