"""``workbench render`` end to end: determinism, SIGKILL resume, Ray, paired conditions, bad
input."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import kill_cli_when, run_cli, sample_hashes
from workbench.data import open_dataset, open_paired

SMALL = ["digits", "--num", "20", "--resolution", "32", "--shard-size", "6", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("ref") / "ds"
    run_cli("render", *SMALL, "--out", str(out))
    return sample_hashes(out)


def test_reference_is_complete_and_verified(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("again") / "ds"
    done = run_cli("render", *SMALL, "--out", str(out))
    assert sample_hashes(out) == reference
    assert len(reference) == 20 * 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["renderer"]["backend"] == "egl"
    assert "llvmpipe" in manifest["renderer"]["gl_renderer"]
    assert [s["count"] for s in manifest["shards"]] == [6, 6, 6, 2]
    assert f"clone: {out}" in done.stdout
    assert open_dataset(out).verify() == []


def test_same_bytes_with_two_workers(reference, tmp_path):
    run_cli("render", *SMALL, "--out", str(tmp_path / "w2"), "--workers", "2")
    assert sample_hashes(tmp_path / "w2") == reference


# Sample 24 has three directional lights and a pixel one rounding step from the next grey
# level: it came out two ways when pyrender bound the lights in memory-address order (issue 11).
FLAKY = ["scenes/shapes.yaml", "--num", "25", "--seed", "11", "--shard-size", "5", "--quiet"]


def test_flaky_sample_is_the_same_bytes_over_repeated_renders(tmp_path):
    run_cli("render", *FLAKY, "--workers", "1", "--out", str(tmp_path / "ref"))
    reference = sample_hashes(tmp_path / "ref")
    assert len(reference) == 25 * 5 and "000024.rgb.png" in reference
    threads = {**os.environ, "LP_NUM_THREADS": "4"}
    renders = {  # name -> the runs that make one dataset, with their environment
        "two workers": [(["--workers", "2"], None)],
        "shard split then resume": [
            (["--workers", "2", "--shard", f"{i}/2"], None) for i in (0, 1)
        ],
        "one worker, other shard size, 4 llvmpipe threads": [(["--shard-size", "7"], threads)],
        "two workers again": [(["--workers", "2"], None)],
    }
    differ = {}
    for name, runs in renders.items():
        out = tmp_path / name.replace(" ", "_").replace(",", "")
        for extra, env in runs:
            run_cli("render", *FLAKY, "--workers", "1", "--out", str(out), *extra, env=env)
        hashes = sample_hashes(out)
        differ[name] = sorted(k for k in reference if hashes.get(k) != reference[k])
    assert differ == {name: [] for name in renders}


def test_same_bytes_from_shard_split_and_other_shard_size(reference, tmp_path):
    out = tmp_path / "split"
    first = run_cli("render", *SMALL, "--out", str(out), "--shard", "0/2")
    assert first.returncode == 0
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    run_cli("render", *SMALL, "--out", str(out), "--shard", "1/2")
    assert json.loads((out / "manifest.json").read_text())["complete"]
    assert sample_hashes(out) == reference
    other = tmp_path / "size"
    run_cli("render", *SMALL[:-3], "--shard-size", "7", "--quiet", "--out", str(other))
    assert sample_hashes(other) == reference


def test_same_bytes_on_a_local_ray_cluster(reference, tmp_path):
    run_cli(
        "render",
        *SMALL,
        "--out",
        str(tmp_path / "ray"),
        "--backend",
        "ray",
        "--workers",
        "2",
        timeout=600,
    )
    assert sample_hashes(tmp_path / "ray") == reference


@pytest.mark.parametrize(
    "moment", ["manifest.json", "shards/000000/_shard.json", "shards/000004/_shard.json"]
)
def test_sigkill_at_any_moment_then_rerun_gives_the_same_bytes(reference, tmp_path, moment):
    # killed at a moment the run reaches (not after a delay: a finished run proves nothing)
    out = tmp_path / "killed"
    args = ["render", "digits", "--num", "60", "--resolution", "32", "--shard-size", "6",
            "--quiet", "--out", str(out), "--workers", "2"]  # fmt: skip
    assert kill_cli_when(args, lambda: (out / moment).is_file()), "finished before the kill"
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]
    with pytest.raises(Exception, match="incomplete"):
        open_dataset(out)
    run_cli(*args)
    hashes = sample_hashes(out)
    assert len(hashes) == 60 * 5
    assert {k: v for k, v in hashes.items() if int(k[:6]) < 20} == reference
    assert not list(out.glob("shards/*.partial*"))
    assert open_dataset(out).verify() == []


def test_kill_mid_shard_leaves_only_partials_that_are_redone(reference, tmp_path):
    out = tmp_path / "mid"
    args = ["render", "digits", "--num", "400", "--resolution", "32", "--shard-size", "50",
            "--quiet", "--out", str(out)]  # fmt: skip
    assert kill_cli_when(args, lambda: bool(list(out.glob("shards/000000/_shard.json"))))
    finished = [p for p in out.glob("shards/*") if p.name.isdigit()]
    assert finished and all((p / "_shard.json").is_file() for p in finished)
    run_cli(*args)
    hashes = sample_hashes(out)
    assert len(hashes) == 400 * 5
    assert {k: v for k, v in hashes.items() if int(k[:6]) < 20} == reference


def test_paired_conditions_share_geometry(tmp_path):
    out = tmp_path / "paired"
    done = run_cli("render", *SMALL, "--out", str(out), "--conditions", "clone,fog,night")
    assert "fog: " in done.stdout
    sets = open_paired(out)
    assert list(sets) == ["clone", "fog", "night"]
    for index in (0, 7):
        base = sets["clone"][index]
        for name in ("fog", "night"):
            other = sets[name][index]
            assert (other["inst"] == base["inst"]).all() and (other["depth"] == base["depth"]).all()
            assert other["meta"]["factors"] == base["meta"]["factors"]
            assert other["meta"]["condition"]["name"] == name
            assert (other["rgb"] != base["rgb"]).any()


def _assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    out = tmp_path / "nothing"
    _assert_one_line_error(
        run_cli("render", "digits", "--num", "-3", "--out", str(out), check=False), "--num"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: teapot\n")
    _assert_one_line_error(
        run_cli("render", str(bad), "--num", "2", "--out", str(out), check=False),
        "bad.yaml: kind: unknown scene kind 'teapot'",
    )
    _assert_one_line_error(
        run_cli(
            "render", "digits", "--num", "2", "--out", str(out), "--conditions", "snow", check=False
        ),
        "--conditions: unknown condition 'snow'",
    )
    missing = tmp_path / "table.yaml"
    missing.write_text(
        "kind: tabletop\nobjects:\n  - {path: nowhere/mug.obj, class_name: mug, count: [1, 1]}\n"
    )
    _assert_one_line_error(
        run_cli("render", str(missing), "--num", "2", "--out", str(out), check=False),
        "objects.0.path",
        "mesh file not found",
    )
    _assert_one_line_error(
        run_cli("render", "nosuchscene", "--num", "2", "--out", str(out), check=False),
        "no such file or bundled scene",
    )
    assert not out.exists()


def test_output_dir_holding_something_else_is_refused(tmp_path):
    out = tmp_path / "taken"
    run_cli("render", *SMALL[:2], "4", *SMALL[3:], "--out", str(out))
    before = sample_hashes(out)
    _assert_one_line_error(
        run_cli(
            "render", *SMALL[:2], "4", *SMALL[3:], "--out", str(out), "--seed", "9", check=False
        ),
        "holds another dataset",
        "seed",
    )
    assert sample_hashes(out) == before
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    _assert_one_line_error(run_cli("render", *SMALL, "--out", str(junk), check=False), "not empty")
    assert sorted(p.name for p in junk.iterdir()) == ["notes.txt"]


def test_osmesa_backend_gives_a_complete_dataset(tmp_path):
    out = tmp_path / "osmesa"
    run_cli(
        "render",
        "digits",
        "--num",
        "3",
        "--resolution",
        "32",
        "--quiet",
        "--gl",
        "osmesa",
        "--out",
        str(out),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["renderer"]["backend"] == "osmesa"
    assert len(open_dataset(out)) == 3


def test_same_bytes_on_an_existing_ray_cluster(reference, tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray = str(Path(sys.executable).parent / "ray")
    # Ray resolves 127.0.0.1 to the machine's interface address unless told it runs no real
    # cluster; this keeps the head, its workers and the driver on the loopback interface.
    # Token authentication (Ray's default for `ray start`) is off for this throwaway cluster.
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    # its own short temp dir (Ray's socket paths are length-limited) marks this cluster's
    # processes, so that stopping it leaves any other Ray cluster on the machine running
    # (`ray stop` would stop them all)
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    subprocess.run(
        [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", temp_dir],
        check=True, capture_output=True, env=env, timeout=180,
    )  # fmt: skip
    try:
        run_cli(
            "render", *SMALL, "--out", str(tmp_path / "cluster"), "--backend", "ray",
            "--ray-address", f"127.0.0.1:{port}", timeout=600, env=env,
        )  # fmt: skip
    finally:
        _stop_cluster(temp_dir)
    assert sample_hashes(tmp_path / "cluster") == reference


def _stop_cluster(temp_dir: str) -> None:
    """Kills the processes of the Ray cluster started with ``--temp-dir temp_dir`` (and only
    those) and removes the folder."""
    import psutil

    ours = []
    for process in psutil.process_iter(["cmdline"]):
        if temp_dir in " ".join(process.info["cmdline"] or []):
            with contextlib.suppress(psutil.NoSuchProcess):  # workers rename themselves
                ours += [process, *process.children(recursive=True)]
    for process in ours:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(ours, timeout=30)
    shutil.rmtree(temp_dir, ignore_errors=True)
