"""Adversarial scene search: the factor space of a spec, the evolution strategy, and a search
against a deliberately weak classifier whose failures come back as a dataset."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from workbench.data.datamodule import MixedDataModule
from workbench.data.reader import open_dataset
from workbench.errors import WorkbenchError
from workbench.evaluation.scene_search import (
    Candidate,
    FactorSpace,
    elite,
    evolve,
    pin_spec,
    search_scenes,
)
from workbench.scene.spec import load_spec, parse_spec
from workbench.training.classifier import Classifier


def _checkpoint(path, **kwargs):
    pl.seed_everything(0, verbose=False)
    model = Classifier(backbone="small_cnn", backbone_options={"width": 4, "depth": 1},
                       image_size=16, **kwargs)  # fmt: skip
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def weak_ckpt(tmp_path_factory):
    """An untrained digits classifier: it gets most rendered digits wrong."""
    return _checkpoint(tmp_path_factory.mktemp("weak") / "weak.ckpt")


def test_factor_space_of_digits_pins_ranges_choices_and_probabilities():
    spec = load_spec("scenes/digits.yaml")
    space = FactorSpace(spec)
    kinds = {f.name: f.kind for f in space.factors}
    assert kinds["yaw_deg"] == "range" and kinds["camera.distance"] == "range"
    assert kinds["lights.count"] == "count" and kinds["distractors"] == "count"
    assert kinds["materials.texture_probability"] == "binary"
    assert kinds["fonts"] == "choice" and kinds["digits"] == "choice"
    assert "extrusion" not in kinds and "resolution" not in kinds
    pinned, index, condition, values = space.decode(np.full(space.dims, 0.999))
    assert pinned.yaw_deg == (values["yaw_deg"],) * 2 and values["yaw_deg"] == pytest.approx(
        34.93, abs=0.01
    )
    assert pinned.digits == [9] and pinned.lights.count == (3, 3)
    assert pinned.materials.texture_probability == 1.0 and condition == "clone"
    assert 0 <= index < 2**20 and pinned.classes() == spec.classes()


def test_choices_that_define_the_classes_stay_free():
    spec = load_spec("scenes/shapes.yaml")
    names = {f.name for f in FactorSpace(spec).factors}
    assert "primitives" not in names  # pinning it would change the label set
    assert pin_spec(spec, {("camera", "distance"): (3.0, 3.0)}).camera.distance == (3.0, 3.0)


def test_evolution_beats_random_search_at_the_same_budget():
    target = np.linspace(0.1, 0.9, 12)

    def score(points: np.ndarray) -> np.ndarray:
        return -((points - target) ** 2).sum(axis=1)

    history = evolve(lambda p: (score(p), [0] * len(p)), 12, 240, np.random.default_rng(0))
    assert len(history) == 240
    random_best = score(np.random.default_rng(1).random((240, 12))).max()
    assert max(c.margin for c in history) > random_best + 0.1


def test_elite_takes_the_best_of_each_niche_before_seconds():
    point = np.zeros(2)
    history = [Candidate(point, m, n) for m, n in ((3.0, "a"), (2.0, "a"), (1.0, "b"), (0.5, "c"))]
    assert [c.margin for c in elite(history, 2)] == [3.0, 1.0]
    assert [c.margin for c in elite(history, 4)] == [3.0, 1.0, 0.5, 2.0]


def test_search_finds_failures_of_a_weak_model_and_writes_a_dataset(weak_ckpt, tmp_path, capsys):
    from workbench.commands import attack_scenes

    out = tmp_path / "hard"
    args = argparse.Namespace(checkpoint=str(weak_ckpt), scene="digits", out=str(out), budget=24,
                              seed=3, population=6, resolution=32, threshold=0.0, gl="auto",
                              quiet=True)  # fmt: skip
    assert attack_scenes.run(args) == 0
    printed = capsys.readouterr().out
    dataset = open_dataset(out)
    assert dataset.verify() == [] and len(dataset) >= 3
    search = dataset.manifest["search"]
    assert search["budget"] == 24 and search["found"] == len(dataset)
    assert f"misclassified, {search['distinct']} distinct" in printed
    margins = [dataset.meta(i)["search"]["margin"] for i in range(len(dataset))]
    assert min(margins) > 0 and margins == sorted(margins, reverse=True)
    sample = dataset[0]
    meta = sample["meta"]
    assert meta["search"]["predicted"] != meta["label"]
    pins = meta["search"]["pins"]
    assert meta["factors"]["yaw_deg"] == pytest.approx(pins["yaw_deg"], abs=1e-5)
    assert meta["factors"]["font"] == pins["fonts"] and meta["label"] == pins["digits"]
    assert sample["rgb"].shape == (32, 32, 3)
    from workbench.render.sample import render_sample
    from workbench.render.view import Renderer

    spec, index, condition = FactorSpace(parse_spec(dataset.manifest["spec"])).replay(
        meta["search"]
    )
    renderer = Renderer(32, 32)
    try:
        again = render_sample(renderer, spec, dataset.manifest["seed"], index, condition)
    finally:
        renderer.close()
    assert np.array_equal(again.arrays["rgb"], sample["rgb"])  # the pins reproduce the scene

    data = MixedDataModule(
        [{"kind": "digits", "name": "natural"}, {"kind": "rendered", "path": str(out),
                                                  "name": "hard"}],
        image_size=16, batch_size=8,
    )  # fmt: skip
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (8, 1, 16, 16)
    hard = data.datasets["train"]
    assert len(hard) == 1259 + len(dataset)


def test_bad_inputs_are_one_line_errors(weak_ckpt, tmp_path):
    three = _checkpoint(tmp_path / "three.ckpt", num_classes=3)
    with pytest.raises(WorkbenchError, match="classes .* differ from the scene"):
        search_scenes(three, "scenes/digits.yaml", tmp_path / "x", budget=4, progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file.txt").write_text("keep")
    with pytest.raises(WorkbenchError, match="busy: already exists and is not empty"):
        search_scenes(weak_ckpt, "scenes/digits.yaml", busy, budget=4, progress=False)
    with pytest.raises(WorkbenchError, match="budget: must be a positive"):
        search_scenes(weak_ckpt, "scenes/digits.yaml", tmp_path / "y", budget=0)
    with pytest.raises(WorkbenchError, match="this needs a classifier checkpoint"):
        torch.save({"state_dict": {}, "workbench_kind": "vae"}, tmp_path / "vae.ckpt")
        search_scenes(tmp_path / "vae.ckpt", "scenes/digits.yaml", tmp_path / "z", budget=4)
