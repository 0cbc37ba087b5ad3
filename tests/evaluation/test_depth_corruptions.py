"""Depth-aware corruptions: shape, range, determinism, strength with severity, and that each
follows the depth the way its physics says."""

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.evaluation.depth_corruptions import DEPTH_CORRUPTIONS, corrupt_with_depth


@pytest.fixture(scope="module")
def scene():
    """Textured images whose top half is near (2 m), bottom half far (40 m), one sky column."""
    generator = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 8, 8, generator=generator)
    x = torch.nn.functional.interpolate(base, (32, 32), mode="nearest") * 0.6 + 0.2
    depth = torch.full((2, 32, 32), 40.0)
    depth[:, :16] = 2.0
    depth[:, :, 0] = 0.0  # no surface
    return x, depth


def _sharpness(x: torch.Tensor) -> float:
    """Gradient energy: blur spreads an edge, which keeps its total variation but not this."""
    return float(((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean())


@pytest.mark.parametrize("name", sorted(DEPTH_CORRUPTIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_keeps_shape_range_is_seeded_and_grows_with_severity(scene, name, channels):
    x, depth = scene
    x = x[:, :channels].contiguous()
    distortion = []
    for severity in range(1, 6):
        out = corrupt_with_depth(x, depth, name, severity, seed=3)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= 0 and out.max() <= 1
        assert torch.equal(out, corrupt_with_depth(x, depth, name, severity, seed=3))
        distortion.append(float((out - x).abs().mean()))
    assert distortion[0] > 0
    assert distortion[-1] > distortion[0], f"{name}: {distortion}"


def test_fog_hides_far_things_more_and_the_sky_entirely(scene):
    x, depth = scene
    out = corrupt_with_depth(x, depth, "fog_3d", 3)
    near = (out - x)[:, :, :16, 1:].abs().mean()
    far = (out - x)[:, :, 16:, 1:].abs().mean()
    assert far > 2 * near
    assert torch.allclose(out[:, :, :, 0], torch.full_like(out[:, :, :, 0], 0.8))


def test_focus_keeps_its_plane_sharp(scene):
    x, depth = scene
    near = corrupt_with_depth(x, depth, "near_focus", 5)
    far = corrupt_with_depth(x, depth, "far_focus", 5)
    top, bottom = (slice(None), slice(None), slice(2, 14), slice(2, None)), (
        slice(None), slice(None), slice(18, 30), slice(2, None))  # fmt: skip
    assert _sharpness(near[top]) > 2 * _sharpness(near[bottom])
    assert _sharpness(far[bottom]) > 2 * _sharpness(far[top])


def test_forward_motion_streaks_near_things_and_not_the_sky(scene):
    x, depth = scene
    out = corrupt_with_depth(x, depth, "z_motion_blur", 5)
    change = (out - x).abs()
    assert change[:, :, :16, 1:].mean() > 2 * change[:, :, 16:, 1:].mean()


def test_low_light_darkens_and_adds_noise(scene):
    x, depth = scene
    out = corrupt_with_depth(x, depth, "low_light", 5, seed=1)
    assert out.mean() < x.mean()
    assert not torch.equal(out, corrupt_with_depth(x, depth, "low_light", 5, seed=2))


def test_bad_input_is_named(scene):
    x, depth = scene
    with pytest.raises(WorkbenchError, match="unknown depth corruption 'snow'; known: far_focus"):
        corrupt_with_depth(x, depth, "snow", 1)
    with pytest.raises(WorkbenchError, match="severity: must be 1 to 5, got 0"):
        corrupt_with_depth(x, depth, "fog_3d", 0)
    with pytest.raises(WorkbenchError, match=r"depth: expected \(2, 32, 32\)"):
        corrupt_with_depth(x, depth[:, :16], "fog_3d", 1)
