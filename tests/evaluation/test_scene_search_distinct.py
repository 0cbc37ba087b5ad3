"""Distinct failures of the scene search: near-copies and identical images count once, whatever
the order, and a search's dataset records the groups its summary counts."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import pytorch_lightning as pl

from workbench.data.reader import open_dataset
from workbench.evaluation.scene_search import (
    DISTINCT_TOLERANCE,
    Factor,
    FactorSpace,
    distinct_groups,
    image_digest,
    search_scenes,
)
from workbench.scene.spec import parse_spec
from workbench.training.classifier import Classifier

FACTORS = [
    Factor(("yaw_deg",), "range", -30.0, 30.0),
    Factor(("camera", "distance"), "range", 1.0, 2.0),
    Factor(("fonts",), "choice", options=("A", "B")),
    Factor(("lights", "count"), "count", 1, 3),
]


def _pins(yaw: float, distance: float, font: str = "A", count: int = 1) -> dict:
    return {"yaw_deg": yaw, "camera.distance": distance, "fonts": font, "lights.count": count}


def _partition(groups: list[int]) -> set[frozenset[int]]:
    members: dict[int, set[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, set()).add(i)
    return {frozenset(m) for m in members.values()}


def test_near_copies_and_identical_images_are_one_failure():
    step = 0.8 * DISTINCT_TOLERANCE * 60  # yaw moved by 80% of the tolerance each time
    pins = [
        _pins(0.0, 1.5),  # 0
        _pins(step, 1.52),  # 1: a near-copy of 0
        _pins(2 * step, 1.54),  # 2: a near-copy of 1, not of 0: the chain is one failure
        _pins(0.0, 1.5, font="B"),  # 3: another font: distinct
        _pins(0.0, 1.5, count=2),  # 4: another light count: distinct
        _pins(-25.0, 1.5),  # 5: far in yaw: distinct ...
        _pins(25.0, 1.9),  # 6: ... but the same image as 5: a copy of it
        _pins(0.0, 1.5 - 0.11),  # 7: distance beyond the tolerance of all: distinct
    ]
    digests = [f"d{i}" for i in range(len(pins))]
    digests[6] = digests[5]
    groups = distinct_groups(pins, digests, FACTORS)
    assert groups == [0, 0, 0, 1, 2, 3, 3, 4]
    assert len(set(groups)) == 5


def test_groups_do_not_depend_on_the_order_of_the_failures():
    rng = np.random.default_rng(0)
    pins = [
        _pins(float(y), float(d), str(f), int(c))
        for y, d, f, c in zip(
            rng.uniform(-30, 30, 60),
            rng.uniform(1, 2, 60),
            rng.choice(["A", "B"], 60),
            rng.integers(1, 3, 60),
            strict=True,
        )
    ]
    pins += [{**p, "yaw_deg": p["yaw_deg"] + 1.0} for p in pins[:20]]  # near-copies
    digests = [f"d{i % 70}" for i in range(len(pins))]  # and some identical images
    expected = _partition(distinct_groups(pins, digests, FACTORS))
    assert len(expected) < len(pins)
    order = list(range(len(pins)))
    random.Random(1).shuffle(order)
    shuffled = distinct_groups([pins[i] for i in order], [digests[i] for i in order], FACTORS)
    assert {frozenset(order[i] for i in m) for m in _partition(shuffled)} == expected


def test_pins_and_digests_must_pair():
    with pytest.raises(ValueError, match="2 pins but 1 image digests"):
        distinct_groups([_pins(0, 1.5), _pins(1, 1.5)], ["d"], FACTORS)


def test_image_digest_is_the_sha256_of_the_pixels_and_their_shape():
    image = np.zeros((4, 4, 3), np.uint8)
    other = image.copy()
    other[0, 0, 0] = 1
    assert image_digest(image) == image_digest(image.copy())
    assert image_digest(image) != image_digest(other)
    assert image_digest(image) != image_digest(image.reshape(4, 12))


def test_search_summary_counts_the_groups_its_samples_record(tmp_path):
    pl.seed_everything(0, verbose=False)
    model = Classifier(backbone="small_cnn", backbone_options={"width": 4, "depth": 1},
                       image_size=16)  # fmt: skip
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "weak.ckpt")
    out = search_scenes(tmp_path / "weak.ckpt", "scenes/digits.yaml", tmp_path / "hard",
                        budget=24, seed=3, population=6, resolution=32,
                        progress=False)  # fmt: skip
    dataset = open_dataset(out)
    search = dataset.manifest["search"]
    assert search["found"] == len(dataset) >= 3
    records = [dataset.meta(i)["search"] for i in range(len(dataset))]
    for i, record in enumerate(records):
        assert record["rgb_sha256"] == image_digest(dataset[i]["rgb"])  # the pixels on disk
    groups = [r["group"] for r in records]
    assert search["distinct"] == len(set(groups)) <= search["found"]
    assert groups[0] == 0 and sorted(set(groups)) == list(range(search["distinct"]))
    space = FactorSpace(parse_spec(dataset.manifest["spec"]))
    recomputed = distinct_groups(
        [r["pins"] for r in records], [r["rgb_sha256"] for r in records], space.factors
    )
    assert recomputed == groups  # reproducible from the dataset's JSON alone
    assert "sha256" in search["distinct_rule"] and json.dumps(search)
