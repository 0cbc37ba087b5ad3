"""The pyrender view: turns a :class:`~workbench.scene.model.SceneInstance` into passes.

One :class:`Renderer` per process (pyrender is not thread-safe). ``render`` returns::

    rgb        uint8   H x W x 3   shaded colour, background where no surface is hit
    depth      float32 H x W       metres along the camera axis, 0 where no surface
    inst       uint16  H x W       instance id (things numbered 1.. in scene order), 0 = none
    seg        uint8   H x W       semantic id = class index + 1, 0 = background / clutter
    unoccluded dict                instance id -> pixels it would cover with nothing in front
    amodal     dict                instance id -> bool H x W mask of those pixels (its full
                                   extent, occluded parts included; with ``amodal=True`` only)

Import this module only after :func:`workbench.render.gl.activate`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

import numpy as np
import pyrender
from OpenGL.GL import GL_RENDERER, glGetString

from workbench.scene import assets
from workbench.scene.model import SceneInstance, SceneObject


@functools.lru_cache(maxsize=32)
def _texture(name: str) -> pyrender.Texture:
    return pyrender.Texture(source=assets.texture(name), source_channels="RGB")


def _material(obj: SceneObject) -> pyrender.MetallicRoughnessMaterial:
    m = obj.material
    return pyrender.MetallicRoughnessMaterial(
        baseColorFactor=[*m.base_color, 1.0],
        metallicFactor=m.metallic,
        roughnessFactor=m.roughness,
        baseColorTexture=_texture(m.texture) if m.texture else None,
    )


def _arrays(mesh, smooth: bool) -> dict[str, np.ndarray]:
    """Vertex arrays of a pyrender primitive; flat shading gives every face its own vertices."""
    uv = getattr(mesh.visual, "uv", None)
    if smooth:
        out = {"positions": mesh.vertices, "normals": mesh.vertex_normals, "indices": mesh.faces}
        if uv is not None:
            out["texcoord_0"] = uv
        return {
            k: np.ascontiguousarray(v, np.float32 if k != "indices" else np.int64)
            for k, v in out.items()
        }
    out = {
        "positions": mesh.vertices[mesh.faces].reshape(-1, 3),
        "normals": np.repeat(mesh.face_normals, 3, axis=0),
    }
    if uv is not None:
        out["texcoord_0"] = uv[mesh.faces].reshape(-1, 2)
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


_GEOMETRY: OrderedDict[tuple[str, bool], list[dict[str, np.ndarray]]] = OrderedDict()
_GEOMETRY_SIZE = 256


def _geometry(obj: SceneObject) -> list[dict[str, np.ndarray]]:
    """Vertex arrays of every part of ``obj``, cached by ``mesh_key`` (least recently used)."""
    parts = obj.mesh if isinstance(obj.mesh, list) else [obj.mesh]
    if not obj.mesh_key:
        return [_arrays(p, obj.smooth) for p in parts]
    key = (obj.mesh_key, obj.smooth)
    if key in _GEOMETRY:
        _GEOMETRY.move_to_end(key)
    else:
        _GEOMETRY[key] = [_arrays(p, obj.smooth) for p in parts]
        if len(_GEOMETRY) > _GEOMETRY_SIZE:
            _GEOMETRY.popitem(last=False)
    return _GEOMETRY[key]


def _mesh(obj: SceneObject) -> pyrender.Mesh:
    """A pyrender mesh sharing cached vertex arrays and textures (``from_trimesh`` would
    deep-copy the material, texture included, and re-upload it for every sample)."""
    if obj.material is None:  # keep the file's own visuals
        return pyrender.Mesh.from_trimesh(obj.mesh, smooth=obj.smooth)
    material = _material(obj)
    return pyrender.Mesh(
        [pyrender.Primitive(**arrays, material=material) for arrays in _geometry(obj)]
    )


def _light(light) -> pyrender.Light:
    kinds = {"directional": pyrender.DirectionalLight, "point": pyrender.PointLight}
    if light.kind == "spot":
        return pyrender.SpotLight(
            color=light.color, intensity=light.intensity, innerConeAngle=0.3, outerConeAngle=0.7
        )
    return kinds[light.kind](color=light.color, intensity=light.intensity)


_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if (a ^ b).bit_count() == 1]


def _camera_points(obj: SceneObject, view: np.ndarray, znear: float) -> np.ndarray:
    """Camera-frame points whose projection bounds the object's: its vertices when all lie in
    front of the near plane, else its bounding box corners clipped to the near plane."""
    parts = obj.mesh if isinstance(obj.mesh, list) else [obj.mesh]
    transform = view @ obj.pose
    vertices = np.concatenate([p.vertices for p in parts])
    cam = vertices @ transform[:3, :3].T + transform[:3, 3]
    if (cam[:, 2] <= -znear).all():
        return cam
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    corners = np.array(
        [[(lo, hi)[i & 1][0], (lo, hi)[i >> 1 & 1][1], (lo, hi)[i >> 2][2]] for i in range(8)]
    )
    cam = corners @ transform[:3, :3].T + transform[:3, 3]
    front = cam[:, 2] <= -znear
    points = [cam[front]]
    for a, b in _EDGES:
        if front[a] != front[b]:  # the edge crosses the near plane: keep the crossing point
            t = (-znear - cam[a, 2]) / (cam[b, 2] - cam[a, 2])
            points.append((cam[a] + t * (cam[b] - cam[a]))[None])
    return np.concatenate(points)


def _footprint(
    obj: SceneObject, view: np.ndarray, K: np.ndarray, znear: float
) -> tuple[np.ndarray, float, float] | None:
    """Image-space box (x0, y0, x1, y1) and depth range of the object; None when it lies wholly
    behind the camera."""
    points = _camera_points(obj, view, znear)
    if not len(points):
        return None
    u = K[0, 0] * points[:, 0] / -points[:, 2] + K[0, 2]
    v = -K[1, 1] * points[:, 1] / -points[:, 2] + K[1, 2]
    return (
        np.array([u.min(), v.min(), u.max(), v.max()]),
        float(-points[:, 2].max()),
        float(-points[:, 2].min()),
    )


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


class OrderedScene(pyrender.Scene):
    """A pyrender scene that hands its meshes and lights to the renderer in insertion order.

    pyrender keeps nodes in sets hashed by memory address, binds the lights in set order and
    the shader adds their contributions in that order. Float addition is not associative, so a
    scene with two lights of one kind came out one grey level apart in an odd pixel depending
    on where the nodes happened to be allocated. Insertion order makes a render depend on the
    scene instance only.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._order: dict[pyrender.Node, int] = {}
        super().__init__(**kwargs)

    def add_node(self, node: pyrender.Node, parent_node: pyrender.Node | None = None) -> None:
        """Adds ``node`` (see :meth:`pyrender.Scene.add_node`) and records its rank."""
        self._order.setdefault(node, len(self._order))
        super().add_node(node, parent_node=parent_node)

    def _ordered(self, nodes: set) -> list[pyrender.Node]:
        return sorted(nodes, key=self._order.__getitem__)

    @property
    def mesh_nodes(self) -> list[pyrender.Node]:
        """Mesh nodes in insertion order (equal-distance meshes are drawn in this order)."""
        return self._ordered(self._mesh_nodes)

    @property
    def light_nodes(self) -> list[pyrender.Node]:
        """Light nodes in insertion order, the order their uniforms are bound."""
        return self._ordered(
            self._point_light_nodes | self._spot_light_nodes | self._directional_light_nodes
        )


