"""User mesh files: the formats read, their limits and the files they reference.

A mesh file is one of :data:`MESH_FORMATS` (judged by its extension, and never an archive by
its content), at most :data:`MAX_FILE_BYTES`, and so is every file it references: an OBJ's
material library and that library's ``map_Kd`` textures, a glTF's external buffers and images.
References must stay inside the mesh file's folder. The names are read the way trimesh's loaders
read them, so :func:`references` lists exactly the files a load may open; :func:`load` hands
trimesh those bytes only, after checking them:

- textures decode with :func:`workbench.imageio.decode_image` (PNG or JPEG, pixel limit);
- a glTF's structure is checked before trimesh reads it: node count, no compressed geometry,
  the bytes its accessors claim, and the triangles and vertices of every mesh times the nodes
  that show it (so one mesh instanced on thousands of nodes is refused unexpanded);
- an OBJ's faces and vertices are counted from its text;
- after loading, the triangles and vertices over trimesh's scene graph (each geometry times
  its instances) are checked again, before the scene is expanded into parts.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
from pathlib import Path

import trimesh

from workbench.errors import WorkbenchError
from workbench.imageio import PNG_JPEG, decode_image

MESH_FORMATS = ("obj", "glb", "gltf", "ply", "stl")
MAX_FILE_BYTES = 32 * 2**20  # a mesh file or a file it references (500k triangles as STL: 25 MB)
MAX_FACES = 500_000  # triangles of one mesh file, counted over every instance
MAX_VERTICES = 1_000_000  # vertices of one mesh file, counted over every instance
MAX_NODES = 10_000  # glTF nodes, and glTF child references
MAX_ACCESSOR_BYTES = 256 * 2**20  # the arrays a glTF's accessors make trimesh allocate, in all
COMPRESSED = ("KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_meshopt_compression")
# Leading bytes of archive and compressed formats, refused whatever a file's extension says.
ARCHIVE_MAGIC = {
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_GLB_MAGIC, _GLB_JSON = b"glTF", 0x4E4F534A
_ITEMSIZE = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}  # glTF componentType
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_OBJ_FACE = re.compile(rb"^[ \t]*f[ \t]+([^\n]*)", re.MULTILINE)
_OBJ_VERTEX = re.compile(rb"^[ \t]*v[ \t]", re.MULTILINE)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def resolve(path: Path, field: str) -> Path:
    """Returns ``path`` made absolute with symlinks resolved.

    Raises:
        WorkbenchError: the path cannot be resolved (a symlink loop, say).
    """
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL in the name
        raise WorkbenchError(f"{field}: cannot resolve {path} ({_one_line(exc)})") from None


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for names the system cannot even look up."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def mesh_format(path: Path, field: str) -> str:
    """Returns the format of a mesh file from its extension.

    Raises:
        WorkbenchError: the extension is not one of :data:`MESH_FORMATS` (archives such as zip
            are not read).
    """
    ext = path.suffix.lower().lstrip(".")
    if ext not in MESH_FORMATS:
        raise WorkbenchError(
            f"{field}: {path}: unsupported mesh format {path.suffix or '(none)'!r}; "
            f"use {', '.join(MESH_FORMATS)} (archives are not read)"
        )
    return ext


def read_limited(path: Path, field: str) -> bytes:
    """Reads a mesh file or a file it references, refusing large files and archives.

    Raises:
        WorkbenchError: missing, unreadable, over :data:`MAX_FILE_BYTES`, or an archive.
    """
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise WorkbenchError(f"{field}: {path} is not a file")
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
        if max(size, len(data)) > MAX_FILE_BYTES:
            raise WorkbenchError(
                f"{field}: {path}: {max(size, len(data)):,} bytes is too large (at most "
                f"{MAX_FILE_BYTES:,})"
            )
    except FileNotFoundError:
        raise WorkbenchError(f"{field}: mesh file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{field}: cannot read {path} ({_one_line(exc)})") from None
    for magic, kind in ARCHIVE_MAGIC.items():
        if data.startswith(magic):
            raise WorkbenchError(
                f"{field}: {path} is a {kind} archive; archives are not read, give the mesh file"
            )
    return data


def gltf_header(data: bytes, ext: str, path: Path, field: str) -> dict:
    """Returns the JSON header of a glTF (``.gltf`` text or ``.glb`` binary) file.

    Raises:
        WorkbenchError: not a glTF 2 file or its JSON does not parse.
    """
    try:
        if ext == "glb":
            magic, version, _, length, kind = struct.unpack_from("<4sIIII", data)
            if magic != _GLB_MAGIC or version != 2 or kind != _GLB_JSON:
                raise ValueError("not a glTF 2 binary file")
            data = data[20 : 20 + length]
        header = json.loads(data)
    except (ValueError, struct.error, RecursionError) as exc:
        raise WorkbenchError(f"{field}: {path}: not a readable glTF file ({exc})") from None
    if not isinstance(header, dict):
        raise WorkbenchError(f"{field}: {path}: not a readable glTF file (no JSON object)")
    return header


def _gltf_uris(header: dict) -> list[str]:
    """External URIs of a glTF header, as trimesh reads them (base64 ``data:`` URIs excluded)."""
    uris = []
    for key in ("buffers", "images"):
        items = header.get(key, [])
        for item in items if isinstance(items, list) else []:
            uri = item.get("uri") if isinstance(item, dict) else None
            if isinstance(uri, str) and "base64," not in uri:
                uris.append(uri)
    return uris


def _obj_material_library(text: str) -> list[str]:
    """The material library an OBJ names: the rest of the line after its first ``mtllib``."""
    start = text.find("mtllib")
    if start < 0:
        return []
    end = text.find("\n", start)
    name = text[start + 6 : end if end >= 0 else len(text)].strip()
    return [name] if name else []


def _mtl_textures(text: str) -> list[str]:
    """The ``map_Kd`` texture names of an MTL file (the only maps trimesh reads)."""
    names = []
    for line in text.strip().splitlines():
        split = line.strip().split()
        if len(split) > 1 and split[0].lower() == "map_kd":
            names.append(line[line.lower().index("map_kd") + 6 :].strip())
    return names


def _resolve(folder: Path, name: str, path: Path, field: str) -> Path:
    target = resolve(folder / name.strip(), field)
    if not target.is_relative_to(folder):
        raise WorkbenchError(
            f"{field}: {path} references {name!r}, outside the mesh file's folder; keep "
            "materials and textures next to the mesh"
        )
    return target


def references(path: Path, data: bytes, field: str) -> dict[str, Path]:
    """Returns name as written -> resolved path for every existing file a mesh file references.

    Names that do not exist are left out (the loaders skip them too).

    Args:
        path: the mesh file (resolved).
        data: its content (see :func:`read_limited`).
        field: spec field that named the file, for error messages.

    Raises:
        WorkbenchError: a reference leaves the mesh file's folder, or a referenced material
            library is too large or an archive.
    """
    ext = mesh_format(path, field)
    folder = resolve(path.parent, field)
    found: dict[str, Path] = {}
    if ext == "obj":
        for library in _obj_material_library(data.decode("utf-8", errors="replace")):
            mtl = _resolve(folder, library, path, field)
            if is_file(mtl):
                found[library] = mtl
                text = read_limited(mtl, field).decode("utf-8", errors="replace")
                for name in _mtl_textures(text):
                    image = _resolve(folder, name, path, field)
                    if is_file(image):
                        found[name] = image
    elif ext in ("gltf", "glb"):
        for name in _gltf_uris(gltf_header(data, ext, path, field)):
            target = _resolve(folder, name, path, field)
            if is_file(target):
                found[name] = target
    return found


def _budget(faces: int, vertices: int, what: str, path: Path, field: str) -> None:
    if faces > MAX_FACES or vertices > MAX_VERTICES:
        raise WorkbenchError(
            f"{field}: {path}: {what} {faces:,} triangles and {vertices:,} vertices; at most "
            f"{MAX_FACES:,} and {MAX_VERTICES:,} are allowed, simplify the mesh"
        )


def _check_obj(data: bytes, path: Path, field: str) -> None:
    """Counts an OBJ's triangles (polygons as fans) and vertices from its text."""
    faces = sum(max(len(line.split()) - 2, 0) for line in _OBJ_FACE.findall(data))
    _budget(faces, len(_OBJ_VERTEX.findall(data)), "holds", path, field)


