"""A small classifier trained in about a second on scikit-learn's 8x8 digits, shared by the
attack tests (session scope; tests must not change it: they check that attacks do not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.data.sources import DigitsSource


def _tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    source = DigitsSource(split)
    images = torch.from_numpy(np.ascontiguousarray(source._images.transpose(0, 3, 1, 2)))
    return images, torch.from_numpy(source.labels())


class DictCNN(nn.Module):
    """conv3x3-batchnorm-ReLU-linear with a dropout layer, returning ``{"logits": ...}`` like
    the workbench Classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.1)
        )
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.features(image).flatten(1))}


@pytest.fixture(scope="session")
def digits_model() -> DictCNN:
    """A small CNN with batch norm at about 95% test accuracy, left in train mode so that tests
    see the attacks switch it to eval mode and back."""
    torch.manual_seed(0)
    x, y = _tensors("train")
    model = DictCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model(x)["logits"], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.train()
    return model


@pytest.fixture(scope="session")
def digits_batch(digits_model: DictCNN) -> tuple[torch.Tensor, torch.Tensor]:
    """64 test digits the model classifies correctly (images float32 B x 1 x 8 x 8, labels)."""
    x, y = _tensors("test")
    digits_model.eval()
    with torch.no_grad():
        right = digits_model(x)["logits"].argmax(dim=1) == y
    digits_model.train()
    return x[right][:64], y[right][:64]


def eval_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Returns the eval-mode accuracy of ``model`` on ``x`` (restoring its mode)."""
    mode = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(mode)
    logits = out["logits"] if isinstance(out, dict) else out
    return (logits.argmax(dim=1) == y).float().mean().item()


@pytest.fixture(scope="session")
def accuracy():
    """The function ``accuracy(model, x, y)``: eval-mode accuracy, the model's mode restored."""
    return eval_accuracy
