"""Mesh files from specs: the files a spec uses, and the limits on what a mesh file may be."""

import gzip
import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
import trimesh
from PIL import Image

from tests.conftest import run_cli
from workbench.errors import WorkbenchError
from workbench.scene import assets, meshfile
from workbench.scene.assets import asset_files
from workbench.scene.kinds import preflight
from workbench.scene.spec import load_spec, parse_spec

SCENES = Path(__file__).resolve().parents[2] / "scenes"


def _tabletop(path) -> object:
    return parse_spec(
        {
            "kind": "tabletop",
            "objects": [{"path": str(path), "class_name": "thing", "count": [1, 1]}],
        }
    )


def test_asset_files_lists_meshes_and_what_they_reference():
    files = asset_files(load_spec(SCENES / "tabletop.yaml"))
    assets = SCENES.resolve() / "assets"
    assert files == [
        assets / "mug.obj",
        assets / "mug.mtl",
        assets / "mug.png",
        assets / "cereal_box.glb",
        assets / "bowl.ply",
        assets / "bottle.stl",
    ]
    assert asset_files(load_spec(SCENES / "shapes.yaml")) == []


def test_asset_files_lists_gltf_buffers_and_images_but_not_embedded_data(tmp_path):
    (tmp_path / "mesh.bin").write_bytes(b"\0" * 36)
    (tmp_path / "wood.png").write_bytes((SCENES / "assets" / "mug.png").read_bytes())
    (tmp_path / "thing.gltf").write_text(
        '{"asset": {"version": "2.0"}, "buffers": [{"uri": "mesh.bin", "byteLength": 36},'
        ' {"uri": "data:application/octet-stream;base64,AAAA", "byteLength": 3}],'
        ' "images": [{"uri": "wood.png"}, {"uri": "missing.png"}]}'
    )
    files = asset_files(_tabletop(tmp_path / "thing.gltf"))
    assert files == [tmp_path / "thing.gltf", tmp_path / "mesh.bin", tmp_path / "wood.png"]