def _glb_binary(data: bytes) -> bytes:
    """The BIN chunk of a GLB file (empty if it has none)."""
    offset = 12
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from("<II", data, offset)
        if kind == 0x004E4942:
            return data[offset + 8 : offset + 8 + length]
        offset += 8 + length
    return b""


def _gltf_buffers(header: dict, data: bytes, ext: str, archive: dict[str, bytes]) -> list[bytes]:
    """The bytes of each glTF buffer: the GLB's BIN chunk, a base64 URI or a referenced file."""
    buffers = []
    for buffer in header.get("buffers", []):
        uri = buffer.get("uri")
        if uri is None:
            buffers.append(_glb_binary(data) if ext == "glb" else b"")
        elif "base64," in uri:
            buffers.append(base64.b64decode(uri[uri.find("base64,") + 7 :]))
        else:
            buffers.append(archive.get(uri, b""))
    return buffers


def _gltf_images(header: dict, buffers: list[bytes], archive: dict[str, bytes]) -> list[bytes]:
    """The encoded bytes of every glTF image trimesh would decode."""
    views = header.get("bufferViews", [])
    images = []
    for image in header.get("images", []):
        if "bufferView" in image:
            view = views[image["bufferView"]]
            start = view.get("byteOffset", 0)
            images.append(buffers[view["buffer"]][start : start + view["byteLength"]])
        elif "base64," in image.get("uri", ""):
            uri = image["uri"]
            images.append(base64.b64decode(uri[uri.find("base64,") + 7 :]))
        elif image.get("uri") in archive:
            images.append(archive[image["uri"]])
    return images


