"""Install PyTorch into the running interpreter only when none is importable.

An installed torch (any build: CPU, CUDA, ROCm) is left alone. Otherwise:
1. a CPU wheel of torch==2.13.0 that pip can find without an index (a local wheel folder set up in
   pip's config, as on our build machines) is installed, then its dependencies from the index;
2. else, on a machine with an NVIDIA driver, torch==2.13.0 from the default index (a CUDA build);
3. else the CPU build from PyTorch's CPU index, so a CPU machine never downloads CUDA libraries.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

TORCH = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pip(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", *args])


def main() -> int:
    if importlib.util.find_spec("torch") is not None:
        print("torch is already installed: leaving it alone")
        return 0
    # A local CPU wheel (found through pip's configured find-links, no index): install it alone,
    # then let pip resolve its pure-Python dependencies from the index as usual.
    if pip("--no-index", "--no-deps", TORCH) == 0:
        return pip(TORCH)
    if shutil.which("nvidia-smi"):
        return pip(TORCH)
    return pip(TORCH, "--index-url", CPU_INDEX)


if __name__ == "__main__":
    sys.exit(main())
