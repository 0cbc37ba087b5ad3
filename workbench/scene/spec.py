"""Scene specs: the YAML files in ``scenes/`` validated by pydantic models.

A spec fixes what a dataset contains (kind, resolution, classes) and the ranges every
randomizer draws from. ``load_spec`` turns any validation problem into one
:class:`~workbench.errors.WorkbenchError` line naming the file, the field path and what is
allowed.

Every number is finite (no nan or inf), every range is ``[low, high]`` with ``low <= high``,
sizes and distances are positive, and the bounds below keep a spec small: at most
:data:`MAX_COUNT` objects of any kind, :data:`MAX_LIGHTS` lights, :data:`MAX_LIST` entries in a
list, lengths from :data:`MIN_LENGTH` to :data:`MAX_LENGTH` metres, names up to
:data:`MAX_TEXT` characters and a spec file up to :data:`MAX_SPEC_BYTES`. Whether the objects
can be placed in the room a spec gives them is checked by each kind's preflight
(``workbench.scene.kinds``), which needs the meshes' footprints. Condition names are those of
:data:`workbench.scene.conditions.CONDITIONS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from workbench.errors import WorkbenchError
from workbench.scene.conditions import CONDITIONS

TextureName = Literal[
    "brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket", "hubble"
]
PhotoName = Literal[
    "astronaut", "coffee", "chelsea", "rocket", "hubble", "motorcycle", "brick", "grass"
]
PrimitiveName = Literal[
    "cube",
    "sphere",
    "cylinder",
    "cone",
    "torus",
    "capsule",
    "pyramid",
    "icosahedron",
    "ring",
    "prism",
]
FONT_NAMES = (
    "OpenSans-Regular",
    "OpenSans-Bold",
    "OpenSans-Italic",
    "OpenSans-BoldItalic",
    "OpenSans-Light",
    "OpenSans-LightItalic",
    "OpenSans-Semibold",
    "OpenSans-SemiboldItalic",
    "OpenSans-ExtraBold",
    "OpenSans-ExtraBoldItalic",
)
# Faces shipped with matplotlib (DejaVu, STIX, Computer Modern), for more glyph shapes.
EXTRA_FONT_NAMES = (
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
    "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSerif", "DejaVuSerif-Bold",
    "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic", "STIXGeneral", "STIXGeneralBol",
    "STIXGeneralItalic", "STIXGeneralBolIta", "cmr10", "cmss10", "cmti10", "cmtt10", "cmb10",
    "Strokes", "Strokes-Bold",  # pen strokes written like handwriting (workbench.scene.assets)
)  # fmt: skip
FontName = Literal[FONT_NAMES + EXTRA_FONT_NAMES]  # type: ignore[valid-type]
LightKind = Literal["directional", "point", "spot"]

MAX_COUNT = 1000  # objects of any one kind in a sample (the high end of a count range)
MAX_LIGHTS = 12  # lights in a scene: pyrender shades at most 4 of each kind (3 kinds)
MAX_LIST = 100  # entries of any list (fonts, digits, textures, tabletop objects, ...)
MIN_LENGTH = 0.001  # metres: the smallest size, distance, width or area (1 mm)
MAX_LENGTH = 1000.0  # metres: the largest
MAX_INTENSITY = 1000.0  # light intensity
MAX_TEXT = 100  # characters of a name or class name
MAX_PATH = 4096  # characters of a mesh file path
MAX_SPEC_BYTES = 2**20  # a spec file


def _span(ge: float, le: float) -> type:
    """A ``[low, high]`` range of finite floats, each end within ``[ge, le]``."""
    end = Annotated[float, Field(ge=ge, le=le)]
    return tuple[end, end]  # type: ignore[valid-type]


def _field_of_view(value: tuple[float, float]) -> tuple[float, float]:
    if not (1.0 <= value[0] and value[1] <= 170.0):
        raise ValueError("field of view must lie within [1, 170] degrees")
    return value


def _printable(text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("must not contain control characters (newlines, tabs, NUL)")
    return text


def _condition(name: str) -> str:
    """Accepts the name of a registered condition (``workbench.scene.conditions``)."""
    try:
        CONDITIONS.get(name)
    except WorkbenchError as exc:
        raise ValueError(str(exc)) from None
    return name


Range = _span(ge=-MAX_LENGTH, le=MAX_LENGTH)
Length = _span(ge=MIN_LENGTH, le=MAX_LENGTH)  # sizes, distances, widths: positive
Extent = Annotated[float, Field(ge=MIN_LENGTH, le=MAX_LENGTH)]
Unit = _span(ge=0.0, le=1.0)  # colour saturation and value, metallic, roughness, ambient level
Degrees = _span(ge=-360.0, le=360.0)
FieldOfView = Annotated[Range, AfterValidator(_field_of_view)]
Elevation = _span(ge=-90.0, le=90.0)
CountRange = tuple[
    Annotated[int, Field(ge=0, le=MAX_COUNT)], Annotated[int, Field(ge=0, le=MAX_COUNT)]
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_printable)]
ConditionName = Annotated[Text, AfterValidator(_condition)]
FilePath = Annotated[str, Field(min_length=1, max_length=MAX_PATH), AfterValidator(_printable)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _ordered_range(cls, value, info):
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and all(isinstance(v, (int, float)) for v in value)
            and value[0] > value[1]
        ):
            raise ValueError(f"range [{value[0]}, {value[1]}] must be [low, high] with low <= high")
        return value


class CameraSpec(_Model):
    """Orbiting camera around the scene centre."""

    yfov_deg: FieldOfView = (35.0, 50.0)
    distance: Length = (3.0, 4.5)
    elevation_deg: Elevation = (10.0, 45.0)
    azimuth_deg: Degrees = (0.0, 360.0)
    target_jitter: Annotated[float, Field(ge=0.0, le=MAX_LENGTH)] = 0.1


class LightSpec(_Model):
    """Lights: a sun (directional key light) plus ``count - 1`` fill lights of the given kinds."""

    count: CountRange = (1, 3)
    kinds: list[LightKind] = Field(
        default=["directional", "point", "spot"], min_length=1, max_length=MAX_LIST
    )
    intensity: _span(ge=0.0, le=MAX_INTENSITY) = (2.0, 5.0)
    color_temperature_k: _span(ge=1000.0, le=40000.0) = (3500.0, 8000.0)
    elevation_deg: Elevation = (25.0, 75.0)
    ambient: Unit = (0.15, 0.35)

    @field_validator("count")
    @classmethod
    def _one_light(cls, value):
        if value[0] < 1:
            raise ValueError("at least one light (the sun) is required")
        if value[1] > MAX_LIGHTS:
            raise ValueError(f"at most {MAX_LIGHTS} lights (pyrender shades 4 of each kind)")
        return value


class MaterialSpec(_Model):
    """Object materials: HSV colour ranges, PBR ranges and photo textures."""

    saturation: Unit = (0.3, 1.0)
    value: Unit = (0.35, 1.0)
    metallic: Unit = (0.0, 0.4)
    roughness: Unit = (0.3, 0.9)
    texture_probability: Probability = 0.25
    textures: list[TextureName] = Field(
        default=["brick", "grass", "gravel", "coffee", "chelsea"], max_length=MAX_LIST
    )


class BackgroundSpec(_Model):
    """Background: a solid colour, or with ``photo_probability`` a crop of a photo."""

    photo_probability: Probability = 0.5
    photos: list[PhotoName] = Field(
        default=["astronaut", "coffee", "chelsea", "rocket", "hubble", "motorcycle"],
        max_length=MAX_LIST,
    )
    value: Unit = (0.2, 0.9)


class _SpecBase(_Model):
    name: Text = "scene"
    resolution: Annotated[int, Field(ge=16, le=2048)] = 128
    camera: CameraSpec = CameraSpec()
    lights: LightSpec = LightSpec()
    materials: MaterialSpec = MaterialSpec()
    background: BackgroundSpec = BackgroundSpec()
    conditions: list[ConditionName] = Field(default=["clone"], min_length=1, max_length=MAX_LIST)
    # record each thing's full extent (amodal box and RLE mask) beside its visible part
    amodal: bool = True
    _source: str = PrivateAttr(default="<spec>")

    @property
    def source(self) -> str:
        """The file (or label, such as ``edited spec``) the spec was read from, for errors."""
        return self._source

    def classes(self) -> list[str]:
        """Returns the class names; label ``k`` and semantic id ``k + 1`` refer to this list."""
        raise NotImplementedError


class DigitsSpec(_SpecBase):
    """3D extruded glyphs of the digits 0-9 in several fonts; the image label is the digit.

    ``width_scale`` stretches the glyph horizontally (1 = the font's own proportions);
    ``crossed_seven`` is the probability that a 7 gets a bar across its stem.
    """

    kind: Literal["digits"]
    fonts: list[FontName] = Field(default=list(FONT_NAMES), min_length=1, max_length=MAX_LIST)
    digits: list[Annotated[int, Field(ge=0, le=9)]] = Field(
        default=list(range(10)), min_length=1, max_length=MAX_LIST
    )
    extrusion: Annotated[float, Field(ge=0.01, le=1.0)] = 0.2
    yaw_deg: Degrees = (-35.0, 35.0)
    pitch_deg: Degrees = (-25.0, 25.0)
    roll_deg: Degrees = (-20.0, 20.0)
    width_scale: _span(ge=0.01, le=10.0) = (1.0, 1.0)
    crossed_seven: Probability = 0.0
    distractors: CountRange = (0, 2)
    camera: CameraSpec = CameraSpec(
        distance=(2.3, 3.2), elevation_deg=(-10.0, 10.0), azimuth_deg=(80.0, 100.0)
    )

    def classes(self) -> list[str]:
        return [str(d) for d in range(10)]


class ShapesSpec(_SpecBase):
    """Several primitives on a textured ground; the image label is the most visible object."""

    kind: Literal["shapes"]
    primitives: list[PrimitiveName] = Field(
        default=[
            "cube",
            "sphere",
            "cylinder",
            "cone",
            "torus",
            "capsule",
            "pyramid",
            "icosahedron",
            "ring",
            "prism",
        ],
        min_length=2,
        max_length=MAX_LIST,
    )
    count: CountRange = (3, 6)
    size: Length = (0.4, 0.9)
    area: Extent = 1.6
    ground_textures: list[TextureName] = Field(
        default=["grass", "gravel", "brick"], max_length=MAX_LIST
    )

    @field_validator("count")
    @classmethod
    def _some(cls, value):
        if value[1] < 1:
            raise ValueError("at least one object is needed for a label")
        return value

    def classes(self) -> list[str]:
        return list(self.primitives)


class MeshObjectSpec(_Model):
    """One user mesh file and the class it belongs to."""

    path: FilePath
    class_name: Text
    size: Length = (0.15, 0.3)
    count: CountRange = (0, 2)


class TableSpec(_Model):
    """The table: ``size`` is the side in metres of the square top, whose surface is z = 0."""

    size: Extent = 1.2
    textures: list[TextureName] = Field(default=["brick", "gravel", "grass"], max_length=MAX_LIST)


class TabletopSpec(_SpecBase):
    """The user's mesh files on a table without interpenetration, plus primitive distractors."""

    kind: Literal["tabletop"]
    objects: list[MeshObjectSpec] = Field(min_length=1, max_length=MAX_LIST)
    table: TableSpec = TableSpec()
    distractors: CountRange = (0, 3)
    camera: CameraSpec = CameraSpec(distance=(1.0, 1.6), elevation_deg=(25.0, 60.0))

    @model_validator(mode="after")
    def _some_object(self):
        total = sum(o.count[1] for o in self.objects)
        if total < 1:
            raise ValueError("objects: the counts allow no object at all; raise a count")
        if total > MAX_COUNT:
            raise ValueError(
                f"objects: the counts allow {total} objects in a sample, at most {MAX_COUNT}; "
                "lower the counts"
            )
        return self

    def classes(self) -> list[str]:
        return list(dict.fromkeys(o.class_name for o in self.objects))


class StreetCameraSpec(_Model):
    """Driver's view: a camera at driver height in the right lane looking down the road."""

    height: Length = (1.4, 1.8)
    yfov_deg: FieldOfView = (50.0, 65.0)
    yaw_deg: Degrees = (-8.0, 8.0)
    pitch_deg: Elevation = (-8.0, 0.0)
    lateral: Range = (-0.6, 0.6)


class StreetSpec(_SpecBase):
    """A road scene in the spirit of Virtual KITTI."""

    kind: Literal["street"]
    camera: StreetCameraSpec = StreetCameraSpec()  # type: ignore[assignment]
    road_width: Length = (6.5, 8.0)
    sidewalk_width: Length = (2.0, 3.5)
    cars: CountRange = (2, 8)
    poles: CountRange = (2, 6)
    trees: CountRange = (0, 6)
    buildings_per_side: CountRange = (3, 6)
    background: BackgroundSpec = BackgroundSpec(photo_probability=0.0)
    lights: LightSpec = LightSpec(count=(1, 1), intensity=(3.0, 5.0), elevation_deg=(30.0, 70.0))

    def classes(self) -> list[str]:
        return ["road", "sidewalk", "building", "pole", "car", "vegetation"]


SceneSpec = Annotated[
    DigitsSpec | ShapesSpec | TabletopSpec | StreetSpec, Field(discriminator="kind")
]
SCENE_KINDS = ("digits", "shapes", "tabletop", "street")


# libyaml's safe loader when PyYAML has it: the same documents, and it refuses deep nesting at
# once where the pure-Python loader takes seconds to run out of recursion.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Root(BaseModel):
    spec: SceneSpec


def _shown(value: object, limit: int = 40) -> str:
    """A short one-line picture of a user's value for an error message."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "...")
    text = repr(value) if isinstance(value, (int, float)) else f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def _location(loc: tuple) -> str:
    """The dotted field path of a pydantic error; keys the user wrote are shown safely."""
    parts = [
        p if isinstance(p, int) or (str(p).isidentifier() and len(str(p)) <= 40) else _shown(p)
        for p in loc
    ]
    return ".".join(str(p) for p in parts) or "(top level)"


def parse_spec(
    data: object, source: str = "<spec>"
) -> DigitsSpec | ShapesSpec | TabletopSpec | StreetSpec:
    """Validates a spec given as plain data.

    Args:
        data: the parsed YAML mapping.
        source: file name used in error messages.

    Raises:
        WorkbenchError: one line naming ``source``, the field path and what is allowed.
    """
    if not isinstance(data, dict):
        raise WorkbenchError(f"{source}: a scene spec must be a mapping with a 'kind' field")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in SCENE_KINDS:
        raise WorkbenchError(
            f"{source}: kind: unknown scene kind {_shown(kind)}; allowed: {', '.join(SCENE_KINDS)}"
        )
    try:
        spec = _Root(spec=data).spec
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = _location(err["loc"][2:])  # drop "spec" and the union tag
        msg = " ".join(err["msg"].removeprefix("Value error, ").split())
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against the documented fields"
        raise WorkbenchError(f"{source}: {field}: {msg}") from None
    spec._source = source
    return spec


def load_spec(path: str | Path) -> DigitsSpec | ShapesSpec | TabletopSpec | StreetSpec:
    r"""Reads and validates a scene spec YAML file.

    Relative mesh paths in a tabletop spec are resolved against the spec file's folder.

    Raises:
        WorkbenchError: the file is missing, too large, is not YAML, or does not validate.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "threes.yaml"
        >>> _ = path.write_text("kind: digits\nname: threes\nresolution: 32\ndigits: [3]\n")
        >>> spec = load_spec(path)
        >>> spec.kind, spec.resolution, spec.digits, spec.conditions
        ('digits', 32, [3], ['clone'])
        >>> _ = path.write_text("kind: digits\nresolution: 8\n")
        >>> load_spec(path)
        Traceback (most recent call last):
        ...
        workbench.errors.WorkbenchError: .../threes.yaml: resolution: Input should be greater ...
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise WorkbenchError(
                f"{path}: a scene spec is at most {MAX_SPEC_BYTES:,} bytes; this one is "
                f"{path.stat().st_size:,}"
            )
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: scene spec not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: cannot read the scene spec ({exc})") from None
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise WorkbenchError(f"{path}: not valid YAML (nested too deeply)") from None
    spec = parse_spec(data, str(path))
    if isinstance(spec, TabletopSpec):
        objects = []
        for i, o in enumerate(spec.objects):
            try:
                resolved = (path.parent / o.path).resolve()
            except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
                raise WorkbenchError(f"{path}: objects.{i}.path: cannot resolve ({exc})") from None
            objects.append(o.model_copy(update={"path": str(resolved)}))
        spec = spec.model_copy(update={"objects": objects})
    return spec
