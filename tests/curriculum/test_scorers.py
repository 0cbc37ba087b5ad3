"""Difficulty scorers on real data: rendered JSON difficulty, domain, random, per-item losses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from workbench.curriculum import (
    CurriculumConfig,
    CurriculumDataModule,
    ScoreContext,
    item_losses,
    ranking,
    score,
)
from workbench.data.datamodule import MixedDataModule, MixedDataset, Subset
from workbench.data.sources import DigitsSource, RenderedSource
from workbench.errors import WorkbenchError
from workbench.training.classifier import Classifier


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("rendered") / "digits"
    subprocess.run(
        [sys.executable, "-m", "workbench.cli", "render", "digits", "--num", "30",
         "--resolution", "32", "--workers", "1", "--quiet", "--out", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def mixed(rendered):
    dm = MixedDataModule(
        [
            {"kind": "digits", "name": "natural"},
            {"kind": "rendered", "path": str(rendered), "name": "rendered"},
        ],
        image_size=8,
    )
    dm.setup("fit")
    return dm


def context(dm: MixedDataModule, **options) -> ScoreContext:
    return ScoreContext(dm.source_names, [s.kind for s in dm.specs], **options)


def part(dm: MixedDataModule, name: str) -> tuple[slice, object]:
    dataset = dm.datasets["train"]
    for i, (sid, source) in enumerate(dataset.parts):
        if dm.source_names[sid] == name:
            return slice(dataset.offsets[i], dataset.offsets[i + 1]), source
    raise KeyError(name)


def test_difficulty_comes_from_the_sample_json_without_images(rendered, mixed, tmp_path):
    written = {
        int(p.name.split(".")[0]): json.loads(p.read_text())["difficulty"]
        for p in rendered.glob("shards/*/[0-9]*.json")
    }
    assert len(written) == 30 and len(set(written.values())) > 1
    no_images = tmp_path / "no_images"
    shutil.copytree(rendered, no_images)
    for png in no_images.glob("shards/*/*.rgb.png"):
        png.unlink()
    source = RenderedSource(no_images)
    assert source.difficulties().tolist() == [written[i] for i in range(30)]

    scores = score("difficulty", mixed.datasets["train"], context(mixed, missing=0.75))
    rendered_items, subset = part(mixed, "rendered")
    assert isinstance(subset, Subset) and 0 < len(subset) < 30  # the rest went to validation
    assert scores[rendered_items].tolist() == [written[int(i)] for i in subset.indices]
    natural_items, _ = part(mixed, "natural")
    assert (scores[natural_items] == 0.75).all()


def test_domain_scorer_puts_the_natural_source_last(mixed):
    dataset = mixed.datasets["train"]
    rendered_items, _ = part(mixed, "rendered")
    scores = score("domain", dataset, context(mixed))
    first = ranking(scores, "easy_first", 0)[: rendered_items.stop - rendered_items.start]
    assert sorted(first.tolist()) == list(range(rendered_items.start, rendered_items.stop))
    flipped = score("domain", dataset, context(mixed, target_sources=["rendered"]))
    assert np.array_equal(flipped, 1 - scores)
    with pytest.raises(WorkbenchError, match=r"unknown \['photos'\]"):
        score("domain", dataset, context(mixed, target_sources=["photos"]))


def test_random_scorer_is_deterministic_in_the_seed(mixed):
    dataset = mixed.datasets["train"]
    a, b = (
        score("random", dataset, context(mixed, seed=1)),
        score("random", dataset, context(mixed, seed=1)),
    )
    assert np.array_equal(a, b) and not np.array_equal(a, score("random", dataset, context(mixed)))
    assert 0 <= a.min() and a.max() < 1 and len(a) == len(dataset)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"pacing": "linear"}, "scorer: required"),
        ({"scorer": "loss", "speed": 2}, "speed: not an option; allowed: scorer, pacing"),
        ({"scorer": "loss", "pacing": "cubic"}, "pacing: unknown 'cubic'; allowed: linear"),
        ({"scorer": "loss", "order": "backwards"}, "order: unknown 'backwards'"),
        ({"scorer": "difficulty", "start": 0}, "start: Input should be greater than 0"),
        ({"scorer": "difficulty", "full_at": "late"}, "full_at: Input should be a valid number"),
        ({"scorer": "random", "class_balanced": "yes"}, "class_balanced: Input should be a valid"),
        ({"scorer": "domain", "target_sources": "natural"}, "target_sources: Input should be a"),
        ({"scorer": "teacher"}, "teacher_checkpoint: needed by the teacher scorer"),
        ({"scorer": "loss", "teacher_checkpoint": "t.ckpt"}, "teacher_checkpoint: needed by the"),
        ({"scorer": "loss", "target_sources": ["a"]}, "target_sources: used by the domain"),
    ],
)
def test_bad_curriculum_configs_name_the_key(options, message):
    # the library names the field; the DataModule adds where the config sets it
    with pytest.raises(WorkbenchError) as error:
        CurriculumConfig.from_dict(options)
    assert str(error.value).startswith(message)
    with pytest.raises(WorkbenchError) as error:
        CurriculumDataModule(sources=[{"kind": "digits"}], curriculum=options)
    assert str(error.value).startswith(f"data.curriculum.{message}")


def _digits_and_model() -> tuple[MixedDataset, Classifier]:
    torch.manual_seed(0)
    dataset = MixedDataset([(0, DigitsSource("train", per_class=3))], 8, 1, cache=True)
    model = Classifier(image_size=8, backbone="small_cnn", backbone_options={"width": 8})
    return dataset, model


def test_item_losses_are_the_per_sample_losses_in_order_and_keep_modes():
    dataset, model = _digits_and_model()
    model.train()
    model.backbone.eval()  # a frozen part stays frozen
    state = torch.random.get_rng_state()
    losses = item_losses(model, dataset, ScoreContext(["natural"], ["digits"], batch_size=7))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert model.training and model.head.training and not model.backbone.training
    model.eval()
    with torch.no_grad():
        images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
        labels = torch.stack([dataset[i]["label"] for i in range(len(dataset))])
        expected = model.per_sample_loss(model(images)["logits"], labels)
    np.testing.assert_allclose(losses, expected.numpy(), rtol=1e-5)


class _Ranks:
    """A stand-in strategy: checks that this rank scored its share, returns every rank's share."""

    root_device = torch.device("cpu")

    def __init__(self, rank: int, padded: list[torch.Tensor]):
        self.global_rank, self.world_size, self.padded = rank, len(padded), padded

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        torch.testing.assert_close(tensor, self.padded[self.global_rank])
        return torch.stack(self.padded)


def test_item_losses_under_ddp_are_gathered_identically_on_every_rank():
    dataset, model = _digits_and_model()
    full = item_losses(model, dataset, ScoreContext(["natural"], ["digits"]))
    shares = np.array_split(full, 4)  # 30 items: shares of 8, 8, 7, 7
    padded = [torch.zeros(8) for _ in shares]
    for tensor, share in zip(padded, shares, strict=True):
        tensor[: len(share)] = torch.from_numpy(share)
    for rank in range(4):
        ranked = ScoreContext(["natural"], ["digits"], strategy=_Ranks(rank, padded))
        np.testing.assert_allclose(item_losses(model, dataset, ranked), full, rtol=1e-6)
