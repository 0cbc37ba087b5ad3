"""Common corruptions: shape, range, determinism, strength grows with severity, both parameter
tables, bad input. Parity with the reference code: ``test_corruption_parity.py``."""

import pytest
import torch

from workbench.commands.robustness import CORRUPTION_PARAMETERS
from workbench.errors import WorkbenchError
from workbench.evaluation.corruptions import CORRUPTIONS, PARAMETER_SETS, SEVERITIES, corrupt
from workbench.evaluation.mce import BENCHMARK

# CIFAR-10-C's elastic transform warps most at severity 1 (a larger random affine, no elastic
# part)
NOT_MONOTONE = {"elastic_transform"}


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
    if name == "saturate" and channels == 1:  # grey images have no saturation to change
        assert distortion == [0.0] * len(SEVERITIES)
        return
    assert distortion[0] > 0
    if name not in NOT_MONOTONE:
        assert distortion[-1] > distortion[0], f"{name}: severity 5 no stronger than 1 {distortion}"


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_imagenet_c_table_keeps_grey_images_grey_shaped_and_seeded(name):
    torch.manual_seed(2)
    x = torch.nn.functional.interpolate(torch.rand(2, 1, 8, 8), (32, 40), mode="bilinear")
    for severity in SEVERITIES:
        out = corrupt(x, name, severity, seed=5, parameters="imagenet_c")
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
        assert torch.equal(out, corrupt(x, name, severity, seed=5, parameters="imagenet_c"))


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_imagenet_c_table_runs_from_32_pixels_and_is_the_stronger(name):
    torch.manual_seed(1)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), (32, 32), mode="bilinear")
    x = x * 0.6 + 0.2
    strength = {
        table: float((corrupt(x, name, 5, seed=0, parameters=table) - x).abs().mean())
        for table in PARAMETER_SETS
    }
    assert strength["imagenet_c"] > 0
    if name not in ("spatter", "saturate", "zoom_blur"):  # tables about as strong at 5
        assert strength["imagenet_c"] > strength["cifar10c"], strength


def test_the_benchmark_and_the_extras_are_all_here():
    extras = {"speckle_noise", "gaussian_blur", "spatter", "saturate"}
    assert len(BENCHMARK) == 15 and set(CORRUPTIONS) == set(BENCHMARK) | extras
    assert tuple(PARAMETER_SETS) == CORRUPTION_PARAMETERS  # the CLI's light copy


def test_noise_depends_on_seed(images):
    assert not torch.equal(
        corrupt(images, "gaussian_noise", 3, seed=0), corrupt(images, "gaussian_noise", 3, seed=1)
    )


def test_bad_input_is_named(images):
    with pytest.raises(WorkbenchError, match="unknown corruption 'hail'; known: brightness"):
        corrupt(images, "hail", 1)
    with pytest.raises(WorkbenchError, match="unknown 'imagenet'; known: cifar10c, imagenet_c"):
        corrupt(images, "contrast", 1, parameters="imagenet")
    with pytest.raises(WorkbenchError, match="16 x 16 pixels, the table needs 32 or more"):
        corrupt(images, "contrast", 1, parameters="imagenet_c")
    with pytest.raises(WorkbenchError, match="severity: must be 1 to 5, got 6"):
        corrupt(images, "contrast", 6)
    with pytest.raises(WorkbenchError, match=r"must lie in \[0, 1\]"):
        corrupt(images * 255, "contrast", 1)
    with pytest.raises(WorkbenchError, match="C = 1 or 3"):
        corrupt(images[0], "contrast", 1)
