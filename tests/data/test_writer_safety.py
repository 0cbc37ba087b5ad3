"""Shard writer safety: fsync before publishing, corrupt shard indexes redone, partial shards
owned by their writer, dataset folder locks, export refusals."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from workbench.data import writer
from workbench.data.writer import (
    OWNER,
    SHARD_INDEX,
    clear_partials,
    dataset_lock,
    finished_samples,
    finished_shards,
    open_dataset_dir,
    shard_dir,
    write_json_atomic,
    write_shard,
)
from workbench.errors import WorkbenchError


def _samples(start: int, count: int) -> list[SimpleNamespace]:
    out = []
    for i in range(start, start + count):
        arrays = {
            "rgb": np.full((4, 4, 3), i, np.uint8),
            "depth": np.full((4, 4), float(i), np.float32),
            "seg": np.zeros((4, 4), np.uint8),
            "inst": np.zeros((4, 4), np.uint16),
        }
        out.append(SimpleNamespace(arrays=arrays, meta={"index": i, "label": 0}))
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".partial" not in str(p)
    }


@pytest.fixture
def fsynced(monkeypatch) -> list[str]:
    """Paths of everything fsynced (files and folders), in order."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def test_shard_files_index_and_folder_are_fsynced_before_and_after_the_rename(tmp_path, fsynced):
    write_shard(tmp_path, 0, 0, _samples(0, 3))
    final = shard_dir(tmp_path, 0)
    partial = f"{final}.partial-{socket.gethostname()}-{os.getpid()}"
    samples = {f"{partial}/{name}" for name in os.listdir(final) if name != SHARD_INDEX}
    assert len(samples) == 15 and samples <= set(fsynced)
    # the index (through its temporary file), then the partial folder holding every name,
    # then the shards folder after the rename
    index_tmp = next(i for i, p in enumerate(fsynced) if SHARD_INDEX in p)
    assert fsynced.index(partial, index_tmp) > max(fsynced.index(p) for p in samples)
    assert fsynced[-1] == str(final.parent)


def test_manifest_write_fsyncs_file_then_folder(tmp_path, fsynced):
    write_json_atomic(tmp_path / "manifest.json", {"a": 1})
    assert fsynced[-2].endswith(".tmp") and fsynced[-1] == str(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"a": 1}


@pytest.mark.parametrize("broken", [b"", b"{", b"[]", b'{"index": 0}', "count", "digest"])
def test_corrupt_or_empty_shard_index_is_unfinished_and_rewritten(tmp_path, broken):
    write_shard(tmp_path, 0, 0, _samples(0, 3))
    write_shard(tmp_path, 1, 3, _samples(3, 2))
    reference = _files(tmp_path)
    index = shard_dir(tmp_path, 0) / SHARD_INDEX
    if isinstance(broken, str):  # well-formed JSON that disagrees with itself
        data = json.loads(index.read_text())
        if broken == "count":
            data["count"] = 999
        else:
            data["files"]["000000.json"] = "0" * 64
        index.write_text(json.dumps(data))
    else:
        index.write_bytes(broken)
    assert set(finished_shards(tmp_path)) == {1}
    assert finished_samples(tmp_path) == 2  # the app's progress count: no crash, shard 0 undone
    write_shard(tmp_path, 0, 0, _samples(0, 3))
    assert _files(tmp_path) == reference
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["000000", "000001"]


def test_finished_samples_of_a_missing_folder_is_zero(tmp_path):
    assert finished_samples(tmp_path / "none") == 0


def _partial(root: Path, shard: int, owner: str) -> Path:
    folder = root / "shards" / f"{shard:06d}.partial-{owner}"
    folder.mkdir(parents=True)
    (folder / "000000.rgb.png").write_bytes(b"half")
    return folder


