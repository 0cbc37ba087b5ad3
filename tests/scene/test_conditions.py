"""Render conditions without OpenGL: the registry, the spec's check, Koschmieder fog and the
sample-then-apply steps on a built scene."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.rng import stream
from workbench.scene.conditions import CONDITIONS, Condition, build_condition
from workbench.scene.conditions.effects import fog
from workbench.scene.kinds import build_scene
from workbench.scene.spec import parse_spec

TURNS = ["15-deg-left", "15-deg-right", "30-deg-left", "30-deg-right"]
LIGHT_AND_WEATHER = ["clone", "fog", "morning", "night", "overcast", "rain", "sunset"]
BUILT_IN = TURNS + LIGHT_AND_WEATHER


def test_every_condition_is_one_registered_class_with_a_description():
    assert CONDITIONS.names() == BUILT_IN
    for name, cls in CONDITIONS.items():
        assert issubclass(cls, Condition) and cls.name == name
        assert cls.description and "\n" not in cls.description


def test_the_spec_checks_condition_names_against_the_registry():
    spec = parse_spec({"kind": "digits", "conditions": ["fog", "night"]})
    assert spec.conditions == ["fog", "night"]
    with pytest.raises(WorkbenchError) as caught:
        parse_spec({"kind": "digits", "conditions": ["fog", "snow"]}, "bad.yaml")
    assert str(caught.value) == (
        f"bad.yaml: conditions.1: unknown condition 'snow'; known: {', '.join(BUILT_IN)}"
    )


def test_an_unknown_condition_names_the_callers_field():
    with pytest.raises(WorkbenchError, match="^--conditions: unknown condition 'snow'; known: "):
        build_condition("snow", "--conditions")


def test_fog_follows_koschmieder_law():
    rgb = np.zeros((1, 3, 3))
    depth = np.array([[1.0, 10.0, 0.0]])
    out = fog(rgb, depth, beta=0.1, color=np.ones(3))
    assert out[0, 0, 0] == pytest.approx(1 - np.exp(-0.1))
    assert out[0, 1, 0] == pytest.approx(1 - np.exp(-1.0))
    assert out[0, 2, 0] == 1.0  # no surface: infinitely far, all fog


@pytest.mark.parametrize("name", LIGHT_AND_WEATHER)
def test_sample_then_apply_is_a_pure_function_of_the_stream(name):
    spec = parse_spec({"kind": "shapes", "resolution": 32})
    scene = build_scene(spec, 3, 1)
    rgb = np.linspace(0.0, 1.0, 32 * 32 * 3).reshape(32, 32, 3)
    depth = np.where(np.arange(32)[:, None] < 16, 4.0, 0.0) * np.ones((32, 32))
    runs = []
    for _ in range(2):
        condition, rng = build_condition(name), stream(3, 1, f"condition/{name}")
        params = {"name": name, **condition.sample(rng)}
        lit = condition.apply_scene(copy.deepcopy(scene), params, rng)
        image = condition.apply_image(rgb.copy(), params, depth, rng, subject=depth > 0)
        runs.append((params, lit, image))
    (params, lit, image), (params2, lit2, image2) = runs
    assert params == params2 and np.array_equal(image, image2)
    assert lit.ambient == lit2.ambient and len(lit.lights) == len(lit2.lights)
    for a, b in zip(lit.lights, lit2.lights, strict=True):
        assert np.array_equal(a.pose, b.pose) and a.intensity == b.intensity
    assert (lit.ambient == scene.ambient) == (name == "clone")
    assert np.array_equal(image, rgb) == (name == "clone")


@pytest.mark.parametrize("name", TURNS)
def test_a_camera_turn_moves_only_the_camera_about_its_centre(name):
    spec = parse_spec({"kind": "street", "resolution": 32})
    scene = build_scene(spec, 3, 1)
    condition, rng = build_condition(name), stream(3, 1, f"condition/{name}")
    params = {"name": name, **condition.sample(rng)}
    turned = condition.apply_scene(copy.deepcopy(scene), params, rng)
    before, after = scene.camera.pose, turned.camera.pose
    assert np.array_equal(before[:3, 3], after[:3, 3])  # same centre
    # the viewing direction (-z of the camera) turns by the named angle about the up axis
    look, look_turned = -before[:3, 2], -after[:3, 2]
    heading = np.degrees(np.arctan2(look_turned[1], look_turned[0]) - np.arctan2(look[1], look[0]))
    degrees = float(name.split("-")[0])
    assert heading == pytest.approx(degrees if name.endswith("left") else -degrees)
    assert look_turned[2] == pytest.approx(look[2])  # the pitch is kept
    assert turned.ambient == scene.ambient and len(turned.lights) == len(scene.lights)
