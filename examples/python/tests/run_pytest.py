#!/usr/bin/env python3
"""Runs the Python binding's pytest suite for `meson test --suite python`.

Exits 77 (meson's "skipped") with a printed reason when numpy, ml_dtypes, safetensors or pytest
is missing, so that a machine without them skips instead of failing.
"""
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    missing = []
    for mod in ("numpy", "ml_dtypes", "safetensors", "pytest"):
        try:
            importlib.import_module(mod)
        except Exception:
            missing.append(mod)
    if missing:
        print("SKIP: the Python tests need %s (pip install %s)" % (", ".join(missing), " ".join(missing)))
        return 77
    lib = os.environ.get("NVFP4_LIBRARY")
    if lib and not os.path.exists(lib):
        print("NVFP4_LIBRARY=%s does not exist" % lib)
        return 1
    # The package is imported from the source tree, not from an installed copy.
    sys.path.insert(0, os.path.dirname(HERE))
    import pytest
    args = [HERE, "-q", "-p", "no:cacheprovider"] + sys.argv[1:]
    return pytest.main(args)


if __name__ == "__main__":
    sys.exit(main())
