"""Offline sample-quality metrics in the feature space of the workbench's own classifier.

Nothing is downloaded: instead of Inception features, the images are embedded by a trained
workbench :class:`~workbench.training.classifier.Classifier` (its global-average-pooled backbone
output, the input of its last layer), and

* FID and KID come from torchmetrics' ``FrechetInceptionDistance`` and
  ``KernelInceptionDistance`` with that network as the custom ``feature`` extractor;
* precision and recall are the improved k-nearest-neighbour estimates of Kynkaanniemi et al.
  (2019): precision is the share of generated samples inside the real manifold (the union of
  balls around each real feature reaching its k-th nearest real neighbour), recall the share of
  real samples inside the generated manifold.

The numbers are comparable only between sets embedded by the same classifier.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from workbench.errors import WorkbenchError


class ClassifierFeatures(nn.Module):
    """The penultimate features of a workbench classifier: ``B x C x S x S -> B x F``.

    Args:
        classifier: a trained :class:`~workbench.training.classifier.Classifier`; its backbone is
            shared (not copied) and used in eval mode.
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.backbone = classifier.backbone
        self.num_features = int(self.backbone.out_channels)
        self.in_channels = int(classifier.hparams["in_channels"])
        self.image_size = int(classifier.hparams["image_size"])
        self.eval()

    def train(self, mode: bool = True) -> ClassifierFeatures:
        """Stays in eval mode: the features of a set must not depend on batch statistics."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """Returns the features of float images in [0, 1] (the classifier's input size)."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise WorkbenchError(
                f"feature extractor: expected B x {' x '.join(map(str, expected))} images, got "
                f"{tuple(images.shape)}"
            )
        with torch.no_grad():
            return self.backbone(images.float()).mean(dim=(2, 3))


def embed(extractor: ClassifierFeatures, images: Tensor, batch_size: int = 256) -> Tensor:
    """Returns the features of ``images`` (N x C x S x S), computed in batches."""
    return torch.cat(
        [extractor(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )


def fid_kid(
    extractor: ClassifierFeatures,
    real: Tensor,
    fake: Tensor,
    subsets: int = 50,
    subset_size: int = 500,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """Returns FID and KID (mean and standard deviation over random subsets) of two image sets.

    Args:
        extractor: the feature network.
        real: real float images, N x C x S x S in [0, 1].
        fake: generated float images, M x C x S x S in [0, 1].
        subsets: number of KID's random subsets.
        subset_size: images per KID subset (capped at the smaller set).
        seed: seed of KID's subsets.
        batch_size: images per forward pass.

    Raises:
        WorkbenchError: fewer than two images in a set.
    """
    if min(len(real), len(fake)) < 2:
        raise WorkbenchError(
            f"FID/KID: need at least two real and two generated images, got {len(real)} and "
            f"{len(fake)}"
        )
    fid = FrechetInceptionDistance(feature=extractor, normalize=True)
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": a few thousand here
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance`")
        kid = KernelInceptionDistance(feature=extractor, subsets=subsets, subset_size=size)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch_size):
            fid.update(images[i : i + batch_size].float(), real=is_real)
            kid.update(images[i : i + batch_size].float(), real=is_real)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}


def _radii(features: Tensor, k: int) -> Tensor:
    """Distance of every feature to its k-th nearest neighbour in the same set (self excluded)."""
    distances = torch.cdist(features.double(), features.double())
    return distances.kthvalue(k + 1, dim=1).values


def _inside(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """Whether each point lies in at least one ball (centre, radius)."""
    return (torch.cdist(points.double(), centres.double()) <= radii[None, :]).any(dim=1)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of two feature sets.

    Args:
        real: features of real images, N x F (for example from :func:`embed`).
        fake: features of generated images, M x F.
        k: the neighbour that sets each ball's radius (the paper uses 3).

    Raises:
        WorkbenchError: a set with no more than ``k`` features.
    """
    if min(len(real), len(fake)) <= k:
        raise WorkbenchError(
            f"precision/recall: need more than k={k} real and generated samples, got "
            f"{len(real)} and {len(fake)}"
        )
    precision = _inside(fake, real, _radii(real, k)).double().mean()
    recall = _inside(real, fake, _radii(fake, k)).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def sample_quality(
    extractor: ClassifierFeatures, real: Tensor, fake: Tensor, k: int = 3, seed: int = 0
) -> dict[str, float]:
    """Returns FID, KID, precision and recall of generated images ``fake`` against ``real``."""
    out = fid_kid(extractor, real, fake, seed=seed)
    out.update(precision_recall(embed(extractor, real), embed(extractor, fake), k))
    return out