def _mesh_sizes(header: dict) -> list[tuple[int, int]]:
    """(triangles, vertices) of each glTF mesh, from its accessors' counts."""
    accessors = header.get("accessors", [])
    sizes = []
    for mesh in header.get("meshes", []):
        faces = vertices = 0
        for primitive in mesh["primitives"]:
            count = int(accessors[primitive["attributes"]["POSITION"]]["count"])
            if "indices" in primitive:
                indexed = int(accessors[primitive["indices"]]["count"])
            else:
                indexed = count
            mode = primitive.get("mode", 4)
            faces += indexed // 3 if mode == 4 else max(indexed - 2, 0) if mode in (5, 6) else 0
            vertices += count
        sizes.append((faces, vertices))
    return sizes


def _instances(header: dict) -> dict[int, int]:
    """Returns mesh index -> number of scene-graph edges that show it, walked from the scene's
    roots the way trimesh walks them (each parent-child edge once, each node's children once)."""
    nodes = header.get("nodes", [])
    scenes = header.get("scenes", [])
    roots = [int(r) for r in scenes[header.get("scene", 0)].get("nodes", [])] if scenes else []
    edges = {(-1, r) for r in roots}
    todo, expanded = list(roots), set()
    while todo:
        node = todo.pop()
        if node in expanded:
            continue
        expanded.add(node)
        for child in nodes[node].get("children", []):
            edges.add((node, int(child)))
            todo.append(int(child))
    shown: dict[int, int] = {}
    for _, child in edges:
        if "mesh" in nodes[child]:
            mesh = int(nodes[child]["mesh"])
            shown[mesh] = shown.get(mesh, 0) + 1
    return shown


