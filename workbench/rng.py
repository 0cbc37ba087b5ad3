"""Seeding helpers: every random draw in the workbench derives from a seed and named keys.

Torch-free (the scene builders use it): callers turn the integers into ``torch.Generator``
seeds where they need torch.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, index: int, name: str) -> np.random.Generator:
    """Returns the generator for one named randomizer of one sample.

    Every stream derives from ``(seed, sample index, name)``, so a sample is identical whatever
    order or process draws it.

    Args:
        seed: dataset seed.
        index: sample index.
        name: randomizer name (``"camera"``, ``"lights"``, ``"condition/fog"``, ...).
    """
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([seed, index, key]))


def derived_seed(*keys: int) -> int:
    """Returns a 32-bit seed derived from integer ``keys`` (``SeedSequence``: no collisions
    between nearby keys, unlike ``seed + k``)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def epoch_seed(seed: int, epoch: int) -> int:
    """Returns the seed of a sampler's draws in ``epoch``."""
    return seed * 100_003 + epoch


def process_epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Returns the seed of the global generators (dropout, augmentation) of process ``rank`` in
    ``epoch`` of a run seeded with ``seed``."""
    return (seed * 1_000_003 + epoch * 7919 + rank) % 2**32
