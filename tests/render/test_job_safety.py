"""``workbench render`` data safety, tried for real: SIGKILL and damaged shard indexes, a second
render into a folder being written, slices of one split side by side, resume identity (GL
renderer, version, mesh files) and paired ``--out`` folders holding other things."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, kill_cli_when, run_cli, sample_hashes, wait_until
from workbench.data import open_dataset
from workbench.data.writer import finished_samples

NUM = 60
ARGS = ["digits", "--num", str(NUM), "--resolution", "32", "--shard-size", "6", "--workers", "1",
        "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    run_cli("render", *ARGS, "--out", str(out))
    return out


def _one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _start_and_pause(args: list[str], out: Path) -> subprocess.Popen:
    """Starts ``workbench ARGS`` and stops it (SIGSTOP) once its first shard is finished, so
    it holds the folder mid-write for as long as the test needs."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    wait_until(
        lambda: (out / "shards" / "000000" / "_shard.json").is_file() or proc.poll() is not None,
        limit=240,
    )
    os.killpg(proc.pid, signal.SIGSTOP)
    assert proc.poll() is None, "finished before it could be paused"
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    return proc


def _resume(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGCONT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr


def test_sigkill_then_damaged_shard_indexes_rerun_gives_the_same_bytes(reference, tmp_path):
    out = tmp_path / "killed"
    args = ["render", *ARGS, "--out", str(out)]
    kill_cli_when(args, lambda: (out / "shards" / "000001" / "_shard.json").is_file())
    (out / "shards" / "000000" / "_shard.json").write_bytes(b"")
    (out / "shards" / "000001" / "_shard.json").write_text('{"index": 1, "files": {')
    finished = [p for p in out.glob("shards/*") if p.name.isdigit()]
    assert finished_samples(out) == 6 * (len(finished) - 2)  # the progress count survives
    run_cli(*args)
    assert sample_hashes(out) == sample_hashes(reference)
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"{k:06d}" for k in range(10)]
    assert open_dataset(out).verify() == []


def test_second_render_into_a_folder_being_written_is_refused(reference, tmp_path):
    out = tmp_path / "busy"
    args = ["render", *ARGS, "--out", str(out)]
    first = _start_and_pause(args, out)
    try:
        partials = {p: sorted(p.iterdir()) for p in out.glob("shards/*.partial*")}
        finished = sample_hashes(out)
        for extra in ([], ["--shard", "1/2"]):
            _one_line_error(
                run_cli(*args, *extra, check=False),
                "another run is writing this folder",
                f"pid {first.pid}, since 20",
                "render digits",
            )
        assert {p: sorted(p.iterdir()) for p in out.glob("shards/*.partial*")} == partials
        assert sample_hashes(out) == finished
    finally:
        _resume(first)
    assert sample_hashes(out) == sample_hashes(reference)
    assert open_dataset(out).verify() == []


def test_slices_of_a_split_run_side_by_side_but_one_slice_only_once(reference, tmp_path):
    out = tmp_path / "split"
    args = ["render", *ARGS, "--out", str(out)]
    first = _start_and_pause([*args, "--shard", "0/2"], out)
    try:
        _one_line_error(
            run_cli(*args, "--shard", "0/2", check=False), f"pid {first.pid}", "slice 0/2"
        )
        run_cli(*args, "--shard", "1/2")  # the other slice runs while the first is mid-write
    finally:
        _resume(first)
    assert json.loads((out / "manifest.json").read_text())["complete"]
    assert sample_hashes(out) == sample_hashes(reference)


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("gl_renderer", "NVIDIA H200/PCIe/SSE2", "renderer.gl_renderer ('NVIDIA H200/PCIe/SSE2'"),
        ("workbench", "0.0.1", "renderer.versions.workbench ('0.0.1' in the folder"),
    ],
)
def test_resume_with_another_renderer_or_version_is_refused(reference, tmp_path, key, value, shown):
    out = tmp_path / "other"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    if key == "gl_renderer":
        manifest["renderer"]["gl_renderer"] = value
    else:
        manifest["renderer"]["versions"]["workbench"] = value
    (out / "manifest.json").write_text(json.dumps(manifest))
    if key == "gl_renderer":  # finished: nothing to render, so nothing can mix; reopened as is
        run_cli("render", *ARGS, "--out", str(out))
        assert json.loads((out / "manifest.json").read_text())["renderer"]["gl_renderer"] == value
    shutil.rmtree(out / "shards" / "000009")
    before = sample_hashes(out)
    done = run_cli("render", *ARGS, "--out", str(out), check=False)
    _one_line_error(done, shown, "choose another folder")
    assert sample_hashes(out) == before and not (out / "shards" / "000009").exists()


