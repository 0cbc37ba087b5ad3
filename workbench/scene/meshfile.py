"""User mesh files: the formats read, their size limits and the files they reference.

A mesh file is one of :data:`MESH_FORMATS` (judged by its extension, and never an archive by
its content), at most :data:`MAX_FILE_BYTES`, and so is every file it references: an OBJ's
material library and that library's ``map_Kd`` textures, a glTF's external buffers and images.
References must stay inside the mesh file's folder. The names are read the way trimesh's loaders
read them, so :func:`references` lists exactly the files a load may open.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from workbench.errors import WorkbenchError

MESH_FORMATS = ("obj", "glb", "gltf", "ply", "stl")
MAX_FILE_BYTES = 32 * 2**20  # a mesh file or a file it references (500k triangles as STL: 25 MB)
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
        if size > MAX_FILE_BYTES:
            raise WorkbenchError(
                f"{field}: {path}: {size:,} bytes is too large (at most {MAX_FILE_BYTES:,})"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise WorkbenchError(f"{field}: mesh file not found: {path}") from None
    except OSError as exc:
        raise WorkbenchError(f"{field}: cannot read {path} ({exc.strerror or exc})") from None
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
    target = (folder / name.strip()).resolve()
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
    folder = path.parent.resolve()
    found: dict[str, Path] = {}
    if ext == "obj":
        for library in _obj_material_library(data.decode("utf-8", errors="replace")):
            mtl = _resolve(folder, library, path, field)
            if mtl.is_file():
                found[library] = mtl
                text = read_limited(mtl, field).decode("utf-8", errors="replace")
                for name in _mtl_textures(text):
                    image = _resolve(folder, name, path, field)
                    if image.is_file():
                        found[name] = image
    elif ext in ("gltf", "glb"):
        for name in _gltf_uris(gltf_header(data, ext, path, field)):
            target = _resolve(folder, name, path, field)
            if target.is_file():
                found[name] = target
    return found