def test_clear_partials_keeps_a_partial_whose_writer_is_alive(tmp_path):
    live, dead = _partial(tmp_path, 0, "live"), _partial(tmp_path, 1, "dead")
    (dead / OWNER).touch()
    fd = os.open(live / OWNER, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a separate open file: conflicts as another process would
    try:
        clear_partials(tmp_path, [0, 1])
        assert live.is_dir() and (live / "000000.rgb.png").read_bytes() == b"half"
        assert not dead.exists()
    finally:
        os.close(fd)
    clear_partials(tmp_path, [0])
    assert not live.exists()


def test_an_unowned_partial_is_left_until_it_is_old(tmp_path, monkeypatch):
    young = _partial(tmp_path, 0, "young")
    clear_partials(tmp_path, [0])
    assert young.is_dir()  # may be a writer between mkdir and creating its owner file
    monkeypatch.setattr(writer, "UNOWNED_GRACE_S", -1)
    clear_partials(tmp_path, [0])
    assert not young.exists()


def _take(out: Path, shard: tuple[int, int] = (0, 1)) -> None:
    with dataset_lock(out, shard):
        pass


def test_second_writer_of_a_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "ds"
    with dataset_lock(out):
        with pytest.raises(WorkbenchError) as refused:
            _take(out)
        message = str(refused.value)
        assert f"host {socket.gethostname()}, pid {os.getpid()}, since 20" in message
        assert "choose another --out" in message and "\n" not in message
        with pytest.raises(WorkbenchError, match=f"pid {os.getpid()}"):
            _take(out, (1, 2))
    _take(out)  # released at exit


def test_slices_of_one_split_share_a_folder_but_not_a_slice(tmp_path):
    out = tmp_path / "ds"
    with dataset_lock(out, (0, 2)), dataset_lock(out, (1, 2)):
        with pytest.raises(WorkbenchError, match="another run is writing slice 0/2 of"):
            _take(out, (0, 2))
        with pytest.raises(WorkbenchError, match=f"pid {os.getpid()}"):
            _take(out)
    _take(out)


def test_lock_refuses_a_file_or_a_foreign_folder_without_creating_anything(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match="not empty and holds no workbench dataset"):
        _take(taken)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkbenchError, match="is a file"):
        _take(tmp_path / "file")
    with pytest.raises(WorkbenchError, match="lies under the file"):
        _take(tmp_path / "file" / "ds")


def test_provenance_must_agree_only_while_shards_remain(tmp_path):
    fresh = {"seed": 0, "num_samples": 3, "shard_size": 3, "renderer": "llvmpipe"}
    open_dataset_dir(tmp_path, fresh, ("seed",), ("renderer",))
    other = {**fresh, "renderer": "NVIDIA H200"}
    with pytest.raises(WorkbenchError, match="differs in renderer"):
        open_dataset_dir(tmp_path, other, ("seed",), ("renderer",))
    write_shard(tmp_path, 0, 0, _samples(0, 3))
    assert open_dataset_dir(tmp_path, other, ("seed",), ("renderer",))["renderer"] == "llvmpipe"
    with pytest.raises(WorkbenchError, match="differs in seed"):
        open_dataset_dir(tmp_path, {**other, "seed": 1}, ("seed",), ("renderer",))


def test_resume_identity_names_what_differs(tmp_path):
    fresh = {"seed": 0, "renderer": {"gl_renderer": "llvmpipe"}, "assets": {"a.obj": "1"}}
    open_dataset_dir(tmp_path, fresh, ("seed", "renderer.gl_renderer", "assets"))
    other = {"seed": 0, "renderer": {"gl_renderer": "NVIDIA H200"}, "assets": {"a.obj": "2"}}
    with pytest.raises(WorkbenchError) as refused:
        open_dataset_dir(tmp_path, other, ("seed", "renderer.gl_renderer", "assets"))
    assert str(refused.value) == (
        f"{tmp_path} holds another dataset (differs in renderer.gl_renderer ('llvmpipe' in the "
        "folder, 'NVIDIA H200' now); assets (a.obj)); choose another folder or delete it"
    )
    (tmp_path / "manifest.json").write_text("[1]")
    with pytest.raises(WorkbenchError, match="unreadable manifest"):
        open_dataset_dir(tmp_path, fresh, ("seed",))