def _check_gltf(
    header: dict, data: bytes, ext: str, archive: dict[str, bytes], path: Path, field: str
) -> None:
    """Checks a glTF's structure before trimesh reads it (see the module docstring)."""
    used = set(header.get("extensionsUsed", [])) | set(header.get("extensionsRequired", []))
    if used & set(COMPRESSED):
        raise WorkbenchError(
            f"{field}: {path}: compressed geometry ({', '.join(sorted(used & set(COMPRESSED)))})"
            " is not unpacked; export the mesh without compression"
        )
    nodes = header.get("nodes", [])
    references = sum(len(node.get("children", [])) for node in nodes)
    if len(nodes) > MAX_NODES or references > MAX_NODES:
        raise WorkbenchError(
            f"{field}: {path}: {len(nodes):,} nodes and {references:,} child references; at "
            f"most {MAX_NODES:,} of each are allowed"
        )
    claimed = 0
    for accessor in header.get("accessors", []):
        count = int(accessor["count"])
        if count < 0:
            raise ValueError(f"accessor count {count} is negative")
        itemsize = _ITEMSIZE.get(accessor["componentType"], 8)
        claimed += count * _COMPONENTS.get(accessor["type"], 16) * itemsize
    if claimed > MAX_ACCESSOR_BYTES:
        raise WorkbenchError(
            f"{field}: {path}: its accessors claim {claimed:,} bytes of arrays; at most "
            f"{MAX_ACCESSOR_BYTES:,} are allowed"
        )
    sizes = _mesh_sizes(header)
    shown = _instances(header)
    faces = sum(sizes[m][0] * n for m, n in shown.items())
    vertices = sum(sizes[m][1] * n for m, n in shown.items())
    _budget(faces, vertices, f"shows {sum(shown.values()):,} mesh instances with", path, field)
    buffers = _gltf_buffers(header, data, ext, archive)
    for i, image in enumerate(_gltf_images(header, buffers, archive)):
        _texture(image, f"image {i}", path, field)


def _texture(data: bytes, name: str, path: Path, field: str) -> None:
    """Decodes a texture of mesh file ``path`` with the safe decoder (PNG or JPEG, pixel limit)."""
    try:
        decode_image(data, name, PNG_JPEG, max_bytes=MAX_FILE_BYTES)
    except WorkbenchError as exc:
        raise WorkbenchError(f"{field}: {path}: texture {exc}") from None


def _instanced_size(scene: trimesh.Scene) -> tuple[int, int]:
    """(triangles, vertices) over a loaded scene graph: each geometry times its instances."""
    faces = vertices = 0
    for name, nodes in scene.graph.geometry_nodes.items():
        geometry = scene.geometry.get(name)
        if isinstance(geometry, trimesh.Trimesh):
            faces += len(geometry.faces) * len(nodes)
            vertices += len(geometry.vertices) * len(nodes)
    return faces, vertices


def load(path: Path, field: str) -> list[trimesh.Trimesh]:
    """Loads a mesh file within the limits of this module as a list of triangle meshes, one per
    instance (in the file's frame).

    Args:
        path: the mesh file.
        field: spec field that named the file, for error messages.

    Raises:
        WorkbenchError: one line naming ``field`` and the file: not found, unsupported format,
            too large, an archive, a reference outside its folder, a bad texture, over the
            triangle or vertex budget, malformed, or holding no triangles.
    """
    path = Path(path)
    ext = mesh_format(path, field)
    data = read_limited(path, field)
    refs = references(path, data, field)
    archive = {name: read_limited(target, field) for name, target in refs.items()}
    try:
        if ext == "obj":
            _check_obj(data, path, field)
            library = _obj_material_library(data.decode("utf-8", errors="replace"))
            for name in [name for name in archive if name not in library]:
                _texture(archive[name], str(refs[name]), path, field)
        elif ext in ("gltf", "glb"):
            _check_gltf(gltf_header(data, ext, path, field), data, ext, archive, path, field)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise WorkbenchError(
            f"{field}: {path}: malformed {ext.upper()} file ({type(exc).__name__}: "
            f"{_one_line(exc)})"
        ) from None
    try:
        scene = trimesh.load_scene(
            io.BytesIO(data),
            file_type=ext,
            resolver=trimesh.resolvers.ZipResolver(archive),
            process=False,
        )
        faces, vertices = _instanced_size(scene)
        _budget(faces, vertices, "shows", path, field)
        parts = [g for g in scene.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    except WorkbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - trimesh raises many unrelated types for bad files
        raise WorkbenchError(f"{field}: cannot read mesh file {path}: {_one_line(exc)}") from None
    if not parts:
        raise WorkbenchError(f"{field}: mesh file {path} holds no triangles")
    return parts
