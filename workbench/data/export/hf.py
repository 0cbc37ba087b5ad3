"""A Hugging Face ``datasets`` dataset (``save_to_disk``: Arrow files and a dataset info),
streamed sample by sample so memory stays flat; ``datasets.load_from_disk`` reads it back.

Columns: ``image`` (``Image``, the RGB render), ``seg`` and ``inst`` (``Image``, the semantic and
instance PNGs), ``depth`` (``Array2D`` float32, metres), ``label`` (``ClassLabel``, -1 where no
thing is visible), ``objects`` (visible things: instance id, class, ``bbox`` as
``[x0, y0, x1, y1]`` with exclusive ends, visible fraction, pixels), ``index``, ``condition``,
``difficulty``, ``seed``, and every randomised factor as its own column ``factor.<path>`` (the
JSON path of a number, string or flag; lists and other structures as JSON text). A
paired-conditions folder becomes a ``DatasetDict`` with one split per condition (see
:func:`split_name`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from workbench.data.export.common import condition_sets, staged_folder
from workbench.data.reader import Dataset
from workbench.errors import WorkbenchError


def _leaves(value: Any, prefix: str = "factor") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}")
    else:
        yield prefix, value


def factor_types(factors: dict) -> dict[str, str]:
    """Column name -> ``float64``, ``bool``, ``string`` or ``json`` for every factor leaf of the
    first sample (a leaf that is None there is stored as JSON text)."""
    types = {}
    for name, value in _leaves(factors):
        if isinstance(value, bool):
            types[name] = "bool"
        elif isinstance(value, int | float):
            types[name] = "float64"
        elif isinstance(value, str):
            types[name] = "string"
        else:
            types[name] = "json"
    return types


def _factor_row(factors: dict, types: dict[str, str], where: str) -> dict[str, Any]:
    leaves = dict(_leaves(factors))
    row = {}
    for name, kind in types.items():
        value = leaves.get(name)
        if kind == "json":
            row[name] = json.dumps(value)
        elif value is None or (kind == "float64" and isinstance(value, int | float)
                               and not isinstance(value, bool)) or (
                kind == "bool" and isinstance(value, bool)) or (
                kind == "string" and isinstance(value, str)):  # fmt: skip
            row[name] = value
        else:
            raise WorkbenchError(
                f"{where}: factor {name[7:]} is {type(value).__name__} here but {kind} in the "
                "first sample; export as webdataset (it keeps every JSON as it is)"
            )
    return row


def features(dataset: Dataset, types: dict[str, str]):
    """The ``datasets.Features`` of the export."""
    import datasets as hf

    height, width = dataset[0]["depth"].shape
    names = hf.ClassLabel(names=dataset.classes)
    column = {"float64": hf.Value("float64"), "bool": hf.Value("bool"),
              "string": hf.Value("string"), "json": hf.Value("string")}  # fmt: skip
    return hf.Features(
        {
            "image": hf.Image(),
            "seg": hf.Image(),
            "inst": hf.Image(),
            "depth": hf.Array2D(shape=(height, width), dtype="float32"),
            "label": names,
            "objects": hf.Sequence(
                {
                    "instance_id": hf.Value("int32"),
                    "class_id": names,
                    "bbox": hf.Sequence(hf.Value("int32"), length=4),
                    "visible_fraction": hf.Value("float32"),
                    "pixels": hf.Value("int32"),
                }
            ),
            "index": hf.Value("int64"),
            "condition": hf.Value("string"),
            "difficulty": hf.Value("float32"),
            "seed": hf.Value("int64"),
            **{name: column[kind] for name, kind in types.items()},
        }
    )


def rows(root: str, condition: str, types: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The rows of one dataset, one sample at a time (a ``from_generator`` generator: its
    arguments are plain values so ``datasets`` can fingerprint them)."""
    from PIL import Image

    dataset = Dataset(root)
    for index in range(len(dataset)):
        sample = dataset[index]
        meta = sample["meta"]
        objects = [o for o in meta.get("objects", []) if o.get("box") is not None]
        yield {
            "image": Image.fromarray(sample["rgb"]),
            "seg": Image.fromarray(sample["seg"]),
            "inst": Image.fromarray(sample["inst"]),
            "depth": sample["depth"],
            "label": meta.get("label", -1),
            "objects": {
                "instance_id": [o["instance_id"] for o in objects],
                "class_id": [o["class_id"] for o in objects],
                "bbox": [o["box"] for o in objects],
                "visible_fraction": [o["visible_fraction"] for o in objects],
                "pixels": [o["pixels"] for o in objects],
            },
            "index": index,
            "condition": condition,
            "difficulty": meta.get("difficulty"),
            "seed": meta.get("seed"),
            **_factor_row(meta.get("factors", {}), types, f"{root} sample {index}"),
        }


def split_name(condition: str) -> str:
    """A condition's split name: ``datasets`` allows letters, digits and ``_`` (``15-deg-left``
    becomes ``15_deg_left``); the ``condition`` column keeps the original name."""
    return condition.replace("-", "_")


def to_hf(data: str | Path, out: str | Path, force: bool = False, progress: bool = True) -> Path:
    """Writes ``data`` as a Hugging Face dataset (``save_to_disk``) to the folder ``out``;
    returns ``out``.

    Raises:
        WorkbenchError: an unreadable dataset, factors whose types change between samples, or
            ``out`` existing without ``force``.
    """
    import datasets as hf

    sets = condition_sets(data, modalities=("rgb", "seg", "inst", "depth"))
    first = next(iter(sets.values()))
    types = factor_types(first.meta(0).get("factors", {}))
    schema = features(first, types)
    if not progress:
        hf.disable_progress_bars()
    with staged_folder(out, force) as stage:
        cache = stage.with_name(stage.name + ".cache")
        try:
            splits = {}
            for condition, dataset in tqdm(
                sets.items(), desc="hf", unit="split", disable=not progress or len(sets) == 1
            ):
                split = split_name(condition)
                splits[split] = hf.Dataset.from_generator(
                    rows,
                    features=schema,
                    gen_kwargs={"root": str(dataset.root), "condition": condition, "types": types},
                    cache_dir=str(cache),
                    split=hf.NamedSplit(split),
                )
            export = next(iter(splits.values())) if len(sets) == 1 else hf.DatasetDict(splits)
            export.save_to_disk(str(stage))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return Path(out)
