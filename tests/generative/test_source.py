"""The ``generated`` source kind: a VAE checkpoint or a sampled folder in a data mix."""

import numpy as np
import pytest
import torch

from tests.generative.tiny_models import fit_tiny
from workbench.data.datamodule import MixedDataModule
from workbench.data.sources import SourceSpec, build_source
from workbench.errors import WorkbenchError
from workbench.generative.sampling import sample_checkpoint
from workbench.generative.source import SampledSource


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory):
    return fit_tiny("vae", tmp_path_factory.mktemp("vae") / "vae.ckpt")


def test_checkpoint_source_draws_balanced_deterministic_samples(vae_ckpt):
    spec = SourceSpec(kind="generated", path=str(vae_ckpt), num=25, name="vae")
    source = build_source(spec)["train"]
    assert len(source) == 25 and source.classes == [str(d) for d in range(10)]
    assert list(source.labels()[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    item = source[3]
    assert item["image"].shape == (8, 8, 1) and item["label"] == 3
    assert item["seg"] is None and item["depth"] is None
    again = build_source(spec)["train"]
    assert np.array_equal(again[3]["image"], item["image"])
    assert not np.array_equal(source[13]["image"], item["image"])


def test_generated_sources_join_a_mix_without_dense_labels(vae_ckpt, tmp_path):
    sampled = tmp_path / "sampled"
    sample_checkpoint(vae_ckpt, sampled, 20, seed=1, progress=False)
    dm = MixedDataModule(
        [
            {"kind": "digits", "name": "natural", "per_class": 1},
            {"kind": "generated", "path": str(vae_ckpt), "num": 40, "name": "vae"},
            {"kind": "generated", "path": str(sampled), "name": "sampled", "num": 10},
        ],
        image_size=8,
        batch_size=32,
        epoch_size=64,
        val_fraction=0.0,
    )
    dm.setup("fit")
    assert dm.split_report["train"] == {"natural": 10, "vae": 40, "sampled": 10}
    batch = next(iter(dm.train_dataloader()))
    generated = batch["source"] > 0
    assert generated.any()
    assert bool((batch["seg"][generated] == -1).all())
    assert bool((batch["depth"][generated] == 0).all())
    folder = SampledSource(sampled)
    assert list(folder.labels()) == [i % 10 for i in range(20)]
    assert folder[0]["image"].shape == (8, 8, 3)


def test_bad_generated_specs_say_what_to_fix(vae_ckpt, tmp_path):
    with pytest.raises(WorkbenchError, match="needs num"):
        build_source(SourceSpec(kind="generated", path=str(vae_ckpt)))
    with pytest.raises(WorkbenchError, match="needs a path"):
        build_source(SourceSpec(kind="generated", num=3))
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(vae_ckpt.read_bytes()[:2000])
    with pytest.raises(WorkbenchError, match="not a readable checkpoint"):
        build_source(SourceSpec(kind="generated", path=str(truncated), num=3))
    classifier = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": {}, "workbench_kind": "classifier"}, classifier)
    with pytest.raises(WorkbenchError, match="classifier checkpoint; this needs a vae, gan or"):
        build_source(SourceSpec(kind="generated", path=str(classifier), num=3))
    sampled = tmp_path / "sampled"
    sample_checkpoint(vae_ckpt, sampled, 5, progress=False)
    with pytest.raises(WorkbenchError, match=r"must lie in \[1, 5\]"):
        build_source(SourceSpec(kind="generated", path=str(sampled), num=6))
    with pytest.raises(WorkbenchError, match="role must be train or test"):
        build_source(SourceSpec(kind="generated", path=str(sampled), role="val"))


def test_unknown_kinds_list_generated():
    known = "known: digits, generated, imagefolder, pseudo, rendered"
    with pytest.raises(WorkbenchError, match=f"unknown source kind .*; {known}"):
        build_source(SourceSpec(kind="webcam"))
