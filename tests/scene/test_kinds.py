import numpy as np
import pytest

from workbench.rng import stream
from workbench.scene import assets
from workbench.scene.kinds import build_scene, kinds
from workbench.scene.kinds.common import place_on_plane
from workbench.scene.random import kelvin_to_rgb
from workbench.scene.spec import parse_spec


def test_all_kinds_registered():
    assert kinds() == ["digits", "shapes", "street", "tabletop"]


@pytest.mark.parametrize("kind", ["digits", "shapes"])
def test_builder_is_a_pure_function_of_seed_and_index(kind):
    spec = parse_spec({"kind": kind})
    a, b, c = build_scene(spec, 3, 7), build_scene(spec, 3, 7), build_scene(spec, 3, 8)
    assert a.factors == b.factors
    assert all(np.array_equal(x.pose, y.pose) for x, y in zip(a.objects, b.objects, strict=True))
    assert a.factors != c.factors


def test_streams_are_independent_per_name_and_index():
    assert stream(0, 1, "camera").uniform() == stream(0, 1, "camera").uniform()
    assert stream(0, 1, "camera").uniform() != stream(0, 1, "lights").uniform()
    assert stream(0, 1, "camera").uniform() != stream(0, 2, "camera").uniform()


def test_digits_label_is_the_drawn_digit_and_font_varies():
    spec = parse_spec({"kind": "digits"})
    scenes = [build_scene(spec, 0, i) for i in range(40)]
    assert all(s.label == s.factors["digit"] == s.objects[0].class_id for s in scenes)
    assert len({s.factors["font"] for s in scenes}) > 3
    assert len({s.label for s in scenes}) > 5


@pytest.mark.parametrize("char", list("0123456789"))
def test_glyphs_are_closed_solids_with_holes(char):
    mesh = assets.glyph("OpenSans-Bold", char, 0.2)
    assert mesh.is_watertight
    assert np.isclose(mesh.extents[1], 1.0)
    if char in "0689":  # a hole means the solid is less than its outline's convex hull
        assert mesh.volume < 0.75 * mesh.convex_hull.volume


def test_shapes_objects_do_not_interpenetrate():
    spec = parse_spec({"kind": "shapes", "count": [6, 6]})
    for index in range(10):
        scene = build_scene(spec, 0, index)
        things = [o for o in scene.objects if o.thing]
        for i, a in enumerate(things):
            for b in things[i + 1 :]:
                ra = np.linalg.norm(a.mesh.vertices[:, :2], axis=1).max() * np.linalg.norm(
                    a.pose[:3, 0]
                )
                rb = np.linalg.norm(b.mesh.vertices[:, :2], axis=1).max() * np.linalg.norm(
                    b.pose[:3, 0]
                )
                assert np.linalg.norm(a.pose[:2, 3] - b.pose[:2, 3]) >= ra + rb - 1e-9


def test_placement_reports_what_does_not_fit():
    spots = place_on_plane(np.random.default_rng(0), [0.5] * 10, 1.0)
    assert spots[0] is not None and any(s is None for s in spots)


def test_kelvin_colours_go_from_warm_to_cool():
    warm, cool = kelvin_to_rgb(2000), kelvin_to_rgb(10000)
    assert warm[0] > warm[2] and cool[2] > cool[0]


def test_scene_code_imports_neither_opengl_nor_torch():
    import subprocess
    import sys

    code = (
        "import sys; from workbench.scene.spec import parse_spec; "
        "from workbench.scene.kinds import build_scene, preflight; "
        "s = parse_spec({'kind': 'digits'}); preflight(s); build_scene(s, 0, 0); "
        "print(sorted(m for m in ('OpenGL', 'pyrender', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_matplotlib_faces_and_crossed_sevens_for_sim2real_digits():
    from workbench.scene.spec import EXTRA_FONT_NAMES

    for font in EXTRA_FONT_NAMES:
        assert np.isclose(assets.glyph(font, "3", 0.2).extents[1], 1.0)
    plain, crossed = assets.glyph("DejaVuSans", "7", 0.2), assets.crossed_seven("DejaVuSans", 0.2)
    assert crossed.area > plain.area
    spec = parse_spec({"kind": "digits", "digits": [7], "crossed_seven": 0.5, "fonts": ["cmss10"]})
    flags = [build_scene(spec, 0, i).factors["crossed_seven"] for i in range(40)]
    assert 5 < sum(flags) < 35
