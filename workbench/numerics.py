"""Pinned CPU numerics: one command prints the same numbers on every x86-64 machine.

A float result on the CPU depends on more than the seed. PyTorch picks SIMD kernels for the
processor (AVX2 or AVX-512: another summation order), MKL and oneDNN pick their own code paths,
and a reduction is split over as many threads as the machine has. Measured here on the demo's
classifier (one epoch): 1 against 2 threads, or AVX2 against AVX-512 kernels, gave other weights,
and AVX2 against AVX-512 another test accuracy. :func:`pin_cpu_numerics` fixes all four before
torch is imported; ``workbench demo`` calls it, so its printed numbers do not depend on the
machine's processor or core count (see the README for what still may).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# Kernel choices that every x86-64 processor with AVX2 can make the same way.
X86_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # convolutions
    "MKL_CBWR": "AVX2,STRICT",  # matrix products: MKL's conditional numerical reproducibility
}


def _has_avx2() -> bool:
    try:
        return " avx2 " in f" {Path('/proc/cpuinfo').read_text()} ".replace("\n", " ")
    except OSError:
        return False


def pin_cpu_numerics(threads: int = 2) -> dict[str, str]:
    """Pins the CPU kernels and thread count, then imports torch in deterministic mode.

    On x86-64 with AVX2 the kernels of PyTorch, oneDNN and MKL are pinned to AVX2; elsewhere
    (ARM) only the thread count is pinned. Values the caller set are overridden on purpose.

    Args:
        threads: intra-op threads (and OpenMP / MKL threads).

    Returns:
        the environment variables that were set.

    Raises:
        RuntimeError: torch was imported already (its kernels are chosen at import).
    """
    if "torch" in sys.modules:
        raise RuntimeError("pin_cpu_numerics() must run before torch is imported")
    pinned = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if platform.machine().lower() in ("x86_64", "amd64") and _has_avx2():
        pinned.update(X86_PINS)
    os.environ.update(pinned)
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return pinned