def test_resume_with_a_changed_mesh_file_is_refused(tmp_path):
    mesh = tmp_path / "bottle.stl"
    shutil.copy(ROOT / "scenes" / "assets" / "bottle.stl", mesh)
    spec = tmp_path / "table.yaml"
    spec.write_text(
        "kind: tabletop\nresolution: 32\n"
        f"objects:\n  - {{path: {mesh}, class_name: bottle, count: [1, 1]}}\n"
    )
    out = tmp_path / "ds"
    args = ["render", str(spec), "--num", "2", "--shard-size", "1", "--workers", "1", "--quiet",
            "--out", str(out)]  # fmt: skip
    run_cli(*args)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["assets"]) == {str(mesh.resolve())}
    shutil.rmtree(out / "shards" / "000001")  # one shard left to render
    data = bytearray(mesh.read_bytes())
    data[0] = ord("x")  # the STL header: same geometry, other bytes
    mesh.write_bytes(bytes(data))
    done = run_cli(*args, check=False)
    _one_line_error(done, f"assets ({mesh.resolve()})", "choose another folder")
    assert not (out / "shards" / "000001").exists()


def test_paired_render_refuses_an_out_holding_other_things(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    paired = ["render", "digits", "--num", "2", "--resolution", "32", "--quiet",
              "--conditions", "clone,fog"]  # fmt: skip
    _one_line_error(run_cli(*paired, "--out", str(out), check=False), "notes.txt", "--out")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    other = tmp_path / "other"
    other.mkdir()
    pairs = {"conditions": ["clone", "fog"], "seed": 5, "num_samples": 2}
    (other / "conditions.json").write_text(json.dumps(pairs))
    _one_line_error(
        run_cli(*paired, "--out", str(other), check=False), "another paired set", "conditions"
    )
    assert [p.name for p in other.iterdir()] == ["conditions.json"]
    assert json.loads((other / "conditions.json").read_text()) == pairs


def test_a_worker_that_dies_ends_the_render_with_one_line_and_a_rerun_finishes(tmp_path):
    # multiprocessing.Pool replaced a dead worker silently and then waited forever for its shard
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "worker_killed"
    args = ["render", "digits", "--num", "600", "--resolution", "32", "--shard-size", "6",
            "--workers", "2", "--quiet", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: (out / "shards" / "000000" / "_shard.json").is_file(), limit=240)
        workers = [
            child
            for child in psutil.Process(proc.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        workers[0].kill()
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, stderr
    assert "a render worker died" in lines[0] and "run the same command again" in lines[0]
    run_cli(*args)
    dataset = open_dataset(out)
    assert len(dataset) == 600 and dataset.verify() == []


def test_workers_start_whatever_script_the_host_put_in_main(tmp_path, monkeypatch):
    # Streamlit's AppTest leaves an app page as __main__; spawned workers used to import it
    # ("No module named 'common'") and died before rendering anything
    import types

    from workbench.render.job import RenderJob, run
    from workbench.scene.spec import load_spec

    marker = tmp_path / "imported"
    script = tmp_path / "host_script.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\nimport no_such_module_here\n")
    host = types.ModuleType("__main__")
    host.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", host)
    spec = load_spec(ROOT / "scenes" / "digits.yaml").model_copy(update={"resolution": 16})
    out = tmp_path / "ds"
    run(RenderJob(spec=spec, out=out, num=8, workers=2, shard_size=2, progress=False))
    assert sys.modules["__main__"] is host
    assert not marker.exists()
    assert open_dataset(out).verify() == [] and len(open_dataset(out)) == 8
