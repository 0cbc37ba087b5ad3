"""Sample grids: one row per class of any conditional generator, written as a PNG."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from workbench.data.sources import ConditionalGenerator
from workbench.generative.grid import class_rows, save_sample_grid


class ShadeGenerator:
    """Class ``k`` of ``n`` is a flat grey image of brightness ``k / (n - 1)``."""

    def __init__(self):
        self.classes = ["dark", "mid", "light"]
        self.calls: list[tuple[list[int], int]] = []

    def generate(self, labels: Sequence[int], seed: int) -> np.ndarray:
        self.calls.append((list(labels), seed))
        shades = np.asarray(labels, np.float32) / (len(self.classes) - 1)
        return np.broadcast_to(shades[:, None, None, None], (len(labels), 6, 6, 1)).copy()


def test_rows_hold_one_class_each():
    generator = ShadeGenerator()
    assert isinstance(generator, ConditionalGenerator)
    rows = class_rows(generator, per_class=4, seed=9)
    assert rows.shape == (3, 4, 6, 6, 1)
    assert generator.calls == [([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], 9)]
    np.testing.assert_allclose(rows.mean(axis=(1, 2, 3, 4)), [0.0, 0.5, 1.0])


def test_save_sample_grid_writes_a_png_with_rows_dark_to_light(tmp_path):
    path = save_sample_grid(ShadeGenerator(), tmp_path / "sub" / "grid.png", per_class=5)
    image = np.asarray(Image.open(path).convert("L"), np.float32)
    assert path == tmp_path / "sub" / "grid.png"
    rows, _ = np.indices(image.shape)
    dark, mid = rows[image < 5].mean(), rows[np.abs(image - 128) < 4].mean()
    assert (image < 5).sum() > 500 and (np.abs(image - 128) < 4).sum() > 500
    assert dark < mid  # the first class's row is above the second's
