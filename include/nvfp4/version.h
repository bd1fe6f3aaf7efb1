/**
 * @file version.h
 * @brief Compile-time version of the libnvfp4 headers.
 *
 * Compare ::NVFP4_VERSION_NUMBER with nvfp4_version_number() to detect a library older than the
 * headers a program was built with.
 */
#ifndef NVFP4_VERSION_H
#define NVFP4_VERSION_H

/** Major version: incompatible ABI changes (none within 1.x). */
#define NVFP4_VERSION_MAJOR 0
/** Minor version: added functionality. */
#define NVFP4_VERSION_MINOR 1
/** Patch version: fixes. */
#define NVFP4_VERSION_PATCH 0
/** MAJOR*10000 + MINOR*100 + PATCH. */
#define NVFP4_VERSION_NUMBER (NVFP4_VERSION_MAJOR * 10000 + NVFP4_VERSION_MINOR * 100 + NVFP4_VERSION_PATCH)

#endif /* NVFP4_VERSION_H */
