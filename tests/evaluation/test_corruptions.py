"""Common corruptions: shape, range, determinism, strength grows with severity, bad input."""

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    # smooth-ish images with room to move both ways, so every corruption changes them
    base = torch.rand(4, 3, 4, 4)
    return torch.nn.functional.interpolate(base, (16, 16), mode="bilinear") * 0.6 + 0.2


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_corruption_keeps_shape_range_and_is_seeded(images, name, channels):
    x = images[:, :channels].contiguous()
    distortion = []
    for severity in SEVERITIES:
        out = corrupt(x, name, severity, seed=3)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= 0 and out.max() <= 1
        assert torch.equal(out, corrupt(x, name, severity, seed=3))
        distortion.append(float((out - x).abs().mean()))
    assert distortion[0] > 0
    assert distortion[-1] > distortion[0], f"{name}: severity 5 no stronger than 1 {distortion}"


def test_noise_depends_on_seed(images):
    assert not torch.equal(
        corrupt(images, "gaussian_noise", 3, seed=0), corrupt(images, "gaussian_noise", 3, seed=1)
    )


def test_bad_input_is_named(images):
    with pytest.raises(WorkbenchError, match="unknown corruption 'snow'; known: brightness"):
        corrupt(images, "snow", 1)
    with pytest.raises(WorkbenchError, match="severity: must be 1 to 5, got 6"):
        corrupt(images, "contrast", 6)
    with pytest.raises(WorkbenchError, match=r"must lie in \[0, 1\]"):
        corrupt(images * 255, "contrast", 1)
    with pytest.raises(WorkbenchError, match="C = 1 or 3"):
        corrupt(images[0], "contrast", 1)
