"""Checkpoint loading: kind checks, truncated files, weights_only."""

import pytest
import pytorch_lightning as pl
import torch

from workbench.checkpoint import checkpoint_kind, load_module, read_checkpoint
from workbench.errors import WorkbenchError
from workbench.training.classifier import Classifier


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    model = Classifier(backbone="small_cnn", backbone_options={"width": 8}, image_size=16)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path, model


def test_round_trip_keeps_weights_and_kind(classifier_ckpt):
    path, model = classifier_ckpt
    assert checkpoint_kind(read_checkpoint(path)) == "classifier"
    loaded = load_module(path, ["classifier"])
    assert isinstance(loaded, Classifier) and not loaded.training
    x = torch.rand(2, 1, 16, 16)
    model.eval()
    assert torch.allclose(loaded(x)["logits"], model(x)["logits"])


def test_wrong_kind_is_named(classifier_ckpt):
    with pytest.raises(WorkbenchError, match="a classifier checkpoint; this needs a vae or gan"):
        load_module(classifier_ckpt[0], ["vae", "gan"])


def test_truncated_and_missing_files(classifier_ckpt, tmp_path):
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(classifier_ckpt[0].read_bytes()[:4000])
    with pytest.raises(WorkbenchError, match="cut.ckpt: .*truncated"):
        load_module(truncated, ["classifier"])
    with pytest.raises(WorkbenchError, match="no such checkpoint"):
        load_module(tmp_path / "none.ckpt", ["classifier"])


def test_text_files_folders_and_malformed_hyperparameters_are_one_line(tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n")
    with pytest.raises(WorkbenchError, match="notes.ckpt: not a readable checkpoint"):
        read_checkpoint(text)
    with pytest.raises(WorkbenchError, match="is a folder"):
        read_checkpoint(tmp_path)
    for hparams, kind in (([1, 2], "list"), ({1: "x"}, "dict"), ("abc", "str")):
        path = tmp_path / f"{kind}.ckpt"
        torch.save({"state_dict": {}, "hyper_parameters": hparams}, path)
        with pytest.raises(WorkbenchError, match=f"hyper_parameters is a {kind}, not a mapping"):
            load_module(path, ["classifier"])


def test_hyperparameters_that_do_not_build_the_model_are_named(classifier_ckpt, tmp_path):
    checkpoint = torch.load(classifier_ckpt[0], weights_only=True)
    checkpoint["hyper_parameters"]["backbone"] = "no_such_backbone"
    path = tmp_path / "odd.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(WorkbenchError, match="odd.ckpt: its hyperparameters do not build"):
        load_module(path, ["classifier"])
