import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package from the source tree


@pytest.fixture(scope="session")
def nvfp4_cmd():
    """Path of the nvfp4 command ($NVFP4_CMD, set by meson), else the one on PATH."""
    cmd = os.environ.get("NVFP4_CMD") or shutil.which("nvfp4")
    if not cmd or not os.path.exists(cmd):
        pytest.skip("the nvfp4 command is not built (set NVFP4_CMD)")
    return cmd