def test_a_reference_outside_the_mesh_folder_is_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(b"not for a mesh")
    folder = tmp_path / "meshes"
    folder.mkdir()
    (folder / "box.obj").write_text("mtllib box.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (folder / "box.mtl").write_text("newmtl box\nmap_Kd ../secret.png\n")
    with pytest.raises(WorkbenchError) as info:
        asset_files(_tabletop(folder / "box.obj"))
    message = str(info.value)
    assert message.startswith("objects.0.path: ")
    assert "'../secret.png', outside the mesh file's folder" in message
    assert "\n" not in message


# --- limits on what a mesh file may be ----------------------------------------------------


def _glb(header: dict, binary: bytes = b"") -> bytes:
    """Packs a glTF JSON header and a binary chunk into a GLB file."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary:
        chunks += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def _unpack_glb(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack_from("<I", data, 12)
    header = json.loads(data[20 : 20 + length])
    (binary_length,) = struct.unpack_from("<I", data, 20 + length)
    return header, data[28 + length : 28 + length + binary_length]


def _ball_glb(nodes: int) -> bytes:
    """A GLB showing one 1,280-triangle sphere mesh on ``nodes`` nodes (stored once)."""
    header, binary = _unpack_glb(trimesh.creation.icosphere(subdivisions=3).export(file_type="glb"))
    header["nodes"] = [{"mesh": 0, "translation": [float(i), 0.0, 0.0]} for i in range(nodes)]
    header["scenes"] = [{"nodes": list(range(nodes))}]
    header["scene"] = 0
    return _glb(header, binary)


@pytest.fixture
def no_trimesh_load(monkeypatch):
    """Fails the test if trimesh is asked to read the file: the refusal must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("trimesh.load_scene was called")

    monkeypatch.setattr(meshfile.trimesh, "load_scene", refuse)


def _refused(path, *expected: str) -> str:
    with pytest.raises(WorkbenchError) as info:
        meshfile.load(Path(path), "objects.0.path")
    message = str(info.value)
    assert message.startswith("objects.0.path: ") and str(path) in message, message
    assert "\n" not in message, message
    for text in expected:
        assert text in message, message
    return message


def test_one_mesh_instanced_on_thousands_of_nodes_is_refused_unexpanded(tmp_path, no_trimesh_load):
    path = tmp_path / "balls.glb"
    path.write_bytes(_ball_glb(3000))
    assert path.stat().st_size < 300_000  # cheap to make, 3.8 M triangles once expanded
    _refused(path, "shows 3,000 mesh instances with 3,840,000 triangles", "at most 500,000")


def test_a_few_instances_of_a_mesh_load_as_one_part_each(tmp_path):
    path = tmp_path / "balls.glb"
    path.write_bytes(_ball_glb(3))
    parts = meshfile.load(path, "objects.0.path")
    assert len(parts) == 3 and all(len(p.faces) == 1280 for p in parts)


def test_node_cycles_and_shared_children_end(tmp_path):
    header, binary = _unpack_glb(trimesh.creation.box().export(file_type="glb"))
    header["nodes"] = [{"children": [1]}, {"children": [0, 2]}, {"mesh": 0, "children": [1]}]
    header["scenes"] = [{"nodes": [0]}]
    path = tmp_path / "loop.glb"
    path.write_bytes(_glb(header, binary))
    try:
        parts = meshfile.load(path, "objects.0.path")
    except WorkbenchError as exc:
        assert "\n" not in str(exc)
    else:
        assert parts and all(len(p.faces) == 12 for p in parts)


def test_too_many_nodes_are_refused(tmp_path, no_trimesh_load):
    header, binary = _unpack_glb(trimesh.creation.box().export(file_type="glb"))
    header["nodes"] = [{}] * (meshfile.MAX_NODES + 1)
    path = tmp_path / "nodes.glb"
    path.write_bytes(_glb(header, binary))
    _refused(path, "10,001 nodes", "at most 10,000")


def test_accessors_claiming_huge_arrays_are_refused_before_allocation(tmp_path, no_trimesh_load):
    header, binary = _unpack_glb(trimesh.creation.box().export(file_type="glb"))
    # no bufferView: trimesh would allocate count x 16 floats of zeros
    header["accessors"].append({"componentType": 5126, "count": 10**10, "type": "MAT4"})
    path = tmp_path / "claims.glb"
    path.write_bytes(_glb(header, binary))
    _refused(path, "its accessors claim 640,000,000,", "at most 268,435,456")


def test_compressed_gltf_geometry_is_refused(tmp_path, no_trimesh_load):
    header, binary = _unpack_glb(trimesh.creation.box().export(file_type="glb"))
    header["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    path = tmp_path / "draco.glb"
    path.write_bytes(_glb(header, binary))
    _refused(path, "compressed geometry (KHR_draco_mesh_compression) is not unpacked")


def test_malformed_gltf_structure_is_one_line(tmp_path, no_trimesh_load):
    header, binary = _unpack_glb(trimesh.creation.box().export(file_type="glb"))
    header["nodes"] = [{"mesh": 7}]
    header["scenes"] = [{"nodes": [0]}]
    path = tmp_path / "dangling.glb"
    path.write_bytes(_glb(header, binary))
    _refused(path, "malformed GLB file (IndexError")


def test_triangle_budget_is_counted_after_loading_too(tmp_path, monkeypatch):
    path = tmp_path / "ball.ply"
    trimesh.creation.icosphere(subdivisions=3).export(path)
    monkeypatch.setattr(meshfile, "MAX_FACES", 1000)
    _refused(path, "shows 1,280 triangles", "at most 1,000")


def test_obj_faces_are_counted_from_the_text(tmp_path, no_trimesh_load, monkeypatch):
    monkeypatch.setattr(meshfile, "MAX_FACES", 1000)
    polygon = " ".join(str(i) for i in range(1, 1101))  # one face line, a fan of 1,098 triangles
    path = tmp_path / "fan.obj"
    path.write_text("".join(f"v {i} {i * i} 0\n" for i in range(1100)) + f"f {polygon}\n")
    _refused(path, "holds 1,098 triangles and 1,100 vertices")


def test_large_files_are_refused_unread(tmp_path, no_trimesh_load):
    path = tmp_path / "huge.stl"
    with path.open("wb") as f:
        f.truncate(meshfile.MAX_FILE_BYTES + 1)  # sparse: nothing is written or read
    _refused(path, f"{meshfile.MAX_FILE_BYTES + 1:,} bytes is too large")


@pytest.mark.parametrize(
    ("name", "pack", "expected"),
    [
        ("mesh.glb", "zip", "is a zip archive; archives are not read"),
        ("mesh.obj", "gzip", "is a gzip archive"),
        ("mesh.zip", "zip", "unsupported mesh format '.zip'"),
        ("mesh.3mf", "zip", "unsupported mesh format '.3mf'"),
    ],
)
def test_archives_are_not_unpacked(tmp_path, no_trimesh_load, name, pack, expected):
    box = trimesh.creation.box().export(file_type="obj").encode()
    path = tmp_path / name
    if pack == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("box.obj", box)
    else:
        path.write_bytes(gzip.compress(box))
    _refused(path, expected)


def _textured_obj(folder: Path, texture: str) -> Path:
    box = assets.with_uv(trimesh.creation.box())
    lines = [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"vt {u} {v}" for u, v in box.visual.uv]
    lines += ["usemtl skin"] + [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in box.faces + 1]
    (folder / "box.obj").write_text("mtllib box.mtl\n" + "\n".join(lines) + "\n")
    (folder / "box.mtl").write_text(f"newmtl skin\nKd 1 1 1\nmap_Kd {texture}\n")
    return folder / "box.obj"


def test_a_texture_bomb_is_refused_naming_the_texture(tmp_path, no_trimesh_load):
    Image.new("L", (5000, 4000)).save(tmp_path / "bomb.png")  # 20 M pixels in a small file
    assert (tmp_path / "bomb.png").stat().st_size < 200_000
    _refused(_textured_obj(tmp_path, "bomb.png"), f"texture {tmp_path / 'bomb.png'}: too many")


def test_a_texture_of_another_format_is_refused(tmp_path, no_trimesh_load):
    Image.new("RGB", (8, 8)).save(tmp_path / "skin.bmp")
    _refused(_textured_obj(tmp_path, "skin.bmp"), "not a readable PNG or JPEG image")


def test_a_good_texture_still_loads(tmp_path):
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "skin.png")
    parts = meshfile.load(_textured_obj(tmp_path, "skin.png"), "objects.0.path")
    assert parts[0].visual.kind == "texture" and parts[0].visual.material.image.size == (8, 8)


def test_an_embedded_glb_image_bomb_is_refused(tmp_path, no_trimesh_load):
    header, binary = _unpack_glb(trimesh.creation.box().export(file_type="glb"))
    bomb = io.BytesIO()
    Image.new("L", (5000, 4000)).save(bomb, format="PNG")
    offset = len(binary) + (-len(binary) % 4)
    binary = binary + b"\0" * (offset - len(binary)) + bomb.getvalue()
    header["bufferViews"].append({"buffer": 0, "byteOffset": offset, "byteLength": bomb.tell()})
    header["buffers"][0]["byteLength"] = len(binary)
    header["images"] = [{"bufferView": len(header["bufferViews"]) - 1, "mimeType": "image/png"}]
    path = tmp_path / "bomb.glb"
    path.write_bytes(_glb(header, binary))
    _refused(path, "texture image 0: too many pixels (5000 x 4000")


def test_vertices_that_are_not_finite_are_refused(tmp_path):
    path = tmp_path / "nan.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n")
    with pytest.raises(WorkbenchError, match=r"objects\.0\.path: .*not finite numbers"):
        assets.load_mesh_file(str(path), "objects.0.path")


def test_a_tabletop_spec_over_the_sample_triangle_budget_is_refused(tmp_path):
    path = tmp_path / "ball.stl"
    trimesh.creation.icosphere(subdivisions=4).export(path)  # 5,120 triangles
    spec = parse_spec(
        {
            "kind": "tabletop",
            "objects": [{"path": str(path), "class_name": "ball", "count": [1, 1000]}],
            "table": {"size": 100.0},
        },
        "balls.yaml",
    )
    with pytest.raises(WorkbenchError) as info:
        preflight(spec)
    message = str(info.value)
    assert message.startswith("balls.yaml: objects: up to 5,120,000 triangles in one sample")
    assert "objects.0.count" in message and "\n" not in message


def test_the_cli_refuses_an_instanced_glb_with_one_line(tmp_path):
    (tmp_path / "balls.glb").write_bytes(_ball_glb(3000))
    spec = tmp_path / "balls.yaml"
    spec.write_text("kind: tabletop\nobjects:\n  - {path: balls.glb, class_name: ball}\n")
    out = tmp_path / "out"
    done = run_cli("render", str(spec), "--num", "1", "--out", str(out), check=False, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"error: {spec}: objects.0.path: {tmp_path / 'balls.glb'}: shows")
    assert not out.exists()
