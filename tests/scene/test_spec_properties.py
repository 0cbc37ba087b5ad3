"""Property-based tests: malformed and extreme scene specs of every kind give one line, never a
traceback or a hang.

Each example starts from a bundled spec and breaks it: values replaced by junk (nan, inf,
negative, huge numbers, wrong types, deep nesting, huge strings), ranges swapped, fields deleted,
unknown keys added, numbers pushed to extremes. A spec must then either be refused with one
:class:`WorkbenchError` line naming the file, or pass the preflight and build a sample whose
numbers are all finite. Hypothesis runs derandomized with a bounded number of examples, and its
deadline turns a hang into a failure.
"""

from __future__ import annotations

import copy
import math
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from workbench.errors import WorkbenchError
from workbench.scene.kinds import build_scene, preflight
from workbench.scene.spec import SCENE_KINDS, load_spec, parse_spec

SCENES = Path(__file__).resolve().parents[2] / "scenes"
SOURCE = "fuzz.yaml"
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=20),  # far above any honest example; a hang fails instead
    derandomize=True,  # the same examples on every run and in CI
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _bundled(kind: str) -> dict:
    data = yaml.safe_load((SCENES / f"{kind}.yaml").read_text())
    for o in data.get("objects", []):  # tabletop meshes: absolute, as load_spec makes them
        o["path"] = str(SCENES / o["path"])
    return data


BUNDLED = {kind: _bundled(kind) for kind in SCENE_KINDS}


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


EXTREMES = [math.nan, math.inf, -math.inf, -1, -1e-9, 0, 5e-324, 1e308, -1e308, 10**100, 2**64,
            "nan", "1e999", "", [math.nan, 1.0], [1.0, math.inf], [5, 3], [-1, 2], [0, 10**9],
            [1, 2, 3], [1], [], {}, None, True]  # fmt: skip
BOUNDARY = [0, 0.001, 0.01, 0.5, 1, 12, 13, 89.9, 90, 170, 360, 1000, 1001, 2048, 40000]
JUNK = st.one_of(
    st.sampled_from(EXTREMES),
    st.floats(),
    st.integers(),
    st.text(max_size=30),
    st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=5)), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.integers(1, 5000).map(_nested),
    st.integers(10**4, 10**6).map(lambda n: "x" * n),
)


def _paths(node, prefix: tuple = (), depth: int = 4) -> list[tuple]:
    """Key paths to every value of a spec (dict values and list items), a few levels deep."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        out.append((*prefix, key))
        if isinstance(value, (dict, list)) and depth > 0:
            out += _paths(value, (*prefix, key), depth - 1)
    return out


def _parent(data, path: tuple):
    node = data
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def broken_spec(draw, kind: str) -> object:
    """A bundled spec of ``kind`` with one to three things broken."""
    if draw(st.integers(0, 20)) == 0:
        return draw(JUNK)  # not even a mapping
    data = copy.deepcopy(BUNDLED[kind])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        parent, key, value = _parent(data, path), path[-1], _parent(data, path)[path[-1]]
        op = draw(st.sampled_from(["junk", "delete", "unknown", "swap", "boundary", "scale"]))
        if op == "junk":
            parent[key] = draw(JUNK)
        elif op == "delete" and isinstance(parent, dict):
            del parent[key]
        elif op == "unknown":
            target = parent if isinstance(parent, dict) else data
            name = draw(st.one_of(st.text(max_size=40), st.integers(10**4, 10**5).map("k".__mul__)))
            target[name] = draw(JUNK)
        elif op == "swap" and isinstance(value, list) and len(value) == 2:
            parent[key] = value[::-1]
        elif op == "boundary" and isinstance(value, list) and len(value) == 2:
            parent[key] = [draw(st.sampled_from(BOUNDARY)), draw(st.sampled_from(BOUNDARY))]
        elif op in ("boundary", "scale") and isinstance(value, (int, float)):
            factor = draw(st.sampled_from([-1, 0, 1e3, 1e6, 1e300]))
            parent[key] = draw(st.sampled_from(BOUNDARY)) if op == "boundary" else value * factor
    return data


def _assert_one_line(exc: WorkbenchError, source: str = SOURCE) -> None:
    message = str(exc)
    assert message.startswith(f"{source}: "), message[:300]
    assert "\n" not in message and "\r" not in message, message[:300]
    assert len(message) < 1000, message[:300]


def _assert_finite(instance) -> None:
    for o in instance.objects:
        assert np.isfinite(o.pose).all(), o.name
        for part in o.mesh if isinstance(o.mesh, list) else [o.mesh]:
            assert np.isfinite(part.vertices).all(), o.name
    for light in instance.lights:
        assert np.isfinite(light.pose).all() and math.isfinite(light.intensity)
    camera = instance.camera
    assert np.isfinite(camera.pose).all() and 0 < camera.yfov < math.pi
    assert 0 < camera.znear < camera.zfar < math.inf


def _check(data: object) -> None:
    """Refused with one line, or accepted, preflighted and built into a finite sample."""
    try:
        spec = parse_spec(data, SOURCE)
        preflight(spec)
    except WorkbenchError as exc:
        _assert_one_line(exc)
        return
    _assert_finite(build_scene(spec, 0, 0))


@pytest.mark.parametrize("kind", SCENE_KINDS)
@FUZZ
@given(data=st.data())
def test_broken_specs_are_one_line_or_build(kind, data):
    _check(data.draw(broken_spec(kind)))


SPEC_FILES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.text(max_size=300).map(lambda text: ("kind: shapes\n" + text).encode()),
)


@FUZZ
@given(content=SPEC_FILES)
def test_any_bytes_as_a_spec_file_are_one_line_or_a_spec(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_bytes(content)
        try:
            load_spec(path)
        except WorkbenchError as exc:
            _assert_one_line(exc, str(path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: shapes\nsize: [.nan, 1.0]\n", "size.0: Input should be a finite number"),
        ("kind: digits\n" + "x" * 1000 + ": 1\n", "x" * 40 + "...': unknown field"),
        ("kind: shapes\ncount: " + "[" * 20000 + "\n", "not valid YAML"),
        ("kind: shapes\ncount: [3, 1000]\n", "count: up to 1000 objects"),
    ],
    ids=["nan", "huge-key", "deep", "crowded"],
)
def test_cli_refuses_a_bad_spec_with_one_line_and_exit_2(tmp_path, text, expected):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    done = run_cli("render", str(spec), "--num", "1", "--out", str(out), check=False, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"error: {spec}: ") and expected in lines[0], lines[0][:300]
    assert not out.exists()
