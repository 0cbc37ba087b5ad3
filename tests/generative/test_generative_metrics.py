"""FID, KID, precision and recall on the workbench classifier's own features; CAS."""

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.generative.metrics import (
    ClassifierFeatures,
    embed,
    fid_kid,
    precision_recall,
    sample_quality,
)
from workbench.training.classifier import Classifier
from workbench.training.recipe import TrainBudget, accuracy, natural_images, train_classifier


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    return ClassifierFeatures(
        Classifier(image_size=8, backbone="small_cnn", backbone_options={"width": 4, "depth": 2})
    )


def test_features_are_the_pooled_backbone_output(extractor):
    images = torch.rand(5, 1, 8, 8)
    features = extractor(images)
    assert features.shape == (5, extractor.num_features) == (5, 8)
    assert torch.allclose(features, extractor.backbone(images).mean(dim=(2, 3)))
    extractor.train()
    assert not extractor.training  # batch statistics never enter the features
    with pytest.raises(WorkbenchError, match="expected B x 1 x 8 x 8 images"):
        extractor(torch.rand(2, 3, 8, 8))


def test_fid_and_kid_grow_with_the_distance_between_sets(extractor):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(120, 1, 8, 8, generator=g) * 0.5
    same = torch.rand(120, 1, 8, 8, generator=g) * 0.5
    shifted = torch.rand(120, 1, 8, 8, generator=g) * 0.5 + 0.5
    near, far = (
        fid_kid(extractor, real, same, subsets=10, subset_size=50),
        fid_kid(extractor, real, shifted, subsets=10, subset_size=50),
    )
    assert 0 <= near["fid"] < far["fid"] and near["kid"] < far["kid"]
    assert fid_kid(extractor, real, shifted, subsets=10, subset_size=50, seed=0) == far
    with pytest.raises(WorkbenchError, match="at least two"):
        fid_kid(extractor, real, shifted[:1])


def test_precision_and_recall_of_covering_and_collapsed_sets():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(200, 4, generator=g)
    assert precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(real, torch.randn(200, 4, generator=g) + 50)
    assert far == {"precision": 0.0, "recall": 0.0}
    # mode collapse: every sample near one real point is precise but covers little
    collapsed = real[:1] + 0.01 * torch.randn(200, 4, generator=g)
    scores = precision_recall(real, collapsed)
    assert scores["precision"] == 1.0 and scores["recall"] < 0.1
    with pytest.raises(WorkbenchError, match="more than k=3"):
        precision_recall(real, real[:3])


def test_sample_quality_reports_all_four(extractor):
    images = torch.rand(40, 1, 8, 8)
    scores = sample_quality(extractor, images, images.flip(0))
    assert set(scores) == {"fid", "kid", "kid_std", "precision", "recall"}
    assert scores["precision"] == scores["recall"] == 1.0
    assert embed(extractor, images, batch_size=7).shape == (40, 8)


def test_a_briefly_trained_classifier_reports_accuracy_per_class():
    budget = TrainBudget(image_size=8, width=4, depth=3, epochs=1, epoch_size=64, batch_size=32)
    model = train_classifier([{"kind": "digits", "per_class": 2}], budget, seed=0)
    images, labels = natural_images("test", budget)
    assert images.shape == (359, 1, 8, 8)
    scores = accuracy(model, images, labels)
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert list(scores["per_class"]) == [str(d) for d in range(10)]
    assert min(scores["per_class"].values()) >= 0.0
