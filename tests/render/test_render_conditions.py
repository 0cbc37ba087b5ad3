"""Render conditions through the renderer: paired geometry, what each one does to the pixels,
fog in the difficulty, and a condition defined in one place picked up end to end."""

# ruff: noqa: E402  (the GL backend is chosen before pyrender is imported)

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from workbench.render import gl

gl.activate("egl")

from workbench.errors import WorkbenchError
from workbench.render.job import RenderJob
from workbench.render.sample import render_sample
from workbench.render.view import Renderer
from workbench.scene.conditions import CONDITIONS, Condition
from workbench.scene.conditions.camera_turn import CameraTurn
from workbench.scene.spec import parse_spec


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(64, 64)
    yield r
    r.close()


@pytest.mark.parametrize("condition", CONDITIONS)
def test_conditions_keep_the_scene_and_change_pixels(renderer, condition):
    spec = parse_spec({"kind": "shapes", "resolution": 64})
    base = render_sample(renderer, spec, 2, 0, "clone")
    other = render_sample(renderer, spec, 2, 0, condition)
    turned = issubclass(CONDITIONS.get(condition), CameraTurn)  # the view moves, the scene not
    for name in ("depth", "seg", "inst"):
        assert np.array_equal(base.arrays[name], other.arrays[name]) != turned
    assert other.meta["condition"]["name"] == condition
    assert other.meta["factors"] == base.meta["factors"]
    if condition != "clone":
        assert not np.array_equal(base.arrays["rgb"], other.arrays["rgb"])


def test_night_is_darker_and_sunset_warmer_than_clone(renderer):
    spec = parse_spec(
        {"kind": "shapes", "resolution": 64, "background": {"photo_probability": 0.0}}
    )
    means = {
        c: np.mean(
            [
                render_sample(renderer, spec, 0, i, c).arrays["rgb"].reshape(-1, 3).mean(0)
                for i in range(4)
            ],
            0,
        )
        for c in ("clone", "night", "sunset")
    }
    assert means["night"].sum() < 0.5 * means["clone"].sum()
    assert means["sunset"][0] / means["sunset"][2] > means["clone"][0] / means["clone"][2]


def test_fog_difficulty_grows_with_density(renderer):
    spec = parse_spec({"kind": "digits", "resolution": 64})
    clear = render_sample(renderer, spec, 0, 1, "clone").meta
    foggy = render_sample(renderer, spec, 0, 1, "fog").meta
    assert clear["difficulty_terms"]["fog"] == 0.0
    assert foggy["difficulty_terms"]["fog"] > 0.2
    assert foggy["difficulty"] > clear["difficulty"]
    assert foggy["condition"]["fog_beta"] > 0


class Dim(Condition):
    """A test condition: every light and the ambient light at a drawn fraction, a grey sky."""

    name = "dim"
    description = "every light at 20 to 50%"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"level": float(rng.uniform(0.2, 0.5))}

    def apply_scene(self, scene, params, rng):
        for light in scene.lights:
            light.intensity *= params["level"]
        scene.ambient = tuple(a * params["level"] for a in scene.ambient)
        return scene

    def apply_image(self, rgb, params, depth, rng, subject=None):
        return np.where((depth > 0)[..., None], rgb, 0.5)


@pytest.fixture()
def dim(monkeypatch):
    """``Dim`` registered for one test, as its own file would register it."""
    monkeypatch.setitem(CONDITIONS._entries, "dim", Dim)
    monkeypatch.setitem(CONDITIONS._metadata, "dim", {})


def test_a_condition_in_one_class_is_picked_up_end_to_end(renderer, dim, tmp_path):
    spec = parse_spec(
        {"kind": "shapes", "resolution": 64, "conditions": ["clone", "dim"],
         "background": {"photo_probability": 0.0}}
    )  # fmt: skip
    RenderJob(spec=spec, out=tmp_path, num=1, conditions=["dim"]).validate()
    clear = render_sample(renderer, spec, 4, 0, "clone")
    dimmed = render_sample(renderer, spec, 4, 0, "dim")
    assert 0.2 <= dimmed.meta["condition"]["level"] <= 0.5
    assert dimmed.meta["condition"]["name"] == "dim"
    assert np.array_equal(dimmed.arrays["depth"], clear.arrays["depth"])
    surface = clear.arrays["depth"] > 0
    assert dimmed.arrays["rgb"][surface].mean() < clear.arrays["rgb"][surface].mean()
    assert (dimmed.arrays["rgb"][~surface] == 128).all()  # round(0.5 * 255)
    again = render_sample(renderer, spec, 4, 0, "dim")
    assert np.array_equal(again.arrays["rgb"], dimmed.arrays["rgb"])


def test_unknown_conditions_are_refused_with_the_callers_field(tmp_path):
    spec = parse_spec({"kind": "shapes"})
    with pytest.raises(WorkbenchError, match="^--conditions: unknown condition 'dim'; known: "):
        RenderJob(spec=spec, out=tmp_path, num=1, conditions=["clone", "dim"]).validate()
    with pytest.raises(WorkbenchError, match="^condition: unknown condition 'dim'"):
        render_sample(None, spec, 0, 0, "dim")
