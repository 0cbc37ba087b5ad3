"""Reading datasets written by ``workbench render``: random access, iteration, verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from workbench.data.format import FORMAT_NAME, FORMAT_VERSION, MODALITIES, decode_file
from workbench.data.writer import MANIFEST, SHARD_INDEX, shard_digest, shard_dir
from workbench.errors import WorkbenchError

PAIRS = "conditions.json"


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
        self.manifest: dict[str, Any] = json.loads(path.read_text())
        if (
            self.manifest.get("format") != FORMAT_NAME
            or self.manifest.get("version") != FORMAT_VERSION
        ):
            raise WorkbenchError(
                f"{path}: unsupported dataset format {self.manifest.get('format')} "
                f"v{self.manifest.get('version')}; "
                f"this reader knows {FORMAT_NAME} v{FORMAT_VERSION}"
            )
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

    def _path(self, index: int, suffix: str) -> Path:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range [0, {len(self)})")
        return shard_dir(self.root, index // self.shard_size) / f"{index:06d}.{suffix}"

    def _load(self, index: int, suffix: str):
        path = self._path(index, suffix)
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
            try:
                files = json.loads((folder / SHARD_INDEX).read_text())["files"]
            except (OSError, ValueError, KeyError) as exc:
                problems.append(f"shard {record['index']}: unreadable index ({exc})")
                continue
            if shard_digest(files) != record["sha256"]:
                problems.append(f"shard {record['index']}: file list differs from the manifest")
            for name, digest in files.items():
                path = folder / name
                if not path.is_file():
                    problems.append(f"{path}: missing")
                elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                    problems.append(f"{path}: sha256 mismatch (corrupt)")
        return problems


def open_dataset(
    root: str | Path, modalities: Sequence[str] = ("rgb", "depth", "seg", "inst")
) -> Dataset:
    """Opens a finished dataset folder; see :class:`Dataset`."""
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
    names = json.loads(pairs.read_text())["conditions"]
    return {name: Dataset(root / name, modalities) for name in names}
