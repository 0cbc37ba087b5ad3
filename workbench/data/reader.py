"""Reading datasets written by ``workbench render``: random access, iteration, verification."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from workbench.data.format import FORMAT_NAME, FORMAT_VERSION, MODALITIES, decode_file
from workbench.data.writer import MANIFEST, SHARD_INDEX, read_shard_index, shard_dir
from workbench.errors import WorkbenchError

PAIRS = "conditions.json"
# a condition's folder name: letters, digits, _ and - (Virtual KITTI's 15-deg-left), never a
# path (no dots or slashes)
CONDITION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def read_json(path: Path, what: str) -> Any:
    """Returns the JSON in ``path``.

    Raises:
        WorkbenchError: the file is unreadable or not JSON, naming it and ``what`` it is.
    """
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise WorkbenchError(f"{path}: unreadable {what} ({reason})") from None


def is_finished(folder: str | Path) -> bool:
    """Whether ``folder`` holds a dataset whose manifest says it is complete (False for a
    missing, unreadable or unfinished one; no error)."""
    try:
        return bool(json.loads((Path(folder) / MANIFEST).read_text()).get("complete"))
    except (OSError, ValueError, AttributeError):
        return False


def _check_manifest(path: Path, manifest: Any) -> None:
    """Raises :class:`WorkbenchError` naming the first field a reader cannot use."""
    if not isinstance(manifest, dict):
        raise WorkbenchError(f"{path}: malformed manifest (not a JSON object)")
    classes, shards = manifest.get("classes"), manifest.get("shards")
    checks = {
        "num_samples": type(manifest.get("num_samples")) is int and manifest["num_samples"] >= 0,
        "shard_size": type(manifest.get("shard_size")) is int and manifest["shard_size"] >= 1,
        "classes": isinstance(classes, dict)
        and all(isinstance(classes.get(str(i)), str) for i in range(len(classes))),
        "shards": isinstance(shards, list)
        and all(
            isinstance(r, dict) and type(r.get("index")) is int and isinstance(r.get("sha256"), str)
            for r in shards
        ),
    }
    for name, ok in checks.items():
        if not ok:
            raise WorkbenchError(f"{path}: malformed manifest (field {name})")


class Dataset:
    """A finished dataset folder.

    ``ds[i]`` returns a dict with the requested modalities (``rgb``, ``depth``, ``seg``,
    ``inst`` as numpy arrays) and ``meta`` (the sample JSON).

    Args:
        root: dataset folder (holds ``manifest.json``).
        modalities: which arrays ``__getitem__`` loads; the JSON is always loaded.
    """

    def __init__(
        self, root: str | Path, modalities: Sequence[str] = ("rgb", "depth", "seg", "inst")
    ):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise WorkbenchError(f"{self.root}: not a workbench dataset (no {MANIFEST})")
        self.manifest: dict[str, Any] = read_json(path, "manifest")
        if not isinstance(self.manifest, dict):
            raise WorkbenchError(f"{path}: malformed manifest (not a JSON object)")
        if (
            self.manifest.get("format") != FORMAT_NAME
            or self.manifest.get("version") != FORMAT_VERSION
        ):
            raise WorkbenchError(
                f"{path}: unsupported dataset format {self.manifest.get('format')} "
                f"v{self.manifest.get('version')}; "
                f"this reader knows {FORMAT_NAME} v{FORMAT_VERSION}"
            )
        _check_manifest(path, self.manifest)
        if not self.manifest.get("complete"):
            raise WorkbenchError(
                f"{self.root}: dataset is incomplete; "
                "rerun the render command that made it to finish"
            )
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise WorkbenchError(
                f"modalities: unknown {sorted(unknown)}; "
                f"known: {', '.join(k for k in MODALITIES if k != 'json')}"
            )
        self.modalities = tuple(modalities)
        self.shard_size = int(self.manifest["shard_size"])
        self.classes: list[str] = [
            self.manifest["classes"][str(i)] for i in range(len(self.manifest["classes"]))
        ]

    def __len__(self) -> int:
        return int(self.manifest["num_samples"])

    @property
    def condition(self) -> str:
        """The render condition of every sample in this dataset."""
        return self.manifest["condition"]

    def file(self, index: int, suffix: str) -> Path:
        """The file of sample ``index`` with ``suffix`` (``rgb.png``, ``json``, ...), for
        exports that copy files as they are.

        Raises:
            IndexError: an index outside the dataset.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range [0, {len(self)})")
        return shard_dir(self.root, index // self.shard_size) / f"{index:06d}.{suffix}"

    def _load(self, index: int, suffix: str):
        path = self.file(index, suffix)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise WorkbenchError(
                f"{path}: unreadable sample file ({exc.strerror or exc})"
            ) from None
        return decode_file(suffix, data, str(path))

    def meta(self, index: int) -> dict[str, Any]:
        """Returns the sample JSON of ``index`` without loading any image."""
        return self._load(index, "json")

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = {"meta": self.meta(index)}
        for name in self.modalities:
            sample[name] = self._load(index, MODALITIES[name]["file"])
        return sample

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self[index]

    def labels(self) -> list[int]:
        """Returns every sample's image label (reads only the JSON files)."""
        return [self.meta(i)["label"] for i in range(len(self))]

    def verify(self) -> list[str]:
        """Checks every file against the sha256 in its shard index and the manifest.

        Returns:
            one line per problem; empty when the dataset is intact.
        """
        problems = []
        for record in self.manifest["shards"]:
            folder = shard_dir(self.root, record["index"])
            index = read_shard_index(folder)
            if index is None:
                problems.append(f"{folder / SHARD_INDEX}: missing, unreadable or inconsistent")
                continue
            if index["sha256"] != record["sha256"]:
                problems.append(f"shard {record['index']}: file list differs from the manifest")
            for name, digest in index["files"].items():
                path = folder / name
                if not path.is_file():
                    problems.append(f"{path}: missing")
                elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                    problems.append(f"{path}: sha256 mismatch (corrupt)")
        return problems


def open_dataset(
    root: str | Path, modalities: Sequence[str] = ("rgb", "depth", "seg", "inst")
) -> Dataset:
    """Opens a finished dataset folder; see :class:`Dataset`.

    Args:
        root: the dataset folder (rendered, sampled or refined; it holds ``manifest.json``).
        modalities: which arrays a sample loads besides its JSON.

    Raises:
        WorkbenchError: not a dataset, an unfinished or malformed one, or an unknown modality.

    Examples:
        Four samples of a toy class-conditional generator, written as a dataset without
        rendering, then read back:

        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from workbench.generative.sampling import write_samples
        >>> class Grey:
        ...     classes = ["dark", "light"]
        ...     def generate(self, labels, seed):
        ...         return np.stack([np.full((8, 8, 3), 0.9 * k, np.float32) for k in labels])
        >>> folder = write_samples(Grey(), Path(tempfile.mkdtemp()) / "grey", 4, progress=False)
        >>> dataset = open_dataset(folder)
        >>> len(dataset), dataset.classes
        (4, ['dark', 'light'])
        >>> sample = dataset[1]
        >>> sample["rgb"].shape, sample["meta"]["label_name"], sorted(sample)
        ((8, 8, 3), 'light', ['depth', 'inst', 'meta', 'rgb', 'seg'])
    """
    return Dataset(root, modalities)


def open_paired(
    root: str | Path, modalities: Sequence[str] = ("rgb", "depth", "seg", "inst")
) -> dict[str, Dataset]:
    """Opens paired condition sets rendered with ``--conditions a,b,...``.

    Returns:
        condition name -> dataset; sample ``i`` of every set shows the same scene.
    """
    root = Path(root)
    if (root / MANIFEST).is_file():
        dataset = Dataset(root, modalities)
        return {dataset.condition: dataset}
    pairs = root / PAIRS
    if not pairs.is_file():
        raise WorkbenchError(
            f"{root}: neither a dataset nor a set of paired conditions (no {MANIFEST} or {PAIRS})"
        )
    names = read_json(pairs, "paired conditions list")
    names = names.get("conditions") if isinstance(names, dict) else None
    if not (
        isinstance(names, list)
        and names
        and all(isinstance(n, str) and CONDITION_NAME.fullmatch(n) for n in names)
    ):
        raise WorkbenchError(f"{pairs}: malformed paired conditions list (field conditions)")
    return {name: Dataset(root / name, modalities) for name in names}
