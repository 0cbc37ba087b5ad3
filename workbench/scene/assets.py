"""Assets: primitive meshes, 3D font glyphs, user mesh files and photo textures.

Everything is built from what ships inside installed packages (pyrender's OpenSans fonts,
scikit-image's photos); nothing is downloaded. Builders are cached per process.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import freetype
import numpy as np
import shapely
import shapely.affinity
import trimesh
from PIL import Image
from shapely.geometry import Polygon

from workbench.errors import WorkbenchError
from workbench.imageio import PNG_JPEG, read_image
from workbench.scene import meshfile

_SKIMAGE_FILES = {
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "astronaut": "astronaut.png",
    "rocket": "rocket.jpg",
    "hubble": "hubble_deep_field.jpg",
    "motorcycle": "motorcycle_left.png",
}


def font_path(name: str) -> Path:
    """Returns the path of a font face: pyrender's OpenSans faces, or matplotlib's DejaVu, STIX
    and Computer Modern faces."""
    if name.startswith("OpenSans"):
        package = importlib.util.find_spec("pyrender")  # found, not imported: that binds OpenGL
        return Path(package.submodule_search_locations[0]) / "fonts" / f"{name}.ttf"
    package = importlib.util.find_spec("matplotlib")
    return (
        Path(package.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / f"{name}.ttf"
    )


@functools.cache
def photo(name: str, max_side: int = 512) -> np.ndarray:
    """Returns a scikit-image sample photo as uint8 RGB, at most ``max_side`` pixels a side."""
    import skimage.data

    path = Path(skimage.data.__file__).parent / _SKIMAGE_FILES[name]
    image = read_image(path, PNG_JPEG).convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return np.asarray(image)


def texture(name: str) -> np.ndarray:
    """Returns a photo texture as uint8 RGB (256 pixels a side at most)."""
    return photo(name, 256)


def _box_uv(mesh: trimesh.Trimesh) -> np.ndarray:
    """Planar UVs from the two largest extents of the mesh (enough for photo textures)."""
    extents = np.maximum(mesh.extents, 1e-9)
    axes = np.argsort(extents)[::-1][:2]
    lo = mesh.bounds[0][axes]
    return (mesh.vertices[:, axes] - lo) / extents[axes]


def with_uv(mesh: trimesh.Trimesh, tiles: float = 1.0) -> trimesh.Trimesh:
    """Returns a copy of ``mesh`` with planar texture coordinates repeated ``tiles`` times."""
    out = mesh.copy()
    out.visual = trimesh.visual.TextureVisuals(uv=_box_uv(mesh) * tiles)
    return out


SMOOTH_PRIMITIVES = frozenset({"sphere", "cylinder", "cone", "torus", "capsule"})


@functools.cache
def primitive(kind: str) -> trimesh.Trimesh:
    """Returns a primitive mesh of about unit size, resting on z = 0 and centred in x, y.

    Args:
        kind: one of cube, sphere, cylinder, cone, torus, capsule, pyramid, icosahedron, ring,
            prism.
    """
    c = trimesh.creation
    builders = {
        "cube": lambda: c.box((1.0, 1.0, 1.0)),
        "sphere": lambda: c.icosphere(subdivisions=2, radius=0.5),
        "cylinder": lambda: c.cylinder(radius=0.45, height=1.0, sections=24),
        "cone": lambda: c.cone(radius=0.5, height=1.0, sections=24),
        "torus": lambda: c.torus(
            major_radius=0.36, minor_radius=0.14, major_sections=24, minor_sections=12
        ),
        "capsule": lambda: c.capsule(height=0.6, radius=0.25, count=(12, 12)),
        "pyramid": lambda: c.cone(radius=0.6, height=0.9, sections=4),
        "icosahedron": lambda: c.icosahedron().apply_scale(0.5),
        "ring": lambda: c.annulus(r_min=0.25, r_max=0.5, height=0.35, sections=24),
        "prism": lambda: c.cylinder(radius=0.55, height=0.8, sections=3),
    }
    mesh = builders[kind]()
    if kind == "torus":  # stand the ring up so it reads as a torus from the side
        mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    mesh.apply_translation([-mesh.centroid[0], -mesh.centroid[1], -mesh.bounds[0][2]])
    return with_uv(mesh)


def _bezier(points: np.ndarray, steps: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps + 1)[1:, None]
    if len(points) == 3:
        p0, p1, p2 = points
        return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    p0, p1, p2, p3 = points
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _glyph_contours(font: str, char: str) -> list[np.ndarray]:
    face = freetype.Face(str(font_path(font)))
    face.set_char_size(64 * 64)
    face.load_char(char, freetype.FT_LOAD_NO_BITMAP | freetype.FT_LOAD_NO_HINTING)
    contours: list[list[np.ndarray]] = []

    def move_to(a, _):
        contours.append([np.array([a.x, a.y], float)])

    def line_to(a, _):
        contours[-1].append(np.array([a.x, a.y], float))

    def conic_to(a, b, _):
        pts = np.array([contours[-1][-1], [a.x, a.y], [b.x, b.y]], float)
        contours[-1].extend(_bezier(pts, 6))

    def cubic_to(a, b, c, _):
        pts = np.array([contours[-1][-1], [a.x, a.y], [b.x, b.y], [c.x, c.y]], float)
        contours[-1].extend(_bezier(pts, 8))

    face.glyph.outline.decompose(
        None, move_to=move_to, line_to=line_to, conic_to=conic_to, cubic_to=cubic_to
    )
    return [np.array(c) for c in contours if len(c) >= 3]


def _arc(
    cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 16
) -> list:
    t = np.radians(np.linspace(start, stop, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True))


# Handwriting-like digits as pen strokes in a 0.7 x 1 box (y up): open 4, straight-stemmed 9,
# a 1 with a flag, as people write them; the "Strokes" faces buffer them into solid outlines.
_STROKES: dict[str, list[list]] = {
    "0": [_arc(0.35, 0.5, 0.3, 0.47, 0, 360, 32)],
    "1": [[(0.2, 0.78), (0.38, 0.97), (0.38, 0.03)]],
    "2": [_arc(0.35, 0.7, 0.28, 0.26, 160, -30) + [(0.06, 0.04), (0.66, 0.04)]],
    "3": [_arc(0.33, 0.73, 0.27, 0.23, 150, -90), _arc(0.33, 0.27, 0.3, 0.25, 90, -160)],
    "4": [[(0.12, 0.97), (0.06, 0.38), (0.66, 0.38)], [(0.5, 0.75), (0.5, 0.03)]],
    "5": [[(0.62, 0.96), (0.14, 0.96), (0.1, 0.56)] + _arc(0.33, 0.32, 0.3, 0.28, 120, -150)],
    "6": [_arc(0.45, 0.6, 0.3, 0.38, 70, 180, 10) + _arc(0.36, 0.27, 0.29, 0.25, 180, 540, 28)],
    "7": [[(0.05, 0.96), (0.66, 0.96), (0.22, 0.03)]],
    "8": [_arc(0.35, 0.74, 0.23, 0.22, 0, 360, 24), _arc(0.35, 0.27, 0.29, 0.25, 0, 360, 24)],
    "9": [_arc(0.33, 0.7, 0.28, 0.26, 0, 360, 24), [(0.61, 0.72), (0.55, 0.03)]],
}
STROKE_WIDTHS = {"Strokes": 0.11, "Strokes-Bold": 0.17}


def _stroke_outline(font: str, char: str):
    width = STROKE_WIDTHS[font]
    lines = [shapely.LineString(points) for points in _STROKES[char]]
    return shapely.union_all([line.buffer(width / 2) for line in lines])


@functools.cache
def glyph(font: str, char: str, extrusion: float) -> trimesh.Trimesh:
    """Returns a 3D glyph: the character's outline extruded along +z, 1 unit tall, centred.

    ``font`` is a TrueType face (see :func:`font_path`) or a "Strokes" face, whose digits are
    pen strokes written the way people write them.

    The front face looks along +z. Holes (as in 0, 6, 8, 9) are kept: contours nested an odd
    number of times are holes of the contour around them.
    """
    if font in STROKE_WIDTHS:
        shape = _stroke_outline(font, char)
    else:
        rings = [Polygon(c).buffer(0) for c in _glyph_contours(font, char)]
        rings = [r for r in rings if r.area > 0]
        depth = [sum(o.area > r.area and o.contains(r) for o in rings) for r in rings]
        outer = [r for r, d in zip(rings, depth, strict=True) if d % 2 == 0]
        holes = [r for r, d in zip(rings, depth, strict=True) if d % 2 == 1]
        shape = shapely.union_all(outer).difference(shapely.union_all(holes))
    polygons = list(shape.geoms) if hasattr(shape, "geoms") else [shape]
    minx, miny, maxx, maxy = shape.bounds
    scale = 1.0 / (maxy - miny)
    parts = []
    for poly in polygons:
        poly = shapely.affinity.scale(
            shapely.affinity.translate(poly, -(minx + maxx) / 2, -(miny + maxy) / 2),
            scale,
            scale,
            origin=(0, 0),
        )
        part = trimesh.creation.extrude_polygon(poly, extrusion)
        part.apply_translation([0, 0, -extrusion / 2])
        parts.append(part)
    return with_uv(trimesh.util.concatenate(parts))


@functools.cache
def crossed_seven(font: str, extrusion: float) -> trimesh.Trimesh:
    """Returns the 7 of ``font`` with a bar across its stem, as many people write it."""
    seven = glyph(font, "7", extrusion)
    bar = trimesh.creation.box((0.45 * seven.extents[0] + 0.1, 0.09, extrusion))
    bar.apply_translation([0.0, -0.02, 0.0])
    return with_uv(trimesh.util.concatenate([seven, bar]))


def load_mesh_file(path: str, field: str) -> list[trimesh.Trimesh]:
    """Loads a user mesh file (OBJ with MTL and textures, GLB/GLTF, PLY, STL) as a list of parts.

    The parts are recentred to rest on z = 0 and scaled so that the largest extent is 1. The
    file is read within the limits of :mod:`workbench.scene.meshfile` (size, formats, triangle
    and vertex budget after instancing, safe texture decoding).

    Args:
        path: mesh file path.
        field: spec field that named the file, for error messages.

    Raises:
        WorkbenchError: the file is missing, unreadable, over a limit or holds no triangles.
    """
    return [part.copy() for part in _load_mesh_file(path, field)]


@functools.lru_cache(maxsize=64)
def _load_mesh_file(path: str, field: str) -> tuple[trimesh.Trimesh, ...]:
    parts = meshfile.load(Path(path), field)
    bounds = np.array([p.bounds for p in parts])
    if not np.isfinite(bounds).all():
        raise WorkbenchError(f"{field}: mesh file {path} has vertices that are not finite numbers")
    lo, hi = bounds[:, 0].min(axis=0), bounds[:, 1].max(axis=0)
    scale = 1.0 / max(float((hi - lo).max()), 1e-9)
    shift = -np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    for part in parts:
        part.apply_translation(shift)
        part.apply_scale(scale)
    return tuple(parts)


def asset_files(spec) -> list[Path]:
    """Returns every mesh and texture file a spec uses, resolved, in spec order without repeats.

    That is each tabletop object's mesh file followed by the files it references (an OBJ's
    material library and textures, a glTF's external buffers and images); the photo textures
    named in specs ship inside scikit-image and are not listed. Relative mesh paths resolve
    against the working folder (:func:`~workbench.scene.spec.load_spec` has already made a spec
    file's paths absolute). A missing mesh file is listed as named; loading it reports it.

    Raises:
        WorkbenchError: a mesh file has an unsupported format, is too large or an archive, or
            references a file outside its folder (one line naming ``objects.N.path``).
    """
    files: dict[Path, None] = {}
    for i, o in enumerate(getattr(spec, "objects", [])):
        field = f"objects.{i}.path"
        path = meshfile.resolve(Path(o.path), field)
        files[path] = None
        meshfile.mesh_format(path, field)
        if meshfile.is_file(path):
            data = meshfile.read_limited(path, field)
            files.update(dict.fromkeys(meshfile.references(path, data, field).values()))
    return list(files)
