/**
 * @file nvfp4.h
 * @brief Umbrella header of libnvfp4: include this one.
 *
 * libnvfp4 implements NVFP4 numerics (E2M1 elements, an E4M3 scale per 16 elements, an FP32
 * scale per tensor) and MXFP4, bit-exact with NVIDIA's conversion semantics, behind a stable C
 * ABI. See docs/ for the guides and SPEC for the numerics contract.
 */
#ifndef NVFP4_NVFP4_H
#define NVFP4_NVFP4_H

#include "nvfp4/version.h"
#include "nvfp4/core.h"
#include "nvfp4/formats.h"
#include "nvfp4/quantize.h"
#include "nvfp4/rounder.h"

#endif /* NVFP4_NVFP4_H */
