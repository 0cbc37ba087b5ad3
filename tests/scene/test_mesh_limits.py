"""Mesh files from specs: the files a spec uses, and the limits on what a mesh file may be."""

from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.scene.assets import asset_files
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
