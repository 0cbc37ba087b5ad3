from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
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
