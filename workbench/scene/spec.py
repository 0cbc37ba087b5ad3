"""Scene specs: the YAML files in ``scenes/`` validated by pydantic models.

A spec fixes what a dataset contains (kind, resolution, classes) and the ranges every
randomizer draws from. ``load_spec`` turns any validation problem into one
:class:`~workbench.errors.WorkbenchError` line naming the file, the field path and what is
allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.errors import WorkbenchError

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
    "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic",
    "DejaVuSerif-BoldItalic", "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic",
    "STIXGeneralBolIta", "cmr10", "cmss10", "cmti10", "cmtt10", "cmb10",
    "Strokes", "Strokes-Bold",  # pen strokes written like handwriting (workbench.scene.assets)
)  # fmt: skip
FontName = Literal[FONT_NAMES + EXTRA_FONT_NAMES]  # type: ignore[valid-type]
LightKind = Literal["directional", "point", "spot"]
CONDITIONS = ("clone", "overcast", "fog", "rain", "morning", "sunset", "night")
ConditionName = Literal[CONDITIONS]  # type: ignore[valid-type]

Range = tuple[float, float]
CountRange = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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

    yfov_deg: Range = (35.0, 50.0)
    distance: Range = (3.0, 4.5)
    elevation_deg: Range = (10.0, 45.0)
    azimuth_deg: Range = (0.0, 360.0)
    target_jitter: Annotated[float, Field(ge=0.0)] = 0.1

    @field_validator("yfov_deg")
    @classmethod
    def _fov(cls, value: Range) -> Range:
        if not (1.0 <= value[0] and value[1] <= 170.0):
            raise ValueError("field of view must lie within [1, 170] degrees")
        return value

    @field_validator("distance")
    @classmethod
    def _distance(cls, value: Range) -> Range:
        if value[0] <= 0:
            raise ValueError("distance must be positive")
        return value


class LightSpec(_Model):
    """Lights: a sun (directional key light) plus ``count - 1`` fill lights of the given kinds."""

    count: CountRange = (1, 3)
    kinds: list[LightKind] = Field(default=["directional", "point", "spot"], min_length=1)
    intensity: Range = (2.0, 5.0)
    color_temperature_k: Range = (3500.0, 8000.0)
    elevation_deg: Range = (25.0, 75.0)
    ambient: Range = (0.15, 0.35)

    @field_validator("count")
    @classmethod
    def _one_light(cls, value):
        if value[0] < 1:
            raise ValueError("at least one light (the sun) is required")
        return value


class MaterialSpec(_Model):
    """Object materials: HSV colour ranges, PBR ranges and photo textures."""

    saturation: Range = (0.3, 1.0)
    value: Range = (0.35, 1.0)
    metallic: Range = (0.0, 0.4)
    roughness: Range = (0.3, 0.9)
    texture_probability: Probability = 0.25
    textures: list[TextureName] = ["brick", "grass", "gravel", "coffee", "chelsea"]


class BackgroundSpec(_Model):
    """Background: a solid colour, or with ``photo_probability`` a crop of a photo."""

    photo_probability: Probability = 0.5
    photos: list[PhotoName] = ["astronaut", "coffee", "chelsea", "rocket", "hubble", "motorcycle"]
    value: Range = (0.2, 0.9)


class _SpecBase(_Model):
    name: str = "scene"
    resolution: Annotated[int, Field(ge=16, le=2048)] = 128
    camera: CameraSpec = CameraSpec()
    lights: LightSpec = LightSpec()
    materials: MaterialSpec = MaterialSpec()
    background: BackgroundSpec = BackgroundSpec()
    conditions: list[ConditionName] = Field(default=["clone"], min_length=1)

    def classes(self) -> list[str]:
        """Returns the class names; label ``k`` and semantic id ``k + 1`` refer to this list."""
        raise NotImplementedError


class DigitsSpec(_SpecBase):
    """3D extruded glyphs of the digits 0-9 in several fonts; the image label is the digit.

    ``width_scale`` stretches the glyph horizontally (1 = the font's own proportions);
    ``crossed_seven`` is the probability that a 7 gets a bar across its stem.
    """

    kind: Literal["digits"]
    fonts: list[FontName] = Field(default=list(FONT_NAMES), min_length=1)
    digits: list[Annotated[int, Field(ge=0, le=9)]] = Field(default=list(range(10)), min_length=1)
    extrusion: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    yaw_deg: Range = (-35.0, 35.0)
    pitch_deg: Range = (-25.0, 25.0)
    roll_deg: Range = (-20.0, 20.0)
    width_scale: Range = (1.0, 1.0)
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
    )
    count: CountRange = (3, 6)
    size: Range = (0.4, 0.9)
    area: Annotated[float, Field(gt=0.0)] = 1.6
    ground_textures: list[TextureName] = ["grass", "gravel", "brick"]

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

    path: str
    class_name: str
    size: Range = (0.15, 0.3)
    count: CountRange = (0, 2)


class TableSpec(_Model):
    """The table: ``size`` is the side in metres of the square top, whose surface is z = 0."""

    size: Annotated[float, Field(gt=0.0)] = 1.2
    textures: list[TextureName] = ["brick", "gravel", "grass"]


class TabletopSpec(_SpecBase):
    """The user's mesh files on a table without interpenetration, plus primitive distractors."""

    kind: Literal["tabletop"]
    objects: list[MeshObjectSpec] = Field(min_length=1)
    table: TableSpec = TableSpec()
    distractors: CountRange = (0, 3)
    camera: CameraSpec = CameraSpec(distance=(1.0, 1.6), elevation_deg=(25.0, 60.0))

    @model_validator(mode="after")
    def _some_object(self):
        if sum(o.count[1] for o in self.objects) < 1:
            raise ValueError("objects: the counts allow no object at all; raise a count")
        return self

    def classes(self) -> list[str]:
        return list(dict.fromkeys(o.class_name for o in self.objects))


class StreetCameraSpec(_Model):
    """Driver's view: a camera at driver height in the right lane looking down the road."""

    height: Range = (1.4, 1.8)
    yfov_deg: Range = (50.0, 65.0)
    yaw_deg: Range = (-8.0, 8.0)
    pitch_deg: Range = (-8.0, 0.0)
    lateral: Range = (-0.6, 0.6)


class StreetSpec(_SpecBase):
    """A road scene in the spirit of Virtual KITTI."""

    kind: Literal["street"]
    camera: StreetCameraSpec = StreetCameraSpec()  # type: ignore[assignment]
    road_width: Range = (6.5, 8.0)
    sidewalk_width: Range = (2.0, 3.5)
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


class _Root(BaseModel):
    spec: SceneSpec


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
    if kind not in SCENE_KINDS:
        raise WorkbenchError(
            f"{source}: kind: unknown scene kind {kind!r}; allowed: {', '.join(SCENE_KINDS)}"
        )
    try:
        return _Root(spec=data).spec
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"][2:]]  # drop "spec" and the union tag
        field = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against the documented fields"
        raise WorkbenchError(f"{source}: {field}: {msg}") from None


def load_spec(path: str | Path) -> DigitsSpec | ShapesSpec | TabletopSpec | StreetSpec:
    """Reads and validates a scene spec YAML file.

    Relative mesh paths in a tabletop spec are resolved against the spec file's folder.

    Raises:
        WorkbenchError: the file is missing, is not YAML, or does not validate.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: scene spec not found") from None
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    spec = parse_spec(data, str(path))
    if isinstance(spec, TabletopSpec):
        objects = [
            o.model_copy(update={"path": str((path.parent / o.path).resolve())})
            for o in spec.objects
        ]
        spec = spec.model_copy(update={"objects": objects})
    return spec
