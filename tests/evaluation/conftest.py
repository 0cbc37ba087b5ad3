"""A tiny digits classifier checkpoint (8x8 grey, small CNN), trained for a few epochs here."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from workbench.data.sources import DigitsSource
from workbench.training.classifier import Classifier


def train_tiny(epochs: int = 4) -> Classifier:
    """Returns a small CNN trained on the natural digits' training split (about 90% test)."""
    torch.manual_seed(0)
    source = DigitsSource("train")
    x = torch.stack(
        [torch.from_numpy(source[i]["image"]).permute(2, 0, 1) for i in range(len(source))]
    )
    y = torch.from_numpy(source.labels())
    model = Classifier(backbone="small_cnn", backbone_options={"width": 8, "depth": 2},
                       image_size=8, in_channels=1)  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(epochs):
        for start in range(0, len(x), 64):
            loss = F.cross_entropy(model(x[start : start + 64])["logits"], y[start : start + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """Path of a checkpoint of :func:`train_tiny`'s model."""
    path = tmp_path_factory.mktemp("robustness") / "tiny.ckpt"
    model = train_tiny()
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path
