"""Generated samples written as a dataset: contract, labels, provenance, determinism, resume."""

import json
import shutil

import numpy as np
import pytest

from tests.conftest import sample_hashes
from workbench.data.reader import open_dataset
from workbench.data.sources import RenderedSource
from workbench.data.writer import OWNER
from workbench.errors import WorkbenchError
from workbench.generative.sampling import class_indices, shard_seed, write_samples


class NoiseGenerator:
    """Grey images whose mean brightness encodes the label (so labels can be checked)."""

    def __init__(self):
        self.classes = ["a", "b", "c"]
        self.calls = []

    def generate(self, labels, seed):
        self.calls.append((list(labels), seed))
        rng = np.random.default_rng(seed)
        noise = rng.random((len(labels), 6, 6, 1)) * 0.1
        return (noise + np.array(labels)[:, None, None, None] * 0.4).astype(np.float32)


def test_samples_are_a_dataset_with_balanced_labels_and_provenance(tmp_path):
    out = write_samples(
        NoiseGenerator(), tmp_path / "s", 10, seed=5, provenance={"sha256": "abc"},
        shard_size=4, progress=False,
    )  # fmt: skip
    ds = open_dataset(out)
    assert len(ds) == 10 and ds.verify() == []
    assert ds.classes == ["a", "b", "c"]
    assert ds.labels() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    manifest = ds.manifest
    assert manifest["generator"] == {"kind": "NoiseGenerator", "sha256": "abc"}
    assert manifest["resolution"] == 6 and manifest["dense_labels"] is False
    assert manifest["seed"] == 5 and len(manifest["shards"]) == 3
    sample = ds[4]
    assert sample["rgb"].shape == (6, 6, 3) and sample["rgb"].dtype == np.uint8
    assert (sample["rgb"][..., 0] == sample["rgb"][..., 2]).all()  # grey stored as RGB
    assert 0.4 <= sample["rgb"].mean() / 255 <= 0.5  # label 1: brightness 0.4 + noise
    assert not sample["seg"].any() and not sample["depth"].any() and not sample["inst"].any()
    assert sample["meta"]["label_name"] == "b" and sample["meta"]["seed"] == shard_seed(5, 1)
    # read as a rendered source, the zero maps are no labels (not "all background")
    item = RenderedSource(out)[4]
    assert item["label"] == 1 and item["seg"] is None and item["depth"] is None


def test_class_subset_and_unknown_class(tmp_path):
    ds = open_dataset(write_samples(NoiseGenerator(), tmp_path / "s", 5, classes=["c", "a"],
                                    progress=False))  # fmt: skip
    assert ds.labels() == [2, 0, 2, 0, 2]
    assert ds.manifest["sampled_classes"] == ["c", "a"]
    assert ds.classes == ["a", "b", "c"]  # label ids stay the generator's
    with pytest.raises(WorkbenchError, match="'z' is not a class the generator was trained on"):
        write_samples(NoiseGenerator(), tmp_path / "t", 5, classes=["z"], progress=False)
    assert not (tmp_path / "t").exists()
    assert class_indices(["a", "b"], None) == [0, 1]


def test_same_seed_same_bytes_and_resume_redoes_only_missing_shards(tmp_path):
    first = write_samples(NoiseGenerator(), tmp_path / "a", 9, seed=1, shard_size=4,
                          progress=False)  # fmt: skip
    other = write_samples(NoiseGenerator(), tmp_path / "b", 9, seed=2, shard_size=4,
                          progress=False)  # fmt: skip
    assert sample_hashes(first) != sample_hashes(other)
    reference = sample_hashes(first)
    # an interrupted run: shard 1 unfinished (a partial folder), the manifest incomplete
    partial = first / "shards" / "000001.partial-host-1"
    shutil.move(first / "shards" / "000001", partial)
    (partial / OWNER).touch()  # its writer is gone: nobody holds the owner lock
    manifest = json.loads((first / "manifest.json").read_text())
    (first / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    generator = NoiseGenerator()
    write_samples(generator, first, 9, seed=1, shard_size=4, progress=False)
    assert [seed for _, seed in generator.calls] == [shard_seed(1, 1)]
    assert sample_hashes(first) == reference
    assert open_dataset(first).verify() == []
    assert not list((first / "shards").glob("*.partial*"))


def test_refuses_another_dataset_or_a_busy_folder_and_bad_counts(tmp_path):
    out = write_samples(NoiseGenerator(), tmp_path / "s", 4, progress=False)
    with pytest.raises(WorkbenchError, match="holds another dataset .*num_samples"):
        write_samples(NoiseGenerator(), out, 5, progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match="not empty and holds no workbench dataset"):
        write_samples(NoiseGenerator(), busy, 4, progress=False)
    with pytest.raises(WorkbenchError, match="--num: must be a positive"):
        write_samples(NoiseGenerator(), tmp_path / "z", 0, progress=False)


def test_non_finite_generator_output_is_refused(tmp_path):
    class Broken(NoiseGenerator):
        def generate(self, labels, seed):
            return np.full((len(labels), 4, 4, 1), np.nan, np.float32)

    with pytest.raises(WorkbenchError, match="non-finite pixels"):
        write_samples(Broken(), tmp_path / "s", 3, progress=False)


def test_a_second_writer_into_a_folder_being_sampled_is_refused(tmp_path):
    from workbench.data.writer import dataset_lock

    out = tmp_path / "held"
    with dataset_lock(out), pytest.raises(WorkbenchError, match="another run is writing"):
        write_samples(NoiseGenerator(), out, 4, progress=False)