class Renderer:
    """An offscreen pyrender renderer of a fixed size."""

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self._renderer = pyrender.OffscreenRenderer(width, height)

    def gl_renderer(self) -> str:
        """Returns the ``GL_RENDERER`` string of this context (e.g. ``llvmpipe``)."""
        self._renderer._platform.make_current()
        return glGetString(GL_RENDERER).decode()

    def close(self) -> None:
        """Frees the GL context."""
        self._renderer.delete()

    def build(self, instance: SceneInstance) -> tuple[pyrender.Scene, list[pyrender.Node]]:
        """Builds the pyrender scene; returns it with one node per scene object, in order."""
        scene = OrderedScene(
            bg_color=[*instance.background.color, 1.0], ambient_light=instance.ambient
        )
        nodes = [scene.add(_mesh(obj), pose=obj.pose) for obj in instance.objects]
        for light in instance.lights:
            scene.add(_light(light), pose=light.pose)
        cam = instance.camera
        scene.add(
            pyrender.PerspectiveCamera(
                yfov=cam.yfov, znear=cam.znear, zfar=cam.zfar, aspectRatio=cam.width / cam.height
            ),
            pose=cam.pose,
        )
        return scene, nodes

    def render_color(self, instance: SceneInstance) -> tuple[np.ndarray, np.ndarray]:
        """Renders only RGB and depth (the bare pass, used as the benchmark reference)."""
        scene, _ = self.build(instance)
        rgb, depth = self._renderer.render(scene)
        return rgb, depth

    def render(self, instance: SceneInstance, amodal: bool = False) -> dict:
        """Renders all passes of ``instance``; see the module docstring for the outputs
        (``amodal`` adds each thing's full-extent mask, from the passes that measure its
        visible fraction, so it costs no extra render)."""
        scene, nodes = self.build(instance)
        rgb, depth = self._renderer.render(scene)

        ids, colors = {}, {}
        next_id = 1
        for obj, node in zip(instance.objects, nodes, strict=True):
            inst = 0
            if obj.thing and obj.class_id >= 0:
                inst, next_id = next_id, next_id + 1
                ids[inst] = (obj, node)
            semantic = obj.class_id + 1 if obj.class_id >= 0 else 0
            colors[node] = np.array([inst & 255, inst >> 8, semantic], np.uint8)
        labels, _ = self._renderer.render(
            scene, flags=pyrender.RenderFlags.SEG, seg_node_map=colors
        )
        inst_map = labels[..., 0].astype(np.uint16) | (labels[..., 1].astype(np.uint16) << 8)
        seg = np.ascontiguousarray(labels[..., 2])

        visible = np.bincount(inst_map.ravel(), minlength=next_id)
        masks = {} if amodal else None
        unoccluded = self._unoccluded(instance, nodes, ids, scene, visible, inst_map, masks)
        passes = {
            "rgb": rgb,
            "depth": depth.astype(np.float32),
            "inst": inst_map,
            "seg": seg,
            "unoccluded": unoccluded,
        }
        if amodal:
            passes["amodal"] = masks
        return passes

    def _unoccluded(
        self, instance, nodes, ids, scene, visible, inst_map, masks: dict | None
    ) -> dict[int, int]:
        """Pixels each thing covers alone (and, into ``masks`` when given, the mask of them).

        A thing is fully visible when no other occluder can be in front of it: none whose image
        box overlaps its box and whose nearest point is closer than its farthest. The others are
        measured in extra segmentation passes, each holding a group of things whose boxes do not
        overlap (so they cannot hide each other).
        """
        cam = instance.camera
        view, K = np.linalg.inv(cam.pose), cam.intrinsics()
        prints = {
            node: _footprint(obj, view, K, cam.znear)
            for obj, node in zip(instance.objects, nodes, strict=True)
            if obj.occluder
        }
        prints = {node: p for node, p in prints.items() if p is not None}
        out, groups = {}, []
        for inst, (_, node) in ids.items():
            if not _may_be_hidden(node, prints):
                out[inst] = int(visible[inst])
                if masks is not None:
                    masks[inst] = inst_map == inst
                continue
            box = prints[node][0]
            group = next(
                (g for g in groups if not any(_overlaps(box, prints[n][0]) for _, n in g)), None
            )
            if group is None:
                groups.append(group := [])
            group.append((inst, node))
        for group in groups:
            colors = {node: np.array([inst & 255, inst >> 8, 0], np.uint8) for inst, node in group}
            alone, _ = self._renderer.render(
                scene, flags=pyrender.RenderFlags.SEG, seg_node_map=colors
            )
            alone_map = alone[..., 0].astype(np.int64) | (alone[..., 1].astype(np.int64) << 8)
            counts = np.bincount(alone_map.ravel(), minlength=max(ids) + 1)
            out.update({inst: int(counts[inst]) for inst, _ in group})
            if masks is not None:
                masks.update({inst: alone_map == inst for inst, _ in group})
        return out


def _may_be_hidden(node, prints: dict) -> bool:
    """Whether another occluder could be in front of ``node``: one whose image box overlaps its
    box and whose nearest point is closer than its farthest (``prints``: node -> (box, near,
    far); a node without a footprint cannot be hidden)."""
    if node not in prints:
        return False
    box, _, far = prints[node]
    return any(
        other is not node and near < far and _overlaps(box, other_box)
        for other, (other_box, near, _) in prints.items()
    )
