from pathlib import Path

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.scene.kinds import preflight
from workbench.scene.kinds.common import place_on_plane
from workbench.scene.spec import load_spec, parse_spec

SCENES = Path(__file__).resolve().parents[2] / "scenes"


@pytest.mark.parametrize("name", ["digits", "shapes", "street", "tabletop"])
def test_bundled_specs_validate(name):
    spec = load_spec(SCENES / f"{name}.yaml")
    assert spec.kind == name
    assert len(spec.classes()) >= 2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"kind": "teapots"},
            "kind: unknown scene kind 'teapots'; allowed: digits, shapes, tabletop, street",
        ),
        (
            {"kind": "shapes", "count": [-1, 3]},
            "count.0: Input should be greater than or equal to 0",
        ),
        ({"kind": "shapes", "count": [5, 3]}, "count: range [5, 3] must be [low, high]"),
        ({"kind": "shapes", "colour": [1, 2]}, "colour: unknown field"),
        (
            {"kind": "digits", "camera": {"yfov_deg": [10, 200]}},
            "camera.yfov_deg: field of view must lie within",
        ),
        ({"kind": "digits", "fonts": ["Arial"]}, "fonts.0: Input should be 'OpenSans-Regular'"),
        (
            {"kind": "shapes", "resolution": 4},
            "resolution: Input should be greater than or equal to 16",
        ),
        ({"kind": "tabletop", "objects": []}, "objects: List should have at least 1 item"),
    ],
)
def test_bad_spec_is_one_line_naming_the_field(data, expected):
    with pytest.raises(WorkbenchError) as info:
        parse_spec(data, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("kind: [shapes\n")
    with pytest.raises(WorkbenchError, match="broken.yaml: not valid YAML"):
        load_spec(path)
    with pytest.raises(WorkbenchError, match="missing.yaml: scene spec not found"):
        load_spec(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"kind": "shapes", "size": [float("nan"), 1.0]},
            "size.0: Input should be a finite number",
        ),
        ({"kind": "shapes", "area": float("inf")}, "area: Input should be a finite number"),
        ({"kind": "shapes", "size": [0.0, 1.0]}, "size.0: Input should be greater than or equal"),
        ({"kind": "shapes", "count": [1, 1001]}, "count.1: Input should be less than or equal to"),
        ({"kind": "digits", "lights": {"count": [1, 13]}}, "lights.count: at most 12 lights"),
        ({"kind": "digits", "camera": {"distance": [-1, 2]}}, "camera.distance.0: Input should"),
        ({"kind": "digits", "camera": {"elevation_deg": [0, 91]}}, "camera.elevation_deg.1:"),
        ({"kind": "digits", "materials": {"value": [0.5, 2]}}, "materials.value.1: Input should"),
        ({"kind": "digits", "fonts": ["DejaVuSans"] * 101}, "fonts: List should have at most 100"),
        ({"kind": "digits", "name": "a\nb"}, "name: must not contain control characters"),
        ({"kind": "digits", "name": "n" * 101}, "name: String should have at most 100 char"),
        ({"kind": "street", "camera": {"yfov_deg": [10, 200]}}, "camera.yfov_deg: field of view"),
        ({"kind": "street", "road_width": [9, 8]}, "road_width: range [9.0, 8.0] must be"),
        ({"kind": "digits", "resolution": 4096}, "resolution: Input should be less than or equal"),
        (
            {
                "kind": "tabletop",
                "objects": [{"path": "a.obj", "class_name": "a", "count": [0, 600]}] * 2,
            },
            "objects: the counts allow 1200 objects in a sample, at most 1000",
        ),
        (
            {"kind": "tabletop", "objects": [{"path": "a\0.obj", "class_name": "a"}]},
            "objects.0.path: must not contain control characters",
        ),
        ({"kind": ["shapes"] * 10**5}, "kind: unknown scene kind a list"),
        ({"kind": "shapes", "\n" * 50: 1}, "'\\n\\n\\n"),
    ],
)
def test_bounds_are_one_line_naming_the_field(data, expected):
    with pytest.raises(WorkbenchError) as info:
        parse_spec(data, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and expected in message, message
    assert "\n" not in message and len(message) < 500


def test_a_huge_spec_file_is_refused_unparsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("kind: shapes\n" + "# padding\n" * 200_000)
    with pytest.raises(
        WorkbenchError, match=r"huge\.yaml: a scene spec is at most 1,048,576 bytes"
    ):
        load_spec(path)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"kind": "shapes", "count": [3, 40]},
            "crowd.yaml: count: up to 40 objects of 0.4-0.9 m cover about",
        ),
        (
            {
                "kind": "tabletop",
                "objects": [{"path": str(SCENES / "assets" / "bottle.stl"), "class_name": "b"}],
                "distractors": [0, 200],
            },
            "crowd.yaml: distractors: up to 200 distractors cover about",
        ),
        (
            {"kind": "street", "buildings_per_side": [3, 500]},
            "crowd.yaml: buildings_per_side: at most 35 buildings a side can be seen",
        ),
    ],
)
def test_specs_too_crowded_to_place_are_refused_by_the_preflight(data, expected):
    with pytest.raises(WorkbenchError) as info:
        preflight(parse_spec(data, "crowd.yaml"))
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def _place_one_at_a_time(rng, radii, half_extent, tries=200):
    """The plain rejection-sampling loop that place_on_plane must reproduce exactly."""
    placed, out = [], []
    for radius in radii:
        spot, room = None, max(half_extent - radius, 0.0)
        for _ in range(tries):
            xy = rng.uniform(-room, room, 2)
            if all(np.linalg.norm(xy - q) >= radius + r for q, r in placed):
                spot = xy
                break
        if spot is not None:
            placed.append((spot, radius))
        out.append(spot)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_placement_is_the_one_at_a_time_loop(seed):
    rng = np.random.default_rng(seed)
    radii = list(rng.uniform(0.0, 0.5, 40)) if seed % 2 else [0.3] * 30  # crowded: many misses
    half = float(rng.uniform(0.5, 2.0))
    plain, blocked = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = _place_one_at_a_time(plain, radii, half)
    got = place_on_plane(blocked, radii, half)
    assert [e is None for e in expected] == [g is None for g in got]
    assert any(e is None for e in expected) or seed % 2
    for e, g in zip(expected, got, strict=True):
        assert e is None or np.array_equal(e, g)
    assert plain.uniform() == blocked.uniform()  # the generator is left where the loop leaves it
